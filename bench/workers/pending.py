"""Resuming over a long results journal: ``Campaign(...)`` entered and ``pending()``
listed, beside the floor (read the file, ``json.loads`` every line).

usage: pending.py LINES RUNS WORKDIR   (prints JSON: seconds, per run)
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from campaign_tui import Campaign


def journal(directory: Path, lines: int) -> list[str]:
    """A results.jsonl as the API writes it (same keys, same compact JSON)."""
    directory.mkdir(mode=0o700, parents=True)
    keys = [f"SD-{n:06d}" for n in range(lines)]
    now = time.time_ns() // 1_000_000
    outcomes = ("passed", "passed", "passed", "failed", "error", "skipped")
    with open(directory / "results.jsonl", "w") as handle:
        for n, key in enumerate(keys):
            doc = {
                "item": key,
                "outcome": outcomes[n % len(outcomes)],
                "duration": 1.234567,
                "message": "" if n % 6 < 3 else f"{key}: checksum mismatch at block {n % 97}",
                "attempt": 1 + n // 40000,
                "timestamp": now + n,
                "iso_time": "2025-06-01T12:00:00.000+00:00",
            }
            handle.write(json.dumps(doc, separators=(",", ":"), ensure_ascii=False) + "\n")
    return keys + [f"SD-{n:06d}" for n in range(lines, lines + 100)]


def ours(directory: Path, items: list[str]) -> tuple[float, int]:
    start = time.perf_counter()
    campaign = Campaign(state_dir=directory, total=len(items))
    campaign.__enter__()
    left = list(campaign.pending(items))
    elapsed = time.perf_counter() - start
    campaign.__exit__(None, None, None)
    return elapsed, len(left)


def floor(directory: Path) -> float:
    start = time.perf_counter()
    with open(directory / "results.jsonl", "rb") as handle:
        data = handle.read()
    loads = json.loads
    for line in data.splitlines():
        loads(line)
    return time.perf_counter() - start


def main() -> None:
    lines, runs, work = int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
    out: dict[str, list[float]] = {"ours": [], "floor": []}
    for run in range(runs):
        directory = work / f"journal-{run}"
        items = journal(directory, lines)
        out["floor"].append(floor(directory))
        elapsed, left = ours(directory, items)
        if left != 100:
            raise SystemExit(f"pending() yielded {left} items, expected 100")
        out["ours"].append(elapsed)
        os.unlink(directory / "results.jsonl")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
