"""Input checks for the public API: cheap, explicit, raised before any kernel runs.

Every error names the argument, says what was expected and what came, and where it
helps, how to fix it. Checks cost O(1) NumPy calls on the inputs (labels: O(N)); NaN/Inf
in ``x`` are counted inside the first layer's fused pass (see ``check_features``).
"""

from __future__ import annotations

import math
import numbers

import numpy as np

_REAL_KINDS = "biuf"  # bool, signed, unsigned, float



class BadValue(ValueError):
    """A ValueError about one named argument. ``argument`` is its name and ``detail`` the
    message without it, so a caller (the command line) names the option the user typed
    without parsing the message."""

    def __init__(self, argument: str, detail: str):
        super().__init__(f"{argument}: {detail}")
        self.argument, self.detail = argument, detail


class BadType(TypeError):
    """A TypeError about one named argument (see ``BadValue``)."""

    def __init__(self, argument: str, detail: str):
        super().__init__(f"{argument}: {detail}")
        self.argument, self.detail = argument, detail


def describe(a) -> str:
    """A short description of an array for error messages: shape and dtype."""
    return f"shape {tuple(a.shape)} and dtype {a.dtype}"


def as_real_array(value, name: str) -> np.ndarray:
    """``np.asarray(value)`` that rejects non-numeric data with a TypeError."""
    try:
        a = np.asarray(value)
    except Exception as exc:  # ragged lists and the like
        raise BadType(name, f"expected an array of real numbers, got {type(value).__name__}"
                        f" that NumPy cannot convert ({exc})") from None
    if a.dtype.kind not in _REAL_KINDS:
        raise BadType(name, f"expected an array of real numbers (integer or float), got "
                        f"dtype {a.dtype}; convert it first, e.g. {name}.astype(np.float64)")
    return a


def check_features(value, name: str, n_features: int, dtype) -> np.ndarray:
    """Validate a batch of inputs and return it as a C-contiguous (N, n_features) array.

    Accepts (N, n_features) or N-D batches (N, ...) whose trailing size is n_features
    (flattened as the book's Affine layer does), any real dtype (cast to ``dtype``) and
    any memory layout. The caller's array is never modified. NaN/Inf are not scanned
    here: the network's first layer counts them in its fused pass and calls
    ``raise_if_nonfinite`` when the count is not zero (a separate pass over x would cost
    more than every other non-GEMM part of a training step).
    """
    if (type(value) is np.ndarray and value.ndim == 2 and value.dtype == dtype
            and value.shape[1] == n_features and value.shape[0] > 0
            and value.flags.c_contiguous):
        # already what the kernels take (a training batch, usually): no NumPy calls,
        # which right after a step's GEMMs cost ~10x their idle time (caches are cold)
        return value
    a = as_real_array(value, name)
    if a.ndim < 2:
        hint = (f"use {name}.reshape(1, -1) for a single sample or {name}.reshape(-1, 1) "
                "for a single feature")
        raise BadValue(name, f"expected a 2-D array (batch, features), got a {a.ndim}-D "
                         f"array of shape {a.shape}; {hint}")
    N = a.shape[0]
    if N == 0:
        raise BadValue(name, f"found an empty batch (shape {a.shape}); at least one "
                         "sample is required")
    features = math.prod(a.shape[1:])
    if features != n_features:
        raise BadValue(name, f"has {features} features per sample (shape {a.shape}), but "
                         f"the network expects {n_features}")
    a = a.reshape(N, features)
    with np.errstate(over="ignore", invalid="ignore"):
        out = np.ascontiguousarray(a, dtype=dtype)
    if a.dtype.kind == "f" and a.dtype.itemsize > out.dtype.itemsize:
        overflow = np.isinf(out) & np.isfinite(a)  # finite data beyond the network's dtype
        if overflow.any():
            n, d = divmod(int(np.flatnonzero(overflow)[0]), features)
            raise BadValue(name, f"value {a[n, d]!r} at sample {n}, feature {d} exceeds the "
                             f"range of this {np.dtype(dtype).name} network (largest "
                             f"{np.finfo(dtype).max:.4g}); scale the data or use "
                             "dtype=np.float64")
    return out


def raise_if_nonfinite(a: np.ndarray, name: str) -> None:
    """Raise a ValueError locating the first NaN/Inf of a 2-D array, if it has any."""
    bad = ~np.isfinite(a)
    if bad.any():
        flat = np.flatnonzero(bad)
        n, d = divmod(int(flat[0]), a.shape[1])
        raise BadValue(name, f"contains NaN or infinity ({flat.size} value(s); the first "
                         f"at sample {n}, feature {d}: {a[n, d]}); remove or impute them")


