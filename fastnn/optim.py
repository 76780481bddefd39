"""Optimisers, the book's six: ``update(params, grads)`` changes the parameters in place.

``SGD``, ``Momentum``, ``Nesterov``, ``AdaGrad``, ``RMSprop`` and ``Adam`` with the
book's names, defaults and formulas (``fastnn.reference`` has each update in NumPy; the
numba backend runs ``fastnn.kernels.optim``'s one pass over the flat buffers).

State (``v``, ``h``, ``m``) is created on the first update, for the parameters given
then: a network's ``params`` (the state is then flat buffers beside the flat parameter
buffer, bound to that network) or a plain dict of arrays (a book network's ``params``:
per-key arrays, bound to those keys and shapes). Passing another network's parameters
later is an error; use one optimizer per network.

Every check runs before anything changes: a call that raises has updated nothing.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping

import numpy as np

from . import _validation as V
from . import reference
from .params import Gradients, ParamDict, param_views, same_layout


def _check_pair(params, grads) -> None:
    """Reject a missing, misshapen or non-numeric gradient before anything changes."""
    for name, value in (("params", params), ("grads", grads)):
        if not isinstance(value, Mapping):
            raise TypeError(f"{name}: expected a dict of arrays, got {type(value).__name__}")
    for key, p in params.items():
        if key not in grads:
            raise ValueError(f"grads: missing the gradient for parameter {key!r} "
                             f"(grads has {list(grads)})")
        g = grads[key]
        if not isinstance(g, np.ndarray) or g.dtype.kind not in "biuf":
            got = type(g).__name__ + (f" of dtype {g.dtype}" if hasattr(g, "dtype") else "")
            raise TypeError(f"grads[{key!r}]: expected a real-valued ndarray, got {got}")
        if not isinstance(p, np.ndarray):
            raise TypeError(f"params[{key!r}]: expected an ndarray, got {type(p).__name__}")
        if g.shape != p.shape:
            raise ValueError(f"grads[{key!r}]: expected shape {p.shape} (as params[{key!r}]), "
                             f"got {g.shape}")


def _flat_pair(params, grads):
    """(params.flat, grads.flat) when both are intact flat-buffer dicts of one layout."""
    if not (isinstance(params, ParamDict) and isinstance(grads, Gradients)):
        return None
    pf, gf = params.flat, grads.flat
    if pf.shape != gf.shape or pf.dtype != gf.dtype or list(params) != list(grads):
        return None
    if not same_layout(params.layout, getattr(grads, "layout", params.layout)):
        return None
    for key, p in params.items():  # the user may have put other arrays into grads
        g = dict.__getitem__(grads, key)
        if g.base is not gf or g.shape != p.shape:
            return None
    return pf, gf


def _is_number(value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) \
        and not isinstance(value, (bool, np.bool_))


def _number_keys(params, grads) -> list:
    """Keys whose parameter is a plain real number (its gradient must be one too)."""
    if not isinstance(params, Mapping) or not isinstance(grads, Mapping):
        return []
    return [k for k, v in params.items() if _is_number(v)
            and (_is_number(grads.get(k)) or k not in grads)]


def _as_0d(value) -> np.ndarray:
    dtype = value.dtype if isinstance(value, np.floating) else np.float64
    return np.array(value, dtype=dtype)


class Optimizer:
    """Base of the six optimizers: validated hyperparameters, state, ``update``.

    Subclasses set ``_hyper`` (name -> checker), ``_slots`` (state buffers) and
    ``_apply(backend, param, grad, *state)``.
    """

    _hyper: dict = {}
    _slots: tuple = ()
    fused_sgd = False  # True for SGD: a training step runs its fused form

    def __init__(self, **hyper):
        self._state = None  # {slot: flat buffer or {key: array}}
        self._owner = None  # a weak reference to the ParamDict, or the (key, shape) list
        self._lr_checked = None  # (dtype, lr) that lr_for last found fit
        for name, value in hyper.items():
            setattr(self, name, value)

    def __setattr__(self, name, value):
        if name in self._hyper:
            value = self._hyper[name](value, name)
        object.__setattr__(self, name, value)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={getattr(self, k)!r}" for k in self._hyper)
        return f"{type(self).__name__}({args})"

    def fresh(self) -> Optimizer:
        """A new optimizer with the same hyperparameters and no state."""
        return type(self)(**{k: getattr(self, k) for k in self._hyper})

    def lr_for(self, dtype) -> float:
        """lr, after checking that parameters of ``dtype`` can hold it (finite, non-zero);
        checked once for each (dtype, lr), since a training step calls this every time."""
        checked = (dtype, self.lr)
        if checked == getattr(self, "_lr_checked", None):  # (older pickles lack it)
            return self.lr
        with np.errstate(over="ignore", under="ignore"):
            rounded = np.dtype(dtype).type(self.lr)
        if not np.isfinite(rounded) or rounded == 0:
            raise ValueError(f"lr: {self.lr!r} is outside the range of {np.dtype(dtype).name} "
                             f"parameters (it would become {float(rounded)!r}); use a smaller "
                             "learning rate or dtype=np.float64")
        self._lr_checked = checked
        return self.lr

    def prepare(self, net) -> None:
        """Check before training ``net``: lr fits its dtype, and the state (if any) is
        created for its parameters or already theirs (another network's: ValueError)."""
        self.lr_for(net.dtype)
        if not self.fused_sgd:
            self._bind(net.params, True)

    # --- state ----------------------------------------------------------------------

    @property
    def state(self) -> dict:
        """{slot: {key: array}}: the optimizer's state (e.g. Adam's ``m`` and ``v``)."""
        if self._state is None:
            return {}
        out = {}
        for slot, buf in self._state.items():
            out[slot] = dict(param_views(buf, self._layout)) if isinstance(buf, np.ndarray) \
                else dict(buf)
        return out

    def __getstate__(self):
        """Pickling keeps the hyperparameters and the state; the tie to a network (a weak
        reference) becomes the state's shape, adopted by the first network that fits."""
        state = dict(self.__dict__)
        if isinstance(state.get("_owner"), weakref.ref):
            state["_owner"] = None
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)

    def _bind(self, params, flat: bool) -> None:
        """Create the state for ``params`` on first use, else check it is theirs."""
        if not self._slots:  # SGD: no state, any parameters
            return
        if self._state is not None and self._owner is None:  # unpickled: adopt a fit
            first = next(iter(self._state.values()))
            if isinstance(params, ParamDict) and isinstance(first, np.ndarray) \
                    and first.shape == params.flat.shape \
                    and same_layout(self._layout, params.layout):
                self._owner = weakref.ref(params)
                return
            raise ValueError(f"params: this {type(self).__name__}'s state (unpickled) does not "
                             "fit these parameters; use a new optimizer for each network")
        if self._state is None:
            if isinstance(params, ParamDict):
                self._owner = weakref.ref(params)
                self._layout = params.layout
                self._state = {s: np.zeros_like(params.flat) for s in self._slots}
            else:
                self._owner = [(k, p.shape) for k, p in params.items()]
                self._state = {s: {k: np.zeros_like(p) for k, p in params.items()}
                               for s in self._slots}
            return
        if isinstance(self._owner, weakref.ref):
            if self._owner() is not params:
                raise ValueError(f"params: this {type(self).__name__}'s state belongs to "
                                 "another network (it was created by the first update); "
                                 f"use a new {type(self).__name__}() for each network")
        elif self._owner != [(k, p.shape) for k, p in params.items()]:
            raise ValueError(f"params: this {type(self).__name__}'s state was created for "
                             f"parameters {[k for k, _ in self._owner]} with other keys or "
                             "shapes; use a new optimizer for each network")

    def _state_of(self, key, params):
        """The state arrays of parameter ``key``, in ``_slots`` order."""
        out = []
        for slot in self._slots:
            buf = self._state[slot]
            if isinstance(buf, np.ndarray):
                out.append(param_views(buf, params.layout)[key])
            else:
                out.append(buf[key])
        return out

    # --- update ---------------------------------------------------------------------

    def _before_update(self) -> None:
        """Per-update bookkeeping (Adam's step count), once everything is checked."""

    def update(self, params, grads) -> None:
        """Update ``params`` in place with ``grads`` (dicts with the same keys).

        A parameter may also be a plain number (the book's ``optimizer_compare_naive.py``
        optimizes ``{'x': -7.0, 'y': 2.0}``): it is updated as a 0-d array and the dict's
        entry replaced by the new number, as the book's ``params[key] -= ...`` does.
        """
        numbers_at = [] if isinstance(params, ParamDict) else _number_keys(params, grads)
        if numbers_at:
            arrays = {k: _as_0d(v) if k in numbers_at else v for k, v in params.items()}
            grad_arrays = {k: _as_0d(grads[k]) if k in numbers_at and k in grads else g
                           for k, g in grads.items()}
            self.update(arrays, grad_arrays)  # every check first: a raise changes nothing
            for key in numbers_at:
                new = arrays[key][()]
                params[key] = new if isinstance(params[key], np.generic) else float(new)
            return
        _check_pair(params, grads)
        for key, p in params.items():  # before anything changes
            if p.dtype.kind != "f":
                raise TypeError(f"params[{key!r}]: expected a floating-point array, got dtype "
                                f"{p.dtype}")
            if not p.flags.writeable:
                raise ValueError(f"params[{key!r}]: the array is read-only; it cannot be "
                                 "updated in place")
        pair = _flat_pair(params, grads)
        if isinstance(params, ParamDict):
            self._bind(params, True)
        else:
            self._bind(params, False)
        backend = getattr(params, "backend", None) or reference
        self._before_update()
        if pair is not None:
            self._apply(backend, pair[0], pair[1], *[self._state[s] for s in self._slots])
            return
        for key, p in params.items():
            g = np.asarray(grads[key], dtype=p.dtype)
            self._apply(backend, p, g, *self._state_of(key, params))

    def update_flat(self, params: ParamDict, grads, backend) -> None:
        """``update`` for a network's own parameters and gradient buffer (no checks but the
        state's owner), on the engine's ``backend`` module: what ``Engine.step`` runs
        after each gradient."""
        self._bind(params, True)
        self._before_update()
        self._apply(backend, params.flat, grads.flat, *[self._state[s] for s in self._slots])


