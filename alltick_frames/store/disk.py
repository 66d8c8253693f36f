"""The bar store on disk (:class:`BarStore`, on diskcache): checked reads, atomic writes.

The client asks the store two questions before it calls AllTick: *what do I already have?*
(:meth:`BarStore.coverage`, :meth:`BarStore.newest`) and *give me those bars*
(:meth:`BarStore.read`, :meth:`BarStore.read_many`), both answered here. After a call it
records what it learned with one :meth:`BarStore.write` (:mod:`alltick_frames.store.writes`).

What the store knows is described in :mod:`alltick_frames.store.coverage` (the data model),
how it lays it out in :mod:`alltick_frames.store.codec` and :mod:`alltick_frames.store.records`
(the storage layout), and how it copes with a damaged or unusable database in
:mod:`alltick_frames.store.health`.

Nothing is believed unchecked. An index that fails its checks drops its series; a chunk that
fails its checks (length, CRC-32, order) or has gone missing drops its time span from the
index. Either way the dropped part stops counting as covered, so the next fetch asks for it
again, and a :class:`~alltick_frames.store.health.Note` in :attr:`BarStore.notes` says what
happened. A read never returns a bar that failed a check.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from alltick_frames.core.intervals import Interval
from alltick_frames.store.backend import Backend
from alltick_frames.store.codec import (
    BAR_BYTES,
    DISORDER,
    ChunkEntry,
    Piece,
    SeriesKey,
    alias_of,
    as_frame,
    as_int,
    as_range,
    chunk_problem,
    crc32,
    empty_arrays,
    index_key,
    series_ids,
    sid_of,
    stack_chunks,
)
from alltick_frames.store.coverage import (
    NEG_INF,
    POS_INF,
    Coverage,
    CoverageTable,
    Span,
    coverage_row,
)
from alltick_frames.store.health import Index, Keeper, guarded
from alltick_frames.store.location import StoreError
from alltick_frames.store.manage import Management
from alltick_frames.store.records import (
    forming_piece,
    index_coverage,
)
from alltick_frames.store.writes import Writing

_READ_ATTEMPTS = 100
#: The coverage of a series with nothing stored, and its row.
_NOTHING = (Coverage(), coverage_row(Coverage()))


class ManyBars(NamedTuple):
    """Bars of many series as arrays (:meth:`BarStore.read_arrays`): ``counts[k]`` rows of
    ``series[k]`` (``(code, interval alias)``), in that order, each oldest first."""

    series: list[tuple[str, str]]
    counts: np.ndarray  # int64, one per series
    ts: np.ndarray  # int64 epoch seconds, one per row
    vals: np.ndarray  # float64, shape (6, rows): one row per field of FIELDS


class _Snapshot(NamedTuple):
    """Series read together (:meth:`BarStore._snapshot`): their indexes (None: nothing
    stored) and bars, ``counts[k]`` rows of the ``k``-th series, in order."""

    indexes: list[Index | None]
    counts: np.ndarray
    ts: np.ndarray
    vals: np.ndarray


def _wanted(index: Index | None, lo: int, hi: int, newest: int | None) -> list[ChunkEntry]:
    """The chunks of ``index`` to read for ``[lo, hi]``: all that reach into it, or with
    ``newest`` those from the end that hold at least that many bars of it."""
    if index is None:
        return []
    every = index["chunks"]
    if not every or (lo <= every[0][0] and every[-1][1] <= hi):
        chosen = list(every)  # all of them (a warm read of whole series, say)
    else:
        chosen = [c for c in every if c[1] >= lo and c[0] <= hi]
    if newest is None:
        return chosen
    found, k = 0, len(chosen)
    while k > 0 and found < newest:
        k -= 1
        first, last, n, _, _ = chosen[k]
        found += n if lo <= first and last <= hi else 0  # a clipped chunk: counted as none
    return chosen[k:]


def _first_bad(
    chosen: list[ChunkEntry], blobs: dict[str, Any], *, reverse: bool
) -> tuple[ChunkEntry, str] | None:
    """The first chunk of ``chosen`` whose bytes fail their checks, in reading order (from
    the end when ``reverse``), and why; None when all pass."""
    for c in reversed(chosen) if reverse else chosen:
        buf = blobs.get(c[3])
        # What chunk_problem checks, inline for the bytes that pass (nearly all of them).
        if type(buf) is bytes and len(buf) == c[2] * BAR_BYTES and crc32(buf) == c[4]:
            continue
        problem = chunk_problem(buf, c)
        if problem is not None:
            return c, problem
    return None


def _run_start(cov: Coverage, lo: int, hi: int) -> int:
    """Where the bars of a count request start, by the series' coverage: at ``lo``, or later
    at the start of the covered run that holds ``hi`` (past ``hi`` when no run holds it: no
    bars)."""
    run = cov.run(hi, forming=hi == POS_INF)
    return POS_INF if run is None else max(lo, run[0])


def _windows(chosen: list[ChunkEntry], blobs: dict[str, Any], lo: int, hi: int) -> list[Piece]:
    """The rows of each chunk (whose bytes passed their checks) within ``[lo, hi]``, found by
    a binary search in the chunks that reach past either end."""
    pieces: list[Piece] = []
    for c in chosen:
        buf, n = blobs[c[3]], c[2]
        a, b = 0, n
        if c[0] < lo or c[1] > hi:
            stamps = np.frombuffer(buf, np.int64, n)
            a = int(np.searchsorted(stamps, lo, "left")) if c[0] < lo else 0
            b = int(np.searchsorted(stamps, hi, "right")) if c[1] > hi else n
        if a < b:
            pieces.append((c, buf, a, b))
    return pieces


def _last_rows(pieces: list[Piece], n: int) -> list[Piece]:
    """The pieces holding the last ``n`` of their rows, the oldest of them cut short."""
    total = sum(b - a for _, _, a, b in pieces)
    k = 0
    while total > n:
        entry, payload, a, b = pieces[k]
        if b - a <= total - n:
            total -= b - a
            k += 1
        else:
            pieces[k] = (entry, payload, a + total - n, b)  # type: ignore[assignment]
            total = n
    return pieces[k:]


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


class BarStore(Writing, Management, Keeper):
    """K-line bars on disk, with the time ranges they cover (see the module docstring).

    >>> with BarStore("/tmp/demo-cache", source="emulator") as store:  # doctest: +SKIP
    ...     store.write("AAPL.US", "1d", bars, lo=t0, hi=t1)
    ...     store.coverage("AAPL.US", "1d").gaps(t0, t2)    # [(t1 + 1, t2)]
    ...     store.read("AAPL.US", "1d", t0, t1)

    ``directory`` is the cache root (default :func:`default_cache_dir`), created private (mode
    0700); bars live in its ``bars`` sub-directory. A root that other users can write is
    refused (:class:`~alltick_frames.store.location.UnsafeCacheDir`) unless ``shared=True``:
    whoever can write it decides what the store returns. ``source`` names where the bars come
    from; reads and writes use it, the management methods (:meth:`describe`, :meth:`clear`,
    :meth:`vacuum`) see every source. Safe to share between threads and processes; each
    process should open its own store. :attr:`notes` lists what the store healed.
    """

    def __init__(
        self, directory: str | Path | None = None, *, source: str = "default", shared: bool = False
    ) -> None:
        if not isinstance(source, str) or not source:
            raise ValueError(f"source must be a non-empty string, not {source!r}")
        self._start(directory, source, shared)

    # ----------------------------------------------------------------------------- reading

    @guarded
    def coverage(self, code: str, interval: str | Interval) -> Coverage:
        """What the store holds for one series of this store's source (empty if nothing)."""
        kv, sid = self._backend, sid_of(self.source, code, interval)
        return self._coverage(kv, sid, kv.get(index_key(sid)))[0]

    @guarded
    def coverage_many(self, keys: Sequence[SeriesKey]) -> dict[tuple[str, str], Coverage]:
        """:meth:`coverage` of many series in a few SQL statements, for planning big requests.

        Keyed by ``(code, interval alias)``, e.g. ``("AAPL.US", "1d")`` even if asked as ``"D"``.
        """
        kv = self._backend
        series = list(dict.fromkeys((code, alias_of(interval)) for code, interval in keys))
        sids = [sid_of(self.source, code, alias) for code, alias in series]
        blobs = kv.get_many([index_key(sid) for sid in sids])
        return {
            pair: self._coverage(kv, sid, blobs.get(index_key(sid)))[0]
            for pair, sid in zip(series, sids, strict=True)
        }

    @guarded
    def coverage_table(self, keys: Sequence[SeriesKey]) -> CoverageTable:
        """:meth:`coverage` of many series (in the order of ``keys``) in a few SQL statements,
        as a :class:`CoverageTable` that plans them all at once."""
        kv = self._backend
        sids = series_ids(self.source, keys, unique=False)[1]
        blobs = self._read_indexes(kv, [index_key(sid) for sid in sids], remember=True)
        known = [self._coverage(kv, sid, blobs.get(index_key(sid))) for sid in sids]
        return CoverageTable.of([c for c, _ in known], [r for _, r in known])

    def _coverage(self, kv: Backend, sid: str, blob: object) -> tuple[Coverage, tuple]:
        """The coverage of the index record in ``blob`` and its :func:`coverage_row`,
        remembered with the parsed record (:meth:`Keeper._parse` remembers the newest record
        of each series), so that planning a warm request builds no coverage again."""
        index = self._parse(kv, sid, blob)
        if index is None:
            return _NOTHING
        known = self._parsed.get(sid)
        if known is not None and known.index is index and known.derived is not None:
            return known.derived
        cov = index_coverage(index)
        found = cov, coverage_row(cov)
        if known is not None and known.index is index:
            known.derived = found
        return found

    def _snapshot(
        self,
        kv: Backend,
        sids: Sequence[str],
        lo: int,
        hi: int,
        *,
        forming: bool,
        newest: int | None = None,
        runs: bool = False,
    ) -> _Snapshot:
        """A consistent snapshot of series: their indexes and their bars within ``[lo, hi]``
        (with the forming bar when ``forming`` and it lies there), in two lookups, however
        many series and chunks: the indexes, then every chunk they need. The first is
        skipped when this thread just read those indexes (planning, say) and the database
        has not changed since (:meth:`Keeper._read_indexes`).

        ``runs`` keeps only the bars of the covered run that holds ``hi`` (from the forming
        bar onwards when ``hi`` is open), ``newest`` only each series' newest that many bars.
        Each kept bar is copied once; chunks wholly outside are not read.

        Without a lock: a chunk that vanished means a writer swapped the index after we read
        it, so read again; a chunk that is gone or damaged while the index stands is dropped
        from it (:meth:`_drop_chunks`), the first one in reading order of each series.
        """
        keys = [index_key(sid) for sid in sids]
        for attempt in range(_READ_ATTEMPTS):
            # Planning read these records just now, most likely: unchanged, they are not
            # read again (a retry always reads them afresh).
            blobs = self._read_indexes(kv, keys, remember=False) if attempt == 0 else None
            blobs = kv.get_many(keys) if blobs is None else blobs
            parse = self._parse
            indexes = [parse(kv, sid, blobs.get(key)) for sid, key in zip(sids, keys, strict=True)]
            bounds = [lo] * len(sids)
            if runs:  # nothing stored: no run to start at, and no bars either way
                bounds = [
                    lo if index is None else _run_start(self._coverage(kv, sid, blob)[0], lo, hi)
                    for index, sid, blob in zip(indexes, sids, map(blobs.get, keys), strict=True)
                ]
            wanted = [
                _wanted(index, start, hi, newest)
                for index, start in zip(indexes, bounds, strict=True)
            ]
            chunk_blobs = kv.get_many([c[3] for chosen in wanted for c in chosen])
            pieces: list[Piece] = []
            owners: list[int] = []
            counts = [0] * len(sids)
            healed = False
            reverse = newest is not None
            for k, (index, chosen) in enumerate(zip(indexes, wanted, strict=True)):
                if index is None:
                    continue
                bad = _first_bad(chosen, chunk_blobs, reverse=reverse)
                if bad is not None:
                    self._drop_chunks(kv, sids[k], index, [bad[0]], bad[1])
                    healed = True
                    continue
                if healed or bounds[k] > hi:
                    continue
                mine = _windows(chosen, chunk_blobs, bounds[k], hi)
                if forming and index["forming"] is not None:
                    mine.extend((None, p, 0, 1) for p in forming_piece(index, bounds[k], hi))
                if newest is not None:
                    mine = _last_rows(mine, newest)
                pieces.extend(mine)
                owners.extend([k] * len(mine))
                counts[k] = sum(b - a for _, _, a, b in mine)
            if healed:
                continue
            (ts, vals), disorder = stack_chunks(pieces)
            if disorder is not None:
                k = owners[disorder]
                entry = pieces[disorder][0]
                assert entry is not None
                self._drop_chunks(kv, sids[k], indexes[k], [entry], DISORDER)
                continue
            return _Snapshot(indexes, np.array(counts, np.int64), ts, vals)
        names = ", ".join(sids)
        raise StoreError(f"series {names} changed {_READ_ATTEMPTS} times while being read")

    @guarded
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
        sid = sid_of(self.source, code, interval)
        lo_i, hi_i = as_range(lo, hi)
        snap = self._snapshot(self._backend, [sid], lo_i, hi_i, forming=forming)
        return as_frame(snap.ts, snap.vals)

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

    @guarded
    def read_arrays(
        self,
        keys: Sequence[SeriesKey],
        lo: int | None = None,
        hi: int | None = None,
        *,
        forming: bool = True,
        newest: int | None = None,
    ) -> ManyBars:
        """What :meth:`read_many` reads, as plain arrays (for callers that build their own
        frame without copying the bars again): see :class:`ManyBars`.

        ``newest`` answers a count request: of each series only the covered run that holds
        ``hi`` (from the forming bar onwards when ``hi`` is None), so that bars behind a hole
        in coverage are never stitched on, and of that run the newest ``newest`` bars.
        """
        lo, hi = as_range(lo, hi)
        series, sids = series_ids(self.source, keys)
        snap = self._snapshot(
            self._backend, sids, lo, hi, forming=forming, newest=newest, runs=newest is not None
        )
        return ManyBars(series, snap.counts, snap.ts, snap.vals)

    @guarded
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
        kv, sid = self._backend, sid_of(self.source, code, interval)
        empty = Newest(as_frame(*empty_arrays()), complete=False, run=None, fetched_at=None)
        for _ in range(_READ_ATTEMPTS):
            index = self._parse(kv, sid, kv.get(index_key(sid)))
            if index is None:
                return empty
            cov = index_coverage(index)
            use_forming = forming and cov.forming_ts is not None
            if hi is not None:
                top = as_int(hi, "hi")
            elif use_forming:
                top = POS_INF
            elif cov.segments:
                top = cov.segments[-1][1]
            else:
                return empty
            run = cov.run(top, forming=use_forming)
            if run is None:
                return empty
            snap = self._snapshot(kv, [sid], run[0], top, forming=use_forming, newest=n)
            loaded = snap.indexes[0]
            if loaded is None or loaded["rev"] != index["rev"]:
                continue  # a writer (or a heal) got in between: the coverage we used is stale
            ts, vals = snap.ts[-n:], snap.vals[:, -n:]
            with_forming = use_forming and ts.size > 0 and ts[-1] == cov.forming_ts
            return Newest(
                as_frame(ts, vals),
                complete=ts.size >= n or run[0] == NEG_INF,
                run=run,
                fetched_at=cov.fetched_at if with_forming else None,
            )
        raise StoreError(f"series {sid} changed {_READ_ATTEMPTS} times while being read")
