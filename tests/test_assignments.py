"""The assignments' self-checks (deepstock.course.assignments).

What CI guarantees for course use: every self-check passes on the reference solution
(``instructor/solutions/``) and fails on the untouched starter (``assignments/``) with a message
that names what to write, never a traceback; typical wrong answers get feedback that says what
is wrong. The training parts of (c) and (d) run at a tiny budget.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from deepstock.course.assignments import (
    EXERCISES,
    AssignmentFeedback,
    CheckResult,
    NotDoneYet,
    check_benchmark,
    check_overfitting,
    check_regularization,
    check_sensitivity,
    compare_regularizations,
    load_solution,
    main,
    overfitting_table,
    run_check,
    sensitivity_levels,
)

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def _solution(name: str):
    return load_solution(ROOT / EXERCISES[name].solution)


# ---------------------------------------------------------------------- the layout
def test_every_exercise_has_a_starter_a_solution_and_a_page() -> None:
    assert [e.letter for e in EXERCISES.values()] == ["a", "b", "c", "d"]
    for exercise in EXERCISES.values():
        starter = ROOT / exercise.starter
        assert starter.is_file() and (ROOT / exercise.solution).is_file()
        assert (ROOT / "notebooks" / f"{exercise.chapter}.md").is_file()
        text = starter.read_text(encoding="utf-8")
        assert "# YOUR CODE HERE" in text and "raise NotImplementedError" in text
        assert f"check {exercise.name}" in text  # the starter says how to check it
        page = (ROOT / "notebooks" / f"{exercise.chapter}.md").read_text(encoding="utf-8")
        assert exercise.starter in page and "instructor" not in page


def test_the_student_path_does_not_reveal_the_solutions() -> None:
    toc = (ROOT / "_toc.yml").read_text(encoding="utf-8")
    assert "instructor/solutions" not in toc
    for exercise in EXERCISES.values():
        assert "solutions" not in (ROOT / exercise.starter).read_text(encoding="utf-8")


# ---------------------------------------------------------------------- reference solutions
@pytest.mark.parametrize("name", list(EXERCISES))
def test_reference_solution_passes(name: str) -> None:
    result = run_check(name, ROOT / EXERCISES[name].solution)
    assert isinstance(result, CheckResult)
    assert result.passed, result.message
    assert result.status == "passed" and len(result.details) >= 4
    assert "passed" in str(result) and "Check passed" in result._repr_markdown_()


# ---------------------------------------------------------------------- untouched starters
@pytest.mark.parametrize("name", list(EXERCISES))
def test_untouched_starter_fails_with_a_helpful_message(name: str) -> None:
    exercise = EXERCISES[name]
    result = run_check(name, ROOT / exercise.starter)
    assert not result.passed and result.status == "not done yet"
    assert "not written yet" in result.message and "# YOUR CODE HERE" in result.message
    assert any(f in result.message for f in ("variant", "critical_fractile_levels")) or (
        "ProportionalBaseStock" in result.message or "lognormal_dataset" in result.message
    )
    assert "Traceback" not in str(result)


def test_command_line_exit_status_and_no_traceback() -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "deepstock.course.assignments", "check", "sensitivity"]
    starter = subprocess.run(
        [*command, EXERCISES["sensitivity"].starter],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert starter.returncode == 1
    assert "NOT DONE YET" in starter.stdout and "`variant` is not written yet" in starter.stdout
    assert "Traceback" not in starter.stdout + starter.stderr
    solved = subprocess.run(
        [*command, EXERCISES["sensitivity"].solution],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert solved.returncode == 0, solved.stdout + solved.stderr
    assert "PASSED" in solved.stdout


def test_command_line_lists_the_exercises(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for exercise in EXERCISES.values():
        assert exercise.name in out and exercise.starter in out
    assert main(["check", "b", "no/such/file.py"]) == 1
    assert "cannot find your file" in capsys.readouterr().out


# ---------------------------------------------------------------------- the student's file
def test_syntax_and_runtime_errors_are_reported_without_traceback(tmp_path: Path) -> None:
    broken = tmp_path / "broken.py"
    broken.write_text("def variant(lead_time, ratio)\n    return 1\n", encoding="utf-8")
    result = run_check("sensitivity", broken)
    assert not result.passed and "syntax error on line 1" in result.message

    failing = tmp_path / "failing.py"
    failing.write_text(
        "def variant(lead_time, ratio):\n    return {}['missing']\n", encoding="utf-8"
    )
    result = run_check("sensitivity", failing)
    assert result.status == "failed"
    assert (
        "`variant` raised KeyError" in result.message and "line 2 of failing.py" in result.message
    )
    assert "Traceback" not in str(result)


def test_a_half_done_file_keeps_what_passed(tmp_path: Path) -> None:
    text = (ROOT / EXERCISES["sensitivity"].solution).read_text(encoding="utf-8")
    half = text.split("def protection_levels")[0]
    half += "def protection_levels(dataset):\n    # YOUR CODE HERE\n    raise NotImplementedError\n"
    path = tmp_path / "a_half.py"
    path.write_text(half, encoding="utf-8")
    result = run_check("a", path)
    assert not result.passed and result.status == "failed"  # started, not finished
    assert len(result.details) == 1 and "`protection_levels` is not written yet" in result.message


# ---------------------------------------------------------------------- wrong answers, (a)
def test_sensitivity_feedback_on_wrong_answers() -> None:
    reference = _solution("sensitivity")
    with pytest.raises(AssignmentFeedback, match=r"critical ratio b / \(b \+ h\) = 0\.9000"):
        check_sensitivity(
            SimpleNamespace(
                variant=lambda lead_time, ratio: reference.variant(lead_time, 0.9),
                protection_levels=reference.protection_levels,
            )
        )

    def one_day_short(dataset):  # forgets one day of the protection window
        short = dataclasses.replace(dataset, lead_time=np.maximum(dataset.lead_time - 1, 0))
        levels = reference.protection_levels(short)
        return levels[: len(reference.protection_levels(dataset))]

    with pytest.raises(AssignmentFeedback, match=r"the optimal level is .* \(higher\)"):
        check_sensitivity(
            SimpleNamespace(variant=reference.variant, protection_levels=one_day_short)
        )
    with pytest.raises(AssignmentFeedback, match="one level per order day"):
        check_sensitivity(
            SimpleNamespace(
                variant=reference.variant, protection_levels=lambda d: np.zeros(d.horizon)
            )
        )


def test_sensitivity_levels_table() -> None:
    table = sensitivity_levels(lead_times=(1, 3), ratios=(0.5, 0.9))
    assert set(table.columns) >= {"lead_time", "critical_ratio", "day", "level"}
    mean = table.groupby(["lead_time", "critical_ratio"])["level"].mean()
    assert mean[(3, 0.9)] > mean[(1, 0.9)] + 15  # two more days of ~12 units of demand
    assert mean[(1, 0.9)] >= mean[(1, 0.5)]


# ---------------------------------------------------------------------- wrong answers, (b)
def test_benchmark_feedback_on_wrong_answers() -> None:
    from statistics import NormalDist

    reference = _solution("benchmark")

    def rounded(sigma, mean, h, b):
        return mean + 1.28 * np.asarray(sigma)

    with pytest.raises(AssignmentFeedback, match=r"z = 1\.28155"):
        check_benchmark(SimpleNamespace(critical_fractile_levels=rounded, base_stock_loss=None))

    def with_warmup(dataset, levels):
        losses = reference.base_stock_loss(dataset, levels)
        # recompute counting every day: the mean over all T days
        days = dataset.horizon
        warm = int(dataset.review_period[0] + dataset.lead_time[0, 0])
        counted = losses * (days - warm)
        extra = _warmup_cost(dataset)
        return (counted + extra) / days

    with pytest.raises(AssignmentFeedback, match="count the warm-up days"):
        check_benchmark(
            SimpleNamespace(
                critical_fractile_levels=lambda s, m, h, b: (
                    m + NormalDist().inv_cdf(b / (b + h)) * np.asarray(s)
                ),
                base_stock_loss=with_warmup,
            )
        )


def _warmup_cost(dataset) -> np.ndarray:
    """The cost of the warm-up days (no order lands there; demand is backlogged)."""
    warm = int(dataset.review_period[0] + dataset.lead_time[0, 0])
    stock = dataset.initial_stock[:, None] - np.cumsum(dataset.demand[:, :warm], axis=1)
    cost = dataset.holding_cost * np.maximum(stock, 0) + dataset.backlog_cost * np.maximum(
        -stock, 0
    )
    return cost.sum(axis=1)


def test_reference_simulation_equals_the_simulator() -> None:
    from deepstock.course.assignments import _benchmark_cases, _reference_base_stock_loss
    from deepstock.model.heuristics import StationaryBaseStock
    from deepstock.model.optimal import critical_fractile_levels
    from deepstock.model.simulator import simulate

    for _, dataset in _benchmark_cases():
        levels = critical_fractile_levels(dataset)
        expected = simulate(dataset, StationaryBaseStock(levels), device="cpu").trajectory_loss
        got = _reference_base_stock_loss(dataset, levels)
        np.testing.assert_allclose(got, expected.numpy(), rtol=1e-9)


# ---------------------------------------------------------------------- wrong answers, (c)
def _regularization_module(order) -> SimpleNamespace:
    from deepstock.model.regularizations import Regularization

    class ProportionalBaseStock(Regularization):
        name = "pout_test"

        def output_size(self, n_coeff_features):
            return 2

    ProportionalBaseStock.order = lambda self, raw, obs, coeff, m: order(raw, obs, m)
    return SimpleNamespace(ProportionalBaseStock=ProportionalBaseStock)


def test_regularization_feedback_on_wrong_answers() -> None:
    def unclipped_share(raw, obs, m):
        return ((raw[:, 1] / m) * (raw[:, 0] - obs.inventory_position)).clamp(0, m)

    with pytest.raises(AssignmentFeedback, match=r"beta =\s+clip\(raw\[:, 1\] / M, 0, 1\)"):
        check_regularization(_regularization_module(unclipped_share), train=False)

    def in_numpy(raw, obs, m):
        share = np.clip(raw[:, 1].detach().numpy() / m, 0, 1)
        return np.clip(share * (raw[:, 0] - obs.inventory_position).detach().numpy(), 0, m)

    with pytest.raises(AssignmentFeedback, match="must return a torch tensor"):
        check_regularization(_regularization_module(in_numpy), train=False)

    def detached(raw, obs, m):
        share = (raw[:, 1] / m).clamp(0, 1)
        return (share * (raw[:, 0] - obs.inventory_position)).clamp(0, m).detach()

    with pytest.raises(AssignmentFeedback, match="passes no gradient"):
        check_regularization(_regularization_module(detached), train=False)

    with pytest.raises(AssignmentFeedback, match="must be a class that subclasses"):
        check_regularization(SimpleNamespace(ProportionalBaseStock=lambda: None), train=False)


def test_compare_regularizations_trains_plug_ins_through_the_store(tmp_path: Path) -> None:
    from deepstock.model.regularizations import REGULARIZATIONS
    from deepstock.paper.experiments import ExperimentContext
    from deepstock.results.store import ResultStore
    from deepstock.tuning.profiles import resolve_profile

    check_regularization(_solution("regularization"), train=False)
    REGULARIZATIONS.pop("pout", None)
    run_check("c", ROOT / EXERCISES["regularization"].solution, train=False)
    assert "pout" not in REGULARIZATIONS  # checking without training registers nothing
    from deepstock.model.regularizations import register_regularization

    register_regularization(_solution("regularization").ProportionalBaseStock(), overwrite=True)
    try:
        context = ExperimentContext(
            profile=resolve_profile("smoke", training={"ds": {"epochs": 2}}),
            device="cpu",
            store=ResultStore(tmp_path / "results"),
        )
        first = compare_regularizations(context, ("base", "pout"), methods=("ds",))
        assert list(first["regularization"]) == ["base", "pout"]
        assert not first["cached"].any() and (first["benchmark"] == "dp_true").all()
        assert np.isfinite(first["test_gap_pct"]).all()
        again = compare_regularizations(context, ("base", "pout"), methods=("ds",))
        assert again["cached"].all()
        assert list(again["test_loss"]) == list(first["test_loss"])
    finally:
        REGULARIZATIONS.pop("pout", None)


# ---------------------------------------------------------------------- wrong answers, (d)
def test_overfitting_feedback_on_wrong_answers() -> None:
    from deepstock.datasets.synthetic import make_setting

    reference = _solution("overfitting")

    def normal(n, h, seed):  # setting 4's own (normal) demand
        return make_setting("setting4", n_skus=n, horizon_periods=h, stream="fresh", seed=seed)

    with pytest.raises(AssignmentFeedback, match="not right-skewed"):
        check_overfitting(
            SimpleNamespace(lognormal_dataset=normal, lognormal_levels=None), train=False
        )

    def normal_levels(dataset):
        from deepstock.model.optimal import critical_fractile_levels

        return critical_fractile_levels(dataset)

    with pytest.raises(AssignmentFeedback, match="That is the normal's level"):
        check_overfitting(
            SimpleNamespace(
                lognormal_dataset=reference.lognormal_dataset, lognormal_levels=normal_levels
            ),
            train=False,
        )

    def unseeded(n, h, seed):
        return reference.lognormal_dataset(n, h, int(np.random.default_rng().integers(1000)))

    with pytest.raises(AssignmentFeedback, match="other demand when called twice"):
        check_overfitting(
            SimpleNamespace(lognormal_dataset=unseeded, lognormal_levels=None), train=False
        )


def test_overfitting_table_on_setting4(tmp_path: Path) -> None:
    from deepstock.datasets.synthetic import make_setting
    from deepstock.model.optimal import critical_fractile_levels
    from deepstock.paper.experiments import ExperimentContext
    from deepstock.results.store import ResultStore
    from deepstock.tuning.profiles import resolve_profile

    context = ExperimentContext(
        profile=resolve_profile("smoke", training={"ds": {"epochs": 2}}),
        device="cpu",
        store=ResultStore(tmp_path / "results"),
    )
    table = overfitting_table(
        lambda n, h, seed: make_setting("setting4", n_skus=n, horizon_periods=h),
        critical_fractile_levels,
        context,
        n_skus=(2, 3),
        horizons=(2,),
    )
    assert list(table["n_skus"]) == [2, 3]
    assert (table["benchmark_test_loss"] > 0).all()
    assert np.isfinite(table[["val_gap_pct", "test_gap_pct"]].to_numpy()).all()


def test_not_done_yet_is_feedback() -> None:
    assert issubclass(NotDoneYet, AssignmentFeedback)
    with pytest.raises(ValueError, match="unknown exercise"):
        run_check("nonsense")
