"""The AllTick endpoints: a request's ``data`` in, the answer's ``data`` out.

Each handler is a function of one :class:`Call` (who asks, on which base path, at which market
moment, under which switches) and the request's ``data``; it raises
:class:`~alltick_frames.emulator.envelope.ApiError` for every documented refusal. Tokens,
windows, faults and HTTP live in :mod:`~alltick_frames.emulator.service`.

Plans as the docs state them (``en/getting-started/http-interface-restrictions.mdx``):

* Free answers at most 5 codes per ``/trade-tick``, ``/depth-tick`` and ``/static_info`` call
  (the first 5; ``oversize="603"`` refuses instead). On the paid plans "a maximum of 50 codes
  per request is recommended" because of the GET URL's length: a recommendation, not a cap, so
  the emulator answers every code and the URL itself is limited (HTTP 414, see
  :mod:`~alltick_frames.emulator.app`). ``hard_code_cap`` makes every plan's
  ``codes_per_call`` a cap, for clients that must cope with a server that cuts.
* Free has "last price and end-of-day data" only (the pricing page, as mirrored in
  api-evangelist ``plans/`` and ``sandbox/``: no real-time candlesticks, order book or
  tick-by-tick). With ``free_eod_only`` a Free token is refused intraday bars (``kline_type``
  1 to 7, on ``/kline`` and ``/batch-kline``) and ``/depth-tick`` with ``ret`` 603 "token level
  not enough"; day, week and month bars, ``/trade-tick`` (the last price) and ``/static_info``
  are served. Off by default, since the API reference pages never say so.
* History pages back only for :data:`~alltick_frames.emulator.catalogue.PAGEABLE` classes
  (``en/api-reference/stock/kline.mdx``); every other code ignores ``kline_timestamp_end``
  and answers its newest bars. ``page_energy_cfd`` lets energy and CFD codes page too.
* ``/static_info`` "only supports ... US stocks, Hong Kong stocks, and A-share products"
  (``en/api-reference/stock/static-info.mdx``): a market index in the list is ``ret`` 600
  for the whole call, like any code the endpoint does not know. ETFs are listed products of
  those markets and are answered, with empty per-share earnings and book value.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from alltick_frames.core.plans import BATCH_KLINE, DEPTH_TICK, KLINE, STATIC_INFO, TRADE_TICK, Plan
from alltick_frames.emulator import market, sessions
from alltick_frames.emulator.catalogue import CATALOGUE, CFD, ENERGY, INDEX, Instrument
from alltick_frames.emulator.config import EmulatorConfig, TokenSpec
from alltick_frames.emulator.envelope import (
    DATA_INVALID,
    ApiError,
    kline_fields,
    symbol_codes,
    symbol_list,
)


@dataclass(frozen=True, slots=True)
class Call:
    """One authenticated, admitted request: the token's plan, the base path it came in on, the
    market clock's reading and the emulator's switches."""

    spec: TokenSpec
    base: str
    now: float
    config: EmulatorConfig
    #: The ``drop_bars`` fault, when it strikes this call: it makes a hole in a page built one
    #: bar longer (see :mod:`~alltick_frames.emulator.faults`).
    hole: Callable[[list[Any]], list[Any]] | None = None

    @property
    def plan(self) -> Plan:
        return self.spec.plan

    @property
    def free(self) -> bool:
        return self.spec.plan.name == "free"

    def cap(self, asked: int, cap: int) -> int:
        """``asked`` cut to ``cap`` (or 603 with ``oversize="603"``)."""
        if asked <= cap:
            return asked
        if self.config.oversize == "603":
            raise ApiError(603)
        return cap


Handler = Callable[[Call, dict[str, Any]], dict[str, Any]]


def _instrument(call: Call, code: str, indices: bool) -> Instrument:
    inst = CATALOGUE.get(code)
    if inst is None or inst.path != call.base or (inst.asset_class == INDEX and not indices):
        raise ApiError(600)
    return inst


def _instruments(call: Call, codes: list[str], *, indices: bool = True) -> list[Instrument]:
    """Resolve every code (600 for the whole call if one fails, or is an index where the
    endpoint serves none), then authorise every code (604 for the whole call)."""
    insts = [_instrument(call, code, indices) for code in codes]
    for inst in insts:
        if not authorised(call.spec, inst):
            raise ApiError(604)
    return insts


def authorised(spec: TokenSpec, inst: Instrument) -> bool:
    plan = spec.plan
    if plan.symbols is not None and inst.code not in plan.symbols:
        return False
    if plan.markets is not None and inst.market not in plan.markets:
        return False
    return spec.basket is None or inst.code in spec.basket


def _check_interval(call: Call, inst: Instrument, kline_type: int) -> None:
    if inst.is_stock_path and kline_type in (6, 7):  # no 2h/4h bars for stocks and indices
        raise ApiError(400, DATA_INVALID)
    if kline_type < 8 and call.free and call.config.free_eod_only:
        raise ApiError(603)


def _pages(call: Call, inst: Instrument) -> bool:
    return inst.pageable or (call.config.page_energy_cfd and inst.asset_class in (ENERGY, CFD))


def _history_floor(plan: Plan, inst: Instrument, kline_type: int, now: float, count: int) -> float:
    """The oldest bar start the plan may see (alltick-api.md §8 #13)."""
    floor = float(sessions.MARKET_FLOOR)
    if plan.history_days is not None:
        floor = max(floor, now - plan.history_days * sessions.DAY)
    # Stocks always get the newest bars, so a reach in bars only bites when paging (FX) or
    # when a custom plan asks for more bars than it reaches.
    if plan.history_bars is not None and (not inst.is_stock_path or count > plan.history_bars):
        reach = sessions.bars_before(inst, kline_type, now, now, plan.history_bars, floor)
        if len(reach) == plan.history_bars:
            floor = max(floor, reach[0].start)
    return floor


def _bars(call: Call, inst: Instrument, kline_type: int, end: int, count: int) -> list[Any]:
    now = call.now
    if end > 1e11:  # milliseconds (alltick-api.md §8 #12)
        end //= 1000
    if end == 0 or not _pages(call, inst):  # the others ignore kline_timestamp_end
        stop: float = now
    else:
        stop = end
    floor = _history_floor(call.plan, inst, kline_type, now, count)
    return market.klines(inst, kline_type, stop, now, count, floor)


def kline(call: Call, data: dict[str, Any]) -> dict[str, Any]:
    code, kline_type, end, count = kline_fields(data)
    (inst,) = _instruments(call, [code])
    _check_interval(call, inst, kline_type)
    count = call.cap(count, call.plan.kline_bars)
    if call.hole is None:
        bars = _bars(call, inst, kline_type, end, count)
    else:
        bars = call.hole(_bars(call, inst, kline_type, end, count + 1))
    return {"code": code, "kline_type": kline_type, "kline_list": bars}


def batch_kline(call: Call, data: dict[str, Any]) -> dict[str, Any]:
    items = data.get("data_list")
    if not isinstance(items, list) or not items:
        raise ApiError(400, DATA_INVALID)
    if len(items) > call.plan.batch_groups:
        raise ApiError(603)
    groups = [kline_fields(item) for item in items]
    insts = _instruments(call, [g[0] for g in groups])
    out = []
    for inst, (code, kline_type, end, count) in zip(insts, groups, strict=True):
        _check_interval(call, inst, kline_type)
        count = call.cap(count, call.plan.batch_bars)
        bars = _bars(call, inst, kline_type, end, count)
        out.append({"code": code, "kline_type": kline_type, "kline_data": bars})
    return {"kline_list": out}


def _symbols(call: Call, data: dict[str, Any], *, indices: bool = True) -> list[Instrument]:
    items = symbol_list(data)
    if call.free or call.config.hard_code_cap:
        items = items[: call.cap(len(items), call.plan.codes_per_call)]
    return _instruments(call, symbol_codes(items), indices=indices)


def trade_tick(call: Call, data: dict[str, Any]) -> dict[str, Any]:
    return {"tick_list": [market.trade_tick(i, call.now) for i in _symbols(call, data)]}


def depth_tick(call: Call, data: dict[str, Any]) -> dict[str, Any]:
    insts = _symbols(call, data)
    if call.free and call.config.free_eod_only:
        raise ApiError(603)
    return {"tick_list": [market.depth_tick(i, call.now) for i in insts]}


def static_info(call: Call, data: dict[str, Any]) -> dict[str, Any]:
    infos = [market.static_info(i) for i in _symbols(call, data, indices=False)]
    return {"static_info_list": infos}


HANDLERS: dict[str, Handler] = {
    KLINE: kline,
    BATCH_KLINE: batch_kline,
    TRADE_TICK: trade_tick,
    DEPTH_TICK: depth_tick,
    STATIC_INFO: static_info,
}
