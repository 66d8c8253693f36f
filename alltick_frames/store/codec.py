"""The store's layout, pure: series ids and keys, bars as arrays and as checked bytes.

The store is a :class:`diskcache.Cache` in ``<root>/bars`` (its own directory, so its settings
and management never touch other caches under the same root). Three kinds of keys, all
strings, and every value is bytes that the store checks before it believes them:

``idx:["source","code","1d"]``
    The series index: a small JSON record and its checksum
    (:mod:`alltick_frames.store.records` says what it holds).
``chunk:["source","code","1d"]:<uuid hex>``
    ``n`` sorted, unique bars as raw bytes: ``n`` int64 timestamps, then the six float64
    columns one after another. :func:`numpy.frombuffer` reads them without parsing, which is
    what makes warm loads fast. Each write of bars becomes chunks of its own, of at most
    :data:`CHUNK_BARS` bars (115 KB), unless it or its neighbour holds fewer than
    :data:`MIN_CHUNK` bars: then they are folded into one. So a series paged back 500 bars at
    a time writes each bar once (a chunk per page), a one-bar refresh rewrites at most one
    chunk, and a daily series refreshed day by day stays one chunk (one lookup to load). Its
    index entry holds its length and CRC-32: :func:`read_chunk` checks both, and that the bars
    are sorted, before a bar is read.
``meta:format``
    The layout generation of the whole store (:data:`STORE_FORMAT`).

Chunk keys are never reused: a write stores its bars under fresh keys, swaps the index, and
deletes the replaced chunks, all inside one ``cache.transact()``. Everything lives in SQLite
(the store never writes side files), so a write commits or rolls back as one transaction;
SIGKILL at any moment leaves the old state or the new one. Readers take no lock: they read the
index, then its chunks, and if a chunk has gone (a writer swapped the index in between) they
read again. Damage the store cannot cause itself (a flipped page, a full disk mid-way, bytes
planted by hand) is found by these checks and healed: see :mod:`alltick_frames.store.disk`.

This module builds and reads keys and chunk bytes; :mod:`alltick_frames.store.disk` does the
I/O.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from typing import Any, Final

import numpy as np
import pandas as pd

from alltick_frames.core.intervals import Interval, parse_interval
from alltick_frames.store.coverage import NEG_INF, POS_INF, Span

try:  # ISA-L computes zlib's CRC-32 about 8x faster (a warm load checks every byte it reads)
    from isal.isal_zlib import crc32
except ImportError:  # a platform without its wheels: the same checksum, from zlib
    from zlib import crc32

#: The six value columns of a bar, in storage order.
FIELDS: Final[tuple[str, ...]] = ("open", "high", "low", "close", "volume", "turnover")
#: Columns of every frame the store returns (``read_many`` adds ``code`` and ``interval``).
COLUMNS: Final[tuple[str, ...]] = ("timestamp", *FIELDS)
#: The most bars a chunk is written with (a write rewrites at most this many bars per
#: touched chunk). Chosen with ``benchmarks/store_chunks.py``: see :data:`MIN_CHUNK`.
CHUNK_BARS: Final = 2048
#: A write becomes chunks of its own unless it, or the chunk next to it, holds fewer bars
#: than this: then the two are folded together (up to :data:`CHUNK_BARS`). A ``/kline`` page
#: (500 bars) is thus written once and never again when the series is paged further back,
#: while one-bar refreshes gather in the newest chunk instead of making a chunk each.
MIN_CHUNK: Final = 500
#: The most bars a chunk may hold when it is read: what any version of the store wrote (the
#: first ones wrote chunks of up to 8,192 bars; they are read as they are).
LARGEST_CHUNK: Final = 8192

#: Value columns per bar, and bytes per stored bar (timestamp + values).
NF = len(FIELDS)
BAR_BYTES = 8 * (1 + NF)
#: Key prefixes of index records and chunks.
INDEX_PREFIX = "idx:"
CHUNK_PREFIX = "chunk:"
#: The key holding the store's layout generation, and the generation this code writes: a
#: store without it was written by an older version (whose indexes were pickles).
FORMAT_KEY = "meta:format"
STORE_FORMAT = b"2"

#: A series as read_many names it: ``(code, interval)``.
SeriesKey = tuple[str, str | Interval]

#: A chunk as its index lists it: ``(first_ts, last_ts, n, key, crc32)``.
ChunkEntry = tuple[int, int, int, str, int]


class Damaged(ValueError):
    """Bytes in the store that fail their checks; the message says what was wrong."""


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
    """The ``n`` bars of a chunk's bytes (read-only views, no copy), unchecked."""
    ts = np.frombuffer(buf, np.int64, n)
    vals = np.frombuffer(buf, np.float64, NF * n, 8 * n).reshape(NF, n)
    return ts, vals


