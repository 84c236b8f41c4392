"""DDPG and PPO on setting 1: wall time of a training run and the share spent in the environment.

Usage: ``python perf/bench_rl.py [--methods ddpg ppo] [--regularizations none base]
[--total-steps N] [--seed 0] [--device cpu] [--n-envs K]``

For each (method, regularization) one training run at the paper's tuned setting-1 configuration
(the book's *Methods and tuning protocol* chapter; ``--total-steps`` caps its length, ``--n-envs`` overrides the number of
parallel training trajectories) and prints JSON with:

- ``wall_time_s``: the training time as :class:`~deepstock.methods.train.TrainResult` reports it
  (model setup and learning, validations included), ``env_steps`` (orders simulated),
  ``env_steps_per_s``, ``stopped_early`` and ``best_step``;
- ``env_time_s`` and ``env_share``: the time spent inside the training environment
  (``InventoryVecEnv.reset`` and ``step_wait``, timed around every call) and its share of the
  wall time; ``validation_share`` likewise for the validations through the simulator;
- ``gradient_steps`` (DDPG), ``val_loss``, ``test_loss`` and the test-loss gaps against the DP
  benchmarks (``dp_empirical`` is the authors' benchmark, test loss 0.8670).
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import torch

from deepstock.datasets.catalog import load_setting
from deepstock.methods.envs import InventoryVecEnv
from deepstock.methods.train import train
from deepstock.model.optimal import benchmark_losses


class EnvTimer:
    """Accumulates the wall time of every ``reset``/``step_wait`` of :class:`InventoryVecEnv`."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.calls = 0
        self._originals: dict[str, Any] = {}

    def __enter__(self) -> EnvTimer:
        for name in ("reset", "step_wait"):
            original = getattr(InventoryVecEnv, name)
            self._originals[name] = original

            def timed(env: InventoryVecEnv, *args: Any, _original: Any = original) -> Any:
                start = time.perf_counter()
                try:
                    return _original(env, *args)
                finally:
                    self.seconds += time.perf_counter() - start
                    self.calls += 1

            setattr(InventoryVecEnv, name, timed)
        return self

    def __exit__(self, *exc: object) -> None:
        for name, original in self._originals.items():
            setattr(InventoryVecEnv, name, original)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="+", default=["ddpg", "ppo"])
    parser.add_argument("--regularizations", nargs="+", default=["none", "base"])
    parser.add_argument("--total-steps", type=int, default=None, help="cap on env steps")
    parser.add_argument("--n-envs", type=int, default=None, help="parallel trajectories")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu", help="'cpu', 'cuda' or 'auto'")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    dataset = load_setting("setting1")
    dp_test = {row["policy"]: row["test_loss"] for row in benchmark_losses(dataset)}
    overrides: dict[str, Any] = {}
    if args.total_steps is not None:
        overrides["total_steps"] = args.total_steps
    if args.n_envs is not None:
        overrides["n_envs"] = args.n_envs
    report: dict[str, Any] = {
        "dataset": dataset.name,
        "device": args.device,
        "torch_threads": torch.get_num_threads(),
        "overrides": overrides,
        "dp_test_loss": dp_test,
        "results": [],
    }
    for method in args.methods:
        for regularization in args.regularizations:
            with EnvTimer() as timer:
                result = train(
                    method, regularization, dataset, overrides, seed=args.seed, device=args.device
                )
            extras = result.extras
            wall = result.wall_time_s
            entry = {
                "method": method,
                "regularization": regularization,
                "n_envs": result.config["n_envs"],
                "wall_time_s": wall,
                "env_steps": extras["env_steps"],
                "env_steps_per_s": extras["env_steps"] / wall,
                "env_time_s": timer.seconds,
                "env_calls": timer.calls,
                "env_share": timer.seconds / wall,
                "validation_share": extras["evaluation_seconds"] / wall,
                "n_evaluations": extras["n_evaluations"],
                "stopped_early": extras["stopped_early"],
                "best_step": extras["best_step"],
                "val_loss": result.val_loss,
                "test_loss": result.test_loss,
                "test_gap": {name: result.test_loss / loss - 1 for name, loss in dp_test.items()},
            }
            if "gradient_steps" in extras:
                entry["gradient_steps"] = extras["gradient_steps"]
            report["results"].append(entry)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
