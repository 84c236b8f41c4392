"""The Tmall-like proxy (the book's *A Tmall-like proxy* chapter): generator statistics, features, splits, lost-sales metrics
and the predict-then-optimize incumbent."""

import math

import numpy as np
import pytest
import torch

from deepstock.datasets.io import load_dataset, save_dataset
from deepstock.datasets.proxy import (
    COEFF_FEATURE_NAMES,
    PROXY_FEATURES,
    ProxyConfig,
    draw_proxy,
    generate_proxy,
    proxy_summary,
    yearly_factor,
)
from deepstock.datasets.synthetic import generate_indep
from deepstock.model.dataset import InventoryDataset
from deepstock.model.heuristics import (
    ForecastBaseStock,
    StationaryBaseStock,
    fit_incumbent,
    incumbent_metrics,
    tmall_metrics,
)
from deepstock.model.regularizations import NetworkPolicy, network_input_size
from deepstock.model.simulator import InventorySimulator

SMALL = {"train_size": 20, "val_size": 10, "test_size": 20}


def column(dataset_or_features, name):
    features = getattr(dataset_or_features, "features", dataset_or_features)
    return features[:, :, PROXY_FEATURES.index(name)]


@pytest.fixture(scope="module")
def default_proxy():
    return generate_proxy()


# ------------------------------------------------------------------ the dataset as a whole


def test_default_proxy_layout(default_proxy):
    ds = default_proxy
    assert ds.name == "tmall-proxy-seed0"
    assert ds.params["generator"] == "tmall-proxy"
    assert ds.split_sizes() == {"train": 200, "val": 100, "test": 200}
    assert ds.horizon == 90
    assert ds.lost_sales is True
    assert ds.feature_names == PROXY_FEATURES
    assert ds.coeff_features == (0, 1, 2, 3)
    assert tuple(ds.feature_names[i] for i in ds.coeff_features) == COEFF_FEATURE_NAMES
    assert (ds.initial_stock == 0).all()
    assert (ds.demand == np.round(ds.demand)).all()  # integer units
    # lead times constant over each SKU's horizon
    assert (ds.lead_time == ds.lead_time[:, :1]).all()
    # the default cap: 28 days of the largest expected daily demand of the horizons
    draw = draw_proxy(seed=0)
    horizon_rate = draw.expected_demand[:, 28 : 28 + 90]
    assert ds.max_replenish == math.ceil(28 * horizon_rate.max())
    assert ds.max_replenish >= 28 * ds.demand.mean(axis=1).max()


def test_seeded_and_deterministic():
    a = generate_proxy(seed=3, **SMALL)
    b = generate_proxy(seed=3, **SMALL)
    c = generate_proxy(seed=4, **SMALL)
    assert a.equals(b)
    assert not np.array_equal(a.demand, c.demand)
    d = generate_proxy(rng=np.random.default_rng(1), **SMALL)
    e = generate_proxy(rng=np.random.default_rng(1), **SMALL)
    assert d.name == "tmall-proxy-rng" and d.params["seed"] is None
    assert d.equals(e)


def test_save_load_round_trip(tmp_path):
    ds = generate_proxy(seed=5, **SMALL)
    loaded = load_dataset(save_dataset(ds, tmp_path / ds.name))
    assert loaded.equals(ds)


