"""A sweep's results log: JSON lines, checked on read, locked for the sweep's lifetime.

Only the client writes the log: one whole object per finished trial, each written in
one call, flushed and fsync'ed. The log is read back by ``--resume`` and trusted with
the final model, so every line is checked before any trial runs: its JSON (no NaN or
Infinity), the record's fields and types, its trial number (once), its parameters
(inside the sweep's own search space) and the options of the sweep that wrote it. A line
that fails is one error naming that line.

A sweep holds an exclusive ``flock`` on the log from before it reads it until it ends
(the kernel releases it when the process dies, however it dies): a second sweep on the
same log, or a ``--resume`` beside a running sweep, is refused, naming the process that
holds it where this machine can see it.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

LOG_VERSION = 1
STATUSES = ("ok", "diverged", "error", "pruned")  # (pruned: stopped early by a pruner)
SCORED = ("ok", "pruned")  # the statuses whose trials have a validation score
MAX_TRIALS = 1_000_000  # a sweep's trials (and so a log's trial numbers) stay below this
_REQUIRED = ("trial", "params", "seed", "status", "sweep")
_TEXT_OR_NONE = ("worker", "error")
_NUMBERS = ("val_acc", "val_loss", "test_acc", "test_loss", "seconds", "wall_seconds")
_COUNTS = ("pruned_at", "epochs_planned")  # (a pruned sweep's records: epochs)


class SweepError(ValueError):
    """A sweep that cannot run as asked (raised before any trial runs)."""


def _no_constant(name):
    raise ValueError(f"{name} is not a number JSON allows")


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and \
        math.isfinite(value)


def record_problem(record, regression: bool, params_problem) -> str | None:
    """What is wrong with a log record (a parsed line), or None. ``params_problem(params)``
    checks the parameters against the sweep's search space."""
    if not isinstance(record, dict):
        return f"expected a JSON object, got {type(record).__name__}"
    missing = [k for k in _REQUIRED if k not in record]
    if missing:
        return f"no {missing[0]!r} field"
    trial = record["trial"]
    if not _is_int(trial) or not 0 <= trial < MAX_TRIALS:
        return f"the trial number must be an integer in [0, {MAX_TRIALS}), got {trial!r}"
    if "trials" in record and not (_is_int(record["trials"]) and
                                   trial < record["trials"] <= MAX_TRIALS):
        return f"the sweep's trial count must be an integer above the trial number, got " \
               f"{record['trials']!r}"
    seed = record["seed"]
    if not _is_int(seed) or not 0 <= seed < 2**31:
        return f"the trial's seed must be an integer in [0, 2**31), got {seed!r}"
    if record["status"] not in STATUSES:
        return f"the status must be one of {', '.join(STATUSES)}, got {record['status']!r}"
    for key in _NUMBERS:
        value = record.get(key)
        if value is not None and not (_is_number(value) and value >= 0):
            return f"{key} must be a finite non-negative number or null, got {value!r}"
    for key in ("val_acc", "test_acc"):
        value = record.get(key)
        if value is not None and (regression or value > 1):
            return (f"{key} must be null for a regression sweep, got {value!r}" if regression
                    else f"{key} must be an accuracy in [0, 1], got {value!r}")
    if record["status"] not in SCORED and (record.get("val_acc") is not None or
                                          record.get("val_loss") is not None):
        return f"a {record['status']} trial has no validation score"
    for key in _COUNTS:
        value = record.get(key)
        if value is not None and not (_is_int(value) and value >= 0):
            return f"{key} must be a non-negative integer or null, got {value!r}"
    for key in _TEXT_OR_NONE:
        if record.get(key) is not None and not isinstance(record[key], str):
            return f"{key} must be a text or null, got {record[key]!r}"
    if not isinstance(record.get("history", {}), dict):
        return "history must be a JSON object"
    if not isinstance(record["params"], dict):
        return f"params must be a JSON object, got {record['params']!r}"
    return params_problem(record["params"])


