"""Crash capture: record why a Python campaign ends, then let it end as it would have.

Handlers are installed for the lifetime of a :class:`~campaign_tui.Campaign`
and removed afterwards; each chains to whatever was installed before, so a
program keeps its own behaviour. A signal that was ignored when we arrived
(``nohup`` ignores SIGHUP) stays ignored.
"""

from __future__ import annotations

import faulthandler
import logging
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable
from types import FrameType, TracebackType
from typing import IO, Any

# The signal a supervisor may send to ask for all threads' stacks.
DIAG_SIGNAL = signal.SIGUSR1

# status written for each ending signal, and the reason a person reads
ENDING_SIGNALS: dict[int, tuple[str, str]] = {
    signal.SIGTERM: ("TERMINATED", "SIGTERM received"),
    signal.SIGINT: ("INTERRUPTED", "SIGINT received (Ctrl-C)"),
    signal.SIGHUP: ("TERMINATED", "SIGHUP received: the terminal closed"),
}

OnEnding = Callable[[str, str, str | None], None]  # (status, message, traceback text)


def format_exception(exc: BaseException) -> str:
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))


class CrashCapture:
    """Installs and removes every crash hook for one campaign."""

    def __init__(
        self, on_ending: OnEnding, on_error: Callable[[str], None], errors_file: IO[str] | None
    ):
        self._on_ending = on_ending
        self._on_error = on_error
        self._errors_file = errors_file
        self._previous_signals: dict[int, Any] = {}
        self._previous_excepthook = sys.excepthook
        self._previous_thread_hook = threading.excepthook
        self._faulthandler_was_enabled = False
        self.diag_signal: str | None = None
        self._installed = False

    # ------------------------------------------------------------ install / remove

    def install(self) -> None:
        self._previous_excepthook = sys.excepthook
        self._previous_thread_hook = threading.excepthook
        sys.excepthook = self._excepthook
        threading.excepthook = self._thread_hook
        if threading.current_thread() is threading.main_thread():
            for signum in ENDING_SIGNALS:
                current = signal.getsignal(signum)
                if current == signal.SIG_IGN:
                    continue  # ignored on purpose (nohup): keep it that way
                self._previous_signals[signum] = current
                signal.signal(signum, self._on_signal)
        if self._errors_file is not None:
            self._faulthandler_was_enabled = faulthandler.is_enabled()
            try:
                faulthandler.enable(file=self._errors_file, all_threads=True)
                if (
                    threading.current_thread() is threading.main_thread()
                    and signal.getsignal(DIAG_SIGNAL) == signal.SIG_DFL
                ):
                    faulthandler.register(DIAG_SIGNAL, file=self._errors_file, all_threads=True)
                    self.diag_signal = DIAG_SIGNAL.name
            except (OSError, ValueError, RuntimeError):
                self.diag_signal = None
        self._installed = True

    def remove(self) -> None:
        if not self._installed:
            return
        self._installed = False
        if sys.excepthook == self._excepthook:
            sys.excepthook = self._previous_excepthook
        if threading.excepthook == self._thread_hook:
            threading.excepthook = self._previous_thread_hook
        for signum, previous in self._previous_signals.items():
            try:
                if signal.getsignal(signum) == self._on_signal:
                    signal.signal(signum, previous)
            except (ValueError, OSError):
                pass
        self._previous_signals.clear()
        if self._errors_file is not None:
            if self.diag_signal:
                faulthandler.unregister(DIAG_SIGNAL)
                self.diag_signal = None
            faulthandler.disable()
            if self._faulthandler_was_enabled:
                faulthandler.enable(file=sys.__stderr__ or sys.stderr)

    # ------------------------------------------------------------ the hooks

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        status, message = ENDING_SIGNALS[signum]
        stack = "".join(traceback.format_stack(frame)) if frame is not None else None
        previous = self._previous_signals.get(signum, signal.SIG_DFL)
        self._on_ending(status, message, stack)
        self.remove()
        if callable(previous):
            previous(signum, frame)  # e.g. SIGINT's default raises KeyboardInterrupt
            return
        # Die of the signal itself, so the exit status says what happened.
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)

    def _excepthook(
        self, exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None
    ) -> None:
        text = "".join(traceback.format_exception(exc_type, exc, tb))
        self._on_ending("CRASHED", f"uncaught {exc_type.__name__}: {exc}", text)
        self._previous_excepthook(exc_type, exc, tb)

    def _thread_hook(self, args: threading.ExceptHookArgs) -> None:
        if args.exc_type is not SystemExit:
            name = args.thread.name if args.thread else "?"
            text = "".join(
                traceback.format_exception(args.exc_type, args.exc_value, args.exc_traceback)
            )
            self._on_error(
                f"uncaught {args.exc_type.__name__} in thread {name}: {args.exc_value}\n{text}"
            )
        self._previous_thread_hook(args)


class ErrorLogHandler(logging.Handler):
    """Routes ``logging`` records at ERROR and above (asyncio's unhandled task
    errors among them) to errors.log, with their tracebacks."""

    def __init__(self, sink: Callable[[str, str], object]):
        super().__init__(level=logging.ERROR)
        self._sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = f"{record.name}: {record.getMessage()}"
            if record.exc_info and record.exc_info[1] is not None:
                text += "\n" + "".join(traceback.format_exception(*record.exc_info))
            elif record.exc_text:
                text += "\n" + record.exc_text
            self._sink(record.levelname, text)
        except Exception:
            self.handleError(record)
