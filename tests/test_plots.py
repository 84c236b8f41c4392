"""The book's theme and figure helpers, rendered headless (Agg)."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg", force=True)

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from deepstock.model.heuristics import StationaryBaseStock
from deepstock.model.simulator import InventorySimulator  # noqa: E402
from deepstock.paper.plots import (  # noqa: E402
    plot_regularization_orders,
    plot_rollout_trajectory,
    plot_trajectory,
    regularization_order_curve,
    set_theme,
)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _png_size(fig) -> int:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.tell()


def test_set_theme_sets_the_book_look() -> None:
    set_theme()
    assert matplotlib.rcParams["figure.dpi"] == 110
    assert matplotlib.rcParams["axes.grid"] is True
    assert matplotlib.rcParams["legend.frameon"] is False


def test_order_curves_follow_each_mapping() -> None:
    positions = np.array([-10.0, 0.0, 20.0, 49.0, 50.0, 80.0, 200.0])
    cap = 60.0
    none = regularization_order_curve("none", [70.0], positions, cap)
    np.testing.assert_allclose(none, np.full(positions.shape, 60.0))  # clipped at the cap
    base = regularization_order_curve("base", [50.0], positions, cap)
    np.testing.assert_allclose(base, np.clip(50.0 - positions, 0.0, cap))
    # Coeff: 28 * clip(w, 0, 1) * g + bias; a weight above 1 is clipped to 1.
    coeff = regularization_order_curve("coeff", [0.1, 2.0], positions, cap, coeff_values=[10.0])
    np.testing.assert_allclose(coeff, np.full(positions.shape, 30.0))
    both = regularization_order_curve("both", [1.5, 0.0], positions, cap, coeff_values=[1.0])
    np.testing.assert_allclose(both, np.clip(28.0 - positions, 0.0, cap))


def test_order_curve_rejects_wrong_output_size() -> None:
    with pytest.raises(ValueError, match="needs 2 raw outputs, got 1"):
        regularization_order_curve("coeff", [0.5], [0.0, 1.0], 100.0, coeff_values=[3.0])
    with pytest.raises(ValueError, match="needs 1 raw outputs, got 2"):
        regularization_order_curve("base", [1.0, 2.0], [0.0], 100.0)
    with pytest.raises(ValueError, match="unknown regularization"):
        regularization_order_curve("tanh", [1.0], [0.0], 100.0)


def test_regularization_figure_has_one_line_per_mapping() -> None:
    positions = np.linspace(-5.0, 120.0, 50)
    curves = {
        name: regularization_order_curve(name, [40.0], positions, 100.0)
        for name in ("none", "base")
    }
    fig = plot_regularization_orders(curves, positions, 100.0, labels={"base": "Base, S = 40"})
    ax = fig.axes[0]
    assert "inventory position" in ax.get_xlabel() and "(units)" in ax.get_xlabel()
    assert "order" in ax.get_ylabel() and "(units)" in ax.get_ylabel()
    legend = [text.get_text() for text in ax.get_legend().get_texts()]
    assert legend == ["none", "Base, S = 40"]
    np.testing.assert_allclose(ax.lines[1].get_ydata(), curves["base"])
    assert _png_size(fig) > 5_000
    with pytest.raises(ValueError, match="curves\\['none'\\] has shape"):
        plot_regularization_orders({"none": np.zeros(3)}, positions, 100.0)


def _small_rollout():
    demand = torch.tensor([[3.0, 4.0, 5.0, 2.0, 6.0, 4.0, 3.0, 5.0, 4.0, 4.0]] * 2)
    simulator = InventorySimulator(demand, 2, 1, max_replenish=50.0, device="cpu")
    return simulator, simulator.rollout(StationaryBaseStock(12.0))


def test_trajectory_figure_shows_the_simulated_series() -> None:
    simulator, rollout = _small_rollout()
    levels = np.full(10, -np.inf)
    levels[[2, 4, 6, 8]] = 12.0
    fig = plot_rollout_trajectory(rollout, simulator.demand, 1, target_levels=levels, title="t")
    top, bottom = fig.axes
    assert top.get_ylabel() == "units per day"
    assert bottom.get_ylabel() == "units" and bottom.get_xlabel() == "day $t$"
    # the warm-up band spans days 0 .. W-1 = 0 .. 2
    (band,) = bottom.patches
    assert band.get_x() == pytest.approx(-0.5) and band.get_width() == pytest.approx(3.0)
    lines = {line.get_label(): line for line in bottom.lines}
    end_line = next(line for label, line in lines.items() if label.startswith("end-of-day"))
    np.testing.assert_allclose(end_line.get_ydata(), rollout.end_inventory[1].numpy())
    target_line = next(line for label, line in lines.items() if label.startswith("base-stock"))
    np.testing.assert_allclose(target_line.get_ydata(), [12.0] * 4)
    order_bars = [p.get_height() for p in top.patches if p.get_width() == pytest.approx(0.4)]
    assert sum(order_bars) == pytest.approx(
        float(rollout.orders[1].sum() + simulator.demand[1].sum())
    )
    assert _png_size(fig) > 10_000


def test_trajectory_figure_rejects_mismatched_inputs() -> None:
    simulator, rollout = _small_rollout()
    with pytest.raises(ValueError, match="orders has 9 days, demand has 10"):
        plot_trajectory(np.ones(10), np.ones(9), np.ones(10), np.ones(10), 3)
    with pytest.raises(ValueError, match="warmup must be in"):
        plot_trajectory(np.ones(10), np.ones(10), np.ones(10), np.ones(10), 11)
    with pytest.raises(ValueError, match="one trajectory"):
        plot_trajectory(np.ones((2, 10)), np.ones(10), np.ones(10), np.ones(10), 3)
    with pytest.raises(ValueError, match="row must be in"):
        plot_rollout_trajectory(rollout, simulator.demand, 2)
    with pytest.raises(ValueError, match="demand must have the rollout's shape"):
        plot_rollout_trajectory(rollout, simulator.demand[:1], 0)


def test_styled_tables_carry_a_csv_download_of_their_full_numbers():
    import base64
    import re

    import pandas as pd

    from deepstock.paper.tables import DownloadableStyler, styled

    table = pd.DataFrame({"test loss": [1.23456789, 2.0]}, index=["DS None", "DS Base"])
    view = styled(table, csv_name="table6.csv").map(lambda _: "")  # chaining keeps the link
    assert isinstance(view, DownloadableStyler)
    page = view._repr_html_()
    assert "1.2346" in page and 'download="table6.csv"' in page
    payload = re.search(r"base64,([A-Za-z0-9+/=]+)", page).group(1)
    text = base64.b64decode(payload).decode("utf-8")
    assert pd.read_csv(io.StringIO(text), index_col=0).equals(table)  # not rounded