def test_splits_and_later_test_horizon():
    draw = draw_proxy(ProxyConfig(**SMALL, test_start_day=215))
    ds = generate_proxy(**SMALL, test_start_day=215)
    assert list(ds.split) == ["train"] * 20 + ["val"] * 10 + ["test"] * 20
    starts = np.asarray(ds.params["sku_parameters"]["horizon_start"])
    assert (starts[ds.split != "test"] == 0).all()
    assert (starts[ds.split == "test"] == 215).all()
    assert ds.params["calendar"]["test_days"][0] >= ds.params["calendar"]["train_val_days"][1]
    # the weekday features follow the calendar: day 0 is a Monday, day 215 a Saturday
    calendar = starts[:, None] + np.arange(ds.horizon)[None, :]
    weekday = calendar % 7
    np.testing.assert_allclose(column(ds, "dow_sin"), np.sin(2 * np.pi * weekday / 7))
    np.testing.assert_allclose(column(ds, "dow_cos"), np.cos(2 * np.pi * weekday / 7))
    assert weekday[ds.split == "test"][0, 0] == 5
    # the shared yearly factor: expected demand / (base * weekday * promotion) on each day
    local = draw.calendar_start[:, None] + np.arange(draw.expected_demand.shape[1])[None, :]
    regular = draw.expected_demand / draw.uplift
    ratio = regular / (
        draw.base_rate[:, None] * np.take_along_axis(draw.weekly_profile, local % 7, axis=1)
    )
    np.testing.assert_allclose(ratio, yearly_factor(local, 0.2, 133.0))
    assert yearly_factor(np.array([133]), 0.2, 133.0)[0] == pytest.approx(math.exp(0.2))
    # the test SKUs are other SKUs (their own parameters), not repeats of the training SKUs
    base = np.asarray(ds.params["sku_parameters"]["base_rate"])
    assert len(set(base.tolist())) == ds.n_trajectories


# ------------------------------------------------------------------ distributions


def test_base_rates_log_uniform_on_1_to_1000():
    draw = draw_proxy(ProxyConfig(train_size=1000, val_size=500, test_size=500), seed=11)
    log_rate = np.log10(draw.base_rate)
    assert log_rate.min() >= 0 and log_rate.max() <= 3
    assert log_rate.min() < 0.05 and log_rate.max() > 2.95
    # Kolmogorov-Smirnov distance to U(0, 3): the 1% critical value for n = 2000 is ~0.036
    ordered = np.sort(log_rate) / 3.0
    n = ordered.size
    ks = max((np.arange(1, n + 1) / n - ordered).max(), (ordered - np.arange(n) / n).max())
    assert ks < 0.05
    # a decade holds about a third of the SKUs
    for decade in range(3):
        share = ((log_rate >= decade) & (log_rate < decade + 1)).mean()
        assert abs(share - 1 / 3) < 0.05
    ds = proxy_dataset_of(draw)
    np.testing.assert_allclose(column(ds, "log10_base_rate"), log_rate[:, None] * np.ones(90))


def proxy_dataset_of(draw):
    from deepstock.datasets.proxy import proxy_dataset

    return proxy_dataset(draw, seed=11)


def test_weekly_profile_recovered_from_demand():
    config = ProxyConfig(
        train_size=30,
        val_size=1,
        test_size=1,
        horizon=364,
        base_rate_range=(400.0, 800.0),
        weekly_strength=0.3,
        yearly_amplitude=0.0,
        promotion_rate=0.0,
        dispersion_range=(0.0, 0.0),
    )
    draw = draw_proxy(config, seed=2)
    on_day0 = draw.horizon_start == 0  # train/val horizons start on day 0, a Monday
    demand = draw.horizon_demand[on_day0]
    by_weekday = demand.reshape(demand.shape[0], 52, 7).mean(axis=1)
    estimate = by_weekday / by_weekday.mean(axis=1, keepdims=True)
    assert np.abs(estimate - draw.weekly_profile[on_day0]).max() < 0.03
    np.testing.assert_allclose(draw.weekly_profile.mean(axis=1), 1.0)
    # the profiles differ between SKUs (strength 0.3 on the log scale)
    assert np.log(draw.weekly_profile).std() == pytest.approx(0.3, rel=0.2)


