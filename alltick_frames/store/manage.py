"""Looking after the store: one row per series, deleting series, finding and repairing damage.

:class:`Management` is a part of :class:`~alltick_frames.store.BarStore`: these methods see
every source, not only the store's own, and none of them is on the path of a fetch.
:func:`salvage` copies what still passes every check out of a damaged database file.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from alltick_frames.core.intervals import Interval
from alltick_frames.store.backend import Backend, DiskBackend, ReadOnlyBackend, keys_of
from alltick_frames.store.codec import (
    BAR_BYTES,
    CHUNK_PREFIX,
    FORMAT_KEY,
    INDEX_PREFIX,
    Damaged,
    alias_of,
    checked_chunk,
    matches,
    parse_series_id,
)
from alltick_frames.store.health import guarded
from alltick_frames.store.location import StoreError
from alltick_frames.store.records import encode_index, parse_index, without_chunks

if TYPE_CHECKING:
    from alltick_frames.store.disk import BarStore


@dataclass(frozen=True, slots=True)
class VacuumReport:
    """What :meth:`BarStore.vacuum` found and did; ``str()`` says it in words.

    ``orphan_chunks``: pieces of bars no series refers to, removed. ``repaired_series``:
    series that lost pieces that were missing or failed their checks (``dropped_chunks``);
    those spans are fetched again. ``dropped_series``: series whose index could not be read,
    removed whole. ``foreign_entries``: entries this store never writes (a pickle, a value in
    a side file, a key of another kind), removed unread. ``notes``: anything else, such as a
    damaged database file moved aside and what was salvaged from it.
    """

    orphan_chunks: int = 0
    repaired_series: int = 0
    dropped_chunks: int = 0
    dropped_series: int = 0
    foreign_entries: int = 0
    notes: tuple[str, ...] = ()

    def __str__(self) -> str:
        done = list(self.notes)
        if self.dropped_series:
            done.append(f"removed {self.dropped_series} series whose index could not be read")
        if self.repaired_series:
            done.append(
                f"repaired {self.repaired_series} series by dropping {self.dropped_chunks} "
                "damaged or missing piece(s) of bars; those spans are fetched again"
            )
        if self.foreign_entries:
            done.append(
                f"removed {self.foreign_entries} entr{'y' if self.foreign_entries == 1 else 'ies'}"
                " this store never writes (planted by hand or by another program), unread"
            )
        if self.orphan_chunks:
            done.append(f"removed {self.orphan_chunks} orphaned piece(s) of bars")
        return "; ".join(done) if done else "found nothing to repair"


class Management:
    """Describe, clear and vacuum a store (see :class:`~alltick_frames.store.BarStore`)."""

    def _writable(self: BarStore, action: str) -> Backend:
        kv = self._backend
        if not kv.writable:
            raise StoreError(
                f"cannot {action} the cache at {self.directory}: it cannot be written (see the "
                "warning above); free some space or make it writable, then try again"
            )
        return kv

    @guarded
    def describe(
        self: BarStore,
        code: str | None = None,
        interval: str | Interval | None = None,
        source: str | None = None,
    ) -> pd.DataFrame:
        """One row per stored series (all sources unless filtered), sorted.

        Columns: ``source, code, interval``; ``bars`` (closed bars stored); ``first``/``last``
        (first and last closed bar, UTC); ``segments`` (covered spans); ``chunks`` (storage
        pieces: one lookup each when loading); ``floor`` (UTC);
        ``forming`` (the forming bar's start, UTC) and ``fetched_at`` (UTC, caller's clock);
        ``bytes`` (bar data size). A series whose index fails its checks is dropped (see
        :attr:`notes`), not listed.
        """
        kv = self._backend
        alias = None if interval is None else alias_of(interval)
        named = {}
        for key in keys_of(kv, INDEX_PREFIX):
            try:
                names = matches(key[len(INDEX_PREFIX) :], code, alias, source)
            except Damaged:  # not a key this store writes: vacuum removes it
                continue
            if names is not None:
                named[key] = names
        blobs = kv.get_many(list(named))
        rows = []
        for key, (src, c, a) in named.items():
            index = self._parse(kv, key[len(INDEX_PREFIX) :], blobs.get(key))
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

    @guarded
    def size_bytes(self: BarStore) -> int:
        """Bytes the bar store's database takes on disk (in memory, once it cannot be written)."""
        return self._backend.volume()

    @guarded
    def clear(
        self: BarStore,
        code: str | None = None,
        interval: str | Interval | None = None,
        source: str | None = None,
    ) -> int:
        """Delete stored series: all of them, or those matching every filter given (None
        matches anything; ``source`` too, so ``clear()`` empties every source, and removes
        whatever else is in the store). Returns how many series were deleted. Atomic: a
        concurrent writer's series is either deleted whole or written after the clear."""
        kv = self._writable("clear")
        alias = None if interval is None else alias_of(interval)
        everything = code is None and alias is None and source is None
        removed = 0
        with kv.transact():
            for key in kv.list_keys():
                if key == FORMAT_KEY:
                    continue
                is_index = isinstance(key, str) and key.startswith(INDEX_PREFIX)
                if not everything:
                    try:
                        if matches(_series_of(key), code, alias, source) is None:
                            continue
                    except Damaged:  # not a series: only clear() without filters removes it
                        continue
                kv.delete(key)
                removed += is_index
        return removed

    def vacuum(self: BarStore) -> VacuumReport:
        """Find and repair everything a store can suffer, and say what was done.

        SQLite's integrity check first: a damaged file is moved aside, and what still passes
        every check is copied into a new one (see :mod:`~alltick_frames.store.health`). Then
        every series is read whole: an index that fails its checks drops the series, a piece
        of bars that is missing or fails its checks drops its span (fetched again). Last, in
        one transaction, entries this store never writes and pieces no series refers to are
        removed. Reads every bar, so run it from maintenance code, not per request.
        StoreError if the store cannot be written.
        """
        mark = len(self.notes)
        counts = self._vacuum()
        notes = tuple(str(n) for n in self.notes[mark:] if n.code is None)
        return VacuumReport(**counts, notes=notes)

    @guarded
    def _vacuum(self: BarStore) -> dict[str, int]:
        kv = self._writable("vacuum")
        if isinstance(kv, DiskBackend):
            problems = kv.check()
            if problems:
                with self._lock:
                    self._backend = self._rebuild(kv, StoreError("; ".join(problems[:3])))
                kv = self._writable("vacuum")
        dropped = repaired = lost = 0
        for key in list(keys_of(kv, INDEX_PREFIX)):
            sid = key[len(INDEX_PREFIX) :]
            try:
                parse_series_id(sid)
            except Damaged:
                continue  # foreign: removed below
            index = self._parse(kv, sid, blob := kv.get(key))
            if index is None:
                dropped += blob is not None
                continue
            blobs = kv.get_many([c[3] for c in index["chunks"]])
            bad = [c for c in index["chunks"] if isinstance(checked_chunk(blobs.get(c[3]), c), str)]
            if bad and self._drop_chunks(kv, sid, index, bad, "pieces failed their checks"):
                repaired += 1
                lost += len(bad)
        foreign = orphans = 0
        with kv.transact():
            keys = kv.list_keys()
            referenced = {FORMAT_KEY}
            for key in keys:
                if isinstance(key, str) and key.startswith(INDEX_PREFIX):
                    sid = key[len(INDEX_PREFIX) :]
                    try:
                        parse_series_id(sid)
                        index = parse_index(kv.get(key), sid)
                    except Damaged:
                        continue  # not ours, or damaged since: removed below
                    referenced.add(key)
                    referenced.update(c[3] for c in index["chunks"])
            for key in keys:
                if key in referenced:
                    continue
                kv.delete(key)
                if isinstance(key, str) and key.startswith(CHUNK_PREFIX):
                    orphans += 1
                else:
                    foreign += 1
        return {
            "orphan_chunks": orphans,
            "repaired_series": repaired,
            "dropped_chunks": lost,
            "dropped_series": dropped,
            "foreign_entries": foreign,
        }


