"""Does the evidence support the paper's claims? Each claim checked by code on the result tables.

Every check reads tables in the layout of :mod:`deepstock.paper.experiments` and returns a
:class:`ClaimCheck`: how many cases the claim covers, in how many it holds, and the numbers behind
it. The same checks run on the paper's reported numbers (:mod:`deepstock.paper.reported`, which uses the
same column names), so the book can put our verdict and the paper's own side by side without
typing a verdict by hand (:func:`verdict_table`).

=====================================  =================================================  ========
check                                  a case holds when                                  needs
=====================================  =================================================  ========
``base_improves_test_loss``            Base's test loss < None's, per (setting, method)   results
``base_gain_larger_with_few_trials``   None-minus-Base best-so-far validation loss is     curves
                                       larger after few trials than after all of them
``trials_to_beat_ds_drop``             DDPG/PPO need fewer trials to beat DS with Base    counts
``regularization_helps_drl_more``      DDPG's/PPO's test-gap reduction > DS's, per        results
                                       setting
``ds_overfits_setting3``               with Base in setting 3, DS beats DDPG on           results
                                       validation but not on test
``base_drl_beats_ds``                  with Base, DDPG or PPO has a lower test loss than  results
                                       DS, in some setting
``setting4_gap_shrinks_with_n``        the test gap averaged over H falls from each N to  setting4
                                       the next
``setting4_validation_below_test``     at the smallest N, the validation gap is more      setting4
                                       than ``margin`` points below the test gap, per H
=====================================  =================================================  ========

DQN is not in the paper. :func:`dqn_questions` asks the paper's two questions about Base of it
(does Base lower DQN's test loss; does it lower DQN's test gap by more than DS's), per setting;
its answers are a table beside the verdict, never counted in a claim (every claim's cases are
the paper's methods only).

A claim quantified over all its cases is *supported* when it holds in every case, *partly
supported* when in some, *not supported* when in none; a claim of existence ("in some setting")
is supported when it holds in at least one case. A case whose numbers are missing or not finite is
not counted; a claim with no countable case is *not testable*.

**The noise rule.** Where our results table carries the standard errors of its losses
(``val_loss_se``, ``test_loss_se``: the spread of the reported losses over repeats, or over the
winners' stage-2 seeds when there is one repeat), a comparison of two numbers counts only beyond
the noise: ``a`` is below ``b`` when ``b - a > NOISE_Z * sqrt(se_a^2 + se_b^2)`` (``NOISE_Z = 2``,
about a 95 % two-sided interval for a difference of independent means), above it when
``a - b`` exceeds the same, and *within the noise* otherwise. A case within the noise neither
holds nor fails: it is counted in :attr:`ClaimCheck.within_noise`, and a claim none of whose
cases holds is *inconclusive* (not "not supported") when some of them lie within the noise and
none goes against it. So an effect inside the noise is never "supported". The rule applies to
the checks of settings 1-3 that compare losses or gaps (``base_improves_test_loss``,
``regularization_helps_drl_more``, ``base_drl_beats_ds``, ``ds_overfits_setting3``); the paper's
tables report no spread, so its own numbers are compared as they stand.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from deepstock.paper.reported import (
    PAPER_TRIALS_TO_BEAT_DS,
    paper_setting4_table,
    paper_settings_table,
)

__all__ = [
    "CLAIMS",
    "NOISE_Z",
    "OUTCOMES",
    "PROXY_CLAIMS",
    "VERDICTS",
    "ClaimCheck",
    "check_base_drl_beats_ds",
    "check_base_gain_larger_with_few_trials",
    "check_base_improves_test_loss",
    "check_claims",
    "check_proxy_claims",
    "check_ds_overfits_setting3",
    "check_regularization_helps_drl_more",
    "check_setting4_gap_shrinks_with_n",
    "check_setting4_validation_below_test",
    "check_trials_to_beat_ds_drop",
    "case_agreement",
    "claims_frame",
    "dqn_questions",
    "paper_checks",
    "scoreboard",
    "verdict_table",
]

#: The possible verdicts, strongest first.
VERDICTS: tuple[str, ...] = (
    "supported",
    "partly supported",
    "inconclusive",
    "not supported",
    "not testable",
)

#: Standard errors a difference must exceed to count (the noise rule, module docstring).
NOISE_Z = 2.0

#: What a case of a claim can come to: the claim holds in it, goes against it beyond the noise,
#: or the comparison lies within the noise.
OUTCOMES: tuple[str, ...] = ("holds", "against", "within noise")


def _outcome(comparison: int) -> str:
    """:data:`OUTCOMES`'s name for a :func:`_compare` result (``+1``, ``-1`` or ``0``)."""
    return {1: "holds", -1: "against", 0: "within noise"}[comparison]


#: Claim id -> (takeaway of the paper it belongs to, the claim in words).
CLAIMS: dict[str, tuple[str, str]] = {
    "base_improves_test_loss": (
        "I",
        "Base lowers the test loss of each method (DDPG, PPO, DS) in each of settings 1-3",
    ),
    "base_gain_larger_with_few_trials": (
        "I",
        "Setting 1: Base's advantage in best-so-far validation loss is larger after a few "
        "tuning trials than after the whole search",
    ),
    "trials_to_beat_ds_drop": (
        "I",
        "Setting 1: with Base, DDPG and PPO need fewer tuning trials to surpass DS",
    ),
    "regularization_helps_drl_more": (
        "II",
        "Base lowers the test gap of DDPG and PPO by more than that of DS, in each setting",
    ),
    "base_drl_beats_ds": (
        "II",
        "With Base, DDPG or PPO reaches a lower test loss than DS in some setting",
    ),
    "ds_overfits_setting3": (
        "II",
        "Setting 3 (Base): DS has a lower validation loss than DDPG but a higher test loss",
    ),
    "setting4_gap_shrinks_with_n": (
        "DS overfits",
        "Setting 4: DS's test gap, averaged over the horizons H, shrinks as N grows",
    ),
    "setting4_validation_below_test": (
        "DS overfits",
        "Setting 4, smallest N: the validation gap is well below the test gap at each H",
    ),
}

