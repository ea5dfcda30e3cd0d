"""Signals and terminals: hangups, SIGTERM in a backoff, a frozen campaign, zombies, daemons.

Already covered elsewhere and not repeated here: a detached campaign whose
terminal is killed (test_supervisor_lifecycle), Ctrl-C in the foreground and
SIGTERM to a running supervisor (test_supervisor), signals to an API campaign
(test_campaign_api).
"""

from __future__ import annotations

import os
import signal
import subprocess
import textwrap
import time
from pathlib import Path
from typing import Any

import psutil

from conftest import wait_until
from faults_report import Fault
from supervisor_fixtures import PY, Sup, alive, cli_argv, gone

SLEEPER = [PY, "-c", "import time\nwhile True: time.sleep(0.2)"]

PTY_HOLDER = textwrap.dedent(
    """
    import os, pty, sys
    pid, fd = pty.fork()
    if pid == 0:
        os.execvp(sys.argv[1], sys.argv[1:])
    with open(os.environ["FAULT_TTY_LOG"], "ab", buffering=0) as log:
        while True:          # relay the terminal until it closes
            try:
                data = os.read(fd, 1024)
            except OSError:
                break
            if not data:
                break
            log.write(data)
    os.waitpid(pid, 0)
    """
)

BEATING = """
import time
from campaign_tui import Campaign
with Campaign(total=100000) as c:
    for n in range(100000):
        with c.item(f"item-{n}"):
            time.sleep(0.05)
"""


