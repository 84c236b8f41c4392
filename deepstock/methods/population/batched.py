"""Batched building blocks of the population engine: K networks, K optimizers, one computation.

A *population* is K members of one method (a member = one configuration + one seed) trained
together. Every parameter of the population is one tensor whose leading axis is the member axis
``K``; a member is a slice ``[k]``. The pieces here are what every population trainer (DS, DDPG,
PPO) shares:

- :class:`BatchedLinear` / :class:`BatchedMLP`: K independent linear layers / MLPs evaluated in
  one ``torch.baddbmm`` per layer, ``(K, B, in) -> (K, B, out)``. :meth:`BatchedMLP.load_member`
  and :meth:`BatchedMLP.member_module` copy member ``k`` from / to an ordinary ``nn.Sequential``
  of ``nn.Linear`` layers and activations, so a population can start from the exact initial
  weights of single runs and a finished member becomes an ordinary network again;
  :class:`MemberRowsNetwork` runs a population where code expects one network over rows.
- :class:`MemberAdam`: the update of ``torch.optim.Adam`` with a learning rate, a step count and
  an on/off switch per member (a switched-off member's weights and moments do not change).
- :func:`clip_grad_norm_per_member`: ``torch.nn.utils.clip_grad_norm_`` applied to each member's
  gradients alone.
- :class:`MemberPlateau`: ``torch.optim.lr_scheduler.ReduceLROnPlateau`` per member.
- :func:`stack_hyperparameter` and :func:`member_mask`: per-member scalars as ``(K,)`` tensors.

Members never interact: the member axis is a batch axis of every operation (``baddbmm``,
elementwise maths, per-member reductions), so member ``k``'s numbers are those of training it
alone, up to floating-point rounding of batched kernels (about 1e-7 relative in float32).

Deviations from the single-network torch path (all numerical, none algorithmic):

- the products run as ``baddbmm`` instead of ``addmm``; the Adam and clipping formulas are the
  same but evaluated on ``(K,)`` tensors (bias corrections in float64, cast to the parameters'
  dtype), so results agree with torch's to rounding, not bit for bit;
- ``MemberAdam`` supports torch Adam's default options only (no ``amsgrad``, ``maximize``,
  ``capturable`` or decoupled weight decay); L2 ``weight_decay`` is supported as in torch.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from deepstock.core.checks import check_int

__all__ = [
    "BatchedLinear",
    "BatchedMLP",
    "MemberAdam",
    "MemberPlateau",
    "MemberRowsNetwork",
    "clip_grad_norm_per_member",
    "member_mask",
    "stack_hyperparameter",
]


def _member_view(values: Tensor, like: Tensor) -> Tensor:
    """``(K,)`` values reshaped to broadcast against a ``(K, ...)`` tensor."""
    return values.view(values.shape[0], *([1] * (like.dim() - 1)))


# ====================================================================== per-member scalars
def stack_hyperparameter(
    configs: Sequence[Mapping[str, Any]],
    key: str,
    *,
    dtype: torch.dtype = torch.float64,
    device: str | torch.device = "cpu",
) -> Tensor:
    """The value of ``key`` in each of K member configurations, as a ``(K,)`` tensor.

    Raises:
        ValueError: a configuration lacks ``key`` or its value is not a real number.
    """
    values = []
    for position, config in enumerate(configs):
        if key not in config:
            raise ValueError(f"member {position}'s configuration has no key {key!r}")
        value = config[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(
                f"member {position}'s configuration key {key!r} must be a number, got {value!r}"
            )
        values.append(float(value))
    return torch.tensor(values, dtype=dtype, device=device)


def member_mask(
    members: int, selected: int | Sequence[int] | Tensor, *, device: str | torch.device = "cpu"
) -> Tensor:
    """A ``(members,)`` bool mask from one index, a list of indices or a bool mask."""
    if isinstance(selected, Tensor) and selected.dtype == torch.bool:
        if selected.shape != (members,):
            raise ValueError(
                f"member mask must have shape ({members},), got {tuple(selected.shape)}"
            )
        return selected.to(device)
    mask = torch.zeros(members, dtype=torch.bool, device=device)
    index = torch.as_tensor(selected, dtype=torch.long, device=device).reshape(-1)
    if index.numel() and (int(index.min()) < 0 or int(index.max()) >= members):
        raise ValueError(f"member indices must lie in [0, {members}), got {index.tolist()}")
    mask[index] = True
    return mask


# ====================================================================== networks
class BatchedLinear(nn.Module):
    """K independent affine maps ``y_k = x_k W_k + b_k``.

    Args:
        members: K >= 1.
        in_features, out_features: widths, as in ``nn.Linear``.
        generator: when given, each member is initialised like ``nn.Linear`` (uniform in
            ``+-1/sqrt(in_features)`` for weights then bias, member after member) from it;
            without one, from torch's global generator.

    Attributes:
        weight: ``(K, in_features, out_features)`` (the transpose of ``nn.Linear.weight``).
        bias: ``(K, 1, out_features)``.
    """

    def __init__(
        self,
        members: int,
        in_features: int,
        out_features: int,
        *,
        generator: torch.Generator | None = None,
        dtype: torch.dtype = torch.float32,
        device: str | torch.device = "cpu",
    ) -> None:
        super().__init__()
        check_int("members", members, 1)
        check_int("in_features", in_features, 1)
        check_int("out_features", out_features, 1)
        self.members, self.in_features, self.out_features = members, in_features, out_features
        self.weight = nn.Parameter(
            torch.empty(members, in_features, out_features, dtype=dtype, device=device)
        )
        self.bias = nn.Parameter(torch.empty(members, 1, out_features, dtype=dtype, device=device))
        self.reset_parameters(generator)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """``nn.Linear``'s default initialization for every member (kaiming-uniform with
        ``a = sqrt(5)``, i.e. bound ``1/sqrt(fan_in)``, for weights and biases alike)."""
        bound = 1.0 / math.sqrt(self.in_features)
        with torch.no_grad():
            for k in range(self.members):
                # drawn in nn.Linear's (out, in) layout so the stream matches it member by member
                weight = torch.empty(self.out_features, self.in_features, dtype=self.weight.dtype)
                weight.uniform_(-bound, bound, generator=generator)
                bias = torch.empty(self.out_features, dtype=self.bias.dtype)
                bias.uniform_(-bound, bound, generator=generator)
                self.weight[k].copy_(weight.T)
                self.bias[k, 0].copy_(bias)

    def forward(self, inputs: Tensor) -> Tensor:
        """``(K, B, in_features) -> (K, B, out_features)``."""
        return torch.baddbmm(self.bias, inputs, self.weight)

    def load_member(self, k: int, layer: nn.Linear) -> None:
        """Copy an ``nn.Linear``'s weights into member ``k``."""
        if layer.weight.shape != (self.out_features, self.in_features):
            raise ValueError(
                f"layer has shape {tuple(layer.weight.shape)} (out, in), expected "
                f"({self.out_features}, {self.in_features})"
            )
        with torch.no_grad():
            self.weight[k].copy_(layer.weight.T)
            if layer.bias is None:
                self.bias[k].zero_()
            else:
                self.bias[k, 0].copy_(layer.bias)

    def member_layer(self, k: int) -> nn.Linear:
        """Member ``k`` as a fresh ``nn.Linear`` on the CPU (a copy, not a view)."""
        layer = nn.Linear(self.in_features, self.out_features, dtype=self.weight.dtype)
        with torch.no_grad():
            layer.weight.copy_(self.weight[k].detach().T.cpu())
            layer.bias.copy_(self.bias[k, 0].detach().cpu())
        return layer

    def extra_repr(self) -> str:
        return f"members={self.members}, in={self.in_features}, out={self.out_features}"


