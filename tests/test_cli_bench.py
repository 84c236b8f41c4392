"""`deepstock bench`: performance figures as JSON (measured, not asserted)."""

import json

import pytest

from deepstock.tools.cli import main


def test_bench_json_reports_simulator_and_dp(capsys):
    assert main(["bench", "--json", "--batches", "1", "50", "--min-seconds", "0.01"]) == 0
    report = json.loads(capsys.readouterr().out)
    modes = {(row["mode"], row["batch"]) for row in report["simulator"]}
    assert modes == {(m, b) for m in ("no_grad", "differentiable+backward") for b in (1, 50)}
    assert all(row["trajectory_days_per_s"] > 0 for row in report["simulator"])
    assert set(report["dp"]) == {"dp_true_seconds", "dp_empirical_seconds"}


def test_bench_rejects_bad_batch(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", "--batches", "0"])
    assert exit_info.value.code == 2
    assert "must be >= 1" in capsys.readouterr().err
