"""The synthetic market: trading calendars, bar alignment and a price path with random access.

Everything here is a pure function of (code, kline_type, bar start) and of the market clock's
``now``; nothing is stored and nothing is generated "from the beginning of time".

**The price path.** Each code has a latent log-price ``x(t)`` defined for every real ``t``::

    x(t) = sum over scales L of  a_L * lerp(n_L(k), n_L(k + 1), t/L - k),   k = floor(t/L)

where ``n_L(k)`` is uniform noise drawn from a 64-bit hash of (code, L, k) and the scales run
from 15 seconds to about 2 years in steps of 4. The amplitudes grow like ``sqrt(L)``, so the
path moves like a random walk at every scale up to months, yet any single ``x(t)`` costs 12
pairs of hashes; because the sum is bounded, prices wander around ``base_price`` instead of
drifting off over the decades. The price is ``base_price * exp(x(t))``.

**Bars.** A bar covers a slot ``[start, start + length)`` and its trading span ``[a, b]`` (the
part of the slot when the market is open). ``open = p(a)``, ``close = p(b)``; ``high`` and
``low`` are the extremes of ``p`` at five evenly spaced points of ``[a, b]``, widened by a
hashed wick. So a minute bar's close is exactly the next minute bar's open within a session,
and a day bar opens and closes exactly where its first and last minute bars do (its high and
low are sampled, so they need not equal the extremes of its minute bars).

**The forming bar.** The newest bar whose span has begun but not ended is still forming: its
span is cut at the last moment the market was open (``now`` while trading, else the last close),
its close is the price there and its high, low and volume are "so far".

**Calendars** (no holidays, no half days):

========  ==========================================  ==========================
schedule  sessions                                    day/week/month bars start
========  ==========================================  ==========================
US        09:30-16:00 America/New_York, Mon-Fri       00:00 New York
HK        09:30-12:00, 13:00-16:00 Asia/Hong_Kong     00:00 Hong Kong
CN        09:30-11:30, 13:00-15:00 Asia/Shanghai      00:00 Shanghai
FX        Sunday 22:00 UTC to Friday 22:00 UTC        00:00 UTC
CRYPTO    always                                      00:00 UTC
========  ==========================================  ==========================

Intraday bars of stocks start at session open and every bar length after it (the last bar of
a session may be short, e.g. US 1h bars start 09:30, 10:30, ..., 15:30). Intraday bars of FX
and crypto sit on the UTC grid (``start % length == 0``). Weeks start on Monday, months on
the 1st. FX has a bar for every slot that overlaps its open hours, so it has a short Sunday
day bar (22:00-24:00 UTC). No bar starts before :data:`MARKET_FLOOR`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from typing import NamedTuple
from zoneinfo import ZoneInfo

import numpy as np

from alltick_frames.core.intervals import BY_KLINE_TYPE
from alltick_frames.emulator.catalogue import CFD, CRYPTO, STOCK, Instrument, stable_hash

MINUTE, HOUR, DAY, WEEK = 60, 3600, 86_400, 604_800
YEAR = 365.25 * DAY
#: No bar starts before 2000-01-01 00:00 UTC.
MARKET_FLOOR = 946_684_800

# FX, metals, energy and CFDs: open from Sunday 22:00 UTC for five days.
_FX_ANCHOR = 3 * DAY + 22 * HOUR  # Sunday 1970-01-04 22:00 UTC
_FX_OPEN = 5 * DAY


@dataclass(frozen=True, slots=True)
class Schedule:
    """A trading calendar: a time zone and, for stocks, the sessions of each weekday."""

    key: str
    tz: str
    #: ``(open, close)`` in seconds after local midnight; empty: no daily sessions (FX, crypto).
    sessions: tuple[tuple[int, int], ...] = ()

    @property
    def is_stock(self) -> bool:
        return bool(self.sessions)

    @property
    def day_length(self) -> float:
        """Wall-clock seconds from the first open to the last close of a full trading day."""
        if self.sessions:
            return self.sessions[-1][1] - self.sessions[0][0]
        return DAY


def _hm(h: int, m: int = 0) -> int:
    return h * HOUR + m * MINUTE


SCHEDULES: dict[str, Schedule] = {
    "US": Schedule("US", "America/New_York", ((_hm(9, 30), _hm(16)),)),
    "HK": Schedule("HK", "Asia/Hong_Kong", ((_hm(9, 30), _hm(12)), (_hm(13), _hm(16)))),
    "CN": Schedule("CN", "Asia/Shanghai", ((_hm(9, 30), _hm(11, 30)), (_hm(13), _hm(15)))),
    "FX": Schedule("FX", "UTC"),
    "CRYPTO": Schedule("CRYPTO", "UTC"),
}


def schedule_of(inst: Instrument) -> Schedule:
    return SCHEDULES[inst.schedule_key]


# --- calendar arithmetic -------------------------------------------------------------------


@lru_cache(maxsize=64)
def _zone(tz: str) -> ZoneInfo:
    return ZoneInfo(tz)


@lru_cache(maxsize=1 << 17)
def _local_epoch(tz: str, ordinal: int, seconds: int) -> float:
    """Unix time of ``seconds`` after local midnight on the day ``ordinal`` (DST-correct)."""
    d = date.fromordinal(ordinal)
    h, rest = divmod(seconds, HOUR)
    m, s = divmod(rest, MINUTE)
    if h >= 24:  # the end of the day is the next day's midnight
        d = date.fromordinal(ordinal + 1)
        h = 0
    return datetime(d.year, d.month, d.day, h, m, s, tzinfo=_zone(tz)).timestamp()


def _ordinal(tz: str, t: float) -> int:
    """The local calendar day (proleptic ordinal) that contains ``t``."""
    return datetime.fromtimestamp(t, _zone(tz)).toordinal()


def _is_weekday(ordinal: int) -> bool:
    return (ordinal - 1) % 7 < 5  # day 1 of the proleptic calendar was a Monday


@lru_cache(maxsize=1 << 16)
def _sessions(sched: Schedule, ordinal: int) -> tuple[tuple[float, float], ...]:
    """The sessions of a stock schedule on day ``ordinal`` as Unix times (none at weekends)."""
    if not _is_weekday(ordinal):
        return ()
    return tuple(
        (_local_epoch(sched.tz, ordinal, o), _local_epoch(sched.tz, ordinal, c))
        for o, c in sched.sessions
    )


def _fx_is_open(t: float) -> bool:
    return (t - _FX_ANCHOR) % WEEK < _FX_OPEN


def _fx_next_open(t: float) -> float:
    """``t`` if the FX market is open then, else the next Sunday 22:00 UTC."""
    if _fx_is_open(t):
        return t
    return _FX_ANCHOR + (math.floor((t - _FX_ANCHOR) / WEEK) + 1) * WEEK


def _fx_last_open(t: float) -> float:
    """The last moment at or before ``t`` when the FX market was open."""
    r = (t - _FX_ANCHOR) % WEEK
    return t if r <= _FX_OPEN else t - (r - _FX_OPEN)


def last_open(sched: Schedule, t: float) -> float:
    """The last moment at or before ``t`` when the market was open: ``t`` itself while trading,
    else the most recent close."""
    if sched.key == "CRYPTO":
        return t
    if not sched.is_stock:
        return _fx_last_open(t)
    ordinal = _ordinal(sched.tz, t)
    for day in range(ordinal, ordinal - 10, -1):
        for o, c in reversed(_sessions(sched, day)):
            if o <= t:
                return min(t, c)
    raise AssertionError("unreachable: every week has a weekday")


# --- which bars exist ----------------------------------------------------------------------


class Bar(NamedTuple):
    """One bar's slot: ``start`` (the reported timestamp) and its trading span ``[a, b]``."""

    start: int
    a: float
    b: float
    #: Trading days the full bar spans (scales its volume).
    days: float


