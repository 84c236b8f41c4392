"""A small user's dataset for the tests of user data and policy files."""

from __future__ import annotations

import numpy as np

from deepstock.model.dataset import InventoryDataset


def small_shop(seed: int = 0) -> InventoryDataset:
    """12 SKUs x 35 days: weekly seasonality, lost sales, lead times 1-3 (each split has one of
    3 days), features weekday and the trailing 7-day mean (a demand-rate feature)."""
    rng = np.random.default_rng(seed)
    n, days, history = 12, 35, 7
    base = rng.uniform(2.0, 20.0, size=n)
    weekday = (np.arange(-history, days) % 7).astype(float)
    season = 1.0 + 0.4 * np.sin(2 * np.pi * weekday / 7)
    demand_all = rng.poisson(base[:, None] * season[None, :]).astype(float)
    rate = np.stack(
        [demand_all[:, t - history : t].mean(axis=1) for t in range(history, history + days)],
        axis=1,
    )
    demand = demand_all[:, history:]
    features = np.stack([np.broadcast_to(weekday[history:], (n, days)), rate], axis=2)
    lead = np.array([1, 2, 3] * 4)
    split = np.array(["train"] * 6 + ["val"] * 3 + ["test"] * 3)
    return InventoryDataset(
        name="shop",
        demand=demand,
        features=features,
        feature_names=("weekday", "rate_7d"),
        review_period=np.ones(n, dtype=np.int64),
        lead_time=np.repeat(lead[:, None], days, axis=1),
        initial_stock=np.round(base * 3),
        split=split,
        sku_id=np.arange(101, 101 + n),
        holding_cost=0.2,
        backlog_cost=1.0,
        max_replenish=200.0,
        lost_sales=True,
        coeff_features=(1,),
        params={"generator": "user"},
    ).validate()
