"""What bounds the cores this process may really use: its CPU affinity and its cgroup's CPU
quota (``_threads.usable_cores`` takes the smallest of them and NUMBA_NUM_THREADS).

``os.cpu_count()`` counts the machine's cores. A process pinned with ``taskset``, or a
container given a CPU quota (``docker --cpus 2``, a Kubernetes limit: cgroup v2's
``cpu.max``, v1's ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us``), may use fewer; threads
beyond them only wait for each other. The quota is read from the process's own cgroup
(``/proc/self/cgroup``, located through ``/proc/self/mountinfo``) and from each cgroup
above it (a parent's limit binds its children), rounded up to whole cores, at least one.
Odd, missing or unreadable files mean "no limit found": never an error.
"""

from __future__ import annotations

import math
import os
import re

_OCTAL = re.compile(r"\\([0-7]{3})")


def parse_cpu_max(text: str) -> float | None:
    """Cores allowed by a cgroup v2 ``cpu.max`` ("QUOTA PERIOD", or "max PERIOD": no
    limit); None when there is no limit or the text is not that."""
    fields = text.split()
    if not fields or fields[0] == "max":
        return None
    try:
        quota = int(fields[0])
        period = int(fields[1]) if len(fields) > 1 else 100_000
    except ValueError:
        return None
    return quota / period if quota > 0 and period > 0 else None


def parse_cfs(quota_text: str, period_text: str) -> float | None:
    """Cores allowed by cgroup v1's ``cpu.cfs_quota_us`` and ``cpu.cfs_period_us``
    (a quota of -1: no limit); None when there is no limit or the texts are not numbers."""
    try:
        quota, period = int(quota_text.strip()), int(period_text.strip())
    except ValueError:
        return None
    return quota / period if quota > 0 and period > 0 else None


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="ascii", errors="replace") as f:
            return f.read(4096)
    except (OSError, ValueError):
        return None


def _unescape(path: str) -> str:
    """A mountinfo path as it is (spaces and the like are written as octal escapes)."""
    return _OCTAL.sub(lambda m: chr(int(m.group(1), 8)), path)


def _mounts(root: str) -> list[tuple[str, str, str, set[str]]]:
    """[(fstype, mount root, mount point, super options)] of the cgroup file systems."""
    text = _read(os.path.join(root, "proc/self/mountinfo")) or ""
    found = []
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if not sep or len(fields) < 5 or len(tail) < 3 or tail[0] not in ("cgroup", "cgroup2"):
            continue
        found.append((tail[0], _unescape(fields[3]), _unescape(fields[4]),
                      set(tail[2].split(","))))
    return found


def _groups(root: str) -> list[tuple[str, set[str], str]]:
    """[(hierarchy id, controllers, path)] of this process, from /proc/self/cgroup."""
    text = _read(os.path.join(root, "proc/self/cgroup")) or ""
    groups = []
    for line in text.splitlines():
        parts = line.strip().split(":", 2)
        if len(parts) == 3 and parts[2].startswith("/"):
            groups.append((parts[0], set(filter(None, parts[1].split(","))), parts[2]))
    return groups


def _folders(root: str, mount_root: str, mount_point: str, path: str) -> list[str]:
    """The folders of the process's cgroup and of each cgroup above it, as mounted."""
    rel = path
    if mount_root != "/" and (path == mount_root or path.startswith(mount_root + "/")):
        rel = path[len(mount_root):]  # (mounted at a sub-folder: a container's view)
    base = os.path.join(root, mount_point.lstrip("/"))
    parts = [p for p in rel.split("/") if p and p not in (".", "..")]
    folders = [os.path.join(base, *parts[:i]) for i in range(len(parts), -1, -1)]
    existing = [f for f in folders if os.path.isdir(f)]
    return existing or [base]


def cgroup_cpu_limit(root: str = "/") -> int | None:
    """Whole cores the process's cgroup CPU quota allows (v2 or v1; the smallest limit of
    its cgroup and those above it, rounded up, at least 1), or None without a quota.

    ``root`` prefixes every path read (a test's fake /proc and /sys)."""
    limits = []
    mounts = _mounts(root)
    for hierarchy, controllers, path in _groups(root):
        if hierarchy == "0" and not controllers:  # cgroup v2, the unified hierarchy
            points = [(r, p) for kind, r, p, _ in mounts if kind == "cgroup2"] or \
                [("/", "/sys/fs/cgroup")]
            for mount_root, point in points:
                for folder in _folders(root, mount_root, point, path):
                    text = _read(os.path.join(folder, "cpu.max"))
                    limits.append(None if text is None else parse_cpu_max(text))
        elif "cpu" in controllers:  # cgroup v1, the cpu controller's hierarchy
            points = [(r, p) for kind, r, p, opts in mounts if kind == "cgroup" and
                      "cpu" in opts] or [("/", "/sys/fs/cgroup/cpu,cpuacct"),
                                         ("/", "/sys/fs/cgroup/cpu")]
            for mount_root, point in points:
                for folder in _folders(root, mount_root, point, path):
                    quota = _read(os.path.join(folder, "cpu.cfs_quota_us"))
                    period = _read(os.path.join(folder, "cpu.cfs_period_us"))
                    limits.append(None if quota is None or period is None
                                  else parse_cfs(quota, period))
    limits = [x for x in limits if x is not None]
    if not limits:
        return None
    return max(1, math.ceil(min(limits) - 1e-9))


def affinity_cores() -> int:
    """Cores in this process's CPU affinity (``taskset``), else the machine's count."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


_UNREAD = object()
_quota = _UNREAD  # the cgroup's limit in whole cores (None: none), read once per process


def quota_cores() -> int | None:
    """This process's cgroup CPU quota in whole cores (None: no quota found), read once."""
    global _quota
    if _quota is _UNREAD:
        try:
            _quota = cgroup_cpu_limit()
        except Exception:  # (never fatal: a limit we cannot read is no limit)
            _quota = None
    return _quota
