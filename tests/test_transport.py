"""The transport: one HTTP call over a real socket, the token kept out of every message, and the
``ready`` hook awaited once the connection is ready, before the request is written."""

from __future__ import annotations

import asyncio
import socket
import time
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import web

from alltick_frames.core.errors import TransportError
from alltick_frames.run.transport import Secret, Transport

TOKEN = "tk-Transport-7fQ2xLp9Vd4Ws8Nb1-secret"
#: A token with characters a URL keeps as they are, and which end a ``token=`` match.
ODD_TOKEN = "tk'(Odd)Secret-5hG8"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Handler], Awaitable[str]]]:
    """Start a tiny aiohttp server with one catch-all handler; returns its base URL."""
    runners: list[web.AppRunner] = []

    async def start(handler: Handler) -> str:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handler)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        runners.append(runner)
        return f"http://127.0.0.1:{runner.addresses[0][1]}"

    yield start
    for runner in runners:
        await runner.cleanup()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def every_text(exc: BaseException) -> str:
    """str, repr and the formatted traceback of ``exc`` and every exception chained to it."""
    texts = []
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        texts += [str(e), repr(e), "".join(traceback.format_exception(e))]
        todo += [e.__cause__, e.__context__]
    return "\n".join(texts)


def test_secret_never_shows_itself() -> None:
    secret = Secret(TOKEN)
    assert secret.reveal() == TOKEN
    assert TOKEN not in repr(secret) + str(secret) + f"{secret}" + repr([secret])
    assert secret and not Secret("")
    assert TOKEN not in repr(Transport("http://x", secret))


@pytest.mark.parametrize("token", [TOKEN, ODD_TOKEN])
async def test_connection_refused_carries_no_token(token: str) -> None:
    transport = Transport(f"http://127.0.0.1:{closed_port()}", Secret(token), timeout=5)
    try:
        with pytest.raises(TransportError) as info:
            await transport.get("/quote-b-api/kline", {"query": "{}"})
    finally:
        await transport.close()
    err = info.value
    assert err.msg.startswith("ClientConnectorError: ") and err.endpoint == "/quote-b-api/kline"
    assert err.__cause__ is None and err.__context__ is None
    assert "Odd" not in every_text(err) and "secret" not in every_text(err).lower()


