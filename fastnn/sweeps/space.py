"""The search space: ``--search``/``--grid`` specs parsed, and trial i's values from
(seed, i) alone."""

from __future__ import annotations

import itertools
import math

import numpy as np

from .log import SweepError

# Searchable hyperparameters: (kind, check of a value, what a value must be)
SPACE = {
    "lr": (float, lambda v: v > 0 and math.isfinite(v), "positive"),
    "weight_decay": (float, lambda v: v >= 0 and math.isfinite(v), "non-negative"),
    "momentum": (float, lambda v: 0 <= v < 1, "in [0, 1)"),
    "dropout": (float, lambda v: 0 <= v < 1, "in [0, 1)"),
    "batch_size": (int, lambda v: v >= 1, "a positive integer"),
    "epochs": (int, lambda v: v >= 1, "a positive integer"),
}
SCALES = ("log", "uniform")
BOOK_SEARCH = {"lr": "1e-6:1e-2:log", "weight_decay": "1e-8:1e-4:log"}  # ch06's search
# a convnet's (the book's have no weight decay; Adam's learning rate around its 0.001)
CONVNET_SEARCH = {"lr": "1e-4:1e-2:log"}
# what a convnet's search or grid may not name: the book's convnets fix them
CONVNET_FIXED = ("weight_decay", "dropout")
BOOK_TRIALS = 100



def _name(raw: str, option: str) -> str:
    name = raw.strip().replace("-", "_")
    if name not in SPACE:
        shown = ", ".join(n.replace("_", "-") for n in SPACE)
        raise SweepError(f"{option}: unknown hyperparameter {raw.strip()!r}; expected one "
                         f"of {shown}")
    return name


def _value(name: str, text, option: str, what: str):
    kind, ok, expect = SPACE[name]
    try:
        if isinstance(text, str):
            value = float(text.strip())
        elif isinstance(text, bool) or not isinstance(text, (int, float, np.integer,
                                                             np.floating)):
            raise ValueError
        else:
            value = float(text)
    except ValueError:
        raise SweepError(f"{option}: {name.replace('_', '-')}'s {what} must be a number, got "
                         f"{text!r}") from None
    if kind is int:
        if value != int(value) if math.isfinite(value) else True:
            raise SweepError(f"{option}: {name.replace('_', '-')}'s {what} must be an "
                             f"integer, got {text!r}")
        value = int(value)
    if not ok(value):
        raise SweepError(f"{option}: {name.replace('_', '-')}'s {what} must be {expect}, "
                         f"got {text!r}")
    return value


def _named(spec, option: str, name, form: str, example: str):
    """(canonical name, the value part) of ``"NAME=..."`` (or of ``name`` and ``spec``)."""
    if name is None:
        if not isinstance(spec, str) or "=" not in spec:
            raise SweepError(f"{option}: expected {form}, such as {example}, got {spec!r}")
        name, spec = spec.split("=", 1)
    return _name(name, option), spec


def parse_search(spec, option: str = "search", name: str | None = None) -> tuple[str, dict]:
    """``"NAME=LOW:HIGH[:log|:uniform]"`` (or ``name`` and ``"LOW:HIGH[:scale]"`` /
    ``(low, high[, scale])``) -> ``(name, {"low", "high", "scale"})``."""
    name, spec = _named(spec, option, name, "NAME=LOW:HIGH[:log]", "lr=1e-4:1e-1:log")
    if isinstance(spec, str):
        parts = spec.split(":")
    elif isinstance(spec, (tuple, list)):
        parts = list(spec)
    else:
        parts = None
    if parts is None or len(parts) not in (2, 3):
        raise SweepError(f"{option}: expected {name.replace('_', '-')}=LOW:HIGH[:log], such "
                         f"as lr=1e-4:1e-1:log, got {spec!r}")
    scale = "uniform"
    if len(parts) == 3:
        scale = str(parts[2]).strip().lower()
        if scale not in SCALES:
            raise SweepError(f"{option}: {name.replace('_', '-')}: the scale must be log or "
                             f"uniform, got {parts[2]!r}")
    low = _value(name, parts[0], option, "LOW")
    high = _value(name, parts[1], option, "HIGH")
    if not low < high:
        raise SweepError(f"{option}: {name.replace('_', '-')}: LOW must be below HIGH, got "
                         f"{low:g}:{high:g}")
    if scale == "log" and low <= 0:
        raise SweepError(f"{option}: {name.replace('_', '-')}: a log scale needs LOW > 0, "
                         f"got {low:g}")
    return name, {"low": low, "high": high, "scale": scale}


