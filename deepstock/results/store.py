"""The resumable result store: every finished training run, on disk, the moment it finishes.

Layout (under the root: ``data/results/<profile>/`` for the experiments of a run profile, see
:meth:`ResultStore.for_profile`; ``data/results/quick/`` is committed)::

    runs/<k0k1>/<key>.json    one training run (sharded by the key's first two hex digits)
    runs/<k0k1>/<key>.npz     its array extras, when it has any (written first, hash recorded)
    studies/<name>.json       the finished trials of a tuning study (see deepstock.tuning.procedure)
    tmp/                      temporary files of writes in progress (ignored by git)

**The key** of a run is a hash (SHA-256, first 32 hex digits) of what determines its result:
the method, the regularization, the *resolved* configuration (every field of the method's
settings class, defaults filled in), the seed and the dataset fingerprint
(:func:`dataset_fingerprint`, a hash of the dataset's arrays, constants and generator
parameters). Two calls that would train the same thing share a key; a change of any of these
(a different learning rate, another seed, other trajectories, a changed default) is a new key,
so a re-run computes only what is new.

**Not in the key, recorded and checked:** the code version and the device.

* The code version is the package version plus :func:`source_hash`, a hash of the modules that
  determine a run's numbers (:data:`RESULT_SOURCES`: the simulator, the regularizations, the
  training interface, the methods and their environments). It hashes each module's syntax
  tree with its docstrings removed, so reformatting, comments and docstrings do not change it.
  It is not part of the key so that the committed results survive edits that do not change what
  is computed; in *strict* mode (``ResultStore(strict=True)``) a record of another source hash
  counts as missing and is recomputed (and replaced).
* The device kind (``cpu``/``cuda``): a GPU computes the same thing with other rounding; the
  store treats the two as the same run and records where it ran (strict mode also requires the
  same device kind).

**Integrity.** A record is written atomically (a temporary file in ``tmp/``, flushed and
fsynced, then renamed over the target), so a reader never sees half a file. Each record carries
a checksum of its own content; a record that does not parse, lacks a field, has the wrong key or
format, fails its checksum or points to a missing/altered ``.npz`` is reported as corrupt,
counted in :attr:`ResultStore.corrupt`, and recomputed by :func:`cached_train`.

**Extras.** A run's ``extras`` (method-specific records) are kept as follows: numbers, strings,
short lists and nested dicts of them inline in the JSON; with ``extras="all"`` arrays and long
number lists go to the ``.npz`` beside the JSON; with ``extras="small"`` (the default, for
tuning: it keeps the committed results small) they are dropped and their names recorded under
``extras_dropped``. A record that dropped extras is recomputed when ``extras="all"`` is asked.
"""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import io
import json
import math
import os
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from deepstock.core.files import atomic_write, data_dir
from deepstock.core.jsontext import canonical_json, plain
from deepstock.methods.population.engine import check_engine, train_population
from deepstock.methods.train import resolve_config
from deepstock.methods.train import train as default_train
from deepstock.model.dataset import InventoryDataset
from deepstock.model.regularizations import get_regularization
from deepstock.model.simulator import resolve_device
from deepstock.results.fingerprints import regularization_fingerprint

__all__ = [
    "FORMAT_VERSION",
    "POPULATION_SOURCES",
    "population_sources",
    "RESULT_SOURCES",
    "CorruptRecordError",
    "MissingRunError",
    "ResultStore",
    "StoreReport",
    "cached_train",
    "cached_train_population",
    "canonical_json",
    "current_cpu_capability",
    "record_cpu_capability",
    "code_version",
    "dataset_fingerprint",
    "default_results_dir",
    "run_key",
    "source_hash",
]

#: Version of the record format; a record of another version is treated as missing.
FORMAT_VERSION = 1

#: The modules (file names in the package) whose code determines a run's numbers. Modules listed
#: here that do not exist (yet) are skipped; the hash records which were found.
RESULT_SOURCES: tuple[str, ...] = (
    "model/simulator.py",
    "model/regularizations.py",
    "methods/common.py",
    "methods/ds.py",
    "methods/ddpg.py",
    "methods/ppo.py",
    "methods/dqn.py",
    "methods/envs.py",
    "methods/sb3_common.py",
)

#: The modules shared by every population trainer (``engine="population"``). With the method's
#: own module (:func:`population_sources`) their hash is recorded, and checked in strict mode,
#: only for runs of that engine, so that adding or editing them leaves the records of the
#: single-run engine (and of the other methods' populations) current.
POPULATION_SOURCES: tuple[str, ...] = (
    "methods/population/batched.py",
    "methods/population/engine.py",
)


def population_sources(method: str) -> tuple[str, ...]:
    """The modules whose code determines a population run of ``method``: the shared ones and
    ``methods/population/<method>.py``."""
    return (*POPULATION_SOURCES, f"methods/population/{method}.py")


#: Fields every record has.
_RECORD_FIELDS = (
    "format",
    "key",
    "identity",
    "dataset",
    "code_version",
    "result",
    "extras",
    "extras_arrays",
    "extras_dropped",
    "created",
    "checksum",
)
_RESULT_FIELDS = ("method", "regularization", "seed", "config", "val", "test", "train", "curve")

