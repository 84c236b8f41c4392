"""Run profiles: how much tuning and training an experiment gets.

The paper's protocol (the book's *Methods and tuning protocol* chapter) costs hundreds of CPU-hours; a profile scales it down
without changing its shape. A :class:`Profile` carries the tuning budget (stage-1 trials, the
top-k configurations re-run in stage 2 with their number of seeds, the number of repeats of the
whole procedure, TPE's random start-up trials) and per-method training-length overrides applied
on top of every configuration the tuner samples (a shorter ``total_steps``, fewer DS ``epochs``...;
an overridden key is no longer sampled).

Three profiles ship:

* ``smoke``: for tests and CI; every experiment of the book in a few minutes (2 trials, the best
  one re-run with 1 seed, tiny training).
* ``quick`` (the default): a laptop; small budgets and shorter training, sized so that every
  experiment of the book fits in a few hours on 2 cores.
* ``paper``: the exact protocol: 50 trials, the top 5 re-run with 5 seeds, 3 repeats, the
  training lengths of the search spaces (200,000 steps; DS up to 3000 epochs, patience 30).

Every number can be overridden: ``resolve_profile("quick", n_trials=8)``, or for training
lengths ``resolve_profile("quick", training={"ddpg": {"total_steps": 5000}})`` (merged into the
profile's overrides of that method). Bad values fail at once with the parameter's name.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from deepstock.core.checks import check_int
from deepstock.methods.train import config_from_mapping

__all__ = ["PROFILES", "Profile", "parse_override", "resolve_profile"]

_METHODS = ("ds", "ddpg", "ppo", "dqn")


@dataclass(frozen=True)
class Profile:
    """A tuning and training budget.

    Attributes:
        name: the profile's name (``"smoke"``, ``"quick"``, ``"paper"`` or a custom label).
        n_trials: stage-1 configurations sampled by TPE (>= 1), each trained once.
        top_k: configurations re-run in stage 2 (1 <= top_k <= n_trials).
        n_seeds: seeds per stage-2 configuration (1 <= n_seeds <= 999).
        repeats: independent repeats of the whole procedure (other sampler and training seeds),
            averaged in the report (>= 1).
        n_startup_trials: TPE's first trials drawn at random before it models the results
            (>= 1; TPE is pure random search when it is >= n_trials).
        training: method -> configuration overrides applied to every run of that method (keys
            of the method's settings class).
        description: one line on what the profile is for.
    """

    name: str
    n_trials: int
    top_k: int
    n_seeds: int
    repeats: int
    n_startup_trials: int
    training: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    description: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"profile name must be a non-empty string, got {self.name!r}")
        for key in ("n_trials", "top_k", "n_seeds", "repeats", "n_startup_trials"):
            check_int(f"profile {key}", getattr(self, key), 1)
        if self.top_k > self.n_trials:
            raise ValueError(
                f"profile top_k ({self.top_k}) must be <= n_trials ({self.n_trials}): stage 2 "
                "re-runs the best stage-1 configurations"
            )
        if self.n_seeds > 999:
            raise ValueError(f"profile n_seeds must be <= 999, got {self.n_seeds}")
        if not isinstance(self.training, Mapping):
            raise ValueError(
                f"profile training must map a method to overrides, got {self.training!r}"
            )
        training: dict[str, dict[str, Any]] = {}
        for method, overrides in self.training.items():
            if method not in _METHODS:
                raise ValueError(
                    f"profile training: unknown method {method!r}; expected one of {_METHODS}"
                )
            if not isinstance(overrides, Mapping):
                raise ValueError(
                    f"profile training[{method!r}] must be a mapping of configuration keys, "
                    f"got {overrides!r}"
                )
            training[method] = json.loads(json.dumps(dict(overrides)))
        object.__setattr__(self, "training", training)

    def training_overrides(self, method: str) -> dict[str, Any]:
        """The configuration overrides of ``method`` (a copy; empty when it has none)."""
        if method not in _METHODS:
            raise ValueError(f"unknown method {method!r}; expected one of {_METHODS}")
        return json.loads(json.dumps(dict(self.training.get(method, {}))))

    def validate_training(self, method: str | None = None) -> Profile:
        """Check the training overrides against the methods' settings classes (unknown keys,
        out-of-range values); ``method=None`` checks every method that has overrides.

        This imports the method modules (torch; SB3 for DDPG/PPO), so it is not done at
        construction. Returns ``self``.
        """

        methods = [method] if method is not None else list(self.training)
        for name in methods:
            overrides = self.training_overrides(name)
            try:
                config_from_mapping(name, overrides)
            except (TypeError, ValueError) as error:
                raise ValueError(f"profile {self.name!r}, training[{name!r}]: {error}") from None
        return self

    @property
    def runs_per_repeat(self) -> int:
        """Training runs of one repeat of one tuning: ``n_trials + top_k * n_seeds``."""
        return self.n_trials + self.top_k * self.n_seeds

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(dataclasses.asdict(self)))


#: The shipped profiles.
PROFILES: dict[str, Profile] = {
    "smoke": Profile(
        name="smoke",
        n_trials=2,
        top_k=1,
        n_seeds=1,
        repeats=1,
        n_startup_trials=2,
        training={
            "ds": {"epochs": 3, "patience": 2},
            "ddpg": {
                "total_steps": 256,
                "eval_freq": 128,
                "patience": 2,
                "learning_starts": 64,
                "buffer_size": 1000,
            },
            "ppo": {
                "total_steps": 256,
                "eval_freq": 128,
                "patience": 2,
                "n_steps": 128,
                "batch_size": 64,
                "n_epochs": 1,
            },
            "dqn": {
                "total_steps": 256,
                "eval_freq": 128,
                "patience": 2,
                "learning_starts": 64,
                "buffer_size": 1000,
                "target_update_interval": 64,
            },
        },
        description="tests and CI: the whole book in a few minutes",
    ),
    "quick": Profile(
        name="quick",
        n_trials=8,
        top_k=2,
        n_seeds=2,
        repeats=1,
        n_startup_trials=4,
        training={
            "ds": {"epochs": 300, "patience": 20},
            "ddpg": {"total_steps": 10_000, "patience": 5},
            "ppo": {"total_steps": 20_000, "patience": 5},
            # DQN (not in the paper): DDPG's length, both being off-policy with replay
            "dqn": {"total_steps": 10_000, "patience": 5},
        },
        description="a laptop: every experiment of the book in a few hours on 2 cores",
    ),
    "paper": Profile(
        name="paper",
        n_trials=50,
        top_k=5,
        n_seeds=5,
        repeats=3,
        n_startup_trials=10,
        training={},
        description="the paper's protocol (the book's *Methods and tuning protocol* chapter)",
    ),
}


def resolve_profile(profile: str | Profile = "quick", **overrides: Any) -> Profile:
    """A profile by name (or a :class:`Profile`), with some of its fields replaced.

    Args:
        profile: ``"smoke"``, ``"quick"``, ``"paper"`` or a :class:`Profile`.
        **overrides: fields of :class:`Profile` (``n_trials``, ``top_k``, ``n_seeds``,
            ``repeats``, ``n_startup_trials``, ``training``, ``name``, ``description``); ``None``
            values are ignored (convenient for optional CLI flags). ``training`` is merged per
            method into the profile's own overrides; ``n_startup_trials`` is capped at
            ``n_trials`` when only ``n_trials`` is given.

    Raises:
        ValueError: an unknown profile or field, or a bad value (named in the message).
    """
    if isinstance(profile, Profile):
        base = profile
    elif isinstance(profile, str):
        if profile not in PROFILES:
            raise ValueError(f"unknown profile {profile!r}; expected one of {sorted(PROFILES)}")
        base = PROFILES[profile]
    else:
        raise ValueError(f"profile must be a name or a Profile, got {profile!r}")
    overrides = {key: value for key, value in overrides.items() if value is not None}
    known = {item.name for item in dataclasses.fields(Profile)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(f"unknown profile field(s) {unknown}; known fields: {sorted(known)}")
    if "training" in overrides:
        extra = overrides.pop("training")
        if not isinstance(extra, Mapping):
            raise ValueError(f"profile training must map a method to overrides, got {extra!r}")
        merged = {method: dict(values) for method, values in base.training.items()}
        for method, values in extra.items():
            if not isinstance(values, Mapping):
                raise ValueError(
                    f"profile training[{method!r}] must be a mapping of configuration keys, "
                    f"got {values!r}"
                )
            merged.setdefault(method, {}).update(values)
        overrides["training"] = merged
    if "n_trials" in overrides and "n_startup_trials" not in overrides:
        n_trials = overrides["n_trials"]
        if isinstance(n_trials, int) and not isinstance(n_trials, bool) and n_trials >= 1:
            overrides["n_startup_trials"] = min(base.n_startup_trials, n_trials)
    if "n_trials" in overrides and "top_k" not in overrides:
        n_trials = overrides["n_trials"]
        if isinstance(n_trials, int) and not isinstance(n_trials, bool) and n_trials >= 1:
            overrides["top_k"] = min(base.top_k, n_trials)
    return dataclasses.replace(base, **overrides)


def parse_override(text: str) -> tuple[str, str, Any]:
    """Parse a command-line training override ``METHOD.KEY=VALUE`` (VALUE as JSON when it
    parses, else as a string): ``"ddpg.total_steps=5000"`` -> ``("ddpg", "total_steps", 5000)``.
    """
    if "=" not in text or "." not in text.split("=", 1)[0]:
        raise ValueError(
            f"override {text!r}: expected METHOD.KEY=VALUE, e.g. ddpg.total_steps=5000"
        )
    target, raw = text.split("=", 1)
    method, key = target.split(".", 1)
    if method not in _METHODS or not key:
        raise ValueError(f"override {text!r}: METHOD must be one of {_METHODS}, KEY non-empty")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"override {text!r}: the value must be finite")
    return method, key, value
