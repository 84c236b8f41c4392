"""One interface for the three methods: train a (method, regularization, dataset, config, seed).

Every method module (:mod:`deepstock.ds`, :mod:`deepstock.ddpg`, :mod:`deepstock.ppo`) provides a
settings dataclass and a ``train_<method>`` function returning a :class:`TrainResult`; this module
resolves configurations (plain dicts or YAML files) against those dataclasses, dispatches, and
evaluates policies the one shared way: a deterministic simulation of every trajectory of a split.
"""

from __future__ import annotations

import dataclasses
import importlib
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from deepstock.data import InventoryDataset
from deepstock.simulator import InventorySimulator, Policy

__all__ = [
    "METHODS",
    "CurvePoint",
    "TrainResult",
    "config_from_mapping",
    "default_config",
    "evaluate_policy",
    "load_config_file",
    "seed_everything",
    "train",
]

#: Method name -> (module, settings class name, train function name).
METHODS: dict[str, tuple[str, str, str]] = {
    "ds": ("deepstock.ds", "DSConfig", "train_ds"),
    "ddpg": ("deepstock.ddpg", "DDPGConfig", "train_ddpg"),
    "ppo": ("deepstock.ppo", "PPOConfig", "train_ppo"),
}

_CONFIG_DIR = Path(__file__).parent / "configs"


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
        policy: the best-validation policy, a :data:`deepstock.simulator.Policy` (CPU or device).
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


def _settings_class(method: str) -> type:
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; expected one of {sorted(METHODS)}")
    module_name, class_name, _ = METHODS[method]
    return getattr(importlib.import_module(module_name), class_name)


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a YAML (or JSON) configuration file into a dict."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"config file {str(path)!r} does not exist")
    with path.open(encoding="utf-8") as handle:
        loaded = yaml.safe_load(handle) or {}
    if not isinstance(loaded, dict):
        raise ValueError(f"config file {str(path)!r} must hold a mapping of key: value")
    return loaded


def default_config(method: str, regularization: str, setting: str = "setting1") -> dict[str, Any]:
    """The paper's tuned configuration for ``(method, regularization)`` where one ships.

    The authors published tuned configurations for setting 1 (SPEC.md §5); they are the defaults
    for every setting when not tuning. Where none ships (Coeff, Both) the settings class's own
    defaults apply (an empty dict is returned). A plug-in regularization (not one of the paper's
    four) borrows the configuration of its ``tuning_like`` (``"base"`` unless it says otherwise).
    """
    from deepstock.policies import BUILTIN_REGULARIZATIONS, REGULARIZATIONS

    _settings_class(method)  # validates the method
    if regularization not in BUILTIN_REGULARIZATIONS and regularization in REGULARIZATIONS:
        like = REGULARIZATIONS[regularization].tuning_like
        if like in BUILTIN_REGULARIZATIONS and like != regularization:
            return default_config(method, like, setting)
    path = _CONFIG_DIR / f"{method}_{setting}_{regularization}.yaml"
    if not path.is_file():
        path = _CONFIG_DIR / f"{method}_setting1_{regularization}.yaml"
    return load_config_file(path) if path.is_file() else {}


def config_from_mapping(method: str, values: dict[str, Any] | None) -> Any:
    """Build the method's settings dataclass from ``values``; unknown keys fail with their name.

    Range checks live in each settings class's ``__post_init__``.
    """
    cls = _settings_class(method)
    values = dict(values or {})
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(
            f"unknown {method} configuration key(s) {unknown}; known keys: {sorted(known)}"
        )
    return cls(**values)


def train(
    method: str,
    regularization: str,
    dataset: InventoryDataset,
    config: dict[str, Any] | str | Path | None = None,
    *,
    seed: int = 0,
    device: str = "auto",
    progress: bool = False,
    use_defaults: bool = True,
) -> TrainResult:
    """Train one policy and evaluate it on the validation and test splits.

    Args:
        method: ``"ds"``, ``"ddpg"`` or ``"ppo"``.
        regularization: a registered regularization name (``none``, ``base``, ``coeff``, ``both``).
        dataset: with ``train``, ``val`` and ``test`` splits.
        config: overrides of the settings, a dict or a YAML file; applied on top of the paper's
            tuned setting-1 configuration when ``use_defaults`` (SPEC.md §5).
        seed: seeds Python, NumPy, torch and the environment.
        device: ``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda"``.
        progress: show a progress bar.
    """
    from deepstock.policies import get_regularization

    reg = get_regularization(regularization)
    reg.output_size(len(dataset.coeff_features))  # fails early when features are missing
    if isinstance(config, (str, Path)):
        config = load_config_file(config)
    values = default_config(method, reg.name) if use_defaults else {}
    values.update(config or {})
    settings = config_from_mapping(method, values)
    module_name, _, function_name = METHODS[method]
    train_function = getattr(importlib.import_module(module_name), function_name)
    return train_function(dataset, reg.name, settings, seed=seed, device=device, progress=progress)
