"""Parameter checks: each raises one ``ValueError`` that names the parameter and what was expected.

Every layer validates its inputs with these, so that a bad value reads the same wherever it is
given (a dataset generator, a method's settings, a profile, the command line).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = [
    "check_choice",
    "check_int",
    "check_int_list",
    "check_integral",
    "check_number",
    "check_pair",
    "is_integer",
    "is_number",
]


def is_integer(value: Any) -> bool:
    """An ``int`` or NumPy integer, not a ``bool``."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def is_number(value: Any) -> bool:
    """An ``int``, ``float`` or NumPy number, not a ``bool``."""
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_)
    )


def check_int(name: str, value: Any, minimum: int | None = None, maximum: int | None = None) -> int:
    """``value`` as an ``int``; it must be an integer in ``[minimum, maximum]``."""
    ok = is_integer(value)
    ok = ok and (minimum is None or value >= minimum) and (maximum is None or value <= maximum)
    if not ok:
        if minimum is not None and maximum is not None:
            expected = f"an integer in [{minimum}, {maximum}]"
        elif minimum is not None:
            expected = f"an integer >= {minimum}"
        elif maximum is not None:
            expected = f"an integer <= {maximum}"
        else:
            expected = "an integer"
        raise ValueError(f"{name} must be {expected}, got {value!r}")
    return int(value)


def check_number(
    name: str,
    value: Any,
    minimum: float | None = None,
    maximum: float | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """``value`` as a ``float``; it must be a finite number in the interval (NaN and infinity
    never pass). ``low_open``/``high_open`` exclude the bound itself."""
    ok = is_number(value) and math.isfinite(float(value))
    if ok and minimum is not None:
        ok = value > minimum if low_open else value >= minimum
    if ok and maximum is not None:
        ok = value < maximum if high_open else value <= maximum
    if not ok:
        if minimum is not None and maximum is not None:
            interval = f"{'(' if low_open else '['}{minimum}, {maximum}{')' if high_open else ']'}"
            expected = f"a finite number in {interval}"
        elif minimum is not None:
            expected = f"a finite number {'>' if low_open else '>='} {minimum}"
        elif maximum is not None:
            expected = f"a finite number {'<' if high_open else '<='} {maximum}"
        else:
            expected = "a finite number"
        raise ValueError(f"{name} must be {expected}, got {value!r}")
    return float(value)


def check_pair(name: str, value: Any, minimum: float | None = None) -> tuple[float, float]:
    """A ``(low, high)`` pair of finite numbers ``>= minimum`` with ``low <= high``."""
    if isinstance(value, (str, bytes)):
        raise ValueError(f"{name} must be a pair (low, high), got {value!r}")
    try:
        low, high = value
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a pair (low, high), got {value!r}") from None
    low = check_number(f"{name}[0]", low, minimum)
    high = check_number(f"{name}[1]", high, minimum)
    if low > high:
        raise ValueError(f"{name} must have low <= high, got {value!r}")
    return (low, high)


def check_choice(name: str, value: Any, choices: Sequence[Any]) -> Any:
    """``value``, which must be one of ``choices``."""
    if value not in tuple(choices):
        raise ValueError(f"{name} must be one of {tuple(choices)}, got {value!r}")
    return value


def check_int_list(name: str, value: Any, minimum: int = 1) -> list[int]:
    """A non-empty list of integers ``>= minimum`` (network widths, for example)."""
    if (
        isinstance(value, (str, bytes))
        or not isinstance(value, Sequence)
        or not value
        or not all(is_integer(item) and item >= minimum for item in value)
    ):
        raise ValueError(f"{name} must be a non-empty list of integers >= {minimum}, got {value!r}")
    return [int(item) for item in value]


def check_integral(name: str, value: Any) -> int:
    """A finite number with an integer value (``100.0`` passes, ``100.5`` does not), as an int."""
    if not is_number(value) or not math.isfinite(float(value)) or float(value) != int(value):
        raise ValueError(f"{name} must be a whole number, got {value!r}")
    return int(value)
