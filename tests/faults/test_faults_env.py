"""The environment fails: the state directory fills up, disappears or turns read-only mid-run,
and the wall clock jumps.

Each state-directory fault is injected once per module (a module-scoped
fixture) while a supervised API campaign waits inside item 5; the tests then
check different promises against that one run:

* the campaign finishes every item, once, in the attempt that was running;
* the supervisor says what went wrong, in words a person can act on;
* a campaign that finished is not restarted because its COMPLETE could not be written;
* ``status`` tells that the state directory is in trouble.

The full disk is a tmpfs with a size limit (root and mount(8) needed: skipped
otherwise); read-only is a read-only bind mount over the directory (a remount
of the filesystem itself is refused while the campaign holds files open).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from campaign_tui import clock, procs
from campaign_tui.health import State, judge
from campaign_tui.snapshot import probe_processes, read_snapshot
from campaign_tui.statedir import StateDir
from campaign_tui.writer import StateWriter, heartbeat_doc
from conftest import ProcessTracker, wait_until
from faults_report import Fault
from supervisor_fixtures import PY, Sup

ITEMS = [f"item-{n:02d}" for n in range(20)]
CAMPAIGN = """
import os, pathlib, time
from campaign_tui import Campaign

SIDE = pathlib.Path(os.environ["FAULT_SIDE"])
with Campaign(total=20) as campaign:
    for key in campaign.pending([f"item-{n:02d}" for n in range(20)]):
        with campaign.item(key):
            with open(SIDE / "ran.log", "a") as ran:
                ran.write(f"{os.environ['CAMPAIGN_ATTEMPT']} {key}\\n")
            if key == "item-05":
                (SIDE / "waiting").touch()
                while not (SIDE / "go").exists():
                    time.sleep(0.01)
