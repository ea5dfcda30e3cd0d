"""Readings of time that the judgement is given (it never reads a clock itself).

Wall time can be set backwards or forwards; ``CLOCK_BOOTTIME`` cannot and keeps
counting through suspend, so two readings of it on the same boot give a true
age. The kernel's ``boot_id`` tells whether two readings come from one boot.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache

_BOOT_ID_PATH = "/proc/sys/kernel/random/boot_id"


@dataclass(frozen=True, slots=True)
class Now:
    """One moment, as every clock the judgement may use saw it."""

    wall_ms: int
    boottime: float | None = None
    boot_id: str | None = None


@cache
def boot_id() -> str | None:
    """This boot's id (constant while the machine is up, so read once)."""
    try:
        with open(_BOOT_ID_PATH, encoding="ascii") as handle:
            return handle.read(64).strip() or None
    except OSError:
        return None


def boottime() -> float | None:
    try:
        return time.clock_gettime(time.CLOCK_BOOTTIME)
    except (AttributeError, OSError):
        return None


def now() -> Now:
    return Now(wall_ms=time.time_ns() // 1_000_000, boottime=boottime(), boot_id=boot_id())


def iso(ms: int | float | None = None) -> str:
    """Local time with offset, to the millisecond: what the human log lines carry."""
    seconds = time.time() if ms is None else ms / 1000
    try:
        return (
            datetime.fromtimestamp(seconds, tz=UTC).astimezone().isoformat(timespec="milliseconds")
        )
    except (OverflowError, OSError, ValueError):
        return "?"


def human_duration(seconds: float | None) -> str:
    """``742s`` → ``12m22s``; short and stable for a status line."""
    if seconds is None:
        return "?"
    negative = seconds < 0
    s = int(abs(seconds))
    if s < 60:
        # tenths only where they say something: settings like 0.5s, not "0.0s"
        # whole seconds truncated, not rounded: an age reads the same wherever it is shown
        tenths = int(abs(seconds) * 10)
        text = f"0.{tenths}s" if 0 < tenths < 10 else f"{s}s"
    elif s < 3600:
        text = f"{s // 60}m{s % 60:02d}s"
    elif s < 86400:
        text = f"{s // 3600}h{s % 3600 // 60:02d}m"
    else:
        text = f"{s // 86400}d{s % 86400 // 3600:02d}h"
    return "-" + text if negative else text
