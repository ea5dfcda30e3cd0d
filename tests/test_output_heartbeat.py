"""A command that writes no heartbeat: the supervisor writes one from its output, and reads its TAP."""

from __future__ import annotations

import json
import shutil
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import ProcessTracker, wait_until
from supervisor_fixtures import PY, Sup, sup_fixture

FAST = ("--backoff-initial", "0.2", "--backoff-max", "0.5", "--stop-timeout", "1")


@pytest.fixture
def sup(procs: ProcessTracker, tmp_path: Path) -> Iterator[Sup]:
    yield from sup_fixture(procs, tmp_path)


def _gate(sup: Sup, name: str) -> Path:
    """A file the test creates to let the command go on (no sleeping on either side)."""
    return sup.tmp / name


def test_each_output_line_is_a_heartbeat_and_the_last_line_is_the_item(sup: Sup) -> None:
    go = _gate(sup, "go")
    script = sup.script(
        "quiet.py",
        f"""
        import os, time
        print("warming up", flush=True)
        while not os.path.exists({str(go)!r}):
            time.sleep(0.02)
        print("testing SD-057", flush=True)
        while True:
            time.sleep(1)
        """,
    )
    sup.detach(*FAST, "--stale-after", "30", cmd=[PY, str(script)])
    child = sup.wait_child()
    hb = wait_until(
        lambda: (d := sup.json("heartbeat.json")).get("current_item") == "warming up" and d,
        10,
        "a heartbeat with the first line",
    )
    assert hb["source"] == "supervisor" and hb["pid"] == child["child_pid"]
    assert hb["pid_start"] == child["child_start"] and hb["attempt"] == 1
    go.touch()
    wait_until(
        lambda: sup.json("heartbeat.json").get("current_item") == "testing SD-057",
        10,
        "the heartbeat to show the last line",
    )
    code, line = sup.status()
    assert code == 0 and "HEALTHY" in line and "SD-057" in line


def test_a_silent_command_goes_stale_by_its_output(sup: Sup) -> None:
    script = sup.script(
        "silent.py",
        """
        import time
        print("one line, then nothing", flush=True)
        while True:
            time.sleep(1)
        """,
    )
    sup.detach(*FAST, "--stale-after", "0.6", cmd=[PY, str(script)])
    sup.wait_child()
    wait_until(lambda: sup.status()[0] == 1, 15, "status STALE (exit 1)")
    assert "STALE" in sup.status()[1]
    wait_until(lambda: "campaign stale" in sup.text("alerts.log"), 10, "the stale alert")


def test_the_supervisor_stops_writing_once_the_command_writes_its_own(sup: Sup) -> None:
    go = _gate(sup, "go")
    script = sup.script(
        "own.py",
        f"""
        import json, os, time
        print("before my own heartbeat", flush=True)
        while not os.path.exists({str(go)!r}):
            time.sleep(0.02)
        tmp = os.path.join(os.environ["CAMPAIGN_STATE_DIR"], ".hb.tmp")
        with open(tmp, "w") as f:   # the seed's shape: no "source" field
            json.dump({{"timestamp": int(time.time() * 1000), "current_sd": "SD-001",
                       "progress": "1/3", "pid": os.getpid(), "status": "RUNNING"}}, f)
        os.replace(tmp, os.path.join(os.environ["CAMPAIGN_STATE_DIR"], "heartbeat.json"))
        for n in range(40):         # more output: each line would have been a heartbeat
            print("line", n, flush=True)
            time.sleep(0.05)
        while True:
            time.sleep(1)
        """,
    )
    sup.detach(*FAST, cmd=[PY, str(script)])
    wait_until(
        lambda: sup.json("heartbeat.json").get("source") == "supervisor", 10, "our heartbeat"
    )
    go.touch()
    wait_until(
        lambda: "writes its own heartbeat" in sup.text("wrapper.log"), 10, "the handover line"
    )
    # Two seconds of output after the handover: the follower read it (once a second)
    # and, had it still been writing, would have replaced the command's heartbeat.
    wait_until(lambda: "line 39" in sup.text("output.log"), 15, "all the output")
    hb = sup.json("heartbeat.json")
    assert hb.get("current_sd") == "SD-001" and "source" not in hb, hb
    assert sup.text("wrapper.log").count("writes its own heartbeat") == 1