ActivationFactory = Callable[[], nn.Module]


def _make_activation(activation: ActivationFactory | nn.Module | None) -> nn.Module | None:
    if activation is None:
        return None
    if isinstance(activation, nn.Module):
        return copy.deepcopy(activation)
    return activation()


class BatchedMLP(nn.Module):
    """K MLPs of the same sizes: ``Linear -> act -> ... -> Linear [-> output_act]`` per member.

    Args:
        members: K >= 1.
        sizes: layer widths ``[in, hidden..., out]`` (at least two).
        activation: the hidden activation, a module (copied) or a zero-argument factory such as
            ``nn.ELU``; it must act elementwise (it sees ``(K, B, width)`` tensors).
        output_activation: applied after the last layer, or None.
        generator: initialises the layers in order (see :class:`BatchedLinear`).

    ``forward`` maps ``(K, B, sizes[0])`` to ``(K, B, sizes[-1])``.
    """

    def __init__(
        self,
        members: int,
        sizes: Sequence[int],
        activation: ActivationFactory | nn.Module,
        output_activation: ActivationFactory | nn.Module | None = None,
        *,
        generator: torch.Generator | None = None,
        dtype: torch.dtype = torch.float32,
        device: str | torch.device = "cpu",
    ) -> None:
        super().__init__()
        sizes = [int(size) for size in sizes]
        if len(sizes) < 2:
            raise ValueError(f"sizes must list at least an input and an output width, got {sizes}")
        self.members, self.sizes = members, sizes
        self._activation, self._output_activation = activation, output_activation
        self.layers = nn.ModuleList(
            BatchedLinear(members, a, b, generator=generator, dtype=dtype, device=device)
            for a, b in zip(sizes[:-1], sizes[1:], strict=True)
        )
        self.activation = _make_activation(activation)
        self.output_activation = _make_activation(output_activation)

    def forward(self, inputs: Tensor) -> Tensor:
        """``(K, B, sizes[0]) -> (K, B, sizes[-1])``."""
        out = inputs
        last = len(self.layers) - 1
        for position, layer in enumerate(self.layers):
            out = layer(out)
            if position < last:
                out = self.activation(out)
        if self.output_activation is not None:
            out = self.output_activation(out)
        return out

    def _linear_layers(self, module: nn.Module) -> list[nn.Linear]:
        linears = [m for m in module.modules() if isinstance(m, nn.Linear)]
        if len(linears) != len(self.layers):
            raise ValueError(
                f"module has {len(linears)} nn.Linear layers, the population's MLP has "
                f"{len(self.layers)} (sizes {self.sizes})"
            )
        return linears

    def load_member(self, k: int, module: nn.Module) -> None:
        """Copy the ``nn.Linear`` layers of ``module`` (in order) into member ``k``."""
        for batched, linear in zip(self.layers, self._linear_layers(module), strict=True):
            batched.load_member(k, linear)

    def member_module(self, k: int, parameters: Sequence[Tensor] | None = None) -> nn.Sequential:
        """Member ``k`` as an ordinary ``nn.Sequential`` on the CPU (copies of its weights).

        Args:
            k: the member.
            parameters: ``(K, ...)`` tensors in ``parameters()`` order to read member ``k``'s
                weights from instead of the live ones (e.g. kept best weights).
        """
        parts: list[nn.Module] = []
        last = len(self.layers) - 1
        for position, layer in enumerate(self.layers):
            parts.append(layer.member_layer(k))
            if position < last:
                parts.append(_make_activation(self._activation))
        if self._output_activation is not None:
            parts.append(_make_activation(self._output_activation))
        network = nn.Sequential(*parts)
        if parameters is not None:
            linears = [m for m in network if isinstance(m, nn.Linear)]
            values = list(parameters)
            if len(values) != 2 * len(linears):
                raise ValueError(
                    f"expected {2 * len(linears)} parameter tensors (weight, bias per layer), "
                    f"got {len(values)}"
                )
            with torch.no_grad():
                for linear, weight, bias in zip(linears, values[::2], values[1::2], strict=True):
                    linear.weight.copy_(weight[k].detach().T.cpu())
                    linear.bias.copy_(bias[k, 0].detach().cpu())
        return network

    def member_state(self, k: int) -> list[Tensor]:
        """Detached copies of member ``k``'s parameters (in ``parameters()`` order)."""
        return [p[k].detach().clone() for p in self.parameters()]

    def load_member_state(self, k: int, state: Sequence[Tensor]) -> None:
        """Write a :meth:`member_state` back into member ``k``."""
        with torch.no_grad():
            for param, value in zip(self.parameters(), state, strict=True):
                param[k].copy_(value)

    def subset(self, members: Sequence[int] | Tensor) -> BatchedMLP:
        """A new population holding copies of the listed members, in that order."""
        index = torch.as_tensor(members, dtype=torch.long)
        first = self.layers[0].weight
        result = BatchedMLP(
            int(index.numel()),
            self.sizes,
            self._activation,
            self._output_activation,
            dtype=first.dtype,
            device=first.device,
        )
        with torch.no_grad():
            for mine, theirs in zip(self.parameters(), result.parameters(), strict=True):
                theirs.copy_(mine[index.to(mine.device)])
        return result