#: The paper's claims about its Tmall Table 1 (its section on Alibaba's offline data), checked on
#: the project's Tmall-like proxy (:func:`check_proxy_claims`); id -> (takeaway, claim).
PROXY_CLAIMS: dict[str, tuple[str, str]] = {
    "proxy_both_best_ddpg": ("I", "Both gives the best DDPG (lowest test J of its four)"),
    "proxy_base_best_ds": ("I", "Base gives the best DS (lowest test J of its four)"),
    "proxy_ddpg_none_worse_than_ds_none": (
        "II",
        "Without regularization DDPG is worse than DS (test J)",
    ),
    "proxy_regularized_ddpg_beats_ds": (
        "II",
        "The best regularized DDPG beats every DS (test J)",
    ),
}

#: The paper's methods: the only ones a claim's cases are drawn from (DQN is not in the paper).
_METHOD_NAMES = {"ddpg": "DDPG", "ppo": "PPO", "ds": "DS"}
_SETTING_COLUMNS = ("setting", "method", "regularization")


@dataclass(frozen=True)
class ClaimCheck:
    """The outcome of checking one claim.

    Attributes:
        claim_id: a key of :data:`CLAIMS`.
        holding: cases in which the claim holds.
        cases: cases that could be checked (numbers present and finite).
        quantifier: ``"all"`` (the claim is about every case) or ``"any"`` (about some case).
        evidence: the numbers behind the verdict, one short sentence per case group.
        within_noise: cases whose comparison lies within the noise (counted in ``cases``,
            not in ``holding``; see the noise rule in the module docstring).
        outcomes: each counted case by name (``"PPO in setting 1"``), in order, with its
            outcome: one of :data:`OUTCOMES` (``"holds"``, ``"against"``, ``"within noise"``).
            The same check on the paper's numbers names its cases the same way, so the two can
            be compared case by case (:func:`case_agreement`). Empty for a check built by hand.
    """

    claim_id: str
    holding: int
    cases: int
    quantifier: str
    evidence: str
    within_noise: int = 0
    outcomes: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.claim_id not in CLAIMS and self.claim_id not in PROXY_CLAIMS:
            known = sorted(CLAIMS) + sorted(PROXY_CLAIMS)
            raise ValueError(f"claim_id must be one of {known}, got {self.claim_id!r}")
        if self.quantifier not in ("all", "any"):
            raise ValueError(f"quantifier must be 'all' or 'any', got {self.quantifier!r}")
        if not 0 <= self.holding <= self.cases:
            raise ValueError(
                f"holding must be in [0, cases={self.cases}], got {self.holding} "
                f"(claim {self.claim_id!r})"
            )
        if not 0 <= self.within_noise <= self.cases - self.holding:
            raise ValueError(
                f"within_noise must be in [0, cases - holding = {self.cases - self.holding}], "
                f"got {self.within_noise} (claim {self.claim_id!r})"
            )
        if self.outcomes:
            unknown = sorted(set(self.outcomes.values()) - set(OUTCOMES))
            if unknown:
                raise ValueError(f"outcomes must be among {OUTCOMES}, got {unknown}")
            counted = [list(self.outcomes.values()).count(o) for o in OUTCOMES]
            if counted != [
                self.holding,
                self.cases - self.holding - self.within_noise,
                self.within_noise,
            ]:
                raise ValueError(
                    f"outcomes {self.outcomes} do not add up to holding={self.holding}, "
                    f"cases={self.cases}, within_noise={self.within_noise} "
                    f"(claim {self.claim_id!r})"
                )

    @property
    def takeaway(self) -> str:
        return {**CLAIMS, **PROXY_CLAIMS}[self.claim_id][0]

    @property
    def claim(self) -> str:
        return {**CLAIMS, **PROXY_CLAIMS}[self.claim_id][1]

    @property
    def verdict(self) -> str:
        """One of :data:`VERDICTS`."""
        if self.cases == 0:
            return "not testable"
        against = self.cases - self.holding - self.within_noise
        if self.holding == 0:
            # an existence claim needs one case beyond the noise; a claim about every case is
            # refuted by one case against it beyond the noise
            possible = self.within_noise and (self.quantifier == "any" or not against)
            return "inconclusive" if possible else "not supported"
        if self.quantifier == "any" or self.holding == self.cases:
            return "supported"
        return "partly supported"

    @property
    def score(self) -> str:
        """``"holding of cases"`` (and how many lie within the noise), or ``"–"`` when nothing
        could be checked."""
        if not self.cases:
            return "–"
        noise = f", {self.within_noise} within noise" if self.within_noise else ""
        return f"{self.holding} of {self.cases}{noise}"


# ---------------------------------------------------------------------- helpers
def _require(table: pd.DataFrame, name: str, columns: Sequence[str], producer: str) -> None:
    if not isinstance(table, pd.DataFrame):
        raise ValueError(f"{name} must be a pandas DataFrame ({producer}), got {type(table)}")
    missing = [column for column in columns if column not in table.columns]
    if missing:
        raise ValueError(
            f"{name} lacks the column(s) {missing}; expected the layout of {producer} "
            f"(has {list(table.columns)})"
        )


