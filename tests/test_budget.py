"""The budget on a FakeClock: exact schedules, caps, rejections, usage and dry-run estimates."""

from __future__ import annotations

import asyncio
import math
from datetime import datetime

import pytest
from test_budget_checks import UTC8, check_schedule

from alltick_frames.budget import (
    DEFAULT_GUARD,
    Budget,
    DailyCapReached,
    DiskLedger,
    MemoryLedger,
    day_key,
    estimate_schedule,
    from_ticks,
    theoretical_minimum,
    token_fingerprint,
    windows_for,
)
from alltick_frames.budget.guard import COLD, FLOOR
from alltick_frames.core import errors
from alltick_frames.core.clock import FakeClock
from alltick_frames.core.plans import STRICT_FREE_ALL_ENDPOINTS, get_plan

G = DEFAULT_GUARD
#: 2026-05-01 10:00:00 UTC+8, a plain weekday morning far from the daily reset.
T0 = datetime(2026, 5, 1, 10, 0, tzinfo=UTC8).timestamp()
MIDNIGHT = datetime(2026, 5, 2, tzinfo=UTC8).timestamp()


def approx(values: list[float]) -> object:
    return pytest.approx(values, abs=1e-6)


def make(plan: str | object = "basic", start: float = T0, **options: object) -> Budget:
    """A budget on a FakeClock; its guard fixed at G unless told (exact schedules need it)."""
    options.setdefault("guard", G)
    return Budget(plan, clock=FakeClock(start), **options)  # type: ignore[arg-type]


async def run_sequence(budget: Budget, endpoints: list[str]) -> list[float]:
    """One task acquiring ``endpoints`` in order, in virtual time; returns the slots."""

    async def go() -> list[float]:
        return [await budget.acquire(e) for e in endpoints]

    clock = budget.clock
    assert isinstance(clock, FakeClock)
    (slots,) = await clock.run(go())
    return slots


def offsets(slots: list[float], start: float = T0) -> list[float]:
    return [s - start for s in slots]


# --------------------------------------------------------------------------- exact schedules


async def test_basic_kline_calls_are_one_second_plus_guard_apart() -> None:
    budget = make("basic")
    slots = await run_sequence(budget, ["kline"] * 5)
    assert offsets(slots) == approx([i * (1.0 + G) for i in range(5)])
    assert budget.clock.now() == slots[-1]  # acquire returned at the slot, not later


async def test_basic_batch_kline_calls_are_three_seconds_apart() -> None:
    budget = make("basic")
    slots = await run_sequence(budget, ["batch-kline"] * 4)
    assert offsets(slots) == approx([i * (3.0 + G) for i in range(4)])


async def test_basic_interleaved_endpoints_share_the_one_per_second_rate() -> None:
    budget = make("basic")
    endpoints = ["kline", "trade-tick"] * 3
    slots = await run_sequence(budget, endpoints)
    assert offsets(slots) == approx([i * (1.0 + G) for i in range(6)])
    check_schedule("basic", zip(endpoints, slots, strict=True), G)


