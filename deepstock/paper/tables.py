"""The tables and budget lines the book's results chapters share.

The experiments (:mod:`deepstock.paper.experiments`) return tidy tables with our numbers next to the
paper's (``val_loss`` and ``paper_val_loss``...). These helpers turn them into the tables a
reader compares: one row per method (or per N and H), ours and the paper's side by side, and the
difference. They only rearrange and label; every number comes from the experiment tables.

:func:`budget_line` states the budget a page ran with, read from :mod:`deepstock.tuning.profiles` and
from the search spaces (the paper's training lengths), so a page can say how far its budget is
from the paper's.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
from pandas.io.formats.style import Styler

from deepstock.paper.reported import PAPER_BENCHMARK_LOSS
from deepstock.tuning.profiles import PROFILES, Profile, resolve_profile
from deepstock.tuning.spaces import search_space

__all__ = [
    "CAP_BINDING_WARNING",
    "DownloadableStyler",
    "METHOD_LABELS",
    "NOT_IN_PAPER",
    "REGULARIZATION_LABELS",
    "benchmarks_table",
    "budget_line",
    "cap_binding_note",
    "cap_binding_table",
    "download_link",
    "method_label",
    "model_change_note",
    "paper_training_lengths",
    "proxy_table",
    "setting4_table",
    "settings_table",
    "styled",
    "training_lengths",
]

METHOD_LABELS = {"ddpg": "DDPG", "ppo": "PPO", "ds": "DS", "dqn": "DQN"}

#: Appended to the row label of a pair the paper did not run (DQN).
NOT_IN_PAPER = " (not in the paper)"
REGULARIZATION_LABELS = {"none": "None", "base": "Base", "coeff": "Coeff", "both": "Both"}

_METRICS = (
    ("val_loss", "validation loss"),
    ("val_gap_pct", "validation gap (%)"),
    ("test_loss", "test loss"),
    ("test_gap_pct", "test gap (%)"),
)


def method_label(method: str, regularization: str) -> str:
    """``"DDPG Base"`` for ``("ddpg", "base")``."""
    return f"{METHOD_LABELS.get(method, method)} {REGULARIZATION_LABELS.get(regularization, regularization)}"


def _require(table: pd.DataFrame, name: str, columns: Sequence[str]) -> None:
    if not isinstance(table, pd.DataFrame):
        raise ValueError(f"{name} must be a pandas DataFrame, got {type(table)}")
    missing = [column for column in columns if column not in table.columns]
    if missing:
        raise ValueError(f"{name} lacks the column(s) {missing} (has {list(table.columns)})")


def _side_by_side(rows: pd.DataFrame, metrics: Sequence[tuple[str, str]]) -> pd.DataFrame:
    """Columns (metric, "ours"), (metric, "paper") for each metric, then the test-gap
    difference ours - paper in points."""
    data = {}
    for key, label in metrics:
        data[(label, "ours")] = rows[key].to_numpy(dtype=float)
        if f"{key}_se" in rows.columns:  # the spread of ours, beside it
            data[(label, "± se")] = rows[f"{key}_se"].to_numpy(dtype=float)
        data[(label, "paper")] = rows[f"paper_{key}"].to_numpy(dtype=float)
    data[("test gap (%)", "ours − paper")] = rows["test_gap_pct"].to_numpy(dtype=float) - rows[
        "paper_test_gap_pct"
    ].to_numpy(dtype=float)
    table = pd.DataFrame(data, index=rows.index)
    table.columns = pd.MultiIndex.from_tuples(table.columns)
    return table


def settings_table(results: pd.DataFrame, setting: str) -> pd.DataFrame:
    """One setting's Table 6, 7 or 8: ours and the paper's, side by side.

    Args:
        results: ``results`` of :func:`deepstock.paper.experiments.settings_comparison`.
        setting: ``"setting1"``, ``"setting2"`` or ``"setting3"``.

    Returns:
        One row per method and regularization (index ``"DDPG None"``...), columns
        ``(metric, "ours" | "paper")`` for the validation and test loss and gap, with
        ``(metric, "± se")`` beside the losses when ``results`` has ``val_loss_se`` and
        ``test_loss_se`` (the standard error of ours), and ``("test gap (%)", "ours − paper")``
        in percentage points. A row with ``in_paper``
        False (DQN) is labelled ``"DQN None (not in the paper)"``; its paper columns are NaN.
    """
    columns = ["setting", "method", "regularization"]
    for key, _ in _METRICS:
        columns += [key, f"paper_{key}"]
    _require(results, "results", columns)
    rows = results[results["setting"] == setting]
    if rows.empty:
        known = sorted(results["setting"].unique())
        raise ValueError(f"setting {setting!r} is not in the results (they have {known})")
    in_paper = rows["in_paper"] if "in_paper" in rows.columns else [True] * len(rows)
    rows = rows.set_index(
        pd.Index(
            [
                method_label(m, r) + ("" if known else NOT_IN_PAPER)
                for m, r, known in zip(
                    rows["method"], rows["regularization"], in_paper, strict=True
                )
            ],
            name="method",
        )
    )
    return _side_by_side(rows, _METRICS)


def setting4_table(results: pd.DataFrame) -> pd.DataFrame:
    """Table 9: DS with Base per (N, H), ours and the paper's side by side.

    Args:
        results: ``results`` of :func:`deepstock.paper.experiments.setting4`.

    Returns:
        Index (``N``, ``H``); columns ``(metric, "ours" | "paper")`` for the benchmark's test
        loss and DS's validation and test loss and gap, and the test-gap difference in points.
        A (N, H) the paper did not report has missing paper values.
    """
    metrics = (("benchmark_test_loss", "benchmark test loss"), *_METRICS)
    columns = ["n_skus", "horizon_periods", *(key for key, _ in metrics)]
    _require(results, "setting4 results", columns)
    rows = results.copy()
    for key, _ in metrics:
        if f"paper_{key}" not in rows.columns:
            rows[f"paper_{key}"] = float("nan")
    rows = rows.sort_values(["n_skus", "horizon_periods"])
    rows.index = pd.MultiIndex.from_arrays(
        [rows["n_skus"].astype(int), rows["horizon_periods"].astype(int)], names=["N", "H"]
    )
    return _side_by_side(rows, metrics)


def benchmarks_table(benchmarks: pd.DataFrame) -> pd.DataFrame:
    """The benchmark policies of settings 1-3 with the paper's implied loss.

    Args:
        benchmarks: ``benchmarks`` of :func:`deepstock.paper.experiments.settings_comparison`
            (``setting``, ``policy``, ``val_loss``, ``test_loss``, ``primary``).

    Returns:
        Index (setting, benchmark); columns ``gaps measured against`` (``"yes"`` for the
        primary benchmark), ``validation loss``, ``test loss`` and
        ``paper's test loss`` (the loss its gaps imply: the authors' DP in setting 1, DS on the
        test trajectories in settings 2-3; missing for the other rows).
    """

    _require(benchmarks, "benchmarks", ["setting", "policy", "val_loss", "test_loss", "primary"])
    paper_policy = {
        "setting1": "dp_empirical",
        "setting2": "ds_on_split",
        "setting3": "ds_on_split",
    }
    rows = []
    for _, row in benchmarks.iterrows():
        setting, policy = row["setting"], row["policy"]
        matches = paper_policy.get(setting) == policy
        rows.append(
            {
                "setting": setting.replace("setting", "setting "),
                "benchmark": policy,
                "gaps measured against": "yes" if bool(row["primary"]) else "no",
                "validation loss": float(row["val_loss"]),
                "test loss": float(row["test_loss"]),
                "paper's test loss": PAPER_BENCHMARK_LOSS[setting] if matches else float("nan"),
            }
        )
    return pd.DataFrame(rows).set_index(["setting", "benchmark"])


def proxy_table(results: pd.DataFrame) -> pd.DataFrame:
    """The proxy comparison in the layout of the paper's Table 1, on the test SKUs.

    One row per (method, regularization), the incumbent first: Stockout Rate (%), Turnover Time
    (days) and ``J``; their differences from the incumbent's (``ΔSR``, ``ΔTT``; Table 1 appears
    to report such differences for Turnover Time); the gap of ``J`` to the incumbent's (%);
    validation ``J``; and the training time of the pair's tuning (minutes, every run summed).

    Args:
        results: the ``results`` table of :func:`deepstock.paper.experiments.proxy_comparison`.
    """
    columns = [
        "method",
        "regularization",
        "test_stockout_rate_pct",
        "test_turnover_days",
        "test_objective",
        "val_objective",
        "test_gap_pct",
        "train_time_s",
    ]
    _require(results, "results", columns)
    incumbent = results[results["method"] == "incumbent"]
    if len(incumbent) != 1:
        raise ValueError("results must hold exactly one incumbent row (method 'incumbent')")
    reference = incumbent.iloc[0]
    labels = [
        "incumbent (forecast base stock)"
        if row.method == "incumbent"
        else method_label(row.method, row.regularization)
        for row in results.itertuples()
    ]
    table = pd.DataFrame(
        {
            "SR (%)": results["test_stockout_rate_pct"].to_numpy(dtype=float),
            "TT (days)": results["test_turnover_days"].to_numpy(dtype=float),
            "J": results["test_objective"].to_numpy(dtype=float),
            "ΔSR (points)": (
                results["test_stockout_rate_pct"] - reference["test_stockout_rate_pct"]
            ).to_numpy(dtype=float),
            "ΔTT (days)": (
                results["test_turnover_days"] - reference["test_turnover_days"]
            ).to_numpy(dtype=float),
            "J gap (%)": results["test_gap_pct"].to_numpy(dtype=float),
            "val. J": results["val_objective"].to_numpy(dtype=float),
            "tuning (min)": results["train_time_s"].to_numpy(dtype=float) / 60.0,
        },
        index=pd.Index(labels, name="policy"),
    )
    return table


class DownloadableStyler(Styler):
    """A pandas ``Styler`` whose HTML ends with a link that downloads the table as CSV.

    The CSV holds the table's own numbers at full precision (not the rounded display) and is
    embedded in the link itself (a ``data:`` URL), so a page needs no file beside it and works
    offline. ``csv_name`` is the file name the browser proposes.
    """

    csv_name: str = "table.csv"

    def _repr_html_(self) -> str:
        return (super()._repr_html_() or "") + download_link(self.data, self.csv_name)


def download_link(table: pd.DataFrame, name: str = "table.csv") -> str:
    """An HTML link that downloads ``table`` (index included) as the CSV file ``name``."""
    payload = base64.b64encode(table.to_csv().encode("utf-8")).decode("ascii")
    label = html.escape(name)
    return (
        f'<p class="deepstock-download"><a download="{label}" '
        f'href="data:text/csv;charset=utf-8;base64,{payload}">Download this table ({label})</a></p>'
    )


def styled(
    table: pd.DataFrame,
    *,
    loss_digits: int = 4,
    gap_digits: int = 2,
    digits: Mapping[Any, int] | None = None,
    csv_name: str = "table.csv",
) -> Any:
    """The table as a pandas ``Styler`` with the book's precision, for display.

    A column whose label (any level) mentions a loss gets ``loss_digits`` decimals, one that
    mentions a gap or a percentage ``gap_digits``; a difference column (``"ours − paper"``) is
    signed. ``digits`` sets the decimals of named columns. Missing values show as a dash. Other
    float columns get ``loss_digits`` decimals. Below the table, a link downloads it as the CSV
    file ``csv_name`` (:class:`DownloadableStyler`).
    """
    if not isinstance(table, pd.DataFrame):
        raise ValueError(f"table must be a pandas DataFrame, got {type(table)}")
    formats = {}
    for column in table.columns:
        if not pd.api.types.is_float_dtype(table[column]):
            continue
        words = " ".join(column) if isinstance(column, tuple) else str(column)
        places = gap_digits if ("gap" in words or "%" in words) else loss_digits
        places = (digits or {}).get(column, places)
        sign = "+" if "−" in words else ""
        formats[column] = f"{{:{sign}.{places}f}}"
    # the class gives the Styler's table the book's dataframe look; row labels stay on one line
    styler = DownloadableStyler(table)
    styler.csv_name = csv_name
    styler = styler.format(formats, na_rep="–").set_table_attributes('class="dataframe"')
    return styler.set_table_styles(
        [{"selector": "th.row_heading", "props": [("white-space", "nowrap")]}], overwrite=False
    )


# ---------------------------------------------------------------------- budgets
def _training_text(method: str, overrides: dict) -> str:
    parts = []
    for key, value in overrides.items():
        shown = f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else value
        parts.append(f"{key.replace('_', ' ')} {shown}")
    return f"{METHOD_LABELS[method]}: " + ", ".join(parts)


def paper_training_lengths() -> dict[str, dict[str, int]]:
    """The paper's training lengths per method, read from the setting-1 search spaces:
    ``{"ddpg": {"total_steps": 200000, "patience": 10}, ..., "ds": {"epochs": 3000, ...}}``."""

    keys = {"ddpg": ("total_steps", "patience"), "ppo": ("total_steps", "patience")}
    keys["ds"] = ("epochs", "patience")
    lengths = {}
    for method, names in keys.items():
        fixed = search_space(method, "base", "setting1").fixed
        lengths[method] = {name: int(fixed[name]) for name in names if name in fixed}
    return lengths


def training_lengths(profile: str | Profile) -> dict[str, dict]:
    """What a profile fixes about training, per method (the paper's lengths when it fixes
    nothing for a method)."""
    budget = resolve_profile(profile)
    paper = paper_training_lengths()
    return {
        method: (budget.training_overrides(method) or dict(paper[method]))
        for method in ("ddpg", "ppo", "ds")
    }


def budget_line(profile: str | Profile) -> str:
    """One Markdown line: the profile's tuning budget and training lengths, and the paper's.

    For example ``"**Budget (profile `quick`):** 8 stage-1 trials, the best 2 re-run with 2
    seeds each, 1 repeat; DDPG: total steps 10,000, patience 5; ... **The paper:** 50 trials,
    the best 5 with 5 seeds each, 3 repeats; ..."``.
    """
    budget = resolve_profile(profile)
    paper = PROFILES["paper"]

    def tuning(p: Profile) -> str:
        repeats = "1 repeat" if p.repeats == 1 else f"{p.repeats} repeats averaged"
        return (
            f"{p.n_trials} stage-1 trials, the best {p.top_k} re-run with {p.n_seeds} "
            f"seed{'s' if p.n_seeds != 1 else ''} each, {repeats}"
        )

    ours = "; ".join(_training_text(m, o) for m, o in training_lengths(budget).items())
    theirs = "; ".join(_training_text(m, o) for m, o in paper_training_lengths().items())
    if budget.name == "paper":
        return f"**Budget (profile `paper`, the paper's protocol):** {tuning(budget)}; {ours}."
    return (
        f"**Budget (profile `{budget.name}`):** {tuning(budget)}; {ours}. "
        f"**The paper:** {tuning(paper)}; {theirs}."
    )


# ------------------------------------------------------------------ changed models, the cap
#: A cap "binds often" above this share of order days: the pages then warn.
CAP_BINDING_WARNING = 0.05


def model_change_note(
    model: Mapping[str, Any], paper_model: str, *, benchmark_note: str = ""
) -> str:
    """A Markdown warning (a quoted paragraph: notebook outputs are CommonMark, without
    MyST's directives) for a page run under changed problem constants; ``""`` when none.

    Args:
        model: the changes (:attr:`deepstock.paper.experiments.ExperimentContext.model`).
        paper_model: the paper's constants in words, for example ``"backlog, h = 0.1, ..."``.
        benchmark_note: a sentence on what the change does to the page's benchmark.
    """
    if not model:
        return ""
    changes = ", ".join(f"`{name} = {value}`" for name, value in model.items())
    text = (
        f"This page ran on the paper's demand with {changes}, not the paper's model. Every "
        "number of ours is for that model; the paper's numbers beside them are for its own "
        f"({paper_model}), so their differences measure the change as much as the methods."
    )
    if benchmark_note:
        text += " " + benchmark_note
    return f"> **Warning.** {text}"


def cap_binding_table(policies: pd.DataFrame, *, columns: str = "setting") -> pd.DataFrame:
    """Share of test order days (%) on which each policy orders the cap.

    ``policies`` has ``policy`` (a label), ``test_cap_binding_rate`` (a fraction, NaN when not
    recorded) and the column named by ``columns``; one row per policy, one column per value
    of ``columns``, in order of appearance.
    """
    _require(policies, "policies", ["policy", "test_cap_binding_rate", columns])
    table = policies.pivot_table(
        index="policy", columns=columns, values="test_cap_binding_rate", sort=False, dropna=False
    ).mul(100.0)
    table.columns = [f"{value} (% of order days)" for value in table.columns]
    return table.round(2)


def cap_binding_note(
    policies: pd.DataFrame, *, where: str = "setting", threshold: float = CAP_BINDING_WARNING
) -> str:
    """Markdown: a warning naming each policy (and ``where`` value) whose cap-binding share
    exceeds ``threshold``, or one line saying that none does (among those that recorded it)."""
    _require(policies, "policies", ["policy", "test_cap_binding_rate", where])
    rates = policies["test_cap_binding_rate"].astype(float)
    binding = policies[rates > threshold]
    if len(binding):
        listed = "; ".join(
            f"{row['policy']} in {row[where]} ({100 * row['test_cap_binding_rate']:.1f} %)"
            for _, row in binding.iterrows()
        )
        return (
            f"> **Warning.** The order cap binds on more than {threshold:.0%} of the test order "
            f"days for: {listed}. Read their losses as losses under a binding cap."
        )
    return (
        f"The order cap binds on at most {threshold:.0%} of the test order days for every "
        f"policy that recorded it ({int(rates.notna().sum())} of {len(policies)})."
    )
