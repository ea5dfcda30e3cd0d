"""The parts that let the monitor idle cheaply (commit "tui: idle cheaply").

- :class:`~campaign_tui.procs.HeldProber` holds a live pid by a pidfd and reads
  /proc again only once that process has exited;
- :func:`~campaign_tui.tui.widgets.uptime_text` counts uptimes to the minute;
- :func:`~campaign_tui.clock.human_duration` truncates whole seconds;
- ``StateWatcher._signature`` is what the periodic reconcile compares before it
  reads any file.

Real processes, real files; waits poll a condition with a deadline.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from campaign_tui import procs, statedir
from campaign_tui.clock import human_duration
from campaign_tui.procs import HeldProber, ProcessFacts, ProcFact
from campaign_tui.statedir import StateDir
from campaign_tui.tui.watcher import StateWatcher
from campaign_tui.tui.widgets import uptime_text
from campaign_tui.writer import StateWriter, heartbeat_doc
from conftest import wait_until

SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)"]


def _pidfds_work() -> bool:
    if not hasattr(os, "pidfd_open"):
        return False
    try:
        fd = os.pidfd_open(os.getpid())
    except OSError:  # ENOSYS on kernels older than 5.3
        return False
    os.close(fd)
    return True


PIDFDS = _pidfds_work()


def pidfds_on(pid: int) -> int:
    """How many pidfds this process holds open on ``pid`` (a live one) now.

    Only those on ``pid``: whatever else the test process holds does not count."""
    count = 0
    for name in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{name}") != "anon_inode:[pidfd]":
                continue
            with open(f"/proc/self/fdinfo/{name}") as info:
                fields = dict(line.split(":", 1) for line in info if ":" in line)
        except OSError:  # closed meanwhile (the listing's own descriptor)
            continue
        if fields.get("Pid", "").strip() == str(pid):
            count += 1
    return count


@pytest.fixture
def child() -> Iterator[subprocess.Popen[bytes]]:
    """A sleeping child, killed and reaped by pid whatever the test did to it."""
    proc = subprocess.Popen(SLEEPER)
    try:
        yield proc
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


@pytest.fixture
def prober() -> Iterator[HeldProber]:
    held = HeldProber()
    try:
        yield held
    finally:
        held.close()


@pytest.fixture
def counted_probes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Every pid ``procs.probe`` (a read of /proc) is asked about, in order."""
    asked: list[int] = []
    real = procs.probe

    def counting(pid: int) -> ProcFact:
        asked.append(pid)
        return real(pid)

    monkeypatch.setattr(procs, "probe", counting)
    return asked


def fact_of(facts: ProcessFacts, pid: int) -> ProcFact:
    fact = facts.get(pid)
    assert fact is not None, facts
    return fact


def probe_until(
    prober: HeldProber, pid: int, test: Callable[[ProcessFacts], bool], what: str
) -> ProcessFacts:
    """Probe ``pid`` through ``prober`` until ``test`` holds (5 s at most)."""
    seen: list[ProcessFacts] = []

    def look() -> ProcessFacts | None:
        facts = prober.probe_all([pid])
        seen.append(facts)
        return facts if test(facts) else None

    try:
        return wait_until(look, timeout=5.0, what=what)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; last seen: {seen[-1] if seen else None}") from None


# ---------------------------------------------------------------------- HeldProber


def test_held_prober_follows_a_child_from_alive_to_zombie_to_gone(
    child: subprocess.Popen[bytes], prober: HeldProber, counted_probes: list[int]
) -> None:
    pid = child.pid
    created = psutil.Process(pid).create_time()

    first = fact_of(prober.probe_all([pid]), pid)
    assert first.exists and not first.zombie
    assert first.start_time is not None
    assert abs(first.start_time - created) <= 1.0
    assert ProcessFacts((first,)).alive(pid, created) is True

    read_before = len(counted_probes)
    again = prober.probe_all([pid])
    assert fact_of(again, pid) == first
    assert again.alive(pid, created) is True
    if PIDFDS:
        # Held by its pidfd: a live process is told by a poll, not a read of /proc.
        assert len(counted_probes) == read_before, counted_probes

    # Killed and not reaped: a zombie, which counts as not alive.
    os.kill(pid, signal.SIGKILL)
    dead = probe_until(
        prober, pid, lambda facts: facts.alive(pid, created) is False, "the killed child not alive"
    )
    gone = fact_of(dead, pid)
    assert gone.exists and gone.zombie, gone  # not reaped yet: what is seen is the zombie

    child.wait(timeout=10)
    reaped = fact_of(prober.probe_all([pid]), pid)
    assert reaped.exists is False
    assert ProcessFacts((reaped,)).alive(pid, created) is False


