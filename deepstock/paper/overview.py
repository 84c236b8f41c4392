"""The paper at a glance: one row per table and figure of the paper, with how close we come.

:func:`paper_overview` lists every table and figure of the paper with the book page that
re-runs it (or quotes it) and one line computed from the stored results: the experiments of
:mod:`deepstock.paper.experiments` run stored-only, so that nothing trains and every number
comes from the result store of the context's profile. An experiment whose runs the store does
not hold gives a row that says "not computed" instead of an error. The paper's own numbers come
from :mod:`deepstock.paper.reported`; nothing here is typed in.

:func:`overview_markdown` renders the table as MyST Markdown (the book pages as cross references)
followed by a link that downloads it as CSV.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from deepstock.paper import experiments
from deepstock.paper.experiments import ExperimentContext
from deepstock.paper.reported import PAPER_BENCHMARK_LOSS, paper_settings_table
from deepstock.paper.tables import (
    METHOD_LABELS,
    download_link,
    method_label,
    paper_training_lengths,
    training_lengths,
)
from deepstock.paper.verdict import check_base_improves_test_loss
from deepstock.results.store import MissingRunError
from deepstock.tuning.profiles import PROFILES

__all__ = [
    "NOT_COMPUTED",
    "OVERVIEW_COLUMNS",
    "OVERVIEW_ITEMS",
    "OverviewItem",
    "overview_markdown",
    "paper_overview",
]

#: How a row whose experiment the store lacks begins its ``how close``.
NOT_COMPUTED = "not computed"

#: The columns of :func:`paper_overview`.
OVERVIEW_COLUMNS: tuple[str, ...] = ("item", "what", "book page", "how close")


@dataclass(frozen=True)
class OverviewItem:
    """One table or figure of the paper.

    Attributes:
        item: its name in the paper (``"Table 6"``).
        what: what it shows, in one line.
        pages: the labels of the book pages that re-run or quote it (``("settings",)``).
        experiment: the experiment of :data:`deepstock.paper.experiments.EXPERIMENTS` whose
            stored results the row reads (``None``: none, the row needs no results).
    """

    item: str
    what: str
    pages: tuple[str, ...]
    experiment: str | None


#: Every table and figure of the paper, in the order of the book's chapters.
OVERVIEW_ITEMS: tuple[OverviewItem, ...] = (
    OverviewItem(
        "Tables 3-5",
        "Search spaces of DDPG, PPO and DS (the tuning's input, not a result)",
        ("methods",),
        None,
    ),
    OverviewItem(
        "Figure 1",
        "Validation and test loss gaps of DDPG, PPO and DS with None and Base, settings 1-3",
        ("settings",),
        "settings",
    ),
    OverviewItem(
        "Table 6",
        "Setting 1 (independent demand): losses and gaps of the six pairs",
        ("settings",),
        "settings",
    ),
    OverviewItem(
        "Table 7",
        "Setting 2 (AR(1) demand, 10 training SKUs): losses and gaps of the six pairs",
        ("settings",),
        "settings",
    ),
    OverviewItem(
        "Table 8",
        "Setting 3 (AR(1) demand, 5 training SKUs): losses and gaps of the six pairs",
        ("settings",),
        "settings",
    ),
    OverviewItem(
        "Figure 2",
        "Setting 1: best validation loss against the number of trials; trials to beat DS",
        ("tuning",),
        "figure2",
    ),
    OverviewItem(
        "Figure 3",
        "Setting 1, DDPG None and Base: critic loss and replay-buffer states, first steps",
        ("critic",),
        "figure3",
    ),
    OverviewItem(
        "Figure 4",
        "Setting 4, DS Base: test gap against the horizon H, one curve per N",
        ("setting4",),
        "setting4",
    ),
    OverviewItem(
        "Table 9",
        "Setting 4, DS Base, N in {5, 10, 20} x H in {2, 8, 16, 32, 64}: losses and gaps",
        ("setting4",),
        "setting4",
    ),
    OverviewItem(
        "Table 1",
        "Tmall offline test: stockout rate and turnover time of DDPG and DS variants",
        ("tmall", "proxy"),
        "proxy",
    ),
    OverviewItem(
        "Table 2",
        "Tmall rollout (April 2025): change in turnover time by sales class",
        ("tmall",),
        None,
    ),
    OverviewItem(
        "Figure 5",
        "Tmall, summer 2025: turnover time of the international SKUs against the year before",
        ("tmall",),
        None,
    ),
)

_SETTING_OF_TABLE = {"Table 6": "setting1", "Table 7": "setting2", "Table 8": "setting3"}

#: The order of Figure 2's counts in the paper's text.
_FIGURE2_ORDER = (("ddpg", "none"), ("ppo", "none"), ("ddpg", "base"), ("ppo", "base"))

_TMALL_ONLY = "not re-runnable (private deployment data); quoted as reported"


# ------------------------------------------------------------------ number formats
def _num(value: float, digits: int = 2) -> str:
    """``value`` with ``digits`` decimals, ``"–"`` when missing."""
    value = float(value)
    return "–" if math.isnan(value) else f"{value:.{digits}f}"


def _signed(value: float, digits: int = 2) -> str:
    value = float(value)
    return "–" if math.isnan(value) else f"{value:+.{digits}f}"


def _median_abs(ours: pd.Series, paper: pd.Series) -> float:
    """Median over the rows of ``|ours - paper|`` (NaN rows left out; NaN when none is left)."""
    difference = (ours.astype(float) - paper.astype(float)).abs().dropna()
    return float(difference.median()) if len(difference) else float("nan")


# ------------------------------------------------------------------ one line per item
def _search_spaces_line(context: ExperimentContext) -> str:
    profile = context.resolved_profile
    ours, paper = training_lengths(profile), paper_training_lengths()
    lengths = []
    for method in ("ddpg", "ppo", "ds"):
        key = "epochs" if method == "ds" else "total_steps"
        unit = "epochs" if method == "ds" else "steps"
        lengths.append(
            f"{METHOD_LABELS[method]} {int(ours[method][key]):,} of {paper[method][key]:,} {unit}"
        )
    return (
        f"the paper's spaces, searched as published; profile `{profile.name}` trains "
        + ", ".join(lengths)
        + f", with {profile.n_trials} of the paper's {PROFILES['paper'].n_trials} trials"
    )


def _figure1_line(tables: Mapping[str, pd.DataFrame]) -> str:
    results = tables["results"]
    rows = results[results["in_paper"].astype(bool)]
    median = _median_abs(rows["test_gap_pct"], rows["paper_test_gap_pct"])

    # the verdict's check, noise rule included (one definition of "Base lowers the loss")
    ours = check_base_improves_test_loss(rows)
    theirs = check_base_improves_test_loss(paper_settings_table())
    return (
        f"median |test gap − paper's| over the {len(rows)} pairs: {_num(median)} points; "
        f"Base lowers the test loss in {ours.score} (setting, method) cases "
        f"(the paper: {theirs.score})"
    )


def _settings_table_line(tables: Mapping[str, pd.DataFrame], setting: str) -> str:
    results = tables["results"]
    rows = results[(results["setting"] == setting) & results["in_paper"].astype(bool)]
    if rows.empty:
        return f"{NOT_COMPUTED}: the results have no {setting}"
    median = _median_abs(rows["test_gap_pct"], rows["paper_test_gap_pct"])
    bench = tables["benchmarks"]
    primary = bench[(bench["setting"] == setting) & bench["primary"].astype(bool)].iloc[0]
    best = rows.loc[rows["test_loss"].astype(float).idxmin()]
    paper_best = rows.loc[rows["paper_test_loss"].astype(float).idxmin()]
    return (
        f"median |test gap − paper's| over the {len(rows)} pairs: {_num(median)} points; "
        f"benchmark test loss {_num(primary['test_loss'], 4)} ({primary['policy']}; "
        f"the paper's {_num(PAPER_BENCHMARK_LOSS[setting], 3)}); lowest test loss: "
        f"{method_label(best['method'], best['regularization'])} (ours), "
        f"{method_label(paper_best['method'], paper_best['regularization'])} (the paper's)"
    )


def _figure2_line(tables: Mapping[str, pd.DataFrame], context: ExperimentContext) -> str:
    counts = tables["trials_to_beat_ds"].set_index(["method", "regularization"])
    parts = []
    for method, regularization in _FIGURE2_ORDER:
        if (method, regularization) not in counts.index:
            parts.append(f"{method_label(method, regularization)} –")
            continue
        row = counts.loc[(method, regularization)]
        ours = "never" if pd.isna(row["trials"]) else str(int(row["trials"]))
        paper = "–" if pd.isna(row["paper_trials"]) else str(int(row["paper_trials"]))
        parts.append(f"{method_label(method, regularization)} {ours} vs {paper}")
    budget = int(counts["budget"].max()) if len(counts) else context.resolved_profile.n_trials
    return (
        f"trials to beat DS, ours (budget {budget}) vs the paper's "
        f"(budget {PROFILES['paper'].n_trials}): " + ", ".join(parts)
    )


def _figure3_line(tables: Mapping[str, pd.DataFrame], record_steps: int) -> str:
    critic = tables["critic"]
    loss = critic.groupby("regularization")["critic_loss"].mean()
    # the on-hand spread and its interval, as the critic chapter states them
    spread = tables["spread"].iloc[0]
    return (
        f"first {record_steps:,} steps: on-hand std in the replay buffer None "
        f"{_num(spread['std_none'], 1)} vs Base {_num(spread['std_base'], 1)} units (ratio "
        f"{spread['ratio']:.2f}, {100 * spread['level']:.0f} % interval "
        f"{spread['ratio_low']:.2f} to {spread['ratio_high']:.2f}), mean critic loss None "
        f"{loss['none']:.3g} vs Base {loss['base']:.3g} (the paper: both smaller with Base)"
    )


def _figure4_line(tables: Mapping[str, pd.DataFrame]) -> str:
    results = tables["results"]
    means = results.groupby("n_skus")[["test_gap_pct", "paper_test_gap_pct"]].mean()
    skus = ", ".join(str(int(n)) for n in means.index)
    ours = ", ".join(_num(v) for v in means["test_gap_pct"])
    paper = ", ".join(_num(v) for v in means["paper_test_gap_pct"])
    return f"test gap averaged over H, N = {skus}: ours {ours} %; the paper's {paper} %"


def _table9_line(tables: Mapping[str, pd.DataFrame]) -> str:
    results = tables["results"]
    test = _median_abs(results["test_gap_pct"], results["paper_test_gap_pct"])
    val = _median_abs(results["val_gap_pct"], results["paper_val_gap_pct"])
    bench = (results["benchmark_test_loss"] - results["paper_benchmark_test_loss"]).abs().max()
    return (
        f"median |test gap − paper's| over the {len(results)} cells: {_num(test)} points; "
        f"validation gaps: {_num(val)} points; benchmark test loss: max |ours − paper's| "
        f"{_num(bench, 4)}"
    )


def _table1_line(tables: Mapping[str, pd.DataFrame]) -> str:
    results = tables["results"]

    def best(method: str) -> str:
        rows = results[results["method"] == method]
        if rows.empty:
            return f"{METHOD_LABELS[method]} –"
        row = rows.loc[rows["test_objective"].astype(float).idxmin()]
        return f"{method_label(method, row['regularization'])} {_signed(row['test_gap_pct'])} %"

    return (
        "not re-runnable (private data); on the Tmall-like proxy (our own data), J gap to the "
        f"incumbent of the best DDPG: {best('ddpg')}, of the best DS: {best('ds')}"
    )


# ------------------------------------------------------------------ the table
def _not_computed(error: MissingRunError, profile: str) -> str:
    return (
        f"{NOT_COMPUTED}: the store of profile `{profile}` lacks {error.what} "
        f"({error.counted} missing)"
    )


def paper_overview(context: ExperimentContext, *, record_steps: int | None = None) -> pd.DataFrame:
    """Every table and figure of the paper, with one line on how close the stored results come.

    The experiments run stored-only (a context that is not is copied with ``stored_only``
    on): nothing trains, and each number is read from the context's result store through the
    experiment functions. An experiment that the store lacks (a
    :class:`~deepstock.results.store.MissingRunError`) gives its rows a ``how close`` that
    begins with :data:`NOT_COMPUTED` and names what is missing.

    Args:
        context: the profile (and store) whose results to summarize.
        record_steps: the steps of Figure 3's recorded window (default: 1,000 for ``smoke``,
            10,000 otherwise, as in the critic chapter).

    Returns:
        One row per :data:`OVERVIEW_ITEMS` entry, columns :data:`OVERVIEW_COLUMNS`: ``item``
        (``"Table 6"``), ``what`` (one line), ``book page`` (the labels of the book pages, comma
        separated) and ``how close`` (one line: gaps in %, their differences in percentage
        points, with two decimals; losses with four).
    """
    if not isinstance(context, ExperimentContext):
        raise ValueError(f"context must be an ExperimentContext, got {type(context).__name__}")
    if not context.stored_only:
        context = dataclasses.replace(context, stored_only=True)
    profile = context.resolved_profile
    if record_steps is None:
        record_steps = 1_000 if profile.name == "smoke" else 10_000

    calls: dict[str, Callable[[], dict[str, pd.DataFrame]]] = {
        "figure3": lambda: experiments.figure3(context, record_steps=record_steps),
    }
    computed: dict[str, dict[str, pd.DataFrame] | MissingRunError] = {}

    def tables_of(name: str) -> dict[str, pd.DataFrame] | MissingRunError:
        if name not in computed:
            try:
                call = calls.get(name, lambda: experiments.run_experiment(name, context))
                computed[name] = call()
            except MissingRunError as error:
                computed[name] = error
        return computed[name]

    lines: dict[str, Callable[[Any], str]] = {
        "Figure 1": _figure1_line,
        "Figure 2": lambda t: _figure2_line(t, context),
        "Figure 3": lambda t: _figure3_line(t, record_steps),
        "Figure 4": _figure4_line,
        "Table 9": _table9_line,
        "Table 1": _table1_line,
    }
    rows = []
    for entry in OVERVIEW_ITEMS:
        if entry.item == "Tables 3-5":
            line = _search_spaces_line(context)
        elif entry.experiment is None:
            line = _TMALL_ONLY
        else:
            tables = tables_of(entry.experiment)
            if isinstance(tables, MissingRunError):
                line = _not_computed(tables, profile.name)
                if entry.item == "Table 1":
                    line = "not re-runnable (private data); the Tmall-like proxy: " + line
            elif entry.item in _SETTING_OF_TABLE:
                line = _settings_table_line(tables, _SETTING_OF_TABLE[entry.item])
            else:
                line = lines[entry.item](tables)
        rows.append(
            {
                "item": entry.item,
                "what": entry.what,
                "book page": ", ".join(entry.pages),
                "how close": line,
            }
        )
    return pd.DataFrame(rows, columns=list(OVERVIEW_COLUMNS))


def overview_markdown(table: pd.DataFrame, *, csv_name: str = "paper_overview.csv") -> str:
    """The overview as a MyST Markdown table, then a link that downloads it as CSV.

    Each label of the ``book page`` column becomes a cross reference (``{ref}`settings```), so
    the text must be rendered as MyST (a notebook output in a cell whose metadata sets
    ``mystnb: markdown_format: myst``); ``|`` in a cell is escaped. The CSV holds the table as
    given (:func:`deepstock.paper.tables.download_link`).

    Args:
        table: the result of :func:`paper_overview` (at least the columns
            :data:`OVERVIEW_COLUMNS`).
        csv_name: the file name the browser proposes for the CSV.
    """
    missing = [column for column in OVERVIEW_COLUMNS if column not in table.columns]
    if missing:
        raise ValueError(f"table lacks the column(s) {missing} (has {list(table.columns)})")

    def cell(text: Any) -> str:
        return str(text).replace("|", "\\|").replace("\n", " ")

    lines = [
        "| " + " | ".join(OVERVIEW_COLUMNS) + " |",
        "|" + "|".join("---" for _ in OVERVIEW_COLUMNS) + "|",
    ]
    for row in table.itertuples(index=False):
        values = dict(zip(table.columns, row, strict=True))
        pages = ", ".join(
            f"{{ref}}`{label.strip()}`" for label in str(values["book page"]).split(",")
        )
        lines.append(
            f"| {cell(values['item'])} | {cell(values['what'])} | {pages} | "
            f"{cell(values['how close'])} |"
        )
    frame = table[list(OVERVIEW_COLUMNS)].set_index("item")
    return "\n".join(lines) + "\n\n" + download_link(frame, csv_name) + "\n"
