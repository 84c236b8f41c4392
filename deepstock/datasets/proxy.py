"""A Tmall-like PROXY dataset and its predict-then-optimize incumbent (the book's *A Tmall-like proxy* chapter).

Tmall's data is private. This module builds the project's own synthetic stand-in with the
structure the paper describes for Tmall's offline test (paper section 5, Table 1): many SKUs whose
demand magnitudes span three orders of magnitude, review periods in {4, 7} days, lead times in
{5, 7} days, lost sales, a context with four demand features (two trailing means and two noisy
forecasts), static attributes, weekly seasonality and announced promotions, and the Stockout Rate /
Turnover Time metrics with the objective ``J = 100 * SR + TT / 2``. **Nothing here is Tmall's
data, Tmall's design or Tmall's incumbent**: every distribution and default below is this
project's choice, made so that the four regularizations (None, Base, Coeff, Both) face the same
kind of heterogeneity that motivated them.

The generative model, for one SKU ``i`` and calendar day ``d`` (integer days):

* base daily rate ``mu_i``, log-uniform on ``base_rate_range`` (default 1 to 1000 units a day);
* a platform-wide yearly factor ``exp(a cos(2 pi (d - d_peak) / 365))`` shared by all SKUs;
* a weekly profile ``w_i[d mod 7]``: ``exp(s z_k)`` with ``z_k ~ N(0, 1)``, ``k = 0..6``,
  divided by its mean so that the seven multipliers average 1;
* promotions: on a day with no promotion running, one starts with probability ``promotion_rate``;
  it lasts a uniform integer number of days in ``promotion_days`` and multiplies the rate by an
  uplift uniform on ``promotion_uplift_range``. A promotion is announced
  ``promotion_notice_days`` days before it starts (it is in the context from then on);
* the expected demand ``lambda_{i,d} = mu_i * yearly(d) * w_i[d mod 7] * uplift_{i,d}``;
* demand ``D_{i,d} ~ Poisson(lambda_{i,d} G_{i,d})``, ``G ~ Gamma(1/phi_i, phi_i)`` (mean 1,
  variance ``phi_i``), a negative binomial with variance ``lambda + phi_i lambda^2``, so small
  SKUs are integer-valued and lumpy and large SKUs have a coefficient of variation near
  ``sqrt(phi_i)``; ``phi_i`` is uniform on ``dispersion_range``.

Calendar (a labelling convention only): calendar day 0 is Monday 1 July 2024. Training and
validation SKUs live on days ``[0, T)``; the test SKUs are a separate set of SKUs, drawn from the
same population, on the later window ``[test_start_day, test_start_day + T)`` (default day 215 =
1 February 2025, so the default windows mirror the paper's July-September 2024 training and
February-April 2025 test horizons). The test is therefore out of sample in both SKUs and time:
the yearly factor rises through the training window (towards its peak on day 133, 11 November)
and falls through the test window, and weekdays fall differently on the horizon's days.

Every SKU's demand is simulated for ``history_days`` days before its horizon (default 28), so the
trailing features of day ``t`` use only demand strictly before day ``t`` from the first day on.
The features are computed from demand, not sales: at Tmall demand during stockouts is inferred
(paper section 3); here it is known.

The context ``c_t`` (``PROXY_FEATURES``, in this order):

========================  ======================================================================
``mean_28d``              mean daily demand over days ``[t-28, t)`` (units/day)
``mean_7d``               mean daily demand over days ``[t-7, t)`` (units/day)
``forecast_7d``           noisy forecast of the mean daily demand over ``[t, t+7)`` (units/day)
``forecast_28d``          noisy forecast of the mean daily demand over ``[t, t+28)`` (units/day)
``std_28d``               standard deviation (population) of daily demand over ``[t-28, t)``
``lead_time_days``        the SKU's lead time ``L`` (static)
``review_period_days``    the SKU's review period ``P`` (static)
``log10_base_rate``       ``log10(mu_i)``, the SKU's sales class (static)
``dow_sin``, ``dow_cos``  day of week ``k = d mod 7`` as ``sin/cos(2 pi k / 7)``
``promotion_today``       1 on promotion days, else 0
``days_to_promotion``     days to the next announced promotion (1..notice; notice + 1 if none)
``promotion_uplift``      uplift of today's promotion, else of the next announced one, else 1
========================  ======================================================================

The first four are the demand features ``g(c)`` of the Coeff and Both regularizations
(``InventoryDataset.coeff_features == (0, 1, 2, 3)``). A forecast is the mean over its window of
the expected demand as known on day ``t`` (announced promotions included, unannounced ones not),
times a log-normal error ``exp(sigma z - sigma^2 / 2)`` (mean 1) drawn independently per SKU and
day: it stands for a forecasting system whose error this project chooses.

The incumbent (:class:`ForecastBaseStock`, :func:`fit_incumbent`, :func:`incumbent_metrics`) is
a predict-then-optimize rule of the kind the paper says ran before DRL (appendix B): on each order
day, order up to the forecast demand over the ``L + P`` days the order must cover plus a safety
stock whose one factor ``k`` is chosen on the validation split by grid search on ``J``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from deepstock.core.checks import check_int, check_number, check_pair
from deepstock.model.dataset import SPLITS, InventoryDataset

__all__ = [
    "CALENDAR_DAY0",
    "COEFF_FEATURE_NAMES",
    "EXPERIMENT_SEED",
    "FORECAST_WINDOWS",
    "PROXY_FEATURES",
    "TRAILING_WINDOWS",
    "ProxyConfig",
    "ProxyDraw",
    "draw_proxy",
    "experiment_proxy",
    "generate_proxy",
    "proxy_dataset",
    "proxy_summary",
    "yearly_factor",
]

#: What calendar day 0 stands for (a label; the proxy holds no real dates).
CALENDAR_DAY0 = "Monday 2024-07-01"

#: Lengths (days) of the trailing means ``mean_28d`` and ``mean_7d``.
TRAILING_WINDOWS: tuple[int, int] = (28, 7)

#: Lengths (days) of the forecast windows of ``forecast_7d`` and ``forecast_28d``.
FORECAST_WINDOWS: tuple[int, int] = (7, 28)

#: The demand features ``g(c)`` of Coeff and Both, in the book's *A Tmall-like proxy* chapter's order.
COEFF_FEATURE_NAMES: tuple[str, ...] = ("mean_28d", "mean_7d", "forecast_7d", "forecast_28d")

#: Every context feature of the proxy, in the order of the feature axis.
PROXY_FEATURES: tuple[str, ...] = COEFF_FEATURE_NAMES + (
    "std_28d",
    "lead_time_days",
    "review_period_days",
    "log10_base_rate",
    "dow_sin",
    "dow_cos",
    "promotion_today",
    "days_to_promotion",
    "promotion_uplift",
)


# The proxy's seeds give default_rng([key, seed]): a stream of its own, distinct from the
# synthetic settings' fresh stream for the same seed.
_PROXY_STREAM_KEY = 0x544D4C50  # "TMLP"

_DAYS_PER_YEAR = 365.0


# --------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProxyConfig:
    """Every size and distribution parameter of the proxy (validated on construction).

    Attributes:
        train_size: training SKUs (``>= 1``), on calendar days ``[0, horizon)``.
        val_size: validation SKUs (``>= 1``), on the same days as the training SKUs.
        test_size: test SKUs (``>= 1``), other SKUs, on ``[test_start_day, test_start_day +
            horizon)``.
        horizon: ``T``, days per trajectory; must exceed ``max(review_periods) +
            max(lead_times)`` (the warm-up) so that some days are counted.
        history_days: days simulated before each horizon for the trailing features
            (``>= 28``, the longest trailing window).
        test_start_day: first calendar day of the test window (``>= 0``; 215 = 1 Feb 2025).
        base_rate_range: ``(low, high)`` of the log-uniform base daily rate ``mu`` (units/day,
            ``0 < low <= high``).
        weekly_strength: ``s >= 0``, standard deviation of the log day-of-week multipliers
            (0: no weekly pattern).
        yearly_amplitude: ``a >= 0``, amplitude of the shared log yearly factor.
        yearly_peak_day: calendar day of the yearly factor's peak (133 = 11 November).
        dispersion_range: ``(low, high)`` of the gamma-Poisson dispersion ``phi >= 0``
            (``Var D = lambda + phi lambda^2``; 0 is Poisson).
        promotion_rate: probability in ``[0, 1]`` that a promotion starts on a day with none
            running.
        promotion_days: ``(low, high)`` integer range (inclusive, ``>= 1``) of a promotion's
            length in days.
        promotion_uplift_range: ``(low, high)`` of a promotion's demand multiplier (``>= 1``).
        promotion_notice_days: days (``>= 0``) between a promotion's announcement and its start.
        forecast_7d_noise: ``sigma >= 0`` of the log-normal error of ``forecast_7d``.
        forecast_28d_noise: ``sigma >= 0`` of the log-normal error of ``forecast_28d``.
        review_periods: the values of ``P`` (days, ``>= 1``, distinct).
        review_period_probs: their probabilities (same length, ``>= 0``, sum 1).
        lead_times: the values of ``L`` (days, ``>= 0``, distinct).
        lead_time_probs: their probabilities.
        holding_cost: ``h >= 0`` per unit left at the end of a day (for the simulator's loss;
            the proxy's metric is ``J``, see :func:`generate_proxy`).
        backlog_cost: ``b >= 0`` per unit of lost demand (the same remark).
        max_replenish: the order cap of the whole dataset (units, ``> 0``), or ``None`` for
            ``ceil(replenish_cover_days * max expected daily demand)`` over every SKU and day
            of the horizons.
        replenish_cover_days: days of cover of the largest SKU at its peak that the default
            cap allows (``> 0``; 28 matches the Coeff regularization's factor 28).
    """

    train_size: int = 200
    val_size: int = 100
    test_size: int = 200
    horizon: int = 90
    history_days: int = 28
    test_start_day: int = 215
    base_rate_range: tuple[float, float] = (1.0, 1000.0)
    weekly_strength: float = 0.25
    yearly_amplitude: float = 0.2
    yearly_peak_day: float = 133.0
    dispersion_range: tuple[float, float] = (0.05, 0.3)
    promotion_rate: float = 1.0 / 30.0
    promotion_days: tuple[int, int] = (2, 4)
    promotion_uplift_range: tuple[float, float] = (1.5, 3.0)
    promotion_notice_days: int = 14
    forecast_7d_noise: float = 0.15
    forecast_28d_noise: float = 0.25
    review_periods: tuple[int, ...] = (4, 7)
    review_period_probs: tuple[float, ...] = (0.5, 0.5)
    lead_times: tuple[int, ...] = (5, 7)
    lead_time_probs: tuple[float, ...] = (0.5, 0.5)
    holding_cost: float = 0.1
    backlog_cost: float = 0.9
    max_replenish: float | None = None
    replenish_cover_days: float = 28.0

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        for name in ("train_size", "val_size", "test_size"):
            set_(self, name, check_int(name, getattr(self, name), 1))
        set_(self, "horizon", check_int("horizon", self.horizon, 1))
        set_(
            self,
            "history_days",
            check_int("history_days", self.history_days, max(TRAILING_WINDOWS)),
        )
        set_(self, "test_start_day", check_int("test_start_day", self.test_start_day, 0))
        low, high = check_pair("base_rate_range", self.base_rate_range, 0.0)
        if low <= 0:
            raise ValueError(f"base_rate_range must have low > 0 (log-uniform), got {low}")
        set_(self, "base_rate_range", (low, high))
        set_(self, "weekly_strength", check_number("weekly_strength", self.weekly_strength, 0.0))
        set_(self, "yearly_amplitude", check_number("yearly_amplitude", self.yearly_amplitude, 0.0))
        set_(self, "yearly_peak_day", check_number("yearly_peak_day", self.yearly_peak_day))
        set_(self, "dispersion_range", check_pair("dispersion_range", self.dispersion_range, 0.0))
        rate = check_number("promotion_rate", self.promotion_rate, 0.0)
        if rate > 1:
            raise ValueError(f"promotion_rate must be a probability in [0, 1], got {rate}")
        set_(self, "promotion_rate", rate)
        days = check_pair("promotion_days", self.promotion_days, 1.0)
        if any(not float(v).is_integer() for v in days):
            raise ValueError(f"promotion_days must be whole days, got {self.promotion_days!r}")
        set_(self, "promotion_days", (int(days[0]), int(days[1])))
        set_(
            self,
            "promotion_uplift_range",
            check_pair("promotion_uplift_range", self.promotion_uplift_range, 1.0),
        )
        set_(
            self,
            "promotion_notice_days",
            check_int("promotion_notice_days", self.promotion_notice_days, 0),
        )
        for name in ("forecast_7d_noise", "forecast_28d_noise"):
            set_(self, name, check_number(name, getattr(self, name), 0.0))
        for values, probs, minimum in (
            ("review_periods", "review_period_probs", 1),
            ("lead_times", "lead_time_probs", 0),
        ):
            checked_values, checked_probs = _check_choice(
                values, getattr(self, values), probs, getattr(self, probs), minimum
            )
            set_(self, values, checked_values)
            set_(self, probs, checked_probs)
        warmup = max(self.review_periods) + max(self.lead_times)
        if self.horizon <= warmup:
            raise ValueError(
                f"horizon must exceed the longest warm-up max(review_periods) + max(lead_times) "
                f"= {warmup} days, got {self.horizon}"
            )
        set_(self, "holding_cost", check_number("holding_cost", self.holding_cost, 0.0))
        set_(self, "backlog_cost", check_number("backlog_cost", self.backlog_cost, 0.0))
        if self.max_replenish is not None:
            cap = check_number("max_replenish", self.max_replenish, 0.0)
            if cap <= 0:
                raise ValueError(f"max_replenish must be > 0 (or None), got {cap}")
            set_(self, "max_replenish", cap)
        cover = check_number("replenish_cover_days", self.replenish_cover_days, 0.0)
        if cover <= 0:
            raise ValueError(f"replenish_cover_days must be > 0, got {cover}")
        set_(self, "replenish_cover_days", cover)

    @property
    def n_skus(self) -> int:
        return self.train_size + self.val_size + self.test_size

    def to_dict(self) -> dict[str, Any]:
        """The parameters as JSON-serializable plain values (tuples become lists)."""
        return {
            key: list(value) if isinstance(value, tuple) else value
            for key, value in dataclasses.asdict(self).items()
        }


def _check_choice(
    values_name: str, values: Any, probs_name: str, probs: Any, minimum: int
) -> tuple[tuple[int, ...], tuple[float, ...]]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or not values:
        raise ValueError(f"{values_name} must be a non-empty sequence of integers, got {values!r}")
    checked = tuple(check_int(f"{values_name}[{i}]", v, minimum) for i, v in enumerate(values))
    if len(set(checked)) != len(checked):
        raise ValueError(f"{values_name} must be distinct, got {values!r}")
    if isinstance(probs, (str, bytes)) or not isinstance(probs, Sequence):
        raise ValueError(f"{probs_name} must be a sequence of probabilities, got {probs!r}")
    if len(probs) != len(checked):
        raise ValueError(
            f"{probs_name} must have one probability per value of {values_name} "
            f"({len(checked)}), got {len(probs)}"
        )
    weights = tuple(check_number(f"{probs_name}[{i}]", p, 0.0) for i, p in enumerate(probs))
    if abs(sum(weights) - 1.0) > 1e-9:
        raise ValueError(f"{probs_name} must sum to 1, got {probs!r} (sum {sum(weights)})")
    return checked, weights


# --------------------------------------------------------------------------------------------
# The draw: every SKU over its history, horizon and forecast look-ahead
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class ProxyDraw:
    """Everything drawn for a proxy dataset, including what the dataset does not keep.

    Shapes: ``n`` SKUs; ``W = history_days + T + lookahead`` days of each SKU's window, whose
    local day ``j`` is calendar day ``calendar_start[i] + j``; the horizon is ``j in [H, H + T)``
    with ``H = history_days``. The look-ahead days exist only to compute forecasts (no demand is
    drawn there).

    Attributes:
        config: the parameters.
        split: ``(n,)`` split labels (train first, then validation, then test).
        horizon_start: ``(n,)`` calendar day of each SKU's horizon day 0.
        calendar_start: ``(n,)`` calendar day of local day 0 (``horizon_start - H``).
        base_rate: ``(n,)`` ``mu`` (units/day).
        weekly_profile: ``(n, 7)`` multipliers by weekday (0 = Monday), mean 1 per row.
        dispersion: ``(n,)`` ``phi``.
        review_period: ``(n,)`` ``P`` (days).
        lead_time: ``(n,)`` ``L`` (days).
        expected_demand: ``(n, W)`` ``lambda`` (units/day), promotions included.
        uplift: ``(n, W)`` promotion multiplier (1 on days without promotion).
        promotion_start: ``(n, W)`` local day on which the promotion running that day started
            (``-1`` on days without promotion).
        demand: ``(n, H + T)`` drawn demand (units/day), history then horizon.
        features: ``(n, T, F)`` the context (:data:`PROXY_FEATURES`).
    """

    config: ProxyConfig
    split: np.ndarray
    horizon_start: np.ndarray
    calendar_start: np.ndarray
    base_rate: np.ndarray
    weekly_profile: np.ndarray
    dispersion: np.ndarray
    review_period: np.ndarray
    lead_time: np.ndarray
    expected_demand: np.ndarray
    uplift: np.ndarray
    promotion_start: np.ndarray
    demand: np.ndarray
    features: np.ndarray

    @property
    def history_days(self) -> int:
        return self.config.history_days

    @property
    def horizon_demand(self) -> np.ndarray:
        """``(n, T)`` demand of the horizon days."""
        return self.demand[:, self.history_days :]

    def promotions(self) -> list[list[list[float]]]:
        """Per SKU, its promotions overlapping the history or horizon, as
        ``[start calendar day, days, uplift]`` (a promotion still running at the end of the
        horizon is cut there)."""
        last = self.history_days + self.config.horizon
        result = []
        for row in range(self.uplift.shape[0]):
            starts = self.promotion_start[row, :last]
            events = []
            for start in np.unique(starts[starts >= 0]):
                days = int((starts == start).sum())
                events.append(
                    [
                        int(self.calendar_start[row] + start),
                        days,
                        float(self.uplift[row, start]),
                    ]
                )
            result.append(events)
        return result


def _generator(
    seed: int | None, rng: np.random.Generator | None
) -> tuple[np.random.Generator, int | None]:
    if rng is not None:
        if not isinstance(rng, np.random.Generator):
            raise ValueError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
        return rng, None
    seed = check_int("seed", seed, 0)
    return np.random.default_rng([_PROXY_STREAM_KEY, seed]), seed


def yearly_factor(calendar_day: np.ndarray, amplitude: float, peak_day: float) -> np.ndarray:
    """The shared yearly multiplier ``exp(a cos(2 pi (d - d_peak) / 365))`` (same shape)."""
    phase = 2.0 * np.pi * (np.asarray(calendar_day, dtype=np.float64) - peak_day) / _DAYS_PER_YEAR
    return np.exp(amplitude * np.cos(phase))


def draw_proxy(
    config: ProxyConfig | None = None,
    *,
    seed: int = 0,
    rng: np.random.Generator | None = None,
) -> ProxyDraw:
    """Draw every SKU of the proxy (module docstring) with its history and ground truth.

    Args:
        config: the parameters (default :class:`ProxyConfig()`).
        seed: ``>= 0``; the draws come from ``numpy.random.default_rng([key, seed])`` with a key
            of the proxy's own (ignored when ``rng`` is given).
        rng: an explicit generator to draw from instead.

    Draw order (fixed, so a seed always gives the same dataset): base rates, weekly profiles,
    dispersions, review periods, lead times, promotion coins, lengths and uplifts, gamma
    factors, Poisson demands, forecast errors (7-day then 28-day).
    """
    config = ProxyConfig() if config is None else config
    if not isinstance(config, ProxyConfig):
        raise ValueError(f"config must be a ProxyConfig, got {type(config).__name__}")
    generator, _ = _generator(seed, rng)
    c = config
    n, horizon, history = c.n_skus, c.horizon, c.history_days
    lookahead = max(max(FORECAST_WINDOWS), c.promotion_notice_days + 1)
    window = history + horizon + lookahead
    observed = history + horizon  # days with drawn demand

    split = np.repeat(np.array(SPLITS), [c.train_size, c.val_size, c.test_size])
    horizon_start = np.where(split == "test", c.test_start_day, 0).astype(np.int64)
    calendar_start = horizon_start - history
    calendar_day = calendar_start[:, None] + np.arange(window)[None, :]

    log_low, log_high = np.log(c.base_rate_range[0]), np.log(c.base_rate_range[1])
    base_rate = np.exp(generator.uniform(log_low, log_high, size=n))
    weekly = np.exp(c.weekly_strength * generator.standard_normal((n, 7)))
    weekly /= weekly.mean(axis=1, keepdims=True)
    dispersion = generator.uniform(*c.dispersion_range, size=n)
    review_period = np.asarray(c.review_periods)[
        generator.choice(len(c.review_periods), size=n, p=c.review_period_probs)
    ].astype(np.int64)
    lead_time = np.asarray(c.lead_times)[
        generator.choice(len(c.lead_times), size=n, p=c.lead_time_probs)
    ].astype(np.int64)

    # Promotions: a day-by-day renewal process (one coin per SKU and day, used only when no
    # promotion is running), drawn over the whole window so that forecasts can see announced
    # promotions beyond the horizon.
    coins = generator.random((n, window))
    lengths = generator.integers(c.promotion_days[0], c.promotion_days[1] + 1, size=(n, window))
    uplifts = generator.uniform(*c.promotion_uplift_range, size=(n, window))
    uplift = np.ones((n, window))
    promotion_start = np.full((n, window), -1, dtype=np.int64)
    remaining = np.zeros(n, dtype=np.int64)
    current_start = np.full(n, -1, dtype=np.int64)
    current_uplift = np.ones(n)
    for day in range(window):
        starting = (remaining == 0) & (coins[:, day] < c.promotion_rate)
        remaining = np.where(starting, lengths[:, day], remaining)
        current_start = np.where(starting, day, current_start)
        current_uplift = np.where(starting, uplifts[:, day], current_uplift)
        active = remaining > 0
        uplift[:, day] = np.where(active, current_uplift, 1.0)
        promotion_start[:, day] = np.where(active, current_start, -1)
        remaining = remaining - active

    regular_rate = (
        base_rate[:, None]
        * yearly_factor(calendar_day, c.yearly_amplitude, c.yearly_peak_day)
        * np.take_along_axis(weekly, calendar_day % 7, axis=1)
    )
    expected_demand = regular_rate * uplift

    # Gamma-Poisson demand; phi = 0 is plain Poisson (Gamma(inf, 0) is the constant 1).
    shape = np.divide(1.0, dispersion, out=np.full(n, np.inf), where=dispersion > 0)
    scale = dispersion
    gamma = np.ones((n, observed))
    noisy = dispersion > 0
    if noisy.any():
        gamma[noisy] = generator.gamma(
            shape[noisy, None], scale[noisy, None], size=(int(noisy.sum()), observed)
        )
    demand = generator.poisson(expected_demand[:, :observed] * gamma).astype(np.float64)

    error_7d = _lognormal_error(generator, c.forecast_7d_noise, (n, horizon))
    error_28d = _lognormal_error(generator, c.forecast_28d_noise, (n, horizon))

    features = _features(
        config=c,
        demand=demand,
        regular_rate=regular_rate,
        uplift=uplift,
        promotion_start=promotion_start,
        calendar_day=calendar_day,
        base_rate=base_rate,
        review_period=review_period,
        lead_time=lead_time,
        error_7d=error_7d,
        error_28d=error_28d,
    )
    return ProxyDraw(
        config=c,
        split=split,
        horizon_start=horizon_start,
        calendar_start=calendar_start,
        base_rate=base_rate,
        weekly_profile=weekly,
        dispersion=dispersion,
        review_period=review_period,
        lead_time=lead_time,
        expected_demand=expected_demand,
        uplift=uplift,
        promotion_start=promotion_start,
        demand=demand,
        features=features,
    )


def _lognormal_error(
    generator: np.random.Generator, sigma: float, size: tuple[int, int]
) -> np.ndarray:
    """Mean-one multiplicative errors ``exp(sigma z - sigma^2 / 2)`` of the given shape."""
    return np.exp(sigma * generator.standard_normal(size) - 0.5 * sigma**2)


def _features(
    *,
    config: ProxyConfig,
    demand: np.ndarray,
    regular_rate: np.ndarray,
    uplift: np.ndarray,
    promotion_start: np.ndarray,
    calendar_day: np.ndarray,
    base_rate: np.ndarray,
    review_period: np.ndarray,
    lead_time: np.ndarray,
    error_7d: np.ndarray,
    error_28d: np.ndarray,
) -> np.ndarray:
    """``(n, T, F)`` context of the horizon days (module docstring's table)."""
    n = demand.shape[0]
    horizon, history, notice = config.horizon, config.history_days, config.promotion_notice_days
    days = history + np.arange(horizon)  # local index j of horizon day t
    columns: dict[str, np.ndarray] = {}

    # Trailing statistics over [j - w, j): only demand strictly before the day.
    for w in TRAILING_WINDOWS:
        windows = np.lib.stride_tricks.sliding_window_view(demand, w, axis=1)[:, days - w]
        columns[f"mean_{w}d"] = windows.mean(axis=2)
        if w == 28:
            columns["std_28d"] = windows.std(axis=2)

    # Forecasts: the expected demand of [j, j + w) as known on day j (a promotion counts once
    # it is announced, i.e. if it starts no later than j + notice), times the error.
    known_sum = {w: np.zeros((n, horizon)) for w in FORECAST_WINDOWS}
    for k in range(max(FORECAST_WINDOWS)):
        ahead = days + k
        start = promotion_start[:, ahead]
        announced = (start >= 0) & (start <= days[None, :] + notice)
        rate = regular_rate[:, ahead] * np.where(announced, uplift[:, ahead], 1.0)
        for w in FORECAST_WINDOWS:
            if k < w:
                known_sum[w] += rate
    columns["forecast_7d"] = known_sum[7] / 7.0 * error_7d
    columns["forecast_28d"] = known_sum[28] / 28.0 * error_28d

    columns["lead_time_days"] = np.repeat(lead_time[:, None], horizon, axis=1).astype(float)
    columns["review_period_days"] = np.repeat(review_period[:, None], horizon, axis=1).astype(float)
    columns["log10_base_rate"] = np.repeat(np.log10(base_rate)[:, None], horizon, axis=1)
    weekday = calendar_day[:, days] % 7
    columns["dow_sin"] = np.sin(2.0 * np.pi * weekday / 7.0)
    columns["dow_cos"] = np.cos(2.0 * np.pi * weekday / 7.0)

    today = promotion_start[:, days] >= 0
    columns["promotion_today"] = today.astype(float)
    # The next promotion that starts within the notice period (k = 1..notice days ahead).
    days_to = np.full((n, horizon), notice + 1, dtype=np.int64)
    next_uplift = np.ones((n, horizon))
    for k in range(notice, 0, -1):  # backwards, so the nearest start wins
        ahead = days + k
        starts_then = promotion_start[:, ahead] == ahead[None, :]
        days_to = np.where(starts_then, k, days_to)
        next_uplift = np.where(starts_then, uplift[:, ahead], next_uplift)
    columns["days_to_promotion"] = days_to.astype(float)
    columns["promotion_uplift"] = np.where(today, uplift[:, days], next_uplift)

    return np.stack([columns[name] for name in PROXY_FEATURES], axis=2)


# --------------------------------------------------------------------------------------------
# The dataset
# --------------------------------------------------------------------------------------------


def proxy_dataset(
    draw: ProxyDraw, *, name: str = "tmall-proxy", seed: int | None = None
) -> InventoryDataset:
    """The :class:`~deepstock.model.dataset.InventoryDataset` of a :class:`ProxyDraw` (lost sales).

    ``params`` records the configuration, the seed, the calendar, and the per-SKU ground truth
    (base rate, weekly profile, dispersion, horizon start, promotions) so that a saved dataset
    keeps what :func:`proxy_summary` and the book need.
    """
    c = draw.config
    horizon_rate = draw.expected_demand[:, c.history_days : c.history_days + c.horizon]
    if c.max_replenish is None:
        max_replenish = float(math.ceil(c.replenish_cover_days * float(horizon_rate.max())))
    else:
        max_replenish = c.max_replenish
    n = draw.split.shape[0]
    params = {
        "setting": "proxy",
        "generator": "tmall-proxy",
        "proxy": (
            "the project's own synthetic stand-in for Tmall's private data "
            "(see the book's proxy chapter)"
        ),
        "seed": seed,
        "args": c.to_dict(),
        "calendar": {
            "day0": CALENDAR_DAY0,
            "train_val_days": [0, c.horizon],
            "test_days": [c.test_start_day, c.test_start_day + c.horizon],
        },
        "max_replenish_rule": (
            "given"
            if c.max_replenish is not None
            else f"ceil({c.replenish_cover_days:g} * max expected daily demand)"
        ),
        "sku_parameters": {
            "base_rate": draw.base_rate.tolist(),
            "dispersion": draw.dispersion.tolist(),
            "weekly_profile": draw.weekly_profile.tolist(),
            "horizon_start": draw.horizon_start.tolist(),
        },
        "promotions": draw.promotions(),
    }
    if seed is None:
        params["rng"] = "caller-supplied numpy.random.Generator"
    return InventoryDataset(
        name=name,
        demand=draw.horizon_demand.copy(),
        features=draw.features,
        feature_names=PROXY_FEATURES,
        review_period=draw.review_period,
        lead_time=np.repeat(draw.lead_time[:, None], c.horizon, axis=1),
        initial_stock=np.zeros(n),
        split=draw.split,
        sku_id=np.arange(1, n + 1, dtype=np.int64),
        holding_cost=c.holding_cost,
        backlog_cost=c.backlog_cost,
        max_replenish=max_replenish,
        lost_sales=True,
        coeff_features=tuple(PROXY_FEATURES.index(f) for f in COEFF_FEATURE_NAMES),
        params=params,
        objective="tmall",
    ).validate()


#: Seed of the proxy dataset of the book's comparison (:func:`experiment_proxy`).
EXPERIMENT_SEED = 0


def experiment_proxy() -> InventoryDataset:
    """The proxy of the book's comparison: :class:`ProxyConfig`'s defaults (200 training, 100
    validation and 200 test SKUs, 90 days) drawn with seed :data:`EXPERIMENT_SEED`, named
    ``"tmall-proxy"``. The committed ``data/datasets/proxy`` holds it as drawn once;
    ``load_setting("proxy")`` reads that folder, and this function is its fallback where the
    folder is absent: drawn on another machine, its features may differ in the last bits (the
    floating-point kernels differ), and with them its fingerprint and every run key."""
    return generate_proxy(seed=EXPERIMENT_SEED, name="tmall-proxy")


def generate_proxy(
    config: ProxyConfig | None = None,
    *,
    seed: int = 0,
    rng: np.random.Generator | None = None,
    name: str | None = None,
    **overrides: Any,
) -> InventoryDataset:
    """The Tmall-like PROXY dataset: the project's own synthetic design, NOT Tmall's data.

    Lost sales, 90-day horizons, review period in {4, 7} and lead time in {5, 7} per SKU,
    base rates log-uniform on [1, 1000] units/day, weekly seasonality, announced promotions,
    negative-binomial demand, and the context of :data:`PROXY_FEATURES` (module docstring).
    Training and validation SKUs share calendar days ``[0, T)``; the test SKUs are other SKUs on
    the later window starting at ``test_start_day``.

    The dataset's ``holding_cost``/``backlog_cost`` (default 0.1/0.9, as in settings 1-4) only
    define the simulator's per-unit loss, which here mixes SKUs whose units differ by a factor
    1000 (the largest SKUs dominate it); the proxy's metric is ``J = 100 SR + TT / 2``
    (:func:`tmall_metrics`). The order cap is one number for the whole dataset (the
    simulator's design); by default it gives the largest SKU ``replenish_cover_days`` days of
    its peak expected demand.

    Args:
        config: the parameters (default :class:`ProxyConfig()`); ``overrides`` replace fields
            of it, for example ``generate_proxy(train_size=50, horizon=60)``.
        seed: ``>= 0``, seed of the proxy's own stream (see :func:`draw_proxy`).
        rng: an explicit :class:`numpy.random.Generator` to draw from instead of ``seed``.
        name: the dataset's name; default ``"tmall-proxy-seed{seed}"`` (``"tmall-proxy-rng"``
            with ``rng``).

    Returns:
        The validated dataset (splits ``train``/``val``/``test`` in that order, ``sku_id``
        1..n, ``coeff_features == (0, 1, 2, 3)``).
    """
    config = ProxyConfig() if config is None else config
    if not isinstance(config, ProxyConfig):
        raise ValueError(f"config must be a ProxyConfig, got {type(config).__name__}")
    if overrides:
        known = {f.name for f in dataclasses.fields(ProxyConfig)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ValueError(
                f"unknown proxy parameter(s) {unknown}; expected fields of ProxyConfig"
            )
        config = dataclasses.replace(config, **overrides)
    generator, seed_used = _generator(seed, rng)
    draw = draw_proxy(config, rng=generator)
    if name is None:
        name = "tmall-proxy-rng" if seed_used is None else f"tmall-proxy-seed{seed_used}"
    return proxy_dataset(draw, name=name, seed=seed_used)


# --------------------------------------------------------------------------------------------
# Summary for the book
# --------------------------------------------------------------------------------------------


def proxy_summary(dataset: InventoryDataset) -> pd.DataFrame:
    """Per-split counts and magnitudes of a proxy dataset (one row per split, then ``"all"``).

    Columns: ``n_skus``; ``first_day``/``last_day`` (calendar days of the horizon, from
    ``params``); the SKU counts per review period (``review_period_4``...) and lead time
    (``lead_time_5``...); quantiles (min, 10%, median, 90%, max) of the base rate ``mu``
    (``base_rate_*``, units/day, from ``params``) and of the realized mean daily demand
    (``mean_demand_*``); the share of SKU-days in promotion and with zero demand.
    """
    sku_parameters = dataset.params.get("sku_parameters", {})
    if dataset.params.get("generator") != "tmall-proxy" or not {
        "base_rate",
        "horizon_start",
    } <= set(sku_parameters):
        raise ValueError(
            f"dataset {dataset.name!r} is not a proxy dataset: proxy_summary needs "
            "params['sku_parameters'] with 'base_rate' and 'horizon_start' (generate_proxy)"
        )
    base_rate = np.asarray(sku_parameters["base_rate"], dtype=np.float64)
    starts = np.asarray(sku_parameters["horizon_start"], dtype=np.int64)
    if base_rate.shape != (dataset.n_trajectories,) or starts.shape != base_rate.shape:
        raise ValueError(
            f"dataset {dataset.name!r}: params['sku_parameters'] has {base_rate.shape} base "
            f"rates and {starts.shape} horizon starts for {dataset.n_trajectories} trajectories"
        )
    names = dataset.feature_names
    promotion = (
        dataset.features[:, :, names.index("promotion_today")]
        if "promotion_today" in names
        else np.zeros_like(dataset.demand)
    )
    review_values = sorted(set(dataset.review_period.tolist()))
    lead = dataset.lead_time[:, 0]
    lead_values = sorted(set(lead.tolist()))
    quantiles = {"min": 0.0, "q10": 0.1, "median": 0.5, "q90": 0.9, "max": 1.0}

    def row(mask: np.ndarray) -> dict[str, Any]:
        result: dict[str, Any] = {
            "n_skus": int(mask.sum()),
            "first_day": int(starts[mask].min()),
            "last_day": int(starts[mask].max()) + dataset.horizon - 1,
        }
        for value in review_values:
            result[f"review_period_{value}"] = int((dataset.review_period[mask] == value).sum())
        for value in lead_values:
            result[f"lead_time_{value}"] = int((lead[mask] == value).sum())
        mean_demand = dataset.demand[mask].mean(axis=1)
        for label, q in quantiles.items():
            result[f"base_rate_{label}"] = float(np.quantile(base_rate[mask], q))
        for label, q in quantiles.items():
            result[f"mean_demand_{label}"] = float(np.quantile(mean_demand, q))
        result["promotion_day_share"] = float(promotion[mask].mean())
        result["zero_demand_share"] = float((dataset.demand[mask] == 0).mean())
        return result

    rows = {}
    for split in SPLITS:
        mask = dataset.split == split
        if mask.any():
            rows[split] = row(mask)
    rows["all"] = row(np.ones(dataset.n_trajectories, dtype=bool))
    return pd.DataFrame.from_dict(rows, orient="index")
