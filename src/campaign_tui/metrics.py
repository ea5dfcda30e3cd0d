"""Prometheus text exposition of campaigns, for node_exporter's textfile collector.

``campaign-tui metrics`` prints it; a supervisor started with ``--textfile-dir
DIR`` keeps ``DIR/campaign_<name>.prom`` current (replaced atomically, so the
collector never reads half a file). Everything comes from the same snapshot and
judgement as ``campaign-tui status``; rendering is pure.

Every sample carries a ``campaign`` label. ``campaign_state`` is one gauge per
health state, 1 for the current one; counts are gauges (a restarted campaign may
re-run items), restarts a counter read from restarts.jsonl.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from campaign_tui import statedir
from campaign_tui.clock import Now
from campaign_tui.health import Health, State
from campaign_tui.models import Checkpoint, Heartbeat, Snapshot, StatusDoc, SupervisorDoc
from campaign_tui.statedir import StateDir

_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_]")


@dataclass(frozen=True, slots=True)
class _Family:
    name: str
    kind: str  # gauge | counter
    help: str


FAMILIES = (
    _Family(
        "campaign_state", "gauge", "1 for the campaign's current health state, 0 for the others."
    ),
    _Family("campaign_supervised", "gauge", "1 when a supervisor record exists for the campaign."),
    _Family("campaign_items_tested", "gauge", "Items with a final outcome."),
    _Family("campaign_items_planned", "gauge", "Items in the campaign (its total), when known."),
    _Family("campaign_items_passed", "gauge", "Items that passed."),
    _Family("campaign_items_failed", "gauge", "Items that failed."),
    _Family("campaign_items_errors", "gauge", "Items that ended in an error."),
    _Family("campaign_items_skipped", "gauge", "Items that were skipped."),
    _Family("campaign_progress_ratio", "gauge", "Tested items over total items (0 to 1)."),
    _Family(
        "campaign_heartbeat_age_seconds",
        "gauge",
        "Age of the last sign of life when this was rendered.",
    ),
    _Family("campaign_stale_after_seconds", "gauge", "Heartbeat age that counts as a hang."),
    _Family("campaign_attempt", "gauge", "The current (or last) attempt number."),
    _Family("campaign_restart_streak", "gauge", "Restarts in the current crash streak."),
    _Family("campaign_max_restarts", "gauge", "Restarts allowed in one crash streak."),
    _Family("campaign_restarts_total", "counter", "Restarts recorded in restarts.jsonl."),
    _Family("campaign_heartbeat_timestamp_seconds", "gauge", "Unix time of the last heartbeat."),
    _Family("campaign_checkpoint_timestamp_seconds", "gauge", "Unix time of the last checkpoint."),
    _Family("campaign_status_timestamp_seconds", "gauge", "Unix time of the last status change."),
    _Family(
        "campaign_last_restart_timestamp_seconds", "gauge", "Unix time the last attempt ended."
    ),
    _Family(
        "campaign_scrape_timestamp_seconds", "gauge", "Unix time this exposition was rendered."
    ),
)


def escape_label(value: str) -> str:
    """A label value as the text format wants it: backslash, quote and newline escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


def _seconds(ms: int | None) -> float | None:
    return None if ms is None else ms / 1000


