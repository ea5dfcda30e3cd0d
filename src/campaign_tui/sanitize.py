"""One sanitizer for every untrusted string (log lines, item names, messages).

What the campaign writes must reach a terminal or a widget as literal text:
escape sequences could retitle the pane or move the cursor, and control bytes
could corrupt the screen. Markup is a separate matter: widgets get our text as
plain ``Text``/``Content`` and never parse it, so brackets stay as they are.
"""

from __future__ import annotations

import re

# ESC-introduced sequences: CSI (ESC [ ... final), OSC (ESC ] ... BEL or ST),
# DCS/SOS/PM/APC (ESC P/X/^/_ ... ST), and two-byte ESC sequences.
_ESCAPE_SEQUENCE = re.compile(
    r"""
    \x1b\[[0-?]*[ -/]*[@-~]?                # CSI
  | \x1b[\]PX^_][^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?   # OSC, DCS, SOS, PM, APC
  | \x9b[0-?]*[ -/]*[@-~]?                  # 8-bit CSI
  | [\x90\x98\x9d\x9e\x9f][^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?  # 8-bit string controls
  | \x1b[ -/]*[0-~]?                        # other ESC sequences (and a lone ESC)
    """,
    re.VERBOSE,
)
# C0 controls except tab, DEL, and C1 controls left after the sequences went.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")
_ZERO_WIDTH_TRICKS = re.compile("[\u202a-\u202e\u2066-\u2069\u200b-\u200f\ufeff]")

DEFAULT_LIMIT = 4096
ELLIPSIS = "…"


def _visible(match: re.Match[str]) -> str:
    char = match.group(0)
    code = ord(char)
    if code == 0x0A:
        return "⏎"
    if code < 0x20:
        return chr(0x2400 + code)  # the Unicode control picture, e.g. ␀ ␍
    if code == 0x7F:
        return "␡"
    return "�"


def sanitize(text: str | bytes, limit: int = DEFAULT_LIMIT) -> str:
    """Return ``text`` safe to show as one literal line.

    Bytes are decoded as UTF-8 with replacement. Escape sequences are removed,
    other control characters are shown as visible symbols (a newline as ⏎),
    bidirectional overrides are dropped, and the result is capped at ``limit``
    characters with an ellipsis.
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    if len(text) > limit * 4:
        text = text[: limit * 4]  # bound the regex work on a huge line
    if "\x1b" in text or any("\x80" <= ch <= "\x9f" for ch in text):
        text = _ESCAPE_SEQUENCE.sub("", text)
    text = _CONTROL.sub(_visible, text)
    text = _ZERO_WIDTH_TRICKS.sub("", text)
    if len(text) > limit:
        text = text[: limit - 1] + ELLIPSIS
    return text


def sanitize_block(text: str | bytes, limit: int = 20_000, line_limit: int = DEFAULT_LIMIT) -> str:
    """Like :func:`sanitize` but keeps line breaks, for tracebacks."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    text = text[:limit]
    return "\n".join(sanitize(line, limit=line_limit) for line in text.splitlines())
