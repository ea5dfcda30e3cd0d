"""Prometheus exposition: `campaign-tui metrics`, parsed; the supervisor's --textfile-dir."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from campaign_tui.clock import Now
from campaign_tui.health import judge
from campaign_tui.metrics import escape_label, render, textfile_name
from campaign_tui.models import Checkpoint, Heartbeat, Snapshot
from campaign_tui.procs import ProcessFacts
from conftest import ProcessTracker
from supervisor_fixtures import PY, Sup, sup_fixture

FAST = ("--backoff-initial", "0.1", "--backoff-max", "0.2", "--stop-timeout", "1")

parser = pytest.importorskip("prometheus_client.parser")


@pytest.fixture
def sup(procs: ProcessTracker, tmp_path: Path) -> Iterator[Sup]:
    yield from sup_fixture(procs, tmp_path)


def _families(text: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    found: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in parser.text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def _one(families: dict, name: str, campaign: str = "c") -> float:
    return families[name][(("campaign", campaign),)]


def test_a_campaign_run_renders_parseable_metrics(sup: Sup) -> None:
    script = sup.script(
        "c.py",
        """
        import os
        from campaign_tui import Campaign
        with Campaign(total=4) as c:
            for item in c.pending(["a", "b", "c", "d"]):
                with c.item(item) as it:
                    if item == "b":
                        it.fail("no")
                    if item == "c" and os.environ["CAMPAIGN_ATTEMPT"] == "1":
                        os._exit(1)
        """,
    )
    sup.dir = sup.tmp / "home" / "c"
    done = sup.cli("run", "--name", "c", *FAST, "--", PY, str(script))
    assert done.returncode == 0, done.stdout + done.stderr
    out = sup.cli("metrics", "--name", "c")
    assert out.returncode == 0, out.stderr
    fams = _families(out.stdout)
    assert fams["campaign_state"][(("campaign", "c"), ("state", "COMPLETE"))] == 1
    assert fams["campaign_state"][(("campaign", "c"), ("state", "HEALTHY"))] == 0
    assert _one(fams, "campaign_items_tested") == 4
    assert _one(fams, "campaign_items_planned") == 4
    assert _one(fams, "campaign_items_passed") == 3
    assert _one(fams, "campaign_items_failed") == 1
    assert _one(fams, "campaign_items_errors") == 0
    assert _one(fams, "campaign_progress_ratio") == 1
    assert _one(fams, "campaign_restarts_total") == 1
    assert _one(fams, "campaign_attempt") == 2
    assert _one(fams, "campaign_supervised") == 1
    assert _one(fams, "campaign_heartbeat_age_seconds") >= 0
    assert _one(fams, "campaign_heartbeat_timestamp_seconds") > 1e9
    assert _one(fams, "campaign_last_restart_timestamp_seconds") > 1e9
    promtool = shutil.which("promtool")
    if promtool:
        check = subprocess.run(
            [promtool, "check", "metrics"], input=out.stdout, text=True, capture_output=True
        )
        assert check.returncode == 0, check.stdout + check.stderr
    every = sup.cli("metrics", "--all")
    assert every.returncode == 0 and _one(_families(every.stdout), "campaign_items_tested") == 4


def test_label_values_are_escaped_and_each_family_is_written_once() -> None:
    now = Now(wall_ms=1_800_000_000_000)
    snaps = []
    for name in ('odd "name"\\x\n', "plain"):
        snap = Snapshot(
            directory="/nowhere",
            heartbeat=Heartbeat(at_ms=now.wall_ms - 5000, item="i", tested=1, total=2, pid=None),
            checkpoint=Checkpoint(at_ms=now.wall_ms, tested=1, total=2, passed=1),
        )
        snaps.append((name, judge(snap, now, ProcessFacts()), snap, now))
    text = render(snaps)
    assert text.count("# TYPE campaign_state gauge") == 1
    assert 'campaign="odd \\"name\\"\\\\x\\n"' in text
    fams = _families(text)
    assert _one(fams, "campaign_heartbeat_age_seconds", "plain") == 5
    assert _one(fams, "campaign_items_tested", 'odd "name"\\x\n') == 1
    assert escape_label('a"b') == 'a\\"b'
    assert textfile_name("my camp/aign") == "campaign_my_camp_aign.prom"


def test_the_supervisor_keeps_a_textfile_current(sup: Sup) -> None:
    textfiles = sup.tmp / "textfiles"
    textfiles.mkdir()
    script = sup.script(
        "t.sh",
        """\
        #!/bin/sh
        echo 1..3
        echo ok 1 - a
        echo ok 2 - b
        echo "not ok 3 - c"
        """,
    )
    done = sup.run(*FAST, "--textfile-dir", str(textfiles), cmd=[str(script)])
    assert done.returncode == 0, done.stdout + done.stderr
    prom = textfiles / "campaign_state.prom"
    assert stat.S_IMODE(prom.stat().st_mode) == 0o644  # node_exporter runs as another user
    assert [p.name for p in textfiles.iterdir()] == [prom.name]  # no temp files left
    fams = _families(prom.read_text())
    assert fams["campaign_state"][(("campaign", "state"), ("state", "COMPLETE"))] == 1
    assert _one(fams, "campaign_items_failed", "state") == 1
    assert sup.sup()["settings"]["textfile_dir"] == str(textfiles)


def test_an_unwritable_textfile_dir_never_stops_the_campaign(sup: Sup) -> None:
    missing = sup.tmp / "no" / "such" / "dir"
    done = sup.run(*FAST, "--textfile-dir", str(missing), cmd=[PY, "-c", "print('hi')"])
    assert done.returncode == 0, done.stdout + done.stderr
    wrapper = sup.text("wrapper.log")
    assert wrapper.count(f"cannot write {textfile_name('state')} in {missing}") == 1
    assert sup.json("status.json")["status"] == "COMPLETE"
    assert not os.path.exists(missing)
