"""How a health verdict is told: a monitoring-plugin line, a readable report, JSON.

Every string shown here was sanitized when it was read, so it is printed as is.
"""

from __future__ import annotations

from typing import Any

from campaign_tui.clock import Now, human_duration, iso
from campaign_tui.health import Health
from campaign_tui.models import Heartbeat, Snapshot, SupervisorDoc


def plugin_line(health: Health) -> str:
    """``CAMPAIGN STATE - reason | perfdata`` as Nagios-style plugins print it."""
    perf = []
    age = health.freshness.age
    if age is not None:
        perf.append(f"heartbeat_age={max(age, 0):.0f}s;;{health.stale_after:.0f};0")
    p = health.progress
    if p.tested is not None:
        perf.append(f"tested={p.tested};;;0;{p.total if p.total is not None else ''}".rstrip(";"))
    if health.restarts is not None or health.max_restarts is not None:
        top = "" if health.max_restarts is None else str(health.max_restarts)
        perf.append(f"restarts={health.restarts or 0};;;0;{top}".rstrip(";"))
    reason = health.reason.replace("|", "/")  # '|' starts perfdata
    line = f"CAMPAIGN {health.state.value} - {reason}"
    return f"{line} | {' '.join(perf)}" if perf else line


def _age_text(ms: int | None, now: Now) -> str:
    if ms is None:
        return "?"
    return f"{iso(ms)} ({human_duration((now.wall_ms - ms) / 1000)} ago)"


def report_text(health: Health, snap: Snapshot, now: Now) -> str:
    """The readable report under the plugin line."""
    p = health.progress
    rows: list[tuple[str, str]] = [
        ("State", health.state.value),
        ("Reason", health.reason),
        ("Directory", snap.directory + (" (legacy layout)" if snap.layout == "legacy" else "")),
    ]
    progress = p.text()
    counts = [
        f"{label} {value}"
        for label, value in (("passed", p.passed), ("failed", p.failed), ("errors", p.errors))
        if value is not None
    ]
    if counts:
        progress += "  " + " · ".join(counts)
    rows.append(("Progress", progress))
    rows.append(("Current item", p.item or "-"))
    hb = snap.heartbeat if isinstance(snap.heartbeat, Heartbeat) else None
    if hb is not None:
        age = health.freshness.age
        when = _age_text(hb.at_ms, now)
        if age is not None and hb.at_ms is not None:
            when = f"{iso(hb.at_ms)} ({human_duration(age)} ago)"
        rows.append(("Last heartbeat", when + (f", attempt {hb.attempt}" if hb.attempt else "")))
    elif snap.heartbeat is not None:
        rows.append(("Last heartbeat", str(snap.heartbeat)))
    rows.append(("Process", health.process))
    sup = snap.supervisor if isinstance(snap.supervisor, SupervisorDoc) else None
    if sup is not None:
        restarts = (
            f"{sup.restarts or 0}/{sup.max_restarts if sup.max_restarts is not None else '?'}"
        )
        rows.append(
            (
                "Supervisor",
                f"{sup.state}, pid {sup.pid}, attempt {sup.attempt or '?'}, restarts {restarts}",
            )
        )
    elif snap.supervisor is not None:
        rows.append(("Supervisor", str(snap.supervisor)))
    else:
        rows.append(("Supervisor", "none (no auto-restart)"))
    if snap.restarts:
        last = snap.restarts[-1]
        how = f"signal {last.signal}" if last.signal else f"exit code {last.exit_code}"
        rows.append(("Last attempt", f"attempt {last.attempt} ended ({last.reason}, {how})"))
    for name, why in health.details:
        rows.append((name.capitalize(), why))
    width = max(len(label) for label, _ in [*rows, ("Recommendation", "")]) + 2
    lines = [f"{label + ':':<{width}}{value}" for label, value in rows]
    if snap.recent_alerts:
        lines.append("Recent alerts:")
        lines += [f"  {alert.text}" for alert in snap.recent_alerts]
    lines.append(f"{'Recommendation:':<{width}}{health.action}")
    return "\n".join(lines)


def health_json(health: Health, snap: Snapshot, now: Now) -> dict[str, Any]:
    """The machine-readable form of ``status --json``."""
    p = health.progress
    hb = snap.heartbeat if isinstance(snap.heartbeat, Heartbeat) else None
    sup = snap.supervisor if isinstance(snap.supervisor, SupervisorDoc) else None
    return {
        "state": health.state.value,
        "exit_code": health.exit_code,
        "reason": health.reason,
        "action": health.action,
        "state_dir": snap.directory,
        "layout": snap.layout,
        "progress": {
            "tested": p.tested,
            "total": p.total,
            "percent": None if p.percent is None else round(p.percent, 1),
            "passed": p.passed,
            "failed": p.failed,
            "errors": p.errors,
            "current_item": p.item,
        },
        "heartbeat": {
            "age_seconds": None if health.freshness.age is None else round(health.freshness.age, 3),
            "timestamp": hb.at_ms if hb else None,
            "future": health.freshness.future,
            "host_rebooted": health.freshness.rebooted,
            "stale_after": health.stale_after,
        },
        "process": health.process,
        "supervisor": None
        if sup is None
        else {
            "state": sup.state,
            "pid": sup.pid,
            "child_pid": sup.child_pid,
            "attempt": sup.attempt,
            "restarts": sup.restarts,
            "max_restarts": sup.max_restarts,
            "next_restart_ms": sup.next_restart_ms,
        },
        "restarts": len(snap.restarts),
        "recent_alerts": [a.text for a in snap.recent_alerts],
        "unreadable": dict(health.details),
        "checked_at": now.wall_ms,
    }
