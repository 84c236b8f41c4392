"""The command line: one device default, --threads, no progress bar in a log, torch imported
only when a command runs, and bad numbers refused by the parser."""

from __future__ import annotations

import subprocess
import sys

import pytest

from deepstock.tools.cli import DEFAULT_DEVICE, build_parser, main


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "--setting", "setting1", "--method", "ds", "--reg", "base"],
        ["tune", "--setting", "setting1", "--method", "ds", "--reg", "base"],
        ["run", "settings"],
        ["bench"],
    ],
)
def test_every_command_has_the_same_device_default_and_threads(argv):
    args = build_parser().parse_args(argv)
    assert args.device == DEFAULT_DEVICE == "auto"
    if argv[0] != "bench":
        assert args.threads == 1


def test_train_sets_the_thread_count_and_writes_no_progress_bar_into_a_log(capsys):
    import torch

    before = torch.get_num_threads()
    try:
        argv = ["train", "--setting", "setting1", "--method", "ds", "--reg", "base", "--seed", "1"]
        code = main([*argv, "--set", "epochs=2", "--set", "patience=2", "--threads", "2"])
        assert code == 0 and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    captured = capsys.readouterr()  # stderr is not a terminal here
    assert "it/s" not in captured.err and "\r" not in captured.err
    assert "val " in captured.out


@pytest.mark.parametrize("value", ["nan", "-1", "0", "inf"])
def test_bench_refuses_a_bad_min_seconds(value, capsys):
    with pytest.raises(SystemExit) as error:
        main(["bench", "--min-seconds", value])
    assert error.value.code == 2 and "--min-seconds" in capsys.readouterr().err


def test_simulator_throughput_refuses_nan_min_seconds():
    from deepstock.tools.perf import simulator_throughput

    with pytest.raises(ValueError, match="min_seconds must be a finite number"):
        simulator_throughput(4, min_seconds=float("nan"))


@pytest.mark.parametrize(
    "argv",
    [
        ["generate", "setting1", "--days", "-1"],
        ["train", "--setting", "setting9", "--method", "ds", "--reg", "base"],
        ["bench", "--min-seconds", "nan"],
        ["tune", "--trials", "0", "--setting", "setting1", "--method", "ds", "--reg", "base"],
    ],
)
def test_an_argument_error_does_not_import_torch(argv):
    code = (
        "import sys\n"
        "from deepstock.tools.cli import main\n"
        "try:\n"
        f"    main({argv!r})\n"
        "except SystemExit as error:\n"
        "    assert error.code == 2\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "False"


def test_lazy_choices_still_check_and_list_the_names(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--setting", "setting1", "--method", "nope", "--reg", "base"])
    err = capsys.readouterr().err
    assert "invalid choice: 'nope'" in err and "'ddpg'" in err
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    assert "proxy_full_length" in capsys.readouterr().out
