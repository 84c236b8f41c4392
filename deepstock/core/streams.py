"""Counter-based random streams: one independent stream per row, drawn for all rows at once.

A population trains many members side by side, and each member needs its own random numbers
(its trajectory draws, warm-up actions, replay samples, minibatch orders) that do not depend on
which other members share the population. A generator object per member would force a Python
loop per draw; a counter-based generator does not. Row ``r`` of a :class:`RowStreams` has a
64-bit key (from its seed and a stream number) and a counter; its ``j``-th number is
``splitmix64(key + (counter + j) * GOLDEN)``, the output function of Steele, Lea and Flood's
SplitMix64 (OOPSLA 2014), computed with int64 tensor arithmetic (wrapping, two's complement).
The numbers of a row depend only on its key and how many it has drawn, so they are the same
whatever the number of rows, their order, the device, or which rows were dropped by
:meth:`RowStreams.subset`.

These are not the streams of NumPy or torch: a population member draws other numbers than a
single run with the same seed, from the same distributions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

__all__ = ["RowStreams"]

_MASK64 = (1 << 64) - 1


def _signed(value: int) -> int:
    """The int64 with the same 64 bits as the unsigned ``value``."""
    value &= _MASK64
    return value - (1 << 64) if value >= 1 << 63 else value


_GOLDEN = _signed(0x9E3779B97F4A7C15)
_MIX1 = _signed(0xBF58476D1CE4E5B9)
_MIX2 = _signed(0x94D049BB133111EB)


def _shift_right(values: Tensor, bits: int) -> Tensor:
    """Logical (unsigned) right shift of int64 values."""
    return (values >> bits) & ((1 << (64 - bits)) - 1)


def _mix(values: Tensor) -> Tensor:
    """SplitMix64's output function on int64 tensors (a bijection of 64-bit words)."""
    values = (values ^ _shift_right(values, 30)) * _MIX1
    values = (values ^ _shift_right(values, 27)) * _MIX2
    return values ^ _shift_right(values, 31)


def _mix_int(value: int) -> int:
    """:func:`_mix` on one Python integer (for keys)."""
    value &= _MASK64
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & _MASK64
    return value ^ (value >> 31)


class RowStreams:
    """``R`` independent random streams, one per row, drawn together as ``(R, n)`` tensors.

    Args:
        seeds: ``R`` integer seeds, one per row.
        stream: a stream number (an int shared by all rows, or one per row), so that one seed
            gives several independent streams (for example trajectory draws and replay samples).
        device: where the counters live and the numbers are produced.
    """

    def __init__(
        self,
        seeds: Sequence[int],
        stream: int | Sequence[int] = 0,
        *,
        device: str | torch.device = "cpu",
    ) -> None:
        seeds = [int(s) for s in seeds]
        if not seeds:
            raise ValueError("RowStreams needs at least one seed")
        streams = (
            [int(stream)] * len(seeds) if isinstance(stream, int) else [int(s) for s in stream]
        )
        if len(streams) != len(seeds):
            raise ValueError(
                f"stream must be one int or one per seed ({len(seeds)}), got {len(streams)}"
            )
        keys = [
            _signed(_mix_int(_mix_int(seed) ^ _mix_int(0x5EED0000 + s)))
            for seed, s in zip(seeds, streams, strict=True)
        ]
        self.device = torch.device(device)
        self.keys = torch.tensor(keys, dtype=torch.int64, device=self.device)
        self.counters = torch.zeros(len(seeds), dtype=torch.int64, device=self.device)

    @property
    def rows(self) -> int:
        return int(self.keys.shape[0])

    def bits(self, n: int, rows: Tensor | None = None) -> Tensor:
        """``(R, n)`` int64 words: the next ``n`` numbers of every row, or ``(len(rows), n)``
        of the rows ``rows`` (int64 indices) only; only the rows drawn advance."""
        keys, counters = self.keys, self.counters
        if rows is not None:
            keys, counters = keys[rows], counters[rows]
        steps = counters[:, None] + torch.arange(n, dtype=torch.int64, device=self.device)
        if rows is None:
            self.counters = self.counters + n
        else:
            self.counters = self.counters.index_add(0, rows, torch.full_like(counters, n))
        return _mix(keys[:, None] + steps * _GOLDEN)

    def uniform(self, n: int, rows: Tensor | None = None) -> Tensor:
        """``(R, n)`` float64 uniform on ``[0, 1)`` (53 random bits each); ``rows`` as in
        :meth:`bits`."""
        return _shift_right(self.bits(n, rows), 11).to(torch.float64) * (2.0**-53)

    def integers(self, high: Tensor | int, n: int, rows: Tensor | None = None) -> Tensor:
        """``(R, n)`` int64 uniform on ``{0, ..., high_r - 1}``; ``high`` is an int or one
        value per drawn row (``>= 1``); ``rows`` as in :meth:`bits`. ``floor(u * high)``: the
        bias is below ``high / 2**53``."""
        high_t = torch.as_tensor(high, dtype=torch.float64, device=self.device)
        if high_t.dim() == 1:
            high_t = high_t[:, None]
        values = torch.floor(self.uniform(n, rows) * high_t).to(torch.int64)
        return torch.minimum(values, high_t.to(torch.int64) - 1)

    def normal(self, n: int, rows: Tensor | None = None) -> Tensor:
        """``(R, n)`` float64 standard normal (Box-Muller on ``2 n`` uniforms); ``rows`` as in
        :meth:`bits`."""
        u = self.uniform(2 * n, rows)
        radius = torch.sqrt(-2.0 * torch.log1p(-u[:, :n]))  # 1 - u in (0, 1]: finite
        return radius * torch.cos((2.0 * math.pi) * u[:, n:])

    def permutations(self, n: int, rows: Tensor | None = None) -> Tensor:
        """``(R, n)`` int64: an independent uniformly random permutation of ``0..n-1`` per row
        (the order of ``n`` uniform keys; ties have probability about ``n**2 / 2**54``)."""
        return torch.argsort(self.uniform(n, rows), dim=1, stable=True)

    def subset(self, rows: Tensor | Sequence[int]) -> RowStreams:
        """The streams of the listed rows (their keys and counters), in that order."""
        index = torch.as_tensor(rows, dtype=torch.int64, device=self.device)
        result = RowStreams.__new__(RowStreams)
        result.device = self.device
        result.keys = self.keys[index]
        result.counters = self.counters[index]
        return result
