"""Clocks for the budget: real wall time, and a fake one where time moves only when told.

The budget needs two things from a clock: the current time as **epoch seconds** (the daily cap
resets at a calendar moment, 00:00 UTC+8, and several processes must agree on one timeline),
and a way to wait until a given moment. :class:`Clock` is that protocol.

:class:`SystemClock` is ``time.time()`` plus ``asyncio.sleep``. :class:`FakeClock` is for tests
and simulations: ``now()`` changes only through :meth:`FakeClock.set`, :meth:`FakeClock.advance`
or :meth:`FakeClock.run`, so schedules can be asserted exactly and nothing sleeps in real time::

    clock = FakeClock(start=1_700_000_000.0)
    budget = Budget(PLANS["basic"], clock=clock)
    slots = await clock.run(*(budget.acquire("kline") for _ in range(3)))
    # slots == [t0, t0 + 1.025, t0 + 2.05]; the test took microseconds
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Awaitable
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class Clock(Protocol):
    """What the budget needs from time: ``now()`` in epoch seconds and ``sleep_until(t)``."""

    def now(self) -> float:
        """The current time, in seconds since the Unix epoch."""
        ...

    async def sleep_until(self, t: float) -> None:
        """Return once ``now() >= t`` (at once if ``t`` has already passed)."""
        ...


class SystemClock:
    """Wall-clock time (``time.time``) and ``asyncio.sleep``; shared by every process."""

    def now(self) -> float:
        return time.time()

    async def sleep_until(self, t: float) -> None:
        # asyncio sleeps on the monotonic clock; loop until wall time agrees, so a slot is
        # never entered early even if the two clocks drift apart by a hair.
        while (delay := t - time.time()) > 0:
            await asyncio.sleep(delay)

    def __repr__(self) -> str:
        return "SystemClock()"


class FakeClock:
    """A clock for tests: time stands still until the test moves it.

    Sleepers park on a future in a heap ordered by deadline (ties in arrival order), so who
    wakes first is deterministic. Three ways to move time:

    * :meth:`set` / :meth:`advance` jump to a moment and wake every sleeper that is due (they
      all observe the new time when they run);
    * :meth:`run` drives a group of coroutines in *virtual time*: whenever every unfinished one
      is parked on this clock, time jumps to the earliest deadline and those sleepers wake.
      Concurrency tests (50 tasks sharing one budget) run this way, in microseconds of real time.
    """

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = float(start)
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def now(self) -> float:
        return self._now

    async def sleep_until(self, t: float) -> None:
        if t <= self._now:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (t, next(self._seq), future))
        await future

    @property
    def waiting(self) -> int:
        """How many sleepers are parked (not yet woken, not cancelled)."""
        return sum(1 for _, _, f in self._sleepers if not f.done())

    def next_deadline(self) -> float | None:
        """The earliest deadline among parked sleepers, or ``None``."""
        self._drop_dead()
        return self._sleepers[0][0] if self._sleepers else None

    def set(self, t: float) -> None:
        """Jump to ``t`` (never backwards) and wake every sleeper whose deadline is ``<= t``."""
        if t < self._now:
            raise ValueError(f"FakeClock cannot go back in time ({t} < {self._now})")
        self._now = float(t)
        self._wake_due()

    def advance(self, dt: float) -> None:
        """Move ``dt`` seconds forward; see :meth:`set`."""
        self.set(self._now + dt)

    async def run(self, *aws: Awaitable[Any], max_idle_steps: int = 10_000) -> list[Any]:
        """Run ``aws`` concurrently in virtual time and return their results in order.

        Time jumps to the next deadline only when every unfinished task is parked on this
        clock, so each task sees exactly the moments it slept until. A task that waits on
        anything else for ``max_idle_steps`` loop turns raises ``RuntimeError`` rather than
        hanging the test. The first exception raised by a task cancels the others and
        propagates.
        """
        tasks = [asyncio.ensure_future(a) for a in aws]
        idle = 0
        try:
            while True:
                await asyncio.sleep(0)
                pending = [t for t in tasks if not t.done()]
                for task in tasks:
                    if task.done() and not task.cancelled() and task.exception() is not None:
                        raise task.exception()  # type: ignore[misc]
                if not pending:
                    return [t.result() for t in tasks]
                deadline = self.next_deadline()
                if deadline is not None and self.waiting >= len(pending):
                    self.set(max(deadline, self._now))
                    idle = 0
                else:
                    idle += 1
                    if idle > max_idle_steps:
                        raise RuntimeError(
                            f"{len(pending)} task(s) are waiting on something other than the "
                            "FakeClock; virtual time cannot advance"
                        )
        finally:
            for task in tasks:
                if not task.done():
                    task.cancel()

    def _drop_dead(self) -> None:
        while self._sleepers and self._sleepers[0][2].done():
            heapq.heappop(self._sleepers)

    def _wake_due(self) -> None:
        while self._sleepers and self._sleepers[0][0] <= self._now:
            _, _, future = heapq.heappop(self._sleepers)
            if not future.done():
                future.set_result(None)

    def __repr__(self) -> str:
        return f"FakeClock(now={self._now!r}, waiting={self.waiting})"