#: Lists of numbers longer than this are arrays (``.npz``), not inline JSON.
_INLINE_LIST_MAX = 64

_KEY_LENGTH = 32


class MissingRunError(ValueError):
    """A run (or some runs of a tuning) that a stored-only store does not hold.

    Attributes:
        what: the run or tuning, in words.
        missing: how many runs are missing; ``total``: of how many (``None``: one run).
    """

    def __init__(self, what: str, missing: int, total: int | None, root: Path) -> None:
        self.what, self.missing, self.total, self.root = what, missing, total, root
        super().__init__(
            f"not in the result store {root} (stored-only, nothing is trained): {what}; "
            f"{self.counted} missing. Run the experiment without --stored-only to compute them"
        )

    @property
    def counted(self) -> str:
        """How many runs are missing, in words (``"3 of 12 runs"``, ``"1 run"``)."""
        if self.total is not None:
            return f"{self.missing} of {self.total} runs"
        return f"{self.missing} run"

    def __reduce__(self):  # keeps the attributes when raised in a worker process
        return (type(self), (self.what, self.missing, self.total, self.root))


class CorruptRecordError(ValueError):
    """A stored record that cannot be trusted (bad JSON, missing field, checksum mismatch...)."""


# ====================================================================== hashing helpers
def sha256_text(text: str | bytes) -> str:
    data = text.encode("utf-8") if isinstance(text, str) else text
    return hashlib.sha256(data).hexdigest()


def dataset_fingerprint(dataset: InventoryDataset) -> str:
    """A SHA-256 (hex) of everything in ``dataset`` that a run's numbers depend on.

    Hashes, in a fixed order, every array field (name, dtype, shape and bytes) and the constants
    (feature names, costs, order cap, lost sales, demand-feature indices) and generator
    ``params``. The dataset's ``name`` is a label and is left out.
    """
    digest = hashlib.sha256()
    for item in dataclasses.fields(dataset):
        if item.name == "name":
            continue
        value = getattr(dataset, item.name)
        if item.name == "objective" and value == "cost":
            # a field added after the first stored runs: hashed only when it is not the
            # default, so that every dataset hashes as it did before the field existed
            continue
        digest.update(item.name.encode())
        if isinstance(value, np.ndarray):
            array = np.ascontiguousarray(value)
            digest.update(f"{array.dtype.str}{array.shape}".encode())
            digest.update(array.tobytes())
        else:
            digest.update(canonical_json(value).encode())
    return digest.hexdigest()


def _strip_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if (
                body
                and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)
            ):
                node.body = body[1:] or [ast.Pass()]
    return tree


_SOURCE_HASH_CACHE: dict[tuple[str, tuple[tuple[str, float], ...]], dict[str, Any]] = {}


def source_hash(
    package_dir: str | os.PathLike[str] | None = None,
    sources: tuple[str, ...] = RESULT_SOURCES,
) -> dict[str, Any]:
    """The hash of the modules of ``sources`` (default :data:`RESULT_SOURCES`) that exist.

    Each module is parsed and its syntax tree, docstrings removed, is dumped and hashed, so
    formatting, comments and docstrings do not count; any change of the code does.

    Returns:
        ``{"hash": hex digest (16 digits), "files": [the module names hashed]}``.
    """
    folder = Path(package_dir) if package_dir is not None else Path(__file__).parent.parent
    present = [name for name in sources if (folder / name).is_file()]
    stamp = tuple((name, (folder / name).stat().st_mtime) for name in present)
    cache_key = (str(folder.resolve()), stamp)
    if cache_key not in _SOURCE_HASH_CACHE:
        digest = hashlib.sha256()
        for name in present:
            tree = _strip_docstrings(ast.parse((folder / name).read_text(encoding="utf-8")))
            digest.update(name.encode())
            digest.update(ast.dump(tree, include_attributes=False).encode())
        _SOURCE_HASH_CACHE[cache_key] = {"hash": digest.hexdigest()[:16], "files": present}
    return dict(_SOURCE_HASH_CACHE[cache_key])


#: The CPU capability of records that predate the field: they were computed on an AVX-512
#: machine (its NumPy drew the proxy dataset with AVX-512 kernels, which this field's first
#: AVX2 machine could not reproduce).
UNRECORDED_CPU_CAPABILITY = "AVX512"


def record_cpu_capability(record: Mapping[str, Any]) -> str:
    """The CPU kernels' capability a stored run was computed with (``"AVX2"``, ``"AVX512"``,
    ...). A run reproduces to the last digits only with the same kernels."""
    return str(record["code_version"].get("cpu_capability", UNRECORDED_CPU_CAPABILITY))


def current_cpu_capability() -> str:
    """The capability of the kernels PyTorch uses in this process."""
    return str(torch.backends.cpu.get_cpu_capability())


