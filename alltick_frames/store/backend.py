"""Where the store's bytes live: SQLite through diskcache, or memory once the disk fails.

Every backend maps string keys to bytes and offers the same few operations; the
:class:`~alltick_frames.store.BarStore` above them decides what the bytes mean.

:class:`DiskBackend`
    The SQLite database of a :class:`diskcache.Cache` with :class:`SafeDisk` as its
    serializer: string keys and byte values, always inside SQLite. diskcache's own
    :class:`~diskcache.Disk` would unpickle any row whose key or value was stored as a pickle,
    and open or delete any side file a row names: whoever can write the cache directory could
    make that run code or delete files. :class:`SafeDisk` does neither. Reads bypass diskcache
    with plain SQL that hands back a row's bytes only when the row holds plain bytes
    (:data:`FOREIGN` otherwise), so no read path can reach a pickle.
:class:`ReadOnlyBackend`
    The same database opened read-only, for a cache the process may read but not write.
:class:`MemoryBackend`
    Keys in this process's memory, over a backend that can still be read: what the store
    falls back on when the disk is full or read-only, so a job keeps what it fetched.

:func:`trouble` sorts SQLite's errors into a damaged database (move it aside, rebuild) and an
unavailable one (carry on in memory); :func:`move_aside` does the moving.
"""

from __future__ import annotations

import contextlib
import errno
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal, NamedTuple

import diskcache

#: Keys per bulk SELECT (SQLite builds before 3.32 allow 999 parameters per statement).
_SQL_BATCH = 900
#: diskcache's database file in the store's directory.
DB_NAME = diskcache.core.DBNAME
_MODE_RAW = diskcache.core.MODE_RAW
#: A row holds plain bytes when its value is a blob kept inside SQLite.
_PLAIN = "mode = 1 AND filename IS NULL AND typeof(value) = 'blob'"


#: A plain row, inserted or replaced in place (the unique index diskcache keeps on key and
#: raw decides which); diskcache's triggers keep its count and size as its own set would.
_UPSERT = (
    "INSERT INTO Cache(key, raw, store_time, expire_time, access_time, access_count, tag,"
    " size, mode, filename, value) VALUES (?, 1, ?, NULL, ?, 0, NULL, 0, 1, NULL, ?)"
    " ON CONFLICT(key, raw) DO UPDATE SET store_time = excluded.store_time,"
    " expire_time = NULL, access_time = excluded.access_time, access_count = 0, tag = NULL,"
    " size = 0, mode = 1, filename = NULL, value = excluded.value"
)


class ForeignKey(NamedTuple):
    """A key this store did not write (not a plain string), as stored: never unpickled."""

    key: Any
    raw: int


class _Foreign:
    """The value of a row this store did not write: a pickle, text, a number, a side file."""

    def __repr__(self) -> str:
        return "FOREIGN"


#: What reads return for a value that is not plain bytes in SQLite (never opened or unpickled).
FOREIGN = _Foreign()


class SafeDisk(diskcache.Disk):
    """diskcache's serializer, cut down to what the store writes: string keys, byte values
    kept inside SQLite. It never pickles or unpickles, and never opens or removes a file.

    Settings in the database meant for diskcache's own serializer (``disk_*``) are ignored.
    """

    def __init__(self, directory: str, **_ignored: Any) -> None:
        super().__init__(directory)

    def put(self, key: Any) -> tuple[Any, bool]:
        if isinstance(key, ForeignKey):  # so that vacuum can delete it as it is
            return key.key, bool(key.raw)
        if type(key) is not str:
            raise TypeError(f"store keys are strings, not {type(key).__name__}")
        return key, True

    def get(self, key: Any, raw: bool) -> Any:
        return key if raw and type(key) is str else ForeignKey(key, int(raw))

    def store(self, value: Any, read: bool, key: Any = None) -> tuple[int, int, None, Any]:
        if type(value) is not bytes:
            raise TypeError(f"store values are bytes, not {type(value).__name__}")
        return 0, _MODE_RAW, None, sqlite3.Binary(value)

    def fetch(self, mode: int, filename: str | None, value: Any, read: bool) -> Any:
        plain = mode == _MODE_RAW and filename is None and type(value) is bytes
        return value if plain else FOREIGN

    def remove(self, file_path: str) -> None:
        """Nothing: this store writes no files, so a file a row names was put there by hand,
        and deleting it could delete anything."""

    def filename(self, key: Any = None, value: Any = None) -> tuple[str, str]:
        raise TypeError("this store keeps every value inside SQLite")


