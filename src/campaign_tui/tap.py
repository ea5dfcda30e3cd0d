"""TAP (the Test Anything Protocol) read from a command's output, line by line.

Two layers, both pure:

* :func:`parse_line` turns one line into a frozen model (:class:`Result`,
  :class:`Plan`, :class:`Subtest`, :class:`Version`, :class:`Bail`,
  :class:`Comment`, or :class:`Other` for anything else) with its indentation.
* :class:`TapStream` follows a whole stream and says what it means for a
  campaign: which items finished with which outcome, which item is in flight,
  how many there are in all, and whether every plan was fulfilled.

Items are the *leaf* tests: a result that closes indented subtests is a suite,
and its own line is not an item (its subtests are). A leaf's key is its
description, prefixed with the names of its enclosing suites (``suite > test``)
when ``# Subtest: NAME`` lines name them; an empty description is ``test N``.

``prove -v`` prints one TAP stream per test file, one after the other: each new
plan (or a result numbered 1 after a fulfilled plan) starts a new segment, the
total is the sum of the segments' plans, and the bare ``ok`` that prove prints
after a finished file is ignored.

Why not the ``tap.py`` library's line parser (see docs/adapters.md): it parses
only unindented lines (subtests come back as "unknown"), raises on
``TAP version 12``, keeps the ``- `` separator in descriptions, cuts a
description at an escaped ``\\#``, and would be a fourth runtime dependency.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

OUTCOME_PASSED = "passed"
OUTCOME_FAILED = "failed"
OUTCOME_SKIPPED = "skipped"

_RESULT = re.compile(r"(not\s+)?ok\b\s*(\d+)?\s*(.*)", re.IGNORECASE)
_PLAN = re.compile(r"1\.\.(\d+)\s*(?:#\s*(.*))?")
_VERSION = re.compile(r"TAP\s+version\s+(\d+)\s*", re.IGNORECASE)
_BAIL = re.compile(r"Bail\s+out!\s*(.*)", re.IGNORECASE)
_SUBTEST = re.compile(r"#\s*Subtest:\s*(.*)", re.IGNORECASE)
_DIRECTIVE = re.compile(r"(skip\w*|todo)\b\s*(.*)", re.IGNORECASE | re.DOTALL)
_YAML_DURATION = re.compile(r"\s*duration_ms\s*:\s*([0-9.]+)\s*")
_YAML_MESSAGE = re.compile(r"\s*(message|error|reason)\s*:\s*(.*)")
_MAX_DESCRIPTION = 300
_MAX_MESSAGE = 500


# ===================================================================== lines


@dataclass(frozen=True, slots=True)
class Result:
    """``ok N - description # SKIP reason``."""

    ok: bool
    number: int | None
    description: str
    directive: str | None = None  # "skip" | "todo"
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Plan:
    count: int
    skip: bool = False
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Version:
    version: int


@dataclass(frozen=True, slots=True)
class Bail:
    reason: str


@dataclass(frozen=True, slots=True)
class Subtest:
    """``# Subtest: NAME``: announces a (sub)test by name."""

    name: str


@dataclass(frozen=True, slots=True)
class Comment:
    text: str


@dataclass(frozen=True, slots=True)
class Other:
    """Not TAP: a line the command printed for people."""

    text: str


Line = Result | Plan | Version | Bail | Subtest | Comment | Other


def _split_directive(rest: str) -> tuple[str, str | None, str]:
    """description, directive, reason from what follows ``ok N``; ``\\#`` is a literal #."""
    cut = None
    i = 0
    while i < len(rest):
        if rest[i] == "\\":
            i += 2
            continue
        if rest[i] == "#":
            cut = i
            break
        i += 1
    text, directive, reason = rest, None, ""
    if cut is not None:
        found = _DIRECTIVE.fullmatch(rest[cut + 1 :].strip())
        if found:
            text = rest[:cut]
            directive = "skip" if found[1].lower().startswith("skip") else "todo"
            reason = found[2].strip()
    text = text.strip()
    if text.startswith("-"):
        text = text[1:].strip()
    text = text.replace("\\#", "#").replace("\\\\", "\\")
    return text[:_MAX_DESCRIPTION], directive, reason[:_MAX_MESSAGE]


