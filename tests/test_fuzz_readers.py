"""Random and corrupt input never makes a reader, a parser or the judgement raise."""

from __future__ import annotations

import json
import math
import sys
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from campaign_tui import statedir
from campaign_tui.clock import Now
from campaign_tui.health import EXIT_CODES, State, judge
from campaign_tui.models import (
    Checkpoint,
    Heartbeat,
    RestartRecord,
    Snapshot,
    StatusDoc,
    SupervisorDoc,
    Unreadable,
)
from campaign_tui.procs import ProcessFacts, ProcFact
from campaign_tui.snapshot import probe_processes, read_snapshot
from campaign_tui.statedir import StateDir
from campaign_tui.writer import heartbeat_doc

FUZZ = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

PARSERS = {
    "heartbeat": Heartbeat.parse,
    "checkpoint": Checkpoint.parse,
    "status": StatusDoc.parse,
    "supervisor": SupervisorDoc.parse,
    "restart": RestartRecord.parse,
}
MODELS = (Heartbeat, Checkpoint, StatusDoc, SupervisorDoc, RestartRecord)

# Every field name a parser looks at, so random documents hit the real code paths.
KNOWN_KEYS = [
    "timestamp", "iso_time", "current_item", "current_sd", "item", "progress", "tested",
    "total", "percent", "status", "state", "pid", "pid_start", "attempt", "boot_id",
    "boottime", "stale_after", "diag_signal", "source", "passed", "failed", "errors",
    "skipped", "last_item", "last_sd", "can_resume", "message", "reason", "exit_code",
    "signal", "traceback", "child_pid", "child_start", "restarts", "max_restarts",
    "next_restart_ms", "started_ms", "child_started_ms", "command", "cwd", "settings",
    "started", "ended", "uptime", "next_delay",
]  # fmt: skip

NASTY_TEXT = st.sampled_from(
    [
        "", " ", "NaN", "-inf", "1e999", "23/118", "/", "5/", "x/y", "19.5%", "%", "0x1f",
        "\x1b[2J\x1b]0;title\x07", "\x00\x01\x9b", "[b]markup[/b]", "\u202eevil", "9" * 5000,
        "running", "backoff", "gave_up", "complete", "COMPLETE", "CRASHED", "TERMINATED",
        "INTERRUPTED", "stale_after", "1700000000000", "-1", "1e15", "１２",
    ]
)  # fmt: skip
TEXT = st.one_of(st.text(max_size=60), NASTY_TEXT)
NUMBERS = st.one_of(
    st.integers(),
    st.integers(min_value=-(10**600), max_value=10**600),  # JSON allows it; float() does not
    st.sampled_from([0, -1, 1, 2**63, -(2**63), 10**15, 10**15 + 1, 10**11, 10**400]),
    st.floats(allow_nan=True, allow_infinity=True),
)
SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, TEXT)


def nested(depth: int) -> object:
    value: object = 1
    for n in range(depth):
        value = [value] if n % 2 else {"settings": value}
    return value


DEEP = st.integers(min_value=1, max_value=sys.getrecursionlimit() - 100).map(nested)

JSON = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=6),
        st.dictionaries(st.one_of(st.sampled_from(KNOWN_KEYS), st.text(max_size=8)), inner, max_size=8),
    ),
    max_leaves=30,
)
DOCS = st.one_of(
    st.dictionaries(st.sampled_from(KNOWN_KEYS), st.one_of(JSON, DEEP), max_size=20),
    JSON,
    DEEP,
)


def _json_bytes(value: object) -> bytes:
    try:
        return json.dumps(value).encode()
    except (ValueError, RecursionError):
        return b"{}"


def _good_heartbeat() -> bytes:
    return json.dumps(heartbeat_doc(item="SD-1", tested=1, total=2)).encode()


@st.composite
def corrupt(draw: st.DrawFn, base: st.SearchStrategy[bytes]) -> bytes:
    """Valid JSON bytes, then truncated, bit-flipped or spliced."""
    data = bytearray(draw(base))
    how = draw(st.sampled_from(["as-is", "truncate", "flip", "splice", "nul"]))
    if how == "truncate" and data:
        del data[draw(st.integers(0, len(data) - 1)) :]
    elif how == "flip" and data:
        for _ in range(draw(st.integers(1, 5))):
            at = draw(st.integers(0, len(data) - 1))
            data[at] ^= 1 << draw(st.integers(0, 7))
    elif how == "splice":
        data[draw(st.integers(0, len(data))) : 0] = draw(st.binary(max_size=20))
    elif how == "nul":
        data = bytearray(len(data))
    return bytes(data)


FILE_BYTES = st.one_of(
    st.binary(max_size=300),
    corrupt(DOCS.map(_json_bytes)),
    corrupt(st.just(_good_heartbeat())),
    DOCS.map(_json_bytes),
)


