"""The emulator as an ``aiohttp.web`` application: AllTick's routes, its front door, the admin
view.

The emulator serves two paths, ``/quote-stock-b-api`` and ``/quote-b-api``, that share one
window per endpoint name; ``static_info`` exists on the stock path only. What each route does
is :class:`~alltick_frames.emulator.service.Emulator`'s business; in front of every route
except the admin view (``/_emulator/*``) stand two checks, as they stand in front of AllTick:

* **The request line.** AllTick recommends at most 50 codes per GET "due to GET URL length
  limits" (``en/getting-started/http-interface-restrictions.mdx``) without naming the limit.
  The emulator takes nginx's default, ``large_client_header_buffers 4 8k``: a request line
  (method, URL with its query, version) over :data:`MAX_REQUEST_LINE` bytes is answered as
  nginx answers it, HTTP 414 with nginx's HTML page, before the token is even looked at. That
  fits about 220 US codes in one ``symbol_list``; the service never sees the call, so it uses
  no quota (the stats count it as ``http-414``).
* **The token gate.** Every path without a ``token``, unknown paths included, is answered
  HTTP 401 ``{"msg":"token is required","trace":"","ret":401}``: the API host "answers every
  path" so (api-evangelist ``well-known/alltick-api-well-known.yml``, probed). With a token,
  wrong or right, an unknown path is HTTP 404 with aiohttp's plain-text "404: Not Found" (and
  a wrong method 405): the gate checks only that a token is there, and whether it is valid is
  for the service behind a route to say, so where no service is there is nothing to say it.
  The ``static_info`` of the forex path is such a path.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

from alltick_frames.core.codes import FOREX_PATH, STOCK_PATH
from alltick_frames.core.plans import BATCH_KLINE, DEPTH_TICK, KLINE, STATIC_INFO, TRADE_TICK
from alltick_frames.emulator import suspension
from alltick_frames.emulator.clock import parse_moment
from alltick_frames.emulator.config import EmulatorConfig
from alltick_frames.emulator.envelope import JSON, TOKEN_REQUIRED
from alltick_frames.emulator.service import Emulator

EMULATOR_KEY = web.AppKey("alltick_emulator", Emulator)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Middleware = Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]
#: nginx's default limit on a request line (``large_client_header_buffers 4 8k``).
MAX_REQUEST_LINE = 8192
#: What the stats count a request to no route under.
UNKNOWN = "unknown"
ADMIN = "/_emulator/"
_URI_TOO_LARGE = (
    "<html>\r\n<head><title>414 Request-URI Too Large</title></head>\r\n<body>\r\n"
    "<center><h1>414 Request-URI Too Large</h1></center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n"
)


def create_app(config: EmulatorConfig | None = None) -> web.Application:
    """The emulator as an ``aiohttp.web.Application``; its state is ``app[EMULATOR_KEY]``."""
    emulator = Emulator(config or EmulatorConfig())
    # aiohttp's own limit (8190 bytes) would answer a long line 400 before the front door.
    app = web.Application(
        middlewares=[_front_door(emulator)], handler_args={"max_line_size": 1 << 20}
    )
    app[EMULATOR_KEY] = emulator
    routes = app.router
    for base in (STOCK_PATH, FOREX_PATH):
        routes.add_get(f"{base}/kline", emulator.quote_handler(KLINE, base))
        routes.add_post(f"{base}/batch-kline", emulator.quote_handler(BATCH_KLINE, base))
        routes.add_get(f"{base}/trade-tick", emulator.quote_handler(TRADE_TICK, base))
        routes.add_get(f"{base}/depth-tick", emulator.quote_handler(DEPTH_TICK, base))
    routes.add_get(f"{STOCK_PATH}/static_info", emulator.quote_handler(STATIC_INFO, STOCK_PATH))
    exchanges = "|".join(suspension.EXCHANGES)
    routes.add_get(f"/api/suspension/{{exchange:{exchanges}}}", emulator.handle_suspension)
    from alltick_frames.emulator.websocket import add_websocket_routes  # it imports this module

    add_websocket_routes(app, emulator)
    _add_admin_routes(app, emulator)
    return app


def _endpoint(request: web.Request) -> str:
    """The endpoint the stats count ``request`` under: ``kline``, ``suspension/sse``, ..."""
    if request.match_info.http_exception is not None:
        return UNKNOWN
    head, _, last = request.path.rpartition("/")
    return f"suspension/{last}" if head == "/api/suspension" else last


def _front_door(emulator: Emulator) -> Middleware:
    """The request-line limit and the token gate (see the module docstring)."""

    @web.middleware
    async def front_door(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith(ADMIN):
            return await handler(request)
        token = request.query.get("token", "")
        version = request.version
        line = f"{request.method} {request.raw_path} HTTP/{version.major}.{version.minor}"
        if len(line.encode()) > MAX_REQUEST_LINE:
            emulator.count(token, _endpoint(request), "http-414")
            return web.Response(text=_URI_TOO_LARGE, status=414, content_type="text/html")
        if not token:
            emulator.count(token, _endpoint(request), "401")
            return web.Response(body=TOKEN_REQUIRED, status=401, content_type=JSON)
        return await handler(request)

    return front_door


def _json(payload: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(payload), status=status, content_type=JSON)


async def _admin_body(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    if not raw.strip():
        return {}
    body = orjson.loads(raw)
    if not isinstance(body, dict):
        raise ValueError("the body must be a JSON object")
    return body


def _add_admin_routes(app: web.Application, emulator: Emulator) -> None:
    """``/_emulator/*``: views the real service does not have. Faults never touch them."""

    async def codes(_request: web.Request) -> web.Response:
        return _json(emulator.codes())

    async def stats(_request: web.Request) -> web.Response:
        return _json(emulator.stats)

    async def reset(_request: web.Request) -> web.Response:
        emulator.reset()
        return _json({"ok": True})

    async def clock(request: web.Request) -> web.Response:
        if request.method == "POST":
            try:
                body = await _admin_body(request)
                if "frozen" in body:
                    emulator.clock.freeze(bool(body["frozen"]))
                if "set" in body:
                    emulator.clock.set(parse_moment(body["set"]))
                if "advance" in body:
                    emulator.clock.advance(float(body["advance"]))
                if "market_now" in body:
                    emulator.set_market_now(body["market_now"])
            except (ValueError, TypeError) as error:
                return _json({"error": str(error)}, 400)
        return _json(emulator.admin_state())

    async def faults(request: web.Request) -> web.Response:
        if request.method == "POST":
            try:
                body = await _admin_body(request)
                seed = body.pop("seed", None)
                emulator.set_faults(**body)
                if seed is not None:
                    emulator.injector.seed = int(seed)
                    emulator.injector.reset()
            except (ValueError, TypeError) as error:
                return _json({"error": str(error)}, 400)
        return _json(emulator.faults_state())

    async def config(_request: web.Request) -> web.Response:
        return _json(emulator.config_state())

    routes = app.router
    routes.add_get("/_emulator/codes", codes)
    routes.add_get("/_emulator/stats", stats)
    routes.add_post("/_emulator/reset", reset)
    routes.add_route("*", "/_emulator/clock", clock)
    routes.add_route("*", "/_emulator/faults", faults)
    routes.add_get("/_emulator/config", config)
