"""Throughput of the DDPG and PPO populations against one Stable-Baselines3 agent.

Used by ``perf/bench_population_rl.py`` (``deepstock bench --population`` measures the same
through :func:`deepstock.tools.perf.population_throughput`, wall time only). These are
measurements to report, never pass/fail tests: the figures depend on the machine and on what
else runs on it.

A measurement trains at the authors' tuned setting-1 configuration of ``method`` and
``regularization`` (:func:`deepstock.methods.train.default_config`), capped at ``total_steps``
env steps per agent and with early stopping switched off (``patience`` set beyond the run), so
that every agent runs the same number of steps. Whole agent-steps are counted: env, action
selection, updates and validations, everything between the start and the end of training
(final test metrics included for both paths).

Both wall time and the process's CPU time (``time.process_time``, all threads) are reported. On
a machine shared with other work the wall time of a run depends on how much of the CPU it got;
its CPU time much less so, which makes ``agent_steps_per_cpu_s`` the fairer figure when SB3 and
the population were measured at different moments of a busy machine. On an idle machine with
one torch thread the two agree. On a GPU only the wall time means anything.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator
from typing import Any

import torch
from stable_baselines3 import PPO

from deepstock.datasets.catalog import load_setting
from deepstock.methods.ddpg import RecordingDDPG
from deepstock.methods.population.ddpg import train_ddpg_population
from deepstock.methods.population.ppo import train_ppo_population
from deepstock.methods.train import default_config, train
from deepstock.model.dataset import InventoryDataset

__all__ = ["RL_METHODS", "population_cpu_throughput", "sb3_throughput", "throughput_config"]

#: The methods measured here.
RL_METHODS: tuple[str, ...] = ("ddpg", "ppo")

_POPULATION_TRAINERS = {"ddpg": train_ddpg_population, "ppo": train_ppo_population}

#: Default env steps per agent: past DDPG's warm-up (1,000 uniform steps) and several PPO
#: rollouts (1,024 steps each) at the tuned setting-1 configurations.
DEFAULT_STEPS: dict[str, int] = {"ddpg": 4096, "ppo": 8192}


def throughput_config(method: str, regularization: str, total_steps: int) -> dict[str, Any]:
    """The tuned setting-1 configuration, ``total_steps`` long, early stopping off."""
    if method not in RL_METHODS:
        raise ValueError(f"method must be one of {list(RL_METHODS)}, got {method!r}")
    config = dict(default_config(method, regularization))
    config.update(total_steps=int(total_steps), patience=10**9)
    if method == "ddpg":
        config["record_steps"] = 0
    return config


def _dataset(dataset: InventoryDataset | None) -> InventoryDataset:
    return load_setting("setting1") if dataset is None else dataset


def population_cpu_throughput(
    method: str,
    members: int,
    *,
    regularization: str = "base",
    total_steps: int | None = None,
    device: str | torch.device = "cpu",
    dataset: InventoryDataset | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Agent-steps per second of a population of ``members`` agents (seeds ``seed, seed+1,
    ...``) of ``method`` trained together.

    Returns:
        ``{"method", "engine": "population", "members", "total_steps", "agent_steps",
        "wall_s", "agent_steps_per_s", "cpu_s", "agent_steps_per_cpu_s", "device",
        "mean_test_loss", "update_s", "update_share", "update_bound_agent_steps_per_s"}``
        (times in seconds; ``update_*``: the gradient updates alone, see
        :func:`sb3_throughput`).
    """
    if method not in RL_METHODS:
        raise ValueError(f"method must be one of {list(RL_METHODS)}, got {method!r}")
    if members < 1:
        raise ValueError(f"members must be >= 1, got {members!r}")
    steps = DEFAULT_STEPS[method] if total_steps is None else int(total_steps)
    config = throughput_config(method, regularization, steps)
    data = _dataset(dataset)
    start, cpu_start = time.perf_counter(), time.process_time()
    results = _POPULATION_TRAINERS[method](
        data, regularization, [config] * members, [seed + k for k in range(members)], device=device
    )
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    agent_steps = sum(int(r.extras["env_steps"]) for r in results)
    return {
        "method": method,
        "engine": "population",
        "members": int(members),
        "total_steps": steps,
        "agent_steps": agent_steps,
        "wall_s": wall,
        "agent_steps_per_s": agent_steps / wall,
        "cpu_s": cpu,
        "agent_steps_per_cpu_s": agent_steps / cpu,
        "device": str(results[0].device),
        "mean_test_loss": sum(r.test_loss for r in results) / len(results),
        **_update_figures(
            agent_steps, wall, max(float(r.extras["update_seconds"]) for r in results)
        ),
    }


def sb3_throughput(
    method: str,
    *,
    regularization: str = "base",
    total_steps: int | None = None,
    device: str | torch.device = "cpu",
    dataset: InventoryDataset | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Env steps per second of one SB3 agent at the same settings as
    :func:`population_cpu_throughput` (same keys, ``engine="sb3"``, ``members=1``).

    ``update_s`` is the time spent in the algorithm's ``train()`` (SB3's gradient updates),
    ``update_share`` its part of the wall time and ``update_bound_agent_steps_per_s`` the
    agent-steps/s of a run that spent time on nothing but those updates. An engine that
    computes the same updates with the same matrix kernels cannot exceed that bound, so
    ``update_bound_agent_steps_per_s / agent_steps_per_s`` bounds any speed-up over SB3 by
    removing per-step overhead alone (Amdahl's law).
    """
    steps = DEFAULT_STEPS[method] if total_steps is None else int(total_steps)
    config = throughput_config(method, regularization, steps)
    data = _dataset(dataset)
    with _timed_sb3_updates(method) as updates:
        start, cpu_start = time.perf_counter(), time.process_time()
        result = train(method, regularization, data, config, seed=seed, device=device, engine="sb3")
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    agent_steps = int(result.extras["env_steps"])
    return {
        "method": method,
        "engine": "sb3",
        "members": 1,
        "total_steps": steps,
        "agent_steps": agent_steps,
        "wall_s": wall,
        "agent_steps_per_s": agent_steps / wall,
        "cpu_s": cpu,
        "agent_steps_per_cpu_s": agent_steps / cpu,
        "device": result.device,
        "mean_test_loss": result.test_loss,
        **_update_figures(agent_steps, wall, updates["seconds"]),
    }


def _update_figures(agent_steps: int, wall: float, update_s: float) -> dict[str, float]:
    """The update part of a measurement: its seconds, its share of the wall time and the
    agent-steps/s the run would reach if nothing but its updates took time (an upper bound
    for any engine that computes the same updates at the same speed)."""
    return {
        "update_s": update_s,
        "update_share": update_s / wall,
        "update_bound_agent_steps_per_s": agent_steps / update_s if update_s > 0 else math.inf,
    }


@contextlib.contextmanager
def _timed_sb3_updates(method: str) -> Iterator[dict[str, float]]:
    """Within the block, the SB3 algorithm's ``train()`` (its gradient updates) adds its wall
    time to the yielded ``{"seconds": ...}``; the class is restored afterwards."""
    algorithm = {"ddpg": RecordingDDPG, "ppo": PPO}[method]
    original = algorithm.train
    timer = {"seconds": 0.0}

    def timed_train(self: Any, *args: Any, **kwargs: Any) -> Any:
        began = time.perf_counter()
        try:
            return original(self, *args, **kwargs)
        finally:
            timer["seconds"] += time.perf_counter() - began

    algorithm.train = timed_train
    try:
        yield timer
    finally:
        algorithm.train = original