def parse_grid(spec, option: str = "grid", name: str | None = None) -> tuple[str, list]:
    """``"NAME=a,b,c"`` (or ``name`` and a sequence of values) -> ``(name, [values])``."""
    name, spec = _named(spec, option, name, "NAME=a,b,c", "batch-size=32,64,128")
    values = spec.split(",") if isinstance(spec, str) else spec
    if isinstance(values, (int, float)) or not hasattr(values, "__iter__"):
        values = [values]
    values = list(values)
    if not values or any(isinstance(v, str) and not v.strip() for v in values):
        raise SweepError(f"{option}: expected {name.replace('_', '-')}=a,b,c (comma-separated "
                         f"values), got {spec!r}")
    values = [_value(name, v, option, "value") for v in values]
    if len(set(values)) != len(values):
        raise SweepError(f"{option}: {name.replace('_', '-')} lists a value twice: {spec!r}")
    return name, values


def make_space(search=None, grid=None, default=None) -> tuple[dict, dict]:
    """Canonical ``(search, grid)`` from dicts (name -> spec) or lists of "NAME=..." specs;
    a name may appear once in all. Neither given: ``default``, else the book's search (lr
    and weight decay, log-uniform)."""
    out = []
    for given, parse, option in ((search, parse_search, "search"), (grid, parse_grid, "grid")):
        parsed = {}
        if given is None:
            given = []
        if isinstance(given, str):
            given = [given]
        items = [(k, v) for k, v in given.items()] if isinstance(given, dict) else \
            [(None, v) for v in given]
        for key, spec in items:
            name, value = parse(spec, option, key)
            if name in parsed:
                raise SweepError(f"{option}: {name.replace('_', '-')} is given twice")
            parsed[name] = value
        out.append(parsed)
    search, grid = out
    both = sorted(set(search) & set(grid))
    if both:
        raise SweepError(f"search, grid: {both[0].replace('_', '-')} is in both; give it once")
    if not search and not grid:
        search = dict(parse_search(v, "search", k)
                      for k, v in (BOOK_SEARCH if default is None else default).items())
    return dict(sorted(search.items())), dict(sorted(grid.items()))


def spec_text(name: str, dim) -> str:
    """The command-line form of a search dimension or grid."""
    if isinstance(dim, dict):
        return f"{name.replace('_', '-')}={dim['low']:g}:{dim['high']:g}:{dim['scale']}"
    return f"{name.replace('_', '-')}={','.join(format(v, 'g') for v in dim)}"


def _draw(dim: dict, kind, u: float):
    low, high = dim["low"], dim["high"]
    if kind is int:  # every integer in [low, high] can come out
        if dim["scale"] == "log":
            v = math.exp(math.log(low) + u * (math.log(high + 1) - math.log(low)))
        else:
            v = low + u * (high - low + 1)
        return int(min(max(math.floor(v), low), high))
    if dim["scale"] == "log":
        v = 10.0 ** (math.log10(low) + u * (math.log10(high) - math.log10(low)))
    else:
        v = low + u * (high - low)
    return float(min(max(v, low), np.nextafter(high, low)))


def trial_plan(search: dict, grid: dict, seed: int, i: int) -> tuple[dict, int]:
    """Trial ``i``'s hyperparameters and seed: from ``(seed, i)`` alone. Grid points are
    taken in turn (trial i has point i mod the grid's size); searched values are drawn
    from the trial's own random stream."""
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(1, i)))
    trial_seed = int(rng.integers(0, 2**31 - 1))
    params = {}
    if grid:
        points = list(itertools.product(*grid.values()))
        params.update(zip(grid, points[i % len(points)]))
    for name, dim in search.items():
        params[name] = _draw(dim, SPACE[name][0], float(rng.random()))
    return dict(sorted(params.items())), trial_seed


def params_problem(params: dict, search: dict, grid: dict) -> str | None:
    """What makes ``params`` (a log record's) something this sweep could not have drawn:
    other names, a value of the wrong type, outside a searched range or not on the grid;
    None when they are fine."""
    names = sorted(set(search) | set(grid))
    if sorted(params) != names:
        return (f"params must name {', '.join(names) or 'nothing'} (this sweep's search "
                f"space), got {', '.join(sorted(map(str, params))) or 'none'}")
    for name, value in params.items():
        kind = SPACE[name][0]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or \
                (kind is int and not isinstance(value, int)) or not math.isfinite(value):
            return f"params: {name} must be {'an integer' if kind is int else 'a number'}, " \
                   f"got {value!r}"
        if name in grid and value not in grid[name]:
            return f"params: {name} {value!r} is not on this sweep's grid " \
                   f"({spec_text(name, grid[name])})"
        if name in search and not search[name]["low"] <= value <= search[name]["high"]:
            return f"params: {name} {value!r} is outside this sweep's search " \
                   f"({spec_text(name, search[name])})"
    return None


def grid_size(grid: dict) -> int:
    return math.prod(len(v) for v in grid.values()) if grid else 1
