"""The reference Textual app: one line of text, nothing else.

usage: bare_app.py MARKER [--tick]

With ``--tick`` a second line shows a count that changes once a second: the
least a monitor with a live age on screen can do, drawn by Textual alone.
"""

from __future__ import annotations

import sys

from textual.app import App, ComposeResult
from textual.widgets import Static


class Bare(App[None]):
    def __init__(self, marker: str, tick: bool) -> None:
        super().__init__()
        self.marker = marker
        self.tick = tick
        self.count = 0

    def compose(self) -> ComposeResult:
        yield Static(self.marker)
        if self.tick:
            yield Static("0s", id="age")

    def on_mount(self) -> None:
        if self.tick:
            self.set_interval(1.0, self.advance)

    def advance(self) -> None:
        self.count += 1
        self.query_one("#age", Static).update(f"{self.count}s", layout=False)


if __name__ == "__main__":
    Bare(sys.argv[1], "--tick" in sys.argv[2:]).run()