def bars_before(
    inst: Instrument, kline_type: int, end: float, now: float, count: int, floor: float
) -> list[Bar]:
    """The newest ``count`` bars with ``start <= end`` that have begun trading by ``now`` and
    start at or after ``floor``, oldest first."""
    if count <= 0:
        return []
    sched = schedule_of(inst)
    floor = max(floor, MARKET_FLOOR)
    length = BY_KLINE_TYPE[kline_type].seconds
    t0 = min(end, now)
    if t0 < floor:
        return []
    if kline_type <= 7:
        if sched.key == "CRYPTO":
            out = _crypto_intraday(length, t0, count, floor)
        elif sched.is_stock:
            out = _stock_intraday(sched, length, t0, count, floor)
        else:
            out = _fx_intraday(length, t0, now, count, floor)
    else:
        out = _calendar_bars(sched, kline_type, t0, now, count, floor)
    out.reverse()
    return out


def _crypto_intraday(length: int, t0: float, count: int, floor: float) -> list[Bar]:
    last = math.floor(t0 / length) * length
    first = max(last - (count - 1) * length, math.ceil(floor / length) * length)
    days = length / DAY
    return [Bar(s, s, s + length, days) for s in range(last, first - 1, -length)]


def _stock_intraday(sched: Schedule, length: int, t0: float, count: int, floor: float) -> list[Bar]:
    out: list[Bar] = []
    day_length = sched.day_length
    ordinal = _ordinal(sched.tz, t0)
    while len(out) < count:
        for o, c in reversed(_sessions(sched, ordinal)):
            if o > t0:
                continue
            if c <= floor:
                return out
            k = min(math.ceil((c - o) / length) - 1, math.floor((t0 - o) / length))
            while k >= 0 and len(out) < count:
                s = int(o) + k * length
                if s < floor:
                    return out
                b = min(s + length, c)
                out.append(Bar(s, s, b, (b - s) / day_length))
                k -= 1
        ordinal -= 1
    return out


