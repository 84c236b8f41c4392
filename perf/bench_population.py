"""The population engine's throughput against the single-run path, and one whole stage 1.

Usage: ``python perf/bench_population.py [--members 1 5 10 25 50] [--methods ds]
[--length 20] [--stage1] [--batch-trials 10] [--device cpu] [--output FILE]``

Prints (and with ``--output`` writes) JSON: per method, the single run's throughput (DS epochs
per second of ``train_ds``; SB3 environment steps per second for DDPG/PPO once their population
trainers exist), the population engine's member-work per second at each population size ``K``
(whole runs: simulator or environment, updates, validation, final evaluations) and the speedup
(best population figure over the single run's), measured side by side in one process
(:func:`deepstock.tools.perf.population_throughput`). With ``--stage1``, also the wall time of a
whole DS Base stage 1 of setting 1 at the paper's budget (50 TPE trials, up to 3,000 epochs with
patience 30), trained ``--batch-trials`` trials per population
(:func:`deepstock.tools.perf.tuning_stage1_timing`). ``deepstock bench --population --json``
gives the same figures.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from deepstock.tools.perf import POPULATION_SIZES, population_throughput, tuning_stage1_timing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, nargs="+", default=list(POPULATION_SIZES))
    parser.add_argument("--methods", nargs="+", help="default: every population trainer")
    parser.add_argument("--length", type=int, help="DS epochs / RL env steps per run")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--stage1", action="store_true", help="also time a whole stage 1")
    parser.add_argument("--batch-trials", type=int, default=10, help="stage 1: trials per batch")
    parser.add_argument("--output", type=Path, help="also write the JSON report here")
    args = parser.parse_args()
    report = population_throughput(
        args.methods, sizes=args.members, device=args.device, length=args.length
    )
    if args.stage1:
        report["stage1"] = tuning_stage1_timing(device=args.device, batch_trials=args.batch_trials)
    text = json.dumps(report, indent=2)
    if args.output is not None:
        args.output.write_text(text + "\n", encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
