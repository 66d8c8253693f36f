"""Putting ``/kline`` answers together off the event loop: write them to the store, or
assemble whole series without one; and the final frame, built once from the series.

:class:`~alltick_frames.run.jobs.KlineJob` reads each answer as it arrives
(:mod:`alltick_frames.run.pages`: its bars, already checked, as arrays) and hands the answers
(:class:`Arrived`) to its decode thread, which runs :func:`record` (with a store) or
:func:`assemble` (without). :func:`build_frame` puts the series in the caller's order.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, replace
from typing import TypeVar

import numpy as np
import pandas as pd
import pyarrow as pa

from alltick_frames import frames
from alltick_frames.core.errors import MalformedResponse
from alltick_frames.core.planner import KlinePage, KlineRequest
from alltick_frames.frames.sessions import series_sessions
from alltick_frames.run import memory
from alltick_frames.store import BarStore
from alltick_frames.store.codec import NF, Arrays, as_frame, sort_bars
from alltick_frames.store.series import bar_arrays, read_frame, record_page

__all__ = [
    "Arrived",
    "assemble",
    "build_frame",
    "by_code",
    "decode_each",
    "record",
    "trim",
    "trim_arrays",
]

Key = TypeVar("Key", bound=Hashable)


def by_code(data: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """One frame per code of ``data``, in the order the codes first appear."""
    # iter(): a GroupBy has a .keys attribute, which dict() would take for a mapping's.
    return dict(iter(data.groupby("code", sort=False, observed=True)))


@dataclass(frozen=True, slots=True)
class Arrived:
    """One ``/kline`` answer, read (see :mod:`alltick_frames.run.pages`), waiting for the
    decode thread to assemble or store its bars."""

    page: KlinePage
    bars: Arrays  # the bars believed, in the store's layout
    rows: int  # bars in the answer, believed or not
    got: int  # distinct timestamps among them
    #: Whether it holds a place in its job's write backlog (freed once it is written).
    reserved: bool = False


def decode_each(
    items: Sequence[tuple[Key, bytes]], decode: Callable[[Sequence[bytes]], pd.DataFrame]
) -> tuple[pd.DataFrame, dict[Key, MalformedResponse]]:
    """Decode ``(key, body)`` items together; if that fails, one by one, so that one bad body
    costs only its own key. Returns the frame of every good body and the bad keys' errors."""
    try:
        return decode([body for _, body in items]), {}
    except MalformedResponse:
        pass
    good: list[pd.DataFrame] = []
    bad: dict[Key, MalformedResponse] = {}
    for key, body in items:
        try:
            good.append(decode([body]))
        except MalformedResponse as exc:
            bad[key] = exc
    return pd.concat(good, ignore_index=True) if good else frames.empty_klines(), bad


def assemble(
    arrived: list[Arrived],
    req: KlineRequest,
    now: float,
    bad: dict[str, MalformedResponse],
    dropped: dict[str, Counter[str]],
) -> dict[str, Arrays]:
    """Put finished series' answers together: one series per code, sorted, each bar once
    (the copy that arrived last), trimmed to the request.

    ``arrived`` is emptied, and each code's pages are let go as soon as its series is built,
    so that pages and series are not held whole at once. A code with an unreadable answer
    would have a hole: none of its bars are kept.
    """
    pages: dict[str, list[Arrays]] = {}
    for a in arrived:
        pages.setdefault(a.page.code.code, []).append(a.bars)
    arrived.clear()
    series = {}
    for code in list(pages):
        parts = pages.pop(code)
        if code not in bad:
            series[code] = trim_arrays(*join_pages(parts), req)
        del parts
    memory.give_back()  # the pages' memory, before the next series takes more
    return series


def join_pages(parts: list[Arrays]) -> Arrays:
    """One series from a chain's pages (newest first, as a chain pages back): sorted, each
    bar once, the copy that arrived last winning. Pages that do not overlap are joined in
    one copy, oldest first."""
    ts = np.concatenate([p[0] for p in reversed(parts)])
    if ts.size < 2 or bool(np.all(ts[1:] > ts[:-1])):
        vals = np.concatenate([p[1] for p in reversed(parts)], axis=1)
        parts.clear()
        return ts, vals
    del ts
    ts = np.concatenate([p[0] for p in parts])
    vals = np.concatenate([p[1] for p in parts], axis=1)
    parts.clear()
    return sort_bars(ts, vals)


def record(store: BarStore, arrived: Sequence[Arrived], now: float) -> dict[str, Arrays]:
    """Write each answer's believed bars to the store, in arrival order (nothing is read back:
    the job reads its request from the store at the end, in one read).

    A page all of whose bars were dropped proves nothing, so it is not written.
    """
    written = 0
    for a in arrived:
        if a.rows and not a.bars[0].size:
            continue
        record_page(store, a.page, a.bars, now, a.got)
        written += a.bars[0].nbytes + a.bars[1].nbytes
    memory.written(written)
    return {}


#: Series read from the store at a time (see :func:`read_series`).
READ_BATCH = 16


