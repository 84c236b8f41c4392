"""One look for every figure of the book, and the figure helpers the chapters share.

:func:`set_theme` sets the seaborn theme once per notebook. The helpers take arrays (or a
:class:`~deepstock.model.simulator.Rollout`) and return a matplotlib ``Figure``; they never call
``plt.show()``, so that a notebook displays the figure once and tests can render headless (Agg).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from deepstock.model.regularizations import get_regularization
from deepstock.model.simulator import Observation, Rollout

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "SERIES_COLORS",
    "plot_proxy_tradeoff",
    "plot_regularization_orders",
    "plot_rollout_trajectory",
    "plot_trajectory",
    "regularization_order_curve",
    "set_theme",
]

_PALETTE = sns.color_palette("colorblind")

#: The colour of each quantity, the same in every figure.
SERIES_COLORS: dict[str, tuple[float, float, float]] = {
    "demand": _PALETTE[7],
    "order": _PALETTE[0],
    "end_inventory": _PALETTE[2],
    "inventory_position": _PALETTE[1],
    "target": _PALETTE[3],
    "none": _PALETTE[7],
    "base": _PALETTE[0],
    "coeff": _PALETTE[2],
    "both": _PALETTE[3],
}

_WARMUP_COLOR = "0.88"


def set_theme() -> None:
    """The book's seaborn theme: white grid, colourblind palette, readable sizes."""
    sns.set_theme(
        context="notebook",
        style="whitegrid",
        palette="colorblind",
        rc={
            "figure.dpi": 110,
            "savefig.dpi": 110,
            "figure.figsize": (8.0, 4.5),
            "axes.titlesize": "medium",
            "axes.titleweight": "bold",
            "legend.frameon": False,
            "legend.fontsize": "small",
        },
    )


def _as_1d(name: str, values: np.ndarray | torch.Tensor | Sequence[float]) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().numpy()
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"{name} must be one trajectory, shape (days,), got {array.shape}")
    return array


def _shade_warmup(ax: Axes, warmup: int, label: str | None) -> None:
    if warmup > 0:
        ax.axvspan(-0.5, warmup - 0.5, color=_WARMUP_COLOR, zorder=0, lw=0, label=label)


def plot_trajectory(
    demand: np.ndarray | torch.Tensor | Sequence[float],
    orders: np.ndarray | torch.Tensor | Sequence[float],
    end_inventory: np.ndarray | torch.Tensor | Sequence[float],
    inventory_position: np.ndarray | torch.Tensor | Sequence[float],
    warmup: int,
    *,
    target_levels: np.ndarray | torch.Tensor | Sequence[float] | None = None,
    title: str | None = None,
) -> Figure:
    """Plot one simulated trajectory, day by day, in two panels sharing the day axis.

    Top: demand ``D_t`` and orders ``q_t`` (bars). Bottom: the inventory position after the
    day's order ``IP_t + q_t`` (steps), the end-of-day inventory ``y_t`` (negative = backlog) and,
    if given, the base-stock levels the policy ordered up to. The warm-up days ``t < W`` are shaded.

    Args:
        demand, orders, end_inventory, inventory_position: ``(T,)`` each, units; the inventory
            position is the one at the start of the day, before ordering (as in
            :class:`~deepstock.model.simulator.Rollout`).
        warmup: ``W``, the number of uncounted days at the start.
        target_levels: ``(T,)`` base-stock levels in units, ``NaN`` or ``-inf`` on days without
            one; drawn as markers.
        title: the figure's title.
    """
    demand = _as_1d("demand", demand)
    orders = _as_1d("orders", orders)
    end_inventory = _as_1d("end_inventory", end_inventory)
    position = _as_1d("inventory_position", inventory_position)
    horizon = demand.shape[0]
    for name, values in (("orders", orders), ("end_inventory", end_inventory)):
        if values.shape[0] != horizon:
            raise ValueError(f"{name} has {values.shape[0]} days, demand has {horizon}")
    if position.shape[0] != horizon:
        raise ValueError(f"inventory_position has {position.shape[0]} days, demand has {horizon}")
    if not 0 <= warmup <= horizon:
        raise ValueError(f"warmup must be in [0, {horizon}], got {warmup}")
    days = np.arange(horizon)

    fig, (top, bottom) = plt.subplots(
        2, 1, sharex=True, figsize=(8.5, 6.2), height_ratios=(1, 1.4), layout="constrained"
    )
    _shade_warmup(top, warmup, "warm-up (loss not counted)")
    top.bar(days - 0.2, demand, width=0.4, color=SERIES_COLORS["demand"], label="demand $D_t$")
    top.bar(days + 0.2, orders, width=0.4, color=SERIES_COLORS["order"], label="order $q_t$")
    top.set_ylabel("units per day")
    # Legends sit outside the axes so that they never hide a bar or a line.
    top.legend(loc="lower left", bbox_to_anchor=(0.0, 1.0), ncols=3, borderaxespad=0.2)

    _shade_warmup(bottom, warmup, None)
    bottom.axhline(0.0, color="0.3", lw=0.8)
    bottom.step(
        days,
        position + orders,
        where="mid",
        color=SERIES_COLORS["inventory_position"],
        label="inventory position after ordering $IP_t + q_t$",
    )
    bottom.plot(
        days,
        end_inventory,
        marker="o",
        ms=3.5,
        color=SERIES_COLORS["end_inventory"],
        label="end-of-day inventory $y_t$ (< 0: backlog)",
    )
    if target_levels is not None:
        levels = _as_1d("target_levels", target_levels)
        if levels.shape[0] != horizon:
            raise ValueError(f"target_levels has {levels.shape[0]} days, demand has {horizon}")
        shown = np.isfinite(levels)
        bottom.plot(
            days[shown],
            levels[shown],
            ls="none",
            marker="_",
            ms=14,
            mew=2,
            color=SERIES_COLORS["target"],
            label="base-stock level $S_t$",
        )
    bottom.set_xlabel("day $t$")
    bottom.set_ylabel("units")
    bottom.set_xlim(-0.5, horizon - 0.5)
    bottom.legend(loc="upper left", bbox_to_anchor=(0.0, -0.22), ncols=2, borderaxespad=0.0)
    if title:
        fig.suptitle(title)
    return fig


