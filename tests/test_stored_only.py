"""Stored-only experiments: tables from the result store alone, never a training run."""

from __future__ import annotations

import pandas as pd
import pytest

from deepstock.datasets.catalog import load_setting
from deepstock.paper.experiments import ExperimentContext, run_experiment, setting4
from deepstock.results.store import MissingRunError, ResultStore, cached_train


def _never_train(*_args, **_kwargs):
    raise AssertionError("a stored-only experiment trained a run")


def test_stored_only_gives_the_tables_of_the_committed_quick_results(monkeypatch):
    import deepstock.results.store as store_module

    normal = run_experiment("tuned", ExperimentContext(profile="quick"))
    monkeypatch.setattr(store_module, "default_train", _never_train)
    stored = run_experiment("tuned", ExperimentContext(profile="quick", stored_only=True))
    for name, table in normal.items():
        pd.testing.assert_frame_equal(stored[name], table)
    settings = run_experiment("settings", ExperimentContext(profile="quick", stored_only=True))
    assert len(settings["results"]) >= 18  # six pairs in three settings, from the store alone


def test_a_missing_tuning_is_named_with_its_count_and_nothing_is_written(tmp_path, monkeypatch):
    import deepstock.results.store as store_module

    monkeypatch.setattr(store_module, "default_train", _never_train)
    monkeypatch.setenv("DEEPSTOCK_OPTUNA_DIR", str(tmp_path / "optuna"))
    context = ExperimentContext(
        profile="smoke", store=ResultStore(tmp_path / "results"), stored_only=True
    )
    with pytest.raises(MissingRunError, match=r"tuning setting4-n5-h2-ds-base .*3 of 3 runs"):
        setting4(context, n_skus=[5], horizons=[2])
    assert not (tmp_path / "results").exists() and not (tmp_path / "optuna").exists()


def test_cached_train_in_a_stored_only_store_names_the_missing_run(tmp_path):
    store = ResultStore(tmp_path, stored_only=True)
    with pytest.raises(MissingRunError, match=r"ds base on setting1, seed 3 \(run [0-9a-f]+\)"):
        cached_train(store, "ds", "base", load_setting("setting1"), {"epochs": 2}, seed=3)
    assert not tmp_path.joinpath("runs").exists()


def test_cli_stored_only_is_one_line_naming_what_is_missing(tmp_path, capsys):
    from deepstock.tools.cli import main

    argv = ["run", "setting4", "--profile", "smoke", "--stored-only"]
    with pytest.raises(SystemExit) as error:
        main([*argv, "--results", str(tmp_path / "empty"), "--no-progress"])
    err = capsys.readouterr().err
    assert error.value.code == 2 and "Traceback" not in err
    assert "stored-only, nothing is trained" in err and "runs missing" in err


def test_experiment_costs_sum_the_wall_times_of_the_runs_an_experiment_reads():
    from deepstock.paper.experiments import experiment_costs

    costs = experiment_costs("quick", ["tuned"]).set_index("experiment")
    runs = run_experiment("tuned", ExperimentContext(profile="quick", stored_only=True))["runs"]
    assert costs.loc["tuned", "runs"] == len(runs)
    assert costs.loc["tuned", "hours"] == pytest.approx(runs["wall_time_s"].sum() / 3600)
    assert costs.loc["tuned", "missing"] == ""


def test_experiment_costs_name_an_experiment_the_store_cannot_answer(isolated_results):
    from deepstock.paper.experiments import experiment_costs

    missing = experiment_costs("smoke", ["setting4"])  # an empty store: a row, not an error
    assert missing.loc[0, "runs"] == 0 and "runs missing" in missing.loc[0, "missing"]
