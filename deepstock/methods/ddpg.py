"""DDPG (Lillicrap et al. 2016) via Stable-Baselines3, configured as the paper (the book's *Methods and tuning protocol* chapter).

A deterministic actor ``mu(s)`` and a critic ``Q(s, a)`` learn from a replay buffer of one-order
transitions of :class:`deepstock.methods.envs.InventoryVecEnv` (reward = minus the mean daily loss of the
order's window). Each gradient step samples ``batch_size`` transitions and

* fits the critic to ``r + gamma * (1 - done) * Q_target(s', mu_target(s'))`` (MSE);
* moves the actor up the critic: ``maximize Q(s, mu(s))``;
* soft-updates both targets, ``theta_target <- tau * theta + (1 - tau) * theta_target``.

The actor's ``tanh`` output in ``[-1, 1]`` is the env action, which the env maps affinely onto the
regularization's raw output (the order for None, the order-up-to level for Base, in
``[0, max_replenish]``; coefficients in ``[0, 1]`` for Coeff/Both). SB3 rescales any Box action
space to ``[-1, 1]`` internally, so this is the same algorithm the authors ran on
``Box(0, max_replenish)``.

Facts of the authors' setup that this module follows (the book's *Methods and tuning protocol* chapter and their public code):

- SB3's ``DDPG`` with ``MlpPolicy`` (ReLU MLPs ``net_arch.pi`` / ``net_arch.qf``), one
  environment that draws a random training trajectory at every reset, ``gradient_steps = 1`` per
  ``train_freq`` env steps (one update per transition when ``train_freq = 1``), the first
  ``learning_starts`` actions uniformly random (SB3's warm-up), **no exploration noise**;
- Adam for actor and critic with the learning rate decaying linearly from ``learning_rate`` to
  ``lr_min``, reached at ``lr_fraction`` of ``total_steps`` (SB3 ``get_linear_fn``);
- validation every ``eval_freq`` env steps on every validation trajectory with the deterministic
  actor; early stopping as SB3's ``StopTrainingOnNoModelImprovement(patience, min_evals=5)``; the
  best validation policy is kept;
- ``initial_action_bias``: ``atanh(2 b - 1)`` is added to the bias of the actor's last linear
  layer, so the untrained deterministic action is the fraction ``b`` of the action range.

Differences from the authors' code (CleanRL-style list):

1. Validation and the reported metrics run the policy through the shared batched simulator
   (:func:`deepstock.methods.train.evaluate_policy`): the mean trajectory loss over counted days. The
   authors' ``EvalCallback`` ranked policies by the mean episode return, the sum of the steps'
   window-mean losses; both are the same days' losses, weighted per window instead of per day
   (equal weights when every window has ``P`` days).
2. The ``initial_action_bias`` shift is applied to the target actor as well (the authors shifted
   the actor after SB3 had copied it into the target, so their target actor started at the middle
   of the range and drifted towards the actor at rate ``tau``). ``2 b - 1`` is clipped to
   ``[-0.99, 0.99]`` before ``atanh`` (the authors used ``3 (2 b - 1)`` there).
3. The network sees every context feature ``[c_t, x_t]`` (the authors' None/Base observation
   held the first feature only; settings 1-4 have one feature, so nothing changes there).
4. ``n_envs > 1`` (not the default) steps several trajectories at once for speed. The number of
   gradient updates per transition stays ``1 / train_freq``: with ``n_envs`` envs, SB3 trains
   every ``train_freq / n_envs`` vector steps with one update, or every vector step with
   ``n_envs / train_freq`` updates. The updates then come in bursts after ``n_envs``
   transitions collected with the same actor, instead of one after each transition.

Figure 3 of the paper (critic loss over the first 10,000 steps, states in the replay buffer) is
recorded when ``record_steps > 0``: ``extras["critic_loss"]`` has the critic's MSE at every
gradient step taken while ``num_timesteps <= record_steps`` (``extras["critic_loss_step"]`` the
env step of each), ``extras["buffer_states"]`` the observations ``s`` of the transitions written to
the replay buffer over those steps, ``(steps, obs_dim)``, columns ``extras["state_names"]``.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from stable_baselines3 import DDPG
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.noise import (
    ActionNoise,
    NormalActionNoise,
    OrnsteinUhlenbeckActionNoise,
    VectorizedActionNoise,
)

from deepstock.core.checks import check_int, check_number
from deepstock.methods.common import (
    TrainResult,
    settings_from_mapping,
)
from deepstock.methods.envs import InventoryVecEnv
from deepstock.methods.sb3_common import check_net_arch, linear_schedule, run_sb3, sb3_result
from deepstock.model.dataset import InventoryDataset
from deepstock.model.regularizations import get_regularization
from deepstock.model.simulator import resolve_device

__all__ = [
    "DDPGConfig",
    "RecordingDDPG",
    "RecordingReplayBuffer",
    "make_ddpg",
    "parse_action_noise",
    "train_ddpg",
]


# ====================================================================== settings
@dataclass
class DDPGConfig:
    """Settings of one DDPG run. Defaults: the authors' (untuned) Coeff/Both configuration; the
    tuned setting-1 configurations for None and Base ship as
    ``deepstock/configs/ddpg_setting1_{none,base}.yaml`` (the book's *Methods and tuning protocol* chapter)."""

    learning_rate: float = 1e-3
    """Initial Adam learning rate of actor and critic, in (0, 1]. Search space
    loguniform(3e-4, 9e-3); AR(1) loguniform(6e-4, 9e-3)."""
    lr_min: float = 1e-4
    """Final learning rate, in (0, learning_rate]. Search space loguniform(6e-5, 3e-4); AR(1)
    loguniform(9e-5, 6e-4)."""
    lr_fraction: float = 0.95
    """Fraction of ``total_steps`` at which the linear decay reaches ``lr_min``, in (0, 1]."""
    batch_size: int = 256
    """Transitions per gradient step (>= 1). Search space {128, 256, 512}."""
    tau: float = 0.005
    """Soft target-update rate, in (0, 1]. Search space loguniform(1e-3, 1e-2)."""
    gamma: float = 0.99
    """Discount factor per order, in [0, 1]. Search space uniform(0.98, 1); AR(1)
    uniform(0.96, 1)."""
    net_arch: dict[str, list[int]] = field(default_factory=lambda: {"pi": [64, 64], "qf": [64, 64]})
    """Hidden layers of the actor (``pi``) and the critic (``qf``), ReLU; a plain list sets both.
    Setting 1 [64, 64] / [64, 64]; setting 2 [32, 32] / [32, 32]; setting 3 [32, 32] / [16, 16]."""
    buffer_size: int = 20000
    """Replay buffer capacity in transitions (>= 1). Search space {20000, 50000, 100000}."""
    train_freq: int = 1
    """Env steps (transitions) per gradient step (>= 1). Search space {1, 14}."""
    learning_starts: int = 500
    """Env steps of uniformly random actions before the first update (>= 0). Search space
    {100, 500, 1000}."""
    total_steps: int = 200000
    """Maximum number of env steps (orders) of training (>= 1)."""
    eval_freq: int = 2048
    """Env steps between two validations (>= 1). Search space {512, 1024}."""
    patience: int = 10
    """Early stopping: stop at the ``patience + 1``-th consecutive validation without improvement
    (SB3's ``StopTrainingOnNoModelImprovement``), >= 0."""
    min_evals: int = 5
    """Validations that never count towards ``patience`` (>= 0)."""
    initial_action_bias: float = 0.5
    """Fraction in [0, 1] of the action range the untrained deterministic actor outputs.
    Search space uniform(0.2, 0.7); AR(1) uniform(0, 0.6)."""
    action_noise: str = "none"
    """Exploration noise added to the actor's action in ``[-1, 1]`` coordinates: ``"none"`` (the
    authors' choice), ``"normal:SIGMA"`` (Gaussian) or ``"ou:SIGMA"`` (Ornstein-Uhlenbeck),
    SIGMA > 0 in units of half the action range."""
    n_envs: int = 1
    """Parallel training trajectories (>= 1); see difference 4 in the module docstring. Must
    divide ``train_freq`` or be a multiple of it."""
    record_steps: int = 10000
    """Record the Figure 3 diagnostics (critic loss per gradient step, replay-buffer states) over
    the first ``record_steps`` env steps; 0 switches them off (>= 0)."""

    def __post_init__(self) -> None:
        method = "DDPG"
        check_number(
            f"{method} config key 'learning_rate'", self.learning_rate, 0.0, 1.0, low_open=True
        )
        check_number(f"{method} config key 'lr_min'", self.lr_min, 0.0, 1.0, low_open=True)
        if self.lr_min > self.learning_rate:
            raise ValueError(
                f"DDPG config key 'lr_min' must be <= learning_rate ({self.learning_rate}), "
                f"got {self.lr_min!r}"
            )
        check_number(
            f"{method} config key 'lr_fraction'", self.lr_fraction, 0.0, 1.0, low_open=True
        )
        check_int(f"{method} config key 'batch_size'", self.batch_size, 1)
        check_number(f"{method} config key 'tau'", self.tau, 0.0, 1.0, low_open=True)
        check_number(f"{method} config key 'gamma'", self.gamma, 0.0, 1.0)
        self.net_arch = check_net_arch(method, self.net_arch, ("pi", "qf"))
        check_int(f"{method} config key 'buffer_size'", self.buffer_size, 1)
        check_int(f"{method} config key 'train_freq'", self.train_freq, 1)
        check_int(f"{method} config key 'learning_starts'", self.learning_starts, 0)
        check_int(f"{method} config key 'total_steps'", self.total_steps, 1)
        check_int(f"{method} config key 'eval_freq'", self.eval_freq, 1)
        check_int(f"{method} config key 'patience'", self.patience, 0)
        check_int(f"{method} config key 'min_evals'", self.min_evals, 0)
        check_number(
            f"{method} config key 'initial_action_bias'", self.initial_action_bias, 0.0, 1.0
        )
        parse_action_noise(self.action_noise, n_actions=1)  # validates the string
        check_int(f"{method} config key 'n_envs'", self.n_envs, 1)
        update_schedule(self.train_freq, self.n_envs)  # validates the combination
        check_int(f"{method} config key 'record_steps'", self.record_steps, 0)


def parse_action_noise(spec: str, n_actions: int, n_envs: int = 1) -> ActionNoise | None:
    """The SB3 action noise of ``"none"``, ``"normal:SIGMA"`` or ``"ou:SIGMA"``."""
    if not isinstance(spec, str):
        raise ValueError(f"DDPG config key 'action_noise' must be a string, got {spec!r}")
    if spec.lower() == "none":
        return None
    kind, _, sigma_text = spec.partition(":")
    try:
        sigma = float(sigma_text)
    except ValueError:
        sigma = math.nan
    if kind not in ("normal", "ou") or not (math.isfinite(sigma) and sigma > 0):
        raise ValueError(
            "DDPG config key 'action_noise' must be 'none', 'normal:SIGMA' or 'ou:SIGMA' with "
            f"SIGMA > 0, got {spec!r}"
        )
    mean, scale = np.zeros(n_actions), np.full(n_actions, sigma)
    if kind == "normal":
        noise: ActionNoise = NormalActionNoise(mean=mean, sigma=scale)
    else:
        noise = OrnsteinUhlenbeckActionNoise(mean=mean, sigma=scale)
    return VectorizedActionNoise(noise, n_envs) if n_envs > 1 else noise


def update_schedule(train_freq: int, n_envs: int) -> tuple[int, int]:
    """``(vector steps between trainings, gradient steps per training)`` with ``n_envs`` envs
    such that there is one gradient step per ``train_freq`` transitions."""
    if train_freq % n_envs == 0:
        return train_freq // n_envs, 1
    if n_envs % train_freq == 0:
        return 1, n_envs // train_freq
    raise ValueError(
        f"DDPG config key 'n_envs' ({n_envs}) must divide train_freq ({train_freq}) or be a "
        "multiple of it, to keep one gradient step per train_freq transitions"
    )


# ====================================================================== the model
class RecordingDDPG(DDPG):
    """SB3's DDPG that also records the Figure 3 diagnostics over the first ``record_steps``.

    While ``num_timesteps <= record_steps``: every gradient step's critic loss (``train()`` runs
    its gradient steps one by one, which computes exactly the same updates), and the observation
    of every transition written to the replay buffer.
    """

    record_steps: int = 0
    #: Gradient steps taken so far (what SB3 counts internally as its number of updates).
    gradient_steps_done: int = 0

    def start_recording(self, record_steps: int) -> None:
        self.record_steps = int(record_steps)
        self.critic_losses: list[float] = []
        self.critic_loss_steps: list[int] = []
        self.replay_buffer.record_steps = self.record_steps

    @property
    def buffer_states(self) -> list[np.ndarray]:
        """The observations written to the replay buffer while recording (one array per env
        step, ``(n_envs, obs_dim)``)."""
        return self.replay_buffer.recorded_states

    def train(self, gradient_steps: int, batch_size: int = 100) -> None:
        self.gradient_steps_done += int(gradient_steps)
        if self.num_timesteps > self.record_steps:
            super().train(gradient_steps, batch_size)
            return
        for _ in range(gradient_steps):
            super().train(1, batch_size)
            self.critic_losses.append(float(self.logger.name_to_value["train/critic_loss"]))
            self.critic_loss_steps.append(int(self.num_timesteps))


class RecordingReplayBuffer(ReplayBuffer):
    """SB3's replay buffer that keeps a copy of the observations it is given while the number of
    transitions written (env steps, summed over the parallel envs) is at most
    ``record_steps``: the buffer states of Figure 3."""

    record_steps: int = 0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.recorded_states: list[np.ndarray] = []
        self.transitions_added = 0

    def add(self, obs: np.ndarray, *args: Any, **kwargs: Any) -> None:
        self.transitions_added += int(np.asarray(obs).shape[0])
        if self.transitions_added <= self.record_steps:
            self.recorded_states.append(np.array(obs, dtype=np.float32, copy=True))
        super().add(obs, *args, **kwargs)


def make_ddpg(
    env: InventoryVecEnv, settings: DDPGConfig, *, seed: int, device: torch.device
) -> RecordingDDPG:
    """An SB3 DDPG model on ``env`` configured by ``settings``, with the action bias applied."""
    steps_between, gradient_steps = update_schedule(settings.train_freq, settings.n_envs)
    model = RecordingDDPG(
        "MlpPolicy",
        env,
        learning_rate=linear_schedule(
            settings.learning_rate, settings.lr_min, settings.lr_fraction
        ),
        buffer_size=settings.buffer_size,
        learning_starts=settings.learning_starts,
        batch_size=settings.batch_size,
        tau=settings.tau,
        gamma=settings.gamma,
        train_freq=steps_between,
        gradient_steps=gradient_steps,
        action_noise=parse_action_noise(
            settings.action_noise, env.action_map.size, settings.n_envs
        ),
        policy_kwargs={"net_arch": dict(settings.net_arch)},
        replay_buffer_class=RecordingReplayBuffer,
        seed=seed,
        device=device,
        verbose=0,
    )
    model.start_recording(settings.record_steps)
    # initial_action_bias: tanh(bias shift) = 2 b - 1, i.e. the fraction b of the range
    shift = math.atanh(min(max(2.0 * settings.initial_action_bias - 1.0, -0.99), 0.99))
    output_layer = [m for m in model.actor.mu if isinstance(m, torch.nn.Linear)][-1]
    with torch.no_grad():
        output_layer.bias += shift
    model.actor_target.load_state_dict(model.actor.state_dict())
    return model


# ====================================================================== training
def train_ddpg(
    dataset: InventoryDataset,
    regularization: str,
    settings: DDPGConfig | dict[str, Any] | None = None,
    *,
    seed: int = 0,
    device: str | torch.device = "auto",
    progress: bool = False,
    tensorboard: str | os.PathLike[str] | None = None,
) -> TrainResult:
    """Train DDPG on the training split, select on the validation split, report all three.

    Args:
        dataset: with ``train``, ``val`` and ``test`` splits.
        regularization: ``none``, ``base``, ``coeff`` or ``both``.
        settings: a :class:`DDPGConfig` or a mapping of its fields (unknown keys fail).
        seed: seeds Python, NumPy, torch, SB3 and the env's trajectory draws.
        device: ``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda"``: where the networks
            train. The env and every evaluation simulate on the CPU in float64.
        progress: show a tqdm bar over env steps.
        tensorboard: a folder for TensorBoard curves (SB3's ``train/*`` tags and every
            validation, see :func:`deepstock.methods.sb3_common.run_sb3`), or ``None``.

    Returns:
        A :class:`~deepstock.methods.train.TrainResult`: the best validation policy (an
        :class:`~deepstock.methods.envs.ActorPolicy`), metrics of train/val/test, the validation curve
        against env steps, the training wall time (model setup and learning, validations
        included) and ``extras``: ``env_steps``, ``gradient_steps``, ``best_step``,
        ``n_evaluations``, ``stopped_early``, ``evaluation_seconds`` and the Figure 3 records.
    """
    if not isinstance(settings, DDPGConfig):
        settings = settings_from_mapping(DDPGConfig, settings, method="ddpg")
    reg = get_regularization(regularization)
    torch_device = resolve_device(device)
    run = run_sb3(
        dataset,
        reg,
        settings,
        lambda env: make_ddpg(env, settings, seed=seed, device=torch_device),
        label="DDPG",
        seed=seed,
        progress=progress,
        tensorboard=tensorboard,
    )
    model, env = run.model, run.env
    obs_names = [
        *dataset.feature_names,
        *(
            f"pipeline_{k}"
            for k in range(env.observation_space.shape[0] - len(dataset.feature_names))
        ),
    ]
    extras: dict[str, Any] = {**run.extras(), "gradient_steps": model.gradient_steps_done}
    if settings.record_steps > 0:
        states = model.buffer_states
        extras["critic_loss"] = np.asarray(model.critic_losses, dtype=np.float64)
        extras["critic_loss_step"] = np.asarray(model.critic_loss_steps, dtype=np.int64)
        extras["buffer_states"] = (
            np.concatenate(states, axis=0)
            if states
            else np.zeros((0, env.observation_space.shape[0]), dtype=np.float32)
        )
        extras["state_names"] = obs_names
    return sb3_result("ddpg", reg, settings, run, seed=seed, device=torch_device, extras=extras)
