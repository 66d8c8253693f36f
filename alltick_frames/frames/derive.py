"""Intervals AllTick does not serve, built from the bars it does: 2h and 4h bars of stocks and
indices, from their 1h bars, along the exchange calendar's sessions.

**Alignment.** A derived bar starts at each trading segment's open (the session's open, and
the end of a lunch break) and every 2 or 4 hours after it, the rule AllTick's own stock bars
follow (README, "Bar alignment"): HK 2h bars start 09:30, 11:30 (to the 12:00 break), 13:00,
15:00; HK 4h bars 09:30 (to 12:00) and 13:00 (to 16:00); A-share 2h and 4h bars both 09:30 and
13:00; US 2h bars 09:30, 11:30, 13:30, 15:30 and 4h bars 09:30, 13:30. So every derived bar is
a union of whole 1h bars (AllTick's 1h bars restart at 13:00 in Hong Kong, so a bar straddling
the break could not be built from them), no bar spans a lunch break or two sessions, and a
half day simply ends with a short bar. Counting trading hours across the break instead (HK
11:30-12:00 + 13:00-14:30) would need the 30-minute bars and still split AllTick's 1h grid.

**Values.** open of the first 1h bar, close of the last, the highest high, the lowest low,
the sums of volume and turnover; ``session`` and ``timestamp`` as for any bar. A derived bar
is built only from the complete set of 1h bars the calendar expects in it by the request's
moment (the newest may still be forming); one with a 1h bar missing is left out, so that
completeness reports it as a ``gap`` and ``retry()`` fetches it again.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from alltick_frames.core import calendars
from alltick_frames.core.codes import classify
from alltick_frames.core.intervals import BY_KLINE_TYPE, Interval
from alltick_frames.core.planner import KlineRequest
from alltick_frames.core.plans import Plan
from alltick_frames.frames import completeness
from alltick_frames.frames.completeness import GRACE
from alltick_frames.frames.klines import KLINE_COLUMNS, KLINE_DTYPES, empty_klines

#: The interval derived bars are built from.
SOURCE = BY_KLINE_TYPE[5]
_HOUR = SOURCE.seconds


def derivable(interval: Interval) -> bool:
    """Whether stock bars of ``interval`` are built from 1h bars (2h and 4h)."""
    return not interval.stock_ok


@dataclass(frozen=True, slots=True)
class Part:
    """One part of a k-line request: what it asks (``request``) and what is fetched for it
    (``fetch``: the same, or the 1h bars its ``derived`` bars are built from)."""

    request: KlineRequest
    fetch: KlineRequest
    derived: bool = False

    def measure(
        self,
        data: pd.DataFrame,
        now: float,
        plan: Plan,
        failed: set[str] | frozenset[str] = frozenset(),
        attempts: dict[str, int] | None = None,
        unpaged: set[str] | frozenset[str] = frozenset(),
    ) -> completeness.Measured:
        """This part's bars measured against the calendars at the market moment ``now``
        (arguments as :func:`~alltick_frames.frames.completeness.measure`'s)."""
        return completeness.measure(
            data,
            list(self.request.codes),
            completeness.Expectations.of_request(self.request, now),
            kline_bars=plan.kline_bars,
            reach_interval=self.fetch.interval,
            failed=failed,
            attempts=attempts,
            unpaged=unpaged,
        )


def split(req: KlineRequest, now: float) -> list[Part]:
    """The parts of ``req``: itself, or for 2h and 4h its stocks (derived from 1h bars) and
    the other codes (which AllTick serves as they are)."""
    if not derivable(req.interval):
        return [Part(req, req)]
    stocks = tuple(c for c in req.codes if c.is_stock)
    others = tuple(c for c in req.codes if not c.is_stock)
    parts = []
    if others:
        native = replace(req, codes=others)
        parts.append(Part(native, native))
    if stocks:
        wanted = replace(req, codes=stocks)
        parts.append(Part(wanted, source_request(wanted, now), derived=True))
    return parts


def source_request(req: KlineRequest, now: float) -> KlineRequest:
    """The 1h request whose bars make ``req``'s derived bars: a range from the oldest
    derived bar wanted to the last 1h bar of the newest."""
    length = req.interval.seconds
    end = None if req.end is None else req.end + length - _HOUR
    if end is not None and end >= now:
        end = None
    start = req.start
    if req.count is not None:
        top = req.end if req.end is not None else int(now)
        oldest = [
            bars[0]
            for calendar in dict.fromkeys(calendars.calendar_of(c) for c in req.codes)
            if (bars := calendars.newest_bars(calendar, req.interval, top, now, req.count)).size
        ]
        if not oldest:  # beyond every calendar's records: the most 1h bars it could take
            return KlineRequest(req.codes, SOURCE, req.count * length // _HOUR, None, end)
        start = int(min(oldest))
    return KlineRequest(req.codes, SOURCE, None, start, end)


def _groups(calendar: str, stamps: np.ndarray, length: int) -> np.ndarray:
    """The start of the derived bar holding each 1h bar start (-1 outside every segment)."""
    opens = calendars.segment_opens(calendar, stamps)
    return np.where(opens >= 0, opens + (stamps - opens) // length * length, -1)


def derive_bars(bars: pd.DataFrame, interval: Interval, now: float) -> pd.DataFrame:
    """``interval`` bars of stocks built from their 1h ``bars`` (a k-line frame in the
    client's order: codes in runs, each sorted by time). Incomplete bars are left out."""
    if bars.empty:
        return empty_klines()
    length = interval.seconds
    stamps = pd.DatetimeIndex(bars["timestamp"]).as_unit("s").asi8
    code = bars["code"]
    runs = np.flatnonzero(code.ne(code.shift()).to_numpy(bool, na_value=True))
    ends = np.append(runs[1:], len(bars))
    group = np.empty(len(bars), np.int64)
    # How many 1h bars each derived bar must hold: those the calendar expects in it by now,
    # give or take the newest one (AllTick may not have published it yet: see GRACE).
    fewest = np.full(len(bars), -1, np.int64)
    most = np.full(len(bars), -1, np.int64)
    sizes: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
    for a, b in zip(runs.tolist(), ends.tolist(), strict=True):
        calendar = calendars.calendar_of(classify(str(code.iloc[a])))
        group[a:b] = _groups(calendar, stamps[a:b], length)
        if calendar not in sizes:
            lo, hi = int(stamps.min()), int(stamps.max()) + length
            sizes[calendar] = [
                np.unique(
                    _groups(calendar, calendars.expected_bars(calendar, SOURCE, lo, hi, t), length),
                    return_counts=True,
                )
                for t in (now - GRACE, now)
            ]
        for bound, (starts, counts) in zip((fewest, most), sizes[calendar], strict=True):
            if starts.size:
                at = np.minimum(np.searchsorted(starts, group[a:b]), starts.size - 1)
                bound[a:b] = np.where(starts[at] == group[a:b], counts[at], 0)
    # A derived bar per run of equal (code, group): rows are sorted by code, then time.
    new = np.ones(len(bars), bool)
    new[1:] = (group[1:] != group[:-1]) | (code.to_numpy(object)[1:] != code.to_numpy(object)[:-1])
    first = np.flatnonzero(new)
    last = np.append(first[1:], len(bars)) - 1
    size = last - first + 1
    keep = (group[first] >= 0) & (size >= fewest[first]) & (size <= most[first]) & (size > 0)
    first, last = first[keep], last[keep]
    if first.size == 0:
        return empty_klines()
    values = {f: bars[f].to_numpy(np.float64) for f in ("high", "low", "volume", "turnover")}
    starts_all = np.flatnonzero(new)
    out = pd.DataFrame(
        {
            "code": bars["code"].to_numpy(object)[first],
            "interval": str(interval),
            "timestamp": pd.to_datetime(group[first], unit="s", utc=True),
            "session": bars["session"].to_numpy()[first],
            "open": bars["open"].to_numpy(np.float64)[first],
            "high": np.maximum.reduceat(values["high"], starts_all)[keep],
            "low": np.minimum.reduceat(values["low"], starts_all)[keep],
            "close": bars["close"].to_numpy(np.float64)[last],
            "volume": _sums(values["volume"], starts_all)[keep],
            "turnover": _sums(values["turnover"], starts_all)[keep],
        },
        columns=KLINE_COLUMNS,
    )
    return out.astype(KLINE_DTYPES)


def _sums(values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Sums per run; NaN where a run holds only NaN (AllTick sent no volume)."""
    sums = np.add.reduceat(np.nan_to_num(values), starts)
    counted = np.add.reduceat((~np.isnan(values)).astype(np.int64), starts)
    return np.where(counted > 0, sums, np.nan)
