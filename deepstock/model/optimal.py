"""The optimal benchmark policies that every loss gap is measured against (the book's *Settings 1-3* chapter).

``gap = (loss(policy) - loss(benchmark)) / loss(benchmark)`` on the same trajectories.

- **INDEP (setting 1).** Demands are independent across days, so the optimal policy is a
  time-dependent base-stock policy. :func:`solve_base_stock_dp` computes it exactly by dynamic
  programming over the integer inventory position. Two variants are offered:
  ``"dp_true"`` uses the true demand distributions (discrete uniform on ``{l_t, ..., l_t + 4}``,
  the lower bounds read from the dataset's generator parameters) and is the project's benchmark;
  ``"dp_empirical"`` uses the per-day demand frequencies of the training trajectories, which is
  what the authors' script did (its test loss on the authors' data is 0.8670, the paper's implied
  benchmark).
- **IID (setting 4).** One demand per review period, independent and identically distributed per
  SKU, so the stationary base stock at the critical fractile of one period's demand is optimal:
  ``S = mean + z * sigma`` with ``z`` the standard normal quantile of ``b / (b + h)``
  (:func:`critical_fractile_levels`). Each order lands right before the period's only demand and
  every counted day of the period ends with the same inventory, so every period is the same
  newsvendor problem (the demand ``max(0, N(mean, sigma^2))`` has the normal's 0.9-quantile).
  The exact quantile is the default; the authors' ``z = 1.282`` is :data:`AUTHORS_Z`.
- **AR(1) (settings 2 and 3).** There is no closed form. The benchmark is the differentiable
  simulator (DS) trained on the test trajectories themselves, which needs DS training; it is
  computed by the experiments module (``deepstock run``), not here. :func:`benchmark_losses`
  returns an empty list for these datasets.

Every benchmark policy is evaluated by the project's one simulator
(:func:`deepstock.model.simulator.simulate`), so its losses are directly comparable with the trained
policies'.

The dynamic program (the book's *The inventory model* chapter conventions, backlog). Order days are
``t = P, 2P, ...``. An order placed on day ``t`` lands on day ``t + L``; every earlier order has
landed by then and the next one lands on ``t + P + L``. So with ``y`` the inventory position right
after ordering on day ``t``, the end-of-day inventory on each day ``s`` of the window
``t + L <= s < t + L + P`` is exactly ``y - (D_t + ... + D_s)``, and the windows of the order days
partition the counted days ``W = P + L <= s < T``. With ``x`` the inventory position before
ordering and ``C`` the order cap,

    G_k(y) = E[ sum over the window of k of  h (y - D_t..s)^+ + b (D_t..s - y)^+ ]
             + E[ V_{k+1}(y - D_t - ... - D_{t+P-1}) ],
    V_k(x) = min over x <= y <= x + C of G_k(y),

and since ``G_k`` is convex the minimum is reached at ``y = clip(S_k, x, x + C)`` with
``S_k = argmin G_k``: a base-stock policy ordering ``clip(S_k - x, 0, C)``. The days before the
first order are simulated with no order (``x`` on day ``P`` is ``initial stock - D_0 - ... -
D_{P-1}``). Order days whose delivery would land after the horizon cannot change the loss; the
policy orders nothing on them (level ``-inf``).

Ties. With empirical frequencies ``G_k`` can be flat at its minimum; the smallest minimizer is
taken (the least stock that is optimal). The authors' script, a table of orders over on-hand
inventory (exact for ``P = 2, L = 1``), took the smallest optimal order, which is the same
choice: on their setting-1 data this gives their test loss 0.8670, while the largest minimizer
(it differs on one order day) gives 0.8678. Empirical demands must be integers (the DP runs over
integer positions); the authors rounded them, which changes nothing in setting 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np

from deepstock.core.checks import check_integral
from deepstock.model.dataset import InventoryDataset
from deepstock.model.heuristics import (
    CoverBaseStock,
    StationaryBaseStock,
    TimeDependentBaseStock,
    fit_cover_base_stock,
    fit_incumbent,
)
from deepstock.model.simulator import simulate

__all__ = [
    "AUTHORS_Z",
    "BaseStockDPSolution",
    "benchmark_losses",
    "critical_fractile_levels",
    "critical_fractile_z",
    "dp_base_stock_solution",
    "empirical_demand_pmf",
    "gap_pct",
    "solve_base_stock_dp",
    "true_demand_pmf",
    "uniform_demand_pmf",
]


def gap_pct(loss: Any, benchmark: Any) -> Any:
    """The loss gap in percent, ``100 (loss - benchmark) / benchmark``, of numbers or arrays
    (or pandas columns); ``benchmark`` is the benchmark's loss on the same trajectories."""
    return 100.0 * (loss - benchmark) / benchmark


