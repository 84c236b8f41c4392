"""Heuristic policies: constant orders and base-stock rules (fixed, per day, or forecast-driven).

They are ordinary callables ``policy(observation) -> orders`` for
:class:`deepstock.model.simulator.InventorySimulator`: the exact benchmarks of
:mod:`deepstock.model.optimal` simulate the base-stock levels they compute, and the Tmall-like
proxy's incumbent is the forecast base stock :class:`ForecastBaseStock` with its safety factor
fitted on the validation split (:func:`fit_incumbent`). :func:`tmall_metrics` scores any policy
with Tmall's Stockout Rate, Turnover Time and ``J``.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from deepstock.core.checks import check_number
from deepstock.model.dataset import SPLITS, InventoryDataset
from deepstock.model.simulator import InventorySimulator, Observation, Rollout

__all__ = [
    "DEFAULT_COVER_GRID",
    "DEFAULT_SAFETY_GRID",
    "SAFETY_RULES",
    "ConstantOrder",
    "CoverBaseStock",
    "ForecastBaseStock",
    "StationaryBaseStock",
    "TimeDependentBaseStock",
    "fit_cover_base_stock",
    "fit_incumbent",
    "incumbent_metrics",
    "per_trajectory",
    "tmall_metrics",
]

#: Safety-stock rules of :class:`ForecastBaseStock`.
SAFETY_RULES: tuple[str, ...] = ("std", "proportional")

#: The default grid of cover factors searched by :func:`fit_cover_base_stock` (0 to 4 by 0.05).
DEFAULT_COVER_GRID: tuple[float, ...] = tuple(round(0.05 * i, 2) for i in range(81))

#: The default grid of safety factors ``k`` searched by :func:`fit_incumbent`.
DEFAULT_SAFETY_GRID: tuple[float, ...] = tuple(round(0.1 * i, 1) for i in range(61))


def per_trajectory(values: Tensor, observation: Observation) -> Tensor:
    """``values`` (one per trajectory of the simulated dataset, or one for all) picked for the
    trajectories of ``observation``, on its device and dtype."""
    values = values.to(device=observation.pipeline.device, dtype=observation.pipeline.dtype)
    return values[observation.index] if values.ndim >= 1 and values.shape[0] > 1 else values


@dataclass
class ConstantOrder:
    """Order the same quantity (units) on every order day."""

    quantity: float

    def __call__(self, observation: Observation) -> Tensor:
        return torch.full_like(observation.inventory_position, float(self.quantity))


class StationaryBaseStock:
    """Order up to a fixed level: ``q = clip(S - IP_t, 0, M)``.

    Args:
        levels: scalar ``S`` or ``(n,)`` one level per trajectory of the simulated dataset, units.
    """

    def __init__(self, levels: float | Sequence[float] | np.ndarray | Tensor) -> None:
        self.levels = torch.as_tensor(np.asarray(levels, dtype=np.float64))
        if self.levels.ndim > 1:
            raise ValueError(
                f"levels must be a scalar or (n,), got shape {tuple(self.levels.shape)}"
            )

    def __call__(self, observation: Observation) -> Tensor:
        level = per_trajectory(self.levels.reshape(-1), observation)
        return (level - observation.inventory_position).clamp(min=0.0)


class TimeDependentBaseStock:
    """Order up to a level that depends on the day: ``q_t = clip(S_t - IP_t, 0, M)``.

    Args:
        levels: ``(T,)`` shared by all trajectories, or ``(n, T)`` per trajectory, units.
    """

    def __init__(self, levels: Sequence[float] | np.ndarray | Tensor) -> None:
        self.levels = torch.as_tensor(np.asarray(levels, dtype=np.float64))
        if self.levels.ndim not in (1, 2):
            raise ValueError(f"levels must be (T,) or (n, T), got shape {tuple(self.levels.shape)}")

    def __call__(self, observation: Observation) -> Tensor:
        levels = self.levels.to(observation.pipeline.device, observation.pipeline.dtype)
        if levels.ndim == 1:
            level = levels[observation.day].expand_as(observation.inventory_position)
        else:
            level = levels[observation.index, observation.day]
        return (level - observation.inventory_position).clamp(min=0.0)


class CoverBaseStock:
    """Order up to a multiple of the demand expected over an order's cover.

    On an order day ``t`` of a SKU with lead time ``L_t`` and review period ``P`` the order must
    last until the next one lands, ``L_t + P`` days, so the level is

        ``S_t = factor * (L_t + P) * r_t``

    with ``r_t`` a demand rate in units per day: the value of a demand-rate feature on day ``t``
    (``rate_feature``, an index into the feature axis) or one constant ``rate``. The order is
    ``max(S_t - IP_t, 0)`` (the simulator caps it). It uses only what a planner knows on day
    ``t`` (the SKU's lead time and review period, today's context), never future demand: the
    base-stock heuristic of a user's dataset, with ``factor`` fitted on the validation split
    (:func:`fit_cover_base_stock`).

    Args:
        factor: ``>= 0``, the multiple of the expected cover demand: one number, or ``(n,)``
            one per trajectory of the simulated dataset (a grid search simulates every factor
            in one batch).
        lead_time: ``(n, T)`` int, the lead times of the simulated dataset's trajectories.
        review_period: ``(n,)`` int, their review periods.
        rate_feature: the feature giving ``r_t``; or ``None`` to use ``rate``.
        rate: the constant rate (units/day) when ``rate_feature`` is ``None``.
    """

    def __init__(
        self,
        factor: float,
        lead_time: np.ndarray,
        review_period: np.ndarray,
        *,
        rate_feature: int | None = None,
        rate: float | None = None,
    ) -> None:
        factors = np.asarray(factor, dtype=np.float64)
        if factors.ndim > 1 or not np.isfinite(factors).all() or (factors < 0).any():
            raise ValueError(f"factor must be a finite number >= 0 or (n,) of them, got {factor!r}")
        self.factor = float(factors) if factors.ndim == 0 else torch.as_tensor(factors)
        if (rate_feature is None) == (rate is None):
            raise ValueError("CoverBaseStock needs exactly one of rate_feature and rate")
        self.rate_feature = rate_feature
        self.rate = None if rate is None else check_number("rate", rate, 0.0)
        self.lead_time = torch.as_tensor(np.asarray(lead_time, dtype=np.float64))
        self.review_period = torch.as_tensor(np.asarray(review_period, dtype=np.float64))

    @classmethod
    def for_dataset(
        cls,
        dataset: InventoryDataset,
        factor: float,
        *,
        rate_feature: int | None = None,
        rate: float | None = None,
    ) -> CoverBaseStock:
        """The policy for simulating ``dataset`` (its lead times and review periods)."""
        return cls(
            factor,
            dataset.lead_time,
            dataset.review_period,
            rate_feature=rate_feature,
            rate=rate,
        )

    def level(self, observation: Observation) -> Tensor:
        """``(batch,)`` the order-up-to levels ``S_t`` (units)."""
        like = observation.pipeline
        lead = self.lead_time.to(like.device, like.dtype)[observation.index, observation.day]
        review = self.review_period.to(like.device, like.dtype)[observation.index]
        if self.rate_feature is None:
            rate = torch.full_like(lead, float(self.rate))
        else:
            rate = observation.features[:, self.rate_feature].to(like.dtype)
        factor = self.factor
        if isinstance(factor, Tensor):
            factor = factor.to(like.device, like.dtype)[observation.index]
        return factor * (lead + review) * rate

    def __call__(self, observation: Observation) -> Tensor:
        return (self.level(observation) - observation.inventory_position).clamp(min=0.0)

    def __repr__(self) -> str:
        source = f"feature {self.rate_feature}" if self.rate is None else f"rate {self.rate:g}"
        factor = self.factor if isinstance(self.factor, float) else "per trajectory"
        return f"CoverBaseStock(factor={factor}, {source})"


def fit_cover_base_stock(
    dataset: InventoryDataset,
    grid: Sequence[float] = DEFAULT_COVER_GRID,
    *,
    split: str = "val",
    device: str | torch.device = "cpu",
) -> tuple[dict[str, Any], pd.DataFrame]:
    """Fit :class:`CoverBaseStock`'s factor by grid search on one split (validation).

    The rate is the dataset's first demand feature (``coeff_features[0]``) when it has one,
    else the mean daily demand of the training split (one number for every SKU). Every factor
    of ``grid`` is simulated on the SKUs of ``split`` and scored by the dataset's loss; the
    smallest loss wins (ties: the smallest factor). The test split is never simulated.

    Returns:
        ``(parameters, table)``: ``{"factor", "rate_feature", "rate"}`` (pass them to
        :meth:`CoverBaseStock.for_dataset`) and one row per factor with ``factor``, ``loss``,
        ``stockout_rate``, ``turnover_time``, ``objective`` and ``chosen``.
    """
    values = _check_grid(grid)
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if dataset.coeff_features:
        parameters: dict[str, Any] = {"rate_feature": dataset.coeff_features[0], "rate": None}
    else:
        rate = float(dataset.subset("train").demand.mean())
        parameters = {"rate_feature": None, "rate": rate}
    # every factor in one batch: the split's SKUs repeated once per factor
    subset = dataset.subset(split)
    n = subset.n_trajectories
    repeated = subset.select(np.tile(np.arange(n), len(values)))
    factors = np.repeat(np.asarray(values, dtype=np.float64), n)
    rollout = InventorySimulator.from_dataset(repeated, device=device).rollout(
        CoverBaseStock.for_dataset(repeated, factors, **parameters)
    )

    def per_factor(values_per_row: Tensor) -> list[float]:
        return values_per_row.reshape(-1, n).mean(dim=1).tolist()

    rows = {
        "factor": values,
        "loss": per_factor(rollout.trajectory_loss),
        "stockout_rate": per_factor(rollout.stockout_rate),
        "turnover_time": per_factor(rollout.turnover_time),
        "objective": per_factor(rollout.objective),
    }
    table = pd.DataFrame(rows)
    best = int(table["loss"].to_numpy().argmin())
    table["chosen"] = np.arange(len(table)) == best
    if len(values) > 1 and best == len(values) - 1:
        warnings.warn(
            f"fit_cover_base_stock: the best factor is the largest of the grid ({values[best]:g});"
            " widen the grid",
            stacklevel=2,
        )
    return {"factor": values[best], **parameters}, table


# --------------------------------------------------------------------------------------------
# Metrics
# --------------------------------------------------------------------------------------------


def _rollout(
    dataset: InventoryDataset, policy: Any, split: str | None, device: str | torch.device
) -> Rollout:
    data = dataset if split is None else dataset.subset(split)
    return InventorySimulator.from_dataset(data, device=device).rollout(policy)


def tmall_metrics(
    dataset: InventoryDataset,
    policy: Any,
    split: str | None = None,
    *,
    device: str | torch.device = "cpu",
) -> dict[str, float]:
    """Tmall's metrics of ``policy`` on a split (every trajectory if ``split`` is None).

    Returns the means over SKUs of: ``stockout_rate_pct`` (SR in %), ``turnover_days`` (TT,
    days, capped at 28 per SKU), ``objective`` (``J = 100 SR + TT / 2``), and ``loss`` (the
    dataset's loss: ``J`` again on a proxy, whose objective is ``"tmall"``), plus ``n_skus``.
    """
    rollout = _rollout(dataset, policy, split, device)
    return {
        "n_skus": int(rollout.trajectory_loss.shape[0]),
        "stockout_rate_pct": 100.0 * float(rollout.stockout_rate.mean()),
        "turnover_days": float(rollout.turnover_time.mean()),
        "objective": float(rollout.objective.mean()),
        "loss": float(rollout.loss),
    }


# --------------------------------------------------------------------------------------------
# The incumbent: forecast-driven base stock with a safety factor
# --------------------------------------------------------------------------------------------


class ForecastBaseStock:
    """Predict-then-optimize base stock: order up to forecast cover plus safety stock.

    On an order day ``t`` of a SKU with lead time ``L`` and review period ``P`` the order must
    cover days ``t .. t + L + P - 1`` (the next order lands on ``t + P + L``), so with ``r_t``
    the forecast daily rate and ``n = L + P``:

    * ``safety="std"``: ``S_t = n r_t + k sigma_t sqrt(n)``, ``sigma_t`` the trailing standard
      deviation of daily demand (``std_28d``): the textbook normal approximation;
    * ``safety="proportional"``: ``S_t = n r_t (1 + k)``.

    The order is ``max(S_t - IP_t, 0)`` (the simulator caps it at ``max_replenish``). ``L``,
    ``P``, ``r_t`` and ``sigma_t`` are read from the context, so the policy works on any dataset
    with the named features.

    Args:
        feature_names: the dataset's feature names.
        safety_factor: ``k`` (finite; ``> -1`` for ``"proportional"``).
        safety: ``"std"`` or ``"proportional"``.
        forecast_feature: the feature giving ``r_t`` (units/day).
        std_feature: the feature giving ``sigma_t`` (units/day), used by ``"std"``.
    """

    def __init__(
        self,
        feature_names: Sequence[str],
        safety_factor: float,
        *,
        safety: str = "std",
        forecast_feature: str = "forecast_7d",
        std_feature: str = "std_28d",
    ) -> None:
        if safety not in SAFETY_RULES:
            raise ValueError(f"safety must be one of {SAFETY_RULES}, got {safety!r}")
        self.safety_factor = check_number("safety_factor", safety_factor)
        if safety == "proportional" and self.safety_factor <= -1:
            raise ValueError(
                f"safety_factor must be > -1 with safety='proportional', got {safety_factor}"
            )
        names = tuple(feature_names)
        needed = {
            "forecast_feature": forecast_feature,
            "lead_time": "lead_time_days",
            "review_period": "review_period_days",
        }
        if safety == "std":
            needed["std_feature"] = std_feature
        for role, feature in needed.items():
            if feature not in names:
                raise ValueError(
                    f"ForecastBaseStock needs feature {feature!r} ({role}); the dataset has "
                    f"{list(names)}"
                )
        self.safety = safety
        self.forecast_feature = forecast_feature
        self.std_feature = std_feature
        self._rate = names.index(forecast_feature)
        self._lead = names.index("lead_time_days")
        self._review = names.index("review_period_days")
        self._std = names.index(std_feature) if safety == "std" else None

    def level(self, features: Tensor) -> Tensor:
        """``(batch,)`` order-up-to levels ``S_t`` (units) from ``(batch, F)`` features."""
        cover = features[:, self._lead] + features[:, self._review]
        mean_demand = cover * features[:, self._rate]
        if self.safety == "proportional":
            return mean_demand * (1.0 + self.safety_factor)
        return mean_demand + self.safety_factor * features[:, self._std] * cover.sqrt()

    def __call__(self, observation: Observation) -> Tensor:
        level = self.level(observation.features)
        return (level - observation.inventory_position).clamp(min=0.0)

    def __repr__(self) -> str:
        return (
            f"ForecastBaseStock(safety_factor={self.safety_factor:g}, safety={self.safety!r}, "
            f"forecast_feature={self.forecast_feature!r})"
        )


def _check_grid(grid: Any) -> list[float]:
    values = np.asarray(grid, dtype=np.float64) if not isinstance(grid, (str, bytes)) else None
    if values is None or values.ndim != 1 or values.size == 0:
        raise ValueError(f"grid must be a non-empty 1-D sequence of numbers, got {grid!r}")
    if not np.isfinite(values).all():
        raise ValueError(f"grid must hold finite numbers, got {grid!r}")
    return sorted(set(values.tolist()))


def fit_incumbent(
    dataset: InventoryDataset,
    grid: Sequence[float] = DEFAULT_SAFETY_GRID,
    *,
    safety: str = "std",
    forecast_feature: str = "forecast_7d",
    split: str = "val",
    device: str | torch.device = "cpu",
) -> tuple[ForecastBaseStock, pd.DataFrame]:
    """Choose the incumbent's safety factor ``k`` by grid search on the validation split.

    Every ``k`` of ``grid`` is simulated on the SKUs of ``split`` and scored by the mean of
    ``J = 100 SR + TT / 2``; the smallest ``J`` wins (ties: the smallest ``k``, the leaner
    policy). Only ``split`` is simulated, so the test split never influences the choice.

    Returns:
        ``(policy, table)``: the :class:`ForecastBaseStock` with the chosen ``k``, and one row
        per ``k`` (ascending) with ``safety_factor``, ``stockout_rate_pct``, ``turnover_days``,
        ``objective``, ``loss`` and ``chosen`` (True on the winner's row).
    """
    values = _check_grid(grid)
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    subset = dataset.subset(split)
    simulator = InventorySimulator.from_dataset(subset, device=device)
    rows = []
    for k in values:
        policy = ForecastBaseStock(
            dataset.feature_names, k, safety=safety, forecast_feature=forecast_feature
        )
        rollout = simulator.rollout(policy)
        rows.append(
            {
                "safety_factor": k,
                "stockout_rate_pct": 100.0 * float(rollout.stockout_rate.mean()),
                "turnover_days": float(rollout.turnover_time.mean()),
                "objective": float(rollout.objective.mean()),
                "loss": float(rollout.loss),
            }
        )
    table = pd.DataFrame(rows)
    best = int(table["objective"].to_numpy().argmin())  # first minimum = smallest k
    table["chosen"] = np.arange(len(table)) == best
    if len(values) > 1 and best == len(values) - 1:
        # The optimum may lie beyond the grid; the caller should widen it.
        warnings.warn(
            f"fit_incumbent: the best safety factor is the largest of the grid ({values[best]:g});"
            " widen the grid",
            stacklevel=2,
        )
    chosen = ForecastBaseStock(
        dataset.feature_names,
        values[best],
        safety=safety,
        forecast_feature=forecast_feature,
    )
    return chosen, table


def incumbent_metrics(
    dataset: InventoryDataset,
    grid: Sequence[float] = DEFAULT_SAFETY_GRID,
    *,
    safety: str = "std",
    forecast_feature: str = "forecast_7d",
    device: str | torch.device = "cpu",
) -> pd.DataFrame:
    """The incumbent's metrics on validation and test, ``k`` fitted on validation.

    Returns:
        A frame indexed by ``"val"`` and ``"test"`` with ``safety_factor``, ``n_skus``,
        ``stockout_rate_pct`` (SR, %), ``turnover_days`` (TT, days), ``objective`` (J) and
        ``loss``.
    """
    policy, _ = fit_incumbent(
        dataset, grid, safety=safety, forecast_feature=forecast_feature, device=device
    )
    rows = {}
    for split in ("val", "test"):
        metrics = tmall_metrics(dataset, policy, split, device=device)
        rows[split] = {"safety_factor": policy.safety_factor, **metrics}
    return pd.DataFrame.from_dict(rows, orient="index")
