"""sd_notify: READY and WATCHDOG to a datagram socket of the test's own, as systemd would see them."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from campaign_tui.sdnotify import Notifier, from_environ, socket_address, watchdog_interval
from conftest import ProcessTracker, wait_until
from supervisor_fixtures import PY, Sup, sup_fixture


@pytest.fixture
def sup(procs: ProcessTracker, tmp_path: Path) -> Iterator[Sup]:
    yield from sup_fixture(procs, tmp_path)


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "notify.sock"))
    sock.settimeout(0.05)
    try:
        yield sock
    finally:
        sock.close()


def _received(sock: socket.socket, into: list[dict[str, str]]) -> list[dict[str, str]]:
    while True:
        try:
            data = sock.recv(4096)
        except TimeoutError:
            return into
        into.append(dict(line.split("=", 1) for line in data.decode().splitlines()))


def test_addresses_and_watchdog_interval() -> None:
    assert socket_address("/run/user/1000/systemd/notify") == "/run/user/1000/systemd/notify"
    assert socket_address("@abstract/notify") == b"\0abstract/notify"
    assert socket_address("") is None and socket_address("relative") is None
    assert watchdog_interval({"WATCHDOG_USEC": "30000000"}, 42) == 15.0
    assert watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "42"}, 42) == 15.0
    assert watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "7"}, 42) is None
    assert watchdog_interval({"WATCHDOG_USEC": "junk"}, 42) is None
    assert watchdog_interval({}, 42) is None
    assert from_environ({}) is None


def test_a_notifier_sends_one_datagram_and_never_raises(
    notify_socket: socket.socket, tmp_path: Path
) -> None:
    notifier = from_environ({"NOTIFY_SOCKET": str(tmp_path / "notify.sock")})
    assert notifier is not None
    assert notifier.send(READY=1, STATUS="two\nlines")
    assert notify_socket.recv(4096) == b"READY=1\nSTATUS=two lines"
    gone = Notifier(str(tmp_path / "nobody-listens"))
    assert gone.send(WATCHDOG=1) is False and gone.failures == 1
    notifier.close()


def test_abstract_socket(tmp_path: Path) -> None:
    name = f"campaign-tui-test-{tmp_path.name}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(b"\0" + name.encode())
    sock.settimeout(5)
    try:
        notifier = from_environ({"NOTIFY_SOCKET": "@" + name})
        assert notifier is not None and notifier.send(READY=1)
        assert sock.recv(4096) == b"READY=1"
    finally:
        sock.close()


def test_the_supervisor_says_ready_pings_the_watchdog_and_hides_the_socket_from_the_campaign(
    sup: Sup, notify_socket: socket.socket, tmp_path: Path
) -> None:
    sup.env["NOTIFY_SOCKET"] = str(tmp_path / "notify.sock")
    sup.env["WATCHDOG_USEC"] = "200000"  # WatchdogSec=0.2: a ping every 0.1 s
    gate = tmp_path / "gate"
    script = sup.script(
        "c.py",
        f"""
        import os, time
        print("env", os.environ.get("NOTIFY_SOCKET"), os.environ.get("WATCHDOG_USEC"), flush=True)
        while not os.path.exists({str(gate)!r}):
            time.sleep(0.02)
        """,
    )
    proc = sup.popen("run", "--state-dir", str(sup.dir), "--", PY, str(script))
    got: list[dict[str, str]] = []
    wait_until(
        lambda: sum("WATCHDOG" in m for m in _received(notify_socket, got)) >= 3,
        15,
        "READY and three watchdog pings",
    )
    ready = [m for m in got if m.get("READY") == "1"]
    assert len(ready) == 1 and ready[0]["MAINPID"] == str(proc.pid)
    assert got.index(ready[0]) < next(i for i, m in enumerate(got) if "WATCHDOG" in m)
    gate.touch()
    proc.communicate(timeout=30)
    assert proc.returncode == 0
    _received(notify_socket, got)
    assert got[-1].get("STOPPING") == "1"
    assert "env None None" in sup.text("output.log")


def test_a_detached_supervisor_does_not_notify(
    sup: Sup, notify_socket: socket.socket, tmp_path: Path
) -> None:
    sup.env["NOTIFY_SOCKET"] = str(tmp_path / "notify.sock")
    sup.detach(cmd=[PY, "-c", "print('x')"])
    sup.wait_state("complete")
    assert _received(notify_socket, []) == []
