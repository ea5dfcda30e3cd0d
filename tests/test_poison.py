"""Poison items: two crashes in a row on one item, and the third attempt skips it."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from campaign_tui.campaign import parse_poison, skip_items
from campaign_tui.policy import poison_item
from conftest import ProcessTracker
from supervisor_fixtures import PY, Sup, sup_fixture

FAST = ("--backoff-initial", "0.1", "--backoff-max", "0.2", "--stop-timeout", "1")
POISON = "crashed the campaign twice"
QUICK = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-p", "no:timeout")


@pytest.fixture
def sup(procs: ProcessTracker, tmp_path: Path) -> Iterator[Sup]:
    yield from sup_fixture(procs, tmp_path)


@pytest.mark.parametrize(
    ("ended", "expected"),
    [
        ([], None),
        ([("crash", "SD-7")], None),
        ([("crash", "SD-7"), ("crash", "SD-7")], "SD-7"),
        ([("hang", "SD-7"), ("crash", "SD-7")], "SD-7"),
        ([("crash", "SD-7"), ("hang", "SD-7")], "SD-7"),
        ([("crash", "SD-6"), ("crash", "SD-7")], None),
        ([("crash", None), ("crash", None)], None),
        ([("crash", "SD-7"), ("manual", "SD-7"), ("crash", "SD-7")], None),
        ([("crash", "SD-7"), ("stopped", "SD-7")], None),
        ([("crash", "SD-7"), ("complete", None), ("crash", "SD-7")], None),
    ],
    ids=[
        "nothing",
        "one crash",
        "two crashes",
        "hang then crash",
        "crash then hang",
        "different items",
        "no item known",
        "a manual restart between",
        "then stopped",
        "a completion between",
    ],
)
def test_poison_needs_two_crashes_in_a_row_on_one_item(
    ended: list[tuple[str, str | None]], expected: str | None
) -> None:
    assert poison_item(ended) == expected


def test_poison_list_is_the_items_whose_last_line_is_poison() -> None:
    journal = (
        b'{"item":"a","outcome":"error","poison":true}\n'
        b'{"item":"b","outcome":"error","poison":true}\n'
        b'{"item":"b","outcome":"passed"}\n'  # run again by hand later: no longer poison
        b'{"item":"c","outcome":"failed"}\n'
        b"torn{\n"
    )
    assert parse_poison(journal) == ["a"]
    assert skip_items({"CAMPAIGN_SKIP_ITEMS": "a\nb c\n"}) == {"a", "b c"}


def _assert_poisoned(sup: Sup, item: str, items: list[str]) -> None:
    results = sup.lines("results.jsonl")
    poison = [r for r in results if r["item"] == item]
    assert [r["outcome"] for r in poison] == ["error"], poison
    assert POISON in poison[0]["message"] and poison[0]["poison"] is True
    assert sorted({r["item"] for r in results}) == sorted(items)
    assert f"CRITICAL poison item {item}: it {POISON} (attempts 1 and 2)" in sup.text("alerts.log")
    records = sup.lines("restarts.jsonl")
    assert [(r["reason"], r["item"]) for r in records] == [
        ("crash", item),
        ("crash", item),
        ("complete", None),
    ]
    assert sup.json("status.json")["status"] == "COMPLETE"


def test_python_api_skips_a_poison_item_on_the_third_attempt(sup: Sup) -> None:
    items = [f"SD-{i}" for i in range(5)]
    script = sup.script(
        "poison.py",
        f"""
        import os
        from campaign_tui import Campaign
        with Campaign(total=5) as c:
            for item in c.pending({items!r}):
                with c.item(item):
                    if item == "SD-2":
                        os._exit(3)  # this item always takes the process down
        """,
    )
    done = sup.run(*FAST, cmd=[PY, str(script)])
    assert done.returncode == 0, done.stdout + done.stderr
    _assert_poisoned(sup, "SD-2", items)
    assert "SD-2 skipped: it crashed the campaign twice" in sup.text("progress.log")
    cp = sup.json("checkpoint.json")
    assert (cp["tested"], cp["errors"]) == (5, 1)


def test_tap_skips_a_poison_item_by_its_description(sup: Sup) -> None:
    script = sup.script(
        "poison.sh",
        """\
        #!/usr/bin/env bash
        echo 1..4
        n=0
        for sd in alpha beta gamma delta; do
          n=$((n+1))
          if grep -Fxq -- "$sd" <<<"${CAMPAIGN_SKIP_ITEMS:-}"; then
            echo "ok $n - $sd # SKIP poison"; continue
          fi
          echo "# Subtest: $sd"
          [ "$sd" = gamma ] && kill -9 $$
          echo "ok $n - $sd"
        done
        """,
    )
    done = sup.run(*FAST, cmd=[str(script)])
    assert done.returncode == 0, done.stdout + done.stderr
    _assert_poisoned(sup, "gamma", ["alpha", "beta", "gamma", "delta"])
    cp = sup.json("checkpoint.json")
    assert (cp["tested"], cp["passed"], cp["errors"], cp["skipped"]) == (4, 3, 1, 0)


def test_pytest_skips_a_poison_test_by_its_node_id(sup: Sup) -> None:
    (sup.tmp / "test_p.py").write_text(
        "import os\ndef test_a(): pass\ndef test_b(): os.kill(os.getpid(), 9)\ndef test_c(): pass\n"
    )
    done = sup.run(*FAST, cmd=[sys.executable, "-m", "pytest", "-q", *QUICK, "test_p.py"])
    assert done.returncode == 0, done.stdout + done.stderr
    items = [f"test_p.py::test_{x}" for x in "abc"]
    _assert_poisoned(sup, "test_p.py::test_b", items)
    assert [r["attempt"] for r in sup.lines("results.jsonl") if r["item"] == items[0]] == [1]
