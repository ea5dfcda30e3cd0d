"""``campaign-tui demo``: a simulated campaign under the real supervisor, with the TUI.

The campaign (:mod:`campaign_tui.demo_campaign`) runs detached in a fresh
private temporary state directory, exactly as ``campaign-tui run --detach``
would run it; the TUI then opens on it. Quitting the TUI leaves the demo
running until it finishes (about a minute), like any campaign; the message on
quitting says whether it already has.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import tempfile
from pathlib import Path

from campaign_tui import config, control, statedir
from campaign_tui.statedir import StateDir

DEMO_SETTINGS: dict[str, object] = {
    "backoff_initial": 3.0,
    "max_restarts": 3,
    "stale_after": 30.0,
    "stop_timeout": 5.0,
}
SPEED_VAR = "CAMPAIGN_TUI_DEMO_SPEED"


def start_demo(directory: Path | None = None, *, speed: float | None = None) -> StateDir:
    """Start the demo campaign detached; its state directory (new and private unless given)."""
    path = directory or Path(tempfile.mkdtemp(prefix="campaign-tui-demo-"))
    sd = statedir.ensure(StateDir(path.resolve()))
    if speed is not None:
        os.environ[SPEED_VAR] = str(speed)  # the supervisor passes its environment on
    pace = {} if speed is None else {"backoff_initial": max(0.1, 3.0 * min(speed, 1.0))}
    settings = config.load_settings(
        None,
        {
            **DEMO_SETTINGS,
            **pace,
            "command": (sys.executable, "-m", "campaign_tui.demo_campaign"),
            "cwd": str(sd.path),
        },
    )
    said = io.StringIO()
    with contextlib.redirect_stdout(said):
        code = control.run(sd, settings, detach=True)
    if code != 0:
        raise RuntimeError(f"the demo campaign did not start (exit {code})")
    return sd


def where_it_stands(sd: StateDir) -> str:
    """One line on the demo as it is now, judged as ``campaign-tui status`` judges it."""
    from campaign_tui import clock
    from campaign_tui.health import State, judge
    from campaign_tui.models import SupervisorDoc
    from campaign_tui.sanitize import sanitize
    from campaign_tui.snapshot import probe_processes, read_snapshot

    snap = read_snapshot(sd)
    procs = probe_processes(snap)
    health = judge(snap, clock.now(), procs)
    if health.state is State.COMPLETE:
        return "The demo campaign finished."
    sup = snap.supervisor if isinstance(snap.supervisor, SupervisorDoc) else None
    live = ("running", "backoff", "stopping")
    if sup is None or sup.state not in live or procs.alive(sup.pid, sup.pid_start) is False:
        return f"The demo campaign ended ({health.state.value}: {sanitize(health.reason)})."
    return (
        f"The demo campaign is still running; stop it with: campaign-tui stop --state-dir {sd.path}"
    )


def run_demo() -> int:
    from campaign_tui.tui.app import run_tui

    sd = start_demo()
    code = run_tui(sd, root=sd.path.parent)
    where = sd.path
    print(
        f"{where_it_stands(sd)}\n"
        f"Its state directory: {where}\n"
        f"  campaign-tui --state-dir {where}          # the monitor again\n"
        f"  campaign-tui status --state-dir {where}\n"
        f"  campaign-tui logs errors --state-dir {where}\n"
        f"  campaign-tui stop --state-dir {where}"
    )
    return code
