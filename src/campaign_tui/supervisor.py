"""The supervisor loop: run the command, wait, decide, carry out, record.

The loop only waits and carries out; :mod:`campaign_tui.policy` decides. It is
event driven: one ``select`` on a signal wake-up pipe (SIGCHLD, SIGTERM, SIGINT,
SIGHUP), the control socket and, for an adopted campaign, its pidfd, with a
timeout set by the nearest timer on the monotonic clock (the restart backoff,
the hang watchdog, the output follower). Nothing is polled in a tight loop.

The command runs in its own session and process group, stdin from /dev/null,
stdout and stderr appended straight to ``output.log`` (a descriptor it holds
itself: it never dies of SIGPIPE when the supervisor goes away). The supervisor
is a child subreaper, so grandchildren that call ``setsid`` and lose their
parent are still found, reaped and, on a stop, killed.

How an attempt ended (see also :mod:`campaign_tui.policy`):

* **complete** — the campaign wrote status COMPLETE (whatever its exit code: a
  test runner exits 1 when a test failed), or the TAP plans it printed were
  fulfilled (and no signal killed it), or a command that reported nothing at all
  (no heartbeat, no status, no TAP) exited 0.
* **stopped** — the supervisor was asked to stop it (``campaign-tui stop``,
  Ctrl-C in the foreground, SIGTERM / SIGHUP to the supervisor); or someone else
  signalled the campaign (SIGTERM, SIGINT, SIGHUP) and the campaign itself
  recorded TERMINATED or INTERRUPTED in status.json: that is an intentional stop
  too, and it is not restarted.
* **hang** — the watchdog found it stale with ``restart_on_stale`` on, diagnosed
  it and killed it.
* **manual** — ``campaign-tui restart``.
* **crash** — anything else: a non-zero exit, a killing signal, an exit without
  COMPLETE from a campaign that reports.

Any command, no changes (see docs/adapters.md): while the command writes no
heartbeat of its own, the supervisor writes one on its behalf (``source``
"supervisor", the command's pid) each time the command prints something, the
last line shown as the current item; it stops for the attempt as soon as the
command writes its own. When the output is TAP, the supervisor also derives the
total, the progress, results.jsonl, the checkpoint and the failure-rate alert
from it. When two attempts in a row crash or hang with the same item in flight,
that item is recorded as an error ("crashed the campaign twice"), with a
critical alert, and the next attempts get it in ``CAMPAIGN_SKIP_ITEMS``.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
import secrets
import selectors
import signal
import socket
import stat
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from campaign_tui import clock, metrics, policy, proctree, sdnotify, statedir
from campaign_tui.campaign import (
    FAILURE_RATE_MIN_ITEMS,
    FAILURE_RATE_THRESHOLD,
    POISON_MESSAGE,
    SKIP_ITEMS_VAR,
    read_journal,
    read_poison,
)
from campaign_tui.config import Settings
from campaign_tui.controlsocket import CONTROL_SOCKET, socket_address
from campaign_tui.health import freshness
from campaign_tui.models import Checkpoint, Heartbeat, StatusDoc
from campaign_tui.procs import start_time
from campaign_tui.sanitize import sanitize
from campaign_tui.snapshot import read_restarts
from campaign_tui.statedir import StateDir, StateDirError
from campaign_tui.tap import Finished, Other, Result, TapStream
from campaign_tui.writer import (
    FINAL_STATES,
    STATUS_FD_VAR,
    StateWriter,
    heartbeat_doc,
    stamp,
)

VERBS = ("stop", "restart", "ping")
FOLLOW_INTERVAL = 1.0  # output.log: TAP progress and the size bound
HOOK_TIMEOUT = 10.0
DIAG_WAIT = 2.0  # how long the campaign gets to answer its diagnostic signal
TAIL_LINES = 20
_TAIL_BYTES = 64 * 1024
_FOLLOW_CHUNK = 1 << 20
TEXTFILE_INTERVAL = 1.0  # how often --textfile-dir checks for a change
TEXTFILE_REFRESH = 10.0  # and rewrites anyway, so the heartbeat age stays current
_LINE_LIMIT = 200  # an output line shown as the current item
_MTIME_SLACK_MS = 50  # file times lag the clock by up to a kernel tick
_LEVEL_RANK = {"info": 0, "warning": 1, "critical": 2}
# statedir.write_json's temp files: ".heartbeat.json.1f2e3d4c5b6a.tmp". One left
# behind is a killed writer's; one younger than STALE_TEMP_AGE may be a live write.
_TEMP_NAME = re.compile(r"\.[^/]+\.[0-9a-f]{12}\.tmp")  # secrets.token_hex(6)
STALE_TEMP_AGE = 5.0

EXIT_COMPLETE = 0
EXIT_STOPPED = 0
EXIT_INTERRUPTED = 130
EXIT_GAVE_UP = 2
EXIT_NOEXEC = 66


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def describe_wait(status: int | None) -> tuple[int | None, str | None]:
    """(exit code, signal name) from a wait status; both None when unknown."""
    if status is None:
        return None, None
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            return None, signal.Signals(sig).name
        except ValueError:
            return None, f"signal {sig}"
    if os.WIFEXITED(status):
        return os.WEXITSTATUS(status), None
    return None, None


def how_it_ended(code: int | None, sig: str | None) -> str:
    if sig:
        return f"killed by {sig}"
    if code is not None:
        return f"exited with code {code}"
    return "ended (exit status unknown: it was not our child)"


@dataclass(slots=True)
class Adopted:
    """A campaign process that outlived its supervisor, to be supervised again."""

    pid: int
    start: float | None
    attempt: int
    started_ms: int | None
    run_id: str


@dataclass(slots=True)
class Child:
    """The running attempt."""

    pid: int
    start: float | None
    attempt: int
    started: float  # monotonic
    started_ms: int
    popen: subprocess.Popen[bytes] | None = None
    pidfd: int | None = None
    status: int | None = None
    gone: bool = False  # an adopted process ended (its exit status is not ours to read)
    ended_by: str | None = None  # stop / interrupt / sigterm / hup / manual / hang
    results_size: int = 0
    tested: int | None = None
    output_start: int = 0
    tap: TapStream = field(default_factory=TapStream)
    hb_written: bool = False  # the command writes its own heartbeat
    last_line: str | None = None  # the last line it printed
    after_result: str | None = None  # a plain line printed after its last TAP result
    journal: dict[str, str] = field(default_factory=dict)  # outcome per item (TAP)
    before: dict[str, str] = field(default_factory=dict)  # outcomes of earlier attempts
    total_before: int | None = None
    poison: tuple[str, ...] = ()
    bail_alerted: bool = False
    status_fd: int | None = None  # the read end of the status pipe (see _read_reported)
    reported: str | None = None  # the final state the campaign sent through it

    @property
    def ended(self) -> bool:
        return self.status is not None or self.gone


@dataclass(slots=True)
class Waiter:
    conn: socket.socket
    verb: str


@dataclass(slots=True)
class Hook:
    popen: subprocess.Popen[bytes]
    deadline: float


@dataclass(slots=True)
class _Conn:
    sock: socket.socket
    buffer: bytes = b""
    opened: float = field(default_factory=time.monotonic)


class Supervisor:
    """Supervises one campaign until it completes, is stopped, or is given up on.

    ``lock_fd`` is the held ``flock`` on supervisor.lock (opened O_CLOEXEC so the
    campaign never inherits it). ``notify`` is called once with ``"ok PID"`` when
    the first attempt runs, or ``"err CODE message"`` when it cannot start.
    """

    def __init__(
        self,
        sd: StateDir,
        settings: Settings,
        *,
        foreground: bool,
        lock_fd: int | None = None,
        adopt: Adopted | None = None,
        first_attempt: int = 1,
        resume: bool = False,
        notify: Callable[[str], None] | None = None,
    ):
        self.sd = sd
        self.settings = settings
        self.foreground = foreground
        self.lock_fd = lock_fd
        self.adopt = adopt
        self.attempt = first_attempt - 1
        self.resume = resume
        self.notify = notify
        self.limits = policy.Limits.of(settings)
        self.history = policy.History()
        self.writer = StateWriter(sd, who="campaign-tui supervisor")
        self.run_id = adopt.run_id if adopt else secrets.token_hex(8)
        self.pid = os.getpid()
        self.pid_start = start_time(self.pid)
        self.started_ms = now_ms()
        self.state = "running"
        self.restarts = 0  # restarts in the current crash streak (what max_restarts bounds)
        self.total_restarts = 0
        self.next_restart_ms: int | None = None
        self.child: Child | None = None
        self.final: str | None = None
        self.exit_code = 0
        self.timers: dict[str, float] = {}
        self.hooks: dict[int, Hook] = {}
        self.waiters: list[Waiter] = []
        self.conns: dict[int, _Conn] = {}
        self.stale_alerted = False
        self.status_ms: int | None = None
        self._signals: list[int] = []
        self._sel = selectors.DefaultSelector()
        self._wake_r = self._wake_w = -1
        self._listener: socket.socket | None = None
        self._output_offset = 0
        self._output_partial = b""
        self.rate_alerted = False
        self._hb_mark: tuple[int, int] | None = None  # (inode, mtime_ns) of our last heartbeat
        self.notifier: sdnotify.Notifier | None = None
        self._textfile_sig: tuple[int, ...] | None = None
        self._textfile_at = 0.0
        self._textfile_failing = False
        self._extra_locks: list[int] = []  # locks taken on a re-created state directory

    # ================================================================ the loop

    def run(self) -> int:
        """Supervise until done; returns the process exit code."""
        try:
            self._setup()
            if self.adopt is not None:
                self._take_over(self.adopt)
            else:
                failure = self._start_attempt()
                if failure is not None:
                    self._cannot_execute(failure)
                    return self.exit_code
            self._tell(f"ok {self.pid}")
            self._sd_ready()
            while self.final is None:
                self._step()
            return self.exit_code
        finally:
            self._teardown()

    def _step(self) -> None:
        deadline = min(self.timers.values(), default=None)
        timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
        for key, _mask in self._sel.select(timeout):
            key.data(key.fileobj)
        self._handle_signals()
        self._reap()
        self._run_timers()
        if self.child is not None and self.child.ended:
            self._attempt_ended(self.child)

    def _run_timers(self) -> None:
        now = time.monotonic()
        for name, when in sorted(self.timers.items(), key=lambda kv: kv[1]):
            if when <= now and self.timers.get(name) == when:
                del self.timers[name]
                getattr(self, f"_on_{name}")()

    # ================================================================ setup

    def _setup(self) -> None:
        if not proctree.become_subreaper():
            self._say(
                "WARNING", "cannot become a child subreaper: setsid'd grandchildren may escape"
            )
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(self._wake_w, warn_on_full_buffer=False)
        for signum in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, self._on_signal)
        self._sel.register(self._wake_r, selectors.EVENT_READ, self._drain_wakeup)
        self._listen()
        with contextlib.suppress(OSError):
            statedir.write_json(
                self.sd.file(statedir.CONFIG), {**self.settings.record(), **stamp()}, fsync=True
            )
        mode = "foreground" if self.foreground else "detached"
        self._say("INFO", f"supervisor pid {self.pid} started ({mode}): {self._command_text()}")
        if self.foreground:
            self.notifier = sdnotify.from_environ()
        if self.settings.textfile_dir:
            self.timers["textfile"] = time.monotonic()

    def _on_signal(self, signum: int, frame: object) -> None:
        self._signals.append(signum)

    def _drain_wakeup(self, _fileobj: object) -> None:
        with contextlib.suppress(BlockingIOError, InterruptedError):
            while os.read(self._wake_r, 4096):
                pass

    def _teardown(self) -> None:
        with contextlib.suppress(ValueError, OSError):
            signal.set_wakeup_fd(-1)
        if self.notifier is not None:
            self.notifier.send(STOPPING=1, STATUS=f"campaign {self.final or self.state}")
            self.notifier.close()
        if self.settings.textfile_dir:
            self._write_textfile()
        for waiter in self.waiters:
            self._answer(waiter, f"done {self.final or self.state}")
        self.waiters.clear()
        for conn in list(self.conns.values()):
            with contextlib.suppress(OSError):
                conn.sock.close()
        if self._listener is not None:
            with contextlib.suppress(OSError):
                os.unlink(self.sd.file(CONTROL_SOCKET))
            self._listener.close()
        for pid, hook in list(self.hooks.items()):
            try:
                code = hook.popen.wait(timeout=max(0.0, hook.deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(OSError):
                    os.killpg(pid, signal.SIGKILL)
                self.writer.log(
                    statedir.WRAPPER_LOG,
                    "WARNING",
                    f"on_alert hook pid {pid} timed out after {HOOK_TIMEOUT:g}s: killed",
                )
                continue
            except (OSError, ChildProcessError):
                continue
            if code != 0:
                self._hook_failed(code)
        self.hooks.clear()
        if self.child is not None:
            self._close_status_pipe(self.child)
        for fd in (self._wake_r, self._wake_w, *self._extra_locks):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._extra_locks.clear()
        self._sel.close()

    def _tell(self, message: str) -> None:
        if self.notify is not None:
            notify, self.notify = self.notify, None
            with contextlib.suppress(Exception):
                notify(message)

    # ================================================================ output

    def _say(self, level: str, message: str) -> None:
        """One event line: wrapper.log, and the terminal in the foreground."""
        self.writer.log(statedir.WRAPPER_LOG, level, message)
        if self.foreground:
            stamp_text = time.strftime("%H:%M:%S")
            with contextlib.suppress(OSError, ValueError):
                print(f"{stamp_text} campaign-tui: {sanitize(message)}", flush=True)

    def _alert(self, message: str, level: str) -> None:
        self.writer.alert(message, level)
        self._say({"info": "INFO", "warning": "WARNING", "critical": "CRITICAL"}[level], message)
        wanted = _LEVEL_RANK.get(self.settings.on_alert_level, 1)
        if self.settings.on_alert and _LEVEL_RANK[level] >= wanted:
            self._run_hook(
                {
                    "level": level,
                    "message": message,
                    "campaign": self.sd.name,
                    "state_dir": str(self.sd.path),
                    "attempt": self.attempt,
                    **stamp(),
                }
            )

    def _command_text(self) -> str:
        import shlex

        return shlex.join(self.settings.command)

    def _record(self, state: str | None = None, *, fsync: bool = True) -> None:
        """supervisor.json, atomically: who supervises what, in which state."""
        if state is not None:
            self.state = state
        child = self.child
        doc = {
            "pid": self.pid,
            "pid_start": self.pid_start,
            "state": self.state,
            "child_pid": child.pid if child and not child.ended else None,
            "child_start": child.start if child and not child.ended else None,
            "attempt": self.attempt,
            "restarts": self.restarts,
            "total_restarts": self.total_restarts,
            "max_restarts": self.settings.max_restarts,
            "next_restart_ms": self.next_restart_ms if self.state == "backoff" else None,
            "started_ms": self.started_ms,
            "child_started_ms": child.started_ms if child else None,
            "command": list(self.settings.command),
            "cwd": self.settings.cwd,
            "settings": self.settings.record(),
            "run_id": self.run_id,
            "foreground": self.foreground,
            **stamp(),
        }
        self.writer.json(statedir.SUPERVISOR, doc, fsync=fsync)
        if self.settings.textfile_dir:
            self._write_textfile()
        if self.notifier is not None:
            attempt = f"attempt {self.attempt}" if self.attempt else "no attempt yet"
            self.notifier.send(STATUS=f"{self.state}: {attempt}, {self.total_restarts} restarts")

    # ================================================================ attempts

    def _child_env(
        self, attempt: int, poison: tuple[str, ...] = (), status_fd: int | None = None
    ) -> dict[str, str]:
        env = dict(os.environ)
        for name in sdnotify.ENV_NAMES:  # systemd talks to the supervisor, not to the campaign
            env.pop(name, None)
        if status_fd is not None:
            env[STATUS_FD_VAR] = str(status_fd)
        else:  # a supervisor run by a campaign must not hand on its own campaign's pipe
            env.pop(STATUS_FD_VAR, None)
        if poison:
            env[SKIP_ITEMS_VAR] = "\n".join(poison)
        else:
            env.pop(SKIP_ITEMS_VAR, None)
        env.update(
            CAMPAIGN_STATE_DIR=str(self.sd.path),
            CAMPAIGN_NAME=self.sd.name,
            CAMPAIGN_ATTEMPT=str(attempt),
            CAMPAIGN_STALE_AFTER=f"{self.settings.stale_after:g}",
            PYTHONFAULTHANDLER="1",
            **{proctree.RUN_MARKER: self.run_id},
        )
        env.setdefault("PYTHONUNBUFFERED", "1")  # output.log is a sign of life: keep it current
        if attempt > 1 or self.resume:
            env["CAMPAIGN_RESUME"] = "1"
        else:
            env.pop("CAMPAIGN_RESUME", None)
        return env

    def _start_attempt(self) -> str | None:
        """Spawn the next attempt; returns why it cannot be executed, or None."""
        attempt = self.attempt + 1
        output = self.sd.file(statedir.OUTPUT_LOG)
        self._ensure_dir()
        self._remove_stale_temp_files()
        self._rotate_if_needed()
        out_fd = self._open_output(output)
        results = self.sd.file(statedir.RESULTS)
        results_size = _size(results)
        cp = _checkpoint(self.sd)
        poison = tuple(read_poison(self.sd))
        output_start = _size(output)  # before the spawn: a fast command's output is its own
        started_ms = now_ms()
        # The status says RUNNING before the command can overwrite it with its own.
        self.status_ms = started_ms
        self.writer.status(
            "RUNNING",
            f"attempt {attempt} started by the supervisor",
            fsync=False,
            timestamp=started_ms,
            attempt=attempt,
        )
        # Non-blocking on both ends: a campaign never waits on it, and reading it
        # after the exit returns at once even if a grandchild still holds the write end.
        status_r, status_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            popen = subprocess.Popen(
                list(self.settings.command),
                stdin=subprocess.DEVNULL,
                stdout=out_fd,
                stderr=out_fd,
                cwd=self.settings.cwd or None,
                env=self._child_env(attempt, poison, status_w),
                start_new_session=True,
                close_fds=True,
                pass_fds=(status_w,),
            )
        except OSError as exc:
            os.close(status_r)
            return _exec_failure(self.settings, exc)
        finally:
            os.close(out_fd)
            os.close(status_w)
        self.attempt = attempt
        self.child = Child(
            pid=popen.pid,
            start=start_time(popen.pid),
            attempt=attempt,
            started=time.monotonic(),
            started_ms=started_ms,
            popen=popen,
            results_size=results_size,
            tested=cp.tested if cp else None,
            output_start=output_start,
            poison=poison,
            status_fd=status_r,
        )
        self._load_journal(self.child, cp)
        self._output_offset = self.child.output_start
        self._output_partial = b""
        self._beat(self.child)
        self.stale_alerted = False
        self.next_restart_ms = None
        self._record("running")
        resumed = " with CAMPAIGN_RESUME=1" if attempt > 1 or self.resume else ""
        self._say("INFO", f"attempt {attempt} started: pid {popen.pid}{resumed}")
        self.timers["follow"] = time.monotonic() + FOLLOW_INTERVAL
        self.timers["watchdog"] = time.monotonic() + self.settings.stale_after
        return None

    def _ensure_dir(self) -> None:
        """Re-create a state directory removed under us (0700), and lock it again."""
        missing = not self.sd.path.is_dir()
        try:
            statedir.ensure(self.sd)
        except StateDirError as exc:
            self._say("WARNING", f"{exc}; the campaign goes on")
            return
        if missing:
            self._say("WARNING", f"state directory {self.sd.path} was removed: created it again")
            self._relock()
            self._relisten()

    def _relock(self) -> None:
        """Hold the lock of a re-created directory too, so no second supervisor starts there."""
        try:
            fd = os.open(
                self.sd.file(statedir.LOCK),
                os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW,
                0o600,
            )
        except OSError as exc:
            self._say("WARNING", f"cannot lock the re-created directory again: {exc.strerror}")
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            self._say("WARNING", "another supervisor locked the re-created directory")
            return
        self._extra_locks.append(fd)

    def _remove_stale_temp_files(self) -> None:
        """Remove the temp files of atomic writes whose writer was killed mid-write."""
        removed = remove_stale_temp_files(self.sd.path, time.time() - STALE_TEMP_AGE)
        if removed:
            self._say("INFO", f"removed {removed} temp file(s) left by killed writers")

    def _relisten(self) -> None:
        """A new control socket: the old one went with the removed directory."""
        if self._listener is not None:
            with contextlib.suppress(KeyError, ValueError):
                self._sel.unregister(self._listener)
            self._listener.close()
            self._listener = None
        self._listen()

    def _open_output(self, output: Path) -> int:
        """An append descriptor on output.log, else /dev/null: the output is lost, not the run."""
        try:
            return statedir.open_append(output)
        except OSError as exc:
            self._say(
                "WARNING",
                f"cannot open {output} ({exc.strerror}): this attempt's output goes to /dev/null",
            )
        return os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)

    def _take_over(self, adopt: Adopted) -> None:
        """Supervise again a campaign process whose supervisor was killed."""
        try:
            pidfd = os.pidfd_open(adopt.pid)
        except OSError as exc:
            pidfd = None
            self._say("WARNING", f"pidfd_open({adopt.pid}) failed ({exc.strerror}); polling it")
        self.attempt = adopt.attempt
        output = self.sd.file(statedir.OUTPUT_LOG)
        results = self.sd.file(statedir.RESULTS)
        cp = _checkpoint(self.sd)
        self.child = Child(
            pid=adopt.pid,
            start=adopt.start,
            attempt=adopt.attempt,
            # its uptime counts from its real start, not from the adoption
            started=time.monotonic() - max(0, now_ms() - (adopt.started_ms or now_ms())) / 1000,
            started_ms=adopt.started_ms or now_ms(),
            pidfd=pidfd,
            results_size=_size(results),
            tested=cp.tested if cp else None,
            output_start=_size(output),
            poison=tuple(read_poison(self.sd)),
        )
        self._load_journal(self.child, cp)
        self._output_offset = self.child.output_start
        if pidfd is not None:
            self._sel.register(pidfd, selectors.EVENT_READ, self._adopted_exited)
        self._record("running")
        self._alert(
            f"adopted the running campaign pid {adopt.pid} (attempt {adopt.attempt}) "
            "after its supervisor was lost",
            "warning",
        )
        self.timers["follow"] = time.monotonic() + FOLLOW_INTERVAL
        self.timers["watchdog"] = time.monotonic() + self.settings.stale_after
        if pidfd is None:
            self.timers["adopted_poll"] = time.monotonic() + 1.0

    def _adopted_exited(self, _fileobj: object) -> None:
        child = self.child
        if child is not None and child.pidfd is not None:
            self._sel.unregister(child.pidfd)
            os.close(child.pidfd)
            child.pidfd = None
            child.gone = True

    def _on_adopted_poll(self) -> None:
        child = self.child
        if child is None or child.popen is not None or child.ended:
            return
        if not _alive(child.pid, child.start):
            child.gone = True
        else:
            self.timers["adopted_poll"] = time.monotonic() + 1.0

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            except InterruptedError:
                continue
            if pid == 0:
                return
            child = self.child
            if child is not None and child.popen is not None and pid == child.pid:
                child.status = status
                child.popen.returncode = os.waitstatus_to_exitcode(status)
            elif pid in self.hooks:
                hook = self.hooks.pop(pid)
                hook.popen.returncode = code = os.waitstatus_to_exitcode(status)
                if code != 0:
                    self._hook_failed(code)

    # ================================================================ an attempt ended

    def _read_reported(self, child: Child) -> None:
        """The campaign's last word through the status pipe (COMPLETE, CRASHED, ...), if any.

        Read after the exit, non-blocking: what it wrote is there already, and a
        grandchild still holding the write end cannot make this wait.
        """
        fd = child.status_fd
        if fd is None:
            return
        data = b""
        with contextlib.suppress(OSError):  # BlockingIOError: nothing (more) written
            while len(data) < 65536:
                chunk = os.read(fd, 4096)
                if not chunk:
                    break
                data += chunk
        self._close_status_pipe(child)
        words = [w for w in data.decode("ascii", "replace").split() if w in FINAL_STATES]
        child.reported = words[-1] if words else None

    def _close_status_pipe(self, child: Child) -> None:
        if child.status_fd is not None:
            with contextlib.suppress(OSError):
                os.close(child.status_fd)
            child.status_fd = None

    def _classify(self, child: Child) -> tuple[policy.Outcome, str]:
        """How the attempt ended (see the module docstring), and a few words why.

        The campaign's word through the status pipe wins over status.json, which
        a full, removed or read-only state directory may have kept from it.
        """
        code, sig = describe_wait(child.status)
        status = _status(self.sd)
        said = child.reported
        if child.ended_by in ("stop", "interrupt", "sigterm", "hup"):
            return "stopped", "stopped on request"
        if child.ended_by == "manual":
            return "manual", "restarted on request"
        if child.ended_by == "hang":
            return "hang", "hung"
        if said == "COMPLETE":
            return "complete", "the campaign reported COMPLETE"
        if said is None and status is not None and status.state == "COMPLETE":
            return "complete", "the campaign recorded COMPLETE"
        if child.tap.complete and sig is None and said in (None, "COMPLETE"):
            plans = " ".join(f"1..{seg.plan}" for seg in child.tap.segments)
            return "complete", f"its TAP plan {plans} was fulfilled"
        ours = status is not None and status.at_ms == self.status_ms and status.state == "RUNNING"
        if said in ("TERMINATED", "INTERRUPTED"):
            return "stopped", f"the campaign reported {said}"
        stopped = status is not None and status.state in ("TERMINATED", "INTERRUPTED")
        if said is None and stopped and not ours:
            assert status is not None
            return "stopped", f"the campaign recorded {status.state} ({status.message})"
        reported = said is not None or self._hb_theirs(child) or not ours or child.tap.tap
        if code == 0 and not reported:
            return "complete", "it exited 0 and reports nothing else"
        if code == 0:
            return "crash", "it exited 0 without recording COMPLETE"
        return "crash", how_it_ended(code, sig)

    def _progressed(self, child: Child) -> bool:
        results = self.sd.file(statedir.RESULTS)
        if _size(results) > child.results_size:
            return True
        cp = _checkpoint(self.sd)
        if cp is not None and cp.tested is not None and cp.tested > (child.tested or 0):
            return True
        return child.tap.results > 0

    def _attempt_ended(self, child: Child) -> None:
        self._read_reported(child)
        self._end_leftovers(f"attempt {child.attempt} ended")
        self._follow_output()
        self._record_results(child, child.tap.take(final=True))
        for name in ("follow", "watchdog", "adopted_poll"):
            self.timers.pop(name, None)
        code, sig = describe_wait(child.status)
        outcome, why = self._classify(child)
        progressed = self._progressed(child)
        now = time.monotonic()
        event = policy.Ended(outcome, child.started, progressed)
        action = policy.next_action(self.history, event, now, self.limits)
        self.history = self.history.with_ended(event, now)
        item = self._item_in_flight(child)
        if outcome == "complete":
            item = None  # nothing was in flight: the last heartbeat names the last item done
        uptime = round(now - child.started, 3)
        ended_ms = now_ms()
        self.writer.jsonl(
            statedir.RESTARTS,
            {
                "attempt": child.attempt,
                "started_ms": child.started_ms,
                "ended_ms": ended_ms,
                "exit_code": code,
                "signal": sig,
                "reason": outcome,
                "uptime": uptime,
                "next_delay": action.after if isinstance(action, policy.Restart) else None,
                "item": item,
                "progressed": progressed,
                "pid": child.pid,
                **stamp(ended_ms),
            },
            fsync=True,
        )
        self.child = None
        ended = how_it_ended(code, sig)
        where = f" during item {item}" if item else ""
        self._say(
            "INFO",
            f"attempt {child.attempt} (pid {child.pid}) {ended} after "
            f"{clock.human_duration(uptime)}{where}: {outcome} ({why})",
        )
        if outcome in policy.CRASHES:
            self._check_poison(child)
        if outcome == "complete":
            self._completed(why, child)
        elif outcome == "stopped":
            self._stopped(child, why)
        elif isinstance(action, policy.Restart):
            if outcome in policy.CRASHES:
                self._crashed(child, code, sig, why, item)
            self._schedule_restart(action, outcome)
        elif isinstance(action, policy.GiveUp):
            self._crashed(child, code, sig, why, item)
            self._give_up(action)

    def _completed(self, why: str, child: Child | None = None) -> None:
        if child is not None and child.tap.tap and not child.hb_written:
            self._tap_checkpoint(child, final=True)
            self._beat(child, status="COMPLETE")
        status = _status(self.sd)
        if status is None or status.state != "COMPLETE":
            self.writer.status("COMPLETE", f"the command finished: {why}")
        self._record("complete")
        self.final = "complete"
        self.exit_code = EXIT_COMPLETE
        self._say("INFO", "campaign complete")

    def _stopped(self, child: Child, why: str) -> None:
        item = self._item_in_flight(child)
        if child.ended_by is None:
            # The campaign recorded its own TERMINATED / INTERRUPTED: keep its words.
            self._say("INFO", f"not restarting: {why}")
            status = _status(self.sd)
            if child.reported and (status is None or status.state != child.reported):
                # it said so through the pipe only: its status.json could not be written
                self.writer.status(child.reported, f"the campaign reported {child.reported}")
        else:
            state, message = {
                "interrupt": ("INTERRUPTED", "interrupted (Ctrl-C): stopped on request"),
                "sigterm": ("TERMINATED", "the supervisor received SIGTERM: stopped on request"),
                "hup": ("TERMINATED", "the terminal closed (SIGHUP): stopped on request"),
            }.get(child.ended_by, ("TERMINATED", "stopped on request (campaign-tui stop)"))
            self.writer.status(state, message + (f" during item {item}" if item else ""))
        self._finish_stopped(child.ended_by)

    def _finish_stopped(self, kind: str | None) -> None:
        self._record("stopped")
        self.final = "stopped"
        self.exit_code = EXIT_INTERRUPTED if kind == "interrupt" else EXIT_STOPPED
        self._alert("campaign stopped" + (" (interrupted)" if kind == "interrupt" else ""), "info")

    def _crashed(
        self, child: Child, code: int | None, sig: str | None, why: str, item: str | None
    ) -> None:
        tail = self._output_tail(child)
        status = _status(self.sd)
        where = f" during item {item}" if item else ""
        what = "hung and was killed" if child.ended_by == "hang" else why
        message = f"attempt {child.attempt} {what}{where}"
        extra: dict[str, Any] = {
            "exit_code": code,
            "signal": sig,
            "attempt": child.attempt,
            "output_tail": tail,
        }
        if status is not None and status.state == "CRASHED" and status.at_ms != self.status_ms:
            # The campaign wrote its own crash (with its traceback): keep it, add ours.
            message = f"{status.message} ({how_it_ended(code, sig)})"
            extra["traceback"] = status.traceback
        else:
            extra["traceback"] = tail or None
        self.writer.status("CRASHED", message, **extra)
        lines = f"\nlast {TAIL_LINES} lines of output:\n{tail}" if tail else "\n(no output)"
        ended = how_it_ended(code, sig)
        suffix = "" if ended in message else f" ({ended})"
        self.writer.log(statedir.ERRORS_LOG, "ERROR", f"{message}{suffix}{lines}")

    def _schedule_restart(self, action: policy.Restart, outcome: str) -> None:
        if action.restart:
            self.restarts = action.restart
            self.total_restarts += 1
        else:
            self.restarts = 0
        if action.after <= 0:
            self._on_restart()
            return
        self.next_restart_ms = now_ms() + int(action.after * 1000)
        self.timers["restart"] = time.monotonic() + action.after
        self._record("backoff")
        self._alert(
            f"attempt {self.attempt} {'hung' if outcome == 'hang' else 'crashed'}: restart "
            f"{action.restart} of {self.limits.max_restarts} in {action.after:g}s",
            "warning",
        )

    def _give_up(self, action: policy.GiveUp) -> None:
        self._record("gave_up")
        self.final = "gave_up"
        self.exit_code = EXIT_GAVE_UP
        self._alert(
            f"gave up after {action.restarts} restarts: manual intervention required "
            "(`campaign-tui logs errors`, then `campaign-tui start` resumes)",
            "critical",
        )

    def _on_restart(self) -> None:
        self.timers.pop("restart", None)
        failure = self._start_attempt()
        if failure is not None:
            self._cannot_execute(failure)
            return
        for waiter in [w for w in self.waiters if w.verb == "restart"]:
            self._answer(waiter, f"done attempt {self.attempt}")
            self.waiters.remove(waiter)

    def _cannot_execute(self, failure: str) -> None:
        self.writer.status("CRASHED", failure, exit_code=EXIT_NOEXEC)
        self.writer.log(statedir.ERRORS_LOG, "ERROR", failure)
        self._record("gave_up")
        self.final = "gave_up"
        self.exit_code = EXIT_NOEXEC
        self._alert(f"{failure}: not retried; manual intervention required", "critical")
        self._tell(f"err {EXIT_NOEXEC} {failure}")
        if self.foreground:
            with contextlib.suppress(OSError, ValueError):
                print(f"campaign-tui: {failure}", file=sys.stderr, flush=True)

    def _output_tail(self, child: Child) -> str:
        path = self.sd.file(statedir.OUTPUT_LOG)
        size = _size(path)
        start = child.output_start if size >= child.output_start else 0
        start = max(start, size - _TAIL_BYTES)
        data = _read_from(path, start, _TAIL_BYTES)
        lines = data.decode("utf-8", "replace").splitlines()
        if start > child.output_start and lines:
            lines = lines[1:]  # the first one is cut
        return "\n".join(lines[-TAIL_LINES:])

    # ================================================================ stop and restart

    def request_stop(self, kind: str) -> None:
        """Intentional stop (kind: stop / interrupt / sigterm / hup); returns when the tree is gone."""
        if self.final is not None:
            return
        if self.child is None:  # waiting out a backoff
            self.timers.pop("restart", None)
            self._end_leftovers("stopping")
            state = "INTERRUPTED" if kind == "interrupt" else "TERMINATED"
            self.writer.status(state, "stopped on request while waiting to restart")
            self._say("INFO", "stopped while waiting to restart")
            self._finish_stopped(kind)
            return
        self._say("INFO", f"stopping attempt {self.child.attempt} (pid {self.child.pid}): {kind}")
        self.child.ended_by = kind
        self._end_tree(self.child)

    def request_restart(self) -> None:
        """Immediate restart, not counted against max_restarts."""
        if self.final is not None:
            return
        if self.child is None:
            self._say("INFO", "restart requested while waiting: restarting now")
            self.restarts = 0
            self.history = policy.History()
            self._on_restart()
            return
        self._say("INFO", f"restart requested: stopping attempt {self.child.attempt}")
        self.child.ended_by = "manual"
        self._end_tree(self.child)

    def _tree(self, child: Child) -> list[psutil.Process]:
        procs = proctree.descendants(self.pid, exclude=self.hooks)
        if child.popen is None:  # adopted: not our descendants (none if its pid was reused)
            procs += proctree.tree_of(child.pid, child.start)
        return list({p.pid: p for p in procs}.values())

    def _leftovers(self) -> list[psutil.Process]:
        """Processes of this run that outlived their attempt: our descendants (we are a
        subreaper, so setsid'd daemons included) and any carrying the run's marker."""
        procs = proctree.descendants(self.pid, exclude=self.hooks)
        procs += proctree.marked(self.run_id, exclude=self.hooks)
        return list({p.pid: p for p in procs}.values())

    def _end_leftovers(self, when: str) -> None:
        """End what no attempt owns any more (a daemon forked by a command that exited),
        the way a stop ends a tree: SIGTERM, ``stop_timeout``, SIGKILL."""
        left = self._leftovers()
        if not left:
            return
        pids = ", ".join(str(p.pid) for p in left[:10])
        self._say("WARNING", f"{when}: ending {len(left)} process(es) it left running ({pids})")
        killed = proctree.terminate(
            self._leftovers, None, self.settings.stop_timeout, self._wait_a_little
        )
        self._say_killed(killed)
        self._reap()

    def _say_killed(self, killed: int) -> None:
        if killed:
            self._say(
                "WARNING",
                f"{killed} process(es) ignored SIGTERM for "
                f"{self.settings.stop_timeout:g}s and were killed",
            )

    def _end_tree(self, child: Child) -> None:
        """Record the intent durably, SIGTERM the group, wait, SIGKILL, sweep."""
        self._record("stopping", fsync=True)
        if child.popen is not None:
            # our child: its pid (the group's id) is not reused before we reap it
            leader = proctree.Leader(child.pid, lambda: child.status is None)
        else:
            leader = proctree.Leader(
                child.pid, lambda: _alive(child.pid, child.start), pidfd=child.pidfd
            )
        killed = proctree.terminate(
            lambda: self._tree(child),
            leader,
            self.settings.stop_timeout,
            self._wait_a_little,
        )
        left = proctree.marked(self.run_id, exclude=self.hooks)
        if left:
            proctree.signal_all(left, signal.SIGKILL)
            killed += len(left)
        self._say_killed(killed)
        self._reap()
        if child.popen is not None and child.status is None:
            # reaped by nobody yet: it must be gone now
            with contextlib.suppress(ChildProcessError):
                _pid, status = os.waitpid(child.pid, 0)
                child.status = status
        if child.popen is None:
            child.gone = True

    def _wait_a_little(self, seconds: float) -> None:
        with contextlib.suppress(InterruptedError):
            _select_one(self._wake_r, seconds)
        self._drain_wakeup(None)
        self._reap()

    def _handle_signals(self) -> None:
        while self._signals:
            signum = self._signals.pop(0)
            if signum == signal.SIGCHLD:
                continue
            if signum == signal.SIGHUP and not self.foreground:
                self._say("INFO", "SIGHUP ignored (a detached supervisor has no terminal)")
                continue
            kinds = {int(signal.SIGINT): "interrupt", int(signal.SIGTERM): "sigterm"}
            kind = kinds.get(signum, "hup")
            self.request_stop(kind)

    # ================================================================ control socket

    def _listen(self) -> None:
        path = self.sd.file(CONTROL_SOCKET)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        address, dir_fd = socket_address(path)
        old = os.umask(0o177)
        try:
            sock.bind(address)
        except OSError as exc:
            sock.close()
            self._say(
                "WARNING",
                f"no control socket ({exc.strerror}): stop with SIGTERM to pid {self.pid}",
            )
            return
        finally:
            os.umask(old)
            if dir_fd is not None:
                os.close(dir_fd)
        # 0600 from the umask at bind: no chmod by name afterwards (it would follow a link)
        sock.listen(16)
        sock.setblocking(False)
        self._listener = sock
        self._sel.register(sock, selectors.EVENT_READ, self._accept)

    def _accept(self, sock: Any) -> None:
        try:
            conn, _ = sock.accept()
        except (BlockingIOError, InterruptedError):
            return
        creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        _pid, uid, _gid = struct.unpack("3i", creds)
        if uid not in (os.geteuid(), 0):
            self._say("WARNING", f"control connection from uid {uid} refused")
            conn.close()
            return
        conn.setblocking(False)
        self.conns[conn.fileno()] = _Conn(conn)
        self._sel.register(conn, selectors.EVENT_READ, self._on_request)

    def _drop(self, conn: socket.socket) -> None:
        self.conns.pop(conn.fileno(), None)
        with contextlib.suppress(KeyError, ValueError):
            self._sel.unregister(conn)

    def _on_request(self, conn: Any) -> None:
        state = self.conns.get(conn.fileno())
        try:
            data = conn.recv(256)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if state is None or not data:
            self._drop(conn)
            conn.close()
            return
        state.buffer += data
        if b"\n" not in state.buffer and len(state.buffer) < 64:
            return
        self._drop(conn)
        verb = state.buffer.split(b"\n", 1)[0].decode("ascii", "replace").strip()
        conn.setblocking(True)
        conn.settimeout(2.0)
        if verb == "ping":
            self._answer(Waiter(conn, verb), json.dumps(self._ping()))
            return
        if verb not in VERBS:
            self._answer(Waiter(conn, verb), "error unknown verb (stop, restart, ping)")
            return
        waiter = Waiter(conn, verb)
        self._send(waiter, "accepted")
        self.waiters.append(waiter)
        if verb == "stop":
            self.request_stop("stop")
        else:
            self.request_restart()

    def _ping(self) -> dict[str, object]:
        child = self.child
        return {
            "pid": self.pid,
            "state": self.state,
            "attempt": self.attempt,
            "child_pid": child.pid if child else None,
        }

    def _send(self, waiter: Waiter, line: str) -> None:
        with contextlib.suppress(OSError):
            waiter.conn.sendall(line.encode() + b"\n")

    def _answer(self, waiter: Waiter, line: str) -> None:
        self._send(waiter, line)
        with contextlib.suppress(OSError):
            waiter.conn.close()

    # ================================================================ watchdog

    def _life_age(self, child: Child) -> float | None:
        """Seconds since the attempt's last sign of life: its heartbeat, else its output."""
        hb = _heartbeat(self.sd)
        if hb is not None and hb.at_ms is not None and hb.at_ms >= child.started_ms - 1000:
            self._hb_theirs(child)  # notices a heartbeat of the command's own
            return freshness(hb, clock.now()).age
        marks = [child.started_ms]
        mtime = statedir.mtime_ms(self.sd.file(statedir.OUTPUT_LOG))
        if mtime is not None:
            marks.append(mtime)
        return max(0.0, (now_ms() - max(marks)) / 1000)

    def _on_watchdog(self) -> None:
        child = self.child
        if child is None or child.ended:
            return
        limit = self.settings.stale_after
        age = self._life_age(child)
        if age is None or age <= limit:
            self.stale_alerted = False
            wait = limit - (age or 0.0)
            self.timers["watchdog"] = time.monotonic() + max(wait, 0.05) + 0.02
            return
        self.timers["watchdog"] = time.monotonic() + max(0.05, min(limit / 2, 10.0))
        if self.stale_alerted:
            return
        self.stale_alerted = True
        hb = _heartbeat(self.sd)
        item = f" (item {hb.item})" if hb is not None and hb.item else ""
        self._alert(
            f"campaign stale: no sign of life for {clock.human_duration(age)} "
            f"(limit {clock.human_duration(limit)}){item}",
            "warning",
        )
        if self.settings.restart_on_stale:
            self._diagnose(child, age)
            child.ended_by = "hang"
            self._end_tree(child)

    def _diagnose(self, child: Child, age: float) -> None:
        """Capture what the hung campaign is doing into errors.log, each step bounded."""
        procs = self._tree(child)
        parts = [
            f"hang diagnosis of attempt {child.attempt} (pid {child.pid}), "
            f"no sign of life for {clock.human_duration(age)}",
            "process tree:",
            proctree.describe_tree(procs),
        ]
        parts += proctree.py_spy_dumps(procs)
        hb = _heartbeat(self.sd)
        diag = hb.diag_signal.upper() if hb is not None and hb.diag_signal else None
        declared = (
            hb is not None
            and hb.pid is not None
            and diag in ("SIGUSR1", "SIGUSR2")
            and any(p.pid == hb.pid for p in procs)
            and _alive(hb.pid, hb.pid_start)
        )
        if not declared:
            parts.append("no diagnostic signal declared by the campaign: none sent")
            self.writer.log(statedir.ERRORS_LOG, "ERROR", "\n".join(parts))
        else:
            assert hb is not None and hb.pid is not None and diag is not None
            parts.append(
                f"sending {diag} to pid {hb.pid} (its declared diagnostic signal): "
                "its own stacks follow in this log"
            )
            self.writer.log(statedir.ERRORS_LOG, "ERROR", "\n".join(parts))
            errors = self.sd.file(statedir.ERRORS_LOG)
            before = _size(errors)
            try:
                os.kill(hb.pid, getattr(signal, diag))
            except OSError as exc:
                self.writer.log(statedir.ERRORS_LOG, "ERROR", f"{diag} not sent: {exc.strerror}")
            else:
                # until the stacks arrive (and a moment more for the rest), at most DIAG_WAIT
                deadline = time.monotonic() + DIAG_WAIT
                while _size(errors) == before and time.monotonic() < deadline:
                    self._wait_a_little(0.05)
                self._wait_a_little(0.1)
        self._say("INFO", "hang diagnosis written to errors.log")

    # ================================================================ output follower

    def _on_follow(self) -> None:
        if self.child is None or self.child.ended:
            return
        self._follow_output()
        self._rotate_if_needed()
        if self.child is not None and not self.child.hb_written:
            self._life_age(self.child)  # notices a heartbeat file for the classification
        self.timers["follow"] = time.monotonic() + FOLLOW_INTERVAL

    def _follow_output(self) -> None:
        """Read what the command printed since last time: activity, the last line, TAP."""
        child = self.child
        if child is None:
            return
        path = self.sd.file(statedir.OUTPUT_LOG)
        size = _size(path)
        if size < self._output_offset:
            self._output_offset, self._output_partial = 0, b""
        data = b""
        if size > self._output_offset:
            data = _read_from(path, self._output_offset, _FOLLOW_CHUNK)
        self._output_offset += len(data)
        lines = (self._output_partial + data).split(b"\n")
        self._output_partial = lines.pop()[-4096:]
        for raw in lines:
            text = raw.decode("utf-8", "replace")
            line = child.tap.feed(text)
            shown = sanitize(text, limit=_LINE_LIMIT).strip()
            if shown:
                child.last_line = shown
            if isinstance(line, Result):
                child.after_result = None
            elif isinstance(line, Other) and shown:
                child.after_result = shown
        self._record_results(child, child.tap.take(idle=not data))
        if data:
            self._beat(child)

    # ================================================================ on the command's behalf

    def _load_journal(self, child: Child, cp: Checkpoint | None) -> None:
        child.before = read_journal(self.sd)
        child.journal = dict(child.before)
        child.total_before = cp.total if cp else None

    def _hb_theirs(self, child: Child) -> bool:
        """Has the command written a heartbeat of its own during this attempt?

        Ours are known by the (inode, mtime) of our last write; another writer
        during this attempt is the command, unless its document says it is the
        supervisor's for this very child (an adopting supervisor's).
        """
        if child.hb_written:
            return True
        try:
            st = os.stat(self.sd.file(statedir.HEARTBEAT), follow_symlinks=False)
        except OSError:
            return False
        if self._hb_mark == (st.st_ino, st.st_mtime_ns):
            return False  # the one we wrote last
        if st.st_mtime_ns < (child.started_ms - _MTIME_SLACK_MS) * 1_000_000:
            return False  # left by an earlier attempt
        hb = _heartbeat(self.sd)
        if hb is not None and hb.source == "supervisor" and hb.pid == child.pid:
            return False
        child.hb_written = True
        self._say(
            "INFO",
            f"attempt {child.attempt} writes its own heartbeat: the supervisor stops writing one",
        )
        return True

    def _shown_item(self, child: Child) -> str | None:
        if child.tap.tap:
            if child.tap.announced:
                return child.tap.announced
            if child.after_result:
                return child.after_result
            return f"after {child.tap.last_item}" if child.tap.last_item else None
        return child.last_line

    def _beat(self, child: Child, status: str = "RUNNING") -> None:
        """A heartbeat on behalf of a command that writes none (each output line is one)."""
        if self._hb_theirs(child):
            return
        tested = len(child.journal) if child.tap.tap else None
        total = (child.tap.total or child.total_before) if child.tap.tap else None
        doc = heartbeat_doc(
            item=self._shown_item(child),
            tested=tested,
            total=total,
            status=status,
            pid=child.pid,
            pid_start=child.start,
            attempt=child.attempt,
            stale_after=self.settings.stale_after,
            source="supervisor",
        )
        path = self.sd.file(statedir.HEARTBEAT)
        if self.writer.json(statedir.HEARTBEAT, doc):
            with contextlib.suppress(OSError):
                st = os.stat(path, follow_symlinks=False)
                self._hb_mark = (st.st_ino, st.st_mtime_ns)

    def _item_in_flight(self, child: Child) -> str | None:
        """The item the attempt was working on, if one is known.

        From the command's own heartbeat (unless that item already has its result
        from this attempt), or from a TAP ``# Subtest: NAME`` announcement.
        """
        if not self._hb_theirs(child):
            return child.tap.announced
        hb = _heartbeat(self.sd)
        if hb is None or not hb.item or hb.at_ms is None or hb.at_ms < child.started_ms - 1000:
            return None
        if hb.item in self._finished_in(child):
            return None
        return hb.item

    def _finished_in(self, child: Child) -> set[str]:
        """Items that got a result line during this attempt."""
        data = _read_from(self.sd.file(statedir.RESULTS), child.results_size, 64 << 20)
        found = set()
        for doc in statedir.iter_jsonl(data):
            if isinstance(doc, dict) and isinstance(doc.get("item"), str):
                found.add(sanitize(doc["item"]))
        return found

    def _record_results(self, child: Child, finished: list[Finished]) -> None:
        """TAP results → results.jsonl, progress.log, the checkpoint, the failure-rate alert."""
        if child.tap.bailed and not child.bail_alerted:
            child.bail_alerted = True
            self._alert(f"the campaign's TAP output bailed out: {child.tap.bailed}", "critical")
        if not finished or child.hb_written:
            return
        total = child.tap.total or child.total_before
        for done in finished:
            if done.item in child.poison:
                continue  # it stays the error the supervisor recorded
            if done.outcome == "skipped" and done.item in child.before:
                continue  # a resuming producer skips what an earlier attempt finished
            child.journal[done.item] = done.outcome
            self.writer.jsonl(
                statedir.RESULTS,
                {
                    "item": done.item,
                    "outcome": done.outcome,
                    "duration": round(done.duration, 6) if done.duration is not None else None,
                    "message": done.message,
                    "attempt": child.attempt,
                    "source": "tap",
                    **stamp(),
                },
            )
            suffix = f": {done.message}" if done.message else ""
            self.writer.log(
                statedir.PROGRESS_LOG,
                "INFO" if done.outcome in ("passed", "skipped") else "WARNING",
                f"[{len(child.journal)}/{total if total is not None else '?'}] "
                f"{done.item} {done.outcome}{suffix}",
            )
            self._failure_rate(child)
        self._tap_checkpoint(child)

    def _tap_checkpoint(self, child: Child, final: bool = False) -> None:
        counts = {o: 0 for o in ("passed", "failed", "error", "skipped")}
        for outcome in child.journal.values():
            counts[outcome] = counts.get(outcome, 0) + 1
        self.writer.json(
            statedir.CHECKPOINT,
            {
                **stamp(),
                "tested": len(child.journal),
                "total": child.tap.total or child.total_before,
                "passed": counts["passed"],
                "failed": counts["failed"],
                "errors": counts["error"],
                "skipped": counts["skipped"],
                "last_item": None if final else child.tap.last_item,
                "can_resume": True,
            },
        )

    def _failure_rate(self, child: Child) -> None:
        tested = len(child.journal)
        if tested < FAILURE_RATE_MIN_ITEMS:
            return
        bad = sum(1 for o in child.journal.values() if o in ("failed", "error"))
        rate = bad / tested
        if rate >= FAILURE_RATE_THRESHOLD and not self.rate_alerted:
            self.rate_alerted = True
            self._alert(
                f"high failure rate: {rate:.0%} of {tested} items failed or errored "
                f"(threshold {FAILURE_RATE_THRESHOLD:.0%})",
                "warning",
            )
        elif rate < FAILURE_RATE_THRESHOLD:
            self.rate_alerted = False

    def _check_poison(self, child: Child) -> None:
        """Two crashes (or hangs) in a row on one item: record it, alert, skip it from now on."""
        records = read_restarts(self.sd.file(statedir.RESTARTS))
        item = policy.poison_item([(r.reason, r.item) for r in records])
        if item is None:
            return
        attempts = " and ".join(str(r.attempt) for r in records[-2:])
        if item in read_poison(self.sd):
            self._alert(
                f"poison item {item} crashed the campaign again (attempt {child.attempt}): "
                f"the command does not honour {SKIP_ITEMS_VAR} or results.jsonl",
                "critical",
            )
            return
        message = f"{POISON_MESSAGE} (attempts {attempts})"
        self.writer.jsonl(
            statedir.RESULTS,
            {
                "item": item,
                "outcome": "error",
                "duration": None,
                "message": message,
                "attempt": child.attempt,
                "poison": True,
                "source": "supervisor",
                **stamp(),
            },
            fsync=True,
        )
        self.writer.log(statedir.ERRORS_LOG, "ERROR", f"poison item {item}: {message}")
        self.writer.log(statedir.PROGRESS_LOG, "WARNING", f"{item} error: {message}")
        self._alert(
            f"poison item {item}: it {message}; the next attempts skip it",
            "critical",
        )

    # ================================================================ fleet monitoring

    def _write_textfile(self) -> None:
        """campaign_<name>.prom in --textfile-dir, atomically; a failure is said once."""
        directory = Path(self.settings.textfile_dir)
        try:
            text = metrics.render([metrics.read_campaign(self.sd)])
            metrics.write_textfile(directory, self.sd.name, text)
        except OSError as exc:
            if not self._textfile_failing:
                self._textfile_failing = True
                self._say(
                    "WARNING",
                    f"cannot write {metrics.textfile_name(self.sd.name)} in {directory}: "
                    f"{exc.strerror or exc}; the campaign goes on",
                )
            return
        if self._textfile_failing:
            self._textfile_failing = False
            self._say("INFO", f"metrics are written to {directory} again")
        self._textfile_at = time.monotonic()

    def _on_textfile(self) -> None:
        sig = tuple(
            _mtime_ns(self.sd.file(name))
            for name in (
                statedir.HEARTBEAT,
                statedir.CHECKPOINT,
                statedir.STATUS,
                statedir.SUPERVISOR,
                statedir.RESTARTS,
            )
        )
        if sig != self._textfile_sig or time.monotonic() - self._textfile_at >= TEXTFILE_REFRESH:
            self._textfile_sig = sig
            self._write_textfile()
        self.timers["textfile"] = time.monotonic() + TEXTFILE_INTERVAL

    # ================================================================ systemd

    def _sd_ready(self) -> None:
        if self.notifier is None:
            return
        self.notifier.send(READY=1, MAINPID=self.pid, STATUS=f"attempt {self.attempt} running")
        if sdnotify.watchdog_interval(os.environ, self.pid) is not None:
            self._on_sd_watchdog()

    def _on_sd_watchdog(self) -> None:
        interval = sdnotify.watchdog_interval(os.environ, self.pid)
        if self.notifier is None or interval is None:
            return
        self.notifier.send(WATCHDOG=1)
        self.timers["sd_watchdog"] = time.monotonic() + interval

    def _rotate_if_needed(self) -> None:
        """Copy-and-truncate output.log past its size bound (the command's O_APPEND fd follows)."""
        limit = self.settings.output_max_bytes
        path = self.sd.file(statedir.OUTPUT_LOG)
        if limit <= 0 or _size(path) <= limit:
            return
        try:
            _rotate(path, self.settings.output_files)
        except OSError as exc:
            self._say("WARNING", f"cannot rotate {path.name}: {exc.strerror or exc}")
            return
        self._output_offset, self._output_partial = 0, b""
        if self.child is not None:
            self.child.output_start = 0

    # ================================================================ alert hooks

    def _run_hook(self, alert: dict[str, object]) -> None:
        command = list(self.settings.on_alert)
        try:
            log_fd = statedir.open_append(self.sd.file(statedir.WRAPPER_LOG))
        except OSError:
            log_fd = subprocess.DEVNULL
        try:
            popen = subprocess.Popen(
                command,
                stdin=subprocess.PIPE,
                stdout=log_fd,
                stderr=log_fd,
                cwd=self.settings.cwd or None,
                start_new_session=True,
                env={
                    **os.environ,
                    "CAMPAIGN_STATE_DIR": str(self.sd.path),
                    "CAMPAIGN_NAME": self.sd.name,
                },
            )
        except OSError as exc:
            self.writer.log(
                statedir.WRAPPER_LOG,
                "WARNING",
                f"on_alert hook {command[0]!r} cannot run: {exc.strerror}",
            )
            return
        finally:
            if log_fd != subprocess.DEVNULL:
                os.close(log_fd)
        self.hooks[popen.pid] = Hook(popen, time.monotonic() + HOOK_TIMEOUT)
        assert popen.stdin is not None
        with contextlib.suppress(OSError):
            popen.stdin.write(json.dumps(alert).encode() + b"\n")
        with contextlib.suppress(OSError):
            popen.stdin.close()
        self.timers["hooks"] = min(h.deadline for h in self.hooks.values())

    def _hook_failed(self, code: int) -> None:
        ended = (
            f"killed by {signal.Signals(-code).name}" if code < 0 else f"exited with code {code}"
        )
        self.writer.log(statedir.WRAPPER_LOG, "WARNING", f"on_alert hook {ended}")

    def _on_hooks(self) -> None:
        now = time.monotonic()
        for pid, hook in list(self.hooks.items()):
            if hook.deadline <= now and hook.popen.returncode is None:
                with contextlib.suppress(OSError):
                    os.killpg(pid, signal.SIGKILL)
                self.writer.log(
                    statedir.WRAPPER_LOG,
                    "WARNING",
                    f"on_alert hook pid {pid} timed out after {HOOK_TIMEOUT:g}s: killed",
                )
        self._reap()
        live = [h.deadline for h in self.hooks.values() if h.deadline > now]
        if live:
            self.timers["hooks"] = min(live)


# ==================================================================== helpers


def _select_one(fd: int, timeout: float) -> None:
    sel = selectors.DefaultSelector()
    try:
        sel.register(fd, selectors.EVENT_READ)
        sel.select(timeout)
    finally:
        sel.close()


def remove_stale_temp_files(directory: Path, older_than: float) -> int:
    """Unlink the atomic-write temp files in ``directory`` last modified before ``older_than``.

    Only regular files named like :func:`campaign_tui.statedir.write_json`'s temp
    files; a younger one may belong to a writer at work right now. Returns how
    many were removed; never raises.
    """
    removed = 0
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return 0
    for entry in entries:
        if not _TEMP_NAME.fullmatch(entry.name):
            continue
        try:
            st = entry.stat(follow_symlinks=False)
            if not stat.S_ISREG(st.st_mode) or st.st_mtime >= older_than:
                continue
            os.unlink(entry.path)
        except OSError:
            continue
        removed += 1
    return removed


def _mtime_ns(path: Path) -> int:
    try:
        return os.stat(path, follow_symlinks=False).st_mtime_ns
    except OSError:
        return 0


def _size(path: Path) -> int:
    """The size of a regular file at ``path``; 0 for anything else (a link is not followed)."""
    try:
        st = os.stat(path, follow_symlinks=False)
    except OSError:
        return 0
    return st.st_size if stat.S_ISREG(st.st_mode) else 0


def _read_from(path: Path, offset: int, limit: int) -> bytes:
    """At most ``limit`` bytes of a state file from ``offset``, opened the way statedir
    opens every state file (no link followed, never blocked on a FIFO); b"" if unreadable."""

    def part(fd: int, st: os.stat_result) -> bytes:
        return os.pread(fd, limit, offset) if st.st_size > offset else b""

    data = statedir._read_safely(path, part)
    return data if isinstance(data, bytes) else b""


def _rotate(path: Path, keep: int) -> None:
    """Copy output.log to output.log.1 (older ones shift up to ``keep - 1``), then truncate it.

    output.log is opened once, without following a link or blocking on a FIFO, and
    must be a regular file; the copy goes to an unpredictable temp name created
    O_EXCL|O_NOFOLLOW and is renamed over output.log.1 (``os.replace`` replaces a
    link there rather than writing through it); the truncation is an ``ftruncate``
    of the same descriptor. A link planted at any of these names is never written
    through. Raises OSError.
    """
    flags = os.O_RDWR | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    fd = os.open(path, flags)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, f"{path.name} is not a regular file")
        for n in range(keep - 1, 1, -1):
            older = path.with_name(f"{path.name}.{n - 1}")
            with contextlib.suppress(FileNotFoundError):
                os.replace(older, path.with_name(f"{path.name}.{n}"))
        if keep > 1:
            tmp = path.with_name(f".{path.name}.1.{secrets.token_hex(6)}.tmp")
            excl = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
            out = os.open(tmp, excl, 0o600)
            try:
                try:
                    offset = 0
                    while chunk := os.pread(fd, 1 << 20, offset):
                        offset += len(chunk)
                        view = memoryview(chunk)
                        while view:
                            view = view[os.write(out, view) :]
                finally:
                    os.close(out)
                os.replace(tmp, path.with_name(f"{path.name}.1"))
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
        os.ftruncate(fd, 0)
    finally:
        os.close(fd)


