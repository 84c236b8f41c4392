"""One interface for the methods: train a (method, regularization, dataset, config, seed).

The paper's three methods and the project's fourth, DQN (not in the paper). Every method module
(:mod:`deepstock.methods.ds`, :mod:`deepstock.methods.ddpg`, :mod:`deepstock.methods.ppo`,
:mod:`deepstock.methods.dqn`) provides a settings dataclass and a ``train_<method>`` function
returning a :class:`~deepstock.methods.common.TrainResult`. This module imports them directly
(the methods import only :mod:`deepstock.methods.common`, never this module), resolves
configurations (plain dicts or YAML files) against their settings classes, and dispatches.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deepstock.core.jsontext import plain
from deepstock.datasets.io import load_data
from deepstock.methods.common import (
    CurvePoint,
    TrainResult,
    evaluate_policy,
    seed_everything,
    settings_from_mapping,
)
from deepstock.methods.ddpg import DDPGConfig, train_ddpg
from deepstock.methods.dqn import DQNConfig, train_dqn
from deepstock.methods.ds import DSConfig, train_ds
from deepstock.methods.population.engine import ENGINES, check_engine, train_population
from deepstock.methods.ppo import PPOConfig, train_ppo
from deepstock.model.dataset import InventoryDataset
from deepstock.model.regularizations import (
    BUILTIN_REGULARIZATIONS,
    REGULARIZATIONS,
    get_regularization,
)

__all__ = [
    "ENGINES",
    "METHODS",
    "CurvePoint",
    "MethodSpec",
    "TrainResult",
    "config_from_mapping",
    "default_config",
    "evaluate_policy",
    "load_config_file",
    "resolve_config",
    "seed_everything",
    "train",
]


@dataclass(frozen=True)
class MethodSpec:
    """A training method: its settings dataclass and its training function."""

    settings_class: type
    train_function: Callable[..., TrainResult]


#: Method name -> its settings class and training function.
METHODS: dict[str, MethodSpec] = {
    "ds": MethodSpec(DSConfig, train_ds),
    "ddpg": MethodSpec(DDPGConfig, train_ddpg),
    "ppo": MethodSpec(PPOConfig, train_ppo),
    # not in the paper: the project's fourth method (discrete orders, SB3 only)
    "dqn": MethodSpec(DQNConfig, train_dqn),
}

_CONFIG_DIR = Path(__file__).parent / "configs"


def _method(method: str) -> MethodSpec:
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; expected one of {sorted(METHODS)}")
    return METHODS[method]


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a YAML (or JSON) configuration file into a dict."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"config file {str(path)!r} does not exist")
    try:
        with path.open(encoding="utf-8") as handle:
            loaded = yaml.safe_load(handle) or {}
    except UnicodeDecodeError as error:
        raise ValueError(f"config file {str(path)!r} is not UTF-8 text ({error.reason})") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise ValueError(
            f"config file {str(path)!r}: YAML syntax error{where}: {problem}"
        ) from None
    if not isinstance(loaded, dict):
        raise ValueError(f"config file {str(path)!r} must hold a mapping of key: value")
    return loaded


def default_config(method: str, regularization: str, setting: str = "setting1") -> dict[str, Any]:
    """The paper's tuned configuration for ``(method, regularization)`` where one ships.

    The authors published tuned configurations for setting 1; they are the defaults for every
    setting when not tuning (the book's *Methods and tuning* chapter lists them). Where none ships
    (Coeff, Both) the settings class's own defaults apply (an empty dict is returned). A plug-in
    regularization (not one of the paper's four) borrows the configuration of its
    ``tuning_like`` (``"base"`` unless it says otherwise).
    """
    _method(method)
    if regularization not in BUILTIN_REGULARIZATIONS and regularization in REGULARIZATIONS:
        like = REGULARIZATIONS[regularization].tuning_like
        if like in BUILTIN_REGULARIZATIONS and like != regularization:
            return default_config(method, like, setting)
    path = _CONFIG_DIR / f"{method}_{setting}_{regularization}.yaml"
    if not path.is_file():
        path = _CONFIG_DIR / f"{method}_setting1_{regularization}.yaml"
    return load_config_file(path) if path.is_file() else {}


def config_from_mapping(method: str, values: Mapping[str, Any] | None) -> Any:
    """Build the method's settings dataclass from ``values``; unknown keys fail with their name."""
    return settings_from_mapping(_method(method).settings_class, values, method=method)


def resolve_config(
    method: str,
    regularization: str,
    config: Mapping[str, Any] | None,
    *,
    use_defaults: bool = True,
    setting: str = "setting1",
) -> dict[str, Any]:
    """The full configuration a run of :func:`train` uses, as a plain (JSON-ready) dict.

    The published tuned configuration when ``use_defaults`` (:func:`default_config`), then
    ``config``, then the settings class fills every other field with its default and checks
    ranges. This is the one place where that merge happens.
    """
    reg = get_regularization(regularization)
    values = default_config(method, reg.name, setting) if use_defaults else {}
    values.update(dict(config or {}))
    settings = config_from_mapping(method, values)
    return plain(dataclasses.asdict(settings))


def train(
    method: str,
    regularization: str,
    dataset: InventoryDataset | None = None,
    config: dict[str, Any] | str | Path | None = None,
    *,
    data: str | os.PathLike[str] | InventoryDataset | None = None,
    seed: int = 0,
    device: str = "auto",
    progress: bool = False,
    use_defaults: bool = True,
    engine: str = "sb3",
    tensorboard: str | os.PathLike[str] | None = None,
) -> TrainResult:
    """Train one policy and evaluate it on the validation and test splits.

    Args:
        method: ``"ds"``, ``"ddpg"``, ``"ppo"`` or ``"dqn"`` (not in the paper; None and Base
            only).
        regularization: a registered regularization name (``none``, ``base``, ``coeff``, ``both``).
        dataset: with ``train``, ``val`` and ``test`` splits.
        config: overrides of the settings, a dict or a YAML file; applied on top of the paper's
            tuned setting-1 configuration when ``use_defaults``.
        data: instead of ``dataset``, a user's dataset: a dataset folder or a ``.csv`` file
            (:func:`deepstock.datasets.io.load_data`, options from the YAML beside it).
        seed: seeds Python, NumPy, torch and the environment.
        device: ``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda"``.
        progress: show a progress bar (single-run engine only).
        use_defaults: start from the paper's tuned setting-1 configuration of the pair.
        engine: ``"sb3"``, each method's single-run path (Stable-Baselines3 for DDPG and PPO,
            :func:`deepstock.methods.ds.train_ds` for DS), or ``"population"``, the population
            engine (:mod:`deepstock.methods.population`) with this one run as its only member.
        tensorboard: a folder to write the training and validation curves to, in TensorBoard's
            event format (needs the ``tensorboard`` package; tags in
            :data:`deepstock.methods.common.TENSORBOARD_TAGS`); single-run engine only.
    """
    if (dataset is None) == (data is None):
        raise ValueError("train needs exactly one of dataset and data (a folder or a .csv file)")
    if data is not None:
        dataset = data if isinstance(data, InventoryDataset) else load_data(data)
    spec = _method(method)
    reg = get_regularization(regularization)
    reg.output_size(len(dataset.coeff_features))  # fails early when features are missing
    if isinstance(config, (str, Path)):
        config = load_config_file(config)
    values = default_config(method, reg.name) if use_defaults else {}
    values.update(config or {})
    settings = config_from_mapping(method, values)
    if check_engine(engine) == "population":
        if tensorboard is not None:
            raise ValueError("tensorboard is written by the single-run engine (engine='sb3') only")
        (result,) = train_population(method, reg.name, dataset, [settings], [seed], device=device)
        return result
    extra = {} if tensorboard is None else {"tensorboard": tensorboard}
    return spec.train_function(
        dataset, reg.name, settings, seed=seed, device=device, progress=progress, **extra
    )
