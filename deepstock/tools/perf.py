"""Performance figures: simulator throughput, the setting-1 DP's time, the population engine.

Used by ``deepstock bench`` (``--population`` for the population engine),
``perf/bench_simulator.py`` and ``perf/bench_population.py``. These are measurements to
report, not pass/fail tests: numbers depend on the machine and on what else runs on it.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from deepstock.core.checks import check_int, check_number
from deepstock.datasets.catalog import load_setting
from deepstock.methods.population.engine import POPULATION_TRAINERS, train_population
from deepstock.methods.train import METHODS, resolve_config
from deepstock.model.heuristics import StationaryBaseStock
from deepstock.model.optimal import dp_base_stock_solution
from deepstock.model.simulator import InventorySimulator
from deepstock.results.store import ResultStore
from deepstock.tuning.procedure import TrainingObjective, Tuner
from deepstock.tuning.profiles import resolve_profile

__all__ = [
    "POPULATION_BENCH_RUNS",
    "BenchRun",
    "POPULATION_SIZES",
    "dp_timing",
    "population_throughput",
    "simulator_throughput",
    "tuning_stage1_timing",
]


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
    batch = check_int("batch", batch, 1)
    horizon = check_int("horizon", horizon, 4)
    # NaN would never be reached by the elapsed time: the loop would not end
    min_seconds = check_number("min_seconds", min_seconds, 0.0, 3600.0, low_open=True)
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


#: Population sizes measured by :func:`population_throughput` by default.
POPULATION_SIZES = (1, 5, 10, 25, 50)


def _epochs_run(result: Any) -> int:
    return int(result.extras["epochs_run"])


def _total_steps(result: Any) -> int:
    return int(result.config["total_steps"])


@dataclass(frozen=True)
class BenchRun:
    """How :func:`population_throughput` runs one method.

    Attributes:
        overrides: configuration overrides of a short benchmark run (no early stop).
        length_key: the configuration key of the run's length (``--length`` sets it).
        unit: the unit of work (``"epochs"``, ``"env_steps"``).
        work_done: the work a finished run did, from its ``TrainResult``.
    """

    overrides: dict[str, Any]
    length_key: str
    unit: str
    work_done: Callable[[Any], int]


#: Per method, its benchmark run. A population trainer that is added to
#: :data:`~deepstock.methods.population.engine.POPULATION_TRAINERS` is benchmarked once it has
#: an entry here.
POPULATION_BENCH_RUNS: dict[str, BenchRun] = {
    "ds": BenchRun({"epochs": 20, "patience": 10**6}, "epochs", "epochs", _epochs_run),
    "ddpg": BenchRun(
        {"total_steps": 2_000, "patience": 10**6}, "total_steps", "env_steps", _total_steps
    ),
    "ppo": BenchRun(
        {"total_steps": 4_096, "patience": 10**6}, "total_steps", "env_steps", _total_steps
    ),
}


def _single_rate(
    method: str,
    regularization: str,
    dataset: Any,
    config: dict[str, Any],
    work_done: Callable[[Any], int],
    device: str,
) -> float:
    """Work per second of one run on the method's single-run path (whole call timed)."""
    spec = METHODS[method]
    start = time.perf_counter()
    result = spec.train_function(
        dataset, regularization, spec.settings_class(**config), seed=0, device=device
    )
    return work_done(result) / (time.perf_counter() - start)