def chunk_entry(ts: np.ndarray, buf: bytes, key: str) -> ChunkEntry:
    """The index entry of the chunk ``buf`` (the encoded bars ``ts``) stored under ``key``."""
    return int(ts[0]), int(ts[-1]), int(ts.size), key, crc32(buf)


def chunk_problem(buf: object, entry: ChunkEntry) -> str | None:
    """Why a chunk's bytes (None: missing) cannot be believed, by their type, length and
    CRC-32; None when they pass. The order of their bars is checked on reading
    (:func:`read_chunk`, :func:`stack_chunks`)."""
    if buf is None:
        return "a piece of its bars is missing"
    if not isinstance(buf, bytes):
        return "a piece of its bars is not raw bytes (not written by this store)"
    if len(buf) != entry[2] * BAR_BYTES:
        return f"a piece of its bars holds {len(buf)} bytes, not {entry[2] * BAR_BYTES}"
    if crc32(buf) != entry[4]:
        return "a piece of its bars fails its checksum"
    return None


DISORDER = "a piece of its bars is out of order or outside its stated range"


def read_chunk(buf: object, entry: ChunkEntry) -> Arrays:
    """The bars of a chunk's bytes once they pass every check its index ``entry`` allows:
    bytes of the right length, the right CRC-32, strictly increasing timestamps from
    ``first_ts`` to ``last_ts``. :class:`Damaged` says which failed.

    The CRC catches damage to the bytes; the order check catches bars that were never
    sorted (a bug, or bytes planted together with a matching checksum).
    """
    problem = chunk_problem(buf, entry)
    if problem is not None:
        raise Damaged(problem)
    assert isinstance(buf, bytes)
    ts, vals = decode(buf, entry[2])
    if not (ts[0] == entry[0] and ts[-1] == entry[1] and (ts[1:] > ts[:-1]).all()):
        raise Damaged(DISORDER)
    return ts, vals


def checked_chunk(buf: object, entry: ChunkEntry) -> Arrays | str:
    """:func:`read_chunk` of a value that may be missing (None): the bars, or why they cannot
    be believed."""
    try:
        return read_chunk(buf, entry)
    except Damaged as exc:
        return str(exc)


#: What :func:`stack_chunks` lays out, rows ``a`` to ``b`` (exclusive) of each piece: a
#: chunk's index entry and its bytes (which passed :func:`chunk_problem`), or ``None`` and
#: bars that are already arrays (a forming bar).
Piece = tuple[ChunkEntry, bytes, int, int] | tuple[None, Arrays, int, int]


