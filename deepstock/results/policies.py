"""Trained policies as files: save the best policy of a run, load it anywhere, ask it for orders.

A *policy file* (suffix ``.safetensors``) is a `safetensors <https://huggingface.co/docs/
safetensors>`_ file: tensors and a text header, never pickled Python objects, so loading one
cannot run code. It holds everything :func:`load_policy` needs, with nothing but the package:

* the network's layers (``layer.<i>.weight`` / ``.bias``, float32) and the list of layer kinds
  (``linear``, ``relu``, ``elu``, ``tanh``, ``flatten``);
* for an RL policy (DDPG, PPO) the env's action map (``low``, ``high``, ``size``, ``scaling``)
  that turns the actor's action into the regularization's raw output;
* the regularization's name, the method, the resolved configuration and the seed;
* the network-input normalization: whether inputs are normalized (Coeff/Both), the order cap,
  the demand features, and per SKU of the training dataset the feature ranges the policy saw
  (``normalization.sku_id`` / ``.feature_min`` / ``.feature_max``: what the simulator computed
  on each SKU's split, see :func:`deepstock.model.regularizations.network_input`);
* the dataset's name, constants (costs, cap, lost sales, objective), feature names, maximum
  lead time and fingerprint (:func:`deepstock.results.store.dataset_fingerprint`);
* the metrics the run reported on train, val and test, and the code version
  (:func:`deepstock.results.store.code_version`);
* a SHA-256 checksum over the header and every tensor's bytes.

:func:`load_policy` refuses a file whose checksum does not match (altered after it was written)
and warns when the file comes from another code version (the numbers may then differ in the
last digits). The checksum guards against damage and edits, it is not a signature: whoever
can write the file can also rewrite its checksum, so load policy files from sources you trust
(safetensors itself never runs code from a file). A loaded :class:`TrainedPolicy` is a simulator policy giving exactly the orders of
the policy it was saved from: it is rebuilt from the same layer classes
(:class:`~deepstock.model.regularizations.NetworkPolicy` for DS,
:class:`~deepstock.methods.envs.ActorPolicy` for DDPG and PPO) with the same weights, and
:func:`save_policy` checks that the rebuilt network reproduces the original bit for bit before
it writes.

:func:`cached_policy` trains through the result store (:func:`deepstock.results.store.cached_train`)
and keeps the policy file beside the run's record, so that a stored run can be evaluated and
asked for orders without retraining.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from deepstock.core.files import atomic_write
from deepstock.methods.common import TrainResult, evaluate_policy
from deepstock.methods.envs import ActionMap, ActorPolicy
from deepstock.methods.train import train as train_run
from deepstock.model.dataset import SPLITS, InventoryDataset
from deepstock.model.regularizations import (
    NetworkPolicy,
    get_regularization,
    is_builtin,
    network_input,
)
from deepstock.model.simulator import InventorySimulator, Observation
from deepstock.results.store import (
    ResultStore,
    cached_train,
    canonical_json,
    code_version,
    dataset_fingerprint,
)

__all__ = [
    "POLICY_FORMAT",
    "POLICY_FORMAT_VERSION",
    "POLICY_SUFFIX",
    "TrainedPolicy",
    "cached_policy",
    "load_policy",
    "read_state",
    "save_policy",
]

#: The header's ``format`` and its version.
POLICY_FORMAT = "deepstock-policy"
POLICY_FORMAT_VERSION = 1

#: The suffix of a policy file.
POLICY_SUFFIX = ".safetensors"

#: Layer kinds a policy file can hold, and the module that rebuilds each.
_ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "elu": nn.ELU,
    "tanh": nn.Tanh,
    "flatten": nn.Flatten,
}

_HEADER_KEY = "deepstock"


# ====================================================================== networks as layer lists
def _layers_of(network: nn.Module) -> list[nn.Module]:
    """The leaf modules of ``network`` in registration order; every one must be a plain layer
    (:class:`torch.nn.Linear` or an activation of :data:`_ACTIVATIONS`) and no container may
    hold parameters or buffers of its own."""
    layers = []
    for name, module in network.named_modules():
        children = list(module.children())
        if children:
            own = list(module.named_parameters(recurse=False))
            own += list(module.named_buffers(recurse=False))
            if own:
                raise ValueError(
                    f"cannot save the policy: module {name or 'network'!r} "
                    f"({type(module).__name__}) holds tensors of its own"
                )
            continue
        if isinstance(module, nn.Linear) or type(module) in _ACTIVATIONS.values():
            layers.append(module)
        elif isinstance(module, nn.Identity):
            continue
        else:
            raise ValueError(
                f"cannot save the policy: layer {name!r} is a {type(module).__name__}; a policy "
                f"file holds Linear layers and {sorted(_ACTIVATIONS)} activations"
            )
    return layers


def _describe(layers: Sequence[nn.Module]) -> tuple[list[dict[str, Any]], dict[str, Tensor]]:
    """The JSON description and the tensors of ``layers``."""
    spec: list[dict[str, Any]] = []
    tensors: dict[str, Tensor] = {}
    for index, layer in enumerate(layers):
        if isinstance(layer, nn.Linear):
            spec.append(
                {
                    "kind": "linear",
                    "in": layer.in_features,
                    "out": layer.out_features,
                    "bias": layer.bias is not None,
                }
            )
            tensors[f"layer.{index}.weight"] = layer.weight.detach().cpu().contiguous()
            if layer.bias is not None:
                tensors[f"layer.{index}.bias"] = layer.bias.detach().cpu().contiguous()
        else:
            kind = next(k for k, cls in _ACTIVATIONS.items() if type(layer) is cls)
            entry: dict[str, Any] = {"kind": kind}
            if kind == "elu":
                entry["alpha"] = float(layer.alpha)
            if kind == "flatten":
                entry["start_dim"], entry["end_dim"] = int(layer.start_dim), int(layer.end_dim)
            spec.append(entry)
    return spec, tensors


def _build(spec: Sequence[Mapping[str, Any]], tensors: Mapping[str, Tensor]) -> nn.Sequential:
    """The network described by ``spec`` with the weights of ``tensors`` (float32, CPU)."""
    layers: list[nn.Module] = []
    for index, entry in enumerate(spec):
        kind = entry.get("kind")
        if kind == "linear":
            layer = nn.Linear(int(entry["in"]), int(entry["out"]), bias=bool(entry["bias"]))
            with torch.no_grad():
                layer.weight.copy_(tensors[f"layer.{index}.weight"])
                if entry["bias"]:
                    layer.bias.copy_(tensors[f"layer.{index}.bias"])
            layers.append(layer)
        elif kind == "elu":
            layers.append(nn.ELU(alpha=float(entry["alpha"])))
        elif kind == "flatten":
            layers.append(nn.Flatten(int(entry["start_dim"]), int(entry["end_dim"])))
        elif kind in _ACTIVATIONS:
            layers.append(_ACTIVATIONS[kind]())
        else:
            raise ValueError(f"unknown layer kind {kind!r} at position {index}")
    return nn.Sequential(*layers).eval()


# ====================================================================== normalization
def _feature_ranges(dataset: InventoryDataset) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per SKU (in dataset order): ``sku_id`` and the feature minima/maxima the simulator gives
    it when its split is simulated (``(n,)``, ``(n, F)``, ``(n, F)``)."""
    ids, lows, highs = [], [], []
    for split in SPLITS:
        mask = dataset.split == split
        if not mask.any():
            continue
        simulator = InventorySimulator.from_dataset(dataset.subset(split), device="cpu")
        ids.append(dataset.sku_id[mask])
        lows.append(simulator.feature_min.numpy())
        highs.append(simulator.feature_max.numpy())
    return np.concatenate(ids), np.concatenate(lows), np.concatenate(highs)


