"""What the DDPG and PPO populations share: schedules, batched validation, early stopping, results.

* :func:`linear_schedule_values`: SB3's ``LinearSchedule`` evaluated per member on ``(K,)``
  tensors (the learning-rate and clip-range decays of :mod:`deepstock.methods.sb3_common`);
* :class:`PopulationActorPolicy`: M members' deterministic actors as one simulator policy over
  ``M x N`` trajectories, so that the validation of the whole population is one batched rollout;
* :func:`population_losses` and :func:`population_metrics`: that rollout, per member;
* :class:`MemberEarlyStopping`: :class:`deepstock.methods.sb3_common.ValidationCallback`'s rule
  (``patience``, ``min_evals``, strict improvement) with one state per member;
* :func:`group_members`: members grouped by the structural settings a population shares.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from deepstock.core.checks import check_int
from deepstock.methods.common import CurvePoint, TrainResult
from deepstock.methods.envs import ActionMap
from deepstock.model.dataset import InventoryDataset
from deepstock.model.regularizations import Regularization, network_input
from deepstock.model.simulator import InventorySimulator, Observation, Rollout

__all__ = [
    "train_in_groups",
    "MemberEarlyStopping",
    "PopulationActorPolicy",
    "group_members",
    "linear_schedule_values",
    "population_losses",
    "population_metrics",
]

#: A batched deterministic actor: ``(M, N, obs_dim)`` float32 -> ``(M, N, action_size)``.
BatchedActor = Callable[[Tensor], Tensor]


def linear_schedule_values(
    start: Tensor, end: Tensor, end_fraction: Tensor, progress_remaining: Tensor
) -> Tensor:
    """SB3's ``LinearSchedule(start, end, end_fraction)`` at ``progress_remaining`` (1 at the
    start of training, 0 at ``total_steps``), elementwise over ``(K,)`` float64 tensors."""
    done = 1.0 - progress_remaining
    ramp = start + done * (end - start) / end_fraction
    return torch.where(done > end_fraction, end, ramp)


def group_members(keys: Sequence[Hashable], max_members: int | None = None) -> list[list[int]]:
    """Member indices grouped by equal keys (groups in order of first appearance), each group
    cut into consecutive chunks of at most ``max_members`` (None: no cut)."""
    groups: dict[Hashable, list[int]] = {}
    for index, key in enumerate(keys):
        groups.setdefault(key, []).append(index)
    chunks = []
    for members in groups.values():
        size = max_members or len(members)
        chunks.extend(members[i : i + size] for i in range(0, len(members), size))
    return chunks


class PopulationActorPolicy(nn.Module):
    """M members' deterministic actors acting on ``M x N`` trajectories: a simulator policy.

    Row ``m * N + j`` of the simulated batch is trajectory ``j`` under member ``m``. Each row's
    observation -> :func:`~deepstock.model.regularizations.network_input` -> member ``m``'s actor
    (float32, on the actor's device) -> :meth:`ActionMap.to_raw` -> regularization -> order,
    which is :class:`deepstock.methods.envs.ActorPolicy` for every member at once.

    Args:
        actor: the batched actor, ``(M, N, obs_dim) -> (M, N, action_size)`` env actions.
        members: M.
        regularization, action_map, max_replenish, coeff_features: as for ``ActorPolicy``.
        device: where ``actor`` runs.
    """

    def __init__(
        self,
        actor: BatchedActor,
        members: int,
        regularization: Regularization,
        action_map: ActionMap,
        max_replenish: float,
        coeff_features: Sequence[int],
        device: torch.device,
    ) -> None:
        super().__init__()
        self.actor = actor
        self.members = int(members)
        self.regularization = regularization
        self.action_map = action_map
        self.max_replenish = float(max_replenish)
        self.coeff_features = tuple(int(i) for i in coeff_features)
        self.device = device

    def forward(self, observation: Observation) -> Tensor:
        inputs = network_input(
            observation,
            self.regularization.normalized_inputs,
            self.max_replenish,
            coeff_features=self.coeff_features,
        )
        rows = inputs.shape[0]
        batched = inputs.to(device=self.device, dtype=torch.float32).reshape(
            self.members, rows // self.members, -1
        )
        with torch.no_grad():
            actions = self.actor(batched).reshape(rows, -1)
        raw = self.action_map.to_raw(actions.to(observation.pipeline))
        coeff_values = observation.features[:, list(self.coeff_features)]
        order = self.regularization.order(raw, observation, coeff_values, self.max_replenish)
        return order.to(observation.pipeline.dtype)


def _population_rollout(simulator: InventorySimulator, policy: PopulationActorPolicy) -> Rollout:
    n = simulator.batch_size
    index = torch.arange(n, device=simulator.device).repeat(policy.members)
    return simulator.rollout(policy, index=index)


def population_losses(simulator: InventorySimulator, policy: PopulationActorPolicy) -> Tensor:
    """``(M,)`` float64 mean trajectory loss of each member on every trajectory of
    ``simulator`` (one rollout of ``M x N`` trajectories, no gradient)."""
    rollout = _population_rollout(simulator, policy)
    return rollout.trajectory_loss.reshape(policy.members, -1).mean(dim=1)


def population_metrics(
    dataset: InventoryDataset, policy: PopulationActorPolicy
) -> list[dict[str, float]]:
    """Each member's :meth:`Rollout.metrics` on every trajectory of ``dataset`` (one rollout)."""
    simulator = InventorySimulator.from_dataset(dataset, device="cpu")
    rollout = _population_rollout(simulator, policy)
    n = simulator.batch_size
    metrics = []
    for m in range(policy.members):
        rows = slice(m * n, (m + 1) * n)
        part = Rollout(
            orders=rollout.orders[rows],
            inventory_position=rollout.inventory_position[rows],
            end_inventory=rollout.end_inventory[rows],
            lost_demand=rollout.lost_demand[rows],
            sales=rollout.sales[rows],
            daily_loss=rollout.daily_loss[rows],
            counted=rollout.counted[rows],
            trajectory_loss=rollout.trajectory_loss[rows],
            training_trajectory_loss=(
                None
                if rollout.training_trajectory_loss is None
                else rollout.training_trajectory_loss[rows]
            ),
            order_days=None if rollout.order_days is None else rollout.order_days[rows],
            max_replenish=rollout.max_replenish,
        )
        metrics.append(part.metrics())
    return metrics


class MemberEarlyStopping:
    """Per-member validation bookkeeping with SB3's ``StopTrainingOnNoModelImprovement`` rule.

    For each member: its learning curve, best loss and step, and the count of consecutive
    evaluations without a strict improvement, which starts counting after ``min_evals``
    evaluations; a member stops at the evaluation that makes ``patience + 1`` of them
    (exactly :class:`deepstock.methods.sb3_common.ValidationCallback`).

    Args:
        patience, min_evals: ``(K,)`` int64 tensors.
    """

    def __init__(self, patience: Tensor, min_evals: Tensor) -> None:
        members = int(patience.shape[0])
        self.patience = patience
        self.min_evals = min_evals
        self.best_loss = torch.full((members,), math.inf, dtype=torch.float64)
        self.best_step = torch.zeros(members, dtype=torch.int64)
        self.n_evals = torch.zeros(members, dtype=torch.int64)
        self.no_improvement = torch.zeros(members, dtype=torch.int64)
        self.stopped = torch.zeros(members, dtype=torch.bool)
        self.curves: list[list[CurvePoint]] = [[] for _ in range(members)]

    def record(self, evaluated: Tensor, losses: Tensor, step: int) -> Tensor:
        """Record ``losses[k]`` at env step ``step`` for the members in ``evaluated``.

        Args:
            evaluated: ``(K,)`` bool, the members validated now.
            losses: ``(K,)`` float64 validation losses (ignored where not evaluated).
            step: the env step (per member) of this validation.

        Returns:
            ``(K,)`` bool, the members that improved (their best weights should be kept).
        """
        losses = losses.detach().to("cpu", torch.float64)
        improved = evaluated & (losses < self.best_loss)
        self.best_loss = torch.where(improved, losses, self.best_loss)
        self.best_step = torch.where(
            improved, torch.full_like(self.best_step, step), self.best_step
        )
        self.n_evals = self.n_evals + evaluated.long()
        counting = evaluated & (self.n_evals > self.min_evals)
        self.no_improvement = torch.where(
            counting,
            torch.where(improved, torch.zeros_like(self.no_improvement), self.no_improvement + 1),
            self.no_improvement,
        )
        self.stopped = self.stopped | (counting & (self.no_improvement > self.patience))
        for k in np.flatnonzero(evaluated.numpy()).tolist():
            self.curves[k].append(CurvePoint(step=int(step), val_loss=float(losses[k])))
        return improved

    def subset(self, members: Tensor) -> MemberEarlyStopping:
        """The listed members' state (int64 indices, in that order)."""
        result = MemberEarlyStopping.__new__(MemberEarlyStopping)
        for name in (
            "patience",
            "min_evals",
            "best_loss",
            "best_step",
            "n_evals",
            "no_improvement",
            "stopped",
        ):
            setattr(result, name, getattr(self, name)[members])
        result.curves = [self.curves[k] for k in members.tolist()]
        return result


def train_in_groups(
    settings: Sequence[Any],
    seeds: Sequence[int],
    structure: Callable[[Any], Hashable],
    make_population: Callable[[list[Any], list[int]], Any],
    *,
    max_members: int | None = None,
    on_member_done: Callable[[int, TrainResult], None] | None = None,
) -> list[TrainResult]:
    """Train members ``(settings[i], seeds[i])`` as populations of equal ``structure``.

    Members are grouped by ``structure(settings)`` (:func:`group_members`), each group cut into
    chunks of at most ``max_members``; ``make_population(settings, seeds)`` builds a chunk's
    population, whose ``run(done)`` calls ``done(position, result)`` as each member finishes.
    Chunks train one after another. Returns one result per member, in input order.
    """
    seeds = [int(s) for s in seeds]
    if len(settings) != len(seeds) or not settings:
        raise ValueError(
            f"configs and seeds must have the same positive length, got {len(settings)} "
            f"and {len(seeds)}"
        )
    if max_members is not None:
        check_int("max_members", max_members, 1)
    results: list[TrainResult | None] = [None] * len(settings)
    for group in group_members([structure(s) for s in settings], max_members):
        population = make_population([settings[i] for i in group], [seeds[i] for i in group])

        def done(position: int, result: TrainResult, group: list[int] = group) -> None:
            results[group[position]] = result
            if on_member_done is not None:
                on_member_done(group[position], result)

        population.run(done)
    return [r for r in results if r is not None]
