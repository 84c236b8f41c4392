"""The population engine's entry point: train many members of one method as one computation.

:func:`train_population` takes one configuration and one seed per member and dispatches to the
method's population trainer (:data:`POPULATION_TRAINERS`). Each trainer shares one signature::

    trainer(dataset, regularization, configs, seeds, *, device, max_members, on_member_done)
        -> list[TrainResult]   # one per member, in input order

and computes, for every member, what the method's single-run path computes for that
configuration and seed (the trainer's module docstring lists where the numbers may differ and
why). ``on_member_done(index, result)`` is called the moment member ``index`` has finished, so
that a caller (the result store, the tuner) can write it at once; after a kill, only the members
that had not finished are trained again.

The population size (the most members trained as one computation) is chosen from the device by
:func:`default_population_size` unless ``max_members`` is given.

Configurations are completed with the settings class's defaults only; the published tuned
configurations are merged in by :func:`deepstock.methods.train.train` (``engine="population"``),
as for the single-run path.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

from deepstock.core.checks import check_int
from deepstock.methods.common import TrainResult
from deepstock.methods.population.ddpg import train_ddpg_population
from deepstock.methods.population.ds import MemberCallback, train_ds_population
from deepstock.methods.population.ppo import train_ppo_population
from deepstock.model.dataset import InventoryDataset
from deepstock.model.regularizations import Regularization
from deepstock.model.simulator import resolve_device

__all__ = [
    "ENGINES",
    "POPULATION_TRAINERS",
    "check_engine",
    "default_population_size",
    "train_population",
]

#: The training engines: ``"sb3"`` is each method's single-run path (Stable-Baselines3 for DDPG
#: and PPO, :func:`deepstock.methods.ds.train_ds` for DS); ``"population"`` this engine.
ENGINES = ("sb3", "population")

PopulationTrainer = Callable[..., list[TrainResult]]

#: Method name -> its population trainer (one line per method).
POPULATION_TRAINERS: dict[str, PopulationTrainer] = {
    "ds": train_ds_population,
    "ddpg": train_ddpg_population,
    "ppo": train_ppo_population,
}

#: Members per computation by device kind. On the CPU, DS's member-epochs per second on setting
#: 1 still grew from 10 to 50 members, the largest size measured (``deepstock bench
#: --population``); a larger population holds more memory and reports its first members later.
#: On a GPU larger populations are needed to keep the device busy; 500 is a guess, not a
#: measurement (no GPU was available when it was set).
_DEFAULT_SIZES: dict[str, int] = {"cpu": 50, "cuda": 500}


def default_population_size(method: str, device: str | torch.device = "auto") -> int:
    """The most members trained as one computation on ``device`` (``"auto"`` resolved)."""
    _trainer(method)
    kind = resolve_device(device).type
    return _DEFAULT_SIZES.get(kind, _DEFAULT_SIZES["cpu"])


def _trainer(method: str) -> PopulationTrainer:
    if method not in POPULATION_TRAINERS:
        raise ValueError(
            f"the population engine has no trainer for method {method!r}; it has "
            f"{sorted(POPULATION_TRAINERS)} (use engine='sb3' for the others)"
        )
    return POPULATION_TRAINERS[method]


def check_engine(engine: str) -> str:
    """``engine`` when it is one of :data:`ENGINES`, else one clear ValueError."""
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {list(ENGINES)}, got {engine!r}")
    return engine


def train_population(
    method: str,
    regularization: str | Regularization,
    dataset: InventoryDataset,
    configs: Sequence[Mapping[str, Any] | Any],
    seeds: Sequence[int],
    *,
    device: str | torch.device = "auto",
    max_members: int | None = None,
    on_member_done: MemberCallback | None = None,
) -> list[TrainResult]:
    """Train one member per ``(configs[i], seeds[i])`` of ``method`` as a population.

    Args:
        method: a key of :data:`POPULATION_TRAINERS`.
        regularization: shared by every member.
        dataset: with ``train``, ``val`` and ``test`` splits.
        configs: per member, the method's settings (a dataclass or a mapping of its keys;
            missing keys take the class defaults).
        seeds: per member, the seed of its single run.
        device: ``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda"``.
        max_members: the most members per computation (default
            :func:`default_population_size`).
        on_member_done: ``on_member_done(i, result)``, called as soon as member ``i`` finishes.

    Returns:
        one :class:`~deepstock.methods.common.TrainResult` per member, in input order.
    """
    trainer = _trainer(method)
    if max_members is None:
        max_members = default_population_size(method, device)
    check_int("max_members", max_members, 1)
    return trainer(
        dataset,
        regularization,
        list(configs),
        [int(seed) for seed in seeds],
        device=device,
        max_members=max_members,
        on_member_done=on_member_done,
    )