class MemberRowsNetwork(nn.Module):
    """A :class:`BatchedMLP` seen as one ordinary network over member-major rows.

    ``forward`` takes ``(K * B, in)`` rows, the ``B`` rows of member 0 first, then member 1's,
    and so on, and returns ``(K * B, out)``: row ``k * B + i`` goes through member ``k``. This
    lets code written for one network of ``(batch, in) -> (batch, out)`` (the simulator's
    policies, :class:`deepstock.model.regularizations.NetworkPolicy`) drive a whole population
    at once, with each member acting on its own block of trajectories.
    """

    def __init__(self, mlp: BatchedMLP) -> None:
        super().__init__()
        self.mlp = mlp

    def forward(self, inputs: Tensor) -> Tensor:
        members = self.mlp.members
        if inputs.shape[0] % members:
            raise ValueError(
                f"{inputs.shape[0]} rows cannot be split into {members} equal member blocks"
            )
        out = self.mlp(inputs.reshape(members, -1, inputs.shape[-1]))
        return out.reshape(-1, out.shape[-1])


# ====================================================================== optimization
def clip_grad_norm_per_member(
    params: Iterable[Tensor], max_norm: Tensor | float, *, eps: float = 1e-6
) -> Tensor:
    """Per-member ``torch.nn.utils.clip_grad_norm_`` (2-norm) over ``(K, ...)`` parameters.

    Member ``k``'s gradients (the slices ``[k]`` of every parameter's ``.grad``) are scaled by
    ``min(1, max_norm[k] / (norm_k + 1e-6))`` where ``norm_k`` is their joint 2-norm, exactly
    torch's rule for one network. Parameters without a gradient are ignored, as in torch.

    Args:
        params: parameters whose leading axis is the member axis ``K``.
        max_norm: ``(K,)`` or a scalar, the largest allowed norm per member.

    Returns:
        ``(K,)`` the norms before clipping (non-finite for a member with non-finite gradients,
        whose gradients are then scaled by a non-finite factor, as torch does by default).
    """
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return torch.zeros(0)
    members = grads[0].shape[0]
    per_param = torch.stack(
        [torch.linalg.vector_norm(g.reshape(members, -1), 2, dim=1) for g in grads]
    )
    total = torch.linalg.vector_norm(per_param, 2, dim=0)
    max_norm = torch.as_tensor(max_norm, dtype=total.dtype, device=total.device)
    coef = torch.clamp(max_norm / (total + eps), max=1.0)
    for g in grads:
        g.mul_(_member_view(coef, g).to(g.dtype))
    return total