def _alive(pid: int, start: float | None) -> bool:
    from campaign_tui.procs import alive

    return alive(pid, start)


def _status(sd: StateDir) -> StatusDoc | None:
    doc = statedir.read_json(sd.file(statedir.STATUS))
    parsed = StatusDoc.parse(doc) if doc is not None else None
    return parsed if isinstance(parsed, StatusDoc) else None


def _heartbeat(sd: StateDir) -> Heartbeat | None:
    doc = statedir.read_json(sd.file(statedir.HEARTBEAT))
    parsed = Heartbeat.parse(doc) if doc is not None else None
    return parsed if isinstance(parsed, Heartbeat) else None


def _checkpoint(sd: StateDir) -> Checkpoint | None:
    doc = statedir.read_json(sd.file(statedir.CHECKPOINT))
    parsed = Checkpoint.parse(doc) if doc is not None else None
    return parsed if isinstance(parsed, Checkpoint) else None


def _exec_failure(settings: Settings, exc: OSError) -> str:
    program = sanitize(settings.command[0]) if settings.command else "?"
    if exc.filename and settings.cwd and os.fspath(exc.filename) == settings.cwd:
        where = sanitize(settings.cwd)
        return f"cannot execute {program!r}: working directory {where}: {exc.strerror}"
    reason = exc.strerror or str(exc)
    if exc.errno == errno.ENOENT:
        reason = "command not found" if "/" not in program else "no such file"
    elif exc.errno == errno.EACCES:
        reason = "permission denied (not executable?)"
    elif exc.errno == errno.ENOEXEC:
        reason = "not an executable format (a script without a #! line?)"
    return f"cannot execute {program!r}: {reason}"


