"""TAP: the line parser (a table, and against the tap.py library), the stream, real producers."""

from __future__ import annotations

import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest

from campaign_tui.tap import (
    Bail,
    Comment,
    Finished,
    Other,
    Plan,
    Result,
    Subtest,
    TapStream,
    Version,
    outcome_of,
    parse_line,
    read_stream,
)

LINES = [
    ("ok 1 - first", 0, Result(True, 1, "first")),
    ("not ok 2 - second fails", 0, Result(False, 2, "second fails")),
    ("ok 3 - skipped one # SKIP not today", 0, Result(True, 3, "skipped one", "skip", "not today")),
    ("ok 3 # skip", 0, Result(True, 3, "", "skip", "")),
    ("not ok 4 - todo one # TODO later", 0, Result(False, 4, "todo one", "todo", "later")),
    ("ok 5 - has \\# hash", 0, Result(True, 5, "has # hash")),
    (
        "ok 6 - plain # a comment, not a directive",
        0,
        Result(True, 6, "plain # a comment, not a directive"),
    ),
    ("ok", 0, Result(True, None, "")),
    ("ok 7 no dash", 0, Result(True, 7, "no dash")),
    ("    ok 1 - inner a", 4, Result(True, 1, "inner a")),
    ("1..5", 0, Plan(5)),
    ("1..0 # Skipped: no database", 0, Plan(0, True, "no database")),
    ("    1..2", 4, Plan(2)),
    ("TAP version 14", 0, Version(14)),
    ("TAP version 12", 0, Version(12)),
    ("Bail out! db down", 0, Bail("db down")),
    ("# Subtest: suite", 0, Subtest("suite")),
    ("    # Subtest: inner", 4, Subtest("inner")),
    ("# tests 7", 0, Comment("tests 7")),
    ("okay then", 0, Other("okay then")),
    ("t/a.t .. ", 0, Other("t/a.t ..")),
    ("", 0, Other("")),
]


@pytest.mark.parametrize(
    ("line", "indent", "expected"), LINES, ids=[row[0] or "empty" for row in LINES]
)
def test_each_kind_of_line_parses(line: str, indent: int, expected: object) -> None:
    assert parse_line(line) == (indent, expected)


def test_unindented_results_agree_with_the_tap_py_library() -> None:
    tap_parser = pytest.importorskip("tap.parser")
    parser = tap_parser.Parser()
    for line in (
        "ok 1 - first",
        "not ok 2 - b",
        "ok 3 - s # SKIP why",
        "not ok 4 - t # TODO l",
        "ok",
    ):
        theirs = parser.parse_line(line)
        _, ours = parse_line(line)
        assert isinstance(ours, Result)
        assert (ours.ok, ours.number) == (theirs.ok, theirs.number)
        assert ours.description == theirs.description.removeprefix("- ").strip()
        assert (ours.directive == "skip", ours.directive == "todo") == (
            theirs.skip,
            theirs.todo,
        )
    # Where we differ on purpose (docs/adapters.md): subtests, escaped '#', old versions.
    assert parser.parse_line("    ok 1 - inner").category == "unknown"
    assert parser.parse_line("ok 5 - has \\# hash").description == "- has \\"
    with pytest.raises(ValueError):
        parser.parse_line("TAP version 12")


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        (Result(True, 1, "a"), ("passed", "")),
        (Result(False, 1, "a"), ("failed", "")),
        (Result(True, 1, "a", "skip", "why"), ("skipped", "why")),
        (Result(False, 1, "a", "todo", "later"), ("skipped", "TODO: later")),
        (Result(True, 1, "a", "todo", ""), ("passed", "TODO passed")),
    ],
)
def test_outcomes_map_todo_failures_to_skipped(result: Result, expected: tuple[str, str]) -> None:
    assert outcome_of(result) == expected


NODE_LIKE = """\
TAP version 13
# Subtest: first
ok 1 - first
  ---
  duration_ms: 1.5
  ...
# Subtest: second fails
not ok 2 - second fails
  ---
  duration_ms: 2
  error: |-
    Expected values to be strictly equal:
  code: 'ERR_ASSERTION'
  ...
# Subtest: suite
    # Subtest: inner a
    ok 1 - inner a
    # Subtest: inner b
    not ok 2 - inner b
      ---
      error: 'boom'
      ...
    1..2
not ok 3 - suite
1..3
# tests 4
"""


