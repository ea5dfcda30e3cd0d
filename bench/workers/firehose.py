"""Append RATE error lines a second to a log for SECONDS seconds (in 10 ms batches);
prints how many lines it wrote.

usage: firehose.py PATH RATE SECONDS
"""

from __future__ import annotations

import os
import sys
import time
from datetime import UTC, datetime


def main() -> None:
    path, rate, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    tick = 0.01
    per_tick = max(1, int(rate * tick))
    written = 0
    start = time.monotonic()
    n = 0
    while time.monotonic() - start < seconds:
        stamp = datetime.now(UTC).isoformat(timespec="milliseconds")
        batch = "".join(
            f"{stamp} ERROR item SD-{(n + i) % 1000:03d} failed: assertion in step {i} "
            f"(firehose line {n + i})\n"
            for i in range(per_tick)
        )
        n += per_tick
        written += os.write(fd, batch.encode())
        due = start + (n / rate)
        pause = due - time.monotonic()
        if pause > 0:
            time.sleep(pause)
    os.close(fd)
    print(f"{n} {time.monotonic() - start:.3f} {written}")


if __name__ == "__main__":
    main()
