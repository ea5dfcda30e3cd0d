"""Kill anywhere, lose nothing: SIGKILL at random moments under the real supervisor.

An API campaign of numbered items runs under ``campaign-tui run``. Each item
appends ``ATTEMPT ITEM`` to a side file of its own the moment it starts (one
short O_APPEND write, so a kill cannot tear it) and then rewrites its
heartbeat in a tight loop, so most kills land in the middle of a state write.
After its last item the campaign waits for a gate file, so it cannot finish
before the test has killed it as often as it wants. After the gate opens the campaign
completes, and then:

* every item has exactly one final outcome in results.jsonl (and the right one);
* no item ran again after its result was recorded, and in each attempt only the
  last item started can lack a result (the one the kill interrupted);
* every JSON state file parses, after each kill and at the end;
* restarts.jsonl has one ``crash`` record killed by SIGKILL per kill, then ``complete``.

The moments come from a seeded generator; the seed is printed
(``CAMPAIGN_FAULTS_SEED=N`` replays it). ``--soak`` kills ten times as often.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import psutil

from conftest import wait_until
from faults_report import Fault
from supervisor_fixtures import PY, Sup, gone

KILLS = 20
SOAK_KILLS = 300
SUPERVISOR_KILLS = 4
SOAK_SUPERVISOR_KILLS = 40
ITEMS = 300
ITEM_SECONDS = 0.006  # each item rewrites its heartbeat for this long
FAST = ("--backoff-initial", "0.05", "--backoff-max", "0.1", "--stop-timeout", "2")
JSON_FILES = (
    "heartbeat.json",
    "checkpoint.json",
    "status.json",
    "supervisor.json",
    "campaign.json",
)

CAMPAIGN = """
import os, pathlib, time
from campaign_tui import Campaign

RAN = os.environ["FAULT_RAN"]
GATE = pathlib.Path(os.environ["FAULT_GATE"])
ITEMS = [f"item-{n:03d}" for n in range(int(os.environ["FAULT_ITEMS"]))]
WORK = float(os.environ["FAULT_ITEM_SECONDS"])
ATTEMPT = os.environ["CAMPAIGN_ATTEMPT"]

with Campaign(total=len(ITEMS)) as campaign:
    for key in campaign.pending(ITEMS):
        with campaign.item(key) as it:
            with open(RAN, "a") as ran:          # one short O_APPEND write
                ran.write(f"{ATTEMPT} {key}\\n")
            end = time.monotonic() + WORK
            while time.monotonic() < end:         # state writes in a tight loop
                campaign.beat(key)
            if int(key[-3:]) % 7 == 3:
                it.fail("planned failure")
    while not GATE.exists():   # all items done: wait for the test, outside any item
        campaign.beat()
        time.sleep(0.005)
"""


def expected_outcome(key: str) -> str:
    return "failed" if int(key[-3:]) % 7 == 3 else "passed"


class KillCampaign:
    """The campaign script, its side file and its gate, in one test's directory."""

    def __init__(self, sup: Sup, items: int = ITEMS):
        self.sup = sup
        self.items = [f"item-{n:03d}" for n in range(items)]
        self.ran = sup.tmp / "ran.log"
        self.gate = sup.tmp / "gate"
        self.script = sup.script("kill_campaign.py", CAMPAIGN)
        sup.env.update(
            FAULT_RAN=str(self.ran),
            FAULT_GATE=str(self.gate),
            FAULT_ITEMS=str(items),
            FAULT_ITEM_SECONDS=str(ITEM_SECONDS),
        )

    @property
    def cmd(self) -> list[str]:
        return [PY, str(self.script)]

    def executions(self) -> list[tuple[int, str]]:
        rows = []
        for line in self.ran.read_text().splitlines():
            attempt, key = line.split()
            rows.append((int(attempt), key))
        return rows

    def results(self) -> tuple[list[dict[str, Any]], int]:
        """The parseable journal lines, and how many lines were torn."""
        docs, torn = [], 0
        for line in (self.sup.dir / "results.jsonl").read_bytes().splitlines():
            try:
                docs.append(json.loads(line))
            except ValueError:
                torn += 1
        return docs, torn

    def in_item(self, attempt: int) -> bool:
        hb = self.sup.json("heartbeat.json")
        return hb.get("attempt") == attempt and bool(hb.get("current_item"))

    def check_everything(self) -> dict[str, int]:
        """The invariants of the module docstring; returns the numbers for the report."""
        docs, torn = self.results()
        finals = [d for d in docs if d.get("outcome") in ("passed", "failed", "error", "skipped")]
        poisoned = [d["item"] for d in finals if d.get("poison")]
        assert not poisoned, f"items taken for poison: {poisoned}"
        per_item = Counter(d["item"] for d in finals)
        twice = sorted(k for k, n in per_item.items() if n > 1)
        missing = sorted(set(self.items) - set(per_item))
        assert not twice, f"items with more than one final outcome: {twice}"
        assert not missing, f"items without a final outcome: {missing}"
        wrong = {
            d["item"]: d["outcome"] for d in finals if d["outcome"] != expected_outcome(d["item"])
        }
        assert not wrong, f"wrong outcomes: {wrong}"

        finished_in = {d["item"]: d["attempt"] for d in finals}
        runs = self.executions()
        again = [(a, k) for a, k in runs if a > finished_in[k]]
        assert not again, f"finished items ran again: {again}"
        by_attempt: dict[int, list[str]] = defaultdict(list)
        for attempt, key in runs:
            by_attempt[attempt].append(key)
        for attempt, keys in by_attempt.items():
            unfinished = [k for k in keys if finished_in[k] != attempt]
            assert unfinished in ([], keys[-1:]), (
                f"attempt {attempt}: items started but not finished: {unfinished}"
            )
        for name in JSON_FILES:
            json.loads((self.sup.dir / name).read_text())  # raises if torn
        checkpoint = self.sup.json("checkpoint.json")
        failed = sum(1 for k in self.items if expected_outcome(k) == "failed")
        assert (checkpoint["tested"], checkpoint["failed"]) == (len(self.items), failed)
        assert self.sup.json("status.json")["status"] == "COMPLETE"
        return {
            "items": len(self.items),
            "executions": len(runs),
            "reruns": len(runs) - len(self.items),
            "torn_journal_lines": torn,
            "temp_files_left": len(list(self.sup.dir.glob(".*.tmp"))),
            "lost": len(missing),
        }


