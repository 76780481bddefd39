"""The book's parameter files: ``save_params`` pickles a dict of NumPy arrays,
``load_params`` unpickles one. Pure file I/O; what the arrays must be is the network's.

Unpickling runs whatever callables a file names, so a pickle from elsewhere could run
any code. ``read`` admits only what a dict of arrays needs: its unpickler resolves just
NumPy's array and dtype reconstructors (under NumPy 1's ``numpy.core`` and NumPy 2's
``numpy._core`` names, the layouts of pickle protocols 2 to 5), each replaced by a
checking stand-in, and refuses every other name before anything is called. The result
must then be a dict of str to float ndarrays; anything else is one ValueError naming
the file.
"""

from __future__ import annotations

import os
import pickle

import numpy as np

from . import serialize

PROTOCOL = 4  # readable by every Python 3 the book ran on (3.4+); NumPy's plain layout


class _NdarrayName:
    """What the name ``numpy.ndarray`` resolves to: only ``_reconstruct`` takes it."""

    __slots__ = ()


_NDARRAY = _NdarrayName()


def _reconstruct(subtype, shape, dtype):
    """``numpy.core.multiarray._reconstruct(ndarray, (0,), b'b')``, the start of protocol
    2-4 array pickles: an empty array, whose ``__setstate__`` (the pickle's BUILD) then
    sets shape, dtype and data, checking that the data fits."""
    if subtype is not _NDARRAY:
        raise pickle.UnpicklingError("_reconstruct: not of numpy.ndarray")
    return np.empty(0, np.uint8)


def _frombuffer(buf, dtype, shape, order):
    """``numpy.core.numeric._frombuffer``, protocol 5's array layout."""
    if not isinstance(dtype, np.dtype) or dtype.hasobject or order not in ("C", "F"):
        raise pickle.UnpicklingError(f"_frombuffer: dtype {dtype!r}, order {order!r}")
    return np.frombuffer(buf, dtype).reshape(shape, order=order)


def _latin1(text, encoding="latin1"):
    """``_codecs.encode(text, 'latin1')``: how protocol 2 stores bytes (the array data)."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(f"_codecs.encode: {encoding!r}")
    return text.encode("latin1")


_ALLOWED = {
    ("numpy", "ndarray"): _NDARRAY,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): _latin1,
    **{(f"numpy.{core}.multiarray", "_reconstruct"): _reconstruct for core in ("core", "_core")},
    **{(f"numpy.{core}.numeric", "_frombuffer"): _frombuffer for core in ("core", "_core")},
}


class _Unpickler(pickle.Unpickler):
    def find_class(self, module, name):
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"it names {module}.{name}, which a file of "
                                         "parameters does not need (refused, not run)") from None


def read(path) -> dict:
    """{name: float ndarray} from a pickle written by the book's ``save_params`` (or
    fastnn's). FileNotFoundError when ``path`` does not exist; one ValueError naming it
    for anything but a pickled dict of str to float arrays (no code from it is run)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such parameter file")
    try:
        with open(path, "rb") as f:
            obj = _Unpickler(f).load()
    except Exception as exc:  # whatever a damaged or hostile file provokes
        raise ValueError(f"{path}: not a parameter file (a pickled dict of NumPy arrays): "
                         f"{type(exc).__name__}: {exc}") from None
    if type(obj) is not dict:
        raise ValueError(f"{path}: not a parameter file: it holds a {type(obj).__name__}, "
                         "not a dict of NumPy arrays")
    for key, value in obj.items():
        if type(key) is not str:
            raise ValueError(f"{path}: not a parameter file: a key is {key!r}, not a name")
        if type(value) is not np.ndarray or value.dtype.kind != "f":
            got = type(value).__name__ + (f" of dtype {value.dtype}"
                                          if isinstance(value, np.ndarray) else "")
            raise ValueError(f"{path}: not a parameter file: {key!r} is a {got}, not a "
                             "float array")
    return obj


def write(path, params) -> None:
    """Pickle ``params`` as a plain dict of standalone arrays (the book's layout),
    atomically, with the usual permissions (``serialize.atomic_write``)."""
    arrays = {key: np.array(value) for key, value in params.items()}
    serialize.atomic_write(path, lambda f: pickle.dump(arrays, f, protocol=PROTOCOL))