def test_demand_is_negative_binomial():
    config = ProxyConfig(
        train_size=40,
        val_size=1,
        test_size=1,
        horizon=300,
        base_rate_range=(100.0, 100.0),
        weekly_strength=0.0,
        yearly_amplitude=0.0,
        promotion_rate=0.0,
        dispersion_range=(0.2, 0.2),
    )
    demand = draw_proxy(config, seed=4).demand
    assert demand.mean() == pytest.approx(100.0, rel=0.02)
    # Var = lambda + phi lambda^2 = 100 + 0.2 * 100^2
    assert demand.var() == pytest.approx(2100.0, rel=0.06)
    # small SKUs are lumpy: rate 1 with phi 0.2 gives many zero days
    lumpy = draw_proxy(
        ProxyConfig(**{**config.to_dict(), "base_rate_range": (1.0, 1.0)}), seed=4
    ).demand
    zero_share = (lumpy == 0).mean()
    # P(D = 0) for NB(mean 1, phi 0.2) = (1 + phi)^(-1/phi)
    assert zero_share == pytest.approx(1.2 ** (-5.0), abs=0.015)


def test_review_periods_and_lead_times():
    config = ProxyConfig(
        train_size=2000,
        val_size=1,
        test_size=1,
        review_period_probs=(0.3, 0.7),
        lead_time_probs=(0.8, 0.2),
    )
    ds = generate_proxy(config, seed=8)
    assert set(ds.review_period.tolist()) == {4, 7}
    assert set(ds.lead_time.ravel().tolist()) == {5, 7}
    assert (ds.review_period == 4).mean() == pytest.approx(0.3, abs=0.03)
    assert (ds.lead_time[:, 0] == 5).mean() == pytest.approx(0.8, abs=0.03)
    np.testing.assert_array_equal(
        column(ds, "review_period_days"), np.repeat(ds.review_period[:, None], 90, axis=1)
    )
    np.testing.assert_array_equal(column(ds, "lead_time_days"), ds.lead_time)
    # defaults: both values about half the time
    default = generate_proxy()
    assert (default.review_period == 4).mean() == pytest.approx(0.5, abs=0.08)


# ------------------------------------------------------------------ promotions


def promotion_config(**overrides):
    settings = {
        "train_size": 300,
        "val_size": 1,
        "test_size": 1,
        "horizon": 120,
        "promotion_rate": 0.05,
        "promotion_days": (2, 5),
        "promotion_uplift_range": (1.5, 3.0),
        "promotion_notice_days": 10,
        "base_rate_range": (200.0, 400.0),
    }
    settings.update(overrides)
    return ProxyConfig(**settings)


def test_promotion_frequency_length_and_uplift():
    config = promotion_config()
    draw = draw_proxy(config, seed=6)
    events = [event for sku in draw.promotions() for event in sku]
    lengths = np.array([days for _, days, _ in events])
    uplifts = np.array([uplift for _, _, uplift in events])
    # lengths uniform on {2..5} (the last promotion of a window may be cut at its end)
    assert lengths.max() <= 5 and np.isin(np.arange(2, 6), lengths).all()
    assert uplifts.min() >= 1.5 and uplifts.max() <= 3.0
    assert uplifts.mean() == pytest.approx(2.25, abs=0.05)
    # share of promotion days of a renewal process: m / (m + (1 - r) / r), m = 3.5, r = 0.05
    promo = draw.promotion_start[:, : config.history_days + config.horizon] >= 0
    expected_share = 3.5 / (3.5 + 0.95 / 0.05)
    assert promo[:, 40:].mean() == pytest.approx(expected_share, rel=0.1)
    # one uplift per promotion, and the expected demand is multiplied by it
    for row in range(5):
        for start in np.unique(draw.promotion_start[row][draw.promotion_start[row] >= 0]):
            days = draw.promotion_start[row] == start
            assert np.unique(draw.uplift[row, days]).size == 1
    # the realized uplift: demand on promotion days over the regular expected demand
    observed = draw.demand
    regular = (draw.expected_demand / draw.uplift)[:, : observed.shape[1]]
    on = promo
    realized = (observed[on] / regular[on]).mean()
    assert realized == pytest.approx(draw.uplift[:, : observed.shape[1]][on].mean(), rel=0.03)
    assert (observed[~on] / regular[~on]).mean() == pytest.approx(1.0, abs=0.02)


