"""Tests of the DS population (deepstock/methods/population/ds.py): every member computes what
``train_ds`` computes for its configuration and seed."""

from __future__ import annotations

import pytest
import torch

from deepstock.methods.common import TrainResult, evaluate_policy
from deepstock.methods.ds import DSConfig, train_ds
from deepstock.methods.population.ds import group_by_structure, train_ds_population
from tests.test_ds import tiny_dataset

SHORT = {"epochs": 6, "patience": 100, "batch_size": 3, "hidden_layers": [8, 8]}


def assert_same_run(single: TrainResult, member: TrainResult, atol: float = 1e-5) -> None:
    assert member.seed == single.seed and member.config == single.config
    assert len(member.curve) == len(single.curve)
    for ours, theirs in zip(member.curve, single.curve, strict=True):
        assert ours.step == theirs.step
        assert ours.val_loss == pytest.approx(theirs.val_loss, abs=atol)
    for key in ("train_loss_per_epoch", "learning_rate_per_epoch"):
        assert member.extras[key] == pytest.approx(single.extras[key], abs=atol), key
    for key in ("epochs_run", "best_epoch", "skipped_batches"):
        assert member.extras[key] == single.extras[key], key
    for split in ("train_metrics", "val_metrics", "test_metrics"):
        assert getattr(member, split) == pytest.approx(getattr(single, split), abs=atol), split


@pytest.mark.parametrize("regularization", ["base", "both"])
def test_population_of_one_reproduces_train_ds(regularization: str) -> None:
    dataset = tiny_dataset()
    config = {**SHORT, "learning_rate": 3e-2}
    single = train_ds(dataset, regularization, config, seed=4, device="cpu")
    (member,) = train_ds_population(dataset, regularization, [config], [4], device="cpu")
    assert_same_run(single, member)
    assert member.extras["engine"] == "population" and member.extras["population_size"] == 1
    # the member's policy is an ordinary policy: evaluated alone it gives its reported metrics
    alone = evaluate_policy(member.policy, dataset.subset("test"))
    assert alone == pytest.approx(member.test_metrics, abs=1e-6)  # float32 rounding


def test_members_match_their_single_runs_with_mixed_structure_and_stopping() -> None:
    dataset = tiny_dataset()
    configs = [
        {**SHORT, "learning_rate": 1e-3},
        # early stopping and a plateau schedule that fires: stops while the others train on
        {**SHORT, "learning_rate": 1e-1, "patience": 1, "scheduler_patience": 0},
        {**SHORT, "learning_rate": 1e-1, "scheduler_factor": 0.5, "scheduler_patience": 0},
        # other structures: their own sub-populations
        {**SHORT, "hidden_layers": [4], "batch_size": 2, "epochs": 4},
        {**SHORT, "train_dtype": "float64", "initial_action_bias": 0.3},
    ]
    seeds = [0, 1, 2, 3, 4]
    finished: list[int] = []
    members = train_ds_population(
        dataset,
        "base",
        configs,
        seeds,
        device="cpu",
        on_member_done=lambda index, result: finished.append(index),
    )
    assert sorted(finished) == [0, 1, 2, 3, 4]
    assert finished.index(1) < finished.index(0)  # the early stopper is reported first
    for config, seed, member in zip(configs, seeds, members, strict=True):
        assert_same_run(train_ds(dataset, "base", config, seed=seed, device="cpu"), member)
    assert members[1].extras["epochs_run"] < SHORT["epochs"]
    assert members[2].extras["learning_rate_per_epoch"][-1] < 1e-1


def test_members_with_different_learning_rates_diverge_like_single_runs() -> None:
    dataset = tiny_dataset()
    configs = [{**SHORT, "learning_rate": 1e-3}, {**SHORT, "learning_rate": 5e-2}]
    slow, fast = train_ds_population(dataset, "base", configs, [7, 7], device="cpu")
    # same seed, hence the same initial weights and shuffles: only the learning rate differs
    assert slow.extras["train_loss_per_epoch"] != fast.extras["train_loss_per_epoch"]
    assert abs(slow.val_loss - fast.val_loss) > 1e-3
    for config, member in zip(configs, (slow, fast), strict=True):
        assert_same_run(train_ds(dataset, "base", config, seed=7, device="cpu"), member)


def test_grouping_and_bad_input() -> None:
    settings = [
        DSConfig(batch_size=5),
        DSConfig(batch_size=10),
        DSConfig(batch_size=5),
        DSConfig(batch_size=5, hidden_layers=[32, 32]),
        DSConfig(batch_size=5),
    ]
    assert group_by_structure(settings) == [[0, 2, 4], [1], [3]]
    assert group_by_structure(settings, max_members=2) == [[0, 2], [4], [1], [3]]
    dataset = tiny_dataset()
    with pytest.raises(ValueError, match="same length"):
        train_ds_population(dataset, "base", [SHORT, SHORT], [0])
    with pytest.raises(ValueError, match="at least one member"):
        train_ds_population(dataset, "base", [], [])
    with pytest.raises(ValueError, match="max_members"):
        train_ds_population(dataset, "base", [SHORT], [0], max_members=0)
    with pytest.raises(ValueError, match="unknown ds configuration key"):
        train_ds_population(dataset, "base", [{"lr": 1.0}], [0])


def test_a_stopped_member_no_longer_changes() -> None:
    dataset = tiny_dataset()
    configs = [{**SHORT, "patience": 1, "learning_rate": 1e-1}, {**SHORT, "epochs": 8}]
    early, late = train_ds_population(dataset, "base", configs, [1, 2], device="cpu")
    assert early.extras["epochs_run"] < late.extras["epochs_run"] == 8
    # the early member's policy holds its best epoch's weights: re-validating it gives its best
    best = min(point.val_loss for point in early.curve)
    assert evaluate_policy(early.policy, dataset.subset("val"))["loss"] == pytest.approx(
        best, abs=1e-6
    )
    assert isinstance(next(early.policy.parameters()), torch.Tensor)