def _finite(*values: Any) -> bool:
    try:
        return all(math.isfinite(float(value)) for value in values)
    except (TypeError, ValueError):  # pd.NA, None, text
        return False


def _indexed(results: pd.DataFrame, name: str) -> pd.DataFrame:
    """``results`` indexed by (setting, method, regularization), refusing duplicate rows."""
    _require(
        results,
        name,
        (*_SETTING_COLUMNS, "val_loss", "test_loss", "test_gap_pct"),
        "deepstock.paper.experiments.settings_comparison()['results']",
    )
    duplicated = results.duplicated(list(_SETTING_COLUMNS))
    if duplicated.any():
        rows = results.loc[duplicated, list(_SETTING_COLUMNS)].to_dict("records")
        raise ValueError(f"{name} has more than one row for {rows}")
    return results.set_index(list(_SETTING_COLUMNS))


def _settings(table: pd.DataFrame) -> list[str]:
    return sorted(table.index.get_level_values("setting").unique())


def _label(setting: str) -> str:
    return setting.replace("setting", "setting ")


def _value(table: pd.DataFrame, key: tuple[str, str, str], column: str) -> float:
    """The value, or NaN when the row is missing."""
    if key not in table.index:
        return math.nan
    return float(table.loc[key, column])


def _se(table: pd.DataFrame, key: tuple[str, str, str], column: str) -> float:
    """The standard error of ``column`` (its ``<column>_se``; a gap's from its loss's), or 0
    when the table carries none (the paper's tables: numbers compared as they stand)."""
    if key not in table.index:
        return 0.0
    if f"{column}_se" in table.columns:
        value = float(table.loc[key, f"{column}_se"])
    elif column.endswith("_gap_pct"):
        loss = column.replace("_gap_pct", "_loss")
        if f"{loss}_se" not in table.columns:
            return 0.0
        # gap = 100 (loss - benchmark) / benchmark: its error is the loss's, scaled
        benchmark = float(table.loc[key, loss]) / (1.0 + float(table.loc[key, column]) / 100.0)
        value = 100.0 * float(table.loc[key, f"{loss}_se"]) / benchmark
    else:
        return 0.0
    return value if math.isfinite(value) else 0.0


def _compare(difference: float, noise: float) -> int:
    """``+1`` when ``difference > NOISE_Z * noise``, ``-1`` when below ``-NOISE_Z * noise``, ``0``
    within the noise (with no noise, a tie counts against: ``-1``)."""
    bound = NOISE_Z * noise
    if difference > bound:
        return 1
    if difference < -bound or (bound == 0 and difference == 0):
        return -1
    return 0


def _noise(*standard_errors: float) -> float:
    return math.sqrt(sum(se * se for se in standard_errors))


def _not_testable(claim_id: str, quantifier: str, why: str) -> ClaimCheck:
    return ClaimCheck(claim_id, 0, 0, quantifier, why)


# ---------------------------------------------------------------------- settings 1-3
def check_base_improves_test_loss(results: pd.DataFrame) -> ClaimCheck:
    """Base's test loss is below None's, for each (setting, method) that has both.

    Args:
        results: one row per (setting, method, regularization) with ``test_loss`` (the layout
            of :func:`deepstock.paper.experiments.settings_comparison` and of
            :func:`deepstock.paper.reported.paper_settings_table`).
    """
    table = _indexed(results, "results")
    holding, cases, within, failures, noisy = 0, 0, 0, [], []
    outcomes: dict[str, str] = {}
    for setting in _settings(table):
        for method in _METHOD_NAMES:
            keys = (setting, method, "none"), (setting, method, "base")
            none, base = (_value(table, key, "test_loss") for key in keys)
            if not _finite(none, base):
                continue
            cases += 1
            noise = _noise(*(_se(table, key, "test_loss") for key in keys))
            outcome = _compare(none - base, noise)
            outcomes[f"{_METHOD_NAMES[method]} in {_label(setting)}"] = _outcome(outcome)
            text = (
                f"{_METHOD_NAMES[method]} in {_label(setting)} ({none:.4f} with None, "
                f"{base:.4f} with Base" + (f", noise {NOISE_Z * noise:.4f}" if noise else "") + ")"
            )
            if outcome > 0:
                holding += 1
            elif outcome == 0:
                within += 1
                noisy.append(text)
            else:
                failures.append(text)
    if cases == 0:
        return _not_testable("base_improves_test_loss", "all", "no (None, Base) pair of results")
    evidence = f"Base has the lower test loss in {holding} of {cases} cases"
    if noisy:
        evidence += "; within the noise: " + "; ".join(noisy)
    evidence += ("; not in: " + "; ".join(failures) + ".") if failures else "."
    return ClaimCheck("base_improves_test_loss", holding, cases, "all", evidence, within, outcomes)


