"""Looking after the store: one row per series, deleting series, repairing damage.

:class:`Management` is a part of :class:`~alltick_frames.store.BarStore`: these methods see
every source, not only the store's own, and none of them is on the path of a fetch.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import diskcache
import numpy as np
import pandas as pd

from alltick_frames.core.intervals import Interval
from alltick_frames.store.codec import (
    BAR_BYTES,
    CHUNK_PREFIX,
    INDEX_PREFIX,
    alias_of,
    index_key,
    matches,
    without_chunks,
)


@dataclass(frozen=True, slots=True)
class VacuumReport:
    """What :meth:`BarStore.vacuum` removed or repaired."""

    orphan_chunks: int
    repaired_series: int


class Management:
    """Describe, clear and vacuum a store (see :class:`~alltick_frames.store.BarStore`)."""

    _cache: diskcache.Cache

    def _series_ids(self) -> Iterator[str]:
        for key in self._cache.iterkeys():
            if isinstance(key, str) and key.startswith(INDEX_PREFIX):
                yield key[len(INDEX_PREFIX) :]

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
        alias = None if interval is None else alias_of(interval)
        rows = []
        for sid in self._series_ids():
            names = matches(sid, code, alias, source)
            if names is None:
                continue
            src, c, a = names
            index = self._cache.get(index_key(sid))
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
                    "bytes": n * BAR_BYTES,
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
        alias = None if interval is None else alias_of(interval)
        removed = 0
        with self._cache.transact(retry=True):
            for key in list(self._cache.iterkeys()):
                if not isinstance(key, str):
                    continue
                if key.startswith(INDEX_PREFIX):
                    sid, is_index = key[len(INDEX_PREFIX) :], True
                elif key.startswith(CHUNK_PREFIX):
                    sid, is_index = key[len(CHUNK_PREFIX) :].rsplit(":", 1)[0], False
                else:
                    continue
                if matches(sid, code, alias, source) is None:
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
            chunk_keys = {k for k in keys if k.startswith(CHUNK_PREFIX)}
            referenced: set[str] = set()
            for key in keys:
                if not key.startswith(INDEX_PREFIX):
                    continue
                index = self._cache.get(key)
                if index is None:
                    continue
                missing = [c for c in index["chunks"] if c[3] not in chunk_keys]
                referenced.update(c[3] for c in index["chunks"])
                if missing:
                    self._cache.set(key, without_chunks(index, missing), retry=True)
                    repaired += 1
            for key in chunk_keys - referenced:
                self._cache.delete(key, retry=True)
                orphans += 1
        return VacuumReport(orphan_chunks=orphans, repaired_series=repaired)
