"""The TUI's figures, in a real terminal (a private tmux server): a write or an
appended line → the terminal, first screens, idle footprint, and a firehose.

"On screen" means: the marker's bytes reached the pane's terminal, timed by a
thread reading ``tmux pipe-pane -O`` (see :class:`harness.PaneStream`).
"""

from __future__ import annotations

import contextlib
import os
import random
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

from harness import BENCH_DIR, Pane, Stat, Terminal, campaign_tui, rss_mib, say, spawn

from campaign_tui import procs, statedir
from campaign_tui.statedir import StateDir
from campaign_tui.writer import StateWriter, heartbeat_doc

WORKERS = BENCH_DIR / "workers"
BARE_APP = WORKERS / "bare_app.py"
FIREHOSE = WORKERS / "firehose.py"
HELP_TEXT = b"the monitor of one campaign"  # on the help screen that `?` opens
BLOCK_LINES = 12_000  # lines in the repeated block of the big log (~1 MiB)


def tui_argv(sd: Path) -> list[str]:
    return [*campaign_tui(), "tui", "--state-dir", str(sd)]


def bare_argv(marker: str, tick: bool = False) -> list[str]:
    return [sys.executable, str(BARE_APP), marker, *(["--tick"] if tick else [])]


# ---------------------------------------------------------------------- state directories


class LiveDir:
    """A state directory the benchmark writes itself: a live (sleeping) campaign process,
    its heartbeat, checkpoint, status and a few errors; the heartbeat's item is the marker."""

    def __init__(self, path: Path, env: dict[str, str]) -> None:
        self.sd = statedir.ensure(StateDir(path))
        self.path = path
        self.proc = spawn(["sleep", "100000"], env=env)
        self.pid_start = procs.start_time(self.proc.pid)
        self.writer = StateWriter(self.sd, who="bench")
        self.writer.status("RUNNING", "attempt 1 started")
        self.writer.json(
            statedir.CHECKPOINT,
            {
                "tested": 40,
                "total": 118,
                "passed": 33,
                "failed": 5,
                "errors": 2,
                "can_resume": True,
            },
        )
        for n in range(30):
            self.writer.log(statedir.ERRORS_LOG, "ERROR", f"item SD-{n:03d} failed: device busy")
        self.beat("SD-041")
        self.errors = os.open(self.sd.file(statedir.ERRORS_LOG), os.O_WRONLY | os.O_APPEND)

    def beat(self, item: str, age: float = 0.0) -> None:
        """A heartbeat naming ``item``, written now as if ``age`` seconds ago."""
        doc = heartbeat_doc(
            item=item,
            tested=40,
            total=118,
            pid=self.proc.pid,
            pid_start=self.pid_start,
            attempt=1,
        )
        if age:
            doc["timestamp"] = int(doc["timestamp"]) - int(age * 1000)
            if isinstance(doc.get("boottime"), float):
                doc["boottime"] = doc["boottime"] - age
        statedir.write_json(self.sd.file(statedir.HEARTBEAT), doc)

    def append(self, text: str) -> None:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())
        os.write(self.errors, f"{stamp} ERROR {text}\n".encode())

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.errors)
        self.proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)


