"""Trading calendars, the client's own reading: the session a bar belongs to, and the bars a
market should have between two moments.

AllTick publishes no calendar or holiday list (``en/api-reference/stock/
price-change-trading-status.mdx``), so the client brings its own, from the
``exchange_calendars`` package:

==========  ================  ===========================  ================================
calendar    time zone         codes                        a regular session
==========  ================  ===========================  ================================
``XNYS``    America/New_York  ``*.US``                     09:30-16:00 (half days to 13:00)
``XHKG``    Asia/Hong_Kong    ``*.HK``                     09:30-12:00, 13:00-16:00
``XSHG``    Asia/Shanghai     ``*.SH``, ``*.SZ``           09:30-11:30, 13:00-15:00
``24/5``    UTC               FX, metals, energy, CFDs     Sunday 22:00 to Friday 22:00 UTC
``24/7``    UTC               crypto                       always
==========  ================  ===========================  ================================

Shenzhen trades on Shanghai's calendar. A forex-path code is crypto when it ends in a
stablecoin or a coin it is quoted in (:data:`CRYPTO_QUOTES`: ``BTCUSDT``, ``ETHBTC``), else
it is on ``24/5``, which ``exchange_calendars`` opens on Monday 00:00 UTC and which is moved
here to FX's Sunday 22:00 UTC open. ``24/5`` and ``24/7`` have no holidays, half days or
breaks, so they are arithmetic here and an FX-only job never imports the package.

**Session dates** (:func:`session_dates`): the exchange-local date of a bar's start, as a
naive midnight; UTC for FX and crypto. Day, week and month bars start at local midnight, so
this is the trading date of a day bar and the first day (Monday, the 1st) of a week or month
bar; an intraday bar gets the date of the day it trades in. FX's short Sunday bar (22:00-24:00
UTC) is dated Sunday, as its timestamp is: dating it Monday would give Monday two bars.

**Bars a market should have** (:func:`expected_bars`, :func:`newest_bars`), by the alignment
rules of the README's "Bar alignment": stock intraday bars start at each trading segment's
open (the session's open and the end of its lunch break) and every bar length after it, the
last one before a break or close possibly short; FX and crypto intraday bars sit on the UTC
grid; day, week and month bars start at local midnight of the day, Monday or 1st that holds
trading. A bar is expected once its market has traded in it (a stock's day bar at the open).

The package is heavy (about half a second to import): it is imported the first time a stock
calendar is needed, and each calendar is read once per process. Outside the years a calendar
records (before 2000, or after the last year it knows: ``XSHG`` is published a year at a
time) no bar is expected.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd

from alltick_frames.core.codes import CodeInfo
from alltick_frames.core.intervals import Interval

XNYS, XHKG, XSHG, FX, CRYPTO = "XNYS", "XHKG", "XSHG", "24/5", "24/7"
STOCK_CALENDARS = (XNYS, XHKG, XSHG)
#: Each calendar's time zone: its session dates are local dates there.
TIME_ZONES: dict[str, str] = {
    XNYS: "America/New_York",
    XHKG: "Asia/Hong_Kong",
    XSHG: "Asia/Shanghai",
    FX: "UTC",
    CRYPTO: "UTC",
}
_MARKET_CALENDARS = {"US": XNYS, "HK": XHKG, "SH": XSHG, "SZ": XSHG}
#: Quote currencies that make a forex-path code crypto (``BTCUSDT``, ``ETHBTC``).
CRYPTO_QUOTES = ("USDT", "USDC", "BUSD", "FDUSD", "BTC", "ETH")

MINUTE, HOUR, DAY, WEEK = 60, 3600, 86_400, 604_800
_NS = 1_000_000_000
#: No calendar starts before 2000-01-01 (AllTick's history does not reach further).
EPOCH_2000 = 946_684_800
# FX opens on Sunday 22:00 UTC for five days; 1970-01-04 was a Sunday.
_FX_ANCHOR = 3 * DAY + 22 * HOUR
_FX_OPEN = 5 * DAY


def calendar_of(code: CodeInfo) -> str:
    """The calendar a code trades on (see the module docstring)."""
    if code.market is not None:
        return _MARKET_CALENDARS[code.market]
    return CRYPTO if code.code.upper().endswith(CRYPTO_QUOTES) else FX


# --------------------------------------------------------------------------- session dates


def session_dates(stamps: np.ndarray, zones: np.ndarray, names: tuple[str, ...]) -> np.ndarray:
    """The session date of each bar: its start's local date as a naive ``datetime64[ns]``
    midnight.

    ``stamps`` are bar starts (int64 nanoseconds, UTC); ``zones[i]`` indexes the time zone of
    bar ``i`` in ``names``.
    """
    if len(names) == 1:  # one zone: every row, with no mask and no copy between arrays
        return _midnights(stamps, names[0]).view("datetime64[ns]")
    out = np.empty(stamps.size, "datetime64[ns]")
    for k, zone in enumerate(names):
        rows = zones == k
        if rows.any():
            out[rows] = _midnights(stamps[rows], zone).view("datetime64[ns]")
    return out


def _midnights(stamps: np.ndarray, zone: str) -> np.ndarray:
    """The local midnight (naive int64 nanoseconds) starting each bar's day, in a new array
    computed in place (a floor division, 4x as fast as a remainder)."""
    day = DAY * _NS
    local = stamps // day if zone == "UTC" else _local(stamps, zone)
    if zone != "UTC":
        np.floor_divide(local, day, out=local)
    np.multiply(local, day, out=local)
    return local


def _local(ns: np.ndarray, zone: str) -> np.ndarray:
    """UTC nanoseconds as naive local ones in ``zone``.

    A zone whose offset is the same at every UTC midnight the bars span (Hong Kong and
    Shanghai since the 1990s) adds that offset; it changes at most once in a day, so it held
    throughout. Any other is converted instant by instant (about twice as slow).
    """
    day = DAY * _NS
    if not ns.size:
        return ns.copy()
    first, last = int(ns.min()) // day, int(ns.max()) // day
    if last - first + 2 <= ns.size:
        midnights = np.arange(first, last + 2, dtype=np.int64) * day
        offsets = _exact_local(midnights, zone) - midnights
        if (offsets == offsets[0]).all():
            return ns + offsets[0]
    return _exact_local(ns, zone)


def _exact_local(ns: np.ndarray, zone: str) -> np.ndarray:
    utc = pd.DatetimeIndex(ns.view("datetime64[ns]")).tz_localize("UTC")
    return utc.tz_convert(zone).tz_localize(None).asi8


def zone_of(code: str) -> str:
    """The time zone of a code's session dates, from its spelling alone (fast, for frames)."""
    suffix = code[-3:]
    if suffix == ".US":
        return TIME_ZONES[XNYS]
    if suffix == ".HK":
        return TIME_ZONES[XHKG]
    if suffix in (".SH", ".SZ"):
        return TIME_ZONES[XSHG]
    return "UTC"


