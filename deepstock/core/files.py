"""Where the project's folders are, and writing a file so that no reader sees half of it."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["atomic_write", "checkout_root", "data_dir"]

#: The package folder (``deepstock/``); the checkout is its parent when one exists.
PACKAGE_DIR = Path(__file__).resolve().parent.parent


def checkout_root() -> Path | None:
    """The project checkout this package lives in (the folder with ``pyproject.toml`` next to
    ``deepstock/``), or ``None`` when the package is installed outside a checkout."""
    root = PACKAGE_DIR.parent
    if (root / "pyproject.toml").is_file() and (root / "deepstock").is_dir():
        return root
    return None


def data_dir(name: str, *, environment: str | None = None, fallback: bool = True) -> Path | None:
    """The folder ``data/<name>`` of the checkout.

    Args:
        name: the sub-folder of ``data/`` (``"results"``, ``"datasets"``, ``"optuna"``).
        environment: a variable that, when set, overrides the folder.
        fallback: outside a checkout, use ``~/.cache/deepstock/<name>``; otherwise return None.
    """
    if environment and os.environ.get(environment):
        return Path(os.environ[environment])
    root = checkout_root()
    if root is not None:
        return root / "data" / name
    return Path.home() / ".cache" / "deepstock" / name if fallback else None


def atomic_write(
    path: str | os.PathLike[str], data: str | bytes, *, tmp_dir: Path | None = None
) -> Path:
    """Write ``data`` (text as UTF-8) to ``path`` through a temporary file and a rename.

    The temporary file lives in ``tmp_dir`` (default: the target's folder), which must be on the
    same file system, so the rename is atomic: a reader sees the old file or the new one, never
    a part. The file is made readable by everyone (mkstemp creates it private).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    folder = Path(tmp_dir) if tmp_dir is not None else path.parent
    folder.mkdir(parents=True, exist_ok=True)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=f".{path.name[:24]}.", suffix=".part")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(payload)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path
