"""DDPG populations: K members (configuration + seed each) trained as one batched computation.

Each member runs the algorithm of :mod:`deepstock.methods.ddpg` (SB3's ``DDPG``: TD3 with one
critic, no target-policy noise, a policy update and soft target update at every gradient step,
the authors' no-exploration default and uniform warm-up actions before ``learning_starts``).
What a member holds, all of it stacked along a leading member axis ``K``:

* actor ``mu`` (ReLU MLP, tanh output in ``[-1, 1]``), critic ``Q(s, a)`` (ReLU MLP on
  ``[s, a]``) and their target copies: :class:`~deepstock.methods.population.batched.BatchedMLP`,
  one ``baddbmm`` per layer for the whole population;
* its own Adam per network (:class:`~deepstock.methods.population.batched.MemberAdam`, torch's
  defaults as SB3 uses them), its own learning rate decaying linearly from ``learning_rate`` to
  ``lr_min`` at ``lr_fraction`` of its ``total_steps``, its own ``tau``, ``gamma``,
  ``learning_starts``, ``buffer_size``, ``initial_action_bias``, ``eval_freq``, ``patience``,
  ``min_evals`` and ``total_steps`` (``(K,)`` tensors);
* its own training trajectories (``n_envs`` slots of a
  :class:`~deepstock.methods.envs.PopulationEnv`) and its own replay buffer, a ring of
  ``max(buffer_size // n_envs, 1)`` vector steps in a ``(K, capacity, n_envs, ...)`` tensor;
* its own random streams (:class:`~deepstock.core.streams.RowStreams`): trajectory draws,
  warm-up actions, exploration noise, replay samples.

One env step of the population: every member's action (actor or uniform warm-up, per member),
one batched env step, validation of the due members, one write into every replay buffer, and at
each member's training steps one batched gradient step: the critic's MSE to
``r + gamma (1 - done) Q'(s', mu'(s'))``, the actor's ``-Q(s, mu(s))``, both with per-member
Adam, then the per-member soft updates. A member that is not training yet (before
``learning_starts``) or has stopped is masked out of the update (its weights, Adam moments and
step counts do not change). Validation runs every member's deterministic actor on every
validation trajectory in one rollout of ``K x n_val`` trajectories; each member keeps its best
weights and stops on its own patience. Finished members (stopped or at ``total_steps``) are
evaluated, handed to ``on_member_done`` at once and removed from the population (compaction).

**Structure.** Members must share the network widths, ``batch_size``, ``n_envs`` and
``train_freq`` to be stacked: :func:`train_ddpg_population` groups the members by these and
trains the groups one after another (each group one population). Everything else may differ;
members with different ``buffer_size`` share storage padded to the largest one (each member's ring
wraps at its own capacity), and a member with a later ``learning_starts`` is masked out of the
gradient steps it does not take yet.

Differences from the SB3 path (:func:`deepstock.methods.ddpg.train_ddpg`), all but the first
three numerical or bookkeeping:

1. Random numbers come from per-member counter-based streams, not from NumPy's and torch's global
   generators, so a member with seed ``s`` does not reproduce the SB3 run with seed ``s`` draw
   for draw (same distributions: uniform trajectory draws, uniform warm-up actions, replay
   indices uniform over the filled buffer, Gaussian noise). Initial weights are drawn like
   ``nn.Linear``'s default (SB3's MLPs) from a torch generator seeded with the member's seed.
2. ``action_noise`` supports ``"none"`` (the authors') and ``"normal:SIGMA"``; the
   Ornstein-Uhlenbeck process is not implemented (a clear error).
3. The Figure 3 diagnostics (``record_steps``: critic losses, replay states) are not recorded.
4. The matrix products run as batched ``baddbmm`` and Adam on ``(K,)`` tensors: the numbers agree
   with SB3's to float32 rounding (tested to 1e-5 for one gradient step), not bit for bit.
5. ``wall_time_s`` of a member is the population's wall time from its start to the member's
   finish (the members share it); ``evaluation_seconds`` is the time of the population's
   validations during that span.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from deepstock.core.streams import RowStreams
from deepstock.methods.common import TrainResult, settings_from_mapping
from deepstock.methods.ddpg import DDPGConfig, update_schedule
from deepstock.methods.envs import ActorPolicy, PopulationEnv
from deepstock.methods.population.batched import BatchedMLP, MemberAdam
from deepstock.methods.population.rl_common import (
    MemberEarlyStopping,
    PopulationActorPolicy,
    linear_schedule_values,
    population_losses,
    population_metrics,
    train_in_groups,
)
from deepstock.model.dataset import InventoryDataset
from deepstock.model.regularizations import Regularization, get_regularization
from deepstock.model.simulator import InventorySimulator, resolve_device

__all__ = ["DDPGPopulation", "ReplayBatch", "ddpg_structure", "train_ddpg_population"]

#: Stream numbers of a member's random numbers (trajectory draws use the env's own streams).
WARMUP_STREAM, NOISE_STREAM, REPLAY_STREAM = 1, 2, 3

MemberCallback = Callable[[int, TrainResult], None]


def ddpg_structure(settings: DDPGConfig) -> tuple[Any, ...]:
    """The settings members must share to be stacked in one population."""
    return (
        tuple(settings.net_arch["pi"]),
        tuple(settings.net_arch["qf"]),
        settings.batch_size,
        settings.n_envs,
        settings.train_freq,
    )


def _noise_sigma(spec: str) -> float:
    """The Gaussian noise scale of ``"none"`` (0) or ``"normal:SIGMA"``."""
    if spec.lower() == "none":
        return 0.0
    kind, _, sigma = spec.partition(":")
    if kind != "normal":
        raise ValueError(
            "DDPG config key 'action_noise' must be 'none' or 'normal:SIGMA' for the population "
            f"engine (Ornstein-Uhlenbeck noise is SB3-only), got {spec!r}"
        )
    return float(sigma)


@dataclass(frozen=True)
class ReplayBatch:
    """One sampled minibatch per member: ``(K, B, ...)`` float32 tensors.

    Attributes:
        observations, next_observations: ``(K, B, obs_dim)``.
        actions: ``(K, B, action_size)`` in the actor's ``[-1, 1]`` coordinates.
        rewards, dones: ``(K, B, 1)`` (dones 0. or 1.).
    """

    observations: Tensor
    actions: Tensor
    next_observations: Tensor
    rewards: Tensor
    dones: Tensor


def _member_init(sizes: list[int], output: type[nn.Module] | None, seed: int) -> BatchedMLP:
    """One member's MLP, initialized like ``nn.Linear`` from a generator seeded with ``seed``."""
    generator = torch.Generator().manual_seed(int(seed))
    return BatchedMLP(1, sizes, nn.ReLU, output, generator=generator)