class MemberAdam:
    """Adam (``torch.optim.Adam`` semantics) over ``(K, ...)`` parameters, one Adam per member.

    Per member ``k``: its own learning rate ``lr[k]``, its own step count (bias corrections use
    it), and a switch: :meth:`step` updates only the members in ``active`` (default: all), so a
    stopped or skipped member keeps its weights, moments and step count. The update of an active
    member is torch's::

        g <- g + weight_decay * p                      (when weight_decay != 0)
        m <- beta1 m + (1 - beta1) g;  v <- beta2 v + (1 - beta2) g^2;  t <- t + 1
        p <- p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)

    Args:
        params: parameters sharing the leading member axis ``K``.
        lr: ``(K,)`` learning rates (kept as float64; a scalar is broadcast).
        betas, eps, weight_decay: as in torch (scalars shared by all members).
    """

    def __init__(
        self,
        params: Iterable[Tensor],
        lr: Tensor | float,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        self.params = list(params)
        if not self.params:
            raise ValueError("MemberAdam needs at least one parameter")
        self.members = self.params[0].shape[0]
        for p in self.params:
            if p.shape[0] != self.members:
                raise ValueError(
                    f"every parameter must have the member axis first with {self.members} "
                    f"members, got shape {tuple(p.shape)}"
                )
        device = self.params[0].device
        lr_tensor = torch.as_tensor(lr, dtype=torch.float64, device=device)
        self.lr = lr_tensor.expand(self.members).clone() if lr_tensor.dim() == 0 else lr_tensor
        if self.lr.shape != (self.members,):
            raise ValueError(
                f"lr must be a scalar or ({self.members},), got {tuple(self.lr.shape)}"
            )
        if not bool((self.lr >= 0).all()):
            raise ValueError(f"lr must be >= 0 for every member, got {self.lr.tolist()}")
        self.beta1, self.beta2 = float(betas[0]), float(betas[1])
        self.eps, self.weight_decay = float(eps), float(weight_decay)
        self.steps = torch.zeros(self.members, dtype=torch.float64, device=device)
        self.exp_avg = [
            torch.zeros_like(p, memory_format=torch.preserve_format) for p in self.params
        ]
        self.exp_avg_sq = [torch.zeros_like(p) for p in self.params]

    def set_lr(self, members: int | Sequence[int] | Tensor, value: Tensor | float) -> None:
        """Set the learning rate of the selected members (index, indices or bool mask)."""
        mask = member_mask(self.members, members, device=self.lr.device)
        value = torch.as_tensor(value, dtype=torch.float64, device=self.lr.device)
        self.lr = torch.where(mask, value, self.lr)

    def zero_grad(self) -> None:
        """Drop every gradient (``set_to_none=True`` semantics)."""
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self, active: Tensor | None = None) -> None:
        """One Adam step for the members in ``active`` (``(K,)`` bool; all when None)."""
        device = self.steps.device
        if active is None:
            active = torch.ones(self.members, dtype=torch.bool, device=device)
        new_steps = torch.where(active, self.steps + 1.0, self.steps)
        # inactive members may have t = 0: any positive t keeps the maths finite, and their
        # results are discarded below
        safe_steps = new_steps.clamp(min=1.0)
        bias_correction1 = 1.0 - self.beta1**safe_steps
        bias_correction2_sqrt = (1.0 - self.beta2**safe_steps).sqrt()
        step_size = self.lr / bias_correction1
        for index, p in enumerate(self.params):
            grad = p.grad
            if grad is None:
                continue
            if self.weight_decay != 0.0:
                grad = grad.add(p, alpha=self.weight_decay)
            mask = _member_view(active, p)
            exp_avg = self.exp_avg[index].lerp(grad, 1.0 - self.beta1)
            exp_avg_sq = (
                self.exp_avg_sq[index].mul(self.beta2).addcmul_(grad, grad, value=1.0 - self.beta2)
            )
            denom = (exp_avg_sq.sqrt() / _member_view(bias_correction2_sqrt, p).to(p.dtype)).add_(
                self.eps
            )
            update = exp_avg / denom * _member_view(step_size, p).to(p.dtype)
            p.copy_(torch.where(mask, p - update, p))
            self.exp_avg[index] = torch.where(mask, exp_avg, self.exp_avg[index])
            self.exp_avg_sq[index] = torch.where(mask, exp_avg_sq, self.exp_avg_sq[index])
        self.steps = new_steps

    def subset(self, members: Sequence[int] | Tensor, params: Iterable[Tensor]) -> MemberAdam:
        """An optimizer for a compacted population: the listed members' state, in that order,
        over ``params`` (the parameters of e.g. :meth:`BatchedMLP.subset` of the same members)."""
        index = torch.as_tensor(members, dtype=torch.long, device=self.steps.device)
        result = MemberAdam(
            params, self.lr[index], (self.beta1, self.beta2), self.eps, self.weight_decay
        )
        result.steps = self.steps[index].clone()
        result.exp_avg = [m[index.to(m.device)].clone() for m in self.exp_avg]
        result.exp_avg_sq = [v[index.to(v.device)].clone() for v in self.exp_avg_sq]
        return result


