"""Throughput of the batched simulator in its fast (no-grad) and differentiable modes.

Usage: ``python perf/bench_simulator.py [--batches 1 100 10000] [--horizon 31] [--json]``

Reports trajectory-days per second (batch x T per rollout / wall time) with a stationary
base-stock policy on setting-1-like demand (P = 2, L = 1). The same figures, with the DP's time,
come from ``deepstock bench --json``.
"""

from __future__ import annotations

import argparse
import json

from deepstock.tools.perf import simulator_throughput


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 100, 10_000])
    parser.add_argument("--horizon", type=int, default=31)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--min-seconds", type=float, default=1.0)
    parser.add_argument("--json", action="store_true", help="print JSON only")
    args = parser.parse_args()
    rows = [
        simulator_throughput(
            batch,
            horizon=args.horizon,
            differentiable=differentiable,
            device=args.device,
            min_seconds=args.min_seconds,
        )
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