#: The z the authors' benchmark script used for setting 4 (critical ratio 0.9, rounded).
AUTHORS_Z = 1.282


@dataclass(frozen=True)
class BaseStockDPSolution:
    """The optimal time-dependent base-stock policy of :func:`solve_base_stock_dp`.

    Attributes:
        levels: ``(T,)`` float64, the base-stock level ``S_t`` (units of inventory position) on
            each order day whose delivery lands inside the horizon; ``-inf`` (order nothing) on
            every other day.
        order_days: ``(K,)`` int64, the order days ``t`` with a finite level, ascending.
        expected_cost: expected total loss over the counted days of one trajectory.
        expected_loss: ``expected_cost`` divided by the number of counted days, in the units of
            the trajectory loss (the book's *The inventory model* chapter).
        counted_days: number of counted days ``T - W``.
    """

    levels: np.ndarray
    order_days: np.ndarray
    expected_cost: float
    expected_loss: float
    counted_days: int


def _convolve_days(demand_pmf: np.ndarray, first: int, stop: int) -> np.ndarray:
    """Probability mass function of ``D_first + ... + D_{stop-1}`` (``[1.0]``, i.e. 0, if empty)."""
    pmf = np.ones(1)
    for day in range(first, stop):
        pmf = np.convolve(pmf, demand_pmf[day])
    return pmf


def _expected_newsvendor_cost(
    positions: np.ndarray, cum_pmf: np.ndarray, holding_cost: float, backlog_cost: float
) -> np.ndarray:
    """``E[h (y - X)^+ + b (X - y)^+]`` for each integer ``y`` in ``positions``.

    ``cum_pmf[k] = P(X = k)`` for ``k = 0 .. len(cum_pmf) - 1``. Uses the partial sums of the pmf
    so that the cost of the whole grid is one vectorized expression.
    """
    cdf = np.concatenate([[0.0], np.cumsum(cum_pmf)])  # cdf[k + 1] = P(X <= k)
    partial_mean = np.concatenate([[0.0], np.cumsum(cum_pmf * np.arange(cum_pmf.size))])
    mean = partial_mean[-1]
    index = np.clip(positions, -1, cum_pmf.size - 1) + 1
    overage = positions * cdf[index] - partial_mean[index]  # E[(y - X)^+]
    underage = overage + mean - positions  # E[(X - y)^+] = E[X] - y + E[(y - X)^+]
    return holding_cost * overage + backlog_cost * underage


