"""Read a whole state directory into one :class:`Snapshot`. Never raises."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from campaign_tui import statedir
from campaign_tui.models import (
    Checkpoint,
    Heartbeat,
    LogLine,
    RestartRecord,
    Snapshot,
    StatusDoc,
    SupervisorDoc,
    Unreadable,
)
from campaign_tui.procs import ProcessFacts, probe_all
from campaign_tui.sanitize import sanitize
from campaign_tui.statedir import StateDir

T = TypeVar("T")

RECENT_ALERTS = 5
_ALERTS_TAIL_BYTES = 16 * 1024
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _model(path: Path, parse: Callable[[object], T | Unreadable]) -> T | Unreadable | None:
    doc = statedir.read_json(path)
    if doc is None or isinstance(doc, Unreadable):
        return doc
    try:
        return parse(doc)
    except Exception as exc:
        return Unreadable(f"{path.name}: {type(exc).__name__}")


def parse_log_line(raw: bytes | str) -> LogLine:
    """``ISO-TIME LEVEL message`` → a sanitized line with its level, if it has one."""
    text = sanitize(raw)
    parts = text.split(" ", 2)
    level = parts[1] if len(parts) >= 2 and parts[1] in LEVELS else None
    return LogLine(text, level)


def recent_lines(
    path: Path, count: int, max_bytes: int = _ALERTS_TAIL_BYTES
) -> tuple[LogLine, ...]:
    data = statedir.read_tail(path, max_bytes)
    if data is None or isinstance(data, Unreadable):
        return ()
    lines = [line for line in data.split(b"\n") if line.strip()]
    return tuple(parse_log_line(line) for line in lines[-count:])


def read_restarts(path: Path) -> tuple[RestartRecord, ...]:
    data = statedir.read_tail(path, statedir.MAX_JSONL_TAIL)
    if data is None or isinstance(data, Unreadable):
        return ()
    records = []
    for doc in statedir.iter_jsonl(data):
        record = RestartRecord.parse(doc)
        if isinstance(record, RestartRecord):
            records.append(record)
    return tuple(records)


def read_snapshot(sd: StateDir) -> Snapshot:
    """Everything the judgement and the views need from ``sd``, read once."""
    problems = list(directory_problems(sd))
    snap = Snapshot(
        directory=str(sd.path),
        layout=sd.layout,
        heartbeat=_model(sd.file(statedir.HEARTBEAT), Heartbeat.parse),
        checkpoint=_model(sd.file(statedir.CHECKPOINT), Checkpoint.parse),
        status=_model(sd.file(statedir.STATUS), StatusDoc.parse),
        supervisor=None if sd.legacy else _model(sd.file(statedir.SUPERVISOR), SupervisorDoc.parse),
        restarts=() if sd.legacy else read_restarts(sd.file(statedir.RESTARTS)),
        recent_alerts=recent_lines(sd.file(statedir.ALERTS_LOG), RECENT_ALERTS),
        output_mtime_ms=None if sd.legacy else statedir.mtime_ms(sd.file(statedir.OUTPUT_LOG)),
        problems=tuple(problems),
    )
    return snap


def directory_problems(sd: StateDir) -> list[str]:
    """What keeps the campaign from recording anything: the directory gone, its
    filesystem full or read-only. Its files may look fine while frozen."""
    try:
        fs = os.statvfs(sd.path)
    except FileNotFoundError:
        return [f"state directory {sd.path} does not exist"]
    except OSError as exc:
        return [f"state directory {sd.path}: {exc.strerror}"]
    if fs.f_flag & os.ST_RDONLY:
        return [f"state directory {sd.path} is on a read-only filesystem: nothing new is recorded"]
    if fs.f_bavail == 0 or (fs.f_favail == 0 and fs.f_files > 0):
        return [f"the filesystem of {sd.path} is full: nothing new is recorded"]
    return []


def pids_of(snap: Snapshot) -> list[int | None]:
    """Every pid the snapshot names, for :func:`probe_processes`."""
    pids: list[int | None] = []
    if isinstance(snap.heartbeat, Heartbeat):
        pids.append(snap.heartbeat.pid)
    if isinstance(snap.supervisor, SupervisorDoc):
        pids += [snap.supervisor.pid, snap.supervisor.child_pid]
    return pids


def probe_processes(snap: Snapshot) -> ProcessFacts:
    return probe_all(pids_of(snap))
