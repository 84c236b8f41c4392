"""The dataset container: every trajectory (one SKU each) of one experiment.

An :class:`InventoryDataset` holds the demand, context features, review periods, lead times,
initial stock and split label of each trajectory, together with the problem constants (costs,
order cap, backlog or lost sales, the loss it is scored on) and the parameters that generated
it. Everything downstream (simulator, benchmarks, methods) reads this one object; the
generators (:mod:`deepstock.datasets`) write it and :mod:`deepstock.datasets.io` stores it.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from deepstock.core.checks import check_number

__all__ = [
    "CORE_COLUMNS",
    "MODEL_PARAMETERS",
    "OBJECTIVES",
    "SPLITS",
    "InventoryDataset",
    "check_trajectory_values",
]

#: The split labels, in the order they are stored.
SPLITS: tuple[str, ...] = ("train", "val", "test")

#: What a dataset's ``loss`` can be: the per-unit holding/backlog cost or Tmall's ``J``.
OBJECTIVES: tuple[str, ...] = ("cost", "tmall")

#: The problem constants a reader may change without touching the demand (see
#: :meth:`InventoryDataset.with_model`): backlog or lost sales, the order cap, the two costs.
MODEL_PARAMETERS: tuple[str, ...] = ("lost_sales", "max_replenish", "holding_cost", "backlog_cost")

#: The per-trajectory fields that the file format writes as columns (features may not reuse
#: these names), in the order :mod:`deepstock.datasets.io` writes them.
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
            Coeff and Both regularizations multiply (the book's *Policy regularizations* chapter); empty when the dataset
            has none (settings 1-4).
        params: the generator's parameters (setting, stream, seed, sizes, distribution
            parameters), JSON-serializable.
        objective: what "loss" means on this dataset, the number every method trains on,
            validates on and reports as ``loss``: ``"cost"`` (the per-unit loss ``h y^+ + b u``
            of the book's *The inventory model* chapter, settings 1-4) or ``"tmall"`` (Tmall's objective ``J = 100 SR
            + TT / 2``, the Tmall-like proxy); see :class:`deepstock.model.simulator.InventorySimulator`.
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
        if n < 1:
            raise ValueError(f"dataset {self.name!r} has no trajectories (demand has 0 rows)")
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

        check_trajectory_values(
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

    def with_model(self, **changes: Any) -> InventoryDataset:
        """The same trajectories under other problem constants (:data:`MODEL_PARAMETERS`).

        Args:
            **changes: ``lost_sales`` (bool), ``max_replenish`` (units, > 0), ``holding_cost``
                and ``backlog_cost`` (per unit and day, >= 0); a value of ``None`` or equal to
                the dataset's own changes nothing.

        Returns:
            ``self`` when nothing changes; otherwise a copy whose name adds one tag per change
            (``setting1-lost_sales-max_replenish50``), so that its runs are stored apart from
            the original's, and whose ``params["model_changes"]`` records the changes.
        """
        unknown = sorted(set(changes) - set(MODEL_PARAMETERS))
        if unknown:
            raise ValueError(
                f"unknown model parameter(s) {unknown}; expected some of {list(MODEL_PARAMETERS)}"
            )
        applied: dict[str, Any] = {}
        for name in MODEL_PARAMETERS:
            value = changes.get(name)
            if value is None:
                continue
            if name == "lost_sales":
                if not isinstance(value, (bool, np.bool_)):
                    raise ValueError(f"lost_sales must be true or false, got {value!r}")
                value = bool(value)
            elif name == "max_replenish":
                value = check_number(name, value, 0.0, low_open=True)
            else:
                value = check_number(name, value, 0.0)
            if value != getattr(self, name):
                applied[name] = value
        if not applied:
            return self
        tags = []
        for name, value in applied.items():
            if name == "lost_sales":
                tags.append("lost_sales" if value else "backlog")
            else:
                tags.append(f"{name}{value:g}")
        return dataclasses.replace(
            self,
            name="-".join([self.name, *tags]),
            params={
                **self.params,
                "model_changes": {**self.params.get("model_changes", {}), **applied},
            },
            **applied,
        )

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


def check_trajectory_values(
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
