"""The inventory-recommendation coordination model, its agents, training and experiment."""

from __future__ import annotations

import dataclasses
import json
import math
import subprocess
import sys

import numpy as np
import pytest
import torch

from deepstock.beyond.coordination.agents import (
    RuleBasedPair,
    SingleAgent,
    TwoAgentPolicy,
    simulate_joint,
)
from deepstock.beyond.coordination.experiment import (
    COORDINATION_PROFILES,
    STUDY_NAME,
    check_coordination_claims,
    coordination_experiment,
    experiment_splits,
)
from deepstock.beyond.coordination.model import (
    JointInstances,
    JointModelConfig,
    advance_day,
    demand_rate,
    generate_instances,
)
from deepstock.beyond.coordination.training import (
    METHODS,
    TRAINED_METHODS,
    TrainingConfig,
    step_sizes,
    steps_to_fraction,
    train_method,
)
from deepstock.model.simulator import InventorySimulator
from deepstock.results.store import ResultStore

SMOKE = COORDINATION_PROFILES["smoke"]


def _two_products(**overrides) -> JointInstances:
    """One instance of two products with round attributes (for hand-computed cases)."""
    config = JointModelConfig(n_products=2, horizon=8, review_period=2, lead_time=1)
    one = {"dtype": torch.float64}
    values = {
        "base_rate": torch.tensor([[10.0, 4.0]], **one),
        "efficiency": torch.tensor([[1.0, 0.5]], **one),
        "price": torch.tensor([[10.0, 20.0]], **one),
        "margin": torch.tensor([[4.0, 5.0]], **one),
        "holding": torch.tensor([[0.5, 1.0]], **one),
        "penalty": torch.tensor([[2.0, 3.0]], **one),
        "phase": torch.zeros(1, 2, **one),
        "noise": torch.ones(1, 8, 2, **one),
        "season": torch.ones(1, 8, 2, **one),
    }
    values.update(overrides)
    return JointInstances(config=config, **values)


def test_profit_of_a_hand_computed_day() -> None:
    instances = _two_products()
    # on hand 7 and 3, arriving tomorrow 5 and 0; day 2 is a review day (P = 2)
    pipeline = torch.tensor([[[7.0, 5.0], [3.0, 0.0]]], dtype=torch.float64)
    order = torch.tensor([[2.0, 6.0]], dtype=torch.float64)
    demand = torch.tensor([[9.0, 1.0]], dtype=torch.float64)
    day = advance_day(instances, 2, pipeline, order, demand)
    # L = 1: the orders enter the slot of tomorrow's arrivals, on hand is unchanged
    assert day.sales.tolist() == [[7.0, 1.0]]
    assert day.lost.tolist() == [[2.0, 0.0]]
    assert day.end_inventory.tolist() == [[0.0, 2.0]]
    assert day.next_pipeline.tolist() == [[[0.0 + 5.0 + 2.0, 0.0], [2.0 + 0.0 + 6.0, 0.0]]]
    # profit: 4*7 - 0.5*0 - 2*2 + 5*1 - 1*2 - 3*0 = 28 - 4 + 5 - 2 = 27
    assert float(day.profit) == pytest.approx(27.0)
    # day 3 is not a review day: the order is ignored
    off = advance_day(instances, 3, pipeline, order, demand)
    assert off.order.tolist() == [[0.0, 0.0]]
    assert off.next_pipeline.tolist() == [[[5.0, 0.0], [2.0, 0.0]]]


def test_demand_rate_and_response_by_hand() -> None:
    instances = _two_products()
    uniform = torch.tensor([[0.5, 0.5]], dtype=torch.float64)
    # r(1/n) = 1: rate = mu (1 + e)
    assert demand_rate(instances, 0, uniform)[0].tolist() == pytest.approx([20.0, 6.0])
    # all exposure on product 0: r(1) = log(1 + 4 * 2) / log(5), r(0) = 0
    lopsided = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    expected = [10.0 * (1.0 + math.log(9.0) / math.log(5.0)), 4.0]
    assert demand_rate(instances, 0, lopsided)[0].tolist() == pytest.approx(expected)


