"""Run, start, stop and restart a campaign: what the CLI and the TUI call.

Single instance: a supervisor holds an exclusive ``flock`` on supervisor.lock
for its whole life, on a descriptor opened O_CLOEXEC (the campaign never
inherits it, so a campaign that outlives a SIGKILLed supervisor does not keep
the lock). ``start`` takes the lock *before* it forks the daemon, so of twenty
racing starts exactly one launches and the others refuse.

Control reaches only the owner's supervisor: a Unix socket (mode 0600) in the
0700 state directory, whose server checks the peer's uid (SO_PEERCRED), with
fixed verbs (``stop``, ``restart``, ``ping``). The command to run always comes
from the recorded settings, never from the control channel. When the socket
cannot be reached, ``stop`` falls back to SIGTERM to the supervisor's pid,
verified by its start time.

Every function returns a process exit code and prints its own lines; pass
``echo=`` to send those lines elsewhere (the TUI does). ``stop``, ``restart``
and ``start`` return within about ``stop_timeout`` + 1 s (plus a short sweep),
so the TUI may call them from a worker thread.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import math
import os
import pwd
import select
import shutil
import signal
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from campaign_tui import procs, statedir
from campaign_tui.controlsocket import CONTROL_SOCKET, socket_address
from campaign_tui.errors import EX_CANTCREAT, EX_NOINPUT, UsageError
from campaign_tui.sanitize import sanitize
from campaign_tui.statedir import StateDir, StateDirError

if TYPE_CHECKING:
    from campaign_tui.config import Settings

# `stop` and `restart` import only what they use; the supervisor, the settings and
# the API's modules are imported by the functions that need them (run, start and
# the unsupervised paths).

Echo = Callable[[str], None]
READY_TIMEOUT = 15.0
EXIT_RUNNING = 1
EXIT_NOEXEC = EX_NOINPUT  # as the supervisor's: the command cannot be executed


def _literal(text: str) -> str:
    """Each line of ``text`` as literal text: state files are untrusted (a recorded cwd,
    a command, a supervisor's message), so no escape sequence reaches the terminal."""
    return "\n".join(sanitize(line) for line in text.split("\n"))


def _print(line: str) -> None:
    print(_literal(line), flush=True)


def _eprint(line: str) -> None:
    print(_literal(line), file=sys.stderr, flush=True)


# ==================================================================== lock


def try_lock(sd: StateDir) -> int | None:
    """The locked descriptor of supervisor.lock, or None when another supervisor holds it."""
    try:
        fd = os.open(
            sd.file(statedir.LOCK),
            os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0),
            0o600,
        )
    except OSError as exc:
        why = (
            "is a symlink (refused)"
            if exc.errno == errno.ELOOP
            else f"cannot be opened: {exc.strerror}"
        )
        raise UsageError(f"{sd.file(statedir.LOCK)} {why}", EX_CANTCREAT) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


# ==================================================================== recorded state


def _raw_supervisor(sd: StateDir) -> dict[str, Any]:
    doc = statedir.read_json(sd.file(statedir.SUPERVISOR))
    return doc if isinstance(doc, dict) else {}


def _num(doc: dict[str, Any], key: str) -> float | None:
    """A finite number recorded under ``key``, or None (a hand-edited file may hold anything)."""
    value = doc.get(key)
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except OverflowError:  # an integer past any float (10**400)
        return None
    return number if math.isfinite(number) else None


def _verified_pid(doc: dict[str, Any], pid_key: str, start_key: str) -> int | None:
    """The recorded pid if that very process still runs. A pid recorded without
    its create time is never trusted: it may be anyone's by now (pid 1 included)."""
    pid, start = _num(doc, pid_key), _num(doc, start_key)
    if pid and start is not None and procs.alive(int(pid), start):
        return int(pid)
    return None


def _supervisor_alive(doc: dict[str, Any]) -> int | None:
    return _verified_pid(doc, "pid", "pid_start")


def _child_alive(doc: dict[str, Any]) -> int | None:
    return _verified_pid(doc, "child_pid", "child_start")


def recorded_settings(sd: StateDir) -> Settings | None:
    """The settings the last supervisor ran with (campaign.json, else supervisor.json)."""
    from campaign_tui import config

    for name in (statedir.CONFIG, statedir.SUPERVISOR):
        doc = statedir.read_json(sd.file(name))
        if isinstance(doc, dict):
            settings = config.from_record(doc.get("settings", doc))
            if settings is not None:
                return settings
    return None


