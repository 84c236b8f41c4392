"""Tests of DQN (deepstock/methods/dqn.py): the discrete action grid, training, determinism."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from rl_helpers import make_dataset

from deepstock.methods.dqn import DQNConfig, action_grid, make_dqn, train_dqn
from deepstock.methods.envs import GridActionMap, InventoryEnv, InventoryVecEnv, run_episodes
from deepstock.methods.sb3_common import GreedyAction
from deepstock.methods.train import METHODS, evaluate_policy, train
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
