"""The store's layout, pure: series ids and keys, index records, bars as arrays and bytes.

The store is a :class:`diskcache.Cache` in ``<root>/bars`` (its own directory, so its settings
and management never touch other caches under the same root). Two kinds of keys:

``idx:["source","code","1d"]``
    The series index, a small pickled dict of builtins: ``segments``, ``floor``, ``forming``
    (timestamp, fetched_at and the six values, inline), ``rev`` (a random revision id) and
    ``chunks``: ``(first_ts, last_ts, n, key)`` in time order, never overlapping.
``chunk:["source","code","1d"]:<uuid hex>``
    ``n`` sorted, unique bars as raw bytes: ``n`` int64 timestamps, then the six float64
    columns one after another. :func:`numpy.frombuffer` reads them without parsing, which is
    what makes warm loads fast. A chunk holds at most :data:`CHUNK_BARS` bars (0.46 MB), so a
    one-bar refresh rewrites at most one chunk, and a daily series of up to 8,192 bars is a
    single chunk (one lookup to load).

Chunk keys are never reused: a write stores its bars under fresh keys, swaps the index, and
deletes the replaced chunks, all inside one ``cache.transact()``. Chunks stay below diskcache's
file threshold, so all of it lives in SQLite and commits or rolls back as one transaction;
SIGKILL at any moment leaves the old state or the new one. Readers take no lock: they read the
index, then its chunks, and if a chunk has gone (a writer swapped the index in between) they
read again. :meth:`~alltick_frames.store.BarStore.vacuum` removes chunks no index refers to and
repairs indexes whose chunks are missing; neither can arise from the store's own writes, but
the store should heal from anything (an older version, a disk-full error, a hand-deleted key).

This module builds and reads keys, index records and chunk bytes;
:mod:`alltick_frames.store.disk` does the I/O.
"""

from __future__ import annotations

import functools
import json
import uuid
from typing import Any, Final

import numpy as np
import pandas as pd

from alltick_frames.core.intervals import Interval, parse_interval
from alltick_frames.store.coverage import NEG_INF, POS_INF, Coverage, Span, subtract

#: The six value columns of a bar, in storage order.
FIELDS: Final[tuple[str, ...]] = ("open", "high", "low", "close", "volume", "turnover")
#: Columns of every frame the store returns (``read_many`` adds ``code`` and ``interval``).
COLUMNS: Final[tuple[str, ...]] = ("timestamp", *FIELDS)
#: The most bars one chunk holds (a write rewrites at most this many bars per touched chunk).
CHUNK_BARS: Final = 8192

#: Value columns per bar, and bytes per stored bar (timestamp + values).
NF = len(FIELDS)
BAR_BYTES = 8 * (1 + NF)
#: Key prefixes of index records and chunks, and the index record format.
INDEX_PREFIX = "idx:"
CHUNK_PREFIX = "chunk:"
FORMAT = 1

#: A series as read_many names it: ``(code, interval)``.
SeriesKey = tuple[str, str | Interval]


# --------------------------------------------------------------------------------- bars


def empty_arrays() -> tuple[np.ndarray, np.ndarray]:
    """Arrays of no bars."""
    return np.empty(0, np.int64), np.empty((NF, 0), np.float64)


def _seconds(column: pd.Series) -> np.ndarray:
    """A timestamp column as int64 epoch seconds (ints pass through; datetimes convert)."""
    if isinstance(column.dtype, pd.DatetimeTZDtype):
        column = column.dt.tz_convert("UTC").dt.tz_localize(None)
    if pd.api.types.is_datetime64_dtype(column.dtype):
        return column.to_numpy(dtype="datetime64[s]").view(np.int64)
    return column.to_numpy(dtype=np.int64)


#: Bars as arrays: ``(timestamps, values)``, int64 epoch seconds and float64 of shape (6, n),
#: one row per field of :data:`FIELDS` (the store's own layout).
Arrays = tuple[np.ndarray, np.ndarray]


def to_arrays(bars: pd.DataFrame | Arrays) -> Arrays:
    """Bars (a frame, or :data:`Arrays`) as arrays, sorted, later rows winning on ties."""
    if isinstance(bars, tuple):
        ts, vals = bars
        if vals.shape != (NF, ts.size):
            raise ValueError(f"bar values must have shape ({NF}, {ts.size}), not {vals.shape}")
        return sort_bars(np.asarray(ts, np.int64), np.asarray(vals, np.float64))
    missing = [c for c in COLUMNS if c not in bars.columns]
    if missing:
        raise ValueError(f"bars lack column(s) {missing}; a bar frame needs {list(COLUMNS)}")
    ts = _seconds(bars["timestamp"])
    vals = np.empty((NF, len(ts)), np.float64)
    for i, name in enumerate(FIELDS):
        vals[i] = bars[name].to_numpy(dtype=np.float64, na_value=np.nan)
    return sort_bars(ts, vals)


def rows(bars: pd.DataFrame | Arrays) -> int:
    """How many bars ``bars`` holds."""
    return bars[0].size if isinstance(bars, tuple) else len(bars)


def sort_bars(ts: np.ndarray, vals: np.ndarray) -> Arrays:
    """Bars sorted by timestamp; of equal timestamps the last one is kept."""
    if ts.size > 1 and not (np.all(ts[1:] > ts[:-1])):
        order = np.argsort(ts, kind="stable")
        ts, vals = ts[order], vals[:, order]
        keep = np.append(ts[1:] != ts[:-1], True)
        ts, vals = ts[keep], vals[:, keep]
    return ts, vals


