"""The pytest plugin, in real pytest processes: inert by default, each test an item, resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import ProcessTracker, wait_until
from supervisor_fixtures import Sup, sup_fixture

# The inner pytest runs without the heavy plugins of this environment (hypothesis: ~0.7 s).
QUICK = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-p", "no:timeout")

SUITE = """\
import os, pytest

@pytest.fixture
def broken():
    raise RuntimeError("fixture broke")

def test_pass(): pass
def test_fail(): assert 1 == 2, "one is not two"
def test_error(broken): pass
def test_skip(): pytest.skip("not here")
@pytest.mark.xfail(reason="known bug")
def test_xfail(): assert 0
"""


@pytest.fixture
def sup(procs: ProcessTracker, tmp_path: Path) -> Iterator[Sup]:
    yield from sup_fixture(procs, tmp_path)


def _pytest(
    sup: Sup, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    proc = sup.tracker.start(
        [sys.executable, "-m", "pytest", "-q", *QUICK, *args],
        env=env or sup.env,
        cwd=sup.tmp,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    out, _ = proc.communicate(timeout=60)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, "")


def _results(path: Path) -> dict[str, tuple[str, str]]:
    found = {}
    for line in (path / "results.jsonl").read_text().splitlines():
        doc = json.loads(line)
        found[doc["item"].split("::")[-1]] = (doc["outcome"], doc["message"])
    return found


def test_inert_without_the_flag_or_the_environment(sup: Sup) -> None:
    (sup.tmp / "test_s.py").write_text(SUITE)
    done = _pytest(sup, "test_s.py")
    assert done.returncode == 1 and "1 failed" in done.stdout, done.stdout
    assert not (sup.tmp / "home").exists()  # CAMPAIGN_TUI_HOME: nothing written anywhere


def test_campaign_flag_makes_each_test_an_item(sup: Sup) -> None:
    (sup.tmp / "test_s.py").write_text(SUITE)
    done = _pytest(sup, "--campaign=suite", "test_s.py")
    assert done.returncode == 1, done.stdout
    state = sup.tmp / "home" / "suite"
    assert _results(state) == {
        "test_pass": ("passed", ""),
        "test_fail": ("failed", "AssertionError: one is not two"),
        "test_error": ("error", "RuntimeError: fixture broke"),
        "test_skip": ("skipped", "not here"),
        "test_xfail": ("skipped", "xfail: known bug"),
    }
    cp = json.loads((state / "checkpoint.json").read_text())
    assert {k: cp[k] for k in ("tested", "total", "passed", "failed", "errors", "skipped")} == {
        "tested": 5,
        "total": 5,
        "passed": 1,
        "failed": 1,
        "errors": 1,
        "skipped": 2,
    }
    status = json.loads((state / "status.json").read_text())
    assert status["status"] == "COMPLETE"  # failing tests are results, not a crash
    hb = json.loads((state / "heartbeat.json").read_text())
    assert hb["total"] == 5 and hb["status"] == "COMPLETE"


def test_a_second_run_deselects_what_has_a_result_and_says_so(sup: Sup) -> None:
    (sup.tmp / "test_s.py").write_text(SUITE)
    _pytest(sup, "--campaign=again", "test_s.py")
    (sup.tmp / "test_s.py").write_text(SUITE + "def test_new(): pass\n")
    done = _pytest(sup, "test_s.py", "--campaign=again")
    assert "5 deselected" in done.stdout and "1 passed" in done.stdout, done.stdout
    assert "already have a result" in done.stdout
    cp = json.loads((sup.tmp / "home" / "again" / "checkpoint.json").read_text())
    assert (cp["tested"], cp["total"]) == (6, 6)
    done = _pytest(sup, "test_s.py", "--campaign")  # after the paths, no name: "default"
    assert "1 failed" in done.stdout, done.stdout
    assert len(_results(sup.tmp / "home" / "default")) == 6


def test_a_path_taken_for_the_name_is_a_usage_error(sup: Sup) -> None:
    (sup.tmp / "test_s.py").write_text(SUITE)
    done = _pytest(sup, "--campaign", "test_s.py")
    assert done.returncode == 4 and "write --campaign=NAME" in done.stdout, done.stdout


def test_the_state_dir_from_the_environment_activates_it(sup: Sup) -> None:
    (sup.tmp / "test_s.py").write_text("def test_one(): pass\n")
    state = sup.tmp / "direct"
    done = _pytest(sup, "test_s.py", env={**sup.env, "CAMPAIGN_STATE_DIR": str(state)})
    assert done.returncode == 0, done.stdout
    assert _results(state) == {"test_one": ("passed", "")}


def test_killed_half_way_under_the_supervisor_it_resumes_without_rerunning(sup: Sup) -> None:
    """kill -9 of the pytest process while test 5 of 10 runs; the restart runs 5..10 only."""
    ran = sup.tmp / "ran.log"
    gate = sup.tmp / "gate"
    (sup.tmp / "test_long.py").write_text(
        textwrap.dedent(
            f"""
            import os, time, pytest

            @pytest.mark.parametrize("n", range(10))
            def test_item(n):
                with open({str(ran)!r}, "a") as f:
                    f.write(f"{{n}} {{os.environ['CAMPAIGN_ATTEMPT']}}\\n")
                if n == 4 and os.environ["CAMPAIGN_ATTEMPT"] == "1":
                    open({str(gate)!r}, "w").close()
                    while True:           # in flight until the test kills the process
                        time.sleep(0.05)
            """
        )
    )
    sup.detach(
        "--backoff-initial",
        "0.2",
        cmd=[sys.executable, "-m", "pytest", "-q", *QUICK, "test_long.py"],
    )
    child = sup.wait_child()
    wait_until(gate.exists, 20, "test 5 in flight")
    hb = wait_until(
        lambda: (d := sup.json("heartbeat.json")).get("current_item", "").endswith("[4]") and d,
        10,
        "the heartbeat naming test_item[4]",
    )
    assert (hb["tested"], hb["total"], hb["pid"]) == (4, 10, child["child_pid"])
    os.kill(child["child_pid"], signal.SIGKILL)
    sup.wait_state("complete", timeout=30)
    runs = [line.split() for line in ran.read_text().splitlines()]
    assert runs == [[str(n), "1"] for n in range(5)] + [[str(n), "2"] for n in range(4, 10)]
    results = sup.lines("results.jsonl")
    assert [r["item"].split("::")[-1] for r in results] == [f"test_item[{n}]" for n in range(10)]
    assert [r["attempt"] for r in results] == [1] * 4 + [2] * 6
    records = sup.lines("restarts.jsonl")
    assert [(r["reason"], r["signal"], r["item"]) for r in records] == [
        ("crash", "SIGKILL", "test_long.py::test_item[4]"),
        ("complete", None, None),
    ]
    cp = sup.json("checkpoint.json")
    assert (cp["tested"], cp["total"], cp["passed"]) == (10, 10, 10)
