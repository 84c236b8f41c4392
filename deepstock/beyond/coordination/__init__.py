"""Inventory and recommendation on two timescales: a small version of Jiang et al. (2025).

Our own model and agents (only a summary of the paper was available; every equation is a
modelling choice of this project, stated in :mod:`~deepstock.beyond.coordination.model`):

=============== ==========================================================================
module          job
=============== ==========================================================================
``model``       ``n`` products sharing one recommendation budget: exposure, purchase
                intention, demand, periodic review with lead time and lost sales, profit
``agents``      the recommendation and replenishment agents, the single agent, the
                rule-based pair, and the day loop that runs them
``training``    the multi-timescale method and its baselines, the coordination behaviours
``experiment``  the profiles, the stored runs, the comparison table and the claims
=============== ==========================================================================
"""

from __future__ import annotations

from deepstock.beyond.coordination.agents import (
    RuleBasedPair,
    SingleAgent,
    TwoAgentPolicy,
    simulate_joint,
)
from deepstock.beyond.coordination.experiment import (
    CLAIMS,
    COORDINATION_PROFILES,
    check_coordination_claims,
    claims_table,
    comparison_table,
    coordination_experiment,
    experiment_splits,
    run_coordination,
)
from deepstock.beyond.coordination.model import (
    JointInstances,
    JointModelConfig,
    advance_day,
    generate_instances,
)
from deepstock.beyond.coordination.training import (
    METHODS,
    TrainingConfig,
    coordination_behaviours,
    train_method,
)

__all__ = [
    "CLAIMS",
    "COORDINATION_PROFILES",
    "METHODS",
    "JointInstances",
    "JointModelConfig",
    "RuleBasedPair",
    "SingleAgent",
    "TrainingConfig",
    "TwoAgentPolicy",
    "advance_day",
    "check_coordination_claims",
    "claims_table",
    "comparison_table",
    "coordination_behaviours",
    "coordination_experiment",
    "experiment_splits",
    "generate_instances",
    "run_coordination",
    "simulate_joint",
    "train_method",
]