def read_series(store: BarStore, req: KlineRequest) -> dict[str, Arrays]:
    """The stored series that answer ``req`` (see
    :func:`~alltick_frames.store.series.read_frame`), as arrays by code: read
    :data:`READ_BATCH` series at a time, so that a read's passing copies stay small beside
    what is kept."""
    series: dict[str, Arrays] = {}
    for k in range(0, len(req.codes), READ_BATCH):
        read = read_frame(store, replace(req, codes=req.codes[k : k + READ_BATCH]))
        if read.empty:
            continue
        ts, vals = bar_arrays(read)
        which, names = pd.factorize(read["code"])  # (no Python string per row)
        del read
        cuts = np.flatnonzero(which[1:] != which[:-1]) + 1
        for a, b in zip(np.r_[0, cuts].tolist(), np.r_[cuts, which.size].tolist(), strict=True):
            series[str(names[which[a]])] = ts[a:b], vals[:, a:b]
        memory.give_back()
    return series


def trim_arrays(ts: np.ndarray, vals: np.ndarray, req: KlineRequest) -> Arrays:
    """One series' sorted bars inside the request: its range, or its newest ``count``."""
    keep = np.ones(ts.size, bool)
    if req.start is not None:
        keep &= ts >= req.start
    if req.end is not None:
        keep &= ts <= req.end
    if not keep.all():
        ts, vals = ts[keep], vals[:, keep]
    if req.count is not None and ts.size > req.count:
        ts, vals = ts[-req.count :], vals[:, -req.count :]
    return ts, vals


#: Bytes of series let go between two returns of free memory to the system (see
#: :mod:`alltick_frames.run.memory`) while the frame is built.
GIVE_BACK_BYTES = 64 << 20


def build_frame(series: dict[str, Arrays], order: Sequence[str], interval: str) -> pd.DataFrame:
    """The k-line frame of ``series`` (one interval's, by code) in ``order``.

    Each series is taken out of ``series`` as it is copied into place, so the frame costs
    about its own size, not twice it: the caller must hold no other reference to them.
    """
    codes = [c for c in dict.fromkeys(order) if c in series]
    sizes = np.array([series[c][0].size for c in codes], np.int64)
    n = int(sizes.sum())
    ts_all = np.empty(n, np.int64)
    vals_all = np.empty((NF, n), np.float64)
    sessions = np.empty(n, "datetime64[ns]")
    offset = freed = 0
    for code in codes:
        ts, vals = series.pop(code)
        rows = slice(offset, offset + ts.size)
        ts_all[rows] = ts
        vals_all[:, rows] = vals
        # Series by series: a whole frame's passing arrays would cost more than the column.
        sessions[rows] = series_sessions([code], np.zeros(ts.size, np.intp), ts)
        offset += ts.size
        freed += ts.nbytes + vals.nbytes
        del ts, vals
        if freed > GIVE_BACK_BYTES:  # series the C library would keep, not the system
            memory.give_back()
            freed = 0
    memory.give_back()
    if n == 0:
        return frames.empty_klines()
    ts_all *= 1_000_000_000
    stamps = pd.DatetimeIndex(ts_all.view("datetime64[ns]")).tz_localize("UTC")
    del ts_all
    frame = as_frame(
        stamps,
        vals_all,
        code=repeated(codes, sizes),
        interval=repeated([interval], np.array([n])),
    )
    frame.insert(3, "session", sessions)
    return frame


def repeated(values: Sequence[str], counts: np.ndarray) -> pd.api.extensions.ExtensionArray:
    """A string column (:data:`~alltick_frames.frames.STRING`) of each value repeated its
    count of times, built from its bytes at once (an Arrow ``take`` per row costs 20 times
    more), value by value (no passing array the column's length)."""
    encoded = [v.encode() for v in values]
    offsets = np.empty(int(np.sum(counts)) + 1, np.int64)
    offsets[0] = start = row = 0
    for e, c in zip(encoded, counts.tolist(), strict=True):
        offsets[row + 1 : row + c + 1] = np.arange(1, c + 1, dtype=np.int64) * len(e) + start
        start += len(e) * c
        row += c
    data = b"".join(e * int(c) for e, c in zip(encoded, counts, strict=True))
    array = pa.LargeStringArray.from_buffers(row, pa.py_buffer(offsets), pa.py_buffer(data))
    return pd.array(array, dtype=frames.STRING)


def trim(data: pd.DataFrame, req: KlineRequest) -> pd.DataFrame:
    """Keep the bars inside the request: its range, or its newest ``count`` per code."""
    if data.empty:
        return data
    keep = pd.Series(True, index=data.index)
    if req.start is not None:
        keep &= data["timestamp"] >= pd.Timestamp(req.start, unit="s", tz="UTC")
    if req.end is not None:
        keep &= data["timestamp"] <= pd.Timestamp(req.end, unit="s", tz="UTC")
    data = data[keep]
    if req.count is not None:
        data = data.groupby("code", sort=False, observed=True).tail(req.count)
    return data.reset_index(drop=True)
