"""A ledger in Redis: one token's budget shared by every host that reaches the server.

Why Redis: a :class:`~alltick_frames.budget.DiskLedger` is shared only by processes that share
a directory, and SQLite's locking does not hold over a network filesystem. Containers and hosts
without a common disk, running jobs on one token, need the ledger on a server they all reach.

How a reservation stays atomic
    :meth:`RedisLedger.update` is an optimistic transaction around the same pure slot
    algorithm every ledger runs (:mod:`~alltick_frames.budget.slots`): ``WATCH`` the state
    key, read ``TIME`` and the state, compute in Python, then ``MULTI`` ... ``EXEC`` the new
    state. If another client wrote the state in between, ``EXEC`` does nothing and the update
    runs again on the fresh state. One algorithm in one language: a Lua script would have to
    restate the slot search, the guard and the rejection rules in Lua and keep the two in step.
    A transaction lasts four round trips (well under a millisecond on loopback or a LAN),
    and a conflict costs only those again: ``benchmarks/redis_ledger.py`` measures the share
    of updates run twice with 4 processes at 100 calls/s (the README has the figures; it
    grows when a starved CPU stretches transactions), and shows the slots still keep the
    plan's pace. A lock would cost two more round trips on every update, a crashed holder
    would stall every host for the lock's lease, and a descheduled holder would stall them
    just the same.

Whose clock
    Redis's ``TIME`` is the clock of every window: the budget reads "now" inside the
    transaction from :class:`LedgerClock`, which holds the server's time while the update
    runs. Hosts whose clocks disagree still agree on every slot. To sleep until a slot, a
    host converts it to its own clock with the offset measured at reservations: the server's
    time minus the midpoint of the local times around the ``TIME`` round trip, taken from the
    quickest of the last :data:`OFFSET_SAMPLES` round trips (as NTP does: its error is at most
    half that round trip, where a round trip stretched by a busy CPU could be off by
    milliseconds, and a call that leaves early by more than the guard is refused).

What is stored, under keys that expire (``{fp}`` is the :func:`token_fingerprint`; the braces
make every key of a token land on one Redis Cluster slot, as multi-key transactions need)
    ``alltick-frames:{fp}:budget``
        the :class:`LedgerState` without its day counts, as JSON (see :func:`encode`); it
        expires :attr:`RedisLedger.keep` seconds after its latest call or block.
    ``alltick-frames:{fp}:day:2026-05-01``
        calls counted on that UTC+8 day; expires when the day has ended (plus ``keep``).
    ``alltick-frames:{fp}:clients``
        a sorted set of the ledgers that wrote in the last minute, by time: how many clients
        share the token (see fail-over, below).

    Every update writes the state key, so watching it alone catches a conflicting write to a
    day key too. The Redis should not evict keys (``maxmemory-policy noeviction``, or memory to
    spare): every key here carries a TTL, so a ``volatile-*`` policy under pressure would drop
    the budget first.

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
_MS = TICKS_PER_SECOND // 1000


# --------------------------------------------------------------------------- the state


def encode(state: LedgerState) -> bytes:
    """``state`` as JSON bytes, without its day counts (they live in keys of their own).

    Every field of the state is JSON already (ticks are integers), so this follows the
    dataclass; the disk ledger's checked JSON record (issue 10) can replace this pair of
    functions once it lands.
    """
    return orjson.dumps({f.name: getattr(state, f.name) for f in fields(state) if f.name != "days"})


def decode(data: bytes | None, days: dict[str, int]) -> LedgerState:
    """The state in ``data`` with ``days``; nothing, or anything unreadable, is a fresh state.

    A damaged record costs at most what the ledger knew of the last minute: the budget starts
    afresh and the server's answers teach it the rest.
    """
    if data is not None:
        try:
            return LedgerState(**{**orjson.loads(data), "days": dict(days)})
        except (orjson.JSONDecodeError, TypeError) as exc:
            log.warning("budget ledger in Redis: unreadable record (%s); starting afresh", exc)
    return LedgerState(days=dict(days))


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
        self._watch_error = redis_lib.WatchError
        self.redis = client
        self.key = key
        self.keep = keep
        self.clock = LedgerClock(local_clock)
        #: Called once on fail-over with (clients sharing the token, last state); returns what
        #: the budget now paces at, in words, for :attr:`failover`.
        self.on_failover: Callable[[int, LedgerState], str] | None = None
        #: The most clients seen writing to this token's ledger within a minute.
        self.clients = 1
        #: Updates committed, and updates run again because another client wrote first.
        self.updates = 0
        self.conflicts = 0
        self._id = uuid.uuid4().hex
        self._prefix = f"{KEY_PREFIX}:{{{key}}}"
        self._state_key = f"{self._prefix}:budget"
        self._clients_key = f"{self._prefix}:clients"
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
                try:
                    return self._transaction(fn)
                except self._unusable as exc:
                    self._fail_over(exc)
            assert self._local is not None
            return self._local.update(fn)

    def read(self, fn: Callable[[LedgerState], T]) -> T:
        with self._lock:
            if self._local is None:
                try:
                    names = _days_around(to_ticks(self.clock.now()))
                    blob, *counts = self.redis.mget(self._state_key, *map(self._day, names))
                    self._last = decode(blob, _counts(names, counts))
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
        with self.redis.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(self._state_key)
                    sent = local.now()
                    seconds, micros = pipe.time()
                    received = local.now()
                    now = seconds * TICKS_PER_SECOND + micros
                    self.clock.measure(from_ticks(now), sent, received)
                    names = _days_around(now)
                    blob, *counts = pipe.mget(self._state_key, *map(self._day, names))
                    days = _counts(names, counts)
                    state = decode(blob, days)
                    with self.clock.held(from_ticks(now)):
                        result = fn(state)
                    pipe.multi()
                    self._write(pipe, state, days, now)
                    clients = pipe.execute()[-1]
                except self._watch_error:
                    self.conflicts += 1
                    continue
                self.updates += 1
                self.clients = max(self.clients, int(clients))
                self._last = state
                return result

    def _write(self, pipe: Any, state: LedgerState, days: dict[str, int], now: int) -> None:
        """Queue the new state, the changed day counts and this client's heartbeat."""
        keep = to_ticks(self.keep)
        latest = max(
            [
                now,
                *(t[-1] for t in state.calls.values() if t),
                *((keys[-1] + 1) * width for width, keys, _ in state.counts.values() if keys),
                *state.blocked.values(),
            ]
        )
        pipe.set(self._state_key, encode(state), pxat=(latest + keep) // _MS)
        today = (now + OFFSET_TICKS) // DAY_TICKS
        for index, name in enumerate(_days_around(now)):
            count = state.days.get(name, 0)
            if count != days.get(name, 0):
                ends = day_start_ticks(today + index + 1)
                pipe.set(self._day(name), count, pxat=(ends + keep) // _MS)
        now_ms = now // _MS
        pipe.zadd(self._clients_key, {self._id: now_ms})
        pipe.zremrangebyscore(self._clients_key, "-inf", now_ms - int(CLIENTS_WINDOW * 1000))
        pipe.pexpire(self._clients_key, int(2 * CLIENTS_WINDOW * 1000))
        pipe.zcard(self._clients_key)

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


def _days_around(now: int) -> tuple[str, str]:
    """The day keys a reservation at ``now`` can touch: today's and tomorrow's (UTC+8).

    A slot lands today, or tomorrow when today is full and the budget waits for the reset (or
    a call starts within the guard of midnight); never later, since tomorrow cannot fill up
    before it begins.
    """
    today = (now + OFFSET_TICKS) // DAY_TICKS
    return day_key(today), day_key(today + 1)


def _counts(names: tuple[str, ...], counts: list[Any]) -> dict[str, int]:
    return {name: int(c) for name, c in zip(names, counts, strict=True) if c is not None}
