"""The TUI against real state directories and real supervised campaigns (Textual's Pilot).

Each test drives the app headless at 80×24 and waits on conditions with a
deadline, never on sleeps.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import re
import struct
import subprocess
import sys
import time
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest
from textual import events
from textual.content import Content
from textual.css.query import NoMatches
from textual.pilot import Pilot
from textual.widget import Widget
from textual.widgets import DataTable, Log, Static, TabbedContent
from textual.widgets._footer import FooterKey

from campaign_tui import procs, statedir
from campaign_tui.health import State
from campaign_tui.statedir import StateDir
from campaign_tui.tui import inotify
from campaign_tui.tui import watcher as watcher_module
from campaign_tui.tui.app import CampaignApp, stylesheet
from campaign_tui.tui.screens import (
    HELP,
    ConfirmScreen,
    EmptyScreen,
    HelpScreen,
    MonitorScreen,
    PickerScreen,
)
from campaign_tui.tui.widgets import HealthPane, LogTabs, RestartTable
from campaign_tui.writer import StateWriter, heartbeat_doc
from conftest import until
from tui_scenes import MARKER_VAR, Scenes, read_json, wait_for

SIZE = (80, 24)


def run(coro: Coroutine[Any, Any, None]) -> None:
    asyncio.run(coro)


def find(app: CampaignApp, selector: str | type[Widget], kind: type[Widget] = Widget) -> Any:
    """The widget on the current screen, or None while that screen is not composed yet
    (a pushed screen is ``app.screen`` before its widgets are mounted)."""
    try:
        if isinstance(selector, str):
            return app.screen.query_one(selector, kind)
        return app.screen.query_one(selector)
    except NoMatches:
        return None


async def widget(
    pilot: Pilot[Any], app: CampaignApp, selector: str | type[Widget], kind: type[Widget] = Widget
) -> Any:
    """Wait for the widget to be on the current screen, and return it."""
    return await until(pilot, lambda: find(app, selector, kind), what=f"{selector} composed")


def text_of(app: CampaignApp, selector: str) -> str:
    """The text of a Static on the current screen ("" while it is not composed)."""
    found = find(app, selector, Static)
    return str(found.render()) if found is not None else ""


def badge(app: CampaignApp) -> str:
    return text_of(app, "#state-word").strip()


def armed(app: CampaignApp) -> bool:
    """The file watch is set up (writes from now on arrive as events)."""
    screen = app.screen
    return isinstance(screen, MonitorScreen) and screen.watcher.stats.arms >= 1


def log_lines(app: CampaignApp, kind: str) -> list[str]:
    found = find(app, f"#log-{kind}", Log)
    return list(found.lines) if found is not None else []


def monitor(app: CampaignApp) -> MonitorScreen:
    screen = app.screen
    assert isinstance(screen, MonitorScreen), screen
    return screen


@pytest.fixture(scope="module")
def shared(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Scenes, dict[str, StateDir]]]:
    """The four states of the screenshots, made once for the read-only tests."""
    scenes = Scenes(tmp_path_factory.mktemp("scenes"))
    try:
        made = {
            "healthy": scenes.healthy(),
            "stale": scenes.stale(),
            "crashed": scenes.crashed(),
            "complete": scenes.complete(),
        }
        yield scenes, made
    finally:
        scenes.end_all()


@pytest.fixture
def scenes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Scenes]:
    made = Scenes(tmp_path / "root")
    made.root.mkdir()
    # What the app starts (s, r) inherits the marker too, so teardown finds it.
    monkeypatch.setenv(MARKER_VAR, made.marker)
    try:
        yield made
    finally:
        made.end_all()


# ---------------------------------------------------------------------- the panes, per state


EXPECTED = {
    "healthy": (State.HEALTHY, "23/40", "3 failed"),
    "stale": (State.STALE, "30/40", "(limit 2s)"),
    "crashed": (State.CRASHED, "8/40", "gave up after 2 restarts"),
    "complete": (State.COMPLETE, "40/40", "2 failed"),
}


@pytest.mark.parametrize("state", list(EXPECTED))
def test_each_state_shows_its_words_colour_and_panes(shared: Any, state: str) -> None:
    scenes, made = shared
    want, progress, words = EXPECTED[state]

    async def scenario() -> None:
        app = CampaignApp(made[state], root=scenes.root)
        async with app.run_test(size=SIZE) as pilot:
            await until(
                pilot,
                lambda: want.value in badge(app),
                timeout=20,
                what=f"{want} badge",
                shown=lambda: (badge(app), text_of(app, "#reason"), text_of(app, "#process")),
            )
            screen = monitor(app)
            assert screen.query_one(HealthPane).has_class(f"-{want.value.lower()}")
            assert progress in text_of(app, "#counts")
            shown = " ".join(text_of(app, s) for s in ("#reason", "#counts", "#detail", "#process"))
            assert words in shown
            if state == "healthy":
                await until(pilot, lambda: "mem " in text_of(app, "#process"), what="tree usage")
                assert "supervisor running" in text_of(app, "#process")
                assert "item-024" in text_of(app, "#detail")
                assert "/min" in text_of(app, "#detail")
            if state == "crashed":
                table = screen.query_one(RestartTable)
                await until(pilot, lambda: table.row_count == 3, what="3 restart rows")
                reasons = [str(table.get_row_at(i)[2]) for i in range(3)]
                assert reasons == ["crash", "crash", "crash"]
                assert "gave up" in text_of(app, "#process")
            svg = app.export_screenshot()
            assert want.value in svg

    run(scenario())


def test_logs_have_a_tab_each_and_tab_l_h_cycle_them(shared: Any) -> None:
    scenes, made = shared

    async def scenario() -> None:
        app = CampaignApp(made["crashed"], root=scenes.root)
        async with app.run_test(size=SIZE) as pilot:
            tabs = await widget(pilot, app, LogTabs)
            await until(
                pilot, lambda: any("scene crash" in line for line in log_lines(app, "errors"))
            )
            assert tabs.active == "errors"
            seen = []
            for key in ("tab", "l", "tab", "tab", "tab"):
                await pilot.press(key)
                await until(pilot, lambda: tabs.active != (seen[-1] if seen else "errors"))
                seen.append(tabs.active)
            assert seen == ["alerts", "progress", "output", "restarts", "errors"]
            await pilot.press("h")
            await until(pilot, lambda: tabs.active == "restarts")
            await pilot.press("shift+tab")
            await until(pilot, lambda: tabs.active == "output")
            assert any("testing item-" in line for line in log_lines(app, "output"))
            assert any("CRITICAL" in line for line in log_lines(app, "alerts"))
            assert any("item-003 failed" in line for line in log_lines(app, "progress"))

    run(scenario())


def test_help_says_quitting_keeps_the_campaign_running(shared: Any) -> None:
    scenes, made = shared

    async def scenario() -> None:
        app = CampaignApp(made["complete"], root=scenes.root)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("question_mark")
            await until(pilot, lambda: isinstance(app.screen, HelpScreen))
            assert "never stops the campaign" in str(
                (await widget(pilot, app, "#help-text")).render()
            )
            await pilot.press("escape")
            await until(pilot, lambda: isinstance(app.screen, MonitorScreen))
            footer = " ".join(str(k.render()) for k in app.screen.query(FooterKey))
            assert "keeps running" in footer

    run(scenario())


def test_the_help_keys_line_up_in_one_column() -> None:
    lines = Content.from_markup(HELP).plain.splitlines()
    keys = [line for line in lines if line.startswith("  ")]
    assert len(keys) >= 8, lines
    # Each key line: two spaces, the key (single spaces inside), two or more, the words.
    matches = [re.match(r"  \S+(?: \S+)*  +", line) for line in keys]
    assert all(matches), keys
    assert len({m.end() for m in matches if m}) == 1, keys


def test_opening_and_closing_the_help_frees_what_it_made(shared: Any) -> None:
    scenes, made = shared

    async def scenario() -> None:
        app = CampaignApp(made["complete"], root=scenes.root)
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: "COMPLETE" in badge(app))

            async def cycle(times: int) -> int:
                for _ in range(times):
                    await pilot.press("question_mark")
                    await until(pilot, lambda: isinstance(app.screen, HelpScreen))
                    await pilot.press("escape")
                    await until(pilot, lambda: isinstance(app.screen, MonitorScreen))
                await pilot.pause(0.2)
                gc.collect()
                return sum(isinstance(o, (HelpScreen, FooterKey)) for o in gc.get_objects())

            before = await cycle(2)
            after = await cycle(5)
            assert after <= before, (before, after)
            assert len(app.screen_stack) == 2

    run(scenario())


def test_every_action_is_in_the_command_palette(shared: Any) -> None:
    scenes, made = shared

    async def scenario() -> None:
        app = CampaignApp(made["complete"], root=scenes.root)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            titles = [c.title for c in app.get_system_commands(app.screen)]
            for wanted in ("Start", "Stop", "Restart", "Next log", "Help", "Quit"):
                assert any(t.startswith(wanted) for t in titles), (wanted, titles)

    run(scenario())


# ---------------------------------------------------------------------- keys that act


def footer_disabled(app: CampaignApp, key: str) -> bool | None:
    """Is ``key`` greyed in the footer? None while the footer is being rebuilt."""
    for item in app.screen.query(FooterKey):
        if item.key == key:
            return item.has_class("-disabled")
    return None


def test_start_is_greyed_while_running_and_q_leaves_it_running(scenes: Scenes) -> None:
    sd = scenes.healthy()
    sup = read_json(sd.file(statedir.SUPERVISOR))

    async def scenario() -> None:
        app = CampaignApp(sd, root=scenes.root)
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: "HEALTHY" in badge(app))
            await until(pilot, lambda: footer_disabled(app, "s"), what="start greyed")
            assert footer_disabled(app, "x") is False and footer_disabled(app, "r") is False
            await pilot.press("s")  # greyed: nothing happens
            await pilot.pause(0.1)
            assert monitor(app).busy is None
            await pilot.press("q")
        assert app.return_code == 0

    run(scenario())
    assert procs.alive(sup["pid"], sup["pid_start"])
    assert procs.alive(sup["child_pid"], sup["child_start"])


def test_x_asks_n_cancels_y_stops_then_s_starts_again(scenes: Scenes) -> None:
    sd = scenes.healthy()
    first = read_json(sd.file(statedir.SUPERVISOR))

    async def scenario() -> None:
        app = CampaignApp(sd, root=scenes.root)
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: "HEALTHY" in badge(app))
            await pilot.press("x")
            await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
            await pilot.press("n")
            await until(pilot, lambda: isinstance(app.screen, MonitorScreen))
            assert procs.alive(first["pid"], first["pid_start"])

            await pilot.press("x")
            await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
            await pilot.press("y")
            await until(pilot, lambda: "TERMINATED" in badge(app), 30, "TERMINATED")
            await until(pilot, lambda: monitor(app).busy is None, 30, "stop finished")
            assert monitor(app).last_control == ("stop", 0, monitor(app).last_control[2])
            assert not procs.alive(first["child_pid"], first["child_start"])
            await until(pilot, lambda: footer_disabled(app, "s") is False, what="start enabled")
            await until(pilot, lambda: footer_disabled(app, "x") and footer_disabled(app, "r"))

            await pilot.press("s")
            await until(pilot, lambda: "HEALTHY" in badge(app), 30, "HEALTHY again")
            await until(pilot, lambda: monitor(app).busy is None, 30, "start finished")
            await until(pilot, lambda: footer_disabled(app, "s"), what="start greyed again")

    run(scenario())
    now = read_json(sd.file(statedir.SUPERVISOR))
    assert now["pid"] != first["pid"] and now["attempt"] == 2
    assert procs.alive(now["pid"], now["pid_start"])


def test_r_y_restarts_at_once(scenes: Scenes) -> None:
    sd = scenes.healthy()
    first = read_json(sd.file(statedir.SUPERVISOR))

    async def scenario() -> None:
        app = CampaignApp(sd, root=scenes.root)
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: "HEALTHY" in badge(app))
            await pilot.press("r")
            await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
            await pilot.press("escape")
            await until(pilot, lambda: isinstance(app.screen, MonitorScreen))
            assert monitor(app).busy is None
            await pilot.press("r")
            await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
            await pilot.press("y")
            await until(pilot, lambda: monitor(app).last_control is not None, 30, "restart done")
            assert monitor(app).last_control[:2] == ("restart", 0)
            await until(
                pilot,
                lambda: "attempt 2" in text_of(app, "#process"),
                what="attempt 2 in the process pane",
            )
            table = monitor(app).query_one(RestartTable)
            await until(pilot, lambda: table.row_count == 1)
            assert str(table.get_row_at(0)[2]) == "manual"

    run(scenario())
    now = read_json(sd.file(statedir.SUPERVISOR))
    assert now["pid"] == first["pid"] and now["child_pid"] != first["child_pid"]


# ---------------------------------------------------------------------- live updates


def write_campaign(sd: StateDir, pid: int, *, item: str = "item-1", tested: int = 1) -> None:
    writer = StateWriter(sd)
    doc = heartbeat_doc(
        item=item, tested=tested, total=10, pid=pid, pid_start=procs.start_time(pid)
    )
    assert writer.json(statedir.HEARTBEAT, doc)
    assert writer.status("RUNNING", "running")


@pytest.fixture
def plain_dir(tmp_path: Path) -> StateDir:
    """An unsupervised campaign's directory whose 'campaign' is this test process."""
    sd = statedir.ensure(StateDir(tmp_path / "plain"))
    write_campaign(sd, os.getpid())
    return sd


