"""Reference solution of assignment (c): the proportional order-up-to regularization.

Instructor's copy: not part of the book or the package. The self-check is
`python -m deepstock.course.assignments check regularization instructor/solutions/c_regularization.py`.
"""

from __future__ import annotations

import torch

from deepstock.model.regularizations import Regularization
from deepstock.model.simulator import Observation


class ProportionalBaseStock(Regularization):
    """q = clip(beta (S - IP), 0, M), S = f_1, beta = clip(f_2 / M, 0, 1)."""

    name = "pout"
    tuning_like = "base"

    def output_size(self, n_coeff_features: int) -> int:
        return 2

    def order(
        self,
        raw: torch.Tensor,
        observation: Observation,
        coeff_values: torch.Tensor,
        max_replenish: float,
    ) -> torch.Tensor:
        level = raw[:, 0]
        share = (raw[:, 1] / max_replenish).clamp(0.0, 1.0)
        gap = level - observation.inventory_position.to(level.dtype)
        return (share * gap).clamp(0.0, max_replenish)
