"""The demo's simulated campaign: three dozen items tested one after another.

Run by ``campaign-tui demo`` under the real supervisor. It reports through the
Python API (:class:`campaign_tui.Campaign`), so every pane has something to
show: a few items fail, one raises (a traceback in errors.log), one is slow
(an alert), the output log gets a line per item, and the first attempt
crashes part-way so that the supervisor restarts it and the second attempt
resumes from the checkpoint instead of starting over.

``CAMPAIGN_TUI_DEMO_SPEED`` scales the time per item (tests run it at 0.02).
"""

from __future__ import annotations

import logging
import os
import random
import sys
import time

from campaign_tui import Campaign

SUBJECTS = (
    "http-client", "json-parser", "yaml-loader", "tls-handshake", "dns-resolver",
    "gzip-stream", "csv-reader", "date-parser", "url-router", "session-store",
    "rate-limiter", "image-resize", "pdf-render", "mail-queue", "search-index",
    "cache-evict", "auth-token", "file-upload", "websocket", "cron-jobs",
    "i18n-plural", "db-migrate", "pool-reuse", "retry-policy", "sse-stream",
    "log-rotate", "unicode-norm", "xml-escape", "tar-extract", "diff-engine",
    "metrics-push", "queue-fanout", "lock-lease", "geo-lookup", "tz-convert",
    "bloom-filter",
)  # fmt: skip
ITEMS = tuple(f"{n:02d}-{name}" for n, name in enumerate(SUBJECTS, 1))
FAILS = {5: "expected 200, got 503", 11: "timeout after 30s", 23: "checksum mismatch",
         30: "3 of 118 assertions failed"}  # fmt: skip
RAISES = 19  # the item raises: an error with its traceback
SLOW = 27  # a slow item: a warning alert
CRASH_BEFORE = 14  # the first attempt crashes here; the restart resumes at this item


def speed() -> float:
    try:
        return max(0.0, float(os.environ.get("CAMPAIGN_TUI_DEMO_SPEED", "1")))
    except ValueError:
        return 1.0


def main() -> int:
    scale = speed()
    rng = random.Random(118)
    attempt = int(os.environ.get("CAMPAIGN_ATTEMPT", "1") or 1)
    with Campaign(total=len(ITEMS), stale_after=60) as campaign:
        if campaign.tested:
            print(f"attempt {attempt}: resuming after {campaign.tested} finished items", flush=True)
        for key in campaign.pending(ITEMS):
            number = int(key[:2])
            if number == CRASH_BEFORE and attempt == 1:
                print(f"[{key}] connecting to the fixture server...", flush=True)
                time.sleep(0.5 * scale)
                raise ConnectionError("simulated crash: lost the connection to the fixture server")
            with campaign.item(key) as item:
                print(f"[{key}] testing {key[3:]} [attempt {attempt}]", flush=True)
                duration = rng.uniform(0.5, 1.4) * scale
                if number == SLOW:
                    duration *= 3
                    campaign.alert(f"item {key} is slow ({duration:.1f}s)", "warning")
                time.sleep(duration)
                if number in FAILS:
                    item.fail(FAILS[number])
                    print(f"[{key}] FAILED: {FAILS[number]}", flush=True)
                if number == RAISES:
                    logging.getLogger("demo").warning("%s: fixture data looks odd", key)
                    _parse_fixture(key)
    print("all items done", flush=True)
    return 0


def _parse_fixture(key: str) -> None:
    fields = {"name": key}
    raise KeyError(f"fixture for {fields['name']} has no 'expected' field")


if __name__ == "__main__":
    sys.exit(main())
