"""The coordination experiment: every method over seeds, the comparison table and the claims.

``coordination_experiment(profile)`` trains each method of
:data:`~deepstock.beyond.coordination.training.METHODS` on the same instances with several
seeds, measures test profit, learning curves and the coordination behaviours, and checks the
claims of the summary of Jiang et al. (2025) on them (:func:`check_coordination_claims`).

**Storage.** The runs of a profile are one study record of the result store,
``data/results/<profile>/studies/coordination.json`` (:meth:`ResultStore.put_study`, written
atomically after every run, so an interrupted experiment resumes with the runs it has). The
record holds the resolved model and training configurations; when they differ from the
profile's current ones the stored runs are ignored and recomputed. The committed ``quick``
record lets the book render without training.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from deepstock.beyond.coordination.model import JointInstances, JointModelConfig, generate_instances
from deepstock.beyond.coordination.training import (
    METHODS,
    TrainingConfig,
    steps_to_fraction,
    train_method,
)
from deepstock.core.checks import check_choice, check_int
from deepstock.model.simulator import resolve_device
from deepstock.results.store import ResultStore, code_version

__all__ = [
    "CLAIMS",
    "COORDINATION_PROFILES",
    "STUDY_NAME",
    "CoordinationClaim",
    "CoordinationProfile",
    "behaviour_table",
    "check_coordination_claims",
    "claims_table",
    "comparison_table",
    "curves_frame",
    "coordination_experiment",
    "experiment_splits",
    "run_coordination",
    "runs_frame",
]

#: The study record's name in the result store.
STUDY_NAME = "coordination"

#: The demand-smoothing claim holds when the demand-rate CV is this share below the season's.
SMOOTHING_MARGIN = 0.05

#: Version of the study record's layout; another version is recomputed.
RECORD_FORMAT = 1


@dataclass(frozen=True)
class CoordinationProfile:
    """The budget of the coordination experiment at one run profile.

    Attributes:
        name: ``"smoke"``, ``"quick"`` or ``"paper"``.
        model: the joint model.
        training: how every method trains.
        n_seeds: training seeds per method (seeds ``0 .. n_seeds - 1``).
        n_train, n_val, n_test: instances per split.
        data_seed: seed of the instances (the splits use ``data_seed``, ``+1``, ``+2``).
    """

    name: str
    model: JointModelConfig
    training: TrainingConfig
    n_seeds: int
    n_train: int
    n_val: int
    n_test: int
    data_seed: int = 2025

    def __post_init__(self) -> None:
        check_int("n_seeds", self.n_seeds, 1)
        for key in ("n_train", "n_val", "n_test"):
            check_int(key, getattr(self, key), 1)
        check_int("data_seed", self.data_seed, 0)
        if self.training.batch_size > self.n_train:
            raise ValueError(
                f"training batch_size ({self.training.batch_size}) must be <= n_train "
                f"({self.n_train})"
            )

    def identity(self) -> dict[str, Any]:
        """What determines the runs' numbers (recorded with them, compared on reading)."""
        return {
            "model": self.model.to_dict(),
            "training": self.training.to_dict(),
            "n_train": self.n_train,
            "n_val": self.n_val,
            "n_test": self.n_test,
            "data_seed": self.data_seed,
        }


#: The profiles: ``smoke`` (seconds, for tests), ``quick`` (the book's; a few minutes on a
#: laptop core), ``paper`` (ten products, longer training, more seeds).
COORDINATION_PROFILES: dict[str, CoordinationProfile] = {
    "smoke": CoordinationProfile(
        name="smoke",
        model=JointModelConfig(n_products=3, horizon=16),
        training=TrainingConfig(steps=6, batch_size=4, eval_every=3, hidden=[8]),
        n_seeds=2,
        n_train=8,
        n_val=4,
        n_test=8,
    ),
    "quick": CoordinationProfile(
        name="quick",
        model=JointModelConfig(n_products=5, horizon=42),
        training=TrainingConfig(steps=200, batch_size=16, eval_every=10),
        n_seeds=3,
        n_train=128,
        n_val=48,
        n_test=128,
    ),
    "paper": CoordinationProfile(
        name="paper",
        model=JointModelConfig(n_products=10, horizon=56),
        training=TrainingConfig(steps=1000, batch_size=32, eval_every=20, hidden=[64, 64]),
        n_seeds=5,
        n_train=256,
        n_val=64,
        n_test=256,
    ),
}


