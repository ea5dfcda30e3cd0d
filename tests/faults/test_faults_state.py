"""Torn and hostile state: what a campaign (or an intruder in its directory) may leave there.

Hostile heartbeat / checkpoint / status / supervisor files — random bytes,
wrong types, huge numbers, NaN, negative and future timestamps, deep nesting,
a 50 MB file, symlinks to /dev/zero and to another user's file — are fed to
``campaign-tui status`` (a real subprocess and, for breadth, hypothesis through
``cli.main`` in process), to the TUI headless, and to the supervisor
(``run`` and ``start``). None may crash, hang or print a traceback; ``status``
exits 0..3 and says "unreadable" for every file it cannot read.

The readers' own fuzzing (``tests/test_fuzz_readers.py``) stops at
``read_snapshot`` and ``judge``; this module goes through the commands and the
screens a person uses.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import pwd
import random
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from campaign_tui import cli, config, statedir
from campaign_tui.snapshot import read_snapshot
from campaign_tui.statedir import StateDir
from conftest import wait_until
from faults_report import SOAK_ENV, Fault
from supervisor_fixtures import PY, Sup

SOAK = os.environ.get(SOAK_ENV, "") not in ("", "0")
EXAMPLES = 2000 if SOAK else 80
TUI_ROUNDS = 200 if SOAK else 25
JSON_KINDS = {
    "heartbeat": "heartbeat.json",
    "checkpoint": "checkpoint.json",
    "status": "status.json",
    "supervisor": "supervisor.json",
}
BIG = 50 * 1024 * 1024

try:
    NOBODY: pwd.struct_passwd | None = pwd.getpwnam("nobody")
except KeyError:  # pragma: no cover
    NOBODY = None
AS_ROOT = os.geteuid() == 0 and NOBODY is not None


# ---------------------------------------------------------------- hostile content

KEYS = st.sampled_from(
    [
        "timestamp", "current_item", "current_sd", "progress", "tested", "total", "percent",
        "status", "state", "pid", "pid_start", "attempt", "boot_id", "boottime", "stale_after",
        "passed", "failed", "last_item", "can_resume", "message", "exit_code", "signal",
        "traceback", "child_pid", "child_start", "restarts", "max_restarts", "next_restart_ms",
        "child_started_ms", "command", "cwd", "settings",
    ]
) | st.text(max_size=6)  # fmt: skip
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([10**400, -(10**400), 2**63, -1, 0]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["running", "backoff", "COMPLETE", "CRASHED", "NaN", "1e999", "23/118"]),
    st.text(max_size=20),
    st.sampled_from(["\x1b]0;pwned\x07[b]x[/b]", "\x00\x9b2J", "\u202eevil", "9" * 3000]),
)
NOW_MS = time.time_ns() // 1_000_000
TIMESTAMPS = st.one_of(
    st.integers(min_value=-(10**13), max_value=-1),  # negative
    st.integers(min_value=NOW_MS + 3_600_000, max_value=NOW_MS + 10**11),  # hours ahead
    st.integers(min_value=0, max_value=NOW_MS - 3_600_000),  # hours behind
    st.sampled_from([10**400, float("nan"), float("inf")]),
)
DOCS = st.recursive(
    SCALARS,
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(KEYS, kids, max_size=6),
    max_leaves=20,
)
OBJECTS = st.builds(
    lambda doc, ts: {**doc, "timestamp": ts},
    st.dictionaries(KEYS, DOCS, max_size=8),
    TIMESTAMPS,
)


def _encode(doc: object) -> bytes:
    return json.dumps(doc, allow_nan=True).encode()


CONTENTS = st.one_of(
    OBJECTS.map(_encode),
    DOCS.map(_encode),
    st.binary(max_size=300),
    st.integers(min_value=2000, max_value=100_000).map(lambda n: b"[" * n + b"]" * n),
    st.integers(min_value=2000, max_value=100_000).map(lambda n: b'{"a":' * n),
    OBJECTS.map(lambda d: _encode(d)[: max(1, len(_encode(d)) // 2)]),  # torn
)
FILE_SETS = st.fixed_dictionaries(
    {},
    optional={
        **{name: CONTENTS for name in JSON_KINDS.values()},
        "restarts.jsonl": st.lists(CONTENTS, max_size=4).map(b"\n".join),
        "alerts.log": st.binary(max_size=400),
        "campaign.json": CONTENTS,
    },
)


def must_be_unreadable(data: bytes) -> bool:
    """Bytes that are no JSON object can never be read as a state file."""
    if len(data) > statedir.MAX_JSON_BYTES:
        return True
    try:
        doc = json.loads(data.decode("utf-8"))
    except (ValueError, RecursionError):
        return True
    return not isinstance(doc, dict)


def status_in_process(sd: Path, *extra: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(["status", "--state-dir", str(sd), *extra])
    return code, out.getvalue(), err.getvalue()


def assert_calm(code: int, out: str, err: str) -> None:
    assert code in (0, 1, 2, 3), (code, err)
    assert "Traceback" not in out + err and "internal error" not in err, err


# ---------------------------------------------------------------- status, in process, hypothesis


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(FILE_SETS)
def test_status_survives_any_state_files_and_names_the_unreadable(
    files: dict[str, bytes],
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for name, data in files.items():
            (Path(tmp) / name).write_bytes(data)
        code, out, err = status_in_process(Path(tmp), "--json")
        assert_calm(code, out, err)
        report = json.loads(out)
        assert report["exit_code"] == code
        unreadable = set(report["unreadable"])
        for kind, name in JSON_KINDS.items():
            data = files.get(name)
            if data is not None and must_be_unreadable(data):
                assert kind in unreadable, (kind, data[:80], report["unreadable"])
            if kind in ("heartbeat", "checkpoint") and (
                data is None or not must_be_unreadable(data)
            ):
                assert kind not in unreadable, (kind, report["unreadable"])  # tolerant readers
        code, out, err = status_in_process(Path(tmp))
        assert_calm(code, out, err)
        assert out.startswith("CAMPAIGN ")
        if unreadable:
            assert "unreadable" in out


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(OBJECTS, DOCS, st.dictionaries(st.sampled_from(config.FIELD_NAMES), DOCS)))
@example({"command": ["true"], "stale_after": 10**400})
def test_recorded_settings_never_raise(doc: object) -> None:
    """campaign.json / supervisor.json settings, as ``start`` reads them."""
    settings_ = config.from_record(doc)
    assert settings_ is None or settings_.command


# ---------------------------------------------------------------- the real command, hostile files


def _nobody_file(tmp: Path, name: str) -> Path:
    assert NOBODY is not None
    path = tmp / name
    path.write_text('{"status": "COMPLETE", "timestamp": 1}')
    os.chown(path, NOBODY.pw_uid, NOBODY.pw_gid)
    return path


def filesystem_case(sd: Path, tmp: Path) -> set[str]:
    """A 50 MB file, links to /dev/zero and to a stranger's file, a stranger's file."""
    big = sd / "heartbeat.json"
    with open(big, "wb") as handle:
        chunk = b"[" * (1 << 20)
        for _ in range(BIG // len(chunk)):
            handle.write(chunk)
    os.link(big, sd / "restarts.jsonl")
    os.link(big, sd / "errors.log")
    (sd / "checkpoint.json").symlink_to("/dev/zero")
    (sd / "alerts.log").symlink_to("/dev/zero")
    (sd / "campaign.json").symlink_to("/dev/zero")
    unreadable = {"heartbeat", "checkpoint"}
    if AS_ROOT:
        (sd / "status.json").symlink_to(_nobody_file(tmp, "theirs.json"))
        shutil.copy(_nobody_file(tmp, "theirs2.json"), sd / "supervisor.json")
        assert NOBODY is not None
        os.chown(sd / "supervisor.json", NOBODY.pw_uid, NOBODY.pw_gid)
        unreadable |= {"status", "supervisor"}
    return unreadable


def values_case(sd: Path, tmp: Path) -> set[str]:
    """NaN and infinities, numbers too big for anything, deep nesting, wrong types."""
    (sd / "heartbeat.json").write_text(
        '{"timestamp": NaN, "pid": Infinity, "tested": -Infinity, "total": 1e999,'
        ' "percent": "NaN", "current_item": {"a": [1]}, "attempt": 1' + "0" * 400 + "}"
    )
    (sd / "checkpoint.json").write_text(
        '{"tested": 1' + "0" * 5000 + ', "total": [], "passed": {}}'
    )
    (sd / "status.json").write_text("[" * 200_000 + "]" * 200_000)
    (sd / "supervisor.json").write_text('["running", 1, 2]')
    (sd / "restarts.jsonl").write_bytes(b'{"attempt": 1e999}\n' + b"[" * 100_000 + b"\n{\n")
    (sd / "campaign.json").write_text('{"command": ["true"], "stale_after": 1' + "0" * 400 + "}")
    return {"status", "supervisor"}


def times_case(sd: Path, tmp: Path) -> set[str]:
    """Negative, far-future and far-past timestamps, a dead pid, random bytes."""
    rnd = random.Random(7)
    (sd / "heartbeat.json").write_text(
        json.dumps({"timestamp": NOW_MS + 5 * 3_600_000, "pid": 2**22 + 1, "tested": 3})
    )
    (sd / "checkpoint.json").write_text(json.dumps({"timestamp": -(10**12), "tested": 2}))
    (sd / "status.json").write_text(json.dumps({"status": "RUNNING", "timestamp": -1}))
    (sd / "supervisor.json").write_bytes(bytes(rnd.randrange(256) for _ in range(2000)))
    (sd / "alerts.log").write_bytes(bytes(rnd.randrange(256) for _ in range(5000)))
    return {"supervisor"}


CASES: dict[str, Callable[[Path, Path], set[str]]] = {
    "filesystem": filesystem_case,
    "values": values_case,
    "times": times_case,
}


def hostile_dir(tmp: Path, case: str) -> tuple[Path, set[str]]:
    sd = tmp / case
    sd.mkdir(mode=0o700)
    return sd, CASES[case](sd, tmp)


@pytest.mark.parametrize("case", list(CASES))
def test_status_command_on_hostile_files(sup: Sup, case: str, fault: Any) -> None:
    sd, unreadable = hostile_dir(sup.tmp, case)
    injected: Fault = fault(
        f"hostile state files ({case}) read by `campaign-tui status`",
        "no traceback, exit code 0..3, within 5 s, says unreadable per unreadable file",
    )
    injected.inject(len(list(sd.iterdir())))
    started = time.monotonic()
    done = sup.cli("status", "--state-dir", str(sd), timeout=30)
    seconds = time.monotonic() - started
    assert_calm(done.returncode, done.stdout, done.stderr)
    assert seconds < 5, seconds
    assert done.stderr == ""
    for kind in unreadable:
        line = next(ln for ln in done.stdout.splitlines() if ln.startswith(kind.capitalize() + ":"))
        assert "unreadable" in line, done.stdout
    code, out, err = status_in_process(sd, "--json")
    assert_calm(code, out, err)
    assert set(json.loads(out)["unreadable"]) >= unreadable
    for name in ("errors", "alerts", "restarts"):
        logs = sup.cli("logs", name, "--state-dir", str(sd), "-n", "5", timeout=30)
        assert "Traceback" not in logs.stderr and logs.returncode in (0, 66), logs.stderr
    injected.lost = 0


# ---------------------------------------------------------------- the supervisor on hostile files


@pytest.mark.parametrize("case", list(CASES))
def test_supervisor_runs_and_records_over_hostile_files(sup: Sup, case: str, fault: Any) -> None:
    sd, _ = hostile_dir(sup.tmp, case)
    injected: Fault = fault(
        f"hostile state files ({case}) under `campaign-tui run` and `start`",
        "the campaign runs and completes; its own files replace the hostile ones; "
        "links are replaced, not written through; `start` says one line",
    )
    injected.inject(len(list(sd.iterdir())))
    targets = {p: p.resolve() for p in sd.iterdir() if p.is_symlink()}
    before = {t: t.stat().st_size for t in targets.values() if t.is_file()}
    script = sup.script(
        "tiny.py",
        """
        from campaign_tui import Campaign
        with Campaign(total=3) as c:
            for key in c.pending(["a", "b", "c"]):
                with c.item(key):
                    pass
        """,
    )
    done = sup.cli(
        "run", "--state-dir", str(sd), "--backoff-initial", "0.05", "--", PY, str(script)
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    for name in JSON_KINDS.values():
        assert not (sd / name).is_symlink()
        json.loads((sd / name).read_text())
    assert json.loads((sd / "status.json").read_text())["status"] == "COMPLETE"
    assert {t: t.stat().st_size for t in before} == before  # no write went through a link
    assert read_snapshot(StateDir(sd)).checkpoint is not None
    again = sup.cli("start", "--state-dir", str(sd), timeout=30)
    assert "Traceback" not in again.stderr and "internal error" not in again.stderr, again.stderr
    if again.returncode == 0:  # it started the recorded campaign again: let it end
        wait_until(
            lambda: (
                json.loads((sd / "supervisor.json").read_text()).get("state")
                in ("complete", "gave_up", "stopped")
            ),
            15,
            "the started campaign to end",
        )
    else:
        assert len(again.stderr.strip().splitlines()) == 1, again.stderr
    injected.lost = 0


def test_start_with_a_huge_number_in_the_recorded_settings_says_one_clear_line(sup: Sup) -> None:
    sd = sup.tmp / "huge"
    sd.mkdir(mode=0o700)
    (sd / "campaign.json").write_text('{"command": ["true"], "stale_after": 1' + "0" * 400 + "}")
    done = sup.cli("start", "--state-dir", str(sd), timeout=30)
    assert "internal error" not in done.stderr, done.stderr
    assert done.returncode in (0, 66, 78), done.stderr


# ---------------------------------------------------------------- the TUI, headless


def _visible_text(app: Any) -> str:
    from textual.widgets import Static

    return "\n".join(str(w.render()) for w in app.screen.query(Static))


def _same_docs(shown: Any, now: Any) -> bool:
    return all(getattr(shown, k) == getattr(now, k) for k in JSON_KINDS)


async def _watch(sd: Path, rounds: list[Callable[[], None]]) -> list[str]:
    """Run the app on ``sd``; apply each round of files and wait until the screen has read it."""
    from textual.pilot import Pilot

    from campaign_tui.tui.app import CampaignApp
    from campaign_tui.tui.screens import MonitorScreen

    app = CampaignApp(StateDir(sd), root=sd.parent)
    states = []

    async def until(pilot: Pilot[Any], predicate: Callable[[], Any], what: str) -> None:
        deadline = time.monotonic() + 10
        while not predicate():
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            await pilot.pause(0.02)

    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, MonitorScreen), "the monitor")
        screen = app.screen
        assert isinstance(screen, MonitorScreen)
        for n, apply in enumerate(rounds):
            apply()
            now = read_snapshot(StateDir(sd))
            await until(
                pilot,
                lambda now=now: _same_docs(screen.snapshot, now) and screen.health is not None,
                f"round {n} on screen",
            )
            assert screen.health is not None
            states.append(screen.health.state.value)
            assert app.is_running and app.screen is screen
    return states


@pytest.mark.parametrize("case", list(CASES))
def test_tui_shows_hostile_files_without_crashing(tmp_path: Path, case: str, fault: Any) -> None:
    sd = tmp_path / "watched"
    sd.mkdir(mode=0o700)
    built, _ = hostile_dir(tmp_path, case)
    injected: Fault = fault(
        f"hostile state files ({case}) shown by the TUI (headless)",
        "the app keeps running and judges each state it reads",
    )

    def move_in() -> None:
        for path in built.iterdir():
            os.replace(path, sd / path.name)
        injected.inject(len(list(sd.iterdir())))

    states = asyncio.run(_watch(sd, [move_in]))
    assert states and all(states)
    injected.lost = 0


@settings(max_examples=1, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.data())
def test_tui_reads_hypothesis_generated_state_as_it_changes(data: st.DataObject) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        sd = Path(tmp) / "watched"
        sd.mkdir(mode=0o700)
        drawn = [data.draw(FILE_SETS, label=f"round {n}") for n in range(TUI_ROUNDS)]

        def writer(files: dict[str, bytes]) -> Callable[[], None]:
            def apply() -> None:
                for name in (*JSON_KINDS.values(), "restarts.jsonl", "alerts.log"):
                    path = sd / name
                    if name in files:
                        tmp_file = sd / f".{name}.next"
                        tmp_file.write_bytes(files[name])
                        os.replace(tmp_file, path)
                    else:
                        with contextlib.suppress(FileNotFoundError):
                            path.unlink()

            return apply

        states = asyncio.run(_watch(sd, [writer(f) for f in drawn]))
        assert len(states) == TUI_ROUNDS


def test_tui_says_unreadable_for_a_corrupt_checkpoint_next_to_a_healthy_campaign(
    tmp_path: Path,
) -> None:
    from campaign_tui import procs
    from campaign_tui.writer import StateWriter, heartbeat_doc

    sd = tmp_path / "watched"
    sd.mkdir(mode=0o700)
    writer = StateWriter(StateDir(sd))

    def corrupt() -> None:
        pid = os.getpid()
        writer.json(
            "heartbeat.json",
            heartbeat_doc(item="x", tested=1, total=3, pid=pid, pid_start=procs.start_time(pid)),
        )
        writer.status("RUNNING", "running")
        (sd / "checkpoint.json").write_bytes(b"[" * 100_000)

    shown: list[str] = []

    async def scenario() -> None:
        from campaign_tui.tui.app import CampaignApp

        app = CampaignApp(StateDir(sd), root=tmp_path)
        async with app.run_test(size=(100, 30)) as pilot:
            corrupt()
            deadline = time.monotonic() + 10
            while "HEALTHY" not in _visible_text(app):
                assert time.monotonic() < deadline
                await pilot.pause(0.02)
            await pilot.pause(0.1)
            shown.append(_visible_text(app))

    code, out, _ = (corrupt(), *status_in_process(sd))[1:]
    assert code == 0 and "Checkpoint:" in out and "unreadable" in out, out
    asyncio.run(scenario())
    assert "unreadable" in shown[0], shown[0]
