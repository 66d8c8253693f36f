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
may start ``S`` seconds after the ``k``-th. The budget adds a small **guard** (default 25 ms)
so that network jitter cannot make two of our calls look closer to the server than they
were: the ``(k+L)``-th call starts at least ``S + guard`` after the ``k``-th. A call that
starts less than ``guard`` before midnight UTC+8 counts against both days, for the same reason.
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

    Two ledgers share that algorithm: :class:`MemoryLedger` (one process; the default) and
    :class:`DiskLedger` (a ``diskcache.Cache`` whose SQLite ``BEGIN IMMEDIATE`` transaction
    makes read-compute-write atomic across processes). The disk ledger is keyed by
    :func:`token_fingerprint`, a salted hash, never by the token.

Feedback from the server: :meth:`Budget.on_rejected` (a 429 or 605 came back despite pacing:
another client on the token, clock skew) blocks the affected windows for a full window and,
after repeated 605s, concludes the daily cap is spent. When the day's cap is used up,
``acquire`` raises :class:`~alltick_frames.core.errors.DailyCapReached` (with ``resets_at``, the
epoch of the next 00:00 UTC+8) unless the budget was built with ``wait_for_reset=True``.

For dry runs: :func:`theoretical_minimum` (an analytic lower bound) and
:func:`estimate_schedule` (the real algorithm on a :class:`~alltick_frames.core.clock.FakeClock`).

>>> budget = Budget("basic", clock=FakeClock(start=0.0))
>>> [budget.reserve("kline") for _ in range(3)]    # reserve() = acquire() without the sleep
[0.0, 1.025, 2.05]
"""

from __future__ import annotations

import array
import hashlib
import math
import threading
import time
import weakref
from abc import ABC, abstractmethod
from bisect import bisect_left, bisect_right, insort
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from alltick_frames.core.clock import Clock, FakeClock, SystemClock
from alltick_frames.core.errors import DailyCapReached
from alltick_frames.core.plans import DAY_RESET_UTC_OFFSET, SUSPENSION, Plan, get_plan

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

T = TypeVar("T")

#: Seconds added to every sliding window so jitter cannot squeeze two calls together.
DEFAULT_GUARD = 0.025
#: Window key of the all-endpoints rate (and of the block a 429 puts on every endpoint).
ALL_ENDPOINTS_KEY = "all-endpoints"
#: Window key of the per-minute cap (and of the block a 605 puts on every call).
PER_MINUTE_KEY = "per-minute"
#: Block key set when repeated 605s say the day's cap is spent; its value is the reset time.
DAILY_CAP_KEY = "daily-cap"
MINUTE = 60.0
DAY = 86_400.0
#: Ledger times are integer ticks of one microsecond.
TICKS_PER_SECOND = 1_000_000
_DAY_TICKS = 86_400 * TICKS_PER_SECOND
_OFFSET_TICKS = DAY_RESET_UTC_OFFSET * TICKS_PER_SECOND
_EPOCH = date(1970, 1, 1)


def to_ticks(seconds: float) -> int:
    """Seconds (an epoch time or a duration) as integer microsecond ticks."""
    return round(seconds * TICKS_PER_SECOND)


def from_ticks(ticks: int) -> float:
    """Integer microsecond ticks as float seconds."""
    return ticks / TICKS_PER_SECOND


def endpoint_key(endpoint: str) -> str:
    """Window key of ``endpoint``'s own rate, e.g. ``"endpoint:kline"``."""
    return f"endpoint:{endpoint}"


def _is_suspension(endpoint: str) -> bool:
    return endpoint.startswith(SUSPENSION)


# --------------------------------------------------------------------------- calendar days


def day_index(t: float) -> int:
    """The UTC+8 calendar day of epoch time ``t``, as days since 1970-01-01."""
    return math.floor((t + DAY_RESET_UTC_OFFSET) / DAY)


def day_start(index: int) -> float:
    """Epoch seconds of 00:00 UTC+8 on day ``index`` (see :func:`day_index`)."""
    return index * DAY - DAY_RESET_UTC_OFFSET


