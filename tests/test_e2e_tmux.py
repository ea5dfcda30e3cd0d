"""End to end in a real terminal: the TUI under tmux, driven by keystrokes.

Opens the monitor of a stopped campaign, starts it with ``s``, stops it with
``x`` ``y``, starts it again, restarts it with ``r`` ``y``, quits with ``q`` and
checks that the campaign still runs; then shows that killing the terminal
leaves a started campaign running too. A private tmux server (``-L``) is used
and killed at the end.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from campaign_tui import procs, statedir
from campaign_tui.statedir import StateDir
from tui_scenes import MARKER_VAR, Scenes, read_json, wait_for

TMUX = shutil.which("tmux")
T = TypeVar("T")
pytestmark = pytest.mark.skipif(TMUX is None, reason="tmux is not installed")


class Terminal:
    """One private tmux server with one window running a command."""

    def __init__(self) -> None:
        self.socket = f"campaign-tui-e2e-{uuid.uuid4().hex[:12]}"

    def tmux(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [TMUX or "tmux", "-L", self.socket, *args],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )

    def open(self, command: list[str], env: dict[str, str]) -> None:
        line = " ".join(
            ["env", *(f"{k}={shlex.quote(v)}" for k, v in env.items()), "TERM=xterm-256color"]
            + [shlex.quote(c) for c in command]
        )
        done = self.tmux(
            "-f", "/dev/null", "new-session", "-d", "-s", "e2e", "-x", "100", "-y", "30", line
        )
        assert done.returncode == 0, done.stderr

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", "e2e").stdout

    def keys(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", "e2e", *keys)

    def wait(self, text: str, timeout: float = 30.0) -> str:
        return self.until(
            lambda: text in (s := self.screen()) and s, f"{text!r} on screen", timeout
        )

    def until(self, predicate: Callable[[], T], what: str, timeout: float = 30.0) -> T:
        """``wait_for``, saying what the terminal showed on a timeout."""
        try:
            return wait_for(predicate, timeout, what)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; the terminal shows:\n{self.screen()}") from None

    def alive(self) -> bool:
        return self.tmux("has-session", "-t", "e2e").returncode == 0

    def kill(self) -> None:
        self.tmux("kill-server")


@pytest.fixture
def terminal() -> Iterator[Terminal]:
    term = Terminal()
    try:
        yield term
    finally:
        term.kill()


@pytest.fixture
def scenes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Scenes]:
    made = Scenes(tmp_path)
    monkeypatch.setenv(MARKER_VAR, made.marker)
    try:
        yield made
    finally:
        made.end_all()


def stopped_campaign(scenes: Scenes) -> StateDir:
    sd = scenes.healthy()
    done = scenes.cli("stop", "--state-dir", str(sd.path))
    assert done.returncode == 0, done.stderr
    scenes.wait_supervisor(sd, "stopped")
    return sd


def monitor_command(sd: StateDir) -> list[str]:
    return [sys.executable, "-m", "campaign_tui", "--state-dir", str(sd.path)]


def supervisor(sd: StateDir) -> dict:
    return read_json(sd.file(statedir.SUPERVISOR))


def running(sd: StateDir) -> dict:
    doc = supervisor(sd)
    ok = (
        doc.get("state") == "running"
        and procs.alive(doc.get("pid"), doc.get("pid_start"))
        and procs.alive(doc.get("child_pid"), doc.get("child_start"))
    )
    return doc if ok else {}


def test_start_stop_restart_and_quit_from_the_keyboard(scenes: Scenes, terminal: Terminal) -> None:
    sd = stopped_campaign(scenes)
    terminal.open(
        monitor_command(sd), {MARKER_VAR: scenes.marker, "CAMPAIGN_TUI_HOME": str(scenes.root)}
    )
    terminal.wait("TERMINATED")

    # A notification shows for a few seconds only: wait for it first, then for what stays.
    terminal.keys("s")
    first = terminal.until(lambda: running(sd), "the campaign running after s")
    terminal.wait(f"Start: supervisor pid {first['pid']}")
    terminal.wait("HEALTHY")

    terminal.keys("x")
    terminal.wait("Stop campaign")
    terminal.keys("y")
    terminal.wait("Stop: campaign")  # the stop command returned
    terminal.wait("TERMINATED")
    terminal.until(lambda: not procs.alive(first["child_pid"], first["child_start"]), "child gone")
    assert supervisor(sd).get("state") == "stopped"

    terminal.keys("s")
    second = terminal.until(lambda: running(sd), "running again")
    terminal.wait(f"Start: supervisor pid {second['pid']}")  # the start command returned
    terminal.wait("HEALTHY")

    terminal.keys("r")
    terminal.wait("Restart campaign")
    terminal.keys("y")
    third = terminal.until(
        lambda: (d := running(sd)) and d["child_pid"] != second["child_pid"] and d,
        "a new attempt after r",
    )
    assert third["pid"] == second["pid"]
    terminal.wait("Restart: campaign")
    terminal.keys("Tab", "Tab", "Tab", "Tab")  # to the restart history
    terminal.wait("manual")
    terminal.keys("q")
    wait_for(lambda: not terminal.alive() or "$" in terminal.screen(), what="the TUI gone")
    assert running(sd)["child_pid"] == third["child_pid"]


def test_killing_the_terminal_leaves_a_started_campaign_running(
    scenes: Scenes, terminal: Terminal
) -> None:
    sd = stopped_campaign(scenes)
    terminal.open(
        monitor_command(sd), {MARKER_VAR: scenes.marker, "CAMPAIGN_TUI_HOME": str(scenes.root)}
    )
    terminal.wait("TERMINATED")
    terminal.keys("s")
    started = wait_for(lambda: running(sd), what="the campaign running after s")
    terminal.wait("HEALTHY")
    terminal.kill()  # the terminal (and its session) goes away
    wait_for(lambda: not terminal.alive(), what="the terminal gone")
    assert running(sd)["child_pid"] == started["child_pid"]