def parse_line(raw: str) -> tuple[int, Line]:
    """(indentation width, the line's meaning). Never raises."""
    line = raw.rstrip("\r\n")
    stripped = line.lstrip(" \t")
    indent = len(line[: len(line) - len(stripped)].expandtabs(4))
    stripped = stripped.rstrip()
    if found := _RESULT.fullmatch(stripped):
        description, directive, reason = _split_directive(found[3])
        number = int(found[2]) if found[2] and len(found[2]) < 12 else None
        return indent, Result(not found[1], number, description, directive, reason)
    if found := _PLAN.fullmatch(stripped):
        note = (found[2] or "").strip()
        skip = _DIRECTIVE.fullmatch(note)
        count = int(found[1]) if len(found[1]) < 12 else 0
        if skip and skip[1].lower().startswith("skip"):
            return indent, Plan(count, True, skip[2].lstrip(":").strip())
        return indent, Plan(count, False, note)
    if found := _VERSION.fullmatch(stripped):
        return indent, Version(int(found[1]) if len(found[1]) < 6 else 0)
    if found := _BAIL.fullmatch(stripped):
        return indent, Bail(found[1].strip())
    if found := _SUBTEST.fullmatch(stripped):
        return indent, Subtest(found[1].strip()[:_MAX_DESCRIPTION])
    if stripped.startswith("#"):
        return indent, Comment(stripped[1:].strip())
    return indent, Other(stripped)


def outcome_of(result: Result) -> tuple[str, str]:
    """A result's campaign outcome and message: TODO failures are expected, not failures."""
    if result.directive == "skip":
        return OUTCOME_SKIPPED, result.reason or "skipped"
    if result.directive == "todo":
        if result.ok:
            return OUTCOME_PASSED, f"TODO passed{': ' + result.reason if result.reason else ''}"
        return OUTCOME_SKIPPED, f"TODO{': ' + result.reason if result.reason else ''}"
    return (OUTCOME_PASSED if result.ok else OUTCOME_FAILED), ""


# ===================================================================== the stream


@dataclass(frozen=True, slots=True)
class Finished:
    """An item with its outcome, ready for results.jsonl."""

    item: str
    outcome: str
    message: str = ""
    duration: float | None = None


@dataclass(slots=True)
class _Segment:
    plan: int | None = None
    leading: bool = False  # the plan came before any result
    results: int = 0

    @property
    def fulfilled(self) -> bool:
        return self.plan is not None and self.results >= self.plan


@dataclass(slots=True)
class _Pending:
    """A leaf result held back while its YAML diagnostics may still follow."""

    finished: Finished
    indent: int
    yaml: bool = False


