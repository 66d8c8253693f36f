"""The emulator as an ``aiohttp.web`` application: AllTick's routes and the admin view.

The emulator serves two paths, ``/quote-stock-b-api`` and ``/quote-b-api``, that share one
window per endpoint name; ``static_info`` exists on the stock path only, so the forex path
answers it like any unknown path: HTTP 404 with aiohttp's plain-text "404: Not Found". What
each route does is :class:`~alltick_frames.emulator.service.Emulator`'s business.
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from alltick_frames.codes import FOREX_PATH, STOCK_PATH
from alltick_frames.emulator import suspension
from alltick_frames.emulator.clock import parse_moment
from alltick_frames.emulator.config import EmulatorConfig
from alltick_frames.emulator.envelope import JSON
from alltick_frames.emulator.service import Emulator
from alltick_frames.plans import BATCH_KLINE, DEPTH_TICK, KLINE, STATIC_INFO, TRADE_TICK

EMULATOR_KEY = web.AppKey("alltick_emulator", Emulator)


def create_app(config: EmulatorConfig | None = None) -> web.Application:
    """The emulator as an ``aiohttp.web.Application``; its state is ``app[EMULATOR_KEY]``."""
    emulator = Emulator(config or EmulatorConfig())
    app = web.Application()
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
    _add_admin_routes(app, emulator)
    return app


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
        return _json(emulator.catalogue.rows)

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
