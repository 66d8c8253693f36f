"""Bars from ticks: OHLCV bars built from trades, aligned the way ``/kline`` aligns them.

:func:`ticks_to_bars` turns a trades frame (the schema of ``AllTick.trades()`` and of a
stream's trade frames) into a k-line frame (the schema of ``AllTick.klines()``);
:class:`BarBuilder` does the same as trades stream in, handing out each bar once it closed.

Alignment (the README's "Bar alignment", which the emulator follows):

* FX, crypto, metals, energy and CFDs: intraday bars on the UTC grid (``start % length == 0``,
  2h and 4h included); days at 00:00 UTC (so FX's Sunday evening is a short Sunday bar);
  weeks on Monday, months on the 1st.
* Stocks and indices: intraday bars start at each session's open and every bar length after
  it (HK 1h bars at 09:30, 10:30, 11:30, 13:00, 14:00, 15:00); days, weeks and months at
  00:00 exchange-local time. Sessions are the exchange calendars'
  (:mod:`alltick_frames.core.calendars`: XNYS, XHKG, XSHG, with holidays, half days and lunch
  breaks). A stock trade outside them (pre- or post-market, a holiday) belongs to no bar: it
  is left out and counted in ``bars.attrs["outside_sessions"]``.

A bar's open is its first trade and its close its last (by time, then ``seq``), its high and
low the extremes, its volume and turnover the sums. So the bars of *closed* intervals equal
``/kline``'s when every trade of them arrived (the emulator's trades are built so that they
do); the newest bar of a stream is still forming and holds the trades so far.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from alltick_frames.core import calendars
from alltick_frames.core.codes import classify
from alltick_frames.core.intervals import Interval, parse_interval
from alltick_frames.frames import KLINE_COLUMNS, KLINE_DTYPES, UTC_NS, empty_klines
from alltick_frames.frames.sessions import frame_sessions

_NEEDED = ("code", "time", "price", "volume", "turnover")


def _calendar_start(naive: pd.Series, interval: Interval) -> pd.Series:
    """Start of the day, week (Monday) or month holding each naive timestamp."""
    day = naive.dt.normalize()
    if interval.alias == "1d":
        return day
    if interval.alias == "1w":
        return day - pd.to_timedelta(day.dt.day_of_week, unit="D")
    return day - pd.to_timedelta(day.dt.day - 1, unit="D")


def _grid_starts(times: pd.Series, interval: Interval) -> pd.Series:
    """Bar starts of FX, crypto and the like: the UTC grid, UTC calendar days."""
    if interval.kline_type <= 7:
        return times.dt.floor(f"{interval.seconds}s")
    naive = times.dt.tz_localize(None)
    return _calendar_start(naive, interval).dt.tz_localize("UTC")


def _session_starts(times: pd.Series, code: str, interval: Interval) -> pd.Series:
    """Bar starts of one stock's trades, on its exchange calendar (holidays, half days and
    lunch breaks included); NaT for trades outside its trading segments."""
    info = classify(code)
    stamps = times.array.as_unit("s").asi8
    opens = calendars.segment_opens(calendars.calendar_of(info), stamps)
    inside = opens >= 0
    if interval.kline_type <= 7:  # from each segment's open, every bar length
        starts = opens + (stamps - opens) // interval.seconds * interval.seconds
        return pd.Series(
            pd.to_datetime(np.where(inside, starts, np.iinfo(np.int64).min), unit="s", utc=True)
        )
    zone = calendars.zone_of(code)
    naive = times.dt.tz_convert(zone).dt.tz_localize(None)
    local = _calendar_start(naive, interval).dt.tz_localize(zone).dt.tz_convert("UTC")
    return local.where(inside)


def bar_starts(trades: pd.DataFrame, interval: str | int | Interval) -> pd.Series:
    """The start of the ``/kline`` bar each trade belongs to (NaT: outside the sessions)."""
    interval = parse_interval(interval)
    times = trades["time"].reset_index(drop=True)
    codes = trades["code"].to_numpy(dtype=object)
    nanos = np.full(len(times), np.iinfo(np.int64).min)  # NaT
    for code in pd.unique(codes):
        rows = np.flatnonzero(codes == code)
        part = times.iloc[rows].reset_index(drop=True)
        if classify(str(code)).market:
            starts = _session_starts(part, str(code), interval)
        else:
            starts = _grid_starts(part, interval)
        nanos[rows] = starts.array.as_unit("ns").asi8
    return pd.Series(pd.to_datetime(nanos, utc=True), index=trades.index, dtype=UTC_NS)


def ticks_to_bars(trades: pd.DataFrame, interval: str | int | Interval = "1m") -> pd.DataFrame:
    """OHLCV bars of ``interval`` from a trades frame, one row per (code, bar), in the codes'
    order of first appearance, then time (the k-line schema, see the module docstring).

    >>> bars = ticks_to_bars(stream_trades, "1m")                           # doctest: +SKIP
    """
    missing = [c for c in _NEEDED if c not in trades.columns]
    if missing:
        raise ValueError(
            f"ticks_to_bars needs a trades frame (as from trades() or a stream); it lacks {missing}"
        )
    interval = parse_interval(interval)
    if trades.empty:
        bars = empty_klines()
        bars.attrs["outside_sessions"] = 0
        return bars
    order = {code: i for i, code in enumerate(pd.unique(trades["code"]))}
    df = trades.assign(timestamp=bar_starts(trades, interval))
    outside = int(df["timestamp"].isna().sum())
    df = df.dropna(subset=["timestamp"])
    keys = ["time", "seq"] if "seq" in df.columns else ["time"]
    df = df.assign(_rank=df["code"].map(order)).sort_values(["_rank", *keys], kind="stable")
    grouped = df.groupby(["_rank", "timestamp"], sort=True)
    bars = grouped.agg(
        code=("code", "first"),
        open=("price", "first"),
        high=("price", "max"),
        low=("price", "min"),
        close=("price", "last"),
        volume=("volume", "sum"),
        turnover=("turnover", "sum"),
    ).reset_index()
    bars["interval"] = interval.alias
    bars["session"] = frame_sessions(bars["code"], bars["timestamp"])
    bars = bars[KLINE_COLUMNS].astype(KLINE_DTYPES)
    bars.attrs["outside_sessions"] = outside
    return bars


class BarBuilder:
    """Bars from trades that arrive in batches: :meth:`update` returns the bars each batch
    closed; the newest bar of each code stays open (:attr:`forming`) until a trade of a later
    bar of that code arrives. A trade for a bar already handed out (a push delayed past the
    next bar's first trade) cannot change it: it is left out and counted in :attr:`late`.
    """

    def __init__(self, interval: str | int | Interval = "1m") -> None:
        self.interval = parse_interval(interval)
        self.late = 0
        self._open: pd.DataFrame | None = None  # trades of each code's forming bar
        self._closed_until: dict[str, Any] = {}  # code -> start of its forming bar

    def update(self, trades: pd.DataFrame) -> pd.DataFrame:
        """Add a batch of trades; returns the bars it closed (k-line schema)."""
        if trades.empty:
            return empty_klines()
        starts = bar_starts(trades, self.interval)
        floor = pd.to_datetime(trades["code"].map(self._closed_until), utc=True)
        late = starts < floor
        self.late += int(late.sum())
        batch = trades[~late]
        pending = batch if self._open is None else pd.concat([self._open, batch], ignore_index=True)
        starts = bar_starts(pending, self.interval)
        newest = starts.groupby(pending["code"]).transform("max")
        forming = starts == newest
        self._open = pending[forming]
        for code, start in newest.groupby(pending["code"]).first().items():
            self._closed_until[code] = start
        return ticks_to_bars(pending[~forming], self.interval)

    @property
    def forming(self) -> pd.DataFrame:
        """The bars still open, built from their trades so far."""
        if self._open is None:
            return empty_klines()
        return ticks_to_bars(self._open, self.interval)
