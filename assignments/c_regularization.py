"""Assignment (c): a new regularization, the proportional order-up-to policy.

Finish the class below (replace each `raise NotImplementedError` under `# YOUR CODE HERE`),
then check it, from the project's root folder:

    python -m deepstock.course.assignments check regularization assignments/c_regularization.py

or run the check cell of the page "Assignment (c)" of the book, which also trains it next to
None and Base. The check registers the class itself; to use it elsewhere, register it once:
deepstock.model.regularizations.register_regularization(ProportionalBaseStock(), overwrite=True).

The proportional order-up-to (POUT) policy closes only a share beta of the gap between a
base-stock level S and the inventory position IP:

    q = clip(beta (S - IP), 0, M),    S = f_1,    beta = clip(f_2 / M, 0, 1),

where f = (f_1, f_2) is the network's raw output and M is max_replenish. beta = 1 gives Base;
a smaller beta smooths the orders.
"""

from __future__ import annotations

import torch

from deepstock.model.regularizations import Regularization
from deepstock.model.simulator import Observation


class ProportionalBaseStock(Regularization):
    """Proportional order-up-to: two raw outputs, the level S and the share beta (times M)."""

    name = "pout"  # the registry key: the methods, tuning and tables refer to it by this name
    tuning_like = "base"  # borrow Base's search space and published configuration

    def output_size(self, n_coeff_features: int) -> int:
        """How many raw outputs the network has (it does not depend on the demand features)."""
        # YOUR CODE HERE
        raise NotImplementedError

    def order(
        self,
        raw: torch.Tensor,
        observation: Observation,
        coeff_values: torch.Tensor,
        max_replenish: float,
    ) -> torch.Tensor:
        """Orders (batch,) from raw outputs (batch, 2).

        raw[:, 0] is S and raw[:, 1] is f_2 (both in units, within [0, M] when they come from
        an RL action); observation.inventory_position is IP, (batch,). Use torch operations
        (for example .clamp) so that DS can differentiate through the mapping.
        """
        # YOUR CODE HERE
        raise NotImplementedError
