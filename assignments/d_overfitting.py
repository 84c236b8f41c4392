"""Assignment (d): DS overfitting (setting 4) with lognormal demand.

Write the two functions below (replace each `raise NotImplementedError` under
`# YOUR CODE HERE`), then check them, from the project's root folder:

    python -m deepstock.course.assignments check overfitting assignments/d_overfitting.py

or run the check cell of the page "Assignment (d)" of the book, which then runs the N x H
experiment on your data.

Setting 4 has one demand per review period, D = max(0, N(100, sigma_i^2)), on the day an order
lands; SKU i has its own sigma_i ~ U(5, 20), which is also its context feature ("demand_std").
Here the demand becomes lognormal with the same mean 100 and standard deviation sigma_i.
"""

from __future__ import annotations

import dataclasses  # noqa: F401 (for your code)
from statistics import NormalDist  # noqa: F401 (for your code)

import numpy as np

from deepstock.model.dataset import InventoryDataset
from deepstock.datasets.synthetic import make_setting


def lognormal_dataset(n_skus: int, horizon_periods: int, seed: int = 0) -> InventoryDataset:
    """Setting 4's layout with lognormal demand of mean 100 and standard deviation sigma_i.

    Args:
        n_skus: N, SKUs (one training and one validation trajectory each, 100 test ones).
        horizon_periods: H, review periods per trajectory.
        seed: seed of the random draws (the same seed gives the same dataset).

    Returns:
        The dataset. Hints: make_setting("setting4", n_skus=..., horizon_periods=...,
        stream="fresh", seed=seed) gives the layout, the sigmas (features[:, 0, 0]) and the
        demand days (params["demand_days"]); a lognormal with parameters (mu, s) has mean
        exp(mu + s^2 / 2) and variance (exp(s^2) - 1) exp(2 mu + s^2); draw with
        numpy.random.default_rng(seed).lognormal(mu, s, size) and put the draws in with
        dataclasses.replace(base, demand=..., name=...).
    """
    # YOUR CODE HERE
    raise NotImplementedError


def lognormal_levels(dataset: InventoryDataset) -> np.ndarray:
    """The optimal stationary base-stock level of each trajectory under lognormal demand.

    Args:
        dataset: a setting-4 layout (any costs); sigma_i is features[i, 0, 0] and the mean
            is 100.

    Returns:
        (n,) levels: the quantile of SKU i's lognormal demand at the critical ratio
        b / (b + h).
    """
    # YOUR CODE HERE
    raise NotImplementedError
