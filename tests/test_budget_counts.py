"""A long window kept as counts per bucket: never a slot the exact ticks forbid, at most about
a bucket later than the exact slot, the same on every ledger, and a record that stays small."""

from __future__ import annotations

import tempfile
from bisect import insort
from collections.abc import Iterator
from datetime import datetime
from itertools import pairwise
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_budget_checks import UTC8, check_schedule
from test_budget_properties import fits

from alltick_frames.budget import Budget, DiskLedger, MemoryLedger, counts, slots
from alltick_frames.budget.counts import Counted
from alltick_frames.budget.shared import budget_from_url
from alltick_frames.budget.slots import PER_MINUTE_KEY, earliest_slot, to_ticks
from alltick_frames.core.clock import FakeClock
from alltick_frames.core.plans import ENDPOINTS, KLINE, get_plan

GUARD = 0.025
T0 = datetime(2026, 5, 1, 10, 0, tzinfo=UTC8).timestamp()
MINUTE_SPAN = to_ticks(60 + GUARD)
BUCKET = counts.new_counts(MINUTE_SPAN)[0] / 1e6  # seconds

# (calls, span, bucket width or None for exact ticks); spans fold the guard in, as rules do.
windows_st = st.lists(
    st.tuples(
        st.integers(1, 4),
        st.sampled_from([5, 10, 11, 30, 31, 600]),
        st.sampled_from([None, 1, 2, 3, 7, 40]),
    ),
    min_size=1,
    max_size=3,
)
steps_st = st.lists(
    st.tuples(
        st.sets(st.integers(0, 2), min_size=1, max_size=3),
        st.one_of(st.sampled_from([0, 5, 10, 30]), st.integers(0, 50)),
        st.booleans(),  # give back the latest reservation of the first window first
    ),
    min_size=1,
    max_size=40,
)


@settings(max_examples=400, deadline=None)
@given(windows=windows_st, steps=steps_st)
def test_a_slot_on_counts_is_valid_and_never_before_the_exact_slot(
    windows: list[tuple[int, int, int | None]], steps: list[tuple[set[int], int, bool]]
) -> None:
    recorded: list[list[int]] = [[] for _ in windows]
    counted = [[width, [], []] for _, _, width in windows]
    now = 0
    for subset, dt, give_back in steps:
        now += dt
        chosen = sorted({i % len(windows) for i in subset})
        if give_back and recorded[chosen[0]]:
            gone = recorded[chosen[0]].pop()
            if windows[chosen[0]][2] is not None:
                counts.remove(counted[chosen[0]], gone)

        def view(i: int) -> Any:
            return recorded[i] if windows[i][2] is None else Counted(counted[i])

        t = earliest_slot(now, [(view(i), *windows[i][:2]) for i in chosen])
        exact = earliest_slot(now, [(recorded[i], *windows[i][:2]) for i in chosen])
        assert t >= exact
        assert all(fits([*recorded[i], t], *windows[i][:2]) for i in chosen), (t, exact)
        for i in chosen:
            insort(recorded[i], t)
            if windows[i][2] is not None:
                counts.add(counted[i], t)


def test_a_window_of_3000_calls_a_minute_keeps_its_counts_in_512_buckets() -> None:
    """At the default threshold: 6,100 slots fit every window (judged on their exact times),
    the per-minute window is counts of at most 513 buckets, and each minute's 3,001st call
    comes at most a bucket after the exact rule's."""
    plan = get_plan("professional").with_overrides(
        endpoint_rates={e: (100, 1.0) for e in ENDPOINTS},
        all_endpoints=(100, 1.0),
        per_minute=3000,
        per_day=100_000,
    )
    clock = FakeClock(T0)
    budget = Budget(plan, clock=clock, ledger=MemoryLedger(), guard=GUARD)
    made = []
    for _ in range(6100):
        made.append(budget.reserve(KLINE))
        clock.set(made[-1])
    state = budget.ledger.state
    assert PER_MINUTE_KEY not in state.calls
    _, keys, ns = state.counts[PER_MINUTE_KEY]
    inside = sum(1 for s in made if s > made[-1] - 60 - GUARD)
    assert len(keys) <= 513
    assert inside <= sum(ns) <= inside + 12  # older calls pruned; a bucket holds <= 12 calls
    assert "endpoint:kline" in state.calls  # 100 a second: exact ticks
    check_schedule(plan, [(KLINE, s) for s in made], GUARD)
    ticks = [to_ticks(m) for m in made]
    for n in (3000, 6000):
        exact = ticks[n - 3000] + MINUTE_SPAN
        assert exact <= ticks[n] <= exact + to_ticks(BUCKET + 0.011)  # + 100/s's 10 ms steps


