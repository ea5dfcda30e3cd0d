"""Parsing state documents: clean models out of tolerant input, or Unreadable with a reason."""

from __future__ import annotations

import json

import pytest

from campaign_tui.models import (
    Checkpoint,
    Heartbeat,
    RestartRecord,
    Snapshot,
    StatusDoc,
    SupervisorDoc,
    Unreadable,
)

PARSERS = [Heartbeat.parse, Checkpoint.parse, StatusDoc.parse, SupervisorDoc.parse, RestartRecord.parse]


@pytest.mark.parametrize("parse", PARSERS, ids=lambda p: p.__qualname__)
@pytest.mark.parametrize("doc", [None, [], [1, 2], "text", 3, 2.5, True], ids=repr)
def test_not_an_object_is_unreadable(parse, doc) -> None:
    result = parse(doc)
    assert isinstance(result, Unreadable)
    assert "not a JSON object" in str(result)
    assert str(result).startswith("unreadable: ")


def test_heartbeat_our_own_fields() -> None:
    hb = Heartbeat.parse(
        {
            "timestamp": 1_700_000_000_123,
            "iso_time": "2023-11-14T22:13:20.123+00:00",
            "current_item": "SD-057",
            "progress": "57/118",
            "tested": 57,
            "total": 118,
            "percent": "48.3",
            "status": "running",
            "pid": 1234,
            "pid_start": 1_699_999_000.25,
            "attempt": 2,
            "boot_id": "abc-123",
            "boottime": 5000.5,
            "stale_after": 90,
            "diag_signal": "SIGUSR1",
            "source": "campaign",
        }
    )
    assert hb == Heartbeat(
        at_ms=1_700_000_000_123,
        item="SD-057",
        tested=57,
        total=118,
        percent=48.3,
        status="RUNNING",
        pid=1234,
        pid_start=1_699_999_000.25,
        attempt=2,
        boot_id="abc-123",
        boottime=5000.5,
        stale_after=90.0,
        diag_signal="SIGUSR1",
        source="campaign",
    )


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        # the seed's names and shapes
        ({"current_sd": "SD-023"}, {"item": "SD-023"}),
        ({"current_item": "new", "current_sd": "old"}, {"item": "new"}),
        ({"percent": "19.5"}, {"percent": 19.5}),
        ({"percent": 19.5}, {"percent": 19.5}),
        ({"percent": "19.5%"}, {"percent": 19.5}),
        ({"percent": 20}, {"percent": 20.0}),
        ({"progress": "23/118"}, {"tested": 23, "total": 118, "percent": 19.5}),
        ({"progress": " 23 / 118 "}, {"tested": 23, "total": 118}),
        ({"progress": "23/118", "tested": 30}, {"tested": 30, "total": 118}),
        ({"progress": "?/118"}, {"tested": None, "total": None}),
        ({"progress": "junk"}, {"tested": None, "total": None}),
        ({"timestamp": 1_700_000_000_000}, {"at_ms": 1_700_000_000_000}),
        ({"timestamp": 1_700_000_000}, {"at_ms": 1_700_000_000_000}),  # seconds → ms
        ({"timestamp": "1700000000000"}, {"at_ms": 1_700_000_000_000}),
        ({"timestamp": 1_700_000_000.25}, {"at_ms": 1_700_000_000_000}),  # time.time()
        # wrong types and nonsense become None, not errors
        ({"timestamp": "yesterday"}, {"at_ms": None}),
        ({"timestamp": True}, {"at_ms": None}),
        ({"timestamp": [1]}, {"at_ms": None}),
        ({"timestamp": 10**16}, {"at_ms": None}),
        ({"tested": -3, "total": -1}, {"tested": None, "total": None}),
        ({"tested": True}, {"tested": None}),
        ({"pid": 0}, {"pid": None}),
        ({"pid": -5}, {"pid": None}),
        ({"pid": "77"}, {"pid": 77}),
        ({"pid": {"x": 1}}, {"pid": None}),
        ({"percent": "NaN"}, {"percent": None}),
        ({"percent": "inf"}, {"percent": None}),
        ({"stale_after": 0}, {"stale_after": None}),
        ({"stale_after": -10}, {"stale_after": None}),
        ({"current_item": ["a"]}, {"item": None}),
        ({"current_item": 17}, {"item": "17"}),
        ({"status": ""}, {"status": None}),
        ({}, {"at_ms": None, "item": None, "pid": None, "tested": None}),
    ],
    ids=lambda v: json.dumps(v)[:60] if isinstance(v, dict) else None,
)
def test_heartbeat_tolerant_fields(doc: dict, expected: dict) -> None:
    hb = Heartbeat.parse(doc)
    assert isinstance(hb, Heartbeat)
    for name, value in expected.items():
        assert getattr(hb, name) == value, name


def test_heartbeat_item_is_sanitized_once_at_the_edge() -> None:
    hb = Heartbeat.parse({"current_item": "SD\x1b]0;pwned\x07-1\x1b[31m\n[b]x[/b]", "timestamp": 1})
    assert isinstance(hb, Heartbeat)
    assert hb.item == "SD-1⏎[b]x[/b]"


def test_long_item_is_capped() -> None:
    hb = Heartbeat.parse({"current_item": "x" * 100_000})
    assert isinstance(hb, Heartbeat)
    assert hb.item is not None and len(hb.item) <= 500