def test_a_file_write_reaches_the_screen_fast(plain_dir: StateDir) -> None:
    writer = StateWriter(plain_dir)
    delays: list[float] = []

    async def scenario() -> None:
        app = CampaignApp(plain_dir, root=plain_dir.path.parent)
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: "HEALTHY" in badge(app))
            await until(pilot, lambda: armed(app), what="the watch")
            for n in range(5):
                state = "TERMINATED" if n % 2 == 0 else "HEALTHY"
                started = time.monotonic()
                if state == "TERMINATED":
                    writer.status("TERMINATED", f"stopped {n}")
                else:
                    writer.status("RUNNING", f"running {n}")
                await until(pilot, lambda s=state: s in badge(app), 5, f"{state} shown")
                delays.append(time.monotonic() - started)

    run(scenario())
    print(f"file write → badge: {[f'{d * 1000:.0f} ms' for d in delays]}")
    # Typically 5–30 ms; bench/ measures the target (50 ms). Here the bound only has
    # to tell an event from the 1 s tick or the 5 s reconcile on a loaded CI box.
    assert min(delays) < 0.3, delays
    assert max(delays) < 2.0, delays


def test_crash_notifies_and_rings_the_bell_once(plain_dir: StateDir) -> None:
    writer = StateWriter(plain_dir)

    async def scenario() -> None:
        app = CampaignApp(plain_dir, root=plain_dir.path.parent)
        bells: list[float] = []
        app.bell = lambda: bells.append(time.monotonic())  # type: ignore[method-assign]
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: "HEALTHY" in badge(app))
            await until(pilot, lambda: armed(app), what="the watch")
            writer.status("CRASHED", "boom [/] [bold red]x[/]", exit_code=3)
            await until(pilot, lambda: "CRASHED" in badge(app))
            await until(pilot, lambda: bells, what="the bell")
            assert monitor(app).critical_raised == ["CRASHED"]
            messages = [n.message for n in app._notifications]
            assert any("CRASHED: boom [/] [bold red]x[/]" in m for m in messages), messages
            writer.status("CRASHED", "boom again")
            await until(pilot, lambda: "boom again" in text_of(app, "#reason"))
            assert len(bells) == 1

    run(scenario())