def test_promotion_features_announced_ahead():
    config = promotion_config(train_size=60)
    draw = draw_proxy(config, seed=9)
    notice = config.promotion_notice_days
    today = column(draw.features, "promotion_today")
    days_to = column(draw.features, "days_to_promotion")
    announced_uplift = column(draw.features, "promotion_uplift")
    horizon_days = config.horizon
    for row, events in enumerate(draw.promotions()):
        calendar = draw.horizon_start[row] + np.arange(horizon_days)
        starts = {start: uplift for start, _, uplift in events}
        # starts beyond the stored events (in the look-ahead) also count for announcements
        window_start = draw.calendar_start[row]
        for local in range(draw.promotion_start.shape[1]):
            if draw.promotion_start[row, local] == local:
                starts.setdefault(int(window_start + local), float(draw.uplift[row, local]))
        running = {int(start + k): uplift for start, days, uplift in events for k in range(days)}
        for t, day in enumerate(calendar):
            assert today[row, t] == float(day in running)
            upcoming = [s for s in starts if day < s <= day + notice]
            expected_days = min(upcoming) - day if upcoming else notice + 1
            assert days_to[row, t] == expected_days
            if day in running:
                assert announced_uplift[row, t] == running[day]
            elif upcoming:
                assert announced_uplift[row, t] == starts[min(upcoming)]
            else:
                assert announced_uplift[row, t] == 1.0
    # a promotion is visible exactly `notice` days before it starts, not earlier
    first_seen = days_to[days_to <= notice]
    assert first_seen.max() == notice


# ------------------------------------------------------------------ demand features


def test_trailing_features_equal_recomputed_means():
    draw = draw_proxy(ProxyConfig(**SMALL), seed=12)
    history = draw.history_days
    for row in range(0, draw.demand.shape[0], 7):
        for t in (0, 1, 6, 27, 28, 50, 89):
            j = history + t
            past28 = draw.demand[row, j - 28 : j]
            past7 = draw.demand[row, j - 7 : j]
            assert column(draw.features, "mean_28d")[row, t] == pytest.approx(past28.mean())
            assert column(draw.features, "mean_7d")[row, t] == pytest.approx(past7.mean())
            assert column(draw.features, "std_28d")[row, t] == pytest.approx(past28.std())
    # inside the horizon the dataset's own demand gives the same numbers (day 28 onward)
    ds = generate_proxy(seed=12, **SMALL)
    recomputed = np.stack([ds.demand[:, t - 28 : t].mean(axis=1) for t in range(28, 90)], axis=1)
    np.testing.assert_allclose(column(ds, "mean_28d")[:, 28:], recomputed)


def test_forecasts_are_the_known_expected_demand_times_a_mean_one_error():
    exact = ProxyConfig(**SMALL, forecast_7d_noise=0.0, forecast_28d_noise=0.0)
    draw = draw_proxy(exact, seed=13)
    history, notice = draw.history_days, exact.promotion_notice_days
    regular = draw.expected_demand / draw.uplift
    for row in range(0, draw.demand.shape[0], 5):
        for t in (0, 10, 89):
            j = history + t
            window = np.arange(j, j + 28)
            start = draw.promotion_start[row, window]
            known = (start >= 0) & (start <= j + notice)
            rate = regular[row, window] * np.where(known, draw.uplift[row, window], 1.0)
            f7 = column(draw.features, "forecast_7d")[row, t]
            f28 = column(draw.features, "forecast_28d")[row, t]
            assert f7 == pytest.approx(rate[:7].mean())
            assert f28 == pytest.approx(rate.mean())
            # with a 14-day notice the 7-day forecast knows every promotion of its window
            assert f7 == pytest.approx(draw.expected_demand[row, j : j + 7].mean())
    # the same seed with noise: only the forecast errors change (they are drawn last)
    noisy = draw_proxy(
        dataclass_replace(exact, forecast_7d_noise=0.15, forecast_28d_noise=0.25), seed=13
    )
    np.testing.assert_array_equal(noisy.demand, draw.demand)
    for name, sigma in (("forecast_7d", 0.15), ("forecast_28d", 0.25)):
        log_error = np.log(column(noisy.features, name) / column(draw.features, name))
        assert log_error.std() == pytest.approx(sigma, rel=0.05)
        assert np.exp(log_error).mean() == pytest.approx(1.0, abs=0.01)


