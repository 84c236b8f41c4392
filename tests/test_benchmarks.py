"""Tests of the benchmark policies (the book's *Settings 1-3* chapter): the base-stock DP and the critical fractile."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
import torch

from deepstock.datasets.synthetic import make_setting
from deepstock.model.dataset import InventoryDataset
from deepstock.model.heuristics import TimeDependentBaseStock
from deepstock.model.optimal import (
    AUTHORS_Z,
    benchmark_losses,
    critical_fractile_levels,
    critical_fractile_z,
    dp_base_stock_solution,
    empirical_demand_pmf,
    solve_base_stock_dp,
    uniform_demand_pmf,
)
from deepstock.model.simulator import simulate
from deepstock.tools.cli import main


def tiny_dataset(
    demand: np.ndarray,
    *,
    review_period: int,
    lead_time: int,
    max_replenish: float,
    initial_stock: float = 0.0,
    holding_cost: float = 0.1,
    backlog_cost: float = 0.9,
) -> InventoryDataset:
    """A backlog dataset of the given ``(n, T)`` demand paths, all in the test split."""
    n, horizon = demand.shape
    return InventoryDataset(
        name="tiny",
        demand=demand.astype(np.float64),
        features=np.zeros((n, horizon, 0)),
        feature_names=(),
        review_period=np.full(n, review_period, dtype=np.int64),
        lead_time=np.full((n, horizon), lead_time, dtype=np.int64),
        initial_stock=np.full(n, float(initial_stock)),
        split=np.array(["test"] * n),
        sku_id=np.arange(n, dtype=np.int64),
        holding_cost=holding_cost,
        backlog_cost=backlog_cost,
        max_replenish=max_replenish,
    )


def all_demand_paths(demand_pmf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every demand path with positive probability: ``(paths (m, T), probabilities (m,))``."""
    supports = [np.flatnonzero(row > 0) for row in demand_pmf]
    paths = np.array(list(itertools.product(*supports)), dtype=np.float64)
    probabilities = np.prod(
        [demand_pmf[day, paths[:, day].astype(int)] for day in range(demand_pmf.shape[0])], axis=0
    )
    return paths, probabilities


def random_pmf(
    rng: np.random.Generator, horizon: int, n_values: int, max_demand: int
) -> np.ndarray:
    """Per-day pmfs, each on ``n_values`` random integers in ``[0, max_demand]``."""
    pmf = np.zeros((horizon, max_demand + 1))
    for day in range(horizon):
        values = rng.choice(max_demand + 1, size=n_values, replace=False)
        pmf[day, values] = rng.dirichlet(np.ones(n_values))
    return pmf


def generic_dp_cost(
    demand_pmf: np.ndarray, review_period: int, lead_time: int, cap: int, initial_stock: int
) -> float:
    """Expected total loss of the optimal policy over *all* order quantities (no base-stock form).

    A plain loop-based DP over the inventory position, written independently of the module:
    at each order day every quantity ``0..cap`` is tried for every position.
    """
    horizon = demand_pmf.shape[0]
    h, b = 0.1, 0.9

    def window_cost(day: int, after: int) -> float:
        total = 0.0
        for s in range(day + lead_time, min(day + lead_time + review_period, horizon)):
            paths, probs = all_demand_paths(demand_pmf[day : s + 1])
            end = after - paths.sum(axis=1)
            total += float(probs @ (h * np.maximum(end, 0) + b * np.maximum(-end, 0)))
        return total

    order_days = list(range(review_period, horizon - lead_time, review_period))
    # Positions reachable from the initial stock (all demand is at most 4 * 9 = 36 units); an
    # order up to more than 40 is never useful. Out-of-range keys are clamped: only unreachable
    # positions use them.
    low, high = initial_stock - 40, initial_stock + 40
    value_next: dict[int, float] = dict.fromkeys(range(low, high + 1), 0.0)
    for k in reversed(range(len(order_days))):
        day = order_days[k]
        period_paths, period_probs = all_demand_paths(demand_pmf[day : day + review_period])
        period_demand = period_paths.sum(axis=1).astype(int)
        best_after: dict[int, float] = {}
        value = {}
        for x in range(low, high + 1):
            candidates = []
            for q in range(min(cap, high - x) + 1):
                after = x + q
                if after not in best_after:
                    future = 0.0
                    if k + 1 < len(order_days):
                        future = sum(
                            p * value_next[max(after - d, low)]
                            for d, p in zip(period_demand, period_probs, strict=True)
                        )
                    best_after[after] = window_cost(day, after) + future
                candidates.append(best_after[after])
            value[x] = min(candidates)
        value_next = value
    start_paths, start_probs = all_demand_paths(demand_pmf[:review_period])
    starts = initial_stock - start_paths.sum(axis=1).astype(int)
    return float(sum(p * value_next[x] for x, p in zip(starts, start_probs, strict=True)))