def _lr(value, name):
    return V.check_positive_float(value, name)


class SGD(Optimizer):
    """Stochastic gradient descent: ``param -= lr * grad``.

    For a network's ``params`` and the gradients from ``net.gradient`` the update is one
    pass over the flat parameter buffer; a training step (``train_step``, ``fit``,
    ``Trainer``) fuses it into the backward pass (the weight step is the GEMM itself).
    """

    _hyper = {"lr": _lr}
    fused_sgd = True

    def __init__(self, lr: float = 0.01):
        super().__init__(lr=lr)

    def _apply(self, backend, p, g):
        if p.flags.c_contiguous and g.flags.c_contiguous:
            backend.sgd_update(p.reshape(-1), g.reshape(-1), self.lr)
        else:
            reference.sgd_update(p, g, self.lr)


class Momentum(Optimizer):
    """Momentum SGD: ``v = momentum * v - lr * grad; param += v``."""

    _hyper = {"lr": _lr, "momentum": V.check_unit_interval}
    _slots = ("v",)

    def __init__(self, lr: float = 0.01, momentum: float = 0.9):
        super().__init__(lr=lr, momentum=momentum)

    def _apply(self, backend, p, g, v):
        backend.momentum_update(p, g, v, self.lr, self.momentum)


class Nesterov(Optimizer):
    """Nesterov's accelerated gradient, the book's corrected form:
    ``param += momentum**2 * v; param -= (1 + momentum) * lr * grad;
    v = momentum * v - lr * grad``."""

    _hyper = {"lr": _lr, "momentum": V.check_unit_interval}
    _slots = ("v",)

    def __init__(self, lr: float = 0.01, momentum: float = 0.9):
        super().__init__(lr=lr, momentum=momentum)

    def _apply(self, backend, p, g, v):
        backend.nesterov_update(p, g, v, self.lr, self.momentum)


