"""checkpoint.json is replaced at most once a second while items are fast, and is
exact at every ending and, with fsync=True, after every item."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from campaign_tui import Campaign


def checkpoint(sd: Path) -> dict:
    return json.loads((sd / "checkpoint.json").read_text())


def test_fast_items_write_the_checkpoint_at_most_once_a_second(tmp_path: Path) -> None:
    sd = tmp_path / "c"
    with Campaign(state_dir=sd, total=50) as campaign:
        for n in range(50):
            with campaign.item(f"i{n}"):
                pass
        # the first item wrote it; the next ones, well inside a second, did not
        assert checkpoint(sd)["tested"] < 50
        assert len((sd / "results.jsonl").read_text().splitlines()) == 50
    done = checkpoint(sd)
    assert (done["tested"], done["passed"], done["last_item"]) == (50, 50, None)


def test_a_checkpoint_due_is_written_when_the_next_item_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sd = tmp_path / "c"
    clock = [100.0]
    monkeypatch.setattr("campaign_tui.campaign.time.monotonic", lambda: clock[0])
    with Campaign(state_dir=sd, total=3) as campaign:
        with campaign.item("i0"):
            pass
        assert checkpoint(sd)["tested"] == 1  # the first one is written at once
        with campaign.item("i1") as it:
            it.fail("no")
        assert checkpoint(sd)["tested"] == 1  # within the second: not yet
        clock[0] += 1.0
        with campaign.item("i2"):
            # the slow item that follows does not hold the checkpoint back
            done = checkpoint(sd)
            assert (done["tested"], done["failed"], done["last_item"]) == (2, 1, "i1")


def test_fsync_writes_the_checkpoint_after_every_item(tmp_path: Path) -> None:
    sd = tmp_path / "c"
    with Campaign(state_dir=sd, total=5, fsync=True) as campaign:
        for n in range(5):
            with campaign.item(f"i{n}"):
                pass
            assert (checkpoint(sd)["tested"], checkpoint(sd)["last_item"]) == (n + 1, f"i{n}")


@pytest.mark.parametrize("ending", [RuntimeError, KeyboardInterrupt])
def test_every_ending_leaves_an_exact_checkpoint(tmp_path: Path, ending: type) -> None:
    sd = tmp_path / "c"
    with pytest.raises(ending), Campaign(state_dir=sd, total=10) as campaign:
        for n in range(7):
            with campaign.item(f"i{n}"):
                pass
        raise ending("stop")
    done = checkpoint(sd)
    assert (done["tested"], done["last_item"]) == (7, "i6")
    assert json.loads((sd / "status.json").read_text())["status"] in ("CRASHED", "INTERRUPTED")


def test_a_long_item_after_fast_ones_shows_every_outcome_so_far(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The checkpoint lags (written at most once a second), so the heartbeat that
    # starts the long item carries the outcomes, and the judgement counts them.
    from campaign_tui import clock as clock_module
    from campaign_tui import statedir
    from campaign_tui.health import judge
    from campaign_tui.snapshot import probe_processes, read_snapshot

    sd = tmp_path / "c"
    frozen = [100.0]
    monkeypatch.setattr("campaign_tui.campaign.time.monotonic", lambda: frozen[0])
    with Campaign(state_dir=sd, total=9) as campaign:
        for n in range(7):
            with campaign.item(f"i{n}") as it:
                if n in (2, 5):
                    it.fail("no")
        with campaign.item("long"):
            assert checkpoint(sd)["passed"] == 1  # only the first item: not yet due again
            beat = json.loads((sd / "heartbeat.json").read_text())
            assert (beat["passed"], beat["failed"], beat["errors"]) == (5, 2, 0)
            snap = read_snapshot(statedir.resolve(state_dir=sd))
            progress = judge(snap, clock_module.now(), probe_processes(snap)).progress
            assert (progress.tested, progress.passed, progress.failed) == (7, 5, 2)