def check_targets(value, name: str, n_samples: int, n_outputs: int, loss: str, dtype,
                  label_range: bool = True):
    """Validate training targets for ``loss`` and return them ready for the kernels.

    softmax: integer class indices (N,) in [0, n_outputs), returned as intp; or one-hot /
    probability rows (N, n_outputs) that sum to 1, returned as ``dtype``.
    mse, sse: real targets (N, n_outputs), or (N,) when n_outputs == 1, returned as
    ``dtype``.
    ``label_range=False`` leaves the range of class indices to the caller: ``sgd_step``
    checks it inside its kernel (two NumPy reductions between training steps cost more
    than the check, on caches the GEMMs left cold) and raises this module's error.
    """
    if (type(value) is np.ndarray and value.ndim == 1 and loss == "softmax"
            and value.shape[0] == n_samples and value.dtype.kind in "iu"):
        return _class_indices(value, name, n_outputs, label_range)  # the common case, fast
    t = as_real_array(value, name)
    if t.ndim == 0 or t.shape[0] != n_samples:
        got = "a scalar" if t.ndim == 0 else f"{t.shape[0]} samples (shape {t.shape})"
        raise BadValue(name, f"expected one target per sample of x ({n_samples}), got {got}")
    if loss != "softmax":  # the squared errors: real targets
        if t.ndim == 1 and n_outputs == 1:
            t = t.reshape(n_samples, 1)
        if t.shape != (n_samples, n_outputs):
            raise BadValue(name, f"expected regression targets of shape "
                             f"({n_samples}, {n_outputs}), got {t.shape}")
        t = np.ascontiguousarray(t, dtype=dtype)
        if not np.all(np.isfinite(t)):
            raise BadValue(name, "contains NaN or infinity")
        return t
    if t.ndim == 1:
        return _class_indices(t, name, n_outputs, label_range)
    if t.ndim == 2 and t.shape[1] == 1 and n_outputs != 1:
        return _class_indices(t.reshape(-1), name, n_outputs, label_range)
    if t.ndim != 2 or t.shape[1] != n_outputs:
        raise BadValue(name, f"expected integer labels of shape ({n_samples},) or one-hot "
                         f"rows of shape ({n_samples}, {n_outputs}), got shape {t.shape}")
    t = np.ascontiguousarray(t, dtype=dtype)
    row_sums = t.sum(axis=1, dtype=np.float64)
    bad = ~(np.abs(row_sums - 1) <= 1e-4) | (t.min(axis=1) < 0)
    if bad.any():
        n = int(np.flatnonzero(bad)[0])
        raise BadValue(name, f"one-hot rows must be non-negative and sum to 1; row {n} is "
                         f"{t[n].tolist()} (sum {row_sums[n]:g})")
    return t


def _class_indices(t, name: str, n_classes: int, check_range: bool = True) -> np.ndarray:
    if t.dtype.kind not in "iu":
        raise BadType(name, f"expected integer class labels, got dtype {t.dtype}; "
                        f"use {name}.astype(np.int64) (or pass one-hot rows of shape "
                        f"(N, {n_classes}))")
    if check_range or t.dtype == np.uint64:  # (huge uint64 would wrap around in intp)
        check_label_range(t, name, n_classes)
    if t.dtype == np.intp and t.flags.c_contiguous:
        return t
    return np.ascontiguousarray(t, dtype=np.intp)


def check_label_range(t, name: str, n_classes: int) -> None:
    """Raise a ValueError naming the first integer label outside [0, n_classes)."""
    lo, hi = int(t.min()), int(t.max())
    if lo < 0 or hi >= n_classes:
        n = int(np.flatnonzero((t < 0) | (t >= n_classes))[0])
        raise BadValue(name, f"class labels must lie in [0, {n_classes - 1}]; label "
                         f"{int(t[n])} at index {n} is out of range")


def check_positive_int(value, name: str) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise BadType(name, f"expected a positive integer, got {value!r} "
                        f"({type(value).__name__})")
    if value < 1:
        raise BadValue(name, f"expected a positive integer, got {value}")
    return int(value)


def check_non_negative_int(value, name: str) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise BadType(name, f"expected a non-negative integer, got {value!r}")
    if value < 0:
        raise BadValue(name, f"expected a non-negative integer, got {value}")
    return int(value)


def check_seed(value, name: str = "seed") -> int | None:
    """A seed: a non-negative integer, or None (fresh entropy / NumPy's global state)."""
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise BadType(name, f"expected a non-negative int or None, got {value!r}")
    if value < 0:
        raise BadValue(name, f"expected a non-negative int or None, got {value}")
    return int(value)


def check_positive_float(value, name: str) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise BadType(name, f"expected a positive finite number, got {value!r} "
                        f"({type(value).__name__})")
    value = float(value)
    if not (math.isfinite(value) and value > 0):
        raise BadValue(name, f"expected a positive finite number, got {value}")
    return value


def check_unit_interval(value, name: str) -> float:
    """A number in [0, 1) (momentum, decay rates, betas, dropout ratios)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise BadType(name, f"expected a number in [0, 1), got {value!r}")
    value = float(value)
    if not (0.0 <= value < 1.0):
        raise BadValue(name, f"expected a number in [0, 1), got {value!r}")
    return value


def check_non_negative_float(value, name: str) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise BadType(name, f"expected a non-negative number, got {value!r}")
    value = float(value)
    if not (math.isfinite(value) and value >= 0):
        raise BadValue(name, f"expected a non-negative finite number, got {value!r}")
    return value


def check_bool(value, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise BadType(name, f"expected True or False, got {value!r}")
    return bool(value)


def check_choice(value, name: str, choices) -> str:
    if not isinstance(value, str) or value.lower() not in choices:
        raise BadValue(name, f"expected one of {', '.join(map(repr, choices))}, "
                         f"got {value!r}")
    return value.lower()


def check_dtype(value, name: str = "dtype") -> np.dtype:
    try:
        dt = np.dtype(value)
    except TypeError:
        dt = None
    # (``dt is None`` first: NumPy compares None equal to float64, np.dtype(None))
    if dt is None or dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise BadValue(name, f"expected np.float32 or np.float64, got {value!r}")
    return dt