@pytest.mark.parametrize("token", [TOKEN, ODD_TOKEN])
async def test_an_error_quoting_the_full_url_is_redacted(serve, token: str) -> None:
    """aiohttp's TooManyRedirects quotes the URL, query string and token included."""

    async def loop(request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound(str(request.rel_url))

    transport = Transport(await serve(loop), Secret(token), timeout=5)
    try:
        with pytest.raises(TransportError) as info:
            await transport.get("/quote-b-api/kline", {"query": '{"trace":"t"}'})
    finally:
        await transport.close()
    text = every_text(info.value)
    assert "TooManyRedirects" in text and "/quote-b-api/kline?token=***" in text
    assert "Odd" not in text and "secret" not in text.lower()


async def test_a_body_is_returned_whatever_the_status(serve) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        assert request.query["token"] == TOKEN
        if request.method == "POST":
            assert request.content_type == "application/json"
            return web.Response(body=await request.read(), status=200)
        return web.Response(text="<html>busy</html>", status=502)

    transport = Transport(await serve(handler), Secret(TOKEN))
    try:
        bad = await transport.get("/quote-b-api/kline", {"query": "{}"})
        echoed = await transport.post("/quote-b-api/batch-kline", b'{"trace":"t","data":{}}')
    finally:
        await transport.close()
    assert (bad.status, bad.body) == (502, b"<html>busy</html>")
    assert (echoed.status, echoed.body) == (200, b'{"trace":"t","data":{}}')


async def test_a_reset_connection_is_a_transport_error(serve) -> None:
    async def reset(request: web.Request) -> web.StreamResponse:
        assert request.transport is not None
        request.transport.abort()
        return web.Response()

    transport = Transport(await serve(reset), Secret(TOKEN), timeout=5)
    try:
        with pytest.raises(TransportError) as info:
            await transport.post("/quote-b-api/batch-kline", b"{}")
    finally:
        await transport.close()
    assert info.value.msg.startswith(("ServerDisconnectedError", "ClientOSError"))
    assert TOKEN not in every_text(info.value)


async def test_ready_is_awaited_before_the_request_is_written(serve) -> None:
    """On a new connection and on a reused one, the server sees nothing until ``ready`` ends."""
    arrived: list[float] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        arrived.append(time.monotonic())
        return web.Response(text="{}")

    ended: list[float] = []

    async def ready() -> None:
        await asyncio.sleep(0.15)
        ended.append(time.monotonic())

    transport = Transport(await serve(handler), Secret(TOKEN), connections=1)
    try:
        for _ in range(2):  # the second call reuses the first one's connection
            await transport.get("/quote-b-api/kline", {"query": "{}"}, ready=ready)
        await transport.post("/quote-b-api/batch-kline", b"{}", ready=ready)
        await transport.get("/quote-b-api/kline", {"query": "{}"})  # no hook: no wait
    finally:
        await transport.close()
    assert len(ended) == 3 and len(arrived) == 4
    assert all(a >= e for a, e in zip(arrived, ended, strict=False))
    assert arrived[3] - arrived[2] < 0.1


async def test_an_error_raised_by_ready_stops_the_request(serve) -> None:
    hits: list[str] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        hits.append(request.path)
        return web.Response(text="{}")

    class Stop(Exception):
        pass

    async def refuse() -> None:
        raise Stop

    transport = Transport(await serve(handler), Secret(TOKEN))
    try:
        with pytest.raises(Stop):
            await transport.get("/quote-b-api/kline", {"query": "{}"}, ready=refuse)
        await transport.get("/quote-b-api/kline", {"query": "{}"})
    finally:
        await transport.close()
    assert hits == ["/quote-b-api/kline"]


async def test_waiting_in_ready_is_not_network_time(serve) -> None:
    """The budget's wait for a slot (in ``ready``) is not counted against the request's
    timeout; the server's slowness is, and the answer's latency counts from the request
    leaving (after ``ready``) to its headers."""

    async def handler(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(float(request.query.get("hold", "0")))
        return web.Response(text="{}")

    async def slot() -> None:
        await asyncio.sleep(0.6)

    transport = Transport(await serve(handler), Secret(TOKEN), timeout=0.3)
    try:
        waited = await transport.get("/quote-b-api/kline", {"hold": "0.1"}, ready=slot)
        with pytest.raises(TransportError) as info:
            await transport.get("/quote-b-api/kline", {"hold": "1.0"})
    finally:
        await transport.close()
    assert waited.status == 200 and waited.latency >= 0.1
    assert info.value.msg.startswith("timeout")


async def test_answered_is_called_once_the_headers_are_in_before_the_body(serve) -> None:
    """The server sends its headers, then holds the body until the client has called
    ``answered``: the call completes only if the hook runs on the headers alone."""
    heard = asyncio.Event()
    calls: list[str] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.content_length = 2
        await response.prepare(request)
        try:
            await asyncio.wait_for(heard.wait(), 5.0)
        except TimeoutError:
            calls.append("body written before answered")
        await response.write(b"{}")
        return response

    def answered() -> None:
        calls.append("answered")
        heard.set()

    transport = Transport(await serve(handler), Secret(TOKEN))
    try:
        got = await transport.get("/quote-b-api/kline", {}, answered=answered)
        heard.clear()
        posted = await transport.post("/quote-b-api/batch-kline", b"{}", answered=answered)
    finally:
        await transport.close()
    assert (got.status, got.body, posted.body) == (200, b"{}", b"{}")
    assert calls == ["answered", "answered"]
