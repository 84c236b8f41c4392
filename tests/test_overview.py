"""The paper at a glance (deepstock.paper.overview): one row per item, numbers read from the
committed quick store through the experiment functions, "not computed" where the store lacks
an experiment."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from deepstock.paper import experiments
from deepstock.paper.experiments import ExperimentContext, figure3, run_experiment
from deepstock.paper.overview import (
    NOT_COMPUTED,
    OVERVIEW_COLUMNS,
    OVERVIEW_ITEMS,
    overview_markdown,
    paper_overview,
)
from deepstock.paper.tables import method_label
from deepstock.paper.verdict import check_base_improves_test_loss
from deepstock.results.store import MissingRunError, ResultStore

ROOT = Path(__file__).resolve().parent.parent

ITEMS = [
    "Tables 3-5",
    "Figure 1",
    "Table 6",
    "Table 7",
    "Table 8",
    "Figure 2",
    "Figure 3",
    "Figure 4",
    "Table 9",
    "Table 1",
    "Table 2",
    "Figure 5",
]


def _never_train(*_args, **_kwargs):
    raise AssertionError("the overview trained a run")


@pytest.fixture
def no_training(monkeypatch: pytest.MonkeyPatch) -> None:
    import deepstock.results.store as store_module

    monkeypatch.setattr(store_module, "default_train", _never_train)


@pytest.fixture(scope="module")
def quick_overview() -> pd.DataFrame:
    return paper_overview(ExperimentContext(profile="quick", stored_only=True)).set_index("item")


def _median_abs(ours: pd.Series, paper: pd.Series) -> str:
    return f"{(ours - paper).abs().median():.2f}"


def test_one_row_per_table_and_figure(quick_overview: pd.DataFrame) -> None:
    assert list(quick_overview.index) == ITEMS == [entry.item for entry in OVERVIEW_ITEMS]
    assert list(quick_overview.reset_index().columns) == list(OVERVIEW_COLUMNS)
    assert quick_overview["what"].str.len().gt(0).all()
    assert not quick_overview["how close"].str.startswith(NOT_COMPUTED).any()
    # every page is a labelled page of the book
    labels = {label.strip() for pages in quick_overview["book page"] for label in pages.split(",")}
    for label in labels:
        sources = [ROOT / "notebooks" / f"{label}.md", ROOT / "book" / f"{label}.md"]
        assert any(
            path.is_file() and f"({label})=\n" in path.read_text(encoding="utf-8")
            for path in sources
        ), label


def test_the_numbers_are_those_of_the_experiments(quick_overview, no_training) -> None:
    context = ExperimentContext(profile="quick", stored_only=True)
    how = quick_overview["how close"]

    settings = run_experiment("settings", context)
    results = settings["results"][settings["results"]["in_paper"]]
    figure1 = _median_abs(results["test_gap_pct"], results["paper_test_gap_pct"])
    assert f"over the 18 pairs: {figure1} points" in how["Figure 1"]
    base = check_base_improves_test_loss(results)
    assert f"Base lowers the test loss in {base.score} (setting, method)" in how["Figure 1"]
    for item, setting in (
        ("Table 6", "setting1"),
        ("Table 7", "setting2"),
        ("Table 8", "setting3"),
    ):
        rows = results[results["setting"] == setting]
        median = _median_abs(rows["test_gap_pct"], rows["paper_test_gap_pct"])
        assert f"over the 6 pairs: {median} points" in how[item]
        bench = settings["benchmarks"]
        primary = bench[(bench["setting"] == setting) & bench["primary"]].iloc[0]
        assert f"benchmark test loss {primary['test_loss']:.4f}" in how[item]
        best = rows.loc[rows["test_loss"].idxmin()]
        assert f"{method_label(best['method'], best['regularization'])} (ours)" in how[item]

    counts = run_experiment("figure2", context)["trials_to_beat_ds"]
    for row in counts.itertuples():
        if pd.isna(row.paper_trials):
            continue  # DQN: not in the paper, not in the overview
        ours = "never" if pd.isna(row.trials) else str(int(row.trials))
        label = method_label(row.method, row.regularization)
        assert f"{label} {ours} vs {int(row.paper_trials)}" in how["Figure 2"]
    assert "DDPG None 3 vs 17" in how["Figure 2"]  # the paper's 17 comes from reported.py

    recorded = figure3(context, record_steps=10_000)
    states = recorded["states"]
    for regularization, label in (("none", "None"), ("base", "Base")):
        spread = states.loc[states["regularization"] == regularization, "pipeline_0"].std()
        assert f"{label} {spread:.1f}" in how["Figure 3"]
    interval = recorded["spread"].iloc[0]
    assert (
        f"interval {interval['ratio_low']:.2f} to {interval['ratio_high']:.2f}" in how["Figure 3"]
    )

    cells = run_experiment("setting4", context)["results"]
    table9 = _median_abs(cells["test_gap_pct"], cells["paper_test_gap_pct"])
    assert f"over the 15 cells: {table9} points" in how["Table 9"]
    means = cells.groupby("n_skus")["test_gap_pct"].mean()
    assert "ours " + ", ".join(f"{v:.2f}" for v in means) + " %" in how["Figure 4"]

    proxy = run_experiment("proxy", context)["results"]
    for method in ("ddpg", "ds"):
        rows = proxy[proxy["method"] == method]
        best = rows.loc[rows["test_objective"].idxmin()]
        label = method_label(method, best["regularization"])
        assert f"{label} {best['test_gap_pct']:+.2f} %" in how["Table 1"]
    assert how["Table 1"].startswith("not re-runnable (private data)")
    assert how["Table 2"].startswith("not re-runnable")


def test_a_missing_experiment_gives_not_computed_rows(quick_overview, monkeypatch) -> None:
    def missing(_context):
        raise MissingRunError("tuning setting4-n5-h2-ds-base", 3, 3, Path("nowhere"))

    monkeypatch.setitem(experiments.EXPERIMENTS, "setting4", missing)
    table = paper_overview(ExperimentContext(profile="quick", stored_only=True))
    how = table.set_index("item")["how close"]
    for item in ("Figure 4", "Table 9"):
        assert how[item].startswith(NOT_COMPUTED)
        assert "tuning setting4-n5-h2-ds-base (3 of 3 runs missing)" in how[item]
    others = how.drop(["Figure 4", "Table 9"])
    assert not others.str.startswith(NOT_COMPUTED).any()
    pd.testing.assert_series_equal(
        others, quick_overview["how close"].drop(["Figure 4", "Table 9"])
    )


def test_an_empty_store_trains_nothing_and_writes_nothing(tmp_path, no_training) -> None:
    context = ExperimentContext(profile="smoke", store=ResultStore(tmp_path / "results"))
    table = paper_overview(context).set_index("item")  # not stored-only: the overview makes it so
    assert list(table.index) == ITEMS
    computed = ["Tables 3-5", "Table 2", "Figure 5"]
    assert not table.loc[computed, "how close"].str.contains(NOT_COMPUTED).any()
    for item in table.index.drop(computed):
        assert NOT_COMPUTED in table.loc[item, "how close"], item
    assert "not re-runnable (private data)" in table.loc["Table 1", "how close"]
    assert not (tmp_path / "results").exists()


def test_the_markdown_has_cross_references_and_a_csv_link(quick_overview) -> None:
    text = overview_markdown(quick_overview.reset_index())
    assert "| Table 6 |" in text and "{ref}`settings`" in text
    assert "{ref}`tmall`, {ref}`proxy`" in text
    assert "median \\|test gap" in text  # a | in a cell does not split it
    assert 'download="paper_overview.csv"' in text
    with pytest.raises(ValueError, match="lacks the column"):
        overview_markdown(quick_overview.drop(columns="how close"))
