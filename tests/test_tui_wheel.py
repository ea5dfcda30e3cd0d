"""The built wheel ships the stylesheet where the installed app looks for it."""

from __future__ import annotations

import subprocess
import sys
import venv
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

CHECK = """
import asyncio, pathlib, sys
import campaign_tui
from campaign_tui.tui.app import CampaignApp, stylesheet
from campaign_tui.statedir import StateDir
found = stylesheet()
assert found is not None and found.name == "campaign.tcss", found
assert pathlib.Path(campaign_tui.__file__).resolve().is_relative_to(pathlib.Path(sys.prefix).resolve())

async def main():
    app = CampaignApp(StateDir(pathlib.Path(sys.argv[1])), root=pathlib.Path(sys.argv[1]))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.2)
        rules = [str(rule.selector_names) for rule in app.stylesheet.rules]
        assert any("HealthPane" in r for r in rules), "the app's stylesheet was not loaded"
asyncio.run(main())
print("ok", found)
"""


def test_the_installed_wheel_finds_its_stylesheet(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "build",
            "--wheel",
            "--no-isolation",
            "--outdir",
            str(dist),
            str(REPO),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert build.returncode == 0, build.stderr[-2000:]
    (wheel,) = dist.glob("campaign_tui-*.whl")
    env_dir = tmp_path / "venv"
    venv.create(env_dir, system_site_packages=True, with_pip=False)
    python = env_dir / "bin" / "python"
    install = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--no-deps",
            "--no-index",
            "-q",
            str(wheel),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert install.returncode == 0, install.stderr[-2000:]
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    check = subprocess.run(
        [str(python), "-I", "-c", CHECK, str(state)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        check=False,
    )
    assert check.returncode == 0, check.stderr[-3000:]
    assert "ok" in check.stdout
