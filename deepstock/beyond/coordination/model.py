"""The joint inventory-recommendation model: ``n`` products sharing one recommendation budget.

This is our own model of the system that Jiang, Han, Peng and Zhang (2025, arXiv 2510.04272)
describe; only a summary of their paper was available, so every equation below is a modelling
choice of this project, made to have the structure the summary describes (a recommendation
that shifts demand between products and over time, periodic review with lead time and lost
sales per product, one profit). Every number is an option of :class:`JointModelConfig`.

Notation (instance ``b`` = one assortment of ``n`` products, product ``i``, day ``t``):

* exposure ``a_t`` on the simplex (``a_{i,t} >= 0``, ``sum_i a_{i,t} = 1``): the share of the
  day's recommendation slots given to each product;
* effective exposure (purchase intention) ``E_{i,t} = rho E_{i,t-1} + (1 - rho) a_{i,t}`` with
  ``E_{i,-1} = 1 / n``: exposure keeps raising demand for a few days (``rho`` = carry-over);
* concave response ``r(x) = log(1 + kappa n x) / log(1 + kappa)``: ``r(0) = 0``, ``r(1/n) = 1``
  (uniform exposure), increasing and concave;
* demand rate ``lambda_{i,t} = mu_i s_{i,t} (1 + e_i r(E_{i,t}))`` with base rate ``mu_i``
  (units/day), seasonal factor ``s_{i,t} = 1 + A sin(2 pi t / period + phi_i)`` and marketing
  efficiency ``e_i``; demand ``D_{i,t} = lambda_{i,t} eps_{i,t}`` with a fixed multiplicative
  noise ``eps ~ Gamma(1/cv^2, cv^2)`` (mean 1), drawn once per instance so that demand is a
  differentiable function of the exposure (the reparameterization DS needs);
* inventory per product exactly as :class:`deepstock.model.simulator.InventorySimulator` with
  lost sales: an order of day ``t`` (only on review days ``t > 0, t % P == 0``, clipped to
  ``[0, M]``) enters the pipeline ``L`` days out; sales ``S = min(D, x[0])``, lost demand
  ``u = D - S``, end inventory ``y = x[0] - S``; the pipeline shifts;
* daily profit of an instance ``pi_t = sum_i (m_i S_{i,t} - h_i y_{i,t} - b_i u_{i,t})`` with
  margin ``m_i = p_i - c_i`` (price minus unit cost: the cost of goods is charged when a unit is
  sold, so an order placed near the end of the horizon costs nothing until it sells; this keeps
  the profit free of an end-of-horizon effect), holding cost ``h_i`` per unit per day and
  lost-sale penalty ``b_i`` per unit;
* the objective: mean daily profit over the counted days ``t >= W = P + L`` (the simulator's
  warm-up), averaged over instances.

Demand depends on the policy here, so the project's simulator (which takes demand as data)
cannot run the whole loop; :func:`advance_day` steps its public one-day kernel
(:meth:`~deepstock.model.simulator.InventorySimulator.advance_rows`) with the demand computed on
the day. A test checks that a whole rollout agrees with the simulator's on the same demand.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from functools import cached_property

import numpy as np
import torch
from torch import Tensor

from deepstock.core.checks import check_int, check_number, check_pair
from deepstock.model.simulator import InventorySimulator

__all__ = [
    "DayResult",
    "JointModelConfig",
    "JointInstances",
    "JointRollout",
    "advance_day",
    "daily_profit",
    "demand_rate",
    "exposure_response",
    "generate_instances",
    "season_factor",
    "update_intention",
]


@dataclass(frozen=True)
class JointModelConfig:
    """The joint model's parameters (module docstring for the equations).

    Attributes:
        n_products: ``n >= 2`` products per instance sharing one recommendation budget.
        horizon: ``T`` days simulated per instance.
        review_period: ``P >= 1`` days between orders.
        lead_time: ``L >= 0`` days from order to arrival.
        base_rate: range of ``mu_i``, units/day.
        efficiency: range of the marketing efficiency ``e_i >= 0`` (demand multiplier gained at
            uniform exposure).
        price: range of the price ``p_i``, money per unit.
        cost_share: range of the unit cost as a share of the price, in ``(0, 1)``.
        holding_rate: holding cost per unit per day as a share of the unit cost.
        penalty_rate: lost-sale penalty per unit as a share of the price (lost goodwill).
        response_curvature: ``kappa > 0``; larger is more concave (``kappa -> 0`` is linear).
        carryover: ``rho`` in ``[0, 1)``, the share of yesterday's intention kept today.
        season_amplitude: ``A`` in ``[0, 1)``, amplitude of the seasonal factor.
        season_period: days of one seasonal cycle.
        demand_cv: coefficient of variation of the multiplicative noise, ``> 0``.
        initial_cover: days of uniform-exposure demand on hand at the start.
        max_order_cover: the order cap ``M`` in days of the largest uniform-exposure rate the
            ranges allow.
    """

    n_products: int = 5
    horizon: int = 56
    review_period: int = 2
    lead_time: int = 2
    base_rate: tuple[float, float] = (4.0, 12.0)
    efficiency: tuple[float, float] = (0.2, 1.5)
    price: tuple[float, float] = (5.0, 15.0)
    cost_share: tuple[float, float] = (0.4, 0.8)
    holding_rate: float = 0.05
    penalty_rate: float = 0.2
    response_curvature: float = 4.0
    carryover: float = 0.5
    season_amplitude: float = 0.5
    season_period: float = 14.0
    demand_cv: float = 0.3
    initial_cover: float = 4.0
    max_order_cover: float = 30.0

    def __post_init__(self) -> None:
        check_int("n_products", self.n_products, 2)
        check_int("review_period", self.review_period, 1)
        check_int("lead_time", self.lead_time, 0)
        check_int("horizon", self.horizon, self.review_period + self.lead_time + 2)
        for name in ("base_rate", "price"):
            low, _ = check_pair(name, getattr(self, name), 0.0)
            if low <= 0:
                raise ValueError(f"{name} must be a pair of numbers > 0, got {getattr(self, name)}")
        check_pair("efficiency", self.efficiency, 0.0)
        low, high = check_pair("cost_share", self.cost_share, 0.0)
        if not (0 < low and high < 1):
            raise ValueError(f"cost_share must lie in (0, 1), got {self.cost_share!r}")
        check_number("holding_rate", self.holding_rate, 0.0)
        check_number("penalty_rate", self.penalty_rate, 0.0)
        check_number("response_curvature", self.response_curvature, 0.0, low_open=True)
        check_number("carryover", self.carryover, 0.0, 1.0, high_open=True)
        check_number("season_amplitude", self.season_amplitude, 0.0, 1.0, high_open=True)
        check_number("season_period", self.season_period, 0.0, low_open=True)
        check_number("demand_cv", self.demand_cv, 0.0, low_open=True)
        check_number("initial_cover", self.initial_cover, 0.0)
        check_number("max_order_cover", self.max_order_cover, 0.0, low_open=True)

    @property
    def warmup(self) -> int:
        """``W = P + L``: days before the first counted day (as in the project's simulator)."""
        return self.review_period + self.lead_time

    def to_dict(self) -> dict:
        """Plain JSON-able values (pairs as lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


@dataclass(frozen=True)
class JointInstances:
    """A set of instances (assortments with their demand noise), all tensors float64.

    Attributes:
        config: the model they were drawn under.
        base_rate, efficiency, price, margin, holding, penalty, phase: ``(batch, n)`` product
            attributes (units/day, multiplier, money/unit, money/unit, money/unit/day,
            money/unit, radians).
        noise: ``(batch, T, n)`` multiplicative demand noise, mean 1.
        season: ``(batch, T, n)`` the seasonal factor ``s_{i,t}``.
    """

    config: JointModelConfig
    base_rate: Tensor
    efficiency: Tensor
    price: Tensor
    margin: Tensor
    holding: Tensor
    penalty: Tensor
    phase: Tensor
    noise: Tensor
    season: Tensor

    @property
    def batch_size(self) -> int:
        return int(self.base_rate.shape[0])

    @property
    def scale(self) -> Tensor:
        """``(batch, n)`` the uniform-exposure rate ``mu_i (1 + e_i)``, units/day: the unit in
        which the agents read and set stock (days of demand), so one network serves products
        of any size."""
        return self.base_rate * (1.0 + self.efficiency)

    @property
    def priority(self) -> Tensor:
        """``(batch, n)`` margin times marketing efficiency ``m_i e_i``, money/unit."""
        return self.margin * self.efficiency

    @property
    def max_order(self) -> float:
        """The order cap ``M``, units: ``max_order_cover`` days of the largest rate at uniform
        exposure the ranges allow (one number for every instance, as in the project's
        simulator)."""
        config = self.config
        return float(config.max_order_cover * config.base_rate[1] * (1.0 + config.efficiency[1]))

    @cached_property
    def kernel(self) -> InventorySimulator:
        """The project's simulator over the ``batch * n`` product rows (instance-major), with
        lost sales, the review period, lead time and order cap: :func:`advance_day` steps its
        one-day kernel. Its own demand table is unused (zeros): demand depends on the policy."""
        config = self.config
        rows = self.batch_size * config.n_products
        return InventorySimulator(
            torch.zeros(rows, config.horizon, dtype=self.scale.dtype, device=self.scale.device),
            config.review_period,
            config.lead_time,
            max_replenish=self.max_order,
            lost_sales=True,
            device=self.scale.device,
            dtype=self.scale.dtype,
        )

    def subset(self, rows: Tensor) -> JointInstances:
        """The instances ``rows`` (int64 ``(k,)``)."""
        fields = {
            name: getattr(self, name)[rows]
            for name in (
                "base_rate",
                "efficiency",
                "price",
                "margin",
                "holding",
                "penalty",
                "phase",
                "noise",
                "season",
            )
        }
        return JointInstances(config=self.config, **fields)

    def to(self, device: torch.device) -> JointInstances:
        fields = {
            name: getattr(self, name).to(device)
            for name in (
                "base_rate",
                "efficiency",
                "price",
                "margin",
                "holding",
                "penalty",
                "phase",
                "noise",
                "season",
            )
        }
        return JointInstances(config=self.config, **fields)


def generate_instances(
    config: JointModelConfig, n_instances: int, seed: int, device: str | torch.device = "cpu"
) -> JointInstances:
    """Draw ``n_instances`` assortments, each attribute uniform on its range, with their noise.

    The same ``(config, n_instances, seed)`` always gives the same instances.
    """
    check_int("n_instances", n_instances, 1)
    check_int("seed", seed, 0)
    rng = np.random.default_rng(seed)
    shape = (n_instances, config.n_products)

    def uniform(bounds: tuple[float, float]) -> np.ndarray:
        return rng.uniform(bounds[0], bounds[1], size=shape)

    base_rate = uniform(config.base_rate)
    efficiency = uniform(config.efficiency)
    price = uniform(config.price)
    cost = price * uniform(config.cost_share)
    phase = rng.uniform(0.0, 2.0 * math.pi, size=shape)
    shape_k = 1.0 / config.demand_cv**2
    noise = rng.gamma(shape_k, 1.0 / shape_k, size=(n_instances, config.horizon, config.n_products))
    days = np.arange(config.horizon)[None, :, None]
    season = 1.0 + config.season_amplitude * np.sin(
        2.0 * math.pi * days / config.season_period + phase[:, None, :]
    )

    def tensor(values: np.ndarray) -> Tensor:
        return torch.as_tensor(values, dtype=torch.float64, device=device)

    return JointInstances(
        config=config,
        base_rate=tensor(base_rate),
        efficiency=tensor(efficiency),
        price=tensor(price),
        margin=tensor(price - cost),
        holding=tensor(config.holding_rate * cost),
        penalty=tensor(config.penalty_rate * price),
        phase=tensor(phase),
        noise=tensor(noise),
        season=tensor(season),
    )


# ---------------------------------------------------------------------- the day's equations
def exposure_response(intention: Tensor, n_products: int, curvature: float) -> Tensor:
    """``r(x) = log(1 + kappa n x) / log(1 + kappa)``, elementwise; ``r(1/n) = 1``."""
    return torch.log1p(curvature * n_products * intention) / math.log1p(curvature)


def update_intention(previous: Tensor, exposure: Tensor, carryover: float) -> Tensor:
    """``E_t = rho E_{t-1} + (1 - rho) a_t``, ``(batch, n)``."""
    return carryover * previous + (1.0 - carryover) * exposure


def demand_rate(
    instances: JointInstances, day: int, intention: Tensor, season: Tensor | None = None
) -> Tensor:
    """``lambda_{i,t} = mu_i s_{i,t} (1 + e_i r(E_{i,t}))``, ``(batch, n)`` units/day.

    ``season`` (``(batch, n)``) replaces the instances' seasonal factor of day ``day``: a
    forecast past the horizon computes it from the calendar.
    """
    config = instances.config
    if season is None:
        season = instances.season[:, day]
    response = exposure_response(intention, config.n_products, config.response_curvature)
    return instances.base_rate * season * (1.0 + instances.efficiency * response)


def season_factor(instances: JointInstances, day: int) -> Tensor:
    """``s_{i,t} = 1 + A sin(2 pi t / period + phi_i)``, ``(batch, n)``, for any day ``t``."""
    config = instances.config
    angle = 2.0 * math.pi * day / config.season_period + instances.phase
    return 1.0 + config.season_amplitude * torch.sin(angle)


@dataclass(frozen=True)
class DayResult:
    """One day of the joint model, all ``(batch, n)`` tensors in units (profit ``(batch,)``)."""

    order: Tensor
    demand: Tensor
    sales: Tensor
    lost: Tensor
    end_inventory: Tensor
    next_pipeline: Tensor
    profit: Tensor


def daily_profit(
    instances: JointInstances, sales: Tensor, end_inventory: Tensor, lost: Tensor
) -> Tensor:
    """``pi_t = sum_i (m_i S_i - h_i y_i - b_i u_i)``, ``(batch,)`` money/day."""
    per_product = (
        instances.margin * sales - instances.holding * end_inventory - instances.penalty * lost
    )
    return per_product.sum(dim=-1)


def advance_day(
    instances: JointInstances,
    day: int,
    pipeline: Tensor,
    order: Tensor | None,
    demand: Tensor,
) -> DayResult:
    """Simulate day ``day``: place the order, serve ``demand`` with lost sales, shift, profit.

    Args:
        instances: the instances (their costs and margins).
        day: ``0 <= day < T``.
        pipeline: ``(batch, n, L + 1)``: on hand, then arrivals in 1..L days (units).
        order: ``(batch, n)`` requested orders (zeroed off review days, clipped to ``[0, M]``),
            or ``None`` for no order.
        demand: ``(batch, n)`` the day's demand, units.

    The inventory events are the project simulator's own one-day kernel
    (:meth:`InventorySimulator.advance_rows`, lost sales) on the ``batch * n`` product rows;
    differentiable in ``pipeline``, ``order`` and ``demand``.
    """
    kernel = instances.kernel
    batch, n = demand.shape
    width = pipeline.shape[-1]
    outcome = kernel.advance_rows(
        pipeline.reshape(batch * n, width),
        None if order is None else order.reshape(batch * n),
        demand.reshape(batch * n),
        kernel.order_days[:, day],
        kernel.arrival_slot[:, day],
    )
    sales = outcome.sales.reshape(batch, n)
    lost = outcome.lost_demand.reshape(batch, n)
    end_inventory = outcome.end_inventory.reshape(batch, n)
    profit = daily_profit(instances, sales, end_inventory, lost)
    return DayResult(
        order=outcome.order.reshape(batch, n),
        demand=demand,
        sales=sales,
        lost=lost,
        end_inventory=end_inventory,
        next_pipeline=outcome.next_pipeline.reshape(batch, n, width),
        profit=profit,
    )


@dataclass(frozen=True)
class JointRollout:
    """A whole-horizon simulation: ``(batch, T, n)`` per product and day, ``(batch, T)`` profit.

    Attributes:
        exposure: ``a_t``, shares.
        intention: ``E_t``, shares.
        rate: ``lambda_t``, units/day (noise-free).
        demand, sales, lost, orders, end_inventory: units.
        on_hand: stock on hand at the start of the day when the agents decide (the pipeline's
            first slot, the day's arrival included), units.
        target: the replenishment policy's order-up-to level on review days (NaN on other
            days and for policies without one), units.
        profit: ``(batch, T)`` money/day.
        counted: ``(T,)`` bool, days ``t >= W``.
    """

    exposure: Tensor
    intention: Tensor
    rate: Tensor
    demand: Tensor
    sales: Tensor
    lost: Tensor
    orders: Tensor
    end_inventory: Tensor
    on_hand: Tensor
    target: Tensor
    profit: Tensor
    counted: Tensor

    @property
    def instance_profit(self) -> Tensor:
        """``(batch,)`` mean daily profit over the counted days, money/day."""
        return self.profit[:, self.counted].mean(dim=1)

    @property
    def mean_profit(self) -> Tensor:
        """The objective: mean daily profit over counted days and instances (a scalar)."""
        return self.instance_profit.mean()