def encode(ts: np.ndarray, vals: np.ndarray) -> bytes:
    """Bars as a chunk's bytes: the timestamps, then each value column in turn."""
    return np.ascontiguousarray(ts, np.int64).tobytes() + np.ascontiguousarray(vals).tobytes()


def decode(buf: bytes, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``n`` bars of a chunk's bytes (read-only views, no copy)."""
    ts = np.frombuffer(buf, np.int64, n)
    vals = np.frombuffer(buf, np.float64, NF * n, 8 * n).reshape(NF, n)
    return ts, vals


def as_frame(ts: Any, vals: np.ndarray, **leading: Any) -> pd.DataFrame:
    """The store's frame layout: ``leading`` columns first, then ``timestamp`` and values.

    The columns are ``ts``, ``vals``' rows (one per field) and ``leading`` themselves, not
    copies: a large read pays for its bars once.
    """
    data: dict[str, Any] = {**leading, "timestamp": ts}
    for i, name in enumerate(FIELDS):
        data[name] = vals[i]
    return pd.DataFrame(data, copy=False)


def concat(pieces: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Join pieces into fresh, writable arrays (pieces may be read-only views of chunk bytes)."""
    if not pieces:
        return empty_arrays()
    ts = np.concatenate([p[0] for p in pieces])
    vals = np.concatenate([p[1] for p in pieces], axis=1)
    return ts, vals


def clip(ts: np.ndarray, vals: np.ndarray, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
    """The bars with ``lo <= ts <= hi`` (sorted input)."""
    if ts.size == 0 or (ts[0] >= lo and ts[-1] <= hi):
        return ts, vals
    a, b = np.searchsorted(ts, lo, "left"), np.searchsorted(ts, hi, "right")
    return ts[a:b], vals[:, a:b]


# --------------------------------------------------------------------------------- keys


@functools.lru_cache(maxsize=1 << 16)
def _series_id(source: str, code: str, interval: str) -> str:
    return json.dumps([source, code, interval], ensure_ascii=False, separators=(",", ":"))


def sid_of(source: str, code: str, interval: str | Interval) -> str:
    """The series id of ``(source, code, interval)``, validating the code."""
    if not isinstance(code, str) or not code:
        raise ValueError(f"code must be a non-empty string, not {code!r}")
    return _series_id(source, code, alias_of(interval))


def parse_series_id(sid: str) -> tuple[str, str, str]:
    """``(source, code, interval alias)`` of a series id."""
    source, code, interval = json.loads(sid)
    return source, code, interval


def index_key(sid: str) -> str:
    """The key of a series' index record."""
    return INDEX_PREFIX + sid


def alias_of(interval: str | Interval) -> str:
    """The canonical alias of an interval, e.g. ``"1d"`` for ``"D"``."""
    return parse_interval(interval).alias


def as_int(value: Any, name: str) -> int:
    """``value`` as an int of epoch seconds; TypeError for anything else."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{name} must be an int (epoch seconds), not {value!r}")
    return int(value)


def matches(
    sid: str, code: str | None, alias: str | None, source: str | None
) -> tuple[str, str, str] | None:
    """The series' (source, code, interval) if it passes every filter that is not None."""
    src, c, a = parse_series_id(sid)
    wanted = zip((source, code, alias), (src, c, a), strict=True)
    return (src, c, a) if all(want is None or want == got for want, got in wanted) else None


# --------------------------------------------------------------------------------- index records


def empty_index() -> dict[str, Any]:
    """The index record of a series with nothing stored."""
    return {"v": FORMAT, "rev": "", "segments": (), "floor": None, "forming": None, "chunks": ()}


def index_coverage(index: dict[str, Any]) -> Coverage:
    """What an index record says the series covers."""
    form = index["forming"]
    return Coverage(
        segments=index["segments"],
        floor=index["floor"],
        forming_ts=form[0] if form else None,
        fetched_at=form[1] if form else None,
        bars=sum(c[2] for c in index["chunks"]),
    )


def without_chunks(
    index: dict[str, Any], missing: list[tuple[int, int, int, str]]
) -> dict[str, Any]:
    """The index minus chunks whose data is gone: their time range stops counting as covered."""
    segments: list[Span] = list(index["segments"])
    for first, last, _, _ in missing:
        kept: list[Span] = []
        for a, b in segments:
            kept.extend(subtract(a, b, [(first, last)]))
        segments = kept
    gone = {c[3] for c in missing}
    return {
        **index,
        "rev": uuid.uuid4().hex,
        "segments": tuple(segments),
        "chunks": tuple(c for c in index["chunks"] if c[3] not in gone),
    }


def forming_piece(index: dict[str, Any], lo: int, hi: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """The forming bar of an index record as arrays, when it lies in ``[lo, hi]``."""
    form = index["forming"]
    if form is None or not lo <= form[0] <= hi:
        return []
    return [(np.array([form[0]], np.int64), np.array(form[2:], np.float64).reshape(NF, 1))]


def as_range(lo: int | None, hi: int | None) -> Span:
    """``[lo, hi]`` with open ends filled in; ValueError when ``lo > hi``."""
    lo_i = NEG_INF if lo is None else as_int(lo, "lo")
    hi_i = POS_INF if hi is None else as_int(hi, "hi")
    if lo_i > hi_i:
        raise ValueError(f"lo ({lo_i}) is after hi ({hi_i})")
    return lo_i, hi_i
