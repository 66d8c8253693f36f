"""Live trades and order books over AllTick's WebSocket, as DataFrames: :class:`Stream`.

::

    async with Stream(["AAPL.US", "700.HK", "BTCUSDT"], plan="premium") as s:
        async for frame in s:               # small batches, as they come
            if frame.attrs["kind"] == "trades":
                ...                         # the schema of AllTick.trades()
            else:
                ...                         # the schema of AllTick.depth()
        s.failures                          # codes that never arrived, ticks a drop may have lost

What it takes care of (alltick-api.md §6; alltick/docs ``en/websocket/*`` and
``en/getting-started/websocket-interface-limitations.mdx``):

* **Routing and caps.** Stocks and indices go to ``/quote-stock-b-ws-api``, the rest to
  ``/quote-b-ws-api``. Each path gets up to ``plan.ws_connections`` sockets of up to
  ``plan.ws_codes`` codes per kind (:mod:`~alltick_frames.live.layout`); codes beyond that,
  and codes a Free or market plan cannot see, are failure rows, never sent.
* **Pacing.** Requests on a socket at least 1 s apart, subscriptions across sockets 3 s
  apart, each timed from the server's previous answer (:mod:`~alltick_frames.live.pacing`).
  A stream that keeps to its plan never sees ``ret`` 606.
* **Heartbeats** every ``heartbeat`` seconds (10) on every socket.
* **Reconnects.** A closed socket reconnects after the plan's spacing (10 s Free, 3 s paid)
  plus a guard and a random jitter of up to ``jitter`` seconds, and resubscribes its full
  set (:mod:`~alltick_frames.live.socket`).
* **What may be lost is reported.** Trades pushed while a socket was down are gone: for each
  of its codes a ``transport`` failure row says from which trade (the last one received) to
  the resubscription. That window is the reconnect spacing, the guard, the jitter and the
  time to subscribe again (at most a few seconds more on a stream of many sockets). Order
  books need no such row: each book replaces the one before, and the next one arrives
  within the cadence.
* **Codes that never arrive** are ``left-out`` rows once ``silence_timeout`` seconds (60) have
  passed since their subscription was acknowledged without a single push (or since the
  stream asked for them, while no socket could subscribe them), and at the end of the
  stream. AllTick acknowledges unknown, misrouted and unauthorised codes and then stays
  silent; a market that is closed stays silent too, so a US stock streamed at night is one.
  A code that arrives later drops its row.

Frames keep the schemas of :func:`~alltick_frames.frames.decode_trade_ticks` and
:func:`~alltick_frames.frames.decode_depth_ticks` (they are built by them), with
``frame.attrs["kind"]`` set to ``"trades"`` or ``"depth"``. A batch is yielded once it holds
``batch_rows`` pushes of one kind or ``batch_seconds`` have passed. Frames the stream has
not yielded wait in memory, so read them as they come.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import random
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import aiohttp
import pandas as pd

from alltick_frames.core.codes import DEFAULT_BASE_URL, validate_codes
from alltick_frames.core.errors import Failure, MalformedResponse
from alltick_frames.core.plans import WS_HEARTBEAT_TIMEOUT, Plan, get_plan
from alltick_frames.core.wire import Envelope
from alltick_frames.frames import decode_depth_ticks, decode_trade_ticks
from alltick_frames.live.clock import clock_of
from alltick_frames.live.layout import Layout, SlotKey
from alltick_frames.live.ledger import Ledger, StreamStats
from alltick_frames.live.pacing import Pacer
from alltick_frames.live.socket import Socket
from alltick_frames.live.wire import DEPTH, ENDPOINT, KINDS, MAX_DEPTH_LEVEL, TRADES, Frame
from alltick_frames.run.jobs import outside_plan, unauthorized
from alltick_frames.run.transport import Secret

_DECODERS: dict[str, Callable[[list[Envelope]], pd.DataFrame]] = {
    TRADES: decode_trade_ticks,
    DEPTH: decode_depth_ticks,
}


def _positive(name: str, value: float, fix: str) -> None:
    if not isinstance(value, int | float) or isinstance(value, bool) or not value > 0:
        raise ValueError(f"{name} must be a number above 0, got {value!r}; {fix}")


class Stream:
    """Live trades and order books of ``codes`` (see the module docstring).

    ``token`` (default ``$ALLTICK_TOKEN``), ``plan`` and ``base_url`` (default
    ``$ALLTICK_BASE_URL`` or AllTick's host) as for :class:`~alltick_frames.api.client.AllTick`.
    ``trades``/``depth`` choose the kinds; ``depth_level`` the levels asked for (default:
    all the code has, at most 10). ``duration`` ends the stream after that many seconds
    (default: run until closed). ``batch_rows``/``batch_seconds`` size the frames;
    ``silence_timeout`` is when a silent code becomes a failure row; ``heartbeat`` the
    seconds between heartbeats; ``jitter`` the most random seconds added to each reconnect
    wait. ``clock`` is a ``now()`` function every timer runs on (default real time; a test
    passes an emulator's driven rate clock). ``seed`` seeds the jitter.
    """

    def __init__(
        self,
        codes: str | Iterable[str],
        *,
        token: str | Secret | None = None,
        plan: str | Plan | Path = "basic",
        base_url: str | None = None,
        trades: bool = True,
        depth: bool = True,
        depth_level: int | None = None,
        duration: float | None = None,
        batch_rows: int = 1000,
        batch_seconds: float = 0.5,
        silence_timeout: float = 60.0,
        heartbeat: float = 10.0,
        jitter: float = 1.0,
        clock: Callable[[], float] | None = None,
        seed: int | None = None,
    ) -> None:
        token = token if token is not None else os.environ.get("ALLTICK_TOKEN")
        if not token:
            raise ValueError("no AllTick token: pass token=... or set ALLTICK_TOKEN")
        self.token = token if isinstance(token, Secret) else Secret(token)
        self.plan = get_plan(plan)
        base = base_url or os.environ.get("ALLTICK_BASE_URL") or DEFAULT_BASE_URL
        self.base_url = base.rstrip("/")
        self.kinds = tuple(k for k, on in ((TRADES, trades), (DEPTH, depth)) if on)
        if not self.kinds:
            raise ValueError("nothing to stream: pass trades=True, depth=True or both")
        if depth_level is not None and (
            type(depth_level) is not int or not 1 <= depth_level <= MAX_DEPTH_LEVEL
        ):
            raise ValueError(f"depth_level must be an int from 1 to 10, got {depth_level!r}")
        self.depth_level = depth_level or MAX_DEPTH_LEVEL
        if duration is not None:
            _positive("duration", duration, "or None to stream until closed")
        if type(batch_rows) is not int or batch_rows < 1:
            raise ValueError(f"batch_rows must be an int of at least 1, got {batch_rows!r}")
        _positive("batch_seconds", batch_seconds, "e.g. 0.5")
        _positive("silence_timeout", silence_timeout, "e.g. 60")
        _positive("heartbeat", heartbeat, "AllTick asks for one every 10 s")
        if heartbeat >= WS_HEARTBEAT_TIMEOUT:
            raise ValueError(
                f"heartbeat must be below {WS_HEARTBEAT_TIMEOUT:.0f} s: AllTick closes a socket "
                f"that sent none for that long; got {heartbeat}"
            )
        if not isinstance(jitter, int | float) or jitter < 0:
            raise ValueError(f"jitter must be >= 0 seconds, got {jitter!r}")
        self.duration, self.batch_rows, self.batch_seconds = duration, batch_rows, batch_seconds
        self.silence_timeout, self.heartbeat, self.jitter = silence_timeout, heartbeat, jitter
        self.clock = clock_of(clock)
        self._rng = random.Random(seed)
        self._infos = validate_codes(codes)
        self.stats = StreamStats()
        self.last_error = ""
        self.layout = Layout(self.plan)
        self._order: list[str] = []
        self._asked: list[str] = []
        self.ledger = Ledger()
        self._buffers: dict[str, list[dict[str, Any]]] = {k: [] for k in KINDS}
        self._sockets: dict[SlotKey, Socket] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._out: asyncio.Queue[pd.DataFrame | None] | None = None
        self._error: BaseException | None = None
        self._started_at: float | None = None
        self._ended_at: float | None = None
        self._closing: asyncio.Task[None] | None = None
        self.session: aiohttp.ClientSession
        self.pacer: Pacer

    def __repr__(self) -> str:
        state = "ended" if self._ended_at else "running" if self._started_at else "not started"
        return (
            f"Stream({len(self._order) or len(self._infos)} codes, {'+'.join(self.kinds)}, "
            f"plan={self.plan.name!r}, base_url={self.base_url!r}, {state})"
        )

    # --- life ------------------------------------------------------------------------------

    async def __aenter__(self) -> Stream:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def start(self) -> None:
        """Open the sockets and subscribe; frames then arrive by iterating the stream."""
        if self._started_at is not None:
            return
        self._started_at = self.clock.now()
        self._out = asyncio.Queue()
        self.pacer = Pacer(self.clock)
        # No overall limit (a socket lives for hours), but a handshake must not hang.
        timeout = aiohttp.ClientTimeout(total=None, connect=30.0, sock_connect=30.0)
        self.session = aiohttp.ClientSession(timeout=timeout)
        self._tasks.append(asyncio.create_task(self._flush_loop()))
        if self.duration is not None:
            self._tasks.append(asyncio.create_task(self._end_after(self.duration)))
        self._place(self._infos, self.kinds)

    async def close(self) -> None:
        """Stop every socket, yield what is buffered, then end the iteration (idempotent)."""
        if self._started_at is None:
            return
        if self._closing is None:
            self._closing = asyncio.create_task(self._shutdown())
        await asyncio.shield(self._closing)

    def _end(self, error: BaseException | None = None) -> None:
        """Close from inside (duration over, a fatal error) without awaiting oneself."""
        if error is not None and self._error is None:
            self._error = error
        if self._closing is None:
            self._closing = asyncio.create_task(self._shutdown())

    async def _shutdown(self) -> None:
        self._ended_at = self.clock.now()
        for sock in self._sockets.values():
            await sock.stop()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.session.close()
        for kind in KINDS:
            self._flush(kind)
        self.ledger.ended()
        assert self._out is not None
        self._out.put_nowait(None)

    async def _end_after(self, seconds: float) -> None:
        assert self._started_at is not None
        await self.clock.sleep_until(self._started_at + seconds)
        self._end()

    def __aiter__(self) -> Stream:
        return self

    async def __anext__(self) -> pd.DataFrame:
        if self._out is None:
            raise RuntimeError("start the stream first: `async with stream:` or `await start()`")
        frame = await self._out.get()
        if frame is None:
            self._out.put_nowait(None)  # later calls end too
            if self._error is not None:
                raise self._error
            raise StopAsyncIteration
        return frame

    # --- codes ---------------------------------------------------------------------------

    async def add(
        self, codes: str | Iterable[str], *, trades: bool | None = None, depth: bool | None = None
    ) -> None:
        """Stream more codes (by default of the kinds the stream was opened with); only the
        sockets that take them resubscribe."""
        self._running("add codes")
        self._place(validate_codes(codes), self._kinds(trades, depth))

    async def remove(
        self, codes: str | Iterable[str], *, trades: bool | None = None, depth: bool | None = None
    ) -> None:
        """Stop streaming codes (both kinds by default); a socket left with no code closes."""
        self._running("remove codes")
        drop = [c.code for c in validate_codes(codes)]
        kinds = self._kinds(trades, depth) if trades is not None or depth is not None else KINDS
        changed = self.layout.remove(drop, kinds)
        self.ledger.forget(itertools.product(kinds, drop))
        for slot in self.layout.discard_empty():
            await self._sockets.pop(slot.key).stop()
            changed.discard(slot.key)
        for key in changed:
            self._sockets[key].changed()
        self._order = [c for c in self._order if any(self.layout.where(c, k) for k in KINDS)]
        self._asked = [c for c in self._asked if c not in drop or c in self._order]

    def _running(self, what: str) -> None:
        if self._started_at is None or self._ended_at is not None:
            state = "has not started" if self._started_at is None else "has ended"
            raise RuntimeError(f"cannot {what}: the stream {state}")

    def _kinds(self, trades: bool | None, depth: bool | None) -> tuple[str, ...]:
        if trades is None and depth is None:
            return self.kinds
        kinds = tuple(k for k, on in ((TRADES, trades), (DEPTH, depth)) if on)
        if not kinds:
            raise ValueError("pass trades=True, depth=True or both")
        return kinds

    def _place(self, infos: list[Any], kinds: tuple[str, ...]) -> None:
        self._asked = list(dict.fromkeys([*self._asked, *(i.code for i in infos)]))
        outside = outside_plan(infos, self.plan)
        for kind in kinds:
            self.ledger.rows += unauthorized(outside, self.plan, ENDPOINT[kind], None)
        blocked = {c.code for c in outside}
        infos = [i for i in infos if i.code not in blocked]
        self._order = list(dict.fromkeys([*self._order, *(i.code for i in infos)]))
        changed, rejected = self.layout.add(infos, kinds)
        refused = {(kind, code) for code, kind in rejected}
        placed = itertools.product(kinds, (i.code for i in infos))
        self.ledger.asked((p for p in placed if p not in refused), self.clock.now())
        plan = self.plan
        for code, kind in rejected:
            self.ledger.rows.append(
                Failure(
                    code=code,
                    endpoint=ENDPOINT[kind],
                    kind="plan-limit",
                    msg=f"over the {plan.name} plan's WebSocket capacity: {plan.ws_connections} "
                    f"connection(s) x {plan.ws_codes} codes per subscription on its path",
                    attempts=0,
                )
            )
        for key in (k for k in self.layout.slots if k in changed):  # sockets in code order
            sock = self._sockets.get(key)
            if sock is None:
                sock = self._sockets[key] = Socket(self, self.layout.slots[key], self._rng)
                sock.start()
                sock.task.add_done_callback(self._socket_done)  # type: ignore[union-attr]
            sock.changed()

    def _socket_done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            self._end(task.exception())

    # --- what the sockets report ---------------------------------------------------------

    def on_open(self, sock: Socket) -> None:
        self.stats.connects += 1
        self.stats.reconnects += sock.generation > 1

    def on_close(self, sock: Socket, reason: str) -> None:
        self.stats.closes += 1
        self.ledger.closed(sock.acked[TRADES], self.clock.now(), reason)

    def on_subscribed(self, sock: Socket, kind: str, codes: tuple[str, ...]) -> None:
        self.ledger.acknowledged(kind, codes, self.clock.now())

    def on_refused(self, sock: Socket, kind: str, codes: tuple[str, ...], answer: Frame) -> None:
        """A subscription answered neither 200 nor 606: report its codes, stop asking."""
        if answer.ret == 606:
            return  # the socket closes and reconnects
        self.ledger.rows += [
            Failure(code=code, endpoint=ENDPOINT[kind], ret=answer.ret, msg=answer.msg or "?")
            for code in codes
        ]
        self.layout.remove(codes, (kind,))
        sock.changed()  # the server still holds the previous set: align it with what is left

    def on_push(self, frame: Frame) -> None:
        kind, data = frame.kind, frame.data
        assert kind is not None
        if not self.ledger.pushed(kind, data["code"], data.get("tick_time")):
            return  # removed, or not acknowledged yet
        if kind == TRADES:
            self.stats.trades += 1
        else:
            self.stats.books += 1
        buffer = self._buffers[kind]
        buffer.append(data)
        if len(buffer) >= self.batch_rows:
            self._flush(kind)

    # --- frames --------------------------------------------------------------------------

    async def _flush_loop(self) -> None:
        while True:
            await self.clock.sleep(self.batch_seconds)
            for kind in KINDS:
                self._flush(kind)

    def _flush(self, kind: str) -> None:
        records, self._buffers[kind] = self._buffers[kind], []
        if not records or self._out is None:
            return
        decode = _DECODERS[kind]
        try:
            frame = decode([Envelope(200, "ok", None, {"tick_list": records})])
        except MalformedResponse:  # one bad push: decode one by one, drop the bad ones
            good = []
            for record in records:
                try:
                    good.append(decode([Envelope(200, "ok", None, {"tick_list": [record]})]))
                except MalformedResponse:
                    self.stats.malformed += 1
            frame = pd.concat(good, ignore_index=True) if good else decode([])
        if not frame.empty:
            frame.attrs["kind"] = kind
            self._out.put_nowait(frame)

    # --- what came of it -------------------------------------------------------------------

    @property
    def failures(self) -> pd.DataFrame:
        """Every failure row so far (the schema of ``FetchResult.failures``; see
        :mod:`~alltick_frames.live.ledger` for the kinds)."""
        ended = self._ended_at is not None
        now = self._ended_at if ended else self.clock.now()
        timeout = self.silence_timeout
        return self.ledger.failures(now, ended=ended, timeout=timeout, order=self._asked)

    @property
    def asked(self) -> list[str]:
        """Every code asked for (placed on a socket or reported), in the order given."""
        return list(self._asked)

    @property
    def arrived(self) -> dict[str, set[str]]:
        """The codes that pushed at least once, per kind."""
        return {k: set(self.ledger.arrived[k]) for k in self.kinds}

    @property
    def elapsed(self) -> float:
        """Seconds since the stream started (until it ended), on its clock."""
        if self._started_at is None:
            return 0.0
        return (self._ended_at or self.clock.now()) - self._started_at

    @property
    def sockets(self) -> int:
        """Sockets connected right now."""
        return sum(sock.ws is not None for sock in self._sockets.values())

    @property
    def codes(self) -> dict[str, list[str]]:
        """The codes each kind is streaming (placed on a socket), in the order given."""
        return {k: [c for c in self._order if self.layout.where(c, k)] for k in self.kinds}
