"""The :class:`Budget`: paces calls through a ledger, and learns from the server's rejections.

Each reservation is one atomic ledger update: prune what has expired, find the earliest slot
(:func:`~alltick_frames.budget.slots.find_slot`), record it. Ledgers are keyed by
:func:`token_fingerprint`, never by the token.
"""

from __future__ import annotations

import hashlib
from functools import partial
from pathlib import Path
from typing import Any

from alltick_frames.budget.ledger import Ledger
from alltick_frames.budget.ledger_disk import DiskLedger
from alltick_frames.budget.ledger_memory import MemoryLedger
from alltick_frames.budget.slots import (
    ALL_ENDPOINTS_KEY,
    DAILY_CAP_KEY,
    DAY_TICKS,
    DEFAULT_GUARD,
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
    endpoint_key,
    find_slot,
    from_ticks,
    is_suspension,
    prune,
    record,
    rules_for,
    to_ticks,
    unrecord,
    windows_for,
)
from alltick_frames.core.clock import Clock, SystemClock
from alltick_frames.core.plans import Plan, get_plan

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
        prune(state, rules, now)
        t = self._find(endpoint, state, now)
        record(state, rules, t, self._guard)
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
        self.ledger.update(lambda state: unrecord(state, rules, slot, self._guard))

    async def acquire(self, endpoint: str) -> float:
        """Wait until a call to ``endpoint`` may start, and return its slot (epoch seconds).

        The slot is reserved before sleeping, so concurrent callers never collide. If the
        task is cancelled while waiting, the slot is given back. If a rejection
        (:meth:`on_rejected`) blocks the windows while we sleep, the slot is given back and a
        new one is taken behind the block. Raises
        :class:`~alltick_frames.core.errors.DailyCapReached` (``resets_at`` = next 00:00 UTC+8)
        when the day's cap is used up, unless the budget waits for the reset.
        """
        keys = (*block_keys(endpoint), DAILY_CAP_KEY)
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
        block(state, endpoint_key(endpoint), now + to_ticks(own.per + self.guard))
        if not is_suspension(endpoint):
            every = self.plan.all_endpoints.per if self.plan.all_endpoints else own.per
            block(state, ALL_ENDPOINTS_KEY, now + to_ticks(every + self.guard))

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
            block(state, DAILY_CAP_KEY, day_start_ticks((now + OFFSET_TICKS) // DAY_TICKS + 1))
        else:
            self._strike_until = now + minute
            block(state, PER_MINUTE_KEY, self._strike_until)

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