def samples(
    name: str, health: Health, snap: Snapshot, now: Now
) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Metric family → [(extra labels, value)] for one campaign; unknown values are left out."""
    hb = snap.heartbeat if isinstance(snap.heartbeat, Heartbeat) else None
    cp = snap.checkpoint if isinstance(snap.checkpoint, Checkpoint) else None
    st = snap.status if isinstance(snap.status, StatusDoc) else None
    sup = snap.supervisor if isinstance(snap.supervisor, SupervisorDoc) else None
    progress = health.progress
    out: dict[str, list[tuple[dict[str, str], float]]] = {f.name: [] for f in FAMILIES}

    def put(family: str, value: float | None, **labels: str) -> None:
        if value is not None:
            out[family].append((labels, float(value)))

    for state in State:
        put("campaign_state", 1.0 if health.state == state else 0.0, state=state.value)
    put("campaign_supervised", 1.0 if sup is not None else 0.0)
    put("campaign_items_tested", progress.tested)
    put("campaign_items_planned", progress.total)
    put("campaign_items_passed", cp.passed if cp else None)
    put("campaign_items_failed", cp.failed if cp else None)
    put("campaign_items_errors", cp.errors if cp else None)
    put("campaign_items_skipped", cp.skipped if cp else None)
    if progress.tested is not None and progress.total:
        put("campaign_progress_ratio", min(1.0, progress.tested / progress.total))
    age = health.freshness.age
    put("campaign_heartbeat_age_seconds", max(0.0, age) if age is not None else None)
    put("campaign_stale_after_seconds", health.stale_after)
    attempt = sup.attempt if sup and sup.attempt is not None else (hb.attempt if hb else None)
    put("campaign_attempt", attempt)
    put("campaign_restart_streak", health.restarts if health.restarts is not None else 0)
    put("campaign_max_restarts", health.max_restarts)
    put(
        "campaign_restarts_total",
        sum(1 for r in snap.restarts if r.next_delay is not None),
    )
    put("campaign_heartbeat_timestamp_seconds", _seconds(hb.at_ms if hb else None))
    put("campaign_checkpoint_timestamp_seconds", _seconds(cp.at_ms if cp else None))
    put("campaign_status_timestamp_seconds", _seconds(st.at_ms if st else None))
    ended = [r.ended_ms for r in snap.restarts if r.ended_ms is not None]
    put("campaign_last_restart_timestamp_seconds", _seconds(max(ended)) if ended else None)
    put("campaign_scrape_timestamp_seconds", now.wall_ms / 1000)
    return out


def render(campaigns: Iterable[tuple[str, Health, Snapshot, Now]]) -> str:
    """The text exposition of one or more campaigns (each family once, all its samples together)."""
    rendered = [(name, samples(name, h, s, n)) for name, h, s, n in campaigns]
    lines: list[str] = []
    for family in FAMILIES:
        rows = [
            (name, labels, value) for name, fam in rendered for labels, value in fam[family.name]
        ]
        if not rows:
            continue
        lines.append(f"# HELP {family.name} {family.help}")
        lines.append(f"# TYPE {family.name} {family.kind}")
        for name, labels, value in rows:
            pairs = [("campaign", name), *sorted(labels.items())]
            label_text = ",".join(f'{k}="{escape_label(v)}"' for k, v in pairs)
            lines.append(f"{family.name}{{{label_text}}} {_number(value)}")
    return "\n".join(lines) + "\n" if lines else ""


def read_campaign(sd: StateDir, name: str | None = None) -> tuple[str, Health, Snapshot, Now]:
    """One campaign's snapshot and verdict, as ``status`` judges it, ready for :func:`render`."""
    from campaign_tui import clock
    from campaign_tui.health import judge
    from campaign_tui.snapshot import probe_processes, read_snapshot

    snap = read_snapshot(sd)
    now = clock.now()
    return name or sd.name, judge(snap, now, probe_processes(snap)), snap, now


def textfile_name(campaign: str) -> str:
    """``campaign_<name>.prom``, the name made safe for any directory."""
    return f"campaign_{_NAME_UNSAFE.sub('_', campaign) or 'default'}.prom"


def write_textfile(directory: Path, campaign: str, text: str) -> Path:
    """Replace ``DIR/campaign_<name>.prom`` atomically (mode 0644: the collector runs as
    another user). The temp file does not end in ``.prom``, so the collector skips it.
    Raises OSError."""
    target = directory / textfile_name(campaign)
    statedir.replace_atomically(target, text.encode("utf-8"), mode=0o644)
    return target
