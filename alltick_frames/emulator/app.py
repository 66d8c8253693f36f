"""The emulator as an ``aiohttp.web`` application: AllTick's HTTP API, its limits and its faults.

A request to a quote endpoint passes these gates in this order (AllTick does not document its
order; this one is the emulator's choice, see alltick-api.md §2, §5, §8):

1. ``token`` missing: HTTP 401 ``{"msg":"token is required","ret":401}``; unknown: ``ret`` 401;
2. the plan's windows (:mod:`~alltick_frames.emulator.limits`): ``ret`` 429 or 605, which
   consume nothing; every call that passes this gate is counted, whatever it is answered;
3. the envelope: ``query`` missing or not JSON: 402 (GET); empty body: 601 (POST); body not
   JSON, or ``trace``/``data`` missing or wrong: 400 "request header param invalid";
4. batch groups over the plan's cap: 603; codes beyond the per-call cap: cut (or 603 with
   ``oversize="603"``) before they are even looked at;
5. the fields of ``data``: 400 "request data param invalid";
6. every code known and on this base path (else 600 for the whole call), then in the token's
   plan and basket (else 604 for the whole call); 2h/4h bars for a stock: 400 data;
7. too many bars: cut (or 603 with ``oversize="603"``);
8. the answer, every number a string except ``kline_type`` and ``trade_direction``.

The emulator serves two paths, ``/quote-stock-b-api`` and ``/quote-b-api``, that share one
window per endpoint name; ``static_info`` exists on the stock path only, so the forex path
answers it like any unknown path: HTTP 404 with aiohttp's plain-text "404: Not Found".
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from aiohttp import web

from alltick_frames.codes import FOREX_PATH, STOCK_PATH
from alltick_frames.emulator import market, suspension
from alltick_frames.emulator.catalogue import CATALOGUE, Instrument
from alltick_frames.emulator.clock import parse_moment
from alltick_frames.emulator.config import EmulatorConfig, TokenSpec
from alltick_frames.emulator.faults import Fault, FaultConfig, FaultInjector, fault_key
from alltick_frames.emulator.limits import TokenQuota
from alltick_frames.plans import (
    BATCH_KLINE,
    DAY_RESET_UTC_OFFSET,
    DEPTH_TICK,
    KLINE,
    STATIC_INFO,
    TRADE_TICK,
    Plan,
)

HEADER_INVALID = "request header param invalid"
DATA_INVALID = "request data param invalid"
MESSAGES: dict[int, str] = {
    200: "ok",
    401: "token invalid",
    402: "query invalid",
    429: "Too Many Requests",
    600: "code invalid",
    601: "body empty",
    603: "token level not enough",
    604: "code unauthorized",
    605: "too many requests",
}
TOKEN_REQUIRED = b'{"msg":"token is required","ret":401}'
MISSING_TOKEN = "<missing>"
MAX_TRACE = 64

_JSON = "application/json"
_HTML_5XX = (
    "<html><head><title>{0} {1}</title></head><body><center><h1>{0} {1}</h1></center>"
    "<hr><center>nginx</center></body></html>"
)
_REASONS = {500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}


class ApiError(Exception):
    """Ends a request with ``ret`` (and its documented message unless ``msg`` is given)."""

    def __init__(self, ret: int, msg: str | None = None) -> None:
        super().__init__(ret)
        self.ret = ret
        self.msg = msg or MESSAGES[ret]


@dataclass(frozen=True, slots=True)
class Answer:
    """A finished answer: ``key`` is what the stats count it under (the ``ret``, or for the
    suspension service the HTTP status)."""

    key: int
    body: bytes
    status: int = 200


Handler = Callable[["Emulator", dict[str, Any], TokenSpec, str], dict[str, Any]]


class Emulator:
    """The emulator's state: tokens and their windows, the clocks, faults and statistics.

    All of it lives on the event loop that serves the app; other threads reach it through
    :class:`~alltick_frames.emulator.server.EmulatorServer`, which hops onto that loop.
    """

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.clock = config.rate_clock
        self.catalogue = CATALOGUE
        self.tokens: dict[str, TokenSpec] = config.resolved_tokens()
        self.injector = FaultInjector(config.fault_config, config.seed)
        self._market_now = config.market_now
        self.quotas: dict[str, TokenQuota] = {}
        self.stats: dict[str, dict[str, dict[str, int]]] = {}

    # --- state --------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget every window, counter and statistic; restart the fault sequence."""
        self.quotas.clear()
        self.stats.clear()
        self.injector.reset()

    def market_now(self) -> float:
        """The market clock: the fixed instant, else real time."""
        return time.time() if self._market_now is None else self._market_now

    def set_market_now(self, value: str | float | datetime | None) -> None:
        self._market_now = None if value is None else parse_moment(value)

    def set_faults(
        self, faults: FaultConfig | dict[str, Any] | None = None, **rates: float
    ) -> None:
        """Replace the fault settings (``faults``) or change some of them (``rates``)."""
        base = FaultConfig.coerce(faults) if faults is not None else self.injector.config
        self.injector.config = base.updated(**rates) if rates else base

    def _quota(self, token: str, spec: TokenSpec) -> TokenQuota:
        quota = self.quotas.get(token)
        if quota is None:
            quota = self.quotas[token] = TokenQuota(spec.plan, strict_free=self.config.strict_free)
        return quota

    def _count(self, token: str, endpoint: str, key: str) -> None:
        per_endpoint = self.stats.setdefault(token or MISSING_TOKEN, {}).setdefault(endpoint, {})
        per_endpoint[key] = per_endpoint.get(key, 0) + 1

    # --- serving ------------------------------------------------------------------------

    async def serve(
        self,
        request: web.Request,
        endpoint: str,
        produce: Callable[[web.Request, str], Awaitable[Answer]],
        throttled: Callable[[int], Answer],
    ) -> web.StreamResponse:
        """Draw a fault, produce the answer (or let the fault replace it), count, respond."""
        token = request.query.get("token", "")
        fault = self.injector.draw()
        if fault.slow:
            self._count(token, endpoint, "slow")
            await asyncio.sleep(fault.delay)
        if fault.kind == "rate_limit":
            answer = throttled(fault.code)
        else:
            answer = await produce(request, token)
        if fault.kind in (None, "rate_limit"):
            self._count(token, endpoint, str(answer.key))
            return self._response(answer)
        self._count(token, endpoint, fault_key(fault))
        return _faulty(request, fault, answer)

    def _response(self, answer: Answer) -> web.Response:
        status = answer.status
        if self.config.mirror_status and answer.key in (401, 429) and status == 200:
            status = answer.key
        return web.Response(body=answer.body, status=status, content_type=_JSON)

    def quote_handler(self, endpoint: str, base: str) -> Callable[[web.Request], Awaitable[Any]]:
        """The aiohttp handler of ``endpoint`` on the base path ``base``."""

        async def produce(request: web.Request, token: str) -> Answer:
            return await self._quote(request, token, endpoint, base)

        async def handle(request: web.Request) -> web.StreamResponse:
            return await self.serve(request, endpoint, produce, _error)

        return handle

    async def _quote(self, request: web.Request, token: str, endpoint: str, base: str) -> Answer:
        if not token:
            return Answer(401, TOKEN_REQUIRED, 401)
        spec = self.tokens.get(token)
        if spec is None:
            return _error(401)
        refused = self._quota(token, spec).admit(endpoint, self.clock.now())
        if refused is not None:
            return _error(refused)
        trace: str | None = None
        try:
            document = await _document(request, endpoint)
            trace = document.get("trace")
            if not isinstance(trace, str) or len(trace) > MAX_TRACE:
                trace = None
                raise ApiError(400, HEADER_INVALID)
            data = document.get("data")
            if not isinstance(data, dict):
                raise ApiError(400, HEADER_INVALID)
            result = _HANDLERS[endpoint](self, data, spec, base)
        except ApiError as error:
            return _error(error.ret, trace, error.msg)
        body = orjson.dumps({"ret": 200, "msg": "ok", "trace": trace, "data": result})
        return Answer(200, body)

    # --- the endpoints ------------------------------------------------------------------

    def _instrument(self, code: str, base: str) -> Instrument:
        inst = self.catalogue.get(code)
        if inst is None or inst.path != base:
            raise ApiError(600)
        return inst

    def _instruments(self, codes: list[str], spec: TokenSpec, base: str) -> list[Instrument]:
        """Resolve every code (600 for the whole call if one fails), then authorise every code
        (604 for the whole call)."""
        insts = [self._instrument(code, base) for code in codes]
        for inst in insts:
            if not _authorised(spec, inst):
                raise ApiError(604)
        return insts

    def _cap(self, asked: int, cap: int) -> int:
        if asked <= cap:
            return asked
        if self.config.oversize == "603":
            raise ApiError(603)
        return cap

    def _bars(
        self, plan: Plan, inst: Instrument, kline_type: int, end: int, count: int
    ) -> list[dict[str, str]]:
        now = self.market_now()
        if end > 1e11:  # milliseconds (alltick-api.md §8 #12)
            end //= 1000
        if inst.is_stock_path or end == 0:  # stocks ignore kline_timestamp_end (§8 #11)
            stop: float = now
        else:
            stop = end
        floor = _history_floor(plan, inst, kline_type, now, count)
        return market.klines(inst, kline_type, stop, now, count, floor)

    def kline(self, data: dict[str, Any], spec: TokenSpec, base: str) -> dict[str, Any]:
        code, kline_type, end, count = _kline_fields(data)
        (inst,) = self._instruments([code], spec, base)
        _check_interval(inst, kline_type)
        count = self._cap(count, spec.plan.kline_bars)
        bars = self._bars(spec.plan, inst, kline_type, end, count)
        return {"code": code, "kline_type": kline_type, "kline_list": bars}

    def batch_kline(self, data: dict[str, Any], spec: TokenSpec, base: str) -> dict[str, Any]:
        items = data.get("data_list")
        if not isinstance(items, list) or not items:
            raise ApiError(400, DATA_INVALID)
        if len(items) > spec.plan.batch_groups:
            raise ApiError(603)
        groups = [_kline_fields(item) for item in items]
        insts = self._instruments([g[0] for g in groups], spec, base)
        out = []
        for inst, (code, kline_type, end, count) in zip(insts, groups, strict=True):
            _check_interval(inst, kline_type)
            count = self._cap(count, spec.plan.batch_bars)
            bars = self._bars(spec.plan, inst, kline_type, end, count)
            out.append({"code": code, "kline_type": kline_type, "kline_data": bars})
        return {"kline_list": out}

    def _symbols(self, data: dict[str, Any], spec: TokenSpec, base: str) -> list[Instrument]:
        items = data.get("symbol_list")
        if not isinstance(items, list) or not items:
            raise ApiError(400, DATA_INVALID)
        items = items[: self._cap(len(items), spec.plan.codes_per_call)]
        codes = []
        for item in items:
            code = item.get("code") if isinstance(item, dict) else None
            if not isinstance(code, str) or not code:
                raise ApiError(400, DATA_INVALID)
            codes.append(code)
        return self._instruments(codes, spec, base)

    def trade_tick(self, data: dict[str, Any], spec: TokenSpec, base: str) -> dict[str, Any]:
        now = self.market_now()
        return {"tick_list": [market.trade_tick(i, now) for i in self._symbols(data, spec, base)]}

    def depth_tick(self, data: dict[str, Any], spec: TokenSpec, base: str) -> dict[str, Any]:
        now = self.market_now()
        return {"tick_list": [market.depth_tick(i, now) for i in self._symbols(data, spec, base)]}

    def static_info(self, data: dict[str, Any], spec: TokenSpec, base: str) -> dict[str, Any]:
        infos = [market.static_info(i) for i in self._symbols(data, spec, base)]
        return {"static_info_list": infos}

    # --- the suspension service ---------------------------------------------------------

    async def handle_suspension(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["exchange"]
        endpoint = f"suspension/{name}"

        async def produce(request: web.Request, token: str) -> Answer:
            return self._suspension(request, token, name, endpoint)

        def throttled(_ret: int) -> Answer:
            return _suspension_error("request too frequent: 1 request per minute")

        return await self.serve(request, endpoint, produce, throttled)

    def _suspension(self, request: web.Request, token: str, name: str, endpoint: str) -> Answer:
        if not token:
            return _suspension_error("token is required")
        spec = self.tokens.get(token)
        if spec is None:
            return _suspension_error("token invalid")
        if not self._quota(token, spec).admit_suspension(endpoint, self.clock.now()):
            return _suspension_error("request too frequent: 1 request per minute")
        try:
            page_no = _positive(request.query.get("page"))
            size = _positive(request.query.get("size"))
        except ValueError:
            return _suspension_error("page and size must be positive integers")
        now = self.market_now()
        stamp = datetime.fromtimestamp(now, UTC) + timedelta(seconds=DAY_RESET_UTC_OFFSET)
        body = suspension.page(
            suspension.records(name, now), page_no, size, stamp.strftime("%Y-%m-%dT%H:%M:%S")
        )
        return Answer(200, orjson.dumps(body))

    # --- the admin view -----------------------------------------------------------------

    def admin_state(self) -> dict[str, Any]:
        return {
            **self.clock.state(),
            "market_now": self._market_now,
        }

    def faults_state(self) -> dict[str, Any]:
        return {
            "config": self.injector.config.to_dict(),
            "seed": self.injector.seed,
            "injected": dict(self.injector.injected),
        }

    def config_state(self) -> dict[str, Any]:
        return {
            "tokens": {
                token: {
                    "plan": spec.plan.to_dict(),
                    "basket": None if spec.basket is None else sorted(spec.basket),
                }
                for token, spec in self.tokens.items()
            },
            "mirror_status": self.config.mirror_status,
            "oversize": self.config.oversize,
            "strict_free": self.config.strict_free,
            "market_now": self._market_now,
        }


# --- helpers -------------------------------------------------------------------------------


def _error(ret: int, trace: str | None = None, msg: str | None = None) -> Answer:
    body: dict[str, Any] = {"ret": ret, "msg": msg or MESSAGES[ret]}
    if trace is not None:
        body["trace"] = trace
    return Answer(ret, orjson.dumps(body))


def _suspension_error(message: str) -> Answer:
    return Answer(500, orjson.dumps({"success": False, "error": message}), 500)


async def _document(request: web.Request, endpoint: str) -> dict[str, Any]:
    """The request's JSON document: the POST body for batch-kline, else ``query``."""
    if endpoint == BATCH_KLINE:
        raw = await request.read()
        if not raw.strip():
            raise ApiError(601)
        try:
            document = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise ApiError(400, HEADER_INVALID) from None
    else:
        query = request.query.get("query")
        if not query:
            raise ApiError(402)
        try:
            document = orjson.loads(query)
        except orjson.JSONDecodeError:
            raise ApiError(402) from None
    if not isinstance(document, dict):
        raise ApiError(400, HEADER_INVALID)
    return document


def _int_field(data: dict[str, Any], name: str, low: int, high: int | None = None) -> int:
    value = data.get(name)
    # JSON numbers only: "8", 8.0 and true are all refused (bool is an int in Python).
    if type(value) is not int or value < low or (high is not None and value > high):
        raise ApiError(400, DATA_INVALID)
    return value


def _kline_fields(data: Any) -> tuple[str, int, int, int]:
    """``code, kline_type, kline_timestamp_end, query_kline_num`` of a /kline request or a
    batch group; all five documented fields are required."""
    if not isinstance(data, dict):
        raise ApiError(400, DATA_INVALID)
    code = data.get("code")
    if not isinstance(code, str) or not code:
        raise ApiError(400, DATA_INVALID)
    kline_type = _int_field(data, "kline_type", 1, 10)
    end = _int_field(data, "kline_timestamp_end", 0)
    count = _int_field(data, "query_kline_num", 1)
    _int_field(data, "adjust_type", 0, 1)  # 1 (forward-adjusted) is served as 0
    return code, kline_type, end, count


def _check_interval(inst: Instrument, kline_type: int) -> None:
    if inst.is_stock_path and kline_type in (6, 7):  # no 2h/4h bars for stocks and indices
        raise ApiError(400, DATA_INVALID)


def _authorised(spec: TokenSpec, inst: Instrument) -> bool:
    plan = spec.plan
    if plan.symbols is not None and inst.code not in plan.symbols:
        return False
    if plan.markets is not None and inst.market not in plan.markets:
        return False
    return spec.basket is None or inst.code in spec.basket


def _history_floor(plan: Plan, inst: Instrument, kline_type: int, now: float, count: int) -> float:
    """The oldest bar start the plan may see (alltick-api.md §8 #13)."""
    floor = float(market.MARKET_FLOOR)
    if plan.history_days is not None:
        floor = max(floor, now - plan.history_days * market.DAY)
    # Stocks always get the newest bars, so a reach in bars only bites when paging (FX) or
    # when a custom plan asks for more bars than it reaches.
    if plan.history_bars is not None and (not inst.is_stock_path or count > plan.history_bars):
        reach = market.bars_before(inst, kline_type, now, now, plan.history_bars, floor)
        if len(reach) == plan.history_bars:
            floor = max(floor, reach[0].start)
    return floor


def _positive(value: str | None) -> int | None:
    if value is None:
        return None
    number = int(value)
    if number < 1:
        raise ValueError(value)
    return number


def _faulty(request: web.Request, fault: Fault, answer: Answer) -> web.StreamResponse:
    """The answer as the fault mangles it."""
    if fault.kind == "reset":
        if request.transport is not None:
            request.transport.abort()
        return web.Response()  # never sent: the connection is gone
    if fault.kind == "http_5xx":
        if fault.json_body:
            body = orjson.dumps({"ret": 500, "msg": "internal server error"})
            return web.Response(body=body, status=fault.code, content_type=_JSON)
        html = _HTML_5XX.format(fault.code, _REASONS[fault.code])
        return web.Response(text=html, status=fault.code, content_type="text/html")
    # malformed: the real body cut short, or a page that is not JSON at all, both HTTP 200
    if fault.json_body:
        cut = max(1, min(len(answer.body) - 1, int(len(answer.body) * fault.cut)))
        return web.Response(body=answer.body[:cut], content_type=_JSON)
    return web.Response(body=b"<html><body>upstream busy</body></html>", content_type=_JSON)


_HANDLERS: dict[str, Handler] = {
    KLINE: Emulator.kline,
    BATCH_KLINE: Emulator.batch_kline,
    TRADE_TICK: Emulator.trade_tick,
    DEPTH_TICK: Emulator.depth_tick,
    STATIC_INFO: Emulator.static_info,
}

# --- the application -----------------------------------------------------------------------

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
    from alltick_frames.emulator.websocket import add_websocket_routes  # it imports this module

    add_websocket_routes(app, emulator)
    _add_admin_routes(app, emulator)
    return app


def _json(payload: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(payload), status=status, content_type=_JSON)


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