def plot_rollout_trajectory(
    rollout: Rollout,
    demand: np.ndarray | torch.Tensor,
    row: int,
    *,
    target_levels: np.ndarray | torch.Tensor | Sequence[float] | None = None,
    title: str | None = None,
) -> Figure:
    """:func:`plot_trajectory` for row ``row`` of a simulated batch.

    Args:
        rollout: the simulation, ``(batch, T)`` tensors.
        demand: ``(batch, T)`` the simulated demands, units.
        row: which trajectory, ``0 <= row < batch``.
        target_levels: ``(T,)`` levels to mark, or ``None``.
        title: the figure's title.
    """
    batch = rollout.orders.shape[0]
    if not 0 <= row < batch:
        raise ValueError(f"row must be in [0, {batch}), got {row}")
    demand = torch.as_tensor(demand)
    if tuple(demand.shape) != tuple(rollout.orders.shape):
        raise ValueError(
            f"demand must have the rollout's shape {tuple(rollout.orders.shape)}, "
            f"got {tuple(demand.shape)}"
        )
    warmup = int((~rollout.counted[row]).sum())
    return plot_trajectory(
        demand[row],
        rollout.orders[row],
        rollout.end_inventory[row],
        rollout.inventory_position[row],
        warmup,
        target_levels=target_levels,
        title=title,
    )


def regularization_order_curve(
    regularization: str,
    raw_output: Sequence[float],
    inventory_position: np.ndarray | Sequence[float],
    max_replenish: float,
    coeff_values: Sequence[float] = (),
) -> np.ndarray:
    """The order a regularization makes of one fixed network output, for each inventory position.

    Runs the registered mapping itself (:func:`deepstock.model.regularizations.get_regularization`), so the
    curve is what the trained policies compute.

    Args:
        regularization: ``"none"``, ``"base"``, ``"coeff"``, ``"both"`` or any registered name.
        raw_output: the network's raw output, ``output_size`` numbers (1 for None and Base,
            ``m + 1`` for Coeff and Both: ``m`` coefficients then a bias in units).
        inventory_position: ``(k,)`` positions ``IP_t`` to evaluate at, units.
        max_replenish: the order cap ``M``, units.
        coeff_values: the ``m`` demand features ``g(c)`` (for Coeff and Both), units per day.

    Returns:
        ``(k,)`` orders in units.
    """
    mapping = get_regularization(regularization)
    positions = torch.as_tensor(np.asarray(inventory_position, dtype=np.float64))
    if positions.ndim != 1:
        raise ValueError(f"inventory_position must be (k,), got shape {tuple(positions.shape)}")
    coeff = torch.as_tensor(np.asarray(coeff_values, dtype=np.float64)).reshape(1, -1)
    expected = mapping.output_size(coeff.shape[1])
    raw = torch.as_tensor(np.asarray(raw_output, dtype=np.float64)).reshape(1, -1)
    if raw.shape[1] != expected:
        raise ValueError(
            f"regularization {mapping.name!r} with {coeff.shape[1]} demand features needs "
            f"{expected} raw outputs, got {raw.shape[1]}"
        )
    k = positions.shape[0]
    pipeline = positions.reshape(k, 1)
    empty = torch.zeros(k, 0, dtype=torch.float64)
    observation = Observation(
        day=0,
        pipeline=pipeline,
        inventory_position=positions,
        features=empty,
        feature_min=empty,
        feature_max=empty,
        index=torch.arange(k),
        order_day=torch.ones(k, dtype=torch.bool),
    )
    order = mapping.order(raw.expand(k, -1), observation, coeff.expand(k, -1), max_replenish)
    return order.detach().cpu().numpy()


