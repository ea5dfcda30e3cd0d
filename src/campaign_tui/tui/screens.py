"""The screens: the monitor of one campaign, the picker, the empty state, and dialogs."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.content import Content
from textual.css.query import NoMatches
from textual.screen import ModalScreen, Screen
from textual.widgets import DataTable, Static
from textual.worker import Worker, WorkerState

from campaign_tui import clock, statedir
from campaign_tui.health import CRITICAL_STATES, Health, State, judge
from campaign_tui.models import Snapshot, SupervisorDoc
from campaign_tui.procs import ProcessFacts
from campaign_tui.sanitize import sanitize
from campaign_tui.snapshot import probe_processes, read_snapshot
from campaign_tui.statedir import StateDir
from campaign_tui.tui.pace import Pace
from campaign_tui.tui.usage import TreeUsage
from campaign_tui.tui.watcher import LogLines, ProcessesSampled, StateRead, StateWatcher, log_kinds
from campaign_tui.tui.widgets import (
    SYMBOLS,
    Footer,
    HealthPane,
    LogTabs,
    ProcessPane,
    ProgressPane,
    RestartTable,
)

CONTROL_TIMEOUT = 300.0
PICKER_NOTE = (
    "enter opens a campaign · q quits the monitor only: the campaigns keep running "
    "(open one and press x to stop it)."
)
LIVE_STATES = ("running", "backoff", "stopping")


# ---------------------------------------------------------------------- control


def run_control(verb: str, sd: StateDir) -> tuple[int, str]:
    """``campaign-tui start|stop|restart`` for ``sd``: its exit code and what it said.

    Blocks (up to the stop timeout and a few seconds): call it in a thread worker.
    It runs as a child process rather than in-process because ``start`` forks the
    supervisor daemon, and forking this multi-threaded app would hand the daemon
    copies of its threads' locks; the child's output is also kept off the screen.
    """
    command = [sys.executable, "-m", "campaign_tui", verb, "--state-dir", str(sd.path)]
    try:
        done = subprocess.run(
            command,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=CONTROL_TIMEOUT,
            start_new_session=True,  # a hang-up of this terminal must not cut it short
            check=False,
        )
    except subprocess.TimeoutExpired:
        return 1, f"no answer within {CONTROL_TIMEOUT:.0f}s"
    except OSError as exc:
        return 1, f"cannot run {command[0]}: {exc.strerror}"
    said = b" ".join((done.stdout + b"\n" + done.stderr).split())
    return done.returncode, sanitize(said, limit=400)


# ---------------------------------------------------------------------- dialogs


class ConfirmScreen(ModalScreen[bool]):
    """A yes / no question: ``y`` confirms, ``n`` or Escape cancels."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n", "answer(False)", "No"),
        Binding("escape", "answer(False)", "Cancel", show=False),
    ]

    def __init__(self, question: str, detail: str = "") -> None:
        super().__init__()
        self.question = sanitize(question)
        self.detail = sanitize(detail)

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(Content.styled(self.question, "bold"), id="question")
            if self.detail:
                yield Static(Content(self.detail), id="question-detail")
            yield Static(
                Content.from_markup("[b]y[/b] yes · [b]n[/b] / [b]esc[/b] no"), id="answers"
            )

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


