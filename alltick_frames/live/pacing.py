"""Spacing WebSocket requests the way AllTick requires, judged from the server's side.

Two rules (alltick-api.md §6): requests on one connection at least
:data:`~alltick_frames.core.plans.WS_REQUEST_SPACING` (1 s) apart, and subscriptions on different
connections of a token at least :data:`~alltick_frames.core.plans.WS_SUBSCRIBE_SPACING` (3 s)
apart. A request breaking either is answered ``ret`` 606 and its socket closed.

The server stamps a request when it arrives, which the client cannot see; it can see the
answer, which leaves after the stamp. So each request waits for its answer, and the next
one is timed from when that answer arrived (plus a small ``guard``): however long either
frame spent on the way, the server's two stamps are at least the spacing apart. Heartbeats
take the same per-connection spacing (harmless if the server exempts them, as alltick-api.md
§8 #17 assumes, and safe if it does not) but never the cross-connection rule: with ten
sockets each beating every 10 s that rule could not be kept.

Subscriptions run one at a time under one lock per stream, so a socket that subscribes both
kinds does so back to back (1 s apart) before the next socket's turn.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from contextlib import asynccontextmanager
from typing import TypeVar

from alltick_frames.core.plans import WS_REQUEST_SPACING, WS_SUBSCRIBE_SPACING
from alltick_frames.live.clock import Clock

T = TypeVar("T")

#: Seconds added to every spacing, against clock granularity on either side.
GUARD = 0.1


class Pacer:
    """The request times of one stream's sockets (``key``: one socket's connection)."""

    def __init__(self, clock: Clock, *, guard: float = GUARD) -> None:
        self.clock = clock
        self.guard = guard
        self._last: dict[Hashable, float] = {}
        self._last_subscription: dict[Hashable, float] = {}
        self._locks: dict[Hashable, asyncio.Lock] = {}
        self._subscribing = asyncio.Lock()

    def ready_at(self, key: Hashable, *, subscription: bool) -> float:
        """The earliest moment a request on ``key`` keeps both rules."""
        ready = self._last.get(key, -math.inf) + WS_REQUEST_SPACING
        if subscription:
            others = (t for k, t in self._last_subscription.items() if k != key)
            ready = max(ready, max(others, default=-math.inf) + WS_SUBSCRIBE_SPACING)
        return ready + self.guard

    @asynccontextmanager
    async def subscribing(self) -> AsyncIterator[None]:
        """Hold the stream's turn to subscribe (around one socket's subscriptions)."""
        async with self._subscribing:
            yield

    async def request(
        self, key: Hashable, exchange: Callable[[], Awaitable[T]], *, subscription: bool
    ) -> T:
        """Run ``exchange`` (send a request, await its answer) once the rules allow it.

        A subscription must be made inside :meth:`subscribing`.
        """
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            while (ready := self.ready_at(key, subscription=subscription)) > self.clock.now():
                await self.clock.sleep_until(ready)
            try:
                return await exchange()
            finally:
                now = self.clock.now()
                self._last[key] = now
                if subscription:
                    # Older ones no longer hold anything back (and a long stream of
                    # reconnects would pile them up).
                    recent = {
                        k: t
                        for k, t in self._last_subscription.items()
                        if now - t < WS_SUBSCRIBE_SPACING + self.guard
                    }
                    self._last_subscription = recent | {key: now}

    def forget(self, key: Hashable) -> None:
        """Drop a closed connection's per-connection times (its subscription time stays: the
        next connection's first subscription must still wait for it)."""
        self._last.pop(key, None)
        self._locks.pop(key, None)