def test_terminal_lost_under_a_foreground_supervisor_is_an_intentional_stop(
    sup: Sup, tmp_path: Path, fault: Any
) -> None:
    injected: Fault = fault(
        "terminal closed under a foreground `run` (pty master gone: SIGHUP)",
        "the whole tree stops; status TERMINATED says the terminal closed; not restarted",
    )
    holder = tmp_path / "pty_holder.py"
    holder.write_text(PTY_HOLDER)
    sup.env["FAULT_TTY_LOG"] = str(tmp_path / "tty.log")
    term = sup.tracker.start(
        [PY, str(holder), *cli_argv("run", "--state-dir", str(sup.dir), "--", *SLEEPER)],
        env=sup.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    doc = sup.wait_child()
    assert psutil.Process(doc["pid"]).terminal() is not None  # it really has a terminal
    os.kill(term.pid, signal.SIGKILL)  # the terminal goes away
    injected.inject()
    wait_until(lambda: gone(doc["pid"]) and gone(doc["child_pid"]), 15, "supervisor and child gone")
    status = sup.json("status.json")
    assert status["status"] == "TERMINATED" and "SIGHUP" in status["message"], status
    assert sup.sup()["state"] == "stopped"
    assert [r["reason"] for r in sup.lines("restarts.jsonl")] == ["stopped"]
    assert sup.status()[0] == 0
    assert not sup.marked()
    injected.lost = 0


def test_sighup_to_a_detached_supervisor_is_ignored(sup: Sup, fault: Any) -> None:
    injected: Fault = fault(
        "SIGHUP to a detached supervisor (its session killed)",
        "ignored and logged; the campaign goes on; control still answers",
    )
    supervisor = sup.detach(cmd=SLEEPER)
    doc = sup.wait_child()
    for n in range(1, 4):  # one at a time: pending signals of one kind coalesce
        os.kill(supervisor, signal.SIGHUP)
        injected.inject()
        wait_until(lambda n=n: sup.text("wrapper.log").count("SIGHUP ignored") == n, 10, "a note")
    assert alive(supervisor) and alive(doc["child_pid"])
    assert sup.sup()["state"] == "running" and sup.status()[0] == 0
    assert sup.ctl("stop").returncode == 0
    assert gone(supervisor) and gone(doc["child_pid"])
    injected.lost = 0


def test_sigterm_to_the_supervisor_during_a_backoff_wait(sup: Sup, fault: Any) -> None:
    injected: Fault = fault(
        "SIGTERM to the supervisor while it waits out a restart backoff",
        "it stops at once (no second attempt), state stopped, status TERMINATED",
    )
    supervisor = sup.detach("--backoff-initial", "30", cmd=[PY, "-c", "raise SystemExit(3)"])
    sup.wait_state("backoff")
    started = time.monotonic()
    os.kill(supervisor, signal.SIGTERM)
    injected.inject()
    wait_until(lambda: gone(supervisor), 5, "the supervisor to exit")
    assert time.monotonic() - started < 3
    assert sup.sup()["state"] == "stopped"
    assert sup.json("status.json")["status"] == "TERMINATED"
    assert len(sup.lines("restarts.jsonl")) == 1  # no second attempt
    assert sup.status()[0] == 0
    injected.lost = 0


def test_sigstopped_campaign_is_stale_then_healthy_again_and_stop_still_works(
    sup: Sup, fault: Any
) -> None:
    injected: Fault = fault(
        "SIGSTOP of the campaign (hung with the process alive)",
        "STALE within stale_after, one stale alert, HEALTHY after SIGCONT; stop ends it frozen",
    )
    script = sup.script("beating.py", BEATING)
    supervisor = sup.detach("--stale-after", "0.5", "--stop-timeout", "0.5", cmd=[PY, str(script)])
    doc = sup.wait_child()
    child = doc["child_pid"]
    wait_until(lambda: sup.status()[0] == 0, 10, "HEALTHY")
    os.kill(child, signal.SIGSTOP)
    injected.inject()
    _, line = wait_until(lambda: (s := sup.status())[0] == 1 and s, 10, "STALE")
    assert "STALE" in line and "heartbeat" in line, line
    wait_until(lambda: "campaign stale" in sup.text("alerts.log"), 10, "the stale alert")
    os.kill(child, signal.SIGCONT)
    wait_until(lambda: sup.status()[0] == 0, 10, "HEALTHY again")
    os.kill(child, signal.SIGSTOP)
    injected.inject()
    wait_until(lambda: sup.status()[0] == 1, 10, "STALE again")
    assert sup.ctl("stop").returncode == 0
    assert gone(child) and gone(supervisor)
    assert sup.text("alerts.log").count("campaign stale") == 2  # once per hang
    injected.lost = 0


ZOMBIE_MAKER = """
import os, sys, time
for n in range(int(sys.argv[1])):
    if os.fork() == 0:          # a child whose own child outlives it: re-parented
        if os.fork() == 0:
            time.sleep(0.05)
            os._exit(0)
        os._exit(0)
    os.wait()
print("forked", flush=True)
while True:
    time.sleep(0.2)
"""


def test_orphaned_grandchildren_are_reaped_not_left_as_zombies(sup: Sup, fault: Any) -> None:
    injected: Fault = fault(
        "orphaned grandchildren exiting under the supervisor (subreaper)",
        "no zombie left under the supervisor",
    )
    script = sup.script("zombies.py", ZOMBIE_MAKER)
    supervisor = sup.detach(cmd=[PY, str(script), "20"])
    sup.wait_child()
    wait_until(lambda: "forked" in sup.text("output.log"), 10, "the forks")
    injected.inject(20)

    def zombies() -> list[int]:
        found = []
        for proc in psutil.Process(supervisor).children():
            try:
                if proc.status() == psutil.STATUS_ZOMBIE:
                    found.append(proc.pid)
            except psutil.Error:
                continue
        return found

    # reaped at once on SIGCHLD: none left even right after they all exit
    wait_until(
        lambda: not zombies() and len(psutil.Process(supervisor).children()) == 1, 10, "reaped"
    )
    assert sup.ctl("stop").returncode == 0
    injected.lost = 0


DAEMONIZER = """
import os, sys, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:           # the daemon: double fork, setsid, no terminal
        os.closerange(0, 3)
        with open(sys.argv[2], "w") as f:
            f.write(str(os.getpid()))
        while True:
            time.sleep(0.2)
    os._exit(0)
os.wait()
while not os.path.exists(sys.argv[2]):
    time.sleep(0.01)
if sys.argv[1] == "stay":
    while True:
        time.sleep(0.2)
sys.exit(int(sys.argv[1]))
"""


def _daemon(sup: Sup, how: str, *opts: str) -> tuple[int, int]:
    script = sup.script("daemonizer.py", DAEMONIZER)
    pidfile = sup.tmp / f"daemon-{how}.pid"
    supervisor = sup.detach(*opts, cmd=[PY, str(script), how, str(pidfile)])
    daemon = int(wait_until(lambda: pidfile.exists() and pidfile.read_text(), 10, "the daemon"))
    return supervisor, daemon


def test_daemon_grandchild_of_a_running_command_is_ended_on_stop(sup: Sup, fault: Any) -> None:
    injected: Fault = fault(
        "a command forks a daemon grandchild (double fork + setsid)",
        "stop ends the daemon with the command",
    )
    supervisor, daemon = _daemon(sup, "stay", "--stop-timeout", "1")
    injected.inject()
    assert alive(daemon)
    assert sup.ctl("stop").returncode == 0
    assert gone(supervisor) and gone(daemon)
    injected.lost = 0


def test_daemon_grandchild_of_a_command_that_exited_is_ended_on_stop(sup: Sup, fault: Any) -> None:
    injected: Fault = fault(
        "a command forks a daemon grandchild and exits (crash, then stop in the backoff)",
        "stop ends the daemon left behind by the ended attempt",
    )
    supervisor, daemon = _daemon(sup, "1", "--backoff-initial", "30", "--stop-timeout", "1")
    injected.inject()
    sup.wait_state("backoff")
    assert sup.ctl("stop").returncode == 0
    assert gone(supervisor)
    assert gone(daemon), f"daemon pid {daemon} outlived the stop"
    injected.lost = 0
