"""The floor under "state write -> screen": how long watchfiles takes to report an
``os.replace`` into a watched directory, with the TUI's settings (debounce=50, step=10).

usage: watchfiles_floor.py SAMPLES WORKDIR   (prints JSON: ms per sample)
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
import time
from pathlib import Path

from watchfiles import awatch


async def measure(directory: Path, samples: int) -> list[float]:
    stop = asyncio.Event()
    changes = awatch(directory, debounce=50, step=10, stop_event=stop, recursive=False)
    out: list[float] = []
    pending = asyncio.ensure_future(anext(changes))
    await asyncio.sleep(0.3)  # the watch is set up
    for n in range(samples):
        tmp = directory / ".heartbeat.json.tmp"
        tmp.write_text(json.dumps({"n": n}))
        start = time.monotonic()
        os.replace(tmp, directory / "heartbeat.json")
        await pending
        out.append(1000 * (time.monotonic() - start))
        await asyncio.sleep(random.uniform(0.06, 0.12))
        pending = asyncio.ensure_future(anext(changes))
        await asyncio.sleep(0.05)
    stop.set()
    pending.cancel()
    return out


def main() -> None:
    samples, work = int(sys.argv[1]), Path(sys.argv[2])
    work.mkdir(parents=True, exist_ok=True)
    print(json.dumps(asyncio.run(measure(work, samples))))


if __name__ == "__main__":
    main()
