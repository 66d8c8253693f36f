"""What the endpoints serve: bars rendered from the price path, trades, books, static info.

Everything here is a pure function of (code, kline_type, bar start) and of the market clock's
``now``; the calendars are :mod:`~alltick_frames.emulator.sessions`, the price path
:mod:`~alltick_frames.emulator.prices`.

**Bars.** A bar covers a slot ``[start, start + length)`` and its trading span ``[a, b]`` (the
part of the slot when the market is open). ``open = p(a)``, ``close = p(b)``; ``high`` and
``low`` are the extremes of ``p`` at five evenly spaced points of ``[a, b]``, widened by a
hashed wick. So a minute bar's close is exactly the next minute bar's open within a session,
and a day bar opens and closes exactly where its first and last minute bars do (its high and
low are sampled, so they need not equal the extremes of its minute bars).

**The forming bar.** The newest bar whose span has begun but not ended is still forming: its
span is cut at the last moment the market was open (``now`` while trading, else the last close),
its close is the price there and its high, low and volume are "so far".

**Order books at the limits** (``en/api-reference/stock/price-change-trading-status.mdx``;
official ``http_interface/price_changes_closure_holidays_delistings.md``): AllTick marks them
with zero-filled levels, not missing ones. A limit-up book has its bids and every ask level
``{"price":"0.000000","volume":"0"}``; a limit-down book the reverse; a delisted code both
sides zero. :func:`order_book` renders every book, for ``/depth-tick`` and any push alike.

**Delisted codes** (:data:`~alltick_frames.emulator.catalogue.DELISTED_AT`) live on the market
clock of their last moment of trading: their bars end with their last session, their last
trade is the one before the delisting, and their book is zero from then on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np

from alltick_frames.emulator.catalogue import (
    CFD,
    CRYPTO,
    DELISTED,
    DELISTED_AT,
    LIMIT_DOWN,
    LIMIT_UP,
    NORMAL,
    STOCK,
    Instrument,
    stable_hash,
)
from alltick_frames.emulator.prices import bar_uniforms, price_at, prices
from alltick_frames.emulator.sessions import (
    MINUTE,
    YEAR,
    Bar,
    bars_before,
    last_open,
    schedule_of,
)

_FRACTIONS = np.linspace(0.0, 1.0, 5)
#: A level of a side that has no orders at a limit or after a delisting: the decimals of the
#: docs' screenshots (``stock-limit-up-down.png``, ``stock-delisted.png``).
ZERO_PRICE, ZERO_VOLUME = "0.000000", "0"


def trading_now(inst: Instrument, now: float) -> float:
    """The moment whose market ``inst`` shows at ``now``: ``now``, or for a delisted code the
    moment it stopped trading."""
    return min(now, DELISTED_AT) if inst.book_status == DELISTED else now


def book_status(inst: Instrument, now: float) -> str:
    """``normal``, ``limit-up``, ``limit-down`` or ``delisted`` at the market moment ``now``."""
    if inst.book_status == DELISTED and now < DELISTED_AT:
        return NORMAL
    return inst.book_status


def _formatter(decimals: int) -> Callable[[float], str]:
    return f"{{:.{decimals}f}}".format


def render_bars(
    inst: Instrument, kline_type: int, bars: Sequence[Bar], now: float
) -> list[dict[str, str]]:
    """The bars as AllTick sends them: seven string fields each, oldest first."""
    if not bars:
        return []
    sched = schedule_of(inst)
    starts = np.array([b.start for b in bars], dtype=np.int64)
    a = np.array([b.a for b in bars], dtype=np.float64)
    b = np.array([b.b for b in bars], dtype=np.float64)
    e = b.copy()
    if b[-1] > now:  # only the newest bar can still be forming
        e[-1] = max(a[-1], last_open(sched, now))
    span = b - a
    grid = np.minimum(a[:, None] + span[:, None] * _FRACTIONS[None, :], e[:, None])
    p = prices(inst, np.concatenate([grid, e[:, None]], axis=1))
    frac = np.divide(e - a, span, out=np.ones_like(span), where=span > 0)
    u = bar_uniforms(inst, kline_type, starts)
    wick = inst.vol * np.sqrt(np.maximum(span, MINUTE) / YEAR) * 0.25 * np.sqrt(frac)
    opens, closes = p[:, 0], p[:, -1]
    highs = p.max(axis=1) * (1 + wick * u[0])
    lows = p.min(axis=1) * (1 - wick * u[1])
    fmt = _formatter(inst.decimals)
    o_s = [fmt(v) for v in opens.tolist()]
    c_s = [fmt(v) for v in closes.tolist()]
    h_s = [fmt(v) for v in highs.tolist()]
    l_s = [fmt(v) for v in lows.tolist()]
    if inst.daily_volume:
        days = np.array([bar.days for bar in bars])
        volume = inst.daily_volume * days * frac * (0.5 + u[2])
        vwap = (opens + closes + highs + lows) / 4
        v_s, t_s = _volumes(inst, volume, volume * vwap)
    else:
        v_s = t_s = ["0"] * len(bars)
    return [
        {
            "timestamp": str(s),
            "open_price": o,
            "close_price": c,
            "high_price": h,
            "low_price": lo,
            "volume": v,
            "turnover": t,
        }
        for s, o, c, h, lo, v, t in zip(starts.tolist(), o_s, c_s, h_s, l_s, v_s, t_s, strict=True)
    ]


def _volumes(
    inst: Instrument, volume: np.ndarray, turnover: np.ndarray
) -> tuple[list[str], list[str]]:
    if inst.asset_class == CRYPTO:
        vol_fmt = _formatter(4)
        volumes = [vol_fmt(v) for v in volume.tolist()]
    else:  # shares, rounded down to whole lots
        lots = np.floor(volume / inst.lot_size) * inst.lot_size
        volumes = [str(int(v)) for v in lots.tolist()]
        turnover = np.where(lots > 0, turnover * lots / np.maximum(volume, 1e-12), 0.0)
    turn_fmt = _formatter(2)
    return volumes, [turn_fmt(v) for v in turnover.tolist()]


def klines(
    inst: Instrument, kline_type: int, end: float, now: float, count: int, floor: float
) -> list[dict[str, str]]:
    """``bars_before`` rendered: what ``/kline`` puts in ``kline_list``."""
    now = trading_now(inst, now)
    return render_bars(inst, kline_type, bars_before(inst, kline_type, end, now, count, floor), now)


# --- ticks, depth and static info ----------------------------------------------------------


def _last_trade_ms(inst: Instrument, now: float) -> int:
    """The time of the latest trade: a hashed few hundred ms before ``now`` while trading,
    just before the close while the market is closed."""
    e = last_open(schedule_of(inst), now)
    return int(e * 1000) - 1 - stable_hash(inst.code, "tick", int(e)) % 997


def _seq(inst: Instrument, tick_ms: int) -> int:
    return tick_ms // 50 + inst.seed % 1_000_000


def trade_tick(inst: Instrument, now: float) -> dict[str, object]:
    """The latest trade of ``inst`` as ``/trade-tick`` reports it."""
    tick_ms = _last_trade_ms(inst, trading_now(inst, now))
    price = price_at(inst, tick_ms / 1000)
    h = stable_hash(inst.code, "trade", tick_ms)
    if inst.market is None and inst.asset_class != CRYPTO:
        volume, turnover, direction = "0", "0", 1  # FX, metals, energy: no volume, always 1
    else:
        if inst.asset_class == CRYPTO:  # a trade worth $20 to $50,000
            qty = max(round((20 + h % 50_000) / price, 4), 0.0001)
            volume = f"{qty:.4f}"
        else:
            qty = inst.lot_size * (1 + h % 20)
            volume = str(qty)
        turnover = f"{qty * price:.2f}"
        direction = (h >> 8) % 3
    return {
        "code": inst.code,
        "seq": str(_seq(inst, tick_ms)),
        "tick_time": str(tick_ms),
        "price": _formatter(inst.decimals)(price),
        "volume": volume,
        "turnover": turnover,
        "trade_direction": direction,
    }


class Book(NamedTuple):
    """One order book: when (``tick_ms``, ``seq``), its status, and its levels best first,
    each ``{"price": str, "volume": str}``."""

    tick_ms: int
    seq: int
    status: str
    bids: list[dict[str, str]]
    asks: list[dict[str, str]]


def order_book(inst: Instrument, now: float) -> Book:
    """The order book of ``inst`` at the market moment ``now``: the full depth of its class
    (none for an index), zero-filled on the side a limit or a delisting empties."""
    tick_ms = _last_trade_ms(inst, trading_now(inst, now))
    status = book_status(inst, now)
    levels = inst.depth_levels
    bids: list[dict[str, str]] = []
    asks: list[dict[str, str]] = []
    if levels:
        tick = 10.0**-inst.decimals
        mid = round(price_at(inst, tick_ms / 1000) / tick)
        h = stable_hash(inst.code, "depth", tick_ms)
        half = 1 + h % 2
        gap = 1 + (h >> 4) % 2
        fmt = _formatter(inst.decimals)
        for i in range(levels):
            hv = stable_hash(inst.code, "level", tick_ms, i)
            bid_vol, ask_vol = _depth_volume(inst, hv), _depth_volume(inst, hv >> 20)
            bids.append({"price": fmt((mid - half - i * gap) * tick), "volume": bid_vol})
            asks.append({"price": fmt((mid + half + i * gap) * tick), "volume": ask_vol})
        if status in (LIMIT_DOWN, DELISTED):
            bids = [{"price": ZERO_PRICE, "volume": ZERO_VOLUME} for _ in range(levels)]
        if status in (LIMIT_UP, DELISTED):
            asks = [{"price": ZERO_PRICE, "volume": ZERO_VOLUME} for _ in range(levels)]
    return Book(tick_ms, _seq(inst, tick_ms), status, bids, asks)


def depth_tick(inst: Instrument, now: float) -> dict[str, object]:
    """The order book of ``inst`` as ``/depth-tick`` reports it (numbers as strings)."""
    book = order_book(inst, now)
    return {
        "code": inst.code,
        "seq": str(book.seq),
        "tick_time": str(book.tick_ms),
        "bids": book.bids,
        "asks": book.asks,
    }


def _depth_volume(inst: Instrument, h: int) -> str:
    if inst.asset_class == CFD:
        return "0"
    if inst.asset_class == CRYPTO:
        return f"{max((100 + h % 200_000) / inst.base_price, 0.0001):.4f}"
    if inst.market is None:  # FX, metals, energy: liquidity-provider sizes
        return str((h % 50 + 1) * 100_000)
    return str(inst.lot_size * (h % 200 + 1))


_BOARDS = {"US": "USEquity", "HK": "HKEquity", "SH": "SHEquity", "SZ": "SZEquity"}


def static_info(inst: Instrument) -> dict[str, str]:
    """Reference data of a stock or ETF as ``/static_info`` reports it (all strings); a fund
    has no per-share earnings or book value, so those are ``""``."""
    h = stable_hash(inst.code, "static")
    market = inst.market or ""
    info = {
        "board": _BOARDS[market],
        "bps": "",
        "circulating_shares": "",
        "currency": inst.currency,
        "dividend_yield": "",
        "eps": "",
        "eps_ttm": "",
        "exchange": inst.exchange,
        "lot_size": str(inst.lot_size),
        "name_cn": inst.name_cn or inst.name,
        "name_en": inst.name,
        "name_hk": inst.name_cn or inst.name,
        "symbol": inst.code,
        "total_shares": "",
    }
    total = int(inst.daily_volume * (50 + h % 400))
    circulating = total * (60 + (h >> 10) % 41) // 100
    info.update(
        circulating_shares=str(circulating),
        dividend_yield=f"{((h >> 40) % 600) / 100:.2f}",
        total_shares=str(total),
    )
    if inst.asset_class == STOCK:
        eps = inst.base_price / (8 + (h >> 20) % 40)
        info.update(
            bps=f"{inst.base_price / (1 + (h >> 30) % 6):.4f}",
            eps=f"{eps:.4f}",
            eps_ttm=f"{eps * (0.9 + ((h >> 50) % 20) / 100):.4f}",
        )
    if market == "HK":
        info["hk_shares"] = str(circulating)
    return info
