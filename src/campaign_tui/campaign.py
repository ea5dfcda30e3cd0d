"""The Python reporting API: ``with Campaign(total=...) as campaign: ...``.

A campaign reports a heartbeat before each item and a result after it (and the
checkpoint, at most once a second while items are fast), records how it ended
(COMPLETE, CRASHED, TERMINATED, INTERRUPTED), and on a restart yields only the
items that have no final outcome yet. No failure to write state ever stops the
campaign.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import IO, Any, TypeVar

from campaign_tui import procs, statedir
from campaign_tui.crash import CrashCapture, ErrorLogHandler, format_exception
from campaign_tui.models import OUTCOMES
from campaign_tui.statedir import StateDir, StateDirError
from campaign_tui.writer import StateWriter, heartbeat_doc, report_final, stamp

T = TypeVar("T")

FAILURE_RATE_THRESHOLD = 0.25
FAILURE_RATE_MIN_ITEMS = 10
# While items are fast, checkpoint.json is replaced at most this often (seconds);
# results.jsonl, the resume journal, still gets every item at once. fsync=True and
# every ending write it at once.
CHECKPOINT_INTERVAL = 1.0
_MAX_JOURNAL_BYTES = 1 << 31
# A poison item: two attempts in a row crashed (or hung) with it in flight. The
# supervisor records it as an error with this message and ``"poison": true``, and
# passes the list to the next attempt in CAMPAIGN_SKIP_ITEMS (one item a line).
POISON_MESSAGE = "crashed the campaign twice"
SKIP_ITEMS_VAR = "CAMPAIGN_SKIP_ITEMS"


def read_journal(sd: StateDir) -> dict[str, str]:
    """Final outcome per item key from a state directory's results.jsonl."""
    data = statedir.read_bytes(sd.file(statedir.RESULTS), limit=_MAX_JOURNAL_BYTES)
    return parse_journal(data) if isinstance(data, bytes) else {}


def parse_journal(data: bytes) -> dict[str, str]:
    """Final outcome per item key (the last line wins; a torn line is skipped)."""
    return scan_journal(data)[0]


def parse_poison(data: bytes) -> list[str]:
    """The poison items of a journal, in the order they were found: those whose last
    line is the supervisor's ``"poison": true`` error."""
    return scan_journal(data)[1]


# A journal line as the API writes it: "item" and "outcome" first, then flat fields
# (no "poison", no nesting, compact JSON). Such a line is read by this pattern, which
# accepts only what json.loads reads the same way; any other line (the supervisor's
# poison errors, escaped items, other writers' key orders, whitespace, torn or corrupt
# lines) is the third group and goes through json.loads.
_STRING = rb'"[^"\\\x00-\x1f]*(?:\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4})[^"\\\x00-\x1f]*)*"'
# At most 100 integer digits: json.loads refuses an int over sys.get_int_max_str_digits().
_NUMBER = rb"-?(?:0|[1-9][0-9]{0,99})(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?"
_FIELD = (
    rb',"(?!item"|outcome"|poison")[^"\\\x00-\x1f]*":(?:'
    + _NUMBER
    + rb"|"
    + _STRING
    + rb"|true|false|null)"
)
_JOURNAL_LINE = re.compile(
    rb'^(?:\{"item":"([^"\\\x00-\x1f]*)","outcome":"(passed|failed|error|skipped)"'
    + rb"(?:"
    + _FIELD
    + rb")*+\}|(.*))$",
    re.MULTILINE,
)
_OUTCOME_NAMES = {name.encode(): name for name in OUTCOMES}


def scan_journal(data: bytes) -> tuple[dict[str, str], list[str]]:
    """One pass over a results journal: the final outcome per item key (the last line
    wins; a torn line is skipped) and the poison items (those whose last line is the
    supervisor's ``"poison": true`` error) in the order of those lines."""
    done: dict[str, str] = {}
    poison: dict[str, None] = {}  # ordered by each item's latest line

    def slow(line: bytes) -> None:
        try:
            doc = json.loads(line)
        except (ValueError, RecursionError):
            return
        if (
            isinstance(doc, dict)
            and isinstance(item := doc.get("item"), str)
            and isinstance(outcome := doc.get("outcome"), str)
            and outcome in OUTCOMES
        ):
            done[item] = outcome
            poison.pop(item, None)
            if doc.get("poison") is True:
                poison[item] = None

    if b"\r" in data or not _utf8(data):
        # Lines the pattern does not split as bytes.splitlines() does, or bytes
        # json.loads would refuse on a line the pattern reads: all the slow way.
        for line in data.splitlines():
            if line:
                slow(line)
        return done, list(poison)
    names = _OUTCOME_NAMES
    for item, outcome, other in _JOURNAL_LINE.findall(data):
        if outcome:
            key = item.decode("utf-8", "surrogatepass")  # as json.loads decodes bytes
            done[key] = names[outcome]
            if poison:
                poison.pop(key, None)
        elif other:
            slow(other)
    return done, list(poison)


