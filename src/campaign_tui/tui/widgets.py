"""The panes of the monitor. They render what they are given and never read files.

Every string that came from a campaign (reasons, item names, log lines, the
command line) was sanitized by the readers; here it is only ever placed into
:class:`~textual.content.Content` as plain text or written to a ``Log``, never
parsed as markup.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any, cast

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.css.styles import RulesMap
from textual.timer import Timer
from textual.widgets import DataTable, Label, Log, ProgressBar, Static, TabbedContent, TabPane
from textual.widgets import Footer as TextualFooter

from campaign_tui.clock import human_duration
from campaign_tui.health import Health, State
from campaign_tui.models import Heartbeat, RestartRecord, Snapshot, SupervisorDoc
from campaign_tui.tui.pace import Pace
from campaign_tui.tui.usage import TreeUsage
from campaign_tui.tui.watcher import LOG_LINES

SYMBOLS = {
    State.HEALTHY: "●",
    State.STALE: "!",
    State.CRASHED: "✘",
    State.COMPLETE: "✔",
    State.TERMINATED: "■",
    State.RESTARTING: "↻",
    State.UNKNOWN: "?",
}
LOG_TITLES = {
    "errors": "errors",
    "alerts": "alerts",
    "progress": "progress",
    "output": "output",
    "restarts": "restarts",
}

DIM = "dim"
Part = str | tuple[str, str]


def clock_time(ms: int | None, now_ms: int | None = None) -> str:
    """Local wall time of a ms timestamp: ``14:03:07`` today, ``06-01 14:03`` otherwise."""
    if ms is None:
        return "?"
    try:
        when = datetime.fromtimestamp(ms / 1000).astimezone()
        today = datetime.fromtimestamp((now_ms or time.time() * 1000) / 1000).astimezone()
    except (OverflowError, OSError, ValueError):
        return "?"
    if when.date() == today.date():
        return when.strftime("%H:%M:%S")
    return when.strftime("%m-%d %H:%M")


def age_text(seconds: float | None) -> str:
    """An age that ticks in whole seconds (no flicker of tenths)."""
    if seconds is None:
        return "?"
    return human_duration(float(int(seconds))) if seconds >= 1 else "0s"


def size_text(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"  # pragma: no cover


def set_content(widget: Static, content: Content) -> bool:
    """Show ``content`` in ``widget`` unless it shows exactly that already.

    ``Static.update`` lays the whole screen out again by default; the panes are
    updated every second, so a layout is asked for only when the widget's size can
    change: a different number of lines at its width, or, for a widget as wide as
    its text, a different width. Returns whether anything was updated.
    """
    old = widget.content
    if isinstance(old, Content) and old.plain == content.plain and old.spans == content.spans:
        return False
    widget.update(content, layout=_resizes(widget, old, content))
    return True


def _resizes(widget: Static, old: object, new: Content) -> bool:
    if not isinstance(old, Content):
        return True
    width = widget.content_size.width
    if width <= 0:
        return True  # not laid out yet
    styles = widget.styles
    as_wide_as_text = styles.width is not None and styles.width.is_auto
    if as_wide_as_text and old.cell_length != new.cell_length:
        return True
    if styles.height is None or styles.height.is_auto:
        # Styles answer get() as the RulesMap asks, and are what Textual's Widget passes.
        rules = cast(RulesMap, styles)
        return old.get_height(rules, width) != new.get_height(rules, width)
    return False


def _join(parts: list[list[Part]], sep: str = " · ") -> Content:
    """Groups of parts joined by a dim separator; each part plain text or (text, style)."""
    out: list[Part] = []
    for group in parts:
        if out:
            out.append((sep, DIM))
        out.extend(group)
    return Content.assemble(*out)


class HealthPane(Vertical):
    """The verdict: the state in words (and colour), the reason, what to do."""

    def compose(self) -> ComposeResult:
        with Horizontal(id="health-row"):
            yield Label("…", id="state-word")
            yield Static(id="reason", markup=False)
        yield Static(id="action", markup=False)

    def show(self, health: Health) -> None:
        state = health.state
        for each in State:
            self.set_class(each is state, f"-{each.value.lower()}")
        set_content(
            self.query_one("#state-word", Label), Content(f" {SYMBOLS[state]} {state.value} ")
        )
        set_content(self.query_one("#reason", Static), Content(health.reason))
        set_content(self.query_one("#action", Static), Content.assemble(("→ ", DIM), health.action))


class Footer(TextualFooter):
    """Textual's footer without its leak: it is composed again whenever the bindings
    change (each time a dialog or the help opens or closes), and each FooterKey it
    composes registers a watcher on the footer's ``compact`` that Textual drops only
    when ``compact`` changes, which it never does, so every removed key stayed
    alive with its render caches (~0.3 MiB per open and close of the help)."""

    async def recompose(self) -> None:
        await super().recompose()
        watchers = getattr(self, "__watchers", None)  # Textual's watchers, by reactive
        if isinstance(watchers, dict):
            for entries in watchers.values():
                entries[:] = [(node, cb) for node, cb in entries if node.is_attached]


class StillBar(ProgressBar):
    """A progress bar that shows no ETA, so it keeps no once-a-second timer to
    recompute one: it is redrawn only when its total or position moves."""

    def set_interval(
        self, interval: float, callback: Any = None, *args: Any, **kwargs: Any
    ) -> Timer:
        timer = super().set_interval(interval, callback, *args, **kwargs)
        if callback == self.update:
            timer.stop()  # ProgressBar's ETA refresh: never needed here
        return timer


class ProgressPane(Vertical):
    """How far, how fast, and how fresh."""

    def compose(self) -> ComposeResult:
        with Horizontal(id="progress-row"):
            yield StillBar(total=100, show_eta=False, show_percentage=False, id="bar")
            yield Static(id="counts", markup=False)
        yield Static(id="detail", markup=False)

    _bar: tuple[float, float] | None = None

    def show(self, health: Health, snap: Snapshot, pace: Pace, now_ms: int) -> None:
        p = health.progress
        # unknown total: an empty bar, never the animation
        bar = (p.total, min(p.tested or 0, p.total)) if p.total else (1, 0)
        if bar != self._bar:
            self._bar = bar
            self.query_one("#bar", ProgressBar).update(total=bar[0], progress=bar[1])
        counts: list[list[Part]] = []
        if p.tested is not None:
            of = f"/{p.total}" if p.total is not None else ""
            pct = f" {p.percent:.1f}%" if p.percent is not None else ""
            counts.append([(f"{p.tested}{of}", "bold"), pct])
        else:
            counts.append([("no progress reported yet", DIM)])
        tallies = [
            (p.passed, "passed", "$text-success"),
            (p.failed, "failed", "$text-warning"),
            (p.errors, "errors", "$text-error"),
        ]
        shown: list[list[Part]] = [
            [(str(n), f"bold {style}" if n else "bold"), f" {word}"]
            for n, word, style in tallies
            if n is not None
        ]
        counts.extend(shown)
        set_content(self.query_one("#counts", Static), _join(counts))

        detail: list[list[Part]] = []
        if p.item:
            detail.append([("item ", DIM), p.item])
        # A campaign that is over goes no slower: its rate is the one at its last result.
        rate = pace.rate_at(pace.last_ms if is_final(health, snap) and pace.last_ms else now_ms)
        if rate:
            detail.append([f"{rate:.1f}", ("/min", DIM)])
            remaining = (
                (p.total - p.tested) if p.total is not None and p.tested is not None else None
            )
            eta = pace.eta(remaining, now_ms)
            if eta is not None and health.state in (State.HEALTHY, State.STALE):
                detail.append([("ETA ", DIM), human_duration(eta)])
        hb = snap.heartbeat if isinstance(snap.heartbeat, Heartbeat) else None
        fresh = health.freshness
        if hb is not None and hb.at_ms is not None:
            detail.append(
                [("heartbeat ", DIM), clock_time(hb.at_ms, now_ms), f" ({age_text(fresh.age)} ago)"]
            )
        elif fresh.age is not None:
            detail.append([(f"{fresh.source} ", DIM), f"{age_text(fresh.age)} ago"])
        else:
            detail.append([("no heartbeat yet", DIM)])
        set_content(self.query_one("#detail", Static), _join(detail))


def is_final(health: Health, snap: Snapshot) -> bool:
    """Is the campaign over: complete, stopped, or crashed with nothing to restart it?"""
    if health.state in (State.COMPLETE, State.TERMINATED):
        return True
    if health.state is not State.CRASHED:
        return False
    sup = snap.supervisor if isinstance(snap.supervisor, SupervisorDoc) else None
    return sup is None or sup.state == "gave_up"


class ProcessPane(Static):
    """The supervisor and the campaign's process tree."""

    def show(
        self,
        health: Health,
        snap: Snapshot,
        usage: TreeUsage | None,
        now_ms: int,
        alive: dict[str, bool | None],
    ) -> None:
        sup = snap.supervisor if isinstance(snap.supervisor, SupervisorDoc) else None
        lines: list[Content] = []
        if sup is None:
            lines.append(
                Content.assemble(
                    ("no supervisor", "bold"), (" · no auto-restart; ", DIM), health.process
                )
            )
        else:
            state_style = "bold $text-error" if sup.state == "gave_up" else "bold"
            first: list[list[Part]] = [
                [("supervisor ", DIM), (sup.state.replace("_", " "), state_style)]
            ]
            if sup.pid is not None:
                gone = "" if alive.get("supervisor") is not False else " (exited)"
                first.append([("pid ", DIM), f"{sup.pid}{gone}"])
            if sup.started_ms is not None and alive.get("supervisor"):
                first.append([("up ", DIM), human_duration(max(0, now_ms - sup.started_ms) / 1000)])
            if sup.attempt is not None:
                first.append([("attempt ", DIM), str(sup.attempt)])
            of = f"/{sup.max_restarts}" if sup.max_restarts is not None else ""
            first.append([("restarts ", DIM), f"{sup.restarts or 0}{of}"])
            if sup.state == "backoff" and sup.next_restart_ms is not None:
                left = max(0.0, (sup.next_restart_ms - now_ms) / 1000)
                first.append(
                    [("next restart in ", DIM), (human_duration(left), "bold $text-warning")]
                )
            lines.append(_join(first))
        if usage is not None:
            second: list[list[Part]] = [
                [("campaign pid ", DIM), str(usage.pid)],
                [("up ", DIM), human_duration(max(0.0, now_ms / 1000 - usage.started))],
                [str(usage.processes), (" process" + ("es" if usage.processes != 1 else ""), DIM)],
                [("CPU ", DIM), f"{usage.cpu_percent:.0f}%"],
                [("mem ", DIM), size_text(usage.rss_bytes)],
            ]
            lines.append(_join(second))
        else:
            lines.append(Content.assemble(("campaign not running", DIM)))
        set_content(self, Content("\n").join(lines))


