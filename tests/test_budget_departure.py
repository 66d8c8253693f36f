"""A call that leaves after its slot is recorded where it really left (fake clock, exact).

The budget spaces calls by the times its ledger holds; a call late by a few milliseconds
(its task woke late on a busy loop) would otherwise take its lateness out of the guard of the
call one window behind it.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

import pytest
from test_budget_checks import UTC8

from alltick_frames.budget import Budget, from_ticks, rules_for, to_ticks
from alltick_frames.budget.slots import LedgerState, move, record
from alltick_frames.core.clock import FakeClock
from alltick_frames.core.plans import KLINE, get_plan
from alltick_frames.run.departure import MIN_LATENESS, STALL, Departure

T0 = datetime(2026, 5, 1, 10, 0, tzinfo=UTC8).timestamp()
G = 0.025
#: Two k-line calls a second and nothing else that binds.
PLAN = get_plan("basic").with_overrides(
    endpoint_rates={KLINE: (2, 1.0)}, all_endpoints=None, per_minute=1_000_000
)


async def go(departure: Departure) -> None:
    """What the transport does before writing: call the departure, await it if it waits."""
    wait = departure()
    if wait is not None:
        await wait


def budget(smooth: bool = False) -> Budget:
    return Budget(PLAN, clock=FakeClock(T0), guard=G, smooth=smooth)


def times(b: Budget) -> list[float]:
    return b.ledger.read(lambda s: [from_ticks(t) for t in s.calls["endpoint:kline"]])


def test_a_late_call_moves_to_when_it_left_and_the_next_window_counts_from_there() -> None:
    b = budget()
    first, second = b.reserve(KLINE), b.reserve(KLINE)
    assert (first, second) == (T0, T0)
    assert b.depart(KLINE, second, T0 + 0.010)
    assert times(b) == pytest.approx([T0, T0 + 0.010])
    # The third call is a window plus the guard after the first; the fourth after the second,
    # where it really went (it would be 10 ms earlier had the ledger kept the slot).
    assert b.reserve(KLINE) == pytest.approx(T0 + 1 + G)
    assert b.reserve(KLINE) == pytest.approx(T0 + 0.010 + 1 + G)


def test_a_move_that_would_break_a_window_changes_nothing() -> None:
    b = budget()
    slots = [b.reserve(KLINE) for _ in range(4)]  # two at T0, two a window and guard later
    assert slots == pytest.approx([T0, T0, T0 + 1 + G, T0 + 1 + G])
    # Moved on at all, the second call would sit less than a window plus the guard before
    # the two reserved after it: three calls within a window. The ledger keeps it.
    assert not b.depart(KLINE, slots[1], T0 + 0.003)
    assert times(b) == pytest.approx(slots)


def test_an_early_or_punctual_departure_changes_nothing() -> None:
    b = budget()
    slot = b.reserve(KLINE)
    assert b.depart(KLINE, slot, slot)
    assert b.depart(KLINE, slot, slot - 0.5)
    assert times(b) == [slot]


def test_the_even_spacing_is_not_a_limit_a_late_call_must_keep() -> None:
    """With smoothing, calls are spaced 0.5 s apart; a call that left 0.3 s late goes 0.2 s
    before the next reservation, which the server's windows allow (two calls a second)."""
    b = budget(smooth=True)
    slots = [b.reserve(KLINE) for _ in range(2)]
    assert slots == pytest.approx([T0, T0 + 0.5])
    assert b.depart(KLINE, slots[0], T0 + 0.3)
    assert times(b) == pytest.approx([T0 + 0.3, T0 + 0.5])


def test_move_is_exact_in_ticks_and_keeps_the_day_count() -> None:
    rules = rules_for(PLAN, KLINE, G, smooth=False)
    state = LedgerState()
    guard = to_ticks(0.5)
    for t in (0, 100):
        record(state, rules, to_ticks(T0) + t, guard)
    days = dict(state.days)
    assert move(state, rules, to_ticks(T0) + 100, to_ticks(T0) + 2_000, per_day=10, guard=guard)
    assert state.calls["endpoint:kline"] == [to_ticks(T0), to_ticks(T0) + 2_000]
    assert state.days == days


def test_a_move_onto_a_full_day_changes_nothing() -> None:
    """A call within the guard of 00:00 UTC+8 counts on both days; moved there, it would
    count on a day that is full."""
    rules = rules_for(PLAN, KLINE, G, smooth=False)
    state = LedgerState()
    guard = to_ticks(0.5)
    midnight = to_ticks(datetime(2026, 5, 2, tzinfo=UTC8).timestamp())
    record(state, rules, midnight - to_ticks(0.6), guard)
    state.days["day:2026-05-02"] = 5
    before = (dict(state.days), list(state.calls["endpoint:kline"]))
    assert not move(state, rules, midnight - to_ticks(0.6), midnight - to_ticks(0.1), per_day=5,
                    guard=guard)  # fmt: skip
    assert (state.days, state.calls["endpoint:kline"]) == before


async def test_departure_goes_as_is_moves_or_takes_a_new_slot_by_how_late_it_is() -> None:
    b = budget()
    clock = b.clock
    assert isinstance(clock, FakeClock)

    async def leave(late: float) -> Departure:
        departure = Departure(b, KLINE)
        await departure.acquire()
        clock.set(max(clock.now(), departure.slot) + late)
        await go(departure)
        await asyncio.sleep(0)  # the loop runs again: the write has happened (see below)
        return departure

    # Timer slack: goes, the ledger keeps the slot.
    punctual = await leave(MIN_LATENESS / 2)
    assert punctual.slot == T0 and punctual.repaced == 0
    assert punctual.sent_at == pytest.approx(T0 + MIN_LATENESS / 2)
    # Late within STALL: goes, and the ledger holds when it left.
    late = await leave(0.030)
    assert late.slot == pytest.approx(T0 + MIN_LATENESS / 2 + 0.030) and late.repaced == 0
    assert late.sent_at == late.slot
    assert times(b) == pytest.approx([T0, late.slot])
    # A stall: the slot is given back and a new one taken (here at once: a window had passed).
    clock.set(T0 + 5)
    stalled = Departure(b, KLINE)
    await stalled.acquire()
    clock.set(stalled.slot + STALL * 2)
    await go(stalled)
    assert stalled.repaced == 1 and stalled.slot == pytest.approx(T0 + 5 + STALL * 2)


async def test_a_call_whose_write_was_held_up_is_moved_when_the_loop_runs_again() -> None:
    """Between the departure check and the socket's write nothing yields to the loop, but the
    process may be preempted (or another thread hold the GIL): the first moment the loop runs
    again bounds the write from above. Held up past half the guard, the call moves there."""
    b = budget()
    clock = b.clock
    assert isinstance(clock, FakeClock)
    held = Departure(b, KLINE)
    await held.acquire()
    await go(held)
    assert held.sent_at == T0
    clock.set(T0 + 0.040)  # the loop runs again 40 ms on
    await asyncio.sleep(0)
    assert held.slot == pytest.approx(T0 + 0.040)
    assert times(b) == pytest.approx([T0 + 0.040])
    # Held up less than half the guard: the guard covers it, the ledger is left alone.
    brief = Departure(b, KLINE)
    await brief.acquire()
    await go(brief)
    clock.advance(G / 2 - 0.001)
    await asyncio.sleep(0)
    assert times(b) == pytest.approx([T0 + 0.040, T0 + 0.040])