# ---------------------------------------------------------------------- hand-checkable cases
@pytest.mark.parametrize(
    ("holding_cost", "backlog_cost", "level", "expected"),
    [
        # uniform demand on 0..9: the level is the smallest y with F(y) = (y+1)/10 >= b/(b+h)
        (0.25, 0.75, 7, 0.25 * 28 / 10 + 0.75 * 3 / 10),
        (0.45, 0.55, 5, 0.45 * 15 / 10 + 0.55 * 10 / 10),
        (0.05, 0.95, 9, 0.05 * 45 / 10),
    ],
)
def test_one_period_is_the_newsvendor(holding_cost, backlog_cost, level, expected):
    # P = 1, L = 0, T = 2: one order on day 1 that covers day 1 only; day 0 has no demand.
    pmf = np.zeros((2, 10))
    pmf[0, 0] = 1.0
    pmf[1, :] = 0.1
    solution = solve_base_stock_dp(
        pmf,
        review_period=1,
        lead_time=0,
        holding_cost=holding_cost,
        backlog_cost=backlog_cost,
        max_replenish=100,
    )
    assert solution.levels[1] == level
    assert solution.levels[0] == -np.inf
    assert solution.order_days.tolist() == [1]
    assert solution.counted_days == 1
    assert solution.expected_cost == pytest.approx(expected)
    assert solution.expected_loss == pytest.approx(expected)


def test_deterministic_demand_orders_exactly_the_window_demand():
    # P = 2, L = 1, demand 3 every day: each window needs exactly 2 days of demand.
    pmf = np.zeros((9, 4))
    pmf[:, 3] = 1.0
    solution = solve_base_stock_dp(
        pmf, review_period=2, lead_time=1, holding_cost=0.1, backlog_cost=0.9, max_replenish=100
    )
    # The order of day t covers days t+1 and t+2: level = demand of days t, t+1, t+2 = 9.
    assert solution.order_days.tolist() == [2, 4, 6]
    assert solution.levels[[2, 4, 6]].tolist() == [9.0, 9.0, 9.0]
    # Day 8 is an order day, but its delivery would land after the horizon.
    assert solution.levels[8] == -np.inf
    # Each window (days t+1, t+2) then ends day t+1 with 3 units held and day t+2 with none:
    # 0.1 * 3 per window, 3 windows over the counted days 3..8.
    assert solution.expected_cost == pytest.approx(3 * 0.1 * 3)
    assert solution.expected_loss == pytest.approx(3 * 0.1 * 3 / 6)