def test_checkpoint_seed_and_own_fields() -> None:
    cp = Checkpoint.parse(
        {
            "timestamp": 1_700_000_000_000,
            "tested": 57,
            "total": 118,
            "passed": 50,
            "failed": "5",
            "errors": 2,
            "last_sd": "SD-057",
            "can_resume": True,
        }
    )
    assert cp == Checkpoint(
        at_ms=1_700_000_000_000,
        tested=57,
        total=118,
        passed=50,
        failed=5,
        errors=2,
        skipped=None,
        last_item="SD-057",
        can_resume=True,
    )


@pytest.mark.parametrize("value", ["true", 1, "yes", None, [True]])
def test_checkpoint_can_resume_only_when_literally_true(value: object) -> None:
    cp = Checkpoint.parse({"can_resume": value})
    assert isinstance(cp, Checkpoint) and cp.can_resume is False


def test_status_doc() -> None:
    st = StatusDoc.parse(
        {
            "status": "crashed",
            "message": "uncaught ValueError: boom",
            "timestamp": 1_700_000_000_000,
            "exit_code": 1,
            "signal": "SIGKILL",
            "traceback": "Traceback (most recent call last):\n  File \"x\"\x1b[2J\nValueError: boom",
        }
    )
    assert isinstance(st, StatusDoc)
    assert st.state == "CRASHED" and st.final
    assert st.message == "uncaught ValueError: boom"
    assert (st.exit_code, st.signal, st.at_ms) == (1, "SIGKILL", 1_700_000_000_000)
    assert st.traceback is not None
    assert st.traceback.splitlines()[-1] == "ValueError: boom"
    assert "\x1b" not in st.traceback


@pytest.mark.parametrize(
    "doc", [{}, {"status": ""}, {"status": None}, {"status": ["COMPLETE"]}, {"message": "x"}]
)
def test_status_without_a_status_is_unreadable(doc: dict) -> None:
    assert isinstance(StatusDoc.parse(doc), Unreadable)


def test_status_running_is_not_final() -> None:
    st = StatusDoc.parse({"status": "RUNNING", "traceback": 12})
    assert isinstance(st, StatusDoc) and not st.final and st.traceback is None


def test_supervisor_doc() -> None:
    sup = SupervisorDoc.parse(
        {
            "pid": 10,
            "pid_start": 1.5,
            "state": "backoff",
            "child_pid": None,
            "attempt": 3,
            "restarts": 2,
            "max_restarts": 5,
            "next_restart_ms": 1_700_000_020_000,
            "command": ["node", "campaign.js", "\x1b[31mred"],
            "cwd": "/srv/campaign",
            "settings": {"stale_after": 600, "backoff": [5, 10]},
        }
    )
    assert isinstance(sup, SupervisorDoc)
    assert (sup.pid, sup.state, sup.child_pid, sup.restarts) == (10, "backoff", None, 2)
    assert sup.command == ("node", "campaign.js", "red")
    assert sup.setting("stale_after") == "600"
    assert sup.setting("backoff") == "5 10"
    assert sup.setting("missing") is None


@pytest.mark.parametrize("state", [None, "", "RUNNING", "dancing", 3, ["running"]])
def test_supervisor_with_unknown_state_is_unreadable(state: object) -> None:
    assert isinstance(SupervisorDoc.parse({"pid": 1, "state": state}), Unreadable)


def test_supervisor_wrong_shaped_command_and_settings_are_dropped() -> None:
    sup = SupervisorDoc.parse({"state": "running", "command": "ls -l", "settings": [1, 2]})
    assert isinstance(sup, SupervisorDoc)
    assert sup.command == () and sup.settings == ()


def test_restart_record() -> None:
    rec = RestartRecord.parse(
        {"attempt": 2, "started": 1000, "ended": 2000, "exit_code": -9, "signal": "SIGKILL",
         "reason": "crash", "uptime": 1.0, "next_delay": 10}
    )
    assert isinstance(rec, RestartRecord)
    assert (rec.attempt, rec.exit_code, rec.signal, rec.reason, rec.next_delay) == (
        2, -9, "SIGKILL", "crash", 10.0
    )
    assert RestartRecord.parse({}).reason == "unknown"  # type: ignore[union-attr]


def test_snapshot_empty_only_without_any_state() -> None:
    assert Snapshot(directory="d").empty
    assert Snapshot(directory="d", recent_alerts=()).empty
    assert not Snapshot(directory="d", heartbeat=Unreadable("x")).empty
    assert not Snapshot(directory="d", status=StatusDoc("RUNNING")).empty


@pytest.mark.parametrize(
    ("parse", "field_name"),
    [
        *[(Heartbeat.parse, f) for f in ("timestamp", "pid", "percent", "tested", "boottime", "stale_after", "attempt")],
        *[(Checkpoint.parse, f) for f in ("timestamp", "tested", "passed")],
        *[(StatusDoc.parse, f) for f in ("timestamp", "exit_code")],
        *[(SupervisorDoc.parse, f) for f in ("timestamp", "pid", "child_start", "restarts")],
        *[(RestartRecord.parse, f) for f in ("exit_code", "uptime", "next_delay", "started")],
    ],
    ids=lambda v: v.__qualname__ if callable(v) else v,
)
def test_json_integer_too_big_for_a_float_does_not_raise(parse, field_name: str) -> None:
    # json.loads accepts a 400-digit integer (the str→int limit is 4300 digits)
    huge = "1" + "0" * 400
    doc = json.loads(f'{{"status": "RUNNING", "state": "running", "{field_name}": {huge}}}')
    result = parse(doc)  # must not raise OverflowError
    assert not isinstance(result, Unreadable), result
