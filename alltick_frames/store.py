"""A disk store of K-line bars that knows exactly which time ranges it holds.

The client asks the store two questions before it calls AllTick: *what do I already have?*
(:meth:`BarStore.coverage`, :meth:`BarStore.newest`) and *give me those bars*
(:meth:`BarStore.read`, :meth:`BarStore.read_many`). After a call it records what it learned
with one :meth:`BarStore.write`.

Data model
==========

A *series* is ``(source, code, interval)``. ``source`` namespaces data by where it came from
(``"quote.alltick.co"``, ``"emulator"``): bars from a test server never answer a production
request. It is never a token, and the store never sees one.

A series holds three kinds of knowledge:

closed segments
    Inclusive spans ``[lo, hi]`` of bar-start times (epoch seconds). Inside a segment *every
    bar that exists is stored*; a segment may hold no bars at all (a weekend). Segments that
    overlap or touch (``next.lo <= cur.hi + 1``) are merged; where two writes hold a bar with
    the same timestamp, the later write wins.
floor
    "No bars exist before this timestamp": the server's history ran out. A request reaching
    below the floor is still fully covered. Of two floors the higher one is kept, since both
    claims are true and the higher one says more (history limited by age moves its floor up).
forming bar
    The newest bar, still changing, with ``fetched_at`` (the caller's clock) so the caller can
    apply a TTL. A forming bar replaces the stored one when ``(timestamp, fetched_at)`` is not
    older. It is dropped as soon as closed coverage reaches its start (a segment with
    ``hi >= forming timestamp``): closed values win, and a closed bar after it proves it no
    longer forms.

The convention that makes "everything up to now" expressible: after a call whose newest bar
``F`` is still forming, write the closed span with ``hi = F - 1`` and pass ``F`` as
``forming``. Then closed coverage touches the forming bar, and
``coverage.gaps(lo, now, forming=coverage.is_fresh(now, ttl))`` is empty while the forming bar
is fresh.

Storage layout
==============

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
read again. :meth:`BarStore.vacuum` removes chunks no index refers to and repairs indexes whose
chunks are missing; neither can arise from this module's own writes, but the store should heal
from anything (an older version, a disk-full error, a hand-deleted key).
"""

from __future__ import annotations

import functools
import json
import os
import sqlite3
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, NamedTuple

import diskcache
import numpy as np
import pandas as pd

from alltick_frames.core.intervals import Interval, parse_interval

#: The six value columns of a bar, in storage order.
FIELDS: Final[tuple[str, ...]] = ("open", "high", "low", "close", "volume", "turnover")
#: Columns of every frame the store returns (``read_many`` adds ``code`` and ``interval``).
COLUMNS: Final[tuple[str, ...]] = ("timestamp", *FIELDS)
#: The most bars one chunk holds (a write rewrites at most this many bars per touched chunk).
CHUNK_BARS: Final = 8192

_NF = len(FIELDS)
_BAR_BYTES = 8 * (1 + _NF)
_NEG_INF = -(2**63)
_POS_INF = 2**63 - 1
_IDX = "idx:"
_CHUNK = "chunk:"
_FORMAT = 1
_READ_ATTEMPTS = 100
#: Keys per bulk SELECT (SQLite builds before 3.32 allow 999 parameters per statement).
_SQL_BATCH = 900
#: Chunks must stay in SQLite (below diskcache's file threshold) so a write is one transaction.
_MIN_FILE_SIZE = 4 * CHUNK_BARS * _BAR_BYTES

Span = tuple[int, int]
#: A series as read_many names it: ``(code, interval)``.
SeriesKey = tuple[str, str | Interval]


class StoreError(RuntimeError):
    """The store on disk is damaged in a way a reader cannot work around; see ``vacuum()``."""


