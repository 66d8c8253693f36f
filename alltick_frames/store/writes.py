"""Writing to the bar store (:class:`Writing`, a part of :class:`~alltick_frames.store.BarStore`):
one fetch's bars, span, floor and forming bar, recorded atomically.

A write folds its bars into the chunks it overlaps, and into a neighbour only when one of the
two is small (:func:`folds`): each page of a series paged back is written once, while
refreshes one bar at a time gather in the newest chunk (see
:mod:`alltick_frames.store.codec` and ``benchmarks/store_chunks.py``).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from alltick_frames.core.intervals import Interval
from alltick_frames.store.backend import BULK_CACHE_PAGES, Backend, DiskBackend
from alltick_frames.store.codec import (
    CHUNK_BARS,
    MIN_CHUNK,
    Arrays,
    as_int,
    checked_chunk,
    chunk_entry,
    chunk_prefix,
    clip,
    concat,
    empty_arrays,
    encode,
    index_key,
    rows,
    sid_of,
    sort_bars,
    to_arrays,
)
from alltick_frames.store.coverage import Coverage, Span, merge_spans
from alltick_frames.store.health import Index, guarded
from alltick_frames.store.records import (
    empty_index,
    encode_index,
    index_coverage,
    new_revision,
)

if TYPE_CHECKING:
    from alltick_frames.store.disk import BarStore


def folds(bars: int, neighbour: int) -> bool:
    """Whether a write of ``bars`` bars is folded together with a neighbouring chunk of
    ``neighbour`` bars: only when one of them is small, so that paging a series back writes
    each page once (write amplification near 1), while refreshes one bar at a time gather in
    one chunk instead of making a chunk each (few lookups per load)."""
    return min(bars, neighbour) < MIN_CHUNK and bars + neighbour <= CHUNK_BARS


class Writing:
    """:meth:`write` and :meth:`write_together` (see :class:`~alltick_frames.store.BarStore`)."""

    def write_together(self: BarStore, writes: Sequence[Callable[[], object]]) -> None:
        """Run ``writes`` (each a callable that makes :meth:`write` calls) in one SQLite
        transaction: a commit costs about as much as writing a page of bars, so a batch of
        pages commits once. A kill leaves all of them written or none.

        When SQLite reports trouble (a damaged database, a full or read-only disk), the
        transaction is rolled back, the store heals or carries on in memory as
        :meth:`write` would, and every one of ``writes`` runs again on its own: nothing is
        lost, and a write made twice changes nothing (it merges the same bars again).
        """
        kv = self._backend
        together = self._together
        try:
            if isinstance(kv, DiskBackend):
                kv.cache_pages(BULK_CACHE_PAGES)
            together.active = True
            with kv.transact():
                for write in writes:
                    write()
            return
        except Exception as exc:
            if not self._recover(kv, exc):
                raise
        finally:
            together.active = False
        for write in writes:
            write()

    @guarded
    def write(
        self: BarStore,
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
        On a full or read-only disk the write is kept in memory instead (see
        :mod:`~alltick_frames.store.health`).
        """
        sid = sid_of(self.source, code, interval)
        if (lo is None) != (hi is None):
            raise ValueError("give both lo and hi (the closed span the bars cover), or neither")
        span: Span | None = None
        ts, vals = empty_arrays()
        if lo is not None and hi is not None:
            span = (as_int(lo, "lo"), as_int(hi, "hi"))
            if span[0] > span[1]:
                raise ValueError(f"lo ({span[0]}) is after hi ({span[1]})")
            if bars is not None:
                ts, vals = clip(*to_arrays(bars), *span)
        elif bars is not None and rows(bars):
            raise ValueError("bars need the closed span [lo, hi] they cover")
        floor = None if floor is None else as_int(floor, "floor")
        form: tuple[Any, ...] | None = None
        if forming is not None and rows(forming):
            if rows(forming) != 1:
                raise ValueError(f"forming must be one bar, got {rows(forming)} rows")
            if fetched_at is None:
                raise ValueError("a forming bar needs fetched_at (the caller's clock, seconds)")
            f_ts, f_vals = to_arrays(forming)
            form = (int(f_ts[0]), float(fetched_at), *(float(v) for v in f_vals[:, 0]))
        kv = self._backend
        with kv.transact():
            index = self._write_locked(kv, sid, ts, vals, span, floor, form)
        return index_coverage(index)

    def _write_locked(
        self: BarStore,
        kv: Backend,
        sid: str,
        ts: np.ndarray,
        vals: np.ndarray,
        span: Span | None,
        floor: int | None,
        form: tuple[Any, ...] | None,
    ) -> Index:
        """The read-merge-write of one series; the caller holds the write transaction."""
        index = self._parse(kv, sid, kv.get(index_key(sid))) or empty_index()
        chunks = list(index["chunks"])
        replaced: list[str] = []
        if ts.size:
            first, last = int(ts[0]), int(ts[-1])
            while True:  # until every chunk to merge with passes its checks
                chunks = list(index["chunks"])
                i = next((k for k, c in enumerate(chunks) if c[1] >= first), len(chunks))
                j = next((k for k in range(i, len(chunks)) if chunks[k][0] > last), len(chunks))
                total = ts.size + sum(c[2] for c in chunks[i:j])
                while i > 0 and folds(total, chunks[i - 1][2]):
                    i -= 1
                    total += chunks[i][2]
                while j < len(chunks) and folds(total, chunks[j][2]):
                    total += chunks[j][2]
                    j += 1
                group = chunks[i:j]
                blobs = kv.get_many([c[3] for c in group])
                got = [checked_chunk(blobs.get(c[3]), c) for c in group]
                bad = [(c, why) for c, why in zip(group, got, strict=True) if isinstance(why, str)]
                if not bad:
                    break
                # We hold the write lock, so the index cannot have changed under us.
                healed = self._drop_chunks(kv, sid, index, [c for c, _ in bad], bad[0][1])
                assert healed is not None
                index = healed
            pieces = [*(p for p in got if not isinstance(p, str)), (ts, vals)]
            all_ts, all_vals = sort_bars(*concat(pieces))
            fresh = []
            parts = -(-all_ts.size // CHUNK_BARS)
            for part_ts, part_vals in zip(
                np.array_split(all_ts, parts), np.array_split(all_vals, parts, axis=1), strict=True
            ):
                key = f"{chunk_prefix(sid)}{uuid.uuid4().hex}"
                buf = encode(part_ts, part_vals)
                kv.set(key, buf)
                fresh.append(chunk_entry(part_ts, buf, key))
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

        new = new_revision(
            index,
            segments=tuple(segments),
            floor=index_floor,
            forming=current,
            chunks=tuple(chunks),
        )
        blob = encode_index(new)
        kv.set(index_key(sid), blob)
        for key in replaced:
            kv.delete(key)
        self._remember(sid, blob, new)  # the next write of the series need not parse it
        return new