def day_key(index: int) -> str:
    """The ledger key of day ``index``: its UTC+8 date, ``"day:2026-05-01"``."""
    return f"day:{(_EPOCH + timedelta(days=index)).isoformat()}"


def _days_of(t: int, guard: int) -> tuple[int, ...]:
    """The days a call starting at tick ``t`` counts against (two within ``guard`` of 00:00)."""
    first, last = (t + _OFFSET_TICKS) // _DAY_TICKS, (t + guard + _OFFSET_TICKS) // _DAY_TICKS
    return (first,) if first == last else (first, last)


def _day_start_ticks(index: int) -> int:
    return index * _DAY_TICKS - _OFFSET_TICKS


# --------------------------------------------------------------------------- windows


@dataclass(frozen=True, slots=True)
class Window:
    """A sliding window: at most ``calls`` calls in any ``per`` seconds, stored under ``key``."""

    key: str
    calls: int
    per: float


def windows_for(plan: Plan, endpoint: str) -> tuple[Window, ...]:
    """The sliding windows a call to ``endpoint`` counts against under ``plan``.

    >>> [w.key for w in windows_for(get_plan("basic"), "kline")]
    ['endpoint:kline', 'all-endpoints', 'per-minute']
    >>> [w.key for w in windows_for(get_plan("basic"), "suspension/sse")]
    ['endpoint:suspension/sse', 'per-minute']
    """
    try:
        own = plan.rate_for(endpoint)
    except KeyError:
        known = ", ".join([*plan.endpoint_rates, f"{SUSPENSION}/<exchange>"])
        raise ValueError(f"unknown endpoint {endpoint!r}; known: {known}") from None
    windows = [Window(endpoint_key(endpoint), own.calls, own.per)]
    if plan.all_endpoints is not None and not _is_suspension(endpoint):
        windows.append(Window(ALL_ENDPOINTS_KEY, plan.all_endpoints.calls, plan.all_endpoints.per))
    windows.append(Window(PER_MINUTE_KEY, plan.per_minute, MINUTE))
    return tuple(windows)


#: A window as the core uses it: ``(key, calls, span)``, span in ticks with the guard added.
Rule = tuple[str, int, int]


#: Suffix of the ledger key that spaces the calls of a rate window evenly (see rules_for).
SPACING_SUFFIX = ":spacing"


def rules_for(
    plan: Plan, endpoint: str, guard: float = DEFAULT_GUARD, *, smooth: bool = True
) -> tuple[Rule, ...]:
    """:func:`windows_for` in the core's units: ``(key, calls, ticks of per + guard)``.

    With ``smooth``, each rate window of L calls per S seconds (per endpoint, all endpoints)
    also spaces consecutive calls S / L apart, as a leaky bucket does, instead of letting a
    whole window's calls leave at one instant. The long-run rate is the same (L calls per
    S + guard), but a server that admits a burst one request at a time would date its last
    calls late and then find the next window crowded; evenly spaced calls never queue.
    """
    rules = []
    for w in windows_for(plan, endpoint):
        rules.append((w.key, w.calls, to_ticks(w.per + guard)))
        if smooth and w.calls > 1 and w.key != PER_MINUTE_KEY:
            rules.append((w.key + SPACING_SUFFIX, 1, to_ticks(w.per / w.calls)))
    return tuple(rules)


def _block_keys(endpoint: str) -> tuple[str, ...]:
    """Keys whose blocks (set by :meth:`Budget.on_rejected`) hold back a call to ``endpoint``."""
    if _is_suspension(endpoint):
        return (endpoint_key(endpoint), PER_MINUTE_KEY)
    return (endpoint_key(endpoint), ALL_ENDPOINTS_KEY, PER_MINUTE_KEY)


# --------------------------------------------------------------------------- the pure core