def solve_base_stock_dp(
    demand_pmf: np.ndarray,
    *,
    review_period: int,
    lead_time: int,
    holding_cost: float,
    backlog_cost: float,
    max_replenish: float,
    initial_stock: float = 0.0,
) -> BaseStockDPSolution:
    """Optimal time-dependent base-stock policy for independent integer demands, under backlog.

    Exact dynamic program over the integer inventory position (module docstring). Vectorized over
    the positions; the only Python loop is over the order days.

    Args:
        demand_pmf: ``(T, M + 1)`` probabilities, ``demand_pmf[t, d] = P(D_t = d)`` for integer
            demands ``d = 0 .. M``; each row sums to 1.
        review_period: ``P >= 1`` days between orders; orders on days ``P, 2P, ...``.
        lead_time: ``L >= 0`` days from order to arrival.
        holding_cost: ``h >= 0`` per unit left at the end of a counted day.
        backlog_cost: ``b >= 0`` per unit backlogged at the end of a counted day.
        max_replenish: order cap ``C >= 0`` in units (an integer; orders are in ``[0, C]``).
        initial_stock: integer on-hand units at the start of day 0 (nothing in the pipeline).

    Returns:
        The base-stock levels (the smallest minimizer of ``G_k`` on ties) and the expected loss.
    """
    demand_pmf = np.asarray(demand_pmf, dtype=np.float64)
    if demand_pmf.ndim != 2 or demand_pmf.shape[1] == 0:
        raise ValueError(f"demand_pmf must have shape (T, M + 1), got {demand_pmf.shape}")
    if (demand_pmf < 0).any() or not np.allclose(demand_pmf.sum(axis=1), 1.0, atol=1e-9):
        raise ValueError("demand_pmf rows must be probabilities (>= 0, summing to 1)")
    if review_period < 1:
        raise ValueError(f"review_period must be >= 1, got {review_period}")
    if lead_time < 0:
        raise ValueError(f"lead_time must be >= 0, got {lead_time}")
    if holding_cost < 0 or backlog_cost < 0:
        raise ValueError(
            f"holding_cost and backlog_cost must be >= 0, got {holding_cost}, {backlog_cost}"
        )
    cap = check_integral("max_replenish", max_replenish)
    if cap < 0:
        raise ValueError(f"max_replenish must be >= 0, got {max_replenish}")
    stock0 = check_integral("initial_stock", initial_stock)
    horizon = demand_pmf.shape[0]
    warmup = review_period + lead_time
    counted_days = horizon - warmup
    if counted_days <= 0:
        raise ValueError(
            f"no counted day: horizon T={horizon} must exceed the warm-up W = P + L = {warmup}"
        )

    # Integer grid of inventory positions that covers every reachable one: orders are >= 0, so a
    # position never drops below initial stock minus all demand; an optimal position never
    # exceeds all remaining demand (more can only be held), nor the initial stock.
    support_max = np.array([np.flatnonzero(row > 0).max() for row in demand_pmf])
    total_max = int(support_max.sum())
    low = stock0 - total_max
    high = max(stock0, total_max)
    positions = np.arange(low, high + 1)
    n_positions = positions.size

    order_days = np.arange(review_period, horizon - lead_time, review_period)
    levels = np.full(horizon, -np.inf)
    value_next = np.zeros(n_positions)  # V_{K+1} = 0: nothing is counted after the last window
    for k in range(order_days.size - 1, -1, -1):
        day = order_days[k]
        window_end = min(day + lead_time + review_period, horizon)
        # Window cost: the position after ordering minus the demand since the order day.
        cum_pmf = _convolve_days(demand_pmf, day, day + lead_time)
        cost = np.zeros(n_positions)
        for s in range(day + lead_time, window_end):
            cum_pmf = np.convolve(cum_pmf, demand_pmf[s])
            cost += _expected_newsvendor_cost(positions, cum_pmf, holding_cost, backlog_cost)
        # Expected value of the next order day's position y - (D_t + ... + D_{t+P-1}).
        if k + 1 < order_days.size:
            period_pmf = _convolve_days(demand_pmf, day, day + review_period)
            support = np.flatnonzero(period_pmf > 0)
            # Clipping only touches positions too low to be reachable (see the grid above).
            next_index = np.clip(np.arange(n_positions)[:, None] - support[None, :], 0, None)
            cost += value_next[next_index] @ period_pmf[support]
        # Smallest minimizer; the tolerance makes ties independent of rounding noise.
        best = cost.min()
        best_index = int(np.flatnonzero(cost <= best + 1e-9 * max(1.0, abs(best)))[0])
        levels[day] = positions[best_index]
        target = np.clip(best_index, np.arange(n_positions), np.arange(n_positions) + cap)
        value_next = cost[np.minimum(target, n_positions - 1)]

    # order_days is not empty because the horizon has a counted day (T > P + L).
    start_pmf = _convolve_days(demand_pmf, 0, review_period)
    support = np.flatnonzero(start_pmf > 0)
    expected_cost = float(value_next[stock0 - support - low] @ start_pmf[support])
    return BaseStockDPSolution(
        levels=levels,
        order_days=order_days.astype(np.int64),
        expected_cost=expected_cost,
        expected_loss=expected_cost / counted_days,
        counted_days=counted_days,
    )