# ==================================================================== checks


def check_executable(settings: Settings) -> str | None:
    """Why the command cannot be executed, or None (a quick check before forking)."""
    if not settings.command:
        return "missing command: campaign-tui run [options] -- CMD [ARGS...]"
    cwd = settings.cwd or os.getcwd()
    if not os.path.isdir(cwd):
        return f"cannot execute {settings.command[0]!r}: working directory {cwd} does not exist"
    program = settings.command[0]
    if "/" in program:
        path = Path(cwd, program)
        if not path.exists():
            return f"cannot execute {program!r}: no such file"
        if path.is_dir() or not os.access(path, os.X_OK):
            return f"cannot execute {program!r}: permission denied (not executable?)"
        return None
    if shutil.which(program) is None:
        return f"cannot execute {program!r}: command not found"
    return None


def logind_warning() -> str | None:
    """A warning when logind may kill this user's processes at logout (never raises)."""
    try:
        user = pwd.getpwuid(os.getuid()).pw_name
    except (KeyError, OSError):
        return None
    if Path("/var/lib/systemd/linger", user).exists():
        return None
    kill = None
    files = [Path("/etc/systemd/logind.conf")]
    with contextlib.suppress(OSError):
        files += sorted(Path("/etc/systemd/logind.conf.d").glob("*.conf"))
    for path in files:
        with contextlib.suppress(OSError, UnicodeDecodeError):
            for line in path.read_text().splitlines():
                line = line.strip()
                if line.startswith("KillUserProcesses="):
                    kill = line.split("=", 1)[1].strip().lower() in ("yes", "true", "1", "on")
    if kill is None:
        kill = _logind_property_kill()
    if not kill:
        return None
    return (
        "warning: logind kills your processes at logout here (KillUserProcesses=yes) and you "
        f"have no lingering: run `loginctl enable-linger {user}` or start under "
        "`systemd-run --user --scope campaign-tui run ...` so the campaign survives logout"
    )


