"""Fingerprints of code that the result store cannot see in the package's source hash.

A plug-in regularization (registered with
:func:`deepstock.model.regularizations.register_regularization`) lives outside the package, so
the store adds :func:`regularization_fingerprint` to its runs' keys: editing the plug-in
retrains instead of reading stale runs back.
"""

from __future__ import annotations

import hashlib
import inspect
import json

from deepstock.model.regularizations import Regularization, get_regularization, is_builtin

__all__ = ["class_source", "regularization_fingerprint"]


def regularization_fingerprint(regularization: str | Regularization) -> str | None:
    """A short hash of a plug-in's code and settings; ``None`` for the paper's four.

    The result store adds it to the identity of a plug-in's runs, so that a run stored before the
    plug-in was edited is not read back as if it were current. It hashes the source of the
    plug-in's class and of the classes it inherits from outside this module, and the instance's
    attributes (a plug-in may take parameters); code the class calls elsewhere is not covered.
    A class defined in a notebook has no source file: the source of its methods stands in.
    """
    reg = get_regularization(regularization)
    if is_builtin(reg):
        return None
    digest = hashlib.sha256()
    for cls in type(reg).__mro__:
        if cls.__module__ in (Regularization.__module__, "builtins"):
            continue
        digest.update(class_source(cls).encode())
    attributes = {key: repr(value) for key, value in sorted(vars(reg).items())}
    digest.update(json.dumps(attributes, sort_keys=True).encode())
    return digest.hexdigest()[:16]


def class_source(cls: type) -> str:
    """The source of a class; for a class without a source file (one defined in a notebook
    cell), the source of each of its methods (notebooks keep cells readable) and the values of
    its other attributes; for a method without source either, its bytecode, names and
    constants."""
    try:
        return inspect.getsource(cls)
    except (OSError, TypeError):
        pass
    parts = [cls.__qualname__]
    for key, value in sorted(vars(cls).items()):
        function = value.__func__ if isinstance(value, (staticmethod, classmethod)) else value
        if inspect.isfunction(function):
            try:
                parts.append(inspect.getsource(function))
            except (OSError, TypeError):
                code = function.__code__
                constants = [c for c in code.co_consts if not inspect.iscode(c)]
                parts.append(f"{key}: {code.co_code.hex()} {code.co_names} {constants!r}")
        elif not key.startswith("__"):
            parts.append(f"{key} = {value!r}")
    return "\n".join(parts)
