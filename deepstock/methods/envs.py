"""Reinforcement-learning environments over the batched simulator (the book's *The inventory model* chapter).

One RL step is one order. For a trajectory with review period ``P`` and lead time ``L``:

* **reset** draws a trajectory, simulates days ``0 .. P-1`` with no order and observes day ``P``,
  the first order day;
* **step** places the order of day ``t`` (action -> regularization -> order), simulates to the
  next order day ``t + P``, and returns the reward ``-(mean daily loss over the step's window)``.
  The window is ``[t + L, t + L + P)`` restricted to the counted days ``[W, T)``; the last
  step's window runs to the end of the horizon (:func:`deepstock.model.simulator.order_windows`, which
  with per-day lead times runs a window from this order's arrival to the next one's).
  Computing it needs ``L`` days of look-ahead past ``t + P`` with no further order, which is
  exact because the next order lands on day ``t + P + L``, at the window's end. (With per-day
  lead times it stays exact as long as no order lands before an earlier-placed one, for example
  whenever the lead time never drops by more than ``P`` between order days.)
* the episode **terminates** after the last order that can still land inside the horizon.

The windows partition the counted days, so ``sum_k step_loss_k * window_days_k`` equals the
trajectory loss times the number of counted days: the RL return and the evaluation metric
measure the same thing. On a dataset whose objective is Tmall's ``J`` (the proxy) the daily loss
is the simulator's per-day approximation of ``J`` (:mod:`deepstock.model.simulator`), so there the
return measures that approximation; the validation that selects the policy uses the exact ``J``.

**Observation.** ``network_input`` of :mod:`deepstock.model.regularizations`: raw ``[c_t, x_t]`` for None and
Base, normalized features and pipeline for Coeff and Both; float32, shape ``(F + Lmax + 1,)``.

**Action.** The regularization's raw outputs (``output_size`` numbers, each within
``action_bounds(max_replenish)``: ``[0, M]`` for None and Base, ``[0, 1]`` for Coeff and Both, as
in the authors' setup). With ``action_scaling="unit"`` (the default) the env exposes
``Box(-1, 1, (output_size,))`` and maps it linearly onto those bounds *inside the env*; the policy
class is still the paper's (the map is a fixed affine reparameterization of the network's last
layer). SB3's DDPG rescales any Box action space to ``[-1, 1]`` internally, so for DDPG the two
scalings are the same algorithm; for PPO they are not (its Gaussian lives in the env's action
coordinates), and ``action_scaling="native"`` exposes ``Box(low, high)`` directly, as the authors
did. Actions outside the box are clipped to it.

**Discrete actions** (for DQN, :mod:`deepstock.methods.dqn`). With ``action_step`` set, a
regularization with one raw output in stock units (None, Base) gets ``Discrete(n)`` actions: the
action ``k`` is the grid point ``min(low + k * action_step, high)``, ``k = 0 .. n - 1``, where
``n = ceil((high - low) / action_step) + 1`` so that the last point is ``high`` itself
(:class:`GridActionMap`). For None the grid point is the order, for Base the order-up-to level
(the order is then ``clip(level - IP_t, 0, M)``, as for every Base action).

Two views of the same engine:

* :class:`InventoryVecEnv`, a native Stable-Baselines3 ``VecEnv`` stepping ``n_envs``
  trajectories at once through one :class:`~deepstock.model.simulator.InventorySimulator` (slots may
  be at different days; there is no Python object per trajectory and no per-slot loop in a step);
* :class:`InventoryEnv`, a single-trajectory ``gymnasium.Env`` that passes gymnasium's and SB3's
  ``check_env``.

:class:`ActorPolicy` turns a network that maps observations to env actions (for example a trained
SB3 actor) into a simulator :data:`~deepstock.model.simulator.Policy`, so that evaluation runs through
the shared batched simulation.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any, Literal

import gymnasium
import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.vec_env.base_vec_env import (
    VecEnv,
    VecEnvIndices,
    VecEnvObs,
    VecEnvStepReturn,
)
from torch import Tensor, nn

from deepstock.core.streams import RowStreams
from deepstock.model.dataset import InventoryDataset
from deepstock.model.regularizations import Regularization, get_regularization, network_input
from deepstock.model.simulator import InventorySimulator, Observation, resolve_device

__all__ = [
    "ACTION_SCALINGS",
    "SAMPLINGS",
    "ActionMap",
    "ActorPolicy",
    "EpisodeBatch",
    "GridActionMap",
    "InventoryEnv",
    "InventoryVecEnv",
    "PopulationEnv",
    "PopulationStep",
    "run_episodes",
]

#: How the env's action coordinates relate to the regularization's raw outputs.
ACTION_SCALINGS: tuple[str, ...] = ("unit", "native")

#: How a reset picks a trajectory: uniformly at random, or the next one in order.
SAMPLINGS: tuple[str, ...] = ("random", "cycle")


# ---------------------------------------------------------------------- action coordinates
@dataclass(frozen=True)
class ActionMap:
    """The affine map from env actions to the regularization's raw outputs.

    Attributes:
        low: lower bound of every raw output (units of the regularization: stock units for None
            and Base, a coefficient for Coeff and Both).
        high: upper bound, ``> low``.
        size: number of raw outputs.
        scaling: ``"unit"``: actions in ``[-1, 1]`` map linearly onto ``[low, high]``;
            ``"native"``: actions are the raw outputs themselves, within ``[low, high]``.
    """

    low: float
    high: float
    size: int
    scaling: str = "unit"

    def __post_init__(self) -> None:
        if self.scaling not in ACTION_SCALINGS:
            raise ValueError(
                f"action_scaling must be one of {ACTION_SCALINGS}, got {self.scaling!r}"
            )
        if not self.high > self.low:
            raise ValueError(f"action bounds need high > low, got ({self.low}, {self.high})")
        if self.size < 1:
            raise ValueError(f"action size must be >= 1, got {self.size}")

    @property
    def space_low(self) -> float:
        return -1.0 if self.scaling == "unit" else self.low

    @property
    def space_high(self) -> float:
        return 1.0 if self.scaling == "unit" else self.high

    def space(self) -> spaces.Box:
        """The gymnasium action space ``Box(space_low, space_high, (size,), float32)``."""
        return spaces.Box(self.space_low, self.space_high, shape=(self.size,), dtype=np.float32)

    def to_raw(self, actions: Tensor) -> Tensor:
        """Raw outputs ``(batch, size)`` from env actions ``(batch, size)`` (clipped to the box)."""
        actions = actions.clamp(self.space_low, self.space_high)
        if self.scaling == "native":
            return actions
        return self.low + (actions + 1.0) * (0.5 * (self.high - self.low))

    def from_fraction(self, fraction: float) -> float:
        """The env action that sits at ``fraction`` in ``[0, 1]`` of the range."""
        return self.space_low + fraction * (self.space_high - self.space_low)

    def from_raw(self, raw: float | np.ndarray) -> float | np.ndarray:
        """The env action whose raw output is ``raw`` (inverse of :meth:`to_raw` in the box)."""
        if self.scaling == "native":
            return raw
        return 2.0 * (np.asarray(raw) - self.low) / (self.high - self.low) - 1.0


@dataclass(frozen=True)
class GridActionMap:
    """Discrete env actions ``k = 0 .. n - 1`` as the grid points ``min(low + k * step, high)``.

    The same interface as :class:`ActionMap` (``space``, ``to_raw``, ``from_fraction``,
    ``from_raw``), for a regularization with one raw output (``size`` is 1).

    Attributes:
        low: the first grid point (units of the raw output: stock units for None and Base).
        high: the last grid point, ``> low``.
        step: spacing of the grid, ``> 0``; the last interval is shorter when ``step`` does not
            divide ``high - low``.
    """

    low: float
    high: float
    step: float
    size: int = 1
    scaling: str = "grid"

    def __post_init__(self) -> None:
        if not self.high > self.low:
            raise ValueError(f"action bounds need high > low, got ({self.low}, {self.high})")
        if not (isinstance(self.step, (int, float)) and math.isfinite(self.step) and self.step > 0):
            raise ValueError(f"action_step must be a finite number > 0, got {self.step!r}")
        if self.size != 1:
            raise ValueError(f"a discrete action grid has one raw output, got size {self.size}")

    @property
    def n(self) -> int:
        """Number of grid points (discrete actions)."""
        # a tiny tolerance so that a step dividing the range does not add a duplicate point
        return int(math.ceil((self.high - self.low) / self.step - 1e-9)) + 1

    @property
    def levels(self) -> np.ndarray:
        """``(n,)`` float64 grid points, ``levels[k]`` is action ``k``'s raw output."""
        return np.minimum(self.low + self.step * np.arange(self.n, dtype=np.float64), self.high)

    def space(self) -> spaces.Discrete:
        """The gymnasium action space ``Discrete(n)``."""
        return spaces.Discrete(self.n)

    def to_raw(self, actions: Tensor) -> Tensor:
        """Raw outputs ``(batch, 1)`` from actions ``(batch, 1)`` (grid indices, rounded and
        clipped to ``[0, n - 1]``)."""
        index = actions.round().clamp(0, self.n - 1)
        return (self.low + index * self.step).clamp(max=self.high)

    def from_fraction(self, fraction: float) -> int:
        """The action whose grid point is nearest to ``fraction`` in ``[0, 1]`` of the range."""
        fraction = min(max(float(fraction), 0.0), 1.0)
        return int(self.from_raw(self.low + fraction * (self.high - self.low)))

    def from_raw(self, raw: float | np.ndarray) -> int | np.ndarray:
        """The action of the grid point nearest to ``raw`` (the lower one on a tie)."""
        values = np.asarray(raw, dtype=np.float64)
        index = np.abs(values[..., None] - self.levels).argmin(axis=-1).astype(np.int64)
        return int(index) if index.ndim == 0 else index


