"""The Python API with real campaign processes: every ending is recorded, work resumes.

Each test writes a small campaign script, runs it with this interpreter and
``CAMPAIGN_STATE_DIR``, and drives it with signals. A script that must be
caught mid-item polls for a "go" file that the test creates; the test in turn
waits for the heartbeat to name that item. Nothing sleeps to synchronise.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from campaign_tui import clock, statedir
from campaign_tui import procs as procs_mod
from campaign_tui.clock import now
from campaign_tui.health import State, judge
from campaign_tui.snapshot import probe_processes, read_snapshot
from campaign_tui.statedir import StateDir
from conftest import ProcessTracker, wait_until

PRELUDE = """
import asyncio, gc, json, logging, os, pathlib, signal, sys, threading, time
from campaign_tui import Campaign

GO = pathlib.Path(os.environ["TEST_GO_DIR"])
RAN = pathlib.Path(os.environ["TEST_RAN"])
ITEMS = [f"item-{i:02d}" for i in range(int(os.environ.get("TEST_ITEMS", "6")))]

def wait_for(name):
    # the campaign's "long item": it lasts until the test creates GO/name
    (GO / ("waiting-" + name)).touch()
    while not (GO / name).exists():
        time.sleep(0.01)

def ran(key):
    with open(RAN, "a") as f:
        f.write(key + "\\n")
"""


class CampaignRun:
    """Scripts, environment and state of one test's campaign."""

    def __init__(self, procs: ProcessTracker, tmp_path: Path, state: Path):
        self.procs = procs
        self.tmp = tmp_path
        self.state = state
        self.go = tmp_path / "go"
        self.go.mkdir()
        self.ran = tmp_path / "ran.log"
        self.runs = 0

    def script(self, body: str) -> Path:
        path = self.tmp / "campaign_script.py"
        path.write_text(PRELUDE + textwrap.dedent(body))
        return path

    def start(self, script: Path, preexec_fn: Any = None, **env: str) -> subprocess.Popen[bytes]:
        self.runs += 1
        full = {k: v for k, v in os.environ.items() if not k.startswith("CAMPAIGN_")}
        full.update(
            CAMPAIGN_STATE_DIR=str(self.state),
            CAMPAIGN_TUI_HOME=str(self.tmp / "root"),
            TEST_GO_DIR=str(self.go),
            TEST_RAN=str(self.ran),
            PYTHONUNBUFFERED="1",
        )
        full.update(env)
        self.stderr_path = self.tmp / f"stderr-{self.runs}.txt"
        with open(self.stderr_path, "wb") as err:
            return self.procs.start(
                [sys.executable, str(script)],
                env=full,
                stdout=subprocess.DEVNULL,
                stderr=err,
                cwd=self.tmp,
                preexec_fn=preexec_fn,
            )

    def finish(self, proc: subprocess.Popen[bytes], timeout: float = 60) -> tuple[int, str]:
        code = proc.wait(timeout=timeout)
        return code, self.stderr_path.read_text(errors="replace")

    def run(self, body: str, **env: str) -> tuple[int, str]:
        return self.finish(self.start(self.script(body), **env))

    def wait_blocked(self, key: str, name: str = "go") -> dict[str, Any]:
        """Wait until the campaign is inside item ``key``, blocked on ``name``."""
        hb = self.wait_item(key)
        wait_until((self.go / f"waiting-{name}").exists, 30, f"{key} to block on {name}")
        return hb

    def release(self, name: str) -> None:
        (self.go / name).touch()

    def json(self, name: str) -> Any:
        doc = statedir.read_json(self.state / name)
        return doc if isinstance(doc, (dict, list)) else None

    def wait_item(self, key: str, timeout: float = 30) -> dict[str, Any]:
        def current() -> dict[str, Any] | None:
            hb = self.json("heartbeat.json")
            return hb if hb and hb.get("current_item") == key else None

        return wait_until(current, timeout, f"the heartbeat to name {key}")

    def text(self, name: str) -> str:
        path = self.state / name
        return path.read_text(errors="replace") if path.exists() else ""

    def results(self) -> list[dict[str, Any]]:
        docs = []
        for line in (self.state / "results.jsonl").read_bytes().splitlines():
            with contextlib.suppress(ValueError):
                docs.append(json.loads(line))
        return docs

    def ran_items(self) -> list[str]:
        return self.ran.read_text().split() if self.ran.exists() else []

    def judged(self) -> Any:
        snap = read_snapshot(StateDir(self.state))
        return judge(snap, now(), probe_processes(snap))