# --------------------------------------------------------------------------- stock calendars


@dataclass(frozen=True, slots=True)
class _Table:
    """A stock calendar's sessions since 2000, as arrays of Unix seconds."""

    #: Session dates (``datetime64[D]``), their local midnight, open and close.
    labels: np.ndarray
    midnight: np.ndarray
    opens: np.ndarray
    closes: np.ndarray
    #: Trading segments (a session, or its parts either side of a lunch break), in order.
    seg_open: np.ndarray
    seg_close: np.ndarray
    #: The span the calendar records: ``[first session's midnight, last session's midnight
    #: + one day)``.
    first: int
    stop: int


def _local_midnights(dates: np.ndarray, zone: str) -> np.ndarray:
    """Unix seconds of local midnight of each date (``datetime64[D]``) in ``zone``."""
    index = pd.DatetimeIndex(dates.astype("datetime64[ns]")).tz_localize(zone)
    return index.asi8 // _NS


@lru_cache(maxsize=4)
def _table(calendar: str) -> _Table:
    """The sessions of a stock calendar, read from ``exchange_calendars`` once per process."""
    with warnings.catch_warnings():
        # The package still uses pandas APIs that newer pandas deprecates: not our users' news.
        warnings.simplefilter("ignore", DeprecationWarning)
        import exchange_calendars

        schedule = exchange_calendars.get_calendar(calendar, start="2000-01-01").schedule

    def seconds(column: str) -> np.ndarray:
        return schedule[column].to_numpy("datetime64[s]").astype(np.int64)

    labels = schedule.index.to_numpy("datetime64[D]")
    opens, closes = seconds("open"), seconds("close")
    lunch = schedule["break_start"].notna().to_numpy()
    starts, ends = seconds("break_start"), seconds("break_end")
    # Each session is one segment, or two around its break: (open, break), (break end, close).
    seg_open = np.concatenate([opens, ends[lunch]])
    seg_close = np.concatenate([np.where(lunch, starts, closes), closes[lunch]])
    order = np.argsort(seg_open, kind="stable")
    midnight = _local_midnights(labels, TIME_ZONES[calendar])
    return _Table(
        labels,
        midnight,
        opens,
        closes,
        seg_open[order],
        seg_close[order],
        int(midnight[0]),
        int(_local_midnights(labels[-1:] + 1, TIME_ZONES[calendar])[0]),
    )


