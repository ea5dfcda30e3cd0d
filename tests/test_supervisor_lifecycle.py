"""Detach, survive the terminal, single instance, adoption after SIGKILL, the hang watchdog."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import pytest

from conftest import ProcessTracker, wait_until
from supervisor_fixtures import PY, Sup, alive, cli_argv, gone, sup_fixture


@pytest.fixture
def sup(procs: ProcessTracker, tmp_path: Path) -> Iterator[Sup]:
    yield from sup_fixture(procs, tmp_path)


SLEEPER = [PY, "-c", "import time\nwhile True: print('tick', flush=True); time.sleep(0.2)"]

PTY_HOLDER = textwrap.dedent(
    """
    import os, pty, sys
    pid, fd = pty.fork()
    if pid == 0:
        os.execvp(sys.argv[1], sys.argv[1:])
    while True:          # relay the terminal until it closes; then hold on
        try:
            if not os.read(fd, 1024):
                break
        except OSError:
            break
    os.waitpid(pid, 0)
    """
)


def controlling_tty(pid: int) -> int:
    """tty_nr from /proc (psutil's terminal() maps names through a cache that can
    predate the test's pty)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rpartition(")")[2].split()[4])


def test_detached_campaign_survives_its_terminal_being_killed(sup: Sup, tmp_path: Path) -> None:
    holder = tmp_path / "pty_holder.py"
    holder.write_text(PTY_HOLDER)
    line = shlex.join(cli_argv("run", "--detach", "--state-dir", str(sup.dir), "--", *SLEEPER))
    term = sup.tracker.start(
        [PY, str(holder), "bash", "-c", f"{line}; exec sleep 300"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=sup.env,
    )
    doc = sup.wait_child()
    shell = wait_until(
        lambda: [p for p in psutil.Process(term.pid).children() if p.name() in ("sleep", "bash")],
        10,
        "the terminal's shell",
    )[0]
    assert controlling_tty(shell.pid) != 0  # it really had a terminal
    os.kill(term.pid, signal.SIGKILL)  # the terminal (the pty master) goes away: SIGHUP
    wait_until(lambda: gone(shell.pid), 10, "the shell killed by the hangup")
    assert alive(doc["pid"]) and alive(doc["child_pid"])
    assert controlling_tty(doc["pid"]) == 0
    code, line = sup.status()
    assert code == 0, line  # HEALTHY
    assert sup.ctl("stop").returncode == 0
    assert gone(doc["pid"]) and gone(doc["child_pid"])


def test_racing_starts_launch_exactly_one_campaign(sup: Sup) -> None:
    sup.detach(cmd=SLEEPER)
    sup.wait_child()
    assert sup.ctl("stop").returncode == 0
    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(lambda _: sup.ctl("start"), range(20)))
    codes = sorted(r.returncode for r in results)
    assert codes == [0] + [1] * 19, [(r.returncode, r.stderr) for r in results]
    assert all("already running" in r.stderr for r in results if r.returncode == 1)
    doc = sup.wait_child(attempt=2)
    sleepers = [p for p in sup.marked() if p.cmdline()[1:] == SLEEPER[1:]]
    assert [p.pid for p in sleepers] == [doc["child_pid"]]
    assert sup.ctl("start").returncode == 1  # still refused while it runs
    assert sup.ctl("stop").returncode == 0


def test_supervisor_killed_campaign_goes_on_and_start_adopts_it(sup: Sup) -> None:
    first = sup.detach(cmd=SLEEPER)
    doc = sup.wait_child()
    child = doc["child_pid"]
    os.kill(first, signal.SIGKILL)
    wait_until(lambda: gone(first), 10, "the supervisor gone")
    assert alive(child)
    code, line = sup.status()
    assert code == 0 and "unsupervised" in sup.ctl("status").stdout, line
    done = sup.ctl("start")
    assert done.returncode == 0, done.stderr
    assert f"adopted running campaign pid {child}" in done.stdout
    adopted = wait_until(
        lambda: (d := sup.sup()).get("pid") not in (None, first) and d, 10, "new supervisor"
    )
    assert adopted["child_pid"] == child and adopted["state"] == "running"
    sleepers = [p for p in sup.marked() if p.cmdline()[1:] == SLEEPER[1:]]
    assert [p.pid for p in sleepers] == [child]  # no second copy
    assert sup.ctl("stop").returncode == 0
    assert gone(child) and gone(adopted["pid"])


def test_stop_of_an_unsupervised_campaign_kills_it(sup: Sup) -> None:
    first = sup.detach(cmd=SLEEPER)
    child = sup.wait_child()["child_pid"]
    os.kill(first, signal.SIGKILL)
    wait_until(lambda: gone(first), 10, "the supervisor gone")
    done = sup.ctl("stop")
    assert done.returncode == 0 and "unsupervised" in done.stdout
    assert gone(child)
    assert sup.json("status.json")["status"] == "TERMINATED"


HANGS_ONCE = """
import os, time
from campaign_tui import Campaign
with Campaign(total=2) as c:
    for item in c.pending(["A-1", "A-2"]):
        with c.item(item):
            if item == "A-2" and os.environ["CAMPAIGN_ATTEMPT"] == "1":
                time.sleep(300)   # hangs: no heartbeat any more
"""


def test_hung_campaign_is_stale_and_alerted_once(sup: Sup) -> None:
    script = sup.script("hang.py", HANGS_ONCE)
    sup.detach("--stale-after", "0.6", cmd=[PY, str(script)])
    wait_until(lambda: "campaign stale" in sup.text("alerts.log"), 15, "the stale alert")
    code, line = sup.status()
    assert code == 1 and "STALE" in line
    wait_until(lambda: sup.text("wrapper.log").count("\n") > 2, 5, "more log")
    assert sup.text("alerts.log").count("campaign stale") == 1  # once per hang
    assert sup.sup()["state"] == "running" and sup.sup()["attempt"] == 1
    assert sup.ctl("stop").returncode == 0


def test_restart_on_stale_diagnoses_kills_and_restarts(sup: Sup) -> None:
    script = sup.script("hang.py", HANGS_ONCE)
    done = sup.run(
        "--stale-after",
        "0.6",
        "--restart-on-stale",
        "--backoff-initial",
        "0.1",
        "--stop-timeout",
        "1",
        cmd=[PY, str(script)],
        timeout=40,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    records = sup.lines("restarts.jsonl")
    assert [(r["reason"], r["item"]) for r in records] == [("hang", "A-2"), ("complete", None)]
    errors = sup.text("errors.log")
    assert "hang diagnosis of attempt 1" in errors and "process tree:" in errors
    assert "WCHAN" in errors and "sending SIGUSR1" in errors
    assert "File " in errors and "hang.py" in errors  # the campaign's own stacks (faulthandler)
    assert sup.json("status.json")["status"] == "COMPLETE"
    assert sorted(r["item"] for r in sup.lines("results.jsonl")) == ["A-1", "A-2"]


def test_no_diagnostic_signal_to_a_campaign_that_did_not_declare_one(sup: Sup) -> None:
    # A plain Python process dies of SIGUSR1: it must not be sent.
    code = "import os, sys, time\nif os.environ['CAMPAIGN_ATTEMPT'] == '1': time.sleep(300)\n"
    done = sup.run(
        "--stale-after",
        "0.5",
        "--restart-on-stale",
        "--backoff-initial",
        "0.1",
        "--stop-timeout",
        "1",
        cmd=[PY, "-c", code],
        timeout=40,
    )
    assert done.returncode == 0, done.stdout
    assert "no diagnostic signal declared" in sup.text("errors.log")
    assert sup.lines("restarts.jsonl")[0]["signal"] in ("SIGTERM", None)


def test_start_uses_campaign_toml_when_nothing_is_recorded(sup: Sup, tmp_path: Path) -> None:
    (tmp_path / "campaign.toml").write_text(
        f'command = [{PY!r}, "-c", "print(\'from toml\')"]\nmax_restarts = 1\n'
    )
    done = sup.ctl("start")  # the CLI finds ./campaign.toml (cwd is tmp_path)
    assert done.returncode == 0, done.stderr
    sup.wait_state("complete")
    assert "from toml" in sup.text("output.log")
    bad = tmp_path / "bad.toml"
    bad.write_text('max_restarts = 1\nstale_after = "later"\n')
    done = sup.ctl("start", "--config", str(bad))
    assert done.returncode == 78 and done.stderr.strip().endswith(
        "(use e.g. 0.5, 90, 90s, 10m, 1h)"
    )
    assert f"{bad}:2: " in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_bad_campaign_toml_on_run_is_file_and_line(sup: Sup, tmp_path: Path) -> None:
    cfg = tmp_path / "campaign.toml"
    cfg.write_text("# settings\nmax_restarts = [\n")
    done = sup.run("--config", str(cfg), cmd=["true"])
    assert done.returncode == 78
    assert done.stderr.startswith(f"campaign-tui: {cfg}:2: ") or f"{cfg}:3: " in done.stderr
    assert "Traceback" not in done.stderr and not sys.stderr.closed
