"""Resume and concurrency of the tuner: a failed or killed trial leaves no trace in the result,
workers die with their parent, and storages are checked before anything is written."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from dataclasses import dataclass

import optuna
import pandas as pd
import pytest

from deepstock.tuning.procedure import ToyObjective, Tuner

optuna.logging.set_verbosity(optuna.logging.WARNING)

BUDGET = {"n_trials": 8, "top_k": 2, "n_seeds": 2, "n_startup_trials": 3, "seed": 5}


@contextlib.contextmanager
def _deadline(seconds: int, what: str):
    """Fail (instead of hanging) when the body takes longer than ``seconds``."""

    def expire(_signum, _frame):
        raise AssertionError(f"{what} (over {seconds} s)")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _same_tuning(resumed, uninterrupted) -> None:
    """Every stage-1 configuration and score (in order), the stage-2 runs and the winner."""
    columns = ["trial_index", "seed", "val_loss", "test_loss", "best_val_so_far", "config"]
    pd.testing.assert_frame_equal(resumed.trials[columns], uninterrupted.trials[columns])
    columns = ["candidate", "seed", "val_loss", "test_loss"]
    pd.testing.assert_frame_equal(resumed.confirm[columns], uninterrupted.confirm[columns])
    columns = ["candidate", "val_loss", "test_loss", "config"]
    pd.testing.assert_frame_equal(resumed.winners[columns], uninterrupted.winners[columns])


@dataclass
class FailsOnce(ToyObjective):
    """The toy objective, raising on its ``fail_at``-th evaluation (once: a device error, an
    interrupted run)."""

    fail_at: int = 3
    calls: int = 0

    def evaluate(self, config, seed):
        self.calls += 1
        if self.calls == self.fail_at:
            raise RuntimeError("simulated failure")
        return super().evaluate(config, seed)


def test_a_failed_trial_does_not_change_later_draws(tmp_path):
    uninterrupted = Tuner(ToyObjective(), storage=f"sqlite:///{tmp_path / 'a.db'}", **BUDGET).run()
    tuner = Tuner(FailsOnce(), storage=f"sqlite:///{tmp_path / 'b.db'}", **BUDGET)
    with pytest.raises(RuntimeError, match="simulated failure"):
        tuner.run()
    resumed = tuner.run()
    states = [
        t.state
        for t in optuna.load_study(
            study_name=tuner.search_study_name(0), storage=tuner._storage_handle
        ).trials
    ]
    assert states.count(optuna.trial.TrialState.FAIL) == 1
    _same_tuning(resumed, uninterrupted)


def test_a_killed_worker_resumed_at_once_gives_the_uninterrupted_result(tmp_path):
    """Kill the only worker in the middle of stage 1 and resume right away (the heartbeat's
    grace period is long: the dead trial is found by its owner's process id)."""
    objective = ToyObjective(sleep_s=0.3)
    uninterrupted = Tuner(objective, storage=f"sqlite:///{tmp_path / 'a.db'}", **BUDGET).run()
    tuner = Tuner(
        objective,
        storage=f"sqlite:///{tmp_path / 'b.db'}",
        heartbeat_interval=1,
        grace_period=600,
        **BUDGET,
    )
    tuner.prepare()
    (worker,) = tuner.start_workers(1)
    study = optuna.load_study(study_name=tuner.search_study_name(0), storage=tuner._storage_handle)
    deadline = time.monotonic() + 120
    while True:  # 4 finished trials and a 5th under way (sampled), then kill the worker
        trials = study.get_trials(deepcopy=False)
        complete = sum(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
        running = [t for t in trials if t.state == optuna.trial.TrialState.RUNNING and t.params]
        if complete >= 4 and running:
            break
        assert worker.is_alive() and time.monotonic() < deadline, "worker did not progress"
        time.sleep(0.02)
    os.kill(worker.pid, signal.SIGKILL)
    worker.join()

    with _deadline(90, "the resume waited for the dead worker's trial"):
        resumed = tuner.run()
    _same_tuning(resumed, uninterrupted)
    trials = optuna.load_study(
        study_name=tuner.search_study_name(0), storage=tuner._storage_handle
    ).trials
    (failed,) = [t for t in trials if t.state == optuna.trial.TrialState.FAIL]
    retried = [t for t in trials if t.system_attrs.get("requeued_from") == failed.number]
    assert len(retried) == 1 and retried[0].params == failed.params
