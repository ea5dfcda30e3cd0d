"""Frozen models of what the state directory holds.

Parsing is the only place that deals with bad input: every ``parse`` takes any
JSON value at all and returns either a clean model or :class:`Unreadable` with
the reason. Nothing after parsing needs to distrust a field's type again.
Untrusted strings are passed through :func:`campaign_tui.sanitize.sanitize`
here, once, so that no later consumer can be tricked by markup or escapes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from campaign_tui.sanitize import sanitize, sanitize_block

# Statuses a campaign or the supervisor writes into status.json.
FINAL_STATUSES = frozenset({"COMPLETE", "CRASHED", "TERMINATED", "INTERRUPTED"})
OUTCOMES = frozenset({"passed", "failed", "error", "skipped"})

# A number bigger than this is nonsense for any field we keep (ms timestamps included).
_MAX_NUMBER = 10**15
_MAX_TEXT = 500


@dataclass(frozen=True, slots=True)
class Unreadable:
    """A state file that exists but cannot be used, and why."""

    why: str

    def __str__(self) -> str:
        return f"unreadable: {self.why}"


def _int(doc: dict[str, Any], *names: str) -> int | None:
    """The first of ``names`` that holds a sane whole number (numeric strings too)."""
    for name in names:
        value = doc.get(name)
        if isinstance(value, bool) or value is None:
            continue
        if isinstance(value, str):
            try:
                value = float(value.strip())
            except ValueError:
                continue
        if isinstance(value, (int, float)) and abs(value) <= _MAX_NUMBER:  # NaN/inf fail too
            return int(value)
    return None


def _float(doc: dict[str, Any], *names: str) -> float | None:
    for name in names:
        value = doc.get(name)
        if isinstance(value, bool) or value is None:
            continue
        if isinstance(value, str):
            try:
                value = float(value.strip().rstrip("%"))
            except ValueError:
                continue
        if isinstance(value, (int, float)) and abs(value) <= _MAX_NUMBER:  # NaN/inf fail too
            return float(value)
    return None


def _text(doc: dict[str, Any], *names: str, limit: int = _MAX_TEXT) -> str | None:
    for name in names:
        value = doc.get(name)
        if value is None or isinstance(value, (dict, list)):
            continue
        if isinstance(value, float) and not math.isfinite(value):
            continue
        return sanitize(str(value), limit=limit)
    return None


def _nonneg(value: int | None) -> int | None:
    return value if value is None or value >= 0 else None


def _progress(doc: dict[str, Any]) -> tuple[int | None, int | None]:
    """tested/total from their own fields, else from a "23/118" progress string."""
    tested = _nonneg(_int(doc, "tested"))
    total = _nonneg(_int(doc, "total"))
    progress = doc.get("progress")
    if isinstance(progress, str) and "/" in progress and (tested is None or total is None):
        left, _, right = progress.partition("/")
        try:
            tested = tested if tested is not None else max(0, int(left.strip()))
            total = total if total is not None else max(0, int(right.strip()))
        except ValueError:
            pass
    return tested, total


def _timestamp_ms(doc: dict[str, Any]) -> int | None:
    """Timestamps are ms since the epoch; a value that can only be seconds is scaled."""
    at = _int(doc, "timestamp")
    if at is not None and 0 < at < 10**11:  # before 1973 in ms, so it was seconds
        at *= 1000
    return at


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """The campaign's latest sign of life."""

    at_ms: int | None
    item: str | None = None
    tested: int | None = None
    total: int | None = None
    percent: float | None = None
    status: str | None = None
    pid: int | None = None
    pid_start: float | None = None
    attempt: int | None = None
    boot_id: str | None = None
    boottime: float | None = None
    stale_after: float | None = None
    diag_signal: str | None = None
    source: str | None = None
    # Outcomes so far; our writers put them here too because the checkpoint is
    # replaced at most once a second and may not yet count the newest items.
    passed: int | None = None
    failed: int | None = None
    errors: int | None = None

    @classmethod
    def parse(cls, doc: object) -> Heartbeat | Unreadable:
        if not isinstance(doc, dict):
            return Unreadable("heartbeat is not a JSON object")
        tested, total = _progress(doc)
        percent = _float(doc, "percent")
        if percent is None and tested is not None and total:
            percent = round(100.0 * tested / total, 1)
        pid = _int(doc, "pid")
        return cls(
            at_ms=_timestamp_ms(doc),
            item=_text(doc, "current_item", "current_sd", "item"),
            tested=tested,
            total=total,
            percent=percent,
            status=_upper(_text(doc, "status", limit=40)),
            pid=pid if pid is not None and pid > 0 else None,
            pid_start=_float(doc, "pid_start"),
            attempt=_nonneg(_int(doc, "attempt")),
            boot_id=_text(doc, "boot_id", limit=64),
            boottime=_float(doc, "boottime"),
            stale_after=_positive(_float(doc, "stale_after")),
            diag_signal=_text(doc, "diag_signal", limit=16),
            source=_text(doc, "source", limit=20),
            passed=_nonneg(_int(doc, "passed")),
            failed=_nonneg(_int(doc, "failed")),
            errors=_nonneg(_int(doc, "errors")),
        )


