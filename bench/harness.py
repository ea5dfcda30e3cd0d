"""What every figure of the benchmark shares: samples and their summary, the
processes it starts (each carries a marker and is ended by pid), process
footprints, and a private tmux server whose panes' output is timed byte by byte.

No figure lives here; see ``figures_*.py``.
"""

from __future__ import annotations

import contextlib
import os
import select
import shlex
import shutil
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import psutil

T = TypeVar("T")
MARKER_VAR = "CAMPAIGN_TUI_BENCH_MARKER"
MARKER = f"campaign-tui-bench-{uuid.uuid4().hex}"
BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent


# ---------------------------------------------------------------------- samples


@dataclass
class Stat:
    """Samples of one quantity, in ``unit`` (``ms``, ``s``, ``MiB``, ``%``)."""

    samples: list[float]
    unit: str

    @property
    def n(self) -> int:
        return len(self.samples)

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def low(self) -> float:
        return min(self.samples)

    @property
    def high(self) -> float:
        return max(self.samples)

    def text(self, digits: int | None = None) -> str:
        """``12.3 ms (11.0–15.2, n=10)``."""
        if not self.samples:
            return "—"
        fmt = _fmt(self.median, digits)
        if self.n == 1:
            return f"{fmt} {self.unit} (n=1)"
        return f"{fmt} {self.unit} ({_fmt(self.low, digits)}–{_fmt(self.high, digits)}, n={self.n})"


def _fmt(value: float, digits: int | None) -> str:
    if digits is not None:
        return f"{value:.{digits}f}"
    magnitude = abs(value)
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


@dataclass
class Ref:
    """A reference measured in the same run, or why it was skipped."""

    label: str
    stat: Stat | None = None
    skipped: str | None = None


@dataclass
class Row:
    """One line of the results table: a quantity of ours beside its references."""

    label: str
    ours: Stat
    target: str
    met: bool | None  # None: no target for this row
    refs: list[Ref] = field(default_factory=list)
    ratio_to: str | None = None  # the label of the reference the ratio is taken against


@dataclass
class Figure:
    """One figure of the issue's table: how it was measured and its rows."""

    key: str
    title: str
    method: str
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    skipped: str | None = None
    seconds: float = 0.0


def say(text: str) -> None:
    print(text, flush=True)


def wait_for(
    predicate: Callable[[], T], timeout: float = 20.0, what: str = "condition", step: float = 0.01
) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(step)


# ---------------------------------------------------------------------- processes


def bench_env(**extra: str) -> dict[str, str]:
    """The environment of every process the benchmark starts: ours, marked."""
    env = dict(os.environ)
    # PYTHONDONTWRITEBYTECODE would make every Python process of the run compile the
    # package from source again: not what an installed campaign-tui does.
    for name in (
        "CAMPAIGN_STATE_DIR", "CAMPAIGN_NAME", "CAMPAIGN_ATTEMPT", "CAMPAIGN_RESUME",
        "PYTHONDONTWRITEBYTECODE",
    ):  # fmt: skip
        env.pop(name, None)
    env[MARKER_VAR] = MARKER
    env.update(extra)
    return env


def campaign_tui() -> list[str]:
    """How to run our command with the interpreter that runs the benchmark."""
    script = Path(sys.executable).with_name("campaign-tui")
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-m", "campaign_tui"]


def run(
    argv: Sequence[str], *, env: dict[str, str] | None = None, timeout: float = 60.0, **kw: object
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(argv),
        env=env or bench_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        stdin=subprocess.DEVNULL,
        **kw,  # type: ignore[arg-type]
    )


def spawn(
    argv: Sequence[str], *, env: dict[str, str] | None = None, **kw: object
) -> subprocess.Popen:
    """A process in its own session (so a stray signal of ours never reaches the harness)."""
    return subprocess.Popen(
        list(argv),
        env=env or bench_env(),
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        **kw,  # type: ignore[arg-type]
    )


def end_pid(pid: int, grace: float = 2.0) -> None:
    """SIGTERM one process we started, SIGKILL it after ``grace``."""
    try:
        proc = psutil.Process(pid)
        proc.terminate()
        proc.wait(grace)
    except psutil.TimeoutExpired:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    except psutil.Error:
        pass