def test_held_prober_sees_a_zombie_as_not_alive_on_the_first_look(
    child: subprocess.Popen[bytes], prober: HeldProber
) -> None:
    pid = child.pid
    created = psutil.Process(pid).create_time()
    os.kill(pid, signal.SIGKILL)
    # Not reaped: wait until the kernel has made it a zombie (psutil sees it so).
    wait_until(lambda: procs.probe(pid).zombie, timeout=5.0, what="the child a zombie")

    facts = prober.probe_all([pid])
    assert fact_of(facts, pid).zombie is True
    assert facts.alive(pid, created) is False
    assert pidfds_on(pid) == 0  # a zombie is not held


def test_held_prober_releases_pids_no_longer_asked_for(
    child: subprocess.Popen[bytes], prober: HeldProber
) -> None:
    pid = child.pid
    created = psutil.Process(pid).create_time()
    assert pidfds_on(pid) == 0

    assert prober.probe_all([pid]).alive(pid, created) is True
    if PIDFDS:
        assert pidfds_on(pid) == 1  # held

    assert prober.probe_all([]) == ProcessFacts()
    assert pidfds_on(pid) == 0  # released: its pidfd is closed
    prober.close()  # nothing left to close: must not raise

    os.kill(pid, signal.SIGKILL)
    child.wait(timeout=10)
    # Asked for again after it ended: looked at afresh, not answered from a stale hold.
    facts = prober.probe_all([pid])
    assert fact_of(facts, pid).exists is False
    assert facts.alive(pid, created) is False
    prober.close()


def test_held_prober_close_releases_what_it_holds(
    child: subprocess.Popen[bytes], prober: HeldProber
) -> None:
    pid = child.pid
    assert fact_of(prober.probe_all([pid, pid, None, 0, -1]), pid).exists
    if PIDFDS:
        assert pidfds_on(pid) == 1  # one hold for the pid, however often named
    prober.close()
    assert pidfds_on(pid) == 0
    prober.close()  # twice is fine
    # Closed is not broken: it probes (and holds) again when asked.
    assert prober.probe_all([pid]).alive(pid, psutil.Process(pid).create_time()) is True


def test_held_prober_answers_like_probe_all_for_a_pid_that_does_not_exist(
    prober: HeldProber,
) -> None:
    proc = subprocess.Popen(SLEEPER)
    try:
        pid = proc.pid
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    held = prober.probe_all([pid, None])
    assert held == procs.probe_all([pid, None])
    assert fact_of(held, pid).exists is False
    assert [f.pid for f in held.facts] == [pid]


# ---------------------------------------------------------------------- uptime_text


@pytest.mark.parametrize("seconds", [-3600.0, -5.0, 0.0, 0.4, 1.0, 59.0, 59.99])
def test_uptime_under_a_minute_reads_less_than_a_minute(seconds: float) -> None:
    assert uptime_text(seconds) == "<1m"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(60.0, "1m"), (119.9, "1m"), (120.0, "2m"), (754.0, "12m"), (3599.0, "59m"), (3599.9, "59m")],
)
def test_uptime_under_an_hour_counts_whole_minutes(seconds: float, text: str) -> None:
    assert uptime_text(seconds) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (3600.0, "1h00m"),
        (3 * 3600 + 5 * 60 + 59.0, "3h05m"),
        (86399.0, "23h59m"),
        (86400.0, "1d00h"),
        (2 * 86400 + 4 * 3600 + 3599.0, "2d04h"),
        (40 * 86400.0, "40d00h"),
    ],
)
def test_uptime_from_an_hour_reads_as_human_duration(seconds: float, text: str) -> None:
    assert uptime_text(seconds) == text
    assert uptime_text(seconds) == human_duration(seconds)