def _upper(text: str | None) -> str | None:
    return text.upper() if text else None


def _positive(value: float | None) -> float | None:
    return value if value is not None and value > 0 else None


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """How far the campaign got, written after each item."""

    at_ms: int | None
    tested: int | None = None
    total: int | None = None
    passed: int | None = None
    failed: int | None = None
    errors: int | None = None
    skipped: int | None = None
    last_item: str | None = None
    can_resume: bool = False

    @classmethod
    def parse(cls, doc: object) -> Checkpoint | Unreadable:
        if not isinstance(doc, dict):
            return Unreadable("checkpoint is not a JSON object")
        tested, total = _progress(doc)
        return cls(
            at_ms=_timestamp_ms(doc),
            tested=tested,
            total=total,
            passed=_nonneg(_int(doc, "passed")),
            failed=_nonneg(_int(doc, "failed")),
            errors=_nonneg(_int(doc, "errors")),
            skipped=_nonneg(_int(doc, "skipped")),
            last_item=_text(doc, "last_item", "last_sd"),
            can_resume=doc.get("can_resume") is True,
        )


@dataclass(frozen=True, slots=True)
class StatusDoc:
    """The last status a campaign or its supervisor declared."""

    state: str
    message: str = ""
    at_ms: int | None = None
    exit_code: int | None = None
    signal: str | None = None
    traceback: str | None = None

    @property
    def final(self) -> bool:
        return self.state in FINAL_STATUSES

    @classmethod
    def parse(cls, doc: object) -> StatusDoc | Unreadable:
        if not isinstance(doc, dict):
            return Unreadable("status is not a JSON object")
        state = _upper(_text(doc, "status", "state", limit=40))
        if not state:
            return Unreadable("status has no 'status' field")
        return cls(
            state=state,
            message=_text(doc, "message", "reason") or "",
            at_ms=_timestamp_ms(doc),
            exit_code=_int(doc, "exit_code"),
            signal=_text(doc, "signal", limit=20),
            traceback=sanitize_block(tb) if isinstance(tb := doc.get("traceback"), str) else None,
        )


SUPERVISOR_STATES = frozenset({"running", "backoff", "stopping", "stopped", "gave_up", "complete"})


