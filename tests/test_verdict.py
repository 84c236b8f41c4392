"""The claim checks of deepstock.paper.verdict: on the paper's numbers, on hand-made tables, bad input."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from deepstock.paper.experiments import METHOD_PAIRS, trials_to_beat_ds
from deepstock.paper.reported import paper_setting4_table, paper_settings_table
from deepstock.paper.verdict import (
    CLAIMS,
    VERDICTS,
    ClaimCheck,
    case_agreement,
    check_base_drl_beats_ds,
    check_base_gain_larger_with_few_trials,
    check_base_improves_test_loss,
    check_claims,
    check_ds_overfits_setting3,
    check_regularization_helps_drl_more,
    check_setting4_gap_shrinks_with_n,
    check_setting4_validation_below_test,
    check_trials_to_beat_ds_drop,
    claims_frame,
    paper_checks,
    scoreboard,
    verdict_table,
)


def _results(test_losses: dict[tuple[str, str, str], float], val_losses=None) -> pd.DataFrame:
    """A settings table with a benchmark of 1.0 in every setting (gap = 100 * (loss - 1))."""
    rows = []
    for (setting, method, regularization), test in test_losses.items():
        val = (val_losses or {}).get((setting, method, regularization), test)
        rows.append(
            {
                "setting": setting,
                "method": method,
                "regularization": regularization,
                "val_loss": val,
                "test_loss": test,
                "val_gap_pct": 100.0 * (val - 1.0),
                "test_gap_pct": 100.0 * (test - 1.0),
            }
        )
    columns = ["setting", "method", "regularization", "val_loss", "test_loss"]
    return pd.DataFrame(rows, columns=[*columns, "val_gap_pct", "test_gap_pct"])


def _all_pairs(loss: dict[tuple[str, str], float], settings=("setting1",)) -> dict:
    return {(s, m, r): loss[(m, r)] for s in settings for m, r in METHOD_PAIRS}


_IMPROVED = {
    ("ddpg", "none"): 1.3,
    ("ddpg", "base"): 1.1,
    ("ppo", "none"): 1.4,
    ("ppo", "base"): 1.05,
    ("ds", "none"): 1.2,
    ("ds", "base"): 1.15,
}


# ---------------------------------------------------------------------- the paper's own numbers
def test_paper_numbers_give_the_papers_own_statements() -> None:
    checks = {check.claim_id: check for check in paper_checks()}
    assert list(checks) == list(CLAIMS)
    # "Base improves the Testing Loss in 8 out of 9 cases (all except for DS in Setting 3)"
    base = checks["base_improves_test_loss"]
    assert (base.holding, base.cases, base.verdict) == (8, 9, "partly supported")
    assert "DS in setting 3" in base.evidence
    # 17 -> 11 and 32 -> 7
    trials = checks["trials_to_beat_ds_drop"]
    assert (trials.holding, trials.cases, trials.verdict) == (2, 2, "supported")
    assert "DDPG 17 → 11" in trials.evidence and "PPO 32 → 7" in trials.evidence
    # setting 1: DS gains 18.24 points, DDPG 1.00, PPO 1.60; settings 2-3: DDPG/PPO gain more
    more = checks["regularization_helps_drl_more"]
    assert (more.holding, more.cases, more.verdict) == (4, 6, "partly supported")
    assert "DS +18.24" in more.evidence
    beats = checks["base_drl_beats_ds"]
    assert (beats.holding, beats.cases, beats.verdict) == (2, 3, "supported")
    assert checks["ds_overfits_setting3"].verdict == "supported"
    shrink = checks["setting4_gap_shrinks_with_n"]
    assert (shrink.holding, shrink.cases) == (2, 2)
    assert "13.74% (N = 5)" in shrink.evidence
    below = checks["setting4_validation_below_test"]
    assert (below.holding, below.cases, below.verdict) == (4, 5, "partly supported")
    assert checks["base_gain_larger_with_few_trials"].verdict == "not testable"


# ---------------------------------------------------------------------- settings 1-3
def test_base_improves_counts_each_setting_and_method_and_names_failures() -> None:
    losses = _all_pairs(_IMPROVED, settings=("setting1", "setting2"))
    check = check_base_improves_test_loss(_results(losses))
    assert (check.holding, check.cases, check.verdict) == (6, 6, "supported")
    losses[("setting2", "ppo", "base")] = 1.5  # PPO gets worse with Base in setting 2
    check = check_base_improves_test_loss(_results(losses))
    assert (check.holding, check.cases, check.verdict) == (5, 6, "partly supported")
    assert "PPO in setting 2 (1.4000 with None, 1.5000 with Base)" in check.evidence
    worse = {key: (2.0 if key[2] == "base" else 1.0) for key in losses}
    assert check_base_improves_test_loss(_results(worse)).verdict == "not supported"


def test_a_missing_or_non_finite_loss_is_not_counted() -> None:
    losses = _all_pairs(_IMPROVED)
    del losses[("setting1", "ds", "base")]
    losses[("setting1", "ppo", "none")] = float("nan")
    check = check_base_improves_test_loss(_results(losses))
    assert (check.holding, check.cases) == (1, 1)
    empty = _results({})
    assert check_base_improves_test_loss(empty).verdict == "not testable"


def test_regularization_helps_drl_more_compares_gap_reductions_within_a_setting() -> None:
    # reductions in points: DDPG 20, PPO 35, DS 5 -> both larger
    check = check_regularization_helps_drl_more(_results(_all_pairs(_IMPROVED)))
    assert (check.holding, check.cases, check.verdict) == (2, 2, "supported")
    assert "DDPG +20.00, PPO +35.00, DS +5.00" in check.evidence
    bigger_ds = dict(_IMPROVED) | {("ds", "none"): 1.5, ("ds", "base"): 1.2}  # DS: 30 points
    check = check_regularization_helps_drl_more(_results(_all_pairs(bigger_ds)))
    assert (check.holding, check.cases) == (1, 2)


def test_base_drl_beats_ds_needs_one_setting_only() -> None:
    losses = _all_pairs(_IMPROVED, settings=("setting1", "setting2"))
    losses[("setting2", "ds", "base")] = 1.0  # DS wins setting 2
    check = check_base_drl_beats_ds(_results(losses))
    assert (check.holding, check.cases, check.verdict) == (1, 2, "supported")
    assert "setting 1 (PPO 1.0500, DS 1.1500)" in check.evidence
    assert "DS stays ahead in: setting 2" in check.evidence
    losses[("setting1", "ds", "base")] = 1.0
    check = check_base_drl_beats_ds(_results(losses))
    assert (check.holding, check.verdict) == (0, "not supported")


def test_ds_overfits_setting3_needs_better_validation_and_worse_test() -> None:
    test = _all_pairs(_IMPROVED, settings=("setting3",))
    val = dict(test)
    val[("setting3", "ds", "base")] = 1.0  # DS: best validation, test 1.15 > DDPG's 1.1
    assert check_ds_overfits_setting3(_results(test, val)).verdict == "supported"
    assert check_ds_overfits_setting3(_results(test)).verdict == "not supported"
    only_setting1 = _results(_all_pairs(_IMPROVED))
    assert check_ds_overfits_setting3(only_setting1).verdict == "not testable"


def test_settings_checks_refuse_bad_tables() -> None:
    table = _results(_all_pairs(_IMPROVED))
    with pytest.raises(ValueError, match=r"lacks the column\(s\) \['test_gap_pct'\]"):
        check_regularization_helps_drl_more(table.drop(columns="test_gap_pct"))
    with pytest.raises(ValueError, match="more than one row"):
        check_base_improves_test_loss(pd.concat([table, table.head(1)]))
    with pytest.raises(ValueError, match="must be a pandas DataFrame"):
        check_base_drl_beats_ds({"setting": []})


# ---------------------------------------------------------------------- Figure 2
def _curves(best: dict[tuple[str, str], list[float]]) -> pd.DataFrame:
    rows = [
        {
            "setting": "setting1",
            "method": method,
            "regularization": regularization,
            "repeat": 0,
            "n_trials": n,
            "best_val_loss": value,
        }
        for (method, regularization), values in best.items()
        for n, value in enumerate(values, start=1)
    ]
    return pd.DataFrame(rows)


def test_trials_to_beat_ds_read_from_the_experiments_counts() -> None:
    curves = _curves(
        {
            ("ds", "none"): [2.0, 1.5, 1.2, 1.2],
            ("ds", "base"): [1.5, 1.3, 1.3, 1.3],
            ("ddpg", "none"): [3.0, 3.0, 1.1, 1.1],  # beats DS at trial 3
            ("ddpg", "base"): [1.4, 1.4, 1.4, 1.2],  # at trial 1
            ("ppo", "none"): [3.0, 2.0, 2.0, 2.0],  # never
            ("ppo", "base"): [2.0, 1.2, 1.2, 1.2],  # at trial 2
        }
    )
    counts = trials_to_beat_ds(curves)
    check = check_trials_to_beat_ds_drop(counts)
    assert (check.holding, check.cases, check.verdict) == (2, 2, "supported")
    assert "DDPG 3 → 1" in check.evidence and "PPO none in 4 → 2" in check.evidence


def test_trials_to_beat_ds_handles_methods_that_never_surpass_ds() -> None:
    def counts(ddpg: tuple, ppo: tuple) -> pd.DataFrame:
        rows = []
        for method, pair in (("ddpg", ddpg), ("ppo", ppo)):
            for regularization, trials in zip(("none", "base"), pair, strict=True):
                rows.append(
                    {
                        "method": method,
                        "regularization": regularization,
                        "trials": pd.NA if trials is None else trials,
                        "budget": 8,
                    }
                )
        return pd.DataFrame(rows)

    check = check_trials_to_beat_ds_drop(counts((3, None), (5, 5)))  # worse, equal
    assert (check.holding, check.cases, check.verdict) == (0, 2, "not supported")
    check = check_trials_to_beat_ds_drop(counts((None, None), (6, 2)))
    assert (check.holding, check.cases) == (1, 1)
    assert "DDPG none in 8 → none in 8 (undecided)" in check.evidence
    check = check_trials_to_beat_ds_drop(counts((None, None), (None, None)))
    assert check.verdict == "not testable"
    with pytest.raises(ValueError, match=r"\['budget'\]"):
        check_trials_to_beat_ds_drop(counts((1, 1), (1, 1)).drop(columns="budget"))


def test_base_gain_larger_with_few_trials_compares_early_and_final_advantage() -> None:
    best = {
        ("ddpg", "none"): [3.0, 2.0, 1.5, 1.2, 1.2, 1.2, 1.2, 1.2],
        ("ddpg", "base"): [1.3, 1.2, 1.2, 1.1, 1.1, 1.1, 1.1, 1.1],  # 0.8 at 2, 0.1 at 8
        ("ppo", "none"): [1.5] * 8,
        ("ppo", "base"): [1.4] * 7 + [1.0],  # 0.1 at 2, 0.5 at 8
    }
    check = check_base_gain_larger_with_few_trials(_curves(best))
    assert (check.holding, check.cases, check.verdict) == (1, 2, "partly supported")
    assert "DDPG +0.8000 after 2, +0.1000 after 8" in check.evidence
    check = check_base_gain_larger_with_few_trials(_curves(best), few_trials=7)
    assert "PPO +0.1000 after 7, +0.5000 after 8" in check.evidence
    # another setting's curves are ignored
    other = _curves(best).assign(setting="setting2")
    assert check_base_gain_larger_with_few_trials(other).verdict == "not testable"
    with pytest.raises(ValueError, match="few_trials"):
        check_base_gain_larger_with_few_trials(_curves(best), few_trials=0)


def test_base_gain_averages_repeats() -> None:
    curves = pd.concat(
        [
            _curves({("ds", "none"): [2.0, 1.0], ("ds", "base"): [1.0, 1.0]}),
            _curves({("ds", "none"): [1.0, 1.0], ("ds", "base"): [1.0, 1.0]}).assign(repeat=1),
        ]
    )
    check = check_base_gain_larger_with_few_trials(curves)
    assert "DS +0.5000 after 1, +0.0000 after 2" in check.evidence


# ---------------------------------------------------------------------- setting 4
def _setting4(gaps: dict[int, list[tuple[float, float]]]) -> pd.DataFrame:
    horizons = (2, 8, 16, 32, 64)
    return pd.DataFrame(
        [
            {"n_skus": n, "horizon_periods": h, "val_gap_pct": v, "test_gap_pct": t}
            for n, values in gaps.items()
            for h, (v, t) in zip(horizons, values, strict=False)
        ]
    )


def test_setting4_gap_shrinks_over_consecutive_n_on_common_horizons() -> None:
    table = _setting4({5: [(0, 10)] * 5, 10: [(0, 6)] * 5, 20: [(0, 8)] * 5})
    check = check_setting4_gap_shrinks_with_n(table)
    assert (check.holding, check.cases, check.verdict) == (1, 2, "partly supported")
    # a horizon missing for one N is left out of every mean
    table = _setting4({5: [(0, 10)] * 5, 10: [(0, 6)] * 5, 20: [(0, 1)] * 4})
    check = check_setting4_gap_shrinks_with_n(table)
    assert "H = [2, 8, 16, 32]" in check.evidence and check.verdict == "supported"
    assert check_setting4_gap_shrinks_with_n(_setting4({5: [(0, 1)]})).verdict == "not testable"


def test_setting4_validation_below_test_uses_the_smallest_n_and_the_margin() -> None:
    table = _setting4({10: [(0, 30)] * 5, 5: [(0, 30), (0, 6), (0, 4), (10, 5), (-20, 0)]})
    check = check_setting4_validation_below_test(table)
    assert (check.holding, check.cases, check.verdict) == (3, 5, "partly supported")
    assert check.evidence.startswith("N = 5")
    assert check_setting4_validation_below_test(table, margin=0.0).holding == 4
    with pytest.raises(ValueError, match="margin"):
        check_setting4_validation_below_test(table, margin=-1.0)
    with pytest.raises(ValueError, match="more than one row"):
        check_setting4_validation_below_test(pd.concat([table, table.head(1)]))
    with pytest.raises(ValueError, match=r"\['val_gap_pct'\]"):
        check_setting4_gap_shrinks_with_n(table.drop(columns="val_gap_pct"))


def test_setting4_checks_accept_the_papers_table_layout() -> None:
    table = paper_setting4_table()
    assert check_setting4_gap_shrinks_with_n(table).cases == 2
    assert check_setting4_validation_below_test(table).cases == 5


# ---------------------------------------------------------------------- all claims
def test_check_claims_marks_absent_tables_not_testable_in_claim_order() -> None:
    checks = check_claims(paper_settings_table(), missing={"counts": "budget too small"})
    assert [check.claim_id for check in checks] == list(CLAIMS)
    by_id = {check.claim_id: check for check in checks}
    assert by_id["trials_to_beat_ds_drop"].verdict == "not testable"
    assert by_id["trials_to_beat_ds_drop"].evidence == "budget too small"
    assert by_id["setting4_gap_shrinks_with_n"].evidence == "no setting-4 results"
    assert by_id["base_improves_test_loss"].verdict == "partly supported"
    frame = claims_frame(checks)
    assert list(frame.columns) == ["claim_id", "takeaway", "claim", "verdict", "score", "evidence"]
    assert frame.loc[frame["claim_id"] == "trials_to_beat_ds_drop", "score"].item() == "–"


def test_verdict_table_puts_ours_and_the_papers_side_by_side() -> None:
    ours = check_claims(_results(_all_pairs(_IMPROVED)))
    table = verdict_table(ours, paper_checks())
    assert list(table.index) == list(CLAIMS)
    row = table.loc["base_improves_test_loss"]
    assert (row["ours"], row["our score"]) == ("supported", "3 of 3")
    assert (row["paper"], row["paper score"], row["agree"]) == ("partly supported", "8 of 9", False)
    assert table.loc["trials_to_beat_ds_drop", "ours"] == "not testable"
    assert table.loc["trials_to_beat_ds_drop", "agree"] is None
    with pytest.raises(ValueError, match="paper has no check"):
        verdict_table(ours, paper_checks()[:3])


def test_claim_check_refuses_inconsistent_counts() -> None:
    with pytest.raises(ValueError, match="claim_id"):
        ClaimCheck("made_up", 0, 0, "all", "")
    with pytest.raises(ValueError, match="holding"):
        ClaimCheck("base_improves_test_loss", 3, 2, "all", "")
    with pytest.raises(ValueError, match="quantifier"):
        ClaimCheck("base_improves_test_loss", 1, 2, "most", "")


@given(
    holding=st.integers(0, 9),
    extra=st.integers(0, 9),
    quantifier=st.sampled_from(["all", "any"]),
)
def test_verdict_follows_the_counts(holding: int, extra: int, quantifier: str) -> None:
    check = ClaimCheck("base_drl_beats_ds", holding, holding + extra, quantifier, "")
    assert check.verdict in VERDICTS
    if holding + extra == 0:
        assert check.verdict == "not testable"
    elif holding == 0:
        assert check.verdict == "not supported"
    elif quantifier == "any" or extra == 0:
        assert check.verdict == "supported"
    else:
        assert check.verdict == "partly supported"


def test_every_claim_is_checked_once() -> None:
    ids = [check.claim_id for check in check_claims()]
    assert ids == list(CLAIMS) and len(set(ids)) == len(ids)
    assert all(check.verdict == "not testable" for check in check_claims())


def test_check_claims_passes_its_knobs_on() -> None:
    table = paper_setting4_table()
    strict = {c.claim_id: c for c in check_claims(setting4_results=table, margin=50.0)}
    assert strict["setting4_validation_below_test"].holding == 1  # only +52.0 (H = 8)
    curves = _curves({("ds", "none"): [3.0, 2.0, 1.0, 1.0], ("ds", "base"): [1.0] * 4})
    late = {c.claim_id: c for c in check_claims(curves=curves, few_trials=3)}
    assert "after 3" in late["base_gain_larger_with_few_trials"].evidence


# ---------------------------------------------------------------------- the noise rule
def _with_se(results: pd.DataFrame, se: float) -> pd.DataFrame:
    return results.assign(val_loss_se=se, test_loss_se=se)


@given(
    effect=st.floats(0.0, 1.0),
    se=st.floats(1e-4, 1.0),
)
def test_an_effect_inside_the_noise_is_never_supported(effect, se) -> None:
    from deepstock.paper.verdict import NOISE_Z

    losses = {**_IMPROVED, ("ddpg", "base"): _IMPROVED[("ddpg", "none")] - effect}
    table = _with_se(_results(_all_pairs(losses)), se)
    noise = NOISE_Z * (2 * se * se) ** 0.5
    check = check_base_improves_test_loss(table)
    ddpg_holds = "DDPG in setting 1" not in check.evidence
    if effect <= noise:
        assert not ddpg_holds and check.verdict != "supported"
    elif effect > noise * 1.000001:
        assert ddpg_holds


def test_the_noise_rule_turns_small_effects_into_inconclusive_cases() -> None:
    table = _results(_all_pairs(_IMPROVED))
    plain = check_base_improves_test_loss(table)
    assert (plain.holding, plain.cases, plain.verdict) == (3, 3, "supported")
    # every None-Base difference is 0.05-0.35; a standard error of 0.2 hides all of them
    noisy = check_base_improves_test_loss(_with_se(table, 0.2))
    assert (noisy.holding, noisy.within_noise, noisy.verdict) == (0, 3, "inconclusive")
    assert noisy.score == "0 of 3, 3 within noise" and "within the noise" in noisy.evidence
    # one case beyond the noise (PPO: 0.35 > 2 * sqrt(2) * 0.1), two within it
    some = check_base_improves_test_loss(_with_se(table, 0.1))
    assert (some.holding, some.within_noise, some.verdict) == (1, 2, "partly supported")
    # a case against the claim beyond the noise makes a claim about every case not supported
    against = {**_IMPROVED, ("ds", "base"): 2.0}
    mixed = check_base_improves_test_loss(_with_se(_results(_all_pairs(against)), 0.2))
    assert (mixed.holding, mixed.within_noise, mixed.verdict) == (0, 2, "not supported")
    # the paper's tables carry no spread: the plain comparison
    assert "test_loss_se" not in paper_settings_table()
    assert check_base_improves_test_loss(paper_settings_table()).within_noise == 0


def test_the_noise_rule_applies_to_the_gap_and_ds_comparisons() -> None:
    table = _with_se(_results(_all_pairs(_IMPROVED)), 0.5)
    more = check_regularization_helps_drl_more(table)
    assert more.holding == 0 and more.within_noise == more.cases == 2
    assert more.verdict == "inconclusive"
    beats = check_base_drl_beats_ds(table)  # PPO Base 1.05 < DS Base 1.15, inside 2 * 0.71
    assert (beats.holding, beats.within_noise, beats.verdict) == (0, 1, "inconclusive")
    assert check_base_drl_beats_ds(_with_se(_results(_all_pairs(_IMPROVED)), 0.01)).verdict == (
        "supported"
    )


def test_within_noise_cannot_exceed_the_cases_that_do_not_hold() -> None:
    with pytest.raises(ValueError, match="within_noise"):
        ClaimCheck("base_improves_test_loss", 2, 3, "all", "x", within_noise=2)


def test_agreement_is_counted_case_by_case_and_the_scoreboard_names_the_differences():
    paper = paper_checks()
    table = paper_settings_table()
    # our numbers: the paper's, with PPO Base in setting 1 made worse than PPO None
    ours_table = table.copy()
    row = (ours_table["setting"] == "setting1") & (ours_table["method"] == "ppo")
    none_loss = float(
        ours_table.loc[row & (ours_table["regularization"] == "none"), "test_loss"].iloc[0]
    )
    ours_table.loc[row & (ours_table["regularization"] == "base"), "test_loss"] = none_loss + 1
    ours = check_claims(ours_table)
    base = next(c for c in ours if c.claim_id == "base_improves_test_loss")
    assert base.outcomes["PPO in setting 1"] == "against"
    assert list(base.outcomes.values()).count("holds") == base.holding

    agreement = case_agreement(ours, paper)
    assert agreement.loc["base_improves_test_loss", "compared"] == 9
    assert agreement.loc["base_improves_test_loss", "agree"] == 8
    assert agreement.loc["base_improves_test_loss", "differences"] == (
        "PPO in setting 1: ours against, the paper's holds"
    )
    board = scoreboard(ours, paper, profile="quick")
    assert board.loc["base_improves_test_loss", "cases agreeing"] == "8 of 9"
    why = board.loc["base_improves_test_loss", "why they differ"]
    assert "PPO in setting 1" in why and "the quick budget" in why
    # a claim ours cannot test says why; one both decide alike has nothing to explain
    assert board.loc["setting4_gap_shrinks_with_n", "why they differ"].startswith(
        "not testable on our numbers"
    )
    assert board.loc["ds_overfits_setting3", "why they differ"] == "–"
    with pytest.raises(ValueError, match="do not add up"):
        ClaimCheck("base_improves_test_loss", 1, 2, "all", "", 0, {"a": "holds"})