class DDPGPopulation:
    """K DDPG members sharing one structure (:func:`ddpg_structure`), trained together.

    Args:
        dataset: with ``train``, ``val`` and ``test`` splits.
        regularization: name or object.
        configs: K :class:`~deepstock.methods.ddpg.DDPGConfig` of equal structure.
        seeds: K seeds.
        device: where the networks and replay buffers live (the env and the validation
            simulate on the CPU in float64, as in the SB3 path).
    """

    def __init__(
        self,
        dataset: InventoryDataset,
        regularization: str | Regularization,
        configs: Sequence[DDPGConfig],
        seeds: Sequence[int],
        *,
        device: str | torch.device = "auto",
    ) -> None:
        if len(configs) != len(seeds) or not configs:
            raise ValueError(
                f"a DDPG population needs one seed per configuration, got {len(configs)} "
                f"configurations and {len(seeds)} seeds"
            )
        structures = {ddpg_structure(c) for c in configs}
        if len(structures) != 1:
            raise ValueError(
                "DDPGPopulation members must share net_arch, batch_size, n_envs and train_freq; "
                f"got {sorted(structures)} (train_ddpg_population groups them)"
            )
        self.dataset = dataset
        self.regularization = get_regularization(regularization)
        self.configs = list(configs)
        self.seeds = [int(s) for s in seeds]
        self.device = resolve_device(device)
        self.members = members = len(configs)
        first = configs[0]
        self.n_envs = first.n_envs
        self.batch_size = first.batch_size
        self.steps_between, self.gradient_steps = update_schedule(first.train_freq, first.n_envs)
        for c in configs:
            _noise_sigma(c.action_noise)

        self.env = PopulationEnv(
            dataset, self.regularization, self.seeds, n_envs=self.n_envs, split="train"
        )
        self.action_map = self.env.action_map
        obs_dim, action_size = self.env.obs_dim, self.action_map.size
        self.obs_dim, self.action_size = obs_dim, action_size
        self.validation = InventorySimulator.from_dataset(dataset.subset("val"), device="cpu")

        # ---- networks (member k initialized from its own seed)
        dev = self.device
        actor_sizes = [obs_dim, *first.net_arch["pi"], action_size]
        critic_sizes = [obs_dim + action_size, *first.net_arch["qf"], 1]
        self.actor = BatchedMLP(members, actor_sizes, nn.ReLU, nn.Tanh)
        self.critic = BatchedMLP(members, critic_sizes, nn.ReLU)
        for k, seed in enumerate(self.seeds):
            self.actor.load_member_state(
                k, _member_init(actor_sizes, nn.Tanh, seed).member_state(0)
            )
            critic_init = _member_init(critic_sizes, None, seed + 1_000_003)
            self.critic.load_member_state(k, critic_init.member_state(0))
        self.actor.to(dev)
        self.critic.to(dev)
        # initial_action_bias: tanh(bias shift) = 2 b - 1 (the target starts shifted too)
        shift = torch.tensor(
            [math.atanh(min(max(2.0 * c.initial_action_bias - 1.0, -0.99), 0.99)) for c in configs],
            dtype=torch.float32,
            device=dev,
        )
        with torch.no_grad():
            self.actor.layers[-1].bias.add_(shift[:, None, None])
        self.actor_target = _copy_mlp(self.actor)
        self.critic_target = _copy_mlp(self.critic)
        self.best_actor = _copy_mlp(self.actor)

        def per_member(name: str, dtype: torch.dtype = torch.float64) -> Tensor:
            return torch.tensor([getattr(c, name) for c in configs], dtype=dtype)

        self.lr_start = per_member("learning_rate").to(dev)
        self.lr_end = per_member("lr_min").to(dev)
        self.lr_fraction = per_member("lr_fraction").to(dev)
        self.actor_optimizer = MemberAdam(self.actor.parameters(), self.lr_start)
        self.critic_optimizer = MemberAdam(self.critic.parameters(), self.lr_start)
        self.tau = per_member("tau", torch.float32).to(dev)
        self.gamma = per_member("gamma", torch.float32).to(dev)
        self.noise_sigma = torch.tensor(
            [_noise_sigma(c.action_noise) for c in configs], dtype=torch.float32, device=dev
        )
        self.learning_starts = per_member("learning_starts", torch.int64)
        self.total_steps = per_member("total_steps", torch.int64)
        self.eval_freq = per_member("eval_freq", torch.int64)
        self.next_eval = self.eval_freq.clone()
        self.stopping = MemberEarlyStopping(
            per_member("patience", torch.int64), per_member("min_evals", torch.int64)
        )
        self.capacity = torch.tensor(
            [max(c.buffer_size // self.n_envs, 1) for c in configs], dtype=torch.int64, device=dev
        )
        self.n_gradient_steps = torch.zeros(members, dtype=torch.int64)
        self.evaluation_seconds = torch.zeros(members, dtype=torch.float64)
        self.update_seconds = 0.0  # sampling and gradient steps of the whole population
        self.member_index = list(range(members))  # position -> index in the caller's lists

        # ---- replay buffers (K, capacity, n_envs, ...)
        cap = int(self.capacity.max())
        shape = (members, cap, self.n_envs)
        self.buffer_obs = torch.zeros(*shape, obs_dim, device=dev)
        self.buffer_next_obs = torch.zeros(*shape, obs_dim, device=dev)
        self.buffer_actions = torch.zeros(*shape, action_size, device=dev)
        self.buffer_rewards = torch.zeros(*shape, device=dev)
        self.buffer_dones = torch.zeros(*shape, device=dev)
        self.stored = 0  # vector steps written so far (the same for every member)

        self.warmup_streams = RowStreams(self.seeds, WARMUP_STREAM, device=dev)
        self.noise_streams = RowStreams(self.seeds, NOISE_STREAM, device=dev)
        self.replay_streams = RowStreams(self.seeds, REPLAY_STREAM, device=dev)
        self.num_timesteps = 0

    # ------------------------------------------------------------------ networks of one member
    def load_member_networks(
        self, k: int, actor: nn.Module, critic: nn.Module, *, targets: bool = True
    ) -> None:
        """Copy plain networks (for example SB3's ``actor.mu`` and ``critic.qf0``) into member
        ``k``; ``targets`` copies them into the target networks as well."""
        self.actor.load_member(k, actor)
        self.critic.load_member(k, critic)
        if targets:
            self.actor_target.load_member(k, actor)
            self.critic_target.load_member(k, critic)

    # ------------------------------------------------------------------ replay buffer
    def store(
        self,
        observations: Tensor,
        actions: Tensor,
        next_observations: Tensor,
        rewards: Tensor,
        dones: Tensor,
    ) -> None:
        """Write one vector step per member (``(K * n_envs, ...)`` tensors) into the rings."""
        k, e = self.members, self.n_envs
        dev = self.device
        position = torch.remainder(
            torch.full((k,), self.stored, dtype=torch.int64, device=dev), self.capacity
        )
        rows = torch.arange(k, device=dev)
        self.buffer_obs[rows, position] = observations.to(dev).view(k, e, -1)
        self.buffer_next_obs[rows, position] = next_observations.to(dev).view(k, e, -1)
        self.buffer_actions[rows, position] = actions.to(dev).view(k, e, -1)
        self.buffer_rewards[rows, position] = rewards.to(dev).view(k, e)
        self.buffer_dones[rows, position] = dones.to(dev, torch.float32).view(k, e)
        self.stored += 1

    def sample(self) -> ReplayBatch:
        """``batch_size`` transitions per member, uniformly from its filled buffer (SB3's
        ``ReplayBuffer.sample``: a vector step, then one of its ``n_envs`` slots)."""
        k, e, b = self.members, self.n_envs, self.batch_size
        filled = torch.clamp(self.capacity, max=self.stored)
        steps = self.replay_streams.integers(filled, b)
        flat = steps * e
        if e > 1:
            flat = flat + self.replay_streams.integers(e, b)
        rows = torch.arange(k, device=self.device)[:, None]

        def take(storage: Tensor) -> Tensor:
            return storage.view(k, -1, *storage.shape[3:])[rows, flat]

        return ReplayBatch(
            observations=take(self.buffer_obs),
            actions=take(self.buffer_actions),
            next_observations=take(self.buffer_next_obs),
            rewards=take(self.buffer_rewards).unsqueeze(-1),
            dones=take(self.buffer_dones).unsqueeze(-1),
        )

    # ------------------------------------------------------------------ one gradient step
    def gradient_step(self, batch: ReplayBatch, active: Tensor | None = None) -> Tensor:
        """SB3 TD3's gradient step with one critic, no target noise, policy delay 1, per member.

        Args:
            batch: the members' minibatches.
            active: ``(K,)`` bool members to update (all when None); the others keep their
                weights, Adam state and targets.

        Returns:
            ``(K,)`` the critic losses (MSE) before the update.
        """
        if active is None:
            active = torch.ones(self.members, dtype=torch.bool, device=self.device)
        active = active.to(self.device)
        with torch.no_grad():
            next_actions = self.actor_target(batch.next_observations).clamp(-1.0, 1.0)
            next_q = self.critic_target(torch.cat([batch.next_observations, next_actions], dim=2))
            target_q = batch.rewards + (1.0 - batch.dones) * self.gamma[:, None, None] * next_q
        current_q = self.critic(torch.cat([batch.observations, batch.actions], dim=2))
        critic_loss = (current_q - target_q).square().mean(dim=(1, 2))
        self.critic_optimizer.zero_grad()
        critic_loss.sum().backward()
        self.critic_optimizer.step(active)

        # the actor's loss differentiates through the critic without updating it
        for p in self.critic.parameters():
            p.requires_grad_(False)
        try:
            q_of_actor = self.critic(
                torch.cat([batch.observations, self.actor(batch.observations)], dim=2)
            )
            actor_loss = -q_of_actor.mean(dim=(1, 2))
            self.actor_optimizer.zero_grad()
            actor_loss.sum().backward()
        finally:
            for p in self.critic.parameters():
                p.requires_grad_(True)
        self.actor_optimizer.step(active)

        with torch.no_grad():
            tau = torch.where(active, self.tau, torch.zeros_like(self.tau))
            for net, target in ((self.critic, self.critic_target), (self.actor, self.actor_target)):
                for p, t in zip(net.parameters(), target.parameters(), strict=True):
                    weight = tau.view(-1, *([1] * (t.dim() - 1)))
                    t.mul_(1.0 - weight).add_(p * weight)
        self.n_gradient_steps += active.to("cpu", torch.int64)
        return critic_loss.detach()

    def set_learning_rate(self, progress_remaining: Tensor) -> None:
        """Both optimizers' per-member learning rates at ``(K,)`` remaining progress."""
        lr = linear_schedule_values(
            self.lr_start, self.lr_end, self.lr_fraction, progress_remaining.to(self.lr_start)
        )
        self.actor_optimizer.lr = lr.clone()
        self.critic_optimizer.lr = lr.clone()

    # ------------------------------------------------------------------ acting
    def act(self, observations: Tensor) -> Tensor:
        """``(K * n_envs, action_size)`` actions in ``[-1, 1]``: uniform while a member is
        before ``learning_starts``, else its actor (plus its Gaussian noise, clipped)."""
        k, e, a = self.members, self.n_envs, self.action_size
        with torch.no_grad():
            actions = self.actor(observations.to(self.device).view(k, e, -1))
        noisy = (self.noise_sigma > 0).nonzero().flatten()
        if noisy.numel():
            noise = self.noise_streams.normal(e * a, rows=noisy).view(-1, e, a)
            noise = noise.to(torch.float32) * self.noise_sigma[noisy, None, None]
            actions[noisy] = (actions[noisy] + noise).clamp(-1.0, 1.0)
        warm = (self.learning_starts > self.num_timesteps).nonzero().flatten().to(self.device)
        if warm.numel():
            uniform = self.warmup_streams.uniform(e * a, rows=warm).view(-1, e, a)
            actions[warm] = (2.0 * uniform - 1.0).to(torch.float32)
        return actions.reshape(k * e, a)

    def policy(self, actor: BatchedMLP) -> PopulationActorPolicy:
        """The simulator policy of every member of ``actor`` (validation, metrics)."""
        return PopulationActorPolicy(
            actor,
            actor.members,
            self.regularization,
            self.action_map,
            self.dataset.max_replenish,
            self.dataset.coeff_features,
            self.device,
        )

    def validate(self) -> Tensor:
        """``(K,)`` validation losses of the current deterministic actors (one rollout)."""
        return population_losses(self.validation, self.policy(self.actor))

    # ------------------------------------------------------------------ the loop
    def run(self, on_member_done: MemberCallback | None = None) -> list[TrainResult]:
        """Train every member to its end; returns the results in the order of ``configs``.

        ``on_member_done(i, result)`` is called the moment member ``i`` (its position in
        ``configs``) finishes, before the others go on.
        """
        start = time.perf_counter()
        results: list[TrainResult | None] = [None] * self.members
        observations = self.env.reset()
        while self.members > 0:
            actions = self.act(observations)
            step = self.env.step(actions)
            self.num_timesteps += self.n_envs
            t = self.num_timesteps
            # validation comes before the transition is stored (SB3's callback order)
            due = (~self.stopping.stopped) & (t >= self.next_eval)
            if bool(due.any()):
                self._validate_members(due, t)
            self.store(observations, actions, step.terminal_observation, step.reward, step.done)
            observations = step.observation
            collect_done = (t // self.n_envs) % self.steps_between == 0
            if collect_done:
                train = (t > self.learning_starts) & ~self.stopping.stopped
                if bool(train.any()):
                    began = time.perf_counter()
                    progress = 1.0 - t / self.total_steps.to(torch.float64)
                    self.set_learning_rate(progress.to(self.device))
                    for _ in range(self.gradient_steps):
                        self.gradient_step(self.sample(), train.to(self.device))
                    self.update_seconds += time.perf_counter() - began
            finished = self.stopping.stopped | ((t >= self.total_steps) & collect_done)
            if bool(finished.any()):
                never = finished & (self.stopping.n_evals == 0)
                if bool(never.any()):
                    self._validate_members(never, t)
                for position, result in self._finish(finished, time.perf_counter() - start):
                    index = self.member_index[position]
                    results[index] = result
                    if on_member_done is not None:
                        on_member_done(index, result)
                observations = self._compact(~finished, observations)
        return [r for r in results if r is not None]

    def _validate_members(self, due: Tensor, t: int) -> None:
        began = time.perf_counter()
        losses = self.validate()
        improved = self.stopping.record(due, losses, t)
        if bool(improved.any()):
            mask = improved.to(self.device)
            with torch.no_grad():
                for best, p in zip(
                    self.best_actor.parameters(), self.actor.parameters(), strict=True
                ):
                    best.copy_(torch.where(mask.view(-1, *([1] * (p.dim() - 1))), p, best))
        self.evaluation_seconds += time.perf_counter() - began
        self.next_eval = torch.where(
            due, (t // self.eval_freq + 1) * self.eval_freq, self.next_eval
        )

    def _finish(self, finished: Tensor, elapsed: float) -> list[tuple[int, TrainResult]]:
        positions = finished.nonzero().flatten()
        best = self.best_actor.subset(positions)
        policy = self.policy(best)
        metrics = {
            split: population_metrics(self.dataset.subset(split), policy)
            for split in ("train", "val", "test")
        }
        out = []
        for m, position in enumerate(positions.tolist()):
            config = self.configs[position]
            actor = best.member_module(m).eval()
            member_policy = ActorPolicy(
                actor,
                self.regularization,
                self.action_map,
                self.dataset.max_replenish,
                self.dataset.coeff_features,
            )
            result = TrainResult(
                method="ddpg",
                regularization=self.regularization.name,
                config=dataclasses.asdict(config),
                seed=self.seeds[position],
                device=str(self.device),
                policy=member_policy,
                val_metrics=metrics["val"][m],
                test_metrics=metrics["test"][m],
                train_metrics=metrics["train"][m],
                curve=list(self.stopping.curves[position]),
                curve_unit="env_steps",
                wall_time_s=elapsed,
                extras={
                    "engine": "population",
                    "population_size": len(self.member_index),
                    "env_steps": int(self.num_timesteps),
                    "gradient_steps": int(self.n_gradient_steps[position]),
                    "best_step": int(self.stopping.best_step[position]),
                    "n_evaluations": len(self.stopping.curves[position]),
                    "stopped_early": bool(self.stopping.stopped[position]),
                    "evaluation_seconds": float(self.evaluation_seconds[position]),
                    "update_seconds": self.update_seconds,
                },
            )
            out.append((position, result))
        return out

    def _compact(self, keep: Tensor, observations: Tensor) -> Tensor:
        """Drop the members not in ``keep`` from every per-member tensor."""
        index = keep.nonzero().flatten()
        dev_index = index.to(self.device)
        k, e = self.members, self.n_envs
        observations = observations.view(k, e, -1)[index.to(observations.device)]
        self.members = int(index.numel())
        self.member_index = [self.member_index[i] for i in index.tolist()]
        self.configs = [self.configs[i] for i in index.tolist()]
        self.seeds = [self.seeds[i] for i in index.tolist()]
        if self.members == 0:
            return observations.reshape(0, self.obs_dim)
        self.actor = self.actor.subset(index)
        self.critic = self.critic.subset(index)
        self.actor_target = self.actor_target.subset(index)
        self.critic_target = self.critic_target.subset(index)
        self.best_actor = self.best_actor.subset(index)
        self.actor_optimizer = self.actor_optimizer.subset(index, self.actor.parameters())
        self.critic_optimizer = self.critic_optimizer.subset(index, self.critic.parameters())
        for name in (
            "lr_start",
            "lr_end",
            "lr_fraction",
            "tau",
            "gamma",
            "noise_sigma",
            "capacity",
            "buffer_obs",
            "buffer_next_obs",
            "buffer_actions",
            "buffer_rewards",
            "buffer_dones",
        ):
            setattr(self, name, getattr(self, name)[dev_index])
        for name in (
            "learning_starts",
            "total_steps",
            "eval_freq",
            "next_eval",
            "n_gradient_steps",
            "evaluation_seconds",
        ):
            setattr(self, name, getattr(self, name)[index])
        self.stopping = self.stopping.subset(index)
        for name in ("warmup_streams", "noise_streams", "replay_streams"):
            setattr(self, name, getattr(self, name).subset(dev_index))
        self.env.select_members(index)
        return observations.reshape(self.members * e, -1)


def _copy_mlp(mlp: BatchedMLP) -> BatchedMLP:
    """An independent copy of a batched MLP (same members, same device)."""
    return mlp.subset(torch.arange(mlp.members))


def train_ddpg_population(
    dataset: InventoryDataset,
    regularization: str | Regularization,
    configs: Sequence[DDPGConfig | Mapping[str, Any] | None],
    seeds: Sequence[int],
    *,
    device: str | torch.device = "auto",
    max_members: int | None = None,
    on_member_done: Callable[[int, TrainResult], None] | None = None,
) -> list[TrainResult]:
    """Train one DDPG member per ``(configs[i], seeds[i])`` as populations.

    Members are grouped by :func:`ddpg_structure` and each group is cut into chunks of at most
    ``max_members``; each chunk trains as one :class:`DDPGPopulation`, one after another.

    Args:
        dataset: with ``train``, ``val`` and ``test`` splits.
        regularization: ``none``, ``base``, ``coeff`` or ``both``.
        configs: per member, a :class:`~deepstock.methods.ddpg.DDPGConfig` or a mapping of its
            fields (missing keys take the defaults; unknown keys fail).
        seeds: per member, its seed.
        device: ``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda"``.
        max_members: the most members per computation (None: a whole group).
        on_member_done: ``on_member_done(i, result)``, called the moment member ``i`` finishes.

    Returns:
        One :class:`~deepstock.methods.common.TrainResult` per member, in input order.
    """
    settings = [settings_from_mapping(DDPGConfig, c, method="ddpg") for c in configs]
    return train_in_groups(
        settings,
        seeds,
        ddpg_structure,
        lambda chunk, chunk_seeds: DDPGPopulation(
            dataset, regularization, chunk, chunk_seeds, device=device
        ),
        max_members=max_members,
        on_member_done=on_member_done,
    )