def _earliest_in_window(times: Sequence[int], calls: int, span: int, t: int) -> int:
    """Earliest ``t' >= t`` that one more call can take without breaking one window.

    ``times`` is sorted. Every run of ``calls`` consecutive recorded calls ``lo..hi`` that
    spans less than ``span`` forbids the open interval ``(hi - span, lo + span)``: a call in
    there would make ``calls + 1`` calls within less than ``span``. (A run spanning ``span``
    or more forbids nothing: a new call before, inside or after it stretches the group of
    ``calls + 1`` to at least ``span``.) Both ends of those intervals grow with the run's
    index, so one forward walk from the first interval still open at ``t`` finds the answer;
    in steady state that walk is one or two steps, whatever the window's length.
    """
    last = len(times) - calls
    j = bisect_right(times, t - span)  # runs starting before j forbid nothing after t
    while j <= last:
        hi = times[j + calls - 1]
        if hi - span >= t:
            break  # this and every later interval starts at or after t
        lo = times[j]
        if hi - lo < span and lo + span > t:
            t = lo + span
        j += 1
    return t


def earliest_slot(now: int, windows: Iterable[tuple[Sequence[int], int, int]]) -> int:
    """The earliest tick ``t >= now`` at which one more call fits every sliding window.

    ``windows`` holds one ``(times, calls, span)`` per window: the sorted ticks of the calls
    already recorded in it (future reservations included), and its limit: ``calls`` calls in
    any ``span`` ticks (the window plus the guard). The answer keeps every ``calls + 1``
    consecutive times at least ``span`` apart in every window, and nothing earlier does.
    Integers keep it exact; any unit works.

    >>> earliest_slot(100, [([95], 1, 10)])              # 1 per 10 ticks, last call at 95
    105
    >>> earliest_slot(100, [([95], 1, 10), ([90, 98], 2, 30)])
    120
    """
    spans = windows if isinstance(windows, list) else list(windows)
    t = now
    moved = True
    while moved:  # each window moves t to its own earliest; stop when all agree
        moved = False
        for times, calls, span in spans:
            if len(times) >= calls:
                later = _earliest_in_window(times, calls, span, t)
                if later > t:
                    t, moved = later, True
    return t


_RECORD_VERSION = 2


@dataclass(slots=True)
class LedgerState:
    """Everything a ledger stores for one token.

    * ``calls``: window key -> sorted start ticks of recorded calls (past and reserved),
      pruned once older than the window plus guard;
    * ``blocked``: block key -> tick before which nothing counted by that key may start
      (set by :meth:`Budget.on_rejected`; ``daily-cap`` holds the reset time);
    * ``days``: ``day:YYYY-MM-DD`` (UTC+8) -> number of calls recorded on that day.
    """

    calls: dict[str, list[int]] = field(default_factory=dict)
    blocked: dict[str, int] = field(default_factory=dict)
    days: dict[str, int] = field(default_factory=dict)

    def to_record(self) -> dict[str, Any]:
        """A plain-data form for storage (ticks as packed int64 bytes)."""
        return {
            "v": _RECORD_VERSION,
            "calls": {k: array.array("q", v).tobytes() for k, v in self.calls.items()},
            "blocked": dict(self.blocked),
            "days": dict(self.days),
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any] | None) -> LedgerState:
        """The inverse of :meth:`to_record`; ``None`` (nothing stored yet) is an empty state."""
        if not record or record.get("v") != _RECORD_VERSION:
            return cls()  # nothing stored, or an older layout: start afresh
        calls = {}
        for key, raw in record["calls"].items():
            times = array.array("q")
            times.frombytes(raw)
            calls[key] = times.tolist()
        return cls(calls, dict(record["blocked"]), dict(record["days"]))


def _daily_cap_error(endpoint: str, resets_at: float) -> DailyCapReached:
    when = datetime.fromtimestamp(resets_at, UTC).isoformat(timespec="seconds")
    err = DailyCapReached(
        f"the plan's daily call cap is used up; it resets at {when} (00:00 UTC+8)",
        endpoint=endpoint,
    )
    err.resets_at = resets_at  # type: ignore[attr-defined]
    return err


