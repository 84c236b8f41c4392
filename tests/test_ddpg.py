"""Tests of DDPG (deepstock/methods/ddpg.py, the book's *Methods and tuning protocol* chapter): smoke runs, determinism, settings."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from rl_helpers import make_dataset

from deepstock.methods.ddpg import DDPGConfig, make_ddpg, train_ddpg, update_schedule
from deepstock.methods.envs import InventoryVecEnv
from deepstock.methods.train import config_from_mapping, default_config, evaluate_policy, train

#: A few hundred steps with small networks: the smoke-test settings.
FAST = {
    "total_steps": 300,
    "learning_starts": 50,
    "eval_freq": 100,
    "batch_size": 32,
    "net_arch": [16, 16],
    "record_steps": 200,
}


@pytest.mark.parametrize("regularization", ["none", "base", "coeff", "both"])
def test_each_regularization_trains_and_reports(regularization: str) -> None:
    coeff = (0, 1) if regularization in ("coeff", "both") else ()
    data = make_dataset(coeff_features=coeff)
    result = train_ddpg(data, regularization, DDPGConfig(**FAST), seed=0, device="cpu")
    assert result.method == "ddpg" and result.regularization == regularization
    assert result.curve_unit == "env_steps"
    assert [p.step for p in result.curve] == [100, 200, 300]
    for metrics in (result.train_metrics, result.val_metrics, result.test_metrics):
        assert math.isfinite(metrics["loss"]) and metrics["loss"] >= 0
    # the kept policy is the best validation one, and evaluating it again gives the same numbers
    assert result.val_loss == pytest.approx(min(p.val_loss for p in result.curve), abs=1e-12)
    again = evaluate_policy(result.policy, data.subset("val"))
    assert again["loss"] == pytest.approx(result.val_loss, abs=1e-12)
    # one gradient step per transition after learning_starts; Figure 3 records
    extras = result.extras
    assert extras["env_steps"] == 300 and extras["gradient_steps"] == 300 - 50
    assert extras["critic_loss"].shape == (200 - 50,)
    assert np.all(np.isfinite(extras["critic_loss"])) and np.all(extras["critic_loss"] >= 0)
    np.testing.assert_array_equal(extras["critic_loss_step"], np.arange(51, 201))
    obs_dim = 2 + 2  # two features, pipeline of L + 1 = 2
    assert extras["buffer_states"].shape == (200, obs_dim)
    assert extras["state_names"] == ["f0", "f1", "pipeline_0", "pipeline_1"]
    assert result.config["net_arch"] == {"pi": [16, 16], "qf": [16, 16]}


def test_same_seed_gives_identical_runs_and_another_seed_differs() -> None:
    data = make_dataset()
    settings = DDPGConfig(**FAST)
    first = train_ddpg(data, "base", settings, seed=3, device="cpu")
    second = train_ddpg(data, "base", settings, seed=3, device="cpu")
    assert first.curve == second.curve
    assert first.val_metrics == second.val_metrics and first.test_metrics == second.test_metrics
    np.testing.assert_array_equal(first.extras["critic_loss"], second.extras["critic_loss"])
    np.testing.assert_array_equal(first.extras["buffer_states"], second.extras["buffer_states"])
    other = train_ddpg(data, "base", settings, seed=4, device="cpu")
    assert not np.array_equal(first.extras["buffer_states"], other.extras["buffer_states"])


def test_parallel_envs_keep_one_update_per_transition() -> None:
    data = make_dataset()
    settings = DDPGConfig(**{**FAST, "n_envs": 4, "record_steps": 0})
    result = train_ddpg(data, "none", settings, seed=0, device="cpu")
    # transitions come 4 at a time; training starts after learning_starts transitions
    assert result.extras["env_steps"] == 300
    # first training at 52 > 50 transitions, then 4 updates per 4 transitions up to 300
    assert result.extras["gradient_steps"] == 300 - 48
    assert "critic_loss" not in result.extras
    assert update_schedule(14, 1) == (14, 1)
    assert update_schedule(14, 7) == (2, 1)
    assert update_schedule(1, 4) == (1, 4)
    assert update_schedule(2, 8) == (1, 4)


def test_initial_action_bias_shifts_actor_and_target() -> None:
    env = InventoryVecEnv(make_dataset(), "base", n_envs=1)
    torch.manual_seed(0)
    plain = make_ddpg(env, DDPGConfig(initial_action_bias=0.5), seed=0, device=torch.device("cpu"))
    shifted = make_ddpg(env, DDPGConfig(initial_action_bias=0.8), seed=0, device="cpu")
    bias_plain = plain.actor.mu[-2].bias.detach()
    bias_shifted = shifted.actor.mu[-2].bias.detach()
    np.testing.assert_allclose(bias_shifted - bias_plain, math.atanh(0.6), rtol=1e-6)
    for name, value in shifted.actor.state_dict().items():
        assert torch.equal(value, shifted.actor_target.state_dict()[name])
    # with the output weights zeroed the deterministic action is exactly the fraction
    with torch.no_grad():
        shifted.actor.mu[-2].weight.zero_()
        shifted.actor.mu[-2].bias.fill_(math.atanh(0.6))
        raw = env.action_map.to_raw(shifted.actor(torch.zeros(1, 4)).double())
    assert float(raw) == pytest.approx(0.8 * 40.0, rel=1e-6)


def test_tuned_configs_load_and_train_dispatches() -> None:
    for regularization, rate in (("none", 0.0028095326860480495), ("base", 0.003951175502941127)):
        values = default_config("ddpg", regularization)
        settings = config_from_mapping("ddpg", values)
        assert settings.learning_rate == rate and settings.action_noise == "none"
        assert settings.total_steps == 200000 and settings.eval_freq == 1024
    result = train("ddpg", "base", make_dataset(), {**FAST, "record_steps": 0}, device="cpu")
    assert result.config["tau"] == pytest.approx(0.001026514664075085)
    assert result.config["total_steps"] == 300


@pytest.mark.parametrize(
    ("values", "key"),
    [
        ({"learning_rate": -1e-3}, "learning_rate"),
        ({"lr_min": 0.5}, "lr_min"),
        ({"batch_size": 0}, "batch_size"),
        ({"batch_size": 12.5}, "batch_size"),
        ({"tau": 0.0}, "tau"),
        ({"gamma": 1.5}, "gamma"),
        ({"net_arch": {"pi": [64], "vf": [64]}}, "net_arch"),
        ({"net_arch": [0, 4]}, "net_arch"),
        ({"train_freq": 0}, "train_freq"),
        ({"initial_action_bias": 1.2}, "initial_action_bias"),
        ({"action_noise": "gauss"}, "action_noise"),
        ({"action_noise": "normal:-1"}, "action_noise"),
        ({"n_envs": 3, "train_freq": 2}, "n_envs"),
        ({"record_steps": -1}, "record_steps"),
        ({"total_step": 10}, "total_step"),
    ],
)
def test_bad_settings_fail_before_training_naming_the_key(values: dict, key: str) -> None:
    with pytest.raises(ValueError, match=key):
        train("ddpg", "none", make_dataset(), values, device="cpu")