class SweepLog:
    """The JSONL results log of one sweep (see the module's notes)."""

    def __init__(self, path):
        self.path = Path(path)
        self.torn = False
        self._fd = None  # holds the lock

    def check(self, resume: bool) -> None:
        """Fail now (before any trial) when the log cannot be written or would be
        overwritten."""
        from ..serialize import check_writable

        try:
            check_writable(self.path, "sweep.jsonl")
        except OSError as exc:
            raise SweepError(f"log: {exc}") from None
        if not resume and self.path.exists() and self.path.stat().st_size > 0:
            raise SweepError(f"log: {self.path} exists; pass resume=True (--resume) to run "
                             f"only the trials it lacks, or choose another file")

    # --- the lock ------------------------------------------------------------------------

    def lock(self) -> None:
        """Take the log for this sweep (creating an empty log), or fail naming who has it."""
        import fcntl

        if self._fd is not None:
            return
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as exc:
            raise SweepError(f"log: {self.path}: {exc.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise SweepError(f"log: {self.path} is in use by another sweep ({holder}); wait "
                             f"for it to end, or give this sweep another --log") from None
        except OSError:  # a file system without locks: run unlocked, as before
            pass
        self._fd = fd

    def unlock(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # (releases the flock)
            self._fd = None

    # --- reading ---------------------------------------------------------------------------

    def read(self, options: dict, regression: bool = False, params_problem=None) -> dict:
        """trial number -> record, for a log written with ``options``, every line checked
        (``record_problem``). A torn last line (a crash in the middle of a write: no
        newline, not JSON) is cut off, so that trial runs again; any other line that is
        not a valid record of this sweep refuses the log. Call under ``lock()``."""
        params_problem = params_problem or (lambda params: None)
        self.torn = False
        if not self.path.exists():
            return {}
        lines = self.path.read_bytes().split(b"\n")
        complete, tail = lines[:-1], lines[-1]  # tail: what follows the last newline
        records, where = {}, {}

        def take(line: bytes, number: int):
            record = self._parse(line, number)
            if record is None:
                return None
            problem = record_problem(record, regression, lambda params: None)
            if problem is None and record["sweep"] != options:
                self._same_sweep(record, options)  # (another sweep's: say what differs)
            if problem is None:
                problem = params_problem(record["params"])
            if problem is None and record["trial"] in records:
                problem = f"trial {record['trial']} again (it is on line " \
                          f"{where[record['trial']]} too)"
            if problem is not None:
                raise SweepError(f"log: line {number} of {self.path} is not a fastnn sweep "
                                 f"record this sweep can resume: {problem} (fix or delete "
                                 f"that line, or choose another file)")
            records[record["trial"]] = record
            where[record["trial"]] = number
            return record

        for number, line in enumerate(complete, 1):
            if line.strip() and take(line, number) is None:
                raise SweepError(f"log: line {number} of {self.path} is not JSON; it is "
                                 f"not a log this sweep can resume")
        if tail.strip():
            if take(tail, len(lines)) is not None:  # a whole record lacking its newline
                with open(self.path, "ab") as f:
                    f.write(b"\n")
            elif tail.startswith(b'{"trial": '):  # torn: drop the partial line
                os.truncate(self.path, sum(len(line) + 1 for line in complete))
                self.torn = True
            else:
                raise SweepError(f"log: line {len(lines)} of {self.path} is not JSON; it is "
                                 f"not a log this sweep can resume")
        return records

    def _parse(self, line: bytes, number: int):
        """The line's JSON value; None when it is not JSON (NaN and Infinity are not)."""
        try:
            return json.loads(line, parse_constant=_no_constant)
        except ValueError:
            return None

    def _same_sweep(self, record: dict, options: dict) -> None:
        theirs = record["sweep"]
        mine, theirs = _flat(options), _flat(theirs if isinstance(theirs, dict) else {})
        differ = [k for k in sorted(set(mine) | set(theirs)) if mine.get(k) != theirs.get(k)]
        shown = "; ".join(f"{k} {_short(theirs.get(k))} in the log, {_short(mine.get(k))} now"
                          for k in differ[:4])
        raise SweepError(f"log: {self.path} was written by a sweep with other options "
                         f"({shown}); resume with the same options, or choose another file")

    # --- writing ---------------------------------------------------------------------------

    def append(self, record: dict) -> None:
        line = json.dumps({k: v for k, v in record.items() if k != "net"},
                          allow_nan=False) + "\n"
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        try:
            data = line.encode()
            while data:  # one write for a line of normal size; loop for the rest
                data = data[os.write(fd, data):]
            os.fsync(fd)
        finally:
            os.close(fd)


def _holder(fd) -> str:
    """Who holds the flock on ``fd``'s file, as far as this machine can tell."""
    st = os.fstat(fd)
    try:
        with open("/proc/locks") as f:
            for line in f:
                fields = line.split()
                if "FLOCK" not in fields or len(fields) < 6:
                    continue
                at = fields.index("FLOCK")
                pid, dev_ino = fields[at + 3], fields[at + 4]
                # (pid 0: a process this PID namespace cannot see, e.g. another container)
                if dev_ino.rsplit(":", 1)[-1] == str(st.st_ino) and pid.isdigit() and \
                        int(pid) > 0:
                    return f"process {pid}{_command(int(pid))}"
    except OSError:
        pass
    return "a process on this or another machine"


def _command(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            words = f.read().split(b"\0")
    except OSError:
        return ""
    text = " ".join(w.decode(errors="replace") for w in words if w)
    return f": {text[:120]}" if text else ""


def _flat(options: dict, prefix: str = "") -> dict:
    """{"training": {"epochs": 3}} -> {"epochs": 3}: the options as a user names them."""
    out = {}
    for k, v in options.items():
        if isinstance(v, dict) and k in ("training", "data"):
            out.update(_flat(v, "data " if k == "data" else ""))
        else:
            out[prefix + k] = v
    return out


def _short(value) -> str:
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."
