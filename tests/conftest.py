"""Shared test helpers: waiting on conditions, tracked subprocesses, a state dir.

Tests never sleep to synchronise: they poll a condition with a deadline
(:func:`wait_until`). Every process a test starts goes through the ``procs``
fixture, carries a unique marker in its environment, and is killed by pid at
teardown.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import pytest

T = TypeVar("T")

MARKER_VAR = "CAMPAIGN_TUI_TEST_MARKER"


def wait_until(predicate: Callable[[], T], timeout: float = 10.0, what: str = "condition") -> T:
    """Poll ``predicate`` until it returns something truthy; return that value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


async def until(
    pilot: Any,
    predicate: Callable[[], T],
    timeout: float = 10.0,
    what: str = "",
    shown: Callable[[], object] | None = None,
) -> T:
    """Let a Textual app under ``pilot`` run until ``predicate()`` is truthy, and
    return that; on a timeout, say what ``shown()`` showed instead."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            seen = f" (shown instead: {shown()!r})" if shown is not None else ""
            raise AssertionError(
                f"timed out after {timeout}s waiting for {what or predicate}{seen}"
            )
        await pilot.pause(0.02)


class ProcessTracker:
    """Starts subprocesses for one test and ends every one of them by pid."""

    def __init__(self) -> None:
        self.marker = f"campaign-tui-test-{uuid.uuid4().hex}"
        self.started: list[subprocess.Popen[Any]] = []

    def start(
        self, args: Sequence[str], env: dict[str, str] | None = None, **kwargs: Any
    ) -> subprocess.Popen[Any]:
        env = dict(os.environ if env is None else env)
        env[MARKER_VAR] = self.marker
        proc = subprocess.Popen(list(args), env=env, **kwargs)
        self.started.append(proc)
        return proc

    def end_all(self) -> None:
        for proc in self.started:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)
            for stream in (proc.stdin, proc.stdout, proc.stderr):
                if stream is not None:
                    with contextlib.suppress(OSError):
                        stream.close()


@pytest.fixture
def procs() -> Any:
    tracker = ProcessTracker()
    try:
        yield tracker
    finally:
        tracker.end_all()


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    """An empty campaign state directory, mode 0700."""
    path = tmp_path / "state"
    path.mkdir(mode=0o700)
    path.chmod(0o700)  # whatever the umask
    return path
