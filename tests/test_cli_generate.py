"""Tests of ``deepstock generate`` (deepstock.tools.cli)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from deepstock.datasets.io import DATA_FILE, META_FILE, load_dataset
from deepstock.datasets.synthetic import make_setting
from deepstock.tools import cli

REPO_DATASETS = Path(__file__).resolve().parent.parent / "data" / "datasets"


def test_generate_writes_the_authors_dataset(tmp_path, capsys):
    assert cli.main(["generate", "setting1", "--out", str(tmp_path / "s1")]) == 0
    output = capsys.readouterr().out
    assert str(tmp_path / "s1") in output and "120 trajectories" in output
    assert load_dataset(tmp_path / "s1").equals(make_setting("setting1"))
    for file_name in (DATA_FILE, META_FILE):
        committed = (REPO_DATASETS / "setting1" / file_name).read_bytes()
        assert (tmp_path / "s1" / file_name).read_bytes() == committed


def test_generate_setting4_and_options(tmp_path):
    out = tmp_path / "s4"
    argv = ["generate", "setting4", "--n", "3", "--horizon", "4", "--test-repeats", "2"]
    assert cli.main([*argv, "--review-period", "3", "--lead-time", "0", "--out", str(out)]) == 0
    dataset = load_dataset(out)
    assert dataset.horizon == (3 + 0) + 3 * 4
    assert dataset.split_sizes() == {"train": 3, "val": 3, "test": 6}
    assert dataset.max_replenish == 500
    expected = make_setting(
        "setting4", n_skus=3, horizon_periods=4, test_repeats=2, review_period=3, lead_time=0
    )
    assert dataset.equals(expected)


def test_generate_default_folder_is_named_after_the_options(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(cli, "default_datasets_dir", lambda: tmp_path)
    argv = ["generate", "setting2", "--stream", "fresh", "--seed", "3", "--days", "12"]
    assert cli.main([*argv, "--train-size", "4", "--val-size", "2", "--test-size", "5"]) == 0
    folder = tmp_path / "setting2-fresh-seed3-t12-test5-train4-val2"
    assert str(folder) in capsys.readouterr().out
    dataset = load_dataset(folder)
    assert dataset.name == folder.name
    assert dataset.split_sizes() == {"train": 4, "val": 2, "test": 5}
    assert dataset.horizon == 12
    assert dataset.params["stream"] == "fresh" and dataset.params["seed"] == 3
    assert not np.array_equal(dataset.demand, make_setting("setting2", horizon=12).demand[:11])
    assert cli.main(["generate", "setting3"]) == 0
    assert load_dataset(tmp_path / "setting3").equals(make_setting("setting3"))


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["generate", "setting9"], "invalid choice: 'setting9'"),
        (["generate", "setting4", "--n", "5"], "setting4 needs --n"),
        (["generate", "setting4", "--n", "0", "--horizon", "2"], "--n: must be >= 1, got 0"),
        (["generate", "setting4", "--n", "5", "--horizon", "0"], "--horizon: must be >= 1"),
        (["generate", "setting1", "--review-period", "0"], "--review-period: must be >= 1"),
        (["generate", "setting1", "--lead-time", "-1"], "--lead-time: must be >= 0, got -1"),
        (["generate", "setting1", "--lead-time", "x"], "must be an integer, got 'x'"),
        (["generate", "setting1", "--seed", "-3"], "--seed: must be >= 0"),
        (["generate", "setting1", "--n", "5"], "--n applies to setting4, not setting1"),
        (["generate", "setting2", "--horizon", "5"], "--horizon applies to setting4"),
        (["generate", "setting4", "--n", "2", "--horizon", "2", "--days", "9"], "--days applies"),
        (["generate", "setting1", "--stream", "paper"], "invalid choice: 'paper'"),
        (["generate", "setting1", "--seed", str(2**32)], "seed must be < 2\\*\\*32"),
        ([], "required: COMMAND"),
    ],
)
def test_generate_rejects_bad_input(tmp_path, capsys, argv, message):
    with pytest.raises(SystemExit) as exit_info:
        cli.main([*argv, "--out", str(tmp_path / "x")] if argv else argv)
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert "usage:" in error
    assert re.search(message, error), error
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("argv", [["--help"], ["generate", "--help"]])
def test_help(capsys, argv):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 0
    output = capsys.readouterr().out
    assert "usage: deepstock" in output
    if "generate" in argv:
        for option in ("--stream", "--seed", "--n", "--horizon", "--out", "--lead-time"):
            assert option in output


def test_installed_script(tmp_path):
    script = shutil.which("deepstock", path=str(Path(sys.executable).parent)) or shutil.which(
        "deepstock"
    )
    assert script is not None, "the deepstock console script is not installed (pip install -e .)"
    out = tmp_path / "s3"
    result = subprocess.run(
        [script, "generate", "setting3", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "110 trajectories" in result.stdout
    for file_name in (DATA_FILE, META_FILE):
        committed = (REPO_DATASETS / "setting3" / file_name).read_bytes()
        assert (out / file_name).read_bytes() == committed
    bad = subprocess.run(
        [script, "generate", "setting4", "--n", "0", "--horizon", "2"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert bad.returncode == 2 and "--n: must be >= 1" in bad.stderr
