"""Machinery shared by the Stable-Baselines3 methods (:mod:`deepstock.methods.ddpg`,
:mod:`deepstock.methods.ppo`, :mod:`deepstock.methods.dqn`).

* :func:`linear_schedule`: SB3's ``get_linear_fn`` (the learning-rate and clip-range decay of
  the book's *Methods and tuning protocol* chapter);
* :func:`deterministic_actor`: a trained SB3 model's deterministic action as a plain
  ``nn.Module`` in the env's action coordinates (for :class:`deepstock.methods.envs.ActorPolicy`);
* :class:`ValidationCallback`: validation through the shared simulator every ``eval_freq`` env
  steps, early stopping, a copy of the best policy, the learning curve and a progress bar;
* :func:`run_sb3` and :func:`sb3_result`: the one training skeleton of both methods (seed,
  env, model, validation callback, learn, best policy, metrics, the result);
* :func:`check_net_arch`, the ``net_arch`` check of the settings dataclasses.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.type_aliases import Schedule
from torch import nn

from deepstock.core.checks import is_integer
from deepstock.methods.common import (
    TENSORBOARD_TAGS,
    CurvePoint,
    TrainResult,
    evaluate_policy,
    seed_everything,
    tensorboard_run_dir,
)
from deepstock.methods.envs import ActorPolicy, InventoryVecEnv
from deepstock.model.dataset import InventoryDataset
from deepstock.model.regularizations import Regularization
from deepstock.model.simulator import InventorySimulator

__all__ = [
    "GreedyAction",
    "SB3Run",
    "ValidationCallback",
    "check_net_arch",
    "deterministic_actor",
    "linear_schedule",
    "run_sb3",
    "sb3_result",
    "use_tensorboard",
]


# ---------------------------------------------------------------------- schedules
def linear_schedule(start: float, end: float, end_fraction: float) -> Schedule:
    """``start`` decaying linearly to ``end``, reached after ``end_fraction`` of training.

    SB3 schedules take the *remaining* progress (1 at the start, 0 at ``total_timesteps``); this
    is SB3's ``LinearSchedule`` (``get_linear_fn`` before SB3 2.6), as the authors used.
    """
    try:
        from stable_baselines3.common.utils import LinearSchedule
    except ImportError:  # older SB3
        from stable_baselines3.common.utils import get_linear_fn

        return get_linear_fn(float(start), float(end), float(end_fraction))
    return LinearSchedule(float(start), float(end), float(end_fraction))


# ---------------------------------------------------------------------- deterministic actors
class _AffineOutput(nn.Module):
    """``low + (x + 1) / 2 * (high - low)``: SB3's ``unscale_action`` as a module."""

    def __init__(self, inner: nn.Module, low: np.ndarray, high: np.ndarray) -> None:
        super().__init__()
        self.inner = inner
        self.register_buffer("low", torch.as_tensor(low, dtype=torch.float32))
        self.register_buffer("high", torch.as_tensor(high, dtype=torch.float32))

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        return self.low + (self.inner(observations) + 1.0) * 0.5 * (self.high - self.low)


class _GaussianMean(nn.Module):
    """The mean of an ``ActorCriticPolicy``'s Gaussian: its deterministic action (unclipped)."""

    def __init__(self, policy: ActorCriticPolicy) -> None:
        super().__init__()
        self.features_extractor = policy.pi_features_extractor
        self.policy_net = policy.mlp_extractor.policy_net
        self.action_net = policy.action_net

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        return self.action_net(self.policy_net(self.features_extractor(observations.float())))


class GreedyAction(nn.Module):
    """The greedy action of a Q-network, ``argmax_a Q(s, a)``, as a ``(batch, 1)`` float index.

    ``q_net`` is SB3's ``QNetwork`` (DQN's online network); ties go to the lowest index, as in
    SB3's ``predict``. The index is a float so that the env's
    :class:`~deepstock.methods.envs.GridActionMap` maps it like any other action tensor.
    """

    def __init__(self, q_net: nn.Module) -> None:
        super().__init__()
        self.q_net = q_net

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        values = self.q_net(observations.float())
        return values.argmax(dim=1, keepdim=True).to(torch.float32)


