"""The worker that watches a state directory and posts what it read.

File changes arrive through an inotify descriptor read on the asyncio loop
(:mod:`campaign_tui.tui.inotify`): nothing wakes while nothing changes, and a
write is handled as soon as it is seen, with no debounce. Events that come
within ``BATCH_GAP`` of the previous batch are gathered into the next one, so a
firehose is read in bounded steps. An atomic replace arrives as ``moved_to``, so
the kind of change is ignored and only the file name matters. When the
directory is removed, moved or recreated the watch re-arms: at once from the
watch's own ``delete_self``/``move_self`` event, and, as a backstop, from a
one-second tick that compares the directory's identity. Where inotify is not
available (another OS, the instance or watch limit reached) and with
``poll=True`` (NFS, where no change notification arrives) watchfiles watches
instead (imported lazily, so the rest of the package does not pay for it).

The tick also samples the processes (a hang is the absence of events, so the
health is judged again each second), and re-reads everything now and then in
case an event was missed: every second with ``poll=True`` (watchfiles' polling
only sees whole-second mtimes), every five seconds otherwise.

All reading happens here, in threads; the screen receives messages only.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from textual.message import Message

from campaign_tui import statedir
from campaign_tui.models import Heartbeat, Snapshot, SupervisorDoc, Unreadable
from campaign_tui.procs import HeldProber, ProcessFacts
from campaign_tui.snapshot import directory_problems, pids_of, probe_processes, read_snapshot
from campaign_tui.statedir import StateDir
from campaign_tui.tail import Tailer, marker
from campaign_tui.tui.inotify import GONE, IN_Q_OVERFLOW, Inotify, open_inotify
from campaign_tui.tui.pace import HeartbeatPace, Pace, pace_from_results
from campaign_tui.tui.usage import TreeSampler, TreeUsage

LOG_KINDS = ("errors", "alerts", "progress", "output")
LOG_LINES = 2000  # lines each log view keeps
POLL_BUDGET = 128 * 1024  # bytes one poll of a log may read; a firehose skips ahead
RESULTS_TAIL = 16 * 1024
DEBOUNCE_MS = 50  # watchfiles (the fallback and --poll)
STEP_MS = 10
BATCH_GAP = 0.05  # seconds: inotify events closer than this to the last batch wait for the next
# output.log only moves the "last output" age: read the state at most this often for it
OUTPUT_STATE_EVERY = 1.0
# Under a working watch the files are read again anyway this often (seconds), even
# when none of them looks changed from outside.
FULL_RECONCILE_EVERY = 60.0
USAGE_EVERY = 3.0  # seconds between samples of the campaign tree's CPU and memory, as top

_STATE_FILES = (
    statedir.HEARTBEAT,
    statedir.CHECKPOINT,
    statedir.STATUS,
    statedir.SUPERVISOR,
    statedir.RESTARTS,
    statedir.ALERTS_LOG,
)


class StateRead(Message):
    """The state directory was read: a new snapshot, its processes and the pace."""

    bubble = False  # for the screen that watches; the app has nothing to do with it

    def __init__(self, snapshot: Snapshot, procs: ProcessFacts, pace: Pace) -> None:
        super().__init__()
        self.snapshot = snapshot
        self.procs = procs
        self.pace = pace


class ProcessesSampled(Message):
    """The once-a-second look at the processes (and the tick that re-judges the health)."""

    bubble = False  # for the screen that watches; the app has nothing to do with it

    def __init__(self, procs: ProcessFacts, usage: TreeUsage | None) -> None:
        super().__init__()
        self.procs = procs
        self.usage = usage


class LogLines(Message):
    """Lines of one log wait in the watcher: take them with :meth:`StateWatcher.take_lines`.

    At most one is on its way per log, and the lines wait in a backlog as long as a
    view (older ones make way), so a firehose cannot pile messages up behind a busy
    screen: the screen takes what is newest when it gets to it.
    """

    bubble = False  # for the screen that watches; the app has nothing to do with it

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind


def log_kinds(sd: StateDir) -> tuple[str, ...]:
    """The logs a layout has (the legacy layout has no output log)."""
    return tuple(k for k in LOG_KINDS if not (sd.legacy and k == "output"))


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


class _Backlog:
    """The lines of one log read but not yet taken by the screen."""

    def __init__(self) -> None:
        self.lines: deque[str] = deque(maxlen=LOG_LINES)
        self.dropped = 0  # lines that made way for newer ones before the screen took them
        self.replace = False  # the lines are the whole view (a first read)
        self.announced = False  # a LogLines for them is on its way

    def add(self, lines: list[str], replace: bool) -> None:
        if replace:
            self.lines.clear()
            self.dropped, self.replace = 0, True
        self.dropped += max(0, len(self.lines) + len(lines) - LOG_LINES)
        self.lines.extend(lines)

    def take(self) -> tuple[list[str], bool]:
        lines = list(self.lines)
        if self.dropped:  # room for the marker: the view holds LOG_LINES lines
            lines = [marker(f"{self.dropped + 1} lines not shown"), *lines[1:]]
        replace = self.replace
        self.lines.clear()
        self.dropped, self.replace, self.announced = 0, False, False
        return lines, replace


@dataclass
class WatchStats:
    """Counters for tests and the curious."""

    events: int = 0
    reads: int = 0
    arms: int = 0


class StateWatcher:
    """Reads one state directory and posts :class:`StateRead`, :class:`ProcessesSampled`
    and :class:`LogLines` through ``post``. Run :meth:`run` as a worker."""

    def __init__(
        self,
        sd: StateDir,
        post: Callable[[Message], object],
        *,
        poll: bool = False,
        tick: float = 1.0,
        reconcile_every: float | None = None,
    ) -> None:
        self.sd = sd
        self._post = post
        self.poll = poll
        self.tick = tick
        self.reconcile_every = reconcile_every or (1.0 if poll else 5.0)
        self.stats = WatchStats()
        self._tailers = {kind: Tailer(sd.log(kind)) for kind in log_kinds(sd)}
        self._by_name = {t.path.name: kind for kind, t in self._tailers.items()}
        self._backlogs = {kind: _Backlog() for kind in self._tailers}
        self._state_names = {sd.file(name).name for name in _STATE_FILES}
        self._results_name = sd.file(statedir.RESULTS).name
        self._output_name = sd.file(statedir.OUTPUT_LOG).name
        self._wanted = self._state_names | set(self._by_name) | {self._results_name}
        self._wanted_sorted = sorted(self._wanted)
        self._reconciled: tuple[object, ...] = ()
        self._sampler = TreeSampler()
        self._prober = HeldProber()
        self._usage: TreeUsage | None = None
        self._usage_of: tuple[int | None, float | None] = (None, None)
        self._usage_at = 0.0
        self._hb_pace = HeartbeatPace()
        self._results_pace = Pace()
        self._snapshot: Snapshot | None = None
        self._pace = Pace()
        self._lock = asyncio.Lock()
        self._stop_watch: asyncio.Event | None = None
        self._wake: asyncio.Event | None = None
        self._inotify: Inotify | None = None
        self._wd = -1
        self._gone = False
        self._overflow = False
        self._closed = False
        self._watched: tuple[int, int] | None = None
        self._dir_fd: int | None = None
        self._last_reconcile = 0.0
        self._last_check = 0.0
        self._last_state_read = 0.0

    # ------------------------------------------------------------------ the worker

    async def run(self) -> None:
        await self.reconcile(initial=True)  # show something at once; the watch comes next
        await asyncio.gather(self._watch_loop(), self._tick_loop())

    async def reconcile(self, initial: bool = False) -> None:
        """Read everything again: the state, the pace and every log."""
        self._last_reconcile = time.monotonic()
        self._reconciled = self._signature()  # before reading: a write meanwhile shows next time
        await self._read_state(results=True)
        for kind in self._tailers:
            await self._read_log(kind, initial=initial)

    async def _watch_loop(self) -> None:
        if not self.poll:
            ino = open_inotify()
            if ino is not None:
                self._inotify = ino
                try:
                    watched = await self._inotify_loop(ino)
                finally:
                    self._drop_inotify()
                if watched is None:
                    return
                await self._watchfiles_loop(force_polling=watched)  # out of watches: poll
                return
        await self._watchfiles_loop(force_polling=self.poll)

    async def _inotify_loop(self, ino: Inotify) -> bool | None:
        """Watch with inotify until cancelled (None), or return whether the fallback
        must poll: True when a watch cannot be added, False when the loop cannot
        read the descriptor."""
        loop = asyncio.get_running_loop()
        names: set[str] = set()
        self._wake = wake = asyncio.Event()

        def readable() -> None:
            for event in ino.read():
                if event.mask & IN_Q_OVERFLOW:
                    self._overflow = True  # events were lost: read everything again
                elif event.wd != self._wd:
                    continue  # a watch already given up
                elif not event.name:
                    if not event.mask & GONE:
                        continue  # the directory's own attributes or a read
                    self._gone = True
                elif event.name in self._wanted:
                    names.add(event.name)
                else:
                    continue
                wake.set()

        try:
            loop.add_reader(ino.fd, readable)
        except (NotImplementedError, RuntimeError, OSError):
            return False
        while not self._closed:
            if not await self._hold_directory():
                break
            try:
                self._wd = ino.add_watch(self.sd.path)
            except OSError as exc:
                if exc.errno in (errno.ENOENT, errno.ENOTDIR):
                    await asyncio.sleep(0.25)  # removed meanwhile
                    continue
                return True  # no watch to be had (the watch limit, permissions): poll
            self._gone = self._overflow = False
            self._stop_watch = stop = asyncio.Event()
            names.clear()
            wake.clear()
            try:
                # The watch is set up first, then everything is read again: no write
                # falls between the two.
                await self.reconcile()
                self.stats.arms += 1
                last = 0.0
                while True:
                    await wake.wait()
                    wake.clear()
                    if stop.is_set() or self._gone:
                        break  # removed or recreated: re-arm the watch
                    gap = BATCH_GAP - (time.monotonic() - last)
                    if gap > 0:
                        await asyncio.sleep(gap)  # a burst: gather it into one batch
                    last = time.monotonic()
                    if self._overflow:
                        self._overflow = False
                        names.clear()
                        await self.reconcile()
                        continue
                    if names:
                        batch = set(names)
                        names.clear()
                        self.stats.events += 1
                        await self._changed(batch)
            finally:
                with contextlib.suppress(OSError):
                    ino.rm_watch(self._wd)
                self._wd = -1
        return None

    def _drop_inotify(self) -> None:
        ino, self._inotify = self._inotify, None
        if ino is None:
            return
        if ino.fd >= 0:
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_reader(ino.fd)
        ino.close()

    async def _watchfiles_loop(self, *, force_polling: bool) -> None:
        try:
            from watchfiles import awatch
        except ImportError:  # pragma: no cover - watchfiles is a dependency
            self.poll = True
            self.reconcile_every = 1.0
            await asyncio.Event().wait()
            return
        if force_polling:
            self.reconcile_every = min(self.reconcile_every, 1.0)
        while not self._closed:
            if not await self._hold_directory():
                break
            self._stop_watch = stop = asyncio.Event()
            changes = awatch(
                self.sd.path,
                watch_filter=self._relevant,
                debounce=DEBOUNCE_MS,
                step=STEP_MS,
                stop_event=stop,
                force_polling=True if force_polling else None,
                poll_delay_ms=250,
                recursive=False,
                ignore_permission_denied=True,
            )
            # The first step of the generator sets up the OS watch before it awaits
            # anything; only then is everything read again, so no write falls between.
            pending = asyncio.ensure_future(anext(changes))
            await asyncio.sleep(0)
            try:
                await self.reconcile()
                self.stats.arms += 1
                while True:
                    batch = await pending
                    self.stats.events += 1
                    await self._changed({Path(path).name for _, path in batch})
                    pending = asyncio.ensure_future(anext(changes))
            except StopAsyncIteration:
                pass  # stopped to re-arm
            except (OSError, RuntimeError):
                await asyncio.sleep(0.5)
            finally:
                pending.cancel()
                stop.set()
                with contextlib.suppress(Exception):
                    await changes.aclose()

    def _rearm(self) -> None:
        if self._stop_watch is not None:
            self._stop_watch.set()
        if self._wake is not None:
            self._wake.set()

    def _relevant(self, _change: object, path: str) -> bool:
        return os.path.basename(path) in self._wanted

    async def _tick_loop(self) -> None:
        while True:
            await asyncio.sleep(self.tick)
            if self._stop_watch is not None and self._watch_is_dead():
                self._rearm()  # removed or recreated: re-arm the watch
            now = time.monotonic()
            if now - self._last_check >= self.reconcile_every:
                self._last_check = now
                if (
                    now - self._last_reconcile >= FULL_RECONCILE_EVERY
                    or self._signature() != self._reconciled
                ):
                    await self.reconcile()
            procs, usage = await self._sample(self._snapshot)
            self._post(ProcessesSampled(procs, usage))

    def _signature(self) -> tuple[object, ...]:
        """What the directory looks like from outside: a full or read-only filesystem,
        and each file's inode, size and mtime; a statvfs and a handful of stats. The
        periodic reconcile, a net under the watch, reads the files only when this
        changed, so an idle monitor reads nothing."""
        out: list[object] = [tuple(directory_problems(self.sd))]
        for name in self._wanted_sorted:
            try:
                st = os.lstat(os.path.join(self.sd.path, name))
            except OSError:
                out.append(None)
                continue
            out.append((st.st_ino, st.st_size, st.st_mtime_ns))
        return tuple(out)

    async def _hold_directory(self) -> bool:
        """Wait for the directory to exist (the tick reconciles meanwhile) and hold it;
        False when the watcher was closed meanwhile."""
        while (identity := _identity(self.sd.path)) is None:
            if self._closed:
                return False
            await asyncio.sleep(0.25)
        self._hold(identity)
        return True

    def _hold(self, identity: tuple[int, int]) -> None:
        """Keep the watched directory open: its inode cannot be reused while we hold it,
        and a removed directory shows as one with no links."""
        self._release()
        self._watched = identity
        with contextlib.suppress(OSError):
            self._dir_fd = os.open(self.sd.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)

    def _release(self) -> None:
        if self._dir_fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._dir_fd)
        self._dir_fd = None

    def _watch_is_dead(self) -> bool:
        if _identity(self.sd.path) != self._watched:
            return True
        if self._dir_fd is None:
            return False
        try:
            return os.fstat(self._dir_fd).st_nlink == 0
        except OSError:
            return True

    async def _changed(self, names: set[str]) -> None:
        state = bool(names & self._state_names)
        results = self._results_name in names
        if (
            not state
            and self._output_name in names
            and time.monotonic() - self._last_state_read >= OUTPUT_STATE_EVERY
        ):
            state = True
        if state or results:
            await self._read_state(results=results)
        for name in names:
            kind = self._by_name.get(name)
            if kind is not None:
                await self._read_log(kind)

    # ------------------------------------------------------------------ reading (in threads)

    async def _read_state(self, *, results: bool) -> None:
        async with self._lock:
            snap, procs, pace = await asyncio.to_thread(self._read, results)
        self._last_state_read = time.monotonic()
        if snap != self._snapshot or pace != self._pace:
            self._snapshot, self._pace = snap, pace
            self.stats.reads += 1
            self._post(StateRead(snap, procs, pace))

    def _read(self, results: bool) -> tuple[Snapshot, ProcessFacts, Pace]:
        snap = read_snapshot(self.sd)
        if results and not self.sd.legacy:
            data = statedir.read_tail(self.sd.file(statedir.RESULTS), RESULTS_TAIL)
            self._results_pace = pace_from_results(data) if isinstance(data, bytes) else Pace()
        hb = snap.heartbeat if isinstance(snap.heartbeat, Heartbeat) else None
        beat_pace = self._hb_pace.observe(hb)
        pace = self._results_pace if self._results_pace.per_minute else beat_pace
        return snap, probe_processes(snap), pace

    async def _read_log(self, kind: str, *, initial: bool = False) -> None:
        tailer = self._tailers[kind]
        async with self._lock:
            if initial:
                lines = await asyncio.to_thread(tailer.tail, LOG_LINES)
            else:
                lines = await asyncio.to_thread(tailer.poll, max_bytes=POLL_BUDGET)
        if lines or initial:
            backlog = self._backlogs[kind]
            backlog.add(lines, replace=initial)
            if not backlog.announced:
                backlog.announced = True
                self._post(LogLines(kind))

    def take_lines(self, kind: str) -> tuple[list[str], bool]:
        """The lines of log ``kind`` read since the last take (a marker first when
        some made way for newer ones), and whether they replace the whole view."""
        return self._backlogs[kind].take()

    async def _sample(self, snap: Snapshot | None) -> tuple[ProcessFacts, TreeUsage | None]:
        if snap is None:
            return ProcessFacts(), None
        # Liveness on the loop: a held process costs a poll of its pidfd, cheaper
        # than a hand-off to a thread and back, once a second for hours.
        procs = self._prober.probe_all(pids_of(snap))
        pid, start = campaign_pid(snap)
        now = time.monotonic()
        if procs.alive(pid, start) is False:
            self._usage = None  # gone: no figures of a dead tree, not even for a second
        elif (pid, start) != self._usage_of or now - self._usage_at >= USAGE_EVERY:
            # The tree's walk grows with the tree: in a thread, so a campaign of
            # thousands of processes cannot stall the screen.
            async with self._lock:
                self._usage = await asyncio.to_thread(self._sampler.sample, pid, start)
            self._usage_of, self._usage_at = (pid, start), now
        return procs, self._usage

    def close(self) -> None:
        self._closed = True
        self._prober.close()
        self._rearm()
        with contextlib.suppress(RuntimeError):  # no running loop: nothing is registered
            self._drop_inotify()
        self._release()
        for tailer in self._tailers.values():
            with contextlib.suppress(Exception):
                tailer.close()


def campaign_pid(snap: Snapshot) -> tuple[int | None, float | None]:
    """The campaign's root process: the supervisor's child, else the heartbeat's pid."""
    sup = snap.supervisor
    if isinstance(sup, SupervisorDoc) and sup.child_pid is not None:
        return sup.child_pid, sup.child_start
    hb = snap.heartbeat
    if isinstance(hb, Heartbeat) and not isinstance(hb, Unreadable):
        return hb.pid, hb.pid_start
    return None, None
