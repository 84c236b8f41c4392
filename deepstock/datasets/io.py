"""The on-disk formats of a dataset: a folder with ``trajectories.csv`` and ``meta.json``, or one
CSV table with a YAML file of options beside it (a user's own data).

``data/README.md`` describes both. :func:`save_dataset` writes a folder (atomically, file by
file) and :func:`load_dataset` reads and validates it; :func:`save_csv_dataset` and
:func:`load_csv_dataset` do the same for the single file; :func:`load_data` reads either. Every
error names the file, and the line, column and SKU of a bad value.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from deepstock.core.files import atomic_write
from deepstock.model.dataset import (
    CORE_COLUMNS,
    SPLITS,
    InventoryDataset,
    check_trajectory_values,
)

__all__ = [
    "CORE_COLUMNS",
    "CSV_DEFAULTS",
    "CSV_OPTIONS",
    "DATA_FILE",
    "FORMAT_VERSION",
    "META_FILE",
    "USER_GENERATOR",
    "load_csv_dataset",
    "load_data",
    "load_dataset",
    "options_file",
    "save_csv_dataset",
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


def _read_utf8(path: Path) -> str:
    """The text of ``path``; bytes that are not UTF-8 are an error naming the line."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise ValueError(
            f"{path}: line {line} is not UTF-8 text (byte {data[error.start]:#04x} at offset "
            f"{error.start})"
        ) from None


