"""Beyond the paper: systems that the source documents describe besides DeepStock.

This layer sits above ``methods`` beside ``paper``: it may use the core, the model, the
datasets, the methods, the results and tuning; nothing below imports it.

=================  =====================================================================
experiment         what it computes
=================  =====================================================================
``coordination``   inventory and recommendation on two timescales (Jiang et al., 2025):
                   the multi-timescale method against its baselines, with the claims
=================  =====================================================================
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from deepstock.beyond.coordination.experiment import coordination_experiment

__all__ = ["BEYOND_EXPERIMENTS"]

#: Experiment name -> function of ``(profile, *, device, store, n_seeds, progress)`` returning
#: named tables; the command line's ``deepstock run`` offers these next to the paper's.
BEYOND_EXPERIMENTS: dict[str, Callable[..., dict[str, pd.DataFrame]]] = {
    "coordination": coordination_experiment,
}