def _check_model(result: object) -> None:
    assert isinstance(result, (*MODELS, Unreadable)), result
    if isinstance(result, Unreadable):
        assert isinstance(result.why, str) and result.why
        return
    # clean values only after parsing
    for name in ("at_ms", "tested", "total", "pid", "attempt", "exit_code"):
        value = getattr(result, name, None)
        assert value is None or (isinstance(value, int) and not isinstance(value, bool)), name
    for name in ("percent", "pid_start", "boottime", "stale_after", "uptime", "next_delay"):
        value = getattr(result, name, None)
        assert value is None or (isinstance(value, float) and math.isfinite(value)), name
    for name in ("item", "status", "message", "last_item", "boot_id", "signal"):
        value = getattr(result, name, None)
        assert value is None or (isinstance(value, str) and "\x1b" not in value), name


BIG = 10**400  # a valid JSON integer that float() cannot hold


@FUZZ
@given(DOCS)
@example({"timestamp": BIG})  # a JSON integer too big for a float
def test_every_parse_takes_any_json_value(doc: object) -> None:
    for parse in PARSERS.values():
        _check_model(parse(doc))


@FUZZ
@given(FILE_BYTES)
@example(b'{"total": %d}' % BIG)
def test_read_json_on_a_real_file_never_raises(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "heartbeat.json"
        path.write_bytes(data)
        doc = statedir.read_json(path)
        if doc is None:  # `null` (a bug of its own, see test_statedir); the file is there
            assert data.strip() == b"null"
            return
        for parse in PARSERS.values():
            _check_model(doc if isinstance(doc, Unreadable) else parse(doc))
        tail = statedir.read_tail(path, 64)
        assert isinstance(tail, (bytes, Unreadable))


SNAPSHOT_FILES = st.fixed_dictionaries(
    {},
    optional={
        name: FILE_BYTES
        for name in (
            "heartbeat.json",
            "checkpoint.json",
            "status.json",
            "supervisor.json",
            "restarts.jsonl",
            "alerts.log",
            "output.log",
            "campaign-heartbeat.txt",
            "campaign-status.json",
        )
    },
)


@FUZZ
@given(SNAPSHOT_FILES, st.integers(min_value=0, max_value=2**40))
def test_read_snapshot_and_judge_on_a_real_directory_never_raise(
    files: dict[str, bytes], wall_ms: int
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for name, data in files.items():
            (Path(tmp) / name).write_bytes(data)
        for layout in ("standard", "legacy"):
            snap = read_snapshot(StateDir(Path(tmp), layout))
            assert isinstance(snap, Snapshot)
            facts = probe_processes(snap)
            health = judge(snap, Now(wall_ms=1_700_000_000_000 + wall_ms), facts)
            assert health.state in State and health.exit_code == EXIT_CODES[health.state]
            assert health.reason and health.action


def _parsed(parse, strategy: st.SearchStrategy[object]) -> st.SearchStrategy[object]:  # type: ignore[no-untyped-def]
    def safe(doc: object) -> object:
        try:
            return parse(doc)
        except Exception:  # a parse bug has its own test; here we fuzz judge
            return Unreadable("parse raised")

    return strategy.map(safe)


def _or_none(strategy: st.SearchStrategy[object]) -> st.SearchStrategy[object]:
    return st.one_of(st.none(), st.builds(Unreadable, st.text(max_size=10)), strategy)


PIDS = st.one_of(st.none(), st.integers(min_value=-5, max_value=40), st.sampled_from([4242, 4343]))
SNAPSHOTS = st.builds(
    Snapshot,
    directory=st.just("fuzzed"),
    heartbeat=_or_none(_parsed(Heartbeat.parse, DOCS)),
    checkpoint=_or_none(_parsed(Checkpoint.parse, DOCS)),
    status=_or_none(_parsed(StatusDoc.parse, DOCS)),
    supervisor=_or_none(_parsed(SupervisorDoc.parse, DOCS)),
    restarts=st.lists(_parsed(RestartRecord.parse, DOCS), max_size=3).map(
        lambda rs: tuple(r for r in rs if isinstance(r, RestartRecord))
    ),
    output_mtime_ms=st.one_of(st.none(), st.integers(min_value=-(10**15), max_value=10**15)),
    problems=st.lists(st.text(max_size=10), max_size=2).map(tuple),
)
FACTS = st.lists(
    st.builds(
        ProcFact,
        pid=st.integers(min_value=1, max_value=40) | st.sampled_from([4242, 4343]),
        exists=st.booleans(),
        zombie=st.booleans(),
        start_time=st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False)),
    ),
    max_size=4,
).map(lambda rows: ProcessFacts(tuple(rows)))
NOWS = st.builds(
    Now,
    wall_ms=st.integers(min_value=0, max_value=10**14),
    boottime=st.one_of(st.none(), st.floats(min_value=0, max_value=10**9)),
    boot_id=st.one_of(st.none(), st.sampled_from(["", "a", "b"]), st.text(max_size=5)),
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    SNAPSHOTS,
    NOWS,
    FACTS,
    st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)),
)
def test_judge_never_raises(snap: Snapshot, now: Now, facts: ProcessFacts, stale: float | None) -> None:
    health = judge(snap, now, facts, stale_after=stale)
    assert health.state in State
    assert health.exit_code in (0, 1, 2, 3)
    assert isinstance(health.reason, str) and health.reason
    assert judge(snap, now, facts, stale_after=stale) == health  # pure