@dataclass(slots=True)
class TapStream:
    """What a TAP stream says so far. Feed it lines; take the finished items out.

    ``tap`` is True once a line proved the output is TAP (a version, a plan or a
    result at the top level). ``announced`` is the name of the test announced by
    ``# Subtest: NAME`` that has no result yet (in flight, if the producer
    announces tests before it runs them).
    """

    tap: bool = False
    bailed: str | None = None
    nested: bool = False
    segments: list[_Segment] = field(default_factory=list)
    announced: str | None = None
    last_item: str | None = None
    _names: dict[int, str] = field(default_factory=dict)
    _children: dict[int, bool] = field(default_factory=dict)
    _seen: dict[str, int] = field(default_factory=dict)
    _pending: _Pending | None = None
    _ready: list[Finished] = field(default_factory=list)

    # ------------------------------------------------------------- feeding

    def feed(self, raw: str) -> Line:
        """Take one line; returns what it was (a YAML line of a result is a Comment)."""
        indent, line = parse_line(raw)
        if self._pending is not None and self._in_yaml(indent, line, raw):
            return Comment(raw.strip())
        if isinstance(line, Version) and indent == 0:
            self.tap = True
            if self.segments and (self.segments[-1].results or self.segments[-1].plan is not None):
                self.segments.append(_Segment())
        elif isinstance(line, Plan) and indent == 0:
            self.tap = True
            self._plan(line)
        elif isinstance(line, Result):
            self._result(indent, line)
        elif isinstance(line, Subtest):
            self._names[indent] = line.name
            for deeper in [k for k in self._names if k > indent]:
                del self._names[deeper]
            self.announced = self._path(indent, line.name)
        elif isinstance(line, Bail) and self.tap:
            self.bailed = line.reason or "no reason given"
            self._flush()
        return line

    def _in_yaml(self, indent: int, line: Line, raw: str) -> bool:
        """Is this line part of the pending result's YAML block? (collects its message)"""
        pending = self._pending
        assert pending is not None
        text = raw.strip()
        if not pending.yaml:
            if indent > pending.indent and text == "---":
                pending.yaml = True
                return True
            self._flush()
            return False
        if indent > pending.indent or not text:
            if text == "...":
                self._flush()
            elif (found := _YAML_DURATION.match(raw)) and pending.finished.duration is None:
                done = pending.finished
                with contextlib.suppress(ValueError):
                    pending.finished = Finished(
                        done.item, done.outcome, done.message, float(found[1]) / 1000
                    )
            elif not pending.finished.message and (found := _YAML_MESSAGE.match(raw)):
                value = found[2].strip().strip("'\"")
                if value and value not in ("|-", "|", ">", ">-"):
                    self._set_message(value)
                elif value in ("|-", "|", ">", ">-"):
                    self._set_message("\u2026")  # the first line of the block follows
            elif pending.finished.message == "\u2026" and text:
                self._set_message(text)
            return True
        self._flush()
        return False

    def _set_message(self, text: str) -> None:
        assert self._pending is not None
        done = self._pending.finished
        self._pending.finished = Finished(
            done.item, done.outcome, text[:_MAX_MESSAGE], done.duration
        )

    def _plan(self, plan: Plan) -> None:
        seg = self.segments[-1] if self.segments else None
        if seg is None or (seg.plan is not None):
            seg = _Segment()
            self.segments.append(seg)
        seg.plan = plan.count
        seg.leading = seg.results == 0

    def _result(self, indent: int, result: Result) -> None:
        if indent == 0:
            seg = self.segments[-1] if self.segments else None
            if seg is not None and seg.leading and seg.fulfilled:
                if result.number != 1:
                    return  # prove's bare "ok" after a file, or an extra result
                seg = None
            if seg is None:
                seg = _Segment()
                self.segments.append(seg)
            seg.results += 1
            self.tap = True
        elif not self.tap:
            return
        else:
            self.nested = True
        self._flush()
        parent = self._children.get(indent, False)
        self._children[indent] = False
        for key in [k for k in self._children if k > indent]:
            del self._children[key]
        for key in range(min(indent, 256)):
            self._children[key] = True  # every enclosing level now has a subtest
        name = self._names.get(indent)
        for key in [k for k in self._names if k >= indent]:
            del self._names[key]
        self.announced = None
        if parent:
            return  # a suite: its subtests were the items
        description = result.description or (name if name else "")
        item = self._path(indent, description or f"test {result.number or '?'}")
        count = self._seen.get(item, 0) + 1
        self._seen[item] = count
        if count > 1:
            item = f"{item} #{count}"
        outcome, message = outcome_of(result)
        self.last_item = item
        self._pending = _Pending(Finished(item, outcome, message), indent)

    def _path(self, indent: int, name: str) -> str:
        parents = [self._names[k] for k in sorted(self._names) if k < indent]
        return " > ".join([*parents, name])

    def _flush(self) -> None:
        if self._pending is not None:
            self._ready.append(self._pending.finished)
            self._pending = None

    # ------------------------------------------------------------- reading

    def take(self, *, idle: bool = False, final: bool = False) -> list[Finished]:
        """The items finished since the last call.

        The last result is held back while its YAML diagnostics may follow: until
        the next line, or ``idle`` (no output for a while) when no YAML block is
        open, or ``final`` (the stream ended).
        """
        if final or (idle and self._pending is not None and not self._pending.yaml):
            self._flush()
        ready, self._ready = self._ready, []
        return ready

    @property
    def total(self) -> int | None:
        """Items in all, when the plans tell it: the sum of the segments' plans for a
        flat stream; for nested subtests, only once every plan is fulfilled (the
        plan counts suites, not their tests)."""
        if not self.segments or any(s.plan is None for s in self.segments):
            return None
        if self.nested:
            return sum(self._seen.values()) if self.complete else None
        return sum(s.plan or 0 for s in self.segments)

    @property
    def complete(self) -> bool:
        """Every segment had a plan, and each plan was fulfilled."""
        return (
            bool(self.segments) and self.bailed is None and all(s.fulfilled for s in self.segments)
        )

    @property
    def results(self) -> int:
        return sum(s.results for s in self.segments)


def read_stream(lines: Iterator[str] | list[str]) -> tuple[TapStream, list[Finished]]:
    """A whole stream at once (tests and one-off tools)."""
    stream = TapStream()
    finished: list[Finished] = []
    for raw in lines:
        stream.feed(raw)
        finished += stream.take()
    finished += stream.take(final=True)
    return stream, finished
