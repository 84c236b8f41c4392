"""Training on Tmall's objective J (the book's *The inventory model* and *A Tmall-like proxy* chapters): the dataset's ``objective``, the
exact J as the loss, its per-day approximation (RL rewards), its smooth approximation (DS), and
the per-SKU scaling of the Coeff and Both regularizations on the proxy."""

import dataclasses

import numpy as np
import pytest
import torch
from rl_helpers import make_dataset

from deepstock.datasets.io import load_dataset, save_dataset
from deepstock.datasets.proxy import COEFF_FEATURE_NAMES, PROXY_FEATURES, generate_proxy
from deepstock.methods.envs import InventoryVecEnv, run_episodes
from deepstock.methods.train import train
from deepstock.model.heuristics import StationaryBaseStock
from deepstock.model.regularizations import NetworkPolicy, network_input
from deepstock.model.simulator import InventorySimulator
from deepstock.results.store import dataset_fingerprint

# The hand-computed lost-sales case of tests/test_proxy.py: P = 2, L = 1, order up to 8.
# Counted days 3-9 end with y = 3 2 1 0 7 3 1 (one stockout), sales 5 1 6 1 0 4 3 (sum 20),
# demand 5 1 6 2 0 4 3 (mean 3).
HAND_DEMAND = np.array([[3, 4, 2, 5, 1, 6, 2, 0, 4, 3]], float)


def hand_simulator(**kwargs):
    return InventorySimulator(
        HAND_DEMAND, 2, 1, lost_sales=True, max_replenish=100.0, device="cpu", **kwargs
    )


def test_tmall_objective_makes_the_loss_j_hand_computed():
    rollout = hand_simulator(objective="tmall").rollout(StationaryBaseStock(8.0))
    exact_j = 100 / 7 + (17 / 20) / 2
    assert float(rollout.loss) == pytest.approx(exact_j, rel=1e-6)  # TT: sales + 1e-6
    assert float(rollout.objective[0]) == float(rollout.loss)
    # per day: 100 * 1{y <= 0} + (y / 3) / 2, mean over the 7 counted days
    per_day = (100 + (17 / 3) / 2) / 7
    assert float(rollout.daily_loss[0].sum() / 7) == pytest.approx(per_day, rel=1e-9)
    # the cost objective is unchanged
    cost = hand_simulator().rollout(StationaryBaseStock(8.0))
    assert float(cost.loss) == pytest.approx((0.1 * 17 + 0.9 * 1) / 7)
    assert float(cost.training_loss) == float(cost.loss)


def test_smooth_j_tends_to_the_exact_j_and_has_a_gradient():
    level = torch.tensor(8.0, dtype=torch.float64, requires_grad=True)

    def policy(observation):
        return (level - observation.inventory_position).clamp(min=0.0)

    sim = hand_simulator(objective="tmall", stockout_smoothing=1e-3)
    rollout = sim.rollout(policy, differentiable=True)
    # net stock is never 0 on a counted day here, so the sigmoid is ~0 or ~1
    assert float(rollout.training_loss.detach()) == pytest.approx(
        float(rollout.loss.detach()), rel=1e-6
    )
    wide = hand_simulator(objective="tmall", stockout_smoothing=1.0).rollout(
        policy, differentiable=True
    )
    wide.training_loss.backward()
    assert level.grad is not None and float(level.grad) != 0.0
    with pytest.raises(ValueError, match="objective"):
        hand_simulator(objective="profit")
    with pytest.raises(ValueError, match="stockout_smoothing"):
        hand_simulator(objective="tmall", stockout_smoothing=0.0)


def test_env_rewards_are_the_per_day_approximation_of_j():
    data = dataclasses.replace(make_dataset(lost_sales=True), objective="tmall")
    sim = InventorySimulator.from_dataset(data, device="cpu")
    rollout = sim.rollout(StationaryBaseStock(25.0))
    expected = (rollout.daily_loss.sum(dim=1) / rollout.counted_days).numpy()
    # the per-day approximation, not the exact J, is what the returns add up
    assert not np.allclose(expected, rollout.trajectory_loss.numpy())
    vec = InventoryVecEnv.for_evaluation(data, "base", split=None)
    act = np.full((vec.num_envs, 1), np.float32(vec.action_map.from_raw(25.0)))
    result = run_episodes(vec, lambda obs: act)
    np.testing.assert_allclose(
        result["trajectory_loss"], expected[result["trajectory"]], rtol=0, atol=1e-6
    )