@pytest.fixture
def camp(procs: ProcessTracker, tmp_path: Path, state_dir: Path) -> CampaignRun:
    return CampaignRun(procs, tmp_path, state_dir)


STANDARD = """
with Campaign(total=len(ITEMS)) as campaign:
    for key in campaign.pending(ITEMS):
        with campaign.item(key) as it:
            ran(key)
            if key == os.environ.get("TEST_BLOCK_AT"):
                wait_for("go")
            if key == "item-03":
                it.fail("expected failure")
"""


# ---------------------------------------------------------------- killed and resumed


def test_sigkill_mid_item_then_rerun_gives_every_item_exactly_one_final_outcome(
    camp: CampaignRun,
) -> None:
    script = camp.script(STANDARD)
    first = camp.start(script, TEST_ITEMS="10", TEST_BLOCK_AT="item-05")
    hb = camp.wait_blocked("item-05")
    assert hb["pid"] == first.pid and hb["tested"] == 5
    os.kill(first.pid, signal.SIGKILL)
    code, _ = camp.finish(first)
    assert code == -signal.SIGKILL

    # No final status was written; the process is gone: that reads as a crash.
    assert camp.json("status.json")["status"] == "RUNNING"
    health = camp.judged()
    assert health.state == State.CRASHED and health.exit_code == 2, health.reason

    # A kill in the middle of an append leaves a line without its newline.
    with open(camp.state / "results.jsonl", "ab") as journal:
        journal.write(b'{"item": "item-07", "outcome": "pas')

    code, err = camp.run(STANDARD, TEST_ITEMS="10", CAMPAIGN_ATTEMPT="2")
    assert code == 0, err

    finals = [r for r in camp.results() if r.get("outcome") in ("passed", "failed", "error", "skipped")]
    counts = Counter(r["item"] for r in finals)
    assert counts == Counter({f"item-{i:02d}": 1 for i in range(10)})
    assert {r["item"]: r["attempt"] for r in finals} == {
        **{f"item-{i:02d}": 1 for i in range(5)},
        **{f"item-{i:02d}": 2 for i in range(5, 10)},
    }
    assert {r["item"]: r["outcome"] for r in finals}["item-03"] == "failed"
    # the torn fragment was ended, so the next record started on a line of its own
    raw = (camp.state / "results.jsonl").read_bytes()
    assert b'"pas\n' in raw
    # finished items did not run again; the killed one did
    ran = Counter(camp.ran_items())
    assert ran == Counter({**{f"item-{i:02d}": 1 for i in range(10)}, "item-05": 2})

    assert camp.json("status.json")["status"] == "COMPLETE"
    checkpoint = camp.json("checkpoint.json")
    assert (checkpoint["tested"], checkpoint["passed"], checkpoint["failed"]) == (10, 9, 1)
    assert camp.judged().state == State.COMPLETE


# ---------------------------------------------------------------- signals


def _ended_by(camp: CampaignRun, signum: int, block_at: str = "item-02") -> tuple[int, str]:
    proc = camp.start(camp.script(STANDARD), TEST_BLOCK_AT=block_at)
    camp.wait_blocked(block_at)
    os.kill(proc.pid, signum)
    return camp.finish(proc)


def _assert_ending(camp: CampaignRun, status: str, words: str) -> dict[str, Any]:
    doc = camp.json("status.json")
    assert doc["status"] == status
    assert words in doc["message"] and "item-02" in doc["message"], doc["message"]
    assert camp.json("heartbeat.json")["status"] == status
    assert f"CRITICAL campaign {status}" in camp.text("alerts.log")
    assert f"CRITICAL campaign {status}" in camp.text("errors.log")
    return doc


def test_sigterm_is_terminated_and_dies_of_the_signal(camp: CampaignRun) -> None:
    code, err = _ended_by(camp, signal.SIGTERM)
    assert code == -signal.SIGTERM, err
    _assert_ending(camp, "TERMINATED", "SIGTERM")
    health = camp.judged()
    assert health.state == State.TERMINATED and health.exit_code == 0
    assert camp.ran_items() == ["item-00", "item-01", "item-02"]


