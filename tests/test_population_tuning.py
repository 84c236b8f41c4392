"""Tuning in batches (Tuner(batch_trials=q)) and on the population engine: deterministic,
resumable after an interruption, every finished run reported at once."""

from __future__ import annotations

import dataclasses

import optuna
import pandas as pd
import pytest

from deepstock.tuning.procedure import (
    RunScore,
    ToyObjective,
    Tuner,
)

optuna.logging.set_verbosity(optuna.logging.WARNING)


class Interrupted(RuntimeError):
    """What the interrupting objectives raise."""


@dataclasses.dataclass
class CountingToy(ToyObjective):
    """A toy objective that records the size of every batch and can stop after some runs."""

    batches: list[int] = dataclasses.field(default_factory=list)
    stop_after: int | None = None
    finished: int = 0

    def evaluate_many(self, configs, seeds, on_done=None):
        self.batches.append(len(configs))

        def counted(index: int, score: RunScore) -> None:
            on_done(index, score)
            self.finished += 1
            if self.stop_after is not None and self.finished >= self.stop_after:
                raise Interrupted("stopped on purpose")

        return super().evaluate_many(configs, seeds, counted)

    def identity(self):
        return super().identity()


def toy_tuner(objective, storage: str, **kwargs) -> Tuner:
    return Tuner(
        objective,
        n_trials=10,
        top_k=2,
        n_seeds=3,
        n_startup_trials=4,
        storage=storage,
        batch_trials=4,
        **kwargs,
    )


def test_batched_tuning_asks_q_trials_at_a_time_and_is_deterministic() -> None:
    first_objective = CountingToy()
    first = toy_tuner(first_objective, "memory").run()
    assert first_objective.batches == [4, 4, 2, 6]  # stage 1 in batches of q, stage 2 in one
    assert len(first.trials) == 10 and len(first.confirm) == 6
    second = toy_tuner(CountingToy(), "memory").run()
    pd.testing.assert_frame_equal(first.trials, second.trials)
    pd.testing.assert_frame_equal(first.winners, second.winners)
    # a batch is not q draws of one-at-a-time tuning: its own study
    assert (
        toy_tuner(ToyObjective(), "memory").study_prefix
        != Tuner(
            ToyObjective(), n_trials=10, top_k=2, n_seeds=3, n_startup_trials=4, storage="memory"
        ).study_prefix
    )
    with pytest.raises(ValueError, match="batch_trials"):
        toy_tuner(ToyObjective(), "memory").__class__(ToyObjective(), 2, 1, 1, batch_trials=0)


def test_an_interrupted_batched_tuning_resumes_to_the_same_result(tmp_path) -> None:
    stop_after = 6  # in stage 1's second batch: later draws must not shift
    reference = toy_tuner(CountingToy(), "memory").run()
    url = f"sqlite:///{tmp_path / 'study.db'}"
    interrupted = CountingToy(stop_after=stop_after)
    with pytest.raises(Interrupted):
        toy_tuner(interrupted, url).run()
    resumed_objective = CountingToy()
    resumed = toy_tuner(resumed_objective, url).run()
    pd.testing.assert_frame_equal(
        reference.trials.drop(columns=["trial_number"]),
        resumed.trials.drop(columns=["trial_number"]),
    )
    columns = ["candidate", "seed", "val_loss", "test_loss"]
    pd.testing.assert_frame_equal(reference.confirm[columns], resumed.confirm[columns])
    assert list(reference.winners["config"]) == list(resumed.winners["config"])
    # only what had not finished ran again
    assert sum(resumed_objective.batches) == 16 - stop_after