def test_untrusted_text_is_shown_literally(plain_dir: StateDir) -> None:
    evil = "[/] [bold red]x[/] \x1b]0;pwned\x07 [link=http://x]y[/link]"
    statedir.append_bytes(
        plain_dir.log("errors"),
        b"L" * 1_000_000 + b"\n" + evil.encode() + b"\n" + b"bad utf8 \xff\xfe\n",
    )
    write_campaign(plain_dir, os.getpid(), item="[b]item[/b] \x1b[31mred")
    writer = StateWriter(plain_dir)
    writer.status("RUNNING", "[/] msg")

    async def scenario() -> None:
        app = CampaignApp(plain_dir, root=plain_dir.path.parent)
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: len(log_lines(app, "errors")) >= 3, what="error lines")
            long, first, second = log_lines(app, "errors")[-3:]
            assert first.startswith("[/] [bold red]x[/] ") and "[link=http://x]y[/link]" in first
            assert "\x1b" not in first and "pwned" not in first
            assert "\ufffd" in second
            assert len(long) <= 4096
            await until(pilot, lambda: "[b]item[/b]" in text_of(app, "#detail"))
            assert "\x1b" not in text_of(app, "#detail")
            svg = app.export_screenshot()
            assert "pwned" not in svg

    run(scenario())


