"""A firehose into a log cannot pile messages up behind a busy screen: the watcher
keeps at most a view's worth of lines per log and announces them once."""

from __future__ import annotations

import asyncio
from pathlib import Path

from campaign_tui.statedir import StateDir
from campaign_tui.tui.watcher import LOG_LINES, LogLines, StateWatcher


def test_lines_wait_in_a_bounded_backlog_announced_once(state_dir: Path) -> None:
    errors = state_dir / "errors.log"
    errors.write_bytes(b"first\n")
    posted: list[object] = []
    watcher = StateWatcher(StateDir(state_dir), posted.append)

    async def scenario() -> None:
        await watcher._read_log("errors", initial=True)
        # the screen is busy: three more batches arrive before it takes anything
        for batch in range(3):
            with errors.open("ab") as out:
                out.write(b"".join(b"b%d line %d\n" % (batch, n) for n in range(1000)))
            await watcher._read_log("errors")

    try:
        asyncio.run(scenario())
        assert [type(m) for m in posted] == [LogLines]  # one message for all of it
        lines, replace = watcher.take_lines("errors")
        assert replace  # the first read is the whole view, and is still to be shown
        assert len(lines) == LOG_LINES
        assert "1002 lines not shown" in lines[0]  # "first", b0's 1000, and one made way
        assert lines[-1] == "b2 line 999" and lines[1] == "b1 line 1"
        assert watcher.take_lines("errors") == ([], False)  # taken: nothing waits

        asyncio.run(_append_and_read(watcher, errors, b"after\n"))
        assert len(posted) == 2  # taken, so the next lines are announced again
        assert watcher.take_lines("errors") == (["after"], False)
    finally:
        watcher.close()


async def _append_and_read(watcher: StateWatcher, path: Path, data: bytes) -> None:
    with path.open("ab") as out:
        out.write(data)
    await watcher._read_log("errors")
