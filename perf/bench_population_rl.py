"""DDPG and PPO populations against one SB3 agent: whole agent-steps per second on setting 1.

Usage: ``python perf/bench_population_rl.py [--methods ddpg ppo] [--members 1 5 10 25 50]
[--regularization base] [--ddpg-steps 3072] [--ppo-steps 4096] [--device cpu] [--threads 1]
[--out FILE]``

For each method: one SB3 agent (``engine="sb3"``) and one population per size in ``--members``,
all at the authors' tuned setting-1 configuration with the given number of env steps per agent
and early stopping off (:mod:`deepstock.methods.population.throughput`). Prints one JSON line
per measurement and, at the end, a summary per method: SB3's steps/s, the population's
agent-steps/s per size and ``speedup`` (the best population figure over SB3's), and
``speedup_bound_at_sb3_update_speed``: how fast SB3 would run if its gradient updates were all
it did (``1 / update_share``), the most any engine computing the same updates with the same
kernels can gain by removing per-step overhead.

With ``--out FILE`` every measurement is appended to FILE (JSON lines) as soon as it is taken,
and measurements already in FILE (same method, engine, members, steps, device) are not taken
again: a killed run resumes where it stopped.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import torch

from deepstock.methods.population.throughput import population_cpu_throughput, sb3_throughput


def _key(row: dict[str, Any]) -> tuple[Any, ...]:
    return (row["method"], row["engine"], row["members"], row["total_steps"], row["device"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="+", default=["ddpg", "ppo"])
    parser.add_argument("--members", nargs="+", type=int, default=[1, 5, 10, 25, 50])
    parser.add_argument("--regularization", default="base")
    parser.add_argument("--ddpg-steps", type=int, default=3072)
    parser.add_argument("--ppo-steps", type=int, default=4096)
    parser.add_argument("--device", default="cpu", help="'cpu', 'cuda' or 'auto'")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--out", type=Path, default=None, help="JSON lines file (resumable)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    done: dict[tuple[Any, ...], dict[str, Any]] = {}
    if args.out is not None and args.out.exists():
        for line in args.out.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                done[_key(row)] = row
    device = str(
        torch.device(
            "cuda"
            if args.device == "auto" and torch.cuda.is_available()
            else ("cpu" if args.device == "auto" else args.device)
        )
    )
    rows: list[dict[str, Any]] = []
    for method in args.methods:
        steps = args.ddpg_steps if method == "ddpg" else args.ppo_steps
        plan = [("sb3", 1)] + [("population", k) for k in args.members]
        for engine, members in plan:
            key = (method, engine, members, steps, device)
            if key in done:
                row = done[key]
            else:
                common = {"regularization": args.regularization, "total_steps": steps}
                if engine == "sb3":
                    row = sb3_throughput(method, device=args.device, **common)
                else:
                    row = population_cpu_throughput(method, members, device=args.device, **common)
                row["threads"] = args.threads
                if args.out is not None:
                    with args.out.open("a", encoding="utf-8") as handle:
                        handle.write(json.dumps(row) + "\n")
            rows.append(row)
            print(json.dumps(row), flush=True)
    summary = {}
    for method in args.methods:
        sb3 = [r for r in rows if r["method"] == method and r["engine"] == "sb3"]
        population = [r for r in rows if r["method"] == method and r["engine"] == "population"]
        if not sb3 or not population:
            continue
        summary[method] = {}
        for figure in ("agent_steps_per_s", "agent_steps_per_cpu_s"):
            best = max(r[figure] for r in population)
            summary[method][figure] = {
                "sb3": sb3[0][figure],
                "population": {str(r["members"]): r[figure] for r in population},
                "speedup": best / sb3[0][figure],
            }
        if "update_bound_agent_steps_per_s" in sb3[0]:
            # Amdahl: SB3 without any per-step overhead, its updates unchanged
            summary[method]["sb3_update_share"] = sb3[0]["update_share"]
            summary[method]["speedup_bound_at_sb3_update_speed"] = (
                sb3[0]["update_bound_agent_steps_per_s"] / sb3[0]["agent_steps_per_s"]
            )
    print(json.dumps({"summary": summary}, indent=2))


if __name__ == "__main__":
    main()
