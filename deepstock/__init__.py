"""DeepStock companion: inventory simulator, policy regularizations, DRL methods and experiments.

The package is layered; each folder imports only the folders listed before it:

========== ===========================================================================
folder     job
========== ===========================================================================
core       parameter checks, file helpers (checkout root, atomic writes)
model      the dataset container, the simulator, regularizations, heuristic policies,
           optimal benchmarks
datasets   the synthetic settings 1-4, the Tmall-like proxy, the file formats (a folder, one CSV),
           ``load_setting``
methods    DS, DDPG, PPO, their environments and the one ``train`` interface
results    the result store, policy files (save, load, recommend orders)
tuning     search spaces, budget profiles, the paper's two-stage procedure
paper      the experiments, the paper's reported numbers, tables, figures, verdict
beyond     systems beside the paper (inventory and recommendation on two timescales)
course     the assignments' self-checks
tools      the command line, the book driver, performance figures
========== ===========================================================================

What a student or a notebook needs is importable from here (imported on first use, so that
``import deepstock`` stays light)::

    from deepstock import load_setting, InventorySimulator, train, get_regularization
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"


#: Public name -> the module that defines it.
_EXPORTS: dict[str, str] = {
    "InventoryDataset": "deepstock.model.dataset",
    "InventorySimulator": "deepstock.model.simulator",
    "Observation": "deepstock.model.simulator",
    "Rollout": "deepstock.model.simulator",
    "simulate": "deepstock.model.simulator",
    "Regularization": "deepstock.model.regularizations",
    "get_regularization": "deepstock.model.regularizations",
    "register_regularization": "deepstock.model.regularizations",
    "NetworkPolicy": "deepstock.model.regularizations",
    "StationaryBaseStock": "deepstock.model.heuristics",
    "TimeDependentBaseStock": "deepstock.model.heuristics",
    "ForecastBaseStock": "deepstock.model.heuristics",
    "benchmark_losses": "deepstock.model.optimal",
    "load_setting": "deepstock.datasets.catalog",
    "make_setting": "deepstock.datasets.synthetic",
    "load_dataset": "deepstock.datasets.io",
    "save_dataset": "deepstock.datasets.io",
    "load_data": "deepstock.datasets.io",
    "save_csv_dataset": "deepstock.datasets.io",
    "train": "deepstock.methods.train",
    "train_population": "deepstock.methods.population.engine",
    "default_config": "deepstock.methods.train",
    "evaluate_policy": "deepstock.methods.common",
    "TrainResult": "deepstock.methods.common",
    "ResultStore": "deepstock.results.store",
    "cached_train": "deepstock.results.store",
    "tune_pair": "deepstock.paper.experiments",
    "TrainedPolicy": "deepstock.results.policies",
    "load_policy": "deepstock.results.policies",
    "save_policy": "deepstock.results.policies",
    "cached_policy": "deepstock.results.policies",
    "resolve_profile": "deepstock.tuning.profiles",
}

__all__ = [
    "__version__",
    "ForecastBaseStock",
    "InventoryDataset",
    "InventorySimulator",
    "NetworkPolicy",
    "Observation",
    "Regularization",
    "ResultStore",
    "Rollout",
    "StationaryBaseStock",
    "TimeDependentBaseStock",
    "TrainResult",
    "TrainedPolicy",
    "benchmark_losses",
    "cached_policy",
    "cached_train",
    "default_config",
    "evaluate_policy",
    "get_regularization",
    "load_data",
    "load_dataset",
    "load_policy",
    "load_setting",
    "make_setting",
    "register_regularization",
    "resolve_profile",
    "save_csv_dataset",
    "save_dataset",
    "save_policy",
    "simulate",
    "train",
    "train_population",
    "tune_pair",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'deepstock' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


if TYPE_CHECKING:  # names for type checkers and editors
    from deepstock.datasets.catalog import load_setting
    from deepstock.datasets.io import load_data, load_dataset, save_csv_dataset, save_dataset
    from deepstock.datasets.synthetic import make_setting
    from deepstock.methods.common import TrainResult, evaluate_policy
    from deepstock.methods.population.engine import train_population
    from deepstock.methods.train import default_config, train
    from deepstock.model.dataset import InventoryDataset
    from deepstock.model.heuristics import (
        ForecastBaseStock,
        StationaryBaseStock,
        TimeDependentBaseStock,
    )
    from deepstock.model.optimal import benchmark_losses
    from deepstock.model.regularizations import (
        NetworkPolicy,
        Regularization,
        get_regularization,
        register_regularization,
    )
    from deepstock.model.simulator import InventorySimulator, Observation, Rollout, simulate
    from deepstock.paper.experiments import tune_pair
    from deepstock.results.policies import (
        TrainedPolicy,
        cached_policy,
        load_policy,
        save_policy,
    )
    from deepstock.results.store import ResultStore, cached_train
    from deepstock.tuning.profiles import resolve_profile