@pytest.fixture
def few_counted(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Count a window allowing more than 4 calls once it holds 4: a 10-a-minute window."""
    monkeypatch.setattr(slots, "COUNT_ABOVE", 4)
    yield


@pytest.mark.parametrize("where", ["memory", "disk", "redis"])
def test_every_ledger_keeps_counts_and_paces_on_them_alike(
    where: str, few_counted: None, request: pytest.FixtureRequest
) -> None:
    """The counts round-trip through a pickle (disk) and JSON (Redis): every ledger grants
    the same pattern, gives a released slot back, and never breaks a window."""
    plan = get_plan("basic").with_overrides(per_minute=10, per_day=1000)
    with tempfile.TemporaryDirectory() as tmp:
        if where == "redis":
            url = request.getfixturevalue("redis_server").url
            budget: Budget = budget_from_url(url, plan, "counts-SECRET-token", guard=GUARD)
        else:
            ledger = MemoryLedger() if where == "memory" else DiskLedger(tmp, "fp")
            budget = Budget(plan, clock=FakeClock(T0), ledger=ledger, guard=GUARD)
        try:
            made = [budget.reserve(KLINE) for _ in range(21)]
            budget.release(KLINE, made[-1])
            assert budget.reserve(KLINE) == made[-1]
            state = budget.ledger.read(lambda s: s)
        finally:
            budget.close()
    assert PER_MINUTE_KEY in state.counts and PER_MINUTE_KEY not in state.calls
    assert sum(state.counts[PER_MINUTE_KEY][2]) == 21
    check_schedule(plan, [(KLINE, s) for s in made], GUARD)
    steps = [round(b - a, 6) for a, b in pairwise(made)]
    assert steps[:9] == [1 + GUARD] * 9  # one a second through the first minute's ten
    for n in range(10, 21):  # then each call at most a bucket after the exact rule's
        ticks = [to_ticks(m) for m in made]
        exact = max(ticks[n - 10] + MINUTE_SPAN, ticks[n - 1] + to_ticks(1 + GUARD))
        assert exact <= ticks[n] <= exact + to_ticks(BUCKET)


@pytest.mark.parametrize(
    "bad",
    [[0, [1], [1]], [5, [1, 2], [1]], [5, ["1"], [1]], [5, [1], [0]], {"width": 5}, [5, [1]]],
)
def test_damaged_counts_are_refused_when_the_state_is_built(bad: object) -> None:
    """A record read back from JSON (disk, Redis) with damaged counts is refused as a whole
    (TypeError, as an unknown field is), never left to fail a reservation."""
    with pytest.raises(TypeError, match="counts must be"):
        slots.LedgerState(counts={PER_MINUTE_KEY: bad})
    assert slots.LedgerState(counts={PER_MINUTE_KEY: [5, [1, 3], [2, 1]]}).counts


def test_budget_show_counts_a_window_kept_as_counts(few_counted: None) -> None:
    """``alltick-frames budget show`` reads a counted window too (to the bucket)."""
    from alltick_frames.cli.budget import describe

    plan = get_plan("basic").with_overrides(per_minute=10, per_day=1000)
    clock = FakeClock(T0)
    budget = Budget(plan, clock=clock, ledger=MemoryLedger(), guard=GUARD)
    for _ in range(6):
        budget.reserve(KLINE)  # one a second: 1 in the window now, 5 ahead
    state = budget.ledger.state
    assert PER_MINUTE_KEY in state.counts
    text = describe(state, plan, clock.now(), "fp")
    assert "per-minute: 1 of 10 in the last 60 s, 5 reserved ahead (counted per bucket)" in text
    assert "endpoint:kline: 1 of 1 in the last 1 s, 5 reserved ahead\n" in text
