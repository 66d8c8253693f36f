"""Per-token rate enforcement: sliding windows, the per-minute cap and the daily cap.

Every window is *sliding*: a call is admitted when fewer than ``calls`` admitted calls lie in
``(now - per, now]``. A call must fit every window that applies to it at once:

=================================  ==================================  =========================
window                             from the plan                       when full
=================================  ==================================  =========================
its endpoint (kline, batch-kline,  ``plan.rate_for(endpoint)``         429 "Too Many Requests"
trade-tick, depth-tick,
static_info), both base paths
all endpoints together             ``plan.all_endpoints``              429
Free: all endpoints together       ``STRICT_FREE_ALL_ENDPOINTS``       429
(unless ``lenient_free``)          (1 call per 10 s)
the last 60 seconds                ``plan.per_minute``                 605 "too many requests"
the calendar day (UTC+8)           ``plan.per_day``                    605
=================================  ==================================  =========================

Free's "only one interface can be requested every 10 seconds" (every endpoint page and
``en/getting-started/http-interface-restrictions.mdx``) binds across endpoints by default; the
lenient reading (each endpoint once per 10 s, 10 calls a minute in all) is the switch.

A call answered 429 or 605 consumes nothing; every other authenticated call consumes one unit
of every window, whatever its ``ret``. AllTick does not say whether refused calls count;
``refusals_count`` takes the other reading, as a gateway that counts every request before it
judges it would: a refused call consumes one unit of each window it was judged by (its
endpoint's and the all-endpoints window for a 429; the minute too for a 605), so a client
that keeps sending into a full window keeps it full.

The suspension service has only its own window, one per exchange (``suspension/sse`` and so
on), and touches none of the others.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right, insort

from alltick_frames.core.plans import DAY_RESET_UTC_OFFSET, STRICT_FREE_ALL_ENDPOINTS, Plan, Rate

TOO_FAST = 429
OVER_CAP = 605


#: Seconds a window keeps calls past its span: a request dated at its arrival may be admitted
#: after a later one (the loop reads them in its own order), and must still see its window.
KEEP = 5.0


class Window:
    """The admitted calls of one sliding window, as sorted timestamps.

    Calls are dated when they reached the front door (see
    :mod:`~alltick_frames.emulator.arrivals`), so one may be admitted after a call dated later.
    :meth:`has_room` then also checks every window the late-admitted call falls into that ends
    at a later call: no span of ``per`` ever holds more than ``calls`` admitted calls.
    """

    __slots__ = ("rate", "times")

    def __init__(self, rate: Rate) -> None:
        self.rate = rate
        self.times: list[float] = []

    def count(self, now: float) -> int:
        """Admitted calls in ``(now - per, now]``."""
        return bisect_right(self.times, now) - bisect_right(self.times, now - self.rate.per)

    def has_room(self, now: float) -> bool:
        times, per, calls = self.times, self.rate.per, self.rate.calls
        if self.count(now) >= calls:
            return False
        later = bisect_right(times, now)
        end = bisect_left(times, now + per)
        # Calls dated after ``now`` but admitted before: the windows ending at them hold
        # ``now`` too.
        return all(self.count(times[i]) < calls for i in range(later, end))

    def add(self, now: float) -> None:
        insort(self.times, now)
        expired = bisect_right(self.times, now - self.rate.per - KEEP)
        if expired:
            del self.times[:expired]


class TokenQuota:
    """All windows of one token under one plan."""

    def __init__(
        self, plan: Plan, *, lenient_free: bool = False, refusals_count: bool = False
    ) -> None:
        self.plan = plan
        self.refusals_count = refusals_count
        self._endpoints: dict[str, Window] = {}
        self._shared: list[Window] = []
        free = plan.name == "free"
        # The Free plan's own all-endpoints rate is the strict reading; lenient drops it.
        if plan.all_endpoints is not None and not (free and lenient_free):
            self._shared.append(Window(plan.all_endpoints))
        if free and not lenient_free and plan.all_endpoints != STRICT_FREE_ALL_ENDPOINTS:
            self._shared.append(Window(STRICT_FREE_ALL_ENDPOINTS))
        self._minute = Window(Rate(plan.per_minute, 60.0))
        self._day = -1
        self._day_count = 0

    def _endpoint(self, endpoint: str) -> Window:
        window = self._endpoints.get(endpoint)
        if window is None:
            window = self._endpoints[endpoint] = Window(self.plan.rate_for(endpoint))
        return window

    def admit(self, endpoint: str, now: float) -> int | None:
        """Admit and count a quote call, or return the ``ret`` that refuses it (429 or 605)."""
        judged = [self._endpoint(endpoint), *self._shared]
        refused: int | None = None
        if not all(w.has_room(now) for w in judged):
            refused = TOO_FAST
        else:
            day = math.floor((now + DAY_RESET_UTC_OFFSET) / 86_400)
            if day != self._day:
                self._day, self._day_count = day, 0
            judged.append(self._minute)
            if not self._minute.has_room(now) or self._day_count >= self.plan.per_day:
                refused = OVER_CAP
        if refused is None or self.refusals_count:
            for window in judged:
                window.add(now)
        if refused is None:
            self._day_count += 1
        return refused

    def admit_suspension(self, endpoint: str, now: float) -> bool:
        """Admit and count a suspension call (its own window only), or refuse it."""
        window = self._endpoint(endpoint)
        if not window.has_room(now):
            return False
        window.add(now)
        return True