def code_version(engine: str = "sb3", method: str | None = None) -> dict[str, Any]:
    """What the store records as the code version: the package version, :func:`source_hash`,
    the versions of the libraries that compute the numbers, and torch's number of CPU threads
    (on the CPU, another thread count sums in another order: the same run then differs in the
    last digits, which DDPG's training can amplify). Runs of the population engine also record
    ``population_source_hash``, the hash of ``population_sources(method)``."""
    import sys

    import deepstock

    libraries: dict[str, str] = {"numpy": np.__version__}
    for module_name in ("torch", "stable_baselines3"):
        module = sys.modules.get(module_name)
        if module is not None:
            libraries[module_name] = getattr(module, "__version__", "unknown")
    sources = source_hash()
    version = {
        "package": deepstock.__version__,
        "source_hash": sources["hash"],
        "source_files": sources["files"],
        "libraries": libraries,
    }
    if engine == "population":
        if method is None:
            raise ValueError("code_version of a population run needs its method")
        sources = population_sources(method)
        version["population_source_hash"] = source_hash(sources=sources)["hash"]
    torch = sys.modules.get("torch")
    if torch is not None:
        version["torch_threads"] = int(torch.get_num_threads())
        # the kernels' vector width (AVX2, AVX512, ...): another width rounds differently
        version["cpu_capability"] = str(torch.backends.cpu.get_cpu_capability())
    return version


def run_key(
    method: str,
    regularization: str,
    config: Mapping[str, Any],
    seed: int,
    dataset_hash: str,
    *,
    engine: str = "sb3",
) -> str:
    """The store key (32 hex digits) of a run; ``config`` must be resolved
    (:func:`resolve_config`) so that equal runs have equal keys. ``engine`` is part of the
    identity only when it is ``"population"`` (so the keys of single-engine runs never change)."""
    identity = _identity(method, regularization, config, seed, dataset_hash, engine=engine)
    return sha256_text(canonical_json(identity))[:_KEY_LENGTH]


#: Configuration keys added after runs were first stored, with their defaults: a key at its
#: default is left out of a run's identity, so that the runs stored before it existed (which
#: ran with that default) keep their keys.
LATE_CONFIG_DEFAULTS: dict[str, dict[str, Any]] = {"ds": {"stockout_smoothing": 0.1}}


def _identity(
    method: str,
    regularization: str,
    config: Mapping[str, Any],
    seed: int,
    dataset_hash: str,
    *,
    engine: str = "sb3",
) -> dict[str, Any]:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"seed must be an integer, got {seed!r}")

    late = LATE_CONFIG_DEFAULTS.get(method, {})
    config = {
        key: value
        for key, value in dict(config).items()
        if not (key in late and value == late[key])
    }
    identity = {
        "method": method,
        "regularization": regularization,
        "config": plain(config),
        "seed": int(seed),
        "dataset": dataset_hash,
    }
    # a plug-in's code is not part of the package's source hash: its own hash is in the key
    code = regularization_fingerprint(regularization)
    if code is not None:
        identity["regularization_code"] = code
    if check_engine(engine) == "population":
        # the population engine computes the same runs with other rounding: its own records
        identity["engine"] = engine
    return identity


def default_results_dir() -> Path:
    """Where results go by default: ``$DEEPSTOCK_RESULTS_DIR`` when set; else ``data/results``
    of the checkout this package lives in; else ``~/.cache/deepstock/results``."""
    return data_dir("results", environment="DEEPSTOCK_RESULTS_DIR")


# ====================================================================== extras
def _split_extras(
    extras: Mapping[str, Any], *, keep_arrays: bool
) -> tuple[dict[str, Any], dict[str, np.ndarray], list[str]]:
    """Split ``extras`` into inline JSON, arrays (name -> array, nested names joined by ``/``)
    and the names dropped (arrays when not ``keep_arrays``; objects that are neither)."""
    inline: dict[str, Any] = {}
    arrays: dict[str, np.ndarray] = {}
    dropped: list[str] = []

    def visit(value: Any, name: str) -> tuple[bool, Any]:
        if value is None or isinstance(value, (bool, str)):
            return True, value
        if isinstance(value, (int, float, np.integer, np.floating, np.bool_)):
            return True, plain(value)
        if isinstance(value, Mapping):
            out = {}
            for key, item in value.items():
                ok, converted = visit(item, f"{name}/{key}")
                if ok:
                    out[str(key)] = converted
            return True, out
        array = _as_array(value)
        if array is not None:
            if array.ndim <= 1 and array.size <= _INLINE_LIST_MAX:
                return True, array.tolist()
            if keep_arrays:
                arrays[name] = array
            else:
                dropped.append(name)
            return False, None
        if isinstance(value, (list, tuple)):
            # a list of mixed things (dicts, strings): keep the JSON-able items.
            out_list = []
            for index, item in enumerate(value):
                ok, converted = visit(item, f"{name}/{index}")
                if ok:
                    out_list.append(converted)
            return True, out_list
        dropped.append(name)
        return False, None

    for key, value in extras.items():
        ok, converted = visit(value, str(key))
        if ok:
            inline[str(key)] = converted
    return inline, arrays, dropped


def _as_array(value: Any) -> np.ndarray | None:
    """``value`` as a numeric array if it is one (array, tensor, list of numbers), else None."""
    if isinstance(value, np.ndarray):
        return value if value.dtype.kind in "biuf" else None
    if type(value).__module__.startswith("torch") and hasattr(value, "detach"):
        return value.detach().cpu().numpy()
    if isinstance(value, (list, tuple)) and value:
        try:
            array = np.asarray(value)
        except (ValueError, TypeError):
            return None
        return array if array.dtype.kind in "biuf" else None
    return None