def json_files_parse(sd: Path) -> None:
    for name in JSON_FILES:
        path = sd / name
        if path.exists():
            json.loads(path.read_text())


def verified(pid: int, start: float | None) -> psutil.Process | None:
    """The process ``pid`` if it is still the one recorded with ``start``."""
    try:
        proc = psutil.Process(pid)
        if start is not None and abs(proc.create_time() - start) > 1.0:
            return None
        return proc
    except psutil.Error:
        return None


def random_moment(rng: random.Random, camp: KillCampaign, attempt: int, last: str | None) -> str:
    """Wait (the injection itself, not a synchronisation) until a random moment of the attempt.

    Some kills land anywhere from the spawn on (interpreter start, import,
    opening the campaign); the others inside an item, mostly inside a heartbeat
    rewrite, since items do little else. Two kills in a row never land in the
    same item: the supervisor rightly takes such an item for poison and skips it
    (policy.poison_item), which is not what this test is about.
    """
    if last is None and rng.random() < 0.25:
        time.sleep(rng.uniform(0.0, 0.3))
        return "anywhere"

    def ready() -> bool:
        hb = camp.sup.json("heartbeat.json")
        if hb.get("attempt") != attempt or hb.get("source") != "campaign":
            return False
        item = hb.get("current_item")
        return bool(item and item != last) or hb.get("tested") == len(camp.items)

    wait_until(ready, 20, f"attempt {attempt} past item {last}")
    time.sleep(rng.uniform(0.0, 0.08))
    return "in an item"


