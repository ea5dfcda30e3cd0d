"""Untrusted text reaches a terminal or widget as one literal, harmless line."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from campaign_tui.sanitize import sanitize, sanitize_block

# Anything a terminal acts on: C0 controls but tab, DEL, C1 controls (ESC among C0).
DANGEROUS = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")
BIDI = re.compile("[\u202a-\u202e\u2066-\u2069]")


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("plain text", "plain text"),
        ("tab\tkept", "tab\tkept"),
        ("\x1b[31mred\x1b[0m", "red"),  # SGR colour
        ("\x1b[2J\x1b[Hcleared", "cleared"),  # clear screen, cursor home
        ("\x1b]0;new title\x07after", "after"),  # OSC window title, BEL-terminated
        ("\x1b]8;;http://evil\x1b\\link\x1b]8;;\x1b\\", "link"),  # OSC 8 hyperlink, ST
        ("\x1bPdevice control\x1b\\x", "x"),  # DCS
        ("\x9b31mC1 CSI", "C1 CSI"),  # 8-bit CSI
        ("\x1b", ""),  # a lone ESC
        ("a\x1b[", "a"),  # a truncated CSI
        ("a\x00b", "a␀b"),
        ("line1\nline2", "line1⏎line2"),
        ("cr\roverwrite", "cr␍overwrite"),
        ("bell\x07", "bell␇"),
        ("del\x7f", "del␡"),
        ("nel\x85", "nel"),  # C1 NEL is a sequence introducer's kin: dropped or shown, never raw
        ("safe\u202eevil", "safeevil"),  # right-to-left override
        ("zero\u200bwidth", "zerowidth"),
        ("\ufeffbom", "bom"),
        ("[b]not markup[/b] [red]x", "[b]not markup[/b] [red]x"),  # brackets stay literal
        ("ünïcödé ✓ 日本", "ünïcödé ✓ 日本"),
    ],
)
def test_sanitize_table(raw: str, shown: str) -> None:
    out = sanitize(raw)
    assert not DANGEROUS.search(out)
    if raw.startswith("nel"):
        assert out.startswith("nel") and "\x85" not in out
    else:
        assert out == shown


def test_bytes_are_decoded_with_replacement() -> None:
    assert sanitize(b"ok \xff\xfe bytes\x1b[1m!") == "ok \ufffd\ufffd bytes!"


def test_limit_caps_with_an_ellipsis() -> None:
    out = sanitize("x" * 100, limit=10)
    assert out == "x" * 9 + "…"
    assert sanitize("x" * 10, limit=10) == "x" * 10


def test_huge_input_is_bounded() -> None:
    out = sanitize("\x1b[31m" * 200_000 + "y" * 200_000, limit=100)
    assert len(out) <= 100 and not DANGEROUS.search(out)


def test_sanitize_block_keeps_lines_but_not_escapes() -> None:
    tb = "Traceback (most recent call last):\n  File \"x.py\", line 1\x1b[2J\nValueError: \x07boom"
    out = sanitize_block(tb)
    assert out.splitlines() == [
        "Traceback (most recent call last):",
        '  File "x.py", line 1',
        "ValueError: ␇boom",
    ]


def test_sanitize_block_limits() -> None:
    out = sanitize_block("a" * 50 + "\n" + "b" * 10, limit=1000, line_limit=20)
    assert out.splitlines() == ["a" * 19 + "…", "b" * 10]
    assert len(sanitize_block("z\n" * 100_000, limit=500)) <= 500


@settings(max_examples=300, deadline=None)
@given(st.text(), st.integers(min_value=1, max_value=300))
def test_sanitize_never_lets_controls_through(text: str, limit: int) -> None:
    out = sanitize(text, limit=limit)
    assert not DANGEROUS.search(out)
    assert not BIDI.search(out)
    assert len(out) <= limit


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2000))
def test_sanitize_any_bytes(data: bytes) -> None:
    out = sanitize(data)
    assert isinstance(out, str) and not DANGEROUS.search(out)


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_sanitize_is_idempotent(text: str) -> None:
    once = sanitize(text)
    assert sanitize(once) == once


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_sanitize_block_lines_are_clean(text: str) -> None:
    for line in sanitize_block(text).split("\n"):
        assert not DANGEROUS.search(line)
