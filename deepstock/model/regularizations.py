"""Policies as mappings: the four regularizations, network inputs and fixed heuristics (the book's *Policy regularizations* chapter).

A regularization turns the raw output ``f`` of a network into an order quantity. It does not
restrict the policy class, it reparameterizes it:

==========  ==========================================================  ====================
name        order ``q_t``                                               raw output size
==========  ==========================================================  ====================
``none``    ``clip(f, 0, M)``                                           1 (the order)
``base``    ``clip(f - IP_t, 0, M)``                                    1 (base-stock target)
``coeff``   ``clip(28 * sum_j clip(f_j, 0, 1) g_j + f_m, 0, M)``        m + 1
``both``    ``clip(28 * sum_j clip(f_j, 0, 1) g_j + f_m - IP_t, 0, M)`` m + 1
==========  ==========================================================  ====================

``M`` is ``max_replenish``, ``IP_t`` the inventory position, ``g`` the ``m`` demand features of
the dataset (``InventoryDataset.coeff_features``). As in the authors' code the ``m`` coefficients
are clipped to ``[0, 1]`` and the weighted sum is multiplied by 28 (a coefficient reads as a share
of 28 days of cover of a daily-rate feature); the last output ``f_m`` is an additive bias in units.

New regularizations plug in with :func:`register_regularization`. A plug-in defined in a module
of its own can be registered in every process, tuning workers and the command line included, by
naming the module in the environment variable ``DEEPSTOCK_PLUGINS`` (comma-separated module
names, imported when this module is first imported). Its source is part of the identity of its
stored runs (:func:`deepstock.results.fingerprints.regularization_fingerprint`), so editing a plug-in retrains its runs.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from deepstock.model.simulator import Observation

__all__ = [
    "BUILTIN_REGULARIZATIONS",
    "COVER_DAYS",
    "PLUGINS_VARIABLE",
    "REGULARIZATIONS",
    "NetworkPolicy",
    "Regularization",
    "get_regularization",
    "is_builtin",
    "network_input",
    "network_input_size",
    "pipeline_scale",
    "load_plugins",
    "register_regularization",
]

#: Days of cover that a Coeff coefficient of 1 buys (the authors' factor 28).
COVER_DAYS = 28.0


class Regularization:
    """A fixed mapping from a network's raw output to an order quantity.

    Subclasses set :attr:`name`, :attr:`normalized_inputs` and :attr:`uses_coeff_features`, and
    implement :meth:`output_size` and :meth:`order`.

    Attributes:
        name: registry key, lower case.
        tuning_like: the paper regularization (``"none"`` or ``"base"``) whose search-space
            entries this one borrows where the paper's spaces depend on the regularization (PPO's
            ``gae_lambda`` on AR(1) demand); see :func:`deepstock.tuning.spaces.search_space`.
        normalized_inputs: whether the network sees per-trajectory normalized inputs
            (features min-max scaled over time, pipeline divided by ``max_replenish``).
        uses_coeff_features: whether the mapping needs the dataset's demand features ``g(c)``.
    """

    name: str = ""
    tuning_like: str = "base"
    normalized_inputs: bool = False
    uses_coeff_features: bool = False

    def output_size(self, n_coeff_features: int) -> int:
        """Number of raw network outputs, given ``m`` demand features."""
        raise NotImplementedError

    def order(
        self, raw: Tensor, observation: Observation, coeff_values: Tensor, max_replenish: float
    ) -> Tensor:
        """Order quantities ``(batch,)`` from raw outputs ``(batch, output_size)``.

        ``coeff_values`` is ``(batch, m)``: the demand features ``g(c_t)`` in their own units.
        """
        raise NotImplementedError

    def action_bounds(self, max_replenish: float) -> tuple[float, float]:
        """Range ``(low, high)`` of each raw output as an RL action (the book's *Methods and tuning protocol* chapter)."""
        return (0.0, float(max_replenish))

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class NoRegularization(Regularization):
    """``None``: the network outputs the order itself."""

    name = "none"
    tuning_like = "none"

    def output_size(self, n_coeff_features: int) -> int:
        return 1

    def order(
        self, raw: Tensor, observation: Observation, coeff_values: Tensor, max_replenish: float
    ) -> Tensor:
        return raw[:, 0].clamp(0.0, max_replenish)


class BaseStockRegularization(Regularization):
    """``Base``: the network outputs a base-stock target for the inventory position."""

    name = "base"

    def output_size(self, n_coeff_features: int) -> int:
        return 1

    def order(
        self, raw: Tensor, observation: Observation, coeff_values: Tensor, max_replenish: float
    ) -> Tensor:
        target = raw[:, 0]
        return (target - observation.inventory_position.to(target.dtype)).clamp(0.0, max_replenish)


class CoeffRegularization(Regularization):
    """``Coeff``: the order is a non-negative combination of the SKU's demand features."""

    name = "coeff"
    normalized_inputs = True
    uses_coeff_features = True
    subtract_position = False

    def output_size(self, n_coeff_features: int) -> int:
        if n_coeff_features < 1:
            raise ValueError(
                f"regularization {self.name!r} needs demand features (coeff_features), the "
                "dataset has none"
            )
        return n_coeff_features + 1

    def action_bounds(self, max_replenish: float) -> tuple[float, float]:
        return (0.0, 1.0)

    def target(self, raw: Tensor, coeff_values: Tensor) -> Tensor:
        m = coeff_values.shape[1]
        weights = raw[:, :m].clamp(0.0, 1.0)
        cover = COVER_DAYS * (weights * coeff_values.to(raw.dtype)).sum(dim=1)
        return cover + raw[:, m]

    def order(
        self, raw: Tensor, observation: Observation, coeff_values: Tensor, max_replenish: float
    ) -> Tensor:
        level = self.target(raw, coeff_values)
        if self.subtract_position:
            level = level - observation.inventory_position.to(level.dtype)
        return level.clamp(0.0, max_replenish)


class BothRegularization(CoeffRegularization):
    """``Both``: the Coeff combination is a base-stock target for the inventory position."""

    name = "both"
    subtract_position = True


#: The registry of regularizations by name.
REGULARIZATIONS: dict[str, Regularization] = {}


def register_regularization(regularization: Regularization, *, overwrite: bool = False) -> None:
    """Make ``regularization`` available under its ``name`` to every method and experiment."""
    name = regularization.name
    if not name or name != name.lower():
        raise ValueError(f"a regularization needs a lower-case name, got {name!r}")
    if name in REGULARIZATIONS and not overwrite:
        raise ValueError(f"regularization {name!r} is already registered")
    REGULARIZATIONS[name] = regularization


for _reg in (
    NoRegularization(),
    BaseStockRegularization(),
    CoeffRegularization(),
    BothRegularization(),
):
    register_regularization(_reg)


#: The paper's four regularizations (the book's *Policy regularizations* chapter); every other registered one is a plug-in.
BUILTIN_REGULARIZATIONS: tuple[str, ...] = tuple(REGULARIZATIONS)
_BUILTIN_TYPES = {name: type(reg) for name, reg in REGULARIZATIONS.items()}

#: The environment variable naming plug-in modules to import (comma-separated).
PLUGINS_VARIABLE = "DEEPSTOCK_PLUGINS"


def load_plugins(modules: str | None = None) -> list[str]:
    """Import the plug-in modules named in ``modules`` (default: ``$DEEPSTOCK_PLUGINS``).

    A plug-in module registers its regularizations when imported. Returns the imported names.

    Raises:
        ImportError: a named module cannot be imported (the message names the variable).
    """
    text = os.environ.get(PLUGINS_VARIABLE, "") if modules is None else modules
    names = [name.strip() for name in text.split(",") if name.strip()]
    for name in names:
        try:
            importlib.import_module(name)
        except ImportError as error:
            raise ImportError(
                f"{PLUGINS_VARIABLE} names the module {name!r}, which cannot be imported "
                f"({error}); it must be importable from the Python path"
            ) from error
    return names


def is_builtin(regularization: str | Regularization) -> bool:
    """Whether ``regularization`` is one of the paper's four (None, Base, Coeff, Both) as this
    module defines them, not a plug-in (a plug-in may even reuse one of their names)."""
    reg = get_regularization(regularization)
    return type(reg) is _BUILTIN_TYPES.get(reg.name)


def get_regularization(name: str | Regularization) -> Regularization:
    """The registered regularization called ``name`` (case-insensitive)."""
    if isinstance(name, Regularization):
        return name
    key = str(name).lower()
    if key not in REGULARIZATIONS:
        raise ValueError(
            f"unknown regularization {name!r}; expected one of {sorted(REGULARIZATIONS)}"
        )
    return REGULARIZATIONS[key]


# ---------------------------------------------------------------------- network inputs
def network_input_size(n_features: int, pipeline_width: int) -> int:
    """Size of the network input ``[c_t, x_t]``: features then pipeline."""
    return n_features + pipeline_width


def network_input(
    observation: Observation,
    normalized: bool,
    max_replenish: float,
    eps: float = 1e-8,
    coeff_features: Sequence[int] = (),
) -> Tensor:
    """The network input ``(batch, F + Lmax + 1)`` for an observation (the book's *Policy regularizations* chapter).

    Raw ``[c_t, x_t]`` for None and Base. For Coeff and Both (``normalized=True``) the features are
    min-max normalized over the trajectory's horizon and the pipeline is divided by the order
    cap, so that one network serves SKUs of any magnitude. A static feature (constant over time in
    every trajectory: lead time, review period, sales class) is min-max normalized across the
    simulated trajectories instead (:class:`deepstock.model.simulator.Observation`); per SKU it would
    always be 0.

    The cap is ``max_replenish``, one number for the whole dataset. At Tmall each SKU has its own;
    here, when the dataset has demand features (``coeff_features``), each trajectory's pipeline
    is divided by its own cap: ``min(max_replenish, 28 * the largest value any demand feature
    takes over the horizon)``, 28 days of its peak demand rate (:data:`COVER_DAYS`). Otherwise a
    SKU selling one unit a day would see its pipeline divided by the cap of a SKU selling 1,000.
    """
    features = observation.features
    pipeline = observation.pipeline
    if normalized:
        span = observation.feature_max - observation.feature_min
        features = (features - observation.feature_min) / (span + eps)
        pipeline = pipeline / pipeline_scale(observation, max_replenish, coeff_features)[:, None]
    return torch.cat([features, pipeline], dim=1)


def pipeline_scale(
    observation: Observation, max_replenish: float, coeff_features: Sequence[int] = ()
) -> Tensor:
    """``(batch,)`` what a normalized input divides the pipeline by (see :func:`network_input`)."""
    cap = torch.full_like(observation.inventory_position, float(max_replenish))
    if len(coeff_features) == 0:
        return cap
    peak = observation.feature_max[:, list(coeff_features)].max(dim=1).values
    own = (COVER_DAYS * peak.to(cap.dtype)).clamp(min=1.0)
    return torch.minimum(cap, own)


class NetworkPolicy(nn.Module):
    """A network followed by a regularization: a :data:`deepstock.model.simulator.Policy`.

    Args:
        network: maps ``(batch, input_size)`` float32 inputs to ``(batch, output_size)`` raw outputs.
        regularization: the mapping (name or object).
        max_replenish: order cap, units.
        coeff_features: indices of the demand features ``g(c)`` in the feature axis.
    """

    def __init__(
        self,
        network: nn.Module,
        regularization: str | Regularization,
        max_replenish: float,
        coeff_features: Sequence[int] = (),
    ) -> None:
        super().__init__()
        self.network = network
        self.regularization = get_regularization(regularization)
        self.max_replenish = float(max_replenish)
        self.coeff_features = tuple(int(i) for i in coeff_features)
        # validates that the dataset has what the mapping needs
        self.output_size = self.regularization.output_size(len(self.coeff_features))

    def raw_output(self, observation: Observation) -> Tensor:
        inputs = network_input(
            observation,
            self.regularization.normalized_inputs,
            self.max_replenish,
            coeff_features=self.coeff_features,
        )
        param = next(self.network.parameters(), None)
        dtype = param.dtype if param is not None else torch.float32
        return self.network(inputs.to(dtype))

    def forward(self, observation: Observation) -> Tensor:
        raw = self.raw_output(observation)
        coeff_values = observation.features[:, list(self.coeff_features)]
        order = self.regularization.order(raw, observation, coeff_values, self.max_replenish)
        return order.to(observation.pipeline.dtype)


# ---------------------------------------------------------------------- heuristics
# Plug-in modules named in the environment register themselves now, in every process.
load_plugins()