def end_marked() -> int:
    """End, by pid, every process still carrying this run's marker (never the harness)."""
    me = os.getpid()
    found = []
    for proc in psutil.process_iter(["pid"]):
        if proc.pid == me:
            continue
        with contextlib.suppress(psutil.Error, OSError):
            if proc.environ().get(MARKER_VAR) == MARKER:
                found.append(proc)
    for proc in found:
        with contextlib.suppress(psutil.Error):
            proc.terminate()
    _gone, alive = psutil.wait_procs(found, timeout=2.0)
    for proc in alive:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    return len(found)


def wait_gone(pid: int, timeout: float) -> float | None:
    """Monotonic time at which ``pid`` (any process, not only our child) ended; None on timeout."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return time.monotonic()
    try:
        ready, _, _ = select.select([fd], [], [], timeout)
        return time.monotonic() if ready else None
    finally:
        os.close(fd)


def _task_ns(pid: int) -> int:
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        with (
            contextlib.suppress(OSError, ValueError),
            open(f"/proc/{pid}/task/{task}/schedstat") as handle,
        ):
            total += int(handle.read().split()[0])
    return total


def cpu_ns(pid: int) -> int:
    """CPU time of a process so far, in ns (schedstat; ticks where schedstat is missing)."""
    try:
        if os.path.exists(f"/proc/{pid}/schedstat"):
            return _task_ns(pid)
        times = psutil.Process(pid).cpu_times()
        return int((times.user + times.system) * 1e9)
    except (OSError, psutil.Error):
        return 0


def rss_mib(pid: int) -> float:
    try:
        return psutil.Process(pid).memory_info().rss / (1 << 20)
    except psutil.Error:
        return 0.0


def idle_usage(pids: dict[str, int], seconds: float) -> dict[str, tuple[float, float]]:
    """CPU % (of one core) over ``seconds`` and RSS at the end, of each process at once."""
    before = {name: cpu_ns(pid) for name, pid in pids.items()}
    start = time.monotonic()
    time.sleep(seconds)
    wall = time.monotonic() - start
    out = {}
    for name, pid in pids.items():
        used = cpu_ns(pid) - before[name]
        out[name] = (100.0 * used / (wall * 1e9), rss_mib(pid))
    return out


# ---------------------------------------------------------------------- a real terminal


class PaneStream:
    """Everything a pane's program writes to its terminal, with the time each byte arrived.

    tmux's ``pipe-pane -O`` copies the pane's output into a FIFO that a thread here
    reads, so "the marker reached the terminal" is timed to the read that brought
    its last byte, with no screen polling.
    """

    KEEP = 1 << 20

    def __init__(self, fifo: Path) -> None:
        self.fifo = fifo
        os.mkfifo(fifo, 0o600)
        self._fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        self._lock = threading.Lock()
        self._data = bytearray()
        self._base = 0  # absolute offset of _data[0]
        self._times: list[tuple[int, float]] = []  # (absolute end offset, arrival time)
        self._closed = False
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._closed:
            try:
                ready, _, _ = select.select([self._fd], [], [], 0.2)
            except (OSError, ValueError):
                return
            if not ready:
                continue
            try:
                chunk = os.read(self._fd, 1 << 16)
            except BlockingIOError:
                continue
            except OSError:
                return
            now = time.monotonic()
            if not chunk:
                time.sleep(0.005)  # no writer (yet): pipe-pane opens it soon
                continue
            with self._lock:
                self._data += chunk
                self._times.append((self._base + len(self._data), now))
                if len(self._data) > 8 * self.KEEP:
                    cut = len(self._data) - self.KEEP
                    del self._data[:cut]
                    self._base += cut
                    self._times = [t for t in self._times if t[0] > self._base]

    @property
    def offset(self) -> int:
        with self._lock:
            return self._base + len(self._data)

    def find(self, needle: bytes, since: int) -> float | None:
        """Arrival time of the first ``needle`` that ends after absolute offset ``since``."""
        with self._lock:
            start = max(0, since - self._base - len(needle) + 1)
            index = self._data.find(needle, start)
            if index < 0:
                return None
            end = self._base + index + len(needle)
            for stop, when in self._times:
                if stop >= end:
                    return when
        return None

    def wait(self, needle: bytes, since: int, timeout: float) -> float:
        return wait_for(
            lambda: self.find(needle, since), timeout, f"{needle!r} on the terminal", 0.002
        )

    def close(self) -> None:
        self._closed = True
        self._thread.join(1.0)
        with contextlib.suppress(OSError):
            os.close(self._fd)
        with contextlib.suppress(OSError):
            os.unlink(self.fifo)


@dataclass
class Pane:
    target: str
    pid: int
    stream: PaneStream
    go: Path


class Terminal:
    """A private tmux server (``-L``), 120×40, one window per program."""

    def __init__(self, workdir: Path, cols: int = 120, rows: int = 40) -> None:
        self.exe = shutil.which("tmux")
        self.workdir = workdir
        self.socket = f"ctb-{uuid.uuid4().hex[:10]}"
        self.cols, self.rows = cols, rows
        self.panes: list[Pane] = []
        self._count = 0
        self._up = False

    @property
    def available(self) -> bool:
        return self.exe is not None

    def tmux(self, *args: str) -> subprocess.CompletedProcess[str]:
        assert self.exe is not None
        return run([self.exe, "-L", self.socket, *args], timeout=20)

    def _start_server(self) -> None:
        done = self.tmux(
            "-f", "/dev/null", "new-session", "-d", "-s", "bench",
            "-x", str(self.cols), "-y", str(self.rows), "sleep 100000",
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"tmux new-session: {done.stderr.strip()}")
        self._up = True

    def open(self, argv: Sequence[str], env: dict[str, str] | None = None) -> Pane:
        """A window running ``argv``, held at a gate until :meth:`go` (output is piped first)."""
        if not self._up:
            self._start_server()
        self._count += 1
        name = f"w{self._count}"
        go = self.workdir / f"{self.socket}-{name}.go"
        os.mkfifo(go, 0o600)
        extra = {"TERM": "xterm-256color", "COLORTERM": "truecolor", **(env or {})}
        exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in extra.items())
        line = f"read _ < {shlex.quote(str(go))}; exec env {exports} {shlex.join(argv)}"
        done = self.tmux(
            "new-window", "-d", "-n", name, "-t", "bench", "-P", "-F", "#{pane_pid}",
            "sh -c " + shlex.quote(line),
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"tmux new-window: {done.stderr.strip()}")
        pid = int(done.stdout.strip())
        target = f"bench:{name}"
        stream = PaneStream(self.workdir / f"{self.socket}-{name}.out")
        self.tmux("pipe-pane", "-O", "-t", target, "cat > " + shlex.quote(str(stream.fifo)))
        wait_for(
            lambda: self.tmux("display", "-p", "-t", target, "#{pane_pipe}").stdout.strip() == "1",
            5.0,
            "pipe-pane",
        )
        pane = Pane(target, pid, stream, go)
        self.panes.append(pane)
        return pane

    def go(self, pane: Pane) -> float:
        """Let the pane's program start; returns the monotonic time it was let go."""
        fd = os.open(pane.go, os.O_WRONLY)
        started = time.monotonic()
        os.write(fd, b"go\n")
        os.close(fd)
        return started

    def keys(self, pane: Pane, *keys: str) -> None:
        self.tmux("send-keys", "-t", pane.target, *keys)

    def screen(self, pane: Pane) -> str:
        return self.tmux("capture-pane", "-p", "-t", pane.target).stdout

    def close(self, pane: Pane) -> None:
        end_pid(pane.pid)
        self.tmux("kill-window", "-t", pane.target)
        pane.stream.close()
        with contextlib.suppress(OSError):
            os.unlink(pane.go)
        if pane in self.panes:
            self.panes.remove(pane)

    def shutdown(self) -> None:
        for pane in list(self.panes):
            self.close(pane)
        if self._up:
            socket_path = self.tmux("display", "-p", "#{socket_path}").stdout.strip()
            self.tmux("kill-server")
            self._up = False
            if socket_path:
                with contextlib.suppress(OSError):
                    os.unlink(socket_path)