HELP = """\
[b]campaign-tui[/b] — the monitor of one campaign

  [b]s[/b]          start the campaign (detached: it outlives this terminal)
  [b]x[/b]          stop it (asks y/n): SIGTERM to the whole process tree
  [b]r[/b]          restart it now (asks y/n; does not count against max restarts)
  [b]tab[/b] / [b]l[/b]    next log tab · [b]shift+tab[/b] / [b]h[/b] previous
  [b]↑ ↓[/b]        scroll the log · [b]pgup[/b] / [b]pgdn[/b] a page at a time
  [b]ctrl+p[/b]     command palette (every action is there)
  [b]?[/b]          this help
  [b]q[/b]          quit the monitor

Greyed keys do not apply now (start while it runs, stop while stopped).
[b]Quitting never stops the campaign[/b]: it keeps running under its supervisor
after this terminal or the SSH session closes. Stop it with [b]x[/b] or
`campaign-tui stop`.

States: HEALTHY running and beating · STALE no sign of life for longer than
stale_after (hung?) · CRASHED ended abnormally or the supervisor gave up ·
RESTARTING in backoff before the next attempt · TERMINATED stopped on request ·
COMPLETE finished · UNKNOWN no usable state yet.

[dim]esc, q or ? closes this help[/dim]"""


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Close"),
        Binding("q", "close", "Close", show=False),
        Binding("question_mark", "close", "Close", show=False),
    ]

    def compose(self) -> ComposeResult:
        with Vertical(id="help"):
            yield Static(Content.from_markup(HELP), id="help-text")

    def action_close(self) -> None:
        self.dismiss(None)


# ---------------------------------------------------------------------- the monitor


