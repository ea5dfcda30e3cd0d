"""The results journal is read in one pass with a fast path for the API's own lines;
it must read every journal exactly as json.loads line by line does."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from campaign_tui import Campaign
from campaign_tui.campaign import _JOURNAL_LINE, parse_journal, parse_poison, scan_journal
from campaign_tui.models import OUTCOMES


def reference(data: bytes) -> tuple[dict[str, str], list[str]]:
    """The journal read the slow way: json.loads on every line."""
    done: dict[str, str] = {}
    last: dict[str, bool] = {}
    for line in data.splitlines():
        if not line:
            continue
        try:
            doc = json.loads(line)
        except (ValueError, RecursionError):
            continue
        if (
            isinstance(doc, dict)
            and isinstance(item := doc.get("item"), str)
            and isinstance(outcome := doc.get("outcome"), str)
            and outcome in OUTCOMES
        ):
            done[item] = outcome
            last.pop(item, None)
            last[item] = doc.get("poison") is True
    return done, [item for item, poison in last.items() if poison]


def api_line(item: str, outcome: str, message: str = "", **extra: object) -> bytes:
    doc = {
        "item": item,
        "outcome": outcome,
        "duration": 0.012345,
        "message": message,
        "attempt": 1,
        "timestamp": 1748779200000,
        "iso_time": "2025-06-01T12:00:00.000+00:00",
        **extra,
    }
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


MIXED = b"".join(
    [
        api_line("a", "passed"),
        api_line("b", "failed", "checksum mismatch {at} block 7"),
        api_line("c", "error", 'quote " and back\\slash and tab\t and é and \U0001f600'),
        api_line("d", "skipped", "", duration=None),
        api_line("tab\there", "passed"),  # escaped item: json.loads only
        api_line('quo"te', "failed"),
        api_line("é-ünïcode", "passed"),
        # the supervisor's poison error, then the same item run again by hand
        b'{"item":"b","outcome":"error","duration":null,"message":"crashed the campaign twice",'
        b'"attempt":2,"poison":true,"source":"supervisor","timestamp":1,"iso_time":"x"}\n',
        b'{"item":"p","outcome":"error","poison":true}\n',
        b'{"item":"p2","outcome":"error","poison":false}\n',
        b'{"item":"a","outcome":"error","poison":true}\n',
        api_line("a", "passed"),
        # other writers: other key orders, whitespace, extra and nested fields
        b'{"outcome":"failed","item":"e"}\n',
        b'{"item": "f", "outcome": "passed"}\n',
        b'{"item":"g","outcome":"passed","extra":{"nested":[1,2]}}\n',
        b'{"item":"h","outcome":"passed","n":NaN}\n',
        b'{"item":"i","outcome":"passed","big":' + b"9" * 5000 + b"}\n",
        b'{"item":"j","outcome":"passed","item":"j2"}\n',  # a repeated key: the last wins
        b'{"item":"k","outcome":"passed","outcome":"bogus"}\n',
        b'{"item":"l","outcome":"passed","\\u0070oison":true}\n',
        b'{"item":"m","outcome":"unknown"}\n',
        b'{"item":"n","outcome":["passed"]}\n',
        b'{"item":7,"outcome":"passed"}\n',
        b'["item","outcome"]\n',
        b"null\n",
        b"\n",
        b"   \n",
        # torn and corrupt lines
        api_line("o", "passed")[:40] + b"\n",
        b'{"item":"q","outcome":"failed","message":"cut inside a string}\n',
        b'{"item":"r","outcome":"passed","x":tru}\n',
        b'{"item":"s","outcome":"passed","x":01}\n',
        b'{"item":"t","outcome":"passed","x":"bad \\escape"}\n',
        b'{"item":"u","outcome":"passed","x":"raw \x01 control"}\n',
        b'{"item":"v","outcome":"passed"} trailing\n',
        b'{"item":"w","outcome":"passed"}}\n',
        b'{"item":"x","outcome":"passed",}\n',
        b'{"item":"y\x07","outcome":"passed"}\n',
        b'{"item":"z","outcome":"passed"}',  # the last line, without its newline
    ]
)


def test_fast_path_reads_the_apis_own_lines() -> None:
    for line in (api_line("SD-000001", "passed"), api_line("x", "failed", "a {brace} é")):
        match = _JOURNAL_LINE.fullmatch(line.rstrip(b"\n"))
        assert match is not None and match[3] is None, line
    poison = b'{"item":"b","outcome":"error","poison":true}'
    assert _JOURNAL_LINE.fullmatch(poison)[3] == poison  # type: ignore[index]


def test_fast_path_and_json_loads_agree_on_a_mixed_journal() -> None:
    done, poison = scan_journal(MIXED)
    assert (done, poison) == reference(MIXED)
    assert list(done) == list(reference(MIXED)[0])
    assert done["a"] == "passed" and done["b"] == "error" and "o" not in done and "q" not in done
    assert poison == ["b", "p", "l"]  # the escaped key is "poison" too
    assert parse_journal(MIXED) == done and parse_poison(MIXED) == poison


def test_every_torn_prefix_is_read_as_json_loads_reads_it() -> None:
    lines = MIXED.splitlines(keepends=True)
    for n, line in enumerate(lines):
        for cut in range(len(line) + 1):
            data = b"".join(lines[:n]) + line[:cut] + b"\n" + b"".join(lines[n + 1 :])
            assert scan_journal(data) == reference(data), (n, cut)


def test_random_journals_agree() -> None:
    rng = random.Random(20250601)
    pieces = MIXED.splitlines(keepends=True)
    for _ in range(300):
        chosen = [rng.choice(pieces) for _ in range(rng.randint(0, 30))]
        data = bytearray(b"".join(chosen))
        for _ in range(rng.randint(0, 3)):  # flip a few bytes
            if data:
                data[rng.randrange(len(data))] = rng.choice(b'{}",:\\\n\r x0\xc3\xff')
        assert scan_journal(bytes(data)) == reference(bytes(data)), bytes(data)


@pytest.mark.parametrize(
    "data",
    [
        b'{"item":"a","outcome":"passed"}\r\n{"item":"b","outcome":"failed"}\r{"item":"c",',
        b'{"item":"a","outcome":"passed","m":"\xff"}\n{"item":"b","outcome":"passed"}\n',
        b'{"item":"\xed\xa0\x80","outcome":"passed"}\n',  # a lone surrogate: json.loads takes it
        b"",
    ],
    ids=["carriage returns", "invalid utf-8", "surrogate", "empty"],
)
def test_odd_bytes_agree(data: bytes) -> None:
    assert scan_journal(data) == reference(data)


def test_a_journal_the_api_wrote_is_read_on_the_fast_path(tmp_path: Path) -> None:
    keys = ["plain", "with space", "é", 'quote"d', "x" * 300]
    with Campaign(state_dir=tmp_path / "c", total=len(keys)) as campaign:
        for key in campaign.pending(keys):
            with campaign.item(key) as it:
                if key == "é":
                    it.fail('a "message" {with} braces')
    data = (tmp_path / "c" / "results.jsonl").read_bytes()
    fast = [m for m in _JOURNAL_LINE.findall(data) if m[1]]
    assert len(fast) == len(keys) - 1  # all but the escaped item
    assert scan_journal(data) == reference(data)
    assert scan_journal(data)[0]["é"] == "failed"
