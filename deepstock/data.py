"""Datasets of demand trajectories (SPEC.md section 6).

An :class:`InventoryDataset` holds every trajectory (one SKU each) of one experiment together with
its split label, the problem constants (costs, order cap, backlog or lost sales) and the parameters
that generated it. Everything downstream (simulator, benchmarks, methods) reads this one object.

This module also holds

* the generators of the synthetic settings: :func:`generate_indep` (setting 1),
  :func:`generate_ar1` (settings 2 and 3), :func:`generate_iid` (setting 4) and
  :func:`make_setting`, which calls them with each setting's parameters;
* the on-disk format (a folder with ``trajectories.csv`` and ``meta.json``, described in
  ``data/README.md``): :func:`save_dataset`, :func:`load_dataset`, and :func:`load_setting`,
  which reads the committed datasets under ``data/datasets/``.

Every generator has two random streams. ``stream="authors"`` reproduces the authors' public
generators draw for draw (SPEC.md section 6, "The authors' random streams"), so that the
trajectories, and every loss computed on them, equal the paper's. ``stream="fresh"`` draws new
trajectories from the same distributions with one explicit :class:`numpy.random.Generator`, for
repeated experiments; neither stream touches NumPy's global random state.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import re
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "OBJECTIVES",
    "CORE_COLUMNS",
    "DATA_FILE",
    "FORMAT_VERSION",
    "META_FILE",
    "SETTINGS",
    "SPLITS",
    "STREAMS",
    "InventoryDataset",
    "dataset_name",
    "default_datasets_dir",
    "generate_ar1",
    "generate_iid",
    "generate_indep",
    "iid_demand_days",
    "load_dataset",
    "load_setting",
    "make_setting",
    "save_dataset",
]

#: The split labels, in the order they are stored.
SPLITS: tuple[str, ...] = ("train", "val", "test")

#: What a dataset's ``loss`` can be: the per-unit cost of SPEC.md section 2 or Tmall's ``J``.
OBJECTIVES: tuple[str, ...] = ("cost", "tmall")

#: The random streams of the generators.
STREAMS: tuple[str, ...] = ("authors", "fresh")

#: The synthetic settings of the paper (SPEC.md section 6).
SETTINGS: tuple[str, ...] = ("setting1", "setting2", "setting3", "setting4")

#: Version of the on-disk format written by :func:`save_dataset`.
FORMAT_VERSION = 1

#: File names inside a dataset folder.
DATA_FILE = "trajectories.csv"
META_FILE = "meta.json"

#: The columns every ``trajectories.csv`` has, in the order they are written; one column per
#: feature follows them.
CORE_COLUMNS: tuple[str, ...] = (
    "sku_id",
    "split",
    "day",
    "demand",
    "lead_time",
    "review_period",
    "initial_stock",
)

_FEATURE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_INTEGER_TEXT = re.compile(r"[+-]?[0-9]+")

# The fresh stream of seed s is default_rng([_FRESH_STREAM_KEY, s]) rather than default_rng(s):
# the authors' stream already uses default_rng(42) for the INDEP and IID demands, and a fresh
# dataset must not silently repeat the authors' draws when it is given the same seed.
_FRESH_STREAM_KEY = 0x44535443  # "DSTC"


# --------------------------------------------------------------------------------------------
# The dataset container
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class InventoryDataset:
    """Trajectories of one experiment, with their split and the problem constants.

    Shapes use ``n`` for the number of trajectories (SKUs), ``T`` for days and ``F`` for features.
    Construction converts array-likes to the dtypes below and checks shapes, dtypes and values
    (a ``ValueError`` names the field); :meth:`validate` adds the checks that concern the whole
    dataset (unique ``sku_id``, non-empty splits, JSON-serializable ``params``).

    Attributes:
        name: Short name, for example ``"setting1"``.
        demand: ``(n, T)`` float64, units per day, ``>= 0`` and finite.
        features: ``(n, T, F)`` float64, the context ``c_t`` seen by the policy on day ``t``
            (finite).
        feature_names: ``F`` names of the feature columns (Python identifiers, unique, none equal
            to a column of :data:`CORE_COLUMNS`).
        review_period: ``(n,)`` int64, ``P >= 1`` (days between orders).
        lead_time: ``(n, T)`` int64, ``L_t >= 0`` days, per trajectory and day (constant rows in
            settings 1-4).
        initial_stock: ``(n,)`` float64, on-hand units at the start of day 0 (finite).
        split: ``(n,)`` str, one of :data:`SPLITS`.
        sku_id: ``(n,)`` int64, identifiers (unique).
        holding_cost: ``h >= 0``, cost per unit left at the end of a day.
        backlog_cost: ``b >= 0``, cost per unit backlogged (or lost, under lost sales) at the end
            of a day.
        max_replenish: order cap, units (``> 0``).
        lost_sales: ``True`` for lost sales, ``False`` for backlog.
        coeff_features: indices into the feature axis of the demand features ``g(c)`` that the
            Coeff and Both regularizations multiply (SPEC.md section 3); empty when the dataset
            has none (settings 1-4).
        params: the generator's parameters (setting, stream, seed, sizes, distribution
            parameters), JSON-serializable.
        objective: what "loss" means on this dataset, the number every method trains on,
            validates on and reports as ``loss``: ``"cost"`` (the per-unit loss ``h y^+ + b u``
            of SPEC.md section 2, settings 1-4) or ``"tmall"`` (Tmall's objective ``J = 100 SR
            + TT / 2``, the Tmall-like proxy); see :class:`deepstock.simulator.InventorySimulator`.
    """

    name: str
    demand: np.ndarray
    features: np.ndarray
    feature_names: tuple[str, ...]
    review_period: np.ndarray
    lead_time: np.ndarray
    initial_stock: np.ndarray
    split: np.ndarray
    sku_id: np.ndarray
    holding_cost: float = 0.1
    backlog_cost: float = 0.9
    max_replenish: float = 100.0
    lost_sales: bool = False
    coeff_features: tuple[int, ...] = ()
    params: dict[str, Any] = field(default_factory=dict)
    objective: str = "cost"

    def __post_init__(self) -> None:
        # Normalize dtypes first, so that every later check (and every user) sees one layout.
        set_ = object.__setattr__
        set_(self, "demand", _float_array("demand", self.demand, ndim=2))
        n, horizon = self.demand.shape
        set_(self, "features", _float_array("features", self.features, ndim=3))
        set_(self, "review_period", _int_array("review_period", self.review_period, ndim=1))
        set_(self, "lead_time", _int_array("lead_time", self.lead_time, ndim=2))
        set_(self, "initial_stock", _float_array("initial_stock", self.initial_stock, ndim=1))
        set_(self, "sku_id", _int_array("sku_id", self.sku_id, ndim=1))
        set_(self, "split", _str_array("split", self.split))
        set_(self, "feature_names", tuple(self.feature_names))
        set_(self, "coeff_features", tuple(self.coeff_features))
        for name in ("holding_cost", "backlog_cost", "max_replenish"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
                raise ValueError(f"{name} must be a number, got {value!r}")
            set_(self, name, float(value))
        if not isinstance(self.lost_sales, (bool, np.bool_)):
            raise ValueError(f"lost_sales must be a bool, got {self.lost_sales!r}")
        set_(self, "lost_sales", bool(self.lost_sales))

        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"name must be a non-empty string, got {self.name!r}")
        if horizon < 1:
            raise ValueError(f"demand must have at least one day (T >= 1), got shape {(n, 0)}")
        if self.features.shape[:2] != (n, horizon):
            raise ValueError(
                f"features must have shape (n, T, F) with (n, T) = {(n, horizon)}, "
                f"got {self.features.shape}"
            )
        for name, expected in (
            ("review_period", (n,)),
            ("lead_time", (n, horizon)),
            ("initial_stock", (n,)),
            ("split", (n,)),
            ("sku_id", (n,)),
        ):
            shape = getattr(self, name).shape
            if shape != expected:
                raise ValueError(f"{name} must have shape {expected}, got {shape}")

        n_features = self.features.shape[2]
        if len(self.feature_names) != n_features:
            raise ValueError(
                f"feature_names has {len(self.feature_names)} names for {n_features} features"
            )
        for feature_name in self.feature_names:
            if not isinstance(feature_name, str) or not _FEATURE_NAME.fullmatch(feature_name):
                raise ValueError(
                    f"feature name {feature_name!r} must be a Python identifier "
                    "(letters, digits, underscores)"
                )
            if feature_name in CORE_COLUMNS:
                raise ValueError(f"feature name {feature_name!r} clashes with a core column")
        if len(set(self.feature_names)) != n_features:
            raise ValueError(f"feature_names must be unique, got {self.feature_names}")
        for index in self.coeff_features:
            if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
                raise ValueError(f"coeff_features must be integers, got {self.coeff_features}")
            if not 0 <= index < n_features:
                raise ValueError(
                    f"coeff_features index {index} is out of range for {n_features} features"
                )
        if len(set(self.coeff_features)) != len(self.coeff_features):
            raise ValueError(f"coeff_features must be unique, got {self.coeff_features}")
        set_(self, "coeff_features", tuple(int(i) for i in self.coeff_features))

        _check_values(
            demand=self.demand,
            features=self.features,
            review_period=self.review_period,
            lead_time=self.lead_time,
            initial_stock=self.initial_stock,
            split=self.split,
            sku_id=self.sku_id,
        )
        if not (self.holding_cost >= 0 and math.isfinite(self.holding_cost)):
            raise ValueError(f"holding_cost must be finite and >= 0, got {self.holding_cost}")
        if not (self.backlog_cost >= 0 and math.isfinite(self.backlog_cost)):
            raise ValueError(f"backlog_cost must be finite and >= 0, got {self.backlog_cost}")
        if not (self.max_replenish > 0 and math.isfinite(self.max_replenish)):
            raise ValueError(f"max_replenish must be finite and > 0, got {self.max_replenish}")
        if not isinstance(self.params, dict):
            raise ValueError(f"params must be a dict, got {type(self.params).__name__}")
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {OBJECTIVES}, got {self.objective!r}")

    # ---- whole-dataset checks ---------------------------------------------------------------

    def validate(self, *, require_splits: Iterable[str] = SPLITS) -> InventoryDataset:
        """Check what construction does not: unique ``sku_id``, the splits in ``require_splits``
        non-empty, ``params`` JSON-serializable (no NaN). Returns ``self``.

        Construction cannot require these, because :meth:`select` and :meth:`subset` make
        datasets with one split only, or with a trajectory repeated (sampling with replacement).
        """
        unique_ids, counts = np.unique(self.sku_id, return_counts=True)
        if (counts > 1).any():
            repeated = unique_ids[counts > 1][:5].tolist()
            raise ValueError(f"dataset {self.name!r}: sku_id must be unique, repeated: {repeated}")
        sizes = self.split_sizes()
        for split in require_splits:
            if split not in SPLITS:
                raise ValueError(f"require_splits: unknown split {split!r}, expected {SPLITS}")
            if sizes[split] == 0:
                raise ValueError(f"dataset {self.name!r} has no trajectories in split {split!r}")
        try:
            json.dumps(self.params, allow_nan=False)
        except (TypeError, ValueError) as error:
            raise ValueError(
                f"dataset {self.name!r}: params must be JSON-serializable: {error}"
            ) from None
        return self

    def equals(self, other: InventoryDataset) -> bool:
        """``True`` if every field of ``other`` is equal, arrays exactly (same dtype and bits)."""
        if not isinstance(other, InventoryDataset):
            return False
        for item in dataclasses.fields(self):
            mine, theirs = getattr(self, item.name), getattr(other, item.name)
            if isinstance(mine, np.ndarray):
                if (
                    mine.dtype != theirs.dtype
                    or mine.shape != theirs.shape
                    or mine.tobytes() != theirs.tobytes()
                ):
                    return False
            elif mine != theirs:
                return False
        return True

    # ---- sizes ------------------------------------------------------------------------------

    @property
    def n_trajectories(self) -> int:
        return int(self.demand.shape[0])

    @property
    def horizon(self) -> int:
        """``T``, the number of days of every trajectory."""
        return int(self.demand.shape[1])

    @property
    def max_lead_time(self) -> int:
        return int(self.lead_time.max()) if self.lead_time.size else 0

    @property
    def warmup(self) -> np.ndarray:
        """``(n,)`` int64, ``W = P + max_t L_t`` days during which no loss is counted."""
        return self.review_period + self.lead_time.max(axis=1)

    def split_sizes(self) -> dict[str, int]:
        """Number of trajectories per split, for every label of :data:`SPLITS`."""
        return {split: int((self.split == split).sum()) for split in SPLITS}

    # ---- selections -------------------------------------------------------------------------

    def subset(self, split: str) -> InventoryDataset:
        """The trajectories of one split (``"train"``, ``"val"`` or ``"test"``)."""
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        mask = self.split == split
        if not mask.any():
            raise ValueError(f"dataset {self.name!r} has no trajectories in split {split!r}")
        return self.select(np.flatnonzero(mask))

    def select(self, index: np.ndarray) -> InventoryDataset:
        """The trajectories at integer positions ``index``, in that order."""
        index = np.asarray(index, dtype=np.int64)
        return dataclasses.replace(
            self,
            demand=self.demand[index],
            features=self.features[index],
            review_period=self.review_period[index],
            lead_time=self.lead_time[index],
            initial_stock=self.initial_stock[index],
            split=self.split[index],
            sku_id=self.sku_id[index],
        )


def _float_array(name: str, value: Any, *, ndim: int) -> np.ndarray:
    array = np.asarray(value)
    if array.dtype.kind not in "iuf":
        raise ValueError(f"{name} must hold numbers, got dtype {array.dtype}")
    if array.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {array.shape}")
    return array.astype(np.float64, copy=False)


def _int_array(name: str, value: Any, *, ndim: int) -> np.ndarray:
    array = np.asarray(value)
    if array.dtype.kind not in "iu":
        raise ValueError(f"{name} must hold integers, got dtype {array.dtype}")
    if array.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {array.shape}")
    return array.astype(np.int64, copy=False)


def _str_array(name: str, value: Any) -> np.ndarray:
    array = np.asarray(value)
    if array.ndim != 1:
        raise ValueError(f"{name} must have 1 dimension, got shape {array.shape}")
    if array.size == 0:
        return array.astype("<U5")
    if array.dtype.kind == "O" and all(isinstance(item, str) for item in array.tolist()):
        array = array.astype(str)
    if array.dtype.kind != "U":
        raise ValueError(f"{name} must hold strings, got dtype {array.dtype}")
    return array


def _check_values(
    *,
    demand: np.ndarray,
    features: np.ndarray,
    review_period: np.ndarray,
    lead_time: np.ndarray,
    initial_stock: np.ndarray,
    split: np.ndarray,
    sku_id: np.ndarray,
) -> None:
    """The value checks shared by construction and loading (shapes already agree)."""

    def where(row: int, day: int | None = None) -> str:
        text = f"sku_id {int(sku_id[row])}"
        return text if day is None else f"{text}, day {day}"

    def first(mask: np.ndarray) -> tuple[int, ...]:
        return tuple(int(i) for i in np.argwhere(mask)[0])

    bad = ~np.isfinite(demand)
    if bad.any():
        row, day = first(bad)
        raise ValueError(f"demand must be finite ({where(row, day)} has {demand[row, day]})")
    bad = demand < 0
    if bad.any():
        row, day = first(bad)
        raise ValueError(f"demand must be >= 0 ({where(row, day)} has {demand[row, day]})")
    bad = ~np.isfinite(features)
    if bad.any():
        row, day, column = first(bad)
        raise ValueError(
            f"features must be finite ({where(row, day)}, feature {column} has "
            f"{features[row, day, column]})"
        )
    bad = review_period < 1
    if bad.any():
        (row,) = first(bad)
        raise ValueError(f"review_period must be >= 1 ({where(row)} has {review_period[row]})")
    bad = lead_time < 0
    if bad.any():
        row, day = first(bad)
        raise ValueError(f"lead_time must be >= 0 ({where(row, day)} has {lead_time[row, day]})")
    bad = ~np.isfinite(initial_stock)
    if bad.any():
        (row,) = first(bad)
        raise ValueError(f"initial_stock must be finite ({where(row)} has {initial_stock[row]})")
    bad = ~np.isin(split, SPLITS)
    if bad.any():
        (row,) = first(bad)
        raise ValueError(f"split must be one of {SPLITS} ({where(row)} has {str(split[row])!r})")


# --------------------------------------------------------------------------------------------
# Parameter checks of the generators
# --------------------------------------------------------------------------------------------


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def _check_number(name: str, value: Any, minimum: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name} must be a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def _check_range(name: str, value: Any, minimum: float) -> list[float]:
    try:
        low, high = value
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a pair (low, high), got {value!r}") from None
    low = _check_number(f"{name}[0]", low, minimum)
    high = _check_number(f"{name}[1]", high, minimum)
    if low > high:
        raise ValueError(f"{name} must have low <= high, got {value!r}")
    return [low, high]


def _check_stream(stream: str, seed: Any, rng: np.random.Generator | None) -> int | None:
    if stream not in STREAMS:
        raise ValueError(f"stream must be one of {STREAMS}, got {stream!r}")
    if rng is not None:
        if stream != "fresh":
            raise ValueError("rng can only be given with stream='fresh'")
        if not isinstance(rng, np.random.Generator):
            raise ValueError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
        return None
    # NumPy seeds are 32-bit for the legacy generator the authors' stream uses.
    seed = _check_int("seed", seed, 0)
    if seed >= 2**32:
        raise ValueError(f"seed must be < 2**32, got {seed}")
    return seed


def _fresh_generator(seed: int | None, rng: np.random.Generator | None) -> np.random.Generator:
    if rng is not None:
        return rng
    return np.random.default_rng([_FRESH_STREAM_KEY, seed])


def _check_costs(
    holding_cost: float, backlog_cost: float, max_replenish: float
) -> tuple[float, float, float]:
    holding_cost = _check_number("holding_cost", holding_cost, 0.0)
    backlog_cost = _check_number("backlog_cost", backlog_cost, 0.0)
    max_replenish = _check_number("max_replenish", max_replenish)
    if max_replenish <= 0:
        raise ValueError(f"max_replenish must be > 0, got {max_replenish}")
    return holding_cost, backlog_cost, max_replenish


def _split_labels(train_size: int, val_size: int, test_size: int) -> np.ndarray:
    """``(n,)`` labels: train first, then validation, then test (the authors' order)."""
    return np.repeat(np.array(SPLITS), [train_size, val_size, test_size])


def _synthetic_dataset(
    name: str,
    demand: np.ndarray,
    features: np.ndarray,
    feature_name: str,
    *,
    review_period: int,
    lead_time: int,
    split_sizes: tuple[int, int, int],
    holding_cost: float,
    backlog_cost: float,
    max_replenish: float,
    params: dict[str, Any],
) -> InventoryDataset:
    """A validated dataset of settings 1-4: constant P and L, no initial stock, backlog, one
    feature, SKU ids ``1..n`` in split order (train, validation, test)."""
    n, horizon = demand.shape
    return InventoryDataset(
        name=name,
        demand=demand,
        features=features,
        feature_names=(feature_name,),
        review_period=np.full(n, review_period, dtype=np.int64),
        lead_time=np.full((n, horizon), lead_time, dtype=np.int64),
        initial_stock=np.zeros(n),
        split=_split_labels(*split_sizes),
        sku_id=np.arange(1, n + 1, dtype=np.int64),
        holding_cost=holding_cost,
        backlog_cost=backlog_cost,
        max_replenish=max_replenish,
        lost_sales=False,
        coeff_features=(),
        params=params,
    ).validate()


def _params(
    generator: str, stream: str, seed: int | None, args: dict[str, Any], **derived: Any
) -> dict[str, Any]:
    params: dict[str, Any] = {"generator": generator, "stream": stream, "seed": seed}
    if seed is None:
        params["rng"] = "caller-supplied numpy.random.Generator"
    params["args"] = args
    params.update(derived)
    return params


# --------------------------------------------------------------------------------------------
# Setting 1: INDEP
# --------------------------------------------------------------------------------------------


def generate_indep(
    *,
    horizon: int = 31,
    review_period: int = 2,
    lead_time: int = 1,
    train_size: int = 10,
    val_size: int = 10,
    test_size: int = 100,
    lower_bound_mean: float = 10.0,
    lower_bound_std: float = 4.0,
    lower_bound_max: int = 100,
    span: int = 5,
    lower_bounds: Sequence[int] | None = None,
    lower_bounds_seed: int | None = None,
    holding_cost: float = 0.1,
    backlog_cost: float = 0.9,
    max_replenish: float = 100.0,
    stream: str = "authors",
    seed: int = 42,
    rng: np.random.Generator | None = None,
    name: str = "setting1",
) -> InventoryDataset:
    """Setting 1 (INDEP, SPEC.md section 6): independent, discrete-uniform daily demands.

    One sequence of lower bounds ``l_t`` (t = 0..T-1) is drawn from
    ``N(lower_bound_mean, lower_bound_std**2)``, clipped to ``[0, lower_bound_max]`` and
    truncated to an integer; it defines the day's demand distribution and is shared by all
    trajectories. Each trajectory draws ``D_t`` uniform on the integers
    ``{l_t, ..., l_t + span - 1}``. The feature is ``c_t = floor(t / P)`` (``"period_index"``), which identifies the day's
    distribution.

    Args:
        horizon: ``T >= 1`` days per trajectory.
        review_period: ``P >= 1`` days between orders.
        lead_time: ``L >= 0`` days.
        train_size, val_size, test_size: trajectories per split (each ``>= 1``), stored in that
            order with ``sku_id`` 1, 2, ...
        lower_bound_mean, lower_bound_std: mean and standard deviation of the lower bounds
            (units per day).
        lower_bound_max: upper clip of the lower bounds (units per day).
        span: number of demand values of a day (``>= 1``).
        lower_bounds: ``(T,)`` non-negative integer lower bounds, used instead of drawing them.
        lower_bounds_seed: seed of the legacy generator that draws the lower bounds. Default:
            ``seed`` in the authors' stream (their script uses one seed for both), 42 in the
            fresh stream, so that fresh trajectories come from the authors' distributions.
        holding_cost, backlog_cost: ``h``, ``b`` per unit and day.
        max_replenish: order cap, units.
        stream: ``"authors"``: the lower bounds are the first ``T`` draws of
            ``numpy.random.RandomState(seed).normal``, the demands come from
            ``numpy.random.default_rng(seed).integers``, trajectories in order, days in order
            (equal to the authors' data for the defaults). ``"fresh"``: the demands come from
            ``numpy.random.default_rng([key, seed])`` (a stream of its own) or from ``rng``.
        seed: seed of the stream, ``0 <= seed < 2**32``.
        rng: with ``stream="fresh"``, a generator to draw from instead of ``seed``.
        name: the dataset's name.

    Returns:
        The dataset, validated; ``params["lower_bounds"]`` holds the ``(T,)`` lower bounds that
        the benchmark (SPEC.md section 7) needs.
    """
    horizon = _check_int("horizon", horizon, 1)
    review_period = _check_int("review_period", review_period, 1)
    lead_time = _check_int("lead_time", lead_time, 0)
    train_size = _check_int("train_size", train_size, 1)
    val_size = _check_int("val_size", val_size, 1)
    test_size = _check_int("test_size", test_size, 1)
    lower_bound_mean = _check_number("lower_bound_mean", lower_bound_mean)
    lower_bound_std = _check_number("lower_bound_std", lower_bound_std, 0.0)
    lower_bound_max = _check_int("lower_bound_max", lower_bound_max, 0)
    span = _check_int("span", span, 1)
    holding_cost, backlog_cost, max_replenish = _check_costs(
        holding_cost, backlog_cost, max_replenish
    )
    seed_used = _check_stream(stream, seed, rng)

    if lower_bounds is not None:
        bounds = np.asarray(lower_bounds)
        if bounds.shape != (horizon,) or bounds.dtype.kind not in "iu" or (bounds < 0).any():
            raise ValueError(
                f"lower_bounds must be {horizon} non-negative integers (one per day), "
                f"got {lower_bounds!r}"
            )
        bounds = bounds.astype(np.int64)
        bounds_seed = None
    else:
        if lower_bounds_seed is None:
            bounds_seed = seed_used if stream == "authors" else 42
        else:
            bounds_seed = _check_int("lower_bounds_seed", lower_bounds_seed, 0)
        # The authors draw the bounds with the legacy global generator; a RandomState with the
        # same seed produces the same numbers without touching the global state.
        draws = np.random.RandomState(bounds_seed).normal(
            lower_bound_mean, lower_bound_std, size=horizon
        )
        bounds = np.clip(draws, 0, lower_bound_max).astype(np.int64)

    n = train_size + val_size + test_size
    if stream == "authors":
        generator = np.random.default_rng(seed_used)
    else:
        generator = _fresh_generator(seed_used, rng)
    # One integers() call with broadcast bounds draws element by element in row-major order,
    # i.e. trajectories in order and days in order: the same numbers as the authors' scalar
    # calls (checked against their data by the tests).
    demand = generator.integers(bounds, bounds + span, size=(n, horizon)).astype(np.float64)

    period_index = (np.arange(horizon) // review_period).astype(np.float64)
    features = np.broadcast_to(period_index[None, :, None], (n, horizon, 1)).copy()
    args = {
        "horizon": horizon,
        "review_period": review_period,
        "lead_time": lead_time,
        "train_size": train_size,
        "val_size": val_size,
        "test_size": test_size,
        "lower_bound_mean": lower_bound_mean,
        "lower_bound_std": lower_bound_std,
        "lower_bound_max": lower_bound_max,
        "span": span,
        "lower_bounds_seed": bounds_seed,
        "holding_cost": holding_cost,
        "backlog_cost": backlog_cost,
        "max_replenish": max_replenish,
    }
    return _synthetic_dataset(
        name,
        demand,
        features,
        "period_index",
        review_period=review_period,
        lead_time=lead_time,
        split_sizes=(train_size, val_size, test_size),
        holding_cost=holding_cost,
        backlog_cost=backlog_cost,
        max_replenish=max_replenish,
        params=_params("indep", stream, seed_used, args, lower_bounds=bounds.tolist()),
    )


# --------------------------------------------------------------------------------------------
# Settings 2 and 3: AR(1)
# --------------------------------------------------------------------------------------------


def generate_ar1(
    *,
    horizon: int = 31,
    review_period: int = 2,
    lead_time: int = 1,
    train_size: int = 10,
    val_size: int = 10,
    test_size: int = 100,
    phi_range: Sequence[float] = (0.3, 0.9),
    mean_range: Sequence[float] = (5.0, 10.0),
    std_range: Sequence[float] = (2.0, 8.0),
    burn_in: int | None = None,
    holding_cost: float = 0.1,
    backlog_cost: float = 0.9,
    max_replenish: float = 100.0,
    stream: str = "authors",
    seed: int = 42,
    rng: np.random.Generator | None = None,
    name: str = "setting2",
) -> InventoryDataset:
    """Settings 2 and 3 (AR(1), SPEC.md section 6): autocorrelated demands.

    Per trajectory: ``phi ~ U(phi_range)``, ``mu ~ U(mean_range)``, ``sigma ~ U(std_range)``;
    ``D_0 = max(0, N(mu, sigma^2))`` and
    ``D_t = max(0, phi * D_{t-1} + (1 - phi) * mu + eps_t)``, ``eps_t ~ N(0, sigma^2)``.
    ``burn_in + T`` days are drawn and the first ``burn_in`` dropped. The feature is yesterday's
    demand, ``c_t = D_{t-1}`` (``"previous_demand"``); on day 0 it is the last burn-in day's
    demand, as in the authors' data.

    Args:
        horizon: ``T >= 1`` days per trajectory (after the burn-in).
        review_period: ``P >= 1`` days between orders.
        lead_time: ``L >= 0`` days.
        train_size, val_size, test_size: trajectories per split (each ``>= 1``), stored in that
            order with ``sku_id`` 1, 2, ... (setting 2: 10/10/100, setting 3: 5/5/100).
        phi_range: ``(low, high)`` of the autoregression coefficient, within ``[0, 1]``.
        mean_range: ``(low, high)`` of the long-run mean ``mu`` (units per day, ``>= 0``).
        std_range: ``(low, high)`` of the noise standard deviation ``sigma`` (``>= 0``).
        burn_in: days dropped at the start (``>= 1``); default ``4 * P``.
        holding_cost, backlog_cost: ``h``, ``b`` per unit and day.
        max_replenish: order cap, units.
        stream: ``"authors"``: one ``numpy.random.RandomState(seed)``, trajectories in order,
            each drawing ``phi``, ``mu``, ``sigma``, ``D_0`` and then one ``eps`` per later day
            (equal to the authors' data for the defaults; trajectory ``k`` is the same in
            settings 2 and 3). ``"fresh"``: ``numpy.random.default_rng([key, seed])`` or ``rng``.
        seed: seed of the stream, ``0 <= seed < 2**32``.
        rng: with ``stream="fresh"``, a generator to draw from instead of ``seed``.
        name: the dataset's name.

    Returns:
        The dataset, validated; ``params["sku_parameters"]`` holds each trajectory's ``phi``,
        ``mean`` and ``std`` (lists of length ``n``).
    """
    horizon = _check_int("horizon", horizon, 1)
    review_period = _check_int("review_period", review_period, 1)
    lead_time = _check_int("lead_time", lead_time, 0)
    train_size = _check_int("train_size", train_size, 1)
    val_size = _check_int("val_size", val_size, 1)
    test_size = _check_int("test_size", test_size, 1)
    phi_range = _check_range("phi_range", phi_range, 0.0)
    if phi_range[1] > 1:
        raise ValueError(f"phi_range must lie within [0, 1], got {phi_range}")
    mean_range = _check_range("mean_range", mean_range, 0.0)
    std_range = _check_range("std_range", std_range, 0.0)
    burn_in = 4 * review_period if burn_in is None else _check_int("burn_in", burn_in, 1)
    holding_cost, backlog_cost, max_replenish = _check_costs(
        holding_cost, backlog_cost, max_replenish
    )
    seed_used = _check_stream(stream, seed, rng)

    n = train_size + val_size + test_size
    total_days = burn_in + horizon
    path = np.empty((n, total_days))
    if stream == "authors":
        legacy = np.random.RandomState(seed_used)
        phi, mu, sigma = np.empty(n), np.empty(n), np.empty(n)
        for k in range(n):
            phi[k] = legacy.uniform(*phi_range)
            mu[k] = legacy.uniform(*mean_range)
            sigma[k] = legacy.uniform(*std_range)
            first = legacy.normal(mu[k], sigma[k])
            # The legacy normal(loc, scale, size) is loc + scale * gauss element by element, so
            # one vector call equals the authors' one scalar call per day.
            noise = legacy.normal(0.0, sigma[k], size=total_days - 1)
            previous = first if first > 0 else 0.0
            path[k, 0] = previous
            for day in range(1, total_days):
                # Same operation order as the authors, so the floats agree bit for bit.
                value = phi[k] * previous + (1 - phi[k]) * mu[k] + noise[day - 1]
                previous = value if value > 0 else 0.0
                path[k, day] = previous
    else:
        generator = _fresh_generator(seed_used, rng)
        phi = generator.uniform(*phi_range, size=n)
        mu = generator.uniform(*mean_range, size=n)
        sigma = generator.uniform(*std_range, size=n)
        path[:, 0] = np.maximum(generator.normal(mu, sigma), 0.0)
        noise = generator.normal(0.0, 1.0, size=(n, total_days - 1)) * sigma[:, None]
        for day in range(1, total_days):
            value = phi * path[:, day - 1] + (1 - phi) * mu + noise[:, day - 1]
            path[:, day] = np.maximum(value, 0.0)

    demand = path[:, burn_in:].copy()
    features = path[:, burn_in - 1 : total_days - 1, None].copy()
    args = {
        "horizon": horizon,
        "review_period": review_period,
        "lead_time": lead_time,
        "train_size": train_size,
        "val_size": val_size,
        "test_size": test_size,
        "phi_range": phi_range,
        "mean_range": mean_range,
        "std_range": std_range,
        "burn_in": burn_in,
        "holding_cost": holding_cost,
        "backlog_cost": backlog_cost,
        "max_replenish": max_replenish,
    }
    sku_parameters = {"phi": phi.tolist(), "mean": mu.tolist(), "std": sigma.tolist()}
    return _synthetic_dataset(
        name,
        demand,
        features,
        "previous_demand",
        review_period=review_period,
        lead_time=lead_time,
        split_sizes=(train_size, val_size, test_size),
        holding_cost=holding_cost,
        backlog_cost=backlog_cost,
        max_replenish=max_replenish,
        params=_params("ar1", stream, seed_used, args, sku_parameters=sku_parameters),
    )


# --------------------------------------------------------------------------------------------
# Setting 4: IID
# --------------------------------------------------------------------------------------------


def iid_demand_days(horizon_periods: int, review_period: int = 2, lead_time: int = 1) -> np.ndarray:
    """The days on which setting 4 has demand: ``t = k P + L`` for ``k = 1..H``.

    Each is the day an order lands (one demand per review period, right after the order); with
    ``P = 2, L = 1`` these are the odd days ``t >= 3`` of the authors' code.

    Returns:
        ``(H,)`` int64 days, all ``< T = (P + L) + P H``.
    """
    horizon_periods = _check_int("horizon_periods", horizon_periods, 1)
    review_period = _check_int("review_period", review_period, 1)
    lead_time = _check_int("lead_time", lead_time, 0)
    return np.arange(1, horizon_periods + 1, dtype=np.int64) * review_period + lead_time


def generate_iid(
    *,
    n_skus: int = 5,
    horizon_periods: int = 2,
    review_period: int = 2,
    lead_time: int = 1,
    test_repeats: int = 100,
    demand_mean: float = 100.0,
    std_range: Sequence[float] = (5.0, 20.0),
    holding_cost: float = 0.1,
    backlog_cost: float = 0.9,
    max_replenish: float = 500.0,
    stream: str = "authors",
    seed: int = 42,
    rng: np.random.Generator | None = None,
    name: str | None = None,
) -> InventoryDataset:
    """Setting 4 (IID, SPEC.md section 6): i.i.d. normal demand once per review period.

    Each of ``N = n_skus`` SKUs draws ``sigma ~ U(std_range)``. It has one training and one
    validation trajectory and ``test_repeats`` test trajectories, all with its ``sigma``. Demand
    falls only on the days of :func:`iid_demand_days` (the day each order lands),
    ``D_t = max(0, N(demand_mean, sigma^2))``; other days have none. The horizon is
    ``T = (P + L) + P H``. The feature is the SKU's ``sigma`` (``"demand_std"``), constant in
    time.

    Args:
        n_skus: ``N >= 1`` (the paper uses 5, 10, 20).
        horizon_periods: ``H >= 1`` review periods (the paper uses 2, 8, 16, 32, 64).
        review_period: ``P >= 1`` days between orders.
        lead_time: ``L >= 0`` days.
        test_repeats: test trajectories per SKU (``>= 1``).
        demand_mean: mean demand of a demand day (units, ``>= 0``).
        std_range: ``(low, high)`` of the SKUs' standard deviations (``>= 0``).
        holding_cost, backlog_cost: ``h``, ``b`` per unit and day.
        max_replenish: order cap, units (500 in setting 4).
        stream: ``"authors"``: the ``N`` sigmas are ``numpy.random.RandomState(seed).uniform``;
            the demands come from ``numpy.random.default_rng(seed).normal``, trajectories in
            order (train ``1..N``, validation, then test: sigma 1 ``test_repeats`` times, sigma
            2, ...), demand days in order (equal to the authors' data for ``P = 2, L = 1``).
            ``"fresh"``: everything from ``numpy.random.default_rng([key, seed])`` or ``rng``.
        seed: seed of the stream, ``0 <= seed < 2**32``.
        rng: with ``stream="fresh"``, a generator to draw from instead of ``seed``.
        name: the dataset's name; default ``"setting4-n{N}-h{H}"``.

    Returns:
        The dataset, validated; ``params["sku_parameters"]["std"]`` holds the ``N`` sigmas and
        ``params["demand_days"]`` the ``H`` demand days.
    """
    n_skus = _check_int("n_skus", n_skus, 1)
    horizon_periods = _check_int("horizon_periods", horizon_periods, 1)
    review_period = _check_int("review_period", review_period, 1)
    lead_time = _check_int("lead_time", lead_time, 0)
    test_repeats = _check_int("test_repeats", test_repeats, 1)
    demand_mean = _check_number("demand_mean", demand_mean, 0.0)
    std_range = _check_range("std_range", std_range, 0.0)
    holding_cost, backlog_cost, max_replenish = _check_costs(
        holding_cost, backlog_cost, max_replenish
    )
    seed_used = _check_stream(stream, seed, rng)
    if name is None:
        name = f"setting4-n{n_skus}-h{horizon_periods}"

    horizon = (review_period + lead_time) + review_period * horizon_periods
    days = iid_demand_days(horizon_periods, review_period, lead_time)
    if stream == "authors":
        sku_std = np.random.RandomState(seed_used).uniform(*std_range, size=n_skus)
        generator = np.random.default_rng(seed_used)
    else:
        generator = _fresh_generator(seed_used, rng)
        sku_std = generator.uniform(*std_range, size=n_skus)
    # Trajectory order: train (one per SKU), validation (the same sigmas), test (each sigma
    # repeated test_repeats times in a block).
    sku_of_row = np.concatenate(
        [np.arange(n_skus), np.arange(n_skus), np.repeat(np.arange(n_skus), test_repeats)]
    )
    row_std = sku_std[sku_of_row]
    n = sku_of_row.size
    # normal() with a broadcast (n, H) scale draws row-major: trajectories in order, demand
    # days in order, as the authors' scalar calls do.
    draws = generator.normal(demand_mean, np.broadcast_to(row_std[:, None], (n, days.size)))
    demand = np.zeros((n, horizon))
    demand[:, days] = np.maximum(draws, 0.0)
    features = np.broadcast_to(row_std[:, None, None], (n, horizon, 1)).copy()
    args = {
        "n_skus": n_skus,
        "horizon_periods": horizon_periods,
        "review_period": review_period,
        "lead_time": lead_time,
        "test_repeats": test_repeats,
        "demand_mean": demand_mean,
        "std_range": std_range,
        "holding_cost": holding_cost,
        "backlog_cost": backlog_cost,
        "max_replenish": max_replenish,
    }
    return _synthetic_dataset(
        name,
        demand,
        features,
        "demand_std",
        review_period=review_period,
        lead_time=lead_time,
        split_sizes=(n_skus, n_skus, n_skus * test_repeats),
        holding_cost=holding_cost,
        backlog_cost=backlog_cost,
        max_replenish=max_replenish,
        params=_params(
            "iid",
            stream,
            seed_used,
            args,
            sku_parameters={"std": sku_std.tolist()},
            demand_days=days.tolist(),
        ),
    )


# --------------------------------------------------------------------------------------------
# The settings by name
# --------------------------------------------------------------------------------------------

# Per setting: the generator and the arguments that make it that setting.
_SETTING_GENERATORS: dict[str, tuple[Any, dict[str, Any]]] = {
    "setting1": (generate_indep, {}),
    "setting2": (generate_ar1, {"train_size": 10, "val_size": 10}),
    "setting3": (generate_ar1, {"train_size": 5, "val_size": 5}),
    "setting4": (generate_iid, {}),
}

# Short tags of the arguments that dataset_name() writes into a name.
_NAME_TAGS = {
    "horizon": "t",
    "review_period": "p",
    "lead_time": "l",
    "train_size": "train",
    "val_size": "val",
    "test_size": "test",
    "test_repeats": "rep",
}


def _generator_defaults(setting: str) -> dict[str, Any]:
    import inspect

    generator, fixed = _SETTING_GENERATORS[setting]
    defaults = {
        key: parameter.default
        for key, parameter in inspect.signature(generator).parameters.items()
        if parameter.default is not inspect.Parameter.empty
    }
    defaults.update(fixed)
    return defaults


def _check_setting(setting: str) -> None:
    if setting not in SETTINGS:
        raise ValueError(f"unknown setting {setting!r}, expected one of {SETTINGS}")


def _normalized(value: Any) -> Any:
    return list(value) if isinstance(value, (tuple, list)) else value


def _name_value(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "_".join(_name_value(item) for item in value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return re.sub(r"[^A-Za-z0-9.]+", "", str(value))


def dataset_name(
    setting: str, /, *, stream: str = "authors", seed: int = 42, **overrides: Any
) -> str:
    """The folder name of a generated dataset: the setting, then what differs from its default.

    The authors' default datasets are named after their setting (``"setting1"``); setting 4 is
    named ``"setting4-n{N}-h{H}"``. A fresh stream adds ``-fresh-seed{seed}``, another seed of
    the authors' stream ``-seed{seed}``, and every override that differs from the setting's
    default adds ``-{tag}{value}`` in alphabetical order of the argument (tags: ``t`` days,
    ``p`` review period, ``l`` lead time, ``train``/``val``/``test`` sizes, ``rep`` test repeats,
    otherwise the argument's name). Example: ``setting1-fresh-seed7-l2``.
    """
    _check_setting(setting)
    defaults = _generator_defaults(setting)
    overrides = dict(overrides)
    if setting == "setting4":
        for required in ("n_skus", "horizon_periods"):
            if required not in overrides:
                raise ValueError(f"setting4 needs {required}")
        base = f"setting4-n{overrides.pop('n_skus')}-h{overrides.pop('horizon_periods')}"
    else:
        base = setting
    parts = [base]
    if stream == "fresh":
        parts.append(f"fresh-seed{seed}")
    elif seed != 42:
        parts.append(f"seed{seed}")
    for key in sorted(overrides):
        if key in ("name", "rng"):
            continue
        value = overrides[key]
        if key in defaults and _normalized(value) == _normalized(defaults[key]):
            continue
        parts.append(f"{_NAME_TAGS.get(key, key.replace('_', ''))}{_name_value(value)}")
    return "-".join(parts)


def make_setting(
    name: str, /, *, stream: str = "authors", seed: int = 42, **overrides: Any
) -> InventoryDataset:
    """The dataset of a synthetic setting of the paper (SPEC.md section 6).

    Args:
        name: ``"setting1"`` (INDEP, :func:`generate_indep`), ``"setting2"`` (AR(1), 10/10/100,
            :func:`generate_ar1`), ``"setting3"`` (AR(1), 5/5/100) or ``"setting4"`` (IID,
            :func:`generate_iid`, which needs ``n_skus`` and ``horizon_periods``).
        stream: ``"authors"`` (their draws) or ``"fresh"`` (new draws, same distributions).
        seed: seed of the stream.
        **overrides: any other argument of the setting's generator (for example ``lead_time``,
            ``train_size``, ``horizon``); ``name`` defaults to :func:`dataset_name`.

    Returns:
        The validated dataset; ``params["setting"]`` records ``name``.
    """
    _check_setting(name)
    generator, fixed = _SETTING_GENERATORS[name]
    if name == "setting4":
        missing = [key for key in ("n_skus", "horizon_periods") if key not in overrides]
        if missing:
            raise ValueError(f"setting4 needs {' and '.join(missing)} (N SKUs, H periods)")
    elif "n_skus" in overrides or "horizon_periods" in overrides:
        raise ValueError(f"n_skus and horizon_periods apply to setting4 only, not {name}")
    kwargs = {**fixed, **overrides}
    kwargs.setdefault("name", dataset_name(name, stream=stream, seed=seed, **overrides))
    dataset = generator(stream=stream, seed=seed, **kwargs)
    params = {"setting": name, **dataset.params}
    return dataclasses.replace(dataset, params=params)


# --------------------------------------------------------------------------------------------
# On-disk format
# --------------------------------------------------------------------------------------------


def _atomic_write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder and a rename, so
    that a reader never sees a half-written file."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        # mkstemp creates the file readable by its owner only; data files are for everyone.
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _meta(dataset: InventoryDataset) -> dict[str, Any]:
    return {
        "format_version": FORMAT_VERSION,
        "name": dataset.name,
        "n_trajectories": dataset.n_trajectories,
        "horizon": dataset.horizon,
        "split_sizes": dataset.split_sizes(),
        "holding_cost": dataset.holding_cost,
        "backlog_cost": dataset.backlog_cost,
        "max_replenish": dataset.max_replenish,
        "lost_sales": dataset.lost_sales,
        "feature_names": list(dataset.feature_names),
        "coeff_features": list(dataset.coeff_features),
        "params": dataset.params,
        # written only when it is not the default, so that older files stay byte-identical
        **({"objective": dataset.objective} if dataset.objective != "cost" else {}),
    }


def _csv_text(dataset: InventoryDataset) -> str:
    # repr() of a Python float is the shortest text that reads back as the same float64, and
    # it does not depend on the platform, so files are exact and byte-for-byte reproducible.
    n, horizon = dataset.demand.shape
    lines = [",".join(CORE_COLUMNS + dataset.feature_names)]
    demand = dataset.demand.tolist()
    lead_time = dataset.lead_time.tolist()
    features = dataset.features.tolist()
    for row in range(n):
        prefix = f"{int(dataset.sku_id[row])},{dataset.split[row]},"
        suffix = f",{int(dataset.review_period[row])},{float(dataset.initial_stock[row])!r}"
        for day in range(horizon):
            values = "".join(f",{value!r}" for value in features[row][day])
            lines.append(
                f"{prefix}{day},{demand[row][day]!r},{lead_time[row][day]}{suffix}{values}"
            )
    return "\n".join(lines) + "\n"


def save_dataset(dataset: InventoryDataset, folder: str | os.PathLike[str]) -> Path:
    """Write ``dataset`` to ``folder`` (created if needed) as ``trajectories.csv`` and
    ``meta.json`` (format in ``data/README.md``).

    The dataset is validated first. Writing is deterministic (the same dataset gives the same
    bytes) and atomic per file; the CSV is written before ``meta.json``, so a folder with a
    ``meta.json`` never pairs it with a half-written CSV. Other files in ``folder`` are left
    alone.

    Returns:
        The folder.
    """
    dataset.validate()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    _atomic_write(folder / DATA_FILE, _csv_text(dataset))
    meta_text = json.dumps(_meta(dataset), indent=2, allow_nan=False) + "\n"
    _atomic_write(folder / META_FILE, meta_text)
    return folder


_META_TYPES: dict[str, tuple[type, ...]] = {
    "format_version": (int,),
    "name": (str,),
    "n_trajectories": (int,),
    "horizon": (int,),
    "split_sizes": (dict,),
    "holding_cost": (int, float),
    "backlog_cost": (int, float),
    "max_replenish": (int, float),
    "lost_sales": (bool,),
    "feature_names": (list,),
    "coeff_features": (list,),
    "params": (dict,),
}

# Keys a meta.json may leave out (their defaults apply).
_OPTIONAL_META_TYPES: dict[str, tuple[type, ...]] = {
    "objective": (str,),
}


def _read_meta(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing (a dataset folder holds {META_FILE})")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not valid JSON: {error}") from None
    if not isinstance(meta, dict):
        raise ValueError(f"{path}: must hold a JSON object")
    missing = [key for key in _META_TYPES if key not in meta]
    if missing:
        raise ValueError(f"{path}: missing keys {missing}")
    unknown = sorted(set(meta) - set(_META_TYPES) - set(_OPTIONAL_META_TYPES))
    if unknown:
        raise ValueError(f"{path}: unknown keys {unknown}")
    for key, types in _META_TYPES.items():
        value = meta[key]
        wrong_bool = isinstance(value, bool) and bool not in types
        if wrong_bool or not isinstance(value, types):
            names = " or ".join(t.__name__ for t in types)
            raise ValueError(f"{path}: key {key!r} must be {names}, got {value!r}")
    for key, types in _OPTIONAL_META_TYPES.items():
        if key in meta and not isinstance(meta[key], types):
            names = " or ".join(t.__name__ for t in types)
            raise ValueError(f"{path}: key {key!r} must be {names}, got {meta[key]!r}")
    if meta["format_version"] != FORMAT_VERSION:
        raise ValueError(
            f"{path}: format_version {meta['format_version']} is not supported "
            f"(this version of deepstock reads {FORMAT_VERSION})"
        )
    if not all(isinstance(name, str) for name in meta["feature_names"]):
        raise ValueError(f"{path}: feature_names must be strings, got {meta['feature_names']}")
    return meta


def _parse_column(path: Path, column: str, texts: list[str], kind: str) -> np.ndarray:
    """Convert one CSV column to int64 (``kind="int"``) or float64; the error names the line."""
    if kind == "int":
        for line, text in enumerate(texts, start=2):
            if not _INTEGER_TEXT.fullmatch(text):
                raise ValueError(
                    f"{path}: column {column!r} must hold integers (line {line} has {text!r})"
                )
        try:
            return np.array(texts, dtype=np.int64) if texts else np.zeros(0, dtype=np.int64)
        except OverflowError:
            raise ValueError(
                f"{path}: column {column!r} holds an integer outside the int64 range"
            ) from None
    try:
        # Python's float() rounds correctly, so repr-written numbers come back bit for bit.
        return np.array([float(text) for text in texts], dtype=np.float64)
    except ValueError:
        for line, text in enumerate(texts, start=2):
            try:
                float(text)
            except ValueError:
                raise ValueError(
                    f"{path}: column {column!r} must hold numbers (line {line} has {text!r})"
                ) from None
        raise


def load_dataset(folder: str | os.PathLike[str]) -> InventoryDataset:
    """Read a dataset written by :func:`save_dataset` and validate it.

    Rows may come in any order; trajectories keep the order in which their ``sku_id`` first
    appears, days are sorted. Every problem raises a ``ValueError`` that names the file and the
    column or SKU: missing, unknown or repeated columns; ragged rows; wrong dtypes; negative or
    non-finite demand; review period < 1; lead time < 0; unknown split labels or an empty
    split; repeated (sku_id, day) rows; a SKU with another number of days or days not
    ``0..T-1``; split, review period or initial stock changing within a SKU; ``meta.json``
    keys missing, unknown, of the wrong type or disagreeing with the CSV.

    Raises:
        FileNotFoundError: ``folder``, its ``trajectories.csv`` or its ``meta.json`` is missing.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such dataset folder")
    meta_path, data_path = folder / META_FILE, folder / DATA_FILE
    meta = _read_meta(meta_path)
    if not data_path.is_file():
        raise FileNotFoundError(f"{data_path}: missing (a dataset folder holds {DATA_FILE})")

    feature_names = tuple(meta["feature_names"])
    with data_path.open(encoding="utf-8", newline="") as stream:
        try:
            rows = list(csv.reader(stream, strict=True))
        except csv.Error as error:
            raise ValueError(f"{data_path}: not a valid CSV file: {error}") from None
    if not rows:
        raise ValueError(f"{data_path}: empty file (expected a header row)")
    header, body = rows[0], rows[1:]
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise ValueError(f"{data_path}: repeated columns {repeated}")
    expected = CORE_COLUMNS + feature_names
    missing = [name for name in expected if name not in header]
    if missing:
        raise ValueError(f"{data_path}: missing columns {missing}")
    unknown = [name for name in header if name not in expected]
    if unknown:
        raise ValueError(
            f"{data_path}: unknown columns {unknown} (features must be listed in "
            f"{META_FILE} feature_names {list(feature_names)})"
        )
    if not body:
        raise ValueError(f"{data_path}: no rows")
    for line, row in enumerate(body, start=2):
        if len(row) != len(header):
            raise ValueError(
                f"{data_path}: line {line} has {len(row)} fields, the header has {len(header)}"
            )
    columns = dict(zip(header, (list(values) for values in zip(*body, strict=True)), strict=True))

    kinds = {
        "sku_id": "int",
        "day": "int",
        "lead_time": "int",
        "review_period": "int",
        "demand": "float",
        "initial_stock": "float",
    }
    kinds.update({name: "float" for name in feature_names})
    parsed = {
        name: _parse_column(data_path, name, columns[name], kind) for name, kind in kinds.items()
    }
    split_text = np.array(columns["split"])

    # Group rows by SKU (in order of first appearance) and sort each SKU's rows by day.
    sku_column, day_column = parsed["sku_id"], parsed["day"]
    unique_ids, first_row, position = np.unique(sku_column, return_index=True, return_inverse=True)
    rank = np.empty(unique_ids.size, dtype=np.int64)
    rank[np.argsort(first_row, kind="stable")] = np.arange(unique_ids.size)
    position = rank[position]
    sku_order = unique_ids[np.argsort(first_row, kind="stable")]
    order = np.lexsort((day_column, position))
    sorted_position, sorted_day = position[order], day_column[order]
    same = (sorted_position[1:] == sorted_position[:-1]) & (sorted_day[1:] == sorted_day[:-1])
    if same.any():
        index = int(np.flatnonzero(same)[0])
        raise ValueError(
            f"{data_path}: repeated rows for sku_id {int(sku_order[sorted_position[index]])}, "
            f"day {int(sorted_day[index])}"
        )
    counts = np.bincount(position, minlength=sku_order.size)
    horizon = int(counts[0])
    if (counts != horizon).any():
        bad = int(np.flatnonzero(counts != horizon)[0])
        raise ValueError(
            f"{data_path}: sku_id {int(sku_order[bad])} has {int(counts[bad])} days, "
            f"sku_id {int(sku_order[0])} has {horizon} (every SKU needs the same days)"
        )
    n = sku_order.size
    days = sorted_day.reshape(n, horizon)
    bad_rows = (days != np.arange(horizon)).any(axis=1)
    if bad_rows.any():
        bad = int(np.flatnonzero(bad_rows)[0])
        raise ValueError(
            f"{data_path}: column 'day' of sku_id {int(sku_order[bad])} must be 0..{horizon - 1}, "
            f"got {days[bad].tolist()}"
        )

    def table(values: np.ndarray) -> np.ndarray:
        return values[order].reshape(n, horizon)

    per_sku: dict[str, np.ndarray] = {}
    for name, values in (
        ("split", split_text),
        ("review_period", parsed["review_period"]),
        ("initial_stock", parsed["initial_stock"]),
    ):
        grid = table(values)
        changes = (grid != grid[:, :1]).any(axis=1)
        if changes.any():
            bad = int(np.flatnonzero(changes)[0])
            raise ValueError(
                f"{data_path}: column {name!r} must be constant within a SKU "
                f"(sku_id {int(sku_order[bad])} has {sorted(set(grid[bad].tolist()))})"
            )
        per_sku[name] = grid[:, 0]

    demand = table(parsed["demand"])
    lead_time = table(parsed["lead_time"])
    features = np.zeros((n, horizon, len(feature_names)))
    for index, name in enumerate(feature_names):
        features[:, :, index] = table(parsed[name])
    try:
        _check_values(
            demand=demand,
            features=features,
            review_period=per_sku["review_period"],
            lead_time=lead_time,
            initial_stock=per_sku["initial_stock"],
            split=per_sku["split"],
            sku_id=sku_order,
        )
    except ValueError as error:
        raise ValueError(f"{data_path}: {error}") from None

    try:
        dataset = InventoryDataset(
            name=meta["name"],
            demand=demand,
            features=features,
            feature_names=feature_names,
            review_period=per_sku["review_period"],
            lead_time=lead_time,
            initial_stock=per_sku["initial_stock"],
            split=per_sku["split"],
            sku_id=sku_order,
            holding_cost=meta["holding_cost"],
            backlog_cost=meta["backlog_cost"],
            max_replenish=meta["max_replenish"],
            lost_sales=meta["lost_sales"],
            coeff_features=tuple(meta["coeff_features"]),
            params=meta["params"],
            objective=meta.get("objective", "cost"),
        ).validate()
    except ValueError as error:
        raise ValueError(f"{folder}: {error}") from None

    for key, actual in (
        ("n_trajectories", dataset.n_trajectories),
        ("horizon", dataset.horizon),
        ("split_sizes", dataset.split_sizes()),
    ):
        if meta[key] != actual:
            raise ValueError(f"{meta_path}: {key} is {meta[key]!r} but {DATA_FILE} has {actual!r}")
    return dataset


# --------------------------------------------------------------------------------------------
# The committed datasets
# --------------------------------------------------------------------------------------------


def default_datasets_dir() -> Path | None:
    """``data/datasets`` of the repository this package lives in, or ``None`` when the package
    is installed outside a checkout (no ``pyproject.toml`` next to the package folder)."""
    root = Path(__file__).resolve().parent.parent
    if (root / "pyproject.toml").is_file() and (root / "deepstock").is_dir():
        return root / "data" / "datasets"
    return None


def load_setting(
    name: str,
    /,
    *,
    stream: str = "authors",
    seed: int = 42,
    datasets_dir: str | os.PathLike[str] | None = None,
    **overrides: Any,
) -> InventoryDataset:
    """The dataset of a setting, read from disk when it was saved there, generated otherwise.

    Looks for the folder :func:`dataset_name` (``name``, ``stream``, ``seed``, ``overrides``)
    under ``datasets_dir`` (default: :func:`default_datasets_dir`, the committed
    ``data/datasets/``); if it is absent, returns :func:`make_setting` with the same arguments
    (the same data: the committed files are regenerated byte for byte by the tests).

    Raises:
        ValueError: the folder exists but was generated with other parameters.
    """
    folder_name = dataset_name(name, stream=stream, seed=seed, **overrides)
    root = Path(datasets_dir) if datasets_dir is not None else default_datasets_dir()
    if root is not None and (root / folder_name / META_FILE).is_file():
        dataset = load_dataset(root / folder_name)
        params = dataset.params
        # Every generator argument must be the one asked for: the overrides, else the
        # setting's defaults (arguments whose default is None are resolved by the generator).
        wanted_args = {**_generator_defaults(name), **overrides}
        recorded_args = params.get("args", {})
        keys = [key for key in recorded_args if wanted_args.get(key) is not None]
        keys += [key for key in overrides if key not in keys and key != "name"]
        recorded = {"setting": params.get("setting"), "stream": params.get("stream")}
        recorded["seed"] = params.get("seed")
        recorded.update({key: recorded_args.get(key) for key in keys})
        wanted = {"setting": name, "stream": stream, "seed": seed}
        wanted.update({key: _normalized(wanted_args[key]) for key in keys})
        if recorded != wanted:
            raise ValueError(
                f"{root / folder_name}: was generated with {recorded}, not {wanted}; "
                "regenerate it with `deepstock generate`"
            )
        return dataset
    return make_setting(name, stream=stream, seed=seed, **overrides)
