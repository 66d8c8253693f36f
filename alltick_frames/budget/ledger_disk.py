"""A ledger in a diskcache directory, shared by every process that opens it.

The record is JSON (see :func:`encode`), stored as plain bytes through the store's
:class:`~alltick_frames.store.backend.SafeDisk`: nothing in the ledger is ever pickled or
unpickled, so a record planted in a shared cache directory can run nothing. A record this
version cannot read (a pickle written by an older version, damaged bytes) is ignored: the
budget starts afresh and the server's answers teach it the rest.

A disk that cannot be written (full, read-only, no permission) or a damaged database does not
stop the job: the ledger carries on in this process's memory, seeded with the last state it
read, with one :class:`~alltick_frames.store.CacheWarning` and :attr:`Ledger.failover` set (a
job's ``stats.failover`` says so).
"""

from __future__ import annotations

import contextlib
import threading
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import fields
from datetime import UTC, datetime
from itertools import accumulate
from operator import sub
from pathlib import Path
from typing import Any

import orjson

from alltick_frames.budget.ledger import Ledger, T
from alltick_frames.budget.ledger_memory import MemoryLedger
from alltick_frames.budget.slots import LedgerState

#: The record's layout; a record of any other version is ignored.
RECORD_FORMAT = 3
#: The record's key prefix (``budget/<fingerprint>``).
RECORD_PREFIX = "budget/"


def encode(state: LedgerState) -> bytes:
    """``state`` as JSON bytes: ``{"format": 3, "calls": {window: [first, +delta, ...]},
    "blocked": {key: tick}, "days": {"day:YYYY-MM-DD": n}}`` (any other field of the state as
    it is, ``counts`` only when a window is kept as counts). Ticks are sorted, so a window is
    stored as its first tick and the steps after it: about 6 bytes a call instead of 17."""
    out: dict[str, Any] = {"format": RECORD_FORMAT}
    for f in fields(state):
        value = getattr(state, f.name)
        if f.name == "counts" and not value:
            continue  # every built-in plan: the record is as before counts existed
        if f.name == "calls":
            value = {k: [*v[:1], *map(sub, v[1:], v)] for k, v in value.items()}
        out[f.name] = value
    return orjson.dumps(out)


def decode(data: object) -> LedgerState | None:
    """The state in ``data`` (bytes written by :func:`encode`); None when ``data`` is not such
    a record: nothing, an older layout, a pickle, damaged or ill-typed bytes."""
    if type(data) is not bytes:
        return None
    try:
        record = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(record, dict) or record.pop("format", None) != RECORD_FORMAT:
        return None
    calls, blocked, days = record.get("calls"), record.get("blocked"), record.get("days")
    if not (_ints_by_name(blocked) and _ints_by_name(days) and isinstance(calls, dict)):
        return None
    if not all(isinstance(k, str) and _ints(v) for k, v in calls.items()):
        return None
    record["calls"] = {k: list(accumulate(v)) for k, v in calls.items()}
    try:
        return LedgerState(**record)
    except TypeError:  # fields this version does not know
        return None


def _ints(value: object) -> bool:
    return isinstance(value, list) and all(type(x) is int for x in value)


def _ints_by_name(value: object) -> bool:
    return isinstance(value, Mapping) and all(
        isinstance(k, str) and type(v) is int for k, v in value.items()
    )


#: The record's row, when it holds plain bytes inside SQLite (see store.backend); and its
#: update in place. One statement each, where diskcache's get and set take two and three: a
#: reservation is a transaction on the event loop, and each statement lets other threads in.
_SELECT = (
    "SELECT rowid, mode = 1 AND filename IS NULL AND typeof(value) = 'blob', value FROM Cache"
    " WHERE key = ? AND raw = 1"
)
_UPDATE = "UPDATE Cache SET value = ?, store_time = ? WHERE rowid = ?"


