"""Training the joint policies: the multi-timescale method and its baselines.

The training signal is the differentiable model's gradient (the DS idea of the paper this
project reproduces, applied to both agents): each step simulates a minibatch of training
instances over the whole horizon, and ``-mean profit`` (each instance's profit divided by its
margin at uniform exposure, ``sum_i m_i mu_i (1 + e_i)``, so that instances weigh alike) is
back-propagated through the demand and the stock to both networks. The summary of Jiang et al.
does not say which signal they used; this is our choice, stated.

Each agent has its own Adam optimizer and step size. At step ``k`` (0-based)

    fast agent (replenishment):   alpha_k = lr / (1 + k / tau) ** fast_decay
    slow agent (recommendation):  beta_k  = (lr / ratio) / (1 + k / tau) ** slow_decay

with ``slow_decay >= fast_decay``, so that ``beta_k / alpha_k`` falls over training: the
two-timescale condition of stochastic approximation, under which the fast agent tracks its
best response to a slowly moving slow agent.

==================== ==========================================================================
method               agents and step sizes
==================== ==========================================================================
``multi_timescale``  two agents (:class:`TwoAgentPolicy`), ``alpha_k`` and ``beta_k``
``single_timescale`` the same two agents, both at ``alpha_k``
``single_agent``     one network for both decisions (:class:`SingleAgent`), at ``alpha_k``
``siloed``           two agents blind to each other (``siloed=True``), ``alpha_k``, ``beta_k``
``rule_based``       :class:`RuleBasedPair`, no training
==================== ==========================================================================

The validation profit is measured every ``eval_every`` steps (the learning curve); the policy of
the best validation profit is the one tested, as DS does in this project.
"""

from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np
import torch

from deepstock.beyond.coordination.agents import (
    JointPolicy,
    RuleBasedPair,
    SingleAgent,
    TwoAgentPolicy,
    simulate_joint,
)
from deepstock.beyond.coordination.model import JointInstances, JointModelConfig, JointRollout
from deepstock.core.checks import check_choice, check_int, check_int_list, check_number
from deepstock.methods.common import seed_everything

__all__ = [
    "METHODS",
    "TRAINED_METHODS",
    "CoordinationRun",
    "TrainingConfig",
    "coordination_behaviours",
    "make_policy",
    "normalized_profit",
    "step_sizes",
    "steps_to_fraction",
    "train_method",
]

#: Every method of the comparison, the proposed one first.
METHODS: tuple[str, ...] = (
    "multi_timescale",
    "single_timescale",
    "single_agent",
    "siloed",
    "rule_based",
)

#: The methods that train (all but the rule-based pair).
TRAINED_METHODS: tuple[str, ...] = METHODS[:-1]