# --------------------------------------------------------------------------------- errors

#: SQLite's primary result codes for a damaged database file, and for one that cannot be used
#: now (a full disk, a read-only file or directory, I/O errors, no permission).
_DAMAGED = {sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB}
_UNAVAILABLE = {
    sqlite3.SQLITE_FULL,
    sqlite3.SQLITE_READONLY,
    sqlite3.SQLITE_CANTOPEN,
    sqlite3.SQLITE_IOERR,
    sqlite3.SQLITE_PERM,
}
_UNAVAILABLE_ERRNO = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT}


Trouble = Literal["damaged", "unavailable"]


def trouble(exc: BaseException) -> Trouble | None:
    """Whether ``exc`` says the database is damaged, or cannot be used now; None otherwise
    (a bug, a busy database: those are not the store's to heal).

    The errors ``exc`` was raised while handling count too: SQLite may roll a transaction
    back by itself after a full disk, and the ROLLBACK that follows then fails in its turn.
    """
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, sqlite3.Error):
            code = getattr(seen, "sqlite_errorcode", None)
            primary = None if code is None else code & 0xFF
            if primary in _DAMAGED:
                return "damaged"
            if primary in _UNAVAILABLE:
                return "unavailable"
        elif isinstance(seen, OSError) and seen.errno in _UNAVAILABLE_ERRNO:
            return "unavailable"
        seen = seen.__context__
    return None


def open_trouble(exc: BaseException) -> Trouble | None:
    """:func:`trouble` of an error raised while opening the database, where diskcache also
    applies the settings stored in it: settings it cannot apply (planted by hand) mean a
    damaged file too."""
    kind = trouble(exc)
    if kind is None and isinstance(
        exc, sqlite3.Warning | sqlite3.ProgrammingError | AttributeError | TypeError | ValueError
    ):
        return "damaged"
    return kind


