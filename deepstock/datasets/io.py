"""The on-disk format of a dataset: a folder with ``trajectories.csv`` and ``meta.json``.

``data/README.md`` describes the format; :func:`save_dataset` writes it (atomically, file by
file) and :func:`load_dataset` reads and validates it, naming the file, line and column of a bad
value.
"""

from __future__ import annotations

import csv
import json
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from deepstock.core.files import atomic_write
from deepstock.model.dataset import CORE_COLUMNS, InventoryDataset, check_trajectory_values

__all__ = [
    "CORE_COLUMNS",
    "DATA_FILE",
    "FORMAT_VERSION",
    "META_FILE",
    "load_dataset",
    "save_dataset",
]

#: Version of the on-disk format written by :func:`save_dataset`.
FORMAT_VERSION = 1

#: File names inside a dataset folder.
DATA_FILE = "trajectories.csv"
META_FILE = "meta.json"

_INTEGER_TEXT = re.compile(r"[+-]?[0-9]+")


def _meta(dataset: InventoryDataset) -> dict[str, Any]:
    return {
        "format_version": FORMAT_VERSION,
        "name": dataset.name,
        "n_trajectories": dataset.n_trajectories,
        "horizon": dataset.horizon,
        "split_sizes": dataset.split_sizes(),
        "holding_cost": dataset.holding_cost,
        "backlog_cost": dataset.backlog_cost,
        "max_replenish": dataset.max_replenish,
        "lost_sales": dataset.lost_sales,
        "feature_names": list(dataset.feature_names),
        "coeff_features": list(dataset.coeff_features),
        "params": dataset.params,
        # written only when it is not the default, so that older files stay byte-identical
        **({"objective": dataset.objective} if dataset.objective != "cost" else {}),
    }


def _csv_text(dataset: InventoryDataset) -> str:
    # repr() of a Python float is the shortest text that reads back as the same float64, and
    # it does not depend on the platform, so files are exact and byte-for-byte reproducible.
    n, horizon = dataset.demand.shape
    lines = [",".join(CORE_COLUMNS + dataset.feature_names)]
    demand = dataset.demand.tolist()
    lead_time = dataset.lead_time.tolist()
    features = dataset.features.tolist()
    for row in range(n):
        prefix = f"{int(dataset.sku_id[row])},{dataset.split[row]},"
        suffix = f",{int(dataset.review_period[row])},{float(dataset.initial_stock[row])!r}"
        for day in range(horizon):
            values = "".join(f",{value!r}" for value in features[row][day])
            lines.append(
                f"{prefix}{day},{demand[row][day]!r},{lead_time[row][day]}{suffix}{values}"
            )
    return "\n".join(lines) + "\n"


def save_dataset(dataset: InventoryDataset, folder: str | os.PathLike[str]) -> Path:
    """Write ``dataset`` to ``folder`` (created if needed) as ``trajectories.csv`` and
    ``meta.json`` (format in ``data/README.md``).

    The dataset is validated first. Writing is deterministic (the same dataset gives the same
    bytes) and atomic per file; the CSV is written before ``meta.json``, so a folder with a
    ``meta.json`` never pairs it with a half-written CSV. Other files in ``folder`` are left
    alone.

    Returns:
        The folder.
    """
    dataset.validate()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write(folder / DATA_FILE, _csv_text(dataset))
    meta_text = json.dumps(_meta(dataset), indent=2, allow_nan=False) + "\n"
    atomic_write(folder / META_FILE, meta_text)
    return folder


_META_TYPES: dict[str, tuple[type, ...]] = {
    "format_version": (int,),
    "name": (str,),
    "n_trajectories": (int,),
    "horizon": (int,),
    "split_sizes": (dict,),
    "holding_cost": (int, float),
    "backlog_cost": (int, float),
    "max_replenish": (int, float),
    "lost_sales": (bool,),
    "feature_names": (list,),
    "coeff_features": (list,),
    "params": (dict,),
}

# Keys a meta.json may leave out (their defaults apply).
_OPTIONAL_META_TYPES: dict[str, tuple[type, ...]] = {
    "objective": (str,),
}


