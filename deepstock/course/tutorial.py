"""The chapter *From a tutorial's DQN to the paper's*: a blog tutorial's problem, done properly.

A tutorial on deep RL for e-commerce inventory (one of the project's source documents) poses a
toy problem: the state is the stock level, a demand forecast and a seasonal feature; demand is
normal with mean 50 and standard deviation 10; the reward is +10 on a day whose demand is met and
-10 on a day with a stockout; the discount is 0.99; the method is DQN. Its listed training loop
does not implement DQN (:func:`tutorial_loop_update` replays its update). This module rebuilds
the problem on the project's simulator in two versions:

* ``"tutorial"``: lost sales and no holding cost, as in the tutorial. The project's losses are
  linear in stock and lost units, so the tutorial's +-10 per day becomes a cost of
  :data:`STOCKOUT_COST` = 10 per unit of lost demand (a deviation: the tutorial's reward counts
  stockout days, this one counts lost units). Both share what the lesson is about: stock costs
  nothing, so more stock never hurts, and ordering the maximum every day is optimal
  (:func:`tutorial_optimum`).
* ``"cost"``: the same demand with the paper's costs, holding ``h = 0.1`` and backlog
  ``b = 0.9`` per unit and day. With i.i.d. demand and the order landing before the day's
  demand, every day is the same newsvendor problem and the base stock at the critical fractile,
  ``S* = 50 + 10 z``, ``z = Phi^{-1}(b / (b + h))``, is exactly optimal
  (:func:`deepstock.model.optimal.benchmark_losses`).

Both are built with :func:`deepstock.datasets.synthetic.generate_iid` (one demand a review
period, here a review period of 1 day and a lead time of 0, so one order and one demand a day),
with the tutorial's initial stock of 50 and its two context features: the demand forecast (the
mean, 50) and a weekly seasonal feature ``sin(2 pi t / 7)``. Demand has no season, so the
seasonal feature carries no information, as in the tutorial (whose demand has none either).
"""

from __future__ import annotations

from collections.abc import Sequence
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from deepstock.datasets.tutorial import (
    DEMAND_MEAN,
    DEMAND_STD,
    STOCKOUT_COST,
    VERSIONS,
    tutorial_dataset,
)
from deepstock.methods.train import TrainResult, train
from deepstock.model.dataset import InventoryDataset
from deepstock.model.heuristics import ConstantOrder
from deepstock.model.optimal import benchmark_losses, critical_fractile_z
from deepstock.model.simulator import simulate
from deepstock.results.store import ResultStore, cached_train

__all__ = [
    "DEMAND_MEAN",
    "DEMAND_STD",
    "STOCKOUT_COST",
    "TUTORIAL_METHODS",
    "VERSIONS",
    "policy_records",
    "read_policy_records",
    "tutorial_dataset",
    "tutorial_loop_update",
    "tutorial_optimum",
    "tutorial_runs",
]

#: (method, regularization) pairs of the chapter's cost version, in table order.
TUTORIAL_METHODS: tuple[tuple[str, str], ...] = (
    ("dqn", "base"),
    ("ddpg", "base"),
    ("ppo", "base"),
    ("ds", "base"),
)
#: Trajectories whose orders a run records for the chapter's policy plots.
_RECORDED_TRAJECTORIES = 10


def tutorial_optimum(dataset: InventoryDataset) -> dict[str, Any]:
    """The exact optimum of a version and its losses on each split.

    ``"tutorial"``: every daily loss is ``>= 0`` (there is no holding cost) and ordering the cap
    every day leaves no demand unmet once the first order has landed, so that policy reaches
    the lower bound: ``policy`` ``"order_max"``, with ``final_stock``, its mean stock at the end
    of the last test day (units). ``"cost"``: the critical-fractile base stock
    (``policy`` ``"critical_fractile"``, ``level`` ``S*``), and ``expected_loss``, its exact
    expected daily cost ``(h + b) sigma phi(z)`` (the demand's truncation at 0 is negligible
    at 5 standard deviations).

    Returns:
        ``{"policy", "train_loss", "val_loss", "test_loss", ...}``.
    """
    version = dataset.params.get("tutorial_version")
    if version not in VERSIONS:
        raise ValueError(
            f"dataset {dataset.name!r} is not a tutorial dataset (use tutorial_dataset())"
        )
    if version == "tutorial":
        policy = ConstantOrder(dataset.max_replenish)
        rollouts = {
            split: simulate(dataset.subset(split), policy, device="cpu")
            for split in ("train", "val", "test")
        }
        return {
            "policy": "order_max",
            "order": float(dataset.max_replenish),
            **{f"{split}_loss": float(r.loss) for split, r in rollouts.items()},
            "final_stock": float(rollouts["test"].end_inventory[:, -1].mean()),
        }
    row = benchmark_losses(dataset)[0]
    z = critical_fractile_z(dataset.holding_cost, dataset.backlog_cost)
    h, b = dataset.holding_cost, dataset.backlog_cost
    return {
        **row,
        "level": DEMAND_MEAN + z * DEMAND_STD,
        "expected_loss": (h + b) * DEMAND_STD * NormalDist().pdf(z),
    }