def dataclass_replace(config, **changes):
    import dataclasses

    return dataclasses.replace(config, **changes)


def test_unannounced_promotions_are_not_forecast():
    config = promotion_config(
        train_size=50, promotion_notice_days=0, forecast_7d_noise=0.0, forecast_28d_noise=0.0
    )
    draw = draw_proxy(config, seed=14)
    regular = draw.expected_demand / draw.uplift
    j = draw.history_days + np.arange(config.horizon)
    f7 = column(draw.features, "forecast_7d")
    # with no notice, only a promotion already running today is known
    for row in range(10):
        for t in range(0, config.horizon, 9):
            window = np.arange(j[t], j[t] + 7)
            start = draw.promotion_start[row, window]
            known = (start >= 0) & (start <= j[t])
            rate = regular[row, window] * np.where(known, draw.uplift[row, window], 1.0)
            assert f7[row, t] == pytest.approx(rate.mean())
    assert (column(draw.features, "days_to_promotion") == 1).all()


# ------------------------------------------------------------------ metrics under lost sales


def hand_case_dataset(features, names, split=("val",), demand=None):
    demand = np.array([[3, 4, 2, 5, 1, 6, 2, 0, 4, 3]], float) if demand is None else demand
    n, horizon = demand.shape
    return InventoryDataset(
        name="hand",
        demand=demand,
        features=features,
        feature_names=names,
        review_period=np.full(n, 2),
        lead_time=np.full((n, horizon), 1),
        initial_stock=np.zeros(n),
        split=np.array(split),
        sku_id=np.arange(1, n + 1),
        holding_cost=0.1,
        backlog_cost=0.9,
        max_replenish=1000.0,
        lost_sales=True,
    )


