"""The paper's reported numbers are internally consistent (gaps match losses and benchmarks)."""

import pytest

from deepstock.paper.reported import (
    PAPER_BENCHMARK_LOSS,
    paper_setting4_table,
    paper_settings_table,
)


def test_settings_gaps_follow_from_losses_and_the_implied_benchmark():
    table = paper_settings_table()
    assert len(table) == 18
    for row in table.itertuples():
        benchmark = PAPER_BENCHMARK_LOSS[row.setting]
        # the reported gaps are rounded and the benchmark is implied: agree to ~0.15 points
        assert 100 * (row.test_loss - benchmark) / benchmark == pytest.approx(
            row.test_gap_pct, abs=0.15
        )
        assert 100 * (row.val_loss - benchmark) / benchmark == pytest.approx(
            row.val_gap_pct, abs=0.15
        )


def test_setting4_gaps_follow_from_losses_and_benchmarks():
    table = paper_setting4_table()
    assert len(table) == 15
    for row in table.itertuples():
        gap = 100 * (row.test_loss - row.benchmark_test_loss) / row.benchmark_test_loss
        assert gap == pytest.approx(row.test_gap_pct, abs=0.05)
