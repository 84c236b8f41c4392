"""Throughput of the batched simulator in its fast (no-grad) mode and its differentiable mode.

Usage: ``python benchmarks/bench_simulator.py [--batches 1 100 10000] [--horizon 31] [--json]``

Reports trajectory-days per second (batch x T per rollout / wall time) with a stationary
base-stock policy on setting-1-like demand (P = 2, L = 1), on one or all available cores.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from deepstock.policies import StationaryBaseStock
from deepstock.simulator import InventorySimulator


def measure(batch: int, horizon: int, differentiable: bool, device: str, min_seconds: float) -> dict:
    rng = np.random.default_rng(0)
    demand = rng.integers(6, 15, size=(batch, horizon)).astype(np.float64)
    features = np.broadcast_to((np.arange(horizon) // 2)[None, :, None], (batch, horizon, 1))
    sim = InventorySimulator(demand, 2, 1, features=features, device=device)
    level = torch.tensor(25.0, dtype=torch.float64, requires_grad=differentiable)

    def policy(observation):
        return level - observation.inventory_position

    policy_fn = policy if differentiable else StationaryBaseStock(25.0)
    sim.rollout(policy_fn, differentiable=differentiable)  # warm-up
    rollouts, start = 0, time.perf_counter()
    while True:
        rollout = sim.rollout(policy_fn, differentiable=differentiable)
        if differentiable:
            rollout.loss.backward()
        rollouts += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds and rollouts >= 3:
            break
    return {
        "batch": batch,
        "horizon": horizon,
        "mode": "differentiable+backward" if differentiable else "no_grad",
        "device": device,
        "torch_threads": torch.get_num_threads(),
        "seconds_per_rollout": elapsed / rollouts,
        "trajectory_days_per_s": batch * horizon * rollouts / elapsed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 100, 10_000])
    parser.add_argument("--horizon", type=int, default=31)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--min-seconds", type=float, default=1.0)
    parser.add_argument("--json", action="store_true", help="print JSON only")
    args = parser.parse_args()
    rows = [
        measure(batch, args.horizon, differentiable, args.device, args.min_seconds)
        for differentiable in (False, True)
        for batch in args.batches
    ]
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    for row in rows:
        print(
            f"{row['mode']:>24}  batch {row['batch']:>6}  "
            f"{row['trajectory_days_per_s']:>14,.0f} trajectory-days/s  "
            f"({1e3 * row['seconds_per_rollout']:.2f} ms per rollout)"
        )


if __name__ == "__main__":
    main()
