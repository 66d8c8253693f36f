"""The :class:`Budget`: paces calls through a ledger, and learns from the server's rejections.

Each reservation is one atomic ledger update: prune what has expired, find the earliest slot
(:func:`~alltick_frames.budget.slots.find_slot`), record it. Ledgers are keyed by
:func:`token_fingerprint`, never by the token.
"""

from __future__ import annotations

import copy
import hashlib
from collections import deque
from functools import partial
from pathlib import Path
from typing import Any

from alltick_frames.budget.guard import FixedGuard, LearnedGuard
from alltick_frames.budget.ledger import Ledger
from alltick_frames.budget.ledger_disk import DiskLedger
from alltick_frames.budget.ledger_memory import MemoryLedger
from alltick_frames.budget.slots import (
    DAILY_CAP_KEY,
    DAILY_PROBE_KEY,
    DAY_TICKS,
    MINUTE,
    OFFSET_TICKS,
    PER_MINUTE_KEY,
    LedgerState,
    Rule,
    Window,
    block,
    block_keys,
    day_index,
    day_key,
    day_start,
    day_start_ticks,
    find_slot,
    from_ticks,
    move,
    prune,
    record,
    rules_for,
    settle,
    to_ticks,
    unrecord,
    windows_for,
)
from alltick_frames.core.clock import Clock, SystemClock
from alltick_frames.core.plans import Plan, get_plan

_FINGERPRINT_SALT = b"alltick-frames/budget/v1\x00"
#: Seconds added to an answer's moment before it bounds its call's arrival (see
#: Budget.answered): a server that dates calls in whole milliseconds may round up, and an
#: epoch time in floating point carries a quarter of a microsecond. It costs 0.1 % of a
#: 1-second window, only on calls answered within a millisecond of the guard or less.
ANSWER_SLACK = 0.001