def test_lost_sales_metrics_hand_computed():
    # P = 2, L = 1 (W = 3), order up to 8 on days 2, 4, 6, 8; demand below. By hand:
    # days 0-2 end empty (lost 3, 4, 2); day 2 orders 8, on hand on day 3.
    # day:     3  4  5  6  7  8  9
    # on hand: 8  7  7  1  7  7  4   (orders 5, 7, 1 arrive on days 5, 7, 9)
    # demand:  5  1  6  2  0  4  3
    # end y:   3  2  1  0  7  3  1   sales 5 1 6 1 0 4 3, lost 1 on day 6
    demand = np.array([[3, 4, 2, 5, 1, 6, 2, 0, 4, 3]], float)
    sim = InventorySimulator(demand, 2, 1, lost_sales=True, max_replenish=100.0, device="cpu")
    rollout = sim.rollout(StationaryBaseStock(8.0))
    np.testing.assert_allclose(rollout.orders[0], [0, 0, 8, 0, 5, 0, 7, 0, 1, 0])
    np.testing.assert_allclose(rollout.end_inventory[0, 3:], [3, 2, 1, 0, 7, 3, 1])
    np.testing.assert_allclose(rollout.sales[0, 3:], [5, 1, 6, 1, 0, 4, 3])
    np.testing.assert_allclose(rollout.lost_demand[0], [3, 4, 2, 0, 0, 0, 1, 0, 0, 0])
    assert float(rollout.stockout_rate[0]) == pytest.approx(1 / 7)
    assert float(rollout.turnover_time[0]) == pytest.approx(17 / 20, rel=1e-6)
    assert float(rollout.objective[0]) == pytest.approx(100 / 7 + 17 / 40, rel=1e-6)
    assert float(rollout.loss) == pytest.approx((0.1 * 17 + 0.9 * 1) / 7)

    # the same case through the incumbent: level = (L + P) * forecast * (1 + k) = 3 * 8/3 * 1
    names = ("forecast_7d", "lead_time_days", "review_period_days")
    features = np.broadcast_to(np.array([8 / 3, 1.0, 2.0]), (1, 10, 3)).copy()
    ds = hand_case_dataset(features, names)
    policy = ForecastBaseStock(names, 0.0, safety="proportional")
    metrics = tmall_metrics(ds, policy)
    assert metrics["stockout_rate_pct"] == pytest.approx(100 / 7)
    assert metrics["turnover_days"] == pytest.approx(0.85, rel=1e-6)
    assert metrics["objective"] == pytest.approx(100 / 7 + 0.425, rel=1e-6)
    # std rule: level = 3 * 2 + k * std * sqrt(3) = 8 with std = 2 / sqrt(3), k = 1
    names_std = names + ("std_28d",)
    features_std = np.broadcast_to(np.array([2.0, 1.0, 2.0, 2 / math.sqrt(3)]), (1, 10, 4)).copy()
    ds_std = hand_case_dataset(features_std, names_std)
    metrics_std = tmall_metrics(ds_std, ForecastBaseStock(names_std, 1.0, safety="std"))
    assert metrics_std["objective"] == pytest.approx(metrics["objective"], rel=1e-9)


def test_turnover_is_capped_at_28_days():
    # order up to 500 on a SKU selling 1 a day: stock / sales >> 28
    demand = np.ones((1, 30))
    sim = InventorySimulator(demand, 2, 1, lost_sales=True, max_replenish=1000.0, device="cpu")
    rollout = sim.rollout(StationaryBaseStock(500.0))
    assert float(rollout.turnover_time[0]) == 28.0
    assert float(rollout.stockout_rate[0]) == 0.0
    assert float(rollout.objective[0]) == 14.0


# ------------------------------------------------------------------ the incumbent


def incumbent_case():
    """Constant demand 10, P = 2, L = 1, T = 20. Train/val forecast 10 (exact); test forecast 6
    (a 40% under-forecast), so the best k differs between validation and test."""
    horizon = 20
    demand = np.full((3, horizon), 10.0)
    names = ("forecast_7d", "lead_time_days", "review_period_days")
    forecast = np.array([10.0, 10.0, 6.0])
    features = np.stack(
        [
            np.repeat(forecast[:, None], horizon, axis=1),
            np.ones((3, horizon)),
            np.full((3, horizon), 2.0),
        ],
        axis=2,
    )
    return hand_case_dataset(features, names, split=("train", "val", "test"), demand=demand)


def test_incumbent_safety_factor_chosen_on_validation():
    ds = incumbent_case()
    grid = [1.0, 0.0, 0.1, 0.5]
    policy, table = fit_incumbent(ds, grid, safety="proportional")
    assert list(table["safety_factor"]) == [0.0, 0.1, 0.5, 1.0]
    # k = 0: level 30 = exact cover, so every other counted day ends at 0 (SR 7/17).
    # k = 0.1: level 33; end stock 23, 13, then 13 on odd and 3 on even days: TT 161/170.
    assert policy.safety_factor == 0.1
    assert table.loc[table["chosen"], "safety_factor"].item() == 0.1
    row = table.set_index("safety_factor")
    assert row.loc[0.0, "stockout_rate_pct"] == pytest.approx(700 / 17)
    assert row.loc[0.1, "stockout_rate_pct"] == 0.0
    assert row.loc[0.1, "objective"] == pytest.approx(161 / 170 / 2, rel=1e-6)
    assert row.loc[0.5, "objective"] > row.loc[0.1, "objective"]
    # on the test SKU (under-forecast) the best k would be 1.0; the fit must not see it
    with pytest.warns(UserWarning, match="widen the grid"):  # 1.0 is the grid's largest
        test_policy, _ = fit_incumbent(ds, grid, safety="proportional", split="test")
    assert test_policy.safety_factor == 1.0
    metrics = incumbent_metrics(ds, grid, safety="proportional")
    assert metrics.loc["val", "safety_factor"] == 0.1
    assert metrics.loc["test", "safety_factor"] == 0.1
    assert metrics.loc["val", "objective"] == pytest.approx(161 / 170 / 2, rel=1e-6)
    assert metrics.loc["test", "stockout_rate_pct"] > 0  # 0.1 is too little safety there
    assert list(metrics.index) == ["val", "test"]


