"""Tests of the RL environments (deepstock/methods/envs.py, the book's *The inventory model* chapter)."""

from __future__ import annotations

import warnings

import gymnasium
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env as gymnasium_check_env
from rl_helpers import make_dataset
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from deepstock.methods.envs import (
    ActionMap,
    ActorPolicy,
    InventoryEnv,
    InventoryVecEnv,
    run_episodes,
)
from deepstock.model.heuristics import ConstantOrder, StationaryBaseStock
from deepstock.model.simulator import InventorySimulator

#: Datasets covering backlog, lost sales, L = 0, per-trajectory P and L, per-day lead times.
DATASETS = {
    "backlog": dict(),
    "lost_sales": dict(lost_sales=True, initial_stock=5.0),
    "no_lead_time": dict(lead_time=0),
    "mixed_period_and_lead": dict(
        review_period=[2, 3, 1, 4, 2, 3, 1, 2, 5], lead_time=[1, 0, 2, 3, 1, 2, 0, 4, 1]
    ),
    "per_day_lead_lost_sales": dict(
        lost_sales=True,
        review_period=[3, 2, 3, 2, 3, 2, 3, 2, 3],
        lead_time=np.random.default_rng(5).integers(1, 4, size=(9, 17)),
    ),
}


def env_losses_gym(env: InventoryEnv, action: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Per trajectory: (loss from the steps' losses x window days, loss reported at the end)."""
    from_steps, reported = np.zeros(n), np.zeros(n)
    counted = env.episodes.counted_days.numpy()
    for trajectory in range(n):
        env.reset(options={"trajectory": trajectory})
        total, done = 0.0, False
        while not done:
            _, reward, done, truncated, info = env.step(action)
            assert not truncated
            assert reward == -info["step_loss"]
            total += info["step_loss"] * info["window_days"]
        from_steps[trajectory] = total / counted[trajectory]
        reported[trajectory] = info["trajectory_loss"]
    return from_steps, reported


# ---------------------------------------------------------------------- checkers
@pytest.mark.parametrize("regularization", ["none", "base", "coeff", "both"])
def test_env_checkers_pass(regularization: str) -> None:
    coeff = (0, 1) if regularization in ("coeff", "both") else ()
    env = InventoryEnv(make_dataset(coeff_features=coeff), regularization)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # infinite observation bounds, no env spec
        gymnasium_check_env(env, skip_render_check=True)
        sb3_check_env(env, warn=False)
    assert env.action_space == gymnasium.spaces.Box(-1, 1, (3 if coeff else 1,), np.float32)
    assert env.observation_space.shape == (2 + 2,)


def test_native_scaling_exposes_the_regularization_bounds() -> None:
    data = make_dataset(coeff_features=(0, 1))
    env = InventoryEnv(data, "none", action_scaling="native")
    assert env.action_space == gymnasium.spaces.Box(0, 40, (1,), np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gymnasium_check_env(env, skip_render_check=True)
    both = InventoryEnv(data, "both", action_scaling="native")
    assert both.action_space == gymnasium.spaces.Box(0, 1, (3,), np.float32)


# ---------------------------------------------------------------------- step loss identity
@pytest.mark.parametrize("name", sorted(DATASETS))
@pytest.mark.parametrize(
    ("regularization", "raw", "reference"),
    [
        ("base", 25.0, StationaryBaseStock(25.0)),
        ("none", 7.5, ConstantOrder(7.5)),
        ("none", 0.0, None),  # never orders
    ],
)
def test_env_step_losses_sum_to_the_simulated_trajectory_loss(
    name: str, regularization: str, raw: float, reference
) -> None:
    data = make_dataset(**DATASETS[name])
    rollout = InventorySimulator.from_dataset(data, device="cpu").rollout(reference)
    expected = rollout.trajectory_loss.numpy()
    # gymnasium view, exact float64 actions
    env = InventoryEnv(data, regularization, split=None)
    action = np.array([env.action_map.from_raw(raw)])
    from_steps, reported = env_losses_gym(env, action, data.n_trajectories)
    np.testing.assert_allclose(from_steps, expected, rtol=0, atol=1e-9)
    np.testing.assert_allclose(reported, expected, rtol=0, atol=1e-9)
    # VecEnv, float32 actions: raw values chosen to be exact in float32 (25 = 40 * 0.625)
    vec = InventoryVecEnv.for_evaluation(data, regularization, split=None)
    act = np.full((vec.num_envs, 1), np.float32(vec.action_map.from_raw(raw)))
    result = run_episodes(vec, lambda obs: act)
    # every trajectory once (in order of completion: episode lengths differ)
    assert sorted(result["trajectory"]) == list(range(data.n_trajectories))
    np.testing.assert_allclose(
        result["trajectory_loss"], expected[result["trajectory"]], rtol=0, atol=1e-6
    )


@pytest.mark.parametrize("name", ["backlog", "mixed_period_and_lead", "per_day_lead_lost_sales"])
@pytest.mark.parametrize("regularization", ["none", "base", "both"])
def test_state_dependent_actor_gives_the_same_loss_in_env_and_simulator(
    name: str, regularization: str
) -> None:
    """A random MLP as actor: ActorPolicy in the simulator == the env driven by the same actor.

    Random sampling with 4 slots desynchronizes the slots (different episode lengths), which
    exercises the per-slot-day path of the engine.
    """
    coeff = (0, 1) if regularization == "both" else ()
    data = make_dataset(**DATASETS[name], coeff_features=coeff)
    torch.manual_seed(0)
    vec = InventoryVecEnv(data, regularization, n_envs=4, split=None, seed=3)
    actor = torch.nn.Sequential(
        torch.nn.Linear(vec.observation_space.shape[0], 8),
        torch.nn.Tanh(),
        torch.nn.Linear(8, vec.action_map.size),
        torch.nn.Tanh(),
    )
    policy = ActorPolicy.for_env(actor, vec)
    expected = InventorySimulator.from_dataset(data, device="cpu").rollout(policy)
    expected = expected.trajectory_loss.numpy()

    def act(obs: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return actor(torch.as_tensor(obs)).numpy()

    result = run_episodes(vec, act, episodes_per_slot=5)
    assert len(result["trajectory"]) == 20
    np.testing.assert_allclose(
        result["trajectory_loss"], expected[result["trajectory"]], rtol=1e-5, atol=1e-5
    )


def test_reward_is_minus_the_mean_window_loss_and_windows_partition_counted_days() -> None:
    data = make_dataset()
    env = InventoryEnv(data, "base", split=None)
    obs, info = env.reset(options={"trajectory": 0})
    assert info["day"] == 2  # the first order day is P
    # observation = [features of day P, pipeline at day P] (no order before day P)
    sim = InventorySimulator.from_dataset(data, device="cpu")
    np.testing.assert_allclose(obs[:2], data.features[0, 2], rtol=1e-6)
    windows, done = [], False
    while not done:
        _, reward, done, _, step_info = env.step(np.array([0.5]))
        windows.append(step_info["window_days"])
    start, end = sim.step_windows()
    n_steps = int((start[0] < data.horizon).sum())
    assert len(windows) == n_steps
    assert sum(windows) == int(sim.counted[0].sum())
    with pytest.raises(RuntimeError, match="reset"):
        env.step(np.array([0.5]))


# ---------------------------------------------------------------------- VecEnv contract
def test_vec_env_contract_shapes_auto_reset_and_terminal_observation() -> None:
    data = make_dataset(review_period=[2, 3, 1, 4, 2, 3, 1, 2, 5])
    vec = InventoryVecEnv(data, "base", n_envs=5, split=None, seed=0)
    obs = vec.reset()
    assert obs.shape == (5, 4) and obs.dtype == np.float32
    assert len(vec.reset_infos) == 5
    finished = 0
    for _ in range(40):
        actions = np.random.default_rng(0).uniform(-1, 1, size=(5, 1)).astype(np.float32)
        obs, rewards, dones, infos = vec.step(actions)
        assert obs.shape == (5, 4) and obs.dtype == np.float32
        assert rewards.shape == (5,) and rewards.dtype == np.float32
        assert dones.shape == (5,) and dones.dtype == bool
        assert len(infos) == 5
        assert (rewards <= 0).all()
        for slot in np.flatnonzero(dones):
            finished += 1
            info = infos[slot]
            assert info["TimeLimit.truncated"] is False
            terminal = info["terminal_observation"]
            assert terminal.shape == (4,) and terminal.dtype == np.float32
            # the slot restarted: its observation is the first order day of a new episode
            assert vec.days[slot] == data.review_period[vec.trajectories[slot]]
            assert info["episode"]["l"] >= 1 and info["trajectory_loss"] >= 0
        for slot in np.flatnonzero(~dones):
            assert infos[slot] == {}
    assert finished > 10
    assert vec.get_attr("render_mode") == [None] * 5
    assert vec.get_attr("n_trajectories", indices=[0, 2]) == [9, 9]
    assert vec.get_attr("trajectories", indices=1) == [vec.trajectories[1]]
    assert vec.env_is_wrapped(gymnasium.Wrapper) == [False] * 5
    assert vec.env_method("_check_trajectory", 3, indices=[0, 1]) == [3, 3]
    vec.set_attr("sampling", "cycle")
    assert vec.get_attr("sampling", indices=0) == ["cycle"]
    with pytest.raises(ValueError, match="share one environment"):
        vec.set_attr("sampling", "random", indices=[0])
    vec.close()


def test_vec_env_seeding_is_reproducible() -> None:
    data = make_dataset(n=12)

    def trajectories(seed: int) -> list[int]:
        vec = InventoryVecEnv(data, "none", n_envs=3, split=None)
        assert vec.seed(seed) == [seed, seed + 1, seed + 2]
        vec.reset()
        seen = list(vec.trajectories)
        for _ in range(30):
            _, _, dones, infos = vec.step(np.zeros((3, 1), dtype=np.float32))
            seen += [int(t) for t in vec.trajectories[dones]]
        return seen

    assert trajectories(7) == trajectories(7)
    assert trajectories(7) != trajectories(8)


def test_evaluation_env_runs_every_trajectory_once_in_order() -> None:
    data = make_dataset(n=12)
    vec = InventoryVecEnv.for_evaluation(data, "base", split="test")
    assert vec.num_envs == data.split_sizes()["test"]
    vec.reset()
    np.testing.assert_array_equal(vec.trajectories, np.arange(vec.num_envs))
    result = run_episodes(vec, lambda obs: np.zeros((obs.shape[0], 1), np.float32))
    np.testing.assert_array_equal(result["trajectory"], np.arange(vec.num_envs))


def test_reset_option_picks_the_trajectory() -> None:
    data = make_dataset()
    vec = InventoryVecEnv(data, "none", n_envs=2, split=None)
    vec.set_options([{"trajectory": 4}, {}])
    vec.reset()
    assert vec.trajectories[0] == 4
    vec.set_options({"trajectory": 99})
    with pytest.raises(ValueError, match="trajectory"):
        vec.reset()


def test_step_before_reset_fails() -> None:
    vec = InventoryVecEnv(make_dataset(), "none", n_envs=2, split=None)
    with pytest.raises(RuntimeError, match="reset"):
        vec.step(np.zeros((2, 1), dtype=np.float32))


# ---------------------------------------------------------------------- actions and errors
def test_action_map_is_affine_onto_the_bounds() -> None:
    unit = ActionMap(0.0, 40.0, 1, "unit")
    actions = torch.tensor([[-1.0], [0.0], [1.0], [3.0]], dtype=torch.float64)
    np.testing.assert_allclose(unit.to_raw(actions).flatten(), [0.0, 20.0, 40.0, 40.0])
    assert unit.from_raw(10.0) == pytest.approx(-0.5)
    assert unit.from_fraction(0.25) == pytest.approx(-0.5)
    native = ActionMap(0.0, 40.0, 1, "native")
    np.testing.assert_allclose(native.to_raw(actions).flatten(), [0.0, 0.0, 1.0, 3.0])
    assert native.from_fraction(0.25) == pytest.approx(10.0)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(n_envs=0), "n_envs"),
        (dict(sampling="shuffle"), "sampling"),
        (dict(action_scaling="tanh"), "action_scaling"),
        (dict(split="holdout"), "split"),
    ],
)
def test_bad_arguments_fail_naming_the_parameter(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        InventoryVecEnv(make_dataset(), "none", **kwargs)


def test_coeff_without_features_fails() -> None:
    with pytest.raises(ValueError, match="coeff_features"):
        InventoryEnv(make_dataset(), "coeff")
