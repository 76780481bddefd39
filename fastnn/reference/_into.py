"""The one helper of every reference module: results into optional preallocated outputs."""

from __future__ import annotations


def _into(dest, value):
    """Return ``value``, copied into ``dest`` when a destination was given."""
    if dest is None or value is None:
        return value
    dest[...] = value
    return dest