def _read_meta(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing (a dataset folder holds {META_FILE})")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not valid JSON: {error}") from None
    if not isinstance(meta, dict):
        raise ValueError(f"{path}: must hold a JSON object")
    missing = [key for key in _META_TYPES if key not in meta]
    if missing:
        raise ValueError(f"{path}: missing keys {missing}")
    unknown = sorted(set(meta) - set(_META_TYPES) - set(_OPTIONAL_META_TYPES))
    if unknown:
        raise ValueError(f"{path}: unknown keys {unknown}")
    for key, types in _META_TYPES.items():
        value = meta[key]
        wrong_bool = isinstance(value, bool) and bool not in types
        if wrong_bool or not isinstance(value, types):
            names = " or ".join(t.__name__ for t in types)
            raise ValueError(f"{path}: key {key!r} must be {names}, got {value!r}")
    for key, types in _OPTIONAL_META_TYPES.items():
        if key in meta and not isinstance(meta[key], types):
            names = " or ".join(t.__name__ for t in types)
            raise ValueError(f"{path}: key {key!r} must be {names}, got {meta[key]!r}")
    if meta["format_version"] != FORMAT_VERSION:
        raise ValueError(
            f"{path}: format_version {meta['format_version']} is not supported "
            f"(this version of deepstock reads {FORMAT_VERSION})"
        )
    if not all(isinstance(name, str) for name in meta["feature_names"]):
        raise ValueError(f"{path}: feature_names must be strings, got {meta['feature_names']}")
    return meta


def _parse_column(path: Path, column: str, texts: list[str], kind: str) -> np.ndarray:
    """Convert one CSV column to int64 (``kind="int"``) or float64; the error names the line."""
    if kind == "int":
        for line, text in enumerate(texts, start=2):
            if not _INTEGER_TEXT.fullmatch(text):
                raise ValueError(
                    f"{path}: column {column!r} must hold integers (line {line} has {text!r})"
                )
        try:
            return np.array(texts, dtype=np.int64) if texts else np.zeros(0, dtype=np.int64)
        except OverflowError:
            raise ValueError(
                f"{path}: column {column!r} holds an integer outside the int64 range"
            ) from None
    try:
        # Python's float() rounds correctly, so repr-written numbers come back bit for bit.
        return np.array([float(text) for text in texts], dtype=np.float64)
    except ValueError:
        for line, text in enumerate(texts, start=2):
            try:
                float(text)
            except ValueError:
                raise ValueError(
                    f"{path}: column {column!r} must hold numbers (line {line} has {text!r})"
                ) from None
        raise


