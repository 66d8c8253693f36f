"""A call's answer bounds its arrival: the budget counts its own latency, not the guard, once
it is answered (fake clock, exact slots).

The server dates a call when it arrives and answers after: a call answered at ``h`` arrived by
``h``, so a call leaving at ``h + S`` or later cannot share its window of ``S`` seconds (the
budget adds ``SLACK``, 1 ms, for a server's rounding).
"""

from __future__ import annotations

from datetime import datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_budget_checks import UTC8, check_schedule

from alltick_frames.budget import Budget, MemoryLedger, from_ticks
from alltick_frames.budget.pacing import ANSWER_SLACK as SLACK
from alltick_frames.budget.slots import LedgerState, settle
from alltick_frames.core.clock import FakeClock
from alltick_frames.core.plans import ENDPOINTS, KLINE, get_plan
from alltick_frames.run.departure import Departure

T0 = datetime(2026, 5, 1, 10, 0, tzinfo=UTC8).timestamp()
G = 0.1
#: Two k-line calls a second and nothing else that binds.
PLAN = get_plan("basic").with_overrides(
    endpoint_rates={KLINE: (2, 1.0)}, all_endpoints=None, per_minute=1_000_000
)


def budget(ledger: MemoryLedger | None = None, guard: float = G) -> Budget:
    return Budget(PLAN, clock=FakeClock(T0), guard=guard, smooth=False, ledger=ledger)


def times(b: Budget, key: str = "endpoint:kline") -> list[float]:
    return b.ledger.read(lambda s: [from_ticks(t) for t in s.calls[key]])


def test_a_call_answered_sooner_than_the_guard_frees_its_window_a_window_after_its_answer() -> None:
    b = budget()
    assert [b.reserve(KLINE), b.reserve(KLINE)] == [T0, T0]
    b.clock.advance(0.030)
    b.answered(KLINE, T0, b.clock.now())  # answered after 30 ms; the other call is not
    # The first call's window frees at its answer plus the window, not its slot plus the guard;
    # the second call, unanswered, keeps the whole guard.
    assert b.reserve(KLINE) == pytest.approx(T0 + 0.030 + SLACK + 1.0, abs=1e-6)
    assert b.reserve(KLINE) == pytest.approx(T0 + 1.0 + G, abs=1e-6)
    # The ledger still holds both calls where they left: only this budget's reading moves.
    assert times(b) == pytest.approx([T0, T0, T0 + 1.031, T0 + 1.0 + G], abs=1e-6)


def test_a_call_answered_no_sooner_than_the_guard_keeps_the_guard() -> None:
    b = budget()
    b.reserve(KLINE), b.reserve(KLINE)
    b.clock.advance(0.25)
    b.answered(KLINE, T0, T0 + 0.25)  # slower than the guard: the guard's bound is tighter
    b.answered(KLINE, T0, T0 + G - SLACK)  # exactly the guard: the same slot either way
    assert b.reserve(KLINE) == pytest.approx(T0 + 1.0 + G, abs=1e-6)


def test_the_answers_bound_follows_the_guard_in_force() -> None:
    """The bound is the answer's moment; the guard it replaces is the one in force when a slot
    is sought: widened later, the answered call gains the more."""
    b = budget(guard=0.05)
    b.reserve(KLINE), b.reserve(KLINE)
    b.answered(KLINE, T0, T0 + 0.039)
    assert b.next_slot(KLINE) == pytest.approx(T0 + 1.040, abs=1e-6)
    b.margin.value = 0.2
    assert b.next_slot(KLINE) == pytest.approx(T0 + 1.040, abs=1e-6)
    b.margin.value = 0.02  # narrower than the latency: the guard's bound again
    assert b.next_slot(KLINE) == pytest.approx(T0 + 1.020, abs=1e-6)


def test_another_budget_on_the_same_ledger_reads_the_call_where_it_left() -> None:
    """Another budget (another process, another guard) does not know the answer: it keeps
    its own guard for the call, as before."""
    ledger = MemoryLedger()
    ours, theirs = budget(ledger), budget(ledger, guard=0.05)
    ours.reserve(KLINE), ours.reserve(KLINE)
    ours.answered(KLINE, T0, T0 + 0.009)
    assert theirs.next_slot(KLINE) == pytest.approx(T0 + 1.05, abs=1e-6)
    assert ours.next_slot(KLINE) == pytest.approx(T0 + 1.01, abs=1e-6)


def test_a_slot_an_answer_freed_may_still_be_left_late() -> None:
    """A call whose slot an answer made possible, leaving 5 ms late, is moved to when it left
    as any late call is: judged as its slot was found, not against the guard it was spared
    (else it would take a new slot behind the guard, and the answer would win nothing)."""
    b = budget()
    b.reserve(KLINE), b.reserve(KLINE)
    b.answered(KLINE, T0, T0 + 0.030)
    slot = b.reserve(KLINE)
    assert slot == pytest.approx(T0 + 1.031, abs=1e-6)
    assert b.depart(KLINE, slot, slot + 0.005)
    assert times(b)[-1] == pytest.approx(T0 + 1.036, abs=1e-6)


