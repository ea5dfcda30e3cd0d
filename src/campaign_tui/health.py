"""The health judgement: state files + a moment + process facts → a verdict.

Pure: no I/O and no clock reads. Everything it needs is passed in, so every
rule is a row in a table test. The rules run top to bottom; the first that
applies decides.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from campaign_tui.clock import Now, human_duration
from campaign_tui.models import (
    FINAL_STATUSES,
    Checkpoint,
    Heartbeat,
    Snapshot,
    StatusDoc,
    SupervisorDoc,
    Unreadable,
)
from campaign_tui.procs import ProcessFacts

DEFAULT_STALE_AFTER = 600.0
# A heartbeat this far ahead of the wall clock cannot be explained by rounding.
FUTURE_TOLERANCE = 5.0
# A restart this late after its planned time means the supervisor is wedged.
BACKOFF_OVERDUE = 30.0


class State(StrEnum):
    HEALTHY = "HEALTHY"
    STALE = "STALE"
    CRASHED = "CRASHED"
    COMPLETE = "COMPLETE"
    TERMINATED = "TERMINATED"
    RESTARTING = "RESTARTING"
    UNKNOWN = "UNKNOWN"


# Monitoring-plugin exit codes: OK, WARNING, CRITICAL, UNKNOWN.
EXIT_CODES = {
    State.HEALTHY: 0,
    State.COMPLETE: 0,
    State.TERMINATED: 0,
    State.STALE: 1,
    State.RESTARTING: 1,
    State.CRASHED: 2,
    State.UNKNOWN: 3,
}
CRITICAL_STATES = frozenset({State.CRASHED, State.STALE})

ACTIONS = {
    State.HEALTHY: "nothing to do",
    State.STALE: "inspect `campaign-tui logs errors`; `campaign-tui restart` restarts it",
    State.CRASHED: "read `campaign-tui logs errors`, fix the cause, then `campaign-tui start` resumes",
    State.COMPLETE: "nothing to do: the campaign finished",
    State.TERMINATED: "`campaign-tui start` resumes from the checkpoint",
    State.RESTARTING: "wait: the supervisor restarts it",
    State.UNKNOWN: "start the campaign: campaign-tui run -- CMD [ARGS...]",
}


@dataclass(frozen=True, slots=True)
class Freshness:
    """How old the last sign of life is, and whether that age can be trusted."""

    age: float | None
    future: bool = False
    rebooted: bool = False
    source: str = "heartbeat"


@dataclass(frozen=True, slots=True)
class Progress:
    tested: int | None = None
    total: int | None = None
    percent: float | None = None
    item: str | None = None
    passed: int | None = None
    failed: int | None = None
    errors: int | None = None

    def text(self) -> str:
        if self.tested is None:
            return "not reported"
        total = "?" if self.total is None else str(self.total)
        pct = f" ({self.percent:.1f}%)" if self.percent is not None else ""
        return f"{self.tested}/{total}{pct}"


@dataclass(frozen=True, slots=True)
class Health:
    """The verdict, with what a person needs to act on it."""

    state: State
    reason: str
    action: str
    progress: Progress
    freshness: Freshness
    stale_after: float
    process: str = "not checked"
    supervised: bool = False
    restarts: int | None = None
    max_restarts: int | None = None
    details: tuple[tuple[str, str], ...] = ()

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.state]


def freshness(hb: Heartbeat | None, now: Now) -> Freshness:
    """Age of a heartbeat, preferring the boot clock the wall clock cannot move."""
    if hb is None:
        return Freshness(None)
    if hb.boot_id and now.boot_id and hb.boot_id != now.boot_id:
        return Freshness(None, rebooted=True)
    if (
        hb.boot_id
        and hb.boot_id == now.boot_id
        and hb.boottime is not None
        and now.boottime is not None
    ):
        age = now.boottime - hb.boottime
        if age >= -FUTURE_TOLERANCE:
            return Freshness(max(age, 0.0))
    if hb.at_ms is None:
        return Freshness(None)
    age = (now.wall_ms - hb.at_ms) / 1000
    if age < -FUTURE_TOLERANCE:
        return Freshness(age, future=True)
    return Freshness(max(age, 0.0))


def _progress(hb: Heartbeat | None, cp: Checkpoint | None) -> Progress:
    tested = hb.tested if hb and hb.tested is not None else (cp.tested if cp else None)
    total = hb.total if hb and hb.total is not None else (cp.total if cp else None)
    percent = hb.percent if hb and hb.percent is not None else None
    if percent is None and tested is not None and total:
        percent = 100.0 * tested / total
    item = hb.item if hb and hb.item else (cp.last_item if cp else None)
    # The checkpoint is replaced at most once a second; a heartbeat that counts as
    # many items or more has the newer outcomes.
    counts: Heartbeat | Checkpoint | None = cp
    if (
        hb is not None
        and hb.passed is not None
        and (cp is None or cp.tested is None or (hb.tested or 0) >= cp.tested)
    ):
        counts = hb
    return Progress(
        tested=tested,
        total=total,
        percent=percent,
        item=item,
        passed=counts.passed if counts else None,
        failed=counts.failed if counts else None,
        errors=counts.errors if counts else None,
    )


def _stale_limit(override: float | None, sup: SupervisorDoc | None, hb: Heartbeat | None) -> float:
    if override is not None and override > 0:
        return override
    if sup is not None:
        try:
            value = float(sup.setting("stale_after") or "nan")
        except ValueError:
            value = float("nan")
        if value > 0:
            return value
    if hb is not None and hb.stale_after:
        return hb.stale_after
    return DEFAULT_STALE_AFTER


@dataclass(frozen=True, slots=True)
class _Verdict:
    state: State
    reason: str
    process: str = "not checked"
    action: str | None = None
    freshness: Freshness | None = None


def judge(
    snap: Snapshot,
    now: Now,
    procs: ProcessFacts,
    stale_after: float | None = None,
) -> Health:
    """Turn one snapshot into a verdict. Pure: same inputs, same answer.

    ``stale_after`` overrides the limit recorded by the supervisor or the
    campaign (default 600 s).
    """
    hb = snap.heartbeat if isinstance(snap.heartbeat, Heartbeat) else None
    cp = snap.checkpoint if isinstance(snap.checkpoint, Checkpoint) else None
    sup = snap.supervisor if isinstance(snap.supervisor, SupervisorDoc) else None
    limit = _stale_limit(stale_after, sup, hb)
    progress = _progress(hb, cp)
    fresh = freshness(hb, now)
    found = _rules(snap, now, procs, limit, progress, fresh)
    return Health(
        state=found.state,
        reason=found.reason,
        action=found.action or ACTIONS[found.state],
        progress=progress,
        freshness=found.freshness or fresh,
        stale_after=limit,
        process=found.process,
        supervised=sup is not None,
        restarts=sup.restarts if sup else (len(snap.restarts) or None),
        max_restarts=sup.max_restarts if sup else None,
        details=tuple(
            d for d in _unreadable_details(snap) if d[0] != "problem" or d[1] != found.reason
        ),
    )


def _rules(
    snap: Snapshot,
    now: Now,
    procs: ProcessFacts,
    limit: float,
    progress: Progress,
    fresh: Freshness,
) -> _Verdict:
    hb = snap.heartbeat if isinstance(snap.heartbeat, Heartbeat) else None
    status = _current_status(snap.status if isinstance(snap.status, StatusDoc) else None, hb)
    sup = _current_supervisor(
        snap.supervisor if isinstance(snap.supervisor, SupervisorDoc) else None, hb, procs
    )

    if snap.empty:
        return _Verdict(
            State.UNKNOWN,
            snap.problems[0] if snap.problems else f"no state files in {snap.directory}",
        )

    campaign_alive = procs.alive(hb.pid, hb.pid_start, hb.at_ms) if hb else None
    campaign_proc = _describe(hb.pid if hb else None, campaign_alive)

    # Completion is final, whoever says it.
    if (status and status.state == "COMPLETE") or (sup and sup.state == "complete"):
        finished = campaign_proc if campaign_alive else "not running (finished)"
        return _Verdict(State.COMPLETE, _message(status, "the campaign finished"), finished)

    if sup is not None:
        return _supervised(snap, now, procs, limit, progress, fresh, sup, status, campaign_alive)

    if status and status.state == "CRASHED":
        return _Verdict(State.CRASHED, _message(status, "crashed"), campaign_proc)
    if status and status.state in ("TERMINATED", "INTERRUPTED"):
        return _Verdict(State.TERMINATED, _message(status, status.state.lower()), campaign_proc)
    if hb is None:
        why = str(snap.heartbeat) if isinstance(snap.heartbeat, Unreadable) else "no heartbeat yet"
        return _Verdict(State.UNKNOWN, why, campaign_proc)
    if campaign_alive is False:
        return _Verdict(
            State.CRASHED,
            f"process {hb.pid} is gone without a final status (killed: SIGKILL, OOM, reboot?)",
            campaign_proc,
        )
    note = "no supervisor: no auto-restart"
    if campaign_alive is None:
        note += "; process not checked (no pid)"
    found = _by_freshness(fresh, limit, progress, note, campaign_proc)
    if found.state == State.HEALTHY:
        return _Verdict(
            found.state,
            found.reason,
            found.process,
            "run it under `campaign-tui run -- CMD` for auto-restart",
        )
    return found


# Writers stamp a final status and the heartbeat within moments of each other.
_RECORD_SLACK_MS = 2000


def _newer(hb: Heartbeat | None, at_ms: int | None) -> bool:
    """Is the heartbeat clearly newer than a record written at ``at_ms``?"""
    return (
        hb is not None
        and hb.at_ms is not None
        and at_ms is not None
        and hb.at_ms > at_ms + _RECORD_SLACK_MS
    )


def _current_status(status: StatusDoc | None, hb: Heartbeat | None) -> StatusDoc | None:
    """The status that speaks of the run the heartbeat belongs to.

    A final status older than the heartbeat was left by an earlier run; a final
    status only in the heartbeat (writers that keep no status.json) counts.
    """
    if status is not None and status.final and _newer(hb, status.at_ms):
        status = None
    if status is None and hb is not None and hb.status in FINAL_STATUSES:
        return StatusDoc(state=hb.status, message=f"the heartbeat says {hb.status}", at_ms=hb.at_ms)
    return status


def _current_supervisor(
    sup: SupervisorDoc | None, hb: Heartbeat | None, procs: ProcessFacts
) -> SupervisorDoc | None:
    """A dead supervisor's record is ignored when a newer heartbeat comes from a
    process it did not start: that campaign runs without it."""
    if sup is None or hb is None or hb.pid == sup.child_pid:
        return sup
    sup_alive = procs.alive(sup.pid, sup.pid_start) if sup.pid_start is not None else False
    if not sup_alive and _newer(hb, sup.at_ms):
        return None
    return sup


def _supervised(
    snap: Snapshot,
    now: Now,
    procs: ProcessFacts,
    limit: float,
    progress: Progress,
    fresh: Freshness,
    sup: SupervisorDoc,
    status: StatusDoc | None,
    campaign_alive: bool | None,
) -> _Verdict:
    # Our supervisor always records its create time; a pid without one proves nothing.
    sup_alive = procs.alive(sup.pid, sup.pid_start) if sup.pid_start is not None else False
    child_alive = (
        procs.alive(sup.child_pid, sup.child_start) if sup.child_start is not None else False
    )
    child_proc = _describe(sup.child_pid, child_alive)
    hb = snap.heartbeat if isinstance(snap.heartbeat, Heartbeat) else None
    if hb is not None and hb.attempt and sup.attempt:
        previous_attempt = hb.attempt < sup.attempt
    else:
        previous_attempt = (
            hb is not None
            and hb.at_ms is not None
            and sup.child_started_ms is not None
            and hb.at_ms < sup.child_started_ms
        )
    # A heartbeat older than the running attempt speaks of a dead process:
    # until the new one beats, its start and its output are its signs of life.
    life = fresh if hb is not None and not previous_attempt else _output_freshness(snap, sup, now)
    if sup.state == "gave_up":
        return _Verdict(
            State.CRASHED,
            f"gave up after {sup.restarts or 0} restarts: manual intervention required"
            + _last_crash(status),
            child_proc,
        )
    if sup_alive is not False:
        if sup.state == "backoff":
            overdue = (
                None if sup.next_restart_ms is None else (now.wall_ms - sup.next_restart_ms) / 1000
            )
            if overdue is not None and overdue > BACKOFF_OVERDUE:
                return _Verdict(
                    State.STALE,
                    f"the supervisor is {human_duration(overdue)} overdue: the restart did not happen",
                    f"supervisor pid {sup.pid} stuck?",
                    "look at `campaign-tui logs wrapper`; `campaign-tui stop`, then `start`",
                )
            left = ""
            if sup.next_restart_ms is not None:
                left = f" in {human_duration(max((sup.next_restart_ms - now.wall_ms) / 1000, 0.0))}"
            of = sup.max_restarts if sup.max_restarts is not None else "?"
            return _Verdict(
                State.RESTARTING,
                # in backoff, `restarts` already counts the restart being waited for
                f"restart {max(sup.restarts or 0, 1)} of {of}{left}" + _last_crash(status),
                f"supervisor pid {sup.pid} waiting",
            )
        if sup.state in ("stopping", "stopped"):
            return _Verdict(State.TERMINATED, f"{sup.state} on request", child_proc)
        if child_alive is False:
            return _Verdict(
                State.RESTARTING,
                "the campaign process exited; the supervisor is acting",
                child_proc,
            )
        return _by_freshness(life, limit, progress, None, child_proc)
    # The supervisor is gone (killed?) without a final word.
    if sup.state == "stopped" or (status and status.state in ("TERMINATED", "INTERRUPTED")):
        return _Verdict(State.TERMINATED, _message(status, "stopped on request"), child_proc)
    if child_alive or campaign_alive:
        note = "the supervisor is gone: the campaign runs unsupervised (`campaign-tui start` adopts it)"
        return _by_freshness(life, limit, progress, note, child_proc)
    if status and status.state == "CRASHED":
        return _Verdict(State.CRASHED, _message(status, "crashed"), child_proc)
    return _Verdict(
        State.CRASHED,
        "the supervisor and the campaign are gone without a final status (killed?)",
        child_proc,
    )


def _by_freshness(
    life: Freshness, limit: float, progress: Progress, note: str | None, proc: str
) -> _Verdict:
    """HEALTHY or STALE by the age of the last sign of life."""
    where = f", {progress.item}" if progress.item else ""
    if progress.tested is not None:
        where += f" {progress.tested}/{progress.total if progress.total is not None else '?'}"
    tail = f"; {note}" if note else ""
    if life.rebooted:
        return _Verdict(
            State.CRASHED,
            "the host rebooted since the last heartbeat; the campaign did not survive it",
            proc,
        )
    if life.future:
        ahead = human_duration(-life.age if life.age else 0)
        return _Verdict(
            State.STALE,
            f"{life.source} timestamp is {ahead} in the future (clock changed?): "
            "freshness cannot be judged",
            proc,
            freshness=life,
        )
    if life.age is None:
        return _Verdict(State.UNKNOWN, f"{life.source} has no usable timestamp{tail}", proc)
    if life.age > limit:
        return _Verdict(
            State.STALE,
            f"{life.source} {human_duration(life.age)} old (limit {human_duration(limit)}){where}{tail}",
            proc,
            freshness=life,
        )
    return _Verdict(
        State.HEALTHY,
        f"{life.source} {human_duration(life.age)} old{where}{tail}",
        proc,
        freshness=life,
    )


def _output_freshness(snap: Snapshot, sup: SupervisorDoc, now: Now) -> Freshness:
    """A command that writes no heartbeat: its output (or its start) is the sign of life."""
    marks = [m for m in (snap.output_mtime_ms, sup.child_started_ms) if m is not None]
    if not marks:
        return Freshness(None, source="output")
    age = (now.wall_ms - max(marks)) / 1000
    if age < -FUTURE_TOLERANCE:
        return Freshness(age, future=True, source="output")
    return Freshness(max(age, 0.0), source="last output")


def _describe(pid: int | None, alive: bool | None) -> str:
    if pid is None:
        return "campaign pid unknown"
    if alive is None:
        return f"campaign pid {pid} not checked"
    return f"campaign pid {pid} {'alive' if alive else 'gone'}"


def _message(status: StatusDoc | None, default: str) -> str:
    if status is None:
        return default
    message = status.message or default
    if status.signal and status.signal not in message:
        message += f"; signal {status.signal}"
    elif (
        status.exit_code is not None
        and status.state == "CRASHED"
        and f"code {status.exit_code}" not in message
    ):
        message += f"; exit code {status.exit_code}"
    return message


def _last_crash(status: StatusDoc | None) -> str:
    if status is None or status.state != "CRASHED":
        return ""
    return f" (last: {_message(status, 'crashed')})"


def _unreadable_details(snap: Snapshot) -> tuple[tuple[str, str], ...]:
    found = [
        (name, str(value))
        for name, value in (
            ("heartbeat", snap.heartbeat),
            ("checkpoint", snap.checkpoint),
            ("status", snap.status),
            ("supervisor", snap.supervisor),
        )
        if isinstance(value, Unreadable)
    ]
    return tuple(found) + tuple(("problem", p) for p in snap.problems)
