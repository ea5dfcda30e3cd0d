"""Helpers for the supervisor tests: the CLI as a subprocess, campaign scripts, teardown.

Every process here carries the test's marker in its environment (the daemons
and campaigns inherit it), and teardown kills each one that still carries it,
by pid. Nothing waits by sleeping: conditions are polled with a deadline.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil

from conftest import MARKER_VAR, ProcessTracker, wait_until

CLI = shutil.which("campaign-tui") or ""
PY = sys.executable


def cli_argv(*args: str) -> list[str]:
    return [CLI, *args] if CLI else [PY, "-m", "campaign_tui", *args]


class Sup:
    """One test's campaign: its state dir, its CLI calls, its processes."""

    def __init__(self, tracker: ProcessTracker, tmp: Path):
        self.tracker = tracker
        self.tmp = tmp
        self.dir = tmp / "state"
        self.env = {
            **os.environ,
            MARKER_VAR: tracker.marker,
            "CAMPAIGN_TUI_HOME": str(tmp / "home"),
        }
        for name in ("CAMPAIGN_STATE_DIR", "CAMPAIGN_NAME", "CAMPAIGN_ATTEMPT", "CAMPAIGN_RESUME"):
            self.env.pop(name, None)

    # ------------------------------------------------------------ commands

    def popen(self, *args: str, **kwargs: Any) -> subprocess.Popen[str]:
        kwargs.setdefault("stdout", subprocess.PIPE)
        kwargs.setdefault("stderr", subprocess.PIPE)
        return self.tracker.start(cli_argv(*args), env=self.env, text=True, cwd=self.tmp, **kwargs)

    def cli(self, *args: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
        proc = self.popen(*args, stdin=subprocess.DEVNULL)
        out, err = proc.communicate(timeout=timeout)
        return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)

    def run(
        self, *opts: str, cmd: list[str], timeout: float = 30.0
    ) -> subprocess.CompletedProcess[str]:
        return self.cli("run", "--state-dir", str(self.dir), *opts, "--", *cmd, timeout=timeout)

    def detach(self, *opts: str, cmd: list[str]) -> int:
        done = self.run("--detach", *opts, cmd=cmd)
        assert done.returncode == 0, done.stderr
        return int(done.stdout.strip().splitlines()[-1])

    def ctl(self, verb: str, *args: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
        return self.cli(verb, "--state-dir", str(self.dir), *args, timeout=timeout)

    def status(self) -> tuple[int, str]:
        done = self.ctl("status")
        return done.returncode, done.stdout.splitlines()[0] if done.stdout else ""

    # ------------------------------------------------------------ state

    def json(self, name: str) -> dict[str, Any]:
        try:
            doc = json.loads((self.dir / name).read_text())
        except (OSError, ValueError):
            return {}
        return doc if isinstance(doc, dict) else {}

    def lines(self, name: str) -> list[dict[str, Any]]:
        try:
            text = (self.dir / name).read_text()
        except OSError:
            return []
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def text(self, name: str) -> str:
        try:
            return (self.dir / name).read_text()
        except OSError:
            return ""

    def sup(self) -> dict[str, Any]:
        return self.json("supervisor.json")

    def wait_state(self, *states: str, timeout: float = 15.0) -> dict[str, Any]:
        return wait_until(
            lambda: (doc := self.sup()).get("state") in states and doc,
            timeout,
            f"supervisor state in {states} (now {self.sup().get('state')})",
        )

    def wait_child(self, attempt: int = 1, timeout: float = 15.0) -> dict[str, Any]:
        return wait_until(
            lambda: (
                (d := self.sup()).get("state") == "running"
                and d.get("attempt") == attempt
                and d.get("child_pid")
                and d
            ),
            timeout,
            f"attempt {attempt} running",
        )

    def script(self, name: str, body: str) -> Path:
        path = self.tmp / name
        path.write_text(textwrap.dedent(body))
        path.chmod(0o755)
        return path

    # ------------------------------------------------------------ processes

    def marked(self) -> list[psutil.Process]:
        found = []
        for proc in psutil.process_iter():
            try:
                if (
                    proc.pid != os.getpid()
                    and proc.environ().get(MARKER_VAR) == self.tracker.marker
                    and proc.status() != psutil.STATUS_ZOMBIE
                ):
                    found.append(proc)
            except (psutil.Error, OSError):
                continue
        return found

    def end_all(self) -> None:
        for proc in self.marked():
            with contextlib.suppress(psutil.Error, OSError):
                os.kill(proc.pid, signal.SIGKILL)


def alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def gone(pid: int | None) -> bool:
    return not alive(pid)


def monotonic() -> float:
    return time.monotonic()


def sup_fixture(procs: ProcessTracker, tmp_path: Path) -> Iterator[Sup]:
    """The body of each test file's ``sup`` fixture: a Sup, and every marked process killed after."""
    s = Sup(procs, tmp_path)
    try:
        yield s
    finally:
        s.end_all()
