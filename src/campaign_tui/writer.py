"""Writing state without ever taking the campaign down.

Every write goes through :class:`StateWriter`, which turns an OSError (disk
full, permission, the directory removed) into one warning on stderr and a
``False`` return. The campaign goes on; when writes work again it says so.
"""

from __future__ import annotations

import os
import stat
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from campaign_tui import clock, statedir
from campaign_tui.statedir import StateDir

LEVELS = ("INFO", "WARNING", "ERROR", "CRITICAL")
ALERT_LEVELS = ("info", "warning", "critical")
# The supervisor passes the write end of a pipe in this variable: how a campaign
# ended reaches it even when status.json cannot be written (disk full, directory
# removed or read-only), so a finished campaign is never taken for a crashed one.
STATUS_FD_VAR = "CAMPAIGN_STATUS_FD"
FINAL_STATES = ("COMPLETE", "CRASHED", "TERMINATED", "INTERRUPTED")


def log_line(level: str, message: str, at_ms: int | None = None) -> str:
    """``ISO-TIME LEVEL message`` with continuation lines kept (tracebacks)."""
    return f"{clock.iso(at_ms)} {level} {message.rstrip()}\n"


class StateWriter:
    """Writes a campaign's state files; never raises for an I/O failure."""

    def __init__(self, sd: StateDir, *, who: str = "campaign-tui", stream: TextIO | None = None):
        self.sd = sd
        self.who = who
        self._stream = stream
        self._failing: set[str] = set()
        self.enabled = True

    @property
    def failing(self) -> bool:
        return bool(self._failing)

    def _attempt(self, what: str, action: Callable[[], None]) -> bool:
        if not self.enabled:
            return False
        try:
            action()
        except (OSError, ValueError) as exc:
            # One warning per episode, not per file: on a full disk appends into a
            # partly used block still work while new files fail.
            if not self._failing:
                self._warn(
                    f"{self.who}: cannot write {what} in {self.sd.path} "
                    f"({getattr(exc, 'strerror', None) or exc}); the campaign goes on"
                )
            self._failing.add(what)
            return False
        if what in self._failing:
            self._failing.discard(what)
            if not self._failing:
                self._warn(f"{self.who}: state writes in {self.sd.path} work again")
        return True

    def _warn(self, text: str) -> None:
        stream = self._stream or sys.stderr
        try:
            stream.write(text + "\n")
            stream.flush()
        except (OSError, ValueError):
            pass

    def path(self, name: str) -> Path:
        return self.sd.file(name)

    def json(self, name: str, doc: object, *, fsync: bool = False) -> bool:
        return self._attempt(name, lambda: statedir.write_json(self.path(name), doc, fsync=fsync))

    def jsonl(self, name: str, doc: object, *, fsync: bool = False) -> bool:
        return self._attempt(name, lambda: statedir.append_jsonl(self.path(name), doc, fsync=fsync))

    def log(self, name: str, level: str, message: str) -> bool:
        line = log_line(level, message).encode("utf-8", "replace")
        return self._attempt(name, lambda: statedir.append_bytes(self.path(name), line))

    def alert(self, message: str, level: str = "warning") -> bool:
        if level not in ALERT_LEVELS:
            raise ValueError(f"alert level must be one of {', '.join(ALERT_LEVELS)}, not {level!r}")
        return self.log(statedir.ALERTS_LOG, level.upper(), message)

    def status(self, state: str, message: str, *, fsync: bool = True, **extra: object) -> bool:
        doc = {
            "status": state,
            "message": message,
            **stamp(),
            **{k: v for k, v in extra.items() if v is not None},
        }
        return self.json(statedir.STATUS, doc, fsync=fsync)


def stamp(at_ms: int | None = None) -> dict[str, object]:
    """The ``timestamp`` (ms) and ``iso_time`` pair every JSON state file carries."""
    ms = time.time_ns() // 1_000_000 if at_ms is None else at_ms
    return {"timestamp": ms, "iso_time": clock.iso(ms)}


def heartbeat_doc(
    *,
    item: str | None,
    tested: int | None,
    total: int | None,
    status: str = "RUNNING",
    pid: int | None = None,
    pid_start: float | None = None,
    attempt: int | None = None,
    stale_after: float | None = None,
    diag_signal: str | None = None,
    source: str = "campaign",
    outcomes: tuple[int, int, int] | None = None,
) -> dict[str, object]:
    """A heartbeat as our writers make it: the seed's fields plus what makes it trustworthy.

    ``outcomes`` is (passed, failed, errors) so far, for writers that know them.
    """
    percent = f"{100.0 * tested / total:.1f}" if tested is not None and total else None
    doc: dict[str, object] = {
        **stamp(),
        "current_item": item,
        "progress": f"{tested if tested is not None else '?'}/{total if total is not None else '?'}",
        "tested": tested,
        "total": total,
        "percent": percent,
        "status": status,
        "pid": pid if pid is not None else os.getpid(),
        "pid_start": pid_start,
        "attempt": attempt,
        "boot_id": clock.boot_id(),
        "boottime": clock.boottime(),
        "source": source,
    }
    if stale_after is not None:
        doc["stale_after"] = stale_after
    if diag_signal:
        doc["diag_signal"] = diag_signal
    if outcomes is not None:
        doc["passed"], doc["failed"], doc["errors"] = outcomes
    return doc


def report_final(state: str, state_dir: str | os.PathLike[str]) -> bool:
    """Tell the supervisor how the campaign ends (one of :data:`FINAL_STATES`); needs no disk.

    Writes ``STATE\n`` to the pipe named by ``CAMPAIGN_STATUS_FD``, but only when
    that descriptor is a pipe and ``CAMPAIGN_STATE_DIR`` names ``state_dir``: a
    process that inherited the variable and not the descriptor (or that reports
    into another campaign) writes nothing. Never blocks, never raises; False when
    nothing was written.
    """
    text = os.environ.get(STATUS_FD_VAR, "")
    if state not in FINAL_STATES or not text.isdigit() or not _same_dir(state_dir):
        return False
    fd = int(text)
    try:
        if not stat.S_ISFIFO(os.fstat(fd).st_mode):
            return False
        # One short write to a pipe is atomic; the supervisor made it non-blocking.
        return os.write(fd, state.encode() + b"\n") > 0
    except OSError:  # closed, or the supervisor is gone (EPIPE)
        return False


def _same_dir(state_dir: str | os.PathLike[str]) -> bool:
    ours = os.environ.get("CAMPAIGN_STATE_DIR", "")
    return bool(ours) and os.path.realpath(ours) == os.path.realpath(state_dir)