def test_objective_is_saved_validated_and_fingerprinted(tmp_path):
    proxy = generate_proxy(seed=2, train_size=4, val_size=3, test_size=4, horizon=30)
    assert proxy.objective == "tmall"
    loaded = load_dataset(save_dataset(proxy, tmp_path / "proxy"))
    assert loaded.objective == "tmall"
    cost = dataclasses.replace(proxy, objective="cost")
    assert dataset_fingerprint(cost) != dataset_fingerprint(proxy)
    save_dataset(cost, tmp_path / "cost")
    assert "objective" not in (tmp_path / "cost" / "meta.json").read_text()
    assert load_dataset(tmp_path / "cost").objective == "cost"
    with pytest.raises(ValueError, match="objective must be one of"):
        dataclasses.replace(proxy, objective="J")


def test_training_on_the_proxy_reports_j_as_the_loss():
    proxy = generate_proxy(seed=3, train_size=8, val_size=4, test_size=6, horizon=40)
    result = train(
        "ds",
        "both",
        proxy,
        {"epochs": 2, "batch_size": 4, "initial_action_bias": 0.1},
        use_defaults=False,
        device="cpu",
    )
    for metrics in (result.val_metrics, result.test_metrics):
        assert metrics["loss"] == pytest.approx(metrics["objective"], rel=1e-12)
        assert metrics["objective"] == pytest.approx(
            100 * metrics["stockout_rate"] + metrics["turnover_time"] / 2, rel=1e-9
        )


# ------------------------------------------------------------------ scale of Coeff and Both
def scaled_proxy(proxy, factor):
    """The proxy with every SKU's demand, demand features and order cap multiplied by factor."""
    features = proxy.features.copy()
    for name in COEFF_FEATURE_NAMES + ("std_28d",):
        features[:, :, PROXY_FEATURES.index(name)] *= factor
    return dataclasses.replace(
        proxy,
        demand=proxy.demand * factor,
        features=features,
        max_replenish=proxy.max_replenish * factor,
    )


class _NoBias(torch.nn.Module):
    """A random network whose last output (Coeff's additive bias, in units) is zeroed."""

    def __init__(self, n_inputs, n_outputs):
        super().__init__()
        self.layer = torch.nn.Linear(n_inputs, n_outputs)
        self.register_buffer("mask", torch.ones(n_outputs))
        self.mask[-1] = 0.0

    def forward(self, x):
        return torch.sigmoid(self.layer(x)) * self.mask


@pytest.mark.parametrize("regularization", ["coeff", "both"])
def test_coeff_and_both_orders_scale_with_the_skus_magnitude(regularization):
    proxy = generate_proxy(seed=4, train_size=6, val_size=4, test_size=6).subset("test")
    big = scaled_proxy(proxy, 10.0)
    sim, sim_big = (InventorySimulator.from_dataset(d, device="cpu") for d in (proxy, big))
    torch.manual_seed(0)
    n_inputs = proxy.features.shape[2] + proxy.max_lead_time + 1
    network = _NoBias(n_inputs, 5).double()
    policy = NetworkPolicy(network, regularization, proxy.max_replenish, proxy.coeff_features)
    policy_big = NetworkPolicy(network, regularization, big.max_replenish, big.coeff_features)
    # the same normalized state at 10x the demand: the same network input, 10x the order
    pipeline = torch.rand(proxy.n_trajectories, sim.pipeline_width, dtype=torch.float64) * 50
    obs = sim.observe(14, pipeline)
    obs_big = sim_big.observe(14, pipeline * 10)
    coeff = proxy.coeff_features
    inputs = network_input(obs, True, proxy.max_replenish, coeff_features=coeff)
    inputs_big = network_input(obs_big, True, big.max_replenish, coeff_features=coeff)
    torch.testing.assert_close(inputs, inputs_big)
    torch.testing.assert_close(policy_big(obs_big), 10 * policy(obs))
    # and over whole trajectories
    with torch.no_grad():
        orders = sim.rollout(policy).orders
        orders_big = sim_big.rollout(policy_big).orders
    assert float(orders.sum()) > 0
    torch.testing.assert_close(orders_big, 10 * orders)


def test_static_features_are_normalized_across_skus():
    proxy = generate_proxy(seed=5, train_size=10, val_size=4, test_size=6).subset("train")
    sim = InventorySimulator.from_dataset(proxy, device="cpu")
    obs = sim.observe(10, sim.initial_pipeline())
    inputs = network_input(obs, True, proxy.max_replenish, coeff_features=proxy.coeff_features)
    lead = inputs[:, PROXY_FEATURES.index("lead_time_days")]
    expected = (proxy.lead_time[:, 0] - proxy.lead_time.min()) / np.ptp(proxy.lead_time)
    np.testing.assert_allclose(lead.numpy(), expected, atol=1e-6)
    assert set(np.round(lead.numpy(), 6)) == {0.0, 1.0}