def test_sigint_is_interrupted(camp: CampaignRun) -> None:
    code, err = _ended_by(camp, signal.SIGINT)
    assert code == -signal.SIGINT, err
    _assert_ending(camp, "INTERRUPTED", "SIGINT")
    assert camp.judged().state == State.TERMINATED
    # the interrupted item is not a result: it runs again on resume
    assert "item-02" not in {r["item"] for r in camp.results()}


def test_sighup_is_terminated_terminal_closed(camp: CampaignRun) -> None:
    code, _ = _ended_by(camp, signal.SIGHUP)
    assert code == -signal.SIGHUP
    _assert_ending(camp, "TERMINATED", "terminal closed")


def _signal_mask(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1], 16)
    raise AssertionError(f"no {field} in /proc/{pid}/status")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_sighup_ignored_by_nohup_stays_ignored(camp: CampaignRun) -> None:
    def like_nohup() -> None:
        signal.signal(signal.SIGHUP, signal.SIG_IGN)

    proc = camp.start(camp.script(STANDARD), preexec_fn=like_nohup, TEST_BLOCK_AT="item-02")
    camp.wait_blocked("item-02")
    hup = 1 << (signal.SIGHUP - 1)
    assert _signal_mask(proc.pid, "SigIgn") & hup, "SIGHUP is no longer ignored"
    assert _signal_mask(proc.pid, "SigCgt") & (1 << (signal.SIGTERM - 1)), "no SIGTERM handler"
    os.kill(proc.pid, signal.SIGHUP)
    camp.release("go")
    code, err = camp.finish(proc)
    assert code == 0, err
    assert camp.json("status.json")["status"] == "COMPLETE"


def _assert_trustworthy_heartbeat(camp: CampaignRun, hb: dict[str, Any], pid: int) -> None:
    """The heartbeat carries what makes liveness and freshness checkable."""
    assert hb["pid"] == pid
    assert hb["pid_start"] == pytest.approx(procs_mod.start_time(pid), abs=1.0)
    assert hb["boot_id"] == clock.boot_id() and hb["boot_id"]
    assert 0 <= clock.boottime() - hb["boottime"] < 60  # type: ignore[operator]
    assert hb["progress"] == "2/6" and hb["percent"] == "33.3"
    health = camp.judged()
    assert health.state == State.HEALTHY, health.reason
    assert "no supervisor" in health.reason and f"pid {pid} alive" in health.process


def test_sigusr1_dumps_all_stacks_to_errors_log_without_stopping(camp: CampaignRun) -> None:
    proc = camp.start(camp.script(STANDARD), TEST_BLOCK_AT="item-02")
    hb = camp.wait_blocked("item-02")
    assert hb["diag_signal"] == "SIGUSR1"
    os.kill(proc.pid, signal.SIGUSR1)
    _assert_trustworthy_heartbeat(camp, hb, proc.pid)
    dump = wait_until(
        lambda: "most recent call first" in (t := camp.text("errors.log"))
        and "in <module>" in t  # the outermost frame: the dump is whole
        and t,
        what="a whole stack dump in errors.log",
    )
    assert "wait_for" in dump  # the frame the campaign is in
    assert proc.poll() is None
    camp.release("go")
    code, err = camp.finish(proc)
    assert code == 0, err
    assert camp.json("status.json")["status"] == "COMPLETE"
    assert len(camp.ran_items()) == 6


def test_fatal_signal_traceback_goes_to_errors_log(camp: CampaignRun) -> None:
    code, _ = camp.run(
        """
        def crash_hard():
            os.kill(os.getpid(), signal.SIGSEGV)

        with Campaign(total=1) as campaign:
            with campaign.item("only"):
                crash_hard()
        """
    )
    assert code == -signal.SIGSEGV
    errors = camp.text("errors.log")
    assert "Fatal Python error: Segmentation fault" in errors
    assert "crash_hard" in errors  # the stack of the crashing thread
    # the process could not say more; the process check can
    assert camp.judged().state == State.CRASHED


# ---------------------------------------------------------------- exceptions