def stack_chunks(pieces: Sequence[Piece]) -> tuple[Arrays, int | None]:
    """The rows of ``pieces`` one after another, in fresh arrays of their own; and the
    position in ``pieces`` of the first chunk whose bars are out of order or outside its
    stated range (None when every chunk is in order, as :func:`read_chunk` checks it).

    One copy of each row that is kept, into one block allocated once (a chunk's bytes are
    its timestamps then its value columns, so a chunk's rows go into place in one copy,
    all seven columns at once), and the order of whole chunks checked in one pass: a load of
    many small chunks costs little more than one of a few large ones, and a trimmed read
    copies only what it returns.
    """
    count = len(pieces)
    sizes = np.fromiter((b - a for _, _, a, b in pieces), np.int64, count)
    ends = np.cumsum(sizes)
    total = int(ends[-1]) if count else 0
    block = _block(total)
    ts, vals = block[0], block[1:].view(np.float64)
    whole = np.zeros(count, bool)
    firsts: list[int] = []  # what the index says of each whole chunk: its first and last bar
    lasts: list[int] = []
    bad: int | None = None
    at = 0
    width = NF + 1
    for k, (entry, payload, a, b) in enumerate(pieces):
        n = b - a
        if entry is None:
            ts[at : at + n] = payload[0][a:b]
            vals[:, at : at + n] = payload[1][:, a:b]
        else:
            m = entry[2]
            rows = np.frombuffer(payload, np.int64, width * m).reshape(width, m)
            if n == m:  # checked below, with every other whole chunk
                whole[k] = True
                firsts.append(entry[0])
                lasts.append(entry[1])
                block[:, at : at + n] = rows
            else:
                stamps = rows[0]
                if bad is None and not (
                    stamps[0] == entry[0]
                    and stamps[-1] == entry[1]
                    and (stamps[1:] > stamps[:-1]).all()
                ):
                    bad = k  # a part of a chunk: the whole chunk is checked here
                block[:, at : at + n] = rows[:, a:b]
        at += n
    edges_ok = np.ones(count, bool)
    edges_ok[whole] = (ts[(ends - sizes)[whole]] == np.array(firsts, np.int64)) & (
        ts[ends[whole] - 1] == np.array(lasts, np.int64)
    )
    rising = ts[1:] > ts[:-1]
    rising[ends[:-1] - 1] = True  # from one piece to the next: not checked here
    if bad is None and edges_ok.all() and rising.all():
        return (ts, vals), None
    owners = np.searchsorted(ends, np.flatnonzero(~rising) + 1, "right")
    found = np.union1d(np.flatnonzero(~edges_ok), owners[whole[owners]])
    if bad is not None:
        found = np.union1d(found, [bad])
    return (ts, vals), int(found[0])


def _block(rows: int) -> np.ndarray:
    """A fresh int64 array of shape (7, ``rows``): a timestamp row, then the value rows' bits.

    From NumPy's allocator on purpose: when a frame built on it is freed, the C library
    keeps that memory for the next read's arrays (so they fault no fresh pages in), which it
    would not if the block came from Arrow's pool.
    """
    return np.empty((NF + 1, rows), np.int64)


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


def series_ids(
    source: str, keys: Sequence[SeriesKey], *, unique: bool = True
) -> tuple[list[tuple[str, str]], list[str]]:
    """``keys`` as ``(code, interval alias)``, repeats dropped (the first kept) when
    ``unique``, and their series ids: :func:`sid_of` of many series, each interval parsed
    once."""
    aliases: dict[Any, str] = {}
    named: list[tuple[str, str]] = []
    for code, interval in keys:
        alias = aliases.get(interval)
        if alias is None:
            alias = aliases[interval] = alias_of(interval)
        named.append((code, alias))
    series = list(dict.fromkeys(named)) if unique else named
    for code, _ in series:
        if not isinstance(code, str) or not code:
            raise ValueError(f"code must be a non-empty string, not {code!r}")
    return series, [_series_id(source, code, alias) for code, alias in series]


def parse_series_id(sid: str) -> tuple[str, str, str]:
    """``(source, code, interval alias)`` of a series id; :class:`Damaged` for anything that
    is not one (a key this store did not write)."""
    try:
        names = json.loads(sid)
    except ValueError:
        names = None
    if not (isinstance(names, list) and len(names) == 3 and all(isinstance(n, str) for n in names)):
        raise Damaged(f"{sid!r} is not a series id")
    return names[0], names[1], names[2]


def index_key(sid: str) -> str:
    """The key of a series' index record."""
    return INDEX_PREFIX + sid


def chunk_prefix(sid: str) -> str:
    """What the key of every chunk of a series starts with."""
    return f"{CHUNK_PREFIX}{sid}:"


def alias_of(interval: str | Interval) -> str:
    """The canonical alias of an interval, e.g. ``"1d"`` for ``"D"``."""
    if type(interval) is str:
        return _alias(interval)  # asked for every series of every read: parsed once
    return parse_interval(interval).alias


@functools.lru_cache(maxsize=256)
def _alias(text: str) -> str:
    return parse_interval(text).alias


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


def as_range(lo: int | None, hi: int | None) -> Span:
    """``[lo, hi]`` with open ends filled in; ValueError when ``lo > hi``."""
    lo_i = NEG_INF if lo is None else as_int(lo, "lo")
    hi_i = POS_INF if hi is None else as_int(hi, "hi")
    if lo_i > hi_i:
        raise ValueError(f"lo ({lo_i}) is after hi ({hi_i})")
    return lo_i, hi_i
