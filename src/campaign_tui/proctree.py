"""A campaign's process tree: find it, end all of it, and describe it when it hangs.

A process belongs to the campaign when it descends from the supervisor (which
is a child subreaper, so grandchildren that called ``setsid`` and lost their
parent are re-parented to it rather than to init) or when it carries the
campaign's run marker in its environment (an adopted campaign whose former
supervisor died). Processes are held as :class:`psutil.Process` objects, which
check the create time before signalling: a reused pid is never signalled.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import psutil

from campaign_tui.procs import START_TIME_SLACK

PR_SET_CHILD_SUBREAPER = 36
RUN_MARKER = "CAMPAIGN_RUN_ID"
_MAX_DIAG_PROCS = 50


def become_subreaper() -> bool:
    """Make this process the reaper of its orphaned descendants (Linux); False if unsupported."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _living(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def descendants(root: int | psutil.Process, exclude: Iterable[int] = ()) -> list[psutil.Process]:
    """Living descendants of ``root`` (not ``root`` itself), minus ``exclude`` and their trees."""
    skip = set(exclude)
    try:
        parent = root if isinstance(root, psutil.Process) else psutil.Process(root)
        found = parent.children(recursive=True)
    except psutil.Error:
        return []
    if skip:
        banned: set[int] = set()
        for proc in found:
            if proc.pid in skip:
                banned.add(proc.pid)
                with contextlib.suppress(psutil.Error):
                    banned.update(p.pid for p in proc.children(recursive=True))
        found = [p for p in found if p.pid not in banned]
    return [p for p in found if _living(p)]


def verified(pid: int | None, start: float | None) -> psutil.Process | None:
    """The living process ``pid`` if it is the very one recorded with create time ``start``.

    The identity is taken from the returned object itself (psutil fixes the create
    time when it is built), so a pid reused after the check is not mistaken for it.
    """
    if pid is None or pid <= 0 or start is None:
        return None
    try:
        proc = psutil.Process(pid)
        if abs(proc.create_time() - start) > START_TIME_SLACK:
            return None
    except psutil.Error:
        return None
    return proc if _living(proc) else None


def tree_of(pid: int | None, start: float | None) -> list[psutil.Process]:
    """A recorded process and its living descendants, or nothing at all when ``pid``
    is no longer that process (then its "descendants" would be a stranger's)."""
    root = verified(pid, start)
    if root is None:
        return []
    return [root, *descendants(root)]


def marked(run_id: str, exclude: Iterable[int] = ()) -> list[psutil.Process]:
    """Living processes of this user whose environment carries ``CAMPAIGN_RUN_ID=run_id``."""
    skip = {os.getpid(), *exclude}
    uid = os.geteuid()
    found = []
    for proc in psutil.process_iter(["pid", "uids"]):
        try:
            if proc.pid in skip or (uid != 0 and proc.info["uids"].real != uid):
                continue
            if proc.environ().get(RUN_MARKER) == run_id and _living(proc):
                found.append(proc)
        except (psutil.Error, OSError, AttributeError):
            continue
    return found


@dataclass(frozen=True, slots=True)
class Leader:
    """The root of a tree, which leads its process group, and how to tell it still is.

    A group id is a bare number: once the group is empty it may be handed to a
    stranger. So the group is signalled only while ``verify()`` says, in the same
    pass, that ``pid`` is still the recorded leader: our own unreaped child (its
    pid cannot be reused before we reap it) or the pid with its create time. A
    ``pidfd`` on the root, where there is one, reaches it whatever its pid became.
    """

    pid: int
    verify: Callable[[], bool]
    pidfd: int | None = None

    def signal(self, sig: int) -> None:
        if self.pidfd is not None:
            with contextlib.suppress(OSError):
                signal.pidfd_send_signal(self.pidfd, sig)
        if self.pid > 1 and self.verify():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, sig)

    def group_alive(self) -> bool:
        """Has the group a member (the caller reaps its own zombies first)?"""
        if self.pid <= 1 or not self.verify():
            return False
        try:
            os.killpg(self.pid, 0)
        except (ProcessLookupError, PermissionError):
            return False
        return True


