"""CPU and memory of a campaign's whole process tree (psutil).

A pid is trusted only with the create time recorded next to it; a reused pid
gives no figures. CPU percentages need two readings of the same process, so
the sampler keeps the ``psutil.Process`` objects between calls.

The tree is found from the root down through ``/proc/PID/task/TID/children``
(a few small reads), not with ``psutil.Process.children(recursive=True)``,
which reads every process on the machine; where that file does not exist the
whole-machine scan runs at most every ``SCAN_EVERY`` seconds and the tree
found last is sampled in between.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import psutil

from campaign_tui.procs import START_TIME_SLACK

SCAN_EVERY = 3.0  # seconds between whole-machine scans where /proc has no children files
_proc_children: bool | None = None


def proc_children_available() -> bool:
    """Whether this kernel lists a task's children in /proc (CONFIG_PROC_CHILDREN)."""
    global _proc_children
    if _proc_children is None:
        _proc_children = os.path.exists(f"/proc/self/task/{os.getpid()}/children")
    return _proc_children


def descendants(pid: int) -> list[int]:
    """The pids below ``pid``, from /proc (children of every thread, recursively)."""
    found: list[int] = []
    seen = {pid}
    todo = [pid]
    while todo:
        parent = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{parent}/task")
        except OSError:
            continue  # ended meanwhile
        for tid in tasks:
            try:
                with open(f"/proc/{parent}/task/{tid}/children", "rb") as handle:
                    data = handle.read()
            except OSError:
                continue
            for word in data.split():
                child = int(word)
                if child not in seen:
                    seen.add(child)
                    found.append(child)
                    todo.append(child)
    return found


@dataclass(frozen=True, slots=True)
class TreeUsage:
    pid: int
    processes: int
    cpu_percent: float
    rss_bytes: int
    started: float  # create time of the root, seconds since the epoch


class TreeSampler:
    """Samples one process tree at a time; call ``sample`` about once a second."""

    def __init__(self) -> None:
        self._known: dict[tuple[int, float], psutil.Process] = {}
        self._scanned: tuple[int, float, list[psutil.Process]] | None = None  # pid, when, tree

    def sample(self, pid: int | None, recorded_start: float | None) -> TreeUsage | None:
        if pid is None or pid <= 0:
            self._known.clear()
            return None
        try:
            root = psutil.Process(pid)
            started = root.create_time()
            if recorded_start is not None and abs(started - recorded_start) > START_TIME_SLACK:
                self._known.clear()
                return None  # the pid was reused by another process
            tree = [root, *self._children(root)]
        except (psutil.Error, OSError):
            self._known.clear()
            return None
        seen: dict[tuple[int, float], psutil.Process] = {}
        cpu = 0.0
        rss = 0
        for proc in tree:
            try:
                key = (proc.pid, proc.create_time())
                proc = self._known.get(key, proc)
                with proc.oneshot():
                    cpu += proc.cpu_percent(None)
                    rss += proc.memory_info().rss
                seen[key] = proc
            except (psutil.Error, OSError):
                continue
        self._known = seen
        return TreeUsage(pid, len(seen), cpu, rss, started)

    def _children(self, root: psutil.Process) -> list[psutil.Process]:
        if proc_children_available():
            children = []
            for pid in descendants(root.pid):
                try:
                    children.append(psutil.Process(pid))
                except (psutil.Error, OSError):
                    continue
            return children
        now = time.monotonic()
        last = self._scanned
        if last is None or last[0] != root.pid or now - last[1] >= SCAN_EVERY:
            last = self._scanned = (root.pid, now, root.children(recursive=True))
        return last[2]
