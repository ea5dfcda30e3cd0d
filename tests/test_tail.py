"""The log tailer: bounded reads from the end, then like ``tail -F``."""

from __future__ import annotations

import os
import time
from pathlib import Path

from campaign_tui.tail import MARKER, Tailer


def write(path: Path, data: bytes, mode: str = "ab") -> None:
    with open(path, mode) as handle:
        handle.write(data)


def test_tail_returns_the_last_lines_and_follows_from_the_end(tmp_path: Path) -> None:
    log = tmp_path / "errors.log"
    write(log, b"".join(b"line %d\n" % i for i in range(100)))
    tailer = Tailer(log)
    assert tailer.tail(3) == ["line 97", "line 98", "line 99"]
    assert tailer.poll() == []
    write(log, b"line 100\nline 101\n")
    assert tailer.poll() == ["line 100", "line 101"]


def test_a_missing_file_is_picked_up_when_it_appears(tmp_path: Path) -> None:
    log = tmp_path / "alerts.log"
    tailer = Tailer(log)
    assert tailer.tail(10) == []
    assert tailer.poll() == []
    write(log, b"first\n")
    assert tailer.poll() == ["first"]


def test_a_partial_last_line_waits_for_its_newline(tmp_path: Path) -> None:
    log = tmp_path / "progress.log"
    write(log, b"done\nhalf")
    tailer = Tailer(log)
    assert tailer.tail(10) == ["done"]
    write(log, b" a line")
    assert tailer.poll() == []
    write(log, b"\r\nnext\n")
    assert tailer.poll() == ["half a line", "next"]


def test_a_huge_file_opens_at_once_reading_only_its_end(tmp_path: Path) -> None:
    log = tmp_path / "errors.log"
    with open(log, "wb") as handle:
        handle.truncate(1 << 30)  # a sparse 1 GB file: reading it whole would take seconds
        handle.seek((1 << 30) - 20)
        handle.write(b"\nthe last line here\n")
    tailer = Tailer(log)
    started = time.monotonic()
    lines = tailer.tail(50)
    assert time.monotonic() - started < 0.5
    assert lines[-1] == "the last line here"
    assert tailer.offset == log.stat().st_size


def test_a_line_cut_by_the_tail_window_is_marked_as_cut(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    write(log, b"aaaa\nbbbb\ncccc\n")
    assert Tailer(log).tail(10, max_bytes=10) == ["bbbb", "cccc"]  # starts exactly at "bbbb"
    assert Tailer(log).tail(10, max_bytes=8) == ["…bb", "cccc"]  # starts inside "bbbb"


def test_a_last_line_longer_than_the_window_still_shows(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    write(log, b"short\n" + b"L" * 1_000_000 + b"\n")
    (line,) = Tailer(log, max_line=100).tail(10)
    assert line.startswith("…LLL") and line.endswith("…") and len(line) == 100


def test_truncation_restarts_from_the_top_with_a_marker(tmp_path: Path) -> None:
    log = tmp_path / "output.log"
    write(log, b"one\ntwo\nthree\n")
    tailer = Tailer(log)
    tailer.tail(10)
    write(log, b"fresh\n", mode="wb")
    lines = tailer.poll()
    assert lines[0].startswith(MARKER) and "truncated" in lines[0]
    assert lines[1:] == ["fresh"]


def test_rotation_drains_the_old_file_then_follows_the_new_one(tmp_path: Path) -> None:
    log = tmp_path / "errors.log"
    write(log, b"old 1\n")
    tailer = Tailer(log)
    tailer.tail(10)
    write(log, b"old 2\nold tail")  # written before the rotation, never ended by a newline
    os.rename(log, tmp_path / "errors.log.1")
    write(log, b"new 1\n")
    lines = tailer.poll()
    assert lines[:2] == ["old 2", "old tail"]
    assert lines[2].startswith(MARKER) and "rotated" in lines[2]
    assert lines[3:] == ["new 1"]
    write(log, b"new 2\n")
    assert tailer.poll() == ["new 2"]


def test_a_removed_file_keeps_being_read_until_a_new_one_appears(tmp_path: Path) -> None:
    log = tmp_path / "errors.log"
    write(log, b"a\n")
    tailer = Tailer(log)
    tailer.tail(10)
    with open(log, "ab") as handle:
        os.unlink(log)
        handle.write(b"b\n")
        handle.flush()
        assert tailer.poll() == ["b"]


def test_lines_are_sanitized_and_markup_stays_literal(tmp_path: Path) -> None:
    log = tmp_path / "errors.log"
    write(log, b"[/] [bold red]x[/] \x1b]0;pwned\x07\x1b[31mred\x1b[0m \xff\xfe bell\x07\n")
    (line,) = Tailer(log).tail(5)
    assert line.startswith("[/] [bold red]x[/] ")
    assert "\x1b" not in line and "\x07" not in line and "pwned" not in line
    assert "red" in line and "\ufffd" in line


def test_a_very_long_line_is_capped_and_memory_stays_bounded(tmp_path: Path) -> None:
    log = tmp_path / "output.log"
    write(log, b"start\n")
    tailer = Tailer(log, max_line=100)
    tailer.tail(1)
    for _ in range(50):
        write(log, b"x" * 100_000)  # 5 MB without a newline
        assert tailer.poll() == []
        assert len(tailer._partial) <= 400
    write(log, b"\nafter\n")
    long, after = tailer.poll()
    assert len(long) == 100 and long.endswith("…")
    assert after == "after"


def test_poll_with_a_byte_budget_skips_ahead_with_a_marker(tmp_path: Path) -> None:
    log = tmp_path / "output.log"
    write(log, b"")
    tailer = Tailer(log)
    tailer.tail(10)
    write(log, b"".join(b"flood %06d\n" % i for i in range(100_000)))
    lines = tailer.poll(max_bytes=1000)
    assert lines[0].startswith(MARKER) and "skipped" in lines[0]
    assert lines[-1] == "flood 099999"
    assert len(lines) < 100
    write(log, b"calm\n")
    assert tailer.poll(max_bytes=1000) == ["calm"]


def test_a_symlink_is_not_followed(tmp_path: Path) -> None:
    target = tmp_path / "secret"
    write(target, b"do not show\n")
    log = tmp_path / "errors.log"
    log.symlink_to(target)
    tailer = Tailer(log)
    (line,) = tailer.tail(5)
    assert "symlink" in line and "do not show" not in line
    assert tailer.poll() == []  # said once