def _series_of(key: Any) -> str:
    """The series id in a store key; :class:`Damaged` for a key that holds none."""
    if isinstance(key, str):
        if key.startswith(INDEX_PREFIX):
            return key[len(INDEX_PREFIX) :]
        if key.startswith(CHUNK_PREFIX):
            return key[len(CHUNK_PREFIX) :].rsplit(":", 1)[0]
    raise Damaged(f"{key!r} is not a key of a series")


def salvage(damaged: Path, into: DiskBackend) -> tuple[int, int]:
    """Copy every series of the ``damaged`` database file that can still be read into
    ``into``, less the pieces that fail their checks; return ``(series, bars)`` copied.

    The file is opened read-only with plain SQL, and whatever cannot be read is left behind.
    A series ``into`` already holds (written since) is left as it is.
    """
    try:
        source = ReadOnlyBackend(damaged)
    except (sqlite3.Error, OSError):
        return 0, 0
    series = bars = 0
    try:
        for key in list(keys_of(source, INDEX_PREFIX)):
            try:
                index = parse_index(source.get(key), key[len(INDEX_PREFIX) :])
                blobs = source.get_many([c[3] for c in index["chunks"]])
            except (Damaged, sqlite3.Error):
                continue
            bad = [c for c in index["chunks"] if isinstance(checked_chunk(blobs.get(c[3]), c), str)]
            if bad:
                index = without_chunks(index, bad)
            with into.transact():
                if into.get(key) is not None:
                    continue
                for c in index["chunks"]:
                    into.set(c[3], blobs[c[3]])
                into.set(key, encode_index(index))
            series += 1
            bars += sum(c[2] for c in index["chunks"])
    except sqlite3.Error:  # the rest of the file cannot be read: keep what was copied
        pass
    finally:
        source.close()
    return series, bars
