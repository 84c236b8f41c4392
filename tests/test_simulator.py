"""The batched simulator: hand-computed cases and property-based invariants (the book's *The inventory model* chapter)."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from deepstock.model.heuristics import ConstantOrder, StationaryBaseStock, TimeDependentBaseStock
from deepstock.model.simulator import InventorySimulator, order_windows


@st.composite
def problems(draw, lost_sales=None):
    """A small random problem: demand, P, L (constant or per day), costs, cap, initial stock."""
    batch = draw(st.integers(1, 4))
    review_period = draw(st.integers(1, 4))
    lead_time = draw(st.integers(0, 3))
    horizon = draw(st.integers(review_period + lead_time + 1, review_period + lead_time + 12))
    demand = draw(
        st.lists(
            st.lists(st.integers(0, 20), min_size=horizon, max_size=horizon),
            min_size=batch,
            max_size=batch,
        )
    )
    if lost_sales is None:
        lost_sales = draw(st.booleans())
    return {
        "demand": np.asarray(demand, dtype=float),
        "review_period": review_period,
        "lead_time": lead_time,
        "initial_stock": float(draw(st.integers(0, 30))),
        "max_replenish": float(draw(st.integers(1, 60))),
        "holding_cost": draw(st.floats(0.0, 2.0)),
        "backlog_cost": draw(st.floats(0.0, 2.0)),
        "lost_sales": lost_sales,
        "level": float(draw(st.integers(0, 80))),
    }


def make(problem, **overrides):
    kwargs = {k: v for k, v in problem.items() if k != "level"}
    kwargs.update(overrides)
    demand = kwargs.pop("demand")
    return InventorySimulator(
        demand, kwargs.pop("review_period"), kwargs.pop("lead_time"), device="cpu", **kwargs
    )


def test_hand_computed_backlog_trajectory():
    # P = 2, L = 1, one trajectory, order up to 10 on days 2 and 4.
    demand = [[3.0, 4.0, 2.0, 5.0, 1.0, 6.0, 2.0]]
    sim = InventorySimulator(
        demand,
        2,
        1,
        initial_stock=5.0,
        holding_cost=1.0,
        backlog_cost=2.0,
        max_replenish=100.0,
        device="cpu",
    )
    rollout = sim.rollout(StationaryBaseStock(10.0))
    # day 0: on hand 5 -> y=2; day 1: y=-2; day 2: IP=-2, order 12 -> arrives day 3; y=-4;
    # day 3: on hand -4+12=8 -> y=3; day 4: IP=3, order 7 -> arrives day 5; y=2;
    # day 5: on hand 2+7=9 -> y=3; day 6: order day? 6 % 2 == 0: IP=3, order 7; y=1.
    assert rollout.orders[0].tolist() == [0, 0, 12, 0, 7, 0, 7]
    assert rollout.end_inventory[0].tolist() == [2, -2, -4, 3, 2, 3, 1]
    assert rollout.inventory_position[0].tolist() == [5, 2, -2, 8, 3, 9, 3]
    # W = 3: days 3..6 counted, loss = 1 * (3 + 2 + 3 + 1) / 4
    assert rollout.counted[0].tolist() == [False, False, False, True, True, True, True]
    assert rollout.trajectory_loss.item() == pytest.approx(9 / 4)


def test_hand_computed_lost_sales_and_metrics():
    demand = [[3.0, 4.0, 2.0, 5.0, 1.0, 6.0]]
    sim = InventorySimulator(
        demand,
        1,
        0,
        initial_stock=5.0,
        holding_cost=1.0,
        backlog_cost=2.0,
        lost_sales=True,
        device="cpu",
    )
    rollout = sim.rollout(ConstantOrder(3.0))
    # L = 0: an order is on hand at once. day 0: no order (t > 0 only): 5-3 -> 2;
    # day 1: 2+3=5, -4 -> 1; day 2: 1+3=4, -2 -> 2; day 3: 2+3=5, -5 -> 0;
    # day 4: 0+3=3, -1 -> 2; day 5: 2+3=5, -6 -> 0 with 1 lost.
    assert rollout.end_inventory[0].tolist() == [2, 1, 2, 0, 2, 0]
    assert rollout.lost_demand[0].tolist() == [0, 0, 0, 0, 0, 1]
    assert rollout.sales[0].tolist() == [3, 4, 2, 5, 1, 5]
    # W = 1: days 1..5. loss = (1 + 2 + 0 + 2 + 0 + 2 * 1) / 5
    assert rollout.trajectory_loss.item() == pytest.approx(7 / 5)
    # stockout days (y <= 0) among days 1..5: days 3 and 5
    assert rollout.stockout_rate.item() == pytest.approx(2 / 5)
    # turnover: mean stock 1.0 / mean sales 17/5
    assert rollout.turnover_time.item() == pytest.approx(1.0 / (17 / 5), rel=1e-5)
    assert rollout.objective.item() == pytest.approx(40 + 0.5 * 5 / 17, rel=1e-5)


def test_turnover_time_is_capped():
    sim = InventorySimulator([[0.0, 0.0, 0.0, 1.0]], 1, 0, initial_stock=100.0, device="cpu")
    rollout = sim.rollout(None)
    assert rollout.turnover_time.item() == pytest.approx(28.0)


@settings(max_examples=60, deadline=None)
@given(problems())
def test_inventory_balance_and_pipeline_timing(problem):
    sim = make(problem)
    rollout = sim.rollout(StationaryBaseStock(problem["level"]))
    orders = rollout.orders.numpy()
    demand = problem["demand"]
    served = rollout.sales.numpy() if problem["lost_sales"] else demand
    cum_orders = np.cumsum(orders, axis=1)
    cum_served = np.cumsum(served, axis=1)
    # inventory position at the start of day t+1 = end inventory + in transit after day t
    next_position = np.concatenate(
        [rollout.inventory_position.numpy()[:, 1:], np.full((orders.shape[0], 1), np.nan)], axis=1
    )
    balance = problem["initial_stock"] + cum_orders - next_position - cum_served
    assert np.allclose(balance[:, :-1], 0.0)
    # end inventory: what has arrived (orders of day s land on day s + L) minus what was served
    lead = problem["lead_time"]
    arrived = np.concatenate([np.zeros((orders.shape[0], lead)), cum_orders], axis=1)[
        :, : demand.shape[1]
    ]
    on_hand_end = problem["initial_stock"] + arrived - cum_served
    assert np.allclose(rollout.end_inventory.numpy(), on_hand_end)
    if problem["lost_sales"]:
        assert (rollout.end_inventory >= 0).all()
        assert np.allclose(rollout.lost_demand.numpy() + rollout.sales.numpy(), demand)


@settings(max_examples=60, deadline=None)
@given(problems())
def test_orders_only_on_review_days_within_cap(problem):
    sim = make(problem)
    rollout = sim.rollout(ConstantOrder(1e6))  # a huge request is capped
    days = np.arange(problem["demand"].shape[1])
    review = (days > 0) & (days % problem["review_period"] == 0)
    orders = rollout.orders.numpy()
    assert (orders[:, ~review] == 0).all()
    assert np.allclose(orders[:, review], problem["max_replenish"])
    negative = sim.rollout(ConstantOrder(-5.0))
    assert (negative.orders == 0).all()


@settings(max_examples=60, deadline=None)
@given(problems())
def test_warmup_not_counted_and_loss_non_negative(problem):
    sim = make(problem)
    rollout = sim.rollout(StationaryBaseStock(problem["level"]))
    warmup = problem["review_period"] + problem["lead_time"]
    assert (rollout.daily_loss[:, :warmup] == 0).all()
    assert (rollout.daily_loss >= 0).all()
    assert (rollout.trajectory_loss >= 0).all()
    assert (rollout.counted_days == problem["demand"].shape[1] - warmup).all()
    # demand during warm-up days that happen before any order affects nothing counted only via
    # the state; a loss is never counted before W, whatever the demand there
    changed = problem["demand"].copy()
    changed[:, :warmup] += 7.0
    other = make(problem, demand=changed).rollout(StationaryBaseStock(problem["level"]))
    assert (other.daily_loss[:, :warmup] == 0).all()


@settings(max_examples=40, deadline=None)
@given(problems())
def test_batched_equals_one_at_a_time(problem):
    sim = make(problem)
    policy = StationaryBaseStock(problem["level"])
    batched = sim.rollout(policy)
    for row in range(problem["demand"].shape[0]):
        single = make(problem, demand=problem["demand"][row : row + 1]).rollout(policy)
        assert torch.allclose(single.trajectory_loss[0], batched.trajectory_loss[row])
        assert torch.equal(single.end_inventory[0], batched.end_inventory[row])
        subset = sim.rollout(policy, index=torch.tensor([row]))
        assert torch.equal(subset.orders[0], batched.orders[row])


@settings(max_examples=60, deadline=None)
@given(problems())
def test_step_windows_partition_counted_days(problem):
    sim = make(problem)
    rollout = sim.rollout(StationaryBaseStock(problem["level"]))
    start, end = sim.step_windows()
    for row in range(start.shape[0]):
        covered = []
        step_sum = 0.0
        for s, e in zip(start[row].tolist(), end[row].tolist(), strict=True):
            covered.extend(range(s, e))
            if e > s:
                step_loss = rollout.daily_loss[row, s:e].mean()
                step_sum += float(step_loss) * (e - s)
        counted = np.flatnonzero(rollout.counted[row].numpy()).tolist()
        assert covered == counted
        # sum over steps of (step loss x days in its window) = trajectory loss x counted days
        total = float(rollout.trajectory_loss[row]) * len(counted)
        assert step_sum == pytest.approx(total, rel=1e-12, abs=1e-9)


def test_step_windows_per_day_lead_time():
    lead = torch.tensor([[1, 1, 3, 3, 1, 1, 2, 2, 2, 2, 2, 2]])
    start, end = order_windows(torch.tensor([2]), lead, 12)
    # W = 2 + 3 = 5. orders on days 2 (L=3 -> lands 5), 4 (L=1 -> 5), 6 (L=2 -> 8), 8 (-> 10),
    # 10 (-> 12: outside), so four steps; a window runs from one arrival to the next (the order
    # of day 2 lands together with the one of day 4: empty window), the last to the horizon end.
    assert start[0].tolist()[:4] == [5, 5, 8, 10]
    assert end[0].tolist()[:4] == [5, 8, 10, 12]
    # the windows partition the counted days 5..11
    days = [d for s, e in zip(start[0].tolist(), end[0].tolist(), strict=True) for d in range(s, e)]
    assert days == list(range(5, 12))


def test_per_day_lead_time_uses_the_day_slot():
    demand = np.zeros((1, 8))
    lead = np.array([[0, 0, 2, 2, 0, 0, 0, 0]])
    sim = InventorySimulator(demand, 2, lead, device="cpu")
    rollout = sim.rollout(ConstantOrder(5.0))
    # order of day 2 arrives day 4; order of day 4 (L=0) at once; order of day 6 at once.
    assert rollout.end_inventory[0].tolist() == [0, 0, 0, 0, 10, 10, 15, 15]


def test_differentiable_mode_reaches_the_policy():
    demand = torch.full((3, 12), 5.0)
    sim = InventorySimulator(demand, 2, 1, device="cpu")
    level = torch.tensor(8.0, dtype=torch.float64, requires_grad=True)

    def policy(observation):
        return level - observation.inventory_position

    rollout = sim.rollout(policy, differentiable=True)
    rollout.loss.backward()
    assert level.grad is not None and level.grad.item() != 0.0
    with torch.no_grad():
        fast = sim.rollout(policy)
    assert not fast.trajectory_loss.requires_grad
    assert torch.allclose(fast.trajectory_loss, rollout.trajectory_loss.detach())


def test_time_dependent_base_stock_levels_per_day():
    demand = np.full((2, 9), 4.0)
    levels = np.array([0, 0, 10, 0, 20, 0, 30, 0, 40], dtype=float)
    rollout = InventorySimulator(demand, 2, 0, device="cpu").rollout(TimeDependentBaseStock(levels))
    # day 2: IP = -8 -> order 18; day 4: IP = 10 - 8 = 2 -> 18; day 6: 12 -> 18; day 8: 22 -> 18
    assert rollout.orders[0].tolist() == [0, 0, 18, 0, 18, 0, 18, 0, 18]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"review_period": 0}, "review_period"),
        ({"lead_time": -1}, "lead_time"),
        ({"demand": [[1.0, -1.0, 2.0, 3.0, 4.0]]}, "demand"),
        ({"demand": [[1.0, float("nan"), 2.0, 3.0, 4.0]]}, "demand"),
        ({"demand": [1.0, 2.0]}, "demand"),
        ({"lead_time": np.zeros((1, 3), dtype=int)}, "lead_time"),
        ({"features": np.zeros((1, 4, 1))}, "features"),
        ({"max_replenish": 0.0}, "max_replenish"),
        ({"review_period": 3, "lead_time": 2}, "horizon"),
    ],
)
def test_bad_input_is_named(kwargs, message):
    args = {"demand": [[1.0, 2.0, 3.0, 4.0, 5.0]], "review_period": 1, "lead_time": 1}
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        InventorySimulator(
            args.pop("demand"),
            args.pop("review_period"),
            args.pop("lead_time"),
            device="cpu",
            **args,
        )