# ====================================================================== the loaded policy
class TrainedPolicy(nn.Module):
    """A policy loaded from a policy file: a simulator policy that can also recommend orders.

    Call it on an :class:`~deepstock.model.simulator.Observation` (``(batch,)`` orders, units)
    like any simulator policy, :meth:`evaluate` it on a dataset, or ask :meth:`order` for
    today's orders of a list of SKUs.

    Attributes:
        header: the file's header (method, regularization, config, dataset, metrics, ...).
        path: the file it was loaded from (``None`` when built in memory).
        policy: the rebuilt policy (:class:`~deepstock.model.regularizations.NetworkPolicy` or
            :class:`~deepstock.methods.envs.ActorPolicy`).
    """

    def __init__(
        self,
        header: Mapping[str, Any],
        tensors: Mapping[str, Tensor],
        *,
        path: Path | None = None,
    ) -> None:
        super().__init__()
        self.header = dict(header)
        self.path = path
        network = _build(header["network"]["layers"], tensors)
        reg = get_regularization(header["regularization"])
        problem = header["dataset"]
        coeff = tuple(int(i) for i in header["normalization"]["coeff_features"])
        cap = float(problem["max_replenish"])
        action = header["network"].get("action_map")
        if action is None:
            self.policy: nn.Module = NetworkPolicy(network, reg, cap, coeff)
        else:
            action_map = ActionMap(
                float(action["low"]), float(action["high"]), int(action["size"]), action["scaling"]
            )
            self.policy = ActorPolicy(network, reg, action_map, cap, coeff)
        self.policy.eval()
        self.range_sku_id = tensors["normalization.sku_id"].numpy()
        self.range_min = tensors["normalization.feature_min"].numpy()
        self.range_max = tensors["normalization.feature_max"].numpy()

    # ---- what it is -------------------------------------------------------------------------
    @property
    def method(self) -> str:
        return str(self.header["method"])

    @property
    def regularization(self) -> str:
        return str(self.header["regularization"])

    @property
    def config(self) -> dict[str, Any]:
        return dict(self.header["config"])

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(self.header["dataset"]["feature_names"])

    @property
    def max_lead_time(self) -> int:
        """``Lmax`` of the training data: the network reads ``Lmax + 1`` pipeline slots."""
        return int(self.header["dataset"]["max_lead_time"])

    @property
    def dataset_fingerprint(self) -> str:
        return str(self.header["dataset"]["fingerprint"])

    @property
    def metrics(self) -> dict[str, dict[str, float]]:
        """The metrics the training run reported: ``{"train": .., "val": .., "test": ..}``."""
        return {split: dict(values) for split, values in self.header["metrics"].items()}

    def __repr__(self) -> str:
        where = f" from {self.path}" if self.path is not None else ""
        return (
            f"TrainedPolicy({self.method} / {self.regularization} trained on "
            f"{self.header['dataset']['name']!r}{where})"
        )

    # ---- acting -----------------------------------------------------------------------------
    def forward(self, observation: Observation) -> Tensor:
        return self.policy(observation)

    def raw_output(self, observation: Observation) -> Tensor:
        """``(batch, output_size)`` the regularization's raw outputs (an order, a base-stock
        level, coefficients and a bias) for ``observation``, float64."""
        policy = self.policy
        if isinstance(policy, NetworkPolicy):
            with torch.no_grad():
                return policy.raw_output(observation).to(observation.pipeline.dtype)
        inputs = network_input(
            observation,
            policy.regularization.normalized_inputs,
            policy.max_replenish,
            coeff_features=policy.coeff_features,
        )
        with torch.no_grad():
            actions = policy.actor(inputs.to(torch.float32))
        return policy.action_map.to_raw(actions.to(observation.pipeline))

    def base_stock_level(self, observation: Observation) -> Tensor | None:
        """``(batch,)`` the order-up-to level of a Base or Both policy (units), else ``None``:
        the order is ``clip(level - inventory position, 0, max_replenish)``."""
        reg = self.policy.regularization
        if not is_builtin(reg) or reg.name not in ("base", "both"):
            return None
        raw = self.raw_output(observation)
        if reg.name == "base":
            return raw[:, 0]
        coeff = observation.features[:, list(self.policy.coeff_features)]
        return reg.target(raw, coeff)

    def _check_dataset(self, dataset: InventoryDataset) -> None:
        names = self.feature_names
        if tuple(dataset.feature_names) != names:
            raise ValueError(
                f"dataset {dataset.name!r} has features {list(dataset.feature_names)}; the "
                f"policy was trained on {list(names)} (same names, same order)"
            )
        if dataset.max_lead_time != self.max_lead_time:
            raise ValueError(
                f"dataset {dataset.name!r} has maximum lead time {dataset.max_lead_time} days; "
                f"the policy reads {self.max_lead_time + 1} pipeline slots (maximum lead time "
                f"{self.max_lead_time})"
            )

    def evaluate(self, dataset: InventoryDataset, split: str = "test") -> dict[str, float]:
        """The paper's metrics of the policy on one split of ``dataset`` (float64, no gradient):
        ``loss`` (the dataset's objective), ``stockout_rate`` (a share of counted days),
        ``turnover_time`` (days, capped at 28) and ``objective`` (``J``)."""
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        self._check_dataset(dataset)
        return evaluate_policy(self.policy, dataset.subset(split), device="cpu")

    def order(
        self, state: pd.DataFrame | str | os.PathLike[str] | Sequence[Mapping[str, Any]]
    ) -> pd.DataFrame:
        """Today's recommended order per SKU.

        Args:
            state: a frame, a list of records, or a ``.csv``/``.json`` file (:func:`read_state`)
                with one row per SKU: ``sku_id``; ``on_hand`` (units on hand now);
                ``arriving_1`` .. ``arriving_L`` (units arriving in 1 .. L days; missing columns
                are 0, ``L`` up to the policy's maximum lead time); one column per feature of
                the policy (today's context, in the units of the training data); and, for a
                Coeff/Both policy, the SKU's feature range as ``<feature>_min`` /
                ``<feature>_max`` columns, which default (where missing or empty) to the range
                the SKU had in the training data (a SKU it never saw needs them).

        Returns:
            A frame with ``sku_id``, ``order`` (units, in ``[0, max_replenish]``), the
            ``inventory_position`` (units) and, for Base and Both policies, the
            ``base_stock_level`` the order fills up to. It assumes today is an order day.
        """
        frame = read_state(state) if not isinstance(state, pd.DataFrame) else state.copy()
        observation = self._observation(frame)
        with torch.no_grad():
            orders = self.policy(observation)
        out = pd.DataFrame(
            {
                "sku_id": frame["sku_id"].to_numpy(),
                "order": orders.numpy(),
                "inventory_position": observation.inventory_position.numpy(),
            }
        )
        level = self.base_stock_level(observation)
        if level is not None:
            out["base_stock_level"] = level.to(torch.float64).numpy()
        return out

    def _observation(self, frame: pd.DataFrame) -> Observation:
        """The :class:`Observation` of the SKUs of a state frame (errors name the column)."""
        width = self.max_lead_time + 1
        names = self.feature_names
        known = {"sku_id", "on_hand", *names}
        known |= {f"arriving_{k}" for k in range(1, width)}
        known |= {f"{name}_{end}" for name in names for end in ("min", "max")}
        unknown = [column for column in frame.columns if column not in known]
        if unknown:
            raise ValueError(
                f"state: unknown columns {unknown}; expected sku_id, on_hand, "
                f"arriving_1..arriving_{width - 1}, the features {list(names)} and optional "
                "<feature>_min / <feature>_max"
            )
        missing = [column for column in ("sku_id", "on_hand", *names) if column not in frame]
        if missing:
            raise ValueError(f"state: missing columns {missing}")
        if frame.empty:
            raise ValueError("state: no SKUs")

        def numbers(column: str) -> np.ndarray:
            values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=np.float64)
            bad = ~np.isfinite(values)
            if bad.any():
                row = int(np.flatnonzero(bad)[0])
                raise ValueError(
                    f"state: column {column!r} row {row + 1} (sku_id {frame['sku_id'].iloc[row]}) "
                    f"must be a finite number, got {frame[column].iloc[row]!r}"
                )
            return values

        sku = numbers("sku_id")
        if (sku != np.round(sku)).any():
            raise ValueError("state: column 'sku_id' must hold integers")
        pipeline = np.zeros((len(frame), width))
        pipeline[:, 0] = numbers("on_hand")
        for slot in range(1, width):
            column = f"arriving_{slot}"
            if column in frame:
                pipeline[:, slot] = numbers(column)
        if (pipeline[:, 1:] < 0).any():
            raise ValueError("state: arriving_<k> must be >= 0 units")
        features = np.stack([numbers(name) for name in names], axis=1) if names else None
        features = features if features is not None else np.zeros((len(frame), 0))
        low, high = self._ranges(frame, sku.astype(np.int64))
        pipeline_t = torch.as_tensor(pipeline, dtype=torch.float64)
        n = len(frame)
        return Observation(
            day=0,
            pipeline=pipeline_t,
            inventory_position=pipeline_t.sum(dim=1),
            features=torch.as_tensor(features, dtype=torch.float64),
            feature_min=torch.as_tensor(low, dtype=torch.float64),
            feature_max=torch.as_tensor(high, dtype=torch.float64),
            index=torch.arange(n),
            order_day=torch.ones(n, dtype=torch.bool),
        )

    def _ranges(self, frame: pd.DataFrame, sku: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(n, F)`` feature minima and maxima of the state's SKUs: the ``<feature>_min`` /
        ``_max`` columns where they hold a number, else the SKU's range in the training data."""
        names = self.feature_names
        n = len(frame)
        low = np.zeros((n, len(names)))
        high = np.zeros((n, len(names)))
        position = {int(s): i for i, s in enumerate(self.range_sku_id.tolist())}
        rows = np.array([position.get(int(s), -1) for s in sku])
        known = rows >= 0
        low[known], high[known] = self.range_min[rows[known]], self.range_max[rows[known]]
        given = np.ones((n, len(names)), dtype=bool)
        for index, name in enumerate(names):
            for end, target in (("min", low), ("max", high)):
                column = f"{name}_{end}"
                values = np.full(n, np.nan)
                if column in frame:
                    values = pd.to_numeric(frame[column], errors="coerce").to_numpy(np.float64)
                if np.isinf(values).any():
                    raise ValueError(f"state: column {column!r} must hold finite numbers")
                finite = np.isfinite(values)
                target[finite, index] = values[finite]
                given[:, index] &= finite
        if self.policy.regularization.normalized_inputs and names:
            lacking = ~known & ~given.all(axis=1)
            if lacking.any():
                raise ValueError(
                    f"state: sku_id {int(sku[np.flatnonzero(lacking)[0]])} is not in the "
                    f"policy's training data, so its feature range is unknown: give "
                    f"{[f'{n}_min' for n in names]} and {[f'{n}_max' for n in names]}"
                )
        return low, high


def read_state(state: str | os.PathLike[str] | Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Today's state per SKU as a frame: from a ``.csv`` file, a ``.json`` file (a list of
    objects, or ``{"skus": [...]}``) or a list of records (columns: :meth:`TrainedPolicy.order`)."""
    if isinstance(state, (str, os.PathLike)):
        path = Path(state)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such state file")
        if path.suffix.lower() == ".csv":
            return pd.read_csv(path)
        if path.suffix.lower() == ".json":
            try:
                loaded = json.loads(path.read_text(encoding="utf-8"))
            except json.JSONDecodeError as error:
                raise ValueError(f"{path}: not valid JSON: {error}") from None
            if isinstance(loaded, dict) and "skus" in loaded:
                loaded = loaded["skus"]
            if not isinstance(loaded, list) or not all(isinstance(r, dict) for r in loaded):
                raise ValueError(f'{path}: must hold a list of objects (or {{"skus": [...]}})')
            return pd.DataFrame(loaded)
        raise ValueError(f"{path}: a state file is a .csv or a .json file")
    return pd.DataFrame(list(state))


# ====================================================================== writing and reading
def _checksum(header: Mapping[str, Any], tensors: Mapping[str, Tensor]) -> str:
    digest = hashlib.sha256(canonical_json(header).encode())
    for name in sorted(tensors):
        tensor = tensors[name].contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.numpy().tobytes())
    return digest.hexdigest()


def _network_of(policy: Any) -> tuple[nn.Module, dict[str, Any] | None]:
    if isinstance(policy, NetworkPolicy):
        return policy.network, None
    if isinstance(policy, ActorPolicy):
        action_map = policy.action_map
        return policy.actor, {
            "low": float(action_map.low),
            "high": float(action_map.high),
            "size": int(action_map.size),
            "scaling": str(action_map.scaling),
        }
    raise ValueError(
        f"cannot save a policy of type {type(policy).__name__}: a policy file holds a network "
        "policy (DS) or an actor policy (DDPG, PPO)"
    )


def save_policy(
    result: TrainResult, path: str | os.PathLike[str], dataset: InventoryDataset
) -> Path:
    """Write the best policy of ``result`` (trained on ``dataset``) to the policy file ``path``.

    The file is written atomically (module docstring for its content). Before writing, the
    rebuilt network is run on a probe input and must give the original's outputs bit for bit.

    Returns:
        The file.

    Raises:
        ValueError: the policy holds a layer a policy file cannot describe, or the rebuilt
            network differs from the original.
    """
    from safetensors.torch import save as safetensors_bytes

    path = Path(path)
    network, action_map = _network_of(result.policy)
    layers = _layers_of(network)
    spec, tensors = _describe(layers)
    reg = get_regularization(result.regularization)
    sku_id, low, high = _feature_ranges(dataset)
    tensors["normalization.sku_id"] = torch.as_tensor(sku_id, dtype=torch.int64)
    tensors["normalization.feature_min"] = torch.as_tensor(low, dtype=torch.float64)
    tensors["normalization.feature_max"] = torch.as_tensor(high, dtype=torch.float64)
    header: dict[str, Any] = {
        "format": POLICY_FORMAT,
        "format_version": POLICY_FORMAT_VERSION,
        "method": result.method,
        "regularization": reg.name,
        "config": result.config,
        "seed": int(result.seed),
        "network": {"layers": spec, "action_map": action_map},
        "normalization": {
            "normalized_inputs": bool(reg.normalized_inputs),
            "coeff_features": list(dataset.coeff_features),
            "max_replenish": dataset.max_replenish,
            "feature_ranges": "per SKU of the training data (normalization.* tensors)",
        },
        "dataset": {
            "name": dataset.name,
            "fingerprint": dataset_fingerprint(dataset),
            "feature_names": list(dataset.feature_names),
            "max_lead_time": dataset.max_lead_time,
            "holding_cost": dataset.holding_cost,
            "backlog_cost": dataset.backlog_cost,
            "max_replenish": dataset.max_replenish,
            "lost_sales": dataset.lost_sales,
            "objective": dataset.objective,
            "split_sizes": dataset.split_sizes(),
        },
        "metrics": {
            "train": result.train_metrics,
            "val": result.val_metrics,
            "test": result.test_metrics,
        },
        "code_version": code_version(),
    }
    header = json.loads(canonical_json(header))
    rebuilt = TrainedPolicy(header, tensors)
    width = next(layer.in_features for layer in layers if isinstance(layer, nn.Linear))
    probe = torch.linspace(-2.0, 2.0, 7 * width, dtype=torch.float32).reshape(7, width)
    device = next(network.parameters()).device
    with torch.no_grad():
        original = network(probe.to(device)).cpu()
        again = rebuilt.policy.network(probe) if action_map is None else rebuilt.policy.actor(probe)
    if not torch.equal(original, again):
        raise ValueError(
            "cannot save the policy: its network is not a plain sequence of its layers (the "
            "rebuilt network gives other outputs)"
        )
    metadata = {_HEADER_KEY: json.dumps(header), "checksum": _checksum(header, tensors)}
    atomic_write(path, safetensors_bytes(tensors, metadata=metadata))
    return path


def load_policy(path: str | os.PathLike[str], *, warn_version: bool = True) -> TrainedPolicy:
    """Read a policy file written by :func:`save_policy`.

    ``warn_version=False`` leaves out the warning below (:func:`cached_policy` reads the files of
    its store so, as the store reuses its records of other code versions unless it is strict).

    Raises:
        FileNotFoundError: no such file.
        ValueError: not a policy file, of another format version, or altered (checksum).

    Warns:
        UserWarning: the file was written by another code version (package version or
            source hash of :func:`deepstock.results.store.code_version`); the policy loads,
            its numbers may differ in the last digits.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load as safetensors_load

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such policy file")
    data = path.read_bytes()
    try:
        tensors = safetensors_load(data)
        length = int.from_bytes(data[:8], "little")
        metadata = json.loads(data[8 : 8 + length]).get("__metadata__") or {}
        header = json.loads(metadata[_HEADER_KEY])
        checksum = metadata["checksum"]
    except (SafetensorError, ValueError, KeyError, TypeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: not a deepstock policy file ({error})") from None
    if not isinstance(header, dict) or header.get("format") != POLICY_FORMAT:
        raise ValueError(f"{path}: not a deepstock policy file (no {POLICY_FORMAT!r} header)")
    if header.get("format_version") != POLICY_FORMAT_VERSION:
        raise ValueError(
            f"{path}: policy format version {header.get('format_version')!r}, this version of "
            f"deepstock reads {POLICY_FORMAT_VERSION}"
        )
    if _checksum(header, tensors) != checksum:
        raise ValueError(f"{path}: checksum mismatch, the file was altered; refusing to load it")
    saved, current = header["code_version"], code_version()
    changed = [key for key in ("package", "source_hash") if saved.get(key) != current.get(key)]
    if changed and warn_version:
        warnings.warn(
            f"{path}: written by another code version (package {saved.get('package')}, source "
            f"hash {saved.get('source_hash')}; this is {current['package']}, "
            f"{current['source_hash']}): it loads, its numbers may differ in the last digits",
            stacklevel=2,
        )
    return TrainedPolicy(header, tensors, path=path)


# ====================================================================== with the result store
def cached_policy(
    store: ResultStore,
    method: str,
    regularization: str,
    dataset: InventoryDataset,
    config: Mapping[str, Any] | None = None,
    seed: int = 0,
    device: str = "cpu",
    **options: Any,
) -> tuple[dict[str, Any], TrainedPolicy]:
    """:func:`~deepstock.results.store.cached_train` that also keeps the run's policy file.

    The file is ``store.policy_path(key)``, beside the run's record. A run stored without its
    policy file (by a plain ``cached_train``) is trained once more, with its recorded
    configuration and seed, to write it; a warning says so if the retrained numbers differ from
    the record's (another machine or code version).

    Returns:
        ``(summary, policy)``: the run's summary (as ``cached_train`` returns it) and the
        loaded :class:`TrainedPolicy`.
    """
    trained: dict[str, TrainResult] = {}

    def train_and_keep(*args: Any, **kwargs: Any) -> TrainResult:
        trained["result"] = train_run(*args, **kwargs)
        return trained["result"]

    summary = cached_train(
        store,
        method,
        regularization,
        dataset,
        config,
        seed,
        device,
        train_fn=train_and_keep,
        **options,
    )
    path = store.policy_path(summary["key"])
    if "result" in trained:
        save_policy(trained["result"], path, dataset)
    elif not path.is_file():
        result = train_run(
            method,
            summary["regularization"],
            dataset,
            dict(summary["config"]),
            seed=seed,
            device=device,
            use_defaults=False,
        )
        if result.val_loss != summary["val"]["loss"]:
            warnings.warn(
                f"run {summary['key']}: retrained to keep its policy, validation loss "
                f"{result.val_loss!r} differs from the stored {summary['val']['loss']!r}",
                stacklevel=2,
            )
        save_policy(result, path, dataset)
    return summary, load_policy(path, warn_version=False)
