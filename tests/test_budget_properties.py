"""Property tests: whatever the order of requests, every slot is valid and the earliest valid."""

from __future__ import annotations

import tempfile
from bisect import insort
from datetime import datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_budget_checks import UTC8, check_schedule

from alltick_frames.budget import Budget, DiskLedger, MemoryLedger, earliest_slot
from alltick_frames.core.clock import FakeClock
from alltick_frames.core.plans import ENDPOINTS, get_plan


def fits(times: list[int], calls: int, span: int) -> bool:
    """Every ``calls + 1`` consecutive times at least ``span`` apart (judged independently)."""
    times = sorted(times)
    return all(times[i + calls] - times[i] >= span for i in range(len(times) - calls))


# Spans are in ticks with the guard folded in, as the budget passes them (e.g. 1.025 s).
windows_st = st.lists(
    st.tuples(st.integers(1, 4), st.sampled_from([5, 10, 11, 30, 31, 600])),
    min_size=1,
    max_size=3,
)
steps_st = st.lists(
    st.tuples(
        st.sets(st.integers(0, 2), min_size=1, max_size=3),
        st.one_of(st.sampled_from([0, 5, 10, 30]), st.integers(0, 50)),
    ),
    min_size=1,
    max_size=40,
)


@settings(max_examples=400, deadline=None)
@given(windows=windows_st, steps=steps_st)
def test_earliest_slot_is_valid_and_nothing_earlier_is(
    windows: list[tuple[int, int]], steps: list[tuple[set[int], int]]
) -> None:
    recorded: list[list[int]] = [[] for _ in windows]
    now = 0
    for subset, dt in steps:
        now += dt  # reservations may lie far ahead of now: gaps before them may be filled
        chosen = sorted({i % len(windows) for i in subset})
        t = earliest_slot(now, [(recorded[i], *windows[i]) for i in chosen])
        assert t >= now

        def valid(c: int, chosen: list[int] = chosen) -> bool:
            return all(fits([*recorded[i], c], *windows[i]) for i in chosen)

        assert valid(t)
        # Exhaustive: integer time, so every earlier tick can be tried.
        for c in range(now, t):
            assert not valid(c), f"{c} was valid but the slot was {t}"
        for i in chosen:
            insort(recorded[i], t)


MIDNIGHT = datetime(2026, 5, 2, tzinfo=UTC8).timestamp()
ENDPOINT_ST = st.sampled_from([*ENDPOINTS, "suspension/sse"])
op_st = st.one_of(
    st.tuples(st.just("reserve"), ENDPOINT_ST),
    st.tuples(st.just("advance"), st.sampled_from([0.0, 0.3, 1.0, 2.5, 20.0, 61.0])),
    st.tuples(st.just("reject"), ENDPOINT_ST, st.sampled_from([429, 605])),
    st.tuples(st.just("release")),
)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    plan_name=st.sampled_from(["free", "basic", "premium"]),
    per_minute=st.sampled_from([None, 7]),
    ops=st.lists(op_st, min_size=1, max_size=60),
    on_disk=st.booleans(),
)
def test_any_sequence_of_requests_keeps_every_window(
    plan_name: str, per_minute: int | None, ops: list[tuple], on_disk: bool
) -> None:
    plan = get_plan(plan_name).with_overrides(per_day=12)
    if per_minute:
        plan = plan.with_overrides(per_minute=per_minute)
    clock = FakeClock(MIDNIGHT - 90)  # the runs cross 00:00 UTC+8 and its fresh daily cap
    with tempfile.TemporaryDirectory() as tmp:
        ledger = DiskLedger(tmp, "fp") if on_disk else MemoryLedger()
        budget = Budget(plan, clock=clock, ledger=ledger, wait_for_reset=True)
        made: list[tuple[str, float]] = []
        narrowest = budget.guard  # a learned guard widens on rejections; each slot keeps its own
        for op in ops:
            if op[0] == "reserve":
                endpoint = op[1]
                narrowest = min(narrowest, budget.guard)
                slot = budget.reserve(endpoint)
                assert slot >= clock.now()
                made.append((endpoint, slot))
            elif op[0] == "advance":
                clock.advance(op[1])
            elif op[0] == "reject":
                budget.on_rejected(op[1], op[2])
            elif made and made[-1][1] > clock.now():
                budget.release(*made.pop())
        budget.close()
    check_schedule(plan, made, narrowest)