@dataclass(frozen=True, slots=True)
class SupervisorDoc:
    """What the supervisor says of itself and its child."""

    pid: int | None
    pid_start: float | None
    state: str
    child_pid: int | None = None
    child_start: float | None = None
    attempt: int | None = None
    restarts: int | None = None
    max_restarts: int | None = None
    next_restart_ms: int | None = None
    started_ms: int | None = None
    child_started_ms: int | None = None
    at_ms: int | None = None
    command: tuple[str, ...] = ()
    cwd: str | None = None
    settings: tuple[tuple[str, str], ...] = ()

    def setting(self, name: str) -> str | None:
        return dict(self.settings).get(name)

    @classmethod
    def parse(cls, doc: object) -> SupervisorDoc | Unreadable:
        if not isinstance(doc, dict):
            return Unreadable("supervisor file is not a JSON object")
        state = _text(doc, "state", limit=20)
        if state not in SUPERVISOR_STATES:
            return Unreadable(f"supervisor state {state!r} is not one we know")
        command = doc.get("command")
        settings = doc.get("settings")
        return cls(
            pid=_pos_int(_int(doc, "pid")),
            pid_start=_float(doc, "pid_start"),
            state=state,
            child_pid=_pos_int(_int(doc, "child_pid")),
            child_start=_float(doc, "child_start"),
            attempt=_nonneg(_int(doc, "attempt")),
            restarts=_nonneg(_int(doc, "restarts")),
            max_restarts=_nonneg(_int(doc, "max_restarts")),
            next_restart_ms=_int(doc, "next_restart_ms"),
            started_ms=_int(doc, "started_ms"),
            child_started_ms=_int(doc, "child_started_ms"),
            at_ms=_timestamp_ms(doc),
            command=tuple(sanitize(str(a), limit=_MAX_TEXT) for a in command[:200])
            if isinstance(command, list)
            else (),
            cwd=_text(doc, "cwd", limit=4096),
            settings=tuple(
                (sanitize(str(k), limit=60), sanitize(_setting_text(v), limit=_MAX_TEXT))
                for k, v in list(settings.items())[:100]
            )
            if isinstance(settings, dict)
            else (),
        )


def _setting_text(value: object) -> str:
    if isinstance(value, list):
        return " ".join(str(v) for v in value[:50])
    return str(value)


def _pos_int(value: int | None) -> int | None:
    return value if value is not None and value > 0 else None


@dataclass(frozen=True, slots=True)
class RestartRecord:
    """One ended attempt, from restarts.jsonl."""

    attempt: int | None
    started_ms: int | None
    ended_ms: int | None
    exit_code: int | None
    signal: str | None
    reason: str
    uptime: float | None
    next_delay: float | None
    item: str | None

    @classmethod
    def parse(cls, doc: object) -> RestartRecord | Unreadable:
        if not isinstance(doc, dict):
            return Unreadable("restart record is not a JSON object")
        return cls(
            attempt=_nonneg(_int(doc, "attempt")),
            started_ms=_int(doc, "started_ms", "started"),
            ended_ms=_int(doc, "ended_ms", "ended"),
            exit_code=_int(doc, "exit_code"),
            signal=_text(doc, "signal", limit=20),
            reason=_text(doc, "reason", limit=40) or "unknown",
            uptime=_float(doc, "uptime"),
            next_delay=_float(doc, "next_delay"),
            item=_text(doc, "item"),
        )


@dataclass(frozen=True, slots=True)
class LogLine:
    """One human log line, already sanitized."""

    text: str
    level: str | None = None


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything read from one state directory at one moment.

    Each state file is the model, :class:`Unreadable` (present but unusable), or
    ``None`` (absent). Readers fill this; the judgement and the views only read it.
    """

    directory: str
    layout: str = "standard"
    heartbeat: Heartbeat | Unreadable | None = None
    checkpoint: Checkpoint | Unreadable | None = None
    status: StatusDoc | Unreadable | None = None
    supervisor: SupervisorDoc | Unreadable | None = None
    restarts: tuple[RestartRecord, ...] = ()
    recent_alerts: tuple[LogLine, ...] = ()
    output_mtime_ms: int | None = None
    problems: tuple[str, ...] = field(default=())

    @property
    def empty(self) -> bool:
        return (
            self.heartbeat is None
            and self.checkpoint is None
            and self.status is None
            and self.supervisor is None
            and not self.restarts
        )
