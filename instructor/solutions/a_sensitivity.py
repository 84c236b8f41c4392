"""Reference solution of assignment (a): setting 1 with other lead times and critical ratios.

Instructor's copy: not part of the book or the package. The self-check is
`python -m deepstock.course.assignments check sensitivity instructor/solutions/a_sensitivity.py`.
"""

from __future__ import annotations

import numpy as np

from deepstock.model.optimal import true_demand_pmf
from deepstock.model.dataset import InventoryDataset
from deepstock.datasets.synthetic import make_setting

HOLDING_COST = 0.1


def variant(lead_time: int, critical_ratio: float) -> InventoryDataset:
    # r = b / (b + h)  <=>  b = h r / (1 - r)
    backlog_cost = HOLDING_COST * critical_ratio / (1.0 - critical_ratio)
    return make_setting("setting1", lead_time=lead_time, backlog_cost=backlog_cost)


def protection_levels(dataset: InventoryDataset) -> np.ndarray:
    pmf = true_demand_pmf(dataset)
    period = int(dataset.review_period[0])
    lead = int(dataset.lead_time[0, 0])
    horizon = dataset.horizon
    h, b = dataset.holding_cost, dataset.backlog_cost
    levels = []
    for t in range(period, horizon - lead, period):
        cumulative = np.ones(1)  # pmf of D_t + ... + D_{s}, built up day by day
        for day in range(t, t + lead):
            cumulative = np.convolve(cumulative, pmf[day])
        window = []
        for s in range(t + lead, min(t + lead + period, horizon)):
            cumulative = np.convolve(cumulative, pmf[s])
            window.append(cumulative)
        y = np.arange(window[-1].size)[:, None]  # candidate levels 0 .. max total demand
        cost = np.zeros(y.shape[0])
        for probabilities in window:
            x = np.arange(probabilities.size)[None, :]
            daily = h * np.maximum(y - x, 0) + b * np.maximum(x - y, 0)
            cost += daily @ probabilities
        levels.append(float(np.argmin(cost)))  # argmin takes the smallest on ties
    return np.array(levels)
