"""PPO (Schulman et al. 2017) via Stable-Baselines3, configured as the paper (the book's *Methods and tuning protocol* chapter).

A Gaussian policy ``pi(a | s) = N(mu(s), diag(exp(log_std))^2)`` and a value function ``V(s)``
learn from rollouts of ``n_steps`` one-order transitions of
:class:`deepstock.methods.envs.InventoryVecEnv`. After each rollout, ``n_epochs`` passes over it in
minibatches of ``batch_size`` minimize

    - min(ratio * A, clip(ratio, 1 - clip_range, 1 + clip_range) * A)
    + vf_coef * (V(s) - R)^2 - ent_coef * entropy(pi(. | s)),

with ``ratio = pi(a | s) / pi_old(a | s)``, advantages ``A`` from GAE(``gamma``, ``gae_lambda``)
(normalized per minibatch) and gradients clipped to a global norm of ``max_grad_norm``.

SB3's ``MlpPolicy`` for PPO: separate tanh MLPs ``net_arch.pi`` (to the Gaussian mean, a linear
``action_net``) and ``net_arch.vf``; a state-independent ``log_std`` starting at
``log_std_init``; orthogonal initialization. Actions are sampled, clipped to the action space and
sent to the env; the deterministic action used for validation and test is the mean.

Facts of the authors' setup that this module follows (the book's *Methods and tuning protocol* chapter and their public code):

- one environment drawing a random training trajectory at every reset; ``vf_coef = 0.4``,
  ``max_grad_norm = 0.5``, ``target_kl = None``;
- the learning rate decays linearly from ``learning_rate`` to ``lr_min`` and the clip range from
  ``clip_range`` to ``clip_range / 2``, both reached at ``lr_fraction`` of ``total_steps``
  (SB3 ``get_linear_fn``);
- validation every ``eval_freq`` env steps on every validation trajectory with the deterministic
  policy; early stopping as SB3's ``StopTrainingOnNoModelImprovement(patience, min_evals=5)``;
  the best validation policy is kept;
- the action space is the regularization's raw output range, ``Box(0, max_replenish)`` for None
  and Base, and ``initial_action_bias`` sets the bias of ``action_net`` so that the untrained
  mean is that fraction of the range. ``action_scaling="native"`` (the default) keeps this
  parameterization exactly: the Gaussian, its initial standard deviation ``exp(log_std_init)``
  and the entropy bonus live in units of stock, as in the authors' runs.

Differences from the authors' code (CleanRL-style list):

1. Validation and the reported metrics run the policy through the shared batched simulator (the
   mean trajectory loss over counted days), not through the mean episode return of SB3's
   ``EvalCallback`` (see :mod:`deepstock.methods.ddpg`, difference 1).
2. ``n_epochs`` is passed to SB3. The authors' trainer did not pass it, so their runs used SB3's
   default of 10 epochs whatever their configuration said (the tuned PPO Base configuration
   lists 5). Set ``n_epochs: 10`` to reproduce their runs exactly.
3. ``action_scaling="unit"`` (optional) exposes ``Box(-1, 1)`` instead, mapped affinely onto the
   same range by the env: the Gaussian then lives in units of half the range, so the same
   ``log_std_init`` means a much wider initial exploration and each Adam step moves the mean
   ``max_replenish / 2`` times further in units of stock.
4. The network sees every context feature ``[c_t, x_t]`` (settings 1-4 have one).
5. ``n_envs > 1`` (not the default) collects each rollout of ``n_steps`` transitions from
   ``n_envs`` trajectories in parallel (``n_steps / n_envs`` steps each) for speed; the number
   of transitions per update and of gradient steps per rollout do not change.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import torch
from stable_baselines3 import PPO

from deepstock.core.checks import check_choice, check_int, check_number
from deepstock.methods.common import (
    TrainResult,
    settings_from_mapping,
)
from deepstock.methods.envs import ACTION_SCALINGS, InventoryVecEnv
from deepstock.methods.sb3_common import check_net_arch, linear_schedule, run_sb3, sb3_result
from deepstock.model.dataset import InventoryDataset
from deepstock.model.regularizations import get_regularization
from deepstock.model.simulator import resolve_device

__all__ = ["PPOConfig", "make_ppo", "train_ppo"]


# ====================================================================== settings
@dataclass
class PPOConfig:
    """Settings of one PPO run. Defaults: the authors' (untuned) Coeff/Both configuration; the
    tuned setting-1 configurations for None and Base ship as
    ``deepstock/configs/ppo_setting1_{none,base}.yaml`` (the book's *Methods and tuning protocol* chapter)."""

    learning_rate: float = 3e-4
    """Initial Adam learning rate, in (0, 1]. Search space loguniform(5e-5, 9e-3); AR(1)
    loguniform(6e-4, 1e-2)."""
    lr_min: float = 3e-5
    """Final learning rate, in (0, learning_rate]. Search space loguniform(1e-5, 5e-5); AR(1)
    loguniform(9e-5, 6e-4)."""
    lr_fraction: float = 0.9
    """Fraction of ``total_steps`` at which the linear decays (learning rate and clip range)
    reach their final values, in (0, 1]."""
    clip_range: float = 0.1
    """Initial PPO clip range, in (0, 1); it decays linearly to ``clip_range / 2``. Search space
    uniform(0.1, 0.3)."""
    batch_size: int = 256
    """Minibatch size in transitions (>= 2). Search space {128, 256, 512}."""
    n_steps: int = 2048
    """Transitions per rollout, over all parallel envs (>= 2, a multiple of ``n_envs``).
    Search space {1024, 2048, 4096}; AR(1) {512, 1024, 2048}."""
    n_epochs: int = 1
    """Passes over each rollout (>= 1). Search space {1, 3, 5, 10}. See difference 2."""
    ent_coef: float = 0.1
    """Entropy bonus coefficient (>= 0). Search space uniform(1e-4, 0.5)."""
    gamma: float = 0.99
    """Discount factor per order, in [0, 1]. Search space uniform(0.98, 1); AR(1)
    uniform(0.96, 1)."""
    gae_lambda: float = 0.5
    """GAE parameter, in [0, 1]. Search space uniform(0.5, 1); AR(1) Base uniform(0, 0.5)."""
    vf_coef: float = 0.4
    """Weight of the value loss (>= 0)."""
    max_grad_norm: float = 0.5
    """Global gradient-norm clip (> 0)."""
    target_kl: float | None = None
    """Stop an update's epochs early when the approximate KL exceeds it (> 0); None: never."""
    net_arch: dict[str, list[int]] = field(
        default_factory=lambda: {"pi": [256, 256], "vf": [256, 256]}
    )
    """Hidden layers (tanh) of the policy (``pi``) and value (``vf``) networks; a plain list sets
    both. Setting 1 [256, 256] / [256, 256]; setting 2 [128, 128] / [64, 64]; setting 3
    [64, 64] / [64, 64]."""
    log_std_init: float = 0.0
    """Initial log standard deviation of the Gaussian, in env action coordinates (finite);
    SB3's default 0, the authors'."""
    action_scaling: str = "native"
    """``"native"``: the env's actions are the raw outputs in their own units (the authors');
    ``"unit"``: ``Box(-1, 1)`` mapped onto them (difference 3)."""
    total_steps: int = 200000
    """Maximum number of env steps (orders) of training (>= 1)."""
    eval_freq: int = 2048
    """Env steps between two validations (>= 1). Search space {512, 1024, 2048}; AR(1)
    {1024, 2048}."""
    patience: int = 10
    """Early stopping: stop at the ``patience + 1``-th consecutive validation without improvement
    (SB3's ``StopTrainingOnNoModelImprovement``), >= 0."""
    min_evals: int = 5
    """Validations that never count towards ``patience`` (>= 0)."""
    initial_action_bias: float = 0.5
    """Fraction in [0, 1] of the action range at which the untrained Gaussian mean sits. Search
    space uniform(0.2, 0.7); AR(1) uniform(0, 0.6)."""
    n_envs: int = 1
    """Parallel training trajectories (>= 1), see difference 5."""

    def __post_init__(self) -> None:
        method = "PPO"
        check_number(
            f"{method} config key 'learning_rate'", self.learning_rate, 0.0, 1.0, low_open=True
        )
        check_number(f"{method} config key 'lr_min'", self.lr_min, 0.0, 1.0, low_open=True)
        if self.lr_min > self.learning_rate:
            raise ValueError(
                f"PPO config key 'lr_min' must be <= learning_rate ({self.learning_rate}), "
                f"got {self.lr_min!r}"
            )
        check_number(
            f"{method} config key 'lr_fraction'", self.lr_fraction, 0.0, 1.0, low_open=True
        )
        check_number(
            f"{method} config key 'clip_range'",
            self.clip_range,
            0.0,
            1.0,
            low_open=True,
            high_open=True,
        )
        check_int(f"{method} config key 'batch_size'", self.batch_size, 2)
        check_int(f"{method} config key 'n_steps'", self.n_steps, 2)
        check_int(f"{method} config key 'n_epochs'", self.n_epochs, 1)
        check_number(f"{method} config key 'ent_coef'", self.ent_coef, 0.0, float("inf"))
        check_number(f"{method} config key 'gamma'", self.gamma, 0.0, 1.0)
        check_number(f"{method} config key 'gae_lambda'", self.gae_lambda, 0.0, 1.0)
        check_number(f"{method} config key 'vf_coef'", self.vf_coef, 0.0, float("inf"))
        check_number(
            f"{method} config key 'max_grad_norm'",
            self.max_grad_norm,
            0.0,
            float("inf"),
            low_open=True,
        )
        if self.target_kl is not None:
            check_number(
                f"{method} config key 'target_kl'", self.target_kl, 0.0, float("inf"), low_open=True
            )
        self.net_arch = check_net_arch(method, self.net_arch, ("pi", "vf"))
        check_number(f"{method} config key 'log_std_init'", self.log_std_init, -20.0, 20.0)
        check_choice(f"{method} config key 'action_scaling'", self.action_scaling, ACTION_SCALINGS)
        check_int(f"{method} config key 'total_steps'", self.total_steps, 1)
        check_int(f"{method} config key 'eval_freq'", self.eval_freq, 1)
        check_int(f"{method} config key 'patience'", self.patience, 0)
        check_int(f"{method} config key 'min_evals'", self.min_evals, 0)
        check_number(
            f"{method} config key 'initial_action_bias'", self.initial_action_bias, 0.0, 1.0
        )
        check_int(f"{method} config key 'n_envs'", self.n_envs, 1)
        if self.n_steps % self.n_envs != 0:
            raise ValueError(
                f"PPO config key 'n_envs' ({self.n_envs}) must divide n_steps ({self.n_steps})"
            )


# ====================================================================== the model
def make_ppo(env: InventoryVecEnv, settings: PPOConfig, *, seed: int, device: torch.device) -> PPO:
    """An SB3 PPO model on ``env`` configured by ``settings``, with the action bias applied."""
    model = PPO(
        "MlpPolicy",
        env,
        learning_rate=linear_schedule(
            settings.learning_rate, settings.lr_min, settings.lr_fraction
        ),
        n_steps=settings.n_steps // settings.n_envs,
        batch_size=settings.batch_size,
        n_epochs=settings.n_epochs,
        gamma=settings.gamma,
        gae_lambda=settings.gae_lambda,
        clip_range=linear_schedule(
            settings.clip_range, settings.clip_range / 2.0, settings.lr_fraction
        ),
        ent_coef=settings.ent_coef,
        vf_coef=settings.vf_coef,
        max_grad_norm=settings.max_grad_norm,
        target_kl=settings.target_kl,
        policy_kwargs={
            "net_arch": dict(settings.net_arch),
            "log_std_init": settings.log_std_init,
        },
        seed=seed,
        device=device,
        verbose=0,
    )
    # initial_action_bias: the Gaussian mean starts at that fraction of the action range (the
    # action_net's weights start near 0: orthogonal with gain 0.01)
    with torch.no_grad():
        model.policy.action_net.bias.fill_(
            env.action_map.from_fraction(settings.initial_action_bias)
        )
    return model


# ====================================================================== training
def train_ppo(
    dataset: InventoryDataset,
    regularization: str,
    settings: PPOConfig | dict[str, Any] | None = None,
    *,
    seed: int = 0,
    device: str | torch.device = "auto",
    progress: bool = False,
    tensorboard: str | os.PathLike[str] | None = None,
) -> TrainResult:
    """Train PPO on the training split, select on the validation split, report all three.

    Args:
        dataset: with ``train``, ``val`` and ``test`` splits.
        regularization: ``none``, ``base``, ``coeff`` or ``both``.
        settings: a :class:`PPOConfig` or a mapping of its fields (unknown keys fail).
        seed: seeds Python, NumPy, torch, SB3 and the env's trajectory draws.
        device: ``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda"``: where the networks
            train. The env and every evaluation simulate on the CPU in float64.
        progress: show a tqdm bar over env steps.
        tensorboard: a folder for TensorBoard curves (SB3's ``train/*`` tags and every
            validation, see :func:`deepstock.methods.sb3_common.run_sb3`), or ``None``.

    Returns:
        A :class:`~deepstock.methods.train.TrainResult` as :func:`deepstock.methods.ddpg.train_ddpg`'s, with
        ``extras``: ``env_steps``, ``best_step``, ``n_evaluations``, ``stopped_early``,
        ``evaluation_seconds``.
    """
    if not isinstance(settings, PPOConfig):
        settings = settings_from_mapping(PPOConfig, settings, method="ppo")
    reg = get_regularization(regularization)
    torch_device = resolve_device(device)
    run = run_sb3(
        dataset,
        reg,
        settings,
        lambda env: make_ppo(env, settings, seed=seed, device=torch_device),
        label="PPO",
        seed=seed,
        progress=progress,
        tensorboard=tensorboard,
        env_options={"action_scaling": settings.action_scaling},
    )
    return sb3_result(
        "ppo", reg, settings, run, seed=seed, device=torch_device, extras=run.extras()
    )
