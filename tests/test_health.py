"""The health judgement: one row per rule, named for the rule.

Snapshots are built from the models directly and process facts from
``ProcFact`` rows, so each row pins exactly one decision of ``judge``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field, replace

import pytest

from campaign_tui import procs as procs_mod
from campaign_tui.clock import Now
from campaign_tui.health import State, judge
from campaign_tui.models import (
    Checkpoint,
    Heartbeat,
    Snapshot,
    StatusDoc,
    SupervisorDoc,
    Unreadable,
)
from campaign_tui.procs import ProcessFacts, ProcFact
from conftest import ProcessTracker, wait_until

NOW_MS = 1_700_000_000_000
BOOT = "3f1c-boot-now"
NOW = Now(wall_ms=NOW_MS, boottime=50_000.0, boot_id=BOOT)
NOW_NO_BOOTTIME = Now(wall_ms=NOW_MS)

PID, PID_START = 4242, 1_699_990_000.0
SUP_PID, SUP_START = 4000, 1_699_980_000.0
CHILD_PID, CHILD_START = 4343, 1_699_995_000.0

# The contract's exit codes, written out here (not imported) so a change shows.
EXPECTED_EXIT = {
    State.HEALTHY: 0,
    State.COMPLETE: 0,
    State.TERMINATED: 0,
    State.STALE: 1,
    State.RESTARTING: 1,
    State.CRASHED: 2,
    State.UNKNOWN: 3,
}


def hb(age: float = 5.0, **kw: object) -> Heartbeat:
    """A heartbeat ``age`` seconds old by the wall clock, from PID."""
    fields: dict[str, object] = {
        "at_ms": NOW_MS - int(age * 1000),
        "item": "SD-057",
        "tested": 57,
        "total": 118,
        "pid": PID,
        "pid_start": PID_START,
    }
    fields.update(kw)
    return Heartbeat(**fields)  # type: ignore[arg-type]


def status(state: str, message: str = "", **kw: object) -> StatusDoc:
    return StatusDoc(state=state, message=message, at_ms=NOW_MS - 1000, **kw)  # type: ignore[arg-type]


def sup(state: str = "running", **kw: object) -> SupervisorDoc:
    fields: dict[str, object] = {
        "pid": SUP_PID,
        "pid_start": SUP_START,
        "state": state,
        "child_pid": CHILD_PID,
        "child_start": CHILD_START,
        "attempt": 2,
        "restarts": 1,
        "max_restarts": 5,
    }
    fields.update(kw)
    return SupervisorDoc(**fields)  # type: ignore[arg-type]


def snap(**kw: object) -> Snapshot:
    return Snapshot(directory="state-under-test", **kw)  # type: ignore[arg-type]


def live(pid: int = PID, start: float = PID_START) -> ProcFact:
    return ProcFact(pid, exists=True, start_time=start, uid=0)


def gone(pid: int = PID) -> ProcFact:
    return ProcFact(pid, exists=False)


def facts(*rows: ProcFact) -> ProcessFacts:
    return ProcessFacts(tuple(rows))


@dataclass(frozen=True)
class Row:
    snap: Snapshot
    procs: ProcessFacts
    state: State
    reason: tuple[str, ...] = ()  # substrings the reason must contain
    not_reason: tuple[str, ...] = ()
    now: Now = NOW
    stale_after: float | None = None
    extra: dict[str, object] = field(default_factory=dict)  # Health attributes to check


SUPERVISED_CHILD_HB = {"pid": CHILD_PID, "pid_start": CHILD_START}

RULES: dict[str, Row] = {
    # ------------------------------------------------ nothing to judge
    "empty_snapshot_is_unknown": Row(snap(), facts(), State.UNKNOWN, ("no state files",)),
    "only_an_unreadable_heartbeat_is_unknown_and_says_why": Row(
        snap(heartbeat=Unreadable("heartbeat.json is not valid JSON")),
        facts(),
        State.UNKNOWN,
        ("unreadable", "not valid JSON"),
        extra={"details": (("heartbeat", "unreadable: heartbeat.json is not valid JSON"),)},
    ),
    "checkpoint_without_heartbeat_is_unknown": Row(
        snap(checkpoint=Checkpoint(at_ms=NOW_MS, tested=3, total=10)),
        facts(),
        State.UNKNOWN,
        ("no heartbeat",),
    ),
    # ------------------------------------------------ final statuses
    "complete_status_is_complete_even_with_the_process_gone": Row(
        snap(heartbeat=hb(age=5000), status=status("COMPLETE", "campaign complete: 118 items")),
        facts(gone()),
        State.COMPLETE,
        ("campaign complete",),
    ),
    "supervisor_complete_is_complete": Row(
        snap(heartbeat=hb(**SUPERVISED_CHILD_HB), supervisor=sup("complete")),
        facts(gone(SUP_PID), gone(CHILD_PID)),
        State.COMPLETE,
    ),
    "crashed_status_is_crashed_with_its_message": Row(
        snap(heartbeat=hb(), status=status("CRASHED", "uncaught ValueError: boom")),
        facts(gone()),
        State.CRASHED,
        ("uncaught ValueError: boom",),
    ),
    "crashed_status_with_exit_code_names_it": Row(
        snap(heartbeat=hb(), status=status("CRASHED", "exited", exit_code=3)),
        facts(gone()),
        State.CRASHED,
        ("exit code 3",),
    ),
    "terminated_status_is_terminated": Row(
        snap(heartbeat=hb(), status=status("TERMINATED", "SIGTERM received", signal="SIGTERM")),
        facts(gone()),
        State.TERMINATED,
        ("SIGTERM",),
    ),
    "interrupted_status_reads_terminated": Row(
        snap(heartbeat=hb(), status=status("INTERRUPTED", "SIGINT received (Ctrl-C)")),
        facts(gone()),
        State.TERMINATED,
        ("SIGINT",),
    ),
    # ------------------------------------------------ unsupervised, by heartbeat and pid
    "fresh_heartbeat_live_pid_no_supervisor_is_healthy": Row(
        snap(heartbeat=hb(age=5), status=status("RUNNING")),
        facts(live()),
        State.HEALTHY,
        ("no supervisor", "no auto-restart", "SD-057", "57/118"),
        extra={"supervised": False},
    ),
    "stale_heartbeat_is_stale_and_names_age_and_limit": Row(
        snap(heartbeat=hb(age=742)),
        facts(live()),
        State.STALE,
        ("12m22s", "limit 10m00s", "SD-057 57/118"),
    ),
    "heartbeat_just_under_the_limit_is_healthy": Row(
        snap(heartbeat=hb(age=599)), facts(live()), State.HEALTHY
    ),
    "pid_gone_without_final_status_is_crashed": Row(
        snap(heartbeat=hb(age=5), status=status("RUNNING")),
        facts(gone()),
        State.CRASHED,
        (str(PID), "gone without a final status"),
    ),
    "reused_pid_with_other_start_time_is_not_alive": Row(
        snap(heartbeat=hb(age=5)),
        facts(live(PID, PID_START + 3600)),
        State.CRASHED,
        ("gone",),
    ),
    "start_time_within_slack_is_the_same_process": Row(
        snap(heartbeat=hb(age=5)),
        facts(live(PID, PID_START + 0.5)),
        State.HEALTHY,
    ),
    "zombie_is_not_alive": Row(
        snap(heartbeat=hb(age=5)),
        facts(ProcFact(PID, exists=True, zombie=True)),
        State.CRASHED,
        ("gone",),
    ),
    "heartbeat_without_pid_is_judged_by_age_alone": Row(
        snap(heartbeat=hb(age=5, pid=None, pid_start=None)),
        facts(),
        State.HEALTHY,
        ("not checked",),
    ),
    "heartbeat_without_timestamp_is_unknown": Row(
        snap(heartbeat=Heartbeat(at_ms=None, pid=PID)),
        facts(live()),
        State.UNKNOWN,
        ("no usable timestamp",),
    ),
    "heartbeat_with_no_fields_at_all_is_unknown": Row(
        snap(heartbeat=Heartbeat(at_ms=None)), facts(), State.UNKNOWN
    ),
    # ------------------------------------------------ clocks
    "future_heartbeat_without_boottime_is_stale_and_says_future": Row(
        snap(heartbeat=hb(age=-3600)),
        facts(live()),
        State.STALE,
        ("future",),
        now=NOW_NO_BOOTTIME,
    ),
    "heartbeat_a_second_ahead_is_rounding_not_future": Row(
        snap(heartbeat=hb(age=-1)), facts(live()), State.HEALTHY, now=NOW_NO_BOOTTIME
    ),
    "other_boot_id_is_crashed_rebooted": Row(
        # no start time recorded (a seed writer) and the pid exists again after the reboot
        snap(heartbeat=hb(age=5, pid_start=None, boot_id="old-boot", boottime=10.0)),
        facts(live(PID, start=NOW_MS / 1000 - 60)),
        State.CRASHED,
        ("rebooted",),
    ),
    "boottime_age_wins_over_a_wall_clock_jump_forward": Row(
        # the wall clock jumped 3 days ahead; the boot clock says 5 s
        snap(heartbeat=hb(age=3 * 86400, boot_id=BOOT, boottime=NOW.boottime - 5)),  # type: ignore[operator]
        facts(live()),
        State.HEALTHY,
    ),
    "boottime_age_wins_over_a_wall_clock_jump_back": Row(
        # the wall clock was set back (the heartbeat looks an hour in the future)
        snap(heartbeat=hb(age=-3600, boot_id=BOOT, boottime=NOW.boottime - 5)),  # type: ignore[operator]
        facts(live()),
        State.HEALTHY,
        not_reason=("future",),
    ),
    "boottime_says_stale_though_wall_clock_says_fresh": Row(
        snap(heartbeat=hb(age=5, boot_id=BOOT, boottime=NOW.boottime - 700)),  # type: ignore[operator]
        facts(live()),
        State.STALE,
        ("11m40s",),
    ),
    # ------------------------------------------------ seed field names (through parse)
    "seed_heartbeat_fields_are_understood": Row(
        snap(
            heartbeat=Heartbeat.parse(
                {
                    "timestamp": NOW_MS - 5000,
                    "current_sd": "SD-023",
                    "progress": "23/118",
                    "percent": "19.5",
                    "status": "running",
                    "pid": PID,
                }
            )
        ),
        facts(live()),
        State.HEALTHY,
        ("SD-023", "23/118"),
        extra={"progress.percent": 19.5, "progress.item": "SD-023"},
    ),
    "seed_percent_as_number_and_timestamp_in_seconds": Row(
        snap(heartbeat=Heartbeat.parse({"timestamp": NOW_MS // 1000 - 700, "percent": 19.5})),
        facts(),
        State.STALE,
        ("11m40s",),
        extra={"progress.percent": 19.5},
    ),
    "seed_checkpoint_last_sd_gives_the_item": Row(
        snap(
            heartbeat=Heartbeat.parse({"timestamp": NOW_MS - 1000, "pid": PID}),
            checkpoint=Checkpoint.parse({"last_sd": "SD-099", "tested": 99, "total": 118}),
        ),
        facts(live()),
        State.HEALTHY,
        ("SD-099", "99/118"),
    ),
    # ------------------------------------------------ supervised
    "supervisor_backoff_is_restarting": Row(
        snap(
            heartbeat=hb(**SUPERVISED_CHILD_HB),
            supervisor=sup("backoff", child_pid=None, next_restart_ms=NOW_MS + 20_000),
            status=status("CRASHED", "uncaught KeyError"),
        ),
        facts(live(SUP_PID, SUP_START)),
        State.RESTARTING,
        ("restart 1 of 5", "20s", "KeyError"),  # restarts counts the one waited for
    ),
    "supervisor_gave_up_is_crashed": Row(
        snap(heartbeat=hb(**SUPERVISED_CHILD_HB), supervisor=sup("gave_up", restarts=5)),
        facts(gone(SUP_PID), gone(CHILD_PID)),
        State.CRASHED,
        ("gave up", "5 restarts"),
    ),
    "supervisor_running_child_alive_is_healthy_and_supervised": Row(
        snap(heartbeat=hb(**SUPERVISED_CHILD_HB), supervisor=sup("running")),
        facts(live(SUP_PID, SUP_START), live(CHILD_PID, CHILD_START)),
        State.HEALTHY,
        not_reason=("no supervisor",),
        extra={"supervised": True, "restarts": 1, "max_restarts": 5},
    ),
    "supervisor_running_child_hung_is_stale": Row(
        snap(heartbeat=hb(age=900, **SUPERVISED_CHILD_HB), supervisor=sup("running")),
        facts(live(SUP_PID, SUP_START), live(CHILD_PID, CHILD_START)),
        State.STALE,
    ),
    "supervisor_running_child_gone_is_restarting": Row(
        snap(heartbeat=hb(**SUPERVISED_CHILD_HB), supervisor=sup("running")),
        facts(live(SUP_PID, SUP_START), gone(CHILD_PID)),
        State.RESTARTING,
    ),
    "supervisor_stopping_is_terminated": Row(
        snap(heartbeat=hb(**SUPERVISED_CHILD_HB), supervisor=sup("stopping")),
        facts(live(SUP_PID, SUP_START), live(CHILD_PID, CHILD_START)),
        State.TERMINATED,
    ),
    "supervisor_dead_child_alive_is_healthy_unsupervised": Row(
        snap(heartbeat=hb(**SUPERVISED_CHILD_HB), supervisor=sup("running")),
        facts(gone(SUP_PID), live(CHILD_PID, CHILD_START)),
        State.HEALTHY,
        ("unsupervised",),
    ),
    "supervisor_pid_reused_counts_as_dead": Row(
        snap(heartbeat=hb(**SUPERVISED_CHILD_HB), supervisor=sup("running")),
        facts(live(SUP_PID, SUP_START + 999), live(CHILD_PID, CHILD_START)),
        State.HEALTHY,
        ("unsupervised",),
    ),
    "supervisor_and_child_gone_is_crashed": Row(
        snap(heartbeat=hb(**SUPERVISED_CHILD_HB), supervisor=sup("running")),
        facts(gone(SUP_PID), gone(CHILD_PID)),
        State.CRASHED,
        ("gone",),
    ),
    "supervisor_gone_after_a_stop_is_terminated": Row(
        snap(heartbeat=hb(**SUPERVISED_CHILD_HB), supervisor=sup("stopped")),
        facts(gone(SUP_PID), gone(CHILD_PID)),
        State.TERMINATED,
    ),
    "supervised_command_without_heartbeat_fresh_output_is_healthy": Row(
        snap(supervisor=sup("running"), output_mtime_ms=NOW_MS - 3000),
        facts(live(SUP_PID, SUP_START), live(CHILD_PID, CHILD_START)),
        State.HEALTHY,
        ("output",),
    ),
    "supervised_command_silent_too_long_is_stale": Row(
        snap(supervisor=sup("running"), output_mtime_ms=NOW_MS - 700_000),
        facts(live(SUP_PID, SUP_START), live(CHILD_PID, CHILD_START)),
        State.STALE,
        ("output",),
    ),
    # ------------------------------------------------ the stale limit
    "stale_after_override_wins": Row(
        snap(heartbeat=hb(age=100)),
        facts(live()),
        State.STALE,
        ("limit 1m00s",),
        stale_after=60,
        extra={"stale_after": 60},
    ),
    "stale_after_override_can_lengthen_the_limit": Row(
        snap(heartbeat=hb(age=700)), facts(live()), State.HEALTHY, stale_after=3600
    ),
    "stale_after_from_supervisor_settings": Row(
        snap(
            heartbeat=hb(age=100, **SUPERVISED_CHILD_HB),
            supervisor=sup("running", settings=(("stale_after", "30"),)),
        ),
        facts(live(SUP_PID, SUP_START), live(CHILD_PID, CHILD_START)),
        State.STALE,
        extra={"stale_after": 30},
    ),
    "stale_after_from_the_heartbeat": Row(
        snap(heartbeat=hb(age=100, stale_after=45.0)),
        facts(live()),
        State.STALE,
        extra={"stale_after": 45},
    ),
    # ------------------------------------------------ records left by an earlier run
    "final_status_older_than_the_heartbeat_is_an_earlier_runs": Row(
        snap(
            heartbeat=hb(age=2),
            status=StatusDoc(state="COMPLETE", message="old run done", at_ms=NOW_MS - 9_000_000),
        ),
        facts(live()),
        State.HEALTHY,
        ("no supervisor",),
        not_reason=("old run",),
    ),
    "old_crashed_status_does_not_hide_a_live_beating_campaign": Row(
        snap(
            heartbeat=hb(age=2),
            status=StatusDoc(state="CRASHED", message="boom", at_ms=NOW_MS - 9_000_000),
        ),
        facts(live()),
        State.HEALTHY,
    ),
    "final_status_only_in_the_heartbeat_counts": Row(
        snap(heartbeat=hb(age=30, status="COMPLETE")),
        facts(gone()),
        State.COMPLETE,
        ("the heartbeat says COMPLETE",),
    ),
    "dead_supervisors_leftover_record_with_a_newer_unsupervised_heartbeat": Row(
        snap(
            heartbeat=hb(age=2),
            supervisor=sup("stopped", at_ms=NOW_MS - 9_000_000),
        ),
        facts(live(), gone(SUP_PID), gone(CHILD_PID)),
        State.HEALTHY,
        ("no supervisor",),
    ),
    "dead_supervisors_complete_record_does_not_finish_a_new_run": Row(
        snap(
            heartbeat=hb(age=2),
            supervisor=sup("complete", at_ms=NOW_MS - 9_000_000),
        ),
        facts(live(), gone(SUP_PID), gone(CHILD_PID)),
        State.HEALTHY,
    ),
    "backoff_long_overdue_is_a_stuck_supervisor": Row(
        snap(
            heartbeat=hb(**SUPERVISED_CHILD_HB),
            supervisor=sup("backoff", child_pid=None, next_restart_ms=NOW_MS - 3_600_000),
        ),
        facts(live(SUP_PID, SUP_START)),
        State.STALE,
        ("overdue",),
    ),
    "pid_without_start_time_that_started_after_the_heartbeat_is_not_the_writer": Row(
        snap(heartbeat=hb(age=60, pid_start=None)),
        facts(live(PID, start=NOW_MS / 1000 - 10)),
        State.CRASHED,
        ("gone without a final status",),
    ),
    "pid_without_start_time_that_started_before_the_heartbeat_may_be_the_writer": Row(
        snap(heartbeat=hb(age=60, pid_start=None)),
        facts(live(PID, start=NOW_MS / 1000 - 600)),
        State.HEALTHY,
    ),
    "previous_attempt_is_known_by_attempt_number_not_the_wall_clock": Row(
        snap(
            heartbeat=hb(age=1, attempt=1, **SUPERVISED_CHILD_HB),
            supervisor=sup("running", attempt=2, child_started_ms=NOW_MS - 700_000),
            output_mtime_ms=NOW_MS - 700_000,
        ),
        facts(live(SUP_PID, SUP_START), live(CHILD_PID, CHILD_START)),
        State.STALE,
        ("last output",),
    ),
}


def _attr(obj: object, dotted: str) -> object:
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj


@pytest.mark.parametrize("row", list(RULES.values()), ids=list(RULES))
def test_rule(row: Row) -> None:
    health = judge(row.snap, row.now, row.procs, stale_after=row.stale_after)
    assert health.state == row.state, health.reason
    for part in row.reason:
        assert part in health.reason, f"{part!r} not in {health.reason!r}"
    for part in row.not_reason:
        assert part not in health.reason, f"{part!r} in {health.reason!r}"
    assert health.exit_code == EXPECTED_EXIT[row.state]
    assert health.action and "\n" not in health.reason
    for name, expected in row.extra.items():
        assert _attr(health, name) == expected, name


def test_every_state_has_a_rule() -> None:
    assert {row.state for row in RULES.values()} == set(State)


@pytest.mark.parametrize(("state", "code"), sorted(EXPECTED_EXIT.items()))
def test_exit_code_per_state(state: State, code: int) -> None:
    row = next(r for r in RULES.values() if r.state == state)
    assert judge(row.snap, row.now, row.procs, row.stale_after).exit_code == code


def test_just_restarted_child_is_not_stale_from_the_previous_attempts_heartbeat() -> None:
    # Attempt 1 hung (last heartbeat 700 s ago from PID) and was restarted; the
    # new child started 2 s ago and has not written its first heartbeat yet.
    row = Row(
        snap(
            heartbeat=hb(age=700),
            supervisor=sup("running", child_started_ms=NOW_MS - 2000),
        ),
        facts(gone(PID), live(SUP_PID, SUP_START), live(CHILD_PID, CHILD_START)),
        State.HEALTHY,
    )
    health = judge(row.snap, row.now, row.procs)
    assert health.state == State.HEALTHY, health.reason


def test_judge_is_pure_same_inputs_same_answer() -> None:
    row = RULES["stale_heartbeat_is_stale_and_names_age_and_limit"]
    first = judge(row.snap, row.now, row.procs)
    assert all(judge(row.snap, row.now, row.procs) == first for _ in range(3))
    # time is passed in: a later `now` changes the age, nothing else does
    later = judge(row.snap, replace(row.now, wall_ms=NOW_MS + 60_000), row.procs)
    assert later.freshness.age == pytest.approx(first.freshness.age + 60)  # type: ignore[operator]


def test_unreadable_files_are_listed_in_details() -> None:
    s = snap(
        heartbeat=hb(),
        checkpoint=Unreadable("checkpoint.json is empty"),
        status=Unreadable("status.json is too large"),
        problems=("state directory x does not exist",),
    )
    details = dict(judge(s, NOW, facts(live())).details)
    assert details["checkpoint"] == "unreadable: checkpoint.json is empty"
    assert details["status"] == "unreadable: status.json is too large"
    assert "does not exist" in details["problem"]


# ---------------------------------------------------------------- real processes


def _sleeper(procs: ProcessTracker) -> subprocess.Popen[bytes]:
    return procs.start([sys.executable, "-c", "import time; time.sleep(60)"])


def test_real_live_process_with_its_recorded_start_is_alive(procs: ProcessTracker) -> None:
    proc = _sleeper(procs)
    start = procs_mod.start_time(proc.pid)
    assert start is not None
    assert procs_mod.alive(proc.pid, start)
    assert procs_mod.alive(proc.pid, None)
    found = procs_mod.probe_all([proc.pid, None, -1])
    health = judge(snap(heartbeat=hb(pid=proc.pid, pid_start=start)), NOW, found)
    assert health.state == State.HEALTHY, health.reason


def test_real_reused_pid_is_not_alive(procs: ProcessTracker) -> None:
    proc = _sleeper(procs)
    start = procs_mod.start_time(proc.pid)
    assert start is not None
    # the pid exists, but it is not the process recorded an hour earlier
    assert not procs_mod.alive(proc.pid, start - 3600)
    found = procs_mod.probe_all([proc.pid])
    health = judge(snap(heartbeat=hb(pid=proc.pid, pid_start=start - 3600)), NOW, found)
    assert health.state == State.CRASHED


def test_real_zombie_is_not_alive(procs: ProcessTracker) -> None:
    proc = _sleeper(procs)
    start = procs_mod.start_time(proc.pid)
    os.kill(proc.pid, signal.SIGKILL)
    # not reaped yet: the pid still exists (psutil.pid_exists says yes), as a zombie
    fact = wait_until(
        lambda: (f := procs_mod.probe(proc.pid)).zombie and f,
        what="the killed child to become a zombie",
    )
    assert fact.exists
    assert not procs_mod.alive(proc.pid, start)
    health = judge(
        snap(heartbeat=hb(pid=proc.pid, pid_start=start)), NOW, procs_mod.probe_all([proc.pid])
    )
    assert health.state == State.CRASHED


def test_real_reaped_process_is_not_alive(procs: ProcessTracker) -> None:
    proc = procs.start([sys.executable, "-c", "pass"])
    start = procs_mod.start_time(proc.pid)
    proc.wait(timeout=30)
    # even if the pid were reused at once, the start time would not match
    assert not procs_mod.alive(proc.pid, start if start is not None else 1.0)
    assert procs_mod.alive(None, None) is False
    assert procs_mod.alive(0, None) is False
