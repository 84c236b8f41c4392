"""DQN (Mnih et al. 2015) via Stable-Baselines3: a fourth method, not in the paper.

The paper compares DS, DDPG and PPO; DQN is the method most readers of deep-RL tutorials know
(the book's chapter *From a tutorial's DQN to the paper's*), so the project adds it where the
paper's methods are, through the same environment, validation and result store.

A Q-network ``Q(s, .)`` with one output per discrete action learns from a replay buffer of
one-order transitions of :class:`deepstock.methods.envs.InventoryVecEnv` (reward = minus the
mean daily loss of the order's window). Every ``train_freq`` env steps it takes
``gradient_steps`` gradient steps, each on ``batch_size`` transitions: the Huber loss between
``Q(s, a)`` and ``r + gamma * (1 - done) * max_a' Q_target(s', a')``, gradients clipped to norm
10 (SB3's defaults). The target network is copied from the online one every
``target_update_interval`` env steps. Actions are epsilon-greedy: epsilon decays linearly from
``exploration_initial_eps`` to ``exploration_final_eps`` over the first
``exploration_fraction`` of ``total_steps``; the first ``learning_starts`` actions are uniformly
random.

**The discrete action map.** The env's actions are the points of a grid
``{0, step, 2 step, ..., max_replenish}`` (``step`` = ``action_step``; the last interval is
shorter when ``step`` does not divide ``max_replenish``, see
:class:`deepstock.methods.envs.GridActionMap`), and the regularization maps the chosen point:

* None: the point is the order, ``q_t = k * step``;
* Base: the point is the order-up-to level, ``q_t = clip(k * step - IP_t, 0, max_replenish)``.

Only regularizations with one raw output in stock units can be discretized this way; Coeff and
Both (``m + 1`` coefficients) are refused with a clear error. The default ``action_step``
(``None``) is ``max_replenish / 100``: 1 unit in settings 1-3 (``max_replenish`` = 100, 101
actions) and 5 units in setting 4 (``max_replenish`` = 500). The coarser step in setting 4 keeps
the Q-head at 101 outputs: with one output per unit (501 outputs) each action's value would be
learnt from five times fewer transitions, and setting 4's demand (tens to hundreds of units a
day) makes a 5-unit rounding of the order worth a fraction of a percent of the loss.

What this module shares with :mod:`deepstock.methods.ddpg` and :mod:`deepstock.methods.ppo`:
the env (one trajectory drawn at every reset), validation every ``eval_freq`` env steps on every
validation trajectory with the deterministic (greedy) policy through the batched simulator, the
early-stopping rule (``patience``, ``min_evals``), keeping the best validation policy, the
learning-rate decay (linear from ``learning_rate`` to ``lr_min`` at ``lr_fraction`` of
``total_steps``), seeding and devices (the networks on ``device``, the simulation on the CPU in
float64).

``initial_action_bias`` ``b`` sets the initial greedy action: the Q-head's last layer starts with
zero weights and a bias of 1 on the grid point nearest to ``b * max_replenish`` (0 elsewhere),
so the untrained greedy policy orders (None) or orders up to (Base) that point in every state,
as DDPG's and PPO's ``initial_action_bias`` starts their deterministic action at that fraction of
the range. (SB3's initialization of that layer is replaced; its hidden layers keep theirs. With
zero last-layer weights, the first updates move the biases and the last layer before the hidden
layers get gradients, which the next updates give them.)

DQN runs on Stable-Baselines3 only: the population engine that trains many DDPG or PPO runs
at once (:mod:`deepstock.methods.population`) does not cover it yet. ``n_envs`` is 1 (one
transition per env step).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from stable_baselines3 import DQN

from deepstock.core.checks import check_int, check_int_list, check_number
from deepstock.methods.common import TrainResult, settings_from_mapping
from deepstock.methods.envs import GridActionMap, InventoryVecEnv
from deepstock.methods.sb3_common import linear_schedule, run_sb3, sb3_result
from deepstock.model.dataset import InventoryDataset
from deepstock.model.regularizations import get_regularization
from deepstock.model.simulator import resolve_device

__all__ = [
    "DEFAULT_GRID_POINTS",
    "CountingDQN",
    "DQNConfig",
    "action_grid",
    "grid_step",
    "make_dqn",
    "train_dqn",
]

#: Points of the default action grid: ``action_step = max_replenish / (DEFAULT_GRID_POINTS - 1)``.
DEFAULT_GRID_POINTS = 101


# ====================================================================== settings
@dataclass
class DQNConfig:
    """Settings of one DQN run (the project's defaults; the search space of settings 1-3 is in
    :mod:`deepstock.tuning.spaces`)."""

    learning_rate: float = 1e-3
    """Initial Adam learning rate of the Q-network, in (0, 1]. Search space
    loguniform(1e-4, 3e-3)."""
    lr_min: float = 5e-5
    """Final learning rate, in (0, learning_rate]."""
    lr_fraction: float = 0.95
    """Fraction of ``total_steps`` at which the linear decay reaches ``lr_min``, in (0, 1]."""
    batch_size: int = 128
    """Transitions per gradient step (>= 1). Search space {64, 128, 256}."""
    buffer_size: int = 50_000
    """Replay buffer capacity in transitions (>= 1). Search space {10000, 50000, 100000}."""
    train_freq: int = 1
    """Env steps between two trainings (>= 1). Search space {1, 4}."""
    gradient_steps: int = 1
    """Gradient steps per training (>= 1). Search space {1, 2}."""
    target_update_interval: int = 1000
    """Env steps between two copies of the online network into the target (>= 1). Search space
    {250, 1000, 2500}."""
    exploration_fraction: float = 0.2
    """Fraction of ``total_steps`` over which epsilon decays, in (0, 1]. Search space
    uniform(0.05, 0.3)."""
    exploration_initial_eps: float = 1.0
    """Epsilon at the start, in [0, 1]."""
    exploration_final_eps: float = 0.05
    """Epsilon after the decay, in [0, exploration_initial_eps]. Search space
    uniform(0.01, 0.1)."""
    gamma: float = 0.95
    """Discount factor per order, in [0, 1]. Search space uniform(0.9, 0.99)."""
    learning_starts: int = 500
    """Env steps of uniformly random actions before the first update (>= 0). Search space
    {100, 500, 1000}."""
    net_arch: list[int] = field(default_factory=lambda: [64, 64])
    """Hidden layers of the Q-network (ReLU). Search space {[64, 64], [128, 128], [256, 256]}."""
    total_steps: int = 200_000
    """Maximum number of env steps (orders) of training (>= 1)."""
    eval_freq: int = 1024
    """Env steps between two validations (>= 1). Search space {512, 1024}."""
    patience: int = 10
    """Early stopping: stop at the ``patience + 1``-th consecutive validation without
    improvement, after ``min_evals`` (as DDPG and PPO), >= 0."""
    min_evals: int = 5
    """Validations that never count towards ``patience`` (>= 0)."""
    initial_action_bias: float = 0.5
    """Fraction in [0, 1] of the grid's range at which the initial greedy action sits. Search
    space uniform(0.2, 0.7); AR(1) uniform(0, 0.6) (the paper's ranges for DDPG and PPO)."""
    action_step: float | None = None
    """Spacing of the action grid in stock units (> 0), or ``None`` for
    ``max_replenish / 100`` (1 unit in settings 1-3, 5 in setting 4; module docstring)."""

    @property
    def n_envs(self) -> int:
        """Parallel training trajectories: always 1 (not a configuration key)."""
        return 1

    def __post_init__(self) -> None:
        name = "DQN config key"
        check_number(f"{name} 'learning_rate'", self.learning_rate, 0.0, 1.0, low_open=True)
        check_number(f"{name} 'lr_min'", self.lr_min, 0.0, 1.0, low_open=True)
        if self.lr_min > self.learning_rate:
            raise ValueError(
                f"{name} 'lr_min' must be <= learning_rate ({self.learning_rate}), "
                f"got {self.lr_min!r}"
            )
        check_number(f"{name} 'lr_fraction'", self.lr_fraction, 0.0, 1.0, low_open=True)
        check_int(f"{name} 'batch_size'", self.batch_size, 1)
        check_int(f"{name} 'buffer_size'", self.buffer_size, 1)
        check_int(f"{name} 'train_freq'", self.train_freq, 1)
        check_int(f"{name} 'gradient_steps'", self.gradient_steps, 1)
        check_int(f"{name} 'target_update_interval'", self.target_update_interval, 1)
        check_number(
            f"{name} 'exploration_fraction'", self.exploration_fraction, 0.0, 1.0, low_open=True
        )
        check_number(f"{name} 'exploration_initial_eps'", self.exploration_initial_eps, 0.0, 1.0)
        check_number(
            f"{name} 'exploration_final_eps'",
            self.exploration_final_eps,
            0.0,
            self.exploration_initial_eps,
        )
        check_number(f"{name} 'gamma'", self.gamma, 0.0, 1.0)
        check_int(f"{name} 'learning_starts'", self.learning_starts, 0)
        self.net_arch = check_int_list(f"{name} 'net_arch'", self.net_arch)
        check_int(f"{name} 'total_steps'", self.total_steps, 1)
        check_int(f"{name} 'eval_freq'", self.eval_freq, 1)
        check_int(f"{name} 'patience'", self.patience, 0)
        check_int(f"{name} 'min_evals'", self.min_evals, 0)
        check_number(f"{name} 'initial_action_bias'", self.initial_action_bias, 0.0, 1.0)
        if self.action_step is not None:
            check_number(f"{name} 'action_step'", self.action_step, 0.0, low_open=True)


def grid_step(settings: DQNConfig, dataset: InventoryDataset) -> float:
    """The action grid's spacing of ``settings`` on ``dataset`` (stock units)."""
    if settings.action_step is not None:
        return float(settings.action_step)
    return float(dataset.max_replenish) / (DEFAULT_GRID_POINTS - 1)


def action_grid(
    dataset: InventoryDataset, regularization: str, action_step: float | None = None
) -> GridActionMap:
    """The discrete action map DQN uses on ``dataset`` with ``regularization`` (the same one
    :func:`train_dqn` gives its env).

    Raises:
        ValueError: the regularization has more than one raw output (Coeff, Both).
    """
    reg = get_regularization(regularization)
    size = reg.output_size(len(dataset.coeff_features))
    if size != 1:
        raise ValueError(f"DQN needs a regularization with one raw output; {reg.name!r} has {size}")
    low, high = reg.action_bounds(dataset.max_replenish)
    return GridActionMap(low, high, grid_step(DQNConfig(action_step=action_step), dataset))


# ====================================================================== the model
class CountingDQN(DQN):
    """SB3's DQN that counts the gradient steps it takes (``gradient_steps_done``)."""

    gradient_steps_done: int = 0

    def train(self, gradient_steps: int, batch_size: int = 100) -> None:
        super().train(gradient_steps, batch_size)
        self.gradient_steps_done += int(gradient_steps)


def make_dqn(
    env: InventoryVecEnv, settings: DQNConfig, *, seed: int, device: torch.device
) -> CountingDQN:
    """An SB3 DQN model on ``env`` (discrete actions) with the initial greedy action set."""
    action_map = env.action_map
    if not isinstance(action_map, GridActionMap):
        raise ValueError("DQN needs an env with a discrete action grid (action_step set)")
    model = CountingDQN(
        "MlpPolicy",
        env,
        learning_rate=linear_schedule(
            settings.learning_rate, settings.lr_min, settings.lr_fraction
        ),
        buffer_size=settings.buffer_size,
        learning_starts=settings.learning_starts,
        batch_size=settings.batch_size,
        gamma=settings.gamma,
        train_freq=settings.train_freq,
        gradient_steps=settings.gradient_steps,
        target_update_interval=settings.target_update_interval,
        exploration_fraction=settings.exploration_fraction,
        exploration_initial_eps=settings.exploration_initial_eps,
        exploration_final_eps=settings.exploration_final_eps,
        policy_kwargs={"net_arch": list(settings.net_arch)},
        seed=seed,
        device=device,
        verbose=0,
    )
    # the initial greedy action: zero last-layer weights, bias 1 on the chosen grid point
    greedy = action_map.from_fraction(settings.initial_action_bias)
    head = [m for m in model.q_net.q_net if isinstance(m, torch.nn.Linear)][-1]
    with torch.no_grad():
        head.weight.zero_()
        head.bias.zero_()
        head.bias[greedy] = 1.0
    model.q_net_target.load_state_dict(model.q_net.state_dict())
    return model


# ====================================================================== training
def train_dqn(
    dataset: InventoryDataset,
    regularization: str,
    settings: DQNConfig | dict[str, Any] | None = None,
    *,
    seed: int = 0,
    device: str | torch.device = "auto",
    progress: bool = False,
) -> TrainResult:
    """Train DQN on the training split, select on the validation split, report all three.

    Args:
        dataset: with ``train``, ``val`` and ``test`` splits.
        regularization: ``none`` or ``base`` (or a plug-in with one raw output in stock units).
        settings: a :class:`DQNConfig` or a mapping of its fields (unknown keys fail).
        seed: seeds Python, NumPy, torch, SB3 (exploration, warm-up actions) and the env's
            trajectory draws.
        device: ``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda"``: where the networks
            train. The env and every evaluation simulate on the CPU in float64.
        progress: show a tqdm bar over env steps.

    Returns:
        A :class:`~deepstock.methods.common.TrainResult`: the best validation policy (an
        :class:`~deepstock.methods.envs.ActorPolicy` of the greedy action), metrics of
        train/val/test, the validation curve against env steps, the training wall time and
        ``extras``: ``env_steps``, ``gradient_steps``, ``best_step``, ``n_evaluations``,
        ``stopped_early``, ``evaluation_seconds``, ``action_step`` and ``n_actions``.
    """
    if not isinstance(settings, DQNConfig):
        settings = settings_from_mapping(DQNConfig, settings, method="dqn")
    reg = get_regularization(regularization)
    grid = action_grid(dataset, reg.name, settings.action_step)  # fails early for Coeff/Both
    torch_device = resolve_device(device)
    run = run_sb3(
        dataset,
        reg,
        settings,
        lambda env: make_dqn(env, settings, seed=seed, device=torch_device),
        label="DQN",
        seed=seed,
        progress=progress,
        env_options={"action_step": grid.step},
    )
    extras: dict[str, Any] = {
        **run.extras(),
        "gradient_steps": run.model.gradient_steps_done,
        "action_step": float(grid.step),
        "n_actions": int(grid.n),
    }
    return sb3_result("dqn", reg, settings, run, seed=seed, device=torch_device, extras=extras)
