"""The supervisor with real processes and tenths of a second: restarts, stops, control."""

from __future__ import annotations

import itertools
import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from conftest import ProcessTracker, wait_until
from supervisor_fixtures import PY, Sup, alive, gone, sup_fixture


@pytest.fixture
def sup(procs: ProcessTracker, tmp_path: Path) -> Iterator[Sup]:
    yield from sup_fixture(procs, tmp_path)


FAST = ("--backoff-initial", "0.2", "--backoff-max", "0.5", "--stop-timeout", "1")


def test_crash_loop_gives_up_after_max_restarts_with_exact_delays(sup: Sup) -> None:
    done = sup.run(
        *FAST, "--max-restarts", "3", cmd=[PY, "-c", "import sys; print('boom'); sys.exit(3)"]
    )
    assert done.returncode == 2, done.stderr
    records = sup.lines("restarts.jsonl")
    assert [r["attempt"] for r in records] == [1, 2, 3, 4]
    assert [r["reason"] for r in records] == ["crash"] * 4
    assert [r["exit_code"] for r in records] == [3] * 4
    assert [r["next_delay"] for r in records] == [0.2, 0.4, 0.5, None]
    # Tolerance: the next attempt starts no earlier than the delay and at most 0.4 s late.
    for before, after in itertools.pairwise(records):
        gap = (after["started_ms"] - before["ended_ms"]) / 1000
        assert before["next_delay"] - 0.02 <= gap <= before["next_delay"] + 0.4, (gap, before)
    doc = sup.sup()
    assert doc["state"] == "gave_up" and doc["restarts"] == 3 and doc["max_restarts"] == 3
    status = sup.json("status.json")
    assert (
        status["status"] == "CRASHED"
        and status["exit_code"] == 3
        and "boom" in status["output_tail"]
    )
    assert "CRITICAL gave up after 3 restarts: manual intervention required" in sup.text(
        "alerts.log"
    )
    assert sup.text("alerts.log").count("WARNING attempt") == 3
    assert "boom" in sup.text("errors.log")
    assert sup.status()[0] == 2
    for line in ("attempt 1 started", "restart 1 of 3 in 0.2s", "gave up after 3 restarts"):
        assert line in done.stdout


def test_crash_then_success_resumes_each_item_once(sup: Sup) -> None:
    script = sup.script(
        "resume.py",
        """
        import os
        from campaign_tui import Campaign
        with Campaign(total=6) as c:
            for item in c.pending([f"SD-{i}" for i in range(6)]):
                with c.item(item):
                    if item == "SD-3" and os.environ["CAMPAIGN_ATTEMPT"] == "1":
                        os._exit(1)  # dies mid-item: no status, no result
        """,
    )
    done = sup.run(*FAST, cmd=[PY, str(script)])
    assert done.returncode == 0, done.stdout + done.stderr
    results = sup.lines("results.jsonl")
    assert sorted(r["item"] for r in results) == [f"SD-{i}" for i in range(6)]  # each once
    assert {r["item"]: r["attempt"] for r in results}["SD-3"] == 2
    records = sup.lines("restarts.jsonl")
    assert [(r["reason"], r["item"]) for r in records] == [("crash", "SD-3"), ("complete", None)]
    assert records[0]["progressed"] is True
    assert sup.json("status.json")["status"] == "COMPLETE"
    assert sup.sup()["state"] == "complete"


def test_stop_while_running_ends_the_whole_tree_even_when_it_ignores_sigterm(sup: Sup) -> None:
    script = sup.script(
        "stubborn.sh",
        """\
        #!/bin/sh
        trap '' TERM
        setsid sh -c 'trap "" TERM; exec sleep 300' &
        sh -c 'trap "" TERM; sleep 300' &
        echo started
        while :; do sleep 1; done
        """,
    )
    supervisor = sup.detach("--stop-timeout", "0.5", cmd=[str(script)])
    doc = sup.wait_child()
    wait_until(
        lambda: len(psutil.Process(supervisor).children(recursive=True)) >= 4, 10, "the tree"
    )
    tree = [p.pid for p in psutil.Process(supervisor).children(recursive=True)]
    started = time.monotonic()
    done = sup.ctl("stop")
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - started < 5
    assert all(gone(pid) for pid in [supervisor, *tree]), [p for p in tree if alive(p)]
    assert gone(doc["child_pid"])
    assert sup.sup()["state"] == "stopped"
    assert sup.json("status.json")["status"] == "TERMINATED"
    assert sup.lines("restarts.jsonl")[-1]["reason"] == "stopped"
    assert sup.status()[0] == 0
    assert not sup.marked()  # nothing of the campaign survives