def test_incumbent_warns_at_grid_edge():
    ds = incumbent_case()
    with pytest.warns(UserWarning, match="widen the grid"):
        fit_incumbent(ds, [0.0, 0.05], safety="proportional")


def test_incumbent_on_the_proxy_beats_no_safety_stock(default_proxy):
    policy, table = fit_incumbent(default_proxy, [0.0, 1.0, 2.0, 3.0, 4.0, 8.0])
    assert table["chosen"].sum() == 1
    assert 0.0 < policy.safety_factor < 8.0
    assert table["objective"].min() < table.loc[0, "objective"]
    # SR falls and TT rises with k
    assert (np.diff(table["stockout_rate_pct"]) <= 0).all()
    assert (np.diff(table["turnover_days"]) >= 0).all()


def test_coeff_network_policy_runs_on_the_proxy():
    ds = generate_proxy(seed=1, **SMALL).subset("val")
    network = torch.nn.Linear(network_input_size(len(PROXY_FEATURES), ds.max_lead_time + 1), 5)
    with torch.no_grad():
        network.weight.zero_()
        network.bias.copy_(torch.tensor([0.0, 0.0, 0.5, 0.0, 0.0]))
    policy = NetworkPolicy(network, "both", ds.max_replenish, ds.coeff_features)
    # Both with coefficient 0.5 on forecast_7d: order up to 14 days of forecast
    metrics = tmall_metrics(ds, policy)
    level = 28 * 0.5 * column(ds, "forecast_7d")
    reference = tmall_metrics(ds, _LevelPolicy(torch.as_tensor(level)))
    assert metrics["objective"] == pytest.approx(reference["objective"], rel=1e-3)


class _LevelPolicy:
    def __init__(self, levels):
        self.levels = levels

    def __call__(self, observation):
        level = self.levels[observation.index, observation.day].to(observation.pipeline.dtype)
        return (level - observation.inventory_position).clamp(min=0.0)


# ------------------------------------------------------------------ summary


def test_proxy_summary(default_proxy):
    summary = proxy_summary(default_proxy)
    assert list(summary.index) == ["train", "val", "test", "all"]
    assert list(summary["n_skus"]) == [200, 100, 200, 500]
    assert (summary["review_period_4"] + summary["review_period_7"] == summary["n_skus"]).all()
    assert (summary["lead_time_5"] + summary["lead_time_7"] == summary["n_skus"]).all()
    assert summary.loc["test", "first_day"] == 215 and summary.loc["test", "last_day"] == 304
    assert summary.loc["train", "first_day"] == 0 and summary.loc["train", "last_day"] == 89
    assert 1.0 <= summary.loc["all", "base_rate_min"] < 1.1
    assert 900 < summary.loc["all", "base_rate_max"] <= 1000.0
    assert 0.05 < summary.loc["all", "promotion_day_share"] < 0.15
    with pytest.raises(ValueError, match="not a proxy dataset"):
        proxy_summary(generate_indep())