# ---------------------------------------------------------------------- optimality
@pytest.mark.parametrize(
    ("review_period", "lead_time", "cap", "initial_stock", "seed"),
    [(2, 1, 100, 0, 0), (2, 1, 4, 0, 1), (1, 2, 3, 2, 2), (3, 0, 5, 6, 3), (2, 3, 100, -2, 4)],
)
def test_dp_matches_a_generic_dp_over_all_order_quantities(
    review_period, lead_time, cap, initial_stock, seed
):
    rng = np.random.default_rng(seed)
    pmf = random_pmf(rng, horizon=9, n_values=2, max_demand=4)
    solution = solve_base_stock_dp(
        pmf,
        review_period=review_period,
        lead_time=lead_time,
        holding_cost=0.1,
        backlog_cost=0.9,
        max_replenish=cap,
        initial_stock=initial_stock,
    )
    expected = generic_dp_cost(pmf, review_period, lead_time, cap, initial_stock)
    assert solution.expected_cost == pytest.approx(expected, rel=1e-10, abs=1e-12)


@pytest.mark.parametrize(
    ("review_period", "lead_time", "cap", "seed"), [(2, 1, 100, 5), (2, 1, 3, 6), (1, 2, 2, 7)]
)
def test_dp_beats_every_base_stock_policy_in_the_simulator(review_period, lead_time, cap, seed):
    """Brute force over base-stock levels, every policy scored exactly through the simulator."""
    rng = np.random.default_rng(seed)
    horizon = 6 if review_period == 1 else 7
    pmf = random_pmf(rng, horizon=horizon, n_values=2, max_demand=4)
    solution = solve_base_stock_dp(
        pmf,
        review_period=review_period,
        lead_time=lead_time,
        holding_cost=0.1,
        backlog_cost=0.9,
        max_replenish=cap,
    )
    paths, probabilities = all_demand_paths(pmf)
    order_days = solution.order_days
    grid = np.arange(-2, 14)
    combos = np.array(list(itertools.product(grid, repeat=order_days.size)), dtype=np.float64)
    # One row per (level combination, demand path); per-trajectory levels (rows, T).
    demand = np.tile(paths, (combos.shape[0], 1))
    levels = np.full((demand.shape[0], horizon), -np.inf)
    levels[:, order_days] = np.repeat(combos, paths.shape[0], axis=0)
    dataset = tiny_dataset(
        demand, review_period=review_period, lead_time=lead_time, max_replenish=cap
    )
    rollout = simulate(dataset, TimeDependentBaseStock(levels), device="cpu")
    assert float(rollout.orders.max()) <= cap  # the cap is respected
    losses = rollout.trajectory_loss.numpy().reshape(combos.shape[0], paths.shape[0])
    expected_losses = losses @ probabilities

    # The DP's own levels, simulated on every path, give exactly the DP's expected loss...
    dp_dataset = tiny_dataset(
        paths, review_period=review_period, lead_time=lead_time, max_replenish=cap
    )
    dp_losses = simulate(dp_dataset, TimeDependentBaseStock(solution.levels), device="cpu")
    dp_expected = float(dp_losses.trajectory_loss.numpy() @ probabilities)
    assert dp_expected == pytest.approx(solution.expected_loss, rel=1e-12)
    # ... and no base-stock policy on the grid does better.
    assert solution.expected_loss <= expected_losses.min() + 1e-12
    dp_row = np.flatnonzero((combos == solution.levels[order_days]).all(axis=1))
    if dp_row.size:  # the DP levels are on the grid: they reach the grid's minimum
        assert expected_losses[dp_row[0]] == pytest.approx(expected_losses.min(), rel=1e-12)


def test_binding_cap_raises_earlier_levels():
    # Demand 8 on day 5 only, cap 5: one order cannot bring it, so an earlier order must build it.
    pmf = np.zeros((7, 9))
    pmf[:, 0] = 1.0
    pmf[5] = 0.0
    pmf[5, 8] = 1.0
    capped = solve_base_stock_dp(
        pmf, review_period=2, lead_time=1, holding_cost=0.1, backlog_cost=0.9, max_replenish=5
    )
    free = solve_base_stock_dp(
        pmf, review_period=2, lead_time=1, holding_cost=0.1, backlog_cost=0.9, max_replenish=100
    )
    assert free.levels[[2, 4]].tolist() == [0.0, 8.0]
    assert free.expected_cost == pytest.approx(0.0)
    assert capped.levels[2] == 3.0  # 3 units held over days 3-4 so that 3 + 5 covers day 5
    assert capped.expected_cost == pytest.approx(0.1 * 3 * 2)


