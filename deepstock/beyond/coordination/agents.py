"""The agents of the joint model and the day loop that runs them.

Every joint policy answers one question a day: given the instances, the day, the pipelines and
yesterday's purchase intention, what is today's exposure ``a_t`` (``(batch, n)`` on the simplex)
and, on review days, each product's order-up-to level (``(batch, n)`` units). The order itself
is the paper's Base regularization, ``q = clip(target - IP, 0, M)``, applied by
:func:`simulate_joint` through :func:`deepstock.model.regularizations.get_regularization`.

==================  =========================================================================
policy              what it is
==================  =========================================================================
``TwoAgentPolicy``  a recommendation agent (a score per product from its stock, pipeline and
                    attributes, one network shared across products, softmax over products)
                    and a replenishment agent (a base-stock target per product from its stock,
                    attributes and today's recommendation, one network shared across
                    products). With ``siloed=True`` the recommendation agent does not see
                    stock and the replenishment agent does not see the recommendation.
``SingleAgent``     one network for both decisions: it reads every product's state at once and
                    outputs ``n`` scores and ``n`` targets (its size grows with ``n``).
``RuleBasedPair``   exposure proportional to ``(m_i e_i)^gamma`` and a base stock at the
                    critical fractile of the demand the plan implies (no training).
==================  =========================================================================

Stock is read and set in days of the product's uniform-exposure demand
(:attr:`JointInstances.scale`), attributes relative to the instance's mean, so that one network
serves products and assortments of any size.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from deepstock.beyond.coordination.model import (
    JointInstances,
    JointRollout,
    advance_day,
    demand_rate,
    season_factor,
    update_intention,
)
from deepstock.core.checks import check_int_list, check_number
from deepstock.model.regularizations import get_regularization
from deepstock.model.simulator import Observation

__all__ = [
    "JointPolicy",
    "RuleBasedPair",
    "SingleAgent",
    "TwoAgentPolicy",
    "attribute_features",
    "mlp",
    "simulate_joint",
    "stock_features",
]


def mlp(n_inputs: int, hidden: Sequence[int], n_outputs: int) -> nn.Sequential:
    """A ReLU perceptron in float64 (the model's dtype, so that no cast sits in the loop)."""
    layers: list[nn.Module] = []
    width = n_inputs
    for size in check_int_list("hidden", list(hidden)):
        layers += [nn.Linear(width, size, dtype=torch.float64), nn.ReLU()]
        width = size
    layers.append(nn.Linear(width, n_outputs, dtype=torch.float64))
    return nn.Sequential(*layers)


def attribute_features(instances: JointInstances, day: int) -> Tensor:
    """``(batch, n, 6)`` what both agents know of each product on day ``day``.

    Columns: margin share ``m/p``, efficiency ``e``, ``m e`` over the instance's mean,
    ``log`` of the scale over the instance's mean, and the seasonal phase as ``sin`` and ``cos``
    (the calendar is known, so this tells the season ahead as well as today's).
    """
    config = instances.config
    priority = instances.priority
    scale = instances.scale
    angle = 2.0 * math.pi * day / config.season_period + instances.phase
    return torch.stack(
        [
            instances.margin / instances.price,
            instances.efficiency,
            priority / priority.mean(dim=1, keepdim=True),
            torch.log(scale / scale.mean(dim=1, keepdim=True)),
            torch.sin(angle),
            torch.cos(angle),
        ],
        dim=-1,
    )


def stock_features(instances: JointInstances, pipeline: Tensor) -> Tensor:
    """``(batch, n, L + 2)``: the pipeline and the inventory position in days of demand."""
    cover = pipeline / instances.scale[..., None]
    return torch.cat([cover, cover.sum(dim=-1, keepdim=True)], dim=-1)


class JointPolicy(nn.Module):
    """The interface of a joint policy (module docstring)."""

    def decide(
        self,
        instances: JointInstances,
        day: int,
        pipeline: Tensor,
        previous_intention: Tensor,
        order_day: bool,
    ) -> tuple[Tensor, Tensor | None]:
        """``(exposure (batch, n) on the simplex, target (batch, n) units or None)``; the
        target is asked for on review days only (``order_day``)."""
        raise NotImplementedError

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """Agent name -> its parameters, each group trained at its own step size."""
        return {}


class TwoAgentPolicy(JointPolicy):
    """A recommendation agent and a replenishment agent, each one network shared across products.

    Args:
        lead_time, review_period: of the model (the pipeline's width and the targets' start).
        hidden: hidden widths of both networks.
        siloed: the recommendation agent is blind to stock and the replenishment agent to the
            recommendation (the departments do not share information).
    """

    def __init__(
        self, lead_time: int, review_period: int, hidden: Sequence[int], siloed: bool = False
    ) -> None:
        super().__init__()
        self.siloed = bool(siloed)
        n_attributes = 6
        n_stock = lead_time + 2
        recommend_inputs = n_attributes + 1 + (0 if siloed else n_stock)
        replenish_inputs = n_attributes + n_stock + (0 if siloed else 2)
        self.recommender = mlp(recommend_inputs, hidden, 1)
        self.replenisher = mlp(replenish_inputs, hidden, 1)
        with torch.no_grad():
            # start near a sensible base stock: L + P days of demand and one day of safety
            self.replenisher[-1].bias.fill_(float(lead_time + review_period + 1))
            self.recommender[-1].weight.mul_(0.1)  # and near uniform exposure

    def decide(self, instances, day, pipeline, previous_intention, order_day):
        n = instances.config.n_products
        attributes = attribute_features(instances, day)
        stock = stock_features(instances, pipeline)
        parts = [attributes, n * previous_intention[..., None]]
        if not self.siloed:
            parts.append(stock)
        exposure = torch.softmax(self.recommender(torch.cat(parts, dim=-1))[..., 0], dim=-1)
        if not order_day:
            return exposure, None
        parts = [attributes, stock]
        if not self.siloed:
            intention = update_intention(previous_intention, exposure, instances.config.carryover)
            parts += [n * exposure[..., None], n * intention[..., None]]
        cover = self.replenisher(torch.cat(parts, dim=-1))[..., 0]
        return exposure, cover * instances.scale

    def parameter_groups(self):
        return {
            "replenishment": list(self.replenisher.parameters()),
            "recommendation": list(self.recommender.parameters()),
        }


class SingleAgent(JointPolicy):
    """One network for both decisions over the whole assortment.

    Its input is every product's attributes, stock and previous intention, concatenated in
    product order (``n (6 + L + 3)`` numbers); its output ``2 n`` numbers: ``n`` scores
    (softmax: the exposure) and ``n`` targets in days of demand. Unlike the two agents it does
    not share weights across products, so its size grows with ``n``.
    """

    def __init__(
        self, n_products: int, lead_time: int, review_period: int, hidden: Sequence[int]
    ) -> None:
        super().__init__()
        self.n_products = n_products
        per_product = 6 + (lead_time + 2) + 1
        self.network = mlp(n_products * per_product, hidden, 2 * n_products)
        with torch.no_grad():
            self.network[-1].bias[n_products:].fill_(float(lead_time + review_period + 1))
            self.network[-1].weight[:n_products].mul_(0.1)

    def decide(self, instances, day, pipeline, previous_intention, order_day):
        n = self.n_products
        inputs = torch.cat(
            [
                attribute_features(instances, day),
                stock_features(instances, pipeline),
                n * previous_intention[..., None],
            ],
            dim=-1,
        ).flatten(start_dim=1)
        raw = self.network(inputs)
        exposure = torch.softmax(raw[:, :n], dim=-1)
        target = raw[:, n:] * instances.scale if order_day else None
        return exposure, target

    def parameter_groups(self):
        return {"joint": list(self.network.parameters())}


class RuleBasedPair(JointPolicy):
    """Recommend by margin x efficiency, replenish to a critical-fractile base stock.

    Exposure ``a_i = (m_i e_i)^gamma / sum_j (m_j e_j)^gamma``, the same every day. The target
    covers the ``L + P`` days from today (the order arrives in ``L`` days, the next one ``P`` days
    later), at the critical fractile ``z = Phi^{-1}((m + b) / (m + b + h))`` of the demand the plan
    implies: mean ``sum_k lambda_{t+k}`` and standard deviation ``cv sqrt(sum_k lambda_{t+k}^2)``
    (the noise is independent across days), with the intention projected forward exactly,
    ``E_{t+k} = a + rho^k (E_t - a)``, and the seasonal factor from the calendar.

    Args:
        exponent: ``gamma >= 0`` (0 is uniform exposure).
    """

    def __init__(self, exponent: float = 1.0) -> None:
        super().__init__()
        self.exponent = check_number("exponent", exponent, 0.0)

    def plan(self, instances: JointInstances) -> Tensor:
        """``(batch, n)`` the static exposure."""
        weight = instances.priority.clamp(min=1e-12) ** self.exponent
        return weight / weight.sum(dim=1, keepdim=True)

    def decide(self, instances, day, pipeline, previous_intention, order_day):
        exposure = self.plan(instances)
        if not order_day:
            return exposure, None
        config = instances.config
        intention = update_intention(previous_intention, exposure, config.carryover)
        mean = torch.zeros_like(exposure)
        square = torch.zeros_like(exposure)
        for k in range(config.lead_time + config.review_period):
            future = exposure + config.carryover**k * (intention - exposure)
            season = season_factor(instances, day + k)
            rate = demand_rate(instances, day + k, future, season=season)
            mean = mean + rate
            square = square + rate**2
        over = instances.margin + instances.penalty
        fractile = over / (over + instances.holding)
        z = torch.special.ndtri(fractile)
        return exposure, mean + z * config.demand_cv * square.sqrt()


# ---------------------------------------------------------------------- the day loop
def simulate_joint(
    instances: JointInstances, policy: JointPolicy, *, differentiable: bool = False
) -> JointRollout:
    """Run ``policy`` over the whole horizon of every instance (the model's module docstring).

    Each day: the policy sets the exposure (and on review days the targets); the intention and
    the demand follow; the Base regularization turns targets into orders; the day is served.
    ``differentiable=True`` keeps the graph, so that ``-rollout.mean_profit`` can be
    back-propagated to both agents through the demand and the stock (DS's training signal).
    """
    with torch.set_grad_enabled(differentiable and torch.is_grad_enabled()):
        return _simulate(instances, policy)


def _simulate(instances: JointInstances, policy: JointPolicy) -> JointRollout:
    config = instances.config
    batch, n = instances.batch_size, config.n_products
    base = get_regularization("base")
    like = instances.scale
    pipeline = torch.zeros(batch, n, config.lead_time + 1, dtype=like.dtype, device=like.device)
    pipeline[..., 0] = config.initial_cover * instances.scale
    intention = torch.full_like(like, 1.0 / n)
    nan = torch.full_like(like, math.nan)
    rows = torch.arange(batch * n, device=like.device)
    no_features = torch.zeros(batch * n, 0, dtype=like.dtype, device=like.device)
    record: dict[str, list[Tensor]] = {
        key: []
        for key in (
            "exposure",
            "intention",
            "rate",
            "demand",
            "sales",
            "lost",
            "orders",
            "end_inventory",
            "on_hand",
            "target",
            "profit",
        )
    }
    for day in range(config.horizon):
        order_day = day > 0 and day % config.review_period == 0
        exposure, target = policy.decide(instances, day, pipeline, intention, order_day)
        intention = update_intention(intention, exposure, config.carryover)
        rate = demand_rate(instances, day, intention)
        demand = rate * instances.noise[:, day]
        order = None
        if target is not None:
            flat = pipeline.reshape(batch * n, -1)
            observation = Observation(
                day=day,
                pipeline=flat,
                inventory_position=flat.sum(dim=1),
                features=no_features,
                feature_min=no_features,
                feature_max=no_features,
                index=rows,
                order_day=torch.ones(batch * n, dtype=torch.bool, device=like.device),
            )
            order = base.order(target.reshape(-1, 1), observation, no_features, instances.max_order)
            order = order.reshape(batch, n)
        on_hand = pipeline[..., 0]
        result = advance_day(instances, day, pipeline, order, demand)
        pipeline = result.next_pipeline
        for key, value in (
            ("exposure", exposure),
            ("intention", intention),
            ("rate", rate),
            ("demand", demand),
            ("sales", result.sales),
            ("lost", result.lost),
            ("orders", result.order),
            ("end_inventory", result.end_inventory),
            ("on_hand", on_hand),
            ("target", target if target is not None else nan),
            ("profit", result.profit),
        ):
            record[key].append(value)
    stacked = {key: torch.stack(values, dim=1) for key, values in record.items()}
    counted = torch.arange(config.horizon, device=like.device) >= config.warmup
    return JointRollout(counted=counted, **stacked)