class MonitorScreen(Screen[None]):
    """The monitor of one campaign."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("s", "start", "Start"),
        Binding("x", "stop", "Stop"),
        Binding("r", "restart", "Restart"),
        Binding("tab", "next_log", "Logs", key_display="tab"),
        Binding("l", "next_log", "Next log", show=False),
        Binding("shift+tab", "previous_log", "Previous log", show=False),
        Binding("h", "previous_log", "Previous log", show=False),
        Binding("escape", "back", "Campaigns", show=False),
    ]

    def __init__(self, sd: StateDir, *, poll: bool = False, from_picker: bool = False) -> None:
        super().__init__()
        self.sd = sd
        self.poll = poll
        self.from_picker = from_picker
        self.snapshot = Snapshot(directory=str(sd.path), layout=sd.layout)
        self.procs = ProcessFacts()
        self.pace = Pace()
        self.usage: TreeUsage | None = None
        self.health: Health | None = None
        self.busy: str | None = None
        self.last_control: tuple[str, int, str] | None = None
        self.critical_raised: list[str] = []  # what rang the bell, for the curious and the tests
        self._read_once = False
        self._alert_key: tuple[State, bool] | None = None
        self._allowed: tuple[bool, bool] | None = None
        self.watcher = StateWatcher(sd, self.post_message, poll=poll)
        # Kept at hand: they are shown again every second.
        self._health_pane = HealthPane(id="health")
        self._progress_pane = ProgressPane(id="progress")
        self._process_pane = ProcessPane(id="process", markup=False)
        self._restart_table: RestartTable | None = None

    def compose(self) -> ComposeResult:
        yield Static(id="title", markup=False)
        yield self._health_pane
        yield self._progress_pane
        yield self._process_pane
        kinds = (*log_kinds(self.sd), *(() if self.sd.legacy else ("restarts",)))
        yield LogTabs(kinds, id="logs")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self._restart_table = None if self.sd.legacy else self.query_one(RestartTable)
        mode = " · polling" if self.poll else ""
        legacy = " (legacy layout, read-only)" if self.sd.legacy else ""
        self.query_one("#title", Static).update(
            Content.assemble(
                ("campaign-tui", "bold"),
                (" · ", "dim"),
                (sanitize(self.sd.name or str(self.sd.path)), "bold"),
                (" · ", "dim"),
                (sanitize(home_relative(self.sd.path)) + legacy + mode, "dim"),
            )
        )
        self.refresh_view()
        self.start_watcher()

    def start_watcher(self) -> None:
        self.run_worker(
            self.watcher.run(), name="watcher", group="watch", exclusive=True, exit_on_error=False
        )

    def on_unmount(self) -> None:
        self.watcher.close()

    # ------------------------------------------------------------------ messages from the watcher

    def on_state_read(self, message: StateRead) -> None:
        self.snapshot, self.procs, self.pace = message.snapshot, message.procs, message.pace
        self._read_once = True
        self.refresh_view()

    def on_processes_sampled(self, message: ProcessesSampled) -> None:
        self.procs, self.usage = message.procs, message.usage
        self.refresh_view()

    def on_log_lines(self, message: LogLines) -> None:
        lines, replace = self.watcher.take_lines(message.kind)
        try:
            self.query_one(LogTabs).write(message.kind, lines, replace)
        except NoMatches:  # the screen is being taken down (back to the picker)
            return

    def refresh_view(self) -> None:
        """Judge the latest snapshot now and hand the pieces to the panes."""
        now = clock.now()
        health = judge(self.snapshot, now, self.procs)
        if not self._read_once:
            health = _waiting(health)
        self.health = health
        if not self._health_pane.is_mounted:
            return  # not composed yet: the next message or tick shows it
        self._health_pane.show(health)
        self._progress_pane.show(health, self.snapshot, self.pace, now.wall_ms)
        self._process_pane.show(health, self.snapshot, self.usage, now.wall_ms, self._alive())
        if self._restart_table is not None:
            self._restart_table.show(self.snapshot.restarts, now.wall_ms)
        self.sub_title = f"{health.state.value}"
        self._raise_critical(health)
        allowed = (self._can("start"), self._can("stop"))
        if allowed != self._allowed:
            self._allowed = allowed
            self.refresh_bindings()

    def _alive(self) -> dict[str, bool | None]:
        sup = self.supervisor
        if sup is None:
            return {}
        return {
            "supervisor": self.procs.alive(sup.pid, sup.pid_start),
            "child": self.procs.alive(sup.child_pid, sup.child_start),
        }

    @property
    def supervisor(self) -> SupervisorDoc | None:
        sup = self.snapshot.supervisor
        return sup if isinstance(sup, SupervisorDoc) else None

    def _raise_critical(self, health: Health) -> None:
        sup = self.supervisor
        gave_up = sup is not None and sup.state == "gave_up"
        key = (health.state, gave_up)
        if not self._read_once:
            return  # the state before the first read is no state to change from
        previous, self._alert_key = self._alert_key, key
        if previous is None or previous == key:
            return  # a campaign found stale or crashed is not news: the badge says it
        if (health.state in CRITICAL_STATES and previous[0] != health.state) or (
            gave_up and not previous[1]
        ):
            what = "gave up" if gave_up else health.state.value
            self.critical_raised.append(what)
            self.app.bell()
            self.notify(
                f"{SYMBOLS[health.state]} {what}: {health.reason}",
                title=f"campaign {sanitize(self.sd.name)}",
                severity="error",
                timeout=15,
                markup=False,
            )

    # ------------------------------------------------------------------ actions

    def _supervisor_running(self) -> bool:
        sup = self.supervisor
        return (
            sup is not None and sup.state in LIVE_STATES and self._alive().get("supervisor") is True
        )

    def _can(self, verb: str) -> bool:
        if self.sd.legacy or self.busy is not None:
            return False
        running = self._supervisor_running()
        if verb == "start":
            return not running
        sup = self.supervisor
        return running and sup is not None and sup.state != "stopping"

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("start", "stop", "restart"):
            return True if self._can(action) else None  # None: shown, greyed
        if action == "back":
            return self.from_picker
        return True

    def action_start(self) -> None:
        if self._refuse("start"):
            return
        if self.health is not None and self.health.state is State.COMPLETE:
            self.app.push_screen(
                ConfirmScreen(
                    f"Campaign {self.sd.name} is complete. Start it again?",
                    "The supervisor runs the recorded command again.",
                ),
                lambda yes: self._control("start") if yes else None,
            )
            return
        self._control("start")

    def action_stop(self) -> None:
        if self._refuse("stop"):
            return
        self.app.push_screen(
            ConfirmScreen(
                f"Stop campaign {self.sd.name}?",
                "SIGTERM to its whole process tree, SIGKILL after the stop timeout. "
                "It will not be restarted; s starts it again and it resumes.",
            ),
            lambda yes: self._control("stop") if yes else None,
        )

    def action_restart(self) -> None:
        if self._refuse("restart"):
            return
        self.app.push_screen(
            ConfirmScreen(
                f"Restart campaign {self.sd.name} now?",
                "It is stopped and started again at once, resuming from its checkpoint.",
            ),
            lambda yes: self._control("restart") if yes else None,
        )

    def _refuse(self, verb: str) -> bool:
        if self._can(verb):
            return False
        if self.sd.legacy:
            why = "the legacy layout is read-only"
        elif self.busy:
            why = f"{self.busy} is still in progress"
        elif verb == "start":
            why = "it is already running"
        else:
            why = "it is not running under a supervisor"
        self.notify(f"Cannot {verb}: {why}.", severity="warning", markup=False)
        return True

    def _control(self, verb: str) -> None:
        self.busy = verb
        self.refresh_view()
        self.notify(f"{verb.capitalize()} requested…", timeout=3, markup=False)
        self.run_worker(
            lambda: run_control(verb, self.sd),
            name=verb,
            group="control",
            thread=True,
            exit_on_error=False,
        )

    @on(Worker.StateChanged)
    def _worker_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if worker.group == "watch" and event.state == WorkerState.ERROR:
            self.notify(
                f"the file watcher failed ({worker.error!r}); restarting it",
                severity="warning",
                markup=False,
            )
            self.set_timer(1.0, self.start_watcher)
            return
        if worker.group != "control" or event.state not in (
            WorkerState.SUCCESS,
            WorkerState.ERROR,
            WorkerState.CANCELLED,
        ):
            return
        verb, self.busy = worker.name, None
        result = worker.result  # run_control's (exit code, what it said)
        if event.state == WorkerState.SUCCESS and isinstance(result, tuple):
            code, said = result
        else:
            code, said = 1, repr(worker.error)
        self.last_control = (verb, code, said)
        if code == 0:
            if verb == "start" and said.isdigit():
                said = f"supervisor pid {said}"
            self.notify(f"{verb.capitalize()}: {said or 'done'}", markup=False)
        else:
            self.notify(
                f"{verb.capitalize()} failed (exit {code}): {said or 'no message'}",
                severity="error",
                timeout=10,
                markup=False,
            )
        self.run_worker(self.watcher.reconcile(), group="reconcile")
        self.refresh_view()

    def action_next_log(self) -> None:
        self._switch_log(1)

    def action_previous_log(self) -> None:
        self._switch_log(-1)

    def _switch_log(self, step: int) -> None:
        tabs = self.query_one(LogTabs)
        kind = tabs.cycle(step)
        target = tabs.query_one("#restarts" if kind == "restarts" else f"#log-{kind}")
        target.focus()

    def action_back(self) -> None:
        if self.from_picker:
            self.dismiss(None)


def home_relative(path: Path) -> str:
    """``~/...`` for a path under the home directory: shorter in a narrow title bar."""
    try:
        return "~/" + str(path.relative_to(Path.home()))
    except (ValueError, RuntimeError):
        return str(path)


def _waiting(health: Health) -> Health:
    """Before the first read, say so rather than UNKNOWN's advice to start a campaign."""
    from dataclasses import replace

    return replace(
        health, state=State.UNKNOWN, reason="reading the state directory…", action="wait"
    )