def experiment_splits(
    profile: CoordinationProfile, device: str | torch.device = "cpu"
) -> dict[str, JointInstances]:
    """The train, validation and test instances of ``profile`` (other assortments each)."""
    sizes = {"train": profile.n_train, "val": profile.n_val, "test": profile.n_test}
    return {
        name: generate_instances(profile.model, size, profile.data_seed + k, device)
        for k, (name, size) in enumerate(sizes.items())
    }


def _resolve(profile: str | CoordinationProfile, n_seeds: int | None) -> CoordinationProfile:
    if isinstance(profile, str):
        check_choice("profile", profile, tuple(COORDINATION_PROFILES))
        profile = COORDINATION_PROFILES[profile]
    if n_seeds is not None:
        check_int("n_seeds", n_seeds, 1)
        profile = dataclasses.replace(profile, n_seeds=n_seeds)
    return profile


def run_coordination(
    profile: str | CoordinationProfile = "quick",
    *,
    device: str = "cpu",
    store: ResultStore | None = None,
    n_seeds: int | None = None,
    methods: Sequence[str] = METHODS,
    progress: Callable[[str], None] | None = None,
) -> list[dict[str, Any]]:
    """Every ``(method, seed)`` run of ``profile``, read from ``store`` or computed (and stored).

    Args:
        profile: a name of :data:`COORDINATION_PROFILES` or a profile.
        device: torch device of the runs.
        store: where the study record lives (default: the profile's store,
            ``data/results/<profile>/``).
        n_seeds: overrides the profile's number of seeds.
        methods: the methods to run.
        progress: called with one line per computed run.

    Returns:
        one :meth:`CoordinationRun.record` per run, in the order of ``methods`` then seeds.
    """
    profile = _resolve(profile, n_seeds)
    for method in methods:
        check_choice("method", method, METHODS)
    if store is None:
        store = ResultStore.for_profile(profile.name)
    device = str(resolve_device(device))
    identity = profile.identity()
    payload = store.get_study(STUDY_NAME)
    stored: dict[tuple[str, int], dict[str, Any]] = {}
    if payload and payload.get("format") == RECORD_FORMAT and payload.get("identity") == identity:
        stored = {(run["method"], int(run["seed"])): run for run in payload.get("runs", [])}
    splits: dict[str, JointInstances] | None = None
    wanted = [
        (method, seed)
        for method in methods
        for seed in range(1 if method == "rule_based" else profile.n_seeds)
    ]
    absent = [run for run in wanted if run not in stored]
    if absent:  # a stored-only store: an error that counts them, before anything trains
        method, seed = absent[0]
        store.require_stored(
            f"coordination runs (first: {method} seed {seed})", len(absent), len(wanted)
        )
    runs = []
    for method in methods:
        # the rule-based pair does not depend on the seed: one run
        for seed in range(1 if method == "rule_based" else profile.n_seeds):
            if (method, seed) not in stored:
                if splits is None:
                    splits = experiment_splits(profile, device)
                run = train_method(method, splits, profile.training, seed=seed)
                stored[(method, seed)] = {**run.record(), "device": device}
                store.put_study(
                    STUDY_NAME,
                    {
                        "format": RECORD_FORMAT,
                        "identity": identity,
                        "code_version": code_version(),
                        "runs": list(stored.values()),
                    },
                )
                if progress is not None:
                    progress(
                        f"{method} seed {seed}: test profit {run.test_profit:.2f} "
                        f"({run.wall_time_s:.0f} s)"
                    )
            runs.append(stored[(method, seed)])
    return runs


# ---------------------------------------------------------------------- tables
_BEHAVIOURS = (
    "exposure_stock_corr",
    "target_exposure_corr",
    "priority_corr",
    "demand_cv_ratio",
    "exposure_cv",
)