class DiskLedger(Ledger):
    """A ledger in a ``diskcache.Cache`` directory, shared by every process that opens it.

    Each update is one SQLite ``BEGIN IMMEDIATE`` transaction (``Cache.transact``): read the
    state, compute, write it back, commit; a second process waits for the first to commit,
    so two processes can never take the same slot. The state is one JSON record under
    ``budget/<key>``, where ``key`` is a :func:`token_fingerprint`; old ticks are pruned on
    every update, so a record stays a few kilobytes (about 6 bytes per call in the longest
    window, and a window of more than 2,048 calls kept as counts per bucket of 1/512 of it:
    see :mod:`~alltick_frames.budget.counts`), and an update costs well under a millisecond
    however full the window.

    When the directory cannot be written or its database is damaged, the ledger moves to
    this process's memory (see the module docstring); :attr:`failover` says since when and
    why. Only this process paces on it from then on, so other processes sharing the
    directory no longer see its calls: the server's 429s teach both sides.
    """

    def __init__(self, directory: str | Path, key: str) -> None:
        if not key or "/" in key:
            raise ValueError(f"a ledger key must be a non-empty fingerprint, got {key!r}")
        self.directory = Path(directory)
        self.key = key
        self._record_key = RECORD_PREFIX + key
        self._memory: MemoryLedger | None = None
        #: The last state read, or the bytes of the last one written (the state itself may
        #: be changed by the next update before it fails): what a fallback starts from.
        self._last: LedgerState | bytes = LedgerState()
        #: The bytes of the record this process last committed, and their state.
        self._written: tuple[bytes, LedgerState] | None = None
        self._lock = threading.Lock()
        self._cache: Any = None
        try:
            self._cache = self._open()
        except Exception as exc:
            self._fall_back(exc, opening=True)

    def _open(self) -> Any:
        """The cache; a damaged database file is moved aside first (what it held is at most
        the last minute's calls and today's count), with a warning that names both paths."""
        from alltick_frames.store.backend import DB_NAME, move_aside, open_trouble
        from alltick_frames.store.health import CacheWarning

        try:
            return open_ledger_cache(self.directory)
        except Exception as exc:
            if open_trouble(exc) != "damaged":
                raise
            aside = move_aside(self.directory / DB_NAME)
            warnings.warn(
                f"the budget ledger {self.directory / DB_NAME} was damaged ({exc}): moved it "
                f"aside to {aside} and started a new one",
                CacheWarning,
                stacklevel=4,
            )
            return open_ledger_cache(self.directory)

    @property
    def on_disk(self) -> bool:
        """Whether the ledger is still the one on disk (False once it fell back to memory)."""
        return self._memory is None

    def update(self, fn: Callable[[LedgerState], T]) -> T:
        if self._memory is None:
            cache = self._cache
            in_fn = False
            try:
                with cache.transact(retry=True):
                    rowid, data = self._select(cache)
                    state = self._known(data) or decode(data) or LedgerState()
                    self._written = None  # fn changes the state in place
                    in_fn = True
                    result = fn(state)
                    in_fn = False
                    data = encode(state)
                    if rowid is None:
                        cache.set(self._record_key, data)
                    else:
                        cache._sql(_UPDATE, (data, time.time(), rowid))
                self._last = data  # committed: what a fallback starts from
                self._written = data, state
                return result
            except Exception as exc:
                if in_fn:
                    raise  # fn's own error (the day's cap, say): the transaction rolled back
                self._fall_back(exc)
        # ``fn`` may run a second time here, as on a Redis conflict (see Ledger.update).
        assert self._memory is not None
        return self._memory.update(fn)

    def _select(self, cache: Any) -> tuple[int | None, object]:
        """The record's row id and bytes, in one statement; the row id only when the row
        holds plain bytes this ledger wrote (any other row is replaced through diskcache),
        and its bytes only then (never a pickle)."""
        rows = cache._sql(_SELECT, (self._record_key,)).fetchall()
        if not rows:
            return None, None
        ((rowid, plain, value),) = rows
        return (rowid, value) if plain else (None, None)

    def _known(self, data: object) -> LedgerState | None:
        """The state this process last wrote, when ``data`` are still its bytes: no other
        process wrote since, and the record need not be parsed again."""
        written = self._written
        return written[1] if written is not None and data == written[0] else None

    def read(self, fn: Callable[[LedgerState], T]) -> T:
        if self._memory is None:
            try:
                # Nothing stored, or a record this version does not read: a fresh state.
                state = decode(self._cache.get(self._record_key)) or LedgerState()
            except Exception as exc:
                self._fall_back(exc)
            else:
                self._last = state
                return fn(state)
        assert self._memory is not None
        return self._memory.read(fn)

    def _fall_back(self, why: Exception, *, opening: bool = False) -> None:
        """Carry on in memory, seeded with the last state read; warn once. Errors that are
        not the disk's (a bug, a busy database) are raised as they are."""
        from alltick_frames.store.backend import open_trouble, trouble
        from alltick_frames.store.health import CacheWarning

        kind = open_trouble(why) or isinstance(why, OSError) if opening else trouble(why)
        if not kind:
            raise why
        with self._lock:
            if self._memory is not None:
                return
            memory = MemoryLedger()
            last = self._last
            memory.state = (decode(last) or LedgerState()) if isinstance(last, bytes) else last
            self._memory = memory
            since = datetime.now(UTC).strftime("%H:%M:%S UTC")
            self.failover = (
                f"the budget ledger at {self.directory} could not be used since {since} "
                f"({why}); paced on a ledger in this process's memory"
            )
        if self._cache is not None:
            with contextlib.suppress(Exception):  # a database in trouble may fail to close
                self._cache.close()
        warnings.warn(
            f"cannot use the budget ledger at {self.directory} ({why}): pacing this process "
            "on a ledger in memory; other processes sharing the cache no longer see its calls",
            CacheWarning,
            stacklevel=4,
        )

    def close(self) -> None:
        if self._memory is None and self._cache is not None:
            self._cache.close()

    def __repr__(self) -> str:
        where = "" if self._memory is None else ", in memory"
        return f"DiskLedger({str(self.directory)!r}, key={self.key!r}{where})"


def open_ledger_cache(directory: Path) -> Any:
    """The ledger's ``diskcache.Cache`` in ``directory``: string keys, byte values inside
    SQLite, never a pickle (:class:`~alltick_frames.store.backend.SafeDisk`)."""
    import diskcache

    from alltick_frames.store.backend import SafeDisk

    return diskcache.Cache(
        str(directory),
        disk=SafeDisk,
        eviction_policy="none",  # never cull a live ledger for space
        statistics=False,
        tag_index=False,
    )


def ledger_records(directory: str | Path) -> dict[str, LedgerState | None]:
    """Every ledger record in ``directory``, by token fingerprint (None: a record this version
    cannot read, such as an older version's pickle). Reads only; never unpickles."""
    cache = open_ledger_cache(Path(directory))
    try:
        keys = [k for k in cache.iterkeys() if isinstance(k, str) and k.startswith(RECORD_PREFIX)]
        return {k.removeprefix(RECORD_PREFIX): decode(cache.get(k)) for k in keys}
    finally:
        cache.close()