def test_the_rate_stops_at_the_last_result_once_the_campaign_is_over(
    plain_dir: StateDir,
) -> None:
    # Eleven results six seconds apart, the last ten minutes ago: 10 items a minute.
    last = int(time.time() * 1000) - 600_000
    lines = [
        json.dumps({"item": f"i{n}", "attempt": 1, "timestamp": last - (10 - n) * 6000})
        for n in range(11)
    ]
    statedir.append_bytes(plain_dir.file(statedir.RESULTS), ("\n".join(lines) + "\n").encode())
    writer = StateWriter(plain_dir)

    async def scenario() -> None:
        app = CampaignApp(plain_dir, root=plain_dir.path.parent)
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: "HEALTHY" in badge(app))
            # Running: the ten quiet minutes count (10 items in 11 minutes).
            await until(pilot, lambda: "0.9/min" in text_of(app, "#detail"), what="slowing")
            for state in ("COMPLETE", "TERMINATED"):
                writer.status(state, "over")
                await until(pilot, lambda s=state: s in badge(app), what=state)
                await until(
                    pilot,
                    lambda: "10.0/min" in text_of(app, "#detail"),
                    what="the rate at the last result",
                    shown=lambda: text_of(app, "#detail"),
                )
                assert "ETA" not in text_of(app, "#detail")

    run(scenario())


