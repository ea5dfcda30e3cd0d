"""Real state directories in the states the TUI shows, for its tests and the screenshots.

Each scene runs a real campaign (``scene_campaign.py``) under the real
supervisor (``campaign-tui run --detach``). Every process carries a marker in
its environment and :meth:`Scenes.end_all` kills each one still carrying it, by pid.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import psutil

from campaign_tui import statedir
from campaign_tui.statedir import StateDir
from conftest import MARKER_VAR, wait_until

T = TypeVar("T")
SCENE_CAMPAIGN = Path(__file__).with_name("scene_campaign.py")
STALE_OPTS = ("--stale-after", "2")


def wait_for(predicate: Callable[[], T], timeout: float = 20.0, what: str = "condition") -> T:
    """conftest's wait_until with the longer deadline a supervised scene needs."""
    return wait_until(predicate, timeout, what)


def read_json(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


class Scenes:
    """Makes state directories under ``root``; ends every process it started."""

    def __init__(self, root: Path, marker: str | None = None) -> None:
        self.root = root
        self.marker = marker or f"campaign-tui-tui-test-{uuid.uuid4().hex}"
        self.env = {**os.environ, MARKER_VAR: self.marker, "CAMPAIGN_TUI_HOME": str(root)}
        for name in ("CAMPAIGN_STATE_DIR", "CAMPAIGN_NAME", "CAMPAIGN_ATTEMPT", "CAMPAIGN_RESUME"):
            self.env.pop(name, None)

    # ------------------------------------------------------------------ commands

    def cli(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "campaign_tui", *args],
            env=self.env,
            cwd=self.root,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def run(self, name: str, *campaign_args: str, opts: tuple[str, ...] = ()) -> StateDir:
        """``campaign-tui run --detach`` of the scene campaign in ``root/name``."""
        sd = StateDir(self.root / name)
        sd.path.mkdir(mode=0o700, parents=True, exist_ok=True)
        sd.path.chmod(0o700)
        done = self.cli(
            "run",
            "--detach",
            "--state-dir",
            str(sd.path),
            *opts,
            "--",
            sys.executable,
            str(SCENE_CAMPAIGN),
            *campaign_args,
        )
        assert done.returncode == 0, done.stderr
        return sd

    # ------------------------------------------------------------------ the states

    def healthy(self, name: str = "nightly") -> StateDir:
        sd = self.run(name, "--items", "40", "--fail", "5,11,17", "--block-at", "24", "--beat")
        self.wait_heartbeat(sd, lambda hb: hb.get("tested") == 23)
        return sd

    def stale(self, name: str = "hung") -> StateDir:
        """A campaign stuck in an item, silent for longer than its stale_after (2 s)."""
        sd = self.run(name, "--items", "40", "--fail", "7", "--block-at", "31", opts=STALE_OPTS)
        self.wait_heartbeat(sd, lambda hb: hb.get("current_item") == "item-031")
        wait_for(
            lambda: self.cli("status", "--state-dir", str(sd.path)).returncode == 1,
            what="status STALE",
        )
        return sd

    def crashed(self, name: str = "flaky") -> StateDir:
        """Crashes before item 9 on every attempt; the supervisor gives up after 2 restarts."""
        sd = self.run(
            name,
            "--items",
            "40",
            "--fail",
            "3",
            "--crash-at",
            "9",
            opts=("--max-restarts", "2", "--backoff-initial", "0.1"),
        )
        self.wait_supervisor(sd, "gave_up")
        return sd

    def complete(self, name: str = "release") -> StateDir:
        sd = self.run(name, "--items", "40", "--fail", "6,29")
        self.wait_supervisor(sd, "complete")
        return sd

    # ------------------------------------------------------------------ waiting

    def wait_heartbeat(
        self, sd: StateDir, test: Callable[[dict[str, Any]], bool]
    ) -> dict[str, Any]:
        return wait_for(
            lambda: (hb := read_json(sd.file(statedir.HEARTBEAT))) and test(hb) and hb,
            what=f"heartbeat in {sd.path.name}",
        )

    def wait_supervisor(self, sd: StateDir, *states: str, timeout: float = 20.0) -> dict[str, Any]:
        return wait_for(
            lambda: (doc := read_json(sd.file(statedir.SUPERVISOR))).get("state") in states and doc,
            timeout,
            f"supervisor state in {states}",
        )

    # ------------------------------------------------------------------ teardown

    def marked(self) -> list[psutil.Process]:
        found = []
        for proc in psutil.process_iter():
            try:
                if proc.pid != os.getpid() and proc.environ().get(MARKER_VAR) == self.marker:
                    found.append(proc)
            except (psutil.Error, OSError):
                continue
        return found

    def end_all(self) -> None:
        for proc in self.marked():
            with contextlib.suppress(psutil.Error, OSError):
                os.kill(proc.pid, signal.SIGKILL)