# ---------------------------------------------------------------------- distributions and input
def test_uniform_and_empirical_pmfs():
    pmf = uniform_demand_pmf(np.array([0, 2, 7]), width=5)
    assert pmf.shape == (3, 12)
    assert np.allclose(pmf.sum(axis=1), 1.0)
    assert np.flatnonzero(pmf[1]).tolist() == [2, 3, 4, 5, 6]
    empirical = empirical_demand_pmf(np.array([[1, 0], [1, 3], [2, 3], [1, 3]]))
    assert empirical[0].tolist() == [0.0, 0.75, 0.25, 0.0]
    assert empirical[1].tolist() == [0.25, 0.0, 0.0, 0.75]


def test_bad_input_is_rejected_with_the_parameter_name():
    pmf = uniform_demand_pmf(np.full(5, 3))
    kwargs = {"holding_cost": 0.1, "backlog_cost": 0.9, "max_replenish": 100}
    with pytest.raises(ValueError, match="warm-up"):
        solve_base_stock_dp(pmf, review_period=3, lead_time=2, **kwargs)
    with pytest.raises(ValueError, match="demand_pmf"):
        solve_base_stock_dp(pmf * 2, review_period=2, lead_time=1, **kwargs)
    with pytest.raises(ValueError, match="initial_stock"):
        solve_base_stock_dp(pmf, review_period=2, lead_time=1, initial_stock=0.5, **kwargs)
    with pytest.raises(ValueError, match="integer"):
        empirical_demand_pmf(np.array([[1.5, 2.0]]))
    with pytest.raises(ValueError, match="lower_bounds"):
        uniform_demand_pmf(np.array([-1, 2]))


def test_critical_fractile_z_is_the_normal_quantile():
    assert critical_fractile_z(0.1, 0.9) == pytest.approx(1.2815515655446004, rel=1e-12)
    assert critical_fractile_z(0.5, 0.5) == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="holding_cost"):
        critical_fractile_z(0.0, 0.9)


# ---------------------------------------------------------------------- the paper's datasets
def test_authors_setting1_empirical_dp_has_the_papers_benchmark_loss():
    dataset = make_setting("setting1", stream="authors")
    results = {row["policy"]: row for row in benchmark_losses(dataset)}
    assert list(results) == ["dp_true", "dp_empirical"]
    # the book's *The inventory model* and *Settings 1-3* chapters: the DP on the training trajectories' empirical frequencies, simulated on
    # the 100 test trajectories, has test loss 0.8670 (the paper's implied benchmark).
    assert round(results["dp_empirical"]["test_loss"], 4) == 0.8670
    # The true-distribution DP: its test loss is near its own expectation (100 trajectories) and
    # is the project's benchmark (regression values of the authors' stream).
    true = results["dp_true"]
    assert abs(true["test_loss"] - true["expected_loss"]) < 0.02
    assert round(true["test_loss"], 4) == 0.8592
    assert round(true["val_loss"], 4) == 0.8789
    assert round(true["expected_loss"], 4) == 0.8543
    assert true["order_days"] == list(range(2, 30, 2))
    for row in results.values():
        assert set(row) >= {"policy", "train_loss", "val_loss", "test_loss"}