def test_a_1gb_log_opens_at_once(plain_dir: StateDir) -> None:
    with open(plain_dir.log("errors"), "wb") as handle:
        handle.truncate(1 << 30)
        handle.seek((1 << 30) - 30)
        handle.write(b"\n2026-01-01 ERROR the very end\n")

    async def scenario() -> None:
        app = CampaignApp(plain_dir, root=plain_dir.path.parent)
        started = time.monotonic()
        async with app.run_test(size=SIZE) as pilot:
            await until(
                pilot, lambda: any("the very end" in line for line in log_lines(app, "errors"))
            )
            assert time.monotonic() - started < 5

    run(scenario())


FIREHOSE = """
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
n = 0
while True:
    os.write(fd, b"".join(b"flood line %d [red]x[/]\\n" % (n + i) for i in range(500)))
    n += 500
"""


def test_a_firehose_of_output_never_freezes_the_keyboard(
    plain_dir: StateDir, scenes: Scenes
) -> None:
    async def scenario() -> None:
        app = CampaignApp(plain_dir, root=plain_dir.path.parent)
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: "HEALTHY" in badge(app))
            await until(pilot, lambda: armed(app), what="the watch")
            flood = subprocess.Popen(
                [sys.executable, "-c", FIREHOSE, str(plain_dir.log("output"))], env=scenes.env
            )
            try:
                tabs = monitor(app).query_one(LogTabs)
                await until(pilot, lambda: len(log_lines(app, "output")) > 100, what="flood")
                delays = []
                for expected in ("alerts", "progress", "output", "restarts", "errors"):
                    started = time.monotonic()
                    # Posted like a keystroke: pilot.press would wait for an idle app,
                    # and an app fed a firehose is never idle.
                    app.post_message(events.Key("tab", None))
                    await until(pilot, lambda e=expected: tabs.active == e, 5, f"tab to {expected}")
                    delays.append(time.monotonic() - started)
                assert len(log_lines(app, "output")) <= 2000
                # The target (150 ms) is measured by bench/; here, on a CI box that the
                # flood itself loads, the keyboard must stay clearly responsive.
                assert sorted(delays)[2] < 0.5, delays
                assert max(delays) < 3.0, delays
            finally:
                flood.kill()
                flood.wait()

    run(scenario())


