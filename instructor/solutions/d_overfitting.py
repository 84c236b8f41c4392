"""Reference solution of assignment (d): setting 4 with lognormal demand.

Instructor's copy: not part of the book or the package. The self-check is
`python -m deepstock.course.assignments check overfitting instructor/solutions/d_overfitting.py`.
"""

from __future__ import annotations

import dataclasses
from statistics import NormalDist

import numpy as np

from deepstock.model.dataset import InventoryDataset
from deepstock.datasets.synthetic import make_setting

DEMAND_MEAN = 100.0


def _parameters(std: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # mean m and std d: s^2 = log(1 + d^2 / m^2), mu = log(m) - s^2 / 2
    s2 = np.log1p((np.asarray(std, dtype=float) / DEMAND_MEAN) ** 2)
    return np.log(DEMAND_MEAN) - s2 / 2.0, np.sqrt(s2)


def lognormal_dataset(n_skus: int, horizon_periods: int, seed: int = 0) -> InventoryDataset:
    base = make_setting(
        "setting4",
        n_skus=n_skus,
        horizon_periods=horizon_periods,
        stream="fresh",
        seed=seed,
    )
    sigma = base.features[:, 0, base.feature_names.index("demand_std")]
    days = np.asarray(base.params["demand_days"])
    mu, s = _parameters(sigma)
    rng = np.random.default_rng(seed)
    demand = np.zeros_like(base.demand)
    demand[:, days] = rng.lognormal(mu[:, None], s[:, None], size=(base.n_trajectories, days.size))
    return dataclasses.replace(
        base,
        demand=demand,
        name=f"lognormal-n{n_skus}-h{horizon_periods}-seed{seed}",
        params={**base.params, "demand_distribution": "lognormal"},
    )


def lognormal_levels(dataset: InventoryDataset) -> np.ndarray:
    sigma = dataset.features[:, 0, dataset.feature_names.index("demand_std")]
    mu, s = _parameters(sigma)
    z = NormalDist().inv_cdf(dataset.backlog_cost / (dataset.backlog_cost + dataset.holding_cost))
    return np.exp(mu + s * z)
