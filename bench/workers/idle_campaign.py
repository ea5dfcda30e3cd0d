"""A campaign that did some work and now sits in one long item: the "ordinary
state" of the benchmark (a healthy campaign between heartbeats).

usage: idle_campaign.py SLOW_ITEM_NAME
"""

from __future__ import annotations

import logging
import sys
import time

from campaign_tui import Campaign


def main() -> None:
    slow = sys.argv[1]
    items = [f"SD-{n:03d}" for n in range(1, 41)] + [slow] + [f"SD-{n:03d}" for n in range(42, 119)]
    with Campaign(total=len(items)) as campaign:
        for item in campaign.pending(items):
            with campaign.item(item) as it:
                if item == slow:
                    while True:
                        time.sleep(3600)
                n = int(item[3:])
                if n % 9 == 0:
                    it.fail(f"{item}: checksum mismatch")
                elif n % 17 == 0:
                    logging.error("item %s: flaky device", item)
                    raise RuntimeError(f"{item}: device did not answer")


if __name__ == "__main__":
    main()