def uniform_demand_pmf(lower_bounds: np.ndarray, width: int = 5) -> np.ndarray:
    """``(T, M + 1)`` pmf of demands uniform on the integers ``{l_t, ..., l_t + width - 1}``.

    Args:
        lower_bounds: ``(T,)`` non-negative integer lower bounds ``l_t`` (units per day).
        width: number of equally likely values per day (5 in setting 1).
    """
    lower_bounds = np.asarray(lower_bounds, dtype=np.float64)
    if lower_bounds.ndim != 1 or lower_bounds.size == 0:
        raise ValueError(f"lower_bounds must have shape (T,), got {lower_bounds.shape}")
    if (lower_bounds < 0).any() or (lower_bounds != np.floor(lower_bounds)).any():
        raise ValueError("lower_bounds must be non-negative integers")
    if width < 1:
        raise ValueError(f"width must be >= 1, got {width}")
    lower = lower_bounds.astype(np.int64)
    pmf = np.zeros((lower.size, int(lower.max()) + width))
    for offset in range(width):
        pmf[np.arange(lower.size), lower + offset] = 1.0 / width
    return pmf


def empirical_demand_pmf(demand: np.ndarray) -> np.ndarray:
    """``(T, M + 1)`` per-day relative frequencies of the demands of some trajectories.

    Day ``t``'s distribution puts mass ``k / n`` on each value seen ``k`` times among the ``n``
    trajectories' demands of day ``t`` (how the authors built their empirical DP).

    Args:
        demand: ``(n, T)`` non-negative integer demands, units per day.
    """
    demand = np.asarray(demand, dtype=np.float64)
    if demand.ndim != 2 or demand.shape[0] == 0 or demand.shape[1] == 0:
        raise ValueError(f"demand must have shape (n, T) with n, T >= 1, got {demand.shape}")
    if not np.isfinite(demand).all() or (demand < 0).any():
        raise ValueError("demand must be finite and non-negative")
    if (demand != np.round(demand)).any():
        raise ValueError(
            "demand must be integer-valued for the empirical dynamic program "
            "(the DP runs over integer inventory positions)"
        )
    counts = demand.astype(np.int64)
    n, horizon = counts.shape
    pmf = np.zeros((horizon, int(counts.max()) + 1))
    np.add.at(pmf, (np.broadcast_to(np.arange(horizon), counts.shape), counts), 1.0 / n)
    return pmf


# ---------------------------------------------------------------------- dataset-level benchmarks
def _process(dataset: InventoryDataset) -> str:
    """The demand process of ``dataset``: ``"indep"``, ``"ar1"`` or ``"iid"``.

    Read from the generator recorded in ``dataset.params`` (:mod:`deepstock.datasets.synthetic`), else from the
    setting name (``params["setting"]`` or the dataset's name).
    """
    generator = dataset.params.get("generator")
    if generator in ("indep", "ar1", "iid", "tmall-proxy", "user"):
        return str(generator)
    setting = str(dataset.params.get("setting", dataset.name))
    by_setting = {"setting1": "indep", "setting2": "ar1", "setting3": "ar1", "setting4": "iid"}
    if setting in by_setting:
        return by_setting[setting]
    raise ValueError(
        f"no benchmark is defined for dataset {dataset.name!r}: its params name neither a "
        "generator ('indep', 'ar1', 'iid') nor a setting ('setting1' .. 'setting4')"
    )


def _shared_constant(values: np.ndarray, name: str) -> int:
    values = np.asarray(values)
    if values.size == 0 or (values != values.flat[0]).any():
        raise ValueError(
            f"the dynamic program needs one {name} shared by every trajectory and day, "
            f"got values {np.unique(values).tolist()}"
        )
    return int(values.flat[0])