def find_slot(
    state: LedgerState,
    endpoint: str,
    rules: Sequence[Rule],
    now: int,
    *,
    per_day: int,
    guard: int,
    wait_for_reset: bool = False,
) -> int:
    """The earliest tick ``t >= now`` for a call to ``endpoint``, or raise DailyCapReached.

    Pure: it reads ``state`` and changes nothing. The slot fits every sliding window in
    ``rules`` (see :func:`rules_for` and :func:`earliest_slot`), waits out every block on
    ``endpoint``'s keys, and lands on a UTC+8 day (two days when it starts within ``guard``
    ticks of 00:00) with fewer than ``per_day`` calls recorded. If the day is full, or a
    ``daily-cap`` block says so, it raises :class:`~alltick_frames.core.errors.DailyCapReached`
    with ``resets_at`` set to the next 00:00 UTC+8 (epoch seconds), or, with
    ``wait_for_reset``, looks for a slot from that moment on.
    """
    blocked = state.blocked
    start = max([now, *(blocked.get(k, now) for k in _block_keys(endpoint))])
    spent_until = blocked.get(DAILY_CAP_KEY, now)
    empty: list[int] = []
    sliding = [(state.calls.get(key, empty), calls, span) for key, calls, span in rules]
    while True:
        if start < spent_until:
            if not wait_for_reset:
                raise _daily_cap_error(endpoint, from_ticks(spent_until))
            start = spent_until
        t = earliest_slot(start, sliding)
        full = [d for d in _days_of(t, guard) if state.days.get(day_key(d), 0) >= per_day]
        if not full:
            return t
        resets_at = _day_start_ticks(max(full) + 1)
        if not wait_for_reset:
            raise _daily_cap_error(endpoint, from_ticks(resets_at))
        start = resets_at


def _record(state: LedgerState, rules: Sequence[Rule], t: int, guard: int) -> None:
    for key, _, _ in rules:
        insort(state.calls.setdefault(key, []), t)
    for d in _days_of(t, guard):
        key = day_key(d)
        state.days[key] = state.days.get(key, 0) + 1


def _unrecord(state: LedgerState, rules: Sequence[Rule], t: int, guard: int) -> None:
    for key, _, _ in rules:
        times = state.calls.get(key, [])
        i = bisect_left(times, t)
        if i < len(times) and times[i] == t:
            del times[i]
    for d in _days_of(t, guard):
        key = day_key(d)
        if state.days.get(key, 0) > 0:
            state.days[key] -= 1