def test_uncaught_exception_outside_an_item_is_crashed_with_traceback(
    camp: CampaignRun,
) -> None:
    code, err = camp.run(
        """
        def explode():
            raise RuntimeError("outside boom")

        with Campaign(total=len(ITEMS)) as campaign:
            for key in campaign.pending(ITEMS[:2]):
                with campaign.item(key):
                    ran(key)
            explode()
        """
    )
    assert code == 1
    assert "RuntimeError: outside boom" in err  # Python still reports it as usual
    doc = camp.json("status.json")
    assert doc["status"] == "CRASHED"
    assert "outside boom" in doc["message"]
    assert "Traceback" in doc["traceback"] and "in explode" in doc["traceback"]
    assert "RuntimeError: outside boom" in doc["traceback"]
    errors = camp.text("errors.log")
    assert "CRITICAL campaign CRASHED" in errors and "in explode" in errors
    assert "CRITICAL campaign CRASHED" in camp.text("alerts.log")
    health = camp.judged()
    assert health.state == State.CRASHED and health.exit_code == 2
    assert "outside boom" in health.reason


def test_exception_inside_an_item_is_its_error_and_the_loop_goes_on(camp: CampaignRun) -> None:
    code, err = camp.run(
        """
        with Campaign(total=len(ITEMS)) as campaign:
            for key in campaign.pending(ITEMS):
                with campaign.item(key) as it:
                    ran(key)
                    if key == "item-01":
                        raise ValueError("item boom")
                    if key == "item-02":
                        it.fail("checksum mismatch")
                    if key == "item-03":
                        it.skip("not applicable")
        """
    )
    assert code == 0, err
    outcomes = {r["item"]: (r["outcome"], r["message"]) for r in camp.results()}
    assert outcomes == {
        "item-00": ("passed", ""),
        "item-01": ("error", "ValueError: item boom"),
        "item-02": ("failed", "checksum mismatch"),
        "item-03": ("skipped", "not applicable"),
        "item-04": ("passed", ""),
        "item-05": ("passed", ""),
    }
    errors = camp.text("errors.log")
    assert "item item-01 raised" in errors and "ValueError: item boom" in errors
    assert "Traceback" in errors
    checkpoint = camp.json("checkpoint.json")
    assert (checkpoint["passed"], checkpoint["failed"], checkpoint["errors"], checkpoint["skipped"]) == (3, 1, 1, 1)
    assert camp.json("status.json")["status"] == "COMPLETE"
    assert "item-02 failed" in camp.text("progress.log")


SIDE_ERRORS = """
async def main():
    async def boom():
        raise LookupError("async task boom")
    task = asyncio.create_task(boom())
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    del task          # never awaited: asyncio logs it when the task is freed
    gc.collect()

def in_thread():
    raise KeyError("thread boom")

with Campaign(total=1) as campaign:
    with campaign.item("only"):
        logging.getLogger("mycampaign").error("a logged error %d", 42)
        logging.getLogger("mycampaign").warning("a mere warning")
        worker = threading.Thread(target=in_thread, name="worker-7")
        worker.start()
        worker.join()
        asyncio.run(main())
"""


@pytest.fixture(scope="module")
def side_errors(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, str, str]:
    tmp = tmp_path_factory.mktemp("side")
    state = tmp / "state"
    state.mkdir(mode=0o700)
    (tmp / "go").mkdir()
    script = tmp / "side.py"
    script.write_text(PRELUDE + SIDE_ERRORS)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAMPAIGN_")}
    env.update(CAMPAIGN_STATE_DIR=str(state), TEST_GO_DIR=str(tmp / "go"), TEST_RAN=str(tmp / "ran"))
    done = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=60
    )
    return done.returncode, done.stderr, (state / "errors.log").read_text()


def test_logging_error_goes_to_errors_log(side_errors: tuple[int, str, str]) -> None:
    code, err, errors = side_errors
    assert code == 0, err
    assert "ERROR mycampaign: a logged error 42" in errors
    assert "a mere warning" not in errors


def test_thread_exception_is_logged_and_chained(side_errors: tuple[int, str, str]) -> None:
    _, err, errors = side_errors
    assert "KeyError in thread worker-7" in errors and "thread boom" in errors
    assert "in in_thread" in errors  # with its traceback
    assert "Exception in thread worker-7" in err  # the previous hook still ran


