"""The restart policy: history + the event that just happened + now → what to do.

Pure: no clock reads, no I/O. Times are seconds on the monotonic clock, given
by the caller, so every rule is a table test.

The rules, in order:

* ``complete`` — the campaign finished (it wrote COMPLETE, its TAP plan was
  fulfilled, or a command that reports nothing exited 0): never restarted.
* ``stopped`` — an intentional stop (``campaign-tui stop``, Ctrl-C, SIGTERM to
  the supervisor, or a campaign that was signalled by someone else and itself
  recorded TERMINATED / INTERRUPTED): never restarted.
* ``unexecutable`` — the command could not be executed at all: never retried.
* ``manual`` — ``campaign-tui restart``: restarted at once; it does not count
  against ``max_restarts`` and it starts a fresh crash streak.
* ``crash`` / ``hang`` — restarted after ``backoff_initial * 2**k`` seconds
  (capped at ``backoff_max``), where ``k`` counts the crashes of the current
  streak before this one; the ``max_restarts + 1``-th crash of a streak gives up.
  A streak ends at an attempt that made progress (finished at least one new
  item) or stayed up ``backoff_reset_after`` seconds: that attempt's crash is
  the first of a new streak, so a campaign that advances between crashes is
  never mistaken for a crash loop.

Poison items (:func:`poison_item`): when two attempts in a row crashed or hung
with the same item in flight, that item is poison: the next attempt skips it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

Outcome = Literal["crash", "hang", "complete", "stopped", "manual", "unexecutable"]
CRASHES = frozenset({"crash", "hang"})
_MAX_EXPONENT = 60


@dataclass(frozen=True, slots=True)
class Limits:
    """The settings the policy reads (a subset of :class:`campaign_tui.config.Settings`)."""

    max_restarts: int = 5
    backoff_initial: float = 5.0
    backoff_max: float = 300.0
    backoff_reset_after: float = 600.0

    @classmethod
    def of(cls, settings: object) -> Limits:
        return cls(
            max_restarts=settings.max_restarts,  # type: ignore[attr-defined]
            backoff_initial=settings.backoff_initial,  # type: ignore[attr-defined]
            backoff_max=settings.backoff_max,  # type: ignore[attr-defined]
            backoff_reset_after=settings.backoff_reset_after,  # type: ignore[attr-defined]
        )


@dataclass(frozen=True, slots=True)
class Ended:
    """The event: an attempt that started at ``started`` (monotonic) has ended."""

    outcome: Outcome
    started: float
    progressed: bool = False


@dataclass(frozen=True, slots=True)
class Attempt:
    """An ended attempt, as the history keeps it."""

    outcome: Outcome
    started: float
    ended: float
    progressed: bool = False

    @property
    def uptime(self) -> float:
        return max(0.0, self.ended - self.started)

    def healthy(self, limits: Limits) -> bool:
        """Did this attempt run well enough to end a crash streak?"""
        return self.progressed or self.uptime >= limits.backoff_reset_after


@dataclass(frozen=True, slots=True)
class History:
    """Every attempt that ended under this supervisor, oldest first."""

    attempts: tuple[Attempt, ...] = ()

    def with_ended(self, event: Ended, now: float) -> History:
        attempt = Attempt(event.outcome, event.started, now, event.progressed)
        return History((*self.attempts, attempt))

    def streak(self, limits: Limits) -> int:
        """How many crashes the current crash streak holds (0 when the last attempt was not one)."""
        count = 0
        for attempt in reversed(self.attempts):
            if attempt.outcome not in CRASHES:
                break
            count += 1
            if attempt.healthy(limits):
                break
        return count


@dataclass(frozen=True, slots=True)
class Restart:
    """Start the next attempt after ``after`` seconds.

    ``restart`` is this restart's number within the crash streak (what counts
    against ``max_restarts``); 0 for a manual restart, which does not count.
    """

    after: float
    restart: int = 0


@dataclass(frozen=True, slots=True)
class GiveUp:
    """Stop restarting: the crash streak used up ``max_restarts``."""

    restarts: int
    reason: str = "manual intervention required"


@dataclass(frozen=True, slots=True)
class Stay:
    """Do not restart: the campaign completed, was stopped, or cannot be executed."""

    reason: Outcome


Action = Restart | GiveUp | Stay


def backoff_delay(restart: int, limits: Limits) -> float:
    """Delay before the ``restart``-th restart of a streak (1-based): initial·2^(n-1), capped."""
    exponent = min(max(restart - 1, 0), _MAX_EXPONENT)
    return min(limits.backoff_max, limits.backoff_initial * (2.0**exponent))


def next_action(history: History, event: Ended, now: float, limits: Limits) -> Action:
    """What to do now that ``event`` happened, given the attempts that ended before it."""
    if event.outcome in ("complete", "stopped", "unexecutable"):
        return Stay(event.outcome)
    if event.outcome == "manual":
        return Restart(after=0.0, restart=0)
    streak = history.with_ended(event, now).streak(limits)
    if streak > limits.max_restarts:
        return GiveUp(restarts=streak - 1)
    return Restart(after=backoff_delay(streak, limits), restart=streak)


def poison_item(ended: Sequence[tuple[str, str | None]]) -> str | None:
    """The item two attempts in a row crashed (or hung) on, if the last two did.

    ``ended`` is every ended attempt's (reason, item in flight), oldest first, as
    restarts.jsonl records them; the item is None when none was known.
    """
    if len(ended) < 2:
        return None
    (reason_a, item_a), (reason_b, item_b) = ended[-2], ended[-1]
    if reason_a in CRASHES and reason_b in CRASHES and item_a and item_a == item_b:
        return item_a
    return None
