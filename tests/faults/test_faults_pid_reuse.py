"""A recorded pid whose create time no longer matches is a stranger: never signal it,
its process group, or its descendants.

The "stranger" here is a real process tree this test starts (a parent and its
child, each logging every SIGTERM it gets); the state names the parent's pid with
another create time, as after the campaign died and its pid was handed on.
"""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path
from typing import Any

import psutil

from campaign_tui import control, proctree
from campaign_tui.statedir import StateDir
from conftest import wait_until
from supervisor_fixtures import PY, Sup, alive

STRANGER = """
import os, signal, subprocess, sys
log, role = sys.argv[1], sys.argv[2]
def note(signum, frame):
    with open(log, "a") as out:
        out.write(f"{role} {os.getpid()} got {signum}\\n")
signal.signal(signal.SIGTERM, note)
kid = None
if role == "parent":
    kid = subprocess.Popen([sys.executable, sys.argv[0], log, "child"])
with open(log, "a") as out:
    out.write(f"{role} {os.getpid()} ready\\n")
while True:
    signal.pause()
"""


def _stranger(sup: Sup, tmp_path: Path, *, own_group: bool) -> tuple[subprocess.Popen[Any], Path]:
    script = tmp_path / "stranger.py"
    script.write_text(STRANGER)
    log = tmp_path / "stranger.log"
    log.touch()
    parent = sup.tracker.start(
        [PY, str(script), str(log), "parent"], env=sup.env, start_new_session=own_group
    )
    wait_until(lambda: log.read_text().count("ready") == 2, 15, "the stranger and its child")
    return parent, log


def _stale_record(sup: Sup, pid: int) -> dict[str, Any]:
    """supervisor.json as a killed supervisor left it, naming ``pid`` with another create time."""
    start = psutil.Process(pid).create_time() - 3600
    doc = {
        "state": "running",
        "pid": None,
        "child_pid": pid,
        "child_start": start,
        "attempt": 1,
        "run_id": "",
        "settings": {"command": ["true"], "stop_timeout": 0.3},
    }
    sup.dir.mkdir(mode=0o700, exist_ok=True)
    (sup.dir / "supervisor.json").write_text(json.dumps(doc))
    return doc


def _children(pid: int) -> list[int]:
    return [p.pid for p in psutil.Process(pid).children()]


def test_tree_of_a_reused_pid_is_empty(sup: Sup, tmp_path: Path) -> None:
    parent, _log = _stranger(sup, tmp_path, own_group=False)
    start = psutil.Process(parent.pid).create_time()
    assert proctree.tree_of(parent.pid, start - 3600) == []
    assert proctree.tree_of(parent.pid, None) == []
    assert proctree.verified(parent.pid, start - 3600) is None
    mine = proctree.tree_of(parent.pid, start)
    assert {p.pid for p in mine} == {parent.pid, *_children(parent.pid)}


def test_stopping_an_unsupervised_campaign_spares_a_reused_pids_descendants(
    sup: Sup, tmp_path: Path, fault: Any
) -> None:
    injected = fault(
        "the recorded campaign pid now belongs to another process that has a child",
        "the unsupervised stop signals neither that process nor its child",
    )
    parent, log = _stranger(sup, tmp_path, own_group=False)
    (kid,) = _children(parent.pid)
    doc = _stale_record(sup, parent.pid)
    injected.inject()
    control._stop_unsupervised(StateDir(sup.dir), doc, parent.pid)
    assert "got" not in log.read_text(), log.read_text()
    assert alive(parent.pid) and alive(kid)
    assert parent.poll() is None
    injected.lost = 0


def test_signal_numbers_are_what_the_stranger_logs(sup: Sup, tmp_path: Path) -> None:
    """The probe itself: a SIGTERM to the stranger's child is seen in its log."""
    parent, log = _stranger(sup, tmp_path, own_group=False)
    (kid,) = _children(parent.pid)
    psutil.Process(kid).send_signal(signal.SIGTERM)
    wait_until(lambda: f"child {kid} got {int(signal.SIGTERM)}" in log.read_text(), 10, "a note")