def test_stop_while_waiting_out_a_backoff(sup: Sup) -> None:
    supervisor = sup.detach("--backoff-initial", "30", cmd=[PY, "-c", "raise SystemExit(1)"])
    doc = sup.wait_state("backoff")
    assert doc["next_restart_ms"] > doc["timestamp"] + 25_000
    assert sup.status()[0] == 1  # RESTARTING
    done = sup.ctl("stop")
    assert done.returncode == 0, done.stderr
    assert gone(supervisor)
    assert sup.sup()["state"] == "stopped"
    assert len(sup.lines("restarts.jsonl")) == 1  # no second attempt


def test_restart_is_immediate_and_not_counted(sup: Sup) -> None:
    sup.detach(*FAST, "--max-restarts", "0", cmd=[PY, "-c", "import time; time.sleep(300)"])
    first = sup.wait_child()
    done = sup.ctl("restart")
    assert done.returncode == 0, done.stderr
    second = sup.wait_child(attempt=2)
    assert second["child_pid"] != first["child_pid"] and gone(first["child_pid"])
    assert second["restarts"] == 0 and second["pid"] == first["pid"]
    assert sup.lines("restarts.jsonl")[0]["reason"] == "manual"
    assert sup.ctl("stop").returncode == 0


def test_command_that_cannot_be_executed_fails_once_with_one_line(sup: Sup, tmp_path: Path) -> None:
    not_exec = tmp_path / "plain.txt"
    not_exec.write_text("echo hi\n")
    for cmd, words in (
        (["no-such-command-xyz"], "command not found"),
        ([str(not_exec)], "permission denied"),
    ):
        done = sup.run(cmd=cmd)
        assert done.returncode == 66
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and words in lines[0] and "Traceback" not in done.stderr
        assert sup.lines("restarts.jsonl") == []
    done = sup.run("--detach", cmd=["no-such-command-xyz"])
    assert done.returncode == 66 and len(done.stderr.strip().splitlines()) == 1


def test_complete_whatever_the_exit_code_and_silent_exit_zero(sup: Sup) -> None:
    wrote = (
        "import json, os, sys; d=os.environ['CAMPAIGN_STATE_DIR'];"
        "json.dump({'status':'COMPLETE','message':'done'}, open(d+'/status.json','w')); sys.exit(1)"
    )
    assert sup.run(*FAST, cmd=[PY, "-c", wrote]).returncode == 0
    assert sup.lines("restarts.jsonl")[-1]["reason"] == "complete"
    tap = "print('1..2'); print('ok 1 - a'); print('not ok 2 - b'); raise SystemExit(1)"
    assert sup.run(*FAST, cmd=[PY, "-c", tap]).returncode == 0
    assert sup.lines("restarts.jsonl")[-1]["reason"] == "complete"
    assert sup.run(*FAST, cmd=["true"]).returncode == 0
    assert sup.json("status.json")["status"] == "COMPLETE"


def test_campaign_that_recorded_terminated_is_not_restarted(sup: Sup) -> None:
    script = sup.script(
        "term.py",
        """
        import time
        from campaign_tui import Campaign
        with Campaign(total=1) as c:
            with c.item("only"):
                time.sleep(300)
        """,
    )
    proc = sup.popen("run", "--state-dir", str(sup.dir), *FAST, "--", PY, str(script))
    doc = wait_until(
        lambda: (d := sup.json("heartbeat.json")).get("current_item") == "only" and d,
        15,
        "the heartbeat",
    )
    os.kill(doc["pid"], signal.SIGTERM)  # someone else, not the supervisor
    out, _ = proc.communicate(timeout=15)
    assert proc.returncode == 0, out
    assert sup.lines("restarts.jsonl")[-1]["reason"] == "stopped"
    assert sup.json("status.json")["status"] == "TERMINATED"
    assert "not restarting" in out


def test_foreground_ctrl_c_is_an_intentional_stop(sup: Sup) -> None:
    proc = sup.popen(
        "run", "--state-dir", str(sup.dir), *FAST, "--", PY, "-c", "import time; time.sleep(300)"
    )
    doc = sup.wait_child()
    os.kill(proc.pid, signal.SIGINT)
    proc.communicate(timeout=15)
    assert proc.returncode == 130
    assert gone(doc["child_pid"])
    assert sup.json("status.json")["status"] == "INTERRUPTED"
    assert sup.sup()["state"] == "stopped"