def true_demand_pmf(dataset: InventoryDataset) -> np.ndarray:
    """``(T, M + 1)`` true per-day demand pmf of an INDEP dataset, from its generator parameters.

    Reads ``dataset.params["lower_bounds"]`` (the ``T`` lower bounds ``l_t``) and
    ``dataset.params["args"]["span"]`` (5: demand uniform on ``{l_t, ..., l_t + 4}``), as
    :func:`deepstock.datasets.synthetic.generate_indep` records them.
    """
    lower_bounds = dataset.params.get("lower_bounds")
    span = dataset.params.get("args", {}).get("span")
    if lower_bounds is None or span is None:
        raise ValueError(
            f"dataset {dataset.name!r} lacks params['lower_bounds'] or params['args']['span']: "
            "the true-distribution DP needs an INDEP dataset from deepstock.datasets.synthetic.generate_indep"
        )
    lower_bounds = np.asarray(lower_bounds)
    if lower_bounds.shape != (dataset.horizon,):
        raise ValueError(
            f"params['lower_bounds'] must have shape (T,) = ({dataset.horizon},), "
            f"got {lower_bounds.shape}"
        )
    return uniform_demand_pmf(lower_bounds, int(span))


def dp_base_stock_solution(
    dataset: InventoryDataset, distribution: str = "true"
) -> BaseStockDPSolution:
    """The optimal time-dependent base-stock policy of an INDEP dataset (setting 1).

    Args:
        dataset: the whole dataset (all splits); its review period, lead time, costs, order cap
            and initial stock must be shared by every trajectory (integers for the last two).
        distribution: ``"true"`` (the generator's discrete uniforms, :func:`true_demand_pmf`) or
            ``"empirical"`` (the per-day demand frequencies of the ``"train"`` trajectories,
            :func:`empirical_demand_pmf`, as in the authors' script).
    """
    if dataset.lost_sales:
        raise ValueError("the base-stock dynamic program covers backlog only (lost_sales=False)")
    if distribution == "true":
        pmf = true_demand_pmf(dataset)
    elif distribution == "empirical":
        pmf = empirical_demand_pmf(dataset.subset("train").demand)
    else:
        raise ValueError(f"distribution must be 'true' or 'empirical', got {distribution!r}")
    return solve_base_stock_dp(
        pmf,
        review_period=_shared_constant(dataset.review_period, "review period"),
        lead_time=_shared_constant(dataset.lead_time, "lead time"),
        holding_cost=dataset.holding_cost,
        backlog_cost=dataset.backlog_cost,
        max_replenish=dataset.max_replenish,
        initial_stock=_shared_constant(dataset.initial_stock, "initial stock"),
    )


def critical_fractile_z(holding_cost: float, backlog_cost: float) -> float:
    """Standard normal quantile of the critical ratio ``b / (b + h)`` (1.28155 for 0.9)."""
    if holding_cost <= 0 or backlog_cost <= 0:
        raise ValueError(
            f"holding_cost and backlog_cost must be > 0, got {holding_cost}, {backlog_cost}"
        )
    return NormalDist().inv_cdf(backlog_cost / (backlog_cost + holding_cost))


def critical_fractile_levels(dataset: InventoryDataset, z: float | None = None) -> np.ndarray:
    """``(n,)`` stationary base-stock levels ``mean + z * sigma`` of an IID dataset (setting 4).

    The level covers one review period's demand (one normal demand per period, landing right
    after the order). ``sigma`` is each trajectory's own (its context feature ``"demand_std"``),
    the mean is ``dataset.params["args"]["demand_mean"]`` (100), as
    :func:`deepstock.datasets.synthetic.generate_iid` records them.

    Args:
        dataset: an IID dataset from :mod:`deepstock.datasets.synthetic`.
        z: the normal quantile; ``None`` (default) uses the exact quantile of the critical ratio
            ``b / (b + h)`` (:func:`critical_fractile_z`); the authors used the rounded
            :data:`AUTHORS_Z` ``= 1.282``.
    """
    if z is None:
        z = critical_fractile_z(dataset.holding_cost, dataset.backlog_cost)
    if "demand_std" not in dataset.feature_names:
        raise ValueError(
            f"dataset {dataset.name!r} has no 'demand_std' feature (features: "
            f"{list(dataset.feature_names)}); the critical-fractile benchmark needs an IID dataset"
        )
    demand_mean = dataset.params.get("args", {}).get("demand_mean")
    if demand_mean is None:
        raise ValueError(f"dataset {dataset.name!r} has no params['args']['demand_mean']")
    sigma = dataset.features[:, 0, dataset.feature_names.index("demand_std")]
    return float(demand_mean) + float(z) * sigma


