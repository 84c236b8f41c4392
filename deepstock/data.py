"""Datasets of demand trajectories (SPEC.md section 6).

An :class:`InventoryDataset` holds every trajectory (one SKU each) of one experiment together with
its split label, the problem constants (costs, order cap, backlog or lost sales) and the parameters
that generated it. Everything downstream (simulator, benchmarks, methods) reads this one object.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["SPLITS", "InventoryDataset"]

#: The split labels, in the order they are stored.
SPLITS: tuple[str, ...] = ("train", "val", "test")


@dataclass(frozen=True)
class InventoryDataset:
    """Trajectories of one experiment, with their split and the problem constants.

    Shapes use ``n`` for the number of trajectories (SKUs), ``T`` for days and ``F`` for features.

    Attributes:
        name: Short name, for example ``"setting1"``.
        demand: ``(n, T)`` float64, units per day, ``>= 0`` and finite.
        features: ``(n, T, F)`` float64, the context ``c_t`` seen by the policy on day ``t``.
        feature_names: ``F`` names of the feature columns.
        review_period: ``(n,)`` int64, ``P >= 1`` (days between orders).
        lead_time: ``(n, T)`` int64, ``L_t >= 0`` days, per trajectory and day (constant rows in
            settings 1-4).
        initial_stock: ``(n,)`` float64, on-hand units at the start of day 0.
        split: ``(n,)`` str, one of :data:`SPLITS`.
        sku_id: ``(n,)`` int64, identifiers (unique).
        holding_cost: ``h``, cost per unit left at the end of a day.
        backlog_cost: ``b``, cost per unit backlogged (or lost, under lost sales) at the end of a day.
        max_replenish: order cap, units.
        lost_sales: ``True`` for lost sales, ``False`` for backlog.
        coeff_features: indices into the feature axis of the demand features ``g(c)`` that the
            Coeff and Both regularizations multiply (SPEC.md section 3); empty when the dataset
            has none (settings 1-4).
        params: the generator's parameters (setting, stream, seed, sizes, distribution
            parameters), JSON-serializable.
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