"""
WORDS = {
    "full": "No space left on device",
    "removed": "No such file or directory",
    "readonly": "Read-only file system",
}
TROUBLE = {"full": ("full", "no space"), "removed": ("does not exist",), "readonly": ("read-only",)}


def _run(*args: str) -> None:
    subprocess.run(list(args), check=True, capture_output=True, timeout=30)


def _can_mount() -> bool:
    return os.geteuid() == 0 and shutil.which("mount") is not None


@dataclass
class Ended:
    fault: str
    code: int
    output: str
    ran: list[tuple[int, str]]
    status_during: str
    status_after: str


def _fill(path: Path) -> None:
    with open(path / "filler", "wb", buffering=0) as filler:
        for chunk in (4096, 1):
            with contextlib.suppress(OSError):
                while True:
                    filler.write(b"\0" * chunk)


@pytest.fixture(scope="module")
def failed_dir(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Ended]:
    """One supervised campaign whose state dir fails (``request.param``) inside item 5."""
    kind = request.param
    if kind != "removed" and not _can_mount():
        pytest.skip("mounting needs root and mount(8)")
    tracker = ProcessTracker()
    tmp = tmp_path_factory.mktemp(f"env{FAULTS.index(kind)}")  # no fault word in the path
    sup = Sup(tracker, tmp)
    sup.dir.mkdir(mode=0o700)
    mounted: list[Path] = []
    try:
        if kind == "full":
            try:
                _run("mount", "-t", "tmpfs", "-o", "size=128k,mode=0700", "tmpfs", str(sup.dir))
            except subprocess.CalledProcessError as exc:
                pytest.skip(f"this machine does not allow mounting a tmpfs: {exc.stderr!r}")
            mounted.append(sup.dir)
        sup.env["FAULT_SIDE"] = str(tmp)
        script = sup.script("env_campaign.py", CAMPAIGN)
        with open(tmp / "supervisor.out", "w") as out:
            runner = sup.popen(
                "run", "--state-dir", str(sup.dir), "--backoff-initial", "0.05",
                "--max-restarts", "2", "--", PY, str(script),
                stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        wait_until((tmp / "waiting").exists, 30, "the campaign inside item 5")
        if kind == "full":
            _fill(sup.dir)
        elif kind == "removed":
            shutil.rmtree(sup.dir)
        else:
            _run("mount", "--bind", str(sup.dir), str(sup.dir))
            mounted.append(sup.dir)
            _run("mount", "-o", "remount,bind,ro", str(sup.dir))
        during = sup.cli("status", "--state-dir", str(sup.dir))
        (tmp / "go").touch()
        code = runner.wait(timeout=60)
        after = sup.cli("status", "--state-dir", str(sup.dir))
        ran = [
            (int(a), k)
            for a, k in (ln.split() for ln in (tmp / "ran.log").read_text().splitlines())
        ]
        yield Ended(
            kind,
            code,
            (tmp / "supervisor.out").read_text(),
            ran,
            during.stdout + during.stderr,
            after.stdout + after.stderr,
        )
    finally:
        sup.end_all()
        tracker.end_all()
        for path in reversed(mounted):
            subprocess.run(["umount", "-l", str(path)], capture_output=True, timeout=30)


FAULTS = ["full", "removed", "readonly"]


@pytest.mark.parametrize("failed_dir", FAULTS, indirect=True)
def test_campaign_finishes_every_item_once_and_the_supervisor_says_why(
    failed_dir: Ended, fault: Any
) -> None:
    injected: Fault = fault(
        f"state directory {failed_dir.fault} mid-run (supervised API campaign)",
        "the running attempt finishes every item exactly once; the supervisor names the error",
    )
    injected.inject()
    first = [key for attempt, key in failed_dir.ran if attempt == 1]
    assert first == ITEMS, failed_dir.ran
    assert "Traceback" not in failed_dir.output
    assert "cannot write" in failed_dir.output and WORDS[failed_dir.fault] in failed_dir.output, (
        failed_dir.output
    )
    injected.lost = len(set(ITEMS) - set(first))


@pytest.mark.parametrize("failed_dir", FAULTS, indirect=True)
def test_a_campaign_that_finished_on_a_failing_state_dir_is_not_restarted(
    failed_dir: Ended,
) -> None:
    assert len(failed_dir.ran) == len(ITEMS), f"items ran again: {failed_dir.ran[len(ITEMS) :]}"
    assert "attempt 2" not in failed_dir.output, failed_dir.output
    assert failed_dir.code == 0, failed_dir.output


@pytest.mark.parametrize(
    "failed_dir",
    ["full", "removed", "readonly"],
    indirect=True,
)  # fmt: skip
def test_status_tells_that_the_state_dir_is_in_trouble(failed_dir: Ended) -> None:
    words = TROUBLE[failed_dir.fault]
    assert any(w in failed_dir.status_during.lower() for w in words), failed_dir.status_during


# ---------------------------------------------------------------- the wall clock jumps

HOUR_MS = 3_600_000


def _campaign_dir(tmp_path: Path) -> StateDir:
    sd = StateDir(tmp_path / "clock")
    sd.path.mkdir(mode=0o700)
    StateWriter(sd).status("RUNNING", "running")
    return sd


def _write_heartbeat(sd: StateDir, **fields: Any) -> None:
    pid = os.getpid()
    doc = heartbeat_doc(
        item="item-07", tested=7, total=20, pid=pid, pid_start=procs.start_time(pid)
    )
    doc.update(fields)
    (sd.path / "heartbeat.json").write_text(json.dumps(doc))


def _judged(sd: StateDir, stale_after: float = 60.0) -> Any:
    snap = read_snapshot(sd)
    return judge(snap, clock.now(), probe_processes(snap), stale_after=stale_after)


@pytest.mark.parametrize("hours", [3, -3, 48])
def test_foreign_heartbeat_hours_off_the_clock_is_not_healthy(
    tmp_path: Path, hours: int, fault: Any
) -> None:
    """A Node-style heartbeat (wall time only) hours ahead or behind: reported, not healthy."""
    injected: Fault = fault(
        "clock jump: a wall-clock-only heartbeat hours in the future or past",
        "judged STALE with the reason naming the future / the age, never HEALTHY",
    )
    sd = _campaign_dir(tmp_path)
    _write_heartbeat(
        sd, timestamp=time.time_ns() // 1_000_000 + hours * HOUR_MS, boottime=None, boot_id=None
    )
    injected.inject()
    health = _judged(sd)
    assert health.state == State.STALE, health.reason
    assert ("future" in health.reason) == (hours > 0), health.reason
    done = subprocess.run(
        [PY, "-m", "campaign_tui", "status", "--state-dir", str(sd.path), "--stale-after", "60"],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert done.returncode == 1 and "STALE" in done.stdout.splitlines()[0], done.stdout
    injected.lost = 0


def test_wall_clock_set_back_does_not_make_a_hung_campaign_look_fresh(
    tmp_path: Path, fault: Any
) -> None:
    """Our heartbeat carries CLOCK_BOOTTIME: an hour-old beat stays old whatever the wall says."""
    injected: Fault = fault(
        "clock jump: wall clock set back so an hour-old heartbeat looks new",
        "judged by CLOCK_BOOTTIME: STALE, not HEALTHY",
    )
    boot = clock.boottime()
    if boot is None or clock.boot_id() is None:
        pytest.skip("needs CLOCK_BOOTTIME and a boot id")
    sd = _campaign_dir(tmp_path)
    _write_heartbeat(sd, timestamp=time.time_ns() // 1_000_000, boottime=boot - 3600)
    injected.inject()
    health = _judged(sd)
    assert health.state == State.STALE, health.reason
    assert health.freshness.age is not None and health.freshness.age >= 3600
    injected.lost = 0


def test_wall_clock_set_forward_does_not_make_a_live_campaign_look_hung(
    tmp_path: Path, fault: Any
) -> None:
    injected: Fault = fault(
        "clock jump: wall clock set forward so a fresh heartbeat looks hours old",
        "judged by CLOCK_BOOTTIME: HEALTHY, not STALE",
    )
    if clock.boottime() is None or clock.boot_id() is None:
        pytest.skip("needs CLOCK_BOOTTIME and a boot id")
    sd = _campaign_dir(tmp_path)
    _write_heartbeat(sd, timestamp=time.time_ns() // 1_000_000 - 5 * HOUR_MS)
    injected.inject()
    health = _judged(sd)
    assert health.state == State.HEALTHY, health.reason
    injected.lost = 0