def test_the_watch_is_rearmed_when_the_directory_is_recreated(tmp_path: Path) -> None:
    sd = statedir.ensure(StateDir(tmp_path / "again"))
    write_campaign(sd, os.getpid())

    async def scenario() -> None:
        app = CampaignApp(sd, root=tmp_path)
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: "HEALTHY" in badge(app))
            await until(pilot, lambda: armed(app), what="the watch")
            arms = monitor(app).watcher.stats.arms
            for child in sd.path.iterdir():
                child.unlink()
            sd.path.rmdir()
            await until(pilot, lambda: "UNKNOWN" in badge(app), what="gone")
            statedir.ensure(sd)
            write_campaign(sd, os.getpid())
            await until(pilot, lambda: monitor(app).watcher.stats.arms > arms, what="re-armed")
            await until(pilot, lambda: "HEALTHY" in badge(app), what="back")
            started = time.monotonic()
            StateWriter(sd).status("TERMINATED", "after the re-arm")
            await until(pilot, lambda: "TERMINATED" in badge(app), what="event after re-arm")
            assert time.monotonic() - started < 2.5  # an event, not the 5 s reconcile

    run(scenario())


@pytest.mark.skipif(not inotify.available(), reason="no inotify here")
def test_the_default_watch_is_inotify_on_the_loop(plain_dir: StateDir) -> None:
    async def scenario() -> None:
        app = CampaignApp(plain_dir, root=plain_dir.path.parent)
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: armed(app), what="the watch")
            watcher = monitor(app).watcher
            assert watcher._inotify is not None and watcher._wd >= 0
            events = watcher.stats.events
            StateWriter(plain_dir).status("TERMINATED", "by inotify")
            await until(pilot, lambda: "TERMINATED" in badge(app), 5, "TERMINATED")
            assert watcher.stats.events > events

    run(scenario())


def test_watchfiles_watches_where_there_is_no_inotify(
    plain_dir: StateDir, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(watcher_module, "open_inotify", lambda: None)

    async def scenario() -> None:
        app = CampaignApp(plain_dir, root=plain_dir.path.parent)
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: "HEALTHY" in badge(app))
            await until(pilot, lambda: armed(app), what="the watch")
            watcher = monitor(app).watcher
            assert watcher._inotify is None
            watcher.reconcile_every = 60.0  # only an event can show the write in time
            started = time.monotonic()
            StateWriter(plain_dir).status("TERMINATED", "by watchfiles")
            await until(pilot, lambda: "TERMINATED" in badge(app), 5, "TERMINATED")
            assert time.monotonic() - started < 2.5  # an event, not the reconcile

    run(scenario())


def test_inotify_events_are_parsed_with_their_names() -> None:
    def raw(wd: int, mask: int, name: bytes, pad: int) -> bytes:
        field = name + b"\0" * pad
        return struct.pack("iIII", wd, mask, 0, len(field)) + field

    buf = raw(1, inotify.IN_MOVED_TO, b"status.json", 5) + raw(1, inotify.IN_DELETE_SELF, b"", 0)
    buf += raw(2, inotify.IN_MODIFY, "errors-\u00e9.log".encode(), 16)
    assert inotify.parse(buf) == [
        inotify.Event(1, inotify.IN_MOVED_TO, "status.json"),
        inotify.Event(1, inotify.IN_DELETE_SELF, ""),
        inotify.Event(2, inotify.IN_MODIFY, "errors-\u00e9.log"),
    ]


def test_poll_mode_sees_quick_rewrites(plain_dir: StateDir) -> None:
    writer = StateWriter(plain_dir)

    async def scenario() -> None:
        app = CampaignApp(plain_dir, root=plain_dir.path.parent, poll=True)
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: "HEALTHY" in badge(app))
            await until(pilot, lambda: armed(app), what="the watch")
            writer.status("TERMINATED", "one")
            writer.status("CRASHED", "two")  # within the same second
            await until(pilot, lambda: "CRASHED" in badge(app), 5, "CRASHED by polling")

    run(scenario())


def test_the_health_is_judged_again_each_second_without_events(tmp_path: Path) -> None:
    sd = statedir.ensure(StateDir(tmp_path / "quiet"))
    writer = StateWriter(sd)
    doc = heartbeat_doc(item="slow", tested=1, total=5, pid=os.getpid())
    doc["stale_after"] = 1.5
    writer.json(statedir.HEARTBEAT, doc)

    async def scenario() -> None:
        app = CampaignApp(sd, root=tmp_path)
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: "HEALTHY" in badge(app))
            await until(pilot, lambda: "STALE" in badge(app), 6, "STALE with no file event")

    run(scenario())


# ---------------------------------------------------------------------- other screens


