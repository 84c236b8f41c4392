"""Small datasets shared by the RL test files (test_envs, test_ddpg, test_ppo)."""

from __future__ import annotations

import numpy as np

from deepstock.model.dataset import InventoryDataset


def make_dataset(
    *,
    n: int = 9,
    horizon: int = 17,
    review_period: int | list[int] = 2,
    lead_time: int | list[int] | np.ndarray = 1,
    lost_sales: bool = False,
    n_features: int = 2,
    coeff_features: tuple[int, ...] = (),
    initial_stock: float = 0.0,
    seed: int = 0,
) -> InventoryDataset:
    """Random demand (units per day) with ``n_features`` demand-like features, splits 3/3/rest."""
    rng = np.random.default_rng(seed)
    demand = rng.integers(0, 15, size=(n, horizon)).astype(np.float64)
    lagged = np.concatenate([np.full((n, 1), 7.0), demand[:, :-1]], axis=1)
    features = np.stack([lagged + k for k in range(n_features)], axis=2)
    period = np.broadcast_to(np.asarray(review_period, dtype=np.int64), (n,)).copy()
    lead = np.asarray(lead_time, dtype=np.int64)
    if lead.ndim < 2:
        lead = np.broadcast_to(lead.reshape(-1, 1) if lead.ndim == 1 else lead, (n, horizon))
    return InventoryDataset(
        name="tiny-env",
        demand=demand,
        features=features,
        feature_names=tuple(f"f{k}" for k in range(n_features)),
        review_period=period,
        lead_time=lead.copy(),
        initial_stock=np.full(n, initial_stock),
        split=np.array((["train"] * 3 + ["val"] * 3 + ["test"] * n)[:n]),
        sku_id=np.arange(n),
        max_replenish=40.0,
        lost_sales=lost_sales,
        coeff_features=coeff_features,
    )