# ------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"train_size": 0}, "train_size must be an integer >= 1"),
        ({"test_size": 2.5}, "test_size must be an integer"),
        ({"horizon": 14}, "horizon must exceed the longest warm-up"),
        ({"history_days": 10}, "history_days must be an integer >= 28"),
        ({"test_start_day": -1}, "test_start_day must be an integer >= 0"),
        ({"base_rate_range": (0.0, 10.0)}, "base_rate_range must have low > 0"),
        ({"base_rate_range": (10.0, 1.0)}, "base_rate_range must have low <= high"),
        ({"base_rate_range": 5.0}, "base_rate_range must be a pair"),
        ({"weekly_strength": -0.1}, r"weekly_strength must be a finite number >= 0\.0"),
        ({"yearly_amplitude": float("nan")}, r"yearly_amplitude must be a finite number >= 0\.0"),
        (
            {"dispersion_range": (-1.0, 1.0)},
            r"dispersion_range\[0\] must be a finite number >= 0\.0",
        ),
        ({"promotion_rate": 1.5}, "promotion_rate must be a probability"),
        ({"promotion_days": (0, 3)}, r"promotion_days\[0\] must be a finite number >= 1\.0"),
        ({"promotion_days": (2.5, 3)}, "promotion_days must be whole days"),
        (
            {"promotion_uplift_range": (0.5, 2.0)},
            r"promotion_uplift_range\[0\] must be a finite number >= 1\.0",
        ),
        ({"promotion_notice_days": -2}, "promotion_notice_days must be an integer >= 0"),
        ({"forecast_7d_noise": -0.1}, r"forecast_7d_noise must be a finite number >= 0\.0"),
        ({"review_periods": (4, 4)}, "review_periods must be distinct"),
        ({"review_periods": ()}, "review_periods must be a non-empty sequence"),
        ({"review_period_probs": (0.5, 0.6)}, "review_period_probs must sum to 1"),
        ({"lead_times": (-1, 5)}, r"lead_times\[0\] must be an integer >= 0"),
        ({"lead_time_probs": (1.0,)}, "lead_time_probs must have one probability per value"),
        ({"max_replenish": 0.0}, "max_replenish must be > 0"),
        ({"replenish_cover_days": 0.0}, "replenish_cover_days must be > 0"),
        ({"holding_cost": -1.0}, r"holding_cost must be a finite number >= 0\.0"),
        ({"bogus": 1}, "unknown proxy parameter"),
    ],
)
def test_bad_parameters_fail_clearly(overrides, message):
    with pytest.raises(ValueError, match=message):
        generate_proxy(**overrides)


def test_bad_seed_rng_config_and_incumbent_inputs():
    with pytest.raises(ValueError, match="seed must be an integer >= 0"):
        generate_proxy(seed=-1)
    with pytest.raises(ValueError, match="rng must be a numpy.random.Generator"):
        generate_proxy(rng=42)
    with pytest.raises(ValueError, match="config must be a ProxyConfig"):
        generate_proxy({"train_size": 3})
    with pytest.raises(ValueError, match="safety must be one of"):
        ForecastBaseStock(PROXY_FEATURES, 1.0, safety="sigma")
    with pytest.raises(ValueError, match="needs feature 'std_28d'"):
        ForecastBaseStock(("forecast_7d", "lead_time_days", "review_period_days"), 1.0)
    with pytest.raises(ValueError, match="safety_factor must be > -1"):
        ForecastBaseStock(PROXY_FEATURES, -1.0, safety="proportional")
    ds = incumbent_case()
    with pytest.raises(ValueError, match="grid must be a non-empty"):
        fit_incumbent(ds, [], safety="proportional")
    with pytest.raises(ValueError, match="grid must hold finite numbers"):
        fit_incumbent(ds, [0.0, float("nan")], safety="proportional")
    with pytest.raises(ValueError, match="split must be one of"):
        fit_incumbent(ds, [0.0], safety="proportional", split="validation")
