"""Assignment (b): the critical-fractile benchmark of IID demand, from scratch.

Write the two functions below (replace each `raise NotImplementedError` under
`# YOUR CODE HERE`), then check them, from the project's root folder:

    python -m deepstock.course.assignments check benchmark assignments/b_benchmark.py

or run the check cell of the page "Assignment (b)" of the book. Use NumPy and the standard
library only (no deepstock.model.optimal or deepstock.model.simulator: the check compares with them).
"""

from __future__ import annotations

from statistics import NormalDist  # noqa: F401 (for your code)

import numpy as np

from deepstock.model.dataset import InventoryDataset


def critical_fractile_levels(
    sigma: np.ndarray, demand_mean: float, holding_cost: float, backlog_cost: float
) -> np.ndarray:
    """Stationary base-stock levels at the critical fractile of normal demand.

    Args:
        sigma: (n,) standard deviation of each SKU's demand per period, units.
        demand_mean: mean demand per period, units.
        holding_cost, backlog_cost: h and b, per unit and day.

    Returns:
        (n,) levels S_i = mean + z sigma_i, where z is the standard normal quantile of the
        critical ratio b / (b + h). Hint: NormalDist().inv_cdf(p) is that quantile.
    """
    # YOUR CODE HERE
    raise NotImplementedError


def base_stock_loss(dataset: InventoryDataset, levels: np.ndarray) -> np.ndarray:
    """The loss of each trajectory under a stationary base-stock (order-up-to) policy.

    Simulate every trajectory i of ``dataset`` (backlog) for days t = 0, ..., T - 1:

    - state: the pipeline x = (x[0], ..., x[L]): x[0] on hand (negative = backlog), x[l] what
      arrives in l days; it starts at (initial_stock[i], 0, ..., 0). IP = sum of x.
    - on an order day (t > 0 and t % P == 0) order q = min(max(S_i - IP, 0), max_replenish)
      and add it to x[L];
    - demand: the end-of-day stock is y = x[0] - D_t;
    - the day costs h max(y, 0) + b max(-y, 0), counted only when t >= P + L;
    - shift: the next day's x[0] is y + x[1], x[l] = x[l + 1], and x[L] = 0.

    Args:
        dataset: its demand (n, T), review_period (n,), lead_time (n, T) (constant in time
            here, use lead_time[i, 0]), initial_stock (n,), holding_cost, backlog_cost and
            max_replenish.
        levels: (n,) the level S_i of each trajectory.

    Returns:
        (n,) the mean cost per counted day of each trajectory.
    """
    # YOUR CODE HERE
    raise NotImplementedError
