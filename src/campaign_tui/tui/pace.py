"""How fast the campaign goes, from its own timestamps (not from what the TUI saw).

The finished items in ``results.jsonl`` carry the campaign's timestamps; the
rate is taken over the newest of them within one attempt (a restart's backoff
gap would otherwise drag it down). A campaign that writes no results journal
gets its rate from the heartbeats seen, each stamped by the campaign itself.
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass

from campaign_tui.models import Heartbeat

WINDOW = 30  # newest finished items the rate is taken over


@dataclass(frozen=True, slots=True)
class Pace:
    """Items per minute, and when that was measured (the campaign's clock)."""

    per_minute: float | None = None
    last_ms: int | None = None
    first_ms: int | None = None
    done: int = 0  # items finished between first_ms and last_ms

    def rate_at(self, now_ms: int) -> float | None:
        """Items per minute counting the wait since the last item (a stuck campaign slows down)."""
        if not self.per_minute or self.first_ms is None or self.last_ms is None:
            return self.per_minute
        span = (max(now_ms, self.last_ms) - self.first_ms) / 60000
        return self.done / span if span > 0 else self.per_minute

    def eta(self, remaining: int | None, now_ms: int | None = None) -> float | None:
        """Seconds left for ``remaining`` items at this pace."""
        rate = self.rate_at(now_ms) if now_ms is not None else self.per_minute
        if remaining is None or not rate or rate <= 0:
            return None
        return max(remaining, 0) * 60.0 / rate


def _rate(points: list[tuple[int, int]]) -> Pace:
    """``(at_ms, count)`` points, oldest first → items per minute between the ends."""
    if len(points) < 2:
        return Pace(None, points[-1][0] if points else None)
    (first_ms, first_n), (last_ms, last_n) = points[0], points[-1]
    span = (last_ms - first_ms) / 60000
    if span <= 0 or last_n <= first_n:
        return Pace(None, last_ms)
    return Pace((last_n - first_n) / span, last_ms, first_ms, last_n - first_n)


def pace_from_results(data: bytes) -> Pace:
    """The pace over the newest results of the newest attempt in a results.jsonl tail."""
    entries: list[tuple[int, object]] = []
    for raw in data.split(b"\n")[-(WINDOW * 4) :]:
        try:
            doc = json.loads(raw)
        except (ValueError, RecursionError):
            continue
        if not isinstance(doc, dict):
            continue
        at = doc.get("timestamp")
        if isinstance(at, (int, float)) and not isinstance(at, bool) and at > 0:
            entries.append((int(at), doc.get("attempt")))
    if not entries:
        return Pace()
    attempt = entries[-1][1]
    same = [at for at, a in entries if a == attempt][-WINDOW:]
    return _rate([(at, n) for n, at in enumerate(same)])


class HeartbeatPace:
    """The pace from heartbeats (campaign timestamps), for campaigns without a journal."""

    def __init__(self) -> None:
        self._points: deque[tuple[int, int]] = deque(maxlen=WINDOW)

    def observe(self, hb: Heartbeat | None) -> Pace:
        if hb is not None and hb.at_ms is not None and hb.tested is not None:
            if self._points and (hb.tested < self._points[-1][1] or hb.at_ms < self._points[-1][0]):
                self._points.clear()  # a new run or a clock jump: start over
            if not self._points or hb.tested != self._points[-1][1]:
                self._points.append((hb.at_ms, hb.tested))
        return _rate(list(self._points))