class RestartTable(DataTable):
    """One row per ended attempt, newest first."""

    COLUMNS = ("#", "ended", "reason", "exit", "uptime", "item in flight")

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.zebra_stripes = True
        for column in self.COLUMNS:
            self.add_column(column, key=column)
        self._shown: tuple[RestartRecord, ...] = ()

    def show(self, records: tuple[RestartRecord, ...], now_ms: int) -> None:
        if records == self._shown:
            return
        self._shown = records
        self.clear()
        for record in reversed(records[-200:]):
            if record.signal:
                ended = record.signal
            elif record.exit_code is not None:
                ended = f"exit {record.exit_code}"
            else:
                ended = ""
            # Text cells: a plain str cell would be parsed as markup.
            self.add_row(
                Text(str(record.attempt) if record.attempt is not None else "?"),
                Text(clock_time(record.ended_ms, now_ms)),
                Text(record.reason, style=_reason_style(record.reason)),
                Text(ended),
                Text(human_duration(record.uptime)),
                Text(record.item or ""),
            )


def _reason_style(reason: str) -> str:
    if reason in ("crash", "hang"):
        return "bold red"
    if reason == "complete":
        return "green"
    return ""


class LogTabs(Vertical):
    """The log tail, a tab per log, and the restart history."""

    def __init__(self, kinds: tuple[str, ...], *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.kinds = kinds

    def compose(self) -> ComposeResult:
        with TabbedContent(id="tabs"):
            for kind in self.kinds:
                with TabPane(LOG_TITLES[kind], id=f"tab-{kind}"):
                    if kind == "restarts":
                        yield RestartTable(id="restarts")
                    else:
                        yield Log(max_lines=LOG_LINES, id=f"log-{kind}", classes="log")

    @property
    def active(self) -> str:
        return self.query_one(TabbedContent).active.removeprefix("tab-")

    def write(self, kind: str, lines: list[str], replace: bool) -> None:
        log = self.query_one(f"#log-{kind}", Log)
        if replace or log.has_class("-placeholder"):
            log.clear()
            log.remove_class("-placeholder")
        if replace and not lines:
            log.add_class("-placeholder")
            lines = [f"(nothing in the {kind} log yet)"]
        log.write_lines(lines)

    def cycle(self, step: int) -> str:
        current = self.active
        index = self.kinds.index(current) if current in self.kinds else -1
        kind = self.kinds[(index + step) % len(self.kinds)]
        self.query_one(TabbedContent).active = f"tab-{kind}"
        return kind
