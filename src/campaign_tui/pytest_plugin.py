"""pytest plugin: each test is a campaign item.

Registered through the ``pytest11`` entry point, so it is loaded wherever
campaign-tui is installed, and it does nothing unless ``CAMPAIGN_STATE_DIR`` is
set (the supervisor sets it: ``campaign-tui run -- pytest``) or ``--campaign``
(``--campaign=NAME``) is given.

When active it reports through :class:`campaign_tui.Campaign`: the selected
tests are the total, a heartbeat names the test in flight, each test's outcome
(passed / failed / error / skipped) goes to results.jsonl and the checkpoint,
and the session's end is the campaign's status: COMPLETE when every selected
test ran (failures are results, not crashes), TERMINATED when ``-x`` /
``--maxfail`` stopped it early, INTERRUPTED on Ctrl-C, CRASHED on an internal
or usage error. Tests that already have a final outcome in results.jsonl (from
an earlier attempt) are deselected, so a resumed run never reruns them.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import pytest

from campaign_tui import statedir
from campaign_tui.campaign import Campaign, ItemRun

PLUGIN_NAME = "campaign-tui-reporter"
_RANK = {"passed": 0, "skipped": 1, "failed": 2, "error": 3}
_MAX_MESSAGE = 300


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("campaign-tui", "campaign-tui: each test is a campaign item")
    group.addoption(
        "--campaign",
        nargs="?",
        const="",
        default=None,
        metavar="NAME",
        help="report each test to campaign NAME's state directory (write --campaign=NAME); "
        "without NAME: $CAMPAIGN_STATE_DIR, else the campaign 'default'. "
        "Also active whenever CAMPAIGN_STATE_DIR is set.",
    )


def pytest_configure(config: pytest.Config) -> None:
    name = config.getoption("campaign", None)
    if name is None and not os.environ.get("CAMPAIGN_STATE_DIR"):
        return  # inert
    if hasattr(config, "workerinput") or config.getoption("collectonly", False):
        return  # an xdist worker (the controller reports), or nothing will run
    if name and ("/" in name or "::" in name or name.endswith(".py") or os.path.exists(name)):
        raise pytest.UsageError(
            f"--campaign took {name!r} as the campaign name: write --campaign=NAME, "
            "or put --campaign after the test paths"
        )
    config.pluginmanager.register(CampaignReporter(name or None), PLUGIN_NAME)


def _message(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:  # a skip: (file, line, reason)
        text = str(longrepr[2]).removeprefix("Skipped: ")
    else:
        crash = getattr(longrepr, "reprcrash", None)
        text = getattr(crash, "message", None) or (str(longrepr) if longrepr else "")
    text = text.strip().splitlines()[0] if text.strip() else ""
    return text[:_MAX_MESSAGE]


class CampaignReporter:
    """Turns pytest's hooks into a Campaign's items."""

    def __init__(self, name: str | None):
        self.campaign = Campaign(name=name) if name else Campaign()
        self.runs: dict[str, ItemRun] = {}
        self.durations: dict[str, float] = {}
        self.deselected = 0
        self.entered = False

    # ------------------------------------------------------------ session

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        self.campaign.__enter__()
        self.entered = True
        handler = self.campaign._log_handler
        if handler is not None:
            # A test suite logs errors on purpose; errors.log is for the campaign's own.
            logging.getLogger().removeHandler(handler)

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(
        self, session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
    ) -> None:
        self.campaign.total = len(items)
        keep = list(self.campaign.pending(items, key=lambda item: item.nodeid))
        kept = set(keep)
        done = [item for item in items if item not in kept]
        if done:
            self.deselected = len(done)
            config.hook.pytest_deselected(items=done)
            items[:] = keep
            self.campaign._writer.log(
                statedir.PROGRESS_LOG,
                "INFO",
                f"pytest: {len(done)} of {len(done) + len(keep)} tests already have a result: "
                "deselected",
            )
        self.campaign.beat()

    def pytest_report_collectionfinish(self, config: pytest.Config) -> str | None:
        if not self.deselected:
            return None
        return (
            f"campaign-tui: {self.deselected} tests already have a result in "
            f"{self.campaign.state_dir}/results.jsonl and were deselected "
            "(remove that file, or use another --campaign=NAME, to run them again)"
        )

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int | Any) -> None:
        if not self.entered:
            return
        self.entered = False
        campaign = self.campaign
        code = int(exitstatus)
        try:
            if session.shouldfail or (session.shouldstop and code != pytest.ExitCode.INTERRUPTED):
                why = session.shouldfail or session.shouldstop
                left = max(0, (campaign.total or 0) - campaign.tested)
                campaign._record_ending(
                    "TERMINATED",
                    f"pytest stopped early ({why}): {left} tests not run; "
                    "`campaign-tui start` runs them",
                    None,
                )
            elif code == pytest.ExitCode.INTERRUPTED:
                campaign._record_ending("INTERRUPTED", "pytest was interrupted", None)
            elif code in (pytest.ExitCode.INTERNAL_ERROR, pytest.ExitCode.USAGE_ERROR):
                campaign._record_ending("CRASHED", f"pytest ended with exit code {code}", None)
        finally:
            campaign.__exit__(None, None, None)  # COMPLETE unless an ending was recorded

    # ------------------------------------------------------------ tests

    def pytest_runtest_logstart(self, nodeid: str, location: object) -> None:
        self.runs[nodeid] = ItemRun(nodeid)
        self.durations[nodeid] = 0.0
        self.campaign._begin_item(nodeid)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        run = self.runs.get(report.nodeid)
        if run is None:
            return
        self.durations[report.nodeid] = self.durations.get(report.nodeid, 0.0) + (
            report.duration or 0.0
        )
        xfail = hasattr(report, "wasxfail")
        outcome = None
        if report.when == "setup":
            if report.failed:
                outcome = "error"
            elif report.skipped:
                outcome = "skipped"
        elif report.when == "call":
            if report.failed:
                outcome = "failed"
            elif report.skipped:
                outcome = "skipped"
            elif xfail:
                run.message = "XPASS"
        elif report.failed and run.outcome in ("passed", "skipped"):
            outcome = "error"  # teardown failed
        if outcome is None or _RANK[outcome] < _RANK[run.outcome]:
            return
        run.outcome = outcome
        message = _message(report)
        if xfail:
            message = f"xfail: {report.wasxfail or message}".rstrip(": ")
        if report.when == "teardown":
            message = f"teardown: {message}"
        run.message = message

    def pytest_runtest_logfinish(self, nodeid: str, location: object) -> None:
        run = self.runs.pop(nodeid, None)
        if run is not None:
            self.campaign._finish_item(run, self.durations.pop(nodeid, 0.0))