def deterministic_actor(model: BaseAlgorithm, *, copy_weights: bool = True) -> nn.Module:
    """The deterministic action of ``model`` as a module in the env's action coordinates.

    Maps ``(batch, obs_dim)`` float32 observations to ``(batch, action_dim)`` actions on the
    model's device. DDPG/TD3: the actor, unscaled from its tanh range ``[-1, 1]`` to the action
    space (the identity for ``Box(-1, 1)``). PPO (``ActorCriticPolicy`` with a Gaussian): the mean
    (:class:`deepstock.methods.envs.ActionMap` clips it to the action space, as SB3's ``predict`` does).
    DQN: the greedy grid index (:class:`GreedyAction`, ``(batch, 1)``).

    Args:
        model: an SB3 DDPG, TD3, PPO or DQN model with a flat Box observation space.
        copy_weights: return an independent copy (a snapshot); ``False`` shares the live weights.
    """
    policy = model.policy
    if hasattr(policy, "actor") and hasattr(policy, "critic"):  # TD3 family (DDPG)
        actor: nn.Module = policy.actor
        space = model.action_space
        if not (np.all(space.low == -1.0) and np.all(space.high == 1.0)):
            actor = _AffineOutput(actor, space.low, space.high)
    elif isinstance(policy, ActorCriticPolicy):
        actor = _GaussianMean(policy)
    elif hasattr(policy, "q_net") and hasattr(policy, "q_net_target"):  # DQN
        actor = GreedyAction(policy.q_net)
    else:
        raise ValueError(f"no deterministic actor for policy class {type(policy).__name__}")
    if not copy_weights:
        return actor  # live weights: leave their train/eval mode to SB3
    return copy.deepcopy(actor).eval()