def _utf8(data: bytes) -> bool:
    """Does json.loads read these bytes as UTF-8 (lone surrogates allowed)?"""
    if data.isascii():
        return True
    try:
        data.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
        return False
    return True


def read_poison(sd: StateDir) -> list[str]:
    """The poison items recorded in a state directory's results.jsonl."""
    data = statedir.read_bytes(sd.file(statedir.RESULTS), limit=_MAX_JOURNAL_BYTES)
    return parse_poison(data) if isinstance(data, bytes) else []


def skip_items(environ: dict[str, str] | None = None) -> frozenset[str]:
    """The items the supervisor asks this attempt to skip (CAMPAIGN_SKIP_ITEMS)."""
    env = os.environ if environ is None else environ
    return frozenset(line for line in env.get(SKIP_ITEMS_VAR, "").split("\n") if line)


class ItemRun:
    """The handle of one running item: ``it.fail(msg)`` or ``it.skip(msg)``."""

    __slots__ = ("key", "message", "outcome")

    def __init__(self, key: str):
        self.key = key
        self.outcome = "passed"
        self.message = ""

    def fail(self, message: str = "") -> None:
        """Record the item as failed (a result, not a crash)."""
        self.outcome, self.message = "failed", message

    def skip(self, message: str = "") -> None:
        self.outcome, self.message = "skipped", message


class _ItemContext:
    __slots__ = ("_campaign", "_run", "_started")

    def __init__(self, campaign: Campaign, key: str):
        self._campaign = campaign
        self._run = ItemRun(key)
        self._started = 0.0

    def __enter__(self) -> ItemRun:
        self._campaign._begin_item(self._run.key)
        self._started = time.perf_counter()
        return self._run

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        duration = time.perf_counter() - self._started
        if exc is not None and not isinstance(exc, Exception):
            return False  # KeyboardInterrupt, SystemExit: not the item's result
        if exc is not None:
            self._run.outcome = "error"
            self._run.message = f"{type(exc).__name__}: {exc}"
            self._campaign._log_error(f"item {self._run.key} raised\n{format_exception(exc)}")
        self._campaign._finish_item(self._run, duration)
        return True  # an item's exception is its result; the loop goes on