class AdaGrad(Optimizer):
    """AdaGrad: ``h += grad**2; param -= lr * grad / (sqrt(h) + 1e-7)``."""

    _hyper = {"lr": _lr}
    _slots = ("h",)

    def __init__(self, lr: float = 0.01):
        super().__init__(lr=lr)

    def _apply(self, backend, p, g, h):
        backend.adagrad_update(p, g, h, self.lr)


class RMSprop(Optimizer):
    """RMSprop: ``h = decay_rate * h + (1 - decay_rate) * grad**2``, then AdaGrad's step."""

    _hyper = {"lr": _lr, "decay_rate": V.check_unit_interval}
    _slots = ("h",)

    def __init__(self, lr: float = 0.01, decay_rate: float = 0.99):
        super().__init__(lr=lr, decay_rate=decay_rate)

    def _apply(self, backend, p, g, h):
        backend.rmsprop_update(p, g, h, self.lr, self.decay_rate)


class Adam(Optimizer):
    """Adam as in the book: at update t, ``lr_t = lr * sqrt(1 - beta2**t) / (1 - beta1**t)``,
    ``m += (1 - beta1) * (grad - m)``, ``v += (1 - beta2) * (grad**2 - v)``,
    ``param -= lr_t * m / (sqrt(v) + 1e-7)``. ``iter`` counts the updates."""

    _hyper = {"lr": _lr, "beta1": V.check_unit_interval,
              "beta2": V.check_unit_interval}
    _slots = ("m", "v")

    def __init__(self, lr: float = 0.001, beta1: float = 0.9, beta2: float = 0.999):
        super().__init__(lr=lr, beta1=beta1, beta2=beta2)
        self.iter = 0

    def _before_update(self) -> None:
        self.iter += 1

    def _apply(self, backend, p, g, m, v):
        backend.adam_update(p, g, m, v, self.lr, self.beta1, self.beta2, self.iter)