# ---------------------------------------------------------------------- validation, early stop
class ValidationCallback(BaseCallback):
    """Validate every ``eval_freq`` env steps through the simulator; stop early; keep the best.

    At the first training step at or after each multiple of ``eval_freq`` environment steps
    (transitions, summed over parallel envs) the deterministic policy is simulated on every
    validation trajectory (float64, no gradient) and its mean trajectory loss is recorded.
    A strictly lower loss than the best so far is an improvement and snapshots the actor.

    Early stopping follows SB3's ``StopTrainingOnNoModelImprovement(max_no_improvement_evals=
    patience, min_evals=min_evals)`` driven by ``EvalCallback``, the authors' setup: the first
    ``min_evals`` evaluations never count; after them, training stops at the evaluation that
    makes ``patience + 1`` consecutive evaluations without improvement. If training ends before
    the first evaluation (a tiny ``total_steps``), one evaluation runs at the end so that a best
    policy always exists.

    Args:
        env: the training env (gives the regularization and the action map).
        validation: the validation trajectories.
        eval_freq: env steps between evaluations, ``>= 1``.
        patience: see above, ``>= 0``.
        min_evals: see above, ``>= 0``.
        progress: show a tqdm bar over env steps.
        description: label of the progress bar.
        log_evaluations: record each evaluation in the model's SB3 logger
            (:data:`~deepstock.methods.common.TENSORBOARD_TAGS` ``eval/*``) and dump it at its
            env step (set when the logger writes TensorBoard events, see :func:`use_tensorboard`).

    Attributes (after training):
        curve: one :class:`~deepstock.methods.train.CurvePoint` per evaluation.
        best_loss, best_step: the best validation loss and the env step it was reached at.
        best_actor: a snapshot of the best actor (see :func:`deterministic_actor`).
        stopped_early: whether the patience rule ended training.
    """

    def __init__(
        self,
        env: InventoryVecEnv,
        validation: InventoryDataset,
        *,
        eval_freq: int,
        patience: int,
        min_evals: int,
        total_steps: int,
        progress: bool = False,
        description: str = "",
        log_evaluations: bool = False,
    ) -> None:
        super().__init__(verbose=0)
        self.log_evaluations = log_evaluations
        self.env = env
        self.simulator = InventorySimulator.from_dataset(validation, device="cpu")
        self.eval_freq = int(eval_freq)
        self.patience = int(patience)
        self.min_evals = int(min_evals)
        self.total_steps = int(total_steps)
        self.progress = progress
        self.description = description
        self.curve: list[CurvePoint] = []
        self.best_loss = math.inf
        self.best_step = 0
        self.best_actor: nn.Module | None = None
        self.stopped_early = False
        self.evaluation_seconds = 0.0
        self._next_eval = self.eval_freq
        self._no_improvement = 0
        self._bar: Any = None
        self._bar_step = 0

    def policy_of(self, actor: nn.Module) -> ActorPolicy:
        """The simulator policy of ``actor`` acting as in the training env."""
        return ActorPolicy.for_env(actor, self.env)

    def _on_training_start(self) -> None:
        if self.progress:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=self.total_steps, desc=self.description, unit="step")

    def evaluate(self) -> float:
        """Validation loss of the current deterministic policy (mean trajectory loss)."""
        start = time.perf_counter()
        actor = deterministic_actor(self.model, copy_weights=False)
        loss = float(self.simulator.rollout(self.policy_of(actor)).loss)
        self.evaluation_seconds += time.perf_counter() - start
        return loss

    def _evaluate_and_decide(self) -> bool:
        loss = self.evaluate()
        self.curve.append(CurvePoint(step=int(self.num_timesteps), val_loss=loss))
        improved = loss < self.best_loss
        if improved:
            self.best_loss, self.best_step = loss, int(self.num_timesteps)
            self.best_actor = deterministic_actor(self.model, copy_weights=True)
        if self._bar is not None:
            self._bar.set_postfix(val_loss=f"{loss:.4f}", best=f"{self.best_loss:.4f}")
        if self.log_evaluations:
            self.logger.record(TENSORBOARD_TAGS["val_loss"], loss)
            self.logger.record(TENSORBOARD_TAGS["best_val_loss"], self.best_loss)
            self.logger.dump(int(self.num_timesteps))
        if len(self.curve) > self.min_evals:
            self._no_improvement = 0 if improved else self._no_improvement + 1
            if self._no_improvement > self.patience:
                self.stopped_early = True
                return False
        return True

    def _on_step(self) -> bool:
        if self._bar is not None:
            self._bar.update(self.num_timesteps - self._bar_step)
            self._bar_step = self.num_timesteps
        if self.num_timesteps < self._next_eval:
            return True
        while self._next_eval <= self.num_timesteps:
            self._next_eval += self.eval_freq
        return self._evaluate_and_decide()

    def _on_training_end(self) -> None:
        if not self.curve:
            self._evaluate_and_decide()
        if self._bar is not None:
            self._bar.close()
            self._bar = None


# ---------------------------------------------------------------------- settings validation
def check_net_arch(method: str, value: Any, heads: tuple[str, str]) -> dict[str, list[int]]:
    """Normalize ``net_arch`` to ``{heads[0]: [...], heads[1]: [...]}`` of positive widths.

    A plain list means the same hidden layers for both heads (SB3's convention).
    """
    if isinstance(value, (list, tuple)):
        value = {heads[0]: list(value), heads[1]: list(value)}
    if not isinstance(value, dict) or set(value) != set(heads):
        raise ValueError(
            f"{method} config key 'net_arch' must be a list of layer widths or a mapping with "
            f"keys {list(heads)}, got {value!r}"
        )
    normalized: dict[str, list[int]] = {}
    for head in heads:
        widths = value[head]
        if (
            not isinstance(widths, (list, tuple))
            or not widths
            or not all(is_integer(w) and w >= 1 for w in widths)
        ):
            raise ValueError(
                f"{method} config key 'net_arch' entry {head!r} must be a non-empty list of "
                f"positive integers, got {widths!r}"
            )
        normalized[head] = [int(w) for w in widths]
    return normalized