class Campaign:
    """Report a campaign's progress and endings into its state directory.

    ``Campaign(name=None, state_dir=None, total=None, stale_after=None, fsync=False)``:
    the state directory comes from ``state_dir``, else ``CAMPAIGN_STATE_DIR`` (set
    by the supervisor), else the campaign ``name`` (default ``default``) under the
    state root. results.jsonl gets every item at once; checkpoint.json is replaced
    at most once a second while items are fast (at the latest when the next item
    starts a second later, or at a ``beat()``), and at once at every ending.
    ``fsync=True`` makes checkpoints and results durable at each item
    (status changes are always synced; heartbeats never are, since an fsync
    stall would look like a hang).
    """

    def __init__(
        self,
        name: str | None = None,
        state_dir: str | os.PathLike[str] | None = None,
        total: int | None = None,
        stale_after: float | None = None,
        fsync: bool = False,
        *,
        failure_rate: float = FAILURE_RATE_THRESHOLD,
        failure_min_items: int = FAILURE_RATE_MIN_ITEMS,
    ):
        self.sd = statedir.resolve(name, state_dir)
        self.total = total
        self.stale_after = stale_after
        self.fsync = fsync
        self.failure_rate = failure_rate
        self.failure_min_items = failure_min_items
        self.attempt = _env_int("CAMPAIGN_ATTEMPT", 1)
        self._writer = StateWriter(self.sd, who="campaign-tui")
        self._done: dict[str, str] = {}
        self._poison: frozenset[str] = frozenset()
        self._poison_noted: set[str] = set()
        self._counts = dict.fromkeys(OUTCOMES, 0)
        self._current: str | None = None
        self._checkpoint_next = 0.0  # time.monotonic() from which the next write is due
        self._checkpoint_pending = False  # a finished item the checkpoint does not count yet
        self._last_item: str | None = None
        self._ended = False
        self._rate_alerted = False
        self._pid_start: float | None = None
        self._errors_file: IO[str] | None = None
        self._capture: CrashCapture | None = None
        self._log_handler: ErrorLogHandler | None = None

    # ------------------------------------------------------------------ public

    @property
    def state_dir(self) -> str:
        return str(self.sd.path)

    @property
    def tested(self) -> int:
        return len(self._done)

    @property
    def passed(self) -> int:
        return self._counts["passed"]

    @property
    def failed(self) -> int:
        return self._counts["failed"]

    @property
    def errors(self) -> int:
        return self._counts["error"]

    @property
    def skipped(self) -> int:
        return self._counts["skipped"]

    def done(self, key: object) -> bool:
        """Has ``key`` a final outcome already (from this or an earlier attempt)?"""
        return str(key) in self._done

    def pending(self, items: Iterable[T], key: Callable[[T], object] = str) -> Iterator[T]:
        """Yield the items that have no final outcome yet, in order."""
        if self.total is None and hasattr(items, "__len__"):
            self.total = len(items)  # type: ignore[arg-type]
        for item in items:
            name = str(key(item))
            if name not in self._done and name not in self._poison:
                yield item
            elif name in self._poison and name not in self._poison_noted:
                self._poison_noted.add(name)
                self._writer.log(
                    statedir.PROGRESS_LOG, "WARNING", f"{name} skipped: it {POISON_MESSAGE}"
                )

    def item(self, key: object) -> _ItemContext:
        """Context manager around one item: heartbeat before, result (and checkpoint) after."""
        return _ItemContext(self, str(key))

    def alert(self, message: str, level: str = "warning") -> None:
        """Raise an alert (``info``, ``warning`` or ``critical``) in alerts.log."""
        self._writer.alert(message, level)

    def beat(self, note: str | None = None) -> None:
        """Refresh the heartbeat during a long item (it proves the campaign is not hung)."""
        self._heartbeat(note or self._current)
        self._write_checkpoint(due_only=True)

    # ------------------------------------------------------------------ with

    def __enter__(self) -> Campaign:
        self._prepare_directory()
        self._load_journal()
        self._pid_start = procs.start_time(os.getpid())
        self._errors_file = self._open_errors_file()
        self._capture = CrashCapture(self._record_ending, self._log_error, self._errors_file)
        self._capture.install()
        self._log_handler = ErrorLogHandler(
            lambda level, text: self._writer.log(statedir.ERRORS_LOG, level, text)
        )
        logging.getLogger().addHandler(self._log_handler)
        resumed = f", resuming after {self.tested} finished items" if self._done else ""
        self._writer.status("RUNNING", f"attempt {self.attempt} started{resumed}")
        self._writer.log(
            statedir.PROGRESS_LOG, "INFO", f"campaign started (attempt {self.attempt}{resumed})"
        )
        self._heartbeat(None)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if not self._ended:
                if exc is None or (isinstance(exc, SystemExit) and exc.code in (0, None)):
                    self._complete()
                elif isinstance(exc, KeyboardInterrupt):
                    self._record_ending("INTERRUPTED", "KeyboardInterrupt", format_exception(exc))
                else:
                    self._record_ending(
                        "CRASHED", f"{type(exc).__name__}: {exc}", format_exception(exc)
                    )
        finally:
            self._teardown()

    # ------------------------------------------------------------------ internals

    def _prepare_directory(self) -> None:
        try:
            if self.sd.path.exists():
                statedir.check_owned(self.sd.path)
            else:
                statedir.ensure(self.sd)
        except StateDirError as exc:
            print(f"campaign-tui: {exc}; the campaign goes on without state", file=sys.stderr)
            if self.sd.path.exists():
                # Someone else's (or an open) directory: write nothing there at all.
                self._writer.enabled = False

    def _load_journal(self) -> None:
        if not self._writer.enabled:
            return
        self._poison = skip_items()
        data = statedir.read_bytes(self.sd.file(statedir.RESULTS), limit=_MAX_JOURNAL_BYTES)
        if not isinstance(data, bytes):
            return
        self._done, poison = scan_journal(data)
        self._poison |= frozenset(poison)
        for outcome in self._done.values():
            self._counts[outcome] += 1
        if data and not data.endswith(b"\n"):
            # A kill mid-append left a line without its newline: end it, so the
            # next result starts on a line of its own.
            self._attempt_append(statedir.RESULTS, b"\n")

    def _attempt_append(self, name: str, data: bytes) -> None:
        with contextlib.suppress(OSError):
            statedir.append_bytes(self.sd.file(name), data)

    def _open_errors_file(self) -> IO[str] | None:
        if not self._writer.enabled:
            return None
        try:
            return os.fdopen(statedir.open_append(self.sd.file(statedir.ERRORS_LOG)), "a")
        except OSError:
            return None

    def _teardown(self) -> None:
        if self._checkpoint_pending:
            self._write_checkpoint()
        if self._capture is not None:
            self._capture.remove()
            self._capture = None
        if self._log_handler is not None:
            logging.getLogger().removeHandler(self._log_handler)
            self._log_handler = None
        if self._errors_file is not None:
            with contextlib.suppress(OSError):
                self._errors_file.close()
            self._errors_file = None

    def _heartbeat(self, item: str | None, status: str = "RUNNING") -> None:
        doc = heartbeat_doc(
            item=item,
            tested=self.tested,
            total=self.total,
            status=status,
            pid_start=self._pid_start,
            attempt=self.attempt,
            stale_after=self.stale_after,
            diag_signal=self._capture.diag_signal if self._capture else None,
            outcomes=(self.passed, self.failed, self.errors),
        )
        self._writer.json(statedir.HEARTBEAT, doc)

    def _begin_item(self, key: str) -> None:
        self._current = key
        self._heartbeat(key)
        self._write_checkpoint(due_only=True)

    def _finish_item(self, run: ItemRun, duration: float) -> None:
        previous = self._done.get(run.key)
        if previous is not None:
            self._counts[previous] -= 1
        self._done[run.key] = run.outcome
        self._counts[run.outcome] += 1
        result: dict[str, Any] = {
            "item": run.key,
            "outcome": run.outcome,
            "duration": round(duration, 6),
            "message": run.message,
            "attempt": self.attempt,
            **stamp(),
        }
        self._writer.jsonl(statedir.RESULTS, result, fsync=self.fsync)
        self._last_item = run.key
        self._checkpoint_pending = True
        self._write_checkpoint(due_only=not self.fsync)
        suffix = f": {run.message}" if run.message else ""
        level = "INFO" if run.outcome in ("passed", "skipped") else "WARNING"
        self._writer.log(
            statedir.PROGRESS_LOG,
            level,
            f"[{self.tested}/{self.total if self.total is not None else '?'}] "
            f"{run.key} {run.outcome} ({duration:.2f}s){suffix}",
        )
        self._current = None
        self._check_failure_rate()

    def _write_checkpoint(self, *, due_only: bool = False) -> None:
        """Write checkpoint.json if an item finished since the last write; with
        ``due_only``, only once CHECKPOINT_INTERVAL has passed since that write."""
        if not self._checkpoint_pending:
            return
        now = time.monotonic()
        if due_only and now < self._checkpoint_next:
            return
        self._checkpoint_pending = False
        self._checkpoint_next = now + CHECKPOINT_INTERVAL
        self._writer.json(statedir.CHECKPOINT, self._checkpoint(self._last_item), fsync=self.fsync)

    def _checkpoint(self, last_item: str | None) -> dict[str, Any]:
        return {
            **stamp(),
            "tested": self.tested,
            "total": self.total,
            "passed": self.passed,
            "failed": self.failed,
            "errors": self.errors,
            "skipped": self.skipped,
            "last_item": last_item,
            "can_resume": True,
        }

    def _check_failure_rate(self) -> None:
        if self.tested < self.failure_min_items:
            return
        rate = (self.failed + self.errors) / self.tested
        if rate >= self.failure_rate and not self._rate_alerted:
            self._rate_alerted = True
            self._writer.alert(
                f"high failure rate: {rate:.0%} of {self.tested} items failed or errored "
                f"(threshold {self.failure_rate:.0%})",
                "warning",
            )
        elif rate < self.failure_rate:
            self._rate_alerted = False

    def _log_error(self, text: str) -> None:
        self._writer.log(statedir.ERRORS_LOG, "ERROR", text)

    def _complete(self) -> None:
        self._ended = True
        summary = (
            f"{self.tested} items: {self.passed} passed, {self.failed} failed, "
            f"{self.errors} error{'' if self.errors == 1 else 's'}, {self.skipped} skipped"
        )
        self._checkpoint_pending = False
        self._writer.json(statedir.CHECKPOINT, self._checkpoint(None), fsync=self.fsync)
        self._writer.status("COMPLETE", f"campaign complete: {summary}")
        report_final("COMPLETE", self.sd.path)  # reaches the supervisor when status.json cannot
        self._heartbeat(None, status="COMPLETE")
        self._writer.log(statedir.PROGRESS_LOG, "INFO", f"campaign complete: {summary}")
        self._writer.alert(f"campaign complete: {summary}", "info")

    def _record_ending(self, status: str, message: str, trace: str | None) -> None:
        """Write how the campaign ends: status.json, errors.log, a critical alert, the heartbeat."""
        if self._ended:
            return
        self._ended = True
        self._write_checkpoint()  # what finished before the ending, exactly
        where = f" during item {self._current}" if self._current else ""
        self._writer.status(status, message + where, traceback=trace)
        report_final(status, self.sd.path)
        self._writer.log(
            statedir.ERRORS_LOG,
            "CRITICAL",
            f"campaign {status}: {message}{where}" + (f"\n{trace}" if trace else ""),
        )
        self._writer.alert(f"campaign {status}: {message}{where}", "critical")
        self._heartbeat(self._current, status=status)


def _env_int(name: str, default: int) -> int:
    try:
        return max(1, int(os.environ.get(name, "")))
    except ValueError:
        return default
