"""Tests of DQN (deepstock/methods/dqn.py): the discrete action grid, training, determinism."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch
from rl_helpers import make_dataset

from deepstock.course.tutorial import (
    read_policy_records,
    tutorial_dataset,
    tutorial_loop_update,
    tutorial_optimum,
    tutorial_runs,
)
from deepstock.methods.dqn import DQNConfig, action_grid, make_dqn, train_dqn
from deepstock.methods.envs import GridActionMap, InventoryEnv, InventoryVecEnv, run_episodes
from deepstock.methods.sb3_common import GreedyAction
from deepstock.methods.train import METHODS, evaluate_policy, train
from deepstock.paper.experiments import trials_to_beat_ds
from deepstock.paper.tables import settings_table
from deepstock.paper.verdict import check_base_improves_test_loss, dqn_questions
from deepstock.tools.cli import main
from deepstock.tuning.spaces import search_space

#: A few hundred steps with a small network.
FAST = {
    "total_steps": 300,
    "learning_starts": 50,
    "eval_freq": 100,
    "batch_size": 32,
    "net_arch": [16, 16],
    "target_update_interval": 50,
}


# ---------------------------------------------------------------------- the grid
def test_grid_points_and_rounding_by_hand() -> None:
    grid = GridActionMap(0.0, 40.0, 1.0)
    assert grid.n == 41 and grid.space().n == 41
    raw = grid.to_raw(torch.tensor([[0.0], [3.4], [3.6], [40.0], [55.0], [-2.0]]))
    assert raw.flatten().tolist() == [0.0, 3.0, 4.0, 40.0, 40.0, 0.0]
    # a step that does not divide the range: the last interval is shorter, the cap is a point
    short = GridActionMap(0.0, 10.0, 3.0)
    assert short.n == 5
    np.testing.assert_array_equal(short.levels, [0.0, 3.0, 6.0, 9.0, 10.0])
    assert short.to_raw(torch.tensor([[4.0], [3.0]])).flatten().tolist() == [10.0, 9.0]
    assert short.from_raw(10.0) == 4 and short.from_raw(7.4) == 2 and short.from_raw(-5) == 0
    assert short.from_fraction(0.5) == 2  # 5 units: nearest point 6
    assert short.from_fraction(1.0) == 4 and short.from_fraction(0.0) == 0
    # a step dividing the range adds no duplicate point
    assert GridActionMap(0.0, 100.0, 5.0).n == 21


def test_bad_grids_name_the_problem() -> None:
    with pytest.raises(ValueError, match="action_step"):
        GridActionMap(0.0, 10.0, 0.0)
    with pytest.raises(ValueError, match="high > low"):
        GridActionMap(5.0, 5.0, 1.0)
    data = make_dataset(coeff_features=(0, 1))
    with pytest.raises(ValueError, match="one raw output"):
        InventoryVecEnv(data, "coeff", action_step=1.0)
    with pytest.raises(ValueError, match="one raw output"):
        action_grid(data, "both")
    with pytest.raises(ValueError, match="one raw output"):
        train("dqn", "coeff", data, FAST, device="cpu")


def test_default_step_is_a_hundredth_of_the_cap() -> None:
    data = make_dataset()  # max_replenish 40
    assert action_grid(data, "none").step == pytest.approx(0.4)
    assert action_grid(data, "none").n == 101
    assert action_grid(data, "base", action_step=1.0).n == 41


@pytest.mark.parametrize("regularization", ["none", "base"])
def test_env_orders_are_the_grid_point_or_the_clipped_base_stock(regularization: str) -> None:
    data = make_dataset(initial_stock=12.0)
    env = InventoryVecEnv(data, regularization, n_envs=3, action_step=5.0, seed=0)
    assert env.action_space.n == 9  # 0, 5, ..., 40
    observation = env.reset()
    position = observation[:, 2:].sum(axis=1)  # two features, then the pipeline
    actions = np.array([0, 4, 8])  # grid points 0, 20, 40
    env.step(actions)
    levels = np.array([0.0, 20.0, 40.0])
    if regularization == "none":
        expected = levels
    else:  # order up to the level: clip(level - IP, 0, max_replenish)
        expected = np.clip(levels - position, 0.0, 40.0)
        assert expected[0] == 0.0  # a level below the position orders nothing
    np.testing.assert_allclose(env.last_orders, expected)


def test_gymnasium_env_takes_an_integer_action() -> None:
    env = InventoryEnv(make_dataset(initial_stock=3.0), "base", action_step=2.0)
    observation, _ = env.reset(seed=0)
    position = float(observation[2:].sum())
    _, _, _, _, info = env.step(10)  # level 20
    assert info["order"] == pytest.approx(max(20.0 - position, 0.0))


# ---------------------------------------------------------------------- training
@pytest.mark.parametrize("regularization", ["none", "base"])
def test_dqn_trains_and_keeps_the_best_validation_policy(regularization: str) -> None:
    data = make_dataset()
    result = train("dqn", regularization, data, FAST, seed=0, device="cpu")
    assert "dqn" in METHODS
    assert result.method == "dqn" and result.regularization == regularization
    assert [p.step for p in result.curve] == [100, 200, 300]
    for metrics in (result.train_metrics, result.val_metrics, result.test_metrics):
        assert math.isfinite(metrics["loss"]) and metrics["loss"] >= 0
    assert result.val_loss == pytest.approx(min(p.val_loss for p in result.curve), abs=1e-12)
    extras = result.extras
    assert extras["env_steps"] == 300 and extras["gradient_steps"] == 300 - 50
    assert extras["n_actions"] == 101 and extras["action_step"] == pytest.approx(0.4)
    assert result.config["net_arch"] == [16, 16] and result.config["action_step"] is None


@pytest.mark.parametrize("regularization", ["none", "base"])
def test_greedy_policy_has_the_same_loss_in_env_and_simulator(regularization: str) -> None:
    data = make_dataset(seed=4)
    result = train_dqn(data, regularization, {**FAST, "action_step": 2.0}, seed=1, device="cpu")
    greedy = result.policy.actor
    assert isinstance(greedy, GreedyAction)
    env = InventoryVecEnv.for_evaluation(data, regularization, split="val", action_step=2.0)

    def act(observation: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return greedy(torch.as_tensor(observation)).numpy()

    episodes = run_episodes(env, act)
    simulated = evaluate_policy(result.policy, data.subset("val"))["loss"]
    assert np.mean(episodes["trajectory_loss"]) == pytest.approx(simulated, abs=1e-9)
    assert simulated == pytest.approx(result.val_loss, abs=1e-12)


def test_initial_action_bias_is_the_initial_greedy_action() -> None:
    data = make_dataset()
    env = InventoryVecEnv(data, "base", action_step=1.0, seed=0)
    settings = DQNConfig(**{**FAST, "initial_action_bias": 0.3})
    model = make_dqn(env, settings, seed=0, device=torch.device("cpu"))
    observations = torch.as_tensor(np.random.default_rng(0).uniform(0, 50, size=(20, 4)))
    chosen = GreedyAction(model.q_net)(observations.float())
    assert chosen.flatten().tolist() == [12.0] * 20  # 0.3 * 40 units on a 1-unit grid
    target = model.q_net_target.q_net[-1]
    assert torch.equal(target.bias, model.q_net.q_net[-1].bias)


def test_same_seed_gives_identical_runs_and_another_seed_differs() -> None:
    data = make_dataset()
    first = train_dqn(data, "base", FAST, seed=3, device="cpu")
    second = train_dqn(data, "base", FAST, seed=3, device="cpu")
    assert first.curve == second.curve
    assert first.val_metrics == second.val_metrics and first.test_metrics == second.test_metrics
    other = train_dqn(data, "base", FAST, seed=4, device="cpu")
    assert other.curve != first.curve


# ---------------------------------------------------------------------- settings, space, CLI
@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"action_step": 0}, "'action_step'"),
        ({"exploration_final_eps": 0.5, "exploration_initial_eps": 0.2}, "exploration_final_eps"),
        ({"lr_min": 0.1, "learning_rate": 0.01}, "'lr_min'"),
        ({"net_arch": []}, "'net_arch'"),
        ({"gradient_steps": 0}, "'gradient_steps'"),
        ({"target_updates": 5}, "unknown dqn configuration key"),
    ],
)
def test_bad_settings_name_the_key(values: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        train("dqn", "base", make_dataset(), values, device="cpu")


def test_search_space_covers_settings_1_to_3_only() -> None:
    for setting in ("setting1", "setting2", "setting3"):
        space = search_space("dqn", "base", setting)
        DQNConfig(**{**space.fixed, **FAST})  # the fixed keys are configuration keys
        assert {"learning_rate", "gradient_steps", "exploration_fraction"} <= set(space.params)
        assert space.fixed["action_step"] == 1.0
        assert space.dataset_constants == {"max_replenish": 100}
    with pytest.raises(ValueError, match="not in the paper"):
        search_space("dqn", "base", "setting4")


def test_cli_trains_dqn_with_json(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["train", "--setting", "setting1", "--method", "dqn", "--reg", "none", "--json"]
    argv += ["--device", "cpu", "--set", "total_steps=200", "--set", "eval_freq=100"]
    argv += ["--set", "learning_starts=50", "--set", "net_arch=[8]"]
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["method"] == "dqn" and len(summary["curve"]) == 2
    assert summary["config"]["net_arch"] == [8]
    assert summary["benchmark"]["policy"] == "dp_true"


# ---------------------------------------------------------------------- book tables, verdict
def _results_with_dqn() -> pd.DataFrame:
    rows = []
    losses = {  # (method, reg) -> (test loss, test gap) in setting 1
        ("ds", "none"): (1.2, 20.0),
        ("ds", "base"): (1.1, 10.0),
        ("dqn", "none"): (1.5, 50.0),
        ("dqn", "base"): (1.2, 20.0),  # Base: -30 points against DS's -10
    }
    for (method, reg), (loss, gap) in losses.items():
        rows.append(
            {
                "setting": "setting1",
                "method": method,
                "regularization": reg,
                "val_loss": loss,
                "test_loss": loss,
                "val_gap_pct": gap,
                "test_gap_pct": gap,
                "in_paper": method != "dqn",
                **{f"paper_{k}": np.nan for k in ("val_loss", "val_gap_pct", "test_loss")},
                "paper_test_gap_pct": np.nan,
            }
        )
    return pd.DataFrame(rows)


def test_dqn_questions_and_marked_rows() -> None:
    results = _results_with_dqn()
    answers = dqn_questions(results).set_index("setting")
    row = answers.loc["setting1"]
    assert row["base_helps"] and row["helps_more_than_ds"]
    assert row["gap_reduction_pts"] == pytest.approx(30.0)
    assert row["ds_gap_reduction_pts"] == pytest.approx(10.0)
    assert dqn_questions(results[results["method"] != "dqn"]).empty
    table = settings_table(results, "setting1")
    assert "DQN Base (not in the paper)" in table.index and "DS Base" in table.index
    # the paper's claims never count DQN: with DS alone there is one case
    assert check_base_improves_test_loss(results).cases == 1


def test_trials_to_beat_ds_counts_dqn_only_when_tuned() -> None:
    rows = [
        {"method": m, "regularization": r, "n_trials": n, "best_val_loss": v}
        for (m, r, values) in (
            ("ds", "base", [1.0, 1.0]),
            ("ddpg", "base", [2.0, 0.5]),
            ("ppo", "base", [2.0, 2.0]),
            ("dqn", "base", [0.9, 0.9]),
        )
        for n, v in enumerate(values, start=1)
    ]
    counts = trials_to_beat_ds(pd.DataFrame(rows)).set_index(["method", "regularization"])
    assert counts.loc[("dqn", "base"), "trials"] == 1
    without = trials_to_beat_ds(pd.DataFrame([r for r in rows if r["method"] != "dqn"]))
    assert "dqn" not in set(without["method"])


# ---------------------------------------------------------------------- the tutorial chapter
def test_tutorial_datasets_and_their_exact_optima() -> None:
    tutorial = tutorial_dataset("tutorial", n_train=4, days=10, test_repeats=2)
    assert tutorial.lost_sales and tutorial.holding_cost == 0.0
    assert tutorial.demand.shape == (4 + 4 + 8, 11)
    assert tutorial.feature_names == ("demand_std", "forecast", "season")
    assert np.all(tutorial.initial_stock == 50.0)
    optimum = tutorial_optimum(tutorial)
    assert optimum["policy"] == "order_max" and optimum["test_loss"] == 0.0
    cost = tutorial_dataset("cost", n_train=4, days=10, test_repeats=2)
    best = tutorial_optimum(cost)
    assert best["level"] == pytest.approx(50 + 10 * 1.2815516, abs=1e-6)
    assert best["expected_loss"] == pytest.approx(1.0 * 10 * 0.1754983, abs=1e-6)
    with pytest.raises(ValueError, match="version"):
        tutorial_dataset("blog")
    with pytest.raises(ValueError, match="not a tutorial dataset"):
        tutorial_optimum(make_dataset())


def test_the_tutorials_update_changes_nothing() -> None:
    torch.manual_seed(0)
    network = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))
    outcome = tutorial_loop_update(network, torch.randn(32, 3), learning_rate=1.0)
    assert outcome == {"loss": 0.0, "max_weight_change": 0.0, "reward_used": False}


def test_tutorial_runs_store_the_policy_records(store) -> None:
    data = tutorial_dataset("cost", n_train=3, days=8, test_repeats=4)
    runs = tutorial_runs(store, data, [("dqn", "base")], {"dqn": FAST}, seeds=(0,))
    arrays = read_policy_records(store, runs.loc[0, "key"])
    assert arrays["orders"].shape == (10, 8) and arrays["positions"].shape == (10, 8)
    assert arrays["mean_end_inventory"].shape == (9,)
    again = tutorial_runs(store, data, [("dqn", "base")], {"dqn": FAST}, seeds=(0,))
    assert again.loc[0, "test_loss"] == runs.loc[0, "test_loss"]