def test_several_campaigns_get_a_picker(tmp_path: Path) -> None:
    for name in ("alpha", "beta"):
        sd = statedir.ensure(StateDir(tmp_path / name))
        write_campaign(sd, os.getpid())
    StateWriter(StateDir(tmp_path / "beta")).status("CRASHED", "bad")

    async def scenario() -> None:
        app = CampaignApp(None, root=tmp_path)
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: isinstance(app.screen, PickerScreen))
            table = await widget(pilot, app, DataTable)
            await until(pilot, lambda: table.row_count == 2)
            assert [str(table.get_row_at(i)[1]) for i in range(2)] == ["● HEALTHY", "✘ CRASHED"]
            note = text_of(app, "#picker-note")
            assert "keep running" in note and "x stops" not in note  # x does nothing here
            await pilot.press("down", "enter")
            await until(pilot, lambda: isinstance(app.screen, MonitorScreen))
            assert monitor(app).sd.path.name == "beta"
            await until(pilot, lambda: "CRASHED" in badge(app))
            await pilot.press("escape")
            await until(pilot, lambda: isinstance(app.screen, PickerScreen))

    run(scenario())


def test_a_hostile_directory_name_shows_literally_in_the_picker_and_the_title(
    tmp_path: Path,
) -> None:
    # A name cannot hold "/", so "[/]" itself is out; "[bold red]" is markup enough.
    evil = "\x1b[31m[bold red]evil\x1b]0;pwned\x07 \x07x"
    for name in ("alpha", evil):
        write_campaign(statedir.ensure(StateDir(tmp_path / name)), os.getpid())

    async def scenario() -> None:
        app = CampaignApp(None, root=tmp_path)
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: isinstance(app.screen, PickerScreen))
            table = await widget(pilot, app, DataTable)
            await until(pilot, lambda: table.row_count == 2)
            names = [str(table.get_row_at(i)[0]) for i in range(2)]
            shown = names[0]  # ESC sorts first
            assert shown == "[bold red]evil \u2407x", names
            assert "\x1b" not in app.export_screenshot()
            await pilot.press("enter")
            await until(pilot, lambda: isinstance(app.screen, MonitorScreen))
            await until(pilot, lambda: "[bold red]evil" in text_of(app, "#title"))
            title = text_of(app, "#title")
            assert "\x1b" not in title and "\x07" not in title and "pwned" not in title
            assert "[bold red]evil \u2407x" in title
            svg = app.export_screenshot()
            assert "pwned" not in svg and "\x1b" not in svg

    run(scenario())


def test_no_campaign_shows_how_to_start_one_and_opens_it_when_it_appears(tmp_path: Path) -> None:
    async def scenario() -> None:
        app = CampaignApp(None, root=tmp_path)
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: isinstance(app.screen, EmptyScreen))
            assert "campaign-tui demo" in str((await widget(pilot, app, "#empty-text")).render())
            sd = statedir.ensure(StateDir(tmp_path / "late"))
            write_campaign(sd, os.getpid())
            await until(pilot, lambda: isinstance(app.screen, MonitorScreen), 6, "monitor")
            await until(pilot, lambda: "HEALTHY" in badge(app))

    run(scenario())


def test_legacy_layout_is_watched_read_only(tmp_path: Path) -> None:
    doc = heartbeat_doc(item="sd-7", tested=7, total=118, pid=os.getpid())
    statedir.write_json(tmp_path / "campaign-heartbeat.txt", doc)
    statedir.append_bytes(tmp_path / "batch-test-errors.log", b"2026 ERROR legacy error\n")
    sd = StateDir(tmp_path, "legacy")

    async def scenario() -> None:
        app = CampaignApp(sd, root=tmp_path)
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: "HEALTHY" in badge(app))
            await until(
                pilot, lambda: any("legacy error" in line for line in log_lines(app, "errors"))
            )
            assert "7/118" in text_of(app, "#counts")
            tabs = monitor(app).query_one(TabbedContent)
            assert tabs.tab_count == 3
            await until(pilot, lambda: footer_disabled(app, "s") and footer_disabled(app, "x"))

    run(scenario())


def test_the_stylesheet_is_the_repository_one_in_an_editable_install() -> None:
    found = stylesheet()
    assert found is not None
    assert found.name in (".textual.css", "campaign.tcss")
    assert "HealthPane" in found.read_text()


def wait_file(path: Path) -> None:
    wait_for(path.exists, what=str(path))