def _prune(state: LedgerState, rules: Sequence[Rule], now: int) -> None:
    # A call at or before now - span can no longer forbid any t >= now.
    for key, _, span in rules:
        times = state.calls.get(key)
        if times:
            cut = bisect_right(times, now - span)
            if cut:
                del times[:cut]
    if len(state.days) > 2:
        oldest = day_key((now + _OFFSET_TICKS) // _DAY_TICKS - 1)
        for key in [k for k in state.days if k < oldest]:
            del state.days[key]


# --------------------------------------------------------------------------- ledgers


class Ledger(ABC):
    """Where reservations live. A ledger runs a function on its :class:`LedgerState` atomically.

    Implementations: :class:`MemoryLedger` (this process) and :class:`DiskLedger` (every
    process using the same directory). Both are safe for many asyncio tasks: ``update`` is
    synchronous, so no other task runs in the middle of it.
    """

    @abstractmethod
    def update(self, fn: Callable[[LedgerState], T]) -> T:
        """Run ``fn`` on the state with exclusive access and keep its changes.

        If ``fn`` raises, a disk ledger rolls back while a memory ledger keeps whatever was
        changed before the raise (copying the state to undo would cost a copy per call), so
        ``fn`` must raise before it changes anything that matters. The budget's functions
        only prune expired entries before they can raise.
        """

    @abstractmethod
    def read(self, fn: Callable[[LedgerState], T]) -> T:
        """Run ``fn`` on a consistent view of the state; ``fn`` must not change it."""

    def close(self) -> None:  # noqa: B027 (a no-op is the right default)
        """Release resources (files, connections)."""


class MemoryLedger(Ledger):
    """A ledger in this process's memory (guarded by a lock, so threads may share it too)."""

    def __init__(self) -> None:
        self.state = LedgerState()
        self._lock = threading.RLock()

    @classmethod
    def shared(cls, key: str) -> MemoryLedger:
        """The one ledger of this process for ``key`` (a token fingerprint), while in use.

        Budgets built by :meth:`Budget.for_token` for the same token in one process share
        it, so two clients on one token stay inside one budget. It lives as long as some
        budget holds it.
        """
        with _SHARED_LOCK:
            ledger = _SHARED.get(key)
            if ledger is None:
                ledger = _SHARED[key] = cls()
            return ledger

    def update(self, fn: Callable[[LedgerState], T]) -> T:
        with self._lock:
            return fn(self.state)

    def read(self, fn: Callable[[LedgerState], T]) -> T:
        with self._lock:
            return fn(self.state)

    def __repr__(self) -> str:
        return f"MemoryLedger(windows={len(self.state.calls)})"


_SHARED: weakref.WeakValueDictionary[str, MemoryLedger] = weakref.WeakValueDictionary()
_SHARED_LOCK = threading.Lock()


class DiskLedger(Ledger):
    """A ledger in a ``diskcache.Cache`` directory, shared by every process that opens it.

    Each update is one SQLite ``BEGIN IMMEDIATE`` transaction (``Cache.transact``): read the
    state, compute, write it back, commit; a second process waits for the first to commit,
    so two processes can never take the same slot. The state is one record under
    ``budget/<key>``, where ``key`` is a :func:`token_fingerprint`; times are packed float64
    and old ones are pruned on every update, so a record stays a few kilobytes (about 8 bytes
    per call in the longest window) and an update costs well under a millisecond.
    """

    def __init__(self, directory: str | Path, key: str) -> None:
        import diskcache

        if not key or "/" in key:
            raise ValueError(f"a ledger key must be a non-empty fingerprint, got {key!r}")
        self.directory = Path(directory)
        self.key = key
        self._record_key = f"budget/{key}"
        self._cache = diskcache.Cache(
            str(self.directory),
            eviction_policy="none",  # never cull a live ledger for space
            disk_min_file_size=1 << 22,  # keep the record inside SQLite, not a side file
            statistics=False,
            tag_index=False,
        )

    def update(self, fn: Callable[[LedgerState], T]) -> T:
        cache = self._cache
        with cache.transact(retry=True):
            state = LedgerState.from_record(cache.get(self._record_key))
            result = fn(state)
            cache.set(self._record_key, state.to_record())
        return result

    def read(self, fn: Callable[[LedgerState], T]) -> T:
        return fn(LedgerState.from_record(self._cache.get(self._record_key)))

    def close(self) -> None:
        self._cache.close()

    def __repr__(self) -> str:
        return f"DiskLedger({str(self.directory)!r}, key={self.key!r})"


_FINGERPRINT_SALT = b"alltick-frames/budget/v1\x00"


def token_fingerprint(token: str) -> str:
    """A stable, non-reversible name for ``token``: 16 hex digits of a salted SHA-256.

    Budgets for one token agree on it across processes and runs; the token itself is
    never stored, logged or used as a key.
    """
    return hashlib.sha256(_FINGERPRINT_SALT + token.encode("utf-8")).hexdigest()[:16]


# --------------------------------------------------------------------------- the budget


class Budget:
    """Paces calls so that every window of ``plan`` holds, for all tasks and processes sharing
    its ledger.

    ``clock`` defaults to :class:`~alltick_frames.core.clock.SystemClock`; ``ledger`` to a fresh
    :class:`MemoryLedger` (use :meth:`for_token` to share one per token, or a
    :class:`DiskLedger` across processes). ``guard`` (seconds, default 0.025) widens every
    sliding window. ``smooth`` (default) spaces a rate window's calls evenly rather than
    letting them leave in one burst (see :func:`rules_for`). With ``wait_for_reset`` a full
    day makes :meth:`acquire` wait for the reset instead of raising.
    ``daily_cap_after_605s`` is how many 605s in a row, each after a full quiet minute, it
    takes to conclude that the daily cap is spent.

    Every process sharing a ledger should use the same plan, guard and smoothing.
    """

    def __init__(
        self,
        plan: Plan | str,
        *,
        clock: Clock | None = None,
        ledger: Ledger | None = None,
        guard: float = DEFAULT_GUARD,
        smooth: bool = True,
        wait_for_reset: bool = False,
        daily_cap_after_605s: int = 3,
    ) -> None:
        if guard < 0:
            raise ValueError(f"guard must be >= 0 seconds, got {guard}")
        if daily_cap_after_605s < 1:
            raise ValueError("daily_cap_after_605s must be >= 1")
        self.plan = get_plan(plan)
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.ledger: Ledger = ledger if ledger is not None else MemoryLedger()
        self.guard = float(guard)
        self.smooth = smooth
        self.wait_for_reset = wait_for_reset
        self.daily_cap_after_605s = daily_cap_after_605s
        self._guard = to_ticks(guard)
        self._rules: dict[str, tuple[Rule, ...]] = {}
        # The 605 streak is this process's own observation; its effects (blocks) are shared.
        self._strikes = 0
        self._strike_until = 0

    @classmethod
    def for_token(
        cls,
        plan: Plan | str,
        token: str,
        cache_dir: str | Path | None = None,
        **options: Any,
    ) -> Budget:
        """The budget of ``token``: on disk under ``cache_dir/budget`` (shared by every
        process using that directory), else in this process's memory (shared by every
        budget built here for the same token). Only the :func:`token_fingerprint` is kept.
        ``options`` are passed to :class:`Budget`.
        """
        fingerprint = token_fingerprint(token)
        if cache_dir is not None:
            ledger: Ledger = DiskLedger(Path(cache_dir) / "budget", fingerprint)
        else:
            ledger = MemoryLedger.shared(fingerprint)
        return cls(plan, ledger=ledger, **options)

    def windows(self, endpoint: str) -> tuple[Window, ...]:
        """The sliding windows a call to ``endpoint`` counts against (see :func:`windows_for`)."""
        return windows_for(self.plan, endpoint)

    def _rules_of(self, endpoint: str) -> tuple[Rule, ...]:
        rules = self._rules.get(endpoint)
        if rules is None:
            rules = self._rules[endpoint] = rules_for(
                self.plan, endpoint, self.guard, smooth=self.smooth
            )
        return rules

    def _now(self) -> int:
        return to_ticks(self.clock.now())

    # -- reserving ---------------------------------------------------------------------------

    def _find(self, endpoint: str, state: LedgerState, now: int) -> int:
        return find_slot(
            state,
            endpoint,
            self._rules_of(endpoint),
            now,
            per_day=self.plan.per_day,
            guard=self._guard,
            wait_for_reset=self.wait_for_reset,
        )

    def _reserve_in(self, endpoint: str, state: LedgerState) -> tuple[int, int]:
        rules = self._rules_of(endpoint)
        now = self._now()  # read inside the transaction, so ledger time only moves on
        _prune(state, rules, now)
        t = self._find(endpoint, state, now)
        _record(state, rules, t, self._guard)
        return t, now

    def reserve(self, endpoint: str) -> float:
        """Record a call to ``endpoint`` at the earliest slot and return it, without waiting.

        :meth:`acquire` is this plus sleeping until the slot. The caller must start the call
        at the returned time, or :meth:`release` it. Raises
        :class:`~alltick_frames.core.errors.DailyCapReached` when the day is full (unless
        ``wait_for_reset``) and ValueError for an unknown endpoint.
        """
        return from_ticks(self.ledger.update(partial(self._reserve_in, endpoint))[0])

    def next_slot(self, endpoint: str) -> float:
        """When a call to ``endpoint`` could start if reserved now; reserves nothing."""
        now = self._now()
        return from_ticks(self.ledger.read(lambda state: self._find(endpoint, state, now)))

    def release(self, endpoint: str, slot: float) -> None:
        """Give back a reserved ``slot`` that will not be used (the call was never sent)."""
        self._release(endpoint, to_ticks(slot))

    def _release(self, endpoint: str, slot: int) -> None:
        rules = self._rules_of(endpoint)
        self.ledger.update(lambda state: _unrecord(state, rules, slot, self._guard))

    async def acquire(self, endpoint: str) -> float:
        """Wait until a call to ``endpoint`` may start, and return its slot (epoch seconds).

        The slot is reserved before sleeping, so concurrent callers never collide. If the
        task is cancelled while waiting, the slot is given back. If a rejection
        (:meth:`on_rejected`) blocks the windows while we sleep, the slot is given back and a
        new one is taken behind the block. Raises
        :class:`~alltick_frames.core.errors.DailyCapReached` (``resets_at`` = next 00:00 UTC+8)
        when the day's cap is used up, unless the budget waits for the reset.
        """
        keys = (*_block_keys(endpoint), DAILY_CAP_KEY)
        while True:
            slot, reserved_at = self.ledger.update(partial(self._reserve_in, endpoint))
            if slot <= reserved_at:
                return from_ticks(slot)
            try:
                await self.clock.sleep_until(from_ticks(slot))
            except BaseException:
                self._release(endpoint, slot)
                raise

            def blocked_past(state: LedgerState, slot: int = slot) -> bool:
                return any(state.blocked.get(k, slot) > slot for k in keys)

            if not self.ledger.read(blocked_past):
                return from_ticks(slot)
            self._release(endpoint, slot)

    # -- server feedback ---------------------------------------------------------------------

    def on_rejected(self, endpoint: str, ret: int) -> None:
        """Tell the budget that a call to ``endpoint`` got ``ret`` 429 or 605 despite pacing.

        * 429 (a per-second or per-endpoint window): nothing more is sent on ``endpoint``
          for its full window (+ guard), and nothing on any endpoint for the all-endpoints
          window (the endpoint's own window on plans without one; suspension calls only
          block themselves).
        * 605 (per-minute or daily): nothing is sent for 60 s + guard. A 605 that arrives while
          that block stands is the echo of a call already in flight and changes nothing. A
          605 that arrives within a minute after a block ended, i.e. on one of the first
          calls after a full quiet minute, is the next in a row; the
          ``daily_cap_after_605s``-th in a row marks the day as spent, so :meth:`acquire`
          raises DailyCapReached (or waits for 00:00 UTC+8).

        Other ``ret`` values are ignored. Blocks live in the ledger, so every task and
        process sharing it honours them.
        """
        if ret == 429:
            self.ledger.update(partial(self._block_429, endpoint))
        elif ret == 605:
            self.ledger.update(self._on_605)

    def on_accepted(self, endpoint: str) -> None:
        """Tell the budget a call succeeded; it breaks a run of 605s (optional, in memory)."""
        if self._strikes and self._now() >= self._strike_until:
            self._strikes = 0

    def _block_429(self, endpoint: str, state: LedgerState) -> None:
        now = self._now()
        own = self.plan.rate_for(endpoint)
        _block(state, endpoint_key(endpoint), now + to_ticks(own.per + self.guard))
        if not _is_suspension(endpoint):
            every = self.plan.all_endpoints.per if self.plan.all_endpoints else own.per
            _block(state, ALL_ENDPOINTS_KEY, now + to_ticks(every + self.guard))

    def _on_605(self, state: LedgerState) -> None:
        now = self._now()
        minute = to_ticks(MINUTE + self.guard)
        until = state.blocked.get(PER_MINUTE_KEY)
        if until is not None and now < until:
            return
        in_a_row = self._strikes > 0 and until is not None and now <= until + minute
        self._strikes = self._strikes + 1 if in_a_row else 1
        if self._strikes >= self.daily_cap_after_605s:
            self._strikes = 0
            _block(state, DAILY_CAP_KEY, _day_start_ticks((now + _OFFSET_TICKS) // _DAY_TICKS + 1))
        else:
            self._strike_until = now + minute
            _block(state, PER_MINUTE_KEY, self._strike_until)

    # -- reporting ---------------------------------------------------------------------------

    def usage(self) -> dict[str, Any]:
        """Today's use of the daily cap (UTC+8 day), counting reserved calls too::

            {"day": "2026-05-01", "calls_today": 120, "per_day": 86400,
             "remaining_today": 86280, "resets_at": 1777651200.0, "exhausted": False}

        ``exhausted`` is true when the cap is reached or repeated 605s said it was.
        """
        now = self._now()
        today = day_index(from_ticks(now))
        key = day_key(today)

        def report(state: LedgerState) -> dict[str, Any]:
            used = state.days.get(key, 0)
            exhausted = used >= self.plan.per_day or state.blocked.get(DAILY_CAP_KEY, now) > now
            return {
                "day": key.removeprefix("day:"),
                "calls_today": used,
                "per_day": self.plan.per_day,
                "remaining_today": 0 if exhausted else self.plan.per_day - used,
                "resets_at": day_start(today + 1),
                "exhausted": exhausted,
            }

        return self.ledger.read(report)

    def close(self) -> None:
        """Close the ledger (a no-op for memory ledgers)."""
        self.ledger.close()

    def __repr__(self) -> str:
        return f"Budget(plan={self.plan.name!r}, guard={self.guard}, ledger={self.ledger!r})"


def _block(state: LedgerState, key: str, until: int) -> None:
    if until > state.blocked.get(key, until - 1):
        state.blocked[key] = until


# --------------------------------------------------------------------------- dry runs


def theoretical_minimum(plan: Plan | str, calls: Mapping[str, int]) -> float:
    """A lower bound, in seconds, from the first call's start to the last's for ``calls``.

    ``calls`` maps endpoint names to call counts. For every sliding window of ``L`` calls per
    ``S`` seconds that ``N`` of the calls count against, the ``N``-th can start no sooner than
    ``floor((N - 1) / L) * S`` after the first; the bound is the largest of these (no guard).
    More calls than the daily cap gives ``math.inf``. This reads the plan directly, not the
    budget's windows, so it can check them.

    >>> theoretical_minimum("basic", {"kline": 100, "batch-kline": 10})   # 1 call/s overall
    109.0
    """
    plan = get_plan(plan)
    counts = {k: n for k, n in calls.items() if n > 0}
    total = sum(counts.values())
    if total == 0:
        return 0.0
    if total > plan.per_day:
        return math.inf
    bounds = [(total, plan.per_minute, MINUTE)]
    quote = sum(n for e, n in counts.items() if not e.startswith(SUSPENSION))
    if plan.all_endpoints is not None and quote:
        bounds.append((quote, plan.all_endpoints.calls, plan.all_endpoints.per))
    for endpoint, n in counts.items():
        rate = plan.rate_for(endpoint)
        bounds.append((n, rate.calls, rate.per))
    return max((n - 1) // limit * per for n, limit, per in bounds)


def estimate_schedule(
    plan: Plan | str,
    calls: Mapping[str, int],
    used_today: int = 0,
    guard: float = DEFAULT_GUARD,
    *,
    start: float | None = None,
    wait_for_reset: bool = True,
) -> float:
    """How long, in seconds from first start to last, the budget itself would take for ``calls``.

    Runs the real slot algorithm on a :class:`~alltick_frames.core.clock.FakeClock` (no sleeping;
    about 10 µs per call). At each step the endpoint whose next slot comes first takes it;
    ties go to the endpoint with the longest chain left (calls left x its own interval), so
    a slow endpoint such as ``batch-kline`` is started early and the others fill its gaps.
    That is the schedule of callers that keep every endpoint's queue busy; callers that
    reserve in a worse order take longer, never less.

    ``used_today`` calls already spent today count against the daily cap; ``start`` is the
    epoch the run would begin (default now), which decides when the day resets. Past the cap
    the estimate waits for the reset (``wait_for_reset``) or is ``math.inf``.
    """
    plan = get_plan(plan)
    todo = {e: n for e, n in calls.items() if n > 0}
    if not todo:
        return 0.0
    clock = FakeClock(time.time() if start is None else start)
    ledger = MemoryLedger()
    if used_today:
        ledger.state.days[day_key(day_index(clock.now()))] = used_today
    budget = Budget(plan, clock=clock, ledger=ledger, guard=guard, wait_for_reset=wait_for_reset)
    weight = {e: plan.rate_for(e).interval for e in todo}
    first: float | None = None
    last = clock.now()
    try:
        while todo:
            endpoint = min(todo, key=lambda e: (budget.next_slot(e), -todo[e] * weight[e], e))
            last = budget.reserve(endpoint)
            first = last if first is None else first
            clock.set(max(last, clock.now()))  # a slot at "now" may round a hair below it
            todo[endpoint] -= 1
            if not todo[endpoint]:
                del todo[endpoint]
    except DailyCapReached:
        return math.inf
    return last - (first if first is not None else last)
