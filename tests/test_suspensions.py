"""The trading-halt service (``suspensions``): against the emulator, and against a stand-in
service that answers a script, for the errors the emulator does not make."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
import pandas as pd
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from quote_helpers import FAST, QUICK_RETRY, calls_of, client_for, expected_halts

import alltick_frames as af
from alltick_frames import frames
from alltick_frames.api.client import AllTick
from alltick_frames.budget import Budget
from alltick_frames.core.errors import AuthError, ServiceError
from alltick_frames.core.plans import Rate, get_plan
from alltick_frames.run.quote_jobs import SuspensionJob
from alltick_frames.run.transport import Response


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