class MemberPlateau:
    """``torch.optim.lr_scheduler.ReduceLROnPlateau`` per member, over a :class:`MemberAdam`.

    Semantics of torch's scheduler with ``mode="min"``, ``threshold_mode="rel"``, ``cooldown=0``,
    ``min_lr=0``, ``eps=1e-8``: an epoch improves when ``metric < best * (1 - threshold)``;
    after more than ``patience`` epochs without improvement the learning rate is multiplied by
    ``factor`` (when that changes it by more than ``eps``) and the count restarts.

    Args:
        optimizer: the population's optimizer (its ``lr`` is changed in place).
        factor: ``(K,)`` per-member factors in (0, 1) (or a scalar).
        patience: ``(K,)`` per-member patience (or a scalar), epochs.
        threshold: relative improvement threshold (torch's default 1e-4).
    """

    def __init__(
        self,
        optimizer: MemberAdam,
        factor: Tensor | float,
        patience: Tensor | int,
        threshold: float = 1e-4,
        eps: float = 1e-8,
    ) -> None:
        self.optimizer = optimizer
        device, members = optimizer.lr.device, optimizer.members
        self.factor = torch.as_tensor(factor, dtype=torch.float64, device=device).expand(members)
        self.patience = torch.as_tensor(patience, dtype=torch.float64, device=device).expand(
            members
        )
        self.threshold, self.eps = float(threshold), float(eps)
        self.best = torch.full((members,), math.inf, dtype=torch.float64, device=device)
        self.bad_epochs = torch.zeros(members, dtype=torch.float64, device=device)

    def step(self, metrics: Tensor, active: Tensor | None = None) -> None:
        """One epoch's ``(K,)`` metrics (float64) for the members in ``active`` (all if None)."""
        metrics = metrics.to(torch.float64)
        if active is None:
            active = torch.ones_like(self.best, dtype=torch.bool)
        better = metrics < self.best * (1.0 - self.threshold)
        best = torch.where(better, metrics, self.best)
        bad = torch.where(better, torch.zeros_like(self.bad_epochs), self.bad_epochs + 1.0)
        reduce = bad > self.patience
        old_lr = self.optimizer.lr
        new_lr = torch.clamp(old_lr * self.factor, min=0.0)
        changed = reduce & (old_lr - new_lr > self.eps)
        bad = torch.where(reduce, torch.zeros_like(bad), bad)
        self.optimizer.lr = torch.where(active & changed, new_lr, old_lr)
        self.best = torch.where(active, best, self.best)
        self.bad_epochs = torch.where(active, bad, self.bad_epochs)

    def subset(self, members: Sequence[int] | Tensor, optimizer: MemberAdam) -> MemberPlateau:
        """The listed members' scheduler state over a compacted ``optimizer``."""
        index = torch.as_tensor(members, dtype=torch.long, device=self.best.device)
        result = MemberPlateau(
            optimizer, self.factor[index], self.patience[index], self.threshold, self.eps
        )
        result.best = self.best[index].clone()
        result.bad_epochs = self.bad_epochs[index].clone()
        return result