def _split_losses(dataset: InventoryDataset, make_policy: Any, device: str) -> dict[str, float]:
    """Mean trajectory loss of the policy ``make_policy(split_dataset)`` on each split, and
    ``test_cap_binding_rate``: the share of test order days on which it orders the cap."""
    losses = {}
    for split in ("train", "val", "test"):
        part = dataset.subset(split)
        rollout = simulate(part, make_policy(part), device=device)
        losses[f"{split}_loss"] = float(rollout.trajectory_loss.mean())
        if split == "test":
            losses["test_cap_binding_rate"] = float(rollout.cap_binding_rate.mean())
    return losses


def benchmark_losses(
    dataset: InventoryDataset, *, z: float | None = None, device: str = "cpu"
) -> list[dict[str, Any]]:
    """Train, validation and test losses of each benchmark policy of the dataset's setting.

    Each policy is simulated by :func:`deepstock.model.simulator.simulate` on each split.

    Args:
        dataset: a synthetic dataset of settings 1-4 (all splits).
        z: the normal quantile of the setting-4 critical fractile; ``None`` (default) takes the
            exact quantile of ``b / (b + h)``, :data:`AUTHORS_Z` reproduces the authors' numbers.
        device: the simulator's device.

    Returns:
        One JSON-serializable dict per benchmark policy with ``"policy"`` (its name),
        ``"train_loss"``, ``"val_loss"``, ``"test_loss"``, ``"test_cap_binding_rate"`` (share of
        test order days on which it orders the cap) and the policy's parameters:
        setting 1 gives ``"dp_true"`` and ``"dp_empirical"`` (with ``"expected_loss"``, the DP's
        own expected trajectory loss, ``"order_days"`` and ``"levels"``, the base-stock level of
        each of them);
        setting 4 gives ``"critical_fractile"`` (with ``"z"``); the Tmall-like proxy gives
        its incumbent ``"forecast_base_stock"`` (with ``"safety_factor"``; its losses are ``J``,
        the proxy's objective). A user's dataset (``params["generator"] == "user"``, read
        from a CSV file) has no optimum to compare with: it gives the heuristic
        ``"cover_base_stock"`` (:class:`~deepstock.model.heuristics.CoverBaseStock`, its factor
        fitted on validation; with ``"factor"``, ``"rate_feature"``, ``"rate"``), a reference
        to beat rather than a bound. AR(1) datasets (settings 2-3)
        give an empty list: their benchmark is DS trained on the test trajectories, computed by
        the experiments (``deepstock run``).
    """
    process = _process(dataset)
    results: list[dict[str, Any]] = []
    if process == "indep":
        for distribution in ("true", "empirical"):
            solution = dp_base_stock_solution(dataset, distribution)
            losses = _split_losses(
                dataset, lambda _part, s=solution: TimeDependentBaseStock(s.levels), device
            )
            results.append(
                {
                    "policy": f"dp_{distribution}",
                    **losses,
                    "expected_loss": solution.expected_loss,
                    "order_days": solution.order_days.tolist(),
                    "levels": solution.levels[solution.order_days].tolist(),
                }
            )
    elif process == "iid":
        if z is None:
            z = critical_fractile_z(dataset.holding_cost, dataset.backlog_cost)
        losses = _split_losses(
            dataset, lambda part: StationaryBaseStock(critical_fractile_levels(part, z)), device
        )
        results.append({"policy": "critical_fractile", **losses, "z": float(z)})
    elif process == "tmall-proxy":
        # the proxy's reference is the incumbent: forecast base stock, k fitted on validation

        policy, _ = fit_incumbent(dataset, device=device)
        losses = _split_losses(dataset, lambda _part: policy, device)
        results.append(
            {"policy": "forecast_base_stock", **losses, "safety_factor": policy.safety_factor}
        )
    elif process == "user":
        parameters, _ = fit_cover_base_stock(dataset, device=device)
        losses = _split_losses(
            dataset, lambda part: CoverBaseStock.for_dataset(part, **parameters), device
        )
        results.append({"policy": "cover_base_stock", **losses, **parameters})
    # AR(1) (settings 2-3): no benchmark here; DS trained on the test trajectories is computed
    # by the experiments module.
    return results
