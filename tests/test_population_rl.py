"""Tests of the DDPG and PPO populations (deepstock/methods/population/ddpg.py and ppo.py).

Exact equivalence with SB3's gradient step (same initial weights, same minibatch), members of a
population equal to training them alone, per-member hyperparameters, masked members frozen.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from rl_helpers import make_dataset
from stable_baselines3.common.logger import configure

from deepstock.core.streams import RowStreams
from deepstock.methods.ddpg import DDPGConfig, make_ddpg
from deepstock.methods.envs import InventoryVecEnv, PopulationEnv
from deepstock.methods.population.ddpg import DDPGPopulation, ReplayBatch, train_ddpg_population
from deepstock.methods.population.ppo import PPOPopulation, train_ppo_population
from deepstock.methods.population.rl_common import MemberEarlyStopping
from deepstock.methods.ppo import PPOConfig, make_ppo
from deepstock.methods.train import train

#: Small DDPG runs: a few hundred steps with small networks.
DDPG_FAST = {
    "total_steps": 240,
    "learning_starts": 60,
    "eval_freq": 80,
    "batch_size": 16,
    "net_arch": [16, 16],
    "record_steps": 0,
}


def _close(a: torch.Tensor, b: torch.Tensor, tol: float = 1e-5) -> bool:
    return bool(torch.allclose(a.detach().float(), b.detach().float(), atol=tol, rtol=tol))


# ---------------------------------------------------------------------- streams and env
def test_row_streams_do_not_depend_on_the_other_rows() -> None:
    together = RowStreams([3, 4, 5], 1)
    alone = RowStreams([5], 1)
    assert torch.equal(together.uniform(7)[2], alone.uniform(7)[0])
    # drawing for some rows only advances those rows
    together.uniform(2, rows=torch.tensor([0]))
    assert torch.equal(together.uniform(3)[2], alone.uniform(3)[0])
    u = RowStreams(list(range(4))).uniform(20000)
    assert float(u.min()) >= 0.0 and float(u.max()) < 1.0
    assert abs(float(u.mean()) - 0.5) < 0.01
    perm = RowStreams([1, 2]).permutations(50)
    assert torch.equal(perm.sort(dim=1).values, torch.arange(50).expand(2, 50))


def test_population_env_member_matches_its_single_member_env() -> None:
    data = make_dataset()
    both = PopulationEnv(data, "base", [11, 12], n_envs=2)
    alone = PopulationEnv(data, "base", [12], n_envs=2)
    obs_both, obs_alone = both.reset(), alone.reset()
    assert torch.equal(obs_both[2:], obs_alone)
    gen = torch.Generator().manual_seed(0)
    for _ in range(25):  # several episodes (horizon 17, period 2)
        actions = torch.rand(4, 1, generator=gen) * 2 - 1
        a = both.step(actions)
        b = alone.step(actions[2:])
        assert torch.equal(a.reward[2:], b.reward)
        assert torch.equal(a.done[2:], b.done)
        assert torch.equal(a.observation[2:], b.observation)
        assert torch.equal(a.terminal_observation[2:], b.terminal_observation)
    # dropping a member keeps the other's episodes going unchanged
    both.select_members([1])
    actions = torch.rand(2, 1, generator=gen)
    assert torch.equal(both.step(actions).reward, alone.step(actions).reward)


def test_population_env_rewards_are_the_vec_env_rewards() -> None:
    data = make_dataset()
    env = PopulationEnv(data, "none", [0])
    vec = InventoryVecEnv(data, "none", n_envs=1)
    obs = env.reset()
    for trajectory in range(data.subset("train").n_trajectories):
        vec.set_options({"trajectory": trajectory})
        if np.array_equal(vec.reset(), obs.numpy()):
            break
    for _ in range(5):
        action = torch.tensor([[0.3]])
        step = env.step(action)
        _, reward, _, _ = vec.step(action.numpy())
        assert np.allclose(step.reward.numpy(), reward)


# ---------------------------------------------------------------------- early stopping
def test_member_early_stopping_follows_sb3s_rule_per_member() -> None:
    # member 0: patience 1, min_evals 2; member 1: patience 0, min_evals 0
    stopping = MemberEarlyStopping(torch.tensor([1, 0]), torch.tensor([2, 0]))
    losses = [(5.0, 5.0), (6.0, 4.0), (7.0, 4.0), (4.0, 3.0), (4.5, 3.0), (4.4, 3.0)]
    stopped_at = {}
    for step, pair in enumerate(losses, start=1):
        evaluated = ~stopping.stopped
        improved = stopping.record(evaluated, torch.tensor(pair, dtype=torch.float64), step)
        if step == 4:
            assert improved.tolist() == [True, False]  # member 1 has stopped
        for k in range(2):
            if bool(stopping.stopped[k]) and k not in stopped_at:
                stopped_at[k] = step
    # member 1 stops at its first evaluation without improvement (step 3); member 0 ignores
    # its first two evaluations, then stops at the second consecutive miss (step 6)
    assert stopped_at == {1: 3, 0: 6}
    assert stopping.best_loss.tolist() == [4.0, 4.0]
    assert [p.step for p in stopping.curves[1]] == [1, 2, 3]


def test_train_dispatches_to_the_population_engine() -> None:
    data = make_dataset()
    result = train("ppo", "base", data, PPO_FAST, engine="population", device="cpu")
    assert result.extras["engine"] == "population" and result.method == "ppo"
    assert result.extras["env_steps"] == PPO_FAST["total_steps"]
    with pytest.raises(ValueError, match="configs and seeds"):
        train_ddpg_population(data, "base", [DDPG_FAST], [0, 1])


# ---------------------------------------------------------------------- DDPG
def _sb3_ddpg_with_buffer(data, config: DDPGConfig, seed: int = 0):
    env = InventoryVecEnv(data, "base", n_envs=1, seed=seed)
    model = make_ddpg(env, config, seed=seed, device=torch.device("cpu"))
    model.set_logger(configure(None, []))  # train() logs; learn() would set this up
    rng = np.random.default_rng(seed)
    obs = env.reset()
    for _ in range(200):
        action = rng.uniform(-1, 1, size=(1, 1)).astype(np.float32)
        next_obs, reward, done, infos = env.step(action)
        stored_next = next_obs.copy()
        if done[0]:
            stored_next[0] = infos[0]["terminal_observation"]
        model.replay_buffer.add(obs, stored_next, action, reward, done, infos)
        obs = next_obs
    return model


def _population_from_sb3(data, config: DDPGConfig, model) -> DDPGPopulation:
    population = DDPGPopulation(data, "base", [config], [0], device="cpu")
    population.actor.load_member(0, model.actor.mu)
    population.critic.load_member(0, model.critic.qf0)
    population.actor_target.load_member(0, model.actor_target.mu)
    population.critic_target.load_member(0, model.critic_target.qf0)
    return population


def test_ddpg_gradient_step_is_sb3s() -> None:
    data = make_dataset()
    config = DDPGConfig(**{**DDPG_FAST, "tau": 0.05, "learning_rate": 3e-3, "gamma": 0.95})
    model = _sb3_ddpg_with_buffer(data, config)
    population = _population_from_sb3(data, config, model)

    for step in range(3):  # three steps: Adam's moments and bias corrections matter
        np.random.seed(step)
        batch = model.replay_buffer.sample(config.batch_size)
        model.replay_buffer.sample = lambda *args, _batch=batch, **kwargs: _batch
        model.train(gradient_steps=1, batch_size=config.batch_size)
        population.set_learning_rate(torch.tensor([model._current_progress_remaining]))
        population.gradient_step(
            ReplayBatch(
                observations=batch.observations[None],
                actions=batch.actions[None],
                next_observations=batch.next_observations[None],
                rewards=batch.rewards[None],
                dones=batch.dones[None],
            )
        )
    pairs = [
        (population.actor, model.actor.mu),
        (population.critic, model.critic.qf0),
        (population.actor_target, model.actor_target.mu),
        (population.critic_target, model.critic_target.qf0),
    ]
    for batched, reference in pairs:
        mine = batched.member_module(0)
        for a, b in zip(mine.parameters(), reference.parameters(), strict=True):
            assert _close(a, b), (a - b).abs().max()
    # and the update moved the weights (the comparison is not between untouched copies)
    assert not _close(population.actor.member_module(0)[0].weight, model.actor_target.mu[0].weight)


def test_masked_ddpg_member_does_not_change() -> None:
    data = make_dataset()
    config = DDPGConfig(**DDPG_FAST)
    population = DDPGPopulation(data, "base", [config, config], [0, 1], device="cpu")
    gen = torch.Generator().manual_seed(0)
    for _ in range(40):
        obs = torch.rand(2, 1, population.obs_dim, generator=gen)
        population.store(
            obs.view(2, -1),
            torch.rand(2, 1, generator=gen),
            obs.view(2, -1) + 1,
            torch.rand(2, generator=gen),
            torch.zeros(2, dtype=torch.bool),
        )
    nets = (population.actor, population.critic, population.actor_target, population.critic_target)
    before = [[p[1].clone() for p in net.parameters()] for net in nets]
    moved = [[p[0].clone() for p in net.parameters()] for net in nets]
    for _ in range(3):
        population.gradient_step(population.sample(), torch.tensor([True, False]))
    for net, frozen, old in zip(nets, before, moved, strict=True):
        for p, f, o in zip(net.parameters(), frozen, old, strict=True):
            assert torch.equal(p[1], f)
            assert not torch.equal(p[0], o)
    assert population.critic_optimizer.steps.tolist() == [3.0, 0.0]


def test_ddpg_members_of_a_population_train_as_alone() -> None:
    data = make_dataset()
    # the slow member also ends earlier: the population drops it and goes on without it
    slow = {**DDPG_FAST, "learning_rate": 1e-4, "lr_min": 1e-5, "total_steps": 160}
    fast = {**DDPG_FAST, "learning_rate": 5e-3, "lr_min": 1e-3}
    together = train_ddpg_population(data, "base", [slow, fast], [3, 4], device="cpu")
    alone = [
        train_ddpg_population(data, "base", [slow], [3], device="cpu")[0],
        train_ddpg_population(data, "base", [fast], [4], device="cpu")[0],
    ]
    for a, b in zip(together, alone, strict=True):
        assert [p.step for p in a.curve] == [p.step for p in b.curve]
        assert np.allclose([p.val_loss for p in a.curve], [p.val_loss for p in b.curve], rtol=1e-6)
        assert a.test_loss == pytest.approx(b.test_loss, rel=1e-6)
        assert a.extras["gradient_steps"] == b.extras["gradient_steps"]
        for p, q in zip(a.policy.actor.parameters(), b.policy.actor.parameters(), strict=True):
            assert _close(p, q, 1e-6)
    # the two learning rates gave two different runs
    assert together[0].test_loss != together[1].test_loss
    assert together[0].extras["env_steps"] == 160 and together[1].extras["env_steps"] == 240


# ---------------------------------------------------------------------- PPO
PPO_FAST = {
    "total_steps": 256,
    "n_steps": 64,
    "batch_size": 16,
    "eval_freq": 64,
    "net_arch": [16, 16],
    "n_epochs": 2,
}


def test_ppo_advantages_and_epoch_are_sb3s() -> None:
    data = make_dataset()
    config = PPOConfig(**{**PPO_FAST, "n_envs": 2, "learning_rate": 3e-3, "ent_coef": 0.05})
    env = InventoryVecEnv(data, "base", n_envs=2, action_scaling="native", seed=0)
    model = make_ppo(env, config, seed=0, device=torch.device("cpu"))
    model.set_logger(configure(None, []))
    total, callback = model._setup_learn(config.total_steps, None)
    model.collect_rollouts(env, callback, model.rollout_buffer, config.n_steps // 2)
    model._update_current_progress_remaining(model.num_timesteps, total)
    buffer = model.rollout_buffer

    population = PPOPopulation(data, "base", [config], [0], device="cpu")
    policy = model.policy
    population.load_member_policy(
        0,
        torch.nn.Sequential(*policy.mlp_extractor.policy_net, policy.action_net),
        torch.nn.Sequential(*policy.mlp_extractor.value_net, policy.value_net),
        policy.log_std,
    )
    for name, values in (
        ("obs", buffer.observations),
        ("actions", buffer.actions),
        ("rewards", buffer.rewards),
        ("starts", buffer.episode_starts),
        ("values", buffer.values),
        ("log_probs", buffer.log_probs),
    ):
        getattr(population, f"rollout_{name}")[0] = torch.as_tensor(values).reshape(
            getattr(population, f"rollout_{name}")[0].shape
        )
    with torch.no_grad():
        last_values = policy.predict_values(torch.as_tensor(model._last_obs)).view(1, 2)
    dones = torch.as_tensor(model._last_episode_starts).view(1, 2)
    advantages, returns = population.advantages(last_values, dones)
    assert _close(advantages[0], torch.as_tensor(buffer.advantages))
    assert _close(returns[0], torch.as_tensor(buffer.returns))

    # SB3's minibatch orders: np.random.permutation once per epoch
    np.random.seed(7)
    orders = [torch.as_tensor(np.random.permutation(config.n_steps))[None] for _ in range(2)]
    np.random.seed(7)
    model.train()
    clip = population.set_schedules(torch.tensor([model._current_progress_remaining]))
    population.update(population.rollout_batch(advantages, returns), clip, orders=orders)
    mine = [*population.actor.member_module(0).parameters()]
    reference = [*policy.mlp_extractor.policy_net.parameters(), *policy.action_net.parameters()]
    mine += [*population.critic.member_module(0).parameters()]
    reference += [*policy.mlp_extractor.value_net.parameters(), *policy.value_net.parameters()]
    for a, b in zip(mine, reference, strict=True):
        assert _close(a, b), (a - b).abs().max()
    assert _close(population.log_std[0, 0], policy.log_std)
    assert float(population.optimizer.lr[0]) == pytest.approx(
        model.policy.optimizer.param_groups[0]["lr"]
    )


def test_ppo_members_of_a_population_train_as_alone_and_masking_freezes() -> None:
    data = make_dataset()
    slow = {**PPO_FAST, "learning_rate": 1e-4, "lr_min": 1e-5, "n_epochs": 1, "total_steps": 128}
    fast = {**PPO_FAST, "learning_rate": 5e-3, "lr_min": 1e-3, "n_epochs": 3}
    together = train_ppo_population(data, "base", [slow, fast], [3, 4], device="cpu")
    alone = [
        train_ppo_population(data, "base", [slow], [3], device="cpu")[0],
        train_ppo_population(data, "base", [fast], [4], device="cpu")[0],
    ]
    for a, b in zip(together, alone, strict=True):
        assert [p.step for p in a.curve] == [p.step for p in b.curve]
        assert np.allclose([p.val_loss for p in a.curve], [p.val_loss for p in b.curve], rtol=1e-6)
        assert a.test_loss == pytest.approx(b.test_loss, rel=1e-6)
        for p, q in zip(a.policy.actor.parameters(), b.policy.actor.parameters(), strict=True):
            assert _close(p, q, 1e-6)
    assert together[0].test_loss != together[1].test_loss
    assert together[0].extras["env_steps"] == 128 and together[1].extras["env_steps"] == 256

    # a masked member's weights and Adam state stay as they are
    population = PPOPopulation(data, "base", [PPOConfig(**PPO_FAST)] * 2, [0, 1], device="cpu")
    gen = torch.Generator().manual_seed(0)
    for name in ("obs", "actions", "rewards", "values", "log_probs"):
        tensor = getattr(population, f"rollout_{name}")
        tensor.copy_(torch.rand(tensor.shape, generator=gen))
    before = [p[1].clone() for p in population.parameters()]
    moved = [p[0].clone() for p in population.parameters()]
    advantages, returns = population.advantages(torch.zeros(2, 1), torch.zeros(2, 1))
    population.set_schedules(torch.ones(2))
    population.update(
        population.rollout_batch(advantages, returns),
        torch.full((2,), 0.2),
        active=torch.tensor([True, False]),
    )
    for p, b in zip(population.parameters(), before, strict=True):
        assert torch.equal(p[1], b)
    assert any(
        not torch.equal(p[0], m) for p, m in zip(population.parameters(), moved, strict=True)
    )
    assert population.optimizer.steps.tolist()[1] == 0.0