def check_regularization_helps_drl_more(results: pd.DataFrame) -> ClaimCheck:
    """Base lowers the test gap of DDPG and of PPO by more than DS's, in each setting.

    The reduction is ``test_gap_pct(None) - test_gap_pct(Base)`` in percentage points; within a
    setting it ranks the methods as the reduction of the test loss does (one benchmark). Cases:
    (setting, DDPG) and (setting, PPO).
    """
    table = _indexed(results, "results")
    holding, cases, within, parts = 0, 0, 0, []
    outcomes: dict[str, str] = {}
    for setting in _settings(table):

        def reduction(method: str, setting: str = setting) -> float:
            return _value(table, (setting, method, "none"), "test_gap_pct") - _value(
                table, (setting, method, "base"), "test_gap_pct"
            )

        def reduction_se(method: str, setting: str = setting) -> float:
            return _noise(
                *(_se(table, (setting, method, r), "test_gap_pct") for r in ("none", "base"))
            )

        ds = reduction("ds")
        if not _finite(ds):
            continue
        shown = []
        for method in ("ddpg", "ppo"):
            own = reduction(method)
            if not _finite(own):
                continue
            cases += 1
            noise = _noise(reduction_se(method), reduction_se("ds"))
            outcome = _compare(own - ds, noise)
            outcomes[f"{_METHOD_NAMES[method]} in {_label(setting)}"] = _outcome(outcome)
            holding += outcome > 0
            within += outcome == 0
            mark = " (within noise)" if outcome == 0 else ""
            shown.append(f"{_METHOD_NAMES[method]} {own:+.2f}{mark}")
        if shown:
            parts.append(f"{_label(setting)}: {', '.join(shown)}, DS {ds:+.2f}")
    if cases == 0:
        return _not_testable(
            "regularization_helps_drl_more", "all", "no setting with DS and DDPG/PPO results"
        )
    evidence = (
        f"Reduction of the test gap by Base, in points: {'; '.join(parts)}. "
        f"Larger than DS's in {holding} of {cases} cases"
        + (f", {within} within the noise." if within else ".")
    )
    return ClaimCheck(
        "regularization_helps_drl_more", holding, cases, "all", evidence, within, outcomes
    )


def check_base_drl_beats_ds(results: pd.DataFrame) -> ClaimCheck:
    """With Base, the better of DDPG and PPO has a lower test loss than DS, in some setting."""
    table = _indexed(results, "results")
    holding, cases, within, winners, others, noisy = 0, 0, 0, [], [], []
    outcomes: dict[str, str] = {}
    for setting in _settings(table):
        ds = _value(table, (setting, "ds", "base"), "test_loss")
        drl = {
            method: _value(table, (setting, method, "base"), "test_loss")
            for method in ("ddpg", "ppo")
        }
        drl = {method: loss for method, loss in drl.items() if _finite(loss)}
        if not drl or not _finite(ds):
            continue
        cases += 1
        best = min(drl, key=drl.get)
        noise = _noise(
            _se(table, (setting, best, "base"), "test_loss"),
            _se(table, (setting, "ds", "base"), "test_loss"),
        )
        outcome = _compare(ds - drl[best], noise)
        outcomes[_label(setting)] = _outcome(outcome)
        text = f"{_label(setting)} ({_METHOD_NAMES[best]} {drl[best]:.4f}, DS {ds:.4f})"
        if outcome > 0:
            holding += 1
            winners.append(text)
        elif outcome == 0:
            within += 1
            noisy.append(text)
        else:
            others.append(text)
    if cases == 0:
        return _not_testable("base_drl_beats_ds", "any", "no setting with Base results")
    parts = []
    if winners:
        parts.append(f"DDPG or PPO with Base beats DS with Base in: {'; '.join(winners)}.")
    if others:
        parts.append(f"DS stays ahead in: {'; '.join(others)}.")
    if noisy:
        parts.append(f"Within the noise: {'; '.join(noisy)}.")
    evidence = " ".join(parts)
    return ClaimCheck("base_drl_beats_ds", holding, cases, "any", evidence, within, outcomes)


def check_ds_overfits_setting3(results: pd.DataFrame) -> ClaimCheck:
    """Setting 3 with Base: DS's validation loss is below DDPG's, its test loss above."""
    table = _indexed(results, "results")
    ds, ddpg = ("setting3", "ds", "base"), ("setting3", "ddpg", "base")
    ds_val, ds_test = _value(table, ds, "val_loss"), _value(table, ds, "test_loss")
    dd_val, dd_test = _value(table, ddpg, "val_loss"), _value(table, ddpg, "test_loss")
    if not _finite(ds_val, ds_test, dd_val, dd_test):
        return _not_testable("ds_overfits_setting3", "all", "no setting-3 Base results")
    val_noise = _noise(_se(table, ds, "val_loss"), _se(table, ddpg, "val_loss"))
    test_noise = _noise(_se(table, ds, "test_loss"), _se(table, ddpg, "test_loss"))
    below_on_val = _compare(dd_val - ds_val, val_noise)
    above_on_test = _compare(ds_test - dd_test, test_noise)
    holds = below_on_val > 0 and above_on_test > 0
    within = (
        not holds
        and min(below_on_val, above_on_test) == 0
        and -1
        not in (
            below_on_val,
            above_on_test,
        )
    )
    evidence = (
        f"Validation loss: DS {ds_val:.4f}, DDPG {dd_val:.4f}; "
        f"test loss: DS {ds_test:.4f}, DDPG {dd_test:.4f}"
        + (
            f" (noise {NOISE_Z * val_noise:.4f} and {NOISE_Z * test_noise:.4f})."
            if val_noise or test_noise
            else "."
        )
    )
    outcome = "holds" if holds else ("within noise" if within else "against")
    return ClaimCheck(
        "ds_overfits_setting3", int(holds), 1, "all", evidence, int(within), {"setting 3": outcome}
    )


