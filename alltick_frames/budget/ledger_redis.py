"""A ledger in Redis: one token's budget shared by every host that reaches the server.

Why Redis: a :class:`~alltick_frames.budget.DiskLedger` is shared only by processes that share
a directory, and SQLite's locking does not hold over a network filesystem. Containers and hosts
without a common disk, running jobs on one token, need the ledger on a server they all reach.

How a reservation stays atomic
    :meth:`RedisLedger.update` is an optimistic transaction around the same pure slot
    algorithm every ledger runs (:mod:`~alltick_frames.budget.slots`), in two round trips:

    1. ``MULTI``, ``TIME``, ``MGET`` of the state and the day counts, ``EXEC``: the server's
       time and the state, read together;
    2. compute in Python, then one script (:data:`COMPARE_AND_SET`) writes the new state, the
       changed day counts and this client's heartbeat, only if the state's version (the first
       :data:`VERSION_BYTES` bytes of its record, new at every write) is still the one read.

    If another client wrote in between, the script writes nothing and the update runs again
    on the fresh state. The script only compares and sets: the slot search, the guard and the
    rejection rules stay in one language, in one place. A ``WATCH``/``MULTI`` transaction did
    the same in four round trips; each round trip a host waits on is time its event loop
    cannot send a call on time, a host descheduled on a busy machine waits long for each, and
    the fewer there are between the read and the write, the shorter the window for a
    conflicting write. ``benchmarks/redis_hosts.py`` prints the
    updates, the conflicts and the mean time of one with 4 hosts at 100 calls/s (the README
    has the figures). A lock would cost round trips on every update, a crashed holder would
    stall every host for the lock's lease, and a descheduled holder would stall them just
    the same.

Whose clock
    Redis's ``TIME`` is the clock of every window: the budget reads "now" inside the
    transaction from :class:`LedgerClock`, which holds the server's time while the update
    runs. Hosts whose clocks disagree still agree on every slot. To sleep until a slot, a
    host converts it to its own clock with the offset measured at reservations: the server's
    time minus the midpoint of the local times around the round trip that read ``TIME``, from the
    quickest of the last :data:`OFFSET_SAMPLES` round trips (as NTP does: its error is at most
    half that round trip, where a round trip stretched by a busy CPU could be off by
    milliseconds, and a call that leaves early by more than the guard is refused).

What is stored, under keys that expire (``{fp}`` is the :func:`token_fingerprint`; the braces
make every key of a token land on one Redis Cluster slot, as multi-key transactions need)
    ``alltick-frames:{fp}:budget``
        the state's version, a space, and the :class:`LedgerState` without its day counts as
        JSON (see :func:`record_of`); it expires :attr:`RedisLedger.keep` seconds after its
        latest call or block. Every host on one Redis must write this layout: a record of
        another (the plain JSON the ``WATCH``/``MULTI`` ledger wrote) reads as unreadable, a
        fresh state.
    ``alltick-frames:{fp}:day:2026-05-01``
        calls counted on that UTC+8 day; expires when the day has ended (plus ``keep``).
    ``alltick-frames:{fp}:clients``
        a sorted set of the ledgers that wrote in the last minute, by time: how many clients
        share the token (see fail-over, below).

    Every update writes the state key with a new version, so comparing that version alone
    catches a conflicting write to a day key too. The Redis should not evict keys
    (``maxmemory-policy noeviction``, or memory to spare): every key here carries a TTL, so a
    ``volatile-*`` policy under pressure would drop the budget first.

If Redis becomes unreachable (or refuses to work: out of memory, read-only)
    The ledger fails over, once, to a :class:`~alltick_frames.budget.MemoryLedger` seeded with
    the last state it read from Redis, so the calls already made in every window still count
    and nothing bursts. :attr:`RedisLedger.on_failover` lets the budget shrink its plan to its
    share (see :mod:`~alltick_frames.budget.shared`); :attr:`Ledger.failover` says what
    happened, and the job goes on. It does not go back to Redis: a fresh client does.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import fields
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson

from alltick_frames.budget.ledger import Ledger, T
from alltick_frames.budget.ledger_memory import MemoryLedger
from alltick_frames.budget.slots import (
    DAY_TICKS,
    MINUTE,
    OFFSET_TICKS,
    TICKS_PER_SECOND,
    LedgerState,
    day_key,
    day_start_ticks,
    from_ticks,
    to_ticks,
)
from alltick_frames.core.clock import Clock, SystemClock

if TYPE_CHECKING:
    import redis

log = logging.getLogger("alltick_frames")

#: Prefix of every key the ledger writes.
KEY_PREFIX = "alltick-frames"
#: Round trips the clock offset is chosen from (the quickest wins).
OFFSET_SAMPLES = 32
#: Seconds a client stays counted among those sharing the token after its last write.
CLIENTS_WINDOW = MINUTE
#: Length of the version that starts the state's record (see :func:`decode`).
VERSION_BYTES = 16
_MS = TICKS_PER_SECOND // 1000


# --------------------------------------------------------------------------- the state


def encode(state: LedgerState) -> bytes:
    """``state`` as JSON bytes, without its day counts (they live in keys of their own).

    Every field of the state is JSON already (ticks are integers), so this follows the
    dataclass.
    """
    return orjson.dumps({f.name: getattr(state, f.name) for f in fields(state) if f.name != "days"})


def decode(record: bytes | None, days: dict[str, int]) -> tuple[bytes, LedgerState]:
    """The version and the state of a stored ``record`` (see :func:`record_of`), with ``days``.

    The version is the record's first :data:`VERSION_BYTES` bytes, whatever they are (the
    compare-and-set script reads it the same way); no record is version ``b""``. No record,
    or anything unreadable, is a fresh state: a damaged record costs at most what the ledger
    knew of the last minute, and the server's answers teach it the rest.
    """
    if record is None:
        return b"", LedgerState(days=dict(days))
    version, body = record[:VERSION_BYTES], record[VERSION_BYTES + 1 :]
    try:
        if record[VERSION_BYTES : VERSION_BYTES + 1] != b" ":
            raise TypeError("no version")
        return version, LedgerState(**{**orjson.loads(body), "days": dict(days)})
    except (orjson.JSONDecodeError, TypeError) as exc:
        log.warning("budget ledger in Redis: unreadable record (%s); starting afresh", exc)
    return version, LedgerState(days=dict(days))


def record_of(version: bytes, state: LedgerState) -> bytes:
    """What the state key holds: ``version``, a space, then :func:`encode` of ``state``."""
    assert len(version) == VERSION_BYTES
    return version + b" " + encode(state)


#: The compare-and-set that ends an update: write only if the state is still at the version
#: read. KEYS: the state, the clients, then the day counts to set. ARGV: the version read, the
#: new record and its expiry (ms), this client's id, now (ms), the clients' cutoff (ms) and
#: their key's lifetime (ms), then a count and an expiry (ms) per day key. Returns how many
#: clients share the token, or -1 (nothing written) when another client wrote first.
COMPARE_AND_SET = f"""
local record = redis.call('GET', KEYS[1])
local version = record and string.sub(record, 1, {VERSION_BYTES}) or ''
if version ~= ARGV[1] then return -1 end
redis.call('SET', KEYS[1], ARGV[2], 'PXAT', ARGV[3])
for i = 3, #KEYS do
  redis.call('SET', KEYS[i], ARGV[2 * i + 2], 'PXAT', ARGV[2 * i + 3])