def plot_regularization_orders(
    curves: Mapping[str, np.ndarray],
    inventory_position: np.ndarray,
    max_replenish: float,
    *,
    labels: Mapping[str, str] | None = None,
    ax: Axes | None = None,
) -> Figure:
    """Plot orders against the inventory position, one line per regularization.

    Args:
        curves: regularization name -> ``(k,)`` orders in units (from
            :func:`regularization_order_curve`).
        inventory_position: ``(k,)`` the positions, units.
        max_replenish: the cap ``M``, drawn as a dashed line.
        labels: legend text per name (default: the name).
        ax: axes to draw on (default: a new figure).
    """
    positions = _as_1d("inventory_position", inventory_position)
    if ax is None:
        fig, ax = plt.subplots(figsize=(8.5, 4.2), layout="constrained")
    else:
        fig = ax.figure
    styles = ["-", "--", "-.", ":"]
    for i, (name, orders) in enumerate(curves.items()):
        orders = _as_1d(f"curves[{name!r}]", orders)
        if orders.shape != positions.shape:
            raise ValueError(
                f"curves[{name!r}] has shape {orders.shape}, inventory_position {positions.shape}"
            )
        ax.plot(
            positions,
            orders,
            lw=2.2,
            ls=styles[i % len(styles)],
            color=SERIES_COLORS.get(name, None),
            label=(labels or {}).get(name, name),
        )
    ax.axhline(max_replenish, color="0.4", lw=1, ls=(0, (4, 3)))
    ax.annotate(
        f"cap $M = {max_replenish:g}$",
        (positions[-1], max_replenish),
        xytext=(0, -12),
        textcoords="offset points",
        ha="right",
        fontsize="small",
        color="0.3",
    )
    ax.set_xlabel("inventory position $IP_t$ (units)")
    ax.set_ylabel("order $q_t$ (units)")
    ax.set_ylim(-0.05 * max_replenish, 1.1 * max_replenish)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    return fig


def plot_proxy_tradeoff(results: pd.DataFrame, ax: Axes | None = None) -> Figure:
    """Test Stockout Rate against Turnover Time of every policy of the proxy comparison.

    Each (method, regularization) is a point, marker by method and colour by regularization; the
    incumbent is a black star. Dotted lines are levels of ``J = SR(%) + TT / 2``: a policy is
    better than another when it lies on a lower line, whatever the mix of SR and TT.

    Args:
        results: the ``results`` table of :func:`deepstock.paper.experiments.proxy_comparison`.
        ax: axes to draw on (a new figure when None).
    """
    needed = {"method", "regularization", "test_stockout_rate_pct", "test_turnover_days"}
    missing = sorted(needed - set(results.columns))
    if missing:
        raise ValueError(f"results lacks the column(s) {missing}")
    if ax is None:
        fig, ax = plt.subplots(figsize=(8.5, 4.6), layout="constrained")
    else:
        fig = ax.figure
    markers = {"ddpg": "o", "ppo": "s", "ds": "^"}
    names = {"ddpg": "DDPG", "ppo": "PPO", "ds": "DS"}
    regs = [r for r in ("none", "base", "coeff", "both") if r in set(results["regularization"])]
    regs += sorted(set(results["regularization"]) - set(regs) - {"forecast base stock"})
    # the book's colour of each regularization; plug-ins get the palette's remaining colours
    spare = iter(_PALETTE[4:7] + _PALETTE[8:])
    colors = {reg: SERIES_COLORS[reg] if reg in SERIES_COLORS else next(spare) for reg in regs}
    tt_max = max(float(results["test_turnover_days"].max()), 1.0) * 1.08
    sr_max = max(float(results["test_stockout_rate_pct"].max()), 1.0) * 1.08
    tt_grid = np.linspace(0.0, tt_max, 50)
    for level in np.linspace(0.0, sr_max + tt_max / 2, 9)[1:]:
        ax.plot(tt_grid, level - tt_grid / 2, ls=":", color="0.7", lw=0.8, zorder=0)
    for row in results.itertuples():
        if row.method == "incumbent":
            ax.plot(
                row.test_turnover_days,
                row.test_stockout_rate_pct,
                "*",
                color="black",
                ms=14,
                label="incumbent",
            )
            continue
        ax.plot(
            row.test_turnover_days,
            row.test_stockout_rate_pct,
            markers.get(row.method, "D"),
            color=colors[row.regularization],
            ms=8,
            mec="black",
            mew=0.5,
            label=f"{names.get(row.method, row.method)} {row.regularization.capitalize()}",
        )
    ax.set_xlim(0.0, tt_max)
    ax.set_ylim(0.0, sr_max)
    ax.set_xlabel("test Turnover Time TT (days)")
    ax.set_ylabel("test Stockout Rate SR (%)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, ncol=1)
    return fig
