"""fastnn's compiled-kernel cache: an optimisation that can be missing, full or damaged.

numba's own ``cache=True`` writes next to the sources (``site-packages/fastnn/kernels/
__pycache__``, which an uninstall leaves behind as a folder that shadows a later editable
install), raises at import where no folder is writable, fails every compile on a full
disk, and loads damaged entries (a zero-length index: ``EOFError``; flipped bytes in the
machine code: a segfault). So fastnn attaches its own numba cache to each kernel:

* where: ``$FASTNN_CACHE_DIR/kernels``, else ``$NUMBA_CACHE_DIR/fastnn``, else
  ``$XDG_CACHE_HOME/fastnn/kernels`` or ``~/.cache/fastnn/kernels``; inside it one folder
  per version of the kernels (a digest of every kernel module's source, the Python
  version and numba's), never inside the installed package;
* every index and data file carries a SHA-256 of its contents, and each data file the
  key it was saved under: an entry that does not match (or cannot be read) is ignored
  and rebuilt, never loaded;
* no writable folder, or a write that fails (a full disk): the kernels compile without
  the cache, and one line on stderr says why, once per process.

``FASTNN_NUMBA_CACHE=0`` turns the cache off (nothing is read or written, nothing said).
This module decides where and whether; ``_cache_files`` holds the numba classes (the
files, the locator), imported only when a kernel is given the cache.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
import tempfile

import numba

ENABLED = os.environ.get("FASTNN_NUMBA_CACHE", "1").lower() not in ("0", "false", "no", "off")
_said = set()  # the reasons already reported (one line each per process)


def note(reason: str, line: str) -> None:
    """Say ``line`` on stderr, once per process for each ``reason``."""
    if reason not in _said:
        _said.add(reason)
        print(f"fastnn: {line}", file=sys.stderr, flush=True)


def sources_digest(here: str | None = None) -> str:
    """A digest of every kernel module's source, the ``.py`` files of ``here`` (default:
    this package)."""
    here = here or os.path.dirname(os.path.abspath(__file__))
    digest = hashlib.sha256()
    for name in sorted(os.listdir(here)):
        if name.endswith(".py"):
            with open(os.path.join(here, name), "rb") as f:
                digest.update(name.encode() + b"\0" + f.read())
    return digest.hexdigest()


def cache_root() -> str:
    """The folder that holds every version's kernel cache (it may not exist yet).

    Raises OSError or RuntimeError when no location can be named (no HOME and a user id
    without a passwd entry: ``Path.home()`` fails)."""
    for variable, below in (("FASTNN_CACHE_DIR", "kernels"), ("NUMBA_CACHE_DIR", "fastnn")):
        if os.environ.get(variable):
            return os.path.join(os.path.abspath(os.environ[variable]), below)
    base = os.environ.get("XDG_CACHE_HOME")
    if not base:
        home = os.path.expanduser("~")
        if home == "~" or not os.path.isabs(home):
            raise RuntimeError("no home folder (HOME is unset and the user has no passwd "
                               "entry)")
        base = os.path.join(home, ".cache")
    return os.path.join(os.path.abspath(base), "fastnn", "kernels")


def version_folder() -> str:
    """This version's cache folder: the kernels' sources, Python's and numba's versions."""
    python = "{}{}".format(*sys.version_info[:2])
    key = f"{sources_digest()[:16]}-py{python}-numba{numba.__version__}"
    return os.path.join(cache_root(), key)


_folder: str | None | bool = False  # False: not looked for yet; None: none is usable


@contextlib.contextmanager
def file_lock(path: str):
    """Hold an exclusive ``flock`` on ``path`` (a file made 0644 if new) inside the block;
    released when the file is closed, or when the process dies. Yields None when held,
    else why it could not be had (not POSIX, a folder that cannot be written): the
    caller goes on without it."""
    fd, error = None, None
    try:
        import fcntl

        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX)
    except (ImportError, OSError) as exc:
        if fd is not None:
            os.close(fd)
        fd, error = None, exc
    try:
        yield error
    finally:
        if fd is not None:
            os.close(fd)


def usable_folder() -> str | None:
    """This version's cache folder, created and checked writable once per process; None
    (with one line saying why) where there is none."""
    global _folder
    if _folder is False:
        _folder = None
        try:
            folder = version_folder()
            os.makedirs(folder, exist_ok=True)
            tempfile.TemporaryFile(dir=folder).close()
            _folder = folder
        except (OSError, RuntimeError) as exc:
            note("no-folder", f"kernels compile on every run without a cache ({why(exc)}; "
                              "set FASTNN_CACHE_DIR to a writable folder to keep them)")
    return _folder


def why(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        where = f" {exc.filename}" if exc.filename else ""
        return f"cannot write{where}: {exc.strerror}"
    return str(exc)


def attach(dispatcher):
    """Give a compiled function (a numba dispatcher) fastnn's cache, where caching is on
    and a folder is usable; returns the dispatcher."""
    if not ENABLED or not hasattr(dispatcher, "py_func") or usable_folder() is None:
        return dispatcher
    try:
        from ._cache_files import Cache
    except ImportError as exc:  # (a numba whose cache internals moved)
        note("numba", f"kernels compile on every run without a cache (numba "
                      f"{numba.__version__}'s cache classes are not where fastnn expects "
                      f"them: {exc})")
        return dispatcher
    try:
        dispatcher._cache = Cache(dispatcher.py_func)  # (what numba's cache=True sets)
    except (OSError, RuntimeError) as exc:  # (the folder went away since it was checked)
        note("no-folder", f"kernels compile on every run without a cache ({why(exc)})")
    return dispatcher
