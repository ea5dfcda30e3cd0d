"""An idle monitor repaints one widget a second: the reason, where the heartbeat's age ticks.

A healthy campaign whose "campaign" is this test process (alive, with its true
start time), nothing written after the start: each second the reason's age moves
on, and every other line of the health and progress panes keeps the very Content
object it had. Textual's Pilot, headless at 80×24; waits poll with a deadline.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import psutil
from textual.content import Content
from textual.css.query import NoMatches
from textual.widgets import Static

from campaign_tui import statedir
from campaign_tui.statedir import StateDir
from campaign_tui.tui.app import CampaignApp
from campaign_tui.writer import StateWriter, heartbeat_doc
from conftest import until

SIZE = (80, 24)
STILL = ("#counts", "#detail", "#action", "#state-word")


def static(app: CampaignApp, selector: str) -> Static | None:
    """The Static on the current screen, or None while it is not composed yet."""
    try:
        return app.screen.query_one(selector, Static)
    except NoMatches:
        return None


def text_of(app: CampaignApp, selector: str) -> str:
    found = static(app, selector)
    return str(found.render()) if found is not None else ""


def content_of(app: CampaignApp, selector: str) -> Content:
    found = static(app, selector)
    assert found is not None, f"{selector} not composed"
    content = found.content
    assert isinstance(content, Content), (selector, content)
    return content


def healthy_dir(tmp_path: Path) -> StateDir:
    """An unsupervised campaign running now, whose process is this one."""
    sd = statedir.ensure(StateDir(tmp_path / "idle"))
    me = psutil.Process()
    writer = StateWriter(sd)
    doc = heartbeat_doc(item="item-3", tested=3, total=10, pid=me.pid, pid_start=me.create_time())
    assert writer.json(statedir.HEARTBEAT, doc)
    assert writer.status("RUNNING", "running")
    return sd


def test_an_idle_monitor_repaints_only_the_ticking_reason(tmp_path: Path) -> None:
    sd = healthy_dir(tmp_path)
    reasons: list[str] = []

    async def scenario() -> None:
        app = CampaignApp(sd, root=tmp_path)
        async with app.run_test(size=SIZE) as pilot:
            await until(
                pilot,
                lambda: (
                    "HEALTHY" in text_of(app, "#state-word")
                    and text_of(app, "#reason").startswith("heartbeat ")
                    and " old" in text_of(app, "#reason")
                    and "heartbeat at " in text_of(app, "#detail")
                ),
                5,
                "HEALTHY with the heartbeat's age",
                shown=lambda: [text_of(app, s) for s in ("#state-word", "#reason", "#detail")],
            )
            before = {selector: content_of(app, selector) for selector in STILL}
            reasons.append(text_of(app, "#reason"))
            for tick in (1, 2):
                reasons.append(
                    await until(
                        pilot,
                        lambda: (now := text_of(app, "#reason")) != reasons[-1] and now,
                        3,
                        f"the reason's tick {tick}",
                        shown=lambda: reasons,
                    )
                )
            after = {selector: content_of(app, selector) for selector in STILL}
            for selector in STILL:
                assert after[selector] is before[selector], (
                    f"{selector} was repainted: {before[selector].plain!r} → "
                    f"{after[selector].plain!r}"
                )
            detail = after["#detail"].plain
            assert "heartbeat at " in detail, detail
            assert " ago" not in detail, detail
            assert "item-3" in detail, detail
            assert "HEALTHY" in after["#state-word"].plain

    started = time.monotonic()
    asyncio.run(scenario())
    took = time.monotonic() - started
    print(f"reasons: {reasons} in {took:.1f}s")
    assert len(reasons) == 3 and len(set(reasons)) == 3, reasons
    assert all(r.startswith("heartbeat ") and " old" in r for r in reasons), reasons