def _coeff_index(dataset: InventoryDataset, device: torch.device) -> Tensor:
    return torch.as_tensor(list(dataset.coeff_features), dtype=torch.int64, device=device)


# ---------------------------------------------------------------------- the batched engine
class EpisodeBatch:
    """Episode state of ``n_slots`` trajectories stepped together through one simulator.

    Every slot holds: the simulator row of its trajectory, the current order day, the RL step
    index within the episode and the pipeline at the start of that day. Slots are independent
    and may sit at different days. When a slot starts an episode, the rows of its trajectory
    (demand, features, order days, arrival slots, loss windows) are copied into per-slot tables,
    so a step reads them by slot instead of gathering from the whole dataset; when every slot is
    at the same day (the usual case: equal episode lengths, synchronized resets) those reads
    are plain slices.
    """

    def __init__(
        self,
        dataset: InventoryDataset,
        regularization: Regularization,
        n_slots: int,
        action_map: ActionMap | GridActionMap,
        device: torch.device,
    ) -> None:
        self.simulator = sim = InventorySimulator.from_dataset(dataset, device=device)
        self.regularization = regularization
        self.action_map = action_map
        self.max_replenish = float(dataset.max_replenish)
        self.coeff_index = _coeff_index(dataset, sim.device)
        self.coeff_features = tuple(dataset.coeff_features)
        self.n_slots = n_slots
        self.device = sim.device
        self.horizon = sim.horizon
        self.obs_dim = sim.features.shape[2] + sim.pipeline_width
        # Loss windows of every trajectory's steps, (n_traj, max_steps); inactive steps have
        # start == T (order_windows), so the episode length is the number of starts before T.
        window_start, _ = sim.step_windows()
        self.episode_length = (window_start < sim.horizon).sum(dim=1)
        self.counted_days = sim.counted.sum(dim=1)
        periods = sim.review_period.unique()
        #: The review period shared by all trajectories (None if they differ).
        self.common_period = int(periods[0]) if periods.numel() == 1 else None
        self.offsets = torch.arange(sim.horizon, dtype=torch.int64, device=self.device)
        self.slot_index = torch.arange(n_slots, dtype=torch.int64, device=self.device)

        with torch.inference_mode():
            rows = torch.zeros(n_slots, dtype=torch.int64, device=self.device)
            self.trajectory = rows
            # per-slot copies of the trajectory's tables, refreshed by start()
            self.slots = sim.rows(rows)
            self.slot_length = self.episode_length[rows]
            self.day = torch.zeros_like(rows)
            self.step_index = torch.zeros_like(rows)
            self.pipeline = sim.initial_pipeline(rows)
            zeros = torch.zeros(n_slots, dtype=sim.dtype, device=self.device)
            # Per-slot episode statistics: sum of step loss x window days, and the return.
            self.loss_days = zeros.clone()
            self.episode_return = zeros.clone()
            # What the last step did, per slot (for tests and diagnostics).
            self.last_order = zeros.clone()
            self.last_step_loss = zeros.clone()
            self.last_window_days = torch.zeros_like(rows)
        #: ``(day, step)`` shared by every slot, or None when slots are at different days.
        self.common_position: tuple[int, int] | None = None
        self.current: Observation = self.observation()
        self.current_inputs = np.zeros((n_slots, self.obs_dim), dtype=np.float32)

    # ---- observation
    def observation(self) -> Observation:
        """The simulator :class:`Observation` of every slot at its current day.

        A finished episode's terminal observation may sit at day ``>= T``; it shows the context
        of the last day.
        """
        if self.common_position is not None:
            day = min(self.common_position[0], self.horizon - 1)
            features = self.slots.features[:, day]
            order_day = self.slots.order_days[:, day]
        else:
            day = self.day.clamp(max=self.horizon - 1)
            features = self.slots.features[self.slot_index, day]
            order_day = self.slots.order_days[self.slot_index, day]
        return Observation(
            day=day,
            pipeline=self.pipeline,
            inventory_position=self.pipeline.sum(dim=1),
            features=features,
            feature_min=self.slots.feature_min,
            feature_max=self.slots.feature_max,
            index=self.trajectory,
            order_day=order_day,
        )

    @torch.inference_mode()
    def refresh(self) -> np.ndarray:
        """Observe every slot again (after steps or starts); returns the network inputs."""
        self.current = self.observation()
        inputs = network_input(
            self.current,
            self.regularization.normalized_inputs,
            self.max_replenish,
            coeff_features=self.coeff_features,
        )
        self.current_inputs = inputs.to(torch.float32).cpu().numpy()
        return self.current_inputs

    # ---- episodes
    @torch.inference_mode()
    def start(self, slots: Tensor, trajectories: Tensor) -> None:
        """Start an episode of ``trajectories`` in ``slots``: warm-up days ``0..P-1``, no order.

        Call :meth:`refresh` afterwards to observe the new episodes.
        """
        sim = self.simulator
        rows = trajectories.to(self.device)
        period = sim.review_period[rows]
        pipeline = sim.initial_pipeline(rows)
        for day in range(int(period.max())):
            outcome = sim.advance_day(day, pipeline, None, rows)
            pipeline = torch.where((day < period)[:, None], outcome.next_pipeline, pipeline)
        self.trajectory[slots] = rows
        self.slots.assign(slots, sim.rows(rows))
        self.slot_length[slots] = self.episode_length[rows]
        self.day[slots] = period
        self.step_index[slots] = 0
        self.pipeline[slots] = pipeline
        self.loss_days[slots] = 0.0
        self.episode_return[slots] = 0.0
        everyone = slots.numel() == self.n_slots
        if everyone and self.common_period is not None:
            self.common_position = (self.common_period, 0)
        else:
            self.common_position = None

    @torch.inference_mode()
    def advance(self, actions: Tensor) -> tuple[Tensor, Tensor]:
        """Place every slot's order and simulate to its next order day.

        Args:
            actions: ``(n_slots, output_size)`` env actions.

        Returns:
            ``(step_loss, terminated)``: ``(n_slots,)`` float64 mean daily loss over each step's
            window (0 for an empty window) and ``(n_slots,)`` bool episode ends. The slots'
            observations are refreshed (:attr:`current_inputs`).
        """
        sim = self.simulator
        start_day, step, period = self.day, self.step_index, self.slots.review_period
        observation = self.current
        raw = self.action_map.to_raw(actions.to(self.device, sim.dtype))
        coeff_values = observation.features[:, self.coeff_index]
        order = self.regularization.order(raw, observation, coeff_values, self.max_replenish)

        common = self.common_position
        if common is not None:
            day0, step0 = common
            window_start = self.slots.window_start[:, step0]
            window_end = self.slots.window_end[:, step0]
            order_day = self.slots.order_days[:, day0]
            arrival_slot = self.slots.arrival_slot[:, day0]
        else:
            window_start = self.slots.window_start[self.slot_index, step]
            window_end = self.slots.window_end[self.slot_index, step]
            order_day = self.slots.order_days[self.slot_index, start_day]
            arrival_slot = self.slots.arrival_slot[self.slot_index, start_day]
        next_day = start_day + period
        # Simulate through the next order day and to the end of the loss window (look-ahead);
        # masks over the (n_slots, n_days) day grid are computed once per step.
        stop_day = torch.maximum(next_day, window_end).clamp(max=self.horizon)
        n_days = int((stop_day - start_day).max())
        days = start_day[:, None] + self.offsets[:n_days]
        live = days < stop_day[:, None]
        all_live = bool(live.all())
        in_window = (days >= window_start[:, None]) & (days < window_end[:, None])
        if common is not None:
            demand = self.slots.demand[:, common[0] : common[0] + n_days]
        else:
            demand = self.slots.demand.gather(1, days.clamp(max=self.horizon - 1))
        pipeline = self.pipeline
        next_pipeline = pipeline
        end_inventory, lost_demand = [], []
        placed = order
        for offset in range(n_days):
            # The simulator's one-day kernel on this step's (already selected) rows; only day 0,
            # the order day, places an order.
            outcome = sim.advance_rows(
                pipeline, order if offset == 0 else None, demand[:, offset], order_day, arrival_slot
            )
            if offset == 0:
                placed = outcome.order
            end_inventory.append(outcome.end_inventory)
            lost_demand.append(outcome.lost_demand)
            if all_live:
                pipeline = outcome.next_pipeline
            else:
                pipeline = torch.where(live[:, offset, None], outcome.next_pipeline, pipeline)
            # The state at the next order day is where the next step starts; the days after it
            # are look-ahead only (no further order can land inside the window).
            if self.common_period is not None:
                if offset + 1 == self.common_period:
                    next_pipeline = pipeline
            else:
                next_pipeline = torch.where(
                    (offset + 1 == period)[:, None], pipeline, next_pipeline
                )
        daily = sim.daily_loss(
            torch.stack(end_inventory, 1), torch.stack(lost_demand, 1), self.trajectory
        )
        loss_sum = (daily * in_window).sum(dim=1)

        window_days = window_end - window_start
        step_loss = loss_sum / window_days.clamp(min=1)
        self.loss_days += loss_sum
        self.episode_return -= step_loss
        self.last_order = placed
        self.last_step_loss = step_loss
        self.last_window_days = window_days
        self.pipeline = next_pipeline
        self.day = next_day
        self.step_index = step + 1
        if common is not None:
            self.common_position = (common[0] + self.common_period, common[1] + 1)
        terminated = self.step_index >= self.slot_length
        self.refresh()
        return step_loss, terminated

    def trajectory_loss(self, slots: Tensor) -> Tensor:
        """The trajectory loss of finished episodes in ``slots``: loss-days / counted days."""
        return self.loss_days[slots] / self.counted_days[self.trajectory[slots]]

    @torch.inference_mode()
    def select(self, slots: Tensor) -> None:
        """Keep only the listed slots (int64 indices, in that order) with their episode state;
        the others are dropped (a population that stops members compacts its env this way)."""
        for name in _SLOT_STATE:
            setattr(self, name, getattr(self, name)[slots])
        self.slots = type(self.slots)(
            **{item.name: getattr(self.slots, item.name)[slots] for item in fields(self.slots)}
        )
        self.n_slots = int(slots.numel())
        self.slot_index = torch.arange(self.n_slots, dtype=torch.int64, device=self.device)
        self.refresh()


