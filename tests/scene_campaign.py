"""A campaign for the TUI tests and screenshots, reporting through the Campaign API.

    python scene_campaign.py --items 40 --fail 5,11 --block-at 24 --beat
    python scene_campaign.py --items 40 --crash-at 9          # crashes on every attempt

``--block-at N`` stops inside item N for good (beating every 0.2 s with ``--beat``,
silent without, which makes it a hang).
"""

from __future__ import annotations

import argparse
import sys
import time

from campaign_tui import Campaign


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=40)
    parser.add_argument("--fail", default="")
    parser.add_argument("--block-at", type=int, default=0)
    parser.add_argument("--beat", action="store_true")
    parser.add_argument("--crash-at", type=int, default=0)
    parser.add_argument("--delay", type=float, default=0.005)
    parser.add_argument("--say", default="")
    args = parser.parse_args()
    fails = {int(n) for n in args.fail.split(",") if n}
    items = [f"item-{n:03d}" for n in range(1, args.items + 1)]
    if args.say:
        print(args.say, flush=True)
    with Campaign(total=len(items)) as campaign:
        for key in campaign.pending(items):
            number = int(key[5:])
            if number == args.crash_at:
                raise RuntimeError(f"scene crash before {key}")
            with campaign.item(key) as item:
                print(f"testing {key}", flush=True)
                if number == args.block_at:
                    while True:
                        time.sleep(0.2)
                        if args.beat:
                            campaign.beat()
                time.sleep(args.delay)
                if number in fails:
                    item.fail(f"{key} failed its check")
    return 0


if __name__ == "__main__":
    sys.exit(main())