end
redis.call('ZADD', KEYS[2], ARGV[5], ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[6])
redis.call('PEXPIRE', KEYS[2], ARGV[7])
return redis.call('ZCARD', KEYS[2])
"""


# --------------------------------------------------------------------------- the clock


class LedgerClock:
    """Redis's clock, as seen from this host: the :class:`~alltick_frames.core.clock.Clock` of
    a budget on a :class:`RedisLedger`.

    Inside an update, :meth:`now` is the server's ``TIME`` read by that transaction. Outside,
    it is the local clock plus :attr:`offset`, the server's time minus the local time (see the
    module docstring); :meth:`sleep_until` waits on the local clock for the same moment.
    """

    def __init__(self, local: Clock | None = None) -> None:
        self.local: Clock = local if local is not None else SystemClock()
        #: Server time minus local time, seconds.
        self.offset = 0.0
        self._held: float | None = None
        self._samples: deque[tuple[float, float]] = deque(maxlen=OFFSET_SAMPLES)

    def now(self) -> float:
        return self._held if self._held is not None else self.local.now() + self.offset

    async def sleep_until(self, t: float) -> None:
        await self.local.sleep_until(t - self.offset)

    def measure(self, server: float, sent: float, received: float) -> None:
        """Add one ``TIME`` round trip (local times around it); :attr:`offset` becomes that of
        the quickest recent one."""
        self._samples.append((received - sent, server - (sent + received) / 2))
        self.offset = min(self._samples)[1]

    @contextlib.contextmanager
    def held(self, server: float) -> Iterator[None]:
        """Make :meth:`now` answer ``server`` while the block runs (one transaction)."""
        self._held = server
        try:
            yield
        finally:
            self._held = None

    def __repr__(self) -> str:
        return f"LedgerClock(offset={self.offset:+.4f}s, local={self.local!r})"


# --------------------------------------------------------------------------- the ledger


class RedisLedger(Ledger):
    """A ledger in Redis, shared by every process and host using the same server and token.

    ``client`` is a ``redis.Redis``; ``key`` a :func:`token_fingerprint` (never the token);
    ``keep`` how long, in seconds, a recorded call or block is kept after its time (at least
    the plan's longest window plus the widest guard); ``local_clock`` this host's clock
    (default :class:`~alltick_frames.core.clock.SystemClock`). Budgets on it must use
    :attr:`clock`. Use :func:`~alltick_frames.budget.shared.budget_from_url` rather than
    building one by hand. See the module docstring for the keys, the clock and the fail-over.
    """

    def __init__(
        self,
        client: redis.Redis,
        key: str,
        *,
        keep: float = 2 * MINUTE,
        local_clock: Clock | None = None,
    ) -> None:
        if not key or not key.isalnum():
            raise ValueError(f"a ledger key must be a fingerprint (letters, digits), got {key!r}")
        if keep < MINUTE:
            raise ValueError(f"keep must cover the per-minute window (>= 60 s), got {keep}")
        import redis as redis_lib

        # Any Redis error but a lost race means the ledger cannot be used: unreachable, a
        # refused password, out of memory under noeviction, a read-only replica.
        self._unusable = redis_lib.RedisError
        self.redis = client
        self.key = key
        self.keep = keep
        self.clock = LedgerClock(local_clock)
        #: Called once on fail-over with (clients sharing the token, last state); returns what
        #: the budget now paces at, in words, for :attr:`failover`.
        self.on_failover: Callable[[int, LedgerState], str] | None = None
        #: The most clients seen writing to this token's ledger within a minute.
        self.clients = 1
        #: Updates committed, updates run again because another client wrote first, and the
        #: seconds this process spent in updates (round trips and computing, conflicts too).
        self.updates = 0
        self.conflicts = 0
        self.busy = 0.0
        self._id = uuid.uuid4().hex
        self._prefix = f"{KEY_PREFIX}:{{{key}}}"
        self._state_key = f"{self._prefix}:budget"
        self._clients_key = f"{self._prefix}:clients"
        self._writes = 0
        self._compare_and_set = client.register_script(COMPARE_AND_SET)
        self._lock = threading.RLock()
        self._local: MemoryLedger | None = None
        self._last = LedgerState()

    @property
    def where(self) -> str:
        """The server, as ``host:port/db`` (never the password)."""
        kwargs = self.redis.connection_pool.connection_kwargs
        if "path" in kwargs:
            return f"unix:{kwargs['path']}"
        return f"{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}/{kwargs.get('db', 0)}"

    def _day(self, name: str) -> str:
        return f"{self._prefix}:{name}"

    def connect(self) -> None:
        """Register this client and measure the clock offset: one empty transaction.

        Raises ``ConnectionError`` (and closes the connection) when Redis cannot be reached:
        a ledger fails over only once it has worked, so a wrong URL is an error, not a
        silent local budget.
        """
        try:
            self._transaction(lambda state: None)
        except self._unusable as exc:
            self.redis.close()
            raise ConnectionError(
                f"cannot reach the budget's Redis at {self.where}: {exc}"
            ) from None

    # -- the ledger interface -------------------------------------------------------------

    def update(self, fn: Callable[[LedgerState], T]) -> T:
        with self._lock:
            if self._local is None:
                began = time.perf_counter()
                try:
                    return self._transaction(fn)
                except self._unusable as exc:
                    self._fail_over(exc)
                finally:
                    self.busy += time.perf_counter() - began
            assert self._local is not None
            return self._local.update(fn)

    def read(self, fn: Callable[[LedgerState], T]) -> T:
        with self._lock:
            if self._local is None:
                try:
                    names = _days_around(to_ticks(self.clock.now()))
                    blob, *counts = self.redis.mget(self._state_key, *map(self._day, names))
                    self._last = decode(blob, _counts(names, counts))[1]
                    return fn(self._last)
                except self._unusable as exc:
                    self._fail_over(exc)
            assert self._local is not None
            return self._local.read(fn)

    def close(self) -> None:
        with self._lock:
            if self._local is None:
                with contextlib.suppress(self._unusable):
                    self.redis.zrem(self._clients_key, self._id)
            self.redis.close()

    # -- one transaction ------------------------------------------------------------------

    def _transaction(self, fn: Callable[[LedgerState], T]) -> T:
        local = self.clock.local
        while True:
            # One round trip reads the server's time and the state, atomically (MULTI/EXEC):
            # the days around this host's guess of the server's time (yesterday to tomorrow,
            # so that an offset not yet measured, or a midnight in between, is covered).
            guess = _days_around(to_ticks(self.clock.now()), before=1)
            pipe = self.redis.pipeline()
            pipe.time()
            pipe.mget(self._state_key, *map(self._day, guess))
            sent = local.now()
            (seconds, micros), (blob, *counts) = pipe.execute()
            received = local.now()
            now = seconds * TICKS_PER_SECOND + micros
            self.clock.measure(from_ticks(now), sent, received)
            names = _days_around(now)
            if not set(names) <= set(guess):
                continue  # a clock off by a day: read again, now that the offset is known
            fetched = _counts(guess, counts)
            days = {name: fetched[name] for name in names if name in fetched}
            version, state = decode(blob, days)
            with self.clock.held(from_ticks(now)):
                result = fn(state)
            clients = self._write(version, state, days, now)
            if clients < 0:
                self.conflicts += 1
                continue
            self.updates += 1
            self.clients = max(self.clients, clients)
            self._last = state
            return result

    def _write(self, version: bytes, state: LedgerState, days: dict[str, int], now: int) -> int:
        """Store the new state, the changed day counts and this client's heartbeat, if the
        state is still at ``version``: the number of clients sharing the token, or -1 when
        another client wrote first (nothing is written then)."""
        keep = to_ticks(self.keep)
        latest = max(
            [
                now,
                *(t[-1] for t in state.calls.values() if t),
                *((keys[-1] + 1) * width for width, keys, _ in state.counts.values() if keys),
                *state.blocked.values(),
            ]
        )
        self._writes += 1
        new_version = f"{self._id[:8]}{self._writes & 0xFFFFFFFF:08x}".encode()
        keys = [self._state_key, self._clients_key]
        now_ms, window_ms = now // _MS, int(CLIENTS_WINDOW * 1000)
        args: list[Any] = [
            version,
            record_of(new_version, state),
            (latest + keep) // _MS,
            self._id,
            now_ms,
            now_ms - window_ms,
            2 * window_ms,
        ]
        today = (now + OFFSET_TICKS) // DAY_TICKS
        for index, name in enumerate(_days_around(now)):
            count = state.days.get(name, 0)
            if count != days.get(name, 0):
                keys.append(self._day(name))
                args += [count, (day_start_ticks(today + index + 1) + keep) // _MS]
        return int(self._compare_and_set(keys=keys, args=args))

    # -- fail-over ------------------------------------------------------------------------

    def _fail_over(self, exc: Exception) -> None:
        local = MemoryLedger()
        local.state = self._last
        self._local = local
        at = datetime.fromtimestamp(self.clock.now(), UTC).isoformat(timespec="seconds")
        share = self.on_failover(self.clients, self._last) if self.on_failover else "the plan"
        self.failover = (
            f"Redis at {self.where} unusable since {at} ({type(exc).__name__}: {exc}); "
            f"paced on a local ledger at {share} ({self.clients} client(s) shared the token)"
        )
        log.warning("budget: %s", self.failover)

    def __repr__(self) -> str:
        mode = "failed over" if self._local is not None else "shared"
        return f"RedisLedger({self.where!r}, key={self.key!r}, {mode})"


def _days_around(now: int, *, before: int = 0) -> tuple[str, ...]:
    """The day keys a reservation at ``now`` can touch: today's and tomorrow's (UTC+8), and
    the ``before`` days before today.

    A slot lands today, or tomorrow when today is full and the budget waits for the reset (or
    a call starts within the guard of midnight); never later, since tomorrow cannot fill up
    before it begins.
    """
    today = (now + OFFSET_TICKS) // DAY_TICKS
    return tuple(day_key(today + i) for i in range(-before, 2))


def _counts(names: tuple[str, ...], counts: list[Any]) -> dict[str, int]:
    return {name: int(c) for name, c in zip(names, counts, strict=True) if c is not None}