def _npz_bytes(arrays: Mapping[str, np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **{name: np.asarray(a) for name, a in arrays.items()})
    return buffer.getvalue()


# ====================================================================== the store
@dataclass
class ResultStore:
    """Training runs on disk, one JSON file per run, keyed by :func:`run_key`.

    Args:
        root: the folder (created on first write); default :func:`default_results_dir`.
        strict: also require the current :func:`source_hash` and the same device kind; a record
            that differs counts as missing (it is recomputed and replaced).
        stored_only: never train: :func:`cached_train` (and the tuner) read what is stored and
            raise :class:`MissingRunError` where a run is missing, instead of training it.

    Attributes:
        corrupt: keys of records found corrupt by this object (each also warned about once).
        keys_read: keys of the records this object has found and read (what an experiment
            used; :func:`deepstock.paper.experiments.experiment_costs` sums their times).
    """

    root: Path = field(default_factory=default_results_dir)
    strict: bool = False
    corrupt: list[str] = field(default_factory=list)
    stored_only: bool = False
    keys_read: set[str] = field(default_factory=set, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        if self.root.exists() and not self.root.is_dir():
            raise ValueError(f"result store root {str(self.root)!r} is not a folder")

    @classmethod
    def for_profile(
        cls, profile: str, *, strict: bool = False, stored_only: bool = False
    ) -> ResultStore:
        """The store of a run profile's experiments, ``<default results dir>/<profile>``
        (``data/results/quick`` is the one the repository commits)."""
        if not profile or any(not (c.isalnum() or c in "-_.") for c in profile):
            raise ValueError(f"profile name {profile!r}: letters, digits, '-', '_', '.' only")
        return cls(default_results_dir() / profile, strict=strict, stored_only=stored_only)

    def require_stored(self, what: str, missing: int = 1, total: int | None = None) -> None:
        """In a :attr:`stored_only` store, raise :class:`MissingRunError` for ``what`` (``missing``
        of ``total`` runs absent); otherwise do nothing."""
        if self.stored_only:
            raise MissingRunError(what, missing, total, self.root)

    # ---- paths ------------------------------------------------------------------------------
    @property
    def runs_dir(self) -> Path:
        return self.root / "runs"

    @property
    def studies_dir(self) -> Path:
        return self.root / "studies"

    def path(self, key: str) -> Path:
        """The JSON file of ``key``."""
        _check_key(key)
        return self.runs_dir / key[:2] / f"{key}.json"

    def policy_path(self, key: str) -> Path:
        """The policy file kept beside the record of ``key``, ``<key>.policy.safetensors``
        (written by :func:`deepstock.results.policies.cached_policy`)."""
        return self.path(key).with_suffix(".policy.safetensors")

    def _npz_path(self, key: str) -> Path:
        return self.path(key).with_suffix(".npz")

    # ---- atomic writes ----------------------------------------------------------------------
    def _write_atomic(self, path: Path, data: bytes) -> None:
        # the temporary file is in tmp/ inside the root (same file system), so that a
        # half-written record never sits among the records
        atomic_write(path, data, tmp_dir=self.root / "tmp")

    def _write_record(self, record: dict[str, Any]) -> None:
        """Checksum ``record`` (without a ``checksum`` entry) and write it under its key."""
        record["checksum"] = sha256_text(canonical_json(record))
        text = json.dumps(record, sort_keys=True, indent=1, allow_nan=True) + "\n"
        self._write_atomic(self.path(record["key"]), text.encode("utf-8"))

    # ---- records ----------------------------------------------------------------------------
    def put(
        self,
        *,
        identity: Mapping[str, Any],
        dataset_name: str,
        result: Mapping[str, Any],
        extras: Mapping[str, Any] | None = None,
        keep_arrays: bool = False,
        device: str = "cpu",
    ) -> str:
        """Write one run atomically and return its key.

        Args:
            identity: ``{method, regularization, config, seed, dataset}`` as made by
                :func:`run_key`'s inputs (``config`` resolved, ``dataset`` the fingerprint).
            dataset_name: the dataset's name (recorded, not hashed).
            result: :meth:`deepstock.methods.train.TrainResult.summary`.
            extras: the run's extras (see the module docstring).
            keep_arrays: keep array extras in a ``.npz`` beside the JSON (else drop them).
            device: the torch device the run used (its kind is recorded).
        """
        identity = _identity(
            identity["method"],
            identity["regularization"],
            identity["config"],
            identity["seed"],
            identity["dataset"],
            engine=identity.get("engine", "sb3"),
        )
        key = sha256_text(canonical_json(identity))[:_KEY_LENGTH]
        inline, arrays, dropped = _split_extras(extras or {}, keep_arrays=keep_arrays)
        arrays_entry = None
        if arrays:
            data = _npz_bytes(arrays)
            # The array file goes first: the JSON is what makes a record exist, and it names
            # the hash of the arrays it expects.
            self._write_atomic(self._npz_path(key), data)
            arrays_entry = {
                "file": f"{key}.npz",
                "sha256": sha256_text(data),
                "names": list(arrays),
            }
        record = {
            "format": FORMAT_VERSION,
            "key": key,
            "identity": identity,
            "dataset": {"name": dataset_name, "fingerprint": identity["dataset"]},
            "code_version": {
                **code_version(identity.get("engine", "sb3"), identity["method"]),
                "device_kind": str(device).split(":")[0],
            },
            "result": plain(dict(result)),
            "extras": inline,
            "extras_arrays": arrays_entry,
            "extras_dropped": sorted(dropped),
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        self._write_record(record)
        return key

    def label_cpu_capability(self, key: str, capability: str) -> bool:
        """Record the CPU capability of a run stored before records carried it.

        For a run known to have been computed with ``capability``'s kernels (for example on this
        very machine, before the field existed). A record that already names its capability is
        left as it is. The record is rewritten atomically with a new checksum. Returns whether
        it was changed.
        """
        record = self.read(key)
        if record is None:
            raise ValueError(f"no stored run under key {key!r}")
        if "cpu_capability" in record["code_version"]:
            return False
        record.pop("checksum")
        record["code_version"]["cpu_capability"] = str(capability)
        self._write_record(record)
        return True

    def rekey_dataset(self, old_fingerprint: str, new_fingerprint: str) -> dict[str, str]:
        """Move the runs of one dataset to the key they have under its new fingerprint.

        For a dataset whose fingerprint changed although its numbers did not (a descriptive
        text in its ``params`` was reworded): the runs trained on it are valid for the new
        fingerprint too, and this rewrites each record under its new key (identity, fingerprint,
        key and checksum; its array and policy files are renamed with it), the new record first,
        then the old one removed. Interrupted, it resumes: a run already moved is skipped.
        Tuning studies hash the fingerprint into their names and hold their runs' keys: the
        caller renames them (``scripts/migrate_proxy_description.py`` shows how).

        Returns:
            ``{old key: new key}`` of the runs moved.
        """
        for name, value in (
            ("old_fingerprint", old_fingerprint),
            ("new_fingerprint", new_fingerprint),
        ):
            if (
                not isinstance(value, str)
                or len(value) != 64
                or not all(c in "0123456789abcdef" for c in value)
            ):
                raise ValueError(f"{name} must be a SHA-256 in hex (64 characters), got {value!r}")
        moved: dict[str, str] = {}
        for record in list(self.records()):
            if record["identity"]["dataset"] != old_fingerprint:
                continue
            old_key = record["key"]
            identity = {**record["identity"], "dataset": new_fingerprint}
            new_key = sha256_text(canonical_json(identity))[:_KEY_LENGTH]
            old_path = self.path(old_key)
            record.pop("checksum")
            record["key"], record["identity"] = new_key, identity
            record["dataset"] = {**record["dataset"], "fingerprint": new_fingerprint}
            if record["extras_arrays"] is not None:
                self._write_atomic(self._npz_path(new_key), self._npz_path(old_key).read_bytes())
                record["extras_arrays"] = {**record["extras_arrays"], "file": f"{new_key}.npz"}
            if self.policy_path(old_key).is_file():
                self._write_atomic(
                    self.policy_path(new_key), self.policy_path(old_key).read_bytes()
                )
            self._write_record(record)
            for path in (old_path, self._npz_path(old_key), self.policy_path(old_key)):
                path.unlink(missing_ok=True)
            moved[old_key] = new_key
        return moved

    def read(self, key: str) -> dict[str, Any] | None:
        """The validated record of ``key``; ``None`` when there is none.

        Raises:
            CorruptRecordError: the file exists but cannot be trusted (the message says why).
        """
        path = self.path(key)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        self.keys_read.add(key)
        try:
            record = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise CorruptRecordError(f"{path}: not valid JSON ({error})") from None
        if not isinstance(record, dict):
            raise CorruptRecordError(f"{path}: not a JSON object")
        missing = [name for name in _RECORD_FIELDS if name not in record]
        if missing:
            raise CorruptRecordError(f"{path}: missing field(s) {missing}")
        if record["format"] != FORMAT_VERSION:
            raise CorruptRecordError(
                f"{path}: format {record['format']!r}, this code reads {FORMAT_VERSION}"
            )
        checksum = record.pop("checksum")
        if sha256_text(canonical_json(record)) != checksum:
            raise CorruptRecordError(f"{path}: checksum mismatch (the file was altered)")
        record["checksum"] = checksum
        if record["key"] != key or sha256_text(canonical_json(record["identity"]))[:32] != key:
            raise CorruptRecordError(f"{path}: holds the record of another key")
        result = record["result"]
        missing = [name for name in _RESULT_FIELDS if name not in result]
        if missing or "loss" not in result.get("val", {}) or "loss" not in result.get("test", {}):
            raise CorruptRecordError(f"{path}: result lacks {missing or ['val/test loss']}")
        arrays_entry = record["extras_arrays"]
        if arrays_entry is not None:
            npz = path.parent / arrays_entry["file"]
            try:
                npz_data = npz.read_bytes()
            except FileNotFoundError:
                raise CorruptRecordError(f"{path}: its array file {npz.name} is missing") from None
            if sha256_text(npz_data) != arrays_entry["sha256"]:
                raise CorruptRecordError(f"{path}: its array file {npz.name} was altered")
        return record

    def get(self, key: str, *, device: str | None = None) -> dict[str, Any] | None:
        """The record of ``key`` if it is present, intact and (in strict mode) current.

        A corrupt record is warned about, remembered in :attr:`corrupt` and reported as missing
        (the caller recomputes it and the new record replaces it).
        """
        try:
            record = self.read(key)
        except CorruptRecordError as error:
            if key not in self.corrupt:
                self.corrupt.append(key)
                warnings.warn(f"corrupt result record, will recompute: {error}", stacklevel=2)
            return None
        if record is None:
            return None
        if self.strict and not self._is_current(record, device):
            return None
        return record

    def _is_current(self, record: Mapping[str, Any], device: str | None) -> bool:
        version = record["code_version"]
        if version.get("source_hash") != source_hash()["hash"]:
            return False
        identity = record["identity"]
        if identity.get("engine") == "population":
            expected = source_hash(sources=population_sources(identity["method"]))["hash"]
            if version.get("population_source_hash") != expected:
                return False
        if device is not None and version.get("device_kind") != str(device).split(":")[0]:
            return False
        return True

    def __contains__(self, key: str) -> bool:
        return self.get(key) is not None

    def arrays(self, key: str) -> dict[str, np.ndarray]:
        """The array extras of ``key`` (empty when it has none)."""
        record = self.read(key)
        if record is None:
            raise KeyError(f"no result record {key}")
        entry = record["extras_arrays"]
        if entry is None:
            return {}
        with np.load(self.path(key).parent / entry["file"]) as npz:
            return {name: npz[name] for name in npz.files}

    def keys(self) -> Iterator[str]:
        """Every key with a JSON file (intact or not), in sorted order."""
        if not self.runs_dir.is_dir():
            return
        for shard in sorted(self.runs_dir.iterdir()):
            if shard.is_dir():
                for path in sorted(shard.glob("*.json")):
                    yield path.stem

    def records(self) -> Iterator[dict[str, Any]]:
        """Every intact record (corrupt ones are warned about and skipped)."""
        for key in self.keys():
            record = self.get(key)
            if record is not None:
                yield record

    def to_frame(self) -> pd.DataFrame:
        """One row per intact run: key, method, regularization, dataset, seed, val/test/train
        loss, wall time, device kind, source hash and the configuration as JSON text."""
        rows = []
        for record in self.records():
            result = record["result"]
            rows.append(
                {
                    "key": record["key"],
                    "method": result["method"],
                    "regularization": result["regularization"],
                    "dataset": record["dataset"]["name"],
                    "seed": result["seed"],
                    "val_loss": result["val"]["loss"],
                    "test_loss": result["test"]["loss"],
                    "train_loss": result["train"].get("loss", math.nan),
                    "wall_time_s": result.get("wall_time_s", math.nan),
                    "device_kind": record["code_version"].get("device_kind"),
                    "source_hash": record["code_version"].get("source_hash"),
                    "config": canonical_json(result["config"]),
                }
            )
        columns = [
            "key",
            "method",
            "regularization",
            "dataset",
            "seed",
            "val_loss",
            "test_loss",
            "train_loss",
            "wall_time_s",
            "device_kind",
            "source_hash",
            "config",
        ]
        return pd.DataFrame(rows, columns=columns)

    # ---- study records (used by deepstock.tuning.procedure) --------------------------------------------
    def put_study(self, name: str, payload: Mapping[str, Any]) -> Path:
        """Write the finished trials of a tuning study atomically (``studies/<name>.json``)."""
        _check_study_name(name)
        body = {"name": name, "payload": plain(dict(payload))}
        body["checksum"] = sha256_text(canonical_json(body))
        path = self.studies_dir / f"{name}.json"
        text = json.dumps(body, sort_keys=True, indent=1, allow_nan=True) + "\n"
        self._write_atomic(path, text.encode("utf-8"))
        return path

    def get_study(self, name: str) -> dict[str, Any] | None:
        """The payload written by :meth:`put_study`, or ``None`` (missing or corrupt)."""
        _check_study_name(name)
        path = self.studies_dir / f"{name}.json"
        try:
            return self.read_study(path)
        except FileNotFoundError:
            return None
        except CorruptRecordError as error:
            warnings.warn(f"corrupt study record, ignored: {error}", stacklevel=2)
            return None

    def read_study(self, path: Path) -> dict[str, Any]:
        """The payload of the study record at ``path``.

        Raises:
            FileNotFoundError: there is no such file.
            CorruptRecordError: it does not parse, lacks its fields or fails its checksum.
        """
        data = Path(path).read_bytes()
        try:
            body = json.loads(data.decode("utf-8"))
            checksum = body.pop("checksum")
            if body.get("name") != Path(path).stem:
                raise CorruptRecordError(f"{path}: holds the study {body.get('name')!r}")
            if sha256_text(canonical_json(body)) != checksum:
                raise CorruptRecordError(f"{path}: checksum mismatch (the file was altered)")
            payload = body["payload"]
            # a study record holds any mapping (a tuning's trials, an experiment's runs)
            if not isinstance(payload, dict):
                raise CorruptRecordError(f"{path}: the payload is not a mapping")
        except CorruptRecordError:
            raise
        except (ValueError, KeyError, AttributeError, TypeError) as error:
            raise CorruptRecordError(f"{path}: not a study record ({error})") from None
        return payload

    def verify(self, *, repair: bool = False) -> StoreReport:
        """Check every run record (checksum, schema, key, array file) and every study record.

        Args:
            repair: move each corrupt file (and a corrupt run's array file) into
                ``<root>/quarantine/`` (nothing is deleted), so that the next use recomputes it.

        Returns:
            A :class:`StoreReport`.
        """
        report = StoreReport(root=self.root)
        for key in self.keys():
            report.runs += 1
            try:
                self.read(key)
            except CorruptRecordError as error:
                report.corrupt.append((self.path(key), str(error)))
        if self.studies_dir.is_dir():
            for path in sorted(self.studies_dir.glob("*.json")):
                report.studies += 1
                try:
                    self.read_study(path)
                except CorruptRecordError as error:
                    report.corrupt.append((path, str(error)))
        if repair:
            quarantine = self.root / "quarantine"
            for path, _ in report.corrupt:
                for item in (path, path.with_suffix(".npz")):
                    if item.exists():
                        target = quarantine / item.relative_to(self.root)
                        target.parent.mkdir(parents=True, exist_ok=True)
                        os.replace(item, target)
                        report.moved.append(target)
        return report


@dataclass
class StoreReport:
    """What :meth:`ResultStore.verify` found.

    Attributes:
        root: the store's folder.
        runs, studies: how many run and study records were checked.
        corrupt: ``(file, reason)`` of each record that cannot be trusted.
        moved: where ``repair`` moved the corrupt files (under ``<root>/quarantine/``).
    """

    root: Path
    runs: int = 0
    studies: int = 0
    corrupt: list[tuple[Path, str]] = field(default_factory=list)
    moved: list[Path] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.corrupt


def _check_key(key: str) -> None:
    if (
        not isinstance(key, str)
        or len(key) != _KEY_LENGTH
        or any(c not in "0123456789abcdef" for c in key)
    ):
        raise ValueError(f"a result key is {_KEY_LENGTH} lowercase hex digits, got {key!r}")


def _check_study_name(name: str) -> None:
    if not name or any(not (c.isalnum() or c in "-_.") for c in name) or name.startswith("."):
        raise ValueError(f"study name {name!r} may hold only letters, digits, '-', '_' and '.'")


# ====================================================================== cached training
def cached_train(
    store: ResultStore,
    method: str,
    regularization: str,
    dataset: InventoryDataset,
    config: Mapping[str, Any] | None = None,
    seed: int = 0,
    device: str = "cpu",
    *,
    use_defaults: bool = True,
    setting: str | None = None,
    progress: bool = False,
    extras: str = "small",
    train_fn: Callable[..., Any] | None = None,
    engine: str = "sb3",
) -> dict[str, Any]:
    """Train ``(method, regularization, dataset, config, seed)`` unless the store has it.

    Args:
        store: where runs are looked up and written.
        method, regularization, dataset, config, seed, device, progress: as for
            :func:`deepstock.training.train`.
        use_defaults: start from the published tuned configuration (as ``train`` does); the
            tuner passes ``False`` (its configurations are complete).
        setting: whose published configuration ``use_defaults`` starts from (default: the
            dataset's ``params["setting"]``, else setting 1).
        extras: ``"small"`` (keep only small JSON-able extras) or ``"all"`` (also arrays, in a
            ``.npz``).
        train_fn: the training function (default :func:`deepstock.training.train`); it is
            called with the *resolved* configuration and ``use_defaults=False`` (and
            ``engine="population"`` for that engine).
        engine: ``"sb3"`` (each method's single-run path) or ``"population"`` (the population
            engine, a population of this one run); a population run has its own key.

    Returns:
        the run's summary (:meth:`deepstock.methods.train.TrainResult.summary`) with two more
        entries: ``key`` (the store key) and ``cached`` (``True`` when it was read, not trained).
    """
    if extras not in ("small", "all"):
        raise ValueError(f"extras must be 'small' or 'all', got {extras!r}")
    if setting is None:
        setting = str(dataset.params.get("setting", "setting1"))
    resolved = resolve_config(
        method, regularization, config, use_defaults=use_defaults, setting=setting
    )

    reg_name = get_regularization(regularization).name
    fingerprint = dataset_fingerprint(dataset)
    key = run_key(method, reg_name, resolved, seed, fingerprint, engine=check_engine(engine))
    if device == "auto":
        device = str(resolve_device(device))
    record = store.get(key, device=device)
    if record is not None and not (extras == "all" and record["extras_dropped"]):
        return {**record["result"], "key": key, "cached": True}
    store.require_stored(
        f"{method} {reg_name} on {dataset.name}, seed {seed} (run {key})"
        + (", with its arrays" if record is not None else "")
    )

    if train_fn is None:
        train_fn = default_train
    engine_argument = {"engine": engine} if engine == "population" else {}
    result = train_fn(
        method,
        reg_name,
        dataset,
        dict(resolved),
        seed=seed,
        device=device,
        progress=progress,
        use_defaults=False,
        **engine_argument,
    )
    return _put_result(
        store, key, method, reg_name, resolved, seed, dataset, fingerprint, result, extras, engine
    )


def _put_result(
    store: ResultStore,
    key: str,
    method: str,
    reg_name: str,
    resolved: Mapping[str, Any],
    seed: int,
    dataset: InventoryDataset,
    fingerprint: str,
    result: Any,
    extras: str,
    engine: str,
) -> dict[str, Any]:
    """Write one finished run; its summary with ``key`` and ``cached=False``."""
    summary = result.summary()
    identity = {
        "method": method,
        "regularization": reg_name,
        "config": resolved,
        "seed": seed,
        "dataset": fingerprint,
    }
    if engine == "population":
        identity["engine"] = engine
    stored_key = store.put(
        identity=identity,
        dataset_name=dataset.name,
        result=summary,
        extras=getattr(result, "extras", {}) or {},
        keep_arrays=extras == "all",
        device=str(getattr(result, "device", "cpu")),
    )
    if stored_key != key:  # the identity is built the same way twice; guard against drift
        raise RuntimeError(f"result store key drift: {stored_key} != {key}")
    return {**plain(summary), "key": key, "cached": False}


def cached_train_population(
    store: ResultStore,
    method: str,
    regularization: str,
    dataset: InventoryDataset,
    configs: Sequence[Mapping[str, Any] | None],
    seeds: Sequence[int],
    device: str = "cpu",
    *,
    use_defaults: bool = True,
    setting: str | None = None,
    extras: str = "small",
    max_members: int | None = None,
    on_member_done: Callable[[int, dict[str, Any]], None] | None = None,
    train_population_fn: Callable[..., Any] | None = None,
) -> list[dict[str, Any]]:
    """:func:`cached_train` for many runs at once on the population engine.

    Every run ``(configs[i], seeds[i])`` found in the store is read; the others (each distinct
    key once) are trained together as one population
    (:func:`deepstock.methods.population.engine.train_population`), and each is written to the
    store the moment it finishes, so a killed population loses only its unfinished members.

    Args:
        store, method, regularization, dataset, device, use_defaults, setting, extras: as for
            :func:`cached_train` (``engine="population"``).
        configs, seeds: one per run.
        max_members: the most members per computation (default: chosen from the device).
        on_member_done: ``on_member_done(i, summary)`` as soon as run ``i`` is known (read from
            the store or finished), with the summary :func:`cached_train` returns.
        train_population_fn: the population trainer (default ``train_population``), for tests.

    Returns:
        one summary per run, in input order (``key`` and ``cached`` included).
    """
    if extras not in ("small", "all"):
        raise ValueError(f"extras must be 'small' or 'all', got {extras!r}")
    if len(configs) != len(seeds):
        raise ValueError(
            f"configs and seeds must have the same length, got {len(configs)} and {len(seeds)}"
        )
    if setting is None:
        setting = str(dataset.params.get("setting", "setting1"))
    reg_name = get_regularization(regularization).name
    fingerprint = dataset_fingerprint(dataset)
    if device == "auto":
        device = str(resolve_device(device))
    resolved = [
        resolve_config(method, reg_name, config, use_defaults=use_defaults, setting=setting)
        for config in configs
    ]
    keys = [
        run_key(method, reg_name, config, seed, fingerprint, engine="population")
        for config, seed in zip(resolved, seeds, strict=True)
    ]
    summaries: list[dict[str, Any] | None] = [None] * len(keys)
    pending: dict[str, list[int]] = {}  # key -> the runs it answers (duplicates train once)
    for index, key in enumerate(keys):
        record = store.get(key, device=device)
        if record is not None and not (extras == "all" and record["extras_dropped"]):
            summaries[index] = {**record["result"], "key": key, "cached": True}
            if on_member_done is not None:
                on_member_done(index, summaries[index])
        else:
            pending.setdefault(key, []).append(index)
    if pending:
        store.require_stored(
            f"{method} {reg_name} on {dataset.name} (population runs, first {next(iter(pending))})",
            len(pending),
            len(set(keys)),
        )
        order = list(pending)
        first = [pending[key][0] for key in order]

        def finished(position: int, result: Any) -> None:
            key = order[position]
            index = first[position]
            summary = _put_result(
                store,
                key,
                method,
                reg_name,
                resolved[index],
                int(seeds[index]),
                dataset,
                fingerprint,
                result,
                extras,
                "population",
            )
            for same in pending[key]:
                summaries[same] = dict(summary)
                if on_member_done is not None:
                    on_member_done(same, summaries[same])

        trainer = train_population_fn or train_population
        trainer(
            method,
            reg_name,
            dataset,
            [dict(resolved[index]) for index in first],
            [int(seeds[index]) for index in first],
            device=device,
            max_members=max_members,
            on_member_done=finished,
        )
    missing = [index for index, summary in enumerate(summaries) if summary is None]
    if missing:
        raise RuntimeError(f"the population trainer did not report runs {missing}")
    return [summary for summary in summaries if summary is not None]
