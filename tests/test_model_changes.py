"""Changed problem constants (lost sales, the order cap, the costs) and the cap-binding share."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from deepstock.datasets.catalog import load_setting
from deepstock.model.optimal import benchmark_losses
from deepstock.model.simulator import simulate
from deepstock.paper.experiments import ExperimentContext, setting4
from deepstock.paper.tables import cap_binding_note, cap_binding_table, model_change_note
from deepstock.results.store import dataset_fingerprint


def test_with_model_changes_the_constants_and_the_name_but_not_the_demand():
    original = load_setting("setting1")
    changed = original.with_model(lost_sales=True, max_replenish=40, holding_cost=0.2)
    assert changed.name == "setting1-lost_sales-max_replenish40-holding_cost0.2"
    assert (changed.lost_sales, changed.max_replenish, changed.holding_cost) == (True, 40.0, 0.2)
    assert changed.backlog_cost == original.backlog_cost
    np.testing.assert_array_equal(changed.demand, original.demand)
    assert changed.params["model_changes"] == {
        "lost_sales": True,
        "max_replenish": 40.0,
        "holding_cost": 0.2,
    }
    assert dataset_fingerprint(changed) != dataset_fingerprint(original)
    # nothing changed: the dataset itself (its runs are the paper's)
    assert original.with_model(holding_cost=0.1, lost_sales=None) is original


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"cap": 50}, r"unknown model parameter\(s\) \['cap'\]"),
        ({"max_replenish": 0}, "max_replenish must be a finite number > 0"),
        ({"max_replenish": float("inf")}, "max_replenish must be a finite number"),
        ({"holding_cost": float("nan")}, "holding_cost must be a finite number"),
        ({"backlog_cost": -1}, "backlog_cost must be a finite number >= 0"),
        ({"lost_sales": "yes"}, "lost_sales must be true or false"),
    ],
)
def test_bad_model_changes_are_one_clear_line(changes, message):
    with pytest.raises(ValueError, match=message):
        load_setting("setting1").with_model(**changes)
    with pytest.raises(ValueError, match=message):  # before any training
        ExperimentContext(profile="smoke", model=changes)


def test_cap_binding_rate_counts_the_order_days_on_which_the_cap_is_ordered():
    dataset = load_setting("setting1").subset("test")
    cap = dataset.max_replenish
    never = simulate(dataset, lambda obs: torch.zeros_like(obs.inventory_position))
    always = simulate(dataset, lambda obs: torch.full_like(obs.inventory_position, 10 * cap))
    exactly = simulate(dataset, lambda obs: torch.full_like(obs.inventory_position, cap))
    assert float(never.cap_binding_rate.max()) == 0.0
    assert float(always.cap_binding_rate.min()) == 1.0
    assert float(exactly.cap_binding_rate.min()) == 1.0  # ordering the cap itself binds

    # every second order day at the cap: half of them
    def alternate(obs):
        at_cap = (obs.day // int(dataset.review_period[0])) % 2 == 0
        return torch.full_like(obs.inventory_position, 2 * cap if at_cap else 1.0)

    rate = simulate(dataset, alternate).cap_binding_rate
    order_days = [
        day for day in range(1, dataset.horizon) if day % int(dataset.review_period[0]) == 0
    ]
    expected = np.mean([(day // int(dataset.review_period[0])) % 2 == 0 for day in order_days])
    np.testing.assert_allclose(rate.numpy(), expected)
    assert always.metrics()["cap_binding_rate"] == 1.0


def test_benchmarks_report_their_cap_binding_share_and_a_small_cap_binds():
    (paper_cap,) = [
        r for r in benchmark_losses(load_setting("setting1")) if r["policy"] == "dp_true"
    ]
    small = load_setting("setting1").with_model(max_replenish=8)
    (small_cap,) = [r for r in benchmark_losses(small) if r["policy"] == "dp_true"]
    assert paper_cap["test_cap_binding_rate"] < 0.05 < small_cap["test_cap_binding_rate"]
    assert small_cap["test_loss"] > paper_cap["test_loss"]  # the DP plans with the cap


def test_a_changed_model_runs_setting4_with_its_own_runs_and_cap(isolated_results):
    context = ExperimentContext(profile="smoke", model={"max_replenish": 110, "lost_sales": True})
    row = setting4(context, n_skus=[5], horizons=[2])["results"].iloc[0]
    # the tuner's search space follows the changed cap instead of refusing the dataset
    assert 0.0 <= row["test_cap_binding_rate"] <= 1.0
    assert row["benchmark_test_cap_binding_rate"] > 0.05  # the fractile orders above 110
    paper = setting4(ExperimentContext(profile="smoke"), n_skus=[5], horizons=[2])["results"]
    assert paper.iloc[0]["test_loss"] != row["test_loss"]
    names = {p.name for p in (isolated_results / "results" / "smoke" / "runs").rglob("*.json")}
    assert len(names) >= 4  # both models' runs, kept apart


def test_the_pages_notes_name_the_changes_and_the_policies_that_hit_the_cap():
    assert model_change_note({}, "backlog") == ""
    note = model_change_note({"lost_sales": True}, "backlog", benchmark_note="No DP.")
    assert note.startswith("> **Warning.**") and "`lost_sales = True`" in note and "No DP." in note
    policies = pd.DataFrame(
        {
            "setting": ["setting1", "setting1", "setting2"],
            "policy": ["dp_true (benchmark)", "DS Base", "DS Base"],
            "test_cap_binding_rate": [0.01, 0.30, np.nan],
        }
    )
    warning = cap_binding_note(policies)
    assert "DS Base in setting1 (30.0 %)" in warning and "dp_true" not in warning
    calm = cap_binding_note(policies.iloc[[0, 2]])
    assert "at most 5%" in calm and "(1 of 2)" in calm
    table = cap_binding_table(policies)
    assert table.loc["DS Base", "setting1 (% of order days)"] == 30.0
    assert np.isnan(table.loc["DS Base", "setting2 (% of order days)"])


def test_cli_run_changes_the_model_of_settings_and_setting4_only(monkeypatch, capsys):
    import deepstock.paper.experiments as experiments
    from deepstock.tools.cli import main

    seen = {}

    def fake_run(name, context):
        seen[name] = dict(context.model)
        return {"results": pd.DataFrame({"x": [1]})}

    monkeypatch.setattr(experiments, "run_experiment", fake_run)
    argv = ["run", "setting4", "--profile", "smoke", "--lost-sales", "--max-replenish", "110"]
    assert main([*argv, "--json"]) == 0
    assert seen["setting4"] == {"max_replenish": 110.0, "lost_sales": True}
    capsys.readouterr()
    with pytest.raises(SystemExit) as error:
        main(["run", "tuned", "--profile", "smoke", "--holding-cost", "0.2"])
    err = capsys.readouterr().err
    assert error.value.code == 2 and "not in `run tuned`" in err and "Traceback" not in err
    with pytest.raises(SystemExit):
        main(["run", "settings", "--profile", "smoke", "--backlog-cost", "-1"])
    assert "backlog_cost must be a finite number >= 0" in capsys.readouterr().err
