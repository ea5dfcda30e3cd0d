"""examples/node under the supervisor, and docs/schema/*.json against what every writer writes."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import ProcessTracker
from supervisor_fixtures import PY, Sup, sup_fixture

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "node" / "campaign.js"
SCHEMAS = ROOT / "docs" / "schema"
FAST = ("--backoff-initial", "0.2", "--backoff-max", "0.5", "--stop-timeout", "1")

jsonschema = pytest.importorskip("jsonschema")


@pytest.fixture
def sup(procs: ProcessTracker, tmp_path: Path) -> Iterator[Sup]:
    yield from sup_fixture(procs, tmp_path)


def _validate(sup: Sup, *names: str) -> None:
    for name in names:
        schema = json.loads((SCHEMAS / f"{name}.schema.json").read_text())
        doc = sup.json(f"{name}.json")
        assert doc, f"{name}.json is missing"
        jsonschema.validate(doc, schema)


def test_schemas_are_valid_json_schema() -> None:
    names = sorted(p.name for p in SCHEMAS.glob("*.schema.json"))
    assert names == ["checkpoint.schema.json", "heartbeat.schema.json", "status.schema.json"]
    for path in SCHEMAS.glob("*.schema.json"):
        jsonschema.Draft202012Validator.check_schema(json.loads(path.read_text()))


def test_the_node_example_crashes_half_way_restarts_and_completes(sup: Sup) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    sup.env.update(CAMPAIGN_ITEMS="8", ITEM_MS="20")
    done = sup.run(*FAST, cmd=[node, str(EXAMPLE)], timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    records = sup.lines("restarts.jsonl")
    assert [(r["reason"], r["exit_code"], r["item"]) for r in records] == [
        ("crash", 1, "SD-004"),
        ("complete", 0, None),
    ]
    results = sup.lines("results.jsonl")
    assert [r["item"] for r in results] == [f"SD-{n:03d}" for n in range(1, 9)]  # each once
    assert [r["attempt"] for r in results] == [1, 1, 1, 2, 2, 2, 2, 2]
    assert "simulated crash in SD-004" in sup.text("errors.log")
    status = sup.json("status.json")
    assert status["status"] == "COMPLETE" and "8 items" in status["message"]
    _validate(sup, "heartbeat", "checkpoint", "status")
    assert sup.status()[0] == 0


def test_our_own_writers_follow_the_schemas(sup: Sup) -> None:
    """The Python API, `campaign-tui beat`, and the supervisor writing for a TAP command."""
    api = sup.script(
        "api.py",
        """
        from campaign_tui import Campaign
        with Campaign(total=2) as c:
            for item in c.pending(["a", "b"]):
                with c.item(item):
                    pass
        """,
    )
    assert sup.run(*FAST, cmd=[PY, str(api)]).returncode == 0
    _validate(sup, "heartbeat", "checkpoint", "status")

    for args in (("--item", "x", "--total", "3"), ("--item", "x", "--failed")):
        assert sup.ctl("beat", *args).returncode == 0
        _validate(sup, "heartbeat", "checkpoint")

    tap = sup.script("t.sh", "#!/bin/sh\necho 1..2\necho ok 1 - a\necho 'not ok 2 - b'\n")
    shutil.rmtree(sup.dir)
    assert sup.run(*FAST, cmd=[str(tap)]).returncode == 0
    assert sup.json("heartbeat.json")["source"] == "supervisor"
    _validate(sup, "heartbeat", "checkpoint", "status")


def test_the_example_is_valid_javascript() -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    subprocess.run([node, "--check", str(EXAMPLE)], check=True, timeout=30)
