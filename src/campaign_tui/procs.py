"""Process identity and liveness.

A pid alone proves nothing: pids are reused, and ``psutil.pid_exists`` says yes
for a zombie. A process is the one we recorded only if its create time matches
the one written next to its pid.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
from collections.abc import Iterable
from dataclasses import dataclass

import psutil

# psutil derives create time from boot time + start ticks; boot time as the
# kernel reports it can drift by up to a second, so we compare with slack.
START_TIME_SLACK = 1.0


@dataclass(frozen=True, slots=True)
class ProcFact:
    """What was seen of one pid at one moment."""

    pid: int
    exists: bool
    zombie: bool = False
    start_time: float | None = None
    uid: int | None = None


@dataclass(frozen=True, slots=True)
class ProcessFacts:
    """The facts for the pids a snapshot mentions; gathered before judging."""

    facts: tuple[ProcFact, ...] = ()

    def get(self, pid: int | None) -> ProcFact | None:
        for fact in self.facts:
            if fact.pid == pid:
                return fact
        return None

    def alive(
        self, pid: int | None, recorded_start: float | None, written_ms: int | None = None
    ) -> bool | None:
        """True/False when known; None when the pid was not probed at all.

        ``written_ms`` is when the record naming the pid was written: it lets a
        pid recorded without its start time be checked at least this far.
        """
        if pid is None:
            return None
        fact = self.get(pid)
        if fact is None:
            return None
        return is_same_live_process(fact, recorded_start, written_ms)


def is_same_live_process(
    fact: ProcFact, recorded_start: float | None, written_ms: int | None = None
) -> bool:
    if not fact.exists or fact.zombie:
        return False
    if fact.start_time is None:
        return True
    if recorded_start is None:
        # No start time recorded (a seed or Node writer): a process that started
        # after the record was written cannot be the one that wrote it.
        return written_ms is None or fact.start_time <= written_ms / 1000 + START_TIME_SLACK
    return abs(fact.start_time - recorded_start) <= START_TIME_SLACK


def probe(pid: int) -> ProcFact:
    """Look at one pid now."""
    try:
        proc = psutil.Process(pid)
        with proc.oneshot():
            status = proc.status()
            start = proc.create_time()
            try:
                uid = proc.uids().real
            except psutil.Error:
                uid = None
    except psutil.NoSuchProcess:
        return ProcFact(pid, exists=False)
    except psutil.ZombieProcess:
        return ProcFact(pid, exists=True, zombie=True)
    except (psutil.Error, OSError, ValueError):
        return ProcFact(pid, exists=False)
    return ProcFact(
        pid, exists=True, zombie=status == psutil.STATUS_ZOMBIE, start_time=start, uid=uid
    )


def probe_all(pids: Iterable[int | None]) -> ProcessFacts:
    seen: dict[int, ProcFact] = {}
    for pid in pids:
        if pid is not None and pid > 0 and pid not in seen:
            seen[pid] = probe(pid)
    return ProcessFacts(tuple(seen.values()))


class HeldProber:
    """Probes the same few pids again and again, for a monitor that looks every second.

    A pid seen alive is held by a pidfd, which follows that one process whatever
    becomes of its number; until the pidfd reports an exit, the fact seen then
    still holds, and telling that is a poll of a descriptor instead of reading
    /proc again. Without pidfds (old kernels) every probe reads /proc.
    """

    def __init__(self) -> None:
        self._held: dict[int, tuple[int, ProcFact]] = {}

    def probe_all(self, pids: Iterable[int | None]) -> ProcessFacts:
        seen: dict[int, ProcFact] = {}
        for pid in pids:
            if pid is not None and pid > 0 and pid not in seen:
                seen[pid] = self._probe(pid)
        for pid in [pid for pid in self._held if pid not in seen]:
            self._drop(pid)
        return ProcessFacts(tuple(seen.values()))

    def _probe(self, pid: int) -> ProcFact:
        held = self._held.get(pid)
        if held is not None:
            if not _has_exited(held[0]):
                return held[1]
            self._drop(pid)
        fact = probe(pid)
        if fact.exists and not fact.zombie and hasattr(os, "pidfd_open"):
            try:
                fd = os.pidfd_open(pid)
            except OSError:
                return fact
            # Opened after the look: if the pid changed hands in between, the start
            # time tells; look again through the held process to be sure.
            again = probe(pid)
            if again == fact:
                self._held[pid] = (fd, fact)
            else:
                os.close(fd)
            return again
        return fact

    def _drop(self, pid: int) -> None:
        fd, _fact = self._held.pop(pid)
        with contextlib.suppress(OSError):
            os.close(fd)

    def close(self) -> None:
        for pid in list(self._held):
            self._drop(pid)


def _has_exited(pidfd: int) -> bool:
    """A pidfd polls readable once its process has exited (zombie or reaped)."""
    poller = select.poll()
    poller.register(pidfd, select.POLLIN)
    try:
        return bool(poller.poll(0))
    except OSError:
        return True


def start_time(pid: int) -> float | None:
    """The create time of a live pid, the identity we record next to it."""
    try:
        return psutil.Process(pid).create_time()
    except (psutil.Error, OSError):
        return None


def alive(pid: int | None, recorded_start: float | None) -> bool:
    """Is ``pid`` still the very process that was recorded with ``recorded_start``?"""
    if pid is None or pid <= 0:
        return False
    return is_same_live_process(probe(pid), recorded_start)


def pidfd_of(pid: int | None, recorded_start: float | None) -> int | None:
    """A pidfd on ``pid`` if it is still the process recorded with ``recorded_start``.

    Opened first, verified after: a signal sent through it can only ever reach
    that process, however long the caller waits. None when the process is gone
    or not the recorded one, or pidfds are unavailable (check with :func:`alive`
    again right before signalling then). The caller closes it.
    """
    if pid is None or pid <= 0 or recorded_start is None or not hasattr(os, "pidfd_open"):
        return None
    try:
        fd = os.pidfd_open(pid)
    except OSError:
        return None
    if not alive(pid, recorded_start):
        os.close(fd)
        return None
    return fd


def send_signal(pid: int, recorded_start: float | None, pidfd: int | None, sig: int) -> bool:
    """Signal the recorded process: through ``pidfd`` when there is one, else only if
    ``pid`` still has ``recorded_start`` now. True if a signal was sent."""
    try:
        if pidfd is not None:
            signal.pidfd_send_signal(pidfd, sig)
            return True
        if recorded_start is not None and alive(pid, recorded_start):
            os.kill(pid, sig)
            return True
    except OSError:
        pass
    return False
