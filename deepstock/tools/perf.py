"""Performance figures of the foundation: simulator throughput and the setting-1 DP's time.

Used by ``deepstock bench`` and ``perf/bench_simulator.py``. These are measurements to
report, not pass/fail tests: numbers depend on the machine and on what else runs on it.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from deepstock.datasets.catalog import load_setting
from deepstock.model.heuristics import StationaryBaseStock
from deepstock.model.optimal import dp_base_stock_solution
from deepstock.model.simulator import InventorySimulator

__all__ = ["dp_timing", "simulator_throughput"]


def simulator_throughput(
    batch: int,
    *,
    horizon: int = 31,
    differentiable: bool = False,
    device: str = "cpu",
    min_seconds: float = 1.0,
) -> dict[str, Any]:
    """Trajectory-days per second of whole-horizon rollouts (setting-1-like, P = 2, L = 1).

    ``differentiable=False`` is the fast evaluation mode (no graph); ``True`` keeps the graph
    and includes the backward pass, as DS training does.
    """
    rng = np.random.default_rng(0)
    demand = rng.integers(6, 15, size=(batch, horizon)).astype(np.float64)
    features = np.broadcast_to((np.arange(horizon) // 2)[None, :, None], (batch, horizon, 1))
    sim = InventorySimulator(demand, 2, 1, features=features, device=device)
    level = torch.tensor(25.0, dtype=torch.float64, requires_grad=differentiable)

    def differentiable_policy(observation):
        return level - observation.inventory_position

    policy = differentiable_policy if differentiable else StationaryBaseStock(25.0)
    sim.rollout(policy, differentiable=differentiable)  # warm-up
    if sim.device.type == "cuda":
        torch.cuda.synchronize()
    rollouts, start = 0, time.perf_counter()
    while True:
        rollout = sim.rollout(policy, differentiable=differentiable)
        if differentiable:
            rollout.loss.backward()
        if sim.device.type == "cuda":
            torch.cuda.synchronize()
        rollouts += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds and rollouts >= 3:
            break
    return {
        "batch": batch,
        "horizon": horizon,
        "mode": "differentiable+backward" if differentiable else "no_grad",
        "device": str(sim.device),
        "torch_threads": torch.get_num_threads(),
        "seconds_per_rollout": elapsed / rollouts,
        "trajectory_days_per_s": batch * horizon * rollouts / elapsed,
    }


def dp_timing(repeats: int = 20) -> dict[str, Any]:
    """Wall time of the exact setting-1 DP (authors' stream; true and empirical distributions)."""

    dataset = load_setting("setting1")
    timings = {}
    for variant in ("true", "empirical"):
        dp_base_stock_solution(dataset, variant)  # warm-up
        start = time.perf_counter()
        for _ in range(repeats):
            dp_base_stock_solution(dataset, variant)
        timings[f"dp_{variant}_seconds"] = (time.perf_counter() - start) / repeats
    return timings
