"""CPU and memory of a campaign's whole process tree (psutil).

A pid is trusted only with the create time recorded next to it; a reused pid
gives no figures. CPU percentages need two readings of the same process, so
the sampler keeps the ``psutil.Process`` objects between calls.
"""

from __future__ import annotations

from dataclasses import dataclass

import psutil

from campaign_tui.procs import START_TIME_SLACK


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
            tree = [root, *root.children(recursive=True)]
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