def test_zero_exposure_and_zero_stock_sells_nothing() -> None:
    instances = _two_products()
    intention = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    demand = demand_rate(instances, 0, intention)  # product 1 keeps its base demand only
    assert float(demand[0, 1]) == pytest.approx(4.0)
    pipeline = torch.tensor([[[5.0, 0.0], [0.0, 0.0]]], dtype=torch.float64)
    day = advance_day(instances, 1, pipeline, None, demand)
    assert float(day.sales[0, 1]) == 0.0
    assert float(day.lost[0, 1]) == pytest.approx(4.0)
    assert float(day.end_inventory[0, 1]) == 0.0


@pytest.mark.parametrize("policy_name", ["two_agents", "siloed", "single_agent", "rule_based"])
def test_exposure_stays_on_the_simplex(policy_name: str) -> None:
    config = JointModelConfig(n_products=4, horizon=12)
    instances = generate_instances(config, 6, seed=3)
    torch.manual_seed(0)
    policies = {
        "two_agents": TwoAgentPolicy(config.lead_time, config.review_period, [8]),
        "siloed": TwoAgentPolicy(config.lead_time, config.review_period, [8], siloed=True),
        "single_agent": SingleAgent(4, config.lead_time, config.review_period, [8]),
        "rule_based": RuleBasedPair(2.0),
    }
    policy = policies[policy_name]
    with torch.no_grad():
        for layer in policy.modules():  # large weights: far from uniform exposure
            if isinstance(layer, torch.nn.Linear):
                layer.weight.mul_(20.0)
    rollout = simulate_joint(instances, policy)
    assert (rollout.exposure >= 0).all()
    assert torch.allclose(rollout.exposure.sum(dim=-1), torch.ones(6, 12, dtype=torch.float64))
    assert (rollout.orders >= 0).all() and (rollout.orders <= instances.max_order).all()


def test_inventory_matches_the_project_simulator_on_the_same_demand() -> None:
    config = JointModelConfig(n_products=3, horizon=20, review_period=3, lead_time=2)
    instances = generate_instances(config, 4, seed=5)
    rollout = simulate_joint(instances, RuleBasedPair())
    batch, n = 4, 3
    demand = rollout.demand.permute(0, 2, 1).reshape(batch * n, config.horizon)
    orders = rollout.orders.permute(0, 2, 1).reshape(batch * n, config.horizon)
    simulator = InventorySimulator(
        demand,
        config.review_period,
        config.lead_time,
        initial_stock=(config.initial_cover * instances.scale).reshape(-1),
        max_replenish=instances.max_order,
        lost_sales=True,
        device="cpu",
    )
    replay = simulator.rollout(lambda observation: orders[:, observation.day])
    for name in ("end_inventory", "sales"):
        ours = getattr(rollout, name).permute(0, 2, 1).reshape(batch * n, -1)
        assert torch.allclose(ours, getattr(replay, name), atol=1e-9), name
    lost = rollout.lost.permute(0, 2, 1).reshape(batch * n, -1)
    assert torch.allclose(lost, replay.lost_demand, atol=1e-9)


def test_rule_based_pair_follows_margin_times_efficiency() -> None:
    instances = generate_instances(JointModelConfig(n_products=4, horizon=10), 3, seed=1)
    plan = RuleBasedPair(1.0).plan(instances)
    expected = instances.priority / instances.priority.sum(dim=1, keepdim=True)
    assert torch.allclose(plan, expected)
    assert torch.allclose(RuleBasedPair(0.0).plan(instances), torch.full_like(plan, 0.25))


def test_step_sizes_follow_the_two_timescale_schedule() -> None:
    config = TrainingConfig(learning_rate=0.01, timescale_ratio=4.0, fast_decay=0.5, slow_decay=1.0)
    start = step_sizes(config, "multi_timescale", 0)
    assert start["replenishment"] == pytest.approx(0.01)
    assert start["recommendation"] == pytest.approx(0.0025)
    later = step_sizes(config, "multi_timescale", 150)  # 1 + k / tau = 4
    assert later["replenishment"] == pytest.approx(0.005)
    assert later["recommendation"] == pytest.approx(0.000625)
    assert later["recommendation"] / later["replenishment"] < 0.25  # the ratio falls
    same = step_sizes(config, "single_timescale", 150)
    assert same["recommendation"] == same["replenishment"] == pytest.approx(0.005)
    assert set(step_sizes(config, "single_agent", 0)) == {"joint"}


def test_steps_to_fraction_by_hand() -> None:
    steps = np.array([0, 10, 20, 30, 40, 50])
    values = np.array([-10.0, 50.0, 85.0, 96.0, 100.0, 104.0])  # final = mean(96, 100, 104)
    assert steps_to_fraction(steps, values) == 30.0  # 96 - (-10) >= 0.95 * 110
    assert math.isnan(steps_to_fraction(steps, values[::-1]))


