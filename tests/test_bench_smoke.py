"""The benchmark harness still runs: its cheapest figure, with minimal counts.

``bench/run.py --quick --only api --no-install`` measures the Python API's cost per
item beside the bare-writes floor in a few seconds, through the same harness, worker
and summary as the full run (which writes docs/benchmarks.md). It installs nothing
and writes no report.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

RUN = Path(__file__).resolve().parents[1] / "bench" / "run.py"

pytestmark = pytest.mark.skipif(not RUN.is_file(), reason="bench/ is not shipped here")


def test_cheapest_bench_figure_runs() -> None:
    done = subprocess.run(
        [sys.executable, str(RUN), "--quick", "--only", "api", "--no-install"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    row = [line for line in done.stdout.splitlines() if line.startswith("heartbeat + result")]
    assert row and " ms (" in row[0], done.stdout  # a median with its min–max


def test_unknown_figure_is_a_usage_error() -> None:
    done = subprocess.run(
        [sys.executable, str(RUN), "--only", "nonsense", "--no-install"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 2
    assert "unknown figures: nonsense" in done.stderr