def move_aside(db: Path) -> Path:
    """Rename a damaged database (and its ``-wal`` and ``-shm`` files) to
    ``cache.db.corrupt-<UTC time>``, keeping it for inspection; return the new path."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    aside = db.with_name(f"{db.name}.corrupt-{stamp}")
    n = 1
    while aside.exists():
        n += 1
        aside = db.with_name(f"{db.name}.corrupt-{stamp}-{n}")
    for suffix in ("-wal", "-shm", ""):
        with contextlib.suppress(FileNotFoundError):
            Path(f"{db}{suffix}").rename(f"{aside}{suffix}")
    return aside


# --------------------------------------------------------------------------------- reading


#: Runs one statement with its parameters and returns every row.
Query = Callable[[str, Sequence[Any]], list[Any]]


def _select_values(query: Query, keys: list[str]) -> dict[str, Any]:
    """Values of the string keys among ``keys``: bytes, or :data:`FOREIGN` for a row that
    does not hold plain bytes (it is never unpickled or opened)."""
    found: dict[str, Any] = {}
    for start in range(0, len(keys), _SQL_BATCH):
        part = keys[start : start + _SQL_BATCH]
        rows = query(
            f"SELECT key, {_PLAIN}, value FROM Cache WHERE raw = 1"
            f" AND key IN ({','.join('?' * len(part))})",
            part,
        )
        for key, plain, value in rows:
            found[key] = value if plain else FOREIGN
    return found


def _select_keys(query: Query, prefix: str) -> list[str | ForeignKey]:
    """Every key starting with ``prefix`` (all keys when it is empty); keys that are not
    plain strings come as :class:`ForeignKey`, only when ``prefix`` is empty."""
    if prefix:
        upper = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        rows = query(
            "SELECT key, raw FROM Cache WHERE raw = 1 AND key >= ? AND key < ?", (prefix, upper)
        )
    else:
        rows = query("SELECT key, raw FROM Cache", ())
    return [k if raw == 1 and type(k) is str else ForeignKey(k, raw) for k, raw in rows]


#: SQLite's page cache of each connection that reads (4 KB pages: diskcache's 32 MB): a warm
#: store of up to that size is read from memory after its first read.
READ_CACHE_PAGES = 8192
#: The page cache of a connection that writes pages in bulk (a job's writer thread, see
#: :meth:`DiskBackend.cache_pages`): a transaction's pages (a batch of 128 pages is 3.6 MB), not a
#: copy of what it wrote, which nobody reads there.
BULK_CACHE_PAGES = 2048


class DiskBackend:
    """The store's database in ``directory`` (created if missing); see the module docstring.

    SQLite maps no part of the file into memory (diskcache maps 64 MB): mapped pages count in
    the process's resident memory, beside the frames the store is read into, and reads
    through the page cache are as fast once it holds them.
    """

    writable = True

    def __init__(self, directory: Path) -> None:
        self.path = directory / DB_NAME
        self.cache = diskcache.Cache(
            str(directory),
            disk=SafeDisk,
            eviction_policy="none",  # closed bars are kept for good; clear() is explicit
            size_limit=2**50,
            # Reads through SQLite's page cache, not a memory map: a warm read of bars that
            # fit in it (32 MB) then copies them once, where a map costs a page fault per
            # 4 KB each time (twice as long); larger reads take about as long either way.
            sqlite_mmap_size=0,
            statistics=False,
            tag_index=False,
            sqlite_cache_size=READ_CACHE_PAGES,
        )
        self.inode = self.path.stat().st_ino
        self._sized = threading.local()

    def cache_pages(self, pages: int) -> None:
        """Size this thread's page cache (in 4 KB pages); a smaller size frees what is over.
        Writers in bulk (:data:`BULK_CACHE_PAGES`) and reads of bars just written hold a
        small cache, since nobody reads those pages there again."""
        con = self.cache._con  # this thread's connection
        if self._sized.__dict__.get("con") is not con or self._sized.pages != pages:
            con.execute(f"PRAGMA cache_size = {int(pages)}")
            self._sized.con, self._sized.pages = con, pages

    def shrink(self) -> None:
        """Free what this thread's connection holds in its page cache (``PRAGMA
        shrink_memory``): pages it wrote or read once, which nobody reads there again. Its
        cache size is kept; it fills again as it is used."""
        con = self.cache._con  # this thread's connection
        con.execute("PRAGMA shrink_memory")

    def _query(self, sql: str, args: Sequence[Any]) -> list[Any]:
        return self.cache._sql(sql, args).fetchall()  # this thread's connection

    def stamp(self) -> tuple[int, int]:
        """What changes whenever the database may have, seen from this thread's connection:
        SQLite's ``data_version`` (it moves when another connection, in this process or
        another, commits) and the connection's own count of changed rows. Two equal stamps
        mean nothing was written in between, so values read after the first are still
        current (a warm read's answer reuses the index records its planning read)."""
        con = self.cache._con
        (version,) = con.execute("PRAGMA data_version").fetchone()
        return int(version), con.total_changes

    def get(self, key: str) -> Any:
        return _select_values(self._query, [key]).get(key)

    def get_many(self, keys: list[str]) -> dict[str, Any]:
        """Values of many keys in a few statements (a ``get`` costs a SQLite round trip, about
        as much as decoding its bars); missing keys are absent. One key is one ``get``."""
        if len(keys) == 1:
            value = self.get(keys[0])
            return {} if value is None else {keys[0]: value}
        return _select_values(self._query, keys)

    def list_keys(self, prefix: str = "") -> list[str | ForeignKey]:
        return _select_keys(self._query, prefix)

    def set(self, key: str, value: bytes) -> None:
        """Store ``value`` under ``key`` in one statement (diskcache's ``set`` takes three: a
        page's write makes two). The row is what diskcache's ``set`` would leave with
        :class:`SafeDisk`: plain bytes inside SQLite, no expiry, no side file (a row that
        named one is overwritten, its file never touched)."""
        if type(key) is not str:
            raise TypeError(f"store keys are strings, not {type(key).__name__}")
        if type(value) is not bytes:
            raise TypeError(f"store values are bytes, not {type(value).__name__}")
        now = time.time()
        self.cache._sql(_UPSERT, (key, now, now, value))

    def delete(self, key: str | ForeignKey) -> None:
        if type(key) is str:  # one statement; a foreign key goes through diskcache as stored
            self.cache._sql("DELETE FROM Cache WHERE key = ? AND raw = 1", (key,))
        else:
            self.cache.delete(key, retry=True)

    def transact(self) -> contextlib.AbstractContextManager[Any]:
        """One SQLite write transaction (nested calls join it), shared by processes."""
        return self.cache.transact(retry=True)

    def volume(self) -> int:
        return int(self.cache.volume())

    def check(self) -> list[str]:
        """SQLite's own integrity check: what it found wrong (empty when the file is sound)."""
        rows = self.cache._sql("PRAGMA integrity_check").fetchall()
        return [] if rows == [("ok",)] else [str(r[0]) for r in rows]

    def close(self) -> None:
        self.cache.close()


class ReadOnlyBackend:
    """A store's database opened read-only (``mode=ro``): reads as :class:`DiskBackend` does,
    no writes. One connection, shared by threads under a lock."""

    writable = False

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        # A WAL database in a read-only directory opens read-only only if its -shm file
        # exists; failing that, as immutable (nobody can write it there anyway).
        for flags in ("mode=ro", "immutable=1"):
            self._con = sqlite3.connect(
                f"{path.resolve().as_uri()}?{flags}", uri=True, check_same_thread=False
            )
            try:
                self._query("SELECT count(*) FROM Cache", ())  # fails now if it cannot be read
                return
            except sqlite3.Error:
                self._con.close()
                if flags == "immutable=1":
                    raise

    def _query(self, sql: str, args: Sequence[Any]) -> list[Any]:
        with self._lock:
            return self._con.execute(sql, args).fetchall()

    def get(self, key: str) -> Any:
        return _select_values(self._query, [key]).get(key)

    def get_many(self, keys: list[str]) -> dict[str, Any]:
        return _select_values(self._query, keys)

    def list_keys(self, prefix: str = "") -> list[str | ForeignKey]:
        return _select_keys(self._query, prefix)

    def volume(self) -> int:
        return self.path.stat().st_size

    def close(self) -> None:
        self._con.close()


class MemoryBackend:
    """Keys in this process's memory, over ``base`` (read, never written) if it is given.

    Writes and deletes stay here; reads see them first, then ``base``. A ``base`` that fails
    to read is dropped: from then on only what this process wrote is seen.
    """

    writable = False

    def __init__(self, base: DiskBackend | ReadOnlyBackend | None) -> None:
        self.base = base
        self._data: dict[str | ForeignKey, bytes | None] = {}  # None: deleted here
        self._lock = threading.RLock()

    def _from_base(self, read: Any, empty: Any) -> Any:
        if self.base is None:
            return empty
        try:
            return read(self.base)
        except (sqlite3.Error, OSError):
            self.base = None
            return empty

    def get(self, key: str) -> Any:
        return self.get_many([key]).get(key)

    def get_many(self, keys: list[str]) -> dict[str, Any]:
        with self._lock:
            here = {k: self._data[k] for k in keys if k in self._data}
            rest = [k for k in keys if k not in here]
            found = self._from_base(lambda b: b.get_many(rest), {}) if rest else {}
        found.update((k, v) for k, v in here.items() if v is not None)
        return found

    def list_keys(self, prefix: str = "") -> list[str | ForeignKey]:
        with self._lock:
            seen = self._from_base(lambda b: b.list_keys(prefix), [])
            mine = [k for k in self._data if isinstance(k, str) and k.startswith(prefix)]
            every = list(dict.fromkeys([*seen, *mine]))
            return [k for k in every if self._data.get(k, b"") is not None]

    def set(self, key: str, value: bytes) -> None:
        with self._lock:
            self._data[key] = value

    def delete(self, key: str | ForeignKey) -> None:
        with self._lock:
            self._data[key] = None

    def transact(self) -> contextlib.AbstractContextManager[Any]:
        return self._lock

    def volume(self) -> int:
        """The database's size (when it can still be read) and what is kept in memory."""
        with self._lock:
            here = sum(len(v) for v in self._data.values() if v is not None)
        return here + self._from_base(lambda b: b.volume(), 0)

    def close(self) -> None:
        if self.base is not None:
            self.base.close()


Backend = DiskBackend | ReadOnlyBackend | MemoryBackend


def keys_of(backend: Backend, prefix: str = "") -> Iterator[str]:
    """The plain string keys of ``backend`` that start with ``prefix``."""
    return (k for k in backend.list_keys(prefix) if isinstance(k, str))
