"""Assignment (a): setting 1 with longer lead times and other critical ratios.

Write the two functions below (replace each `raise NotImplementedError` under
`# YOUR CODE HERE`), then check them, from the project's root folder:

    python -m deepstock.course.assignments check sensitivity assignments/a_sensitivity.py

or run the check cell of the page "Assignment (a)" of the book (notebooks/assignment_sensitivity.md).

Setting 1 in one paragraph: T = 31 days, orders on days P, 2P, ... (P = 2), an order placed on
day t is on hand on day t + L (L = 1), demand D_t is uniform on the integers {l_t, ..., l_t + 4}
and independent across days, unmet demand is backlogged, and each counted day costs
h (stock)^+ + b (backlog) with h = 0.1, b = 0.9. The critical ratio is b / (b + h).
"""

from __future__ import annotations

import numpy as np

from deepstock.model.optimal import true_demand_pmf  # noqa: F401 (for your code)
from deepstock.model.dataset import InventoryDataset
from deepstock.datasets.synthetic import make_setting

HOLDING_COST = 0.1  # h, kept fixed; the critical ratio is changed through the backlog cost b


def variant(lead_time: int, critical_ratio: float) -> InventoryDataset:
    """Setting 1 (the authors' demand draws) with another lead time and critical ratio.

    Args:
        lead_time: L >= 0, days from order to arrival.
        critical_ratio: r = b / (b + h) in (0, 1), with h = HOLDING_COST.

    Returns:
        The dataset. Hint: make_setting("setting1", lead_time=..., backlog_cost=...) changes
        only what you pass; solve r = b / (b + h) for b.
    """
    # YOUR CODE HERE
    raise NotImplementedError


def protection_levels(dataset: InventoryDataset) -> np.ndarray:
    """The order-up-to level of every order day, one order at a time.

    The order placed on day t is the only one that decides the stock on the days
    s = t + L, ..., t + L + P - 1 (the earlier orders have landed, the next one has not): there
    the end-of-day stock is y - X_s, where y is the inventory position after ordering and
    X_s = D_t + D_{t+1} + ... + D_s. Choose the integer y that minimizes

        sum over those days s (with s < T) of  E[ h (y - X_s)^+ + b (X_s - y)^+ ].

    Args:
        dataset: a setting-1 dataset (every trajectory has the same P, L, h, b and demand
            distribution).

    Returns:
        (K,) levels, one per order day t = P, 2P, ... with t + L < T, in order.

    Hints: P = dataset.review_period[0], L = dataset.lead_time[0, 0], T = dataset.horizon,
    h = dataset.holding_cost, b = dataset.backlog_cost. true_demand_pmf(dataset) is a (T, K)
    array with pmf[t, d] = P(D_t = d); the pmf of a sum of independent demands is the
    convolution of their pmfs (np.convolve). If two levels tie, take the smaller.
    """
    # YOUR CODE HERE
    raise NotImplementedError