def test_campaign_sigkilled_at_random_moments_loses_no_item(
    sup: Sup, rng: random.Random, soak: bool, fault: Any
) -> None:
    kills = SOAK_KILLS if soak else KILLS
    camp = KillCampaign(sup, items=ITEMS * (10 if soak else 1))
    injected: Fault = fault(
        "SIGKILL of the campaign at a random moment (in state writes, in items, at start)",
        "each item exactly one final outcome; no finished item ran again; "
        "every JSON state file parses; restarts.jsonl counts every kill",
    )
    with open(sup.tmp / "supervisor.out", "w") as out:
        runner = sup.popen(
            "run", "--state-dir", str(sup.dir), *FAST, "--max-restarts", str(kills + 10),
            "--", *camp.cmd, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    where: Counter[str] = Counter()
    for n in range(1, kills + 1):
        doc = sup.wait_child(attempt=n, timeout=30)
        last = sup.lines("restarts.jsonl")[-1].get("item") if n > 1 else None
        where[random_moment(rng, camp, n, last)] += 1
        proc = verified(doc["child_pid"], doc.get("child_start"))
        assert proc is not None, f"attempt {n} ended by itself"
        proc.send_signal(signal.SIGKILL)
        injected.inject()
        wait_until(lambda n=n: len(sup.lines("restarts.jsonl")) >= n, 20, f"kill {n} recorded")
        json_files_parse(sup.dir)
    camp.gate.touch()
    assert runner.wait(timeout=60) == 0, (sup.tmp / "supervisor.out").read_text()[-3000:]

    numbers = camp.check_everything()
    records = sup.lines("restarts.jsonl")
    assert [r["attempt"] for r in records] == list(range(1, kills + 2))
    assert [(r["reason"], r["signal"]) for r in records[:-1]] == [("crash", "SIGKILL")] * kills
    assert records[-1]["reason"] == "complete"
    injected.lost = numbers["lost"]
    injected.details = {**numbers, **{f"kills {k}": v for k, v in where.items()}}
    print(f"kills: {dict(where)}; {numbers}")


def test_supervisor_sigkilled_then_start_resumes_without_a_second_copy(
    sup: Sup, rng: random.Random, soak: bool, fault: Any
) -> None:
    kills = SOAK_SUPERVISOR_KILLS if soak else SUPERVISOR_KILLS
    camp = KillCampaign(sup, items=60)
    injected: Fault = fault(
        "SIGKILL of the supervisor (sometimes with the campaign), then `campaign-tui start`",
        "start adopts a live campaign or resumes a dead one; never two copies; "
        "each item exactly one final outcome; no finished item ran again",
    )
    both = 0
    supervisor = sup.detach(*FAST, "--max-restarts", "50", cmd=camp.cmd)
    for n in range(kills):
        doc = wait_until(
            lambda: (d := sup.sup()).get("state") == "running" and d.get("child_pid") and d,
            30,
            "a supervised attempt",
        )
        assert doc["pid"] == supervisor
        time.sleep(rng.uniform(0.0, 0.25))  # the random moment of the kill
        proc = verified(supervisor, doc.get("pid_start"))
        assert proc is not None
        proc.send_signal(signal.SIGKILL)
        injected.inject()
        child = verified(doc["child_pid"], doc.get("child_start"))
        if n % 2 == 1 and child is not None:  # every other time the campaign dies with it
            child.send_signal(signal.SIGKILL)
            both += 1
        wait_until(lambda pid=supervisor: gone(pid), 10, "the supervisor gone")
        done = sup.ctl("start", *FAST)
        assert done.returncode == 0, done.stderr
        adopted = "adopted running campaign pid" in done.stdout
        assert adopted == (child is not None and child.is_running() and n % 2 == 0), done.stdout
        supervisor = int(done.stdout.split()[-1])
        copies = [p for p in sup.marked() if p.cmdline()[1:2] == [str(camp.script)]]
        assert len(copies) <= 1, [p.pid for p in copies]
    camp.gate.touch()
    sup.wait_state("complete", timeout=60)
    wait_until(lambda: gone(supervisor), 10, "the last supervisor to exit")

    numbers = camp.check_everything()
    records = sup.lines("restarts.jsonl")
    attempts = [r["attempt"] for r in records]
    assert attempts == sorted(set(attempts)), attempts  # (gaps: see the next test)
    assert records[-1]["reason"] == "complete"
    injected.lost = numbers["lost"]
    injected.details = {**numbers, "campaign killed too": both}
    print(f"supervisor kills: {kills} (campaign too: {both}); {numbers}")


def test_an_attempt_that_died_with_its_supervisor_is_in_the_restart_history(
    sup: Sup, fault: Any
) -> None:
    camp = KillCampaign(sup, items=60)
    injected: Fault = fault(
        "SIGKILL of the supervisor and the campaign together, then `campaign-tui start`",
        "restarts.jsonl has a record of the attempt that died unsupervised",
    )
    supervisor = sup.detach(*FAST, cmd=camp.cmd)
    doc = sup.wait_child()
    wait_until(lambda: camp.in_item(1), 20, "attempt 1 inside an item")
    for pid, start in ((supervisor, doc["pid_start"]), (doc["child_pid"], doc["child_start"])):
        proc = verified(pid, start)
        assert proc is not None
        proc.send_signal(signal.SIGKILL)
    injected.inject()
    wait_until(lambda: gone(supervisor) and gone(doc["child_pid"]), 10, "both gone")
    assert sup.ctl("start", *FAST).returncode == 0
    camp.gate.touch()
    sup.wait_state("complete", timeout=60)
    injected.lost = camp.check_everything()["lost"]
    records = sup.lines("restarts.jsonl")
    assert [r["attempt"] for r in records] == [1, 2], records
    assert records[0]["reason"] == "crash" and records[0]["item"] is not None
