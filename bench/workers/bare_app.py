"""The reference Textual app: one line of text, nothing else.

usage: bare_app.py MARKER
"""

from __future__ import annotations

import sys

from textual.app import App, ComposeResult
from textual.widgets import Static


class Bare(App[None]):
    def compose(self) -> ComposeResult:
        yield Static(sys.argv[1])


if __name__ == "__main__":
    Bare().run()