BASH_TAP = """\
#!/usr/bin/env bash
# 6 items, announced with "# Subtest:", each waits for its gate file; SD-3 fails.
echo "TAP version 14"
echo "1..6"
for n in 1 2 3 4 5 6; do
  sd="SD-$n"
  echo "# Subtest: $sd"
  while [ ! -e "$GATES/$n" ]; do sleep 0.02; done
  if [ "$n" = 3 ]; then echo "not ok $n - $sd"; echo "  ---"; echo "  message: 'bad register'"; echo "  ..."
  else echo "ok $n - $sd"; fi
done
"""


def test_a_tap_run_shows_its_progress_results_and_checkpoint(sup: Sup) -> None:
    gates = sup.tmp / "gates"
    gates.mkdir()
    script = sup.script("tap.sh", BASH_TAP)
    sup.env["GATES"] = str(gates)
    sup.detach(*FAST, cmd=[str(script)])
    sup.wait_child()
    for n in (1, 2, 3):
        (gates / str(n)).touch()
    wait_until(
        lambda: sup.json("heartbeat.json").get("current_item") == "SD-4", 10, "SD-4 in flight"
    )
    hb = sup.json("heartbeat.json")
    assert (hb["tested"], hb["total"], hb["progress"], hb["percent"]) == (3, 6, "3/6", "50.0")
    code, line = sup.status()
    assert code == 0 and "HEALTHY" in line and "SD-4 3/6" in line
    done = sup.json("status.json")
    assert done["status"] == "RUNNING"
    for n in (4, 5, 6):
        (gates / str(n)).touch()
    sup.wait_state("complete")
    results = sup.lines("results.jsonl")
    assert [(r["item"], r["outcome"]) for r in results] == [
        (f"SD-{n}", "failed" if n == 3 else "passed") for n in range(1, 7)
    ]
    assert results[2]["message"] == "bad register" and results[2]["source"] == "tap"
    cp = sup.json("checkpoint.json")
    assert {k: cp[k] for k in ("tested", "total", "passed", "failed", "errors", "skipped")} == {
        "tested": 6,
        "total": 6,
        "passed": 5,
        "failed": 1,
        "errors": 0,
        "skipped": 0,
    }
    assert sup.json("status.json")["status"] == "COMPLETE"
    assert "its TAP plan 1..6 was fulfilled" in sup.text("wrapper.log")
    assert "[3/6] SD-3 failed: bad register" in sup.text("progress.log")


def test_a_tap_failure_rate_raises_the_alert(sup: Sup) -> None:
    script = sup.script(
        "rate.sh",
        """\
        #!/bin/sh
        echo 1..12
        for n in 1 2 3 4 5 6 7 8 9 10 11 12; do
          if [ $n -le 4 ]; then echo "not ok $n - item $n"; else echo "ok $n - item $n"; fi
        done
        """,
    )
    done = sup.run(*FAST, cmd=[str(script)])
    assert done.returncode == 0, done.stdout + done.stderr
    assert "high failure rate: 40% of 10 items failed or errored" in sup.text("alerts.log")


def test_node_test_runner_under_the_supervisor(sup: Sup) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    (sup.tmp / "c.test.js").write_text(
        textwrap.dedent(
            """\
            const test = require('node:test');
            for (let i = 1; i <= 5; i++) test(`case ${i}`, () => { if (i === 2) throw new Error('no'); });
            """
        )
    )
    done = sup.run(*FAST, cmd=[node, "--test", "--test-reporter=tap", "c.test.js"], timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert [(r["item"], r["outcome"]) for r in sup.lines("results.jsonl")] == [
        (f"case {i}", "failed" if i == 2 else "passed") for i in range(1, 6)
    ]
    cp = sup.json("checkpoint.json")
    assert (cp["tested"], cp["total"], cp["failed"]) == (5, 5, 1)
    status = sup.ctl("status", "--json")
    assert json.loads(status.stdout)["state"] == "COMPLETE"


def test_prove_verbose_under_the_supervisor(sup: Sup) -> None:
    prove = shutil.which("prove")
    if prove is None:
        pytest.skip("prove is not installed")
    t = sup.tmp / "t"
    t.mkdir()
    (t / "a.t").write_text("#!/bin/sh\necho 1..2\necho ok 1 - a\necho not ok 2 - b\n")
    (t / "b.t").write_text("#!/bin/sh\necho 1..1\necho ok 1 - c\n")
    done = sup.run(*FAST, cmd=[prove, "-v", "t/"], timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert [(r["item"], r["outcome"]) for r in sup.lines("results.jsonl")] == [
        ("a", "passed"),
        ("b", "failed"),
        ("c", "passed"),
    ]
    assert sup.json("checkpoint.json")["total"] == 3