def population_throughput(
    methods: Sequence[str] | None = None,
    *,
    sizes: Sequence[int] = POPULATION_SIZES,
    regularization: str = "base",
    setting: str = "setting1",
    device: str = "cpu",
    length: int | None = None,
) -> dict[str, Any]:
    """Single-run and population throughput of each method, measured side by side.

    For each method (default: every method with a population trainer and a
    :data:`POPULATION_BENCH_RUNS` entry): one single run on the method's own path (SB3 for
    DDPG/PPO, ``train_ds`` for DS) and one population of ``K`` members for each ``K`` in
    ``sizes``, all with the published setting-1 configuration of ``(method, regularization)``
    shortened by the method's benchmark overrides (members differ only in their seeds;
    ``length`` replaces the run's length: epochs for DS, environment steps for DDPG/PPO). Each
    figure is whole work (environment or simulator, updates, validation and the final
    evaluations) over the wall time of the whole call.

    Returns:
        ``{"device", "torch_threads", "setting", "regularization", "methods": {method: {"unit",
        "config", "single_per_s", "single_per_s_before_after", "population": [{"members",
        "seconds", "agent_per_s", "per_member_per_s", "update_seconds" (DDPG, PPO: the
        population's gradient updates)}], "speedup"}}}``; ``agent_per_s`` is member-work per second (member-epochs for DS,
        member env steps for DDPG/PPO) and ``speedup`` the best population figure over the
        single run's.
    """
    dataset = load_setting(setting)
    chosen = (
        list(methods)
        if methods is not None
        else [method for method in POPULATION_BENCH_RUNS if method in POPULATION_TRAINERS]
    )
    report: dict[str, Any] = {
        "device": device,
        "torch_threads": torch.get_num_threads(),
        "setting": setting,
        "regularization": regularization,
        "methods": {},
    }
    for method in chosen:
        if method not in POPULATION_TRAINERS or method not in POPULATION_BENCH_RUNS:
            raise ValueError(
                f"no population benchmark for method {method!r}; available: "
                f"{sorted(set(POPULATION_TRAINERS) & set(POPULATION_BENCH_RUNS))}"
            )
        bench = POPULATION_BENCH_RUNS[method]
        unit, work_done = bench.unit, bench.work_done
        short = dict(bench.overrides)
        if length is not None:
            short[bench.length_key] = check_int("length", length, 1)
        config = resolve_config(method, regularization, short)

        run = (method, regularization, dataset, config, work_done, device)
        # untimed warm-up of both paths (first-call initialization), then the single run is
        # timed before and after the populations and averaged, so that a drift of the
        # machine's load over the measurement weighs on both sides alike
        _single_rate(*run)
        train_population(method, regularization, dataset, [config], [0], device=device)
        single_before = _single_rate(*run)
        rows = []
        for members in sizes:
            start = time.perf_counter()
            results = train_population(
                method,
                regularization,
                dataset,
                [config] * members,
                list(range(members)),
                device=device,
                max_members=members,
            )
            seconds = time.perf_counter() - start
            work = sum(work_done(result) for result in results)
            row = {
                "members": members,
                "seconds": seconds,
                "agent_per_s": work / seconds,
                "per_member_per_s": work / seconds / members,
            }
            updates = [r.extras["update_seconds"] for r in results if "update_seconds" in r.extras]
            if updates:  # DDPG, PPO: the gradient updates' part of the seconds
                row["update_seconds"] = max(updates)
            rows.append(row)
        single_after = _single_rate(*run)
        single = (single_before + single_after) / 2
        report["methods"][method] = {
            "unit": unit,
            "config": config,
            "single_per_s": single,
            "single_per_s_before_after": [single_before, single_after],
            "population": rows,
            "speedup": max(row["agent_per_s"] for row in rows) / single,
        }
    return report


def tuning_stage1_timing(
    method: str = "ds",
    regularization: str = "base",
    *,
    setting: str = "setting1",
    n_trials: int = 50,
    batch_trials: int = 10,
    device: str = "cpu",
    store_dir: str | None = None,
) -> dict[str, Any]:
    """Wall time of one whole stage 1 at the paper's budget on the population engine.

    The paper's search space and training lengths (``paper`` profile: up to 3,000 DS epochs with
    patience 30), ``n_trials`` TPE trials asked ``batch_trials`` at a time, one population per
    batch, an in-memory Optuna storage and a fresh result store (``store_dir``, default a
    temporary folder). Stage 2 is not run.

    Returns:
        ``{"method", "regularization", "setting", "n_trials", "batch_trials", "seconds",
        "best_val_loss"}``.
    """
    profile = resolve_profile("paper")
    dataset = load_setting(setting)
    folder = store_dir or tempfile.mkdtemp(prefix="deepstock-stage1-")
    objective = TrainingObjective(
        method,
        regularization,
        dataset,
        setting=setting,
        store=ResultStore(folder),
        device=device,
        overrides=profile.training_overrides(method),
        engine="population",
    )
    tuner = Tuner(
        objective,
        n_trials=n_trials,
        top_k=1,
        n_seeds=1,
        n_startup_trials=profile.n_startup_trials,
        storage="memory",
        batch_trials=batch_trials,
        record_store=None,
    )
    start = time.perf_counter()
    tuner.prepare()
    tuner.run_search(0)
    seconds = time.perf_counter() - start
    trials = tuner.search_trials(0)
    return {
        "method": method,
        "regularization": regularization,
        "setting": setting,
        "device": device,
        "n_trials": n_trials,
        "batch_trials": batch_trials,
        "seconds": seconds,
        "best_val_loss": min(trial.value for trial in trials),
    }
