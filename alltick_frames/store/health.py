"""The store's hold on its database: opening it, and carrying on when it is damaged or unusable.

What each kind of trouble gets (the README's cache section says the same to users):

a damaged database file
    (truncated, a garbage header, garbage pages: SQLite says ``SQLITE_CORRUPT`` or
    ``SQLITE_NOTADB``, whenever it notices) is renamed ``cache.db.corrupt-<UTC time>``, a new
    one is started, and every series of the old file that still passes every check is copied
    into it. A :class:`CacheWarning` names both paths.
a database that cannot be written
    (a full disk, a read-only file or directory, no permission) is kept for reading, and the
    store carries on in memory: writes from then on are kept in this process only, so a job
    still returns everything it fetched. One :class:`CacheWarning` says so.
a cache directory other users can write
    is refused (:class:`~alltick_frames.store.location.UnsafeCacheDir`) unless ``shared=True``.
a store written by an older version
    (whose indexes were pickles, which this version never reads) is emptied once, with a
    :class:`CacheWarning`.
a damaged series
    (an index or a piece of bars that fails its checks, a missing piece) loses the damaged
    part: :meth:`Keeper._parse` drops a series whose index cannot be believed,
    :meth:`Keeper._drop_chunks` the span of a piece. What is dropped stops counting as
    covered, so the next fetch asks for it again. A :class:`Note` (no warning) says so; the
    client puts it in ``FetchStats.notes`` and fetches the series again at once.

Every public method of :class:`~alltick_frames.store.BarStore` runs under :func:`guarded`,
which hands SQLite's errors to :meth:`Keeper._recover` and runs the method once more on the
healed or in-memory store (writes made together, in one transaction, are rolled back and
made again one by one). Every event is kept in :attr:`Keeper.notes`.
"""

from __future__ import annotations

import contextlib
import functools
import sqlite3
import threading
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import pandas as pd

from alltick_frames.store.backend import (
    BULK_CACHE_PAGES,
    DB_NAME,
    READ_CACHE_PAGES,
    Backend,
    DiskBackend,
    MemoryBackend,
    ReadOnlyBackend,
    keys_of,
    move_aside,
    open_trouble,
    trouble,
)
from alltick_frames.store.codec import (
    FORMAT_KEY,
    STORE_FORMAT,
    ChunkEntry,
    Damaged,
    chunk_prefix,
    index_key,
    parse_series_id,
)
from alltick_frames.store.location import UnsafeCacheDir, default_cache_dir, prepare_root
from alltick_frames.store.records import encode_index, parse_index, without_chunks

T = TypeVar("T")

#: A series' index record, as :func:`~alltick_frames.store.records.parse_index` returns it.
Index = dict[str, Any]
#: Series whose index record a store remembers parsed (:meth:`Keeper._parse`): the newest
#: record of each, about 1 KB (a series of a few chunks) to 30 KB (a hundred chunks).
_PARSED = 1 << 15


class Parsed:
    """A series' newest index record as remembered: its bytes, the record parsed, and what
    the store derives from it once (its coverage, see ``BarStore._coverage``)."""

    __slots__ = ("blob", "derived", "index")

    def __init__(self, blob: bytes, index: Index) -> None:
        self.blob, self.index = blob, index
        self.derived: Any = None


class CacheWarning(UserWarning):
    """The cache was damaged or cannot be written; the message says what was done about it."""


class Note(NamedTuple):
    """Something the store healed or worked around; ``code`` and ``interval`` name the series
    (None for the whole store)."""

    source: str | None
    code: str | None
    interval: str | None
    text: str

    def __str__(self) -> str:
        return self.text if self.code is None else f"{self.code} {self.interval}: {self.text}"


