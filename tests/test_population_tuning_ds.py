"""Tuning on the population engine with real DS runs: the same winner when re-run, the same
result after an interruption."""

from __future__ import annotations

import json

import optuna
import pandas as pd
import pytest

from deepstock.results.store import ResultStore
from deepstock.tuning.procedure import TrainingObjective, Tuner, tune_setting

optuna.logging.set_verbosity(optuna.logging.WARNING)


class Interrupted(RuntimeError):
    """What the interrupting objective raises."""


class InterruptedTraining(TrainingObjective):
    """A real training objective (population engine) that stops after some finished runs."""

    def __init__(self, *args, stop_after: int, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.stop_after = stop_after
        self.finished = 0

    def evaluate_many(self, configs, seeds, on_done=None):
        def counted(index, score):
            on_done(index, score)
            self.finished += 1
            if self.finished >= self.stop_after:
                raise Interrupted("stopped on purpose")

        return super().evaluate_many(configs, seeds, counted)


BUDGET = {"n_trials": 5, "top_k": 2, "n_seeds": 2, "n_startup_trials": 3, "batch_trials": 3}


def test_population_engine_tuning_repeats_and_resumes(setting1_dataset, tmp_path) -> None:
    def tune(store: ResultStore, storage: str = "memory"):
        return tune_setting(
            "setting1",
            "ds",
            "base",
            profile="smoke",
            store=store,
            storage=storage,
            dataset=setting1_dataset,
            engine="population",
            **BUDGET,
        )

    first_store = ResultStore(tmp_path / "first")
    first = tune(first_store)
    assert len(first.trials) == 5 and len(first.confirm) == 4
    frame = first_store.to_frame()
    assert len(frame) == len(set(first.trials["key"]) | set(first.confirm["key"]))
    record = first_store.read(first.trials["key"][0])
    assert record["identity"]["engine"] == "population"
    again = tune(ResultStore(tmp_path / "again"))
    pd.testing.assert_frame_equal(first.winners, again.winners)
    pd.testing.assert_frame_equal(
        first.trials, again.trials.assign(wall_time_s=first.trials["wall_time_s"])
    )

    # interrupted after 6 finished runs (in stage 2), then resumed
    store = ResultStore(tmp_path / "resumed")
    url = f"sqlite:///{tmp_path / 'study.db'}"
    objective = InterruptedTraining(
        "ds",
        "base",
        setting1_dataset,
        setting="setting1",
        store=store,
        overrides={"epochs": 3, "patience": 2},
        engine="population",
        stop_after=6,
    )
    tuner_args = {k: v for k, v in BUDGET.items()}
    with pytest.raises(Interrupted):
        Tuner(objective, storage=url, **tuner_args).run()
    assert len(store.to_frame()) == 6
    resumed = tune(store, url)
    assert list(resumed.winners["config"]) == list(first.winners["config"])
    assert list(resumed.trials["val_loss"]) == list(first.trials["val_loss"])
    assert json.loads(resumed.winners["config"][0])["epochs"] == 3


def test_cli_tune_with_the_population_engine(isolated_results, capsys) -> None:
    from deepstock.tools.cli import main

    argv = ["tune", "--setting", "setting1", "--method", "ds", "--reg", "base"]
    argv += ["--profile", "smoke", "--trials", "3", "--set", "epochs=2", "--json"]
    argv += ["--engine", "population", "--batch-trials", "3", "--storage", "memory"]
    assert main(argv) == 0
    output = json.loads(capsys.readouterr().out)
    assert output["plan"]["n_trials"] == 3
    frame = ResultStore(isolated_results / "results" / "smoke").to_frame()
    assert len(frame) == 4 and all(json.loads(c)["epochs"] == 2 for c in frame["config"])
    with pytest.raises(SystemExit):
        main([*argv[:-6], "--engine", "population", "--batch-trials", "0"])