def dqn_questions(results: pd.DataFrame, method: str = "dqn") -> pd.DataFrame:
    """The paper's questions about Base asked of DQN (not in the paper), one row per setting.

    Args:
        results: the layout of :func:`deepstock.paper.experiments.settings_comparison`
            (``results``), with rows for ``method`` and for DS, None and Base.
        method: the method asked about (``"dqn"``).

    Returns:
        One row per setting that has ``method`` with None and Base: ``none_test_loss``,
        ``base_test_loss``, ``base_helps`` (Base's test loss is lower), ``gap_reduction_pts``
        (``test_gap_pct`` None minus Base, points), ``ds_gap_reduction_pts`` (DS's), and
        ``helps_more_than_ds`` (the first reduction is larger; missing when DS lacks a row).
        Empty (with these columns) when no setting has both rows.
    """
    table = _indexed(results, "results")
    rows = []
    for setting in _settings(table):
        none = _value(table, (setting, method, "none"), "test_loss")
        base = _value(table, (setting, method, "base"), "test_loss")
        if not _finite(none, base):
            continue

        def reduction(name: str, setting: str = setting) -> float:
            return _value(table, (setting, name, "none"), "test_gap_pct") - _value(
                table, (setting, name, "base"), "test_gap_pct"
            )

        own, ds = reduction(method), reduction("ds")
        rows.append(
            {
                "setting": setting,
                "none_test_loss": none,
                "base_test_loss": base,
                "base_helps": bool(base < none),
                "gap_reduction_pts": own,
                "ds_gap_reduction_pts": ds,
                "helps_more_than_ds": bool(own > ds) if _finite(own, ds) else pd.NA,
            }
        )
    columns = [
        "setting",
        "none_test_loss",
        "base_test_loss",
        "base_helps",
        "gap_reduction_pts",
        "ds_gap_reduction_pts",
        "helps_more_than_ds",
    ]
    return pd.DataFrame(rows, columns=columns)


# ---------------------------------------------------------------------- Figure 2
def check_trials_to_beat_ds_drop(counts: pd.DataFrame) -> ClaimCheck:
    """DDPG and PPO need fewer stage-1 trials to surpass DS with Base than without.

    Args:
        counts: one row per (method, regularization) with ``trials`` (missing when the method
            never surpassed DS) and ``budget`` (the trials searched), the layout of
            :func:`deepstock.paper.experiments.trials_to_beat_ds`.

    A method that never surpasses DS counts as needing more than the budget. A method that
    surpasses DS in neither case leaves its case undecided (not counted).
    """
    _require(
        counts,
        "counts",
        ("method", "regularization", "trials", "budget"),
        "deepstock.paper.experiments.trials_to_beat_ds()",
    )
    table = counts.set_index(["method", "regularization"])
    holding, cases, parts = 0, 0, []
    outcomes: dict[str, str] = {}

    def shown(key: tuple[str, str]) -> str:
        trials = table.loc[key, "trials"]
        return f"{int(trials)}" if _finite(trials) else f"none in {int(table.loc[key, 'budget'])}"

    for method in ("ddpg", "ppo"):
        keys = [(method, "none"), (method, "base")]
        if any(key not in table.index for key in keys):
            continue
        none, base = (table.loc[key, "trials"] for key in keys)
        text = f"{_METHOD_NAMES[method]} {shown(keys[0])} → {shown(keys[1])}"
        if not _finite(none) and not _finite(base):
            parts.append(text + " (undecided)")
            continue
        cases += 1
        holds = bool(_finite(base) and (not _finite(none) or float(base) < float(none)))
        holding += holds
        outcomes[_METHOD_NAMES[method]] = "holds" if holds else "against"
        parts.append(text)
    if cases == 0:
        why = "neither DDPG nor PPO surpassed DS within the budget"
        return _not_testable("trials_to_beat_ds_drop", "all", f"{why}: {'; '.join(parts)}.")
    evidence = f"Trials to surpass DS, None → Base: {'; '.join(parts)}."
    return ClaimCheck("trials_to_beat_ds_drop", holding, cases, "all", evidence, 0, outcomes)