def test_only_the_rate_windows_move_not_the_minute_nor_the_day() -> None:
    plan = PLAN.with_overrides(per_minute=2)
    b = Budget(plan, clock=FakeClock(T0), guard=G, smooth=False)
    b.reserve(KLINE), b.reserve(KLINE)
    b.answered(KLINE, T0, T0 + 0.010)
    b.answered(KLINE, T0, T0 + 0.010)
    assert b.next_slot(KLINE) == pytest.approx(T0 + 60 + G, abs=1e-6)  # the minute's guard
    assert b.usage()["calls_today"] == 2


def test_of_two_calls_at_one_tick_only_the_first_answer_moves_one_of_them() -> None:
    """Two calls at one tick (no smoothing) are one record each; the budget cannot tell whose
    answer is whose, so the first answer moves one of them and the other keeps the guard."""
    b = budget()
    b.reserve(KLINE), b.reserve(KLINE)
    b.answered(KLINE, T0, T0 + 0.009)
    b.answered(KLINE, T0, T0 + 0.019)  # the other call at that tick
    assert b.reserve(KLINE) == pytest.approx(T0 + 1.010, abs=1e-6)
    assert b.reserve(KLINE) == pytest.approx(T0 + 1.0 + G, abs=1e-6)


def test_an_answer_for_a_call_the_ledger_no_longer_holds_moves_nothing() -> None:
    b = budget()
    b.reserve(KLINE), b.reserve(KLINE)
    b.clock.advance(0.010)
    b.answered(KLINE, T0, T0 + 0.010)
    b.ledger.state = LedgerState()  # the ledger was reset (``budget reset``, a damaged file)
    b.clock.advance(0.020)
    assert [b.reserve(KLINE), b.reserve(KLINE)] == [T0 + 0.030] * 2
    assert b.next_slot(KLINE) == pytest.approx(T0 + 0.030 + 1.0 + G, abs=1e-6)


def test_old_answers_are_forgotten_once_their_window_has_passed() -> None:
    b = budget()
    b.reserve(KLINE)
    b.answered(KLINE, T0, T0 + 0.010)
    b.clock.advance(1.0 + G)  # the call no longer counts, whatever bound it had
    assert b.reserve(KLINE) == b.clock.now()
    assert [len(heard) for _, heard, _ in b._answers.values()] == [0]


def test_settle_moves_one_occurrence_per_answer_and_keeps_the_rest_sorted() -> None:
    assert settle([10, 20, 30], {20: 5, 30: 25}) == [5, 10, 25]
    assert settle([10, 20, 20, 30], {20: 15, 99: 1}) == [10, 15, 20, 30]
    unchanged = [1, 2, 3]
    assert settle(unchanged, {}) is unchanged and settle(unchanged, {7: 0}) is unchanged
    twice = [4, 4]
    assert settle(twice, {5: 0}) is twice


# --------------------------------------------------------------------------- the departure


class Recorder(Budget):
    def __init__(self) -> None:
        super().__init__(PLAN, clock=FakeClock(T0), guard=G, smooth=False)
        self.heard: list[tuple[str, float, float]] = []

    def answered(self, endpoint: str, slot: float, at: float) -> None:
        self.heard.append((endpoint, slot, at))
        super().answered(endpoint, slot, at)


async def test_a_departure_reports_its_answer_at_its_current_slot_once_it_has_gone() -> None:
    b = Recorder()
    departure = Departure(b, KLINE)
    await departure.acquire()
    departure.answered()  # never sent: nothing to report
    assert b.heard == []
    assert departure() is None  # on time: it goes
    b.clock.advance(0.02)
    departure.answered()
    assert b.heard == [(KLINE, T0, T0 + 0.02)]


# --------------------------------------------------------------------------- the property

ENDPOINT_ST = st.sampled_from(list(ENDPOINTS))
op_st = st.one_of(
    st.tuples(st.just("reserve"), ENDPOINT_ST, st.sampled_from([0.0, 0.5, 1.0])),
    st.tuples(st.just("advance"), st.sampled_from([0.0, 0.01, 0.05, 0.3, 1.0, 2.5])),
    st.tuples(st.just("answer"), st.integers(0, 30)),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    plan_name=st.sampled_from(["basic", "premium"]),
    smooth=st.booleans(),
    ops=st.lists(op_st, min_size=1, max_size=60),
)
def test_what_the_server_dates_keeps_every_window_whatever_the_answers(
    plan_name: str, smooth: bool, ops: list[tuple]
) -> None:
    """Each call arrives anywhere from its slot to its slot plus the guard (the guard's own
    assumption), and is answered any time after it arrived; every answer is told to the
    budget. The arrivals, as the server dates them, keep every window with no guard at all."""
    plan = get_plan(plan_name).with_overrides(per_minute=7)
    clock = FakeClock(T0)
    b = Budget(plan, clock=clock, guard=G, smooth=smooth)
    arrivals: list[tuple[str, float]] = []
    pending: list[tuple[str, float, float]] = []  # endpoint, slot, arrival: not yet answered
    for op in ops:
        if op[0] == "reserve":
            slot = b.reserve(op[1])
            arrival = slot + op[2] * G
            arrivals.append((op[1], arrival))
            pending.append((op[1], slot, arrival))
        elif op[0] == "advance":
            clock.advance(op[1])
        else:
            due = [p for p in pending if p[2] <= clock.now()]
            if due:
                call = due[op[1] % len(due)]
                pending.remove(call)
                b.answered(call[0], call[1], clock.now())
    check_schedule(plan, arrivals, 0.0)