def _lift_daily_cap(state: LedgerState) -> None:
    state.blocked.pop(DAILY_CAP_KEY, None)
    state.blocked.pop(DAILY_PROBE_KEY, None)


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
    :class:`DiskLedger` across processes). ``guard`` widens every sliding window: by default
    it is learned from the calls' latencies and the server's rejections
    (:class:`~alltick_frames.budget.guard.LearnedGuard`: 10 ms to 0.5 s, 0.1 s until measured);
    a number of seconds fixes it. ``smooth`` (default) spaces a rate window's calls evenly
    rather than letting them leave in one burst; a number keeps that share of the spacing
    (see :func:`rules_for`). With
    ``wait_for_reset`` a full day makes :meth:`acquire` wait for the reset instead of raising.
    ``daily_cap_after_605s`` is how many 605s, each a full minute after the one before with
    no call answered between them, it takes to conclude that the daily cap is spent.

    Every process sharing a ledger should use the same plan and smoothing; each learns its
    own guard.
    """

    def __init__(
        self,
        plan: Plan | str,
        *,
        clock: Clock | None = None,
        ledger: Ledger | None = None,
        guard: float | FixedGuard | None = None,
        smooth: bool | float = True,
        wait_for_reset: bool = False,
        daily_cap_after_605s: int = 3,
    ) -> None:
        if daily_cap_after_605s < 1:
            raise ValueError("daily_cap_after_605s must be >= 1")
        if float(smooth) < 0:
            raise ValueError(f"smooth must be a share >= 0 of the even spacing, got {smooth!r}")
        self.plan = get_plan(plan)
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.ledger: Ledger = ledger if ledger is not None else MemoryLedger()
        if guard is None:
            guard = LearnedGuard()
        elif not isinstance(guard, FixedGuard):
            guard = FixedGuard(guard)
        #: The guard in force (:class:`~alltick_frames.budget.guard.FixedGuard` or learned).
        self.margin: FixedGuard = guard
        self.smooth = smooth
        self.wait_for_reset = wait_for_reset
        self.daily_cap_after_605s = daily_cap_after_605s
        # Calls within this of 00:00 UTC+8 count on both days: the widest the guard can be,
        # so that a reservation and its release always agree on the days.
        self._day_guard = to_ticks(guard.widest)
        self._rules: dict[str, tuple[int, tuple[Rule, ...]]] = {}
        # What this process saw of rejections (their effects, blocks, live in the ledger):
        # the 605 streak, the escalating blocks of rejections the ledger cannot explain, and
        # whether this process holds the probe of a daily cap concluded from 605s.
        self._strikes = 0
        self._strike_at = 0
        self._last_605 = 0
        self._widened_at = 0
        self._backoff: dict[str, int] = {}
        self._probing = False
        #: Rejections this process has handled (a call's departure checks for new blocks).
        self.rejected = 0
        # This budget's own answered calls, per rate window: the window's length, and each
        # call's tick -> when its answer came, with the ticks in the order answered (to forget
        # them once the window has passed); see answered().
        self._answers: dict[str, tuple[int, dict[int, int], deque[int]]] = {}

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

    @property
    def guard(self) -> float:
        """The guard in force now, seconds."""
        return self.margin.value

    def windows(self, endpoint: str) -> tuple[Window, ...]:
        """The sliding windows a call to ``endpoint`` counts against (see :func:`windows_for`)."""
        return windows_for(self.plan, endpoint)

    def _rules_of(self, endpoint: str) -> tuple[Rule, ...]:
        guard = to_ticks(self.margin.value)
        cached = self._rules.get(endpoint)
        if cached is None or cached[0] != guard:
            rules = rules_for(self.plan, endpoint, from_ticks(guard), smooth=self.smooth)
            cached = self._rules[endpoint] = (guard, rules)
        return cached[1]

    def _now(self) -> int:
        return to_ticks(self.clock.now())

    # -- reserving ---------------------------------------------------------------------------

    def _find(self, endpoint: str, state: LedgerState, now: int, probe: bool = False) -> int:
        return find_slot(
            self._view(state, now),
            endpoint,
            self._rules_of(endpoint),
            now,
            per_day=self.plan.per_day,
            guard=self._day_guard,
            wait_for_reset=self.wait_for_reset,
            probe=probe,
        )

    def _view(self, state: LedgerState, now: int) -> LedgerState:
        """``state`` as this budget reads it: each of its own calls answered sooner than the
        guard moved to the answer's moment less the guard (see :meth:`answered`). Only the
        windows' ticks are copied, and only where a call moves."""
        if not self._answers:
            return state
        guard = to_ticks(self.margin.value)
        calls: dict[str, list[int]] | None = None
        for key, (per, heard, order) in self._answers.items():
            while order and order[0] <= now - per - guard:
                del heard[order.popleft()]  # the ledger has dropped it too (see prune)
            times = state.calls.get(key)
            if not times or not heard:
                continue
            moves = {t: h - guard for t, h in heard.items() if h - guard < t}
            settled = settle(times, moves)
            if settled is not times:
                if calls is None:
                    calls = dict(state.calls)
                calls[key] = settled
        if calls is None:
            return state
        view = copy.copy(state)  # shallow, and without checking the counts again
        view.calls = calls
        return view

    def _reserve_in(self, endpoint: str, state: LedgerState) -> tuple[int, int]:
        rules = self._rules_of(endpoint)
        now = self._now()  # read inside the transaction, so ledger time only moves on
        prune(state, rules, now)
        probe = (
            state.blocked.get(DAILY_CAP_KEY, now)
            > now
            >= state.blocked.get(DAILY_PROBE_KEY, now + 1)
        )
        t = self._find(endpoint, state, now, probe)
        if probe:  # one call tests the daily cap concluded from 605s; the next, a minute on
            state.blocked[DAILY_PROBE_KEY] = t + to_ticks(MINUTE + self.guard)
            self._probing = True
        record(state, rules, t, self._day_guard)
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
        self.ledger.update(lambda state: unrecord(state, rules, slot, self._day_guard))

    def depart(self, endpoint: str, slot: float, at: float, *, sent: bool = False) -> bool:
        """Record that the call reserved at ``slot`` left later, at ``at``.

        The budget spaces calls by the times its ledger holds. A call that leaves after its
        slot (its task woke late on a busy loop) reaches the server later than the ledger
        says, and the call a window behind it would be spaced from the earlier time: every
        millisecond of lateness would come out of the guard. Moved to ``at``, the call is
        where the server sees it. Returns False, and changes nothing, when ``at`` would break
        a window because of calls reserved since (the caller then takes a new slot). With
        ``sent`` (the call has gone already, later than it was recorded) it is moved anyway.
        """
        if at <= slot:
            return True
        rules = self._rules_of(endpoint)
        t, to = to_ticks(slot), to_ticks(at)
        per_day, guard = self.plan.per_day, self._day_guard

        def view(state: LedgerState) -> LedgerState:  # as a slot search reads it
            return self._view(state, self._now())

        return self.ledger.update(
            lambda state: move(
                state, rules, t, to, per_day=per_day, guard=guard, sent=sent, view=view
            )
        )

    def blocked(self, endpoint: str, slot: float) -> bool:
        """Whether a block set since ``slot`` was reserved now stands past it."""
        keys = (*block_keys(endpoint), DAILY_CAP_KEY)
        t = to_ticks(slot)
        return self.ledger.read(lambda state: any(state.blocked.get(k, t) > t for k in keys))

    async def acquire(self, endpoint: str) -> float:
        """Wait until a call to ``endpoint`` may start, and return its slot (epoch seconds).

        The slot is reserved before sleeping, so concurrent callers never collide. If the
        task is cancelled while waiting, the slot is given back. If a rejection
        (:meth:`on_rejected`) blocks the windows while we sleep, the slot is given back and a
        new one is taken behind the block. Raises
        :class:`~alltick_frames.core.errors.DailyCapReached` (``resets_at`` = next 00:00 UTC+8)
        when the day's cap is used up, unless the budget waits for the reset.
        """
        while True:
            slot, reserved_at = self.ledger.update(partial(self._reserve_in, endpoint))
            if slot <= reserved_at:
                return from_ticks(slot)
            try:
                await self.clock.sleep_until(from_ticks(slot))
            except BaseException:
                self._release(endpoint, slot)
                raise
            if not self.blocked(endpoint, from_ticks(slot)):
                return from_ticks(slot)
            self._release(endpoint, slot)

    # -- server feedback ---------------------------------------------------------------------

    def answered(self, endpoint: str, slot: float, at: float) -> None:
        """Tell the budget that the call to ``endpoint`` recorded at ``slot`` was answered at
        ``at`` (its status line and headers in hand, on the budget's clock).

        The server dated the call when it arrived, and it did so before it answered: so the
        call arrived no later than ``at``, and a call leaving ``at + S`` or later arrives more
        than a window ``S`` after it, whatever the network did. The guard assumed it arrived
        by ``slot + guard``; an answer sooner than that is the tighter bound. So, for this
        budget's own slot searches, the call counts in each rate window as if it had left at
        ``at + slack - guard`` (its window frees at ``at + slack + S``, not
        ``slot + guard + S``; :data:`ANSWER_SLACK`, 1 ms, covers a server's rounding): its
        margin is its own latency, not the guard. A call not yet answered keeps the whole
        guard.

        The ledger itself is not changed: other budgets and processes sharing it may use
        another guard, and for them the call stays where it left. Only the rate windows move
        (the per-minute cap's guard costs guard / 60 s of pace, and the days never move).
        """
        t, heard = to_ticks(slot), to_ticks(at + ANSWER_SLACK)
        for window in self.windows(endpoint):
            if window.key == PER_MINUTE_KEY:
                continue
            entry = self._answers.get(window.key)
            if entry is None:
                entry = self._answers[window.key] = (to_ticks(window.per), {}, deque())
            if t not in entry[1]:  # two calls at one tick (no smoothing): the first answer
                entry[1][t] = heard
                entry[2].append(t)

    def observe(self, endpoint: str, latency: float) -> None:
        """Tell the budget how long a call to ``endpoint`` took, from leaving to its answer
        (seconds); a learned guard measures their spread."""
        self.margin.observe(latency)

    def on_rejected(self, endpoint: str, ret: int, sent: float | None = None) -> None:
        """Tell the budget that a call to ``endpoint`` (sent at ``sent``, if known) got ``ret``
        429 or 605 despite pacing. Only the windows the answer can come from are held back,
        and only as long as they must be:

        * 429 comes from a rate window (``endpoint``'s own, and all endpoints' unless it is a
          suspension call). If the ledger holds a full window of our own calls, our pace
          explains it: a learned guard widens (once for the calls sent before the widening),
          and the window is blocked until the slot the ledger, with the wider guard, says
          is safe (usually a few milliseconds on). If it does not, calls the ledger never
          saw (another client on the token) fill the server's window, which no guard would
          have avoided: it is blocked for one call's spacing, doubling on each such
          rejection until a call is answered, up to the whole window.
        * 605 comes from the per-minute or the daily cap. The per-minute window is held the
          same way (unexplained: one call's spacing, 60 s / the cap, doubling up to a
          minute). A 605 to a call sent before the last one arrived is its echo and changes
          nothing. The day is
          concluded spent only on evidence: the ledger's own count reaching the plan's cap,
          or ``daily_cap_after_605s`` 605s, each a full minute after the one before with no
          call answered between them. Even then it is not sticky: the block ends at 00:00
          UTC+8, and one call a minute may test it (a probe); a probe answered lifts it.

        Other ``ret`` values are ignored. Blocks live in the ledger, so every task and
        process sharing it honours them.
        """
        if ret not in (429, 605):
            return
        now = self._now()
        sent_at = now if sent is None else to_ticks(sent)
        if ret == 605 and sent_at < self._last_605:
            return  # the echo of a call already in flight when the first 605 came
        self.rejected += 1
        minute = ret == 605
        windows = [w for w in self.windows(endpoint) if (w.key == PER_MINUTE_KEY) == minute]
        explained, capped = self.ledger.read(partial(self._explain, windows, now))
        if capped:
            return  # a daily-cap probe refused: the conclusion holds (see _reserve_in)
        # Only a rejection our own pace explains says the guard was too narrow, and a call
        # sent before the last widening was spaced by the old guard: it widens nothing more.
        if any(explained) and sent_at > self._widened_at:
            self._widened_at = now
            self.margin.on_rejected()
        waits: dict[str, int] = {}
        for window, ours in zip(windows, explained, strict=True):
            if not ours:  # someone else fills it: one call's spacing, doubling, up to it all
                first = to_ticks(window.per / window.calls)
                longest = to_ticks(window.per + self.guard)
                wait = min(longest, 2 * self._backoff.get(window.key, first // 2))
                waits[window.key] = self._backoff[window.key] = wait
        spent = False
        if minute:
            self._last_605 = now
            if not self._strikes or now >= self._strike_at + to_ticks(MINUTE + self.guard):
                self._strikes, self._strike_at = self._strikes + 1, now
                if self._strikes >= self.daily_cap_after_605s:
                    self._strikes, spent = 0, True
        self.ledger.update(partial(self._hold, windows, waits, now, spent))

    def on_accepted(self, endpoint: str) -> None:
        """Tell the budget a call succeeded: the guard narrows a little, a run of 605s and the
        escalation of unexplained rejections end, and a daily-cap probe lifts the cap."""
        self.margin.on_accepted()
        self._strikes = 0
        if self._backoff:
            self._backoff.clear()
        if self._probing:
            self._probing = False
            self.ledger.update(_lift_daily_cap)

    def _explain(
        self, windows: list[Window], now: int, state: LedgerState
    ) -> tuple[list[bool], bool]:
        """Which of ``windows`` our own calls fill (a full window's calls left within its span
        before ``now``), and whether a daily-cap block stands."""
        explained = []
        for window in windows:
            span = to_ticks(window.per + self.guard)
            inside = state.calls_between(window.key, now - span, now)
            explained.append(inside >= window.calls)
        return explained, state.blocked.get(DAILY_CAP_KEY, now) > now

    def _hold(
        self,
        windows: list[Window],
        waits: dict[str, int],
        now: int,
        spent: bool,
        state: LedgerState,
    ) -> None:
        """Block ``windows`` after a rejection: those in ``waits`` for that long, the others
        until the ledger's own safe slot with the guard now in force (see on_rejected)."""
        for window in windows:
            if window.key in waits:
                block(state, window.key, now + waits[window.key])
                continue
            span = to_ticks(window.per + self.guard)
            block(state, window.key, state.earliest_after_past(window.key, window.calls, span, now))
        if spent:
            block(state, DAILY_CAP_KEY, day_start_ticks((now + OFFSET_TICKS) // DAY_TICKS + 1))
            state.blocked[DAILY_PROBE_KEY] = now + to_ticks(MINUTE + self.guard)

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
        return f"Budget(plan={self.plan.name!r}, guard={self.margin!r}, ledger={self.ledger!r})"