def check_base_gain_larger_with_few_trials(
    curves: pd.DataFrame, *, setting: str = "setting1", few_trials: int | None = None
) -> ClaimCheck:
    """Base's advantage in best-so-far validation loss is larger after few trials than at the end.

    For each method the advantage after ``n`` trials is ``best(None, n) - best(Base, n)`` (loss
    units, averaged over repeats). The case holds when the advantage after ``few_trials`` trials
    exceeds the advantage after the whole budget.

    Args:
        curves: ``method``, ``regularization``, ``n_trials``, ``best_val_loss`` (and optionally
            ``setting`` and ``repeat``): the ``curves`` of
            :func:`deepstock.paper.experiments.settings_comparison`.
        setting: the setting to read when ``curves`` has a ``setting`` column.
        few_trials: the "few trials" point; default a quarter of the budget (at least 1).
    """
    _require(
        curves,
        "curves",
        ("method", "regularization", "n_trials", "best_val_loss"),
        "deepstock.paper.experiments.settings_comparison()['curves']",
    )
    if few_trials is not None and (
        isinstance(few_trials, bool) or not isinstance(few_trials, int) or few_trials < 1
    ):
        raise ValueError(f"few_trials must be an integer >= 1, got {few_trials!r}")
    if "setting" in curves.columns:
        curves = curves[curves["setting"] == setting]
    mean = curves.groupby(["method", "regularization", "n_trials"])["best_val_loss"].mean()
    holding, cases, parts = 0, 0, []
    outcomes: dict[str, str] = {}
    for method in _METHOD_NAMES:
        try:
            none, base = mean.loc[(method, "none")], mean.loc[(method, "base")]
        except KeyError:
            continue
        common = none.index.intersection(base.index)
        if common.empty:
            continue
        budget = int(common.max())
        few = max(1, budget // 4) if few_trials is None else few_trials
        if few >= budget or few not in common:
            continue
        early, late = none[few] - base[few], none[budget] - base[budget]
        if not _finite(early, late):
            continue
        cases += 1
        holding += bool(early > late)
        outcomes[_METHOD_NAMES[method]] = "holds" if early > late else "against"
        parts.append(
            f"{_METHOD_NAMES[method]} {early:+.4f} after {few}, {late:+.4f} after {budget}"
        )
    if cases == 0:
        return _not_testable(
            "base_gain_larger_with_few_trials",
            "all",
            "no method with None and Base curves longer than the few-trials point",
        )
    evidence = f"None minus Base, best validation loss: {'; '.join(parts)}."
    return ClaimCheck(
        "base_gain_larger_with_few_trials", holding, cases, "all", evidence, 0, outcomes
    )


# ---------------------------------------------------------------------- setting 4
def _setting4(results: pd.DataFrame) -> pd.DataFrame:
    _require(
        results,
        "setting4 results",
        ("n_skus", "horizon_periods", "val_gap_pct", "test_gap_pct"),
        "deepstock.paper.experiments.setting4()['results']",
    )
    duplicated = results.duplicated(["n_skus", "horizon_periods"])
    if duplicated.any():
        rows = results.loc[duplicated, ["n_skus", "horizon_periods"]].to_dict("records")
        raise ValueError(f"setting4 results has more than one row for {rows}")
    return results


def check_setting4_gap_shrinks_with_n(results: pd.DataFrame) -> ClaimCheck:
    """The test gap averaged over the horizons falls from each N to the next larger N.

    Only horizons present for every N are averaged, so each mean covers the same H. Cases: the
    consecutive pairs of N (two for N = 5, 10, 20).
    """
    table = _setting4(results)
    table = table[[_finite(v) for v in table["test_gap_pct"]]]
    skus = sorted(table["n_skus"].unique())
    horizons = (
        set.intersection(*(set(table.loc[table["n_skus"] == n, "horizon_periods"]) for n in skus))
        if skus
        else set()
    )
    if len(skus) < 2 or not horizons:
        return _not_testable(
            "setting4_gap_shrinks_with_n", "all", "fewer than two N with a common horizon"
        )
    common = table[table["horizon_periods"].isin(horizons)]
    means = common.groupby("n_skus")["test_gap_pct"].mean()
    outcomes = {
        f"N = {a} to {b}": "holds" if means[b] < means[a] else "against"
        for a, b in zip(skus, skus[1:], strict=False)
    }
    holding = list(outcomes.values()).count("holds")
    shown = ", ".join(f"{means[n]:.2f}% (N = {n})" for n in skus)
    evidence = f"Test gap averaged over H = {sorted(horizons)}: {shown}."
    return ClaimCheck(
        "setting4_gap_shrinks_with_n", holding, len(skus) - 1, "all", evidence, 0, outcomes
    )


def check_setting4_validation_below_test(
    results: pd.DataFrame, *, margin: float = 5.0
) -> ClaimCheck:
    """At the smallest N, the validation gap is more than ``margin`` points below the test gap.

    Args:
        results: the layout of :func:`deepstock.paper.experiments.setting4` (``results``).
        margin: how much lower, in percentage points, counts as "well below" (>= 0).

    Cases: the horizons H of the smallest N.
    """
    if not _finite(margin) or margin < 0:
        raise ValueError(f"margin must be a finite number >= 0 (percentage points), got {margin!r}")
    table = _setting4(results)
    if table.empty:
        return _not_testable("setting4_validation_below_test", "all", "no setting-4 results")
    smallest = int(table["n_skus"].min())
    rows = table[table["n_skus"] == smallest].sort_values("horizon_periods")
    holding, cases, differences = 0, 0, []
    outcomes: dict[str, str] = {}
    for _, row in rows.iterrows():
        if not _finite(row["val_gap_pct"], row["test_gap_pct"]):
            continue
        difference = float(row["test_gap_pct"]) - float(row["val_gap_pct"])
        cases += 1
        holding += difference > margin
        outcomes[f"H = {int(row['horizon_periods'])}"] = (
            "holds" if difference > margin else "against"
        )
        differences.append(f"{difference:+.1f} (H = {int(row['horizon_periods'])})")
    if cases == 0:
        return _not_testable(
            "setting4_validation_below_test", "all", f"no finite gaps for N = {smallest}"
        )
    evidence = (
        f"N = {smallest}, test gap minus validation gap, in points: {', '.join(differences)}; "
        f"more than {margin:g} in {holding} of {cases}."
    )
    return ClaimCheck(
        "setting4_validation_below_test", holding, cases, "all", evidence, 0, outcomes
    )


# ---------------------------------------------------------------------- all claims
def check_claims(
    results: pd.DataFrame | None = None,
    *,
    counts: pd.DataFrame | None = None,
    curves: pd.DataFrame | None = None,
    setting4_results: pd.DataFrame | None = None,
    missing: Mapping[str, str] | None = None,
    few_trials: int | None = None,
    margin: float = 5.0,
) -> list[ClaimCheck]:
    """Every claim of :data:`CLAIMS`, in its order, on whatever tables are given.

    Args:
        results: settings 1-3 (:func:`deepstock.paper.experiments.settings_comparison` ``results``).
        counts: Figure 2's trials to beat DS (:func:`deepstock.paper.experiments.trials_to_beat_ds`).
        curves: the best-so-far curves (``curves`` of the settings comparison).
        setting4_results: setting 4 (:func:`deepstock.paper.experiments.setting4` ``results``).
        missing: table name (``"results"``, ``"counts"``, ``"curves"``, ``"setting4_results"``)
            -> why it is absent, shown as the evidence of the claims that need it.
        few_trials: passed to :func:`check_base_gain_larger_with_few_trials`.
        margin: passed to :func:`check_setting4_validation_below_test` (percentage points).

    A claim whose table is ``None`` is *not testable*.
    """
    why = {
        "results": "no settings 1-3 results",
        "counts": "no trials-to-beat-DS counts",
        "curves": "no best-so-far curves",
        "setting4_results": "no setting-4 results",
        **dict(missing or {}),
    }

    def few_trials_check(curves: pd.DataFrame) -> ClaimCheck:
        return check_base_gain_larger_with_few_trials(curves, few_trials=few_trials)

    def validation_check(results: pd.DataFrame) -> ClaimCheck:
        return check_setting4_validation_below_test(results, margin=margin)

    checks = {
        "base_improves_test_loss": ("results", check_base_improves_test_loss),
        "base_gain_larger_with_few_trials": ("curves", few_trials_check),
        "trials_to_beat_ds_drop": ("counts", check_trials_to_beat_ds_drop),
        "regularization_helps_drl_more": ("results", check_regularization_helps_drl_more),
        "base_drl_beats_ds": ("results", check_base_drl_beats_ds),
        "ds_overfits_setting3": ("results", check_ds_overfits_setting3),
        "setting4_gap_shrinks_with_n": ("setting4_results", check_setting4_gap_shrinks_with_n),
        "setting4_validation_below_test": ("setting4_results", validation_check),
    }
    tables = {
        "results": results,
        "counts": counts,
        "curves": curves,
        "setting4_results": setting4_results,
    }
    out = []
    for claim_id in CLAIMS:
        table_name, check = checks[claim_id]
        table = tables[table_name]
        if table is None:
            quantifier = "any" if claim_id == "base_drl_beats_ds" else "all"
            out.append(_not_testable(claim_id, quantifier, why[table_name]))
        else:
            out.append(check(table))
    return out


# ---------------------------------------------------------------------- the Tmall-like proxy
def check_proxy_claims(results: pd.DataFrame) -> list[ClaimCheck]:
    """The paper's Table 1 claims (:data:`PROXY_CLAIMS`) on the proxy comparison's results.

    Args:
        results: :func:`deepstock.paper.experiments.proxy_comparison`'s ``results`` (``method``,
            ``regularization``, ``test_objective``); lower ``J`` is better.

    Each claim is one case; a claim whose rows are missing or not finite is *not testable*.
    """
    _require(
        results,
        "results",
        ("method", "regularization", "test_objective"),
        "deepstock.paper.experiments.proxy_comparison",
    )
    j = {
        (row.method, row.regularization): float(row.test_objective)
        for row in results.itertuples()
        if _finite(row.test_objective)
    }

    def of(method: str) -> dict[str, float]:
        return {reg: value for (m, reg), value in j.items() if m == method}

    def text(method: str, values: Mapping[str, float]) -> str:
        parts = [f"{reg.capitalize()} {value:.2f}" for reg, value in values.items()]
        return f"{_METHOD_NAMES[method]}: " + ", ".join(parts)

    checks = []
    for claim_id, method, expected in (
        ("proxy_both_best_ddpg", "ddpg", "both"),
        ("proxy_base_best_ds", "ds", "base"),
    ):
        values = of(method)
        if expected not in values or len(values) < 2:
            checks.append(_not_testable(claim_id, "all", f"no {method} results on the proxy"))
            continue
        best = min(values, key=values.get)
        checks.append(
            ClaimCheck(
                claim_id,
                int(best == expected),
                1,
                "all",
                f"Test J, {text(method, values)}; the best is {best.capitalize()}.",
            )
        )
    none_pair = (j.get(("ddpg", "none")), j.get(("ds", "none")))
    if None in none_pair:
        checks.append(_not_testable("proxy_ddpg_none_worse_than_ds_none", "all", "no None results"))
    else:
        checks.append(
            ClaimCheck(
                "proxy_ddpg_none_worse_than_ds_none",
                int(none_pair[0] > none_pair[1]),
                1,
                "all",
                f"Test J: DDPG None {none_pair[0]:.2f}, DS None {none_pair[1]:.2f}.",
            )
        )
    regularized = {reg: v for reg, v in of("ddpg").items() if reg != "none"}
    ds = of("ds")
    if not regularized or not ds:
        checks.append(
            _not_testable("proxy_regularized_ddpg_beats_ds", "all", "no DDPG or DS results")
        )
    else:
        best_ddpg = min(regularized, key=regularized.get)
        best_ds = min(ds, key=ds.get)
        checks.append(
            ClaimCheck(
                "proxy_regularized_ddpg_beats_ds",
                int(regularized[best_ddpg] < ds[best_ds]),
                1,
                "all",
                f"Best regularized DDPG ({best_ddpg.capitalize()}) {regularized[best_ddpg]:.2f}, "
                f"best DS ({best_ds.capitalize()}) {ds[best_ds]:.2f}.",
            )
        )
    return checks


def paper_checks() -> list[ClaimCheck]:
    """The same checks on the paper's reported numbers (:mod:`deepstock.paper.reported`).

    The paper's Figure 2 curves are published only as a plot, so the few-trials claim is not
    testable from its numbers; its trials-to-beat-DS counts are, with its budget of 50 trials.
    """

    counts = pd.DataFrame(
        [
            {"method": m, "regularization": r, "trials": n, "budget": 50}
            for (m, r), n in PAPER_TRIALS_TO_BEAT_DS.items()
        ]
    )
    return check_claims(
        paper_settings_table(),
        counts=counts,
        curves=None,
        setting4_results=paper_setting4_table(),
        missing={"curves": "Figure 2 is published as a plot, not as numbers"},
    )


def claims_frame(checks: Sequence[ClaimCheck]) -> pd.DataFrame:
    """One row per check: ``claim_id``, ``takeaway``, ``claim``, ``verdict``, ``score``,
    ``evidence``."""
    return pd.DataFrame(
        [
            {
                "claim_id": check.claim_id,
                "takeaway": check.takeaway,
                "claim": check.claim,
                "verdict": check.verdict,
                "score": check.score,
                "evidence": check.evidence,
            }
            for check in checks
        ],
        columns=["claim_id", "takeaway", "claim", "verdict", "score", "evidence"],
    )


def verdict_table(ours: Sequence[ClaimCheck], paper: Sequence[ClaimCheck]) -> pd.DataFrame:
    """Our verdict and the paper's side by side, one row per claim (in the order of ``ours``).

    Columns: ``takeaway``, ``claim``, ``ours``, ``our score``, ``paper``, ``paper score``,
    ``agree`` (the two verdicts are equal; ``None`` when either is not testable), indexed by
    ``claim_id``.
    """
    theirs = {check.claim_id: check for check in paper}
    missing = [check.claim_id for check in ours if check.claim_id not in theirs]
    if missing:
        raise ValueError(f"paper has no check for the claim(s) {missing}")
    rows = []
    for check in ours:
        other = theirs[check.claim_id]
        rows.append(
            {
                "claim_id": check.claim_id,
                "takeaway": check.takeaway,
                "claim": check.claim,
                "ours": check.verdict,
                "our score": check.score,
                "paper": other.verdict,
                "paper score": other.score,
                "agree": (
                    None
                    if "not testable" in (check.verdict, other.verdict)
                    else check.verdict == other.verdict
                ),
            }
        )
    return pd.DataFrame(rows).set_index("claim_id")


def case_agreement(ours: Sequence[ClaimCheck], paper: Sequence[ClaimCheck]) -> pd.DataFrame:
    """Our outcome and the paper's compared case by case, one row per claim of ``ours``.

    A case is compared when both checks name it (:attr:`ClaimCheck.outcomes`). Columns:
    ``compared`` (cases named on both sides), ``agree`` (the same outcome on both),
    ``within_noise`` (compared cases ours leaves within the noise while the paper's numbers,
    which carry no spread, decide them) and ``differences`` (each compared case whose outcomes
    differ, as ``"PPO in setting 1: ours against, the paper's holds"``; empty when none),
    indexed by ``claim_id``.
    """
    theirs = {check.claim_id: check for check in paper}
    rows = []
    for check in ours:
        other = theirs.get(check.claim_id)
        mine, their = check.outcomes, (other.outcomes if other is not None else {})
        common = [case for case in mine if case in their]
        differing = [case for case in common if mine[case] != their[case]]
        rows.append(
            {
                "claim_id": check.claim_id,
                "compared": len(common),
                "agree": len(common) - len(differing),
                "within_noise": sum(mine[case] == "within noise" for case in common),
                "differences": "; ".join(
                    f"{case}: ours {mine[case]}, the paper's {their[case]}" for case in differing
                ),
            }
        )
    return pd.DataFrame(
        rows, columns=["claim_id", "compared", "agree", "within_noise", "differences"]
    ).set_index("claim_id")


def scoreboard(
    ours: Sequence[ClaimCheck], paper: Sequence[ClaimCheck], *, profile: str | None = None
) -> pd.DataFrame:
    """The verdict page's opening table: one row per claim of ``ours``.

    Columns: ``claim``; ``the paper's evidence`` (its verdict on its own numbers and their
    score); ``ours`` (our verdict and score); ``cases agreeing`` (``"k of n"`` over the cases
    both sides can decide, :func:`case_agreement`, or ``"–"``); ``why they differ`` (the cases
    whose outcomes differ, how many of ours lie within the noise, and, when ``profile`` is not
    ``"paper"``, that our numbers come from a smaller budget than the paper's protocol; ``"–"``
    when nothing differs).
    """
    theirs = {check.claim_id: check for check in paper}
    agreement = case_agreement(ours, paper)
    rows = []
    for check in ours:
        other = theirs.get(check.claim_id)
        row = agreement.loc[check.claim_id]
        compared = int(row["compared"])
        reasons = []
        if check.verdict == "not testable":
            reasons.append(f"not testable on our numbers: {check.evidence}")
        elif other is not None and other.verdict == "not testable":
            reasons.append(f"the paper's numbers cannot test it: {other.evidence}")
        if row["differences"]:
            reasons.append(f"differs in {row['differences']}")
        if row["within_noise"]:
            reasons.append(f"{int(row['within_noise'])} of ours within the noise")
        if reasons and profile is not None and profile != "paper":
            reasons.append(f"our numbers come from the {profile} budget, not the paper's")
        rows.append(
            {
                "claim": check.claim,
                "the paper's evidence": (
                    "–" if other is None else f"{other.verdict} ({other.score})"
                ),
                "ours": f"{check.verdict} ({check.score})",
                "cases agreeing": f"{int(row['agree'])} of {compared}" if compared else "–",
                "why they differ": "; ".join(reasons) if reasons else "–",
            }
        )
    return pd.DataFrame(rows, index=[check.claim_id for check in ours])