def test_empirical_dp_reads_only_the_training_trajectories():
    dataset = make_setting("setting1", stream="fresh", seed=3)
    solution = dp_base_stock_solution(dataset, "empirical")
    train = dataset.subset("train")
    alone = solve_base_stock_dp(
        empirical_demand_pmf(train.demand),
        review_period=2,
        lead_time=1,
        holding_cost=0.1,
        backlog_cost=0.9,
        max_replenish=100,
    )
    assert np.array_equal(solution.levels, alone.levels)
    # The true DP of a fresh dataset uses its own recorded lower bounds.
    true = dp_base_stock_solution(dataset, "true")
    lower = np.asarray(dataset.params["lower_bounds"])
    assert true.expected_loss > 0
    assert np.isfinite(true.levels[true.order_days]).all()
    assert (true.levels[true.order_days] >= lower[true.order_days]).all()


@pytest.mark.parametrize(
    ("n_skus", "horizon_periods", "authors_test_loss"), [(5, 2, 2.36687), (10, 16, 2.27117)]
)
def test_authors_iid_critical_fractile_reference_numbers(
    n_skus, horizon_periods, authors_test_loss
):
    dataset = make_setting("setting4", n_skus=n_skus, horizon_periods=horizon_periods)
    (authors,) = benchmark_losses(dataset, z=AUTHORS_Z)
    assert authors["policy"] == "critical_fractile"
    assert authors["z"] == AUTHORS_Z
    assert authors["test_loss"] == pytest.approx(authors_test_loss, abs=5e-6)
    # The exact quantile (the default) moves the loss by less than 1e-4.
    (exact,) = benchmark_losses(dataset)
    assert exact["z"] == pytest.approx(1.2815515655446004)
    assert exact["test_loss"] == pytest.approx(authors_test_loss, abs=1e-4)


def test_critical_fractile_levels_are_per_trajectory():
    dataset = make_setting("setting4", n_skus=3, horizon_periods=2, test_repeats=2)
    levels = critical_fractile_levels(dataset.subset("test"), z=1.0)
    sigma = np.asarray(dataset.params["sku_parameters"]["std"])
    assert np.allclose(levels, 100.0 + np.repeat(sigma, 2))


def test_ar1_settings_have_no_benchmark_here():
    assert benchmark_losses(make_setting("setting3")) == []


def test_benchmarks_of_the_wrong_setting_are_rejected():
    with pytest.raises(ValueError, match="lower_bounds"):
        dp_base_stock_solution(make_setting("setting2"), "true")
    with pytest.raises(ValueError, match="demand_std"):
        critical_fractile_levels(make_setting("setting1"))
    with pytest.raises(ValueError, match="distribution"):
        dp_base_stock_solution(make_setting("setting1"), "exact")


@pytest.fixture(autouse=True)
def _single_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# ---------------------------------------------------------------------- command line
def test_cli_benchmark_json_names_each_policy(capsys):
    assert main(["benchmark", "setting1", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [row["policy"] for row in rows] == ["dp_true", "dp_empirical"]
    assert round(rows[1]["test_loss"], 4) == 0.8670
    assert (
        main(["benchmark", "setting4", "--n", "5", "--horizon", "2", "--z", "1.282", "--json"]) == 0
    )
    (row,) = json.loads(capsys.readouterr().out)
    assert row["policy"] == "critical_fractile"
    assert row["test_loss"] == pytest.approx(2.36687, abs=5e-6)


def test_cli_benchmark_table_and_ar1_message(capsys):
    assert main(["benchmark", "setting1"]) == 0
    table = capsys.readouterr().out
    assert "dp_true" in table and "dp_empirical" in table and "0.8670" in table
    assert main(["benchmark", "setting2"]) == 0
    assert "DS trained on the test trajectories" in capsys.readouterr().out
    assert main(["benchmark", "setting3", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["benchmark", "setting4", "--n", "5"], "--horizon"),
        (["benchmark", "setting1", "--horizon", "3"], "applies to setting4"),
        (["benchmark", "setting4", "--n", "5", "--horizon", "2", "--z", "nan"], "finite"),
    ],
)
def test_cli_benchmark_rejects_bad_options(capsys, argv, message):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
