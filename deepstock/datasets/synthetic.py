"""The generators of the paper's synthetic settings 1-4.

:func:`generate_indep` (setting 1), :func:`generate_ar1` (settings 2 and 3), :func:`generate_iid`
(setting 4) and :func:`make_setting`, which calls them with each setting's parameters.

Every generator has two random streams. ``stream="authors"`` reproduces the authors' public
generators draw for draw (the book's *Inventory model* chapter lists the facts), so that the
trajectories, and every loss computed on them, equal the paper's. ``stream="fresh"`` draws new
trajectories from the same distributions with one explicit :class:`numpy.random.Generator`, for
repeated experiments; neither stream touches NumPy's global random state.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from deepstock.core.checks import check_int, check_number, check_pair
from deepstock.model.dataset import SPLITS, InventoryDataset

__all__ = [
    "SETTINGS",
    "STREAMS",
    "dataset_name",
    "generate_ar1",
    "generate_iid",
    "generate_indep",
    "generator_defaults",
    "iid_demand_days",
    "make_setting",
    "normalized_value",
]

#: The random streams of the generators.
STREAMS: tuple[str, ...] = ("authors", "fresh")

#: The synthetic settings of the paper.
SETTINGS: tuple[str, ...] = ("setting1", "setting2", "setting3", "setting4")

# The fresh stream of seed s is default_rng([_FRESH_STREAM_KEY, s]) rather than default_rng(s):
# the authors' stream already uses default_rng(42) for the INDEP and IID demands, and a fresh
# dataset must not silently repeat the authors' draws when it is given the same seed.
_FRESH_STREAM_KEY = 0x44535443  # "DSTC"


# --------------------------------------------------------------------------------------------
# Parameter checks of the generators
# --------------------------------------------------------------------------------------------


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
    seed = check_int("seed", seed, 0)
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
    holding_cost = check_number("holding_cost", holding_cost, 0.0)
    backlog_cost = check_number("backlog_cost", backlog_cost, 0.0)
    max_replenish = check_number("max_replenish", max_replenish)
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
    """Setting 1 (INDEP, the book's *The inventory model* and *Settings 1-3* chapters): independent, discrete-uniform daily demands.

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
        the benchmark (the book's *Settings 1-3* chapter) needs.
    """
    horizon = check_int("horizon", horizon, 1)
    review_period = check_int("review_period", review_period, 1)
    lead_time = check_int("lead_time", lead_time, 0)
    train_size = check_int("train_size", train_size, 1)
    val_size = check_int("val_size", val_size, 1)
    test_size = check_int("test_size", test_size, 1)
    lower_bound_mean = check_number("lower_bound_mean", lower_bound_mean)
    lower_bound_std = check_number("lower_bound_std", lower_bound_std, 0.0)
    lower_bound_max = check_int("lower_bound_max", lower_bound_max, 0)
    span = check_int("span", span, 1)
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
            bounds_seed = check_int("lower_bounds_seed", lower_bounds_seed, 0)
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
    """Settings 2 and 3 (AR(1), the book's *The inventory model* and *Settings 1-3* chapters): autocorrelated demands.

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
    horizon = check_int("horizon", horizon, 1)
    review_period = check_int("review_period", review_period, 1)
    lead_time = check_int("lead_time", lead_time, 0)
    train_size = check_int("train_size", train_size, 1)
    val_size = check_int("val_size", val_size, 1)
    test_size = check_int("test_size", test_size, 1)
    phi_range = list(check_pair("phi_range", phi_range, 0.0))
    if phi_range[1] > 1:
        raise ValueError(f"phi_range must lie within [0, 1], got {phi_range}")
    mean_range = list(check_pair("mean_range", mean_range, 0.0))
    std_range = list(check_pair("std_range", std_range, 0.0))
    burn_in = 4 * review_period if burn_in is None else check_int("burn_in", burn_in, 1)
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
    horizon_periods = check_int("horizon_periods", horizon_periods, 1)
    review_period = check_int("review_period", review_period, 1)
    lead_time = check_int("lead_time", lead_time, 0)
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
    """Setting 4 (IID, the book's *The inventory model* and *Settings 1-3* chapters): i.i.d. normal demand once per review period.

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
    n_skus = check_int("n_skus", n_skus, 1)
    horizon_periods = check_int("horizon_periods", horizon_periods, 1)
    review_period = check_int("review_period", review_period, 1)
    lead_time = check_int("lead_time", lead_time, 0)
    test_repeats = check_int("test_repeats", test_repeats, 1)
    demand_mean = check_number("demand_mean", demand_mean, 0.0)
    std_range = list(check_pair("std_range", std_range, 0.0))
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


def generator_defaults(setting: str) -> dict[str, Any]:
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


def normalized_value(value: Any) -> Any:
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
    defaults = generator_defaults(setting)
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
        if key in defaults and normalized_value(value) == normalized_value(defaults[key]):
            continue
        parts.append(f"{_NAME_TAGS.get(key, key.replace('_', ''))}{_name_value(value)}")
    return "-".join(parts)


#: Bytes per trajectory-day of a dataset in memory and while it is drawn, written and simulated
#: (float64 demand, int64 lead times, the features, the CSV text and the simulator's per-day
#: tensors): a rough, generous factor for refusing what cannot fit.
BYTES_PER_TRAJECTORY_DAY = 160


def available_memory_bytes() -> int | None:
    """Physical memory of this machine in bytes (``None`` where the OS does not say)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, OSError, ValueError):
        return None


def estimated_bytes(setting: str, **arguments: Any) -> int:
    """A rough memory need of ``make_setting(setting, **arguments)`` in bytes
    (:data:`BYTES_PER_TRAJECTORY_DAY` per trajectory-day)."""
    generator, fixed = _SETTING_GENERATORS[setting]
    return _estimated_bytes(generator, {**fixed, **arguments})


def _estimated_bytes(generator: Any, kwargs: dict[str, Any]) -> int:
    values = {
        name: parameter.default
        for name, parameter in inspect.signature(generator).parameters.items()
        if parameter.default is not inspect.Parameter.empty
    }
    values.update(kwargs)

    def integer(key: str) -> int:
        value = values.get(key, 0)
        return int(value) if isinstance(value, (int, np.integer)) else 0

    if "n_skus" in values:  # setting 4: train, val and test_repeats trajectories per SKU
        rows = integer("n_skus") * (2 + integer("test_repeats"))
        days = integer("review_period") + integer("lead_time")
        days += integer("review_period") * integer("horizon_periods")
    else:
        rows = integer("train_size") + integer("val_size") + integer("test_size")
        days = integer("horizon")
    return rows * days * BYTES_PER_TRAJECTORY_DAY


def _check_size(setting: str, generator: Any, kwargs: dict[str, Any]) -> None:
    """Refuse, before drawing anything, a dataset whose estimated memory need exceeds half of
    this machine's memory (it would end in an out-of-memory kill, not an error)."""
    need = _estimated_bytes(generator, kwargs)
    memory = available_memory_bytes()
    if memory is not None and need > memory // 2:
        raise ValueError(
            f"make_setting({setting!r}) with these sizes needs about {need / 2**30:.1f} GiB "
            f"(estimated), more than half of this machine's {memory / 2**30:.1f} GiB; choose "
            "fewer SKUs, trajectories or days"
        )


def make_setting(
    name: str, /, *, stream: str = "authors", seed: int = 42, **overrides: Any
) -> InventoryDataset:
    """The dataset of a synthetic setting of the paper (the book's *The inventory model* and *Settings 1-3* chapters).

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
    accepted = set(inspect.signature(generator).parameters) - {"stream", "seed"}
    unknown = sorted(set(overrides) - accepted)
    if unknown:
        raise ValueError(
            f"make_setting({name!r}): unknown argument(s) {unknown}; {name} accepts "
            f"{sorted(accepted)}"
        )
    kwargs = {**fixed, **overrides}
    _check_size(name, generator, kwargs)
    kwargs.setdefault("name", dataset_name(name, stream=stream, seed=seed, **overrides))
    dataset = generator(stream=stream, seed=seed, **kwargs)
    warmup, horizon = int(dataset.warmup.max()), dataset.horizon
    if warmup >= horizon:
        # the simulator would refuse it later, after the file is written
        raise ValueError(
            f"make_setting({name!r}): the warm-up P + L = {warmup} days is not shorter than the "
            f"horizon T = {horizon}, so no day would be counted; lengthen the horizon or "
            "shorten the review period or lead time"
        )
    params = {"setting": name, **dataset.params}
    return dataclasses.replace(dataset, params=params)
