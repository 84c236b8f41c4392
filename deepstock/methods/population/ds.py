"""DS as a population: K members (each its own configuration and seed) trained in one computation.

Each member is a run of :func:`deepstock.methods.ds.train_ds`: the same network and initial
weights (built by :func:`deepstock.methods.ds.make_policy` after seeding with the member's seed),
the same shuffles (a generator seeded with the member's seed, one permutation per epoch), the
same minibatches, loss, gradient-norm clip, Adam, ``ReduceLROnPlateau``, validation, best
weights and early stopping. What changes is how the work is laid out:

- **One rollout per minibatch step for the whole population.** Minibatch ``j`` of every active
  member is gathered into one index of ``K * b`` training trajectories (member-major), rolled
  through the training simulator once, and the networks are evaluated as one
  :class:`~deepstock.methods.population.batched.BatchedMLP`. The loss that is differentiated is
  the sum of the members' minibatch losses; members share no parameter, so each member's
  gradient is that of its own loss.
- **Per-member optimization.** :class:`~deepstock.methods.population.batched.MemberAdam` (each
  member's own learning rate and step count), per-member gradient-norm clipping
  (``grad_clip_norm``) and a per-member ``ReduceLROnPlateau``
  (:class:`~deepstock.methods.population.batched.MemberPlateau`: mode min, relative threshold
  1e-4, each member's ``scheduler_patience`` and ``scheduler_factor``).
- **Skipped minibatches per member.** A member whose minibatch loss is not finite skips that
  Adam step (its weights, moments and step count unchanged) while the others step, as
  ``train_ds`` skips the minibatch.
- **One validation rollout.** After each epoch all active members are validated together on
  the validation split (``K`` copies of its trajectories, float64), each keeps its best weights
  (strictly lower validation loss) and stops on its own ``patience`` or ``epochs``.
- **Stopped members cost nothing.** At the end of an epoch in which members stop, they are
  evaluated (train, validation and test splits, one batched float64 rollout per split for all
  of them), reported through ``on_member_done`` and removed: the population is compacted
  (networks, Adam moments, scheduler state, kept best weights) to the members still training.
- **Sub-populations by structure.** Members must share the network's sizes
  (``hidden_layers``), the minibatch size (``batch_size``: equal minibatch sizes let one index
  hold every member's minibatch) and the training simulator (``train_dtype``,
  ``stockout_smoothing``). Members are grouped by these four keys, in order of first
  appearance, and each group is trained as its own population (in chunks of at most
  ``max_members``), one group after the other. The paper's DS search space has at most six
  groups (three widths times two batch sizes).

Deviations from the single-run path (numerical only): batched kernels (``baddbmm``, reductions
over ``(K, b)`` views) round differently from ``addmm`` and whole-batch reductions, at the level
of float32 rounding (about 1e-7 relative per operation), so a member's numbers agree with its
single run to about 1e-6 over short runs rather than bit for bit; over long runs such rounding
differences can grow where training is chaotic (as between two CPUs). ``wall_time_s`` of a
member is the population's training time until that member stopped (shared by every member
trained alongside it) and ``mean_epoch_time_s`` the population's mean epoch time; both are
recorded with ``extras["population_size"]``.

Python loops over members remain only once per epoch and outside the minibatch steps: drawing
each member's permutation from its own generator (what makes a member's shuffles those of its
single run) and appending each member's per-epoch records.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from deepstock.core.checks import check_int
from deepstock.methods.common import (
    CurvePoint,
    TrainResult,
    seed_everything,
    settings_from_mapping,
)
from deepstock.methods.ds import DSConfig, make_policy
from deepstock.methods.population.batched import (
    BatchedMLP,
    MemberAdam,
    MemberPlateau,
    MemberRowsNetwork,
    clip_grad_norm_per_member,
    stack_hyperparameter,
)
from deepstock.model.dataset import InventoryDataset
from deepstock.model.regularizations import NetworkPolicy, Regularization, get_regularization
from deepstock.model.simulator import InventorySimulator, Rollout, resolve_device

__all__ = ["group_by_structure", "train_ds_population"]

_DTYPES = {"float32": torch.float32, "float64": torch.float64}

#: ``on_member_done(index, result)``: ``index`` is the member's position in the input lists.
MemberCallback = Callable[[int, TrainResult], None]


def _structure_key(settings: DSConfig) -> tuple[Any, ...]:
    return (
        tuple(settings.hidden_layers),
        settings.batch_size,
        settings.train_dtype,
        settings.stockout_smoothing,
    )


def group_by_structure(
    settings: Sequence[DSConfig], max_members: int | None = None
) -> list[list[int]]:
    """Member indices grouped into sub-populations that can train as one computation.

    Members share a group when they agree on ``hidden_layers``, ``batch_size``, ``train_dtype``
    and ``stockout_smoothing``; groups keep the members' input order and are listed in order of
    their first member; a group larger than ``max_members`` is cut into consecutive chunks.
    """
    groups: dict[tuple[Any, ...], list[int]] = {}
    for index, member in enumerate(settings):
        groups.setdefault(_structure_key(member), []).append(index)
    size = max_members or max(len(settings), 1)
    return [
        members[start : start + size]
        for members in groups.values()
        for start in range(0, len(members), size)
    ]


@dataclass
class _MemberRecord:
    """The per-epoch history of one member while it trains."""

    index: int
    settings: DSConfig
    seed: int
    generator: torch.Generator
    curve: list[CurvePoint] = field(default_factory=list)
    train_losses: list[float] = field(default_factory=list)
    learning_rates: list[float] = field(default_factory=list)
    skipped: int = 0


def _member_metrics(rollout: Rollout, members: int) -> list[dict[str, float]]:
    """Per-member dataset metrics of a member-major rollout (what ``Rollout.metrics`` gives for
    one member's block of trajectories)."""
    columns = rollout.metric_columns()
    means = {
        name: values.view(members, -1).mean(dim=1).tolist() for name, values in columns.items()
    }
    return [{name: means[name][k] for name in columns} for k in range(members)]


def _repeat_rows(simulator: InventorySimulator, members: int) -> Tensor:
    """Index of every trajectory of ``simulator`` once per member, member-major."""
    return simulator.index.repeat(members)


class _Population:
    """One sub-population in training: networks, optimizer state and records of its members."""

    def __init__(
        self,
        records: list[_MemberRecord],
        train_set: InventoryDataset,
        reg: Regularization,
        device: torch.device,
    ) -> None:
        self.records = records
        self.reg = reg
        self.max_replenish = train_set.max_replenish
        self.coeff_features = train_set.coeff_features
        networks = []
        for record in records:
            # the single run's initialization: seed, then build the network the same way
            seed_everything(record.seed)
            networks.append(make_policy(train_set, reg, record.settings).network)
        first = records[0].settings
        sizes = [networks[0][0].in_features, *first.hidden_layers, networks[0][-2].out_features]
        self.mlp = BatchedMLP(len(records), sizes, nn.ELU, nn.ReLU, device=device)
        for k, network in enumerate(networks):
            self.mlp.load_member(k, network)
        configs = [dataclasses.asdict(record.settings) for record in records]
        self.optimizer = MemberAdam(
            self.mlp.parameters(), stack_hyperparameter(configs, "learning_rate", device=device)
        )
        self.scheduler = MemberPlateau(
            self.optimizer,
            stack_hyperparameter(configs, "scheduler_factor", device=device),
            stack_hyperparameter(configs, "scheduler_patience", device=device),
        )
        self.clip_norm = stack_hyperparameter(configs, "grad_clip_norm", device=device)
        self.patience = stack_hyperparameter(configs, "patience", device=device)
        self.max_epochs = stack_hyperparameter(configs, "epochs", device=device)
        self.best_loss = torch.full((len(records),), math.inf, dtype=torch.float64, device=device)
        self.best_epoch = torch.zeros(len(records), dtype=torch.float64, device=device)
        self.since_best = torch.zeros(len(records), dtype=torch.float64, device=device)
        self.best_params = [p.detach().clone() for p in self.mlp.parameters()]

    @property
    def size(self) -> int:
        return len(self.records)

    def policy(self, mlp: BatchedMLP | None = None) -> NetworkPolicy:
        """The population as one simulator policy over member-major rows."""
        return NetworkPolicy(
            MemberRowsNetwork(mlp or self.mlp), self.reg, self.max_replenish, self.coeff_features
        )

    def keep(self, members: Tensor) -> None:
        """Compact to the listed members (positions in the current population)."""
        index = members.tolist()
        if not index:
            self.records = []
            return
        mlp = self.mlp.subset(index)
        optimizer = self.optimizer.subset(index, mlp.parameters())
        self.scheduler = self.scheduler.subset(index, optimizer)
        self.mlp, self.optimizer = mlp, optimizer
        self.records = [self.records[k] for k in index]
        device = self.best_loss.device
        tensor_index = members.to(device)
        for name in (
            "clip_norm",
            "patience",
            "max_epochs",
            "best_loss",
            "best_epoch",
            "since_best",
        ):
            setattr(self, name, getattr(self, name)[tensor_index])
        self.best_params = [p[tensor_index] for p in self.best_params]

    def best_mlp(self, members: Tensor) -> BatchedMLP:
        """A population of the listed members holding their kept best weights."""
        mlp = self.mlp.subset(members.tolist())
        with torch.no_grad():
            for target, best in zip(mlp.parameters(), self.best_params, strict=True):
                target.copy_(best[members.to(best.device)])
        return mlp


def _train_epoch(
    population: _Population, train_sim: InventorySimulator, batch_size: int, device: torch.device
) -> tuple[Tensor, Tensor]:
    """One shuffled pass of minibatch steps for every member at once.

    Returns:
        ``(train_loss, skipped)``: ``(K,)`` float64 trajectory-weighted mean minibatch loss
        before the updates (NaN for a member that skipped every minibatch) and ``(K,)`` counts of
        skipped minibatches.
    """
    members = population.size
    # each member's own permutation from its own generator, as train_ds draws it
    permutations = torch.stack(
        [torch.randperm(train_sim.batch_size, generator=r.generator) for r in population.records]
    ).to(device)
    totals = torch.zeros(members, dtype=torch.float64, device=device)
    counts = torch.zeros(members, dtype=torch.float64, device=device)
    skipped = torch.zeros(members, dtype=torch.float64, device=device)
    policy = population.policy()
    params = list(population.mlp.parameters())
    for minibatch in permutations.split(batch_size, dim=1):  # (K, b)
        rows = minibatch.shape[1]
        rollout = train_sim.rollout(policy, differentiable=True, index=minibatch.reshape(-1))
        per_trajectory = rollout.training_trajectory_loss
        if per_trajectory is None:
            per_trajectory = rollout.trajectory_loss
        losses = per_trajectory.view(members, rows).mean(dim=1)  # (K,)
        finite = torch.isfinite(losses)
        population.optimizer.zero_grad()
        # members share no parameter: d(sum)/d(theta_k) is member k's own gradient
        torch.where(finite, losses, torch.zeros_like(losses)).sum().backward()
        clip_grad_norm_per_member(params, population.clip_norm)
        population.optimizer.step(finite)
        detached = losses.detach().to(torch.float64)
        totals += torch.where(finite, detached * rows, torch.zeros_like(detached))
        counts += finite.to(torch.float64) * rows
        skipped += (~finite).to(torch.float64)
    return totals / counts, skipped


def _validate(population: _Population, val_sim: InventorySimulator) -> Tensor:
    """``(K,)`` float64 validation loss of every member, one rollout, no gradient."""
    rollout = val_sim.rollout(
        population.policy(), differentiable=False, index=_repeat_rows(val_sim, population.size)
    )
    return rollout.trajectory_loss.view(population.size, -1).mean(dim=1)


def _evaluate(
    mlp: BatchedMLP,
    population: _Population,
    splits: Mapping[str, InventoryDataset],
    device: torch.device,
) -> dict[str, list[dict[str, float]]]:
    """Metrics of each member of ``mlp`` on each split: one float64 rollout per split."""
    policy = population.policy(mlp)
    metrics = {}
    for name, part in splits.items():
        simulator = InventorySimulator.from_dataset(part, device=device)
        rollout = simulator.rollout(
            policy, differentiable=False, index=_repeat_rows(simulator, mlp.members)
        )
        metrics[name] = _member_metrics(rollout, mlp.members)
    return metrics


def _resolve(settings: DSConfig | Mapping[str, Any] | None) -> DSConfig:
    return settings_from_mapping(DSConfig, settings, method="ds")


def _check_inputs(
    dataset: InventoryDataset, reg: Regularization, configs: Sequence[Any], seeds: Sequence[int]
) -> dict[str, InventoryDataset]:
    if len(configs) != len(seeds):
        raise ValueError(
            f"configs and seeds must have the same length (one per member), got {len(configs)} "
            f"configs and {len(seeds)} seeds"
        )
    if not configs:
        raise ValueError("a population needs at least one member (configs is empty)")
    for position, seed in enumerate(seeds):
        check_int(f"seeds[{position}]", seed)
    reg.output_size(len(dataset.coeff_features))  # fails early when features are missing
    splits = {name: dataset.subset(name) for name in ("train", "val", "test")}
    widths = {name: part.max_lead_time for name, part in splits.items()}
    if len(set(widths.values())) > 1:
        # one network reads the whole pipeline (max lead time + 1 slots) of every split
        raise ValueError(
            f"every split must have the same maximum lead time (the network reads the whole "
            f"pipeline), got {widths}"
        )
    return splits


def train_ds_population(
    dataset: InventoryDataset,
    regularization: str | Regularization,
    configs: Sequence[DSConfig | Mapping[str, Any] | None],
    seeds: Sequence[int],
    *,
    device: str | torch.device = "auto",
    max_members: int | None = None,
    on_member_done: MemberCallback | None = None,
) -> list[TrainResult]:
    """Train one DS member per ``(configs[i], seeds[i])`` as a population (module docstring).

    Args:
        dataset: with ``train``, ``val`` and ``test`` trajectories.
        regularization: a registered regularization name or object, shared by the members.
        configs: one :class:`~deepstock.methods.ds.DSConfig` (or mapping of its keys) per member.
        seeds: one seed per member; seeds the member's initial weights and shuffles exactly as
            ``train_ds(..., seed=seeds[i])`` does.
        device: ``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda"``.
        max_members: the most members trained as one computation (None: every member of a
            structure group at once).
        on_member_done: called as ``on_member_done(i, result)`` the moment member ``i`` has
            stopped and been evaluated.

    Returns:
        one :class:`~deepstock.methods.common.TrainResult` per member, in input order, shaped as
        ``train_ds``'s (policy on the CPU, metrics of the best-validation weights, ``extras`` with
        ``epochs_run``, ``best_epoch``, per-epoch training losses and learning rates, skipped
        minibatches), plus ``extras["engine"] = "population"`` and
        ``extras["population_size"]`` (members in the sub-population at its start).
    """
    reg = get_regularization(regularization)
    splits = _check_inputs(dataset, reg, configs, seeds)
    if max_members is not None:
        check_int("max_members", max_members, 1)
    device = resolve_device(device)
    settings = [_resolve(config) for config in configs]
    results: list[TrainResult | None] = [None] * len(settings)
    for group in group_by_structure(settings, max_members):
        for index, result in _train_group(
            [settings[i] for i in group], [int(seeds[i]) for i in group], group, splits, reg, device
        ):
            results[index] = result
            if on_member_done is not None:
                on_member_done(index, result)
    return [result for result in results if result is not None]


def _train_group(
    settings: list[DSConfig],
    seeds: list[int],
    indices: list[int],
    splits: Mapping[str, InventoryDataset],
    reg: Regularization,
    device: torch.device,
) -> Iterator[tuple[int, TrainResult]]:
    """Train one structure group; yields ``(input index, TrainResult)`` as members stop."""
    start = time.perf_counter()
    first = settings[0]
    train_sim = InventorySimulator.from_dataset(
        splits["train"],
        device=device,
        dtype=_DTYPES[first.train_dtype],
        stockout_smoothing=first.stockout_smoothing,
    )
    val_sim = InventorySimulator.from_dataset(splits["val"], device=device, dtype=torch.float64)
    records = [
        _MemberRecord(index, member, seed, torch.Generator().manual_seed(seed))
        for index, member, seed in zip(indices, settings, seeds, strict=True)
    ]
    population = _Population(records, splits["train"], reg, device)
    initial_size = population.size
    epoch_times: list[float] = []
    evaluation_time = 0.0
    epoch = 0
    while population.size:
        epoch += 1
        epoch_start = time.perf_counter()
        learning_rates = population.optimizer.lr.tolist()

        # ---- ALGO LOGIC: every member's shuffled pass of steps, then one validation rollout
        train_loss, skipped = _train_epoch(population, train_sim, first.batch_size, device)
        with torch.no_grad():
            val_loss = _validate(population, val_sim)
        population.scheduler.step(val_loss)

        # ---- bookkeeping: best weights, early stopping (all members at once)
        improved = val_loss < population.best_loss
        population.best_loss = torch.where(improved, val_loss, population.best_loss)
        population.best_epoch = torch.where(
            improved, torch.full_like(population.best_epoch, epoch), population.best_epoch
        )
        population.since_best = torch.where(
            improved, torch.zeros_like(population.since_best), population.since_best + 1.0
        )
        with torch.no_grad():
            for best, param in zip(
                population.best_params, population.mlp.parameters(), strict=True
            ):
                mask = improved.view(-1, *([1] * (param.dim() - 1)))
                best.copy_(torch.where(mask, param.detach(), best))
        done = (population.since_best >= population.patience) | (epoch >= population.max_epochs)
        epoch_times.append(time.perf_counter() - epoch_start)
        for record, lr, loss, val, skip in zip(
            population.records,
            learning_rates,
            train_loss.tolist(),
            val_loss.tolist(),
            skipped.tolist(),
            strict=True,
        ):
            record.learning_rates.append(lr)
            record.train_losses.append(loss)
            record.curve.append(CurvePoint(step=epoch, val_loss=val))
            record.skipped += int(skip)
        if not bool(done.any()):
            continue

        # ---- members that stopped: evaluate their best weights together, report, compact
        finished = torch.nonzero(done).flatten().cpu()
        eval_start = time.perf_counter()
        best_mlp = population.best_mlp(finished)
        metrics = _evaluate(best_mlp, population, splits, device)
        train_time = eval_start - start - evaluation_time
        for position, k in enumerate(finished.tolist()):
            record = population.records[k]
            network = best_mlp.member_module(position)
            policy = NetworkPolicy(
                network, reg, population.max_replenish, population.coeff_features
            )
            policy.eval()
            times = epoch_times[: len(record.curve)]
            yield (
                record.index,
                TrainResult(
                    method="ds",
                    regularization=reg.name,
                    config=dataclasses.asdict(record.settings),
                    seed=record.seed,
                    device=str(device),
                    policy=policy,
                    val_metrics=metrics["val"][position],
                    test_metrics=metrics["test"][position],
                    train_metrics=metrics["train"][position],
                    curve=record.curve,
                    curve_unit="epochs",
                    wall_time_s=train_time,
                    extras={
                        "epochs_run": len(record.curve),
                        "best_epoch": int(population.best_epoch[k]),
                        "mean_epoch_time_s": sum(times) / len(times),
                        "train_loss_per_epoch": record.train_losses,
                        "learning_rate_per_epoch": record.learning_rates,
                        "skipped_batches": record.skipped,
                        "engine": "population",
                        "population_size": initial_size,
                    },
                ),
            )
        evaluation_time += time.perf_counter() - eval_start
        population.keep(torch.nonzero(~done).flatten().cpu())
