"""What every method shares: seeding, the result of a run, evaluation, and settings from a dict.

A method module (:mod:`deepstock.methods.ds`, :mod:`deepstock.methods.ddpg`,
:mod:`deepstock.methods.ppo`) imports these; it never imports :mod:`deepstock.methods.train`,
which imports the methods (one direction only).
"""

from __future__ import annotations

import dataclasses
import os
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch

from deepstock.model.dataset import InventoryDataset
from deepstock.model.simulator import InventorySimulator, Policy

__all__ = [
    "TENSORBOARD_TAGS",
    "CurvePoint",
    "TrainResult",
    "evaluate_policy",
    "seed_everything",
    "settings_from_mapping",
    "tensorboard_run_dir",
]

#: The TensorBoard tags every method writes with ``tensorboard=DIR`` (step: env steps for DDPG
#: and PPO, epochs for DS). DDPG and PPO also write Stable-Baselines3's own ``train/*`` tags.
TENSORBOARD_TAGS: dict[str, str] = {
    "val_loss": "eval/val_loss",
    "best_val_loss": "eval/best_val_loss",
    "train_loss": "train/loss",
}


def tensorboard_run_dir(
    folder: str | os.PathLike[str], method: str, regularization: str, seed: int
) -> Path:
    """The sub-folder of ``folder`` that one run writes its TensorBoard events to,
    ``<method>_<regularization>_seed<seed>`` (TensorBoard shows each sub-folder as a run).

    Raises:
        ImportError: the ``tensorboard`` package is not installed (the message says how to
            install it).
    """
    try:
        import tensorboard  # noqa: F401  (torch's and SB3's writers need it)
    except ImportError:
        raise ImportError(
            "writing TensorBoard curves needs the tensorboard package: "
            "pip install 'deepstock[tensorboard]' (or pip install tensorboard)"
        ) from None
    path = Path(folder) / f"{method}_{regularization}_seed{seed}"
    path.mkdir(parents=True, exist_ok=True)
    return path


Settings = TypeVar("Settings")


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy's global generator and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@dataclass(frozen=True)
class CurvePoint:
    """One point of a learning curve: validation loss after ``step`` env steps (or epochs)."""

    step: int
    val_loss: float


@dataclass
class TrainResult:
    """What one training run produced.

    Attributes:
        method: ``"ds"``, ``"ddpg"`` or ``"ppo"``.
        regularization: the regularization's name.
        config: the resolved settings, as a plain dict (what the result store records).
        seed: the seed of the run.
        device: the torch device used.
        policy: the best-validation policy, a :data:`deepstock.model.simulator.Policy` (CPU or device).
        val_metrics: metrics of ``policy`` on the validation split (``loss``, ``stockout_rate``,
            ``turnover_time``, ``objective``).
        test_metrics: the same on the test split.
        train_metrics: the same on the training split.
        curve: validation loss against environment steps (DDPG/PPO) or epochs (DS).
        curve_unit: ``"env_steps"`` or ``"epochs"``.
        wall_time_s: training wall time, seconds.
        extras: method-specific records (for example DDPG's critic losses and buffer states).
    """

    method: str
    regularization: str
    config: dict[str, Any]
    seed: int
    device: str
    policy: Policy
    val_metrics: dict[str, float]
    test_metrics: dict[str, float]
    train_metrics: dict[str, float]
    curve: list[CurvePoint]
    curve_unit: str
    wall_time_s: float
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def val_loss(self) -> float:
        return self.val_metrics["loss"]

    @property
    def test_loss(self) -> float:
        return self.test_metrics["loss"]

    def summary(self) -> dict[str, Any]:
        """A JSON-serializable summary (no policy, no extras)."""
        return {
            "method": self.method,
            "regularization": self.regularization,
            "seed": self.seed,
            "device": self.device,
            "config": self.config,
            "val": self.val_metrics,
            "test": self.test_metrics,
            "train": self.train_metrics,
            "curve_unit": self.curve_unit,
            "curve": [dataclasses.asdict(p) for p in self.curve],
            "wall_time_s": self.wall_time_s,
        }


def evaluate_policy(
    policy: Policy, dataset: InventoryDataset, *, device: str | torch.device = "cpu"
) -> dict[str, float]:
    """Metrics of ``policy`` on every trajectory of ``dataset``, deterministically, no gradient."""
    simulator = InventorySimulator.from_dataset(dataset, device=device)
    if isinstance(policy, torch.nn.Module):
        was_training = policy.training
        policy.eval()
        try:
            return simulator.rollout(policy).metrics()
        finally:
            policy.train(was_training)
    return simulator.rollout(policy).metrics()


def settings_from_mapping(
    cls: type[Settings], values: Mapping[str, Any] | Settings | None, *, method: str
) -> Settings:
    """Build the settings dataclass ``cls`` from ``values``; unknown keys fail with their name.

    An instance of ``cls`` is returned as it is. Range checks live in each settings class's
    ``__post_init__``.
    """
    if isinstance(values, cls):
        return values
    values = dict(values or {})
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(
            f"unknown {method} configuration key(s) {unknown}; known keys: {sorted(known)}"
        )
    return cls(**values)