def _read_meta(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing (a dataset folder holds {META_FILE})")
    try:
        meta = json.loads(_read_utf8(path))
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


def _read_rows(data_path: Path) -> tuple[list[str], list[list[str]]]:
    """The header and the body rows of a CSV file (the error names the file, and the line of
    bytes that are not UTF-8)."""
    text = _read_utf8(data_path)
    try:
        rows = list(csv.reader(io.StringIO(text, newline=""), strict=True))
    except csv.Error as error:
        raise ValueError(f"{data_path}: not a valid CSV file: {error}") from None
    if not rows:
        raise ValueError(f"{data_path}: empty file (expected a header row)")
    return rows[0], rows[1:]


#: How each core column is parsed (features are numbers, ``split`` is text).
_COLUMN_KINDS: dict[str, str] = {
    "sku_id": "int",
    "day": "int",
    "lead_time": "int",
    "review_period": "int",
    "demand": "float",
    "initial_stock": "float",
}


def _parse_columns(
    data_path: Path, header: list[str], body: list[list[str]], feature_names: tuple[str, ...]
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Every column of ``body`` parsed (int64, float64) and the split labels; a row of another
    width than the header fails with its line number."""
    if not body:
        raise ValueError(f"{data_path}: no rows")
    for line, row in enumerate(body, start=2):
        if len(row) != len(header):
            raise ValueError(
                f"{data_path}: line {line} has {len(row)} fields, the header has {len(header)}"
            )
    columns = dict(zip(header, (list(values) for values in zip(*body, strict=True)), strict=True))
    kinds = {**_COLUMN_KINDS, **{name: "float" for name in feature_names}}
    parsed = {
        name: _parse_column(data_path, name, columns[name], kind) for name, kind in kinds.items()
    }
    return parsed, np.array(columns["split"])


def _assemble_table(
    data_path: Path,
    parsed: dict[str, np.ndarray],
    split_text: np.ndarray,
    feature_names: tuple[str, ...],
) -> dict[str, np.ndarray]:
    """Group parsed rows into the array fields of
    :class:`~deepstock.model.dataset.InventoryDataset` (``demand``, ``features``, ``sku_id``...).

    Trajectories keep the order in which their ``sku_id`` first appears, days are sorted; the
    errors name the file and the SKU.
    """
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
    return {
        "demand": demand,
        "features": features,
        "review_period": per_sku["review_period"],
        "lead_time": lead_time,
        "initial_stock": per_sku["initial_stock"],
        "split": per_sku["split"],
        "sku_id": sku_order,
    }


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
    header, body = _read_rows(data_path)
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
    parsed, split_text = _parse_columns(data_path, header, body, feature_names)
    table = _assemble_table(data_path, parsed, split_text, feature_names)

    try:
        dataset = InventoryDataset(
            name=meta["name"],
            **table,
            feature_names=feature_names,
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


# ============================================================================================
# The single-file format: one CSV table (with a split column) and its options
# ============================================================================================

#: The ``params["generator"]`` of a dataset read from a single CSV file (a user's own data).
USER_GENERATOR = "user"

#: Defaults of the options of a CSV dataset (``max_replenish`` has none: it must be given).
CSV_DEFAULTS: dict[str, Any] = {
    "holding_cost": 0.1,
    "backlog_cost": 0.9,
    "lost_sales": False,
    "features": [],
    "coeff_features": [],
    "objective": "cost",
}

#: Every option of a CSV dataset (keys of the YAML file beside it, or keyword arguments).
CSV_OPTIONS: tuple[str, ...] = ("name", "max_replenish", *CSV_DEFAULTS)


def options_file(path: str | os.PathLike[str]) -> Path | None:
    """The YAML file beside a CSV dataset (``shop.csv`` -> ``shop.yaml`` or ``shop.yml``), or
    ``None`` when there is none."""
    path = Path(path)
    for suffix in (".yaml", ".yml"):
        candidate = path.with_suffix(suffix)
        if candidate.is_file():
            return candidate
    return None


def _read_options_file(path: Path) -> dict[str, Any]:
    import yaml

    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise ValueError(f"{path}: not valid YAML: {error}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ValueError(f"{path}: must hold a mapping of option: value")
    unknown = sorted(set(loaded) - set(CSV_OPTIONS))
    if unknown:
        raise ValueError(f"{path}: unknown keys {unknown}, expected some of {list(CSV_OPTIONS)}")
    return loaded


def _csv_options(path: Path, given: dict[str, Any]) -> dict[str, Any]:
    """The options of the CSV dataset ``path``: ``given`` (not ``None``) over its YAML file over
    :data:`CSV_DEFAULTS`; each bad value names where it came from."""
    unknown = sorted(set(given) - set(CSV_OPTIONS))
    if unknown:
        raise ValueError(f"unknown CSV dataset options {unknown}, expected some of {CSV_OPTIONS}")
    sidecar = options_file(path)
    from_file = _read_options_file(sidecar) if sidecar is not None else {}
    options: dict[str, Any] = {"name": path.stem, **CSV_DEFAULTS}
    source = {key: "the default" for key in options}
    for key, value in from_file.items():
        options[key], source[key] = value, str(sidecar)
    for key, value in given.items():
        if value is not None:
            options[key], source[key] = value, "the options"
    if options.get("max_replenish") is None:
        place = sidecar.name if sidecar is not None else f"{path.stem}.yaml beside it"
        raise ValueError(
            f"{path}: max_replenish (the order cap, units) is not given: set it in {place} "
            "or pass it as an option (--max-replenish)"
        )

    def fail(key: str, expected: str) -> None:
        raise ValueError(
            f"{path}: option {key!r} (from {source[key]}) must be {expected}, got {options[key]!r}"
        )

    if not isinstance(options["name"], str) or not options["name"]:
        fail("name", "a non-empty text")
    for key, minimum in (("holding_cost", 0.0), ("backlog_cost", 0.0), ("max_replenish", 0.0)):
        value = options[key]
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        ok = ok and np.isfinite(value) and (value > minimum if key == "max_replenish" else True)
        if not ok or value < minimum:
            fail(key, "a finite number " + ("> 0" if key == "max_replenish" else ">= 0"))
    if not isinstance(options["lost_sales"], bool):
        fail("lost_sales", "true or false")
    for key in ("features", "coeff_features"):
        value = options[key]
        if isinstance(value, str):
            options[key] = value = [item.strip() for item in value.split(",") if item.strip()]
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            fail(key, "a list of column names")
    missing = [name for name in options["coeff_features"] if name not in options["features"]]
    if missing:
        fail("coeff_features", f"a sublist of features {options['features']} (not {missing})")
    if options["objective"] not in ("cost", "tmall"):
        fail("objective", "'cost' or 'tmall'")
    return options


def _where(path: Path, line: int, column: str, sku: int | None = None) -> str:
    text = f"{path}: line {line}, column {column!r}"
    return text if sku is None else f"{text} (sku_id {sku})"


def _check_rows(
    path: Path,
    parsed: dict[str, np.ndarray],
    split_text: np.ndarray,
    feature_names: tuple[str, ...],
    lost_sales: bool,
) -> None:
    """Value checks row by row, so that the first bad cell is named by line, column and SKU."""
    rules: list[tuple[str, np.ndarray, str]] = [
        ("split", ~np.isin(split_text, SPLITS), f"must be one of {list(SPLITS)}"),
        ("day", parsed["day"] < 0, "must be >= 0"),
        ("demand", ~np.isfinite(parsed["demand"]), "must be a finite number"),
        ("demand", parsed["demand"] < 0, "must be >= 0"),
        ("lead_time", parsed["lead_time"] < 0, "must be >= 0 days"),
        ("review_period", parsed["review_period"] < 1, "must be >= 1 day"),
        ("initial_stock", ~np.isfinite(parsed["initial_stock"]), "must be a finite number"),
    ]
    if lost_sales:
        rules.append(("initial_stock", parsed["initial_stock"] < 0, "must be >= 0 (lost sales)"))
    rules += [
        (name, ~np.isfinite(parsed[name]), "must be a finite number") for name in feature_names
    ]
    for column, bad, expected in rules:
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            value = split_text[row] if column == "split" else parsed[column][row]
            value = value if isinstance(value, str) else value.item()
            raise ValueError(
                f"{_where(path, row + 2, column, int(parsed['sku_id'][row]))}: {expected}, "
                f"got {value!r}"
            )


def load_csv_dataset(
    path: str | os.PathLike[str],
    *,
    require_splits: tuple[str, ...] | list[str] = SPLITS,
    **options: Any,
) -> InventoryDataset:
    """Read a dataset kept as one CSV table (format in ``data/README.md``).

    The table has the columns of ``trajectories.csv`` (:data:`CORE_COLUMNS`, with ``split``)
    and one column per declared feature. The constants come from ``options`` (keyword arguments
    that are not ``None``), else from the YAML file beside the CSV (:func:`options_file`),
    else from :data:`CSV_DEFAULTS`; ``max_replenish`` must be given. The options are ``name``
    (default: the file's stem), ``holding_cost``, ``backlog_cost``, ``max_replenish`` (units),
    ``lost_sales``, ``features`` (the feature columns, in order), ``coeff_features`` (the
    features, by name, that the Coeff and Both regularizations multiply: demand rates in units
    per day) and ``objective``. The dataset's ``params`` is ``{"generator": "user"}``.

    Args:
        path: the ``.csv`` file.
        require_splits: the splits that must hold at least one SKU (``evaluate`` on a file of
            test SKUs only asks for ``("test",)``).

    Raises:
        FileNotFoundError: no such file.
        ValueError: one line naming the file, the line, the column and (for a bad value) the
            SKU: a missing or unknown column (line 1), text where a number or an integer
            belongs, an unknown split label, a negative day, negative or non-finite demand, a
            negative lead time, a review period below 1, a non-finite feature or initial stock,
            repeated or missing days of a SKU, a per-SKU column that changes within a SKU, a
            required split with no SKU; or a bad option naming where it came from.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such CSV dataset file")
    chosen = _csv_options(path, options)
    feature_names = tuple(chosen["features"])
    header, body = _read_rows(path)
    for name in header:
        if header.count(name) > 1:
            raise ValueError(f"{_where(path, 1, name)}: repeated")
    expected = CORE_COLUMNS + feature_names
    for name in expected:
        if name not in header:
            what = "a core column" if name in CORE_COLUMNS else "a declared feature"
            raise ValueError(f"{_where(path, 1, name)}: missing ({what})")
    for name in header:
        if name not in expected:
            raise ValueError(
                f"{_where(path, 1, name)}: unknown (a feature column must be declared in "
                f"`features:` of {path.stem}.yaml or with --feature; declared: "
                f"{list(feature_names)})"
            )
    parsed, split_text = _parse_columns(path, header, body, feature_names)
    _check_rows(path, parsed, split_text, feature_names, chosen["lost_sales"])
    table = _assemble_table(path, parsed, split_text, feature_names)
    try:
        return InventoryDataset(
            name=chosen["name"],
            **table,
            feature_names=feature_names,
            holding_cost=chosen["holding_cost"],
            backlog_cost=chosen["backlog_cost"],
            max_replenish=chosen["max_replenish"],
            lost_sales=chosen["lost_sales"],
            coeff_features=tuple(feature_names.index(n) for n in chosen["coeff_features"]),
            params={"generator": USER_GENERATOR},
            objective=chosen["objective"],
        ).validate(require_splits=require_splits)
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None


def save_csv_dataset(dataset: InventoryDataset, path: str | os.PathLike[str]) -> Path:
    """Write ``dataset`` as one CSV table and the YAML file of its options beside it.

    The table is the ``trajectories.csv`` of :func:`save_dataset` (exact numbers); the YAML
    (``path`` with suffix ``.yaml``) holds ``name``, the costs, ``max_replenish``,
    ``lost_sales``, ``features``, ``coeff_features`` (by name) and ``objective``. The generator
    ``params`` are not kept: :func:`load_csv_dataset` gives ``{"generator": "user"}``.

    Returns:
        The CSV file.
    """
    import yaml

    dataset.validate(require_splits=())
    path = Path(path)
    if path.suffix != ".csv":
        raise ValueError(f"path {str(path)!r}: a CSV dataset file must end in .csv")
    options = {
        "name": dataset.name,
        "holding_cost": dataset.holding_cost,
        "backlog_cost": dataset.backlog_cost,
        "max_replenish": dataset.max_replenish,
        "lost_sales": dataset.lost_sales,
        "features": list(dataset.feature_names),
        "coeff_features": [dataset.feature_names[i] for i in dataset.coeff_features],
        "objective": dataset.objective,
    }
    atomic_write(path, _csv_text(dataset))
    atomic_write(path.with_suffix(".yaml"), yaml.safe_dump(options, sort_keys=False))
    return path


def load_data(
    path: str | os.PathLike[str],
    *,
    require_splits: tuple[str, ...] | list[str] = SPLITS,
    **options: Any,
) -> InventoryDataset:
    """A user's dataset from ``path``: a dataset folder (:func:`load_dataset`) or a ``.csv``
    file (:func:`load_csv_dataset` with ``options``).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: a bad file (the message names it), or options given for a folder (its
            ``meta.json`` holds them).
    """
    path = Path(path)
    if path.is_dir():
        given = sorted(key for key, value in options.items() if value is not None)
        if given:
            raise ValueError(
                f"{path}: a dataset folder keeps its options in {META_FILE}; {given} apply to "
                "a .csv file only"
            )
        dataset = load_dataset(path)
        return dataset.validate(require_splits=require_splits)
    if path.suffix.lower() == ".csv":
        return load_csv_dataset(path, require_splits=require_splits, **options)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such dataset (a folder or a .csv file)")
    raise ValueError(f"{path}: a dataset is a folder ({DATA_FILE}, {META_FILE}) or a .csv file")
