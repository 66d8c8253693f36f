"""One call budget per token: every window of the plan at once, shared by tasks and processes.

AllTick meters calls per token against several windows at once (alltick-api.md §4, §8 #4-#9).
A call to endpoint ``E`` under plan ``P`` must fit all of these:

=================  ================================  ==========================================
window key         limit                             which calls count
=================  ================================  ==========================================
``endpoint:E``     ``P.rate_for(E)``                 calls to ``E`` (each suspension exchange,
                                                     e.g. ``suspension/sse``, on its own)
``all-endpoints``  ``P.all_endpoints`` (may be None)  every call except the suspension service
``per-minute``     ``P.per_minute`` per 60 s         every call
``day:YYYY-MM-DD`` ``P.per_day`` per calendar day    every call; the day starts 00:00 UTC+8
=================  ================================  ==========================================

The first three are *sliding*: the server counts a call against a window of ``S`` seconds
while it lies in ``(now - S, now]``. So with a limit of ``L`` per ``S``, the ``(k+L)``-th call
may start ``S`` seconds after the ``k``-th. The budget adds a **guard** so that network
jitter cannot make two of our calls look closer to the server than they were: the
``(k+L)``-th call starts at least ``S + guard`` after the ``k``-th. The guard is learned from
the calls' latencies and the server's rejections, within 10 ms and 0.5 s
(:mod:`~alltick_frames.budget.guard`), unless ``guard=`` fixes it. Once a call is answered,
its answer bounds its arrival (the server dated it before answering): a call answered sooner
than the guard counts for the budget that sent it as arriving by its answer
(:meth:`Budget.answered`), so its margin is its own latency. A call that starts less
than the widest guard before midnight UTC+8 counts against both days, for the same reason.
Counting the suspension service in the per-minute and per-day caps is the conservative reading
(it is a separate service and may not count at all); it costs at most one call a minute.

How it works: a **ledger** of reservations
    :meth:`Budget.acquire` atomically (1) finds the earliest moment ``t >= now`` at which every
    window has room, given every call already recorded, past *and* reserved for the future,
    (2) records a call at ``t``, then (3) sleeps until ``t``. Step 1 is the pure function
    :func:`find_slot` (built on :func:`earliest_slot`), testable without any clock. Because
    a reservation is written before anyone sleeps, 50 asyncio tasks or 4 processes that ask
    at the same instant get 50 distinct, valid slots, with no queue and no polling, and the
    plan's full rate is used: a slot may even be filled *before* a later reservation of
    another endpoint when every window allows it.

    Times inside the ledger are integer microseconds ("ticks"), so the arithmetic is exact:
    a call placed exactly one window after another is never judged a hair too close, which in
    floating point would push a back-filled slot a whole window later. Public methods speak
    float epoch seconds.

    Three ledgers share that algorithm: :class:`MemoryLedger` (one process; the default),
    :class:`DiskLedger` (a ``diskcache.Cache`` whose SQLite ``BEGIN IMMEDIATE`` transaction
    makes read-compute-write atomic across processes) and :class:`RedisLedger` (an optimistic
    read and a compare-and-set in Redis, on the server's clock, for every host on the token:
    :mod:`~alltick_frames.budget.shared`). Shared ledgers are keyed by
    :func:`token_fingerprint`, a salted hash, never by the token.

Feedback from the server: :meth:`Budget.on_rejected` (a 429 or 605 came back despite pacing:
arrivals spread wider than the guard, another client on the token, clock skew) widens a
learned guard when our own pace explains it, blocks only the windows the answer can come
from and only as long as the ledger (or, for calls it never saw, a doubling wait) says,
and concludes the daily cap is spent only from the ledger's count or from 605s persisting
minute after minute; that conclusion ends with the UTC+8 day and is probed by one call a
minute. When the day's cap is used up,
``acquire`` raises :class:`~alltick_frames.core.errors.DailyCapReached` (with ``resets_at``, the
epoch of the next 00:00 UTC+8) unless the budget was built with ``wait_for_reset=True``.

For dry runs: :func:`theoretical_minimum` (an analytic lower bound) and
:func:`estimate_schedule` (the real algorithm on a :class:`~alltick_frames.core.clock.FakeClock`).

>>> budget = Budget("basic", clock=FakeClock(start=0.0), guard=0.025)
>>> [budget.reserve("kline") for _ in range(3)]    # reserve() = acquire() without the sleep
[0.0, 1.025, 2.05]
"""

from alltick_frames.budget.estimate import estimate_schedule, theoretical_minimum
from alltick_frames.budget.ledger import Ledger
from alltick_frames.budget.ledger_disk import DiskLedger
from alltick_frames.budget.ledger_memory import MemoryLedger
from alltick_frames.budget.ledger_redis import RedisLedger
from alltick_frames.budget.pacing import Budget, token_fingerprint
from alltick_frames.budget.slots import (
    ALL_ENDPOINTS_KEY,
    DAILY_CAP_KEY,
    DEFAULT_GUARD,
    PER_MINUTE_KEY,
    TICKS_PER_SECOND,
    LedgerState,
    Rule,
    Window,
    day_index,
    day_key,
    day_start,
    earliest_slot,
    find_slot,
    from_ticks,
    rules_for,
    to_ticks,
    windows_for,
)
from alltick_frames.core.errors import DailyCapReached

__all__ = [
    "ALL_ENDPOINTS_KEY",
    "DAILY_CAP_KEY",
    "DEFAULT_GUARD",
    "PER_MINUTE_KEY",
    "TICKS_PER_SECOND",
    "Budget",
    "DailyCapReached",
    "DiskLedger",
    "Ledger",
    "LedgerState",
    "MemoryLedger",
    "RedisLedger",
    "Rule",
    "Window",
    "day_index",
    "day_key",
    "day_start",
    "earliest_slot",
    "estimate_schedule",
    "find_slot",
    "from_ticks",
    "rules_for",
    "theoretical_minimum",
    "to_ticks",
    "token_fingerprint",
    "windows_for",
]
