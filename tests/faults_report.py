"""What the fault suite injected and what it found, for docs/reliability.md.

A test announces each fault as it injects it (:meth:`FaultLog.fault` returns a
:class:`Fault` whose ``injected`` count the test raises, and whose ``lost`` the
test sets once it has counted the items). The outcome of each entry is the
pytest outcome of the test that injected it, so a fault whose check failed is
reported as failed, never as a success. When ``CAMPAIGN_FAULTS_REPORT=path`` is
set, the log is written there as JSON at the end of the session; the numbers
in the document come from that file only.
"""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPORT_ENV = "CAMPAIGN_FAULTS_REPORT"
SOAK_ENV = "CAMPAIGN_FAULTS_SOAK"


@dataclass
class Fault:
    """One kind of fault injected by one test."""

    name: str
    checked: str
    test: str
    injected: int = 0
    lost: int | None = None  # items lost; None until the test has counted them
    outcome: str = "not run"
    details: dict[str, Any] = field(default_factory=dict)

    def inject(self, count: int = 1) -> None:
        self.injected += count


@dataclass
class TestRun:
    test: str
    outcome: str
    seconds: float
    reason: str = ""


class FaultLog:
    """Every fault of one session, and the outcome of every test of the suite."""

    def __init__(self) -> None:
        self.faults: list[Fault] = []
        self.tests: dict[str, TestRun] = {}
        self.started = time.time()
        self.seeds: dict[str, int] = {}
        self.soak = False

    def fault(self, test: str, name: str, checked: str) -> Fault:
        entry = Fault(name=name, checked=checked, test=test)
        self.faults.append(entry)
        return entry

    def finished(self, test: str, outcome: str, seconds: float, reason: str = "") -> None:
        """The test's final outcome (a failed teardown turns a pass into a failure)."""
        known = self.tests.get(test)
        if known is not None and known.outcome != "passed" and outcome == "passed":
            return
        total = seconds + (known.seconds if known else 0.0)
        self.tests[test] = TestRun(test, outcome, round(total, 2), reason)
        for entry in self.faults:
            if entry.test == test:
                entry.outcome = outcome

    def document(self) -> dict[str, Any]:
        return {
            "started": self.started,
            "seconds": round(time.time() - self.started, 2),
            "soak": self.soak,
            "seeds": self.seeds,
            "python": platform.python_version(),
            "machine": f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs",
            "faults": [asdict(f) for f in self.faults],
            "tests": [asdict(t) for t in self.tests.values()],
        }

    def write(self, path: str | os.PathLike[str]) -> None:
        target = Path(path)
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_text(json.dumps(self.document(), indent=2, default=str) + "\n")
        os.replace(tmp, target)
