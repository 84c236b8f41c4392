"""The batched inventory simulator (the book's *The inventory model* chapter).

One simulator serves every method and every evaluation: DS differentiates through it, the RL
environments step it, the benchmarks and heuristics are scored by it. It works on ``(batch, ...)``
tensors, one row per trajectory (SKU), on any torch device; the only Python loop is over days.

Dynamics of day ``t`` (0-based), for a pipeline ``x_t = (x_t[0], ..., x_t[Lmax])`` where ``x_t[0]``
is on-hand stock and ``x_t[l]`` arrives in ``l`` days:

1. the order ``q_t`` (zero unless ``t > 0`` and ``t % P == 0``, clipped to ``[0, max_replenish]``)
   is added to ``x_t[L_t]``;
2. demand is served: ``y_t = x_t[0] - D_t``;
3. backlog keeps ``y_t`` (negative = backlog); lost sales records ``(D_t - x_t[0])^+`` as lost and
   sets ``y_t = max(y_t, 0)``; sales are ``min(D_t, max(x_t[0], 0))``;
4. shift: ``x_{t+1}[0] = y_t + x_t[1]``, ``x_{t+1}[l] = x_t[l+1]``, ``x_{t+1}[Lmax] = 0``.

The per-day loss ``h * max(y_t, 0) + b * u_t`` (``u_t`` = backlog ``max(-y_t, 0)`` or lost demand)
is counted on days ``W <= t < T`` with ``W = P + max_t L_t``; the trajectory loss is its mean over
the counted days.

With ``objective="tmall"`` (the Tmall-like proxy, the book's *A Tmall-like proxy* chapter) the trajectory loss is
Tmall's ``J = 100 SR + TT / 2`` instead, computed exactly from the whole trajectory. Two
approximations of it serve training, where the exact ``J`` cannot be used:

* per day (the RL rewards, the book's *The inventory model* chapter): ``100 * 1{y_t <= 0} + (y_t^+ / dbar) / 2``, with
  ``dbar`` the trajectory's mean daily demand over its counted days; its mean over the counted
  days is ``J`` with Turnover Time measured against demand instead of sales
  (:meth:`InventorySimulator.daily_loss`);
* smooth (DS's gradient, :attr:`Rollout.training_loss`): the stockout indicator becomes
  ``sigmoid(-n_t / (s * dbar))`` of the net stock ``n_t`` before lost sales are cut off
  (``s = stockout_smoothing``, a share of a day's demand), and Turnover Time is the exact ratio
  of mean stock to mean sales.

Neither approximation caps Turnover Time at 28 days. Beyond the cap ``J`` is flat (``J = 14``
for any policy that never runs out and holds more than 28 days of stock), so a capped training
signal would leave an overstocking policy with no direction to improve in: its gradient (DS) and
its reward differences (DDPG, PPO) would be zero. On a policy below the cap the approximations
and ``J`` agree up to the sales/demand ratio and the smoothing.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from deepstock.core.checks import check_number
from deepstock.model.dataset import InventoryDataset

__all__ = [
    "STOCKOUT_SMOOTHING",
    "TURNOVER_CAP_DAYS",
    "DayOutcome",
    "InventorySimulator",
    "Observation",
    "Policy",
    "Rollout",
    "TrajectoryRows",
    "order_windows",
    "resolve_device",
    "simulate",
]

#: Turnover Time is capped at this many days (the book's *The inventory model* chapter).
TURNOVER_CAP_DAYS = 28.0

#: Default width of DS's smooth stockout indicator under ``objective="tmall"``, as a share of
#: the trajectory's mean daily demand (:attr:`Rollout.training_loss`).
STOCKOUT_SMOOTHING = 0.1

_OBJECTIVES = ("cost", "tmall")


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` gives CUDA when available, else CPU; anything else is passed to torch."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda[:N]', got {device!r}")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available")
    return torch.device(device)


def _integer_tensor(name: str, value: Any, options: dict[str, Any]) -> Tensor:
    """``value`` as an int64 tensor; a fractional value is an error (not truncated)."""
    tensor = torch.as_tensor(value)
    if tensor.dtype == torch.bool:
        raise ValueError(f"{name} must hold integers, got booleans")
    if tensor.is_floating_point():
        bad = ~torch.isfinite(tensor) | (tensor != torch.round(tensor))
        if bool(bad.any()):
            raise ValueError(
                f"{name} must hold whole numbers of days, got {tensor[bad].flatten()[0].item()}"
            )
    return tensor.to(**options)


@dataclass(frozen=True)
class Observation:
    """What a policy sees at the start of day ``day``, before ordering.

    Attributes:
        day: the day index ``t``.
        pipeline: ``(batch, Lmax + 1)``, on hand then arrivals in 1..Lmax days (units).
        inventory_position: ``(batch,)``, ``IP_t = sum_l x_t[l]`` (units).
        features: ``(batch, F)``, the context ``c_t``.
        feature_min: ``(batch, F)``, per-trajectory minimum of each feature over the horizon
            (for a feature constant over time in every trajectory, its minimum over all of the
            simulator's trajectories).
        feature_max: ``(batch, F)``, the same with maxima.
        index: ``(batch,)`` int64, the rows of the simulated trajectories in the simulator
            (for policies with per-trajectory parameters).
        order_day: ``(batch,)`` bool, whether day ``t`` is an order day of each trajectory.
    """

    day: int
    pipeline: Tensor
    inventory_position: Tensor
    features: Tensor
    feature_min: Tensor
    feature_max: Tensor
    index: Tensor
    order_day: Tensor


#: A policy maps an :class:`Observation` to order quantities ``(batch,)`` in units. The
#: simulator zeroes them on non-order days and clips them to ``[0, max_replenish]``.
Policy = Callable[[Observation], Tensor]


@dataclass(frozen=True)
class DayOutcome:
    """The result of one simulated day, all ``(batch,)`` tensors in units.

    Attributes:
        order: the order actually placed (after the review-day mask and the cap).
        end_inventory: ``y_t`` (negative = backlog; ``>= 0`` under lost sales).
        lost_demand: ``(D_t - x_t[0])^+`` under lost sales, zero under backlog.
        sales: ``min(D_t, max(x_t[0], 0))``.
        next_pipeline: ``(batch, Lmax + 1)`` pipeline at the start of day ``t + 1``.
    """

    order: Tensor
    end_inventory: Tensor
    lost_demand: Tensor
    sales: Tensor
    next_pipeline: Tensor


@dataclass(frozen=True)
class Rollout:
    """A whole-horizon simulation of a batch of trajectories.

    Per-day tensors are ``(batch, T)``; per-trajectory tensors ``(batch,)``. Units: stock units,
    except losses (cost units per day), Stockout Rate (a fraction), Turnover Time (days).
    """

    orders: Tensor
    inventory_position: Tensor
    end_inventory: Tensor
    lost_demand: Tensor
    sales: Tensor
    daily_loss: Tensor
    counted: Tensor
    trajectory_loss: Tensor
    training_trajectory_loss: Tensor | None = None
    order_days: Tensor | None = None
    max_replenish: float = math.inf

    @property
    def loss(self) -> Tensor:
        """The dataset loss: mean trajectory loss (a scalar tensor)."""
        return self.trajectory_loss.mean()

    @property
    def training_loss(self) -> Tensor:
        """What DS differentiates: the loss itself for ``objective="cost"``, the smooth
        approximation of ``J`` for ``objective="tmall"`` (module docstring); a scalar."""
        if self.training_trajectory_loss is None:
            return self.loss
        return self.training_trajectory_loss.mean()

    @property
    def counted_days(self) -> Tensor:
        """``(batch,)`` number of counted days ``T - W``."""
        return self.counted.sum(dim=1)

    @property
    def stockout_rate(self) -> Tensor:
        """``(batch,)`` share of counted days that end with no stock (``y_t <= 0``)."""
        stockout = (self.end_inventory <= 0) & self.counted
        return stockout.sum(dim=1).to(self.end_inventory.dtype) / self.counted_days

    @property
    def turnover_time(self) -> Tensor:
        """``(batch,)`` mean end-of-day stock over mean daily sales, days, capped at 28."""
        mask = self.counted.to(self.end_inventory.dtype)
        mean_stock = (self.end_inventory.clamp(min=0) * mask).sum(dim=1) / self.counted_days
        mean_sales = (self.sales * mask).sum(dim=1) / self.counted_days
        return torch.clamp(mean_stock / (mean_sales + 1e-6), max=TURNOVER_CAP_DAYS)

    @property
    def cap_binding_rate(self) -> Tensor:
        """``(batch,)`` share of order days on which the order placed is the cap
        ``max_replenish`` (the policy asked for at least that much); 0 without order days."""
        if self.order_days is None:
            raise ValueError("this rollout does not record its order days")
        days = self.order_days.to(self.orders.dtype)
        at_cap = (self.orders >= self.max_replenish).to(self.orders.dtype) * days
        return at_cap.sum(dim=1) / days.sum(dim=1).clamp(min=1.0)

    @property
    def objective(self) -> Tensor:
        """``(batch,)`` Tmall's objective ``J = 100 * SR + TT / 2`` (lower is better)."""
        return 100.0 * self.stockout_rate + self.turnover_time / 2.0

    def metric_columns(self) -> dict[str, Tensor]:
        """The per-trajectory ``(batch,)`` tensors behind :meth:`metrics`, by name."""
        columns = {
            "loss": self.trajectory_loss,
            "stockout_rate": self.stockout_rate,
            "turnover_time": self.turnover_time,
            "objective": self.objective,
        }
        if self.order_days is not None:
            columns["cap_binding_rate"] = self.cap_binding_rate
        return columns

    def metrics(self) -> dict[str, float]:
        """Dataset means of the loss, the Tmall metrics and the share of order days at the cap
        (when the rollout records its order days), as plain floats."""
        return {name: float(values.mean()) for name, values in self.metric_columns().items()}


@dataclass
class TrajectoryRows:
    """The per-trajectory tables of some simulator rows, copied out for fast per-slot reads.

    An environment that steps ``n`` slots, each on a trajectory of its own, keeps one of these
    (:meth:`InventorySimulator.rows`) and refreshes a slot with :meth:`assign` when it starts a
    new episode, so that every step reads slot ``i``'s tables by position (a plain slice when all
    slots are at the same day) instead of gathering from the whole dataset.

    Attributes (``n`` rows, ``T`` days, ``F`` features, ``S`` RL steps):
        demand: ``(n, T)`` units. order_days: ``(n, T)`` bool. arrival_slot: ``(n, T, Lmax + 1)``.
        features: ``(n, T, F)``. feature_min, feature_max: ``(n, F)`` (network-input scaling).
        review_period: ``(n,)`` days. window_start, window_end: ``(n, S)`` the days of each RL
        step's loss window (:func:`order_windows`; inactive steps start at ``T``).
    """

    demand: Tensor
    order_days: Tensor
    arrival_slot: Tensor
    features: Tensor
    feature_min: Tensor
    feature_max: Tensor
    review_period: Tensor
    window_start: Tensor
    window_end: Tensor

    def assign(self, slots: Tensor, other: TrajectoryRows) -> None:
        """Overwrite the rows ``slots`` (in place) with ``other``'s rows, in order."""
        for item in dataclasses.fields(self):
            getattr(self, item.name)[slots] = getattr(other, item.name)


class InventorySimulator:
    """Batched simulator over a fixed set of trajectories.

    Args:
        demand: ``(batch, T)`` demand per day, units, ``>= 0`` and finite.
        review_period: ``(batch,)`` ``P >= 1`` days.
        lead_time: ``(batch,)`` or ``(batch, T)`` ``L >= 0`` days (per day for per-day lead times).
        features: ``(batch, T, F)`` context; ``None`` gives ``F = 0``.
        initial_stock: ``(batch,)`` on-hand units at the start of day 0 (default 0).
        holding_cost: ``h >= 0`` per unit left at the end of a day.
        backlog_cost: ``b >= 0`` per unit backlogged or lost.
        max_replenish: order cap, units, ``> 0``.
        lost_sales: lost sales instead of backlog.
        device: ``"auto"``, ``"cpu"`` or ``"cuda"``.
        dtype: float dtype of the state (float64 by default, so evaluations are exact to ~1e-12).
        objective: ``"cost"`` (the trajectory loss is the mean per-unit cost) or ``"tmall"``
            (it is Tmall's ``J``; module docstring).
        stockout_smoothing: ``s > 0``, width of the smooth stockout indicator of
            :attr:`Rollout.training_loss` as a share of a day's mean demand (``"tmall"`` only).
    """

    def __init__(
        self,
        demand: Tensor | np.ndarray,
        review_period: Tensor | np.ndarray | int,
        lead_time: Tensor | np.ndarray | int,
        *,
        features: Tensor | np.ndarray | None = None,
        initial_stock: Tensor | np.ndarray | float = 0.0,
        holding_cost: float = 0.1,
        backlog_cost: float = 0.9,
        max_replenish: float = 100.0,
        lost_sales: bool = False,
        device: str | torch.device = "auto",
        dtype: torch.dtype = torch.float64,
        objective: str = "cost",
        stockout_smoothing: float = STOCKOUT_SMOOTHING,
    ) -> None:
        if objective not in _OBJECTIVES:
            raise ValueError(f"objective must be one of {_OBJECTIVES}, got {objective!r}")
        if not isinstance(lost_sales, (bool, np.bool_)):
            raise ValueError(f"lost_sales must be a bool, got {lost_sales!r}")
        holding_cost = check_number("holding_cost", holding_cost, 0.0)
        backlog_cost = check_number("backlog_cost", backlog_cost, 0.0)
        if not dtype.is_floating_point:
            raise ValueError(f"dtype must be a floating-point torch dtype, got {dtype}")
        # the cap must be representable: a float32 cap above its range would become inf
        max_replenish = check_number(
            "max_replenish", max_replenish, 0.0, torch.finfo(dtype).max, low_open=True
        )
        if not (isinstance(stockout_smoothing, (int, float)) and 0 < stockout_smoothing < 1e6):
            raise ValueError(f"stockout_smoothing must be > 0, got {stockout_smoothing!r}")
        self.device = resolve_device(device)
        self.dtype = dtype
        demand = torch.as_tensor(demand, dtype=dtype, device=self.device)
        if demand.ndim != 2:
            raise ValueError(f"demand must have shape (batch, T), got {tuple(demand.shape)}")
        if demand.shape[0] < 1 or demand.shape[1] < 1:
            raise ValueError(
                f"demand must have at least one trajectory and one day, got shape "
                f"{tuple(demand.shape)}"
            )
        if not torch.isfinite(demand).all() or (demand < 0).any():
            raise ValueError("demand must be finite and >= 0")
        batch, horizon = demand.shape
        long_kw = {"dtype": torch.int64, "device": self.device}

        review_period = _integer_tensor("review_period", review_period, long_kw)
        review_period = review_period.expand(batch).clone()
        if (review_period < 1).any():
            raise ValueError("review_period must be >= 1")
        lead_time = _integer_tensor("lead_time", lead_time, long_kw)
        if lead_time.ndim <= 1:
            lead_time = lead_time.reshape(-1, 1) if lead_time.ndim == 1 else lead_time
            lead_time = lead_time.expand(batch, horizon).clone()
        if lead_time.shape != (batch, horizon):
            raise ValueError(
                f"lead_time must be a scalar, (batch,) or (batch, T) = {(batch, horizon)}, "
                f"got {tuple(lead_time.shape)}"
            )
        if (lead_time < 0).any():
            raise ValueError("lead_time must be >= 0")
        if features is None:
            features = torch.zeros(batch, horizon, 0, dtype=dtype, device=self.device)
        if isinstance(features, np.ndarray) and not features.flags.writeable:
            features = features.copy()  # torch refuses read-only arrays (e.g. broadcast views)
        features = torch.as_tensor(features, dtype=dtype, device=self.device)
        if features.ndim != 3 or features.shape[:2] != (batch, horizon):
            raise ValueError(
                f"features must have shape (batch, T, F) with (batch, T) = {(batch, horizon)}, "
                f"got {tuple(features.shape)}"
            )
        initial_stock = torch.as_tensor(initial_stock, dtype=dtype, device=self.device)
        initial_stock = initial_stock.expand(batch).clone()
        if not torch.isfinite(initial_stock).all():
            raise ValueError("initial_stock must be finite")
        if lost_sales and (initial_stock < 0).any():
            raise ValueError("initial_stock must be >= 0 under lost sales")

        self.batch_size = batch
        self.horizon = horizon
        self.demand = demand
        self.review_period = review_period
        self.lead_time = lead_time
        self.features = features
        self.initial_stock = initial_stock
        self.holding_cost = float(holding_cost)
        self.backlog_cost = float(backlog_cost)
        self.max_replenish = float(max_replenish)
        self.lost_sales = bool(lost_sales)

        self.max_lead_time = int(lead_time.max()) if lead_time.numel() else 0
        self.pipeline_width = self.max_lead_time + 1
        #: ``(batch,)`` warm-up days ``W = P + max_t L_t``.
        self.warmup = review_period + lead_time.max(dim=1).values
        if (self.warmup >= horizon).any():
            raise ValueError(
                f"horizon T={horizon} leaves no counted day for warm-up W = P + L = "
                f"{int(self.warmup.max())}; T must exceed W"
            )
        days = torch.arange(horizon, device=self.device)
        #: ``(batch, T)`` bool, days on which each trajectory orders (t > 0, t % P == 0).
        self.order_days = (days > 0) & (days % review_period[:, None] == 0)
        #: ``(batch, T)`` bool, days whose loss is counted (t >= W).
        self.counted = days >= self.warmup[:, None]
        #: ``(batch, T, Lmax + 1)`` one-hot of the pipeline slot an order of day t enters.
        self.arrival_slot = torch.nn.functional.one_hot(lead_time, self.pipeline_width).to(dtype)
        if features.shape[2] > 0:
            feature_min = features.min(dim=1).values
            feature_max = features.max(dim=1).values
            # A feature that is constant over time in every trajectory (a static attribute such
            # as the lead time) would normalize to 0 everywhere; its range is taken across the
            # trajectories instead, so that normalized inputs still tell SKUs apart.
            static = (feature_max == feature_min).all(dim=0)
            if bool(static.any()):
                feature_min = torch.where(static, feature_min.min(dim=0).values, feature_min)
                feature_max = torch.where(static, feature_max.max(dim=0).values, feature_max)
            self.feature_min, self.feature_max = feature_min, feature_max
        else:
            self.feature_min = self.feature_max = features[:, 0, :]
        self.index = torch.arange(batch, device=self.device)
        self.objective = objective
        self.stockout_smoothing = float(stockout_smoothing)
        counted_days = self.counted.sum(dim=1).to(dtype)
        #: ``(batch,)`` mean daily demand over the counted days (units/day, at least 1e-6): the
        #: scale of Turnover Time in the per-day and smooth approximations of ``J``.
        self.demand_scale = ((demand * self.counted).sum(dim=1) / counted_days).clamp(min=1e-6)

    @classmethod
    def from_dataset(
        cls,
        dataset: InventoryDataset,
        *,
        device: str | torch.device = "auto",
        dtype: torch.dtype = torch.float64,
        stockout_smoothing: float = STOCKOUT_SMOOTHING,
    ) -> InventorySimulator:
        """A simulator over every trajectory of ``dataset`` with its costs, order cap and
        objective.

        Raises:
            ValueError: a value does not fit ``dtype`` (a demand above float32's range, say),
                naming the dataset, the SKU and the day.
        """
        limit = float(torch.finfo(dtype).max)
        for name, values in (
            ("demand", dataset.demand),
            ("initial_stock", dataset.initial_stock),
            ("features", dataset.features),
        ):
            too_large = np.abs(values) > limit
            if too_large.any():
                where = np.argwhere(too_large)[0]
                day = f", day {where[1]}" if len(where) > 1 else ""
                raise ValueError(
                    f"dataset {dataset.name!r}: {name} {values[tuple(where)]:.6g} of sku_id "
                    f"{dataset.sku_id[where[0]]}{day} does not fit {dtype} (largest "
                    f"{limit:.6g}); rescale the data or use a wider dtype"
                )
        return cls(
            dataset.demand,
            dataset.review_period,
            dataset.lead_time,
            features=dataset.features,
            initial_stock=dataset.initial_stock,
            holding_cost=dataset.holding_cost,
            backlog_cost=dataset.backlog_cost,
            max_replenish=dataset.max_replenish,
            lost_sales=dataset.lost_sales,
            device=device,
            dtype=dtype,
            objective=dataset.objective,
            stockout_smoothing=stockout_smoothing,
        )

    # ------------------------------------------------------------------ one day at a time
    def rows(self, index: Tensor) -> TrajectoryRows:
        """Copies of the per-trajectory tables of the rows ``index`` (``(n,)`` int64), in order."""
        window_start, window_end = self.step_windows()
        return TrajectoryRows(
            demand=self.demand[index],
            order_days=self.order_days[index],
            arrival_slot=self.arrival_slot[index],
            features=self.features[index],
            feature_min=self.feature_min[index],
            feature_max=self.feature_max[index],
            review_period=self.review_period[index],
            window_start=window_start[index],
            window_end=window_end[index],
        )

    def initial_pipeline(self, index: Tensor | None = None) -> Tensor:
        """``(batch, Lmax + 1)`` pipeline at the start of day 0: initial stock on hand."""
        stock = self.initial_stock if index is None else self.initial_stock[index]
        pipeline = torch.zeros(
            stock.shape[0], self.pipeline_width, dtype=self.dtype, device=self.device
        )
        pipeline[:, 0] = stock
        return pipeline

    def observe(self, day: int, pipeline: Tensor, index: Tensor | None = None) -> Observation:
        """The :class:`Observation` of day ``day`` for the rows ``index`` (all rows if None)."""
        idx = self.index if index is None else index
        return Observation(
            day=day,
            pipeline=pipeline,
            inventory_position=pipeline.sum(dim=1),
            features=self.features[idx, day],
            feature_min=self.feature_min[idx],
            feature_max=self.feature_max[idx],
            index=idx,
            order_day=self.order_days[idx, day],
        )

    def advance_day(
        self, day: int | Tensor, pipeline: Tensor, order: Tensor | None, index: Tensor | None = None
    ) -> DayOutcome:
        """Simulate day ``day`` (the book's *The inventory model* chapter, events 1-4) for the rows ``index``.

        Args:
            day: ``0 <= day < T``, an int or a ``(batch,)`` int64 tensor (rows at different days).
            pipeline: ``(batch, Lmax + 1)`` state at the start of the day.
            order: ``(batch,)`` requested order in units, or ``None`` for no order. It is zeroed
                where ``day`` is not an order day and clipped to ``[0, max_replenish]``.
            index: ``(batch,)`` rows of this simulator being simulated (all rows if None).

        Differentiable in ``order`` and ``pipeline`` (no in-place operations on them).
        """
        if index is None and isinstance(day, int):
            rows = slice(None)
        else:
            rows = self.index if index is None else index
        return self.advance_rows(
            pipeline,
            order,
            self.demand[rows, day],
            self.order_days[rows, day],
            self.arrival_slot[rows, day],
        )

    def advance_rows(
        self,
        pipeline: Tensor,
        order: Tensor | None,
        demand: Tensor,
        order_day: Tensor,
        arrival_slot: Tensor,
    ) -> DayOutcome:
        """The one-day kernel (events 1-4 of the model) on rows that are already selected.

        :meth:`advance_day` and :meth:`rollout` call it after picking the day's rows; an
        environment that keeps its own per-slot copies (:meth:`rows`) calls it directly.

        Args:
            pipeline: ``(batch, Lmax + 1)`` state at the start of the day.
            order: ``(batch,)`` requested order (units) or ``None`` for no order; zeroed where
                ``order_day`` is False and clipped to ``[0, max_replenish]``.
            demand: ``(batch,)`` the day's demand, units.
            order_day: ``(batch,)`` bool, whether the day is an order day of each row.
            arrival_slot: ``(batch, Lmax + 1)`` one-hot of the pipeline slot an order enters.
        """
        if order is None:
            placed = torch.zeros_like(demand)
        else:
            placed = order.to(self.dtype).clamp(0.0, self.max_replenish) * order_day
            pipeline = pipeline + placed[:, None] * arrival_slot
        on_hand = pipeline[:, 0]
        sales = torch.minimum(demand, on_hand.clamp(min=0.0))
        if self.lost_sales:
            lost = demand - sales
            end_inventory = (on_hand - demand).clamp(min=0.0)
        else:
            lost = torch.zeros_like(demand)
            end_inventory = on_hand - demand
        if self.pipeline_width > 1:
            # shift left: tomorrow's on hand is today's end inventory plus tomorrow's arrival
            next_pipeline = torch.nn.functional.pad(pipeline[:, 1:], (0, 1))
            next_pipeline = next_pipeline + torch.nn.functional.pad(
                end_inventory[:, None], (0, self.pipeline_width - 1)
            )
        else:
            next_pipeline = end_inventory[:, None]
        return DayOutcome(placed, end_inventory, lost, sales, next_pipeline)

    def daily_loss(
        self, end_inventory: Tensor, lost_demand: Tensor, rows: Tensor | None = None
    ) -> Tensor:
        """Per-day loss before the warm-up mask, ``(batch, days)`` like the inputs.

        ``"cost"``: ``h * max(y, 0) + b * u``. ``"tmall"``: the per-day approximation of ``J``,
        ``100 * 1{y <= 0} + (y^+ / dbar) / 2`` (module docstring), where ``dbar`` is the mean
        daily demand of the simulator rows ``rows`` (all rows if None).
        """
        if self.objective == "tmall":
            scale = self.demand_scale if rows is None else self.demand_scale[rows]
            stockout = (end_inventory <= 0).to(end_inventory.dtype)
            cover = end_inventory.clamp(min=0.0) / scale[:, None]
            return 100.0 * stockout + cover / 2.0
        underage = lost_demand if self.lost_sales else (-end_inventory).clamp(min=0.0)
        return self.holding_cost * end_inventory.clamp(min=0.0) + self.backlog_cost * underage

    def _tmall_losses(
        self,
        end_inventory: Tensor,
        lost_demand: Tensor,
        sales: Tensor,
        counted: Tensor,
        rows: Tensor,
    ) -> tuple[Tensor, Tensor | None]:
        """Exact ``J`` per trajectory and, when gradients are on, its smooth approximation."""
        mask = counted.to(end_inventory.dtype)
        days = mask.sum(dim=1)
        stockout_rate = ((end_inventory <= 0).to(mask.dtype) * mask).sum(dim=1) / days
        mean_stock = (end_inventory.clamp(min=0) * mask).sum(dim=1) / days
        mean_sales = (sales * mask).sum(dim=1) / days
        turnover = mean_stock / (mean_sales + 1e-6)
        exact = 100.0 * stockout_rate + turnover.clamp(max=TURNOVER_CAP_DAYS) / 2.0
        if not torch.is_grad_enabled():
            return exact, None
        # net stock before lost sales are cut off: how far from (or into) a stockout the day is
        net_stock = end_inventory - lost_demand
        width = self.stockout_smoothing * self.demand_scale[rows]
        smooth_stockout = torch.sigmoid(-net_stock / width[:, None])
        smooth_rate = (smooth_stockout * mask).sum(dim=1) / days
        return exact, 100.0 * smooth_rate + turnover / 2.0

    # ------------------------------------------------------------------ whole horizon
    def rollout(
        self, policy: Policy | None, *, differentiable: bool = False, index: Tensor | None = None
    ) -> Rollout:
        """Simulate the whole horizon with ``policy`` for the rows ``index`` (all if None).

        ``differentiable=False`` runs under ``torch.no_grad()`` (the fast evaluation mode);
        ``True`` keeps the graph so that ``rollout.loss.backward()`` reaches the policy (DS).
        ``policy=None`` never orders.
        """
        with torch.set_grad_enabled(differentiable and torch.is_grad_enabled()):
            return self._rollout(policy, index)

    def _rollout(self, policy: Policy | None, index: Tensor | None) -> Rollout:
        if index is None:
            idx = self.index
            demand, order_days, arrival_slot = self.demand, self.order_days, self.arrival_slot
            features, feature_min, feature_max = self.features, self.feature_min, self.feature_max
        else:
            # gather the rows once; the day loop below only slices views
            idx = index
            demand, order_days = self.demand[idx], self.order_days[idx]
            arrival_slot, features = self.arrival_slot[idx], self.features[idx]
            feature_min, feature_max = self.feature_min[idx], self.feature_max[idx]
        pipeline = self.initial_pipeline(idx)
        any_order_day = order_days.any(dim=0).tolist()
        zeros = torch.zeros(idx.shape[0], dtype=self.dtype, device=self.device)
        orders, positions, ends, losts, sales = [], [], [], [], []
        for day in range(self.horizon):
            position = pipeline.sum(dim=1)
            positions.append(position)
            order = None
            if policy is not None and any_order_day[day]:
                observation = Observation(
                    day=day,
                    pipeline=pipeline,
                    inventory_position=position,
                    features=features[:, day],
                    feature_min=feature_min,
                    feature_max=feature_max,
                    index=idx,
                    order_day=order_days[:, day],
                )
                order = policy(observation)
            outcome = self.advance_rows(
                pipeline, order, demand[:, day], order_days[:, day], arrival_slot[:, day]
            )
            pipeline = outcome.next_pipeline
            orders.append(outcome.order if order is not None else zeros)
            ends.append(outcome.end_inventory)
            losts.append(outcome.lost_demand)
            sales.append(outcome.sales)
        all_orders = torch.stack(orders, dim=1)
        # one check per rollout (not per day: that would wait on the device every day)
        finite = torch.isfinite(all_orders)
        if not bool(finite.all()):
            row, day = (int(i) for i in torch.nonzero(~finite)[0])
            raise ValueError(
                f"the policy ordered {all_orders[row, day].item()} on day {day} "
                f"(trajectory {int(idx[row])}); orders must be finite numbers"
            )
        end_inventory = torch.stack(ends, dim=1)
        lost_demand = torch.stack(losts, dim=1)
        counted = self.counted[idx]
        sales_per_day = torch.stack(sales, dim=1)
        daily = self.daily_loss(end_inventory, lost_demand, idx) * counted
        training_loss = None
        if self.objective == "tmall":
            trajectory_loss, training_loss = self._tmall_losses(
                end_inventory, lost_demand, sales_per_day, counted, idx
            )
        else:
            trajectory_loss = daily.sum(dim=1) / counted.sum(dim=1)
        return Rollout(
            orders=all_orders,
            inventory_position=torch.stack(positions, dim=1),
            end_inventory=end_inventory,
            lost_demand=lost_demand,
            sales=sales_per_day,
            daily_loss=daily,
            counted=counted,
            trajectory_loss=trajectory_loss,
            training_trajectory_loss=training_loss,
            order_days=order_days,
            max_replenish=self.max_replenish,
        )

    def step_windows(self) -> tuple[Tensor, Tensor]:
        """Loss windows of the RL steps (the book's *The inventory model* chapter), see :func:`order_windows`."""
        return order_windows(self.review_period, self.lead_time, self.horizon)


def order_windows(review_period: Tensor, lead_time: Tensor, horizon: int) -> tuple[Tensor, Tensor]:
    """Start and end days of the loss window of every RL step (one step = one order).

    The order of day ``t`` (``t = P, 2P, ...``) first affects day ``t + L_t``; the next order lands
    on ``t + P + L_{t+P}``. Its window runs from its arrival to the next order's arrival,
    ``[t + L_t, t + P + L_{t+P})``, restricted to ``[W, T)``; with a constant lead time that is
    ``[t + L, t + L + P)`` (the book's *The inventory model* chapter). With per-day lead times arrivals are replaced by
    their running maximum, so that windows never overlap (an order that lands no later than an
    earlier one gets an empty window, its effect is counted with the later one). An episode ends
    with the first step whose next order could no longer land inside the horizon; the last window
    runs to the end of the horizon. The windows of one trajectory partition its counted days.

    Args:
        review_period: ``(batch,)`` ``P``.
        lead_time: ``(batch, T)`` ``L_t``.
        horizon: ``T``.

    Returns:
        ``(start, end)``, each ``(batch, max_steps)`` int64; steps beyond a trajectory's episode
        have ``start == end`` (empty). Step ``k`` is the order of day ``(k + 1) * P``.
    """
    batch = review_period.shape[0]
    max_lead = lead_time.max(dim=1).values
    warmup = review_period + max_lead
    max_steps = int(((horizon - 1) // review_period).max())
    step = torch.arange(1, max_steps + 1, device=review_period.device)
    order_day = step[None, :] * review_period[:, None]  # (batch, max_steps)
    in_horizon = order_day < horizon
    lead_at_order = torch.gather(lead_time, 1, order_day.clamp(max=horizon - 1))
    arrival = order_day + lead_at_order
    # Episode end: the step after the last one whose order can land inside the horizon.
    lands = in_horizon & (arrival < horizon)
    active = lands.cumprod(dim=1).bool()
    last = active.sum(dim=1)  # number of steps
    # A window runs from the (running maximum of the) arrivals to the next one, so that windows
    # of per-day lead times never overlap; with a constant lead time this is [t + L, t + L + P).
    arrival = torch.where(active, arrival, torch.full_like(arrival, horizon))
    start = torch.maximum(arrival.cummax(dim=1).values, warmup[:, None]).clamp(max=horizon)
    end = torch.cat([start[:, 1:], torch.full_like(start[:, :1], horizon)], dim=1)
    # The last step's window runs to the end of the horizon (no later order lands in time).
    last_idx = (last - 1).clamp(min=0)
    end = end.scatter(1, last_idx[:, None], torch.full((batch, 1), horizon, device=end.device))
    start = torch.where(active, start, torch.full_like(start, horizon))
    end = torch.where(active, end, torch.full_like(end, horizon))
    end = torch.maximum(end, start)
    return start, end


def simulate(
    dataset: InventoryDataset,
    policy: Policy | None,
    *,
    device: str | torch.device = "auto",
    differentiable: bool = False,
) -> Rollout:
    """Simulate ``policy`` on every trajectory of ``dataset`` (convenience wrapper)."""
    simulator = InventorySimulator.from_dataset(dataset, device=device)
    return simulator.rollout(policy, differentiable=differentiable)
