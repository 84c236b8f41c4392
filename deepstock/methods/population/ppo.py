"""PPO populations: K members (configuration + seed each) trained as one batched computation.

Each member runs the algorithm of :mod:`deepstock.methods.ppo` (SB3's ``PPO`` with ``MlpPolicy``):
a Gaussian policy ``N(mu(s), diag(exp(log_std))^2)`` with a tanh MLP mean and a
state-independent ``log_std``, a tanh MLP value function, rollouts of ``n_steps`` transitions,
SB3's GAE(``gamma``, ``gae_lambda``), then ``n_epochs`` passes in minibatches of ``batch_size``
over a fresh random order, each minimizing the clipped surrogate with per-minibatch advantage
normalization, ``vf_coef`` times the value MSE (no value clipping) and ``-ent_coef`` times the
entropy, gradients clipped to a global norm of ``max_grad_norm``, Adam with ``eps = 1e-5``
(SB3's choice for PPO). Actions are sampled, stored unclipped and sent to the env clipped to the
action space (the env's :class:`~deepstock.methods.envs.ActionMap` and ``action_scaling``); the
deterministic action (validation, test) is the mean.

What a member holds, stacked along a leading member axis ``K``: the policy mean and value
networks (:class:`~deepstock.methods.population.batched.BatchedMLP`), ``log_std`` ``(K, 1, A)``,
one :class:`~deepstock.methods.population.batched.MemberAdam` over all of them, per-member
``(K,)`` tensors of ``learning_rate`` / ``lr_min`` / ``lr_fraction`` (the linear decay),
``clip_range`` (decaying to half of it), ``ent_coef``, ``vf_coef``, ``gamma``, ``gae_lambda``,
``max_grad_norm``, ``target_kl``, ``n_epochs``, ``eval_freq``, ``patience``, ``min_evals`` and
``total_steps``; its own ``n_envs`` training slots of a
:class:`~deepstock.methods.envs.PopulationEnv`, its own rollout storage
``(K, n_steps / n_envs, n_envs, ...)`` and its own random streams (trajectory draws, action
noise, minibatch orders; :class:`~deepstock.core.streams.RowStreams`).

One env step of the population: the members' Gaussian actions and values in one forward pass,
one batched env step, validation of the due members, one write into the rollout storage. At the
end of a rollout: GAE for every member at once (a loop over the rollout's steps on ``(K,
n_envs)`` tensors), then the epochs: every minibatch is one forward/backward for the whole
population; a member past its own ``n_epochs`` or stopped by its ``target_kl`` in this update is
masked out (its weights and Adam state do not change). Validation, best weights, patience and
compaction are those of :mod:`deepstock.methods.population.ddpg`.

**Structure.** Members must share the network widths, ``batch_size``, ``n_steps``, ``n_envs`` and
``action_scaling`` to be stacked; :func:`train_ppo_population` groups them by these and trains
the groups one after another. ``n_epochs`` and everything else may differ.

Differences from the SB3 path (:func:`deepstock.methods.ppo.train_ppo`):

1. Random numbers come from per-member counter-based streams, not NumPy's and torch's global
   generators (same distributions: uniform trajectory draws, Gaussian actions by Box-Muller,
   uniformly random minibatch orders). Initial weights are SB3's orthogonal initialization
   (gains ``sqrt(2)`` for hidden layers, 0.01 for the mean head, 1 for the value head, zero
   biases) drawn from a torch generator seeded with the member's seed.
2. The numbers agree with SB3's to float32 rounding (tested to 1e-5 on one epoch over the same
   rollout with the same minibatch order), not bit for bit (batched ``baddbmm``, ``(K,)`` Adam).
3. ``wall_time_s``, ``evaluation_seconds`` and ``update_seconds`` (GAE and the gradient steps,
   the part that grows with the networks rather than with the per-step overhead) are shared by
   the members as in the DDPG population.
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
from deepstock.methods.envs import ActorPolicy, PopulationEnv
from deepstock.methods.population.batched import (
    BatchedMLP,
    MemberAdam,
    clip_grad_norm_per_member,
)
from deepstock.methods.population.rl_common import (
    MemberEarlyStopping,
    PopulationActorPolicy,
    linear_schedule_values,
    population_losses,
    population_metrics,
    train_in_groups,
)
from deepstock.methods.ppo import PPOConfig
from deepstock.model.dataset import InventoryDataset
from deepstock.model.regularizations import Regularization, get_regularization
from deepstock.model.simulator import InventorySimulator, resolve_device

__all__ = ["PPOPopulation", "RolloutBatch", "ppo_structure", "train_ppo_population"]

#: Stream numbers of a member's random numbers (trajectory draws use the env's own streams).
ACTION_STREAM, ORDER_STREAM = 11, 12

_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


def ppo_structure(settings: PPOConfig) -> tuple[Any, ...]:
    """The settings members must share to be stacked in one population."""
    return (
        tuple(settings.net_arch["pi"]),
        tuple(settings.net_arch["vf"]),
        settings.batch_size,
        settings.n_steps,
        settings.n_envs,
        settings.action_scaling,
    )


@dataclass(frozen=True)
class RolloutBatch:
    """One rollout per member, flattened as SB3's ``RolloutBuffer.get`` does (slot-major:
    index ``i * steps + s`` is step ``s`` of slot ``i``): ``(K, N, ...)`` float32 tensors with
    ``N = n_steps``.

    Attributes:
        observations: ``(K, N, obs_dim)``.
        actions: ``(K, N, A)`` the sampled (unclipped) actions.
        old_values, old_log_probs, advantages, returns: ``(K, N)``.
    """

    observations: Tensor
    actions: Tensor
    old_values: Tensor
    old_log_probs: Tensor
    advantages: Tensor
    returns: Tensor


def _orthogonal_member(
    sizes: list[int], head_gain: float, generator: torch.Generator
) -> nn.Sequential:
    """One member's MLP with SB3's orthogonal initialization (hidden gain sqrt(2))."""
    layers: list[nn.Module] = []
    for position, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        linear = nn.Linear(a, b)
        gain = head_gain if position == len(sizes) - 2 else math.sqrt(2.0)
        with torch.no_grad():
            nn.init.orthogonal_(linear.weight, gain=gain, generator=generator)
            linear.bias.zero_()
        layers.append(linear)
        if position < len(sizes) - 2:
            layers.append(nn.Tanh())
    return nn.Sequential(*layers)


class PPOPopulation:
    """K PPO members sharing one structure (:func:`ppo_structure`), trained together.

    Args:
        dataset: with ``train``, ``val`` and ``test`` splits.
        regularization: name or object.
        configs: K :class:`~deepstock.methods.ppo.PPOConfig` of equal structure.
        seeds: K seeds.
        device: where the networks and rollouts live (the env and the validation simulate on the
            CPU in float64).
    """

    def __init__(
        self,
        dataset: InventoryDataset,
        regularization: str | Regularization,
        configs: Sequence[PPOConfig],
        seeds: Sequence[int],
        *,
        device: str | torch.device = "auto",
    ) -> None:
        if len(configs) != len(seeds) or not configs:
            raise ValueError(
                f"a PPO population needs one seed per configuration, got {len(configs)} "
                f"configurations and {len(seeds)} seeds"
            )
        structures = {ppo_structure(c) for c in configs}
        if len(structures) != 1:
            raise ValueError(
                "PPOPopulation members must share net_arch, batch_size, n_steps, n_envs and "
                f"action_scaling; got {sorted(structures)} (train_ppo_population groups them)"
            )
        self.dataset = dataset
        self.regularization = get_regularization(regularization)
        self.configs = list(configs)
        self.seeds = [int(s) for s in seeds]
        self.device = dev = resolve_device(device)
        self.members = members = len(configs)
        first = configs[0]
        self.n_envs = first.n_envs
        self.steps_per_slot = first.n_steps // first.n_envs
        self.batch_size = first.batch_size

        self.env = PopulationEnv(
            dataset,
            self.regularization,
            self.seeds,
            n_envs=self.n_envs,
            split="train",
            action_scaling=first.action_scaling,
        )
        self.action_map = self.env.action_map
        obs_dim, action_size = self.env.obs_dim, self.action_map.size
        self.obs_dim, self.action_size = obs_dim, action_size
        self.validation = InventorySimulator.from_dataset(dataset.subset("val"), device="cpu")

        # ---- networks: SB3's orthogonal initialization from each member's seed
        mean_sizes = [obs_dim, *first.net_arch["pi"], action_size]
        value_sizes = [obs_dim, *first.net_arch["vf"], 1]
        self.actor = BatchedMLP(members, mean_sizes, nn.Tanh)
        self.critic = BatchedMLP(members, value_sizes, nn.Tanh)
        for k, seed in enumerate(self.seeds):
            generator = torch.Generator().manual_seed(seed)
            self.actor.load_member(k, _orthogonal_member(mean_sizes, 0.01, generator))
            self.critic.load_member(k, _orthogonal_member(value_sizes, 1.0, generator))
        self.actor.to(dev)
        self.critic.to(dev)
        bias = torch.tensor(
            [self.action_map.from_fraction(c.initial_action_bias) for c in configs],
            dtype=torch.float32,
            device=dev,
        )
        with torch.no_grad():
            self.actor.layers[-1].bias.copy_(
                bias[:, None, None].expand_as(self.actor.layers[-1].bias)
            )
        self.log_std = nn.Parameter(
            torch.tensor([c.log_std_init for c in configs], dtype=torch.float32, device=dev)
            .view(members, 1, 1)
            .expand(members, 1, action_size)
            .clone()
        )
        self.best_actor = self.actor.subset(torch.arange(members))

        def per_member(name: str, dtype: torch.dtype = torch.float64) -> Tensor:
            return torch.tensor([getattr(c, name) for c in configs], dtype=dtype)

        self.lr_start = per_member("learning_rate").to(dev)
        self.lr_end = per_member("lr_min").to(dev)
        self.lr_fraction = per_member("lr_fraction").to(dev)
        self.clip_start = per_member("clip_range").to(dev)
        self.optimizer = MemberAdam(self.parameters(), self.lr_start, eps=1e-5)
        self.ent_coef = per_member("ent_coef", torch.float32).to(dev)
        self.vf_coef = per_member("vf_coef", torch.float32).to(dev)
        self.gamma = per_member("gamma", torch.float32).to(dev)
        self.gae_lambda = per_member("gae_lambda", torch.float32).to(dev)
        self.max_grad_norm = per_member("max_grad_norm", torch.float32).to(dev)
        self.target_kl = torch.tensor(
            [math.inf if c.target_kl is None else c.target_kl for c in configs],
            dtype=torch.float32,
            device=dev,
        )
        self.n_epochs = per_member("n_epochs", torch.int64)
        self.total_steps = per_member("total_steps", torch.int64)
        self.eval_freq = per_member("eval_freq", torch.int64)
        self.next_eval = self.eval_freq.clone()
        self.stopping = MemberEarlyStopping(
            per_member("patience", torch.int64), per_member("min_evals", torch.int64)
        )
        self.evaluation_seconds = torch.zeros(members, dtype=torch.float64)
        self.update_seconds = 0.0  # GAE and gradient steps of the whole population
        self.member_index = list(range(members))
        self.action_streams = RowStreams(self.seeds, ACTION_STREAM, device=dev)
        self.order_streams = RowStreams(self.seeds, ORDER_STREAM, device=dev)
        self.num_timesteps = 0
        self._allocate_rollout()

    def parameters(self) -> list[Tensor]:
        """Every trained tensor, in SB3's ``policy.parameters()`` order up to grouping."""
        return [*self.actor.parameters(), *self.critic.parameters(), self.log_std]

    def _allocate_rollout(self) -> None:
        k, s, e, dev = self.members, self.steps_per_slot, self.n_envs, self.device
        self.rollout_obs = torch.zeros(k, s, e, self.obs_dim, device=dev)
        self.rollout_actions = torch.zeros(k, s, e, self.action_size, device=dev)
        self.rollout_rewards = torch.zeros(k, s, e, device=dev)
        self.rollout_starts = torch.zeros(k, s, e, device=dev)
        self.rollout_values = torch.zeros(k, s, e, device=dev)
        self.rollout_log_probs = torch.zeros(k, s, e, device=dev)

    # ------------------------------------------------------------------ one member's networks
    def load_member_policy(
        self, k: int, mean_net: nn.Module, value_net: nn.Module, log_std: Tensor
    ) -> None:
        """Copy plain networks into member ``k``: ``mean_net`` maps observations to the
        Gaussian mean (SB3: ``mlp_extractor.policy_net`` then ``action_net``), ``value_net`` to
        the value (``mlp_extractor.value_net`` then ``value_net``), ``log_std`` ``(A,)``."""
        self.actor.load_member(k, mean_net)
        self.critic.load_member(k, value_net)
        with torch.no_grad():
            self.log_std[k, 0].copy_(log_std.detach().to(self.log_std))

    # ------------------------------------------------------------------ the Gaussian policy
    def _log_prob(self, actions: Tensor, mean: Tensor, log_std: Tensor) -> Tensor:
        """``(K, B)`` log density of ``(K, B, A)`` actions (summed over action dimensions)."""
        z = (actions - mean) * torch.exp(-log_std)
        return (-0.5 * z.square() - log_std - _LOG_SQRT_2PI).sum(dim=2)

    def set_schedules(self, progress_remaining: Tensor) -> Tensor:
        """Set the per-member learning rates; returns the ``(K,)`` clip ranges (float32)."""
        progress = progress_remaining.to(self.lr_start)
        self.optimizer.lr = linear_schedule_values(
            self.lr_start, self.lr_end, self.lr_fraction, progress
        )
        clip = linear_schedule_values(
            self.clip_start, self.clip_start / 2.0, self.lr_fraction, progress
        )
        return clip.to(torch.float32)

    # ------------------------------------------------------------------ GAE
    def advantages(self, last_values: Tensor, last_dones: Tensor) -> tuple[Tensor, Tensor]:
        """SB3's ``compute_returns_and_advantage`` for every member: ``(advantages, returns)``,
        ``(K, steps, n_envs)`` float32, from the stored rollout, the values of the observations
        after it ``(K, n_envs)`` and whether its last step ended an episode ``(K, n_envs)``."""
        gamma = self.gamma[:, None]
        gamma_lambda = gamma * self.gae_lambda[:, None]
        advantages = torch.zeros_like(self.rollout_rewards)
        last_gae = torch.zeros_like(last_values)
        for step in reversed(range(self.steps_per_slot)):
            if step == self.steps_per_slot - 1:
                next_non_terminal = 1.0 - last_dones.to(torch.float32)
                next_values = last_values
            else:
                next_non_terminal = 1.0 - self.rollout_starts[:, step + 1]
                next_values = self.rollout_values[:, step + 1]
            delta = (
                self.rollout_rewards[:, step]
                + gamma * next_values * next_non_terminal
                - self.rollout_values[:, step]
            )
            last_gae = delta + gamma_lambda * next_non_terminal * last_gae
            advantages[:, step] = last_gae
        return advantages, advantages + self.rollout_values

    def rollout_batch(self, advantages: Tensor, returns: Tensor) -> RolloutBatch:
        """The stored rollout flattened slot-major (SB3's ``swap_and_flatten``)."""
        k = self.members

        def flat(values: Tensor) -> Tensor:
            return values.transpose(1, 2).reshape(
                k, self.steps_per_slot * self.n_envs, *values.shape[3:]
            )

        return RolloutBatch(
            observations=flat(self.rollout_obs),
            actions=flat(self.rollout_actions),
            old_values=flat(self.rollout_values),
            old_log_probs=flat(self.rollout_log_probs),
            advantages=flat(advantages),
            returns=flat(returns),
        )

    # ------------------------------------------------------------------ the update
    def update(
        self,
        batch: RolloutBatch,
        clip_range: Tensor,
        active: Tensor | None = None,
        orders: Sequence[Tensor] | None = None,
    ) -> None:
        """SB3 PPO's ``train()`` for every member at once.

        Args:
            batch: the members' rollouts.
            clip_range: ``(K,)`` float32 clip ranges.
            active: ``(K,)`` bool members to update (all when None).
            orders: optional minibatch orders, one ``(K, N)`` int64 permutation per epoch (the
                tests pass SB3's); drawn from the members' streams when None.
        """
        k, n = batch.advantages.shape
        dev = self.device
        active = torch.ones(k, dtype=torch.bool, device=dev) if active is None else active.to(dev)
        n_epochs = self.n_epochs.to(dev)
        rows = torch.arange(k, device=dev)[:, None]
        kl_stopped = torch.zeros(k, dtype=torch.bool, device=dev)
        for epoch in range(int(self.n_epochs.max())):
            in_epoch = active & (epoch < n_epochs) & ~kl_stopped
            if not bool(in_epoch.any()):
                break
            if orders is not None:
                order = orders[epoch].to(dev)
            else:
                order = torch.zeros(k, n, dtype=torch.int64, device=dev)
                drawing = in_epoch.nonzero().flatten()
                order[drawing] = self.order_streams.permutations(n, rows=drawing)
            for start in range(0, n, self.batch_size):
                index = order[:, start : start + self.batch_size]
                observations = batch.observations[rows, index]
                actions = batch.actions[rows, index]
                advantages = batch.advantages[rows, index]
                if index.shape[1] > 1:
                    advantages = (advantages - advantages.mean(dim=1, keepdim=True)) / (
                        advantages.std(dim=1, keepdim=True) + 1e-8
                    )
                mean = self.actor(observations)
                log_std = self.log_std.expand_as(mean)
                log_prob = self._log_prob(actions, mean, log_std)
                entropy = (0.5 + _LOG_SQRT_2PI + log_std).sum(dim=2)
                values = self.critic(observations).squeeze(2)
                old_log_prob = batch.old_log_probs[rows, index]
                ratio = torch.exp(log_prob - old_log_prob)
                clip = clip_range[:, None]
                surrogate = torch.min(
                    advantages * ratio, advantages * torch.clamp(ratio, 1.0 - clip, 1.0 + clip)
                )
                policy_loss = -surrogate.mean(dim=1)
                value_loss = (batch.returns[rows, index] - values).square().mean(dim=1)
                entropy_loss = -entropy.mean(dim=1)
                loss = policy_loss + self.ent_coef * entropy_loss + self.vf_coef * value_loss
                with torch.no_grad():
                    log_ratio = log_prob - old_log_prob
                    approx_kl = ((torch.exp(log_ratio) - 1.0) - log_ratio).mean(dim=1)
                kl_stopped = kl_stopped | (in_epoch & (approx_kl > 1.5 * self.target_kl))
                stepping = in_epoch & ~kl_stopped
                self.optimizer.zero_grad()
                loss.sum().backward()
                clip_grad_norm_per_member(self.parameters(), self.max_grad_norm)
                self.optimizer.step(stepping)
                in_epoch = stepping

    # ------------------------------------------------------------------ acting
    def policy(self, actor: BatchedMLP) -> PopulationActorPolicy:
        """The simulator policy of every member's Gaussian mean (validation, metrics)."""
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
        """``(K,)`` validation losses of the current deterministic policies (one rollout)."""
        return population_losses(self.validation, self.policy(self.actor))

    # ------------------------------------------------------------------ the loop
    def run(
        self, on_member_done: Callable[[int, TrainResult], None] | None = None
    ) -> list[TrainResult]:
        """Train every member to its end; results in the order of ``configs``.

        ``on_member_done(i, result)`` is called the moment member ``i`` finishes.
        """
        start = time.perf_counter()
        results: list[TrainResult | None] = [None] * self.members

        def retire(finished: Tensor) -> Tensor:
            """Hand the finished members over and drop them; returns the kept positions."""
            never = finished & (self.stopping.n_evals == 0)
            if bool(never.any()):
                self._validate_members(never, self.num_timesteps)
            for position, result in self._finish(finished, time.perf_counter() - start):
                index = self.member_index[position]
                results[index] = result
                if on_member_done is not None:
                    on_member_done(index, result)
            keep = (~finished).nonzero().flatten()
            self._compact(keep)
            return keep.to(self.device)

        self._observations = self.env.reset().to(self.device).view(self.members, self.n_envs, -1)
        self._episode_starts = torch.ones(self.members, self.n_envs, device=self.device)
        low, high = self.action_map.space_low, self.action_map.space_high
        while self.members > 0:
            dones = torch.zeros(self.members, self.n_envs, dtype=torch.bool, device=self.device)
            for step_in_rollout in range(self.steps_per_slot):
                k, e, a = self.members, self.n_envs, self.action_size
                obs = self._observations
                with torch.no_grad():
                    mean = self.actor(obs)
                    values = self.critic(obs).squeeze(2)
                    noise = self.action_streams.normal(e * a).view(k, e, a).to(torch.float32)
                    actions = mean + torch.exp(self.log_std) * noise
                    log_probs = self._log_prob(actions, mean, self.log_std.expand_as(mean))
                step = self.env.step(actions.clamp(low, high).reshape(k * e, a))
                rewards = step.reward.to(self.device).view(k, e)
                next_obs = step.observation.to(self.device).view(k, e, -1)
                dones = step.done.to(self.device).view(k, e)
                self.num_timesteps += e
                t = self.num_timesteps
                due = (~self.stopping.stopped) & (t >= self.next_eval)
                if bool(due.any()):
                    self._validate_members(due, t)
                if bool(self.stopping.stopped.any()):
                    # SB3: the callback ends the member's learn() before it stores this step
                    keep = retire(self.stopping.stopped.clone())
                    if self.members == 0:
                        break
                    obs, actions, values, log_probs = (
                        obs[keep],
                        actions[keep],
                        values[keep],
                        log_probs[keep],
                    )
                    rewards, next_obs, dones = rewards[keep], next_obs[keep], dones[keep]
                self.rollout_obs[:, step_in_rollout] = obs
                self.rollout_actions[:, step_in_rollout] = actions
                self.rollout_rewards[:, step_in_rollout] = rewards
                self.rollout_starts[:, step_in_rollout] = self._episode_starts
                self.rollout_values[:, step_in_rollout] = values
                self.rollout_log_probs[:, step_in_rollout] = log_probs
                self._observations = next_obs
                self._episode_starts = dones.to(torch.float32)
            if self.members == 0:
                break
            # a whole rollout: GAE, then the update (SB3's learn loop)
            began = time.perf_counter()
            with torch.no_grad():
                last_values = self.critic(self._observations).squeeze(2)
            advantages, returns = self.advantages(last_values, dones)
            progress = 1.0 - self.num_timesteps / self.total_steps.to(torch.float64)
            clip_range = self.set_schedules(progress.to(self.device))
            self.update(self.rollout_batch(advantages, returns), clip_range)
            self.update_seconds += time.perf_counter() - began
            finished = self.num_timesteps >= self.total_steps
            if bool(finished.any()):
                retire(finished)
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
            member_policy = ActorPolicy(
                best.member_module(m).eval(),
                self.regularization,
                self.action_map,
                self.dataset.max_replenish,
                self.dataset.coeff_features,
            )
            out.append(
                (
                    position,
                    TrainResult(
                        method="ppo",
                        regularization=self.regularization.name,
                        config=dataclasses.asdict(self.configs[position]),
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
                            "best_step": int(self.stopping.best_step[position]),
                            "n_evaluations": len(self.stopping.curves[position]),
                            "stopped_early": bool(self.stopping.stopped[position]),
                            "evaluation_seconds": float(self.evaluation_seconds[position]),
                            "update_seconds": self.update_seconds,
                        },
                    ),
                )
            )
        return out

    def _compact(self, index: Tensor) -> None:
        """Keep only the members at ``index`` (int64 positions) in every per-member tensor."""
        dev_index = index.to(self.device)
        self.members = int(index.numel())
        self.member_index = [self.member_index[i] for i in index.tolist()]
        self.configs = [self.configs[i] for i in index.tolist()]
        self.seeds = [self.seeds[i] for i in index.tolist()]
        self._observations = self._observations[dev_index]
        self._episode_starts = self._episode_starts[dev_index]
        if self.members == 0:
            return
        self.actor = self.actor.subset(index)
        self.critic = self.critic.subset(index)
        self.best_actor = self.best_actor.subset(index)
        self.log_std = nn.Parameter(self.log_std.detach()[dev_index].clone())
        self.optimizer = self.optimizer.subset(index, self.parameters())
        for name in (
            "lr_start",
            "lr_end",
            "lr_fraction",
            "clip_start",
            "ent_coef",
            "vf_coef",
            "gamma",
            "gae_lambda",
            "max_grad_norm",
            "target_kl",
            "rollout_obs",
            "rollout_actions",
            "rollout_rewards",
            "rollout_starts",
            "rollout_values",
            "rollout_log_probs",
        ):
            setattr(self, name, getattr(self, name)[dev_index])
        for name in ("n_epochs", "total_steps", "eval_freq", "next_eval", "evaluation_seconds"):
            setattr(self, name, getattr(self, name)[index])
        self.stopping = self.stopping.subset(index)
        self.action_streams = self.action_streams.subset(dev_index)
        self.order_streams = self.order_streams.subset(dev_index)
        self.env.select_members(index)


