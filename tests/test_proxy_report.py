"""The proxy comparison's table (Table 1's layout), figure and claim checks, on a made-up table."""

import matplotlib
import numpy as np
import pandas as pd
import pytest

from deepstock.paper.plots import plot_proxy_tradeoff
from deepstock.paper.tables import proxy_table
from deepstock.paper.verdict import check_proxy_claims, claims_frame

matplotlib.use("Agg")


def results_frame(j_overrides=None):
    """Incumbent (SR 2 %, TT 6 days) and the 12 pairs, with J = SR + TT / 2."""
    rows = [("incumbent", "forecast base stock", 2.0, 6.0)]
    sr = {"none": 9.0, "base": 5.0, "coeff": 3.0, "both": 1.0}
    for offset, method in ((0.0, "ddpg"), (1.0, "ppo"), (0.5, "ds")):
        for reg, value in sr.items():
            rows.append((method, reg, value + offset, 8.0))
    table = pd.DataFrame(
        rows,
        columns=["method", "regularization", "test_stockout_rate_pct", "test_turnover_days"],
    )
    table["test_objective"] = table["test_stockout_rate_pct"] + table["test_turnover_days"] / 2
    for (method, reg), value in (j_overrides or {}).items():
        mask = (table["method"] == method) & (table["regularization"] == reg)
        table.loc[mask, "test_objective"] = value
    table["val_objective"] = table["test_objective"] * 0.9
    reference = table.loc[0, "test_objective"]
    table["test_gap_pct"] = 100 * (table["test_objective"] - reference) / reference
    table["train_time_s"] = np.r_[0.0, np.full(12, 120.0)]
    return table


def test_proxy_table_layout_and_differences():
    table = proxy_table(results_frame())
    assert table.index[0] == "incumbent (forecast base stock)"
    assert table.index[1] == "DDPG None" and len(table) == 13
    row = table.loc["DDPG Both"]
    assert row["SR (%)"] == 1.0 and row["J"] == 5.0
    assert row["ΔSR (points)"] == -1.0
    assert row["ΔTT (days)"] == 2.0
    assert row["J gap (%)"] == pytest.approx(0.0)
    assert row["tuning (min)"] == 2.0
    with pytest.raises(ValueError, match="exactly one incumbent"):
        proxy_table(results_frame().iloc[1:])
    with pytest.raises(ValueError, match="lacks the column"):
        proxy_table(results_frame().drop(columns="train_time_s"))


def test_proxy_tradeoff_figure_has_every_policy():
    fig = plot_proxy_tradeoff(results_frame())
    ax = fig.axes[0]
    labels = ax.get_legend_handles_labels()[1]
    assert labels[0] == "incumbent" and "DDPG Both" in labels and len(labels) == 13
    with pytest.raises(ValueError, match="lacks"):
        plot_proxy_tradeoff(results_frame().drop(columns="test_turnover_days"))


def test_proxy_claims_on_a_made_up_table():
    # J: DDPG None 13 / Both 5; DS None 13.5 / Base 11.5 / Both 5.5. So Both is DDPG's best,
    # DS's best is Both (not Base), DDPG None is not worse than DS None, DDPG Both beats DS.
    checks = {c.claim_id: c for c in check_proxy_claims(results_frame())}
    assert checks["proxy_both_best_ddpg"].verdict == "supported"
    assert checks["proxy_base_best_ds"].verdict == "not supported"
    assert checks["proxy_ddpg_none_worse_than_ds_none"].verdict == "not supported"
    assert checks["proxy_regularized_ddpg_beats_ds"].verdict == "supported"
    flipped = results_frame({("ds", "base"): 4.0, ("ddpg", "none"): 20.0})
    checks = {c.claim_id: c for c in check_proxy_claims(flipped)}
    assert checks["proxy_base_best_ds"].verdict == "supported"
    assert checks["proxy_ddpg_none_worse_than_ds_none"].verdict == "supported"
    assert checks["proxy_regularized_ddpg_beats_ds"].verdict == "not supported"  # 5 > 4
    frame = claims_frame(check_proxy_claims(results_frame()[results_frame()["method"] != "ds"]))
    assert list(frame["verdict"]).count("not testable") == 3