def test_uptime_never_moves_within_a_minute() -> None:
    # What the monitor relies on: no repaint a second for an uptime.
    for base in (0, 60, 600, 3540):
        shown = {uptime_text(base + tenth / 10) for tenth in range(600)}
        assert len(shown) == 1, (base, shown)


# ---------------------------------------------------------------------- human_duration


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.0, "0s"),
        (0.04, "0s"),
        (0.5, "0.5s"),
        (0.25, "0.2s"),  # tenths below a second (as format() rounds them)
        (1.0, "1s"),
        (1.99, "1s"),
        (6.9, "6s"),
        (59.99, "59s"),
        (60.0, "1m00s"),
        (61.9, "1m01s"),
        (3599.99, "59m59s"),
        (3600.0, "1h00m"),
        (-6.9, "-6s"),
        (-0.5, "-0.5s"),
    ],
)
def test_human_duration_truncates_whole_seconds(seconds: float, text: str) -> None:
    assert human_duration(seconds) == text


def test_human_duration_of_nothing() -> None:
    assert human_duration(None) == "?"


def test_an_age_ticks_once_per_whole_second() -> None:
    # Truncated, the text changes exactly at each whole second, never at half past.
    # (From 2 s: below 1 s the tenths are shown instead.)
    for whole in range(2, 59):
        assert human_duration(whole - 0.01) == f"{whole - 1}s"
        assert human_duration(float(whole)) == f"{whole}s"
        assert human_duration(whole + 0.6) == f"{whole}s"


# ---------------------------------------------------------------------- StateWatcher._signature


def write_heartbeat(sd: StateDir, item: str) -> None:
    me = psutil.Process()
    doc = heartbeat_doc(item=item, tested=1, total=10, pid=me.pid, pid_start=me.create_time())
    assert StateWriter(sd).json(statedir.HEARTBEAT, doc)


@pytest.fixture
def campaign_dir(state_dir: Path) -> StateDir:
    """conftest's empty state directory with a heartbeat and one error line in it."""
    sd = statedir.ensure(StateDir(state_dir))
    write_heartbeat(sd, "item-1")
    assert StateWriter(sd).log(statedir.ERRORS_LOG, "ERROR", "the first error")
    return sd


@pytest.fixture
def watcher(campaign_dir: StateDir) -> Iterator[StateWatcher]:
    posted: list[Any] = []
    made = StateWatcher(campaign_dir, posted.append)
    try:
        yield made
    finally:
        made.close()
    assert posted == []  # a signature is a look from outside: nothing is read, nothing posted


def test_signature_is_stable_while_nothing_changes(
    campaign_dir: StateDir, watcher: StateWatcher
) -> None:
    first = watcher._signature()
    assert first == watcher._signature()
    # A file the watcher does not care about changes nothing either.
    (campaign_dir.path / "notes.txt").write_text("unrelated\n")
    assert watcher._signature() == first


def test_signature_changes_when_the_heartbeat_is_written_again(
    campaign_dir: StateDir, watcher: StateWatcher
) -> None:
    hb = campaign_dir.file(statedir.HEARTBEAT)
    before_stat = os.stat(hb)
    first = watcher._signature()

    write_heartbeat(campaign_dir, "item-two-with-a-longer-name")
    after_stat = os.stat(hb)
    assert after_stat.st_size != before_stat.st_size  # the change is visible from outside

    second = watcher._signature()
    assert second != first
    assert watcher._signature() == second  # and stable again


def test_signature_changes_when_a_line_is_appended_to_errors_log(
    campaign_dir: StateDir, watcher: StateWatcher
) -> None:
    log = campaign_dir.log("errors")
    inode = os.stat(log).st_ino
    first = watcher._signature()

    assert StateWriter(campaign_dir).log(statedir.ERRORS_LOG, "ERROR", "another error")
    assert os.stat(log).st_ino == inode  # appended in place: only size and mtime tell

    second = watcher._signature()
    assert second != first
    assert watcher._signature() == second


def test_signature_changes_when_a_watched_file_appears_or_goes(
    campaign_dir: StateDir, watcher: StateWatcher
) -> None:
    first = watcher._signature()
    assert StateWriter(campaign_dir).status("RUNNING", "running")
    with_status = watcher._signature()
    assert with_status != first

    campaign_dir.file(statedir.STATUS).unlink()
    assert watcher._signature() == first
