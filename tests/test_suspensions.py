"""The trading-halt service (``suspensions``): against the emulator, and against a stand-in
service that answers a script, for the errors the emulator does not make."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
import pandas as pd
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from quote_helpers import FAST, NOW, QUICK_RETRY, calls_of, client_for, expected_halts

import alltick_frames as af
from alltick_frames import frames
from alltick_frames.api.client import AllTick
from alltick_frames.api.result import FetchStats
from alltick_frames.budget import Budget
from alltick_frames.core.errors import AuthError, ServiceError
from alltick_frames.core.plans import Rate, get_plan
from alltick_frames.emulator import CATALOGUE
from alltick_frames.emulator import suspension as emu_suspension
from alltick_frames.run.quote_jobs import SuspensionJob
from alltick_frames.run.runner import Runner
from alltick_frames.run.transport import Response, Secret, Transport


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


@pytest.mark.parametrize(
    ("exchange", "suffix"), [("sse", ".SH"), ("nyse", ".US"), ("nasdaq", ".US")]
)
async def test_halt_records_map_to_alltick_codes(alltick_emulator, exchange, suffix):
    """suspension.mdx: ``symbol`` is the bare ticker, dates may be date-only, and only SSE
    records have ``haltPeriod``; the client's ``code`` is AllTick's code of the stock."""
    emu = alltick_emulator(plan="basic")
    async with client_for(emu, "basic") as client:
        data = (await client.suspensions(exchange)).data
    raw = emu_suspension.records(exchange, NOW)
    assert data["symbol"].tolist() == [r["symbol"] for r in raw]
    assert not any(r["symbol"].endswith(suffix) for r in raw)  # bare tickers on the wire
    assert data["code"].tolist() == [r["symbol"] + suffix for r in raw]
    assert set(data["code"]) <= {r["code"] for r in CATALOGUE.rows}  # they join other frames
    date_only = [len(str(r["haltDate"])) == 10 for r in raw]
    assert 0 < sum(date_only) < len(raw)
    assert data["halted_at"].notna().all() and data["published_at"].notna().all()
    assert data["period"].notna().all() if exchange == "sse" else data["period"].isna().all()


async def test_a_service_that_can_page_is_read_in_one_call(alltick_emulator):
    """The service does not page (suspension.mdx): the client sends no ``page`` or ``size``,
    so even a service that would page answers the whole year at once."""
    emu = alltick_emulator(plan=FAST, suspension_paging=True)
    async with client_for(emu) as client:
        result = await client.suspensions("nyse")
    pd.testing.assert_frame_equal(result.data, expected_halts("nyse"))
    assert len(result.data) > 10
    assert calls_of(emu, "suspension/nyse") == {"200": 1}


async def test_too_frequent_is_a_rate_limit_not_a_fault(alltick_emulator):
    """HTTP 429 with a plain-text body: paced and retried as a 429, then a rate-limit row."""
    emu = alltick_emulator(plan="basic", frozen_clock=True)  # 1 halt call a minute
    async with client_for(emu) as client:  # a client that believes in one per 0.1 s
        first = await client.suspensions("sse")
        second = await client.suspensions("sse")
    assert first.ok
    sent = QUICK_RETRY.rejections + 1  # refused calls have tries of their own
    row = second.failures[["code", "endpoint", "ret", "kind", "attempts"]].values.tolist()
    assert row == [["sse", "suspension", 429, "rate-limit", sent]]
    assert second.stats.rejections == {429: sent}
    assert second.stats.faults == {}
    assert calls_of(emu, "suspension/sse") == {"200": 1, "429": sent}


async def test_a_wrong_token_stops_with_auth_error(alltick_emulator):
    """HTTP 500 {"success":false,"error":"token invalid"}: AllTick's words for ret 401."""
    emu = alltick_emulator(plan="basic")
    async with AllTick("not-a-token", FAST, emu.url, cache=False, budget=Budget(FAST)) as client:
        with pytest.raises(AuthError):
            await client.suspensions("nasdaq")
    assert emu.stats()["not-a-token"] == {"suspension/nasdaq": {"500": 1}}


