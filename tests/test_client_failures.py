"""Failure paths: never a silent gap, the daily cap, a refused token, raising instead of
returning, and retrying only what failed. Counts come from the emulator."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pandas as pd
import pytest
from aiohttp import web
from test_client_support import (
    GUARD,
    NOW,
    WarpClock,
    assert_same_bars,
    client,
    codes_by_class,
    fast_plan,
    reference,
    served,
    tokens,
)

from alltick_frames import AllTick, AuthError, FetchFailed, RetryPolicy
from alltick_frames.budget import Budget
from alltick_frames.core.kinds import explain

PLAN = fast_plan(100)


async def test_stocks_past_500_bars_get_one_page_and_a_not_pageable_row(alltick_emulator) -> None:
    emu = alltick_emulator(tokens=tokens(PLAN))
    stocks, fx = ["AAPL.US", "700.HK", "600519.SH"], ["EURUSD", "BTCUSDT"]
    async with client(emu, PLAN) as c:
        result = await c.klines(stocks + fx, "1d", count=800)

    assert served(emu) == {"kline": {"200": 3 + 2 * 2}}  # a page per stock, two per FX code
    sizes = result.data.groupby("code", observed=True).size()
    assert sizes[stocks].eq(500).all() and sizes[fx].eq(800).all()
    assert_same_bars(result.data, await reference(emu, stocks, 8, 500))
    failures = result.failures
    assert list(failures["code"]) == stocks
    assert set(failures["kind"]) == {"not-pageable"} and failures["ret"].isna().all()
    assert set(failures["attempts"]) == {1} and set(failures["endpoint"]) == {"kline"}
    assert failures["msg"].str.contains("asked for 800 bars, 500 could be fetched").all()
    assert set(failures["meaning"]) == {explain("not-pageable")[0]}


async def test_fx_beyond_the_plans_history_gets_a_history_limit_row(alltick_emulator) -> None:
    plan = fast_plan(100, history_days=365)
    emu = alltick_emulator(tokens=tokens(plan))
    async with client(emu, plan) as c:
        by_count = await c.klines(["EURUSD", "GOLD"], "1d", count=600)
        by_range = await c.klines(["BTCUSDT"], "1d", start=NOW - pd.Timedelta(days=730))

    # A short page ends the chain: one call per code, and every bar the plan reaches.
    assert served(emu) == {"kline": {"200": 3}}
    sizes = by_count.data.groupby("code", observed=True).size()
    assert 250 < sizes["EURUSD"] < 320 and len(by_range.data) == 365  # crypto: every day
    for result in (by_count, by_range):
        assert set(result.failures["kind"]) == {"history-limit"}
        assert set(result.failures["meaning"]) == {explain("history-limit")[0]}
    assert list(by_count.failures["msg"]) == [
        f"asked for 600 bars, {sizes[c]} could be fetched" for c in ("EURUSD", "GOLD")
    ]
    first = by_range.data["timestamp"].min()
    assert list(by_range.failures["msg"]) == [
        f"no bars before {first:%Y-%m-%d %H:%M}Z could be fetched"
    ]


async def test_the_daily_cap_stops_the_job_and_retry_resumes_after_the_reset(
    alltick_emulator,
) -> None:
    """Five calls a day for twelve codes: the job makes exactly five calls and lists the other
    seven as ``daily-cap``; after each reset, ``retry`` asks for those only. At four calls a
    second, the fifth call waits for its slot while the sixth meets the cap: it still goes."""
    plan = fast_plan(4, per_day=5)
    emu = alltick_emulator(tokens=tokens(plan), process=True)
    codes = codes_by_class(emu)["US"][:12]
    warp = WarpClock(emu.clock)
    async with client(emu, plan, budget=Budget(plan, clock=warp, guard=GUARD)) as c:
        first = await c.klines(codes, "1d", count=10)
        assert served(emu) == {"kline": {"200": 5}}
        assert list(dict.fromkeys(first.data["code"])) == codes[:5]
        assert list(first.failures["code"]) == codes[5:]
        assert set(first.failures["kind"]) == {"daily-cap"} and first.failures["ret"].isna().all()
        assert set(first.failures["attempts"]) == {0}
        assert first.failures["msg"].str.contains("daily call cap is used up").all()
        assert c.budget.usage()["exhausted"]

        warp.advance(86_400)  # the next day, on both sides
        second = await c.retry(first)
        assert served(emu) == {"kline": {"200": 10}}
        assert list(second.failures["code"]) == codes[10:]
        warp.advance(86_400)
        third = await c.retry(second)
        assert served(emu) == {"kline": {"200": 12}}

    assert third.ok and third.stats.calls == {"kline": 2}
    assert list(dict.fromkeys(third.data["code"])) == codes
    assert_same_bars(third.data, await reference(emu, codes, 8, 10))


async def test_a_chain_stopped_part_way_keeps_the_pages_it_got(alltick_emulator) -> None:
    """Four calls a day, and one FX code whose 3,000 hourly bars take six pages: the four
    pages fetched are in ``.data`` (the newest 2,000 bars, exactly as served, nothing lost),
    and the code is listed as ``daily-cap``."""
    plan = fast_plan(4, per_day=4)
    emu = alltick_emulator(tokens=tokens(plan), process=True)
    warp = WarpClock(emu.clock)
    async with client(emu, plan, budget=Budget(plan, clock=warp, guard=GUARD)) as c:
        result = await c.klines(["EURUSD"], "1h", count=3000)
    assert served(emu) == {"kline": {"200": 4}}
    assert list(result.failures["code"]) == ["EURUSD"]
    assert list(result.failures["kind"]) == ["daily-cap"]
    assert len(result.data) == 2000 and result.data["timestamp"].is_monotonic_increasing
    assert_same_bars(result.data, await reference(emu, ["EURUSD"], 5, 2000))


@pytest.mark.parametrize("mirror_status", [False, True], ids=["ret-401", "http-401"])
async def test_a_refused_token_raises_auth_error_at_once(alltick_emulator, mirror_status) -> None:
    emu = alltick_emulator(tokens=tokens(PLAN), mirror_status=mirror_status)
    codes = codes_by_class(emu)["US"][:60]
    async with client(emu, PLAN, token="tk-not-a-customer") as c:
        with pytest.raises(AuthError) as info:
            await c.klines(codes, "1d", count=5)
        with pytest.raises(AuthError):
            await c.latest(codes)
        concurrency = c.concurrency
    err = info.value
    assert (err.ret, err.endpoint, err.kind) == (401, "kline", "auth")
    assert "the token was refused" in str(err) and "tk-not-a-customer" not in str(err)
    answers = served(emu, "tk-not-a-customer")
    # The job stopped at the first answer: only calls already in flight were answered too.
    assert set(answers) == {"kline", "batch-kline"} and 1 <= answers["kline"]["401"] <= concurrency
    assert sum(answers["batch-kline"].values()) <= 2 and served(emu) == {}


async def test_raise_on_failure_raises_fetch_failed_with_the_failures(alltick_emulator) -> None:
    emu = alltick_emulator(tokens=tokens(PLAN))
    codes = ["AAPL.US", "NOPE.US", "EURUSD", "NOSUCHFX"]
    async with client(emu, PLAN) as c:
        returned = await c.klines(codes, "1d", count=5)
    async with client(emu, PLAN, raise_on_failure=True) as c:
        with pytest.raises(FetchFailed) as info:
            await c.klines(codes, "1d", count=5)
        assert (await c.klines(["AAPL.US"], "1d", count=5)).ok  # nothing failed: no raise
    err = info.value
    pd.testing.assert_frame_equal(err.failures, returned.failures)
    assert (err.ret, err.endpoint, err.codes) == (600, "kline", ("NOPE.US", "NOSUCHFX"))
    assert str(err).startswith("2 item(s) failed (2 code-invalid); see .failures")
    assert served(emu) == {"kline": {"200": 5, "600": 4}}


async def test_fetch_failed_carries_the_partial_result(alltick_emulator) -> None:
    emu = alltick_emulator(tokens=tokens(PLAN))
    async with client(emu, PLAN, raise_on_failure=True) as c:
        with pytest.raises(FetchFailed) as info:
            await c.klines(["AAPL.US", "NOPE.US"], "1d", count=5)
    assert info.value.result is not None
    assert list(info.value.result.data["code"].unique()) == ["AAPL.US"]


async def test_retry_asks_again_for_the_failed_items_only(alltick_emulator) -> None:
    """One try per call and 30% dropped connections: some codes fail. ``retry`` asks again
    for those (their whole page chains) and not for the unknown code, and the merged data
    equals a clean fetch, with no bar twice."""
    emu = alltick_emulator(tokens=tokens(PLAN), faults={"reset": 0.3}, seed=11)
    by_class = codes_by_class(emu)
    pageable, stocks = by_class["fx"][:8] + by_class["crypto"][:4], by_class["US"][:12]
    codes = [*pageable, "NOSUCHFX", *stocks]
    # One call in flight: the seeded faults then strike the same requests every run.
    one_at_a_time = {"retry": RetryPolicy(attempts=1, base=0.01), "concurrency": 1}
    async with client(emu, PLAN, **one_at_a_time) as c:
        first = await c.klines(codes, "1h", count=700)
        lost = first.failures[first.failures["kind"] == "transport"]
        assert len(lost) >= 3 and set(first.failures["kind"]) == {
            "transport",
            "code-invalid",
            "not-pageable",
        }
        emu.set_faults(reset=0.0)
        before = served(emu)["kline"].get("200", 0)
        second = await c.retry(first)

    redo = set(lost["code"])
    expected = sum(2 if code in pageable else 1 for code in redo)  # 700 bars: two pages
    assert served(emu)["kline"]["200"] - before == expected
    assert second.stats.calls == {"kline": expected} and served(emu)["kline"]["600"] == 1
    assert set(second.failures["kind"]) == {"code-invalid", "not-pageable"}
    assert not second.data.duplicated(["code", "interval", "timestamp"]).any()
    assert list(dict.fromkeys(second.data["code"])) == [c for c in codes if c != "NOSUCHFX"]
    assert_same_bars(second.data, await reference(emu, pageable, 5, 700))
    assert_same_bars(second.data, await reference(emu, stocks, 5, 500))

    before = served(emu)["kline"]["200"]
    async with client(emu, PLAN) as c:
        everything = await c.retry(second, everything=True)
    # Every failed code again, and only those: the unknown one and the stocks.
    assert served(emu)["kline"]["600"] == 2
    assert served(emu)["kline"]["200"] - before == len(stocks)
    assert set(everything.failures["code"]) == {"NOSUCHFX", *stocks}


async def test_a_server_that_splits_nothing_is_met_by_splitting(alltick_emulator) -> None:
    """The client believes in 40 groups a call, the token's plan allows 15 (and answers 603):
    each refused call is halved until it fits, and every group is delivered."""
    emu = alltick_emulator(tokens=tokens(fast_plan(100, batch_groups=15)))
    codes = codes_by_class(emu)["fx"][:20]
    async with client(emu, fast_plan(100, batch_groups=40)) as c:
        result = await c.latest(codes, ["1m", "1d"])
    # 40 groups: 603; two calls of 20 groups (10 codes): 603; four of 10 or so: 200.
    assert served(emu) == {"batch-kline": {"603": 3, "200": 4}}
    assert result.ok and len(result.data) == 40 and result.stats.splits == 3


def kline_data(code: str, kline_type: int, num: int, price: str) -> dict[str, Any]:
    bars = [
        {"timestamp": str(1_700_006_400 + 86_400 * i), "open_price": price, "close_price": "1.5",
         "high_price": "1.6", "low_price": "1.4", "volume": "0", "turnover": "0"}
        for i in range(num)
    ]  # fmt: skip
    return {"code": code, "kline_type": kline_type, "kline_list": bars}


@pytest.fixture
async def one_bad_number() -> AsyncIterator[str]:
    """A server that answers like AllTick, except that BADFX's bars hold ``"n/a"`` for a price
    (the emulator only breaks whole bodies). Returns its base URL."""

    def price(code: str) -> str:
        return "n/a" if code == "BADFX" else "1.5"

    def answer(trace: str, data: dict[str, Any]) -> web.Response:
        body = {"ret": 200, "msg": "ok", "trace": trace, "data": data}
        return web.json_response(body)

    async def kline(request: web.Request) -> web.Response:
        query = json.loads(request.query["query"])
        d = query["data"]
        data = kline_data(d["code"], d["kline_type"], d["query_kline_num"], price(d["code"]))
        return answer(query["trace"], data)

    async def batch_kline(request: web.Request) -> web.Response:
        query = json.loads(await request.read())
        groups = []
        for g in query["data"]["data_list"]:
            group = kline_data(g["code"], g["kline_type"], g["query_kline_num"], price(g["code"]))
            bars = group.pop("kline_list")
            groups.append({**group, "kline_data": bars})
        return answer(query["trace"], {"kline_list": groups})

    app = web.Application()
    app.router.add_get("/quote-b-api/kline", kline)
    app.router.add_post("/quote-b-api/batch-kline", batch_kline)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    await runner.cleanup()


#: The market clock of the tests on ``one_bad_number``: Friday 2023-11-17 12:00 UTC, when the
#: three day bars it serves (from Wednesday the 15th) are the newest three.
BAD_NUMBER_NOW = 1_700_006_400 + 2 * 86_400 + 43_200


async def test_an_unreadable_bar_fails_its_code_not_the_job_klines(one_bad_number) -> None:
    plan = fast_plan(1000)
    options: dict[str, Any] = {"retry": RetryPolicy(3, 0.01), "clock": lambda: BAD_NUMBER_NOW}
    async with AllTick("tk", plan, one_bad_number, cache=False, **options) as c:
        result = await c.klines(["EURUSD", "BADFX", "GOLD"], "1d", count=3)
    assert list(result.failures["code"]) == ["BADFX"]
    assert list(dict.fromkeys(result.data["code"])) == ["EURUSD", "GOLD"]


async def test_an_unreadable_bar_fails_its_code_not_the_job_with_the_cache(
    one_bad_number, tmp_path
) -> None:
    plan = fast_plan(1000)
    options: dict[str, Any] = {"retry": RetryPolicy(3, 0.01), "clock": lambda: BAD_NUMBER_NOW}
    async with AllTick("tk", plan, one_bad_number, cache=tmp_path, **options) as c:
        result = await c.klines(["EURUSD", "BADFX", "GOLD"], "1d", count=3)
    assert list(result.failures["code"]) == ["BADFX"]
    assert list(result.failures["kind"]) == ["unreadable"]
    assert "'open_price' holds a value that is not a number" in result.failures["msg"][0]
    assert list(dict.fromkeys(result.data["code"])) == ["EURUSD", "GOLD"]
    assert result.stats.calls == {"kline": 3}  # the unreadable code is not asked again


async def test_an_unreadable_bar_fails_its_code_not_the_job_latest(one_bad_number) -> None:
    plan = fast_plan(1000)
    async with AllTick("tk", plan, one_bad_number, cache=False, retry=RetryPolicy(3, 0.01)) as c:
        result = await c.latest(["EURUSD", "BADFX", "GOLD"], "1d")
    assert list(result.failures["code"]) == ["BADFX"]
    assert list(dict.fromkeys(result.data["code"])) == ["EURUSD", "GOLD"]


async def test_a_retried_result_counts_all_its_rows(alltick_emulator) -> None:
    plan = fast_plan(100, per_day=2)
    emu = alltick_emulator(tokens=tokens(plan))
    warp = WarpClock(emu.clock)
    async with client(emu, plan, budget=Budget(plan, clock=warp, guard=GUARD)) as c:
        first = await c.klines(["AAPL.US", "EURUSD", "GOLD"], "1d", count=10)
        warp.advance(86_400)
        merged = await c.retry(first)
    assert merged.ok and len(merged.data) == 30
    assert merged.stats.rows == len(merged.data)