async def test_premium_spaces_ten_calls_over_a_window_then_waits_for_the_next() -> None:
    budget = make("premium")
    slots = await run_sequence(budget, ["kline"] * 25)
    assert offsets(slots) == approx([k // 10 * (1.0 + G) + k % 10 * 0.1 for k in range(25)])


async def test_a_share_of_the_smoothing_spaces_calls_that_much_closer() -> None:
    budget = make("premium", smooth=0.25)
    slots = await run_sequence(budget, ["kline"] * 25)
    assert offsets(slots) == approx([k // 10 * (1.0 + G) + k % 10 * 0.025 for k in range(25)])
    with pytest.raises(ValueError, match="smooth"):
        make("premium", smooth=-0.5)


async def test_without_smoothing_premium_bursts_ten_calls_then_waits_a_window() -> None:
    budget = make("premium", smooth=False)
    slots = await run_sequence(budget, ["kline"] * 25)
    assert offsets(slots) == approx([0.0] * 10 + [1.0 + G] * 10 + [2 * (1.0 + G)] * 5)


async def test_free_is_one_call_per_ten_seconds_per_endpoint() -> None:
    budget = make("free")
    slots = await run_sequence(budget, ["kline"] * 3)
    assert offsets(slots) == approx([0.0, 10 + G, 2 * (10 + G)])


async def test_free_paces_one_call_per_ten_seconds_across_every_endpoint() -> None:
    """The strictest reading of "one interface request every 10 seconds" (issue 9 item 3):
    trades, then depth, then klines, then batch klines leave 10 s apart, never together."""
    budget = make("free")
    endpoints = ["trade-tick", "depth-tick", "kline", "batch-kline", "static_info"]
    slots = await run_sequence(budget, endpoints)
    assert offsets(slots) == approx([k * (10 + G) for k in range(5)])
    assert get_plan("free").all_endpoints == STRICT_FREE_ALL_ENDPOINTS


async def test_free_two_endpoints_stay_ten_seconds_apart_and_under_ten_a_minute() -> None:
    # Two endpoints at 1 per 10 s each would make 12 a minute; across endpoints it is 6.
    budget = make("free")
    endpoints = ["kline", "trade-tick"] * 6
    slots = await run_sequence(budget, endpoints)
    assert offsets(slots) == approx([k * (10 + G) for k in range(12)])
    check_schedule("free", zip(endpoints, slots, strict=True), G)


async def test_free_read_leniently_meets_the_ten_per_minute_cap() -> None:
    # A plan that drops the all-endpoints rule: each endpoint 1 per 10 s, 10 calls a minute.
    budget = make(get_plan("free").with_overrides(all_endpoints=None))
    endpoints = ["kline", "trade-tick"] * 6
    slots = await run_sequence(budget, endpoints)
    step = 10 + G
    pairs = [k * step for k in range(5) for _ in range(2)]
    assert offsets(slots) == approx([*pairs, 60 + G, 60 + G])


async def test_per_minute_cap_forces_a_wait() -> None:
    plan = get_plan("premium").with_overrides(per_minute=15)
    budget = make(plan)
    slots = await run_sequence(budget, ["kline"] * 16)
    spaced = [k * 0.1 for k in range(10)] + [1 + G + k * 0.1 for k in range(5)]
    assert offsets(slots) == approx([*spaced, 60 + G])


async def test_guard_is_configurable_and_zero_means_the_bare_window() -> None:
    slots = await run_sequence(make("basic", guard=0.0), ["kline"] * 3)
    assert offsets(slots) == approx([0.0, 1.0, 2.0])
    slots = await run_sequence(make("basic", guard=0.1), ["kline"] * 3)
    assert offsets(slots) == approx([0.0, 1.1, 2.2])
    with pytest.raises(ValueError, match="guard"):
        make("basic", guard=-1)


async def test_suspension_exchanges_are_paced_separately_and_outside_all_endpoints() -> None:
    budget = make("basic")
    assert budget.reserve("suspension/sse") == T0
    assert budget.reserve("suspension/nyse") == T0
    assert budget.reserve("kline") == T0  # the suspension service is not an endpoint of the API
    assert budget.reserve("suspension/sse") == pytest.approx(T0 + 60 + G)


def test_unknown_endpoint_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown endpoint 'klines'"):
        make().reserve("klines")


def test_windows_for_reads_the_plan_table() -> None:
    basic = get_plan("basic")
    assert [(w.key, w.calls, w.per) for w in windows_for(basic, "batch-kline")] == [
        ("endpoint:batch-kline", 1, 3.0),
        ("all-endpoints", 1, 1.0),
        ("per-minute", 60, 60.0),
    ]
    assert [w.key for w in windows_for(get_plan("free"), "kline")] == [
        "endpoint:kline",
        "all-endpoints",
        "per-minute",
    ]


async def test_idle_time_is_not_saved_up() -> None:
    # A sliding window has no bucket to refill: after a pause, one call, then the rate again.
    budget = make("basic")
    budget.reserve("kline")
    budget.clock.advance(100.0)
    assert budget.reserve("kline") == T0 + 100
    assert budget.reserve("kline") == pytest.approx(T0 + 101 + G)


# --------------------------------------------------------------------------- concurrency


async def test_fifty_concurrent_tasks_never_break_a_window() -> None:
    plan = get_plan("premium").with_overrides(per_minute=120)
    budget = make(plan)
    endpoints = ["kline", "trade-tick", "depth-tick", "batch-kline", "static_info"]
    done: list[tuple[str, float]] = []

    async def worker(i: int) -> None:
        for j in range(4):
            endpoint = endpoints[(i + j) % len(endpoints)]
            slot = await budget.acquire(endpoint)
            assert budget.clock.now() == slot
            done.append((endpoint, slot))

    await budget.clock.run(*(worker(i) for i in range(50)))
    assert len(done) == 200
    check_schedule(plan, done, G)
    # Full use of the plan: 200 calls at 120 a minute end in the fourth minute, not later.
    assert max(t for _, t in done) - T0 <= 3 * (60 + G) + 2 * (2 + G)


async def test_concurrent_callers_get_distinct_slots_in_arrival_order() -> None:
    budget = make("basic")
    slots = await budget.clock.run(*(budget.acquire("kline") for _ in range(5)))
    assert offsets(slots) == approx([i * (1 + G) for i in range(5)])


async def test_a_cancelled_waiter_gives_its_slot_back() -> None:
    budget = make("basic")
    clock = budget.clock
    first = asyncio.ensure_future(budget.acquire("kline"))
    second = asyncio.ensure_future(budget.acquire("kline"))
    await asyncio.sleep(0)
    assert first.done() and first.result() == T0
    second.cancel()
    with pytest.raises(asyncio.CancelledError):
        await second
    assert clock.waiting == 0
    assert budget.reserve("kline") == pytest.approx(T0 + 1 + G)  # the freed slot, reused


async def test_release_returns_an_unused_reservation() -> None:
    budget = make("basic")
    budget.reserve("kline")
    slot = budget.reserve("kline")
    budget.release("kline", slot)
    assert budget.reserve("kline") == slot
    assert budget.usage()["calls_today"] == 2


async def test_a_later_endpoint_may_fill_an_earlier_gap() -> None:
    # Basic: batch-kline waits 3 s for its own window, but the all-endpoints window has room
    # at 1.025 s, so a kline reserved afterwards takes that earlier slot.
    budget = make("basic")
    assert budget.reserve("batch-kline") == T0
    assert budget.reserve("batch-kline") == pytest.approx(T0 + 3 + G)
    assert budget.reserve("kline") == pytest.approx(T0 + 1 + G)
    assert budget.reserve("kline") == pytest.approx(T0 + 4 + 2 * G)  # 2.05 is too close to 3.025


# --------------------------------------------------------------------------- daily cap


async def test_daily_cap_raises_at_the_right_count_with_the_reset_time() -> None:
    plan = get_plan("basic").with_overrides(per_day=5)
    budget = make(plan)
    slots = await run_sequence(budget, ["kline"] * 5)
    assert len(slots) == 5
    with pytest.raises(DailyCapReached) as caught:
        await budget.acquire("kline")
    err = caught.value
    assert isinstance(err, errors.DailyCapReached) and isinstance(err, errors.AllTickError)
    assert err.endpoint == "kline"
    assert err.resets_at == MIDNIGHT
    assert "00:00 UTC+8" in str(err)
    assert budget.usage() == {
        "day": "2026-05-01",
        "calls_today": 5,
        "per_day": 5,
        "remaining_today": 0,
        "resets_at": MIDNIGHT,
        "exhausted": True,
    }


async def test_daily_cap_across_the_utc8_midnight() -> None:
    plan = get_plan("basic").with_overrides(per_day=2)
    budget = make(plan, start=MIDNIGHT - 3.0)
    assert budget.reserve("kline") == MIDNIGHT - 3
    assert budget.reserve("kline") == pytest.approx(MIDNIGHT - 2 + G)
    with pytest.raises(DailyCapReached) as caught:
        budget.reserve("kline")
    assert caught.value.resets_at == MIDNIGHT
    budget.clock.set(MIDNIGHT - 0.5)
    with pytest.raises(DailyCapReached):
        budget.reserve("kline")
    budget.clock.set(MIDNIGHT)  # 00:00 UTC+8 is 16:00 UTC: a new day, a fresh cap
    assert budget.reserve("kline") == MIDNIGHT
    usage = budget.usage()
    assert (usage["day"], usage["calls_today"], usage["remaining_today"]) == ("2026-05-02", 1, 1)
    assert usage["resets_at"] == MIDNIGHT + 86_400
    assert datetime.fromtimestamp(MIDNIGHT, UTC8).hour == 0


async def test_wait_for_reset_sleeps_until_midnight_utc8() -> None:
    plan = get_plan("basic").with_overrides(per_day=2)
    budget = make(plan, start=MIDNIGHT - 10, wait_for_reset=True)
    slots = await run_sequence(budget, ["kline"] * 3)
    assert slots == approx([MIDNIGHT - 10, MIDNIGHT - 9 + G, MIDNIGHT])


async def test_a_call_just_before_midnight_counts_against_both_days() -> None:
    # Jitter could land it on either side of the reset, so it uses up one call of each day.
    plan = get_plan("basic").with_overrides(per_day=1)
    budget = make(plan, start=MIDNIGHT - G / 2, wait_for_reset=True)
    assert budget.reserve("kline") == MIDNIGHT - G / 2
    assert budget.reserve("kline") == MIDNIGHT + 86_400  # 2026-05-02 was spent by it too


async def test_a_slot_pushed_past_midnight_counts_on_the_new_day() -> None:
    # Today is spent, but the next slot the windows allow is after the reset anyway: no error.
    plan = get_plan("basic").with_overrides(per_day=1)
    budget = make(plan, start=MIDNIGHT - 0.5)
    assert budget.reserve("kline") == MIDNIGHT - 0.5
    assert budget.reserve("kline") == pytest.approx(MIDNIGHT + 0.5 + G)
    budget.clock.set(MIDNIGHT + 1)
    assert budget.usage()["calls_today"] == 1
    with pytest.raises(DailyCapReached) as caught:
        budget.reserve("kline")
    assert caught.value.resets_at == MIDNIGHT + 86_400


# --------------------------------------------------------------------------- server feedback


def paced_run(budget: Budget, endpoint: str, n: int, latency: float = 0.005) -> list[float]:
    """``n`` calls to ``endpoint``, each sent at its slot and answered ``latency`` later."""
    clock = budget.clock
    assert isinstance(clock, FakeClock)
    slots = []
    for i in range(n):
        slot = budget.reserve(endpoint)
        clock.set(max(slot, clock.now()))
        budget.observe(endpoint, latency + 0.001 * (i % 10))  # a spread of 9 ms
        budget.on_accepted(endpoint)
        slots.append(slot)
    return slots


async def test_one_429_in_hundreds_widens_the_guard_and_blocks_only_its_own_windows() -> None:
    """Premium: 10 kline calls/s. The 429 of call 300 is explained by our own pace (the ledger
    holds a full window): the guard widens x1.5 at once, kline's and all endpoints' windows
    wait only until the ledger's next safe slot (not a full window), the per-minute cap and
    the suspension service are not touched, and the pace goes on with the wider guard."""
    budget = make("premium", guard=None)
    before = paced_run(budget, "kline", 300)
    learned = budget.guard
    assert FLOOR <= learned < COLD  # narrowed from its cold 0.1 s to the measured spread
    now = budget.clock.now()
    budget.on_rejected("kline", 429, sent=before[-1])
    assert budget.guard == pytest.approx(learned * 1.5)
    state = budget.ledger.state  # type: ignore[attr-defined]
    assert set(state.blocked) <= {"endpoint:kline", "all-endpoints"}
    # held until the next call's own spacing (0.1 s) plus the wider guard, not 1 s + guard
    assert from_ticks(max(state.blocked.values())) - now < 0.1 + budget.guard + 1e-3
    assert budget.next_slot("suspension/sse") == now
    after = paced_run(budget, "kline", 30)
    check_schedule("premium", [("kline", t) for t in after], budget.guard - 1e-3)
    check_schedule("premium", [("kline", t) for t in before + after], learned - 1e-3)
    assert budget.margin.info()["rejections"] == 1


async def test_a_rejection_only_its_call_saw_widens_once() -> None:
    """Calls already in flight when a 429 came were sent on the old guard: their 429s block,
    but do not widen the guard again."""
    budget = make("premium", guard=None)
    slots = paced_run(budget, "kline", 40)
    g = budget.guard
    for slot in slots[-3:]:
        budget.on_rejected("kline", 429, sent=slot)
    assert budget.guard == pytest.approx(g * 1.5)


async def test_a_429_the_ledger_cannot_explain_blocks_briefly_then_longer() -> None:
    """No call of ours fills the window, so someone else does: kline waits one call's spacing
    (0.1 s on Premium), twice that on the next such 429, up to a full window; an answered
    call ends the escalation."""
    budget = make("premium")
    waits = []
    for _ in range(6):
        now = budget.clock.now()
        budget.on_rejected("kline", 429)
        waits.append(budget.next_slot("kline") - now)
        budget.clock.advance(0.001)
    assert waits == approx([0.1, 0.2, 0.4, 0.8, 1 + G, 1 + G])
    budget.on_accepted("kline")
    now = budget.clock.now()
    budget.clock.set(budget.next_slot("kline"))
    budget.on_rejected("kline", 429)
    assert budget.next_slot("kline") - budget.clock.now() == pytest.approx(0.1, abs=1e-6)
    assert now < budget.clock.now()


async def test_429_blocks_exactly_the_windows_the_endpoint_counts_against() -> None:
    budget = make("basic")
    budget.on_rejected("batch-kline", 429)  # unexplained: one spacing of each window
    assert budget.next_slot("batch-kline") == pytest.approx(T0 + 3, abs=1e-6)  # its own
    assert budget.next_slot("kline") == pytest.approx(T0 + 1, abs=1e-6)  # all endpoints
    assert budget.next_slot("suspension/sse") == T0  # another service
    state = budget.ledger.state  # type: ignore[attr-defined]
    assert "per-minute" not in state.blocked


async def test_429_sends_sleeping_reservations_behind_the_block() -> None:
    """A block set while reservations sleep moves those inside it behind it."""
    budget = make("basic")
    clock = budget.clock
    got: dict[str, float] = {}

    async def call(name: str) -> None:
        got[name] = await budget.acquire("kline")

    async def reject_at(t: float) -> None:
        await clock.sleep_until(t)
        budget.on_rejected("kline", 605)

    # a's 605 is unexplained (one call of ours in the minute, not 60): every call waits 1 s,
    # until 1.5, so b (1.025) moves after c (2.05).
    await clock.run(call("a"), call("b"), call("c"), reject_at(T0 + 0.5))
    assert offsets([got["a"], got["c"], got["b"]]) == approx([0.0, 2 + 2 * G, 3 + 3 * G])
    check_schedule("basic", [("kline", t) for t in got.values()], G)


async def test_a_605_our_own_minute_explains_waits_for_its_oldest_call() -> None:
    plan = get_plan("premium").with_overrides(per_minute=5)
    budget = make(plan)
    slots = paced_run(budget, "kline", 5)
    budget.clock.advance(1.0)
    budget.on_rejected("kline", 605)
    assert budget.next_slot("kline") == pytest.approx(slots[0] + 60 + G, abs=1e-6)
    assert not budget.usage()["exhausted"]


async def test_an_unexplained_605_waits_a_call_spacing_doubling_and_ignores_echoes() -> None:
    budget = make("basic")  # 60 calls a minute: one call's spacing is 1 s
    budget.on_rejected("kline", 605, sent=T0)
    assert budget.next_slot("batch-kline") == pytest.approx(T0 + 1, abs=1e-6)
    budget.clock.advance(0.5)
    budget.on_rejected("kline", 605, sent=T0 - 0.01)  # sent before the first 605 came
    assert budget.next_slot("kline") == pytest.approx(T0 + 1, abs=1e-6)
    budget.clock.set(T0 + 1)
    budget.on_rejected("kline", 605, sent=T0 + 1)  # a probe after the block: refused again
    assert budget.next_slot("kline") == pytest.approx(T0 + 3, abs=1e-6)
    assert not budget.usage()["exhausted"]


def refuse_until(budget: Budget, end: float) -> int:
    """Every call refused with 605 until ``end`` (as when the day's cap is spent elsewhere);
    returns how many calls were sent."""
    clock = budget.clock
    assert isinstance(clock, FakeClock)
    sent = 0
    while True:
        try:
            slot = budget.reserve("kline")
        except DailyCapReached:
            break
        if slot >= end:
            budget.release("kline", slot)
            break
        clock.set(max(slot, clock.now()))
        sent += 1
        budget.on_rejected("kline", 605, sent=slot)
    return sent


async def test_605s_conclude_the_day_only_after_persisting_past_the_minute() -> None:
    """605s within one minute are not evidence of the day (the minute window explains them):
    probes go 1, 2, 4 ... s apart. Only 605s a full minute apart, three in a row with no call
    answered between, conclude the day is spent."""
    budget = make("basic")
    assert refuse_until(budget, T0 + 62) == 6  # at 0, 1, 3, 7, 15, 31 s
    assert not budget.usage()["exhausted"]
    assert refuse_until(budget, T0 + 120) == 1  # at 63 s: the second a minute on
    assert not budget.usage()["exhausted"]
    assert refuse_until(budget, T0 + 200) == 1  # at 123 s: the third
    assert budget.usage()["exhausted"] and budget.usage()["remaining_today"] == 0
    with pytest.raises(DailyCapReached) as caught:
        budget.reserve("kline")
    assert caught.value.resets_at == MIDNIGHT


async def test_on_accepted_breaks_a_run_of_605s() -> None:
    budget = make("basic", daily_cap_after_605s=2)
    budget.on_rejected("kline", 605)
    budget.clock.advance(60 + G)
    budget.on_accepted("kline")
    budget.on_rejected("kline", 605)
    assert not budget.usage()["exhausted"]


async def test_daily_cap_after_605s_is_configurable_and_wait_for_reset_waits() -> None:
    budget = make("basic", daily_cap_after_605s=1, wait_for_reset=True)
    budget.on_rejected("trade-tick", 605)
    assert budget.next_slot("kline") == MIDNIGHT


async def test_a_daily_cap_from_605s_is_probed_by_later_jobs_and_never_outlives_the_day(
    tmp_path,
) -> None:
    """The issue's case: three 605s marked the day spent in a cache directory, and every later
    job failed at once without a request. Now a later job (another budget on the same disk
    ledger) sends one call a minute on; an answer lifts the cap, a 605 keeps it; and it ends
    at 00:00 UTC+8 whatever happens."""
    clock = FakeClock(T0)
    first = Budget("basic", clock=clock, ledger=DiskLedger(tmp_path, "fp"), guard=G)
    first.daily_cap_after_605s = 1
    first.on_rejected("kline", 605)
    assert first.usage()["exhausted"]

    later = Budget("basic", clock=clock, ledger=DiskLedger(tmp_path, "fp"), guard=G)
    with pytest.raises(DailyCapReached):  # within the minute: no probe yet
        later.reserve("kline")
    clock.advance(60 + G)
    probe = later.reserve("kline")  # one call tests the cap ...
    with pytest.raises(DailyCapReached):  # ... and only one
        later.reserve("kline")
    clock.set(max(probe, clock.now()))
    later.on_rejected("kline", 605, sent=probe)  # refused: the cap holds, a minute more
    with pytest.raises(DailyCapReached):
        later.reserve("kline")
    clock.advance(60 + G)
    probe = later.reserve("kline")
    clock.set(max(probe, clock.now()))
    later.on_accepted("kline")  # answered: the day was not spent
    assert not later.usage()["exhausted"]
    assert later.reserve("kline") == pytest.approx(probe + 1 + G, abs=1e-6)

    spent = Budget("basic", clock=FakeClock(MIDNIGHT - 5), ledger=DiskLedger(tmp_path, "x"))
    spent.daily_cap_after_605s = 1
    spent.on_rejected("kline", 605)
    spent.clock.set(MIDNIGHT)  # type: ignore[attr-defined]
    assert not spent.usage()["exhausted"]
    assert spent.reserve("kline") == MIDNIGHT


def test_other_rets_are_ignored() -> None:
    budget = make("basic")
    for ret in (200, 400, 600, 603, 604, 606):
        budget.on_rejected("kline", ret)
    assert budget.next_slot("kline") == T0


# --------------------------------------------------------------------------- usage


def test_usage_counts_reservations_today() -> None:
    budget = make("basic")
    for _ in range(3):
        budget.reserve("kline")
    usage = budget.usage()
    assert usage["calls_today"] == 3 and usage["remaining_today"] == 86_400 - 3
    assert usage["day"] == "2026-05-01" and usage["resets_at"] == MIDNIGHT
    assert not usage["exhausted"]


def test_day_keys_are_utc8_dates() -> None:
    from alltick_frames.budget import day_index, day_start

    assert day_key(day_index(MIDNIGHT - 0.001)) == "day:2026-05-01"
    assert day_key(day_index(MIDNIGHT)) == "day:2026-05-02"
    assert day_start(day_index(T0)) == MIDNIGHT - 86_400


# --------------------------------------------------------------------------- dry runs


@pytest.mark.parametrize(
    ("plan", "calls", "expected"),
    [
        ("basic", {"kline": 100}, 99.0),
        ("basic", {"batch-kline": 10}, 27.0),
        ("basic", {"kline": 100, "batch-kline": 10}, 109.0),
        ("premium", {"kline": 25}, 2.0),
        ("premium", {"kline": 601}, 60.0),
        ("free", {"kline": 3}, 20.0),
        ("free", {"kline": 6, "trade-tick": 6}, 110.0),
        ("basic", {"suspension/sse": 3, "suspension/nyse": 3}, 120.0),
        ("basic", {"kline": 1}, 0.0),
        ("basic", {}, 0.0),
        ("free", {"kline": 1001}, math.inf),
    ],
)
def test_theoretical_minimum(plan: str, calls: dict[str, int], expected: float) -> None:
    assert theoretical_minimum(plan, calls) == expected


@pytest.mark.parametrize(
    ("plan", "calls"),
    [
        ("basic", {"kline": 200}),
        ("basic", {"kline": 200, "batch-kline": 100}),
        ("premium", {"kline": 1000, "batch-kline": 30}),
        ("professional", {"kline": 3000, "trade-tick": 500, "batch-kline": 60}),
        ("free", {"kline": 20}),
    ],
)
def test_estimate_is_within_five_percent_of_the_theoretical_minimum(
    plan: str, calls: dict[str, int]
) -> None:
    estimate = estimate_schedule(plan, calls, start=T0)
    floor = theoretical_minimum(plan, calls)
    assert floor <= estimate <= 1.05 * floor


async def test_estimate_orders_calls_to_keep_the_plan_busy() -> None:
    # Basic, 3 kline + 2 batch-kline: batch first (the longer chain), kline in its gaps:
    # batch 0, kline 1.025, kline 2.05, batch 3.075 (3.025 is too close to 2.05), kline 4.1.
    estimate = estimate_schedule("basic", {"kline": 3, "batch-kline": 2}, guard=G, start=T0)
    assert estimate == pytest.approx(4 * (1 + G))
    # Issuing them in a naive order takes longer; the estimate is what a good order achieves.
    budget = make("basic")
    endpoints = ["kline", "kline", "batch-kline", "kline", "batch-kline"]
    slots = await budget.clock.run(*(budget.acquire(e) for e in endpoints))
    assert max(slots) - min(slots) == pytest.approx(5 + 3 * G)


def test_estimate_waits_for_the_daily_reset_or_reports_infinity() -> None:
    plan = get_plan("basic").with_overrides(per_day=10)
    start = MIDNIGHT - 60
    assert estimate_schedule(plan, {"kline": 5}, 9, G, start=start) == pytest.approx(
        60.0  # one call fits today; the other four start at 00:00 UTC+8
        + 3 * (1 + G)
    )
    assert estimate_schedule(plan, {"kline": 5}, 4, G, start=start) == pytest.approx(
        4 * (1 + G)  # six left today: all five fit
    )
    late = estimate_schedule(plan, {"kline": 5}, used_today=9, start=start, wait_for_reset=False)
    assert late == math.inf
    assert estimate_schedule(plan, {}, start=start) == 0.0


# --------------------------------------------------------------------------- ledgers and tokens


def test_fingerprint_is_stable_short_and_not_the_token() -> None:
    token = "b7f1c9e0-secret-token-1234567890"
    fp = token_fingerprint(token)
    assert fp == token_fingerprint(token) and len(fp) == 16
    assert token not in fp and fp != token_fingerprint(token + "x")


def test_two_budgets_on_one_disk_ledger_share_the_windows(tmp_path) -> None:
    clock = FakeClock(T0)
    a = Budget("basic", clock=clock, ledger=DiskLedger(tmp_path, "fp"), guard=G)
    b = Budget("basic", clock=clock, ledger=DiskLedger(tmp_path, "fp"), guard=G)
    other = Budget("basic", clock=clock, ledger=DiskLedger(tmp_path, "other"), guard=G)
    slots = [a.reserve("kline"), b.reserve("trade-tick"), a.reserve("kline"), b.reserve("kline")]
    assert offsets(slots) == approx([i * (1 + G) for i in range(4)])
    assert other.reserve("kline") == T0  # another token has its own budget
    b.on_rejected("kline", 605)
    assert a.next_slot("kline") == pytest.approx(T0 + 60 + G)
    assert a.usage()["calls_today"] == 4
    for budget in (a, b, other):
        budget.close()


def test_disk_ledger_prunes_old_calls(tmp_path) -> None:
    clock = FakeClock(T0)
    budget = Budget("premium", clock=clock, ledger=DiskLedger(tmp_path, "fp"))
    for _ in range(300):
        clock.set(budget.reserve("kline"))
    clock.advance(120.0)
    budget.reserve("kline")
    sizes = budget.ledger.read(lambda s: {k: len(v) for k, v in s.calls.items()})
    assert sizes == {
        "endpoint:kline": 1,
        "endpoint:kline:spacing": 1,
        "all-endpoints": 1,
        "all-endpoints:spacing": 1,
        "per-minute": 1,
    }
    budget.close()


def test_for_token_on_disk_keeps_the_token_out_of_every_file(tmp_path) -> None:
    token = "zz-SECRET-token-0123456789abcdef"
    budget = Budget.for_token("basic", token, cache_dir=tmp_path, clock=FakeClock(T0))
    assert isinstance(budget.ledger, DiskLedger)
    assert budget.ledger.key == token_fingerprint(token)
    for _ in range(5):
        budget.reserve("kline")
    budget.on_rejected("kline", 429)
    budget.on_rejected("kline", 605)
    assert token not in repr(budget)
    budget.close()
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert files, "the ledger wrote nothing"
    for path in files:
        data = path.read_bytes()
        for needle in (token, "SECRET-token"):
            assert needle.encode() not in data, path
            assert needle.encode("utf-16-le") not in data, path


def test_for_token_in_memory_shares_one_ledger_per_token() -> None:
    a = Budget.for_token("basic", "token-one", clock=FakeClock(T0))
    b = Budget.for_token("basic", "token-one", clock=a.clock)
    c = Budget.for_token("basic", "token-two", clock=a.clock)
    assert isinstance(a.ledger, MemoryLedger)
    assert a.ledger is b.ledger and a.ledger is not c.ledger
    assert a.reserve("kline") == T0
    assert b.reserve("kline") == pytest.approx(T0 + 1 + G)
    assert c.reserve("kline") == T0


def test_estimate_assumes_a_fresh_learned_guard_on_a_quiet_link() -> None:
    """By default the estimate runs the learned guard: cold (0.1 s) for its first measured
    calls, then its floor, as on a link whose latencies do not spread."""
    learned = estimate_schedule("basic", {"kline": 40}, start=T0)
    cold = estimate_schedule("basic", {"kline": 40}, guard=COLD, start=T0)
    floor = estimate_schedule("basic", {"kline": 40}, guard=FLOOR, start=T0)
    assert floor < learned < cold
    assert learned == pytest.approx(39 + 15 * COLD + 24 * FLOOR, abs=0.02)
