"""Recording fetched pages in the store, and reading a request's answer back as k-lines.

The I/O half of answering from the cache (the planning half is
:mod:`alltick_frames.core.cache_planner`): :func:`record_page` writes what one ``/kline``
page proves (its closed span, forming bar and floor), :func:`record_latest_many` what a
``/batch-kline`` answer refreshes, and :func:`read_frame` reads the stored bars that answer a
request as a k-line frame.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa

from alltick_frames import frames
from alltick_frames.frames.sessions import series_sessions
from alltick_frames.store.codec import FIELDS, Arrays, as_frame, sort_bars

if TYPE_CHECKING:
    from alltick_frames.core.planner import KlinePage, KlineRequest
    from alltick_frames.store.disk import BarStore


def bar_arrays(bars: pd.DataFrame) -> Arrays:
    """A k-line frame's bars in the store's layout (as they come: not sorted here)."""
    ts = pd.DatetimeIndex(bars["timestamp"]).asi8 // 1_000_000_000
    return ts, bars[list(FIELDS)].to_numpy(np.float64).T


def record_page(store: BarStore, page: KlinePage, bars: Arrays, now: float, got: int) -> None:
    """Record one ``/kline`` page: the closed span it proves, its forming bar, its floor.

    ``bars`` are the page's decoded bars (see :func:`bar_arrays`); ``got`` their count.
    """
    code, ivl = page.code.code, str(page.interval)
    ts, vals = sort_bars(*bars)
    if ts.size == 0:
        if page.end_ts:
            store.write(code, ivl, floor=page.end_ts + 1)
        return
    forming = None
    if page.end_ts == 0 or ts[-1] + page.interval.seconds > now:
        forming = ts[-1:], vals[:, -1:]
        hi = int(ts[-1]) - 1
    else:
        hi = page.end_ts
    short = got < page.num
    lo = int(ts[0])
    if hi < lo:  # only the forming bar came back
        store.write(code, ivl, floor=lo if short else None, forming=forming, fetched_at=now)
        return
    store.write(
        code,
        ivl,
        (ts, vals),
        lo,
        hi,
        floor=lo if short else None,
        forming=forming,
        fetched_at=now if forming is not None else None,
    )


def record_latest_many(
    store: BarStore, answer: pd.DataFrame, wanted: set[tuple[str, str]], now: float
) -> None:
    """Record every group of a ``/batch-kline`` answer that is in ``wanted`` (code, alias).

    ``answer`` is a finalized k-line frame (grouped by code and interval, sorted by time,
    unique). Each group's newest bar forms and the one before it closed: they are written as
    the closed span ``[older, newest - 1]``, which joins the cached history when the older
    bar is the one that was forming before, and leaves a visible hole otherwise. One pass
    over the answer's columns, not a frame operation per group: an answer holds up to 500.
    """
    if answer.empty:
        return
    codes = answer["code"].to_numpy(object)
    aliases = answer["interval"].to_numpy(object)
    stamps, values = bar_arrays(answer)
    change = (codes[1:] != codes[:-1]) | (aliases[1:] != aliases[:-1])
    starts = np.flatnonzero(np.concatenate(([True], change)))
    ends = np.append(starts[1:], len(codes))
    for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
        code, alias = codes[a], aliases[a]
        if (code, alias) not in wanted:
            continue
        forming = stamps[b - 1 : b], values[:, b - 1 : b]
        if b - a == 1:
            store.write(code, alias, forming=forming, fetched_at=now)
        else:
            closed = stamps[a : b - 1], values[:, a : b - 1]
            lo, newest = int(stamps[a]), int(stamps[b - 1])
            store.write(code, alias, closed, lo, newest - 1, forming=forming, fetched_at=now)


def read_frame(store: BarStore, req: KlineRequest) -> pd.DataFrame:
    """The stored bars that answer ``req``, as a k-line frame (:data:`frames.KLINE_DTYPES`),
    ``session`` computed from the timestamps.

    A count request reads each series only from the covered run that holds its newest bar, so
    older bars behind a hole in coverage are never stitched on (a stock's history from an
    earlier month, say), and keeps its newest ``count`` bars: trims the store makes as it
    copies the bars out, so each bar returned is copied once.
    """
    alias = str(req.interval)
    keys = [(c.code, alias) for c in req.codes]
    got = store.read_arrays(keys, req.start, req.end, newest=req.count)
    if got.ts.size == 0:
        return frames.empty_klines()
    stamps, vals, counts = got.ts, got.vals, got.counts
    # Rows come grouped by series, in ``keys`` order (one series per code), then by time.
    which = np.repeat(np.arange(len(keys), dtype=np.intp), counts)
    nanos = stamps * 1_000_000_000
    codes = [code for code, _ in keys]
    frame = as_frame(
        pd.DatetimeIndex(nanos.view("datetime64[ns]"), dtype=frames.UTC_NS),
        vals,
        code=_strings(codes, which),
        interval=_strings([alias], np.zeros(which.size, np.intp)),
    )
    # The session is computed from the timestamps, never stored (it follows the calendars).
    frame.insert(3, "session", series_sessions(codes, which, stamps, nanos))
    return frame


def _strings(names: list[str], which: np.ndarray) -> pd.api.extensions.ExtensionArray:
    """``names[which]`` as a string column (:data:`frames.STRING`). Names of one length (an
    interval; a market's codes, mostly) are laid out in Arrow's buffers straight from NumPy,
    several times faster than Arrow's take, which any other names get."""
    encoded = [name.encode() for name in names]
    width = len(encoded[0])
    if not (width and all(len(e) == width for e in encoded)):
        return pd.array(names, dtype=frames.STRING).take(which)
    data = np.array(encoded, dtype=f"S{width}")[which]
    offsets = np.arange(which.size + 1, dtype=np.int64) * width
    column = pa.LargeStringArray.from_buffers(which.size, pa.py_buffer(offsets), pa.py_buffer(data))
    return pd.array(column, dtype=frames.STRING)
