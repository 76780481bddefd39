"""Backend lookup: "numpy" is ``fastnn.reference``, "numba" is ``fastnn.kernels``."""

from __future__ import annotations

import importlib

BACKENDS = ("numba", "numpy")
_MODULES = {"numpy": "fastnn.reference", "numba": "fastnn.kernels"}


def get_backend(name: str):
    """Return the module that implements backend ``name`` (numba is imported lazily)."""
    if not isinstance(name, str) or name.lower() not in _MODULES:
        raise ValueError(f"backend: expected one of {', '.join(map(repr, BACKENDS))}, "
                         f"got {name!r}")
    return importlib.import_module(_MODULES[name.lower()])
