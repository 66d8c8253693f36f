"""A hostile server for the tests: AllTick's paths, answered however a test wants.

The emulator breaks answers in the ways :mod:`alltick_frames.emulator.faults` lists; what it
cannot do (a ``ret`` AllTick never documented, one record of a tick answer that is garbage, an
endless or compressed-bomb body) a test does here, over real HTTP on loopback. This module
holds no tests.
"""

from __future__ import annotations

import functools
import json
import time
import zlib
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import web

from alltick_frames.core import calendars
from alltick_frames.core.codes import classify
from alltick_frames.core.intervals import BY_KLINE_TYPE

#: A handler of one call: the request's ``data`` in, the answer's body (a dict) out.
Answer = Callable[[dict[str, Any]], dict[str, Any]]


def ok(data: dict[str, Any]) -> dict[str, Any]:
    return {"ret": 200, "msg": "ok", "trace": "t", "data": data}


def bars(
    code: str, kline_type: int, n: int, *, close: str = "1.5", now: float | None = None
) -> dict[str, Any]:
    """``data`` of a ``/kline`` answer: ``n`` plausible bars, the newest ``n`` that the
    code's exchange calendar expects by ``now`` (default: the real clock, so that a client on
    it finds the series complete)."""
    now = time.time() if now is None else now
    calendar = calendars.calendar_of(classify(code))
    starts = calendars.newest_bars(calendar, BY_KLINE_TYPE[kline_type], int(now), now, n)
    kline = [
        {
            "timestamp": str(start),
            "open_price": "1.4", "high_price": "1.6", "low_price": "1.3", "close_price": close,
            "volume": "10", "turnover": "15",
        }
        for start in starts.tolist()
    ]  # fmt: skip
    return {"code": code, "kline_type": kline_type, "kline_list": kline}


#: Every hostile body starts like a real answer, so only its size gives it away.
PREFIX = b'{"ret":200,"msg":"ok","trace":"t","data":{"code":"X","kline_type":8,"kline_list":['
#: An endless body stops by itself after this much (the client should stop far sooner).
ENDLESS_STOP = 4 << 30


async def endless(request: web.Request) -> web.StreamResponse:
    """A 200 answer whose body never ends (JSON whitespace, 64 KiB at a time), until the
    client hangs up or :data:`ENDLESS_STOP` bytes are sent."""
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    await response.prepare(request)
    chunk = b" " * (64 << 10)
    sent = 0
    try:
        await response.write(PREFIX)
        while sent < ENDLESS_STOP:
            await response.write(chunk)
            sent += len(chunk)
    except (ConnectionError, RuntimeError):  # the client hung up, as it should
        pass
    return response


@functools.cache
def gzip_bomb(inflated: int) -> bytes:
    """A gzip body that inflates to ``inflated`` bytes: :data:`PREFIX`, then whitespace
    (1 GiB takes about 1 MiB)."""
    pack = zlib.compressobj(6, zlib.DEFLATED, 31)
    parts = [pack.compress(PREFIX)]
    block = b" " * (8 << 20)
    for start in range(0, inflated, len(block)):
        parts.append(pack.compress(block[: inflated - start]))
    parts.append(pack.flush())
    return b"".join(parts)


def bomb(inflated: int) -> Callable[[web.Request], Awaitable[web.Response]]:
    """A handler answering with :func:`gzip_bomb` (``Content-Encoding: gzip``)."""

    async def handle(request: web.Request) -> web.Response:
        headers = {"Content-Encoding": "gzip", "Content-Type": "application/json"}
        return web.Response(body=gzip_bomb(inflated), headers=headers)

    return handle


@asynccontextmanager
async def serve(
    kline: Answer | None = None,
    trade_tick: Answer | None = None,
    raw: dict[str, Callable[[web.Request], Awaitable[web.StreamResponse]]] | None = None,
) -> AsyncIterator[tuple[str, Counter[str]]]:
    """A server on a free loopback port answering ``/kline`` and ``/trade-tick`` on both base
    paths with ``kline`` and ``trade_tick``, and any path in ``raw`` with its own handler.

    Yields the base URL and a counter of the requests by code (by path for ``raw`` routes).
    """
    seen: Counter[str] = Counter()

    def route(answer: Answer) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handle(request: web.Request) -> web.Response:
            data = json.loads(request.query["query"])["data"]
            for code in [data.get("code")] + [s["code"] for s in data.get("symbol_list", [])]:
                if code:
                    seen[code] += 1
            return web.json_response(answer(data))

        return handle

    def counted(handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> Any:
        async def handle(request: web.Request) -> web.StreamResponse:
            seen[request.path] += 1
            return await handler(request)

        return handle

    app = web.Application()
    for base in ("/quote-b-api", "/quote-stock-b-api"):
        if kline is not None:
            app.router.add_get(f"{base}/kline", route(kline))
        if trade_tick is not None:
            app.router.add_get(f"{base}/trade-tick", route(trade_tick))
    for path, handler in (raw or {}).items():
        app.router.add_route("*", path, counted(handler))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}", seen
    finally:
        await runner.cleanup()