# ---------------------------------------------------------------------- picker and empty state


@dataclass(frozen=True)
class Row:
    path: Path
    state: State
    progress: str
    reason: str


def survey(root: Path) -> list[Row]:
    """Every campaign under ``root`` with its judgement (reads files: call it in a thread)."""
    rows = []
    now = clock.now()
    for path in statedir.list_campaigns(root):
        snap = read_snapshot(StateDir(path))
        health = judge(snap, now, probe_processes(snap))
        rows.append(Row(path, health.state, health.progress.text(), health.reason))
    return rows


class PickerScreen(Screen[None]):
    """All campaigns under the state root with their states; enter opens one."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("enter", "open", "Open", show=True)]

    def __init__(self, root: Path, *, poll: bool = False) -> None:
        super().__init__()
        self.root = root
        self.poll = poll
        self.rows: list[Row] = []

    def compose(self) -> ComposeResult:
        yield Static(
            Content.assemble(
                ("campaign-tui", "bold"),
                (" · campaigns under ", "dim"),
                (sanitize(home_relative(self.root)), "dim"),
            ),
            id="title",
        )
        yield DataTable(id="campaigns", cursor_type="row", zebra_stripes=True)
        yield Static(Content(PICKER_NOTE), id="picker-note")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for column in ("campaign", "state", "progress", "reason"):
            table.add_column(column, key=column)
        self.reload()
        self.set_interval(2.0, self.reload)

    @work(exclusive=True, thread=True, group="survey")
    def reload(self) -> None:
        rows = survey(self.root)
        self.app.call_from_thread(self._show, rows)

    def _show(self, rows: list[Row]) -> None:
        table = self.query_one(DataTable)
        keep = table.cursor_row
        self.rows = rows
        table.clear()
        for row in rows:
            table.add_row(  # Text cells: a plain str cell would be parsed as markup
                Text(sanitize(row.path.name)),
                Text(f"{SYMBOLS[row.state]} {row.state.value}", style=_state_style(row.state)),
                Text(row.progress),
                Text(row.reason),
                key=str(row.path),
            )
        if rows:
            table.move_cursor(row=min(keep, len(rows) - 1))

    def action_open(self) -> None:
        table = self.query_one(DataTable)
        if 0 <= table.cursor_row < len(self.rows):
            self.app.push_screen(
                MonitorScreen(
                    StateDir(self.rows[table.cursor_row].path), poll=self.poll, from_picker=True
                )
            )

    @on(DataTable.RowSelected)
    def _selected(self, _event: DataTable.RowSelected) -> None:
        self.action_open()


def _state_style(state: State) -> str:
    return {
        State.HEALTHY: "bold green",
        State.COMPLETE: "bold green",
        State.STALE: "bold yellow",
        State.RESTARTING: "bold yellow",
        State.CRASHED: "bold red",
    }.get(state, "bold")


class EmptyScreen(Screen[None]):
    """No campaign yet: say how to make one, and open it when it appears."""

    def __init__(self, root: Path, *, poll: bool = False) -> None:
        super().__init__()
        self.root = root
        self.poll = poll
        self._switched = False

    def compose(self) -> ComposeResult:
        with Vertical(id="empty"):
            yield Static(
                Content.assemble(
                    ("No campaigns yet", "bold"),
                    f" under {sanitize(str(self.root))}.\n\n",
                    "Start one under the supervisor:\n",
                    ("  campaign-tui run --detach -- CMD [ARGS...]\n\n", "bold"),
                    "or see everything working on a simulated campaign:\n",
                    ("  campaign-tui demo\n\n", "bold"),
                    ("This screen opens the campaign as soon as one appears.", "dim"),
                ),
                id="empty-text",
            )
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.set_interval(2.0, self.look)

    @work(exclusive=True, thread=True, group="look")
    def look(self) -> None:
        found = statedir.list_campaigns(self.root)
        if found:
            self.app.call_from_thread(self._found, found)

    def _found(self, found: list[Path]) -> None:
        # A second look can finish after the first switched screens: switch once, from here.
        if self._switched or self.app.screen is not self:
            return
        self._switched = True
        if len(found) == 1:
            self.app.switch_screen(MonitorScreen(StateDir(found[0]), poll=self.poll))
        else:
            self.app.switch_screen(PickerScreen(self.root, poll=self.poll))
