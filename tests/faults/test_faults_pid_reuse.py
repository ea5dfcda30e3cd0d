"""A recorded pid whose create time no longer matches is a stranger: never signal it,
its process group, or its descendants.

The "stranger" here is a real process tree this test starts (a parent and its
child, each logging every SIGTERM it gets); the state names the parent's pid with
another create time, as after the campaign died and its pid was handed on.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest

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
signal.signal(signal.SIGWINCH, note)  # the test's "anything sent before this is logged"
kid = None
if role == "parent":  # a "solo" stranger has no child
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


def _settled(pid: int, log: Path) -> str:
    """The stranger's log once every signal sent to ``pid`` so far has been noted: signals
    pending together are taken lowest number first, so one sent before our SIGWINCH is
    written before the SIGWINCH is."""
    before = log.read_text().count(f"got {int(signal.SIGWINCH)}")
    os.kill(pid, signal.SIGWINCH)
    return wait_until(
        lambda: (text := log.read_text()).count(f"got {int(signal.SIGWINCH)}") > before and text,
        10,
        "the stranger to note our SIGWINCH",
    )


TERM = f"got {int(signal.SIGTERM)}"


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
    assert TERM not in _settled(parent.pid, log) + _settled(kid, log), log.read_text()
    assert alive(parent.pid) and alive(kid)
    assert parent.poll() is None
    injected.lost = 0


def test_signal_numbers_are_what_the_stranger_logs(sup: Sup, tmp_path: Path) -> None:
    """The probe itself: a SIGTERM to the stranger's child is seen in its log."""
    parent, log = _stranger(sup, tmp_path, own_group=False)
    (kid,) = _children(parent.pid)
    psutil.Process(kid).send_signal(signal.SIGTERM)
    wait_until(lambda: f"child {kid} got {int(signal.SIGTERM)}" in log.read_text(), 10, "a note")


# ------------------------------------------------------------------ real pid reuse

NS_LAST_PID = Path("/proc/sys/kernel/ns_last_pid")


def _reuse(pid: int, spawn: Callable[[], subprocess.Popen[Any]]) -> subprocess.Popen[Any]:
    """Start a process that gets ``pid`` (free by now): the kernel hands out
    ns_last_pid + 1 next, so set it just below and spawn; another fork may win
    the race, so try again (each miss is ended by pid) until a deadline."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            NS_LAST_PID.write_text(str(pid - 1))
        except OSError as exc:
            pytest.skip(f"cannot steer pid allocation ({exc.strerror})")
        proc = spawn()
        if proc.pid == pid:
            return proc
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    raise AssertionError(f"could not get pid {pid} again within 20s")


def _can_steer_pids() -> bool:
    return os.geteuid() == 0 and os.access(NS_LAST_PID, os.W_OK)


needs_pid_steering = pytest.mark.skipif(
    not _can_steer_pids(), reason="reusing a pid on purpose needs a writable ns_last_pid"
)


@needs_pid_steering
def test_stop_does_not_sigterm_a_pid_reused_while_it_waited_for_an_answer(
    sup: Sup, tmp_path: Path, fault: Any
) -> None:
    injected = fault(
        "the supervisor dies while `stop` waits for its answer and its pid goes to another process",
        "stop's fallback SIGTERM does not reach the process that now has the pid",
    )
    script = tmp_path / "stranger.py"
    script.write_text(STRANGER)
    log = tmp_path / "stranger.log"
    log.touch()
    fake = sup.tracker.start([PY, "-c", "import signal; signal.pause()"], env=sup.env)
    pid, pid_start = fake.pid, psutil.Process(fake.pid).create_time()
    sup.dir.mkdir(mode=0o700)
    doc = {"state": "running", "pid": pid, "pid_start": pid_start, "settings": {}}
    (sup.dir / "supervisor.json").write_text(json.dumps({**doc, "settings": {"stop_timeout": 1}}))
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(sup.dir / "control.sock"))
    server.listen(1)
    strangers: list[subprocess.Popen[Any]] = []

    def answer_late() -> None:
        conn, _ = server.accept()
        with conn:
            conn.recv(100)
            # create times closer than procs.START_TIME_SLACK count as one process
            wait_until(lambda: time.time() - pid_start > 2, 10, "the supervisor to age")
            fake.kill()  # the supervisor dies meanwhile, is reaped, and its pid is reused
            fake.wait(10)
            strangers.append(
                _reuse(
                    pid,
                    lambda: sup.tracker.start([PY, str(script), str(log), "solo"], env=sup.env),
                )
            )
            injected.inject()
            wait_until(lambda: "ready" in log.read_text(), 15, "the stranger")
            conn.sendall(b"err busy\n")

    worker = threading.Thread(target=answer_late, daemon=True)
    worker.start()
    try:
        code = control.stop(StateDir(sup.dir), echo=lambda _: None, echo_err=lambda _: None)
    finally:
        worker.join(30)
        server.close()
    assert not worker.is_alive()
    (stranger,) = strangers
    assert stranger.poll() is None
    said = _settled(stranger.pid, log)
    assert TERM not in said, "stop signalled the process that reused the pid"
    assert code == 0
    injected.lost = 0


@needs_pid_steering
def test_stop_never_signals_a_group_whose_leader_pid_was_reused(
    sup: Sup, tmp_path: Path, fault: Any
) -> None:
    injected = fault(
        "the unsupervised campaign's group leader exits during the stop and its pid becomes "
        "another session's group id",
        "the stop kills the rest of the old tree but never signals the new group",
    )
    parent, log = _stranger(sup, tmp_path, own_group=True)  # leads its group, as campaigns do
    (kid,) = _children(parent.pid)
    pid, start = parent.pid, psutil.Process(parent.pid).create_time()
    doc = {
        "state": "running",
        "pid": None,
        "child_pid": pid,
        "child_start": start,
        "attempt": 1,
        "run_id": "",
        "settings": {"command": ["true"], "stop_timeout": 4},
    }
    sup.dir.mkdir(mode=0o700)
    (sup.dir / "supervisor.json").write_text(json.dumps(doc))
    strangers: list[subprocess.Popen[Any]] = []

    def leader_leaves() -> None:
        # the stop's SIGTERM reached the leader; it then exits (the child ignores
        # SIGTERM, so the stop keeps waiting) and its pid goes to a new session
        wait_until(lambda: f"parent {pid} {TERM}" in log.read_text(), 15, "the SIGTERM")
        wait_until(lambda: time.time() - start > 2, 10, "the leader to age past the slack")
        parent.kill()
        parent.wait(10)
        strangers.append(
            _reuse(
                pid,
                lambda: sup.tracker.start(
                    [PY, str(tmp_path / "stranger.py"), str(log), "solo"],
                    env=sup.env,
                    start_new_session=True,
                ),
            )
        )
        wait_until(lambda: f"solo {pid} ready" in log.read_text(), 15, "the new group's leader")
        injected.inject()

    worker = threading.Thread(target=leader_leaves, daemon=True)
    worker.start()
    try:
        control._stop_unsupervised(StateDir(sup.dir), doc, pid)
    finally:
        worker.join(30)
    (stranger,) = strangers
    assert os.getpgid(stranger.pid) == pid  # the group id that the old tree had
    assert stranger.poll() is None, "the stop killed the new group"
    assert f"solo {pid} {TERM}" not in _settled(pid, log)
    wait_until(lambda: not alive(kid), 10, "the old tree's child to be gone")
    injected.lost = 0
