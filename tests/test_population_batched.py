"""Tests of the population engine's batched building blocks (deepstock/methods/population/batched.py):
each piece against the plain-torch computation it replaces, member by member."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from deepstock.methods.population.batched import (
    BatchedLinear,
    BatchedMLP,
    MemberAdam,
    MemberPlateau,
    clip_grad_norm_per_member,
    member_mask,
    stack_hyperparameter,
)

SIZES = [5, 7, 6, 2]


def plain_mlp(seed: int) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Linear(5, 7), nn.ELU(), nn.Linear(7, 6), nn.ELU(), nn.Linear(6, 2), nn.ReLU()
    )


def population_of(nets: list[nn.Sequential]) -> BatchedMLP:
    population = BatchedMLP(len(nets), SIZES, nn.ELU, nn.ReLU)
    for k, net in enumerate(nets):
        population.load_member(k, net)
    return population


def test_batched_linear_matches_nn_linear_initialization_and_forward() -> None:
    generator = torch.Generator().manual_seed(3)
    batched = BatchedLinear(3, 4, 5, generator=generator)
    reference = torch.Generator().manual_seed(3)
    x = torch.randn(3, 8, 4)
    out = batched(x)
    assert out.shape == (3, 8, 5)
    for k in range(3):
        # nn.Linear draws weight then bias uniform(+-1/sqrt(in)); same stream member after member
        weight = torch.empty(5, 4).uniform_(-0.5, 0.5, generator=reference)
        bias = torch.empty(5).uniform_(-0.5, 0.5, generator=reference)
        torch.testing.assert_close(batched.weight[k].T, weight)
        torch.testing.assert_close(batched.bias[k, 0], bias)
        layer = batched.member_layer(k)
        torch.testing.assert_close(out[k], layer(x[k]), atol=1e-6, rtol=1e-6)


def test_batched_mlp_round_trips_and_matches_members() -> None:
    nets = [plain_mlp(seed) for seed in (0, 1, 2)]
    population = population_of(nets)
    x = torch.randn(3, 10, 5)
    out = population(x)
    for k, net in enumerate(nets):
        torch.testing.assert_close(out[k], net(x[k]), atol=1e-6, rtol=1e-6)
        copy = population.member_module(k)
        assert [type(m) for m in copy] == [type(m) for m in net]
        for a, b in zip(copy.parameters(), net.parameters(), strict=True):
            assert torch.equal(a, b)
    with pytest.raises(ValueError, match="nn.Linear layers"):
        population.load_member(0, nn.Sequential(nn.Linear(5, 2)))
    with pytest.raises(ValueError, match="shape"):
        population.layers[0].load_member(0, nn.Linear(4, 7))


def test_subset_keeps_the_listed_members() -> None:
    nets = [plain_mlp(seed) for seed in (0, 1, 2)]
    population = population_of(nets)
    kept = population.subset([2, 0])
    x = torch.randn(2, 4, 5)
    torch.testing.assert_close(kept(x)[0], nets[2](x[0]), atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(kept(x)[1], nets[0](x[1]), atol=1e-6, rtol=1e-6)


def member_losses(population: BatchedMLP, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return ((population(x) - y) ** 2).mean(dim=(1, 2))


@pytest.mark.parametrize("members", [1, 3])
@pytest.mark.parametrize("weight_decay", [0.0, 0.01])
def test_member_adam_and_clipping_match_torch_per_member(members: int, weight_decay: float) -> None:
    lrs = [1e-2, 3e-3, 5e-2][:members]
    max_norms = [0.5, 5.0, 0.05][:members]
    nets = [plain_mlp(seed) for seed in range(members)]
    population = population_of(nets)
    optimizer = MemberAdam(population.parameters(), torch.tensor(lrs), weight_decay=weight_decay)
    references = [
        torch.optim.Adam(net.parameters(), lr=lr, weight_decay=weight_decay)
        for net, lr in zip(nets, lrs, strict=True)
    ]
    generator = torch.Generator().manual_seed(0)
    for _ in range(25):
        x = torch.randn(members, 16, 5, generator=generator) * 3
        y = torch.randn(members, 16, 2, generator=generator) * 3
        optimizer.zero_grad()
        member_losses(population, x, y).sum().backward()
        norms = clip_grad_norm_per_member(population.parameters(), torch.tensor(max_norms))
        optimizer.step()
        for k, (net, reference) in enumerate(zip(nets, references, strict=True)):
            reference.zero_grad()
            ((net(x[k]) - y[k]) ** 2).mean().backward()
            norm = nn.utils.clip_grad_norm_(net.parameters(), max_norms[k])
            reference.step()
            torch.testing.assert_close(norms[k], norm, atol=1e-5, rtol=1e-6)
    for k, net in enumerate(nets):
        for a, b in zip(population.member_module(k).parameters(), net.parameters(), strict=True):
            torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)


def test_member_adam_inactive_members_are_frozen_and_keep_their_step_count() -> None:
    nets = [plain_mlp(seed) for seed in range(3)]
    population = population_of(nets)
    optimizer = MemberAdam(population.parameters(), torch.tensor([1e-2, 1e-2, 1e-2]))
    reference = torch.optim.Adam(nets[1].parameters(), lr=1e-2)
    generator = torch.Generator().manual_seed(1)
    active = torch.tensor([True, False, True])
    for step in range(10):
        x = torch.randn(3, 8, 5, generator=generator)
        y = torch.randn(3, 8, 2, generator=generator)
        frozen = population.member_state(1)
        moments = [m[1].clone() for m in optimizer.exp_avg]
        optimizer.zero_grad()
        member_losses(population, x, y).sum().backward()
        # member 1 sits out on even steps: it must take exactly the odd-step updates
        mask = active if step % 2 == 0 else torch.ones(3, dtype=torch.bool)
        optimizer.step(mask)
        if step % 2 == 0:
            for before, after in zip(frozen, population.member_state(1), strict=True):
                assert torch.equal(before, after)
            for before, m in zip(moments, optimizer.exp_avg, strict=True):
                assert torch.equal(before, m[1])
        else:
            reference.zero_grad()
            ((nets[1](x[1]) - y[1]) ** 2).mean().backward()
            reference.step()
    assert optimizer.steps.tolist() == [10.0, 5.0, 10.0]
    for a, b in zip(population.member_module(1).parameters(), nets[1].parameters(), strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)


def test_different_learning_rates_diverge_as_single_runs_do() -> None:
    # the same initial weights and data; only the learning rate differs between the members
    nets = [plain_mlp(0), plain_mlp(0)]
    population = population_of(nets)
    optimizer = MemberAdam(population.parameters(), 1e-3)
    optimizer.set_lr(1, 1e-1)
    references = [
        torch.optim.Adam(nets[0].parameters(), lr=1e-3),
        torch.optim.Adam(nets[1].parameters(), lr=1e-1),
    ]
    generator = torch.Generator().manual_seed(2)
    for _ in range(5):
        x = torch.randn(8, 5, generator=generator)
        y = torch.randn(8, 2, generator=generator)
        optimizer.zero_grad()
        member_losses(population, x.expand(2, 8, 5), y.expand(2, 8, 2)).sum().backward()
        optimizer.step()
        for net, reference in zip(nets, references, strict=True):
            reference.zero_grad()
            ((net(x) - y) ** 2).mean().backward()
            reference.step()
    first, second = population.member_state(0), population.member_state(1)
    assert max(float((a - b).abs().max()) for a, b in zip(first, second, strict=True)) > 1e-2
    for k, net in enumerate(nets):
        for a, b in zip(population.member_module(k).parameters(), net.parameters(), strict=True):
            torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)


def test_member_plateau_matches_reduce_lr_on_plateau() -> None:
    factors, patiences = [0.5, 0.9, 0.7], [3, 0, 2]
    optimizer = MemberAdam(
        [torch.zeros(3, 1, requires_grad=True)], torch.tensor([1.0, 0.1, 1e-7], dtype=torch.float64)
    )
    scheduler = MemberPlateau(
        optimizer, torch.tensor(factors, dtype=torch.float64), torch.tensor(patiences)
    )
    references = []
    for lr, factor, patience in zip([1.0, 0.1, 1e-7], factors, patiences, strict=True):
        adam = torch.optim.Adam([torch.zeros(1, requires_grad=True)], lr=lr)
        references.append(
            (
                adam,
                torch.optim.lr_scheduler.ReduceLROnPlateau(adam, factor=factor, patience=patience),
            )
        )
    generator = torch.Generator().manual_seed(4)
    for epoch in range(40):
        # mostly flat losses with small relative changes around the 1e-4 threshold
        metrics = (
            1.0
            + 1e-4 * torch.randn(3, generator=generator, dtype=torch.float64)
            - 1e-3 * (epoch % 7 == 0)
        )
        scheduler.step(metrics)
        for k, (adam, plateau) in enumerate(references):
            plateau.step(float(metrics[k]))
            assert optimizer.lr[k].item() == pytest.approx(adam.param_groups[0]["lr"], rel=1e-12)
    assert optimizer.lr[0] < 1.0 and optimizer.lr[1] < 0.1


def test_hyperparameter_helpers() -> None:
    configs = [{"learning_rate": 1e-3}, {"learning_rate": 2}]
    assert stack_hyperparameter(configs, "learning_rate").tolist() == [1e-3, 2.0]
    with pytest.raises(ValueError, match="member 1.*'tau'"):
        stack_hyperparameter([{"tau": 1.0}, {}], "tau")
    with pytest.raises(ValueError, match="must be a number"):
        stack_hyperparameter([{"tau": "x"}], "tau")
    assert member_mask(4, [0, 2]).tolist() == [True, False, True, False]
    assert member_mask(4, 3).tolist() == [False, False, False, True]
    with pytest.raises(ValueError, match=r"\[0, 4\)"):
        member_mask(4, [4])
