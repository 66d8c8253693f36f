"""The clock a stream's timers run on: real time, or a clock that something else moves.

Every timer of a stream (heartbeats, request spacing, reconnect spacing, batches, the silence
timeout, ``duration``) reads one clock. By default it is real time. Given any other
``now()`` function, say an emulator's rate clock that a test drives forward by hand, the
stream sleeps by polling it, so the client and the server judge every rule on the same time
line and a two-minute stream can take a few seconds.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class Clock:
    """Real time: ``now()`` is :func:`time.time` and sleeping is :func:`asyncio.sleep`."""

    def now(self) -> float:
        return time.time()

    async def sleep_until(self, moment: float) -> None:
        """Return once ``now() >= moment``."""
        delay = moment - self.now()
        if delay > 0:
            await asyncio.sleep(delay)

    async def sleep(self, seconds: float) -> None:
        await self.sleep_until(self.now() + seconds)


class PolledClock(Clock):
    """A clock read from ``now`` (Unix seconds) that may jump or stand still: sleeping polls it
    every ``poll`` real seconds."""

    def __init__(self, now: Callable[[], float], poll: float = 0.005) -> None:
        self._now = now
        self.poll = poll

    def now(self) -> float:
        return self._now()

    async def sleep_until(self, moment: float) -> None:
        while self._now() < moment:
            await asyncio.sleep(self.poll)


def clock_of(now: Callable[[], float] | None) -> Clock:
    """Real time for None (or :func:`time.time`), else a :class:`PolledClock` on ``now``."""
    if now is None or now is time.time:
        return Clock()
    return PolledClock(now)