def default_cache_dir() -> Path:
    """The cache root: ``$ALLTICK_CACHE_DIR``, else ``$XDG_CACHE_HOME/alltick-frames``, else
    ``~/.cache/alltick-frames``."""
    explicit = os.environ.get("ALLTICK_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "alltick-frames"


# --------------------------------------------------------------------------------- spans


def merge_spans(spans: Sequence[Span]) -> tuple[Span, ...]:
    """Sort inclusive integer spans and merge those that overlap or touch.

    >>> merge_spans([(10, 19), (0, 9), (30, 40), (35, 50)])
    ((0, 19), (30, 50))
    """
    out: list[list[int]] = []
    for lo, hi in sorted(spans):
        if out and lo <= out[-1][1] + 1:
            out[-1][1] = max(out[-1][1], hi)
        else:
            out.append([lo, hi])
    return tuple((lo, hi) for lo, hi in out)


def _subtract(lo: int, hi: int, covered: Sequence[Span]) -> list[Span]:
    """Parts of ``[lo, hi]`` outside ``covered`` (sorted, merged spans)."""
    gaps: list[Span] = []
    cursor = lo
    for a, b in covered:
        if b < cursor:
            continue
        if a > hi:
            break
        if a > cursor:
            gaps.append((cursor, a - 1))
        cursor = b + 1
        if cursor > hi:
            return gaps
    if cursor <= hi:
        gaps.append((cursor, hi))
    return gaps


@dataclass(frozen=True, slots=True)
class Coverage:
    """What the store knows about one series' time range (see the module docstring).

    ``segments`` are merged, sorted, inclusive spans of bar-start seconds in which every bar
    that exists is stored; ``floor`` says no bar exists before it; ``forming_ts`` and
    ``fetched_at`` describe the stored forming bar; ``bars`` counts the closed bars stored.
    """

    segments: tuple[Span, ...] = ()
    floor: int | None = None
    forming_ts: int | None = None
    fetched_at: float | None = None
    bars: int = 0

    def _covered(self, forming: bool) -> tuple[Span, ...]:
        spans = list(self.segments)
        if self.floor is not None:
            spans.append((_NEG_INF, self.floor - 1))
        if forming and self.forming_ts is not None:
            spans.append((self.forming_ts, _POS_INF))
        return merge_spans(spans)

    def gaps(self, lo: int, hi: int, *, forming: bool = False) -> list[Span]:
        """Sub-spans of ``[lo, hi]`` the store cannot answer: the fetches a request still needs.

        Time below the floor counts as covered. With ``forming=True`` a stored forming bar
        vouches for everything from its start onwards ("as of ``fetched_at`` this was the
        newest bar"); pass ``forming=coverage.is_fresh(now, ttl)`` to honour it only while it
        is fresh. ``[(lo, hi)]`` when nothing is known; ``[]`` when all is covered.
        """
        if lo > hi:
            raise ValueError(f"lo ({lo}) is after hi ({hi})")
        return _subtract(lo, hi, self._covered(forming))

    def covers(self, lo: int, hi: int, *, forming: bool = False) -> bool:
        """Whether ``[lo, hi]`` has no gaps (see :meth:`gaps`)."""
        return not self.gaps(lo, hi, forming=forming)

    def is_fresh(self, now: float, ttl: float) -> bool:
        """Whether a forming bar is stored and was fetched less than ``ttl`` seconds before
        ``now`` (both on the caller's clock)."""
        return self.fetched_at is not None and now - self.fetched_at < ttl

    def run(self, ts: int, *, forming: bool = False) -> Span | None:
        """The covered stretch holding ``ts`` (joined segments, floor region and, with
        ``forming=True``, the forming bar onwards), or None when ``ts`` is not covered.

        The bounds are -2**63 and 2**63 - 1 where the floor or the forming bar leave them open.
        """
        for a, b in self._covered(forming):
            if a <= ts <= b:
                return (a, b)
        return None


class ManyBars(NamedTuple):
    """Bars of many series as arrays (:meth:`BarStore.read_arrays`): ``counts[k]`` rows of
    ``series[k]`` (``(code, interval alias)``), in that order, each oldest first."""

    series: list[tuple[str, str]]
    counts: np.ndarray  # int64, one per series
    ts: np.ndarray  # int64 epoch seconds, one per row
    vals: np.ndarray  # float64, shape (6, rows): one row per field of FIELDS


@dataclass(frozen=True, slots=True, eq=False)
class Newest:
    """Answer of :meth:`BarStore.newest`.

    ``bars`` holds up to ``n`` bars, oldest first. ``complete`` is True when they are provably
    the newest ``n`` bars at or before the requested time: ``n`` were found inside one covered
    run, or the run reaches down to the floor so fewer exist. ``run`` is that covered stretch
    (None when the requested time is not covered); ``fetched_at`` belongs to the forming bar
    when ``bars`` ends with it (check its freshness before trusting a count request).
    """

    bars: pd.DataFrame
    complete: bool
    run: Span | None
    fetched_at: float | None


@dataclass(frozen=True, slots=True)
class VacuumReport:
    """What :meth:`BarStore.vacuum` removed or repaired."""

    orphan_chunks: int
    repaired_series: int


# --------------------------------------------------------------------------------- bars


def _empty_arrays() -> tuple[np.ndarray, np.ndarray]:
    return np.empty(0, np.int64), np.empty((_NF, 0), np.float64)


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


def _arrays(bars: pd.DataFrame | Arrays) -> Arrays:
    """Bars (a frame, or :data:`Arrays`) as arrays, sorted, later rows winning on ties."""
    if isinstance(bars, tuple):
        ts, vals = bars
        if vals.shape != (_NF, ts.size):
            raise ValueError(f"bar values must have shape ({_NF}, {ts.size}), not {vals.shape}")
        return sort_bars(np.asarray(ts, np.int64), np.asarray(vals, np.float64))
    missing = [c for c in COLUMNS if c not in bars.columns]
    if missing:
        raise ValueError(f"bars lack column(s) {missing}; a bar frame needs {list(COLUMNS)}")
    ts = _seconds(bars["timestamp"])
    vals = np.empty((_NF, len(ts)), np.float64)
    for i, name in enumerate(FIELDS):
        vals[i] = bars[name].to_numpy(dtype=np.float64, na_value=np.nan)
    return sort_bars(ts, vals)


def _rows(bars: pd.DataFrame | Arrays) -> int:
    return bars[0].size if isinstance(bars, tuple) else len(bars)


def sort_bars(ts: np.ndarray, vals: np.ndarray) -> Arrays:
    """Bars sorted by timestamp; of equal timestamps the last one is kept."""
    if ts.size > 1 and not (np.all(ts[1:] > ts[:-1])):
        order = np.argsort(ts, kind="stable")
        ts, vals = ts[order], vals[:, order]
        keep = np.append(ts[1:] != ts[:-1], True)
        ts, vals = ts[keep], vals[:, keep]
    return ts, vals


def _encode(ts: np.ndarray, vals: np.ndarray) -> bytes:
    return np.ascontiguousarray(ts, np.int64).tobytes() + np.ascontiguousarray(vals).tobytes()


def _decode(buf: bytes, n: int) -> tuple[np.ndarray, np.ndarray]:
    ts = np.frombuffer(buf, np.int64, n)
    vals = np.frombuffer(buf, np.float64, _NF * n, 8 * n).reshape(_NF, n)
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


def _concat(pieces: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Join pieces into fresh, writable arrays (pieces may be read-only views of chunk bytes)."""
    if not pieces:
        return _empty_arrays()
    ts = np.concatenate([p[0] for p in pieces])
    vals = np.concatenate([p[1] for p in pieces], axis=1)
    return ts, vals


def _clip(ts: np.ndarray, vals: np.ndarray, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
    if ts.size == 0 or (ts[0] >= lo and ts[-1] <= hi):
        return ts, vals
    a, b = np.searchsorted(ts, lo, "left"), np.searchsorted(ts, hi, "right")
    return ts[a:b], vals[:, a:b]


# --------------------------------------------------------------------------------- store


@functools.lru_cache(maxsize=1 << 16)
def _series_id(source: str, code: str, interval: str) -> str:
    return json.dumps([source, code, interval], ensure_ascii=False, separators=(",", ":"))


def _sid(source: str, code: str, interval: str | Interval) -> str:
    if not isinstance(code, str) or not code:
        raise ValueError(f"code must be a non-empty string, not {code!r}")
    return _series_id(source, code, _alias(interval))


def _parse_series_id(sid: str) -> tuple[str, str, str]:
    source, code, interval = json.loads(sid)
    return source, code, interval


def _index_key(sid: str) -> str:
    return _IDX + sid


def _alias(interval: str | Interval) -> str:
    return parse_interval(interval).alias


def _int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{name} must be an int (epoch seconds), not {value!r}")
    return int(value)


def _matches(
    sid: str, code: str | None, alias: str | None, source: str | None
) -> tuple[str, str, str] | None:
    """The series' (source, code, interval) if it passes every filter that is not None."""
    src, c, a = _parse_series_id(sid)
    wanted = zip((source, code, alias), (src, c, a), strict=True)
    return (src, c, a) if all(want is None or want == got for want, got in wanted) else None


class BarStore:
    """K-line bars on disk, with the time ranges they cover (see the module docstring).

    >>> with BarStore("/tmp/demo-cache", source="emulator") as store:  # doctest: +SKIP
    ...     store.write("AAPL.US", "1d", bars, lo=t0, hi=t1)
    ...     store.coverage("AAPL.US", "1d").gaps(t0, t2)    # [(t1 + 1, t2)]
    ...     store.read("AAPL.US", "1d", t0, t1)

    ``directory`` is the cache root (default :func:`default_cache_dir`); bars live in its
    ``bars`` sub-directory. ``source`` names where the bars come from; reads and writes use it,
    the management methods (:meth:`describe`, :meth:`clear`, :meth:`vacuum`) see every source.
    Safe to share between threads and processes; each process should open its own store.
    """

    def __init__(self, directory: str | Path | None = None, *, source: str = "default") -> None:
        if not isinstance(source, str) or not source:
            raise ValueError(f"source must be a non-empty string, not {source!r}")
        self.root = Path(directory).expanduser() if directory is not None else default_cache_dir()
        self.directory = self.root / "bars"
        self.source = source
        self._cache = diskcache.Cache(
            str(self.directory),
            eviction_policy="none",  # closed bars are kept for good; clear() is explicit
            size_limit=2**50,
            disk_min_file_size=_MIN_FILE_SIZE,
            statistics=False,
            tag_index=False,
        )

    def __repr__(self) -> str:
        return f"BarStore({str(self.root)!r}, source={self.source!r})"

    def close(self) -> None:
        """Close the database connection (the store reopens it if used again)."""
        self._cache.close()

    def __enter__(self) -> BarStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ----------------------------------------------------------------------------- writing

    def write(
        self,
        code: str,
        interval: str | Interval,
        bars: pd.DataFrame | Arrays | None = None,
        lo: int | None = None,
        hi: int | None = None,
        *,
        floor: int | None = None,
        forming: pd.DataFrame | Arrays | None = None,
        fetched_at: float | None = None,
    ) -> Coverage:
        """Record what one fetch learned, atomically, and return the series' new coverage.

        ``bars`` are the closed bars the server returned for the closed span ``[lo, hi]``
        (inclusive bar-start seconds): the claim is that *every* bar in that span is among
        them. Bars outside the span are ignored; duplicates keep the last row. Stored bars with
        the same timestamp are overwritten; stored bars the new frame lacks are kept (a closed
        bar does not vanish because one response left it out). ``bars`` may be empty (a span
        with no bars) and, with ``lo``/``hi`` left out, None (only a floor or a forming bar to
        record). Columns: ``timestamp`` (int64 seconds or datetimes) and the six floats; other
        columns are ignored. Bars may also be given as :data:`Arrays`, which skips pandas.

        ``floor``: no bar exists before it. ``forming``: a one-row frame holding the bar that is
        still forming, with ``fetched_at`` the caller's clock reading when it was fetched. Write
        the closed span up to ``forming timestamp - 1`` to say nothing is missing before it.

        Several processes may write the same series at once: the index is read, merged and
        written inside one SQLite write transaction, so no writer loses another's segments.
        """
        sid = _sid(self.source, code, interval)
        if (lo is None) != (hi is None):
            raise ValueError("give both lo and hi (the closed span the bars cover), or neither")
        span: Span | None = None
        ts, vals = _empty_arrays()
        if lo is not None and hi is not None:
            span = (_int(lo, "lo"), _int(hi, "hi"))
            if span[0] > span[1]:
                raise ValueError(f"lo ({span[0]}) is after hi ({span[1]})")
            if bars is not None:
                ts, vals = _clip(*_arrays(bars), *span)
        elif bars is not None and _rows(bars):
            raise ValueError("bars need the closed span [lo, hi] they cover")
        floor = None if floor is None else _int(floor, "floor")
        form: tuple[Any, ...] | None = None
        if forming is not None and _rows(forming):
            if _rows(forming) != 1:
                raise ValueError(f"forming must be one bar, got {_rows(forming)} rows")
            if fetched_at is None:
                raise ValueError("a forming bar needs fetched_at (the caller's clock, seconds)")
            f_ts, f_vals = _arrays(forming)
            form = (int(f_ts[0]), float(fetched_at), *(float(v) for v in f_vals[:, 0]))
        with self._cache.transact(retry=True):
            index = self._write_locked(sid, ts, vals, span, floor, form)
        return _coverage(index)

    def _write_locked(
        self,
        sid: str,
        ts: np.ndarray,
        vals: np.ndarray,
        span: Span | None,
        floor: int | None,
        form: tuple[Any, ...] | None,
    ) -> dict[str, Any]:
        """The read-merge-write of one series; the caller holds the write transaction."""
        cache = self._cache
        index = cache.get(_index_key(sid)) or _empty_index()
        chunks = list(index["chunks"])
        replaced: list[str] = []
        if ts.size:
            first, last = int(ts[0]), int(ts[-1])
            i = next((k for k, c in enumerate(chunks) if c[1] >= first), len(chunks))
            j = next((k for k in range(i, len(chunks)) if chunks[k][0] > last), len(chunks))
            total = ts.size + sum(c[2] for c in chunks[i:j])
            # Fold small neighbours in too, so refreshes one bar at a time keep a series in
            # few chunks (fast loads) while no rewrite exceeds about CHUNK_BARS bars.
            while i > 0 and total + chunks[i - 1][2] <= CHUNK_BARS:
                i -= 1
                total += chunks[i][2]
            while j < len(chunks) and total + chunks[j][2] <= CHUNK_BARS:
                total += chunks[j][2]
                j += 1
            group = chunks[i:j]
            pieces = [self._chunk(sid, c) for c in group]
            pieces.append((ts, vals))
            all_ts, all_vals = sort_bars(*_concat(pieces))
            fresh = []
            parts = -(-all_ts.size // CHUNK_BARS)
            for part_ts, part_vals in zip(
                np.array_split(all_ts, parts), np.array_split(all_vals, parts, axis=1), strict=True
            ):
                key = f"{_CHUNK}{sid}:{uuid.uuid4().hex}"
                cache.set(key, _encode(part_ts, part_vals), retry=True)
                fresh.append((int(part_ts[0]), int(part_ts[-1]), int(part_ts.size), key))
            chunks[i:j] = fresh
            replaced = [c[3] for c in group]

        segments = index["segments"]
        if span is not None:
            segments = merge_spans([*segments, span])
        if floor is not None and (index["floor"] is None or floor > index["floor"]):
            index_floor = floor
        else:
            index_floor = index["floor"]
        current = index["forming"]
        if form is not None and (current is None or form[:2] >= current[:2]):
            current = form
        if current is not None and any(hi >= current[0] for _, hi in segments):
            current = None

        new = {
            "v": _FORMAT,
            "rev": uuid.uuid4().hex,
            "segments": tuple(segments),
            "floor": index_floor,
            "forming": current,
            "chunks": tuple(chunks),
        }
        cache.set(_index_key(sid), new, retry=True)
        for key in replaced:
            cache.delete(key, retry=True)
        return new

    def _chunk(self, sid: str, chunk: tuple[int, int, int, str]) -> tuple[np.ndarray, np.ndarray]:
        """A chunk's bars, for a writer inside the transaction (where it cannot go missing)."""
        buf = self._cache.get(chunk[3])
        if buf is None:
            raise StoreError(f"series {sid} lacks chunk {chunk[3]}; run BarStore.vacuum()")
        return _decode(buf, chunk[2])

    # ----------------------------------------------------------------------------- reading

    def _get_many(self, keys: list[str]) -> dict[str, Any]:
        """Values of many keys in a few SQL statements instead of one ``get`` each.

        One ``get`` costs about 12 us of SQLite round trip, as much as decoding its bars, so
        bulk loads query diskcache's table directly (``Disk.fetch`` still decodes the values).
        Should diskcache ever change its private SQL handle or schema, the public ``get`` takes
        over. Missing keys are simply absent from the result.
        """
        cache = self._cache
        found: dict[str, Any] = {}
        try:
            sql, fetch = cache._sql, cache.disk.fetch
            now = time.time()
            for start in range(0, len(keys), _SQL_BATCH):
                part = keys[start : start + _SQL_BATCH]
                rows = sql(
                    "SELECT key, mode, filename, value FROM Cache WHERE raw = 1"
                    f" AND key IN ({','.join('?' * len(part))})"
                    " AND (expire_time IS NULL OR expire_time > ?)",
                    (*part, now),
                ).fetchall()
                for key, mode, filename, value in rows:
                    found[key] = fetch(mode, filename, value, False)
        except (AttributeError, sqlite3.Error):
            found = {}
            for key in keys:
                value = cache.get(key)
                if value is not None:
                    found[key] = value
        return found

    def coverage(self, code: str, interval: str | Interval) -> Coverage:
        """What the store holds for one series of this store's source (empty if nothing)."""
        index = self._cache.get(_index_key(_sid(self.source, code, interval)))
        return _coverage(index or _empty_index())

    def coverage_many(self, keys: Sequence[SeriesKey]) -> dict[tuple[str, str], Coverage]:
        """:meth:`coverage` of many series in a few SQL statements, for planning big requests.

        Keyed by ``(code, interval alias)``, e.g. ``("AAPL.US", "1d")`` even if asked as ``"D"``.
        """
        series = list(dict.fromkeys((code, _alias(interval)) for code, interval in keys))
        index_keys = [_index_key(_sid(self.source, code, alias)) for code, alias in series]
        indexes = self._get_many(index_keys)
        return {
            pair: _coverage(indexes.get(key) or _empty_index())
            for pair, key in zip(series, index_keys, strict=True)
        }

    def _load(
        self, sid: str, lo: int, hi: int, newest: int | None = None
    ) -> tuple[dict[str, Any] | None, list[tuple[np.ndarray, np.ndarray]]]:
        """A consistent snapshot: the index and the bars of its chunks within ``[lo, hi]``.

        Without a lock: a chunk that vanished means a writer swapped the index after we read
        it, so read again. ``newest`` stops after that many bars, reading from the end.
        """
        cache, key = self._cache, _index_key(sid)
        for _ in range(_READ_ATTEMPTS):
            index = cache.get(key)
            if index is None:
                return None, []
            chunks = [c for c in index["chunks"] if c[1] >= lo and c[0] <= hi]
            if newest is not None:
                chunks.reverse()
            pieces: list[tuple[np.ndarray, np.ndarray]] = []
            found = 0
            missing = None
            for c in chunks:
                if newest is not None and found >= newest:
                    break
                buf = cache.get(c[3])
                if buf is None:
                    missing = c[3]
                    break
                piece = _clip(*_decode(buf, c[2]), lo, hi)
                pieces.append(piece)
                found += piece[0].size
            if missing is None:
                if newest is not None:
                    pieces.reverse()
                return index, pieces
            again = cache.get(key)
            if again is not None and again["rev"] == index["rev"]:
                raise StoreError(f"series {sid} lacks chunk {missing}; run BarStore.vacuum()")
        raise StoreError(f"series {sid} changed {_READ_ATTEMPTS} times while being read")

    def read(
        self,
        code: str,
        interval: str | Interval,
        lo: int | None = None,
        hi: int | None = None,
        *,
        forming: bool = True,
    ) -> pd.DataFrame:
        """Stored bars of one series with ``lo <= timestamp <= hi``, oldest first.

        Columns: ``timestamp`` (int64 epoch seconds) and the six float64 values. The forming bar
        is included when ``forming`` and it lies in the range; it is always the last row.
        Whether the range is *complete* is :meth:`coverage`'s question, not this one's.
        """
        sid = _sid(self.source, code, interval)
        ts, vals = self._series_arrays(sid, *_range(lo, hi), forming)
        return as_frame(ts, vals)

    def _series_arrays(
        self, sid: str, lo: int, hi: int, forming: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        index, pieces = self._load(sid, lo, hi)
        if index is not None and forming:
            pieces.extend(_forming_piece(index, lo, hi))
        return _concat(pieces)

    def read_many(
        self,
        keys: Sequence[SeriesKey],
        lo: int | None = None,
        hi: int | None = None,
        *,
        forming: bool = True,
    ) -> pd.DataFrame:
        """Bars of many ``(code, interval)`` series in one frame, like :meth:`read`.

        Rows follow the order of ``keys`` (repeats are read once), then time. ``code`` and
        ``interval`` are categorical columns whose categories keep that order, so
        ``sort_values("code")`` sorts in the caller's order and memory stays small; use
        ``.astype(str)`` for plain strings. Series with no bars contribute no rows.
        """
        got = self.read_arrays(keys, lo, hi, forming=forming)
        codes = list(dict.fromkeys(code for code, _ in got.series))
        aliases = list(dict.fromkeys(alias for _, alias in got.series))
        code_pos = {c: k for k, c in enumerate(codes)}
        alias_pos = {a: k for k, a in enumerate(aliases)}
        code_of = np.array([code_pos[c] for c, _ in got.series], np.int32)
        alias_of = np.array([alias_pos[a] for _, a in got.series], np.int8)
        return as_frame(
            got.ts,
            got.vals,
            code=pd.Categorical.from_codes(np.repeat(code_of, got.counts), categories=codes),
            interval=pd.Categorical.from_codes(np.repeat(alias_of, got.counts), categories=aliases),
        )

    def read_arrays(
        self,
        keys: Sequence[SeriesKey],
        lo: int | None = None,
        hi: int | None = None,
        *,
        forming: bool = True,
    ) -> ManyBars:
        """What :meth:`read_many` reads, as plain arrays (for callers that build their own
        frame without copying the bars again): see :class:`ManyBars`."""
        lo, hi = _range(lo, hi)
        series = list(dict.fromkeys((code, _alias(interval)) for code, interval in keys))
        sids = [_sid(self.source, code, alias) for code, alias in series]
        indexes = self._get_many([_index_key(sid) for sid in sids])
        wanted = [
            c[3] for index in indexes.values() for c in index["chunks"] if c[1] >= lo and c[0] <= hi
        ]
        blobs = self._get_many(wanted)
        pieces: list[tuple[np.ndarray, np.ndarray]] = []
        counts = np.zeros(len(series), np.int64)
        for k, sid in enumerate(sids):
            index = indexes.get(_index_key(sid))
            if index is None:
                continue
            got = []
            for c in index["chunks"]:
                if c[1] >= lo and c[0] <= hi:
                    buf = blobs.get(c[3])
                    if buf is None:  # a writer swapped this series in between: read it alone
                        index, got = self._load(sid, lo, hi)
                        break
                    got.append(_clip(*_decode(buf, c[2]), lo, hi))
            if index is not None and forming:
                got.extend(_forming_piece(index, lo, hi))
            pieces.extend(got)
            counts[k] = sum(p[0].size for p in got)
        return ManyBars(series, counts, *_concat(pieces))

    def newest(
        self,
        code: str,
        interval: str | Interval,
        n: int,
        hi: int | None = None,
        *,
        forming: bool = True,
    ) -> Newest:
        """The newest ``n`` bars at or before ``hi``, and whether the store can vouch for them.

        This answers count requests ("the latest 250 daily bars"). Only bars from the covered
        run holding ``hi`` count, so a hole in coverage can never be skipped over. ``hi=None``
        means the newest thing stored: the forming bar when ``forming`` and one is stored, else
        the end of the last closed segment. With ``forming`` the forming bar is part of the run
        (see :meth:`Coverage.gaps`); check ``Newest.fetched_at`` against your TTL.

        ``Newest.complete`` is True when the answer needs no call: ``n`` bars were found, or the
        run reaches the floor so no older bars exist. Otherwise ask the server.
        """
        if n < 1:
            raise ValueError(f"n must be at least 1, got {n}")
        sid = _sid(self.source, code, interval)
        empty = Newest(as_frame(*_empty_arrays()), complete=False, run=None, fetched_at=None)
        for _ in range(_READ_ATTEMPTS):
            index = self._cache.get(_index_key(sid))
            if index is None:
                return empty
            cov = _coverage(index)
            use_forming = forming and cov.forming_ts is not None
            if hi is not None:
                top = _int(hi, "hi")
            elif use_forming:
                top = _POS_INF
            elif cov.segments:
                top = cov.segments[-1][1]
            else:
                return empty
            run = cov.run(top, forming=use_forming)
            if run is None:
                return empty
            loaded, pieces = self._load(sid, run[0], top, newest=n)
            if loaded is None or loaded["rev"] != index["rev"]:
                continue  # a writer got in between; the coverage we planned with is stale
            if use_forming:
                pieces.extend(_forming_piece(index, run[0], top))
            ts, vals = _concat(pieces)
            ts, vals = ts[-n:], vals[:, -n:]
            with_forming = use_forming and ts.size > 0 and ts[-1] == cov.forming_ts
            return Newest(
                as_frame(ts, vals),
                complete=ts.size >= n or run[0] == _NEG_INF,
                run=run,
                fetched_at=cov.fetched_at if with_forming else None,
            )
        raise StoreError(f"series {sid} changed {_READ_ATTEMPTS} times while being read")

    # -------------------------------------------------------------------------- management

    def _series_ids(self) -> Iterator[str]:
        for key in self._cache.iterkeys():
            if isinstance(key, str) and key.startswith(_IDX):
                yield key[len(_IDX) :]

    def describe(
        self,
        code: str | None = None,
        interval: str | Interval | None = None,
        source: str | None = None,
    ) -> pd.DataFrame:
        """One row per stored series (all sources unless filtered), sorted.

        Columns: ``source, code, interval``; ``bars`` (closed bars stored); ``first``/``last``
        (first and last closed bar, UTC); ``segments`` (covered spans); ``chunks`` (storage
        pieces: one lookup each when loading); ``floor`` (UTC);
        ``forming`` (the forming bar's start, UTC) and ``fetched_at`` (UTC, caller's clock);
        ``bytes`` (bar data size).
        """
        alias = None if interval is None else _alias(interval)
        rows = []
        for sid in self._series_ids():
            names = _matches(sid, code, alias, source)
            if names is None:
                continue
            src, c, a = names
            index = self._cache.get(_index_key(sid))
            if index is None:
                continue
            chunks, form = index["chunks"], index["forming"]
            n = sum(ch[2] for ch in chunks)
            rows.append(
                {
                    "source": src,
                    "code": c,
                    "interval": a,
                    "bars": n,
                    "first": chunks[0][0] if chunks else None,
                    "last": chunks[-1][1] if chunks else None,
                    "segments": len(index["segments"]),
                    "chunks": len(chunks),
                    "floor": index["floor"],
                    "forming": form[0] if form else None,
                    "fetched_at": form[1] if form else None,
                    "bytes": n * _BAR_BYTES,
                }
            )
        columns = [
            "source", "code", "interval", "bars", "first", "last",
            "segments", "chunks", "floor", "forming", "fetched_at", "bytes",
        ]  # fmt: skip
        out = pd.DataFrame(rows, columns=columns)
        for name in ("first", "last", "floor", "forming", "fetched_at"):
            out[name] = pd.to_datetime(out[name].astype("float64"), unit="s", utc=True)
        out = out.astype({"source": str, "code": str, "interval": str})
        out = out.astype({k: np.int64 for k in ("bars", "segments", "chunks", "bytes")})
        return out.sort_values(["source", "code", "interval"], ignore_index=True)

    def size_bytes(self) -> int:
        """Bytes the bar store's database takes on disk."""
        return int(self._cache.volume())

    def clear(
        self,
        code: str | None = None,
        interval: str | Interval | None = None,
        source: str | None = None,
    ) -> int:
        """Delete stored series: all of them, or those matching every filter given (None
        matches anything; ``source`` too, so ``clear()`` empties every source). Returns how
        many series were deleted. Atomic: a concurrent writer's series is either deleted whole
        or written after the clear."""
        alias = None if interval is None else _alias(interval)
        removed = 0
        with self._cache.transact(retry=True):
            for key in list(self._cache.iterkeys()):
                if not isinstance(key, str):
                    continue
                if key.startswith(_IDX):
                    sid, is_index = key[len(_IDX) :], True
                elif key.startswith(_CHUNK):
                    sid, is_index = key[len(_CHUNK) :].rsplit(":", 1)[0], False
                else:
                    continue
                if _matches(sid, code, alias, source) is None:
                    continue
                self._cache.delete(key, retry=True)
                removed += is_index
        return removed

    def vacuum(self) -> VacuumReport:
        """Remove chunks no index refers to, and repair indexes that refer to missing chunks
        (their span leaves coverage, so it will be fetched again). Holds the write lock while
        it scans every key, so run it from maintenance code, not per request."""
        orphans = repaired = 0
        with self._cache.transact(retry=True):
            keys = [k for k in self._cache.iterkeys() if isinstance(k, str)]
            chunk_keys = {k for k in keys if k.startswith(_CHUNK)}
            referenced: set[str] = set()
            for key in keys:
                if not key.startswith(_IDX):
                    continue
                index = self._cache.get(key)
                if index is None:
                    continue
                missing = [c for c in index["chunks"] if c[3] not in chunk_keys]
                referenced.update(c[3] for c in index["chunks"])
                if missing:
                    self._cache.set(key, _without(index, missing), retry=True)
                    repaired += 1
            for key in chunk_keys - referenced:
                self._cache.delete(key, retry=True)
                orphans += 1
        return VacuumReport(orphan_chunks=orphans, repaired_series=repaired)


def _empty_index() -> dict[str, Any]:
    return {"v": _FORMAT, "rev": "", "segments": (), "floor": None, "forming": None, "chunks": ()}


def _coverage(index: dict[str, Any]) -> Coverage:
    form = index["forming"]
    return Coverage(
        segments=index["segments"],
        floor=index["floor"],
        forming_ts=form[0] if form else None,
        fetched_at=form[1] if form else None,
        bars=sum(c[2] for c in index["chunks"]),
    )


def _without(index: dict[str, Any], missing: list[tuple[int, int, int, str]]) -> dict[str, Any]:
    """The index minus chunks whose data is gone: their time range stops counting as covered."""
    segments: list[Span] = list(index["segments"])
    for first, last, _, _ in missing:
        kept: list[Span] = []
        for a, b in segments:
            kept.extend(_subtract(a, b, [(first, last)]))
        segments = kept
    gone = {c[3] for c in missing}
    return {
        **index,
        "rev": uuid.uuid4().hex,
        "segments": tuple(segments),
        "chunks": tuple(c for c in index["chunks"] if c[3] not in gone),
    }


def _forming_piece(index: dict[str, Any], lo: int, hi: int) -> list[tuple[np.ndarray, np.ndarray]]:
    form = index["forming"]
    if form is None or not lo <= form[0] <= hi:
        return []
    return [(np.array([form[0]], np.int64), np.array(form[2:], np.float64).reshape(_NF, 1))]


def _range(lo: int | None, hi: int | None) -> Span:
    lo_i = _NEG_INF if lo is None else _int(lo, "lo")
    hi_i = _POS_INF if hi is None else _int(hi, "hi")
    if lo_i > hi_i:
        raise ValueError(f"lo ({lo_i}) is after hi ({hi_i})")
    return lo_i, hi_i