def load_dataset(folder: str | os.PathLike[str]) -> InventoryDataset:
    """Read a dataset written by :func:`save_dataset` and validate it.

    Rows may come in any order; trajectories keep the order in which their ``sku_id`` first
    appears, days are sorted. Every problem raises a ``ValueError`` that names the file and the
    column or SKU: missing, unknown or repeated columns; ragged rows; wrong dtypes; negative or
    non-finite demand; review period < 1; lead time < 0; unknown split labels or an empty
    split; repeated (sku_id, day) rows; a SKU with another number of days or days not
    ``0..T-1``; split, review period or initial stock changing within a SKU; ``meta.json``
    keys missing, unknown, of the wrong type or disagreeing with the CSV.

    Raises:
        FileNotFoundError: ``folder``, its ``trajectories.csv`` or its ``meta.json`` is missing.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such dataset folder")
    meta_path, data_path = folder / META_FILE, folder / DATA_FILE
    meta = _read_meta(meta_path)
    if not data_path.is_file():
        raise FileNotFoundError(f"{data_path}: missing (a dataset folder holds {DATA_FILE})")

    feature_names = tuple(meta["feature_names"])
    with data_path.open(encoding="utf-8", newline="") as stream:
        try:
            rows = list(csv.reader(stream, strict=True))
        except csv.Error as error:
            raise ValueError(f"{data_path}: not a valid CSV file: {error}") from None
    if not rows:
        raise ValueError(f"{data_path}: empty file (expected a header row)")
    header, body = rows[0], rows[1:]
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise ValueError(f"{data_path}: repeated columns {repeated}")
    expected = CORE_COLUMNS + feature_names
    missing = [name for name in expected if name not in header]
    if missing:
        raise ValueError(f"{data_path}: missing columns {missing}")
    unknown = [name for name in header if name not in expected]
    if unknown:
        raise ValueError(
            f"{data_path}: unknown columns {unknown} (features must be listed in "
            f"{META_FILE} feature_names {list(feature_names)})"
        )
    if not body:
        raise ValueError(f"{data_path}: no rows")
    for line, row in enumerate(body, start=2):
        if len(row) != len(header):
            raise ValueError(
                f"{data_path}: line {line} has {len(row)} fields, the header has {len(header)}"
            )
    columns = dict(zip(header, (list(values) for values in zip(*body, strict=True)), strict=True))

    kinds = {
        "sku_id": "int",
        "day": "int",
        "lead_time": "int",
        "review_period": "int",
        "demand": "float",
        "initial_stock": "float",
    }
    kinds.update({name: "float" for name in feature_names})
    parsed = {
        name: _parse_column(data_path, name, columns[name], kind) for name, kind in kinds.items()
    }
    split_text = np.array(columns["split"])

    # Group rows by SKU (in order of first appearance) and sort each SKU's rows by day.
    sku_column, day_column = parsed["sku_id"], parsed["day"]
    unique_ids, first_row, position = np.unique(sku_column, return_index=True, return_inverse=True)
    rank = np.empty(unique_ids.size, dtype=np.int64)
    rank[np.argsort(first_row, kind="stable")] = np.arange(unique_ids.size)
    position = rank[position]
    sku_order = unique_ids[np.argsort(first_row, kind="stable")]
    order = np.lexsort((day_column, position))
    sorted_position, sorted_day = position[order], day_column[order]
    same = (sorted_position[1:] == sorted_position[:-1]) & (sorted_day[1:] == sorted_day[:-1])
    if same.any():
        index = int(np.flatnonzero(same)[0])
        raise ValueError(
            f"{data_path}: repeated rows for sku_id {int(sku_order[sorted_position[index]])}, "
            f"day {int(sorted_day[index])}"
        )
    counts = np.bincount(position, minlength=sku_order.size)
    horizon = int(counts[0])
    if (counts != horizon).any():
        bad = int(np.flatnonzero(counts != horizon)[0])
        raise ValueError(
            f"{data_path}: sku_id {int(sku_order[bad])} has {int(counts[bad])} days, "
            f"sku_id {int(sku_order[0])} has {horizon} (every SKU needs the same days)"
        )
    n = sku_order.size
    days = sorted_day.reshape(n, horizon)
    bad_rows = (days != np.arange(horizon)).any(axis=1)
    if bad_rows.any():
        bad = int(np.flatnonzero(bad_rows)[0])
        raise ValueError(
            f"{data_path}: column 'day' of sku_id {int(sku_order[bad])} must be 0..{horizon - 1}, "
            f"got {days[bad].tolist()}"
        )

    def table(values: np.ndarray) -> np.ndarray:
        return values[order].reshape(n, horizon)

    per_sku: dict[str, np.ndarray] = {}
    for name, values in (
        ("split", split_text),
        ("review_period", parsed["review_period"]),
        ("initial_stock", parsed["initial_stock"]),
    ):
        grid = table(values)
        changes = (grid != grid[:, :1]).any(axis=1)
        if changes.any():
            bad = int(np.flatnonzero(changes)[0])
            raise ValueError(
                f"{data_path}: column {name!r} must be constant within a SKU "
                f"(sku_id {int(sku_order[bad])} has {sorted(set(grid[bad].tolist()))})"
            )
        per_sku[name] = grid[:, 0]

    demand = table(parsed["demand"])
    lead_time = table(parsed["lead_time"])
    features = np.zeros((n, horizon, len(feature_names)))
    for index, name in enumerate(feature_names):
        features[:, :, index] = table(parsed[name])
    try:
        check_trajectory_values(
            demand=demand,
            features=features,
            review_period=per_sku["review_period"],
            lead_time=lead_time,
            initial_stock=per_sku["initial_stock"],
            split=per_sku["split"],
            sku_id=sku_order,
        )
    except ValueError as error:
        raise ValueError(f"{data_path}: {error}") from None

    try:
        dataset = InventoryDataset(
            name=meta["name"],
            demand=demand,
            features=features,
            feature_names=feature_names,
            review_period=per_sku["review_period"],
            lead_time=lead_time,
            initial_stock=per_sku["initial_stock"],
            split=per_sku["split"],
            sku_id=sku_order,
            holding_cost=meta["holding_cost"],
            backlog_cost=meta["backlog_cost"],
            max_replenish=meta["max_replenish"],
            lost_sales=meta["lost_sales"],
            coeff_features=tuple(meta["coeff_features"]),
            params=meta["params"],
            objective=meta.get("objective", "cost"),
        ).validate()
    except ValueError as error:
        raise ValueError(f"{folder}: {error}") from None

    for key, actual in (
        ("n_trajectories", dataset.n_trajectories),
        ("horizon", dataset.horizon),
        ("split_sizes", dataset.split_sizes()),
    ):
        if meta[key] != actual:
            raise ValueError(f"{meta_path}: {key} is {meta[key]!r} but {DATA_FILE} has {actual!r}")
    return dataset
