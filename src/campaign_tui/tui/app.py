"""The Textual app and the entry point ``run_tui``."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import ClassVar

from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.screen import Screen

from campaign_tui import statedir
from campaign_tui.statedir import StateDir
from campaign_tui.tui.screens import EmptyScreen, HelpScreen, MonitorScreen, PickerScreen

STYLESHEET_NAME = "campaign.tcss"  # where the wheel puts the repository's .textual.css


def stylesheet() -> Path | None:
    """The one stylesheet: next to this module in an installed wheel, or the
    repository's top-level ``.textual.css`` in an editable install."""
    here = Path(__file__).resolve().parent
    for candidate in (here / STYLESHEET_NAME, here.parents[2] / ".textual.css"):
        if candidate.is_file():
            return candidate
    return None


class CampaignApp(App[int]):
    """Watch a campaign; start, stop and restart it. Quitting never stops it."""

    TITLE = "campaign-tui"
    CSS_PATH = stylesheet()
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit (keeps running)"),
        Binding("question_mark", "help", "Help"),
    ]

    def __init__(self, sd: StateDir | None, *, root: Path, poll: bool = False) -> None:
        super().__init__()
        self.sd = sd
        self.root = root
        self.poll = poll

    def on_mount(self) -> None:
        self.push_screen(self.first_screen())

    def first_screen(self) -> Screen[None]:
        if self.sd is not None:
            return MonitorScreen(self.sd, poll=self.poll)
        found = statedir.list_campaigns(self.root)
        if len(found) == 1:
            return MonitorScreen(StateDir(found[0]), poll=self.poll)
        if found:
            return PickerScreen(self.root, poll=self.poll)
        return EmptyScreen(self.root, poll=self.poll)

    @property
    def monitor(self) -> MonitorScreen | None:
        screen = self.screen
        return screen if isinstance(screen, MonitorScreen) else None

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        if isinstance(screen, MonitorScreen):
            yield SystemCommand(
                "Start the campaign",
                "s · run it detached under the supervisor",
                screen.action_start,
            )
            yield SystemCommand(
                "Stop the campaign", "x · asks y/n; ends the whole process tree", screen.action_stop
            )
            yield SystemCommand(
                "Restart the campaign",
                "r · asks y/n; resumes from the checkpoint",
                screen.action_restart,
            )
            yield SystemCommand(
                "Next log",
                "tab / l · errors, alerts, progress, output, restarts",
                screen.action_next_log,
            )
            if screen.from_picker:
                yield SystemCommand("Back to the campaigns", "esc", screen.action_back)
        yield SystemCommand("Help", "? · keys and states", self.action_help)
        yield SystemCommand("Quit", "q · the campaign keeps running", self.action_quit)
        yield from super().get_system_commands(screen)


def run_tui(sd: StateDir | None, *, root: Path, poll: bool = False) -> int:
    """Open the monitor of ``sd`` (or the picker / the empty state under ``root``)."""
    app = CampaignApp(sd, root=root, poll=poll)
    app.run()
    return app.return_code or 0
