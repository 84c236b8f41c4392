"""The paper's hyperparameter search spaces, as data (the book's *Methods and tuning protocol* chapter).

A search space is a mapping from a configuration key to either a distribution
(:class:`Uniform`, :class:`LogUniform`, :class:`Choice`) that the tuner samples, or a plain value
that every trial uses (a fixed key). The keys are the fields of the methods' settings classes
(:class:`deepstock.methods.ds.DSConfig`, :class:`deepstock.methods.ddpg.DDPGConfig`,
:class:`deepstock.methods.ppo.PPOConfig`), so a sampled configuration is passed to
:func:`deepstock.training.train` as it is.

The paper has three families of spaces, one per kind of demand:

* ``"indep"``: setting 1 (INDEP);
* ``"ar1"``: settings 2 and 3 (AR(1)); the SB3 network sizes differ between them;
* ``"iid"``: setting 4 (IID), DS only (the paper tunes nothing else there).

Two values of the book's *Methods and tuning protocol* chapter are not configuration keys: the order cap ``max_replenish`` is a
property of the dataset (:attr:`deepstock.model.dataset.InventoryDataset.max_replenish`), so a space lists
it under :attr:`SearchSpace.dataset_constants` and the tuner checks it against the dataset
instead of passing it on.

A fourth family is this project's own, not the paper's:

* ``"proxy"``: the Tmall-like proxy of the book's *A Tmall-like proxy* chapter (:mod:`deepstock.datasets.proxy`). The paper
  publishes no search space for Tmall; these are the INDEP spaces with changes made for the
  proxy (episodes of 12 to 20 orders, reviews every 4 or 7 days; an order cap that is one number
  for SKUs from 1 to 1,000 units a day; 200 training SKUs): the untrained policy starts lower
  (``initial_action_bias`` uniform(0, 0.3)); ``gamma`` takes the AR(1) range uniform(0.96, 1);
  SB3's networks are [64, 64] and PPO's rollouts shorter (``n_steps`` {512, 1024, 2048}); DS
  uses larger minibatches ({10, 20}), hidden layers {[32, 32], [64, 64]} and learning rates
  up to 3e-2; no ``max_replenish`` (the proxy's cap is its own).

DQN (:mod:`deepstock.methods.dqn`) is not in the paper; its spaces for settings 1-3 (families
``"indep"`` and ``"ar1"``) are the project's own design, made so that DQN tunes with the same
two-stage procedure and budgets as the paper's methods. The reasons for each entry:

* ``learning_rate`` loguniform(1e-4, 3e-3), decaying to ``lr_min`` 5e-5 at 95 % of training:
  the range of DQN's usual Adam rates around SB3's 1e-4 and up to the paper's DDPG rates (the
  Q-targets here are losses of a few units per order, no reward scaling is needed);
* ``buffer_size`` {10000, 50000, 100000}: from a buffer that holds only the last few thousand
  orders (fresh, on-policy-like data) to one that holds the whole of a 100,000-step run;
* ``batch_size`` {64, 128, 256}, ``train_freq`` {1, 4} and ``gradient_steps`` {1, 2}: from SB3's
  default of one update every 4 steps to two updates per step, the replay ratios at which DQN is
  usually stable;
* ``target_update_interval`` {250, 1000, 2500} env steps: a hard copy every few dozen episodes
  of setting 1 (an episode is a few dozen orders) to one every few hundred;
* ``exploration_fraction`` uniform(0.05, 0.3) and ``exploration_final_eps``
  uniform(0.01, 0.1): epsilon-greedy over 101 order levels needs a long decay early and little
  noise late (a random order is a large deviation from a base-stock policy);
* ``gamma`` uniform(0.9, 0.99), lower than the paper's DDPG/PPO ranges: a step's reward is the
  loss of the window in which its order arrives, so most of an order's consequence is in its own
  reward, and a discount near 1 multiplies the scale of the Q-values (and the overestimation of
  the max in the target) by ``1 / (1 - gamma)``;
* ``learning_starts`` {100, 500, 1000} and ``eval_freq`` {512, 1024} as DDPG's; ``total_steps``
  200,000 and ``patience`` 10 as DDPG's and PPO's (the profiles shorten them in the same way);
* ``net_arch`` {[64, 64], [128, 128], [256, 256]}: the Q-head has 101 outputs (one per order
  level), wider than a DDPG critic's one, so the hidden layers range up to PPO's width;
* ``initial_action_bias``: the paper's ranges of the family (uniform(0.2, 0.7) INDEP,
  uniform(0, 0.6) AR(1)), as the initial greedy action;
* ``action_step`` 1 (101 order levels, the grid's default for ``max_replenish`` 100).

Any registered regularization can be tuned (:mod:`deepstock.model.regularizations`). Where the paper's spaces
depend on the regularization (PPO's ``gae_lambda`` on AR(1): Base uniform(0, 0.5), None
uniform(0.5, 1)) a regularization borrows the entries of its
:attr:`~deepstock.model.regularizations.Regularization.tuning_like` (``"base"`` unless it says otherwise).
A regularization that needs demand features (Coeff, Both) is refused on settings 1-4, which have
none.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from deepstock.model.regularizations import get_regularization

__all__ = [
    "FAMILIES",
    "METHOD_SPACES",
    "Choice",
    "Distribution",
    "LogUniform",
    "SearchSpace",
    "Uniform",
    "search_space",
    "setting_family",
]


# ====================================================================== distributions
@dataclass(frozen=True)
class Uniform:
    """A float drawn uniformly from ``[low, high]``."""

    low: float
    high: float

    def __post_init__(self) -> None:
        _check_bounds(self, log=False)

    def suggest(self, trial: Any, name: str) -> float:
        return trial.suggest_float(name, self.low, self.high)

    def describe(self) -> str:
        return f"uniform({self.low:g}, {self.high:g})"


@dataclass(frozen=True)
class LogUniform:
    """A float whose logarithm is drawn uniformly from ``[log(low), log(high)]`` (``low > 0``)."""

    low: float
    high: float

    def __post_init__(self) -> None:
        _check_bounds(self, log=True)

    def suggest(self, trial: Any, name: str) -> float:
        return trial.suggest_float(name, self.low, self.high, log=True)

    def describe(self) -> str:
        return f"loguniform({self.low:g}, {self.high:g})"


@dataclass(frozen=True)
class Choice:
    """One of a few options (numbers, strings, lists, dicts), each equally likely a priori.

    Optuna's categorical parameters hold only ``None``, bools, numbers and strings; an option
    that is a list or a dict (a network architecture) is given to Optuna as its JSON text and
    decoded back, so the trial records a readable label such as ``"[32, 32]"``.
    """

    options: tuple[Any, ...]

    def __post_init__(self) -> None:
        options = tuple(self.options)
        if not options:
            raise ValueError("Choice needs at least one option")
        labels = [_label(option) for option in options]
        if len(set(labels)) != len(labels):
            raise ValueError(f"Choice options must be distinct, got {list(options)}")
        object.__setattr__(self, "options", options)

    @property
    def labels(self) -> tuple[Any, ...]:
        """The options as Optuna stores them (primitives as they are, others as JSON text)."""
        return tuple(_label(option) for option in self.options)

    def suggest(self, trial: Any, name: str) -> Any:
        label = trial.suggest_categorical(name, list(self.labels))
        return self.decode(label)

    def decode(self, label: Any) -> Any:
        """The option of an Optuna label (a copy, so callers may mutate it)."""
        for option, known in zip(self.options, self.labels, strict=True):
            if known == label and type(known) is type(label):
                return json.loads(json.dumps(option))
        raise ValueError(f"{label!r} is not one of the options {list(self.labels)}")

    def describe(self) -> str:
        return "{" + ", ".join(json.dumps(option) for option in self.options) + "}"


Distribution = Uniform | LogUniform | Choice


def _check_bounds(distribution: Uniform | LogUniform, *, log: bool) -> None:
    kind = type(distribution).__name__
    low, high = distribution.low, distribution.high
    for name, value in (("low", low), ("high", high)):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{kind}.{name} must be a number, got {value!r}")
        if not math.isfinite(value):
            raise ValueError(f"{kind}.{name} must be finite, got {value!r}")
    if not low < high:
        raise ValueError(f"{kind} needs low < high, got low={low}, high={high}")
    if log and low <= 0:
        raise ValueError(f"LogUniform needs low > 0, got {low}")
    object.__setattr__(distribution, "low", float(low))
    object.__setattr__(distribution, "high", float(high))


def _label(option: Any) -> Any:
    if option is None or isinstance(option, (bool, int, float, str)):
        return option
    try:
        return json.dumps(option, sort_keys=True)
    except TypeError:
        raise ValueError(f"Choice option {option!r} must be JSON-serializable") from None


def _is_distribution(value: Any) -> bool:
    return isinstance(value, (Uniform, LogUniform, Choice))


# ====================================================================== the space
@dataclass(frozen=True)
class SearchSpace:
    """What the tuner searches for one (method, regularization, setting).

    Attributes:
        method: ``"ds"``, ``"ddpg"``, ``"ppo"`` or ``"dqn"``.
        params: configuration key -> distribution, the keys the tuner samples.
        fixed: configuration key -> value, the keys every trial shares.
        dataset_constants: values of the protocol that belong to the dataset, not to the
            configuration (``max_replenish``); checked against the dataset by the tuner.
    """

    method: str
    params: Mapping[str, Distribution]
    fixed: Mapping[str, Any] = field(default_factory=dict)
    dataset_constants: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, distribution in self.params.items():
            if not _is_distribution(distribution):
                raise ValueError(
                    f"search space key {name!r}: expected Uniform, LogUniform or Choice, "
                    f"got {distribution!r}"
                )
        both = sorted(set(self.params) & set(self.fixed))
        if both:
            raise ValueError(f"search space keys {both} are both sampled and fixed")
        object.__setattr__(self, "params", dict(self.params))
        object.__setattr__(self, "fixed", json.loads(json.dumps(dict(self.fixed))))
        object.__setattr__(self, "dataset_constants", dict(self.dataset_constants))

    @property
    def keys(self) -> tuple[str, ...]:
        """Every configuration key the space sets (sampled, then fixed)."""
        return tuple(self.params) + tuple(self.fixed)

    def sample(self, trial: Any) -> dict[str, Any]:
        """A configuration: each sampled key drawn through ``trial`` (an :class:`optuna.Trial`)
        in the order of :attr:`params`, then the fixed keys."""
        config = {name: dist.suggest(trial, name) for name, dist in self.params.items()}
        config.update(json.loads(json.dumps(dict(self.fixed))))
        return config

    def decode(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """The configuration of a finished trial's Optuna ``params`` (labels decoded, fixed keys
        added)."""
        missing = sorted(set(self.params) - set(params))
        if missing:
            raise ValueError(f"trial params lack the sampled key(s) {missing}")
        config: dict[str, Any] = {}
        for name, dist in self.params.items():
            value = params[name]
            config[name] = dist.decode(value) if isinstance(dist, Choice) else value
        config.update(json.loads(json.dumps(dict(self.fixed))))
        return config

    def with_overrides(self, overrides: Mapping[str, Any]) -> SearchSpace:
        """The space with ``overrides`` fixed: an overridden sampled key is no longer sampled (a
        profile's shorter ``total_steps``, a given ``eval_freq``...)."""
        params = {k: v for k, v in self.params.items() if k not in overrides}
        fixed = {**{k: v for k, v in self.fixed.items() if k not in overrides}, **overrides}
        return dataclasses.replace(self, params=params, fixed=fixed)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serializable description (what identifies the space in a study's name)."""
        return {
            "method": self.method,
            "params": {
                name: {"kind": type(dist).__name__, **_distribution_fields(dist)}
                for name, dist in self.params.items()
            },
            "fixed": dict(self.fixed),
            "dataset_constants": dict(self.dataset_constants),
        }

    def describe(self) -> pd.DataFrame:
        """One row per key: ``key``, ``kind`` (``"sampled"``, ``"fixed"`` or ``"dataset"``) and
        ``value`` (the distribution as text, or the value), for tables in the book."""
        rows = [
            {"key": name, "kind": "sampled", "value": dist.describe()}
            for name, dist in self.params.items()
        ]
        rows += [
            {"key": name, "kind": "fixed", "value": json.dumps(value)}
            for name, value in self.fixed.items()
        ]
        rows += [
            {"key": name, "kind": "dataset", "value": json.dumps(value)}
            for name, value in self.dataset_constants.items()
        ]
        return pd.DataFrame(rows, columns=["key", "kind", "value"])


def _distribution_fields(dist: Distribution) -> dict[str, Any]:
    if isinstance(dist, Choice):
        return {"options": list(dist.options)}
    return {"low": dist.low, "high": dist.high}


# ====================================================================== the paper's spaces
#: Setting -> family of search spaces.
FAMILIES: dict[str, str] = {
    "setting1": "indep",
    "setting2": "ar1",
    "setting3": "ar1",
    "setting4": "iid",
    "proxy": "proxy",
}

# An entry is a distribution (sampled) or a plain value (fixed). Keys are the settings classes'
# fields; "max_replenish" is a dataset constant (moved aside by search_space()).
_DDPG_COMMON: dict[str, Any] = {
    "lr_fraction": 0.95,
    "batch_size": Choice((128, 256, 512)),
    "tau": LogUniform(1e-3, 1e-2),
    "buffer_size": Choice((20_000, 50_000, 100_000)),
    "train_freq": Choice((1, 14)),
    "learning_starts": Choice((100, 500, 1000)),
    "total_steps": 200_000,
    "eval_freq": Choice((512, 1024)),
    "patience": 10,
    "max_replenish": 100,
}
_PPO_COMMON: dict[str, Any] = {
    "lr_fraction": 0.9,
    "clip_range": Uniform(0.1, 0.3),
    "batch_size": Choice((128, 256, 512)),
    "n_epochs": Choice((1, 3, 5, 10)),
    "ent_coef": Uniform(1e-4, 0.5),
    "vf_coef": 0.4,
    "total_steps": 200_000,
    "patience": 10,
    "max_replenish": 100,
}

#: Method -> family -> key -> distribution or fixed value (the book's *Methods and tuning protocol* chapter). Regularization-
#: and setting-specific entries are in :data:`_BY_REGULARIZATION` and :data:`_BY_SETTING`.
METHOD_SPACES: dict[str, dict[str, dict[str, Any]]] = {
    "ddpg": {
        "indep": {
            "learning_rate": LogUniform(3e-4, 9e-3),
            "lr_min": LogUniform(6e-5, 3e-4),
            **_DDPG_COMMON,
            "gamma": Uniform(0.98, 1.0),
            "net_arch": {"pi": [64, 64], "qf": [64, 64]},
            "initial_action_bias": Uniform(0.2, 0.7),
        },
        "ar1": {
            "learning_rate": LogUniform(6e-4, 9e-3),
            "lr_min": LogUniform(9e-5, 6e-4),
            **_DDPG_COMMON,
            "gamma": Uniform(0.96, 1.0),
            # net_arch: per setting, see _BY_SETTING
            "initial_action_bias": Uniform(0.0, 0.6),
        },
    },
    "ppo": {
        "indep": {
            "learning_rate": LogUniform(5e-5, 9e-3),
            "lr_min": LogUniform(1e-5, 5e-5),
            **_PPO_COMMON,
            "n_steps": Choice((1024, 2048, 4096)),
            "gamma": Uniform(0.98, 1.0),
            "gae_lambda": Uniform(0.5, 1.0),
            "net_arch": {"pi": [256, 256], "vf": [256, 256]},
            "eval_freq": Choice((512, 1024, 2048)),
            "initial_action_bias": Uniform(0.2, 0.7),
        },
        "ar1": {
            "learning_rate": LogUniform(6e-4, 1e-2),
            "lr_min": LogUniform(9e-5, 6e-4),
            **_PPO_COMMON,
            "n_steps": Choice((512, 1024, 2048)),
            "gamma": Uniform(0.96, 1.0),
            # gae_lambda: per regularization, net_arch: per setting
            "eval_freq": Choice((1024, 2048)),
            "initial_action_bias": Uniform(0.0, 0.6),
        },
    },
    "ds": {
        "indep": {
            "hidden_layers": Choice(([32, 32], [64, 64], [128, 128])),
            "batch_size": Choice((5, 10)),
            "learning_rate": LogUniform(4e-4, 1e-1),
            "scheduler_factor": Uniform(0.5, 0.95),
            "epochs": 3000,
            "patience": 30,
            "max_replenish": 100,
            "initial_action_bias": Uniform(0.2, 0.7),
        },
        "ar1": {
            "hidden_layers": Choice(([32, 32], [64, 64], [128, 128])),
            "batch_size": Choice((5, 10)),
            "learning_rate": LogUniform(4e-4, 1e-1),
            "scheduler_factor": Uniform(0.5, 0.95),
            "epochs": 3000,
            "patience": 30,
            "max_replenish": 100,
            "initial_action_bias": Uniform(0.0, 0.6),
        },
        "iid": {
            "hidden_layers": Choice(([16, 16], [32, 32], [64, 64])),
            "batch_size": Choice((5, 10, 20)),
            "learning_rate": LogUniform(4e-4, 1e-1),
            "scheduler_factor": 0.5,
            "epochs": 3000,
            "patience": 30,
            "max_replenish": 500,
            "initial_action_bias": Uniform(0.0, 0.6),
        },
    },
}

# DQN (not in the paper): the project's own spaces for settings 1-3, reasons in the module
# docstring. The two families differ only where the paper's spaces of every method do.
_DQN_COMMON: dict[str, Any] = {
    "learning_rate": LogUniform(1e-4, 3e-3),
    "lr_min": 5e-5,
    "lr_fraction": 0.95,
    "buffer_size": Choice((10_000, 50_000, 100_000)),
    "batch_size": Choice((64, 128, 256)),
    "train_freq": Choice((1, 4)),
    "gradient_steps": Choice((1, 2)),
    "target_update_interval": Choice((250, 1000, 2500)),
    "exploration_fraction": Uniform(0.05, 0.3),
    "exploration_final_eps": Uniform(0.01, 0.1),
    "gamma": Uniform(0.9, 0.99),
    "learning_starts": Choice((100, 500, 1000)),
    "net_arch": Choice(([64, 64], [128, 128], [256, 256])),
    "total_steps": 200_000,
    "eval_freq": Choice((512, 1024)),
    "patience": 10,
    "action_step": 1.0,
    "max_replenish": 100,
}
METHOD_SPACES["dqn"] = {
    "indep": {**_DQN_COMMON, "initial_action_bias": Uniform(0.2, 0.7)},
    "ar1": {**_DQN_COMMON, "initial_action_bias": Uniform(0.0, 0.6)},
}

# The proxy family: the INDEP spaces with these changes (module docstring), and without the
# order cap (the proxy's is its own). Deriving it keeps the INDEP order of the keys.
_PROXY_CHANGES: dict[str, dict[str, Any]] = {
    "ddpg": {"gamma": Uniform(0.96, 1.0), "initial_action_bias": Uniform(0.0, 0.3)},
    "ppo": {
        "n_steps": Choice((512, 1024, 2048)),
        "gamma": Uniform(0.96, 1.0),
        "net_arch": {"pi": [64, 64], "vf": [64, 64]},
        "initial_action_bias": Uniform(0.0, 0.3),
    },
    "ds": {
        "hidden_layers": Choice(([32, 32], [64, 64])),
        "batch_size": Choice((10, 20)),
        "learning_rate": LogUniform(4e-4, 3e-2),
        "initial_action_bias": Uniform(0.0, 0.3),
    },
}
for _method, _changes in _PROXY_CHANGES.items():
    _indep = METHOD_SPACES[_method]["indep"]
    METHOD_SPACES[_method]["proxy"] = {
        key: _changes.get(key, value) for key, value in _indep.items() if key != "max_replenish"
    }

# (method, family) -> regularization -> entries. A family listed here accepts only these
# regularizations.
_BY_REGULARIZATION: dict[tuple[str, str], dict[str, dict[str, Any]]] = {
    ("ppo", "ar1"): {
        "base": {"gae_lambda": Uniform(0.0, 0.5)},
        "none": {"gae_lambda": Uniform(0.5, 1.0)},
    },
}

# (method, setting) -> entries.
_BY_SETTING: dict[tuple[str, str], dict[str, Any]] = {
    ("ddpg", "setting2"): {"net_arch": {"pi": [32, 32], "qf": [32, 32]}},
    ("ddpg", "setting3"): {"net_arch": {"pi": [32, 32], "qf": [16, 16]}},
    ("ppo", "setting2"): {"net_arch": {"pi": [128, 128], "vf": [64, 64]}},
    ("ppo", "setting3"): {"net_arch": {"pi": [64, 64], "vf": [64, 64]}},
}

# The protocol's values that are properties of the dataset, not configuration keys.
_DATASET_CONSTANTS = ("max_replenish",)

# The families of the paper's synthetic settings, whose datasets have no demand features.
_NO_DEMAND_FEATURES = ("indep", "ar1", "iid")


def setting_family(setting: str) -> str:
    """The family of search spaces of a synthetic setting (``"indep"``, ``"ar1"``, ``"iid"``)."""
    if setting not in FAMILIES:
        raise ValueError(f"unknown setting {setting!r}; expected one of {sorted(FAMILIES)}")
    return FAMILIES[setting]


def search_space(method: str, regularization: str, setting: str) -> SearchSpace:
    """The paper's search space of ``method`` with ``regularization`` on ``setting`` (DQN's:
    the project's own, settings 1-3).

    Args:
        method: ``"ds"``, ``"ddpg"``, ``"ppo"`` or ``"dqn"``.
        regularization: a registered regularization (:mod:`deepstock.model.regularizations`); one that the
            paper's spaces do not name borrows the entries of its ``tuning_like``.
        setting: ``"setting1"`` ... ``"setting4"`` or ``"proxy"``.

    Raises:
        ValueError: an unknown method, regularization or setting, a method the paper did not
            tune on the setting's family (DDPG and PPO on IID), or a regularization that needs
            demand features on settings 1-4.
    """

    if method not in METHOD_SPACES:
        raise ValueError(f"unknown method {method!r}; expected one of {sorted(METHOD_SPACES)}")
    family = setting_family(setting)
    if family not in METHOD_SPACES[method]:
        tuned = sorted(METHOD_SPACES[method])
        if method == "dqn":
            raise ValueError(
                f"DQN (not in the paper) has search spaces for settings 1-3 (families {tuned}) "
                f"only, not for {setting} ({family})"
            )
        raise ValueError(
            f"the paper defines no {method} search space for {setting} ({family}); "
            f"{method} is tuned on the families {tuned} only"
        )
    reg = get_regularization(regularization)
    if reg.uses_coeff_features and family in _NO_DEMAND_FEATURES:
        raise ValueError(
            f"regularization {reg.name!r} has no search space on {setting}: it needs demand "
            "features (coeff_features), which settings 1-4 do not have; use setting 'proxy'"
        )
    by_regularization = _BY_REGULARIZATION.get((method, family), {})
    like = reg.name if reg.name in by_regularization else reg.tuning_like
    entries = dict(METHOD_SPACES[method][family])
    entries.update(by_regularization.get(like, {}))
    entries.update(_BY_SETTING.get((method, setting), {}))
    params = {key: value for key, value in entries.items() if _is_distribution(value)}
    constants = {key: entries[key] for key in _DATASET_CONSTANTS if key in entries}
    fixed = {
        key: value
        for key, value in entries.items()
        if not _is_distribution(value) and key not in constants
    }
    return SearchSpace(method=method, params=params, fixed=fixed, dataset_constants=constants)
