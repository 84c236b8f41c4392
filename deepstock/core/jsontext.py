"""JSON-ready values and the one canonical JSON text that keys and checksums are hashed from."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["canonical_json", "plain"]


def plain(value: Any) -> Any:
    """``value`` with tuples as lists, mapping keys as strings and NumPy scalars as Python
    numbers (JSON-ready)."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def canonical_json(value: Any) -> str:
    """The canonical JSON text of ``value``: sorted keys, no spaces, tuples as lists."""
    return json.dumps(plain(value), sort_keys=True, separators=(",", ":"), allow_nan=True)