OPTIMIZERS = {"sgd": SGD, "momentum": Momentum, "nesterov": Nesterov, "adagrad": AdaGrad,
              "rmsprop": RMSprop, "adam": Adam}


def check_optimizer(value) -> Optimizer:
    """``value`` if it is a fastnn optimizer, else a TypeError naming ``optimizer``."""
    if not isinstance(value, Optimizer):
        raise TypeError(f"optimizer: expected a fastnn optimizer (SGD, Momentum, Nesterov, "
                        f"AdaGrad, RMSprop, Adam), got {type(value).__name__}")
    return value


def optimizer_named(name, what: str = "optimizer", **params) -> Optimizer:
    """The optimizer called ``name`` (case-insensitive; the book's Trainer's names, its
    spelling "rmsprpo" too) built with ``params``; errors name ``what``."""
    if not isinstance(name, str):
        raise TypeError(f"{what}: expected an optimizer name ({', '.join(OPTIMIZERS)}), got "
                        f"{name!r}")
    key = name.lower()
    key = "rmsprop" if key == "rmsprpo" else key
    if key not in OPTIMIZERS:
        raise ValueError(f"{what}: unknown optimizer {name!r}; expected one of "
                         f"{', '.join(OPTIMIZERS)}")
    try:
        return OPTIMIZERS[key](**params)
    except TypeError as exc:
        raise TypeError(f"{what}: {OPTIMIZERS[key].__name__} does not take these parameters "
                        f"({exc})") from None
