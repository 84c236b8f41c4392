"""Course use: the self-checks of the book's four assignments, and the helpers their pages use.

Each assignment has a starter file in ``assignments/`` (functions that raise
``NotImplementedError`` under a ``# YOUR CODE HERE`` marker), a page in the book's *Assignments*
part that imports the student's file and runs its check, and a reference solution kept for the
instructor (``instructor/solutions/``, not in the book).

==============  ==================================  ==============================================
exercise        the student writes                  the check compares with
==============  ==================================  ==============================================
sensitivity     ``variant(lead_time, ratio)``,      the exact DP of setting 1
(a)             ``protection_levels(dataset)``      (:func:`deepstock.model.optimal.dp_base_stock_solution`)
benchmark       ``critical_fractile_levels(...)``,  :func:`deepstock.model.optimal.critical_fractile_levels`
(b)             ``base_stock_loss(dataset, S)``     and the project's simulator
regularization  ``class ProportionalBaseStock``     the proportional order-up-to formula; then
(c)             (a :class:`Regularization`)         trains it with DS and an RL method, tiny budget
overfitting     ``lognormal_dataset(N, H, seed)``,  moments of the demand, the closed-form lognormal
(d)             ``lognormal_levels(dataset)``       quantile; then trains DS with Base on it
==============  ==================================  ==============================================

A check calls the student's functions on a few cases and either passes (a
:class:`CheckResult` with what was verified) or stops at the first problem with an
:class:`AssignmentFeedback` whose message says, in plain words, what to fix. An unfinished function
(the starter's ``NotImplementedError``) gives :class:`NotDoneYet`. Each ``check_*`` function
returns the list of what it verified, and appends to ``report`` (when given) as it goes, so that
a failed check still shows what passed before it. :func:`run_check` never raises for a student's
error: the notebooks display its result, and the command line prints it::

    python -m deepstock.course.assignments check sensitivity assignments/a_sensitivity.py
    python -m deepstock.course.assignments list

The command exits with status 0 when every check passes, 1 otherwise, and prints no traceback.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from statistics import NormalDist
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd

from deepstock.core.files import checkout_root
from deepstock.datasets.catalog import load_setting
from deepstock.datasets.synthetic import iid_demand_days, make_setting
from deepstock.methods.train import default_config
from deepstock.methods.train import train as train_policy
from deepstock.model.dataset import InventoryDataset
from deepstock.model.heuristics import StationaryBaseStock
from deepstock.model.optimal import (
    benchmark_losses,
    critical_fractile_levels,
    dp_base_stock_solution,
    gap_pct,
)
from deepstock.model.regularizations import (
    Regularization,
    get_regularization,
    register_regularization,
)
from deepstock.model.simulator import Observation, simulate
from deepstock.paper.experiments import ExperimentContext
from deepstock.results.store import ResultStore, cached_train
from deepstock.tuning.profiles import resolve_profile

__all__ = [
    "EXERCISES",
    "IID_DS_CONFIG",
    "AssignmentFeedback",
    "CheckResult",
    "Exercise",
    "NotDoneYet",
    "check_benchmark",
    "check_overfitting",
    "check_regularization",
    "check_sensitivity",
    "compare_regularizations",
    "load_solution",
    "main",
    "overfitting_table",
    "run_check",
    "sensitivity_levels",
]


# ====================================================================== feedback
class AssignmentFeedback(Exception):
    """A check found a problem; the message is the feedback to show the student."""


class NotDoneYet(AssignmentFeedback):
    """A function of the student's file still raises the starter's ``NotImplementedError``."""


@dataclass
class CheckResult:
    """The outcome of one self-check.

    Attributes:
        exercise: the exercise's name (a key of :data:`EXERCISES`).
        passed: every check passed.
        started: ``False`` when the first function called was still the starter's.
        message: the feedback: what was verified when it passed, what to fix when not.
        details: one line per passed check, in order.
        seconds: how long the check took.
    """

    exercise: str
    passed: bool
    started: bool
    message: str
    details: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def status(self) -> str:
        if self.passed:
            return "passed"
        return "failed" if self.started else "not done yet"

    def __str__(self) -> str:
        mark = {"passed": "PASSED", "failed": "NOT YET RIGHT", "not done yet": "NOT DONE YET"}
        lines = [f"[{mark[self.status]}] exercise {self.exercise!r}"]
        lines += [f"  ok: {line}" for line in self.details]
        lines += ["  " + line for line in self.message.splitlines()]
        return "\n".join(lines)

    def _repr_markdown_(self) -> str:
        head = {
            "passed": "**Check passed.**",
            "failed": "**Check not passed yet.**",
            "not done yet": "**Not done yet.**",
        }[self.status]
        lines = [f"{head} Exercise `{self.exercise}` ({self.seconds:.1f} s)", ""]
        lines += [f"- ok: {line}" for line in self.details]
        if self.details:
            lines.append("")
        lines += [self.message]
        return "\n".join(lines)


# ====================================================================== the exercises
@dataclass(frozen=True)
class Exercise:
    """One assignment.

    Attributes:
        name: the key used by :func:`run_check` and the command line.
        letter: its letter in the book (a-d, in order of difficulty).
        title: one line.
        starter: the student's file, relative to the project root.
        solution: the reference solution, relative to the project root (instructor only).
        chapter: the book page, ``notebooks/<chapter>.md``.
        functions: the names the student's file must define.
    """

    name: str
    letter: str
    title: str
    starter: str
    solution: str
    chapter: str
    functions: tuple[str, ...]


def _exercise(name: str, letter: str, title: str, functions: tuple[str, ...]) -> Exercise:
    stem = f"{letter}_{name}.py"
    return Exercise(
        name=name,
        letter=letter,
        title=title,
        starter=f"assignments/{stem}",
        solution=f"instructor/solutions/{stem}",
        chapter=f"assignment_{name}",
        functions=functions,
    )


#: The four assignments, in order of difficulty.
EXERCISES: dict[str, Exercise] = {
    exercise.name: exercise
    for exercise in (
        _exercise(
            "sensitivity",
            "a",
            "Setting 1 with longer lead times and other critical ratios",
            ("variant", "protection_levels"),
        ),
        _exercise(
            "benchmark",
            "b",
            "The critical-fractile benchmark of IID demand, from scratch",
            ("critical_fractile_levels", "base_stock_loss"),
        ),
        _exercise(
            "regularization",
            "c",
            "A new regularization: proportional order-up-to",
            ("ProportionalBaseStock",),
        ),
        _exercise(
            "overfitting",
            "d",
            "DS overfitting (setting 4) with lognormal demand",
            ("lognormal_dataset", "lognormal_levels"),
        ),
    )
}


def _project_root() -> Path:
    return checkout_root() or Path.cwd()


# ====================================================================== loading a solution
def load_solution(path: str | Path) -> ModuleType:
    """Import the student's file as a fresh module (re-read on every call).

    A relative ``path`` is looked up from the working directory, then from the project root, so
    a notebook opened from ``notebooks/`` finds ``assignments/...`` too.

    Raises:
        AssignmentFeedback: the file does not exist, has a syntax error or fails on import.
    """
    path = Path(path)
    candidates = [path] if path.is_absolute() else [path, _project_root() / path]
    found = next((p for p in candidates if p.is_file()), None)
    if found is None:
        raise AssignmentFeedback(
            f"cannot find your file {str(path)!r}: give the path of your copy of the starter "
            "(for example assignments/a_sensitivity.py)"
        )
    module_name = f"_deepstock_solution_{found.stem}"
    spec = importlib.util.spec_from_file_location(module_name, found)
    if spec is None or spec.loader is None:
        raise AssignmentFeedback(f"cannot import {found}: is it a Python file (.py)?")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses and pickling look the module up
    try:
        spec.loader.exec_module(module)
    except SyntaxError as error:
        raise AssignmentFeedback(
            f"your file {found.name} has a syntax error on line {error.lineno}: {error.msg}. "
            "Fix it and run the check again."
        ) from None
    except Exception as error:
        raise AssignmentFeedback(
            f"importing your file {found.name} failed: {_describe(error, found)}"
        ) from None
    return module


def _describe(error: BaseException, file: str | Path | None = None) -> str:
    """``"TypeError: message (line 12 of a_x.py)"``: the error and the last line of the student's
    file it passed through, without a traceback."""
    text = f"{type(error).__name__}: {error}"
    frames = traceback.extract_tb(error.__traceback__)
    if file is not None:
        name = Path(file).name
        own = [f for f in frames if Path(f.filename).name == name]
        if own:
            text += f" (line {own[-1].lineno} of {name}: `{(own[-1].line or '').strip()}`)"
    return text


def _function(solution: Any, name: str) -> Callable[..., Any]:
    if not hasattr(solution, name):
        raise AssignmentFeedback(
            f"your file defines no `{name}`: keep the starter's names (the check calls `{name}`)"
        )
    return getattr(solution, name)


def _call(solution: Any, name: str, *args: Any, label: str | None = None) -> Any:
    """Call the student's ``solution.name(*args)`` and turn its errors into feedback.

    ``label`` names the function in messages (default ``name``); the student's file is read
    from ``solution.__file__``, or from the module of ``solution``'s class for an instance.
    """
    function = _function(solution, name)
    label = label or name
    module = sys.modules.get(getattr(type(solution), "__module__", ""), None)
    where = getattr(solution, "__file__", None) or getattr(module, "__file__", None)
    try:
        return function(*args)
    except NotImplementedError:
        in_file = f" in {Path(where).name}" if where else ""
        raise NotDoneYet(
            f"`{label}` is not written yet: replace `raise NotImplementedError` under "
            f"`# YOUR CODE HERE`{in_file} with your code, then run the check again."
        ) from None
    except AssignmentFeedback:
        raise
    except Exception as error:
        raise AssignmentFeedback(f"`{label}` raised {_describe(error, where)}") from None


def _as_vector(value: Any, name: str, size: int | None = None) -> np.ndarray:
    try:
        array = np.asarray(
            value.detach().cpu().numpy() if hasattr(value, "detach") else value, dtype=float
        )
    except (TypeError, ValueError):
        raise AssignmentFeedback(
            f"`{name}` must return numbers (a NumPy array), got {type(value).__name__}"
        ) from None
    array = array.reshape(-1) if array.ndim == 0 else array
    if array.ndim != 1:
        raise AssignmentFeedback(
            f"`{name}` must return a one-dimensional array, got shape {array.shape}"
        )
    if size is not None and array.size != size:
        raise AssignmentFeedback(f"`{name}` must return {size} numbers, got {array.size}")
    if not np.isfinite(array).all():
        raise AssignmentFeedback(f"`{name}` returned a NaN or infinite value: {array}")
    return array


# ====================================================================== (a) sensitivity
#: The setting-1 variants the sensitivity check solves: (lead time L, critical ratio b/(b+h)).
SENSITIVITY_CASES: tuple[tuple[int, float], ...] = ((1, 0.9), (3, 0.9), (3, 0.5), (2, 0.99))

_HOLDING_COST = 0.1


def _setting1_variant(lead_time: int, critical_ratio: float) -> Any:

    backlog = _HOLDING_COST * critical_ratio / (1.0 - critical_ratio)
    return make_setting("setting1", lead_time=lead_time, backlog_cost=backlog)


def sensitivity_levels(
    lead_times: Sequence[int] = (1, 2, 3, 4), ratios: Sequence[float] = (0.5, 0.9, 0.99)
) -> pd.DataFrame:
    """The DP's optimal base-stock levels of setting 1 for each lead time and critical ratio.

    Returns one row per (``lead_time``, ``critical_ratio``, ``day``) order day with ``level``
    (units of inventory position) and ``expected_loss`` (the DP's expected loss per day).
    """

    rows = []
    for lead_time in lead_times:
        for ratio in ratios:
            solution = dp_base_stock_solution(_setting1_variant(lead_time, ratio))
            for day in solution.order_days:
                rows.append(
                    {
                        "lead_time": int(lead_time),
                        "critical_ratio": float(ratio),
                        "day": int(day),
                        "level": float(solution.levels[day]),
                        "expected_loss": solution.expected_loss,
                    }
                )
    return pd.DataFrame(rows)


def check_sensitivity(solution: Any, *, report: list[str] | None = None) -> list[str]:
    """Check exercise (a): ``variant`` builds the right datasets and ``protection_levels``
    gives the DP's optimal levels (within one unit) on every case of
    :data:`SENSITIVITY_CASES`. Returns what was verified; raises :class:`AssignmentFeedback`."""

    done = [] if report is None else report  # filled as the checks pass
    reference = make_setting("setting1")
    for lead_time, ratio in ((1, 0.9), (3, 0.5)):
        dataset = _call(solution, "variant", lead_time, ratio)
        what = f"variant({lead_time}, {ratio})"
        if not isinstance(dataset, InventoryDataset):
            raise AssignmentFeedback(
                f"{what} must return an InventoryDataset (use deepstock.datasets.synthetic.make_setting), "
                f"got {type(dataset).__name__}"
            )
        if not (dataset.lead_time == lead_time).all():
            found = sorted({int(v) for v in np.unique(dataset.lead_time)})
            raise AssignmentFeedback(
                f"{what} has lead times {found}, expected {lead_time} on every day: pass "
                "lead_time to make_setting"
            )
        got_ratio = dataset.backlog_cost / (dataset.backlog_cost + dataset.holding_cost)
        if not math.isclose(dataset.holding_cost, _HOLDING_COST, rel_tol=1e-9):
            raise AssignmentFeedback(
                f"{what} changed the holding cost to {dataset.holding_cost}; keep h = 0.1 "
                "and choose the backlog cost b so that b / (b + h) is the critical ratio"
            )
        if not math.isclose(got_ratio, ratio, rel_tol=1e-6):
            raise AssignmentFeedback(
                f"{what} has the critical ratio b / (b + h) = {got_ratio:.4f}, expected "
                f"{ratio}: with h = 0.1 the backlog cost is b = h r / (1 - r)"
            )
        if dataset.demand.shape != reference.demand.shape or not np.array_equal(
            dataset.demand, reference.demand
        ):
            raise AssignmentFeedback(
                f"{what} has other demand than setting 1: keep the authors' stream and seed "
                "(make_setting('setting1', ...) with only lead_time and backlog_cost changed)"
            )
    done.append("variant() builds setting 1 with the asked lead time and critical ratio")

    for lead_time, ratio in SENSITIVITY_CASES:
        dataset = _setting1_variant(lead_time, ratio)
        optimal = dp_base_stock_solution(dataset)
        expected = optimal.levels[optimal.order_days]
        got = _as_vector(
            _call(solution, "protection_levels", dataset),
            "protection_levels",
        )
        days = optimal.order_days.tolist()
        if got.size != expected.size:
            raise AssignmentFeedback(
                f"protection_levels (L = {lead_time}, ratio {ratio}) must return one level per "
                f"order day whose delivery lands inside the horizon, {expected.size} levels "
                f"(days {days[0]}, {days[1]}, ..., {days[-1]}), got {got.size}"
            )
        wrong = np.flatnonzero(np.abs(got - expected) > 1.0 + 1e-9)
        if wrong.size:
            i = int(wrong[0])
            hint = "higher" if got[i] < expected[i] else "lower"  # which way the student is off
            raise AssignmentFeedback(
                f"protection_levels (L = {lead_time}, ratio {ratio}): on order day {days[i]} "
                f"you give {got[i]:g}, the optimal level is {expected[i]:g} ({hint}); "
                f"{wrong.size} of {expected.size} order days are off by more than one unit. "
                "The level on day t minimizes the expected holding and backlog cost of the "
                "days t + L, ..., t + L + P - 1, where the stock is the level minus the demand "
                "since day t."
            )
        done.append(
            f"protection_levels() matches the DP on all {expected.size} order days "
            f"(L = {lead_time}, critical ratio {ratio})"
        )
    return done


# ====================================================================== (b) benchmark
def _reference_base_stock_loss(
    dataset: Any,
    levels: np.ndarray,
    *,
    count_warmup: bool = False,
    every_day: bool = False,
    cap: bool = True,
) -> np.ndarray:
    """A plain NumPy simulation of order-up-to ``levels`` (the book's *The inventory model* chapter, backlog),
    with switches that reproduce common mistakes (for feedback)."""
    demand = dataset.demand
    n, horizon = demand.shape
    lead = dataset.lead_time[:, 0]
    period = dataset.review_period
    width = int(lead.max()) + 1
    pipeline = np.zeros((n, width))
    pipeline[:, 0] = dataset.initial_stock
    rows = np.arange(n)
    losses = np.zeros((n, horizon))
    for day in range(horizon):
        position = pipeline.sum(axis=1)
        is_order_day = np.ones(n, bool) if every_day else (day > 0) & (day % period == 0)
        order = np.where(is_order_day, np.maximum(levels - position, 0.0), 0.0)
        if cap:
            order = np.minimum(order, dataset.max_replenish)
        pipeline[rows, lead] += order
        end = pipeline[:, 0] - demand[:, day]
        losses[:, day] = dataset.holding_cost * np.maximum(end, 0) + dataset.backlog_cost * (
            np.maximum(-end, 0)
        )
        shifted = np.zeros_like(pipeline)
        shifted[:, 0] = end + (pipeline[:, 1] if width > 1 else 0.0)
        shifted[:, 1:-1] = pipeline[:, 2:]
        pipeline = shifted
    warmup = 0 if count_warmup else int((period + lead).max())
    return losses[:, warmup:].mean(axis=1)


def _benchmark_cases() -> list[tuple[str, Any]]:
    """(label, dataset) of the benchmark check: setting 4 and two variants of it."""

    return [
        ("setting 4, N = 5, H = 2", make_setting("setting4", n_skus=5, horizon_periods=2)),
        (
            "setting 4, N = 3, H = 8, h = 0.3, b = 0.7",
            make_setting(
                "setting4", n_skus=3, horizon_periods=8, holding_cost=0.3, backlog_cost=0.7
            ),
        ),
        (
            "setting 4, N = 4, H = 4, lead time 2, review period 3",
            make_setting("setting4", n_skus=4, horizon_periods=4, lead_time=2, review_period=3),
        ),
    ]


def check_benchmark(solution: Any, *, report: list[str] | None = None) -> list[str]:
    """Check exercise (b): the critical-fractile levels equal the library's and the student's
    simulation of a stationary base stock gives the project simulator's loss, trajectory by
    trajectory (also where the order cap binds). Returns what was verified."""
    import torch

    done = [] if report is None else report  # filled as the checks pass
    cases = _benchmark_cases()
    for label, dataset in cases:
        feature = dataset.feature_names.index("demand_std")
        sigma = dataset.features[:, 0, feature].copy()
        mean = float(dataset.params["args"]["demand_mean"])
        expected = critical_fractile_levels(dataset)
        got = _as_vector(
            _call(
                solution,
                "critical_fractile_levels",
                sigma,
                mean,
                dataset.holding_cost,
                dataset.backlog_cost,
            ),
            "critical_fractile_levels",
            size=expected.size,
        )
        if not np.allclose(got, expected, rtol=1e-6, atol=1e-6):
            i = int(np.argmax(np.abs(got - expected)))
            ratio = dataset.backlog_cost / (dataset.backlog_cost + dataset.holding_cost)
            raise AssignmentFeedback(
                f"critical_fractile_levels ({label}): for sigma = {sigma[i]:.3f} you give "
                f"{got[i]:.4f}, expected {expected[i]:.4f} = mean + z sigma with z the standard "
                f"normal quantile of b / (b + h) = {ratio:.3f} "
                f"(z = {NormalDist().inv_cdf(ratio):.5f}; statistics.NormalDist().inv_cdf)"
            )
    done.append("critical_fractile_levels() equals the library's, for two cost ratios")

    setting1 = make_setting("setting1")
    loss_cases = [(label, dataset, critical_fractile_levels(dataset)) for label, dataset in cases]
    loss_cases.append(
        (
            "setting 1 with level 130 (the order cap of 100 binds on the first order)",
            setting1,
            np.full(setting1.n_trajectories, 130.0),
        )
    )
    for label, dataset, levels in loss_cases:
        rollout = simulate(dataset, StationaryBaseStock(levels), device="cpu")
        with torch.no_grad():
            expected = rollout.trajectory_loss.cpu().numpy()
        got = _as_vector(
            _call(solution, "base_stock_loss", dataset, levels.copy()),
            "base_stock_loss",
            size=expected.size,
        )
        if not np.allclose(got, expected, rtol=1e-6, atol=1e-6):
            i = int(np.argmax(np.abs(got - expected)))
            message = (
                f"base_stock_loss ({label}): trajectory {i} has loss {expected[i]:.5f}, you "
                f"give {got[i]:.5f} (mean over trajectories: {expected.mean():.5f} expected, "
                f"{got.mean():.5f} yours)."
            )
            for mistake, kwargs in (
                (
                    "you count the warm-up days (the first P + L days are not counted)",
                    {"count_warmup": True},
                ),
                (
                    "you order on every day (orders are placed on days P, 2P, ... only)",
                    {"every_day": True},
                ),
                ("you do not cap the order at max_replenish", {"cap": False}),
            ):
                if np.allclose(
                    got, _reference_base_stock_loss(dataset, levels, **kwargs), rtol=1e-6
                ):
                    message += f" It looks like {mistake}."
                    break
            raise AssignmentFeedback(message)
        done.append(f"base_stock_loss() equals the simulator's loss ({label})")
    return done


# ====================================================================== (c) regularization
def _reference_proportional_order(raw: Any, position: Any, max_replenish: float) -> Any:
    """Proportional order-up-to: ``clip(beta (S - IP), 0, M)``, ``beta = clip(f_2 / M, 0, 1)``."""
    beta = (raw[:, 1] / max_replenish).clamp(0.0, 1.0)
    return (beta * (raw[:, 0] - position)).clamp(0.0, max_replenish)


def _observation(batch: int, max_replenish: float, seed: int) -> Any:
    import torch

    generator = torch.Generator().manual_seed(seed)
    pipeline = (
        torch.rand((batch, 2), generator=generator, dtype=torch.float64) * 1.2 - 0.3
    ) * max_replenish
    features = torch.rand((batch, 1), generator=generator, dtype=torch.float64)
    return Observation(
        day=2,
        pipeline=pipeline,
        inventory_position=pipeline.sum(dim=1),
        features=features,
        feature_min=torch.zeros_like(features),
        feature_max=torch.ones_like(features),
        index=torch.arange(batch),
        order_day=torch.ones(batch, dtype=torch.bool),
    )


def check_regularization(
    solution: Any,
    *,
    rl_method: str = "ppo",
    train: bool = True,
    device: str = "cpu",
    report: list[str] | None = None,
) -> list[str]:
    """Check exercise (c): ``ProportionalBaseStock`` is a :class:`Regularization` whose orders
    follow the proportional order-up-to formula (values, range, gradients), and, with
    ``train``, that DS and ``rl_method`` train it on setting 1 at a tiny budget."""
    import torch

    done = [] if report is None else report  # filled as the checks pass
    cls = _function(solution, "ProportionalBaseStock")
    if not (isinstance(cls, type) and issubclass(cls, Regularization)):
        raise AssignmentFeedback(
            "ProportionalBaseStock must be a class that subclasses "
            "deepstock.model.regularizations.Regularization"
        )
    try:
        reg = cls()
    except Exception as error:
        raise AssignmentFeedback(
            f"ProportionalBaseStock() raised {_describe(error, getattr(solution, '__file__', None))}"
        ) from None
    name = getattr(reg, "name", "")
    taken = ("none", "base", "coeff", "both")
    if not isinstance(name, str) or not name or name != name.lower() or name in taken:
        raise AssignmentFeedback(
            f"ProportionalBaseStock.name must be a new lower-case name (the starter's 'pout'), "
            f"got {name!r}"
        )
    for m in (0, 3):
        size = _call(reg, "output_size", m, label="ProportionalBaseStock.output_size")
        if size != 2:
            raise AssignmentFeedback(
                f"output_size({m}) must be 2 (the level S and the share beta), got {size!r}"
            )
    done.append(f"a Regularization named {name!r} with two raw outputs")

    max_replenish = 100.0
    observation = _observation(64, max_replenish, seed=7)
    generator = torch.Generator().manual_seed(11)
    raw = torch.rand((64, 2), generator=generator, dtype=torch.float64)
    raw = raw * torch.tensor([1.6, 1.4], dtype=torch.float64) * max_replenish
    raw = raw - torch.tensor([0.2, 0.2], dtype=torch.float64) * max_replenish
    raw[0] = torch.tensor([80.0, 50.0])  # an ordinary case: half the gap to the level
    raw = raw.requires_grad_(True)
    coeff_values = torch.zeros((64, 0), dtype=torch.float64)
    order = _call(
        reg,
        "order",
        raw,
        observation,
        coeff_values,
        max_replenish,
        label="ProportionalBaseStock.order",
    )
    if not isinstance(order, torch.Tensor):
        raise AssignmentFeedback(
            f"order() must return a torch tensor (the methods train through it), got "
            f"{type(order).__name__}: use torch operations such as .clamp, not NumPy"
        )
    if tuple(order.shape) != (64,):
        raise AssignmentFeedback(
            f"order() must return one order per row, shape (batch,) = (64,), got "
            f"{tuple(order.shape)} (raw has shape (batch, 2): raw[:, 0] and raw[:, 1])"
        )
    expected = _reference_proportional_order(
        raw.detach(), observation.inventory_position, max_replenish
    )
    got = order.detach().to(torch.float64)
    if not torch.allclose(got, expected, rtol=1e-5, atol=1e-5):
        i = int(torch.argmax((got - expected).abs()))
        level, share = (float(v) for v in raw[i].detach())
        position = float(observation.inventory_position[i])
        raise AssignmentFeedback(
            f"order() for S = raw[:, 0] = {level:.2f}, raw[:, 1] = {share:.2f}, inventory "
            f"position {position:.2f}, M = {max_replenish:g}: you give {float(got[i]):.4f}, "
            f"expected {float(expected[i]):.4f} = clip(beta (S - IP), 0, M) with beta = "
            "clip(raw[:, 1] / M, 0, 1)"
        )
    done.append("order() follows clip(beta (S - IP), 0, M), beta = clip(raw[:, 1] / M, 0, 1)")

    if order.requires_grad:
        order.sum().backward()
    if raw.grad is None or float(raw.grad.abs().sum()) == 0.0:
        raise AssignmentFeedback(
            "order() passes no gradient back to the network's outputs: DS trains through the "
            "mapping, so keep it in torch (no .item(), .detach(), NumPy or round())"
        )
    done.append("order() is differentiable (DS can train through it)")

    if not train:
        return done

    register_regularization(reg, overwrite=True)
    dataset = load_setting("setting1")
    smoke = resolve_profile("smoke")
    for method in ("ds", rl_method):
        config = {**default_config(method, "base"), **smoke.training_overrides(method)}
        if method == "ds":
            config["epochs"] = 2
        try:
            result = train_policy(
                method, name, dataset, config, seed=0, device=device, use_defaults=False
            )
        except Exception as error:
            raise AssignmentFeedback(
                f"training {method.upper()} with your regularization failed: "
                f"{_describe(error, getattr(solution, '__file__', None))}"
            ) from None
        if not math.isfinite(result.test_loss):
            raise AssignmentFeedback(
                f"{method.upper()} with your regularization gives the test loss "
                f"{result.test_loss}; orders must be finite numbers"
            )
        done.append(
            f"{method.upper()} trains with it (tiny budget; test loss {result.test_loss:.3f})"
        )
    return done


def compare_regularizations(
    context: Any,
    regularizations: Sequence[str] = ("none", "base"),
    methods: Sequence[str] = ("ds", "ddpg", "ppo"),
    *,
    setting: str = "setting1",
    seeds: Sequence[int] = (0,),
    dataset: Any = None,
) -> pd.DataFrame:
    """Train each (method, regularization, seed) once at the profile's training length, through
    the result store, and measure it against the setting's benchmark.

    Each run starts from the paper's published setting-1 configuration of the method with that
    regularization; a regularization without one (a plug-in) borrows the configuration of the
    paper regularization it names in :attr:`~deepstock.model.regularizations.Regularization.tuning_like`.
    The profile's training overrides (:meth:`~deepstock.tuning.profiles.Profile.training_overrides`)
    go on top. No tuning: this is a like-for-like check of the mappings.

    Args:
        context: a :class:`deepstock.paper.experiments.ExperimentContext` (profile, device, store).
        regularizations: registered names.
        methods: ``"ds"``, ``"ddpg"``, ``"ppo"``.
        setting: the setting whose dataset is used (``dataset`` replaces it).
        seeds: training seeds.

    Returns:
        One row per run: ``method``, ``regularization``, ``seed``, ``val_loss``, ``test_loss``,
        ``val_gap_pct`` and ``test_gap_pct`` against the primary benchmark (NaN where the
        setting has none in :func:`deepstock.model.optimal.benchmark_losses`), ``benchmark``,
        ``wall_time_s``, ``cached`` and ``key`` (the store key).
    """

    if dataset is None:
        dataset = load_setting(setting)
    benchmarks = benchmark_losses(dataset)
    primary = benchmarks[0] if benchmarks else None
    profile = context.resolved_profile
    rows = []
    for method in methods:
        for reg_name in regularizations:
            reg = get_regularization(reg_name)
            # a plug-in borrows the published configuration of its tuning_like
            config = default_config(method, reg.name, setting)
            config = {**config, **profile.training_overrides(method)}
            for seed in seeds:
                run = cached_train(
                    context.store,
                    method,
                    reg.name,
                    dataset,
                    config,
                    seed=int(seed),
                    device=context.device,
                    use_defaults=False,
                )
                row = {
                    "method": method,
                    "regularization": reg.name,
                    "seed": int(seed),
                    "val_loss": run["val"]["loss"],
                    "test_loss": run["test"]["loss"],
                }
                for split in ("val", "test"):
                    row[f"{split}_gap_pct"] = (
                        gap_pct(row[f"{split}_loss"], primary[f"{split}_loss"])
                        if primary
                        else float("nan")
                    )
                row["benchmark"] = primary["policy"] if primary else ""
                row.update(wall_time_s=run["wall_time_s"], cached=run["cached"], key=run["key"])
                rows.append(row)
    return pd.DataFrame(rows)


# ====================================================================== (d) overfitting
def _lognormal_parameters(mean: Any, std: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(mu, s)`` of the lognormal with the given mean and standard deviation:
    ``s^2 = log(1 + std^2 / mean^2)``, ``mu = log(mean) - s^2 / 2``."""
    mean = np.asarray(mean, dtype=float)
    std = np.asarray(std, dtype=float)
    s2 = np.log1p((std / mean) ** 2)
    return np.log(mean) - s2 / 2.0, np.sqrt(s2)


def _reference_lognormal_levels(dataset: Any) -> np.ndarray:
    sigma = dataset.features[:, 0, dataset.feature_names.index("demand_std")]
    mean = float(dataset.params.get("args", {}).get("demand_mean", 100.0))
    mu, s = _lognormal_parameters(mean, sigma)
    ratio = dataset.backlog_cost / (dataset.backlog_cost + dataset.holding_cost)
    return np.exp(mu + s * NormalDist().inv_cdf(ratio))


def _skewness(values: np.ndarray) -> float:
    centred = values - values.mean()
    return float((centred**3).mean() / (centred**2).mean() ** 1.5)


def _check_lognormal_dataset(
    dataset: Any, n_skus: int, horizon_periods: int, *, check_skew: bool
) -> str:

    what = f"lognormal_dataset({n_skus}, {horizon_periods})"
    if not isinstance(dataset, InventoryDataset):
        raise AssignmentFeedback(
            f"{what} must return an InventoryDataset, got {type(dataset).__name__}: start from "
            "make_setting('setting4', ...) and replace its demand (dataclasses.replace)"
        )
    sizes = dataset.split_sizes()
    if sizes.get("train") != n_skus or sizes.get("val") != n_skus:
        raise AssignmentFeedback(
            f"{what} has splits {sizes}; setting 4 has one training and one validation "
            f"trajectory per SKU ({n_skus} each) and 100 test trajectories per SKU"
        )
    if "demand_std" not in dataset.feature_names:
        raise AssignmentFeedback(
            f"{what} has no 'demand_std' feature: keep setting 4's features (the SKU's sigma)"
        )
    period, lead = int(dataset.review_period[0]), int(dataset.lead_time[0, 0])
    horizon = period + lead + period * horizon_periods
    if dataset.horizon != horizon:
        raise AssignmentFeedback(
            f"{what} has {dataset.horizon} days, setting 4 with H = {horizon_periods} has "
            f"T = (P + L) + P H = {horizon}"
        )
    days = iid_demand_days(horizon_periods, period, lead)
    off = np.ones(dataset.horizon, bool)
    off[days] = False
    if (dataset.demand[:, off] != 0).any():
        raise AssignmentFeedback(
            f"{what} has demand on days without demand in setting 4: only the days "
            f"{days.tolist()[:3]}... (one per review period, the day an order lands) carry it"
        )
    on = dataset.demand[:, days]
    if (on <= 0).any():
        raise AssignmentFeedback(
            f"{what} has zero or negative demand on a demand day; lognormal demand is always "
            "positive (are you still using max(0, normal)?)"
        )
    sigma = dataset.features[:, 0, dataset.feature_names.index("demand_std")]
    test = dataset.split == "test"
    demand = on[test]
    standardized = (demand - 100.0) / sigma[test, None]
    # tolerances of about four standard errors: a correct solution passes with any seed
    error = float(demand.mean()) - 100.0
    allowed = 4.0 * float(np.sqrt(np.mean(sigma[test] ** 2) / demand.size))
    if abs(error) > allowed:
        raise AssignmentFeedback(
            f"{what}: the test demand averages {demand.mean():.2f}, expected 100 "
            f"(+- {allowed:.2f}); the lognormal must have mean 100: mu = log(100) - s^2 / 2"
        )
    spread = float(standardized.std())
    if not 0.85 < spread < 1.15:
        raise AssignmentFeedback(
            f"{what}: the demand's spread is {spread:.2f} times each SKU's sigma, expected 1 "
            "(s^2 = log(1 + sigma^2 / 100^2) gives the standard deviation sigma)"
        )
    line = f"{what}: setting 4's layout, mean {demand.mean():.1f}, spread {spread:.2f} sigma"
    if check_skew:
        skew = _skewness(standardized.reshape(-1))
        cv = sigma[test] / 100.0
        expected = float(np.mean((np.exp(np.log1p(cv**2)) + 2) * cv))
        if skew < 0.5 * expected:
            raise AssignmentFeedback(
                f"{what}: the demand is not right-skewed enough (skewness {skew:.2f}, a "
                f"lognormal with these sigmas has about {expected:.2f}). Did you draw from a "
                "normal?"
            )
        line += f", skewness {skew:.2f} (lognormal: {expected:.2f})"
    return line


#: The DS configuration of the overfitting experiment (exercise (d)): a point of the paper's IID
#: search space (the book's *Methods and tuning protocol* chapter) whose untrained target is the mean demand, 0.2 x 500 = 100
#: units. The paper's published setting-1 configuration starts at 257 units and stops early.
IID_DS_CONFIG: dict[str, Any] = {
    "hidden_layers": [32, 32],
    "batch_size": 5,
    "learning_rate": 0.01,
    "scheduler_factor": 0.5,
    "initial_action_bias": 0.2,
}


def overfitting_table(
    make_dataset: Callable[[int, int, int], Any],
    benchmark_levels: Callable[[Any], Any],
    context: Any,
    n_skus: Sequence[int] = (5, 20),
    horizons: Sequence[int] = (2, 8, 32),
    *,
    seed: int = 0,
    training_seeds: Sequence[int] = (0,),
) -> pd.DataFrame:
    """Setting 4's experiment on any IID demand: DS with Base against a benchmark, per (N, H).

    For each ``N`` in ``n_skus`` and ``H`` in ``horizons``: ``make_dataset(N, H, seed)`` gives
    the trajectories; ``benchmark_levels(split_dataset)`` the stationary base-stock level of
    each trajectory of a split; DS with Base trains (through the context's result store) with
    :data:`IID_DS_CONFIG` and the profile's DS training length, once per training seed; the
    losses are averaged over the seeds.

    Returns one row per (N, H): ``n_skus``, ``horizon_periods``, ``benchmark_val_loss``,
    ``benchmark_test_loss``, ``val_loss``, ``test_loss``, ``val_gap_pct``, ``test_gap_pct``,
    ``wall_time_s`` (training, summed over seeds).
    """

    config = {**IID_DS_CONFIG, **context.resolved_profile.training_overrides("ds")}
    rows = []
    for n in n_skus:
        for h in horizons:
            dataset = make_dataset(n, h, seed)
            bench = {}
            for split in ("val", "test"):
                part = dataset.subset(split)
                levels = np.asarray(benchmark_levels(part), dtype=float)
                rollout = simulate(part, StationaryBaseStock(levels), device="cpu")
                bench[split] = float(rollout.trajectory_loss.mean())
            runs = [
                cached_train(
                    context.store,
                    "ds",
                    "base",
                    dataset,
                    config,
                    seed=int(s),
                    device=context.device,
                    use_defaults=False,
                )
                for s in training_seeds
            ]
            val = float(np.mean([r["val"]["loss"] for r in runs]))
            test = float(np.mean([r["test"]["loss"] for r in runs]))
            rows.append(
                {
                    "n_skus": int(n),
                    "horizon_periods": int(h),
                    "benchmark_val_loss": bench["val"],
                    "benchmark_test_loss": bench["test"],
                    "val_loss": val,
                    "test_loss": test,
                    "val_gap_pct": gap_pct(val, bench["val"]),
                    "test_gap_pct": gap_pct(test, bench["test"]),
                    "wall_time_s": float(sum(r["wall_time_s"] for r in runs)),
                }
            )
    return pd.DataFrame(rows)


def check_overfitting(
    solution: Any,
    *,
    train: bool = True,
    device: str = "cpu",
    report: list[str] | None = None,
) -> list[str]:
    """Check exercise (d): the lognormal datasets have setting 4's layout and the right
    moments, the levels are the lognormal's critical fractile, and, with ``train``, that DS
    with Base trains on the student's data at a tiny budget."""

    done = [] if report is None else report  # filled as the checks pass
    for n, h, seed in ((5, 8, 0), (3, 2, 1)):
        dataset = _call(solution, "lognormal_dataset", n, h, seed)
        done.append(_check_lognormal_dataset(dataset, n, h, check_skew=n * h >= 40))
    again = _call(solution, "lognormal_dataset", 3, 2, 1)
    if not np.array_equal(again.demand, dataset.demand):
        raise AssignmentFeedback(
            "lognormal_dataset(3, 2, seed=1) gives other demand when called twice: draw from "
            "a generator seeded with `seed` (numpy.random.default_rng(seed))"
        )
    other = _call(solution, "lognormal_dataset", 3, 2, 2)
    if np.array_equal(other.demand, dataset.demand):
        raise AssignmentFeedback(
            "lognormal_dataset gives the same demand for seeds 1 and 2: use `seed`"
        )
    done.append("lognormal_dataset() is reproducible and depends on its seed")

    cases = [
        ("N = 5, H = 2", make_setting("setting4", n_skus=5, horizon_periods=2)),
        (
            "N = 4, H = 2, h = 0.3, b = 0.7",
            make_setting(
                "setting4", n_skus=4, horizon_periods=2, holding_cost=0.3, backlog_cost=0.7
            ),
        ),
    ]
    for label, dataset in cases:
        expected = _reference_lognormal_levels(dataset)
        got = _as_vector(
            _call(solution, "lognormal_levels", dataset),
            "lognormal_levels",
            size=expected.size,
        )
        if not np.allclose(got, expected, rtol=1e-6):
            i = int(np.argmax(np.abs(got - expected)))
            sigma = dataset.features[i, 0, 0]
            normal = 100.0 + sigma * NormalDist().inv_cdf(
                dataset.backlog_cost / (dataset.backlog_cost + dataset.holding_cost)
            )
            hint = (
                " That is the normal's level: lognormal demand needs the lognormal's quantile."
                if math.isclose(got[i], normal, rel_tol=1e-6)
                else ""
            )
            raise AssignmentFeedback(
                f"lognormal_levels ({label}): for sigma = {sigma:.3f} you give {got[i]:.4f}, "
                f"expected {expected[i]:.4f} = exp(mu + s z), z the normal quantile of "
                f"b / (b + h).{hint}"
            )
    done.append("lognormal_levels() is the lognormal critical fractile, for two cost ratios")

    if train:
        profile = resolve_profile("smoke", training={"ds": {"epochs": 2}})
        with tempfile.TemporaryDirectory() as folder:
            context = ExperimentContext(
                profile=profile, device=device, store=ResultStore(Path(folder))
            )
            table = overfitting_table(
                lambda n, h, s: _call(solution, "lognormal_dataset", n, h, s),
                lambda part: _call(solution, "lognormal_levels", part),
                context,
                n_skus=(2,),
                horizons=(2,),
            )
        gap = float(table["test_gap_pct"].iloc[0])
        if not math.isfinite(gap):
            raise AssignmentFeedback("DS on your dataset gives a non-finite test gap")
        done.append(f"DS with Base trains on your data (tiny budget; test gap {gap:.1f}%)")
    return done


# ====================================================================== running a check
_CHECKS: dict[str, Callable[..., list[str]]] = {
    "sensitivity": check_sensitivity,
    "benchmark": check_benchmark,
    "regularization": check_regularization,
    "overfitting": check_overfitting,
}


def _exercise_named(name: str) -> Exercise:
    key = str(name).lower()
    by_letter = {exercise.letter: exercise for exercise in EXERCISES.values()}
    if key in EXERCISES:
        return EXERCISES[key]
    if key in by_letter:
        return by_letter[key]
    raise ValueError(f"unknown exercise {name!r}; expected one of {sorted(EXERCISES)} (or a-d)")


def run_check(exercise: str, solution: Any = None, **options: Any) -> CheckResult:
    """Run an exercise's self-check and return its result; never raises for the student's errors.

    Args:
        exercise: a name of :data:`EXERCISES` or its letter.
        solution: the student's file (a path), an imported module, or any object with the
            exercise's functions as attributes; default: the starter's path.
        **options: passed to the exercise's ``check_*`` function (``train=False`` skips the
            training runs of (c) and (d)).
    """
    spec = _exercise_named(exercise)
    start = time.perf_counter()
    details: list[str] = []
    try:
        if solution is None or isinstance(solution, (str, Path)):
            solution = load_solution(solution if solution is not None else spec.starter)
        _CHECKS[spec.name](solution, report=details, **options)
    except NotDoneYet as feedback:
        started = bool(details)  # an earlier function may be done already
        return CheckResult(
            spec.name, False, started, str(feedback), details, time.perf_counter() - start
        )
    except AssignmentFeedback as feedback:
        return CheckResult(
            spec.name, False, True, str(feedback), details, time.perf_counter() - start
        )
    except Exception as error:  # something the checks did not foresee: still no traceback
        message = (
            f"the check stopped on {_describe(error, getattr(solution, '__file__', None))}. "
            "Check that your functions return what their docstrings ask for; if they do, "
            "tell your instructor."
        )
        return CheckResult(spec.name, False, True, message, details, time.perf_counter() - start)
    seconds = time.perf_counter() - start
    message = f"All {len(details)} checks passed. Now write your explanation in the notebook."
    return CheckResult(spec.name, True, True, message, details, seconds)


# ====================================================================== command line
def main(argv: Sequence[str] | None = None) -> int:
    """``python -m deepstock.course.assignments check NAME [FILE]`` or ``... list``."""
    parser = argparse.ArgumentParser(
        prog="python -m deepstock.course.assignments",
        description="Self-checks of the DeepStock book's assignments.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("check", help="check your solution of one exercise")
    check.add_argument("exercise", help=f"one of {', '.join(EXERCISES)} (or a-d)")
    check.add_argument(
        "file", nargs="?", default=None, help="your file (default: the starter's path)"
    )
    check.add_argument(
        "--no-train", action="store_true", help="skip the tiny training runs of (c) and (d)"
    )
    commands.add_parser("list", help="list the exercises and their starter files")
    args = parser.parse_args(argv)
    if args.command == "list":
        for spec in EXERCISES.values():
            print(f"({spec.letter}) {spec.name:<15} {spec.starter:<36} {spec.title}")
        return 0
    try:
        spec = _exercise_named(args.exercise)
    except ValueError as error:
        parser.error(str(error))
    options = (
        {"train": False}
        if args.no_train
        and spec.name
        in (
            "regularization",
            "overfitting",
        )
        else {}
    )
    result = run_check(spec.name, args.file or spec.starter, **options)
    print(result)
    return 0 if result.passed else 1


if __name__ == "__main__":
    sys.exit(main())