def signal_all(procs: Iterable[psutil.Process], sig: int, leader: Leader | None = None) -> None:
    """Send ``sig`` to a verified leader's group (if any) and to each verified process."""
    if leader is not None:
        leader.signal(sig)
    for proc in procs:
        with contextlib.suppress(psutil.Error, OSError):
            proc.send_signal(sig)


def _group_alive(leader: Leader | None) -> bool:
    return leader is not None and leader.group_alive()


def terminate(
    collect: Callable[[], list[psutil.Process]],
    group: Leader | None,
    timeout: float,
    wait: Callable[[float], None],
    *,
    sweep_for: float = 3.0,
) -> int:
    """End a whole tree: SIGTERM (group and each process), wait up to ``timeout``, SIGKILL, sweep.

    ``group`` is the tree's root and group leader, signalled as :class:`Leader` allows.

    ``collect`` lists the tree's living processes now; ``wait(seconds)`` blocks at
    most that long (the supervisor wakes on SIGCHLD and reaps there). Returns how
    many processes were left to SIGKILL.
    """
    procs = collect()
    signal_all(procs, signal.SIGTERM, group)
    deadline = time.monotonic() + timeout
    while True:
        remaining = [p for p in procs if _living(p)] + [p for p in collect() if p not in procs]
        if not remaining and not _group_alive(group):
            return 0
        procs = list({p.pid: p for p in remaining}.values())
        left = deadline - time.monotonic()
        if left <= 0:
            break
        wait(min(left, 0.1))
    killed = len(procs)
    end = time.monotonic() + sweep_for
    while True:
        signal_all(procs, signal.SIGKILL, group)
        wait(0.02)
        procs = [p for p in procs if _living(p)] + collect()
        procs = list({p.pid: p for p in procs if _living(p)}.values())
        if (not procs and not _group_alive(group)) or time.monotonic() > end:
            return killed


# ------------------------------------------------------------------ diagnosis


def _wchan(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/wchan", encoding="ascii", errors="replace") as handle:
            return handle.read(64).strip() or "-"
    except OSError:
        return "?"


def describe_tree(procs: list[psutil.Process]) -> str:
    """One line per process: pid, ppid, state, wait channel, CPU seconds, command line."""
    lines = ["  PID    PPID   STATE      WCHAN                 CPU(s)  COMMAND"]
    for proc in procs[:_MAX_DIAG_PROCS]:
        try:
            with proc.oneshot():
                times = proc.cpu_times()
                cmdline = " ".join(proc.cmdline()) or proc.name()
                lines.append(
                    f"  {proc.pid:<6} {proc.ppid():<6} {proc.status():<10} "
                    f"{_wchan(proc.pid):<21} {times.user + times.system:7.2f}  {cmdline[:200]}"
                )
        except psutil.Error:
            lines.append(f"  {proc.pid:<6} (gone)")
    if len(procs) > _MAX_DIAG_PROCS:
        lines.append(f"  ... and {len(procs) - _MAX_DIAG_PROCS} more")
    return "\n".join(lines)


def _is_python(proc: psutil.Process) -> bool:
    try:
        return "python" in proc.name().lower()
    except psutil.Error:
        return False


def py_spy_dumps(procs: list[psutil.Process], timeout: float = 10.0, limit: int = 3) -> list[str]:
    """``py-spy dump`` of the Python processes in the tree, where py-spy is installed."""
    exe = shutil.which("py-spy")
    if exe is None:
        return []
    out = []
    for proc in [p for p in procs if _is_python(p)][:limit]:
        try:
            done = subprocess.run(
                [exe, "dump", "--pid", str(proc.pid)],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=timeout,
                check=False,
            )
            text = (done.stdout + done.stderr).decode("utf-8", "replace").strip()
            out.append(f"py-spy dump --pid {proc.pid} (exit {done.returncode}):\n{text}")
        except subprocess.TimeoutExpired:
            out.append(f"py-spy dump --pid {proc.pid}: timed out after {timeout:.0f}s")
        except OSError as exc:
            out.append(f"py-spy dump --pid {proc.pid}: {exc.strerror}")
    return out
