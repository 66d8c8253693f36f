"""Trading calendars and which bars exist: a pure function of (code, kline_type, moment).

Nothing is stored and nothing is generated "from the beginning of time": :func:`bars_before`
walks back from a moment over the sessions of the code's calendar.

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
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from typing import NamedTuple
from zoneinfo import ZoneInfo

from alltick_frames.core.intervals import BY_KLINE_TYPE
from alltick_frames.emulator.catalogue import Instrument

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