def big_log(path: Path, size: int, first: str, last: str) -> int:
    """~``size`` bytes of realistic error lines (a repeated ~1 MiB block, tracebacks
    included), written fast; ``first`` in the first line and ``last`` in the last."""
    lines = []
    for n in range(BLOCK_LINES // 8):
        stamp = f"2025-06-01T{(n // 3600) % 24:02d}:{(n // 60) % 60:02d}:{n % 60:02d}.{n % 1000:03d}+00:00"
        lines.append(f"{stamp} ERROR item SD-{n % 118:03d} failed: checksum mismatch at block {n}")
        lines.append(f"{stamp} ERROR item SD-{(n + 7) % 118:03d} raised")
        lines.append("Traceback (most recent call last):")
        lines.append('  File "/opt/campaign/run_item.py", line 88, in run_item')
        lines.append("    result = device.measure(item, retries=3)")
        lines.append('  File "/opt/campaign/device.py", line 241, in measure')
        lines.append(f"    raise TimeoutError(f'device {n % 16} did not answer within 30s')")
        lines.append(f"TimeoutError: device {n % 16} did not answer within 30s")
    block = ("\n".join(lines) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, f"2025-06-01T00:00:00.000+00:00 ERROR first line {first}\n".encode())
        written = 0
        while written < size:
            written += os.write(fd, block)
        os.write(fd, f"2025-06-01T23:59:59.999+00:00 ERROR last line {last}\n".encode())
        os.fsync(fd)  # written back before any timing: no writeback competes with the runs
    finally:
        os.close(fd)
    return os.path.getsize(path)


# ---------------------------------------------------------------------- measuring


def first_screen(
    term: Terminal,
    argv: list[str],
    markers: list[bytes],
    env: dict[str, str],
    keep: bool = False,
    timeout: float = 60.0,
) -> tuple[float, float, Pane]:
    """(ms from launch to the first marker on the terminal, RSS MiB then, the pane)."""
    pane = term.open(argv, env)
    since = pane.stream.offset
    start = term.go(pane)
    deadline = time.monotonic() + timeout
    while True:
        seen = [t for m in markers if (t := pane.stream.find(m, since)) is not None]
        if seen:
            break
        if time.monotonic() > deadline:
            screen = term.screen(pane)
            term.close(pane)
            raise TimeoutError(f"no first screen within {timeout:g}s; the pane shows:\n{screen}")
        time.sleep(0.002)
    rss = rss_mib(pane.pid)
    if not keep:
        term.close(pane)
    return 1000 * (min(seen) - start), rss, pane


def peak_rss(pid: int, seconds: float) -> float:
    peak = rss_mib(pid)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        time.sleep(0.1)
        peak = max(peak, rss_mib(pid))
    return peak


def write_to_screen(live: LiveDir, pane: Pane, samples: int) -> Stat:
    """A heartbeat (atomic replace) naming a new item → the item's name on the terminal."""
    tag = uuid.uuid4().hex[:6].upper()
    out = []
    for n in range(samples):
        marker = f"HB{tag}{n:04d}"
        since = pane.stream.offset
        start = time.monotonic()
        live.beat(marker)
        out.append(1000 * (pane.stream.wait(marker.encode(), since, 10) - start))
        time.sleep(random.uniform(0.12, 0.3))
    return Stat(out, "ms")


def line_to_screen(live: LiveDir, pane: Pane, samples: int) -> Stat:
    """A line appended to errors.log → that line on the terminal."""
    tag = uuid.uuid4().hex[:6].upper()
    out = []
    for n in range(samples):
        marker = f"LN{tag}{n:04d}"
        since = pane.stream.offset
        start = time.monotonic()
        live.append(f"item {marker} failed: device busy")
        out.append(1000 * (pane.stream.wait(marker.encode(), since, 10) - start))
        time.sleep(random.uniform(0.12, 0.3))
    return Stat(out, "ms")


def key_latency(term: Terminal, pane: Pane, samples: int) -> list[float]:
    """``?`` (opens the help) → the help's text on the terminal; Escape closes it again."""
    out = []
    for _ in range(samples):
        since = pane.stream.offset
        start = time.monotonic()
        term.keys(pane, "?")
        out.append(1000 * (pane.stream.wait(HELP_TEXT, since, 10) - start))
        time.sleep(0.1)
        term.keys(pane, "Escape")
        time.sleep(random.uniform(0.25, 0.4))
    return out


class RssSampler:
    def __init__(self, pid: int, every: float = 0.25) -> None:
        self.pid, self.every = pid, every
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        start = time.monotonic()
        while not self._stop.wait(self.every):
            self.samples.append((time.monotonic() - start, rss_mib(self.pid)))

    def stop(self) -> list[tuple[float, float]]:
        self._stop.set()
        self._thread.join(2)
        return self.samples


def firehose(
    term: Terminal,
    live: LiveDir,
    env: dict[str, str],
    rate: int,
    presses: int,
    min_seconds: float = 30.0,
) -> dict[str, object]:
    """Key presses answered while ``rate`` error lines a second pour into errors.log."""
    live.beat("SD-041")
    _ms, _rss, pane = first_screen(term, tui_argv(live.path), [b"SD-041"], env, keep=True)
    try:
        time.sleep(1.0)
        quiet = key_latency(term, pane, presses)
        rss_before = rss_mib(pane.pid)
        seconds = max(min_seconds, 2.0 + presses * 0.75 + 3.0)
        hose = spawn(
            [sys.executable, str(FIREHOSE), str(live.sd.file(statedir.ERRORS_LOG)), str(rate),
             str(seconds)],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        sampler = RssSampler(pane.pid)
        time.sleep(2.0)
        loud = key_latency(term, pane, presses)
        out, _ = hose.communicate(timeout=seconds + 30)  # RSS is sampled to the end
        rss = sampler.stop()
        lines, elapsed, _bytes = out.split()
        achieved = int(lines) / float(elapsed)
        alive = pane.stream.find(b"", 0) is not None and rss_mib(pane.pid) > 0
    finally:
        term.close(pane)
    values = [v for _t, v in rss]
    last = rss[2 * len(rss) // 3 :]
    slope = _slope(last) if len(last) >= 2 else 0.0
    return {
        "quiet": Stat(quiet, "ms"),
        "loud": Stat(loud, "ms"),
        "rss_before": rss_before,
        "rss": Stat(values, "MiB"),
        "slope": slope,
        "seconds": seconds,
        "rate": achieved,
        "alive": alive,
    }


def _slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, MiB) points: MiB per second."""
    n = len(points)
    mean_t = sum(t for t, _ in points) / n
    mean_v = sum(v for _, v in points) / n
    var = sum((t - mean_t) ** 2 for t, _ in points)
    if var == 0:
        return 0.0
    return sum((t - mean_t) * (v - mean_v) for t, v in points) / var


def say_stat(label: str, stat: Stat) -> None:
    say(f"  {label}: {stat.text()}")
