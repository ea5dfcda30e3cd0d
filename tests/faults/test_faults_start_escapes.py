"""`campaign-tui start` shows what it read from state files literally: no terminal escapes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from campaign_tui import config
from supervisor_fixtures import PY, Sup

TITLE = "\x1b]0;TITLE\x07"
CLEAR = "\x1b[2J"


def _has_escapes(text: str) -> bool:
    return any(ch in text for ch in ("\x1b", "\x07", "\x9b", "\x9d"))


def test_start_prints_an_escape_laden_recorded_cwd_literally(
    sup: Sup, tmp_path: Path, fault: Any
) -> None:
    injected = fault(
        "campaign.json records a cwd holding an OSC title sequence and a screen clear",
        "`campaign-tui start` says why it cannot start with no ESC or BEL on stderr",
    )
    sup.dir.mkdir(mode=0o700)
    cwd = str(tmp_path / f"work{TITLE}dir{CLEAR}")
    record = config.Settings(command=(PY, "-c", "print('hi')"), cwd=cwd).record()
    (sup.dir / "campaign.json").write_text(json.dumps({"settings": record}))
    injected.inject()
    done = sup.ctl("start")
    assert done.returncode != 0, done.stdout + done.stderr
    assert "working directory" in done.stderr
    assert "/work" in done.stderr  # the path is named; its escapes are not sent
    assert not _has_escapes(done.stdout + done.stderr), repr(done.stderr)
    injected.lost = 0


def test_start_prints_an_escape_laden_recorded_command_literally(sup: Sup, fault: Any) -> None:
    injected = fault(
        "supervisor.json records a command whose program name holds terminal escapes",
        "`campaign-tui start` refuses it with no ESC or BEL on stderr",
    )
    sup.dir.mkdir(mode=0o700)
    record = config.Settings(command=(f"./no{TITLE}such{CLEAR}",), cwd=str(sup.tmp)).record()
    (sup.dir / "supervisor.json").write_text(
        json.dumps({"state": "stopped", "settings": record, "attempt": 1})
    )
    injected.inject()
    done = sup.ctl("start")
    assert done.returncode != 0, done.stdout + done.stderr
    assert "cannot execute" in done.stderr
    assert not _has_escapes(done.stdout + done.stderr), repr(done.stderr)
    injected.lost = 0


def test_from_record_sanitizes_the_cwd_and_keeps_a_multi_line_program() -> None:
    program = "import sys\nprint(sys.argv)\n"
    record = config.Settings(command=(PY, "-c", program), cwd=f"/srv/x{TITLE}y").record()
    settings = config.from_record(record)
    assert settings is not None
    assert not _has_escapes(settings.cwd)
    assert settings.cwd.startswith("/srv/x") and settings.cwd.endswith("y")
    assert settings.command == (PY, "-c", program)
