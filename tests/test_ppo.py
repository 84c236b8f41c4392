"""Tests of PPO (deepstock/methods/ppo.py, the book's *Methods and tuning protocol* chapter): smoke runs, determinism, settings."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from rl_helpers import make_dataset

from deepstock.methods.envs import ActorPolicy, InventoryVecEnv
from deepstock.methods.ppo import PPOConfig, make_ppo, train_ppo
from deepstock.methods.sb3_common import deterministic_actor
from deepstock.methods.train import config_from_mapping, default_config, evaluate_policy, train
from deepstock.model.simulator import InventorySimulator

#: Two rollouts of 128 transitions with small networks: the smoke-test settings.
FAST = {
    "total_steps": 256,
    "n_steps": 128,
    "batch_size": 32,
    "n_epochs": 2,
    "eval_freq": 64,
    "net_arch": [16, 16],
}


@pytest.mark.parametrize("regularization", ["none", "base", "coeff", "both"])
@pytest.mark.parametrize("action_scaling", ["native", "unit"])
def test_each_regularization_trains_and_reports(regularization: str, action_scaling: str) -> None:
    coeff = (0, 1) if regularization in ("coeff", "both") else ()
    data = make_dataset(coeff_features=coeff)
    settings = PPOConfig(**FAST, action_scaling=action_scaling)
    result = train_ppo(data, regularization, settings, seed=0, device="cpu")
    assert result.method == "ppo" and result.regularization == regularization
    assert result.curve_unit == "env_steps"
    assert [p.step for p in result.curve] == [64, 128, 192, 256]
    for metrics in (result.train_metrics, result.val_metrics, result.test_metrics):
        assert math.isfinite(metrics["loss"]) and metrics["loss"] >= 0
    assert result.val_loss == pytest.approx(min(p.val_loss for p in result.curve), abs=1e-12)
    again = evaluate_policy(result.policy, data.subset("val"))
    assert again["loss"] == pytest.approx(result.val_loss, abs=1e-12)
    assert result.extras["env_steps"] == 256
    assert result.config["net_arch"] == {"pi": [16, 16], "vf": [16, 16]}


def test_same_seed_gives_identical_runs_and_another_seed_differs() -> None:
    data = make_dataset()
    settings = PPOConfig(**FAST)
    first = train_ppo(data, "none", settings, seed=5, device="cpu")
    second = train_ppo(data, "none", settings, seed=5, device="cpu")
    assert first.curve == second.curve
    assert first.val_metrics == second.val_metrics and first.test_metrics == second.test_metrics
    other = train_ppo(data, "none", settings, seed=6, device="cpu")
    assert first.curve != other.curve


def test_parallel_envs_split_the_rollout() -> None:
    data = make_dataset()
    result = train_ppo(data, "base", PPOConfig(**FAST, n_envs=4), seed=0, device="cpu")
    assert result.extras["env_steps"] == 256  # two rollouts of 4 x 32 transitions
    assert [p.step for p in result.curve] == [64, 128, 192, 256]


@pytest.mark.parametrize("action_scaling", ["native", "unit"])
def test_initial_action_bias_sets_the_gaussian_mean(action_scaling: str) -> None:
    data = make_dataset()
    env = InventoryVecEnv(data, "none", n_envs=1, action_scaling=action_scaling)
    model = make_ppo(
        env,
        PPOConfig(initial_action_bias=0.25, action_scaling=action_scaling),
        seed=0,
        device=torch.device("cpu"),
    )
    expected = env.action_map.from_fraction(0.25)
    np.testing.assert_allclose(model.policy.action_net.bias.detach().numpy(), expected)
    # the untrained deterministic order is about a quarter of max_replenish (40) on real states:
    # the action_net's weights start tiny (orthogonal, gain 0.01)
    policy = ActorPolicy.for_env(deterministic_actor(model), env)
    orders = InventorySimulator.from_dataset(data, device="cpu").rollout(policy).orders
    placed = orders[:, 2::2]  # order days t = 2, 4, ...
    tolerance = 0.5 if action_scaling == "native" else 10.0
    assert float((placed - 10.0).abs().max()) < tolerance


def test_tuned_configs_load_and_train_dispatches() -> None:
    for regularization, rate in (("none", 0.0008779614463161283), ("base", 0.004249335545960943)):
        settings = config_from_mapping("ppo", default_config("ppo", regularization))
        assert settings.learning_rate == rate and settings.vf_coef == 0.4
        assert settings.max_grad_norm == 0.5 and settings.eval_freq == 2048
    result = train("ppo", "base", make_dataset(), FAST, device="cpu")
    assert result.config["gae_lambda"] == pytest.approx(0.6940401326767468)
    assert result.config["n_steps"] == 128


@pytest.mark.parametrize(
    ("values", "key"),
    [
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"lr_min": 1.0}, "lr_min"),
        ({"clip_range": 1.0}, "clip_range"),
        ({"n_steps": 1}, "n_steps"),
        ({"n_epochs": 0}, "n_epochs"),
        ({"ent_coef": -0.1}, "ent_coef"),
        ({"gae_lambda": 1.1}, "gae_lambda"),
        ({"max_grad_norm": 0}, "max_grad_norm"),
        ({"target_kl": -1.0}, "target_kl"),
        ({"net_arch": {"pi": [64], "qf": [64]}}, "net_arch"),
        ({"action_scaling": "tanh"}, "action_scaling"),
        ({"n_envs": 3}, "n_envs"),
        ({"eval_freq": 0}, "eval_freq"),
        ({"clip": 0.2}, "clip"),
    ],
)
def test_bad_settings_fail_before_training_naming_the_key(values: dict, key: str) -> None:
    with pytest.raises(ValueError, match=key):
        train("ppo", "none", make_dataset(), values, device="cpu")
