"""The regularization mappings, network inputs and heuristic policies (the book's *Policy regularizations* chapter)."""

import numpy as np
import pytest
import torch
from torch import nn

from deepstock.model.heuristics import StationaryBaseStock
from deepstock.model.regularizations import (
    REGULARIZATIONS,
    NetworkPolicy,
    Regularization,
    get_regularization,
    network_input,
    register_regularization,
)
from deepstock.model.simulator import InventorySimulator


def observation(pipeline, features=None, feature_min=None, feature_max=None):
    pipeline = torch.as_tensor(pipeline, dtype=torch.float64)
    batch = pipeline.shape[0]
    features = (
        torch.zeros(batch, 0)
        if features is None
        else torch.as_tensor(features, dtype=torch.float64)
    )
    sim_features = features[:, None, :].expand(batch, 4, features.shape[1])
    sim = InventorySimulator(
        torch.zeros(batch, 4),
        1,
        pipeline.shape[1] - 1 if pipeline.shape[1] > 1 else 0,
        features=sim_features,
        device="cpu",
    )
    obs = sim.observe(1, pipeline)
    if feature_min is not None:
        obs = type(obs)(
            **{
                **obs.__dict__,
                "feature_min": torch.as_tensor(feature_min, dtype=torch.float64),
                "feature_max": torch.as_tensor(feature_max, dtype=torch.float64),
            }
        )
    return obs


def test_none_and_base_mappings():
    obs = observation([[10.0, 5.0], [-20.0, 0.0], [50.0, 80.0]])
    raw = torch.tensor([[30.0], [150.0], [-4.0]], dtype=torch.float64)
    none = get_regularization("none").order(raw, obs, torch.zeros(3, 0), 100.0)
    assert none.tolist() == [30.0, 100.0, 0.0]
    base = get_regularization("Base").order(raw, obs, torch.zeros(3, 0), 100.0)
    # targets 30, 150, -4 minus positions 15, -20, 130
    assert base.tolist() == [15.0, 100.0, 0.0]


def test_coeff_and_both_mappings():
    obs = observation([[10.0, 0.0], [0.0, 0.0]])
    g = torch.tensor([[1.0, 2.0], [3.0, 0.5]], dtype=torch.float64)
    raw = torch.tensor([[0.5, 2.0, 1.0], [-1.0, 0.25, 0.0]], dtype=torch.float64)
    coeff = get_regularization("coeff").order(raw, obs, g, 1000.0)
    # row 0: 28 * (0.5 * 1 + 1.0 * 2) + 1 = 71; row 1: 28 * (0 * 3 + 0.25 * 0.5) + 0 = 3.5
    assert coeff.tolist() == pytest.approx([71.0, 3.5])
    both = get_regularization("both").order(raw, obs, g, 1000.0)
    assert both.tolist() == pytest.approx([61.0, 3.5])
    assert get_regularization("coeff").output_size(4) == 5
    with pytest.raises(ValueError, match="coeff_features"):
        get_regularization("both").output_size(0)


def test_network_input_raw_and_normalized():
    obs = observation(
        [[10.0, 5.0]], features=[[3.0, 20.0]], feature_min=[[1.0, 10.0]], feature_max=[[5.0, 30.0]]
    )
    assert network_input(obs, False, 100.0).tolist() == [[3.0, 20.0, 10.0, 5.0]]
    normalized = network_input(obs, True, 100.0)
    assert normalized.numpy() == pytest.approx(np.array([[0.5, 0.5, 0.1, 0.05]]), rel=1e-6)


def test_coeff_orders_scale_with_the_skus_magnitude():
    """The same normalized state at 10x the demand gives 10x the order (Coeff and Both)."""
    torch.manual_seed(0)
    network = nn.Sequential(nn.Linear(2 + 2, 8), nn.ELU(), nn.Linear(8, 3), nn.Sigmoid())
    small = observation(
        [[0.0, 0.0]], features=[[2.0, 3.0]], feature_min=[[1.0, 1.0]], feature_max=[[4.0, 5.0]]
    )
    large = observation(
        [[0.0, 0.0]],
        features=[[20.0, 30.0]],
        feature_min=[[10.0, 10.0]],
        feature_max=[[40.0, 50.0]],
    )
    for name in ("coeff", "both"):
        policy = NetworkPolicy(network, name, max_replenish=1e9, coeff_features=(0, 1))
        raw = policy.raw_output(small)
        assert torch.allclose(raw, policy.raw_output(large))  # same normalized input
        bias = float(raw[0, -1].detach())
        q_small, q_large = policy(small).item(), policy(large).item()
        assert q_small > 0
        assert q_large - bias == pytest.approx(10 * (q_small - bias), rel=1e-6)
        assert q_large / q_small == pytest.approx(10, rel=0.1)  # the bias is small


def test_network_policy_runs_through_the_simulator_and_needs_features():
    torch.manual_seed(0)
    demand = np.full((2, 9), 5.0)
    features = np.stack([np.tile(np.arange(9.0), (2, 1))], axis=2)
    sim = InventorySimulator(demand, 2, 1, features=features, device="cpu")
    network = nn.Sequential(nn.Linear(1 + 2, 4), nn.ReLU(), nn.Linear(4, 1))
    policy = NetworkPolicy(network, "base", max_replenish=100.0)
    rollout = sim.rollout(policy, differentiable=True)
    rollout.loss.backward()
    assert network[0].weight.grad is not None
    with pytest.raises(ValueError, match="coeff_features"):
        NetworkPolicy(network, "coeff", max_replenish=100.0)


def test_registry_accepts_new_regularizations():
    class Capped(Regularization):
        name = "capped_base_test"

        def output_size(self, n_coeff_features):
            return 1

        def order(self, raw, observation, coeff_values, max_replenish):
            target = raw[:, 0].clamp(max=50.0)
            return (target - observation.inventory_position).clamp(0.0, max_replenish)

    register_regularization(Capped())
    try:
        assert get_regularization("capped_base_test").name == "capped_base_test"
        with pytest.raises(ValueError, match="already registered"):
            register_regularization(Capped())
    finally:
        REGULARIZATIONS.pop("capped_base_test")
    with pytest.raises(ValueError, match="unknown regularization"):
        get_regularization("nope")


def test_stationary_base_stock_per_trajectory_levels():
    demand = np.full((2, 7), 3.0)
    sim = InventorySimulator(demand, 2, 0, device="cpu")
    rollout = sim.rollout(StationaryBaseStock([10.0, 20.0]))
    assert rollout.orders[:, 2].tolist() == [16.0, 26.0]
    with pytest.raises(ValueError, match="levels"):
        StationaryBaseStock(np.zeros((2, 2)))
