"""Reference solution of assignment (b): the critical-fractile benchmark of IID demand.

Instructor's copy: not part of the book or the package. The self-check is
`python -m deepstock.course.assignments check benchmark instructor/solutions/b_benchmark.py`.
"""

from __future__ import annotations

from statistics import NormalDist

import numpy as np

from deepstock.model.dataset import InventoryDataset


def critical_fractile_levels(
    sigma: np.ndarray, demand_mean: float, holding_cost: float, backlog_cost: float
) -> np.ndarray:
    z = NormalDist().inv_cdf(backlog_cost / (backlog_cost + holding_cost))
    return demand_mean + z * np.asarray(sigma, dtype=float)


def base_stock_loss(dataset: InventoryDataset, levels: np.ndarray) -> np.ndarray:
    n, horizon = dataset.demand.shape
    levels = np.broadcast_to(np.asarray(levels, dtype=float), (n,))
    h, b, cap = dataset.holding_cost, dataset.backlog_cost, dataset.max_replenish
    losses = np.zeros(n)
    for i in range(n):
        period = int(dataset.review_period[i])
        lead = int(dataset.lead_time[i, 0])
        pipeline = np.zeros(lead + 1)
        pipeline[0] = dataset.initial_stock[i]
        total = 0.0
        for t in range(horizon):
            if t > 0 and t % period == 0:
                pipeline[lead] += min(max(levels[i] - pipeline.sum(), 0.0), cap)
            end = pipeline[0] - dataset.demand[i, t]
            if t >= period + lead:
                total += h * max(end, 0.0) + b * max(-end, 0.0)
            pipeline = np.append(pipeline[1:], 0.0)
            pipeline[0] += end
        losses[i] = total / (horizon - period - lead)
    return losses
