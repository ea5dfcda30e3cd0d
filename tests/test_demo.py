"""The demo campaign: failures, one crash, an automatic restart that resumes, completion."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from campaign_tui import statedir
from campaign_tui.demo import SPEED_VAR, start_demo, where_it_stands
from campaign_tui.demo_campaign import CRASH_BEFORE, FAILS, ITEMS, RAISES
from tui_scenes import MARKER_VAR, Scenes, read_json, wait_for


@pytest.fixture
def marked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Scenes]:
    scenes = Scenes(tmp_path)
    monkeypatch.setenv(MARKER_VAR, scenes.marker)  # the daemon inherits it: teardown finds it
    monkeypatch.setenv(SPEED_VAR, "1")
    try:
        yield scenes
    finally:
        scenes.end_all()


def test_the_demo_crashes_once_restarts_resumes_and_completes(
    marked: Scenes, tmp_path: Path
) -> None:
    sd = start_demo(tmp_path / "demo", speed=0.02)
    assert os.stat(sd.path).st_mode & 0o777 == 0o700
    assert where_it_stands(sd) == (
        f"The demo campaign is still running; stop it with: campaign-tui stop --state-dir {sd.path}"
    )
    wait_for(
        lambda: read_json(sd.file(statedir.SUPERVISOR)).get("state") == "complete",
        90,  # about 10 s on an idle box; a loaded CI box is slower
        "the demo to complete",
    )
    restarts = [json.loads(line) for line in sd.file(statedir.RESTARTS).read_text().splitlines()]
    assert [r["reason"] for r in restarts] == ["crash", "complete"]
    results = [json.loads(line) for line in sd.file(statedir.RESULTS).read_text().splitlines()]
    items = [r["item"] for r in results]
    assert sorted(items) == sorted(ITEMS)  # each item exactly once: the restart resumed
    assert {r["attempt"] for r in results if int(r["item"][:2]) >= CRASH_BEFORE} == {2}
    outcomes = {r["item"]: r["outcome"] for r in results}
    assert sorted(int(k[:2]) for k, v in outcomes.items() if v == "failed") == sorted(FAILS)
    assert [int(k[:2]) for k, v in outcomes.items() if v == "error"] == [RAISES]
    status = read_json(sd.file(statedir.STATUS))
    assert status["status"] == "COMPLETE"
    assert "simulated crash" in sd.log("errors").read_text()
    assert sd.log("output").read_text().count("testing") == len(ITEMS)
    assert where_it_stands(sd) == "The demo campaign finished."


def test_the_quit_message_says_when_the_campaign_ended_otherwise(
    marked: Scenes, tmp_path: Path
) -> None:
    sd = marked.crashed()  # the supervisor gives up: not running, not complete
    said = where_it_stands(sd)
    assert said.startswith("The demo campaign ended (CRASHED: "), said