@pytest.fixture(scope="module")
def smoke_splits() -> dict[str, JointInstances]:
    return experiment_splits(SMOKE)


@pytest.mark.parametrize("method", METHODS)
def test_each_method_trains_on_a_tiny_instance(method: str, smoke_splits) -> None:
    run = train_method(method, smoke_splits, SMOKE.training, seed=1)
    assert math.isfinite(run.test_profit) and math.isfinite(run.val_profit)
    assert run.val_profit == max(run.curve_profit)  # the best validated policy is tested
    if method in TRAINED_METHODS:
        assert run.curve_steps == [0, 3, 6]
        assert run.n_parameters > 0
        assert run.val_profit > run.curve_profit[0]  # it learned something in 6 steps
    else:
        assert run.curve_steps == [0] and run.n_parameters == 0
    assert math.isfinite(run.behaviours["priority_corr"])


def test_same_seed_same_numbers(smoke_splits) -> None:
    first = train_method("multi_timescale", smoke_splits, SMOKE.training, seed=4).record()
    second = train_method("multi_timescale", smoke_splits, SMOKE.training, seed=4).record()
    other = train_method("multi_timescale", smoke_splits, SMOKE.training, seed=5).record()
    for key in ("curve_profit", "test_profit", "behaviours"):
        assert first[key] == second[key]
    assert first["curve_profit"] != other["curve_profit"]


def _fake_run(method: str, seed: int, profit: float, **behaviours: float) -> dict:
    values = {
        "exposure_stock_corr": 0.3,
        "target_exposure_corr": 0.2,
        "priority_corr": 0.8,
        "demand_cv_ratio": 0.8,
        "exposure_cv": 0.1,
    }
    values.update(behaviours)
    return {
        "method": method,
        "seed": seed,
        "curve_steps": [0, 10, 20, 30],
        "curve_profit": [0.0, profit * 0.9, profit, profit],
        "val_profit": profit,
        "test_profit": profit,
        "behaviours": values,
        "n_parameters": 500 if method == "single_agent" else 100,
        "wall_time_s": 1.0,
    }


def test_claims_are_decided_by_the_numbers_beyond_seed_noise() -> None:
    runs = [_fake_run("multi_timescale", s, 100.0 + s) for s in range(3)]
    runs += [_fake_run("single_timescale", s, 90.0 + s) for s in range(3)]
    runs += [_fake_run("single_agent", s, 100.5 + s) for s in range(3)]  # within noise
    runs += [_fake_run("siloed", s, 80.0 + s) for s in range(3)]
    runs += [_fake_run("rule_based", 0, 95.0, exposure_stock_corr=math.nan)]
    verdicts = {c.claim_id: c for c in check_coordination_claims(runs)}
    assert verdicts["profit_beats_baselines"].verdict == "partly supported"
    assert verdicts["profit_beats_baselines"].holding == 1
    assert verdicts["coordination_beats_silos"].verdict == "supported"
    assert verdicts["smaller_model"].verdict == "supported"
    assert verdicts["recommend_in_stock"].verdict == "supported"
    assert verdicts["demand_smoothing"].verdict == "supported"
    flat = [dict(r, behaviours={**r["behaviours"], "demand_cv_ratio": 0.99}) for r in runs]
    assert {c.claim_id: c for c in check_coordination_claims(flat)}[
        "demand_smoothing"
    ].verdict == "not supported"


def test_experiment_stores_its_runs_and_reads_them_back(tmp_path) -> None:
    store = ResultStore(tmp_path)
    lines: list[str] = []
    tables = coordination_experiment("smoke", store=store, n_seeds=1, progress=lines.append)
    assert len(lines) == len(METHODS)
    assert list(tables["comparison"]["method"]) == list(METHODS)
    assert store.get_study(STUDY_NAME) is not None
    again = coordination_experiment("smoke", store=store, n_seeds=1, progress=lines.append)
    assert len(lines) == len(METHODS)  # nothing retrained
    assert again["comparison"].equals(tables["comparison"])