def recorded_span(calendar: str) -> tuple[int, int]:
    """``[first, stop)`` in Unix seconds: where ``calendar`` knows its sessions."""
    if calendar in STOCK_CALENDARS:
        table = _table(calendar)
        return table.first, table.stop
    return EPOCH_2000, 2**62


def segment_opens(calendar: str, stamps: np.ndarray) -> np.ndarray:
    """For each time (int64 Unix seconds), the open of the stock trading segment holding it,
    or -1 when it falls outside every segment (a break, a holiday, after the close)."""
    table = _table(calendar)
    k = np.searchsorted(table.seg_open, stamps, "right") - 1
    inside = (k >= 0) & (stamps < table.seg_close[np.maximum(k, 0)])
    return np.where(inside, table.seg_open[np.maximum(k, 0)], -1)


def _grid(opens: np.ndarray, closes: np.ndarray, length: int) -> np.ndarray:
    """Bar starts at ``open + k * length`` inside each ``[open, close)``."""
    counts = -((opens - closes) // length)  # ceil((close - open) / length)
    total = int(counts.sum())
    if total == 0:
        return np.empty(0, np.int64)
    first = np.cumsum(counts) - counts
    k = np.arange(total) - np.repeat(first, counts)
    return np.repeat(opens, counts) + k * length


def _period_bars(
    calendar: str, table: _Table, keep: np.ndarray, kind: str
) -> tuple[np.ndarray, np.ndarray]:
    """Week or month bar starts (local midnight of the Monday or the 1st) of the sessions
    ``keep``, with the open of each period's first session."""
    labels = table.labels[keep]
    if kind == "1w":
        days = labels.astype(np.int64)
        periods = (days - (days + 3) % 7).astype("datetime64[D]")  # 1970-01-01 was a Thursday
    else:
        periods = labels.astype("datetime64[M]").astype("datetime64[D]")
    starts, first = np.unique(periods, return_index=True)
    return _local_midnights(starts, TIME_ZONES[calendar]), table.opens[keep][first]


def _stock_bars(calendar: str, interval: Interval, lo: int, hi: int) -> tuple[np.ndarray, ...]:
    """Bar starts of a stock calendar in ``[lo, hi]`` and when each begins trading."""
    table = _table(calendar)
    alias = str(interval)
    if interval.kline_type <= 7:  # intraday, 2h and 4h (derived) included
        rows = (table.seg_close > lo) & (table.seg_open <= hi)
        starts = _grid(table.seg_open[rows], table.seg_close[rows], interval.seconds)
        return starts, starts
    if alias == "1d":
        keep = (table.midnight >= lo) & (table.midnight <= hi)
        return table.midnight[keep], table.opens[keep]
    # Whole weeks or months around the range, so that each period's first session is seen.
    margin = 32 * DAY if alias == "1M" else 8 * DAY
    keep = (table.midnight >= lo - margin) & (table.midnight <= hi + margin)
    return _period_bars(calendar, table, keep, alias)


# --------------------------------------------------------------------------- FX and crypto


def _around_the_clock(
    calendar: str, interval: Interval, lo: int, hi: int
) -> tuple[np.ndarray, ...]:
    """Bar starts of ``24/5`` (from Sunday 22:00 UTC) or ``24/7`` in ``[lo, hi]``, and when
    each begins trading."""
    alias = str(interval)
    if alias == "1M":
        months = np.arange(
            np.datetime64(lo - 32 * DAY, "s").astype("datetime64[M]"),
            np.datetime64(hi, "s").astype("datetime64[M]") + 1,
        )
        starts = months.astype("datetime64[s]").astype(np.int64)
    else:
        length = WEEK if alias == "1w" else interval.seconds
        # Weeks start on Monday: 1970-01-05 (4 days after the epoch) was one.
        offset = 4 * DAY if alias == "1w" else 0
        first = math.ceil((lo - offset) / length) * length + offset
        starts = np.arange(first, hi + 1, length, dtype=np.int64)
    if calendar == CRYPTO:
        return starts, starts
    # 24/5 from Sunday 22:00 UTC: a slot exists when it overlaps the open hours; it begins
    # trading at its start, or at the next open when it starts while the market is closed.
    length = {"1w": WEEK, "1M": 31 * DAY}.get(alias, interval.seconds)
    into_week = (starts - _FX_ANCHOR) % WEEK
    closed = into_week >= _FX_OPEN
    begins = np.where(closed, starts + (WEEK - into_week), starts)
    ends = starts + length if alias != "1M" else _month_ends(starts)
    return starts[begins < ends], begins[begins < ends]


def _month_ends(starts: np.ndarray) -> np.ndarray:
    months = starts.astype("datetime64[s]").astype("datetime64[M]")
    return (months + 1).astype("datetime64[s]").astype(np.int64)


# --------------------------------------------------------------------------- expected bars


def expected_bars(calendar: str, interval: Interval, lo: int, hi: int, now: float) -> np.ndarray:
    """The bar starts ``calendar`` expects in ``[lo, hi]`` (Unix seconds, sorted) that have
    begun trading by ``now``, inside the span the calendar records.

    For stocks, 2h and 4h (which AllTick does not serve) follow the same rule as the bars it
    serves: from each trading segment's open, every bar length.
    """
    first, stop = recorded_span(calendar)
    lo, hi = max(lo, first), min(hi, stop - 1)
    if lo > hi:
        return np.empty(0, np.int64)
    if calendar in STOCK_CALENDARS:
        starts, begins = _stock_bars(calendar, interval, lo, hi)
    else:
        starts, begins = _around_the_clock(calendar, interval, lo, hi)
    keep = (starts >= lo) & (starts <= hi) & (begins <= now)
    return starts[keep].astype(np.int64)


def newest_bars(calendar: str, interval: Interval, top: int, now: float, count: int) -> np.ndarray:
    """The newest ``count`` bars ``calendar`` expects with a start at or before ``top`` that
    have begun trading by ``now`` (fewer when the calendar's records run out)."""
    first = recorded_span(calendar)[0]
    # A stock trades ~6.5 h of 24 and ~250 days of 365: widen the window until it holds them.
    span = count * interval.seconds * 4 + 14 * DAY
    while True:
        lo = max(first, top - span)
        bars = expected_bars(calendar, interval, lo, top, now)
        if bars.size >= count or lo == first:
            return bars[-count:] if count else bars[:0]
        span *= 4