def runs_frame(runs: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """One row per run: method, seed, val/test profit, steps to 95 %, parameters, wall time,
    device and the behaviours."""
    rows = []
    for run in runs:
        rows.append(
            {
                "method": run["method"],
                "seed": int(run["seed"]),
                "val_profit": float(run["val_profit"]),
                "test_profit": float(run["test_profit"]),
                "steps_to_95": steps_to_fraction(
                    np.asarray(run["curve_steps"]), np.asarray(run["curve_profit"], dtype=float)
                )
                if len(run["curve_steps"]) > 1
                else math.nan,
                "n_parameters": int(run["n_parameters"]),
                "wall_time_s": float(run["wall_time_s"]),
                "device": str(run.get("device", "cpu")),
                **{key: float(run["behaviours"][key]) for key in _BEHAVIOURS},
            }
        )
    return pd.DataFrame(rows)


def curves_frame(runs: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """The learning curves in long form: method, seed, step, val_profit."""
    rows = [
        {"method": run["method"], "seed": int(run["seed"]), "step": int(s), "val_profit": float(v)}
        for run in runs
        for s, v in zip(run["curve_steps"], run["curve_profit"], strict=True)
    ]
    return pd.DataFrame(rows, columns=["method", "seed", "step", "val_profit"])


def _curve_spread(curves: pd.DataFrame, method: str) -> float:
    """Mean over the second half of training of the across-seed std of validation profit."""
    mine = curves[curves["method"] == method]
    if mine["step"].max() == 0 or mine["seed"].nunique() < 2:
        return math.nan
    late = mine[mine["step"] >= mine["step"].max() / 2]
    return float(late.groupby("step")["val_profit"].std().mean())


def comparison_table(runs: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """Methods x profit mean and spread, efficiency and stability (one row per method).

    Columns: ``test_profit_mean`` and ``test_profit_std`` (over seeds, money/day),
    ``steps_to_95_mean`` (efficiency: steps until 95 % of the curve's final gain),
    ``curve_spread`` (stability: across-seed std of validation profit over the second half of
    training), ``n_parameters``, ``wall_time_s_mean``, ``seeds``.
    """
    frame = runs_frame(runs)
    curves = curves_frame(runs)
    rows = []
    for method, part in frame.groupby("method", sort=False):
        rows.append(
            {
                "method": method,
                "test_profit_mean": part["test_profit"].mean(),
                "test_profit_std": part["test_profit"].std() if len(part) > 1 else math.nan,
                "steps_to_95_mean": part["steps_to_95"].mean(),
                "curve_spread": _curve_spread(curves, method),
                "n_parameters": int(part["n_parameters"].iloc[0]),
                "wall_time_s_mean": part["wall_time_s"].mean(),
                "seeds": len(part),
            }
        )
    return pd.DataFrame(rows)


def behaviour_table(runs: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """Per method, the mean and std over seeds of each behaviour (columns ``<name>_mean``,
    ``<name>_std``)."""
    frame = runs_frame(runs)
    rows = []
    for method, part in frame.groupby("method", sort=False):
        row: dict[str, Any] = {"method": method}
        for key in _BEHAVIOURS:
            row[f"{key}_mean"] = part[key].mean()
            row[f"{key}_std"] = part[key].std() if part[key].notna().sum() > 1 else math.nan
        rows.append(row)
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------- claims
#: Claim id -> the summary's claim in words (our reading, checked by code).
CLAIMS: dict[str, str] = {
    "profit_beats_baselines": (
        "The multi-timescale multi-agent method earns more than the single-timescale and "
        "single-agent baselines"
    ),
    "coordination_beats_silos": (
        "Coordinated decisions earn more than decentralized ones (siloed departments, the "
        "rule-based pair)"
    ),
    "faster_learning": (
        "It learns faster than the single-timescale and single-agent baselines (fewer steps "
        "to 95 % of the final gain)"
    ),
    "more_stable": (
        "It converges more stably than the single-timescale and single-agent baselines "
        "(smaller spread of validation profit across seeds late in training)"
    ),
    "smaller_model": "The multi-agent structure needs fewer parameters than a single agent",
    "recommend_in_stock": "Recommendations rise with a product's stock (partial correlation > 0)",
    "restock_recommended": (
        "Order-up-to levels rise with a product's recommendation (partial correlation > 0)"
    ),
    "prefer_priority": (
        "Recommendations favour products of higher margin x marketing efficiency (Spearman > 0)"
    ),
    "demand_smoothing": (
        "The recommendation smooths demand over time (demand-rate CV at least 5 % below the "
        "season's)"
    ),
}


@dataclass(frozen=True)
class CoordinationClaim:
    """The outcome of checking one claim.

    Attributes:
        claim_id: a key of :data:`CLAIMS`.
        holding: cases in which the claim holds beyond the seed noise.
        cases: cases that could be checked.
        evidence: the numbers behind it.
    """

    claim_id: str
    holding: int
    cases: int
    evidence: str

    @property
    def claim(self) -> str:
        return CLAIMS[self.claim_id]

    @property
    def verdict(self) -> str:
        """``supported`` (every case), ``partly supported``, ``not supported`` or ``not
        testable`` (no case), as the verdict page of the paper's claims reads them."""
        if self.cases == 0:
            return "not testable"
        if self.holding == self.cases:
            return "supported"
        return "partly supported" if self.holding > 0 else "not supported"


def _stats(frame: pd.DataFrame, method: str, column: str) -> tuple[float, float, int]:
    values = frame.loc[frame["method"] == method, column].dropna()
    n = len(values)
    std = float(values.std()) if n > 1 else math.nan
    return (float(values.mean()) if n else math.nan, std, n)


def _beyond_noise(ours: tuple[float, float, int], other: tuple[float, float, int]) -> bool:
    """``ours`` larger than ``other`` by more than two standard errors of the difference
    (a single run counts with no spread)."""
    (m1, s1, n1), (m2, s2, n2) = ours, other
    # a single run (the rule-based pair, which does not depend on the seed) has no spread
    var1 = s1**2 / n1 if n1 > 1 else 0.0
    var2 = s2**2 / n2 if n2 > 1 else 0.0
    return m1 - m2 > 2.0 * math.sqrt(var1 + var2)


def _positive_beyond_noise(stats: tuple[float, float, int]) -> bool:
    mean, std, n = stats
    if n < 2:
        return mean > 0
    return mean > 2.0 * std / math.sqrt(n)


def _fmt(stats: tuple[float, float, int], digits: int = 2) -> str:
    mean, std, n = stats
    if not math.isfinite(mean):
        return "–"
    if n > 1 and math.isfinite(std):
        return f"{mean:.{digits}f} ± {std:.{digits}f}"
    return f"{mean:.{digits}f}"


_NAMES = {
    "multi_timescale": "multi-timescale",
    "single_timescale": "single-timescale",
    "single_agent": "single agent",
    "siloed": "siloed",
    "rule_based": "rule-based",
}


def check_coordination_claims(runs: Sequence[dict[str, Any]]) -> list[CoordinationClaim]:
    """Check every claim of :data:`CLAIMS` on the runs of :func:`run_coordination`.

    A comparison case holds when the multi-timescale method is better by more than two
    standard errors of the difference over seeds (otherwise the seeds cannot tell the two
    apart); a sign case holds when the seed mean is beyond two standard errors of zero. The
    evidence gives mean ± std over seeds.
    """
    frame = runs_frame(runs)
    ours = "multi_timescale"
    present = set(frame["method"])
    checks = []

    def compare(claim_id: str, column: str, others: Sequence[str], larger: bool) -> None:
        holding, cases, parts = 0, 0, []
        mine = _stats(frame, ours, column)
        sign = 1.0 if larger else -1.0
        for other in others:
            theirs = _stats(frame, other, column)
            if other not in present or not (math.isfinite(mine[0]) and math.isfinite(theirs[0])):
                continue
            cases += 1
            flipped = (sign * mine[0], mine[1], mine[2])
            ok = _beyond_noise(flipped, (sign * theirs[0], theirs[1], theirs[2]))
            holding += ok
            parts.append(f"{_NAMES[other]} {_fmt(theirs)}" + ("" if ok else " (not beaten)"))
        evidence = f"multi-timescale {_fmt(mine)}; " + ", ".join(parts) if cases else "no runs"
        checks.append(CoordinationClaim(claim_id, holding, cases, evidence))

    baselines = ("single_timescale", "single_agent")
    compare("profit_beats_baselines", "test_profit", baselines, larger=True)
    compare("coordination_beats_silos", "test_profit", ("siloed", "rule_based"), larger=True)
    compare("faster_learning", "steps_to_95", baselines, larger=False)

    curves = curves_frame(runs)
    spreads = {method: _curve_spread(curves, method) for method in (ours, *baselines)}
    cases = [m for m in baselines if math.isfinite(spreads[m]) and math.isfinite(spreads[ours])]
    holding = sum(spreads[ours] < spreads[m] for m in cases)
    evidence = "; ".join(f"{_NAMES[m]} {spreads[m]:.2f}" for m in (ours, *baselines))
    checks.append(CoordinationClaim("more_stable", holding, len(cases), evidence))

    sizes = {m: _stats(frame, m, "n_parameters")[0] for m in (ours, "single_agent")}
    if all(math.isfinite(v) for v in sizes.values()):
        holding = int(sizes[ours] < sizes["single_agent"])
        evidence = f"multi-agent {sizes[ours]:.0f}, single agent {sizes['single_agent']:.0f}"
        checks.append(CoordinationClaim("smaller_model", holding, 1, evidence))
    else:
        checks.append(CoordinationClaim("smaller_model", 0, 0, "no runs"))

    def sign_claim(claim_id: str, column: str, positive: bool, control: str = "siloed") -> None:
        mine = _stats(frame, ours, column)
        if not math.isfinite(mine[0]):
            checks.append(CoordinationClaim(claim_id, 0, 0, "no runs"))
            return
        value = mine if positive else (-mine[0], mine[1], mine[2])
        ok = _positive_beyond_noise(value)
        evidence = f"multi-timescale {_fmt(mine)}"
        other = _stats(frame, control, column)
        if math.isfinite(other[0]):
            evidence += f"; {_NAMES[control]} {_fmt(other)}"
        checks.append(CoordinationClaim(claim_id, int(ok), 1, evidence))

    sign_claim("recommend_in_stock", "exposure_stock_corr", positive=True)
    sign_claim("restock_recommended", "target_exposure_corr", positive=True)
    sign_claim("prefer_priority", "priority_corr", positive=True, control="rule_based")
    # smoothing: the CV ratio below 1 - SMOOTHING_MARGIN beyond noise (a ratio of 0.999 is
    # no smoothing a manager would see)
    frame["demand_cv_excess"] = frame["demand_cv_ratio"] - (1.0 - SMOOTHING_MARGIN)
    mine = _stats(frame, ours, "demand_cv_excess")
    if math.isfinite(mine[0]):
        ok = _positive_beyond_noise((-mine[0], mine[1], mine[2]))
        ratio = _stats(frame, ours, "demand_cv_ratio")
        evidence = (
            f"CV ratio, multi-timescale {_fmt(ratio, 3)}; 1 under any constant exposure; "
            f"smoothing needs < {1 - SMOOTHING_MARGIN:.2f}"
        )
        checks.append(CoordinationClaim("demand_smoothing", int(ok), 1, evidence))
    else:
        checks.append(CoordinationClaim("demand_smoothing", 0, 0, "no runs"))
    return checks


def claims_table(checks: Sequence[CoordinationClaim]) -> pd.DataFrame:
    """One row per claim: ``claim_id``, ``claim``, ``verdict``, ``score``, ``evidence``."""
    return pd.DataFrame(
        [
            {
                "claim_id": c.claim_id,
                "claim": c.claim,
                "verdict": c.verdict,
                "score": f"{c.holding} of {c.cases}" if c.cases else "–",
                "evidence": c.evidence,
            }
            for c in checks
        ],
        columns=["claim_id", "claim", "verdict", "score", "evidence"],
    )


def coordination_experiment(
    profile: str | CoordinationProfile = "quick",
    *,
    device: str = "cpu",
    store: ResultStore | None = None,
    n_seeds: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, pd.DataFrame]:
    """The whole experiment as tables: ``comparison``, ``behaviours``, ``claims``, ``runs``,
    ``curves`` (see the functions of the same names)."""
    runs = run_coordination(profile, device=device, store=store, n_seeds=n_seeds, progress=progress)
    return {
        "comparison": comparison_table(runs),
        "behaviours": behaviour_table(runs),
        "claims": claims_table(check_coordination_claims(runs)),
        "runs": runs_frame(runs),
        "curves": curves_frame(runs),
    }
