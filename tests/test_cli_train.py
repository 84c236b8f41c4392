"""`deepstock train`: one training run from the command line."""

import json

import pytest

from deepstock.tools.cli import main


def test_train_ds_json_reports_losses_and_gap(capsys):
    code = main(
        [
            "train",
            "--setting",
            "setting1",
            "--method",
            "ds",
            "--reg",
            "base",
            "--seed",
            "1",
            "--set",
            "epochs=3",
            "--set",
            "patience=2",
            "--device",
            "cpu",
            "--json",
        ]
    )
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["method"] == "ds" and summary["regularization"] == "base"
    assert summary["config"]["epochs"] == 3
    assert len(summary["curve"]) == 3
    bench = summary["benchmark"]
    assert bench["policy"] == "dp_true"
    assert bench["test_gap_pct"] == pytest.approx(
        100 * (summary["test"]["loss"] / bench["test_loss"] - 1)
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--set", "no_such_key=1"], "no_such_key"),
        (["--set", "learning_rate=-1"], "learning_rate"),
        (["--set", "broken"], "KEY=VALUE"),
        (["--reg", "coeff"], "coeff_features"),
        (["--n", "5"], "setting4"),
    ],
)
def test_train_rejects_bad_input_before_training(argv, message, capsys):
    base = ["train", "--setting", "setting1", "--method", "ds", "--reg", "base", "--json"]
    # later flags win over earlier ones in argparse, so the bad one replaces the default
    with pytest.raises(SystemExit) as exit_info:
        main(base + argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
