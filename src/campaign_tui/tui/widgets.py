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

from rich.cells import cell_len
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.css.styles import RulesMap
from textual.timer import Timer
from textual.widgets import DataTable, Log, ProgressBar, Static, TabbedContent, TabPane
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
PACE_STEP_MS = 5000  # how often a rate (and ETA) is recomputed while no item finishes
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


def uptime_text(seconds: float) -> str:
    """An uptime to the minute, like ``uptime``: ``<1m``, ``12m``, ``3h05m``, ``2d04h``.

    It does not tick every second: the heartbeat's age does that, once, in the
    reason, and each ticking value costs the monitor a repaint a second.
    """
    if seconds < 60:
        return "<1m"
    if seconds < 3600:
        return f"{int(seconds) // 60}m"
    return human_duration(seconds)


def size_text(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"  # pragma: no cover


class LiveText(Static):
    """Plain text that is replaced often: every second, for a ticking age.

    ``Static.update`` lays the whole screen out again by default; here a layout is
    asked for only when the widget's size can change (a different number of lines
    at its width or, for a widget as wide as its text, a different width), and its
    width is remembered from its last resize rather than asked of the compositor
    each time.
    """

    _width = 0
    _groups: tuple[list[list[Part]], ...] | None = None

    def on_resize(self) -> None:
        self._width = self.content_size.width

    def set_content(self, content: Content) -> bool:
        """Show ``content`` unless it is shown already; returns whether it was updated."""
        old = self.content
        if isinstance(old, Content) and old.plain == content.plain and old.spans == content.spans:
            return False
        self.update(content, layout=not isinstance(old, Content) or self._resizes(old, content))
        return True

    def set_groups(self, *lines: list[list[Part]]) -> bool:
        """Show lines, each of groups of parts joined by a dim " · " (see :func:`_join`).

        Most seconds nothing in them changed: comparing the parts is cheaper than
        assembling them, so they are assembled only when they differ.
        """
        if lines == self._groups:
            return False
        self._groups = lines
        return self.set_content(Content("\n").join(_join(groups) for groups in lines))

    def _resizes(self, old: Content, new: Content) -> bool:
        width = self._width
        if width <= 0:
            return True  # not laid out yet
        styles = self.styles
        if styles.width is not None and styles.width.is_auto and old.cell_length != new.cell_length:
            return True
        if styles.height is not None and not styles.height.is_auto:
            return False
        before, after = _unwrapped_lines(old, width), _unwrapped_lines(new, width)
        if before is not None and after is not None:
            return before != after
        # Styles answer get() as the RulesMap asks, and are what Textual's Widget passes.
        rules = cast(RulesMap, styles)
        return old.get_height(rules, width) != new.get_height(rules, width)


def _unwrapped_lines(content: Content, width: int) -> int | None:
    """The number of lines of ``content`` when none of them is wider than ``width``
    (the common case, and cheap to tell), else None."""
    lines = content.plain.split("\n")
    return len(lines) if all(cell_len(line) <= width for line in lines) else None


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

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._word = LiveText("…", id="state-word", markup=False)
        self._reason = LiveText(id="reason", markup=False)
        self._action = LiveText(id="action", markup=False)
        self._state: State | None = None

    def compose(self) -> ComposeResult:
        with Horizontal(id="health-row"):
            yield self._word
            yield self._reason
        yield self._action

    def show(self, health: Health) -> None:
        state = health.state
        if state is not self._state:
            self._state = state
            for each in State:
                self.set_class(each is state, f"-{each.value.lower()}")
            self._word.set_content(Content(f" {SYMBOLS[state]} {state.value} "))
        self._reason.set_groups([[health.reason]])
        self._action.set_groups([[("→ ", DIM), health.action]])


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

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._progress_bar = StillBar(total=100, show_eta=False, show_percentage=False, id="bar")
        self._counts = LiveText(id="counts", markup=False)
        self._detail = LiveText(id="detail", markup=False)
        self._bar: tuple[float, float] | None = None
        self._shown: tuple[object, ...] | None = None

    def compose(self) -> ComposeResult:
        with Horizontal(id="progress-row"):
            yield self._progress_bar
            yield self._counts
        yield self._detail

    def show(self, health: Health, snap: Snapshot, pace: Pace, now_ms: int) -> None:
        final = is_final(health, snap)
        # A campaign that is over goes no slower: its rate is the one at its last result.
        # A running one slows down while nothing finishes, in steps of PACE_STEP_MS:
        # a rate and an ETA that changed every second would be noise to read.
        at = pace.last_ms if final and pace.last_ms else now_ms
        at -= at % PACE_STEP_MS
        p = health.progress
        # All this pane shows comes from these (today's date for the heartbeat's time);
        # most seconds none of them moved.
        today = time.localtime(now_ms / 1000)[:3]
        key = (p, health.state, health.freshness.age is None, snap.heartbeat, pace, at, today)
        if key == self._shown:
            return
        self._shown = key
        # unknown total: an empty bar, never the animation
        bar = (p.total, min(p.tested or 0, p.total)) if p.total else (1, 0)
        if bar != self._bar:
            self._bar = bar
            self._progress_bar.update(total=bar[0], progress=bar[1])
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
        self._counts.set_groups(counts)

        detail: list[list[Part]] = []
        if p.item:
            detail.append([("item ", DIM), p.item])
        rate = pace.rate_at(at)
        if rate:
            detail.append([f"{rate:.1f}", ("/min", DIM)])
            remaining = (
                (p.total - p.tested) if p.total is not None and p.tested is not None else None
            )
            eta = pace.eta(remaining, at)
            if eta is not None and remaining and health.state in (State.HEALTHY, State.STALE):
                detail.append([("ETA ", DIM), human_duration(eta)])
        # When, not how long ago: the reason above counts the age up live.
        hb = snap.heartbeat if isinstance(snap.heartbeat, Heartbeat) else None
        if hb is not None and hb.at_ms is not None:
            detail.append([("heartbeat at ", DIM), clock_time(hb.at_ms, now_ms)])
        elif health.freshness.age is None:
            detail.append([("no heartbeat yet", DIM)])
        self._detail.set_groups(detail)


def is_final(health: Health, snap: Snapshot) -> bool:
    """Is the campaign over: complete, stopped, or crashed with nothing to restart it?"""
    if health.state in (State.COMPLETE, State.TERMINATED):
        return True
    if health.state is not State.CRASHED:
        return False
    sup = snap.supervisor if isinstance(snap.supervisor, SupervisorDoc) else None
    return sup is None or sup.state == "gave_up"


class ProcessPane(LiveText):
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
        lines: list[list[list[Part]]] = []
        if sup is None:
            lines.append(
                [[("no supervisor", "bold"), (" · no auto-restart; ", DIM), health.process]]
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
                first.append([("up ", DIM), uptime_text((now_ms - sup.started_ms) / 1000)])
            if sup.attempt is not None:
                first.append([("attempt ", DIM), str(sup.attempt)])
            of = f"/{sup.max_restarts}" if sup.max_restarts is not None else ""
            first.append([("restarts ", DIM), f"{sup.restarts or 0}{of}"])
            if sup.state == "backoff" and sup.next_restart_ms is not None:
                left = max(0.0, (sup.next_restart_ms - now_ms) / 1000)
                first.append(
                    [("next restart in ", DIM), (human_duration(left), "bold $text-warning")]
                )
            lines.append(first)
        if usage is not None:
            second: list[list[Part]] = [
                [("campaign pid ", DIM), str(usage.pid)],
                [("up ", DIM), uptime_text(now_ms / 1000 - usage.started)],
                [str(usage.processes), (" process" + ("es" if usage.processes != 1 else ""), DIM)],
                [("CPU ", DIM), f"{usage.cpu_percent:.0f}%"],
                [("mem ", DIM), size_text(usage.rss_bytes)],
            ]
            lines.append(second)
        else:
            lines.append([[("campaign not running", DIM)]])
        self.set_groups(*lines)


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
