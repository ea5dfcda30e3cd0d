"""The Python API's cost per item (heartbeat + result + checkpoint, no fsync), beside
the floor: the same four writes done bare (two atomic JSON replaces with a fixed temp
name, two appends to descriptors held open).

usage: api_overhead.py ITEMS RUNS WORKDIR   (prints JSON: ms per item, per run)
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from campaign_tui import Campaign


def ours(directory: Path, items: int) -> float:
    keys = [f"SD-{n:05d}" for n in range(items)]
    with Campaign(state_dir=directory, total=items) as campaign:
        start = time.perf_counter()
        for key in campaign.pending(keys):
            with campaign.item(key):
                pass
        elapsed = time.perf_counter() - start
    return 1000 * elapsed / items


def floor(directory: Path, items: int) -> float:
    directory.mkdir(mode=0o700)
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT
    results = os.open(directory / "results.jsonl", flags, 0o600)
    progress = os.open(directory / "progress.log", flags, 0o600)

    def replace(name: str, doc: dict) -> None:
        tmp = directory / f".{name}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.write(fd, json.dumps(doc).encode())
        os.close(fd)
        os.replace(tmp, directory / name)

    start = time.perf_counter()
    for n in range(items):
        now = time.time_ns() // 1_000_000
        replace("heartbeat.json", {"timestamp": now, "current_item": f"SD-{n:05d}", "tested": n})
        line = {"item": f"SD-{n:05d}", "outcome": "passed", "duration": 0.0, "timestamp": now}
        os.write(results, (json.dumps(line) + "\n").encode())
        replace("checkpoint.json", {"timestamp": now, "tested": n + 1, "last_item": f"SD-{n:05d}"})
        os.write(progress, f"{now} INFO [{n + 1}/{items}] SD-{n:05d} passed\n".encode())
    elapsed = time.perf_counter() - start
    os.close(results)
    os.close(progress)
    return 1000 * elapsed / items


def main() -> None:
    items, runs, work = int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
    out: dict[str, list[float]] = {"ours": [], "floor": []}
    for run in range(runs):
        out["floor"].append(floor(work / f"floor-{run}", items))
        out["ours"].append(ours(work / f"ours-{run}", items))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
