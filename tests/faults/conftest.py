"""The fault suite's options and fixtures: ``--soak``, seeded randomness, the fault log.

``pytest tests/faults --soak`` (or ``CAMPAIGN_FAULTS_SOAK=1``) runs the
randomized parts many times longer than CI does. ``CAMPAIGN_FAULTS_SEED=N``
replays a run: every randomized test prints the seed it used. With
``CAMPAIGN_FAULTS_REPORT=path`` the faults injected and the outcome of every
test are written to ``path`` as JSON (see ``scripts/reliability_report.py``).
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import ProcessTracker
from faults_report import REPORT_ENV, SOAK_ENV, Fault, FaultLog
from supervisor_fixtures import Sup, sup_fixture

LOG = FaultLog()
SEED_ENV = "CAMPAIGN_FAULTS_SEED"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--soak",
        action="store_true",
        default=False,
        help="fault suite: run the randomized fault injection many times longer",
    )


def soaking(config: pytest.Config) -> bool:
    try:
        flag = bool(config.getoption("--soak"))
    except ValueError:  # the option is only known when tests/faults is on the command line
        flag = False
    return flag or os.environ.get(SOAK_ENV, "") not in ("", "0")


def pytest_configure(config: pytest.Config) -> None:
    LOG.soak = soaking(config)
    if LOG.soak:  # modules read it at import, for their hypothesis settings
        os.environ[SOAK_ENV] = "1"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call" or report.outcome != "passed":
        outcome = report.outcome
        reason = ""
        if hasattr(report, "wasxfail"):
            outcome, reason = ("xfailed" if report.skipped else "xpassed"), report.wasxfail
        elif report.skipped and isinstance(report.longrepr, tuple):
            reason = str(report.longrepr[2])
        LOG.finished(item.nodeid, outcome, report.duration, reason)
    return report


def pytest_sessionfinish(session: pytest.Session) -> None:
    target = os.environ.get(REPORT_ENV)
    if target and LOG.tests:
        LOG.write(target)


@pytest.fixture
def soak(request: pytest.FixtureRequest) -> bool:
    return soaking(request.config)


@pytest.fixture
def fault(request: pytest.FixtureRequest) -> Callable[[str, str], Fault]:
    """``fault(name, what_is_checked)``: announce a fault this test injects."""

    def announce(name: str, checked: str) -> Fault:
        return LOG.fault(request.node.nodeid, name, checked)

    return announce


@pytest.fixture
def rng(request: pytest.FixtureRequest) -> random.Random:
    """A seeded random source; the seed is printed so a failure can be replayed."""
    seed = int(os.environ.get(SEED_ENV) or time.time_ns() % 2**32)
    print(f"\nfault seed: {SEED_ENV}={seed}")
    LOG.seeds[request.node.nodeid] = seed
    return random.Random(seed)


@pytest.fixture
def sup(procs: ProcessTracker, tmp_path: Path) -> Iterator[Sup]:
    """A campaign under the real supervisor; every process carrying its marker is killed after."""
    yield from sup_fixture(procs, tmp_path)
