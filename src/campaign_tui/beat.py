"""Reporting from a shell campaign: what `campaign-tui beat` writes.

Each call is a separate short process, so what one call does not say (the
total, how many are done) is carried forward from the files the last one wrote.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from campaign_tui import procs, statedir
from campaign_tui.campaign import read_journal
from campaign_tui.models import Checkpoint, Heartbeat
from campaign_tui.statedir import StateDir
from campaign_tui.writer import StateWriter, heartbeat_doc, stamp


@dataclass(frozen=True, slots=True)
class Beat:
    """One `beat` call: an item started (no outcome) or finished (an outcome)."""

    item: str | None = None
    outcome: str | None = None
    tested: int | None = None
    total: int | None = None
    status: str | None = None
    message: str = ""
    pid: int | None = None


def _previous(sd: StateDir) -> tuple[int | None, int | None]:
    """(tested, total) as the last call left them."""
    tested = total = None
    for name, parse in (
        (statedir.HEARTBEAT, Heartbeat.parse),
        (statedir.CHECKPOINT, Checkpoint.parse),
    ):
        doc = statedir.read_json(sd.file(name))
        model = parse(doc) if doc is not None else None
        if isinstance(model, (Heartbeat, Checkpoint)):
            tested = model.tested if model.tested is not None else tested
            total = model.total if model.total is not None else total
    return tested, total


def report(sd: StateDir, beat: Beat, writer: StateWriter) -> None:
    """Write what one `beat` call says: result, checkpoint, heartbeat, status."""
    attempt = _env_attempt()
    pid = beat.pid or os.getppid()  # the shell running the loop is the campaign
    prev_tested, prev_total = _previous(sd)
    total = beat.total if beat.total is not None else prev_total
    tested = beat.tested if beat.tested is not None else prev_tested
    if beat.outcome and beat.item:
        writer.jsonl(
            statedir.RESULTS,
            {
                "item": beat.item,
                "outcome": beat.outcome,
                "message": beat.message,
                "attempt": attempt,
                **stamp(),
            },
        )
        done = read_journal(sd)
        counts = {
            o: sum(1 for v in done.values() if v == o)
            for o in ("passed", "failed", "error", "skipped")
        }
        tested = len(done) if beat.tested is None else beat.tested
        writer.json(
            statedir.CHECKPOINT,
            {
                **stamp(),
                "tested": tested,
                "total": total,
                "passed": counts["passed"],
                "failed": counts["failed"],
                "errors": counts["error"],
                "skipped": counts["skipped"],
                "last_item": beat.item,
                "can_resume": True,
            },
        )
        suffix = f": {beat.message}" if beat.message else ""
        writer.log(
            statedir.PROGRESS_LOG,
            "INFO" if beat.outcome in ("passed", "skipped") else "WARNING",
            f"[{tested}/{total if total is not None else '?'}] {beat.item} {beat.outcome}{suffix}",
        )
    writer.json(
        statedir.HEARTBEAT,
        heartbeat_doc(
            item=None if beat.outcome else beat.item,
            tested=tested,
            total=total,
            status=beat.status or "RUNNING",
            pid=pid,
            pid_start=procs.start_time(pid),
            attempt=attempt,
        ),
    )
    if beat.status and beat.status != "RUNNING":
        writer.status(
            beat.status, beat.message or f"declared {beat.status.lower()} by the campaign"
        )


def _env_attempt() -> int | None:
    try:
        return int(os.environ["CAMPAIGN_ATTEMPT"])
    except (KeyError, ValueError):
        return None
