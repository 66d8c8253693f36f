"""A call's departure at its budget slot: on time, moved in the ledger, or paced again.

The runner (:mod:`~alltick_frames.run.runner`) hands each call a :class:`Departure`; the
transport calls it once the connection is ready, just before the request is written.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from alltick_frames.budget import Budget

log = logging.getLogger("alltick_frames")

#: Seconds a call may leave after its budget slot with the ledger left as it is: the timer's
#: own slack, which the guard covers. A call later than this is moved in the ledger to when it
#: really leaves (see :class:`Departure`).
MIN_LATENESS = 0.002
#: Seconds late past which a call takes a new slot instead (at least this, and at least half
#: the budget's guard): it was held by a stall (a blocked loop, a new connection), not by the
#: timer, and the calls the stall released would otherwise leave in one burst.
STALL = 0.05
#: New slots a call may take after missing one, before it goes with whatever slot it has.
MAX_REPACES = 3


@dataclass(eq=False)
class Departure:
    """Makes one call leave at its budget slot.

    The budget paces calls by the slots it hands out, trusting each call to reach the server
    at its slot (within the budget's guard). A call that leaves late (its task woke late
    because the event loop was busy decoding, or its connection took a TCP or TLS handshake
    to open) would leave the ledger believing it went earlier; the call one window behind it
    could then reach the server less than a window after it, and get a 429. The transport
    calls this object once the connection is ready, just before the request is written (and
    awaits what it returns, if anything; a call whose slot holds leaves at once):

    * a call late by up to :data:`MIN_LATENESS` goes (the guard covers the timer's slack);
    * a call later than that, up to :data:`STALL` or half the guard, goes and is moved in the
      ledger to the instant it leaves (:meth:`~alltick_frames.budget.Budget.depart`), so its
      lateness is not taken out of the guard; if the move would break a window (calls were
      reserved since), it takes a new slot instead;
    * a call later still, or held back since by a block (another call's 429 or 605), gives
      its slot back and takes a new one;
    * once it has gone, a call whose write was itself held up past half the guard (the
      process preempted, the GIL held elsewhere, between this check and the socket's write)
      is moved to the first moment the loop runs again, which comes after the write: a bound
      from above on when it left (:meth:`confirm`).

    That wait is the budget's, not the network's: the transport does not count it against
    the request's timeout.

    aiohttp sends a GET again by itself when a kept-alive connection drops it (and would
    follow a redirect): the server sees two calls. Such a resend takes a slot of its own and
    is reported to ``on_resend``, so that the ledger and the stats count every request sent.
    """

    budget: Budget
    endpoint: str
    slot: float = 0.0
    #: New slots taken after missing one (at most :data:`MAX_REPACES`, then it goes as is).
    repaced: int = 0
    #: Requests that left on this call's behalf (more than one if aiohttp sent it again).
    sent: int = 0
    #: When the last of them left (the budget's clock), for its latency.
    sent_at: float = 0.0
    on_resend: Callable[[], None] | None = None
    #: The budget's count of rejections when the slot was taken: if it moved, look for blocks.
    _rejected: int = 0

    async def acquire(self) -> None:
        """Wait for a slot (raises :class:`~alltick_frames.core.errors.DailyCapReached`)."""
        self._rejected = self.budget.rejected
        self.slot = await self.budget.acquire(self.endpoint)

    def _blocked(self) -> bool:
        budget = self.budget
        return budget.rejected != self._rejected and budget.blocked(self.endpoint, self.slot)

    def __call__(self) -> Awaitable[None] | None:
        """Leave now (None) if the slot holds, else what to await before leaving."""
        if not self.sent:
            budget = self.budget
            late = budget.clock.now() - self.slot
            if (late <= MIN_LATENESS or self.repaced >= MAX_REPACES) and not self._blocked():
                self._left()
                return None
        return self._leave()

    def _left(self) -> None:
        self.sent += 1
        self.sent_at = self.budget.clock.now()
        # The write follows this hook without yielding to the loop: whatever runs next on the
        # loop runs after it.
        asyncio.get_running_loop().call_soon(self.confirm)

    async def _leave(self) -> None:
        if self.sent:
            log.debug("%s request sent again by aiohttp; taking a slot for it", self.endpoint)
            await self.acquire()
            self.repaced = 0
            if self.on_resend is not None:
                self.on_resend()
        budget = self.budget
        tolerance = max(budget.guard / 2, STALL)
        while True:
            now = budget.clock.now()
            late = now - self.slot
            if late > tolerance and self.repaced < MAX_REPACES:
                log.debug("%s slot missed by %.3fs; taking a new one", self.endpoint, late)
            elif self._blocked():
                pass
            elif late <= MIN_LATENESS or self.repaced >= MAX_REPACES:
                break
            elif budget.depart(self.endpoint, self.slot, now):
                self.slot = now
                break
            budget.release(self.endpoint, self.slot)
            await self.acquire()
            self.repaced += 1
        self._left()

    def answered(self) -> None:
        """The call's answer has come (its headers are in): the server dated it by now.
        Tells the budget (:meth:`~alltick_frames.budget.Budget.answered`), which then counts
        the call's own latency, not the whole guard, before its window frees."""
        if self.sent:
            self.budget.answered(self.endpoint, self.slot, self.budget.clock.now())

    def confirm(self) -> None:
        """Move the call to now if it was written more than half the guard after
        :attr:`sent_at` (see the class docstring); called once it has gone."""
        budget = self.budget
        now = budget.clock.now()
        if now - self.sent_at > max(budget.guard / 2, MIN_LATENESS):
            log.debug("%s written %.3fs after its departure", self.endpoint, now - self.sent_at)
            if budget.depart(self.endpoint, self.slot, now, sent=True):
                self.slot = now
