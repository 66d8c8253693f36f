"""Plan windows, driven by the emulator's frozen rate clock (no test sleeps).

A call is admitted when fewer than ``calls`` admitted calls lie in ``(now - per, now]``;
per-endpoint and all-endpoint violations are 429, per-minute and daily ones 605; calls answered
429/605 consume nothing; every other authenticated call consumes quota.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import pytest
from emu_helpers import FAST, FOREX_PATH, STOCK_PATH, kline_data

from alltick_frames.core.plans import (
    BATCH_KLINE,
    DEPTH_TICK,
    ENDPOINTS,
    KLINE,
    PLANS,
    STATIC_INFO,
    TRADE_TICK,
    Rate,
    get_plan,
)
from alltick_frames.emulator.envelope import TOKEN_REQUIRED
from alltick_frames.emulator.limits import TokenQuota

# A Wednesday, 12:00 UTC+8 (04:00 UTC): far from the daily reset.
T0 = datetime(2024, 5, 15, 4, 0, tzinfo=UTC).timestamp()
STOCK_CODE = {"free": "TSLA.US", "all-hk": "700.HK", "all-cn": "600416.SH"}


def frozen(alltick_emulator, plan, **kwargs):
    return alltick_emulator(plan=plan, frozen_clock=True, clock_start=T0, **kwargs)


async def call(client, endpoint, code):
    if endpoint == KLINE:
        return await client.kline(code)
    if endpoint == BATCH_KLINE:
        return await client.batch([kline_data(code, 8, 2)])
    return await client.ticks(endpoint, [code])


async def test_the_error_pages_example_basic_two_klines_in_one_second(alltick_emulator, api):
    emu = frozen(alltick_emulator, "basic")
    client = api(emu)
    first = await client.kline("AAPL.US")
    emu.clock.advance(0.5)
    second = await client.kline("AAPL.US")
    assert (first.ret, first.msg) == (200, "ok")
    assert (second.ret, second.msg) == (429, "Too Many Requests")
    assert second.status == 200, "HTTP 200 unless mirror_status"
    emu.clock.advance(0.5)  # exactly one second after the first call: it left the window
    assert (await client.kline("AAPL.US")).ret == 200


@pytest.mark.parametrize("plan_name", list(PLANS))
@pytest.mark.parametrize("endpoint", [KLINE, TRADE_TICK, DEPTH_TICK, STATIC_INFO, BATCH_KLINE])
async def test_each_plans_endpoint_window(alltick_emulator, api, plan_name, endpoint):
    """``rate.calls`` calls fit in one window; one more is 429; a window later it fits."""
    plan = get_plan(plan_name)
    rate = plan.rate_for(endpoint)
    emu = frozen(alltick_emulator, plan_name)
    client = api(emu)
    code = STOCK_CODE.get(plan_name, "AAPL.US")
    for _ in range(rate.calls):
        assert (await call(client, endpoint, code)).ret == 200
    refused = await call(client, endpoint, code)
    assert (refused.ret, refused.msg) == (429, "Too Many Requests")
    emu.clock.advance(rate.per - 0.001)
    assert (await call(client, endpoint, code)).ret == 429
    emu.clock.advance(0.001)
    assert (await call(client, endpoint, code)).ret == 200


@pytest.mark.parametrize("plan_name", ["basic", "premium", "professional", "all-us"])
async def test_all_endpoints_window(alltick_emulator, api, plan_name):
    """Calls spread over endpoints still share the all-endpoints rate."""
    plan = get_plan(plan_name)
    assert plan.all_endpoints is not None
    emu = frozen(alltick_emulator, plan_name)
    client = api(emu)
    spread = [KLINE, TRADE_TICK, DEPTH_TICK, STATIC_INFO] * plan.all_endpoints.calls
    for endpoint in spread[: plan.all_endpoints.calls]:
        assert (await call(client, endpoint, "AAPL.US")).ret == 200
    endpoint = spread[plan.all_endpoints.calls]
    assert (await call(client, endpoint, "AAPL.US")).ret == 429
    emu.clock.advance(plan.all_endpoints.per)
    assert (await call(client, endpoint, "AAPL.US")).ret == 200


async def test_basic_batch_kline_min_interval(alltick_emulator, api):
    emu = frozen(alltick_emulator, "basic")
    client = api(emu)
    assert (await call(client, BATCH_KLINE, "AAPL.US")).ret == 200
    emu.clock.advance(2.9)
    assert (await call(client, BATCH_KLINE, "AAPL.US")).ret == 429
    assert (await client.kline("AAPL.US")).ret == 200, "other endpoints have their own window"
    emu.clock.advance(1.1)
    assert (await call(client, BATCH_KLINE, "AAPL.US")).ret == 200


async def test_free_per_minute_cap_is_605_in_the_lenient_reading(alltick_emulator, api):
    """Read leniently, Free allows each endpoint once per 10 s but only 10 calls a minute in
    total: rotate over four endpoints every 2.5 s until the minute is full; the next call is
    605. (By default "one interface every 10 seconds" admits 6 calls a minute, so the minute
    cap cannot bind; nor can it on the paid plans, whose per-second windows admit at most
    ``per_minute`` calls a minute: the quota test below checks it with relaxed rates.)
    """
    emu = frozen(alltick_emulator, "free", lenient_free=True)
    client = api(emu)
    endpoints = [KLINE, TRADE_TICK, DEPTH_TICK, STATIC_INFO]
    for i in range(10):
        reply = await call(client, endpoints[i % 4], "TSLA.US")
        assert reply.ret == 200, (i, reply.raw)
        emu.clock.advance(2.5)
    reply = await call(client, endpoints[10 % 4], "TSLA.US")
    assert (reply.ret, reply.msg) == (605, "too many requests")
    emu.clock.advance(60 - 25)  # the first call (t = 0) leaves the minute
    assert (await call(client, endpoints[10 % 4], "TSLA.US")).ret == 200


async def test_per_minute_cap_of_a_custom_plan(alltick_emulator, api):
    emu = frozen(alltick_emulator, FAST.with_overrides(name="m", per_minute=100))
    client = api(emu)
    for _ in range(100):
        assert (await client.kline("AAPL.US")).ret == 200
    assert (await client.kline("AAPL.US")).ret == 605
    emu.clock.advance(60)
    assert (await client.kline("AAPL.US")).ret == 200


async def test_daily_cap_is_605_until_midnight_utc8(alltick_emulator, api):
    plan = FAST.with_overrides(name="daily3", per_day=3)
    # 23:59:58 UTC+8 = 15:59:58 UTC
    start = datetime(2024, 5, 15, 15, 59, 58, tzinfo=UTC).timestamp()
    emu = alltick_emulator(plan=plan, frozen_clock=True, clock_start=start)
    client = api(emu)
    for _ in range(3):
        assert (await client.kline("AAPL.US")).ret == 200
    reply = await client.kline("AAPL.US")
    assert (reply.ret, reply.msg) == (605, "too many requests")
    emu.clock.advance(1.999)
    assert (await client.kline("AAPL.US")).ret == 605, "still the same UTC+8 day"
    emu.clock.advance(0.001)
    assert (await client.kline("AAPL.US")).ret == 200, "a new day at 00:00 UTC+8"


async def test_rejected_calls_consume_nothing(alltick_emulator, api):
    emu = frozen(alltick_emulator, "basic")
    client = api(emu)
    assert (await client.kline("AAPL.US")).ret == 200  # t = 0
    emu.clock.advance(0.5)
    assert (await client.kline("AAPL.US")).ret == 429  # t = 0.5, not counted ...
    emu.clock.advance(0.5)
    assert (await client.kline("AAPL.US")).ret == 200  # ... or this would be 429 at t = 1

    minute = FAST.with_overrides(name="minute5", per_minute=5)
    emu = frozen(alltick_emulator, minute)
    client = api(emu)
    for _ in range(5):  # t = 0..4
        assert (await client.kline("AAPL.US")).ret == 200
        emu.clock.advance(1)
    for _ in range(5):  # t = 5..9, all refused and not counted
        assert (await client.kline("AAPL.US")).ret == 605
        emu.clock.advance(1)
    emu.clock.advance(60.5 - 10)  # t = 60.5: t = 0 left the window, t = 1..4 remain
    assert (await client.kline("AAPL.US")).ret == 200
    assert (await client.kline("AAPL.US")).ret == 605


async def test_error_answers_consume_quota(alltick_emulator, api):
    emu = frozen(alltick_emulator, "basic")
    client = api(emu)
    assert (await client.kline("NOPE.US")).ret == 600
    emu.clock.advance(0.5)
    assert (await client.kline("AAPL.US")).ret == 429
    emu.clock.advance(0.5)
    assert (await client.get("kline", path=STOCK_PATH, query="not json")).ret == 402
    emu.clock.advance(0.5)
    assert (await client.kline("AAPL.US")).ret == 429
    assert emu.stats()["demo"]["kline"] == {"600": 1, "429": 2, "402": 1}


async def test_unknown_tokens_consume_nothing(alltick_emulator, api):
    emu = frozen(alltick_emulator, "basic")
    assert (await api(emu, "intruder").kline("AAPL.US")).ret == 401
    assert (await api(emu).kline("AAPL.US")).ret == 200


async def test_stock_and_forex_paths_share_the_endpoint_window(alltick_emulator, api):
    emu = frozen(alltick_emulator, "basic")
    client = api(emu)
    assert (await client.kline("AAPL.US", path=STOCK_PATH)).ret == 200
    emu.clock.advance(0.5)
    assert (await client.kline("EURUSD", path=FOREX_PATH)).ret == 429
    emu.clock.advance(2.5)
    assert (await call(client, BATCH_KLINE, "EURUSD")).ret == 200
    emu.clock.advance(1.5)
    assert (await call(client, BATCH_KLINE, "AAPL.US")).ret == 429


async def test_tokens_are_limited_independently(alltick_emulator, api):
    emu = alltick_emulator(tokens={"a": "basic", "b": "basic"}, frozen_clock=True)
    assert (await api(emu, "a").kline("AAPL.US")).ret == 200
    assert (await api(emu, "b").kline("AAPL.US")).ret == 200
    assert (await api(emu, "a").kline("AAPL.US")).ret == 429


async def test_free_is_one_call_per_ten_seconds_across_endpoints(alltick_emulator, api):
    """ "Only one interface can be requested every 10 seconds" binds across endpoints."""
    emu = frozen(alltick_emulator, "free")
    client = api(emu)
    assert (await call(client, KLINE, "TSLA.US")).ret == 200
    for endpoint in (TRADE_TICK, DEPTH_TICK, STATIC_INFO, BATCH_KLINE):
        emu.clock.advance(2)
        assert (await call(client, endpoint, "TSLA.US")).ret == 429, endpoint
    emu.clock.advance(2)  # t = 10: the kline call left the window
    assert (await call(client, TRADE_TICK, "TSLA.US")).ret == 200
    assert emu.stats()["demo"] == {
        "kline": {"200": 1},
        "trade-tick": {"429": 1, "200": 1},
        "depth-tick": {"429": 1},
        "static_info": {"429": 1},
        "batch-kline": {"429": 1},
    }


async def test_lenient_free_paces_each_endpoint_apart(alltick_emulator, api):
    emu = frozen(alltick_emulator, "free", lenient_free=True)
    client = api(emu)
    assert (await call(client, KLINE, "TSLA.US")).ret == 200
    emu.clock.advance(1)
    assert (await call(client, TRADE_TICK, "TSLA.US")).ret == 200
    emu.clock.advance(1)
    assert (await call(client, TRADE_TICK, "TSLA.US")).ret == 429, "its own window still holds"
    assert emu.stats()["demo"] == {"kline": {"200": 1}, "trade-tick": {"200": 1, "429": 1}}


async def test_suspension_is_one_call_per_minute_per_exchange(alltick_emulator, api):
    """Too frequent is HTTP 429 (api-evangelist's halt skill), with a plain-text body."""
    emu = frozen(alltick_emulator, "professional")
    client = api(emu)
    assert (await client.suspension("sse")).status == 200
    assert (await client.suspension("nyse")).status == 200, "each exchange has its own window"
    refused = await client.suspension("sse")
    assert (refused.status, refused.raw) == (429, b"Too Many Requests")
    assert (await client.kline("AAPL.US")).ret == 200, "quote windows are untouched"
    emu.clock.advance(60)
    assert (await client.suspension("sse")).status == 200
    assert emu.stats()["demo"]["suspension/sse"] == {"200": 2, "429": 1}


async def test_suspension_token_errors(alltick_emulator, api):
    """No token: the host's gate; a wrong one: the service's documented HTTP 500 error."""
    emu = alltick_emulator(plan="basic")
    missing = await api(emu, None).suspension("nasdaq")
    assert (missing.status, missing.raw) == (401, TOKEN_REQUIRED)
    wrong = await api(emu, "nope").suspension("nasdaq")
    assert wrong.status == 500
    assert wrong.json == {"success": False, "error": "token invalid"}
    assert emu.stats() == {
        "<missing>": {"suspension/nasdaq": {"401": 1}},
        "nope": {"suspension/nasdaq": {"500": 1}},
    }


# --- the same rules, checked on the quota object for every plan (fast, no HTTP) ----------


RELAXED = {e: Rate(10**9, 1.0) for e in ENDPOINTS}


@pytest.mark.parametrize("plan_name", list(PLANS))
def test_quota_minute_cap_of_every_plan(plan_name):
    plan = get_plan(plan_name)
    relaxed = plan.with_overrides(endpoint_rates=RELAXED, all_endpoints=None)
    quota = TokenQuota(relaxed, lenient_free=True)
    for _ in range(plan.per_minute):
        assert quota.admit(KLINE, T0) is None
    assert quota.admit(KLINE, T0 + 59.999) == 605
    assert quota.admit(KLINE, T0 + 60) is None


@pytest.mark.parametrize("plan_name", ["free", "basic"])  # the others take millions of calls
def test_quota_daily_cap(plan_name):
    plan = get_plan(plan_name)
    quota = TokenQuota(
        plan.with_overrides(endpoint_rates=RELAXED, all_endpoints=None, per_minute=10**9),
        lenient_free=True,
    )
    for _ in range(plan.per_day):
        assert quota.admit(KLINE, T0) is None
    assert quota.admit(KLINE, T0) == 605
    assert quota.admit(KLINE, T0 + 86_400) is None


def test_window_counts_the_half_open_interval():
    quota = TokenQuota(get_plan("basic"))
    assert quota.admit(KLINE, 100.0) is None
    assert quota.admit(KLINE, 100.999) == 429
    assert quota.admit(KLINE, 101.0) is None


def test_a_call_dated_before_one_admitted_earlier_still_fits_the_later_window():
    # Calls are dated at the front door but admitted in the loop's order: one dated 100.8
    # may come after one dated 100.9. It must not crowd the window ending at 100.9.
    plan = get_plan("basic").with_overrides(endpoint_rates={KLINE: (2, 1.0)}, all_endpoints=None)
    quota = TokenQuota(plan)
    assert quota.admit(KLINE, 100.5) is None
    assert quota.admit(KLINE, 100.9) is None
    assert quota.admit(KLINE, 100.8) == 429  # (99.9, 100.9] would hold three
    assert quota.admit(KLINE, 101.5) is None  # (100.5, 101.5]: 100.9 and 101.5
    assert quota.admit(KLINE, 101.85) == 429  # (100.85, 101.85]: 100.9 and 101.5


async def test_a_call_is_dated_when_it_reaches_the_front_door_not_when_the_loop_reads_it(
    alltick_emulator, api
):
    # One kline a second. The emulator's loop is stalled (as it is while it builds another
    # answer, or waits for a core) when the first call arrives, and reads it 0.4 s late.
    # Dated when read, the second call, sent 1.1 s after the first, would be 0.7 s after it,
    # and refused; AllTick's front door does not wait for its loop.
    emu = alltick_emulator(plan="basic")
    client = api(emu)
    emu._loop.call_soon_threadsafe(time.sleep, 0.4)  # a stall inside the emulator's loop
    await asyncio.sleep(0.05)
    sent = time.monotonic()
    first = await client.kline("AAPL.US")
    assert first.json["ret"] == 200
    await asyncio.sleep(max(0.0, sent + 1.1 - time.monotonic()))
    second = await client.kline("AAPL.US")
    assert second.json["ret"] == 200
    assert emu.stats()["demo"]["kline"] == {"200": 2}


@pytest.mark.parametrize("refusals_count", [False, True])
def test_refused_calls_count_only_under_the_other_reading(refusals_count):
    """Contract reading 9: a call answered 429 consumes nothing; with ``refusals_count`` it
    fills its endpoint's and the all-endpoints windows as an admitted call would, so a
    client that keeps sending into a full window keeps it full."""
    plan = get_plan("basic").with_overrides(
        endpoint_rates={e: Rate(2, 1.0) for e in ENDPOINTS},
        all_endpoints=Rate(3, 1.0),
        per_minute=100,
    )
    quota = TokenQuota(plan, refusals_count=refusals_count)
    assert quota.admit(KLINE, T0) is None
    assert quota.admit(KLINE, T0 + 0.1) is None
    assert quota.admit(KLINE, T0 + 0.2) == 429  # kline's 2 a second
    # T0 has left the window; the refused call at +0.2 holds kline's second place only
    # under the other reading, and the all-endpoints window's third.
    assert quota.admit(KLINE, T0 + 1.05) == (429 if refusals_count else None)
    assert quota.admit(TRADE_TICK, T0 + 1.06) == (429 if refusals_count else None)
    assert quota.admit(KLINE, T0 + 1.25) is None  # +0.1 and +0.2 have both left the window