def test_unhandled_asyncio_task_exception_is_logged(side_errors: tuple[int, str, str]) -> None:
    _, _, errors = side_errors
    assert "Task exception was never retrieved" in errors
    assert "LookupError: async task boom" in errors


def test_failure_rate_alert_fires_once_and_rearms(camp: CampaignRun) -> None:
    # outcomes in order: rate crosses 25 % at item 10 (3/10), stays above at 11 (4/11),
    # drops below by item 17 (4/17), crosses again at item 18 (5/18)
    plan = "PPPPPPPFFF" + "F" + "PPPPPP" + "F"
    code, err = camp.run(
        f"""
        PLAN = {plan!r}
        with Campaign(total=len(PLAN)) as campaign:
            for n, outcome in enumerate(PLAN):
                with campaign.item(f"item-{{n:02d}}") as it:
                    if outcome == "F":
                        it.fail("no")
        """
    )
    assert code == 0, err
    alerts = [line for line in camp.text("alerts.log").splitlines() if "failure rate" in line]
    assert len(alerts) == 2, alerts
    assert "WARNING" in alerts[0] and "30%" in alerts[0] and "of 10 items" in alerts[0]
    assert "of 18 items" in alerts[1]


def test_alert_levels(camp: CampaignRun) -> None:
    code, err = camp.run(
        """
        with Campaign(total=0) as campaign:
            campaign.alert("disk at 91%", level="warning")
            campaign.alert("fyi")
            campaign.alert("page someone", level="critical")
            campaign.alert("note", level="info")
            try:
                campaign.alert("x", level="shouting")
            except ValueError:
                print("refused", file=sys.stderr)
        """
    )
    assert code == 0, err
    assert "refused" in err
    lines = camp.text("alerts.log").splitlines()
    assert [line.split(" ", 2)[1:] for line in lines[:4]] == [
        ["WARNING", "disk at 91%"],
        ["WARNING", "fyi"],
        ["CRITICAL", "page someone"],
        ["INFO", "note"],
    ]


def test_hooks_are_chained_and_removed_on_exit(camp: CampaignRun) -> None:
    code, err = camp.run(
        """
        def mine(*args): pass
        def mine_thread(args): pass
        def mine_term(signum, frame): pass
        sys.excepthook, threading.excepthook = mine, mine_thread
        signal.signal(signal.SIGTERM, mine_term)
        before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGUSR1)
        with Campaign(total=0):
            inside = (sys.excepthook is mine, threading.excepthook is mine_thread,
                      signal.getsignal(signal.SIGTERM) is mine_term)
        after = (sys.excepthook is mine, threading.excepthook is mine_thread,
                 signal.getsignal(signal.SIGTERM) is mine_term,
                 (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGUSR1)) == before)
        print(json.dumps({"inside": inside, "after": after}), file=sys.stderr)
        """
    )
    assert code == 0, err
    seen = json.loads(err.strip().splitlines()[-1])
    assert seen == {"inside": [False, False, False], "after": [True, True, True, True]}


def test_sigterm_chains_to_the_programs_own_handler(camp: CampaignRun) -> None:
    proc = camp.start(
        camp.script(
            """
            def mine(signum, frame):
                print("my handler ran", file=sys.stderr)
                raise SystemExit(7)
            signal.signal(signal.SIGTERM, mine)
            with Campaign(total=1) as campaign:
                with campaign.item("only"):
                    wait_for("go")
            """
        )
    )
    camp.wait_blocked("only")
    os.kill(proc.pid, signal.SIGTERM)
    code, err = camp.finish(proc)
    assert code == 7 and "my handler ran" in err
    assert camp.json("status.json")["status"] == "TERMINATED"


# ---------------------------------------------------------------- monitoring never takes it down


def _mount_tmpfs(path: Path) -> None:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root and mount(8)")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    if done.returncode != 0:
        pytest.skip(f"this machine does not allow mounting a tmpfs: {done.stderr.strip()}")


@pytest.fixture
def tiny_disk(state_dir: Path) -> Any:
    _mount_tmpfs(state_dir)
    try:
        yield state_dir
    finally:
        subprocess.run(["umount", "-l", str(state_dir)], capture_output=True, timeout=30)