#: The per-slot tensors of :class:`EpisodeBatch` besides its trajectory tables (first axis =
#: slot), which :meth:`EpisodeBatch.select` indexes.
_SLOT_STATE: tuple[str, ...] = (
    "trajectory",
    "slot_length",
    "day",
    "step_index",
    "pipeline",
    "loss_days",
    "episode_return",
    "last_order",
    "last_step_loss",
    "last_window_days",
)


def _prepare(
    dataset: InventoryDataset,
    regularization: str | Regularization,
    split: str | None,
    action_scaling: str,
    action_step: float | None = None,
) -> tuple[InventoryDataset, Regularization, ActionMap | GridActionMap]:
    if not isinstance(dataset, InventoryDataset):
        raise ValueError(f"dataset must be an InventoryDataset, got {type(dataset).__name__}")
    data = dataset if split is None else dataset.subset(split)
    reg = get_regularization(regularization)
    size = reg.output_size(len(data.coeff_features))
    low, high = reg.action_bounds(data.max_replenish)
    if action_step is None:
        return data, reg, ActionMap(low, high, size, action_scaling)
    if size != 1:
        raise ValueError(
            f"action_step: a discrete action grid needs a regularization with one raw output; "
            f"{reg.name!r} has {size}"
        )
    return data, reg, GridActionMap(low, high, float(action_step))