def _fx_intraday(length: int, t0: float, now: float, count: int, floor: float) -> list[Bar]:
    out: list[Bar] = []
    week = math.floor((t0 - _FX_ANCHOR) / WEEK)
    while len(out) < count:
        o = _FX_ANCHOR + week * WEEK
        c = o + _FX_OPEN
        week -= 1
        if c <= floor:
            return out
        g0 = (o // length) * length  # the grid slot that holds the open
        if o > now or g0 > t0:
            continue
        k = min(math.ceil((c - g0) / length) - 1, math.floor((t0 - g0) / length))
        while k >= 0 and len(out) < count:
            s = g0 + k * length
            if s < floor:
                return out
            a, b = max(s, o), min(s + length, c)
            out.append(Bar(s, a, b, (b - a) / DAY))
            k -= 1
    return out


def _period(kline_type: int, ordinal: int) -> tuple[int, int]:
    """The calendar period (first day, first day of the next period) holding day ``ordinal``."""
    if kline_type == 8:
        return ordinal, ordinal + 1
    d = date.fromordinal(ordinal)
    if kline_type == 9:
        first = ordinal - d.weekday()
        return first, first + 7
    nxt = date(d.year + (d.month == 12), d.month % 12 + 1, 1)
    return date(d.year, d.month, 1).toordinal(), nxt.toordinal()


@lru_cache(maxsize=1 << 16)
def _span(sched: Schedule, first: int, stop: int) -> tuple[float, float, float] | None:
    """Trading span ``(a, b, days)`` of the local days ``first`` ≤ day < ``stop``, or None."""
    s = _local_epoch(sched.tz, first, 0)
    e = _local_epoch(sched.tz, stop, 0)
    if sched.key == "CRYPTO":
        return s, e, (e - s) / DAY
    if not sched.is_stock:
        a, b = _fx_next_open(s), _fx_last_open(e)
        return (a, b, (b - a) / DAY) if a < b else None
    trading = [d for d in range(first, stop) if _is_weekday(d)]
    if not trading:
        return None
    return _sessions(sched, trading[0])[0][0], _sessions(sched, trading[-1])[-1][1], len(trading)


def _calendar_bars(
    sched: Schedule, kline_type: int, t0: float, now: float, count: int, floor: float
) -> list[Bar]:
    out: list[Bar] = []
    ordinal = _ordinal(sched.tz, t0)
    while len(out) < count:
        first, stop = _period(kline_type, ordinal)
        ordinal = first - 1
        start = _local_epoch(sched.tz, first, 0)
        if start < floor:
            return out
        span = _span(sched, first, stop)
        if span is None or span[0] > now:
            continue
        out.append(Bar(int(start), *span))
    return out


# --- the price path ------------------------------------------------------------------------

_SCALES = 15.0 * 4.0 ** np.arange(12)  # 15 s ... about 2 years
_LONG = 30 * DAY
_SQRT3 = math.sqrt(3.0)
_MUL1 = np.uint64(0xBF58476D1CE4E5B9)
_MUL2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_SHIFTS = (np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(11))
_FRACTIONS = np.linspace(0.0, 1.0, 5)


def _mix(z: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser, in place on a uint64 array (wrapping multiplication intended)."""
    z ^= z >> _SHIFTS[0]
    z *= _MUL1
    z ^= z >> _SHIFTS[1]
    z *= _MUL2
    z ^= z >> _SHIFTS[2]
    return z


def _bits53(z: np.ndarray) -> np.ndarray:
    """Hash uint64 keys ``z`` (consumed) to floats uniform on [0, 2**53)."""
    return (_mix(z) >> _SHIFTS[3]).view(np.int64).astype(np.float64)


def _keys(k: np.ndarray, seed: np.uint64) -> np.ndarray:
    z = k.astype(np.uint64)
    z *= _GOLDEN
    z += seed
    return z


@lru_cache(maxsize=4096)
def _octaves(seed: int, vol: float) -> tuple[tuple[np.uint64, ...], tuple[float, ...]]:
    """Per-scale seeds and amplitudes of one code's path."""
    keys = _keys(np.arange(1, len(_SCALES) + 1), np.uint64(seed))
    seeds = tuple(_mix(keys))
    # Long scales are damped for very volatile codes, so prices stay within sane bounds.
    vols = np.where(_SCALES < _LONG, vol, min(vol, 0.3) * 0.5)
    amps = 0.6 * vols * np.sqrt(_SCALES / YEAR)
    return seeds, tuple(amps.tolist())


def prices(inst: Instrument, t: np.ndarray) -> np.ndarray:
    """The price of ``inst`` at every Unix time in ``t`` (any shape, not empty)."""
    seeds, amps = _octaves(inst.seed, inst.vol)
    flat = np.asarray(t, dtype=np.float64).ravel()
    lo, hi = float(flat.min()), float(flat.max())
    total = np.zeros_like(flat)
    for scale, seed, amp in zip(_SCALES.tolist(), seeds, amps, strict=True):
        x = flat / scale
        k = np.floor(x)
        f = x - k
        kmin = math.floor(lo / scale)
        width = math.floor(hi / scale) - kmin + 2
        if width <= flat.size:
            # Coarse scales: hash each grid point once, then look the points up.
            table = _bits53(_keys(np.arange(kmin, kmin + width), seed))
            idx = (k - kmin).astype(np.intp)
            v0, v1 = table[idx], table[idx + 1]
        else:
            z0 = _keys(k, seed)
            z1 = z0 + _GOLDEN
            v0, v1 = _bits53(z0), _bits53(z1)
        v1 -= v0
        v1 *= f
        v1 += v0
        v1 *= amp
        total += v1
    # Each noise value was u * 2**53 with u uniform on [0, 1); map it to [-sqrt 3, sqrt 3).
    logp = total * (2 * _SQRT3 / 2.0**53) - _SQRT3 * sum(amps)
    return (inst.base_price * np.exp(logp)).reshape(np.shape(t))


def price_at(inst: Instrument, t: float) -> float:
    return float(prices(inst, np.array([t]))[0])


def _bar_uniforms(inst: Instrument, kline_type: int, starts: np.ndarray) -> np.ndarray:
    """Three hashed uniforms per bar (wick up, wick down, volume), shape (3, n)."""
    keys = _keys(np.arange(3)[:, None] * 16 + kline_type, np.uint64(inst.seed))
    keys = _mix(keys) + _keys(starts[None, :], np.uint64(0))
    return _bits53(keys) / 2.0**53


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
    u = _bar_uniforms(inst, kline_type, starts)
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
    return render_bars(inst, kline_type, bars_before(inst, kline_type, end, now, count, floor), now)


# --- ticks, depth and static info ----------------------------------------------------------


def _last_trade_ms(inst: Instrument, now: float) -> int:
    """The time of the latest trade: a hashed few hundred ms before ``now`` while trading,
    just before the close while the market is closed."""
    e = last_open(schedule_of(inst), now)
    return int(e * 1000) - 1 - stable_hash(inst.code, "tick", int(e)) % 997


def _seq(inst: Instrument, tick_ms: int) -> str:
    return str(tick_ms // 50 + inst.seed % 1_000_000)


def trade_tick(inst: Instrument, now: float) -> dict[str, object]:
    """The latest trade of ``inst`` as ``/trade-tick`` reports it."""
    tick_ms = _last_trade_ms(inst, now)
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
        "seq": _seq(inst, tick_ms),
        "tick_time": str(tick_ms),
        "price": _formatter(inst.decimals)(price),
        "volume": volume,
        "turnover": turnover,
        "trade_direction": direction,
    }


def depth_tick(inst: Instrument, now: float) -> dict[str, object]:
    """The order book of ``inst`` as ``/depth-tick`` reports it (full depth for its class)."""
    tick_ms = _last_trade_ms(inst, now)
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
    return {
        "code": inst.code,
        "seq": _seq(inst, tick_ms),
        "tick_time": str(tick_ms),
        "bids": bids,
        "asks": asks,
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
    """Reference data of a stock or index as ``/static_info`` reports it (all strings)."""
    h = stable_hash(inst.code, "static")
    market = inst.market or ""
    info = {
        "board": _BOARDS[market] if inst.asset_class == STOCK else f"{market}Index",
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
    if inst.asset_class == STOCK:
        total = int(inst.daily_volume * (50 + h % 400))
        circulating = total * (60 + (h >> 10) % 41) // 100
        eps = inst.base_price / (8 + (h >> 20) % 40)
        info.update(
            bps=f"{inst.base_price / (1 + (h >> 30) % 6):.4f}",
            circulating_shares=str(circulating),
            dividend_yield=f"{((h >> 40) % 600) / 100:.2f}",
            eps=f"{eps:.4f}",
            eps_ttm=f"{eps * (0.9 + ((h >> 50) % 20) / 100):.4f}",
            total_shares=str(total),
        )
        if market == "HK":
            info["hk_shares"] = str(circulating)
    elif market == "HK":
        info["hk_shares"] = ""
    return info