class Keeper:
    """Opens the store's database and keeps it usable (see the module docstring)."""

    root: Path
    directory: Path
    source: str

    def _start(self, directory: str | Path | None, source: str, shared: bool) -> None:
        self.root = Path(directory).expanduser() if directory is not None else default_cache_dir()
        self.directory = self.root / "bars"
        self.source = source
        self.shared = shared
        #: What the store healed or worked around, oldest first (a job reports its own).
        self.notes: list[Note] = []
        self._lock = threading.Lock()
        self._parsed: dict[str, Parsed] = {}
        #: Set on the thread that runs :meth:`~alltick_frames.store.BarStore.write_together`.
        self._together = threading.local()
        #: The index records this thread read last in bulk, with the database's stamp from
        #: before (:meth:`_read_indexes`).
        self._indexes_seen = threading.local()
        self._backend: Backend = self._open()

    @contextlib.contextmanager
    def passing(self) -> Iterator[None]:
        """Reads on this thread inside the block go through a small page cache: for a read of
        bars just written, read once, which would otherwise fill SQLite's cache (32 MB) and
        stay resident beside the frame it builds."""
        kv = self._backend
        if not isinstance(kv, DiskBackend):
            yield
            return
        kv.cache_pages(BULK_CACHE_PAGES)
        try:
            yield
        finally:
            with contextlib.suppress(sqlite3.Error):  # a database in trouble: it is healed
                kv.shrink()  # the pages read once, freed before the frame takes memory
                kv.cache_pages(READ_CACHE_PAGES)

    def shrink(self) -> None:
        """Free what this thread's database connection holds in SQLite's page cache: call it
        on a thread that wrote in bulk (up to 8 MB, see
        :data:`~alltick_frames.store.backend.BULK_CACHE_PAGES`) once its writes are done, so
        that the pages it wrote do not stay resident beside the frame read from them."""
        kv = self._backend
        if isinstance(kv, DiskBackend):
            with contextlib.suppress(sqlite3.Error):  # a database in trouble: it is healed
                kv.shrink()

    @property
    def writable(self) -> bool:
        """Whether writes reach the disk (False once the store carries on in memory)."""
        return self._backend.writable

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.root)!r}, source={self.source!r})"

    def close(self) -> None:
        """Close this thread's database connection (the store reopens it if used again)."""
        self._backend.close()

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ------------------------------------------------------------------------- events

    def _note(self, sid: str | None, text: str) -> None:
        names: tuple[str | None, ...] = (None, None, None)
        if sid is not None:
            try:
                names = parse_series_id(sid)
            except Damaged:
                names = (None, sid, "")
        self.notes.append(Note(*names, text))

    def _warn(self, text: str) -> None:
        self._note(None, text)
        warnings.warn(text, CacheWarning, stacklevel=4)

    # ------------------------------------------------------------------------- opening

    def _open(self) -> Backend:
        """The database, made ready: created, checked, rebuilt or replaced by memory."""
        try:
            prepare_root(self.root, shared=self.shared)
            return self._adopt(DiskBackend(self.directory))
        except UnsafeCacheDir:
            raise
        except Exception as exc:
            kind = open_trouble(exc)
            if kind == "damaged":
                return self._rebuild(None, exc)
            if kind == "unavailable":
                return self._fallback(None, exc)
            raise

    def _adopt(self, backend: DiskBackend) -> Backend:
        """``backend`` once its layout is this version's: an empty store is marked as such; a
        store of an older version is emptied; one of a newer version is left alone (the store
        carries on in memory)."""
        marker = backend.get(FORMAT_KEY)
        if marker == STORE_FORMAT:
            return backend
        if isinstance(marker, bytes) and marker.isdigit() and int(marker) > int(STORE_FORMAT):
            backend.close()
            self._warn(
                f"the cache at {self.directory} was written by a newer version of "
                f"alltick-frames (format {marker.decode()}): running without it"
            )
            return MemoryBackend(None)
        with backend.transact():
            marker = backend.get(FORMAT_KEY)  # again, now that no other writer can get in
            if marker == STORE_FORMAT:
                return backend
            old = [k for k in backend.list_keys() if k != FORMAT_KEY]
            for key in old if marker is None else ():
                backend.delete(key)
            backend.set(FORMAT_KEY, STORE_FORMAT)
        if marker is None and old:
            self._warn(
                f"emptied the cache at {self.directory}: an older version wrote it in a format "
                "this one does not read (pickles); its bars are fetched again"
            )
        return backend

    def _fallback(self, base: Backend | None, why: BaseException) -> MemoryBackend:
        """Carry on in memory over ``base`` (or the database opened read-only), with a warning."""
        if base is None:
            try:
                readable = ReadOnlyBackend(self.directory / DB_NAME)
                base = readable if readable.get(FORMAT_KEY) == STORE_FORMAT else None
            except Exception:  # nothing readable there: memory alone
                base = None
        self._warn(
            f"cannot write the cache at {self.directory} ({why}): carrying on without writing "
            "to it; bars fetched from now on are kept in memory only"
        )
        return MemoryBackend(base)

    def _rebuild(self, failed: DiskBackend | None, why: BaseException) -> Backend:
        """Move a damaged database aside, start a new one and copy in what still passes every
        check; memory when that cannot be done."""
        from alltick_frames.store.manage import salvage

        db = self.directory / DB_NAME
        if failed is not None:
            failed.close()
        try:
            moved = failed is None or (db.exists() and db.stat().st_ino == failed.inode)
            aside = move_aside(db) if moved else None  # else another process moved it first
            fresh = self._adopt(DiskBackend(self.directory))
        except Exception as exc:
            if open_trouble(exc) is None and not isinstance(exc, OSError):
                raise
            return self._fallback(None, exc)
        if aside is None:
            return fresh
        kept = salvage(aside, fresh) if isinstance(fresh, DiskBackend) else (0, 0)
        self._warn(
            f"the cache database {db} was damaged ({why}): moved it aside to {aside} and "
            f"started a new one, keeping the {kept[0]} series ({kept[1]} bars) that passed "
            "every check; the rest is fetched again"
        )
        return fresh

    def _recover(self, failed: Backend, exc: BaseException) -> bool:
        """Heal or work around the trouble ``exc`` found in ``failed``; False when ``exc`` is
        not the store's to heal."""
        kind = trouble(exc)
        if kind is None:
            return False
        with self._lock:
            if self._backend is not failed:  # another thread has dealt with it
                return True
            if kind == "damaged" and isinstance(failed, DiskBackend):
                self._backend = self._rebuild(failed, exc)
            elif isinstance(failed, MemoryBackend):
                return False
            else:
                self._backend = self._fallback(failed if kind == "unavailable" else None, exc)
        return True

    # ------------------------------------------------------------------------- series

    def _read_indexes(self, kv: Backend, keys: list[str], *, remember: bool) -> dict[str, Any]:
        """The values of index ``keys`` (absent: no record), as :meth:`Backend.get_many`.

        A warm read plans against the index records and then reads its answer from them:
        the second read of the same records is skipped when the database has not changed
        since the first (:meth:`DiskBackend.stamp`, taken *before* that read, so a commit
        that slipped in between makes the stamps differ and the records are read again).
        ``remember`` keeps what was read for the next call on this thread.
        """
        stamp = kv.stamp() if isinstance(kv, DiskBackend) else None
        seen = self._indexes_seen.__dict__.get("last")
        if (
            stamp is not None
            and seen is not None
            and seen[0] is kv
            and seen[1] == stamp
            and seen[2].issuperset(keys)
        ):
            blobs = seen[3]
            return {k: blobs[k] for k in keys if k in blobs}
        blobs = kv.get_many(keys)
        self._indexes_seen.last = (kv, stamp, set(keys), blobs) if remember and stamp else None
        return blobs

    def _parse(self, kv: Backend, sid: str, blob: object) -> Index | None:
        """The checked index record in ``blob`` (None if absent); a damaged one is dropped.

        The newest record of each series is remembered with its bytes (which hold a fresh
        revision id and a checksum, so the same bytes are the same record): planning a
        request and reading its answer parse each series' record once, not three times, and
        a write finds the record it wrote last (:meth:`_remember`) without parsing it. One
        record a series, not one a revision: a series written a hundred times keeps one.
        """
        if blob is None:
            return None
        known = self._parsed.get(sid) if type(blob) is bytes else None
        if known is not None and known.blob == blob:
            return known.index
        try:
            index = parse_index(blob, sid)
        except Damaged as exc:
            self._drop_series(kv, sid, blob, str(exc))
            return None
        if type(blob) is bytes:
            self._remember(sid, blob, index)
        return index

    def _remember(self, sid: str, blob: bytes, index: Index) -> None:
        """Remember ``index`` as the record whose bytes are ``blob`` (parsed, or just
        written: the next read of the series compares the bytes, so a write that was rolled
        back is never believed)."""
        parsed = self._parsed
        if sid not in parsed and len(parsed) >= _PARSED:
            with contextlib.suppress(RuntimeError, StopIteration):  # another thread's change
                parsed.pop(next(iter(parsed)), None)  # the oldest one
        parsed[sid] = Parsed(blob, index)

    def _drop_series(self, kv: Backend, sid: str, seen: object, why: str) -> None:
        """Delete a series whose index is damaged, with its chunks, unless a writer has
        replaced the index since it was read as ``seen``."""
        with kv.transact():
            if kv.get(index_key(sid)) != seen:
                return
            kv.delete(index_key(sid))
            for key in list(keys_of(kv, chunk_prefix(sid))):
                kv.delete(key)
        self._note(sid, f"{why}: dropped the series, so it is fetched again")

    def _drop_chunks(
        self, kv: Backend, sid: str, index: Index, lost: list[ChunkEntry], why: str
    ) -> Index | None:
        """Take ``lost`` chunks out of the series, their spans out of its coverage; return
        the healed index. Nothing when a writer has changed the index since ``index`` was read
        (the chunk may have gone with that write): None, so read again."""
        with kv.transact():
            current = self._parse(kv, sid, kv.get(index_key(sid)))
            if current is None or current["rev"] != index["rev"]:
                return None
            healed = without_chunks(current, lost)
            kv.set(index_key(sid), encode_index(healed))
            for c in lost:
                kv.delete(c[3])
        spans = ", ".join(f"{_utc(c[0])} to {_utc(c[1])}" for c in lost)
        self._note(sid, f"{why}: dropped its bars from {spans}, so they are fetched again")
        return healed


def guarded(method: Callable[..., T]) -> Callable[..., T]:
    """Run a store method; if SQLite reports damage or a disk it cannot write, heal or work
    around it (:meth:`Keeper._recover`) and run the method once more."""

    @functools.wraps(method)
    def run(self: Keeper, *args: Any, **kwargs: Any) -> T:
        if getattr(self._together, "active", False):  # write_together heals, then replays
            return method(self, *args, **kwargs)
        backend = self._backend
        try:
            return method(self, *args, **kwargs)
        except Exception as exc:
            if not self._recover(backend, exc):
                raise
        return method(self, *args, **kwargs)

    return run


def _utc(ts: int) -> str:
    return pd.Timestamp(ts, unit="s", tz="UTC").strftime("%Y-%m-%d %H:%M")
