"""SIGTERM handled like Ctrl-C: what ``docker stop``, systemd and batch schedulers send.

By default SIGTERM ends Python at once: no ``finally`` runs, so a save in progress leaves
its temporary file, a progress bar stays mid-line and nothing says why the run stopped.
Inside ``sigterm_raises()`` the signal raises ``Terminated`` (a ``KeyboardInterrupt``)
in the main thread instead, so every clean-up written for Ctrl-C runs for it too.
"""

from __future__ import annotations

import contextlib
import signal
import threading


class Terminated(KeyboardInterrupt):
    """Raised in the main thread when the process receives SIGTERM."""


def _raise(signum, frame):
    raise Terminated("SIGTERM")


@contextlib.contextmanager
def sigterm_raises():
    """Within the block SIGTERM raises ``Terminated``, where SIGTERM still has its default
    action and this is the main thread (elsewhere the block changes nothing); the
    handler that was there is restored afterwards."""
    installed = False
    if threading.current_thread() is threading.main_thread():
        try:
            installed = signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
            if installed:
                signal.signal(signal.SIGTERM, _raise)
        except (ValueError, OSError):  # (no signals here: an embedded interpreter)
            installed = False
    try:
        yield
    finally:
        if installed:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