def test_the_stored_quick_results_are_reproduced() -> None:
    """The committed quick record: the rule-based run is recomputed exactly."""
    payload = ResultStore.for_profile("quick").get_study(STUDY_NAME)
    assert payload is not None, "data/results/quick/studies/coordination.json is committed"
    profile = COORDINATION_PROFILES["quick"]
    assert payload["identity"] == profile.identity()  # the record is the current profile's
    stored = {(r["method"], r["seed"]): r for r in payload["runs"]}
    assert set(stored) >= {(m, 0) for m in METHODS}
    run = train_method("rule_based", experiment_splits(profile), profile.training, seed=0)
    assert run.test_profit == pytest.approx(stored[("rule_based", 0)]["test_profit"], rel=1e-9)


@pytest.mark.slow
def test_a_stored_quick_training_run_is_reproduced() -> None:
    payload = ResultStore.for_profile("quick").get_study(STUDY_NAME)
    assert payload is not None, "data/results/quick/studies/coordination.json is committed"
    profile = COORDINATION_PROFILES["quick"]
    stored = {(r["method"], r["seed"]): r for r in payload["runs"]}[("multi_timescale", 0)]
    run = train_method("multi_timescale", experiment_splits(profile), profile.training, seed=0)
    # another CPU may round the last digits otherwise; on one machine the numbers are equal
    assert run.curve_profit == pytest.approx(stored["curve_profit"], rel=1e-6)
    assert run.test_profit == pytest.approx(stored["test_profit"], rel=1e-6)


def test_bad_options_name_the_parameter() -> None:
    with pytest.raises(ValueError, match="n_products"):
        JointModelConfig(n_products=1)
    with pytest.raises(ValueError, match="carryover"):
        JointModelConfig(carryover=1.0)
    with pytest.raises(ValueError, match="slow_decay"):
        TrainingConfig(fast_decay=0.5, slow_decay=0.1)
    with pytest.raises(ValueError, match="unknown training option"):
        TrainingConfig.from_mapping({"step": 3})
    with pytest.raises(ValueError, match="method"):
        train_method("dqn", {}, SMOKE.training)
    with pytest.raises(ValueError, match="profile"):
        coordination_experiment("huge")


def test_command_line_prints_the_comparison_as_json(tmp_path, capsys) -> None:
    from deepstock.tools.cli import main

    assert main(["run", "coordination", "--profile", "smoke", "--seeds", "1",
                 "--results", str(tmp_path), "--json"]) == 0  # fmt: skip
    tables = json.loads(capsys.readouterr().out)
    assert [row["method"] for row in tables["comparison"]] == list(METHODS)
    assert {"test_profit_mean", "test_profit_std", "steps_to_95_mean", "curve_spread"} <= set(
        tables["comparison"][0]
    )
    with pytest.raises(SystemExit):
        main(["run", "coordination", "--profile", "smoke", "--trials", "3"])


def test_the_paper_layer_does_not_import_beyond() -> None:
    code = (
        "import sys, deepstock.paper.experiments, deepstock.paper.verdict; "
        "print('deepstock.beyond' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_the_profit_gradient_reaches_both_agents() -> None:
    config = JointModelConfig(n_products=3, horizon=12)
    instances = generate_instances(config, 4, seed=2)
    torch.manual_seed(0)
    for siloed in (False, True):
        policy = TwoAgentPolicy(config.lead_time, config.review_period, [8], siloed=siloed)
        rollout = simulate_joint(instances, policy, differentiable=True)
        (-rollout.mean_profit).backward()
        for name, params in policy.parameter_groups().items():
            norm = sum(float(p.grad.abs().sum()) for p in params if p.grad is not None)
            assert norm > 0, (name, siloed)


def test_rule_based_target_is_the_critical_fractile_without_season() -> None:
    instances = _two_products()  # L = 1, P = 2: the target covers 3 days
    config = dataclasses.replace(instances.config, season_amplitude=0.0)
    instances = dataclasses.replace(instances, config=config)
    policy = RuleBasedPair(1.0)
    plan = policy.plan(instances)
    pipeline = torch.zeros(1, 2, 2, dtype=torch.float64)
    # the intention is already at the plan: every day of the cover has the same rate
    exposure, target = policy.decide(instances, 2, pipeline, plan, order_day=True)
    assert torch.allclose(exposure, plan)
    rate = demand_rate(instances, 2, plan)
    over = instances.margin + instances.penalty
    z = torch.special.ndtri(over / (over + instances.holding))
    expected = 3 * rate + z * config.demand_cv * math.sqrt(3) * rate
    assert torch.allclose(target, expected)
