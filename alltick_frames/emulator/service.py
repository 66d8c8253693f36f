"""The emulator's state and its request pipeline: tokens, windows, faults, statistics.

A request to a quote endpoint passes these gates in this order (AllTick does not document its
order; this one is the emulator's choice, see alltick-api.md §2, §5, §8):

0. (in front of the service, :mod:`~alltick_frames.emulator.app`) a request line over 8 KiB:
   HTTP 414; no ``token``: HTTP 401 ``{"msg":"token is required","trace":"","ret":401}``;
1. ``token`` unknown: ``ret`` 401 "token invalid";
2. the plan's windows (:mod:`~alltick_frames.emulator.limits`): ``ret`` 429 or 605, which
   consume nothing; every call that passes this gate is counted, whatever it is answered;
3. the envelope: ``query`` missing or not JSON: 402 (GET); empty body: 601 (POST); body not
   JSON, or ``trace``/``data`` missing or wrong: 400 "request header param invalid";
4. batch groups over the plan's cap: 603; on Free (or every plan with ``hard_code_cap``)
   codes beyond the per-call cap: cut (or 603 with ``oversize="603"``) before they are even
   looked at;
5. the fields of ``data``: 400 "request data param invalid";
6. every code known and on this base path (else 600 for the whole call), then in the token's
   plan and basket (else 604 for the whole call); 2h/4h bars for a stock: 400 data; content
   Free may not have (``free_eod_only``): 603;
7. too many bars: cut (or 603 with ``oversize="603"``);
8. the answer, every number a string except ``kline_type`` and ``trade_direction``.

Steps 4 to 8 are :mod:`~alltick_frames.emulator.handlers`; the envelope is
:mod:`~alltick_frames.emulator.envelope`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from aiohttp import web

from alltick_frames.core.plans import DAY_RESET_UTC_OFFSET, KLINE
from alltick_frames.emulator import arrivals, sessions, suspension
from alltick_frames.emulator.catalogue import CATALOGUE, CFD, ENERGY
from alltick_frames.emulator.clock import parse_moment
from alltick_frames.emulator.config import EmulatorConfig, TokenSpec
from alltick_frames.emulator.envelope import (
    JSON,
    Answer,
    ApiError,
    ErrorStyle,
    ok_answer,
    positive,
    read_data,
    read_document,
    read_trace,
)
from alltick_frames.emulator.faults import (
    NO_FAULT,
    Fault,
    FaultConfig,
    FaultInjector,
    fault_key,
    spoil_bars,
)
from alltick_frames.emulator.handlers import HANDLERS, Call
from alltick_frames.emulator.limits import TokenQuota

MISSING_TOKEN = "<missing>"
#: Where :meth:`Emulator.serve` leaves a request's arrival (rate clock) for the quota.
ARRIVAL = web.RequestKey("alltick_emulator_arrival", float)

_HTML_5XX = (
    "<html><head><title>{0} {1}</title></head><body><center><h1>{0} {1}</h1></center>"
    "<hr><center>nginx</center></body></html>"
)
_REASONS = {500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}


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
        self.errors = ErrorStyle(config.error_trace, config.error_data, config.old_invalid_codes)
        sessions.load_calendars()

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
            quota = TokenQuota(
                spec.plan,
                lenient_free=self.config.lenient_free,
                refusals_count=self.config.refusals_count,
            )
            self.quotas[token] = quota
        return quota

    def codes(self) -> list[dict[str, object]]:
        """The catalogue as ``GET /_emulator/codes`` reports it, ``pageable`` as served."""
        rows = self.catalogue.rows
        if not self.config.page_energy_cfd:
            return rows
        return [r | {"pageable": True} if r["asset_class"] in (ENERGY, CFD) else r for r in rows]

    def count(self, token: str, endpoint: str, key: str) -> None:
        """Count one answer in the statistics (``token`` "" counts as ``<missing>``)."""
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
        request[ARRIVAL] = await self._arrive(request)
        fault = self.injector.draw()
        if fault.slow:
            self.count(token, endpoint, "slow")
            await asyncio.sleep(fault.delay)
        if fault.kind == "rate_limit":
            answer = throttled(fault.code)
        else:
            answer = await produce(request, token)
        if fault.kind == "bad_bars":
            spoiled = spoil_bars(answer.body, fault) if answer.key == 200 else None
            if spoiled is not None:
                self.count(token, endpoint, fault_key(fault))
                return web.Response(body=spoiled, content_type=JSON)
            fault = NO_FAULT  # nothing to spoil: the answer goes as it is
        if fault.kind in (None, "rate_limit"):
            self.count(token, endpoint, str(answer.key))
            return self._response(answer)
        self.count(token, endpoint, fault_key(fault))
        return _faulty(request, fault, answer)

    async def _arrive(self, request: web.Request) -> float:
        """When ``request`` is dated by the windows (rate clock): when its bytes reached the
        front door (:mod:`~alltick_frames.emulator.arrivals`), not when the loop got to it,
        plus the ``arrival_jitter`` the network added on the way. The request is held until
        that moment has passed, so it is admitted and counted no earlier than it arrived."""
        delay = self.injector.arrival_delay()
        stamp = arrivals.arrived(request.transport)
        if stamp is None:  # not served through arrivals.listening_socket: the loop's time
            if delay:
                await asyncio.sleep(delay)
            return self.clock.now()
        due = stamp + delay
        wait = due - time.time()
        if wait > 0:
            await asyncio.sleep(wait)
        return self.clock.at(min(due, time.time()))

    def _response(self, answer: Answer) -> web.Response:
        status = answer.status
        if self.config.mirror_status and answer.key in (401, 429) and status == 200:
            status = answer.key
        return web.Response(body=answer.body, status=status, content_type=answer.content_type)

    def quote_handler(self, endpoint: str, base: str) -> Callable[[web.Request], Awaitable[Any]]:
        """The aiohttp handler of ``endpoint`` on the base path ``base``."""

        async def produce(request: web.Request, token: str) -> Answer:
            return await self._quote(request, token, endpoint, base)

        async def handle(request: web.Request) -> web.StreamResponse:
            return await self.serve(request, endpoint, produce, self.errors.answer)

        return handle

    async def _quote(self, request: web.Request, token: str, endpoint: str, base: str) -> Answer:
        spec = self.tokens.get(token)
        if spec is None:
            return self.errors.answer(401)
        refused = self._quota(token, spec).admit(endpoint, self._dated(request))
        if refused is not None:
            return self.errors.answer(refused)
        trace: str | None = None
        try:
            document = await read_document(request, endpoint)
            trace = read_trace(document)
            data = read_data(document)
            hole = self.injector.hole() if endpoint == KLINE else None
            call = Call(spec, base, self.market_now(), self.config, hole)
            return ok_answer(trace, HANDLERS[endpoint](call, data))
        except ApiError as error:
            return self.errors.answer(error.ret, trace, error.msg)

    def _dated(self, request: web.Request) -> float:
        arrival = request.get(ARRIVAL)
        return self.clock.now() if arrival is None else arrival

    # --- the suspension service ---------------------------------------------------------

    async def handle_suspension(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["exchange"]
        endpoint = f"suspension/{name}"

        async def produce(request: web.Request, token: str) -> Answer:
            return self._suspension(request, token, name, endpoint)

        return await self.serve(request, endpoint, produce, lambda _ret: _TOO_FREQUENT)

    def _suspension(self, request: web.Request, token: str, name: str, endpoint: str) -> Answer:
        """The halt service (alltick-api.md §3.6; ``en/api-reference/stock/suspension.mdx``).

        Too frequent is HTTP 429 (api-evangelist ``skills/alltick-api-check-trading-halts.md``
        names the status but no body, so the body is plain text); any other error is the
        page's documented HTTP 500 ``{"success":false,"error":"..."}``. ``page`` and ``size``
        are accepted and ignored ("All interfaces do not support pagination and return the
        full data for the most recent year"), unless ``suspension_paging`` is on.
        """
        spec = self.tokens.get(token)
        if spec is None:
            return _suspension_error("token invalid")
        if not self._quota(token, spec).admit_suspension(endpoint, self._dated(request)):
            return _TOO_FREQUENT
        page_no = size = None
        if self.config.suspension_paging:
            try:
                page_no = positive(request.query.get("page"))
                size = positive(request.query.get("size"))
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
            **{name: getattr(self.config, name) for name in SWITCHES},
            "market_now": self._market_now,
        }


#: The config's switches, as ``GET /_emulator/config`` reports them.
SWITCHES = (
    "mirror_status",
    "oversize",
    "lenient_free",
    "free_eod_only",
    "hard_code_cap",
    "page_energy_cfd",
    "suspension_paging",
    "old_invalid_codes",
    "error_data",
    "error_trace",
    "refusals_count",
)


def _suspension_error(message: str) -> Answer:
    return Answer(500, orjson.dumps({"success": False, "error": message}), 500)


_TOO_FREQUENT = Answer(429, b"Too Many Requests", 429, "text/plain")


def _faulty(request: web.Request, fault: Fault, answer: Answer) -> web.StreamResponse:
    """The answer as the fault mangles it."""
    if fault.kind == "reset":
        if request.transport is not None:
            request.transport.abort()
        return web.Response()  # never sent: the connection is gone
    if fault.kind == "http_5xx":
        if fault.json_body:
            body = orjson.dumps({"ret": 500, "msg": "internal server error"})
            return web.Response(body=body, status=fault.code, content_type=JSON)
        html = _HTML_5XX.format(fault.code, _REASONS[fault.code])
        return web.Response(text=html, status=fault.code, content_type="text/html")
    # malformed: the real body cut short, or a page that is not JSON at all, both HTTP 200
    if fault.json_body:
        cut = max(1, min(len(answer.body) - 1, int(len(answer.body) * fault.cut)))
        return web.Response(body=answer.body[:cut], content_type=JSON)
    return web.Response(body=b"<html><body>upstream busy</body></html>", content_type=JSON)
