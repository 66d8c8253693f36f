"""trades, depth, static_info and suspensions against the emulator: rows, caps, left-out codes."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
import pandas as pd
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

import alltick_frames as af
from alltick_frames import frames
from alltick_frames.api.client import AllTick
from alltick_frames.budget import Budget
from alltick_frames.core.errors import AuthError, ServiceError
from alltick_frames.core.plans import ENDPOINTS, FREE_SYMBOLS, Plan, Rate, get_plan
from alltick_frames.emulator import CATALOGUE, EmulatorServer
from alltick_frames.emulator import market as emu_market
from alltick_frames.emulator import suspension as emu_suspension
from alltick_frames.emulator.clock import parse_moment
from alltick_frames.emulator.pytest_plugin import FIXTURE_NOW
from alltick_frames.run.quote_jobs import SuspensionJob
from alltick_frames.run.runner import RetryPolicy
from alltick_frames.run.transport import Response

NOW = parse_moment(FIXTURE_NOW)
PRO = get_plan("professional")
#: Professional's caps with rates no test can exhaust, and halts served every 0.1 s.
FAST = PRO.with_overrides(
    name="fast",
    endpoint_rates={name: Rate(100_000, 1.0) for name in ENDPOINTS},
    all_endpoints=Rate(100_000, 1.0),
    per_minute=10**8,
    suspension_rate=Rate(1, 0.1),
)
QUICK_RETRY = RetryPolicy(attempts=3, base=0.01, cap=0.05)

US = [r["code"] for r in CATALOGUE.rows if r["market"] == "US" and r["asset_class"] == "stock"]
HK = [r["code"] for r in CATALOGUE.rows if r["market"] == "HK" and r["asset_class"] == "stock"]
FX = [r["code"] for r in CATALOGUE.rows if r["asset_class"] == "fx"]
CRYPTO = [r["code"] for r in CATALOGUE.rows if r["asset_class"] == "crypto"]


def client_for(emu: EmulatorServer, plan: Plan | str = FAST, **options: Any) -> AllTick:
    """A client of ``emu`` with its own budget (budgets are otherwise shared per token)."""
    plan = get_plan(plan)
    options.setdefault("retry", QUICK_RETRY)
    return AllTick(
        emu.token, plan, emu.url, cache=False, budget=Budget(plan), progress=False, **options
    )


def body(data: dict[str, Any]) -> bytes:
    return orjson.dumps({"ret": 200, "msg": "ok", "trace": "t", "data": data})


def expected_trades(codes: list[str]) -> pd.DataFrame:
    ticks = [emu_market.trade_tick(CATALOGUE[c], NOW) for c in codes]
    return frames.decode_trade_ticks([body({"tick_list": ticks})])


def expected_depth(codes: list[str]) -> pd.DataFrame:
    ticks = [emu_market.depth_tick(CATALOGUE[c], NOW) for c in codes]
    return frames.decode_depth_ticks([body({"tick_list": ticks})])


def expected_static(codes: list[str]) -> pd.DataFrame:
    infos = [emu_market.static_info(CATALOGUE[c]) for c in codes]
    return frames.decode_static_info([body({"static_info_list": infos})])


def calls_of(emu: EmulatorServer, endpoint: str) -> dict[str, int]:
    return emu.stats().get(emu.token, {}).get(endpoint, {})


# --------------------------------------------------------------------------- trades


async def test_trades_exact_rows_in_caller_order_and_chunked_per_path(alltick_emulator):
    emu = alltick_emulator(plan=FAST)
    # 60 stock and 60 forex-path codes, interleaved: 50 per call, one base path per call.
    codes = [c for pair in zip(US[:60], FX[:30] + CRYPTO[:30], strict=True) for c in pair]
    async with client_for(emu) as client:
        result = await client.trades(codes)
    assert result.ok
    pd.testing.assert_frame_equal(result.data, expected_trades(codes))
    assert list(result.data.columns) == frames.TRADE_COLUMNS
    assert calls_of(emu, "trade-tick") == {"200": 4}  # stock 50 + 10, forex 50 + 10
    assert result.stats.calls["trade-tick"] == 4
    assert result.request == {"method": "trades", "codes": codes}


async def test_caps_hold_when_the_server_refuses_oversize_calls(alltick_emulator):
    emu = alltick_emulator(plan=FAST, oversize="603")
    async with client_for(emu) as client:
        result = await client.trades(US[:101])
    assert result.ok and len(result.data) == 101
    assert calls_of(emu, "trade-tick") == {"200": 3}  # 50 + 50 + 1, never a 603


async def test_a_plan_larger_than_the_servers_is_split_on_603(alltick_emulator):
    # hard_code_cap: a server that refuses more than 50 codes (AllTick cuts Free at 5).
    emu = alltick_emulator(plan=FAST, oversize="603", hard_code_cap=True)
    too_big = FAST.with_overrides(name="too-big", codes_per_call=120)
    async with client_for(emu, too_big) as client:
        result = await client.trades(US[:120])
    assert result.ok
    pd.testing.assert_frame_equal(result.data, expected_trades(US[:120]))
    # 120 -> 603 -> 60 + 60 -> 603 each -> four calls of 30
    assert calls_of(emu, "trade-tick") == {"603": 3, "200": 4}
    assert result.stats.splits == 3


async def test_codes_cut_from_an_answer_are_asked_again_once(alltick_emulator):
    # hard_code_cap: answers the first 50 codes of a call, silently (as AllTick does on Free)
    emu = alltick_emulator(plan=FAST, hard_code_cap=True)
    wide_open = FAST.with_overrides(name="wide", codes_per_call=200)
    async with client_for(emu, wide_open) as client:
        recovered = await client.trades(US[:80])
        lost = await client.trades(US[:120])
    # 80: 50 answered, the other 30 asked again and answered.
    assert recovered.ok
    pd.testing.assert_frame_equal(recovered.data, expected_trades(US[:80]))
    # 120: 50 answered, 70 asked again, 50 of them answered, 20 left out twice.
    assert len(lost.data) == 100
    assert list(lost.data["code"]) == US[:100]
    failures = lost.failures
    assert list(failures["code"]) == US[100:120]
    assert set(failures["kind"]) == {"left-out"}
    assert set(failures["endpoint"]) == {"trade-tick"}
    assert (failures["attempts"] == 2).all()
    assert calls_of(emu, "trade-tick") == {"200": 4}


async def test_a_bad_code_is_bisected_out_of_its_chunk(alltick_emulator):
    emu = alltick_emulator(plan=FAST)
    codes = [*US[:20], "NOPE.US", *US[20:29]]
    async with client_for(emu) as client:
        result = await client.trades(codes)
    good = [c for c in codes if c != "NOPE.US"]
    pd.testing.assert_frame_equal(result.data, expected_trades(good))
    assert result.failures[["code", "kind", "ret"]].values.tolist() == [
        ["NOPE.US", "code-invalid", 600]
    ]
    assert result.stats.bisections > 0


async def test_codes_outside_a_fixed_basket_fail_without_a_call(alltick_emulator):
    # The Free plan's basket and caps, at a pace that keeps the test fast.
    basket = FAST.with_overrides(name="basket", symbols=FREE_SYMBOLS, codes_per_call=5)
    emu = alltick_emulator(plan=basket)
    async with client_for(emu, basket) as client:
        result = await client.trades(["TSLA.US", "AAPL.US", "GOLD", "EURUSD"])
    assert list(result.data["code"]) == ["TSLA.US", "GOLD"]
    rows = result.failures[["code", "kind", "ret", "attempts"]].values.tolist()
    assert rows == [
        ["AAPL.US", "code-unauthorized", 604, 0],
        ["EURUSD", "code-unauthorized", 604, 0],
    ]
    assert calls_of(emu, "trade-tick") == {"200": 2}  # one per base path, none for the rest


async def test_market_plans_report_other_markets_without_a_call(alltick_emulator):
    emu = alltick_emulator(plan="all-hk")
    async with client_for(emu, "all-hk") as client:
        result = await client.trades(["700.HK", "AAPL.US", "9988.HK"])
    assert list(result.data["code"]) == ["700.HK", "9988.HK"]
    assert list(result.failures["code"]) == ["AAPL.US"]
    assert calls_of(emu, "trade-tick") == {"200": 1}


async def test_faults_are_retried_and_every_code_arrives(alltick_emulator):
    emu = alltick_emulator(plan=FAST, faults={"malformed": 0.3, "http_5xx": 0.3}, seed=3)
    async with client_for(emu, retry=RetryPolicy(attempts=8, base=0.01, cap=0.02)) as client:
        result = await client.trades(US[:100] + FX[:20])
    assert result.ok
    pd.testing.assert_frame_equal(result.data, expected_trades(US[:100] + FX[:20]))
    assert result.stats.retries > 0


async def test_bad_input_is_a_value_error_before_any_call(alltick_emulator):
    emu = alltick_emulator(plan=FAST)
    async with client_for(emu) as client:
        for bad in ([], ["aapl.us"], ["AAPL.US", "AAPL.US"]):
            with pytest.raises(ValueError):
                await client.trades(bad)
    assert emu.stats() == {}


# --------------------------------------------------------------------------- depth


async def test_depth_long_form_exact_rows(alltick_emulator):
    emu = alltick_emulator(plan=FAST)
    codes = ["700.HK", "BTCUSDT", "EURUSD", "AAPL.US", "600519.SH", "HSI.HK"]
    async with client_for(emu) as client:
        result = await client.depth(codes)
    assert result.ok  # HSI.HK has no book: answered, no rows, not a failure
    expected = expected_depth(codes)
    pd.testing.assert_frame_equal(result.data, expected)
    levels = result.data.groupby("code", sort=False)["level"].max().to_dict()
    assert levels == {"700.HK": 10, "BTCUSDT": 5, "EURUSD": 1, "AAPL.US": 1, "600519.SH": 5}
    hk = result.data[result.data["code"] == "700.HK"]
    assert list(hk["side"]) == ["bid"] * 10 + ["ask"] * 10
    assert hk[hk["side"] == "bid"]["price"].is_monotonic_decreasing
    assert str(result.data["time"].dtype) == "datetime64[ns, UTC]"
    assert calls_of(emu, "depth-tick") == {"200": 2}


async def test_depth_left_out_codes_are_detected(alltick_emulator):
    emu = alltick_emulator(plan=FAST, hard_code_cap=True)
    wide_open = FAST.with_overrides(name="wide", codes_per_call=200)
    async with client_for(emu, wide_open) as client:
        result = await client.depth(HK[:83] + CRYPTO[:30])
    # stock call: 83 asked, 50 + 33 (re-ask) answered; forex: 30 in one call.
    assert result.ok
    assert result.data["code"].nunique() == 113
    assert calls_of(emu, "depth-tick") == {"200": 3}


# --------------------------------------------------------------------------- static info


async def test_static_info_exact_rows_keyed_by_symbol(alltick_emulator):
    emu = alltick_emulator(plan=FAST)
    codes = ["700.HK", "AAPL.US", "600519.SH", "2800.HK"]  # an ETF: no EPS or book value
    async with client_for(emu) as client:
        result = await client.static_info(codes)
    assert result.ok
    pd.testing.assert_frame_equal(result.data, expected_static(codes))
    assert list(result.data.columns) == frames.STATIC_INFO_COLUMNS
    assert calls_of(emu, "static_info") == {"200": 1}


async def test_static_info_reports_non_stock_codes_and_fetches_the_stocks(alltick_emulator):
    emu = alltick_emulator(plan=FAST)
    async with client_for(emu) as client:
        result = await client.static_info(["EURUSD", "700.HK", "GOLD"])
        with pytest.raises(ValueError, match="stocks and indices only"):
            await client.static_info(["EURUSD", "BTCUSDT"])
    assert list(result.data["code"]) == ["700.HK"]
    rows = result.failures[["code", "kind", "endpoint", "attempts"]].values.tolist()
    assert rows == [
        ["EURUSD", "code-invalid", "static_info", 0],
        ["GOLD", "code-invalid", "static_info", 0],
    ]
    assert calls_of(emu, "static_info") == {"200": 1}


async def test_static_info_left_out_codes_use_the_symbol_key(alltick_emulator):
    emu = alltick_emulator(plan=FAST, hard_code_cap=True)
    wide_open = FAST.with_overrides(name="wide", codes_per_call=500)
    async with client_for(emu, wide_open) as client:
        result = await client.static_info(US[:145])
    # 145 -> 50 answered; 95 re-asked -> 50 answered; 45 left out.
    assert len(result.data) == 100
    assert list(result.failures["code"]) == US[100:145]
    assert set(result.failures["kind"]) == {"left-out"}


# --------------------------------------------------------------------------- suspensions


def expected_halts(exchange: str) -> pd.DataFrame:
    return frames.decode_suspensions(emu_suspension.records(exchange, NOW), exchange)


@pytest.mark.parametrize("exchange", ["sse", "nyse", "nasdaq"])
async def test_suspensions_exact_rows(alltick_emulator, exchange):
    emu = alltick_emulator(plan="basic")
    async with client_for(emu, "basic") as client:
        result = await client.suspensions(exchange.upper())
    assert result.ok
    expected = expected_halts(exchange)
    assert len(expected) > 10
    pd.testing.assert_frame_equal(result.data, expected)
    assert list(result.data.columns) == frames.SUSPENSION_COLUMNS
    assert calls_of(emu, f"suspension/{exchange}") == {"200": 1}
    assert result.stats.calls == {f"suspension/{exchange}": 1}


async def test_suspensions_follow_pages(alltick_emulator):
    # PIN (issue 11 item 2): the halt service does not page; remove with page_size.
    emu = alltick_emulator(plan=FAST, suspension_paging=True)
    expected = expected_halts("nyse")
    async with client_for(emu) as client:
        result = await client.suspensions("nyse", page_size=20)
    pd.testing.assert_frame_equal(result.data, expected)
    pages = math.ceil(len(expected) / 20)
    assert pages > 1
    assert calls_of(emu, "suspension/nyse") == {"200": pages}


async def test_suspensions_reject_unknown_exchanges():
    client = AllTick("t", "basic", "http://127.0.0.1:9", cache=False)
    try:
        for bad in ("hkex", "", "sse/nyse"):
            with pytest.raises(ValueError, match="sse, nyse, nasdaq"):
                await client.suspensions(bad)
        with pytest.raises(ValueError, match="page_size"):
            await client.suspensions("sse", page_size=0)
    finally:
        await client.close()


@pytest.fixture
async def halt_service() -> AsyncIterator[Callable[[list[tuple[int, dict[str, Any]]]], str]]:
    """A stand-in halt service answering a script of (status, JSON body), then the last one."""
    servers: list[TestServer] = []

    async def start(script: list[tuple[int, dict[str, Any]]]) -> str:
        answers = list(script)

        async def handle(request: web.Request) -> web.Response:
            status, payload = answers.pop(0) if len(answers) > 1 else answers[0]
            return web.json_response(payload, status=status)

        app = web.Application()
        app.router.add_get("/api/suspension/{exchange}", handle)
        server = TestServer(app)
        await server.start_server()
        servers.append(server)
        return str(server.make_url("")).rstrip("/")

    yield start  # type: ignore[misc]
    for server in servers:
        await server.close()


OK_PAGE = {
    "success": True,
    "timestamp": "2024-05-15T22:00:00",
    "totalCount": 1,
    "data": [
        {
            "symbol": "600519",
            "symbolName": "KWEICHOW MOUTAI",
            "haltReason": "Pending announcement",
            "haltDate": "2024-05-14 00:00:00",
            "haltTime": "09:30:00",
            "haltPeriod": "1 day(s)",
            "resumeDate": "",
            "resumeTime": "",
            "publishDate": "2024-05-13 18:30:00",
        }
    ],
}


def quick_halts(url: str) -> AllTick:
    plan = FAST
    return AllTick("t", plan, url, cache=False, budget=Budget(plan), retry=QUICK_RETRY)


async def test_a_transient_service_error_is_retried(halt_service):
    url = await halt_service([(500, {"success": False, "error": "internal error"}), (200, OK_PAGE)])
    async with quick_halts(url) as client:
        result = await client.suspensions("sse")
    assert result.ok
    assert list(result.data["code"]) == ["600519"]
    assert str(result.data["halted_at"][0]) == "2024-05-14 01:30:00+00:00"
    assert result.stats.retries == 1
    assert result.stats.faults == {"service-error": 1}


async def test_a_persistent_service_error_is_a_failure_row(halt_service):
    url = await halt_service([(500, {"success": False, "error": "database unavailable"})])
    async with quick_halts(url) as client:
        result = await client.suspensions("nasdaq")
    assert result.data.empty and list(result.data.columns) == frames.SUSPENSION_COLUMNS
    row = result.failures.iloc[0]
    assert (row["code"], row["endpoint"], row["kind"], row["msg"]) == (
        "nasdaq",
        "suspension",
        "service-error",
        "database unavailable",
    )
    assert row["attempts"] == QUICK_RETRY.attempts


async def test_a_failed_halt_fetch_can_be_retried(halt_service):
    error = (500, {"success": False, "error": "database unavailable"})
    url = await halt_service([error] * QUICK_RETRY.attempts + [(200, OK_PAGE)])
    async with quick_halts(url) as client:
        failed = await client.suspensions("sse")
        assert list(failed.failures["kind"]) == ["service-error"]
        healed = await client.retry(failed)
    assert healed.ok
    assert list(healed.data["code"]) == ["600519"]
    assert healed.stats.total_calls == 1


async def test_too_frequent_backs_off_then_succeeds(halt_service):
    url = await halt_service(
        [(500, {"success": False, "error": "request too frequent: 1 request per minute"}),
         (200, OK_PAGE)]
    )  # fmt: skip
    async with quick_halts(url) as client:
        result = await client.suspensions("sse")
    assert result.ok and len(result.data) == 1
    assert result.stats.rejections == {429: 1}


async def test_a_refused_token_stops_with_auth_error(halt_service):
    url = await halt_service([(500, {"success": False, "error": "token invalid"})])
    async with quick_halts(url) as client:
        with pytest.raises(AuthError):
            await client.suspensions("sse")


async def test_a_service_that_reports_pages_unasked_is_paged(halt_service):
    first = {**OK_PAGE, "totalCount": 2, "totalPages": 2, "currentPage": 1, "currentSize": 1}
    second_record = {**OK_PAGE["data"][0], "symbol": "600000"}
    second = {**first, "currentPage": 2, "data": [second_record]}
    url = await halt_service([(200, first), (200, second)])
    async with quick_halts(url) as client:
        result = await client.suspensions("sse")
    assert list(result.data["code"]) == ["600519", "600000"]
    assert result.stats.calls == {"suspension/sse": 2}


def test_the_halt_job_reads_the_service_envelope():
    read = SuspensionJob("sse").read
    ok = read(Response(200, orjson.dumps(OK_PAGE)))
    assert ok.ret == 200 and ok.data.data == OK_PAGE["data"]
    too_fast = read(Response(500, b'{"success":false,"error":"too frequent"}'))
    assert (too_fast.ret, too_fast.msg) == (429, "too frequent")
    assert read(Response(500, b'{"success":false,"error":"token invalid"}')).ret == 401
    gate = read(Response(401, b'{"msg":"token is required","ret":401}'))
    assert gate.ret == 401
    with pytest.raises(af.TransportError, match="http-502"):
        read(Response(502, b"<html>bad gateway</html>"))
    with pytest.raises(af.TransportError):
        read(Response(200, b'{"success":true,"data":"nope"}'))
    with pytest.raises(ServiceError, match="database unavailable"):
        read(Response(500, b'{"success":false,"error":"database unavailable"}'))


def test_suspension_job_endpoint_matches_the_budget_window():
    from alltick_frames.budget import windows_for

    job = SuspensionJob("NYSE")
    assert job.endpoint == "suspension/nyse"
    keys = [w.key for w in windows_for(get_plan("basic"), job.endpoint)]
    assert keys == ["endpoint:suspension/nyse", "per-minute"]
    assert get_plan("basic").rate_for(job.endpoint) == Rate(1, 60.0)


# --------------------------------------------------------------------------- estimates, sync


def test_calls_for_each_endpoint():
    client = AllTick("t", "professional", "http://127.0.0.1:9", cache=False)
    codes = US[:60] + (FX + CRYPTO)[:60]
    assert client._calls_for_trades(codes) == {"trade-tick": 4}
    assert client._calls_for_depth(codes[:50]) == {"depth-tick": 1}
    assert client._calls_for_static_info(codes) == {"static_info": 2}  # the 60 stocks only
    assert client._calls_for_suspensions("SSE") == {"suspension/sse": 1}
    free = AllTick("t", "free", "http://127.0.0.1:9", cache=False)
    assert free._calls_for_trades(["TSLA.US", "AAPL.US", "GOLD"]) == {"trade-tick": 2}
    assert free._calls_for_trades(["TSLA.US", "AAPL.US"]) == {"trade-tick": 1}
    estimate = client.estimate("trades", codes)
    assert estimate.calls == {"trade-tick": 4}


def test_sync_functions(alltick_emulator):
    emu = alltick_emulator(plan=FAST)
    options = {"token": emu.token, "plan": FAST, "base_url": emu.url, "cache": False}
    assert list(af.trades(["AAPL.US", "EURUSD"], **options).data["code"]) == ["AAPL.US", "EURUSD"]
    assert af.depth("700.HK", **options).data["level"].max() == 10
    assert list(af.static_info(["700.HK"], **options).data["code"]) == ["700.HK"]
    assert len(af.suspensions("sse", **options).data) == len(expected_halts("sse"))
