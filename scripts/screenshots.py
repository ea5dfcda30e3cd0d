"""Make screenshots/*.svg: the real app on real state directories, one per main state.

    python scripts/screenshots.py [OUT_DIR]

Each state is a real campaign under the real supervisor (see tests/tui_scenes.py):
HEALTHY (running, beating), STALE (stuck in an item, last heartbeat 14 minutes
old), CRASHED (the supervisor gave up after its restarts, with the restart history
shown) and COMPLETE. Every process started here is ended before it exits.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from campaign_tui.statedir import StateDir  # noqa: E402
from campaign_tui.tui.app import CampaignApp  # noqa: E402
from campaign_tui.tui.screens import MonitorScreen  # noqa: E402
from campaign_tui.tui.widgets import LogTabs  # noqa: E402
from tui_scenes import Scenes  # noqa: E402

SIZE = (100, 30)
SHOTS = (
    ("healthy", "HEALTHY", "progress"),
    ("stale", "STALE", "output"),
    ("crashed", "CRASHED", "restarts"),
    ("complete", "COMPLETE", "alerts"),
)


async def shoot(sd: StateDir, root: Path, want: str, tab: str, out: Path) -> None:
    app = CampaignApp(sd, root=root)
    async with app.run_test(size=SIZE) as pilot:
        deadline = time.monotonic() + 20
        while True:
            screen = app.screen
            ready = (
                isinstance(screen, MonitorScreen)
                and screen.health is not None
                and screen.health.state.value == want
                and (want not in ("HEALTHY", "STALE") or screen.usage is not None)
            )
            if ready:
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"{sd.path.name} never showed {want}")
            await pilot.pause(0.05)
        tabs = app.screen.query_one(LogTabs)
        while tabs.active != tab:
            await pilot.press("tab")
        await pilot.pause(0.3)
        app.save_screenshot(filename=out.name, path=str(out.parent))


def main() -> int:
    out_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "screenshots"
    out_dir.mkdir(parents=True, exist_ok=True)
    # Under the home directory, so the title bar shows a short ``~/...`` path.
    base = Path.home() / ".cache"
    base.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="campaign-tui-screenshots-", dir=base) as tmp:
        scenes = Scenes(Path(tmp))
        try:
            for name, want, tab in SHOTS:
                sd = getattr(scenes, name)()
                target = out_dir / f"{name}.svg"
                asyncio.run(shoot(sd, scenes.root, want, tab, target))
                print(target)
        finally:
            scenes.end_all()
    return 0


if __name__ == "__main__":
    sys.exit(main())