def train_ppo_population(
    dataset: InventoryDataset,
    regularization: str | Regularization,
    configs: Sequence[PPOConfig | Mapping[str, Any] | None],
    seeds: Sequence[int],
    *,
    device: str | torch.device = "auto",
    max_members: int | None = None,
    on_member_done: Callable[[int, TrainResult], None] | None = None,
) -> list[TrainResult]:
    """Train one PPO member per ``(configs[i], seeds[i])`` as populations.

    Members are grouped by :func:`ppo_structure` and each group is cut into chunks of at most
    ``max_members``; each chunk trains as one :class:`PPOPopulation`, one after another.

    Args:
        dataset: with ``train``, ``val`` and ``test`` splits.
        regularization: ``none``, ``base``, ``coeff`` or ``both``.
        configs: per member, a :class:`~deepstock.methods.ppo.PPOConfig` or a mapping of its
            fields (missing keys take the defaults; unknown keys fail).
        seeds: per member, its seed.
        device: ``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda"``.
        max_members: the most members per computation (None: a whole group).
        on_member_done: ``on_member_done(i, result)``, called the moment member ``i`` finishes.

    Returns:
        One :class:`~deepstock.methods.common.TrainResult` per member, in input order.
    """
    settings = [settings_from_mapping(PPOConfig, c, method="ppo") for c in configs]
    return train_in_groups(
        settings,
        seeds,
        ppo_structure,
        lambda chunk, chunk_seeds: PPOPopulation(
            dataset, regularization, chunk, chunk_seeds, device=device
        ),
        max_members=max_members,
        on_member_done=on_member_done,
    )