# ---------------------------------------------------------------------- the training skeleton
@dataclass
class SB3Run:
    """What :func:`run_sb3` trained: the model, its env and callback, the best validation policy
    and its metrics on every split, and the training wall time (setup, learning and validations).
    """

    model: BaseAlgorithm
    env: InventoryVecEnv
    callback: ValidationCallback
    policy: ActorPolicy
    metrics: dict[str, dict[str, float]]
    wall_time_s: float

    def extras(self) -> dict[str, Any]:
        """The records every SB3 method reports."""
        return {
            "env_steps": int(self.model.num_timesteps),
            "best_step": self.callback.best_step,
            "n_evaluations": len(self.callback.curve),
            "stopped_early": self.callback.stopped_early,
            "evaluation_seconds": self.callback.evaluation_seconds,
        }


def use_tensorboard(
    model: BaseAlgorithm,
    folder: str | os.PathLike[str],
    method: str,
    regularization: str,
    seed: int,
) -> None:
    """Make ``model`` write SB3's logger output as TensorBoard events in the run's sub-folder
    of ``folder`` (:func:`~deepstock.methods.common.tensorboard_run_dir`)."""
    from stable_baselines3.common.logger import configure

    run_dir = tensorboard_run_dir(folder, method, regularization, seed)
    model.set_logger(configure(str(run_dir), ["tensorboard"]))


def run_sb3(
    dataset: InventoryDataset,
    regularization: Regularization,
    settings: Any,
    make_model: Callable[[InventoryVecEnv], BaseAlgorithm],
    *,
    label: str,
    seed: int,
    progress: bool,
    env_options: dict[str, Any] | None = None,
    tensorboard: str | os.PathLike[str] | None = None,
) -> SB3Run:
    """Train an SB3 model the way every method here does, and evaluate its best policy.

    Seeds everything with ``seed``; builds the training env (``settings.n_envs`` slots drawing
    training trajectories, ``env_options`` passed on); ``make_model(env)`` builds the model;
    learns for ``settings.total_steps`` env steps with a :class:`ValidationCallback`
    (``eval_freq``, ``patience``, ``min_evals`` from ``settings``); evaluates the best
    validation policy on the train, val and test splits (CPU, float64). ``tensorboard``: a
    folder where SB3's logger writes its own ``train/*`` tags and every validation
    (``eval/val_loss``, ``eval/best_val_loss``) as TensorBoard events, in the run's sub-folder
    (:func:`~deepstock.methods.common.tensorboard_run_dir`).
    """
    start = time.perf_counter()
    seed_everything(seed)
    env = InventoryVecEnv(
        dataset,
        regularization,
        n_envs=settings.n_envs,
        split="train",
        seed=seed,
        **(env_options or {}),
    )
    model = make_model(env)
    callback = ValidationCallback(
        env,
        dataset.subset("val"),
        eval_freq=settings.eval_freq,
        patience=settings.patience,
        min_evals=settings.min_evals,
        total_steps=settings.total_steps,
        progress=progress,
        description=f"{label} {regularization.name}",
        log_evaluations=tensorboard is not None,
    )
    if tensorboard is not None:
        use_tensorboard(model, tensorboard, label.lower(), regularization.name, seed)
    model.learn(total_timesteps=settings.total_steps, callback=callback)
    wall_time = time.perf_counter() - start
    policy = callback.policy_of(callback.best_actor)
    metrics = {
        split: evaluate_policy(policy, dataset.subset(split), device="cpu")
        for split in ("train", "val", "test")
    }
    return SB3Run(model, env, callback, policy, metrics, wall_time)


def sb3_result(
    method: str,
    regularization: Regularization,
    settings: Any,
    run: SB3Run,
    *,
    seed: int,
    device: torch.device,
    extras: dict[str, Any],
) -> TrainResult:
    """The :class:`~deepstock.methods.common.TrainResult` of an SB3 run."""
    return TrainResult(
        method=method,
        regularization=regularization.name,
        config=dataclasses.asdict(settings),
        seed=seed,
        device=str(device),
        policy=run.policy,
        val_metrics=run.metrics["val"],
        test_metrics=run.metrics["test"],
        train_metrics=run.metrics["train"],
        curve=list(run.callback.curve),
        curve_unit="env_steps",
        wall_time_s=run.wall_time_s,
        extras=extras,
    )