@dataclass(frozen=True)
class TrainingConfig:
    """How the joint policies train.

    Attributes:
        steps: gradient steps.
        batch_size: training instances per step.
        eval_every: steps between validation evaluations (the learning curve's resolution).
        learning_rate: ``lr``, the fast agent's initial step size.
        timescale_ratio: ``ratio >= 1``: the slow agent starts ``ratio`` times slower.
        fast_decay: exponent of the fast agent's step-size decay, ``>= 0``.
        slow_decay: exponent of the slow agent's decay, ``>= fast_decay``.
        decay_steps: ``tau > 0``, steps over which the step sizes halve (for decay 1).
        hidden: hidden widths of every network.
        grad_clip: the largest gradient norm per agent, ``> 0``.
        rule_exponent: ``gamma`` of the rule-based exposure.
    """

    steps: int = 300
    batch_size: int = 32
    eval_every: int = 10
    learning_rate: float = 0.01
    timescale_ratio: float = 5.0
    fast_decay: float = 0.3
    slow_decay: float = 0.6
    decay_steps: float = 50.0
    hidden: list[int] = field(default_factory=lambda: [32, 32])
    grad_clip: float = 10.0
    rule_exponent: float = 1.0

    def __post_init__(self) -> None:
        check_int("steps", self.steps, 1)
        check_int("batch_size", self.batch_size, 1)
        check_int("eval_every", self.eval_every, 1)
        check_number("learning_rate", self.learning_rate, 0.0, low_open=True)
        check_number("timescale_ratio", self.timescale_ratio, 1.0)
        check_number("fast_decay", self.fast_decay, 0.0)
        check_number("slow_decay", self.slow_decay, self.fast_decay)
        check_number("decay_steps", self.decay_steps, 0.0, low_open=True)
        object.__setattr__(self, "hidden", check_int_list("hidden", self.hidden))
        check_number("grad_clip", self.grad_clip, 0.0, low_open=True)
        check_number("rule_exponent", self.rule_exponent, 0.0)

    @classmethod
    def from_mapping(cls, values: dict[str, Any] | None) -> TrainingConfig:
        """The config with ``values`` over the defaults; an unknown key is an error."""
        values = dict(values or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown training option(s) {unknown}; expected {sorted(known)}")
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def step_sizes(config: TrainingConfig, method: str, step: int) -> dict[str, float]:
    """Agent group -> step size at ``step`` for ``method`` (module docstring)."""
    check_choice("method", method, TRAINED_METHODS)
    growth = 1.0 + step / config.decay_steps
    fast = config.learning_rate / growth**config.fast_decay
    slow = config.learning_rate / config.timescale_ratio / growth**config.slow_decay
    if method == "single_agent":
        return {"joint": fast}
    if method == "single_timescale":
        return {"replenishment": fast, "recommendation": fast}
    return {"replenishment": fast, "recommendation": slow}


def make_policy(method: str, model: JointModelConfig, config: TrainingConfig) -> JointPolicy:
    """The (untrained) policy of ``method``; seed torch first for reproducible weights."""
    check_choice("method", method, METHODS)
    if method == "rule_based":
        return RuleBasedPair(config.rule_exponent)
    if method == "single_agent":
        return SingleAgent(model.n_products, model.lead_time, model.review_period, config.hidden)
    return TwoAgentPolicy(
        model.lead_time, model.review_period, config.hidden, siloed=method == "siloed"
    )


def normalized_profit(rollout: JointRollout, instances: JointInstances) -> torch.Tensor:
    """The training objective: mean over instances of profit over ``sum_i m_i mu_i (1 + e_i)``."""
    scale = (instances.margin * instances.scale).sum(dim=1)
    return (rollout.instance_profit / scale).mean()


# ---------------------------------------------------------------------- behaviours
def _row_corr(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Pearson correlation along the last axis; NaN where either series is constant."""
    x = x - x.mean(dim=-1, keepdim=True)
    y = y - y.mean(dim=-1, keepdim=True)
    norm = (x.square().sum(dim=-1) * y.square().sum(dim=-1)).sqrt()
    corr = (x * y).sum(dim=-1) / norm
    return torch.where(norm > 1e-12, corr, torch.full_like(corr, float("nan")))


def _ranks(x: torch.Tensor) -> torch.Tensor:
    return x.argsort(dim=-1).argsort(dim=-1).to(torch.float64)


def _nanmean(x: torch.Tensor) -> float:
    finite = x[torch.isfinite(x)]
    return float(finite.mean()) if finite.numel() else float("nan")


def _deseasonalized(series: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    """``series`` ``(..., days)`` minus its least-squares fit on ``basis`` ``(..., days, k)``."""
    gram = basis.transpose(-1, -2) @ basis
    ridge = 1e-9 * torch.eye(gram.shape[-1], dtype=gram.dtype, device=gram.device)
    coef = torch.linalg.solve(gram + ridge, basis.transpose(-1, -2) @ series[..., None])
    return series - (basis @ coef)[..., 0]


def coordination_behaviours(rollout: JointRollout, instances: JointInstances) -> dict[str, float]:
    """The summary's coordination behaviours, measured on a rollout's counted days.

    The season moves exposure, stock and targets together even when the agents ignore each
    other (both know the calendar). So the two correlations between decisions are *partial*:
    each series of a product is first cleared of its fit on ``1, sin, cos`` of the product's
    seasonal angle (which spans every phase shift of the season), and the residuals are
    correlated.

    Returns:
        ``exposure_stock_corr``: per (instance, product), the partial correlation over days
        between the exposure and the stock on hand (in days of demand), averaged: recommend
        more what is in stock (positive).
        ``target_exposure_corr``: per (instance, product), the partial correlation over review
        days between the exposure and the order-up-to level: restock what is recommended.
        ``priority_corr``: per instance, the Spearman correlation across products between the
        mean exposure and ``m_i e_i``, averaged: prefer efficient, profitable products.
        ``demand_cv_ratio``: per (instance, product), the coefficient of variation over days of
        the demand rate over that of the seasonal factor (which is the rate's CV under any
        constant exposure), averaged: below 1 means the recommendation smooths demand.
        ``exposure_cv``: mean over (instance, product) of the exposure's CV over days (0 for a
        static plan).
        A correlation of a constant series is undefined (NaN), as for the rule-based plan.
    """
    config = instances.config
    counted = rollout.counted
    days = torch.nonzero(counted)[:, 0].to(instances.phase.dtype)
    angle = 2.0 * torch.pi * days / config.season_period + instances.phase[..., None]
    basis = torch.stack([torch.ones_like(angle), torch.sin(angle), torch.cos(angle)], dim=-1)
    exposure = rollout.exposure[:, counted].transpose(1, 2)  # (batch, n, days)
    stock = (rollout.on_hand[:, counted] / instances.scale[:, None, :]).transpose(1, 2)
    target = rollout.target[:, counted].transpose(1, 2)
    review = torch.isfinite(target[0, 0])
    rate = rollout.rate[:, counted].transpose(1, 2)
    season = instances.season[:, counted].transpose(1, 2)

    def cv(x: torch.Tensor) -> torch.Tensor:
        return x.std(dim=-1) / x.mean(dim=-1)

    def partial(x: torch.Tensor, y: torch.Tensor, on: torch.Tensor) -> float:
        corr = _row_corr(_deseasonalized(x, on), _deseasonalized(y, on))
        # a constant series has no correlation (its residual is rounding noise, not signal)
        constant = (x.std(dim=-1) < 1e-9) | (y.std(dim=-1) < 1e-9)
        return _nanmean(torch.where(constant, torch.full_like(corr, float("nan")), corr))

    if bool(review.sum() >= 6):
        target_corr = partial(exposure[..., review], target[..., review], basis[..., review, :])
    else:
        target_corr = float("nan")
    priority_corr = _row_corr(_ranks(exposure.mean(dim=-1)), _ranks(instances.priority))
    return {
        "exposure_stock_corr": partial(exposure, stock, basis),
        "target_exposure_corr": target_corr,
        "priority_corr": _nanmean(priority_corr),
        "demand_cv_ratio": _nanmean(cv(rate) / cv(season)),
        "exposure_cv": _nanmean(cv(exposure)),
    }


def steps_to_fraction(steps: np.ndarray, values: np.ndarray, fraction: float = 0.95) -> float:
    """The first step at which a learning curve has made ``fraction`` of its final gain.

    The gain is measured from the first point; the final value is the mean of the last three
    points (one evaluation is noisy). NaN when the curve ends no higher than it starts. Profits
    can be negative, so "95 % of the final profit" is read as 95 % of the way from the start.
    """
    values = np.asarray(values, dtype=float)
    steps = np.asarray(steps)
    start = values[0]
    final = float(values[-3:].mean())
    if not final > start:
        return float("nan")
    reached = np.nonzero(values - start >= fraction * (final - start))[0]
    return float(steps[reached[0]])


# ---------------------------------------------------------------------- training
@dataclass
class CoordinationRun:
    """One trained (or rule-based) policy and its numbers.

    Attributes:
        method, seed: what ran.
        curve_steps, curve_profit: the learning curve, validation mean daily profit (money/day)
            after each evaluated step (the rule-based pair: one point at step 0).
        val_profit, test_profit: mean daily profit of the selected policy.
        behaviours: :func:`coordination_behaviours` on the test instances.
        n_parameters: trainable parameters.
        wall_time_s: seconds to train and evaluate.
        policy: the selected policy (not stored).
    """

    method: str
    seed: int
    curve_steps: list[int]
    curve_profit: list[float]
    val_profit: float
    test_profit: float
    behaviours: dict[str, float]
    n_parameters: int
    wall_time_s: float
    policy: JointPolicy | None = None

    def record(self) -> dict[str, Any]:
        """Everything but the policy, as plain JSON-able values."""
        values = asdict(self)
        values.pop("policy")
        return values


def train_method(
    method: str,
    splits: dict[str, JointInstances],
    config: TrainingConfig,
    seed: int = 0,
) -> CoordinationRun:
    """Train ``method`` on ``splits["train"]``, select on ``"val"``, measure on ``"test"``.

    The same ``(method, splits, config, seed)`` gives the same numbers on the same machine.
    """
    check_choice("method", method, METHODS)
    for name in ("train", "val", "test"):
        if name not in splits:
            raise ValueError(f"splits must have 'train', 'val' and 'test', lacks {name!r}")
    check_int("seed", seed, 0)
    started = time.perf_counter()
    seed_everything(seed)
    model = splits["train"].config
    # weights drawn on the CPU, then moved: the same seed gives the same start on any device
    policy = make_policy(method, model, config).to(splits["train"].base_rate.device)
    train, val, test = splits["train"], splits["val"], splits["test"]

    def validate() -> float:
        with torch.no_grad():
            return float(simulate_joint(val, policy).mean_profit)

    curve_steps, curve_profit = [0], [validate()]
    best_profit, best_state = curve_profit[0], copy.deepcopy(policy.state_dict())
    if method != "rule_based":
        groups = policy.parameter_groups()
        optimizers = {name: torch.optim.Adam(params) for name, params in groups.items()}
        generator = torch.Generator().manual_seed(seed)
        for step in range(config.steps):
            # collect: a minibatch of training instances, simulated end to end with the graph
            rows = torch.randperm(train.batch_size, generator=generator)[: config.batch_size]
            batch = train.subset(rows.to(train.base_rate.device))
            rollout = simulate_joint(batch, policy, differentiable=True)
            loss = -normalized_profit(rollout, batch)
            # update: every agent at its own step size
            for optimizer in optimizers.values():
                optimizer.zero_grad(set_to_none=True)
            loss.backward()
            for name, size in step_sizes(config, method, step).items():
                torch.nn.utils.clip_grad_norm_(groups[name], config.grad_clip)
                for group in optimizers[name].param_groups:
                    group["lr"] = size
                optimizers[name].step()
            # evaluate: the learning curve, and the best policy so far
            if (step + 1) % config.eval_every == 0 or step + 1 == config.steps:
                profit = validate()
                curve_steps.append(step + 1)
                curve_profit.append(profit)
                if profit > best_profit:
                    best_profit, best_state = profit, copy.deepcopy(policy.state_dict())
        policy.load_state_dict(best_state)
    with torch.no_grad():
        rollout = simulate_joint(test, policy)
        test_profit = float(rollout.mean_profit)
        behaviours = coordination_behaviours(rollout, test)
    return CoordinationRun(
        method=method,
        seed=seed,
        curve_steps=curve_steps,
        curve_profit=curve_profit,
        val_profit=best_profit,
        test_profit=test_profit,
        behaviours=behaviours,
        n_parameters=sum(p.numel() for p in policy.parameters() if p.requires_grad),
        wall_time_s=time.perf_counter() - started,
        policy=policy,
    )
