"""The book's shared tables (deepstock.paper.tables): layout, numbers carried through, bad input."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from deepstock.paper.experiments import METHOD_PAIRS
from deepstock.paper.reported import paper_setting4_table, paper_settings_table
from deepstock.paper.tables import (
    benchmarks_table,
    budget_line,
    method_label,
    paper_training_lengths,
    setting4_table,
    settings_table,
    styled,
    training_lengths,
)
from deepstock.tuning.profiles import PROFILES


def _results() -> pd.DataFrame:
    """The paper's table as if it were ours, with our losses 0.1 higher."""
    paper = paper_settings_table()
    ours = paper.copy()
    for key in ("val_loss", "val_gap_pct", "test_loss", "test_gap_pct"):
        ours[f"paper_{key}"] = paper[key]
    ours["test_loss"] += 0.1
    ours["test_gap_pct"] += 1.5
    return ours


def test_settings_table_puts_ours_and_the_papers_side_by_side() -> None:
    table = settings_table(_results(), "setting2")
    assert list(table.index) == [method_label(m, r) for m, r in METHOD_PAIRS]
    assert table.index[1] == "DDPG Base"
    row = table.loc["DS Base"]
    assert row[("test loss", "paper")] == pytest.approx(2.4342)
    assert row[("test loss", "ours")] == pytest.approx(2.5342)
    assert row[("validation gap (%)", "ours")] == pytest.approx(-1.26)
    assert table[("test gap (%)", "ours − paper")].tolist() == pytest.approx([1.5] * 6)
    assert table.columns.nlevels == 2 and len(table.columns) == 9


def test_settings_table_refuses_an_unknown_setting_and_missing_columns() -> None:
    with pytest.raises(ValueError, match=r"'setting4' is not in the results"):
        settings_table(_results(), "setting4")
    with pytest.raises(ValueError, match=r"\['paper_test_loss'\]"):
        settings_table(_results().drop(columns="paper_test_loss"), "setting1")


def test_setting4_table_is_indexed_by_n_and_h_and_tolerates_unreported_cells() -> None:
    paper = paper_setting4_table()
    ours = paper.copy()
    for key in ("benchmark_test_loss", "val_loss", "val_gap_pct", "test_loss", "test_gap_pct"):
        ours[f"paper_{key}"] = paper[key]
    extra = ours.iloc[[0]].assign(n_skus=40)
    extra = extra.drop(columns=[c for c in extra.columns if c.startswith("paper_")])
    table = setting4_table(pd.concat([ours.iloc[::-1], extra], ignore_index=True))
    assert table.index.names == ["N", "H"]
    assert table.index[0] == (5, 2) and table.index[-1] == (40, 2)
    assert table.loc[(10, 64), ("test gap (%)", "paper")] == pytest.approx(3.31)
    assert table.loc[(10, 64), ("test gap (%)", "ours − paper")] == pytest.approx(0.0)
    assert math.isnan(table.loc[(40, 2), ("test loss", "paper")])


def test_benchmarks_table_marks_the_primary_and_the_papers_implied_loss() -> None:
    benchmarks = pd.DataFrame(
        [
            ("setting1", "dp_true", 0.879, 0.859, True),
            ("setting1", "dp_empirical", 0.879, 0.867, False),
            ("setting2", "ds_on_split", 2.3, 2.3, True),
        ],
        columns=["setting", "policy", "val_loss", "test_loss", "primary"],
    )
    table = benchmarks_table(benchmarks)
    assert table.loc[("setting 1", "dp_true"), "gaps measured against"] == "yes"
    assert table.loc[("setting 1", "dp_empirical"), "gaps measured against"] == "no"
    assert table.loc[("setting 1", "dp_empirical"), "paper's test loss"] == pytest.approx(0.867)
    assert math.isnan(table.loc[("setting 1", "dp_true"), "paper's test loss"])
    assert table.loc[("setting 2", "ds_on_split"), "paper's test loss"] == pytest.approx(2.284)
    assert list(table.columns) == [
        "gaps measured against",
        "validation loss",
        "test loss",
        "paper's test loss",
    ]
    with pytest.raises(ValueError, match=r"\['primary'\]"):
        benchmarks_table(benchmarks.drop(columns="primary"))


def test_budget_line_reads_the_profiles_and_the_papers_lengths() -> None:
    assert paper_training_lengths()["ddpg"] == {"total_steps": 200_000, "patience": 10}
    assert paper_training_lengths()["ds"] == {"epochs": 3000, "patience": 30}
    quick = PROFILES["quick"]
    line = budget_line("quick")
    assert f"{quick.n_trials} stage-1 trials" in line
    assert f"the best {quick.top_k} re-run with {quick.n_seeds} seeds each" in line
    assert f"DDPG: total steps {quick.training['ddpg']['total_steps']:,}" in line
    assert "**The paper:** 50 stage-1 trials, the best 5 re-run with 5 seeds each" in line
    assert "3 repeats averaged" in line and "total steps 200,000" in line
    assert "The paper:" not in budget_line("paper")
    # a profile that fixes nothing trains as long as the paper
    assert training_lengths("paper") == paper_training_lengths()
    with pytest.raises(ValueError, match="unknown profile"):
        budget_line("huge")


def test_styled_formats_losses_gaps_and_differences() -> None:
    table = settings_table(_results(), "setting1")
    table.iloc[0, 1] = float("nan")
    html = styled(table).to_html()
    assert "0.9443" in html and "1.0443" in html  # test losses, 4 decimals
    assert ">8.92<" in html and "+1.50" in html  # a gap with 2 decimals, a signed difference
    assert "–" in html  # the missing value
    assert 'class="dataframe"' in html
    html = styled(table, digits={("test loss", "paper"): 1}).to_html()
    assert ">0.9<" in html and "0.9443" not in html
    with pytest.raises(ValueError, match="DataFrame"):
        styled([1, 2])