def tutorial_loop_update(network: nn.Module, states: torch.Tensor, learning_rate: float) -> dict:
    """One update of the tutorial's listing, replayed: fit the network to its own action.

    The listing predicts ``action = model.predict(state)`` and then calls
    ``model.fit(state, action)`` with a mean-squared-error loss: the regression target is the
    network's own output, so the loss is 0 and so is its gradient; the reward appears nowhere.
    This runs that step (SGD with ``learning_rate``) on ``states`` ``(batch, obs_dim)``.

    Returns:
        ``{"loss": the MSE before the step, "max_weight_change": the largest absolute change of
        any parameter, "reward_used": False}``.
    """
    before = [p.detach().clone() for p in network.parameters()]
    optimizer = torch.optim.SGD(network.parameters(), lr=learning_rate)
    action = network(states).detach()  # model.predict(state)
    loss = nn.functional.mse_loss(network(states), action)  # model.fit(state, action)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    change = max(
        float((p.detach() - q).abs().max())
        for p, q in zip(network.parameters(), before, strict=True)
    )
    return {"loss": float(loss.detach()), "max_weight_change": change, "reward_used": False}


def policy_records(result: TrainResult, dataset: InventoryDataset) -> dict[str, np.ndarray]:
    """What the chapter plots of a trained policy, from a rollout on the test trajectories.

    Returns ``positions`` and ``orders``: ``(10, days)`` inventory position before each order
    and the order, units, of the first 10 test trajectories; ``mean_end_inventory``:
    ``(days + 1,)`` end-of-day inventory averaged over every test trajectory.
    """
    rollout = simulate(dataset.subset("test"), result.policy, device="cpu")
    order_days = slice(1, None)  # day 0 has no order
    first = slice(0, _RECORDED_TRAJECTORIES)
    return {
        "positions": rollout.inventory_position[first, order_days].detach().numpy(),
        "orders": rollout.orders[first, order_days].detach().numpy(),
        "mean_end_inventory": rollout.end_inventory.mean(dim=0).detach().numpy(),
    }


def read_policy_records(store: ResultStore, key: str) -> dict[str, np.ndarray]:
    """The :func:`policy_records` of the stored run ``key``, as arrays (the store keeps short
    ones inline in the record and the others in its ``.npz``)."""
    arrays = store.arrays(key)
    inline = store.read(key)["extras"]
    records = {}
    for name in ("positions", "orders", "mean_end_inventory"):
        if name in arrays:
            records[name] = np.asarray(arrays[name])
        elif name in inline:
            records[name] = np.asarray(inline[name], dtype=np.float64)
        else:
            raise ValueError(f"stored run {key} has no policy record {name!r}")
    return records


def _train_with_records(
    method: str, regularization: str, dataset: InventoryDataset, config: Any, **kwargs: Any
) -> TrainResult:
    result = train(method, regularization, dataset, config, **kwargs)
    result.extras = {**result.extras, **policy_records(result, dataset)}
    return result


def tutorial_runs(
    store: ResultStore,
    dataset: InventoryDataset,
    pairs: Sequence[tuple[str, str]],
    overrides: dict[str, dict[str, Any]],
    *,
    seeds: Sequence[int] = (0, 1),
    device: str = "cpu",
) -> pd.DataFrame:
    """Train (or read back) every pair on ``dataset`` for every seed, with policy records.

    Each run starts from the method's defaults (the paper's tuned setting-1 configuration for
    DS, DDPG and PPO; :class:`deepstock.methods.dqn.DQNConfig`'s for DQN) with ``overrides``
    of its method applied (a profile's training lengths), and stores its
    :func:`policy_records` as arrays.

    Returns:
        One row per run: ``method``, ``regularization``, ``seed``, ``key``, ``val_loss``,
        ``test_loss``, ``wall_time_s``, ``trained_for`` (env steps or epochs at the last
        validation).
    """
    rows = []
    for method, regularization in pairs:
        for seed in seeds:
            run = cached_train(
                store,
                method,
                regularization,
                dataset,
                overrides.get(method, {}),
                seed=int(seed),
                device=device,
                setting="setting1",
                extras="all",
                train_fn=_train_with_records,
            )
            curve = run.get("curve", [])
            rows.append(
                {
                    "method": method,
                    "regularization": regularization,
                    "seed": int(seed),
                    "key": run["key"],
                    "val_loss": float(run["val"]["loss"]),
                    "test_loss": float(run["test"]["loss"]),
                    "wall_time_s": float(run["wall_time_s"]),
                    "trained_for": int(curve[-1]["step"]) if curve else 0,
                }
            )
    return pd.DataFrame(rows)
