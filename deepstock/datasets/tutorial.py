"""The problem of a blog tutorial on DQN for inventory, as a dataset (the book's chapter *From a
tutorial's DQN to the paper's*; :mod:`deepstock.course.tutorial` holds the rest of the chapter).

Two versions of one problem: normal demand, mean 50 and standard deviation 10 units a day, one
order a day landing before the day's demand (review period 1, lead time 0), an initial stock of
50, an order cap of 100, and context features ``("demand_std", "forecast", "season")``: the
demand's standard deviation, a forecast (the mean, 50) and a weekly ``sin(2 pi t / 7)`` (demand
has no season). ``"tutorial"``: lost sales, no holding cost, :data:`STOCKOUT_COST` per unit of
lost demand (the tutorial's reward was +-10 per day; the simulator's losses are linear in units).
``"cost"``: backlog with the paper's ``h = 0.1``, ``b = 0.9``. Built with
:func:`deepstock.datasets.synthetic.generate_iid`, so the critical-fractile benchmark of
:mod:`deepstock.model.optimal` applies to the ``"cost"`` version.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from deepstock.core.checks import check_choice, check_int
from deepstock.datasets.synthetic import generate_iid
from deepstock.model.dataset import InventoryDataset

__all__ = [
    "DEMAND_MEAN",
    "DEMAND_STD",
    "INITIAL_STOCK",
    "STOCKOUT_COST",
    "VERSIONS",
    "tutorial_dataset",
]

#: The tutorial's demand: normal, mean 50 and standard deviation 10 units a day.
DEMAND_MEAN = 50.0
DEMAND_STD = 10.0
#: The tutorial's reward magnitude, here the cost of one unit of lost demand (version "tutorial").
STOCKOUT_COST = 10.0
#: The tutorial's initial stock, units.
INITIAL_STOCK = 50.0
#: The two versions of the problem.
VERSIONS: tuple[str, ...] = ("tutorial", "cost")


def tutorial_dataset(
    version: str = "cost",
    *,
    n_train: int = 20,
    days: int = 30,
    test_repeats: int = 5,
    seed: int = 0,
) -> InventoryDataset:
    """The tutorial's problem as a dataset: ``n_train`` training and validation months each.

    Args:
        version: ``"tutorial"`` (lost sales, no holding cost, 10 per lost unit) or ``"cost"``
            (backlog, ``h = 0.1``, ``b = 0.9``).
        n_train: training trajectories (as many for validation; ``test_repeats`` times as many
            for test), ``>= 1``.
        days: order days of a trajectory (one demand each), ``>= 1``; the horizon is
            ``days + 1`` (day 0 has neither order nor demand).
        test_repeats: test trajectories per training trajectory, ``>= 1``.
        seed: seed of the demand draws.

    Returns:
        An IID dataset with features ``("demand_std", "forecast", "season")``, order cap 100.
    """
    check_choice("version", version, VERSIONS)
    n_train = check_int("n_train", n_train, 1)
    days = check_int("days", days, 1)
    test_repeats = check_int("test_repeats", test_repeats, 1)
    base = generate_iid(
        n_skus=n_train,
        horizon_periods=days,
        review_period=1,
        lead_time=0,
        test_repeats=test_repeats,
        demand_mean=DEMAND_MEAN,
        std_range=(DEMAND_STD, DEMAND_STD),
        holding_cost=0.1,
        backlog_cost=0.9,
        max_replenish=100.0,
        stream="fresh",
        seed=seed,
        name=f"tutorial-{version}",
    )
    n, horizon = base.demand.shape
    season = np.sin(2.0 * math.pi * np.arange(horizon) / 7.0)
    features = np.concatenate(
        [
            base.features,
            np.full((n, horizon, 1), DEMAND_MEAN),
            np.broadcast_to(season[None, :, None], (n, horizon, 1)),
        ],
        axis=2,
    )
    changes: dict[str, Any] = {
        "features": features,
        "feature_names": ("demand_std", "forecast", "season"),
        "initial_stock": np.full(n, INITIAL_STOCK),
        "params": {**base.params, "tutorial_version": version},
    }
    if version == "tutorial":
        changes.update(lost_sales=True, holding_cost=0.0, backlog_cost=STOCKOUT_COST)
    return dataclasses.replace(base, **changes)