def _observation_space(obs_dim: int) -> spaces.Box:
    return spaces.Box(-np.inf, np.inf, shape=(obs_dim,), dtype=np.float32)


# ---------------------------------------------------------------------- SB3 VecEnv
class InventoryVecEnv(VecEnv):
    """A native Stable-Baselines3 ``VecEnv``: ``n_envs`` inventory episodes stepped at once.

    Args:
        dataset: the trajectories; ``split`` selects which.
        regularization: name or object (``none``, ``base``, ``coeff``, ``both``).
        n_envs: number of slots (parallel episodes), ``>= 1``.
        split: ``"train"``, ``"val"``, ``"test"``, or ``None`` for every trajectory.
        sampling: ``"random"``: each reset draws a trajectory uniformly (with replacement) from
            a generator seeded by :meth:`seed`; ``"cycle"``: resets take the trajectories in
            order (slot ``i`` of the first reset gets trajectory ``i``, later resets continue
            from where the last one stopped), which with ``n_envs`` = number of trajectories runs
            every trajectory exactly once per round (evaluation, see :meth:`for_evaluation`).
        action_scaling: ``"unit"`` (``Box(-1, 1)``, mapped linearly onto the regularization's
            bounds) or ``"native"`` (the bounds themselves); see the module docstring.
        action_step: spacing of a discrete action grid (``Discrete`` actions, see
            :class:`GridActionMap`; regularizations with one raw output only); ``None`` (the
            default) for ``Box`` actions.
        device: torch device of the simulation (CPU is fastest for the small batches of RL).
        seed: seed of the trajectory draws until :meth:`seed` is called.

    Follows the SB3 ``VecEnv`` contract: batch-first ``float32`` observations ``(n_envs,
    obs_dim)``, ``float32`` rewards and ``bool`` dones ``(n_envs,)``; a finished slot is reset
    at once, its last observation is ``infos[i]["terminal_observation"]`` and
    ``infos[i]["TimeLimit.truncated"]`` is ``False`` (episodes end by termination only). A
    finished slot's info also has ``"episode"`` (``r`` return, ``l`` length, ``t`` seconds since
    construction, as SB3's ``Monitor`` writes it), ``"trajectory"`` (its index in the split) and
    ``"trajectory_loss"`` (its exact loss, float64).

    Attributes:
        last_orders: ``(n_envs,)`` float64 orders placed by the last step (units).
        last_step_losses: ``(n_envs,)`` float64 step losses of the last step (before the
            float32 cast of the rewards).
        last_window_days: ``(n_envs,)`` int64 days in each last step's loss window.
    """

    def __init__(
        self,
        dataset: InventoryDataset,
        regularization: str | Regularization,
        *,
        n_envs: int = 1,
        split: str | None = "train",
        sampling: Literal["random", "cycle"] = "random",
        action_scaling: Literal["unit", "native"] = "unit",
        action_step: float | None = None,
        device: str | torch.device = "cpu",
        seed: int | None = None,
    ) -> None:
        if isinstance(n_envs, bool) or not isinstance(n_envs, (int, np.integer)) or n_envs < 1:
            raise ValueError(f"n_envs must be an integer >= 1, got {n_envs!r}")
        if sampling not in SAMPLINGS:
            raise ValueError(f"sampling must be one of {SAMPLINGS}, got {sampling!r}")
        data, reg, action_map = _prepare(
            dataset, regularization, split, action_scaling, action_step
        )

        self.render_mode = None
        self.dataset = data
        self.regularization = reg
        self.action_map = action_map
        self.sampling = sampling
        self.episodes = EpisodeBatch(data, reg, int(n_envs), action_map, resolve_device(device))
        self.n_trajectories = data.n_trajectories
        self._rng = np.random.default_rng(seed)
        self._next_trajectory = 0
        self._actions: np.ndarray | None = None
        self._was_reset = False
        self._t_start = time.perf_counter()
        super().__init__(int(n_envs), _observation_space(self.episodes.obs_dim), action_map.space())

    @classmethod
    def for_evaluation(
        cls,
        dataset: InventoryDataset,
        regularization: str | Regularization,
        *,
        split: str | None = "val",
        **kwargs: Any,
    ) -> InventoryVecEnv:
        """One slot per trajectory of ``split``, in order: one reset + one episode runs each
        trajectory exactly once (use deterministic actions)."""
        n = dataset.n_trajectories if split is None else dataset.subset(split).n_trajectories
        return cls(dataset, regularization, n_envs=n, split=split, sampling="cycle", **kwargs)

    # ---- the engine's state, per slot
    @property
    def trajectories(self) -> np.ndarray:
        """``(n_envs,)`` index (within the split) of the trajectory each slot runs."""
        return self.episodes.trajectory.cpu().numpy()

    @property
    def days(self) -> np.ndarray:
        """``(n_envs,)`` current order day of each slot."""
        return self.episodes.day.cpu().numpy()

    @property
    def last_orders(self) -> np.ndarray:
        return self.episodes.last_order.cpu().numpy()

    @property
    def last_step_losses(self) -> np.ndarray:
        return self.episodes.last_step_loss.cpu().numpy()

    @property
    def last_window_days(self) -> np.ndarray:
        return self.episodes.last_window_days.cpu().numpy()

    def _draw_trajectories(self, count: int) -> Tensor:
        if self.sampling == "random":
            drawn = self._rng.integers(0, self.n_trajectories, size=count)
        else:
            drawn = (self._next_trajectory + np.arange(count)) % self.n_trajectories
            self._next_trajectory = int((self._next_trajectory + count) % self.n_trajectories)
        return torch.as_tensor(drawn, dtype=torch.int64, device=self.episodes.device)

    # ---- VecEnv API
    def reset(self) -> VecEnvObs:
        """Reset every slot; seeds from :meth:`seed` and ``{"trajectory": i}`` options apply."""
        seeds = [s for s in self._seeds if s is not None]
        if seeds:
            self._rng = np.random.default_rng(seeds)
            self._next_trajectory = 0
        trajectories = self._draw_trajectories(self.num_envs)
        for slot, options in enumerate(self._options):
            if options and "trajectory" in options:
                trajectories[slot] = self._check_trajectory(options["trajectory"])
        slots = torch.arange(self.num_envs, device=self.episodes.device)
        self.episodes.start(slots, trajectories)
        self._reset_seeds()
        self._reset_options()
        self.reset_infos = [{"trajectory": int(t)} for t in trajectories.tolist()]
        self._was_reset = True
        return self.episodes.refresh().copy()

    def _check_trajectory(self, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise ValueError(f"option 'trajectory' must be an integer, got {value!r}")
        if not 0 <= value < self.n_trajectories:
            raise ValueError(
                f"option 'trajectory' must be in [0, {self.n_trajectories}), got {value}"
            )
        return int(value)

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = actions

    def step_wait(self) -> VecEnvStepReturn:
        if self._actions is None:
            raise RuntimeError("step_wait() called without step_async()")
        if not self._was_reset:
            raise RuntimeError("reset() must be called before step()")
        episodes = self.episodes
        actions = torch.as_tensor(np.asarray(self._actions), device=episodes.device)
        actions = actions.reshape(self.num_envs, self.action_map.size)
        self._actions = None
        step_loss, terminated = episodes.advance(actions)
        observation = episodes.current_inputs.copy()
        rewards = (-step_loss).to(torch.float32).cpu().numpy()
        dones = terminated.cpu().numpy()
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        if dones.any():
            done_slots = terminated.nonzero().flatten()
            losses = episodes.trajectory_loss(done_slots).tolist()
            returns = episodes.episode_return[done_slots].tolist()
            lengths = episodes.step_index[done_slots].tolist()
            rows = episodes.trajectory[done_slots].tolist()
            elapsed = round(time.perf_counter() - self._t_start, 6)
            for k, slot in enumerate(done_slots.tolist()):
                infos[slot] = {
                    "terminal_observation": observation[slot].copy(),
                    "TimeLimit.truncated": False,
                    "episode": {"r": returns[k], "l": lengths[k], "t": elapsed},
                    "trajectory": rows[k],
                    "trajectory_loss": losses[k],
                }
            episodes.start(done_slots, self._draw_trajectories(len(losses)))
            observation = episodes.refresh().copy()
        return observation, rewards, dones, infos

    def close(self) -> None:
        """Nothing to release (no subprocesses, no files)."""

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        """The attribute of the (shared) environment, once per requested slot.

        The per-slot state ``trajectories``, ``days``, ``last_orders``, ``last_step_losses`` and
        ``last_window_days`` gives each slot its own element.
        """
        slots = list(self._get_indices(indices))
        value = getattr(self, attr_name)
        if attr_name in _PER_SLOT_ATTRIBUTES:
            return [value[i] for i in slots]
        return [value for _ in slots]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        """Set an attribute of the environment. Slots share one environment, so ``indices``
        must select every slot (or be ``None``)."""
        slots = sorted(set(self._get_indices(indices)))
        if slots != list(range(self.num_envs)):
            raise ValueError(
                "InventoryVecEnv slots share one environment: set_attr needs indices=None "
                f"(all {self.num_envs} slots), got {slots}"
            )
        if attr_name in _PER_SLOT_ATTRIBUTES or attr_name.startswith("_"):
            raise ValueError(f"attribute {attr_name!r} cannot be set")
        setattr(self, attr_name, value)

    def env_method(
        self, method_name: str, *method_args: Any, indices: VecEnvIndices = None, **method_kwargs
    ) -> list[Any]:
        """Call a method of the (shared) environment once per requested slot."""
        method = getattr(self, method_name)
        return [method(*method_args, **method_kwargs) for _ in self._get_indices(indices)]

    def env_is_wrapped(
        self, wrapper_class: type[gymnasium.Wrapper], indices: VecEnvIndices = None
    ) -> list[bool]:
        """No slot is a wrapped ``gymnasium.Env`` (the episodes live in one batched engine)."""
        return [False for _ in self._get_indices(indices)]


_PER_SLOT_ATTRIBUTES = frozenset(
    {"trajectories", "days", "last_orders", "last_step_losses", "last_window_days"}
)


# ---------------------------------------------------------------------- gymnasium view
class InventoryEnv(gymnasium.Env):
    """One inventory episode at a time, as a ``gymnasium.Env`` (same engine as the VecEnv).

    Args: as :class:`InventoryVecEnv` (without ``n_envs`` and ``sampling``: every reset draws a
    trajectory uniformly from ``self.np_random``, or takes ``options={"trajectory": i}``).

    ``step`` returns ``(observation, reward, terminated, truncated=False, info)`` with
    ``info = {"trajectory", "day", "order", "step_loss", "window_days"}`` and, at termination,
    ``"trajectory_loss"``. The reward is a Python float (float64, exact).
    """

    metadata = {"render_modes": []}

    def __init__(
        self,
        dataset: InventoryDataset,
        regularization: str | Regularization,
        *,
        split: str | None = "train",
        action_scaling: Literal["unit", "native"] = "unit",
        action_step: float | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        super().__init__()

        data, reg, action_map = _prepare(
            dataset, regularization, split, action_scaling, action_step
        )
        self.dataset = data
        self.regularization = reg
        self.action_map = action_map
        self.render_mode = None
        self.episodes = EpisodeBatch(data, reg, 1, action_map, resolve_device(device))
        self.observation_space = _observation_space(self.episodes.obs_dim)
        self.action_space = action_map.space()
        self._slot = torch.zeros(1, dtype=torch.int64, device=self.episodes.device)
        self._running = False

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        n = self.dataset.n_trajectories
        if options and "trajectory" in options:
            trajectory = options["trajectory"]
            if isinstance(trajectory, bool) or not isinstance(trajectory, (int, np.integer)):
                raise ValueError(f"option 'trajectory' must be an integer, got {trajectory!r}")
            if not 0 <= trajectory < n:
                raise ValueError(f"option 'trajectory' must be in [0, {n}), got {trajectory}")
        else:
            trajectory = int(self.np_random.integers(0, n))
        rows = torch.tensor([int(trajectory)], device=self.episodes.device)
        self.episodes.start(self._slot, rows)
        self._running = True
        day = int(self.episodes.day[0])
        observation = self.episodes.refresh()[0].copy()
        return observation, {"trajectory": int(trajectory), "day": day}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if not self._running:
            raise RuntimeError("call reset() before step() (the episode has ended or not begun)")
        episodes = self.episodes
        actions = torch.as_tensor(np.asarray(action, dtype=np.float64), device=episodes.device)
        day = int(episodes.day[0])
        step_loss, terminated = episodes.advance(actions.reshape(1, self.action_map.size))
        done = bool(terminated[0])
        info: dict[str, Any] = {
            "trajectory": int(episodes.trajectory[0]),
            "day": day,
            "order": float(episodes.last_order[0]),
            "step_loss": float(step_loss[0]),
            "window_days": int(episodes.last_window_days[0]),
        }
        if done:
            info["trajectory_loss"] = float(episodes.trajectory_loss(self._slot)[0])
            self._running = False
        return episodes.current_inputs[0].copy(), -float(step_loss[0]), done, False, info


# ---------------------------------------------------------------------- policies from actors
class ActorPolicy(nn.Module):
    """A simulator :data:`~deepstock.model.simulator.Policy` from an actor network in env coordinates.

    Observation -> :func:`~deepstock.model.regularizations.network_input` -> ``actor`` (deterministic, float32,
    on the actor's device) -> :meth:`ActionMap.to_raw` -> regularization -> order.

    Args:
        actor: maps ``(batch, obs_dim)`` float32 env observations to ``(batch, size)`` env actions
            (for SB3 models see :func:`deepstock.methods.sb3_common.deterministic_actor`).
        regularization: the env's regularization.
        action_map: the env's :class:`ActionMap` (or :class:`GridActionMap`).
        max_replenish: order cap, units.
        coeff_features: indices of the demand features ``g(c)``.
    """

    def __init__(
        self,
        actor: nn.Module,
        regularization: str | Regularization,
        action_map: ActionMap | GridActionMap,
        max_replenish: float,
        coeff_features: Sequence[int] = (),
    ) -> None:
        super().__init__()
        self.actor = actor
        self.regularization = get_regularization(regularization)
        self.action_map = action_map
        self.max_replenish = float(max_replenish)
        self.coeff_features = tuple(int(i) for i in coeff_features)

    @classmethod
    def for_env(cls, actor: nn.Module, env: InventoryVecEnv | InventoryEnv) -> ActorPolicy:
        """The policy of ``actor`` acting as in ``env`` (its regularization and action map)."""
        return cls(
            actor,
            env.regularization,
            env.action_map,
            env.dataset.max_replenish,
            env.dataset.coeff_features,
        )

    def forward(self, observation: Observation) -> Tensor:
        inputs = network_input(
            observation,
            self.regularization.normalized_inputs,
            self.max_replenish,
            coeff_features=self.coeff_features,
        )
        param = next(self.actor.parameters(), None)
        device = param.device if param is not None else inputs.device
        with torch.no_grad():
            actions = self.actor(inputs.to(device=device, dtype=torch.float32))
        raw = self.action_map.to_raw(actions.to(observation.pipeline))
        coeff_values = observation.features[:, list(self.coeff_features)]
        order = self.regularization.order(raw, observation, coeff_values, self.max_replenish)
        return order.to(observation.pipeline.dtype)


def run_episodes(
    env: InventoryVecEnv, act: Any, *, episodes_per_slot: int = 1
) -> dict[str, np.ndarray]:
    """Run ``episodes_per_slot`` episodes in every slot of ``env`` with ``act``.

    Args:
        env: a VecEnv (reset here).
        act: maps ``(n_envs, obs_dim)`` float32 observations to ``(n_envs, size)`` actions.
        episodes_per_slot: episodes to collect per slot, ``>= 1``.

    Returns:
        ``{"trajectory": (k,), "trajectory_loss": (k,), "return": (k,), "length": (k,)}``
        for the ``k = n_envs * episodes_per_slot`` first finished episodes, in order of
        completion (ties by slot).
    """
    if episodes_per_slot < 1:
        raise ValueError(f"episodes_per_slot must be >= 1, got {episodes_per_slot}")
    observation = env.reset()
    finished: dict[str, list[float]] = {
        "trajectory": [],
        "trajectory_loss": [],
        "return": [],
        "length": [],
    }
    remaining = np.full(env.num_envs, episodes_per_slot)
    while remaining.any():
        observation, _, dones, infos = env.step(act(observation))
        for slot in np.flatnonzero(dones):
            if remaining[slot] > 0:
                remaining[slot] -= 1
                info = infos[slot]
                finished["trajectory"].append(info["trajectory"])
                finished["trajectory_loss"].append(info["trajectory_loss"])
                finished["return"].append(info["episode"]["r"])
                finished["length"].append(info["episode"]["l"])
    return {key: np.asarray(values) for key, values in finished.items()}


# ---------------------------------------------------------------------- population view
#: Stream numbers of the trajectory draws of slot ``i`` of a member: ``TRAJECTORY_STREAM + i``.
TRAJECTORY_STREAM = 1 << 20


@dataclass(frozen=True)
class PopulationStep:
    """What one step of a :class:`PopulationEnv` returns; every tensor has one row per slot.

    Attributes:
        observation: ``(slots, obs_dim)`` float32, the next observation (of the new episode where
            a slot's episode ended and restarted).
        reward: ``(slots,)`` float32, minus the step's mean daily loss (as :class:`InventoryVecEnv`).
        done: ``(slots,)`` bool, the episode ended at this step.
        terminal_observation: ``(slots,)`` float32 observations after the step before any restart
            (equal to ``observation`` where ``done`` is False): what a replay buffer stores as
            the next state.
    """

    observation: Tensor
    reward: Tensor
    done: Tensor
    terminal_observation: Tensor


class PopulationEnv:
    """The training envs of a population: ``n_envs`` episodes for each of K members, one engine.

    Slot ``k * n_envs + i`` is episode slot ``i`` of member ``k``. It behaves as the member's own
    :class:`InventoryVecEnv` (same reset, step, reward, termination and automatic restart), but
    all ``K * n_envs`` slots step in one batched simulation and the interface is tensors (no
    ``infos`` list). Every restart of slot ``i`` of member ``k`` draws its trajectory uniformly
    from a counter-based stream of ``(seeds[k], i)`` (:class:`~deepstock.core.streams.RowStreams`),
    so a member's trajectories do not depend on the other members; they are not the draws of
    :class:`InventoryVecEnv`'s NumPy generator for the same seed.

    Args:
        dataset: the trajectories; ``split`` selects which.
        regularization: name or object.
        seeds: one seed per member (K >= 1).
        n_envs: slots per member, ``>= 1``.
        split: ``"train"``, ``"val"``, ``"test"`` or None (all).
        action_scaling: ``"unit"`` or ``"native"`` (see the module docstring).
        device: torch device of the simulation.
    """

    def __init__(
        self,
        dataset: InventoryDataset,
        regularization: str | Regularization,
        seeds: Sequence[int],
        *,
        n_envs: int = 1,
        split: str | None = "train",
        action_scaling: Literal["unit", "native"] = "unit",
        device: str | torch.device = "cpu",
    ) -> None:
        if isinstance(n_envs, bool) or not isinstance(n_envs, (int, np.integer)) or n_envs < 1:
            raise ValueError(f"n_envs must be an integer >= 1, got {n_envs!r}")
        seeds = [int(s) for s in seeds]
        if not seeds:
            raise ValueError("seeds must list at least one member seed")
        data, reg, action_map = _prepare(dataset, regularization, split, action_scaling)
        self.dataset = data
        self.regularization = reg
        self.action_map = action_map
        self.n_envs = int(n_envs)
        self.n_members = len(seeds)
        self._episodes = EpisodeBatch(
            data, reg, self.n_members * self.n_envs, action_map, resolve_device(device)
        )
        self.device = self._episodes.device
        self.obs_dim = self._episodes.obs_dim
        self.n_trajectories = data.n_trajectories
        self._streams = RowStreams(
            [s for s in seeds for _ in range(self.n_envs)],
            [TRAJECTORY_STREAM + i for _ in seeds for i in range(self.n_envs)],
            device=self.device,
        )

    @property
    def n_slots(self) -> int:
        return self.n_members * self.n_envs

    def _observation(self) -> Tensor:
        return torch.from_numpy(self._episodes.current_inputs.copy()).to(self.device)

    def reset(self) -> Tensor:
        """Start an episode in every slot; returns the ``(slots, obs_dim)`` float32 observations."""
        slots = torch.arange(self.n_slots, dtype=torch.int64, device=self.device)
        trajectories = self._streams.integers(self.n_trajectories, 1)[:, 0]
        self._episodes.start(slots, trajectories)
        self._episodes.refresh()
        return self._observation()

    def step(self, actions: Tensor) -> PopulationStep:
        """Place every slot's order (``(slots, action_size)`` env actions, clipped to the box)
        and simulate to its next order day; finished episodes restart at once."""
        episodes = self._episodes
        actions = actions.detach().to(episodes.device).reshape(self.n_slots, self.action_map.size)
        step_loss, terminated = episodes.advance(actions)
        terminal = self._observation()
        reward = (-step_loss).to(torch.float32)
        observation = terminal
        if bool(terminated.any()):
            done_slots = terminated.nonzero().flatten()
            drawn = self._streams.integers(self.n_trajectories, 1, rows=done_slots)[:, 0]
            episodes.start(done_slots, drawn)
            episodes.refresh()
            observation = self._observation()
        return PopulationStep(observation, reward, terminated.clone(), terminal)

    def select_members(self, members: Tensor | Sequence[int]) -> None:
        """Keep only the listed members (indices into the current members, in that order)."""
        index = torch.as_tensor(members, dtype=torch.int64, device=self.device)
        slots = index[:, None] * self.n_envs + torch.arange(self.n_envs, device=self.device)
        slots = slots.reshape(-1)
        self._episodes.select(slots)
        self._streams = self._streams.subset(slots)
        self.n_members = int(index.numel())