def _fill(disk: Path) -> None:
    """Use every byte left on the filesystem."""
    with open(disk / "filler", "wb", buffering=0) as filler:
        for chunk in (4096, 1):
            with contextlib.suppress(OSError):
                while True:
                    filler.write(b"\0" * chunk)


def _warnings(err: str) -> list[str]:
    return [line for line in err.splitlines() if "cannot write" in line]


def test_full_disk_from_the_start_campaign_finishes_and_warns_once(
    camp: CampaignRun, tiny_disk: Path
) -> None:
    _fill(tiny_disk)
    code, err = camp.run(STANDARD, TEST_ITEMS="20")
    assert code == 0, err
    assert camp.ran_items() == [f"item-{i:02d}" for i in range(20)]
    assert len(_warnings(err)) == 1, err
    assert "No space left on device" in _warnings(err)[0]
    assert "Traceback" not in err


def test_disk_fills_up_mid_run_campaign_finishes_and_warns_once(
    camp: CampaignRun, tiny_disk: Path
) -> None:
    proc = camp.start(camp.script(STANDARD), TEST_ITEMS="20", TEST_BLOCK_AT="item-04")
    camp.wait_blocked("item-04")
    _fill(tiny_disk)
    camp.release("go")
    code, err = camp.finish(proc)
    assert code == 0, err
    assert camp.ran_items() == [f"item-{i:02d}" for i in range(20)]
    assert "Traceback" not in err
    assert len(_warnings(err)) == 1, err


def test_results_journal_has_no_torn_line_after_a_full_disk(
    camp: CampaignRun, tiny_disk: Path
) -> None:
    # While the disk is full, an append that crosses into a new page is cut
    # short; the journal must not keep that fragment glued to the next record.
    proc = camp.start(
        camp.script(
            """
            KEYS = [f"item-{n:02d}-" + "x" * 60 for n in range(40)]
            with Campaign(total=len(KEYS)) as campaign:
                for key in campaign.pending(KEYS):
                    with campaign.item(key):
                        if key.startswith("item-04"):
                            wait_for("full")
                        if key.startswith("item-30"):
                            wait_for("freed")
            """
        )
    )
    wait_until((camp.go / "waiting-full").exists, 30, "item-04")
    _fill(tiny_disk)
    camp.release("full")
    wait_until((camp.go / "waiting-freed").exists, 30, "item-30")
    (tiny_disk / "filler").unlink()
    camp.release("freed")
    code, err = camp.finish(proc)
    assert code == 0, err
    lines = (tiny_disk / "results.jsonl").read_bytes().splitlines()
    torn = []
    for line in lines:
        try:
            json.loads(line)
        except ValueError:
            torn.append(line[:30] + b"..." + line[-30:])
    assert torn == [], torn
    written = {json.loads(line)["item"][:7] for line in lines}
    # once writes work again, every result is recorded
    assert {f"item-{n:02d}" for n in range(30, 40)} <= written


def test_state_dir_removed_mid_run_campaign_finishes(camp: CampaignRun) -> None:
    proc = camp.start(camp.script(STANDARD), TEST_ITEMS="10", TEST_BLOCK_AT="item-04")
    camp.wait_blocked("item-04")
    shutil.rmtree(camp.state)
    camp.release("go")
    code, err = camp.finish(proc)
    assert code == 0, err
    assert camp.ran_items() == [f"item-{i:02d}" for i in range(10)]
    assert len(_warnings(err)) == 1, err
    assert "Traceback" not in err


def test_campaign_never_writes_into_a_group_writable_state_dir(camp: CampaignRun) -> None:
    camp.state.chmod(0o777)
    code, err = camp.run(STANDARD, TEST_ITEMS="2")
    assert list(camp.state.iterdir()) == []
    assert "writable by group or others" in err
    assert code == 0, err  # monitoring never takes the campaign down
    assert "Traceback" not in err


def test_state_dir_created_0700_when_absent(camp: CampaignRun) -> None:
    camp.state.rmdir()
    code, err = camp.run(STANDARD, TEST_ITEMS="2")
    assert code == 0, err
    assert (os.stat(camp.state).st_mode & 0o777) == 0o700
    assert camp.json("status.json")["status"] == "COMPLETE"