def test_nested_subtests_are_items_and_their_suite_is_not() -> None:
    stream, finished = read_stream(NODE_LIKE.splitlines())
    assert finished == [
        Finished("first", "passed", "", 0.0015),
        Finished("second fails", "failed", "Expected values to be strictly equal:", 0.002),
        Finished("suite > inner a", "passed"),
        Finished("suite > inner b", "failed", "boom"),
    ]
    assert stream.complete and stream.nested and stream.total == 4


def test_prove_segments_add_up_and_its_bare_ok_is_ignored() -> None:
    text = "t/a.t .. \n1..2\nok 1 - a\nnot ok 2 - b\nFailed 1/2\nt/b.t .. \n1..1\nok 1 - a\nok\nResult: FAIL\n"
    stream, finished = read_stream(text.splitlines())
    assert [(f.item, f.outcome) for f in finished] == [
        ("a", "passed"),
        ("b", "failed"),
        ("a #2", "passed"),  # the same description twice in one run gets a number
    ]
    assert stream.total == 3 and stream.complete and len(stream.segments) == 2


def test_a_stream_cut_short_is_not_complete_and_the_total_comes_from_the_plan() -> None:
    stream, finished = read_stream(["1..5", "ok 1 - a", "# Subtest: b"])
    assert not stream.complete and stream.total == 5
    assert stream.announced == "b" and [f.item for f in finished] == ["a"]


def test_trailing_plan_gives_the_total_only_at_the_end() -> None:
    stream, _ = read_stream(["ok 1 - a", "ok 2 - b"])
    assert stream.total is None and not stream.complete
    stream.feed("1..2")
    assert stream.total == 2 and stream.complete


def test_bail_out_is_never_complete() -> None:
    stream, _ = read_stream(["1..2", "ok 1 - a", "Bail out! db down", "ok 2 - b"])
    assert stream.bailed == "db down" and not stream.complete


def test_a_result_waits_for_its_yaml_block_until_idle() -> None:
    stream = TapStream()
    stream.feed("not ok 1 - slow")
    assert stream.take() == []  # its diagnostics may follow
    assert [f.item for f in stream.take(idle=True)] == ["slow"]
    stream.feed("not ok 2 - open block")
    stream.feed("  ---")
    assert stream.take(idle=True) == []  # inside the YAML block: wait for "..."
    stream.feed("  message: 'it broke'")
    stream.feed("  ...")
    assert stream.take() == [Finished("open block", "failed", "it broke")]


# ------------------------------------------------------------------ real producers


def test_node_test_runner_tap(tmp_path: Path) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    test_file = tmp_path / "a.test.js"
    test_file.write_text(
        textwrap.dedent(
            """\
            const test = require('node:test');
            const assert = require('node:assert');
            test('first', () => {});
            test('second fails', () => { assert.strictEqual(1, 2); });
            test('skipped one', { skip: 'not today' }, () => {});
            test('suite', async (t) => {
              await t.test('inner a', () => {});
              await t.test('inner b', () => {});
            });
            """
        )
    )
    out = subprocess.run(
        [node, "--test", "--test-reporter=tap", str(test_file)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    ).stdout
    stream, finished = read_stream(out.splitlines())
    assert [(f.item, f.outcome) for f in finished] == [
        ("first", "passed"),
        ("second fails", "failed"),
        ("skipped one", "skipped"),
        ("suite > inner a", "passed"),
        ("suite > inner b", "passed"),
    ]
    assert finished[1].message.startswith("Expected values to be strictly equal")
    assert stream.complete and stream.total == 5


def test_prove_verbose(tmp_path: Path) -> None:
    prove = shutil.which("prove")
    if prove is None:
        pytest.skip("prove is not installed")
    t = tmp_path / "t"
    t.mkdir()
    (t / "a.t").write_text("#!/bin/sh\necho 1..2\necho ok 1 - a\necho 'not ok 2 - b # TODO soon'\n")
    (t / "b.t").write_text("#!/bin/sh\necho 1..1\necho ok 1 - c\n")
    for f in t.iterdir():
        f.chmod(0o755)
    out = subprocess.run(
        [prove, "-v", "t/"], capture_output=True, text=True, timeout=60, cwd=tmp_path
    ).stdout
    stream, finished = read_stream(out.splitlines())
    assert [(f.item, f.outcome) for f in finished] == [
        ("a", "passed"),
        ("b", "skipped"),
        ("c", "passed"),
    ]
    assert stream.complete and stream.total == 3