async def test_a_missing_token_meets_the_gate_and_stops(alltick_emulator):
    """The host's gate: HTTP 401 {"msg":"token is required","trace":"","ret":401}."""
    emu = alltick_emulator(plan="basic")
    job = SuspensionJob("sse")
    transport = Transport(emu.url, Secret(""))
    try:
        runner = Runner(transport, Budget(FAST), FetchStats(), QUICK_RETRY)
        with pytest.raises(AuthError, match="token is required"):
            await runner.run(job, [job.call()])
    finally:
        await transport.close()
    assert emu.stats() == {"<missing>": {"suspension/sse": {"401": 1}}}


async def test_suspensions_reject_unknown_exchanges():
    client = AllTick("t", "basic", "http://127.0.0.1:9", cache=False)
    try:
        for bad in ("hkex", "", "sse/nyse"):
            with pytest.raises(ValueError, match="sse, nyse, nasdaq"):
                await client.suspensions(bad)
    finally:
        await client.close()


Script = list[tuple[int, dict[str, Any] | str]]


@pytest.fixture
async def halt_service() -> AsyncIterator[Callable[[Script], str]]:
    """A stand-in halt service answering a script of (status, JSON body or plain text), then
    the last answer again: for the answers the emulator does not give."""
    servers: list[TestServer] = []

    async def start(script: Script) -> str:
        answers = list(script)

        async def handle(request: web.Request) -> web.Response:
            status, payload = answers.pop(0) if len(answers) > 1 else answers[0]
            if isinstance(payload, str):
                return web.Response(text=payload, status=status)
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
    assert (result.data["code"][0], result.data["symbol"][0]) == ("600519.SH", "600519")
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
    assert list(healed.data["code"]) == ["600519.SH"]
    assert healed.stats.total_calls == 1


async def test_too_many_requests_in_alltick_words_backs_off_then_succeeds(halt_service):
    too_many = (500, {"success": False, "error": "Too Many Requests"})
    url = await halt_service([too_many, (200, OK_PAGE)])
    async with quick_halts(url) as client:
        result = await client.suspensions("sse")
    assert result.ok and len(result.data) == 1
    assert result.stats.rejections == {429: 1}
    assert result.stats.faults == {}


async def test_a_refused_token_stops_with_auth_error(halt_service):
    url = await halt_service([(500, {"success": False, "error": "token invalid"})])
    async with quick_halts(url) as client:
        with pytest.raises(AuthError):
            await client.suspensions("sse")


def test_the_halt_job_reads_status_and_structure_before_words():
    read = SuspensionJob("sse").read
    ok = read(Response(200, orjson.dumps(OK_PAGE)))
    assert ok.ret == 200 and ok.data.data == OK_PAGE["data"]
    # The status decides, whatever the body holds.
    assert read(Response(429, b"Too Many Requests")).ret == 429
    assert read(Response(429, b'{"success":false,"error":"slow down"}')).ret == 429
    assert read(Response(401, b'{"msg":"token is required","trace":"","ret":401}')).ret == 401
    assert read(Response(401, b"Unauthorized")).ret == 401
    # HTTP 500 with the page's error body: only AllTick's documented words change the action.
    assert read(Response(500, b'{"success":false,"error":"token invalid"}')).ret == 401
    assert read(Response(500, b'{"success":false,"error":"too many requests"}')).ret == 429
    for words in ("too frequent", "database unavailable"):
        with pytest.raises(ServiceError, match=words):
            read(Response(500, orjson.dumps({"success": False, "error": words})))
    with pytest.raises(af.TransportError, match="http-502"):
        read(Response(502, b"<html>bad gateway</html>"))
    with pytest.raises(af.TransportError):
        read(Response(200, b'{"success":true,"data":"nope"}'))


def test_suspension_job_endpoint_matches_the_budget_window():
    from alltick_frames.budget import windows_for

    job = SuspensionJob("NYSE")
    assert job.endpoint == "suspension/nyse"
    keys = [w.key for w in windows_for(get_plan("basic"), job.endpoint)]
    assert keys == ["endpoint:suspension/nyse", "per-minute"]
    assert get_plan("basic").rate_for(job.endpoint) == Rate(1, 60.0)