# ==================================================================== the daemon's entry


def daemon_main(spec_text: str) -> int:
    """Entry of a detached supervisor exec'd by :func:`campaign_tui.control._daemonize`.

    The spec names the state directory, the settings record, the held lock's and
    the readiness pipe's descriptors (both made close-on-exec again at once, so
    the campaign inherits neither), and what to adopt or resume.
    """
    from campaign_tui.config import from_record

    spec = json.loads(spec_text)
    lock_fd, notify_fd = int(spec["lock_fd"]), int(spec["notify_fd"])
    os.set_inheritable(lock_fd, False)
    os.set_inheritable(notify_fd, False)

    def notify(message: str) -> None:
        with contextlib.suppress(OSError):
            os.write(notify_fd, message.encode() + b"\n")
        with contextlib.suppress(OSError):
            os.close(notify_fd)

    settings = from_record(spec["settings"])
    if settings is None:
        notify("err 70 the daemon got no usable settings")
        return 70
    adopt = Adopted(**spec["adopt"]) if spec.get("adopt") else None
    sup = Supervisor(
        StateDir(Path(spec["state_dir"])),
        settings,
        foreground=False,
        lock_fd=lock_fd,
        adopt=adopt,
        first_attempt=int(spec.get("first_attempt", 1)),
        resume=bool(spec.get("resume", False)),
        notify=notify,
    )
    try:
        return sup.run()
    except BaseException as exc:
        notify(f"err 70 internal error: {type(exc).__name__}: {exc}")
        raise


if __name__ == "__main__":  # pragma: no cover - exec'd by control._daemonize
    if len(sys.argv) == 3 and sys.argv[1] == "--daemon":
        sys.exit(daemon_main(sys.argv[2]))
    print(
        "campaign_tui.supervisor is started by `campaign-tui run --detach` / `start`",
        file=sys.stderr,
    )
    sys.exit(64)
