"""The restart policy as a table: history + event + now → action. No sleeping, no processes."""

from __future__ import annotations

import pytest

from campaign_tui.policy import (
    Attempt,
    Ended,
    GiveUp,
    History,
    Limits,
    Restart,
    Stay,
    backoff_delay,
    next_action,
)

LIMITS = Limits(max_restarts=5, backoff_initial=5.0, backoff_max=300.0, backoff_reset_after=600.0)


def crashes(n: int, uptime: float = 1.0, progressed: bool = False) -> History:
    attempts = tuple(
        Attempt("crash", started=i * 1000.0, ended=i * 1000.0 + uptime, progressed=progressed)
        for i in range(n)
    )
    return History(attempts)


def crash_now(
    uptime: float = 1.0, progressed: bool = False, outcome: str = "crash"
) -> tuple[Ended, float]:
    started = 100_000.0
    return Ended(outcome, started, progressed), started + uptime  # type: ignore[arg-type]


def test_default_delays_are_5_10_20_40_80_then_give_up() -> None:
    delays = []
    history = History()
    for _ in range(6):
        event, now = crash_now()
        action = next_action(history, event, now, LIMITS)
        history = history.with_ended(event, now)
        delays.append(action)
    assert [a.after for a in delays[:5]] == [5.0, 10.0, 20.0, 40.0, 80.0]  # type: ignore[union-attr]
    assert [a.restart for a in delays[:5]] == [1, 2, 3, 4, 5]  # type: ignore[union-attr]
    assert delays[5] == GiveUp(restarts=5)


@pytest.mark.parametrize(
    ("rule", "history", "event_args", "expected"),
    [
        ("first_crash_waits_initial", History(), {}, Restart(5.0, 1)),
        ("third_crash_doubles_twice", crashes(2), {}, Restart(20.0, 3)),
        ("sixth_crash_gives_up", crashes(5), {}, GiveUp(5)),
        ("hang_counts_like_a_crash", crashes(1), {"outcome": "hang"}, Restart(10.0, 2)),
        ("complete_is_never_restarted", crashes(3), {"outcome": "complete"}, Stay("complete")),
        ("complete_with_no_history", History(), {"outcome": "complete"}, Stay("complete")),
        (
            "intentional_stop_is_never_restarted",
            crashes(2),
            {"outcome": "stopped"},
            Stay("stopped"),
        ),
        (
            "unexecutable_is_not_retried",
            History(),
            {"outcome": "unexecutable"},
            Stay("unexecutable"),
        ),
        (
            "manual_restart_is_immediate_and_uncounted",
            crashes(5),
            {"outcome": "manual"},
            Restart(0.0, 0),
        ),
        ("progress_resets_the_streak", crashes(4), {"progressed": True}, Restart(5.0, 1)),
        ("long_uptime_resets_the_streak", crashes(4), {"uptime": 600.0}, Restart(5.0, 1)),
        ("just_short_of_reset_still_counts", crashes(4), {"uptime": 599.9}, Restart(80.0, 5)),
    ],
)
def test_policy_rules(rule: str, history: History, event_args: dict, expected: object) -> None:
    event, now = crash_now(**event_args)
    assert next_action(history, event, now, LIMITS) == expected, rule


def test_an_earlier_healthy_attempt_ends_the_streak() -> None:
    # crash, crash, a crash after progress (new streak of 1), crash → 2nd of the streak
    history = History(
        (
            Attempt("crash", 0.0, 1.0),
            Attempt("crash", 10.0, 11.0),
            Attempt("crash", 20.0, 21.0, progressed=True),
        )
    )
    event, now = crash_now()
    assert next_action(history, event, now, LIMITS) == Restart(10.0, 2)


def test_a_manual_restart_ends_the_streak() -> None:
    history = History((*crashes(5).attempts, Attempt("manual", 9000.0, 9001.0)))
    event, now = crash_now()
    assert next_action(history, event, now, LIMITS) == Restart(5.0, 1)


def test_backoff_is_capped_and_survives_huge_counts() -> None:
    limits = Limits(max_restarts=10_000, backoff_initial=0.1, backoff_max=0.5)
    assert [backoff_delay(n, limits) for n in (1, 2, 3, 4)] == [0.1, 0.2, 0.4, 0.5]
    assert backoff_delay(5000, limits) == 0.5


def test_zero_max_restarts_gives_up_at_the_first_crash() -> None:
    event, now = crash_now()
    assert next_action(History(), event, now, Limits(max_restarts=0)) == GiveUp(0)
