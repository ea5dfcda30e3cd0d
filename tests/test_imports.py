"""`status`, `beat` and the Python API never import textual (they run from cron,
`watch -n 30`, monitoring systems and inside the campaign itself)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

HEAVY = ("textual",)

CHECK = """
import json, sys
heavy = {heavy!r}
def loaded():
    return sorted(m for m in sys.modules if m.split(".")[0] in heavy)
"""


def _run(body: str, tmp_path: Path) -> dict[str, object]:
    code = CHECK.format(heavy=HEAVY) + textwrap.dedent(body)
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("CAMPAIGN_")},
            "HOME": str(tmp_path),
            "CAMPAIGN_TUI_HOME": str(tmp_path / "root"),
        },
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_the_check_itself_sees_textual_when_it_is_imported(tmp_path: Path) -> None:
    pytest.importorskip("textual")
    seen = _run("import textual.app\nprint(json.dumps({'loaded': loaded()}))", tmp_path)
    assert "textual" in seen["loaded"]  # type: ignore[operator]


def test_package_and_api_do_not_import_textual(tmp_path: Path) -> None:
    seen = _run(
        f"""
        import campaign_tui
        from campaign_tui import Campaign
        import campaign_tui.campaign
        with Campaign(state_dir={str(tmp_path / "api")!r}, total=1) as campaign:
            with campaign.item("only"):
                pass
        print(json.dumps({{"loaded": loaded()}}))
        """,
        tmp_path,
    )
    assert seen["loaded"] == []


@pytest.mark.parametrize(
    "commands",
    [
        [["status"]],
        [["status", "--json"]],
        [["beat", "--item", "SD-1", "--tested", "1", "--total", "2"], ["status"], ["status", "--json"]],
    ],
    ids=["status", "status-json", "beat-then-status"],
)
def test_cli_status_and_beat_do_not_import_textual(
    tmp_path: Path, commands: list[list[str]]
) -> None:
    state = tmp_path / "cli"
    state.mkdir(mode=0o700)
    runs = [[*argv, "--state-dir", str(state)] for argv in commands]
    seen = _run(
        f"""
        import contextlib, io
        from campaign_tui.cli import main
        codes = []
        for argv in {runs!r}:
            with contextlib.redirect_stdout(io.StringIO()):
                try:
                    codes.append(main(argv))
                except SystemExit as exc:
                    codes.append(exc.code)
        print(json.dumps({{"loaded": loaded(), "codes": codes}}))
        """,
        tmp_path,
    )
    assert seen["loaded"] == []
    expected = {1: [3], 3: [0, 0, 0]}[len(runs)]  # empty dir: UNKNOWN; after a beat: HEALTHY
    assert seen["codes"] == expected