def _logind_property_kill() -> bool | None:
    """logind's own KillUserProcesses (its compiled-in default may be yes), if it answers."""
    busctl = shutil.which("busctl")
    if busctl is None or not Path("/run/systemd/system").is_dir():
        return None
    import subprocess

    try:
        done = subprocess.run(
            [
                busctl,
                "get-property",
                "org.freedesktop.login1",
                "/org/freedesktop/login1",
                "org.freedesktop.login1.Manager",
                "KillUserProcesses",
            ],
            capture_output=True,
            text=True,
            timeout=2.0,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() == "b true" if done.returncode == 0 else None


# ==================================================================== daemon


def _daemonize(sd: StateDir, lock_fd: int, spec: dict[str, Any]) -> tuple[int, str]:
    """Launch a supervisor daemon in its own session; wait for its first word.

    Double fork, ``setsid``, stdio to /dev/null and wrapper.log, then ``exec`` of
    a fresh interpreter (``python -m campaign_tui.supervisor --daemon SPEC``), so
    a caller with threads (the TUI) never leaves a half-copied state behind.
    Only the held lock and the readiness pipe cross the exec. Returns
    (exit code, line): (0, pid) once the first attempt runs, or the daemon's
    error (66 and why when the command cannot be executed).
    """
    read_fd, write_fd = os.pipe2(os.O_CLOEXEC)
    spec = {**spec, "state_dir": str(sd.path), "lock_fd": lock_fd, "notify_fd": write_fd}
    argv = [sys.executable, "-m", "campaign_tui.supervisor", "--daemon", json.dumps(spec)]
    null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
    try:
        log = statedir.open_append(sd.file(statedir.WRAPPER_LOG))
    except OSError:
        log = os.dup(null)
    sys.stdout.flush()
    sys.stderr.flush()
    first = os.fork()
    if first == 0:  # pragma: no cover - runs in the daemon; nothing but syscalls until exec
        try:
            os.setsid()
            if os.fork() != 0:
                os._exit(0)
            os.chdir("/")
            os.dup2(null, 0)
            os.dup2(null, 1)
            os.dup2(log, 2)
            os.set_inheritable(lock_fd, True)
            os.set_inheritable(write_fd, True)
            os.execv(argv[0], argv)
        except BaseException:
            with contextlib.suppress(BaseException):
                os.write(write_fd, b"err 70 cannot launch the supervisor daemon\n")
        os._exit(70)
    os.close(null)
    os.close(log)
    os.close(write_fd)
    os.close(lock_fd)  # the daemon's copy keeps the lock
    with contextlib.suppress(ChildProcessError):
        os.waitpid(first, 0)
    data = b""
    deadline = time.monotonic() + READY_TIMEOUT
    while b"\n" not in data and time.monotonic() < deadline:
        ready, _, _ = select.select([read_fd], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            break
        chunk = os.read(read_fd, 4096)
        if not chunk:
            break
        data += chunk
    os.close(read_fd)
    line = data.decode("utf-8", "replace").strip()
    if line.startswith("ok "):
        return 0, line[3:]
    if line.startswith("err "):
        code_text, _, message = line[4:].partition(" ")
        return int(code_text) if code_text.isdigit() else 70, message
    return 70, f"the supervisor did not report back (see {sd.file(statedir.WRAPPER_LOG)})"


# ==================================================================== run / start


def run(sd: StateDir, settings: Settings, detach: bool) -> int:
    """``campaign-tui run [--detach] -- CMD``: supervise ``settings.command``.

    Foreground: a line per event, returns when the campaign completes (0), is
    stopped (0; Ctrl-C 130), is given up on (2). Detached: prints the supervisor
    pid and returns 0 at once. A command that cannot be executed: one line on
    stderr, 66, no retries. Another supervisor of this campaign running: 1.
    """
    from campaign_tui.supervisor import Supervisor

    sd = StateDir(sd.path.resolve(), sd.layout)
    try:
        statedir.ensure(sd)
    except StateDirError as exc:
        raise UsageError(str(exc), 73) from None
    problem = check_executable(settings)
    if problem is not None:
        _eprint(f"campaign-tui: {problem}")
        return EX_NOINPUT if settings.command else 64
    lock_fd = try_lock(sd)
    if lock_fd is None:
        return _already_running(sd)
    if not detach:
        try:
            return Supervisor(sd, settings, foreground=True, lock_fd=lock_fd).run()
        finally:
            os.close(lock_fd)
    warning = logind_warning()
    if warning:
        _eprint(f"campaign-tui: {warning}")
    code, line = _daemonize(sd, lock_fd, {"settings": settings.record()})
    if code == 0:
        _print(line)
    else:
        _eprint(f"campaign-tui: {line}")
    return code


def _already_running(sd: StateDir, echo: Echo = _eprint) -> int:
    doc = _raw_supervisor(sd)
    pid = _supervisor_alive(doc)
    who = f" (supervisor pid {pid})" if pid else ""
    echo(
        f"campaign-tui: campaign {sd.name!r} is already running{who}; "
        "`campaign-tui stop` or `restart` act on it"
    )
    return EXIT_RUNNING


def start(
    sd: StateDir,
    overrides: dict[str, object],
    config_path: Path | None,
    *,
    echo: Echo = _print,
    echo_err: Echo = _eprint,
) -> int:
    """``campaign-tui start``: launch the recorded campaign detached and resume it.

    Settings: the ones recorded in the state directory, then ``config_path``,
    then ``overrides``. Refuses (1) while the campaign runs. When the supervisor
    was killed but the campaign process still runs, adopts it instead of
    starting a second copy. Returns within a few seconds.
    """
    from dataclasses import asdict, replace

    from campaign_tui import config
    from campaign_tui.config import Settings
    from campaign_tui.supervisor import Adopted

    sd = StateDir(sd.path.resolve(), sd.layout)
    try:
        statedir.ensure(sd)
    except StateDirError as exc:
        raise UsageError(str(exc), 73) from None
    settings = recorded_settings(sd)
    if config_path is not None:
        base = settings or Settings()
        values = config.read_config(Path(config_path))
        settings = replace(base, **{k: v for k, v in values.items() if k not in config.CLI_KEYS})
    settings = config.apply(settings or Settings(), overrides)
    if not settings.command:
        raise UsageError(
            f"nothing to start in {sd.path}: no recorded campaign and no command in campaign.toml "
            "(use `campaign-tui run -- CMD` first)",
            EX_NOINPUT,
        )
    if not settings.cwd:
        settings = replace(settings, cwd=os.getcwd())
    lock_fd = try_lock(sd)
    if lock_fd is None:
        return _already_running(sd, echo_err)
    doc = _raw_supervisor(sd)
    adopt = None
    child = _child_alive(doc)
    if child is not None:
        adopt = Adopted(
            pid=child,
            start=_num(doc, "child_start"),
            attempt=int(_num(doc, "attempt") or 1),
            started_ms=int(_num(doc, "child_started_ms") or 0) or None,
            run_id=str(doc.get("run_id") or ""),
        )
    else:
        _record_unsupervised_end(sd, doc)
        problem = check_executable(settings)
        if problem is not None:
            os.close(lock_fd)
            echo_err(f"campaign-tui: {problem}")
            return EX_NOINPUT
    previous = int(_num(doc, "attempt") or 0)
    fresh = doc.get("state") == "complete" or previous == 0
    first = 1 if fresh else previous + 1
    warning = logind_warning()
    if warning:
        echo_err(f"campaign-tui: {warning}")

    spec: dict[str, Any] = {
        "settings": settings.record(),
        "first_attempt": first,
        "resume": not fresh,
        "adopt": asdict(adopt) if adopt is not None else None,
    }
    code, line = _daemonize(sd, lock_fd, spec)
    if code != 0:
        echo_err(f"campaign-tui: {line}")
        return code
    if adopt is not None:
        echo(f"adopted running campaign pid {adopt.pid}; supervisor pid {line}")
    else:
        echo(line)
    return 0


def _record_unsupervised_end(sd: StateDir, doc: dict[str, Any]) -> None:
    """Append the restart record no supervisor wrote: the attempt died after its supervisor.

    supervisor.json still says running (or stopping) attempt N, that process is
    gone (the caller checked its pid with its create time) and restarts.jsonl
    has nothing for attempt N: its exit status is lost, but the crash, and the
    item it was on, belong in the history (and count for poison items).
    """
    from campaign_tui.snapshot import read_restarts
    from campaign_tui.writer import StateWriter, stamp

    attempt = _num(doc, "attempt")
    if doc.get("state") not in ("running", "stopping") or not attempt or attempt < 1:
        return
    n = int(attempt)
    if any(r.attempt == n for r in read_restarts(sd.file(statedir.RESTARTS))):
        return
    started = _num(doc, "child_started_ms")
    pid = _num(doc, "child_pid")
    StateWriter(sd, who="campaign-tui start").jsonl(
        statedir.RESTARTS,
        {
            "attempt": n,
            "started_ms": int(started) if started else None,
            "ended_ms": None,
            "exit_code": None,
            "signal": None,
            "reason": "crash",
            "uptime": None,
            "next_delay": None,
            "item": _item_in_flight(sd, n, started),
            "pid": int(pid) if pid else None,
            "message": "ended unsupervised, exit unknown",
            **stamp(),
        },
        fsync=True,
    )


def _item_in_flight(sd: StateDir, attempt: int, started_ms: float | None) -> str | None:
    """The item attempt ``attempt``'s last heartbeat names, unless that item has its result."""
    from campaign_tui.campaign import read_journal
    from campaign_tui.models import Heartbeat

    raw = statedir.read_json(sd.file(statedir.HEARTBEAT))
    hb = Heartbeat.parse(raw) if raw is not None else None
    if not isinstance(hb, Heartbeat) or not hb.item:
        return None
    if hb.attempt is not None and hb.attempt != attempt:
        return None  # an earlier attempt's (this one wrote no heartbeat of its own)
    if hb.attempt is None and (hb.at_ms is None or hb.at_ms < (started_ms or 0) - 1000):
        return None
    return None if hb.item in read_journal(sd) else hb.item


# ==================================================================== stop / restart


def _ask(sd: StateDir, verb: str, timeout: float) -> str | None:
    """Send ``verb`` over the control socket; the final answer line, or None if unreachable."""
    path = sd.file(CONTROL_SOCKET)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    address, dir_fd = socket_address(path)
    try:
        sock.settimeout(2.0)
        sock.connect(address)
        sock.sendall(verb.encode() + b"\n")
        sock.settimeout(timeout)
        data = b""
        while True:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
        lines = [line for line in data.decode("utf-8", "replace").splitlines() if line.strip()]
        return lines[-1] if lines else ""
    except (OSError, TimeoutError):
        return None
    finally:
        sock.close()
        if dir_fd is not None:
            os.close(dir_fd)


def _stop_timeout(doc: dict[str, Any]) -> float:
    settings = doc.get("settings")
    seconds = _num(settings, "stop_timeout") if isinstance(settings, dict) else None
    return seconds if seconds is not None and seconds >= 0 else 10.0


def _wait_gone(pid: int, start: float | None, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while procs.alive(pid, start):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def stop(sd: StateDir, *, echo: Echo = _print, echo_err: Echo = _eprint) -> int:
    """``campaign-tui stop``: intentional stop; returns when the whole tree is gone.

    0 when stopped (or already not running), 1 when it could not be stopped.
    Takes at most about stop_timeout + 1 s (plus a short sweep).
    """
    doc = _raw_supervisor(sd)
    timeout = _stop_timeout(doc) + 5.0
    pid = _supervisor_alive(doc)
    if pid is not None:
        pid_start = _num(doc, "pid_start")
        # Held across the wait for an answer: by then the pid may be someone else's.
        pidfd = procs.pidfd_of(pid, pid_start)
        try:
            answer = _ask(sd, "stop", timeout)
            if answer is None or not answer.startswith("done"):
                # no answer: SIGTERM to the verified supervisor means "stop the campaign"
                procs.send_signal(pid, pid_start, pidfd, signal.SIGTERM)
        finally:
            if pidfd is not None:
                os.close(pidfd)
        if not _wait_gone(pid, pid_start, timeout):
            echo_err(f"campaign-tui: supervisor pid {pid} did not stop within {timeout:g}s")
            return 1
        echo(f"campaign {sd.name!r} stopped")
        return 0
    child = _child_alive(doc)
    if child is None:
        echo(f"campaign {sd.name!r} is not running")
        return 0
    lock_fd = try_lock(sd)
    if lock_fd is None:  # a supervisor appeared meanwhile: ask it
        return stop(sd, echo=echo, echo_err=echo_err)
    try:
        _stop_unsupervised(sd, doc, child)
    finally:
        os.close(lock_fd)
    echo(f"campaign {sd.name!r} (unsupervised pid {child}) stopped")
    return 0


def _stop_unsupervised(sd: StateDir, doc: dict[str, Any], child: int) -> None:
    """End a campaign whose supervisor was killed: record intent, TERM, wait, KILL, sweep."""
    import psutil

    from campaign_tui import proctree
    from campaign_tui.writer import StateWriter

    writer = StateWriter(sd, who="campaign-tui stop")
    writer.json(statedir.SUPERVISOR, {**doc, "state": "stopping"}, fsync=True)
    run_id = str(doc.get("run_id") or "")
    start_t = _num(doc, "child_start")

    def collect() -> list[psutil.Process]:
        return proctree.tree_of(child, start_t)

    # Its group is signalled only while the leader is verified: an emptied group's
    # id may be anyone's by then. The pidfd reaches the root itself in any case.
    pidfd = procs.pidfd_of(child, start_t)
    leader = proctree.Leader(child, lambda: procs.alive(child, start_t), pidfd=pidfd)
    try:
        proctree.terminate(collect, leader, _stop_timeout(doc), time.sleep)
    finally:
        if pidfd is not None:
            os.close(pidfd)
    if run_id:
        proctree.signal_all(proctree.marked(run_id), signal.SIGKILL)
    writer.status("TERMINATED", "stopped on request (campaign-tui stop) while unsupervised")
    writer.json(
        statedir.SUPERVISOR,
        {**doc, "state": "stopped", "child_pid": None, "child_start": None},
        fsync=True,
    )


def restart(sd: StateDir, *, echo: Echo = _print, echo_err: Echo = _eprint) -> int:
    """``campaign-tui restart``: end the running attempt and start the next one now.

    Not counted against max_restarts. When no supervisor runs, this is ``start``.
    Returns within about stop_timeout + 1 s.
    """
    doc = _raw_supervisor(sd)
    if _supervisor_alive(doc) is None:
        echo(f"campaign {sd.name!r} is not supervised: starting it")
        return start(sd, {}, None, echo=echo, echo_err=echo_err)
    answer = _ask(sd, "restart", _stop_timeout(doc) + 5.0)
    if answer is None:
        echo_err("campaign-tui: the supervisor's control socket does not answer")
        return 1
    if answer.startswith("done attempt"):
        echo(f"campaign {sd.name!r} restarted (attempt {answer.split()[-1]})")
        return 0
    echo_err(f"campaign-tui: restart did not complete: {answer or 'no answer'}")
    return 1


def ping(sd: StateDir) -> str | None:
    """The supervisor's one-line JSON state, or None when none answers."""
    return _ask(sd, "ping", 2.0)


__all__ = ["EXIT_NOEXEC", "ping", "restart", "run", "start", "stop"]