def test_sigterm_to_the_supervisor_stops_the_campaign(sup: Sup) -> None:
    supervisor = sup.detach(cmd=[PY, "-c", "import time; time.sleep(300)"])
    doc = sup.wait_child()
    os.kill(supervisor, signal.SIGTERM)
    wait_until(lambda: gone(supervisor) and gone(doc["child_pid"]), 15, "supervisor and child gone")
    assert sup.sup()["state"] == "stopped"


def test_environment_and_output_go_straight_to_the_file(sup: Sup) -> None:
    code = (
        "import os, sys, stat; print(os.environ['CAMPAIGN_ATTEMPT'], os.environ.get('CAMPAIGN_RESUME'),"
        " os.environ['PYTHONFAULTHANDLER'], os.environ['CAMPAIGN_NAME']);"
        "print('is-file', stat.S_ISREG(os.fstat(1).st_mode), os.getsid(0) == os.getpid());"
        "print('stdin', os.readlink('/proc/self/fd/0'));"
        "sys.exit(0 if os.environ['CAMPAIGN_ATTEMPT'] == '2' else 1)"
    )
    assert sup.run(*FAST, cmd=[PY, "-c", code]).returncode == 0
    out = sup.text("output.log")
    assert "1 None 1 state" in out and "2 1 1 state" in out
    assert "is-file True True" in out and "stdin /dev/null" in out
    assert sup.json("supervisor.json")["settings"]["backoff_initial"] == 0.2


def test_output_log_is_bounded_by_copy_and_truncate(sup: Sup, tmp_path: Path) -> None:
    (tmp_path / "campaign.toml").write_text("output_max_bytes = 20000\noutput_files = 2\n")
    # 25 kB, then wait (bounded) for the supervisor to rotate, then one more line
    # through the same O_APPEND descriptor: it must land at the start of the new file.
    code = (
        "import os, sys, time\n"
        "for i in range(25): print('x' * 999)\n"
        "sys.stdout.flush()\n"
        "end = time.monotonic() + 10\n"
        "while os.path.getsize(os.environ['CAMPAIGN_STATE_DIR'] + '/output.log') > 20000"
        " and time.monotonic() < end: time.sleep(0.02)\n"
        "print('after rotation')\n"
    )
    done = sup.run("--config", str(tmp_path / "campaign.toml"), cmd=[PY, "-c", code])
    assert done.returncode == 0, done.stderr
    assert sup.text("output.log") == "after rotation\n"  # no hole, no old bytes
    assert sup.text("output.log.1").count("x" * 999) == 25
    assert not (sup.dir / "output.log.2").exists()


def test_on_alert_hook_gets_the_alert_as_json(sup: Sup, tmp_path: Path) -> None:
    sink = tmp_path / "alerts.jsonl"
    hook = sup.script("hook.sh", f"#!/bin/sh\ncat >> {sink}\n")
    failing = sup.script("bad-hook.sh", "#!/bin/sh\nexit 5\n")
    done = sup.run(*FAST, "--max-restarts", "1", "--on-alert", str(hook), cmd=["false"])
    assert done.returncode == 2
    wait_until(lambda: sink.exists() and sink.read_text().count("\n") >= 2, 10, "two hook calls")
    import json

    alerts = [json.loads(line) for line in sink.read_text().splitlines()]
    assert [a["level"] for a in alerts] == ["warning", "critical"]
    assert "manual intervention required" in alerts[1]["message"]
    done = sup.run(*FAST, "--max-restarts", "0", "--on-alert", str(failing), cmd=["false"])
    assert done.returncode == 2  # a failing hook is logged, never fatal
    wait_until(
        lambda: "on_alert hook exited with code 5" in sup.text("wrapper.log"),
        10,
        "hook failure logged",
    )


def test_second_run_refuses_while_one_runs(sup: Sup) -> None:
    sup.detach(cmd=[PY, "-c", "import time; time.sleep(300)"])
    sup.wait_child()
    done = sup.run(cmd=["true"])
    assert done.returncode == 1 and "already running" in done.stderr
    assert sup.ctl("stop").returncode == 0


@pytest.mark.skipif(sys.platform != "linux", reason="subreaper and /proc are Linux")
def test_stop_when_not_running_says_so(sup: Sup) -> None:
    done = sup.ctl("stop")
    assert done.returncode == 0 and "not running" in done.stdout
