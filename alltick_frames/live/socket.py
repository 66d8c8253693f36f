"""One WebSocket of a stream: connect, subscribe, beat, read; after a close, do it all again.

A :class:`Socket` owns one :class:`~alltick_frames.live.layout.Slot` (a base path and the
codes it carries) and keeps one connection open for it, forever, until stopped:

1. connect to the slot's path with ``?token=``; a handshake refused with HTTP 429 (connection
   cap, or too soon after a close) waits the plan's reconnect spacing again; 401 and 404 end
   the stream (a bad token or base URL will not heal); network errors back off;
2. subscribe each kind with its full set of codes, through the stream's
   :class:`~alltick_frames.live.pacing.Pacer`, and again whenever the set changes;
3. send a heartbeat every ``heartbeat`` seconds from the moment the socket opened;
4. hand every push to the stream, and every answer to the request awaiting it;
5. once closed, wait ``plan.ws_reconnect`` seconds (10 on Free, 3 when paid) plus
   :data:`RECONNECT_GUARD` plus a random jitter, and start over.
"""

from __future__ import annotations

import asyncio
import itertools
import random
from functools import partial
from typing import TYPE_CHECKING, Any

import aiohttp

from alltick_frames.core.errors import AuthError, TransportError
from alltick_frames.live.layout import Slot
from alltick_frames.live.wire import (
    CANCEL,
    CANCEL_TYPE,
    HEARTBEAT,
    KINDS,
    SUBSCRIBE,
    WS_PATHS,
    Frame,
    parse,
    request,
    subscription,
    ws_url,
)
from alltick_frames.run.transport import scrub

if TYPE_CHECKING:
    from alltick_frames.live.stream import Stream

#: Seconds added to the plan's reconnect spacing: the server stamps a close a moment after
#: the client sees it.
RECONNECT_GUARD = 0.25
#: Real seconds to wait for the answer to a request before giving the connection up.
ANSWER_TIMEOUT = 10.0
#: The longest wait between two attempts when the network keeps failing.
MAX_BACKOFF = 60.0


class Socket:
    """Keeps one connection open for ``slot`` on behalf of ``stream``."""

    def __init__(self, stream: Stream, slot: Slot, rng: random.Random) -> None:
        self.stream = stream
        self.slot = slot
        self.rng = rng
        self.generation = 0
        #: The codes the current connection has subscribed, per kind (acknowledged 200).
        self.acked: dict[str, tuple[str, ...]] = {k: () for k in KINDS}
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self._pending: dict[int, asyncio.Future[Frame]] = {}
        self._seq = itertools.count(1)
        self._dirty = asyncio.Event()
        self._next_attempt = 0.0
        self._failed = 0
        self.task: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        sizes = ", ".join(f"{k} {len(v)}" for k, v in self.slot.codes.items())
        return f"Socket({WS_PATHS[self.slot.path]} #{self.slot.index}: {sizes})"

    @property
    def key(self) -> tuple[str, int, int]:
        """This connection, for the pacer (a reconnect is another connection)."""
        return (self.slot.path, self.slot.index, self.generation)

    def start(self) -> None:
        self.task = asyncio.create_task(self.run(), name=repr(self))

    def changed(self) -> None:
        """The slot's codes changed: resubscribe what differs."""
        self._dirty.set()

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
        if self.ws is not None:
            await self.ws.close()

    # --- the connection's life -----------------------------------------------------------

    async def run(self) -> None:
        clock, plan = self.stream.clock, self.stream.plan
        while True:
            await clock.sleep_until(self._next_attempt)
            ws = await self._connect()
            if ws is None:
                continue
            self._failed = 0
            self.generation += 1
            self.stream.on_open(self)
            try:
                reason = await self._serve(ws)
            finally:
                self.ws = None
                await ws.close()
            self.stream.on_close(self, reason)
            self.stream.pacer.forget(self.key)
            self._next_attempt = clock.now() + plan.ws_reconnect + self._jitter()

    def _jitter(self) -> float:
        return RECONNECT_GUARD + self.rng.uniform(0, self.stream.jitter)

    async def _connect(self) -> aiohttp.ClientWebSocketResponse | None:
        stream = self.stream
        url = ws_url(stream.base_url, WS_PATHS[self.slot.path])
        token = stream.token.reveal()
        try:
            return await stream.session.ws_connect(url, params={"token": token}, autoping=True)
        except aiohttp.WSServerHandshakeError as exc:
            if exc.status == 401:
                raise AuthError("the WebSocket refused the token", ret=401) from None
            if exc.status in (400, 404):
                raise TransportError(
                    f"no AllTick WebSocket at {url} (HTTP {exc.status}); check the base URL",
                    endpoint=WS_PATHS[self.slot.path],
                ) from None
            # 429: over the connection cap or too soon after a close: the spacing again.
            stream.stats.refused += 1
            self._next_attempt = stream.clock.now() + stream.plan.ws_reconnect + self._jitter()
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            stream.last_error = scrub(f"{type(exc).__name__}: {exc}", token)
            self._failed += 1
            wait = min(MAX_BACKOFF, stream.plan.ws_reconnect * 2**self._failed)
            self._next_attempt = stream.clock.now() + wait + self._jitter()
        return None

    async def _serve(self, ws: aiohttp.ClientWebSocketResponse) -> str:
        """Run one connection until it closes; returns why it closed."""
        self.ws = ws
        self.acked = {k: () for k in KINDS}
        self._dirty.set()
        reader = asyncio.create_task(self._read(ws))
        helpers = {asyncio.create_task(self._beat(ws)), asyncio.create_task(self._sync(ws))}
        try:
            await asyncio.wait({reader, *helpers}, return_when=asyncio.FIRST_COMPLETED)
            for task in helpers:
                if task.done() and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
            unanswered = [t.result() for t in helpers if t.done() and t.result()]
            if unanswered:  # the link died without a word: give the connection up
                await ws.close()
                return unanswered[0]
            return await reader
        finally:
            for task in (reader, *helpers):
                task.cancel()
            await asyncio.gather(reader, *helpers, return_exceptions=True)
            for future in self._pending.values():
                future.cancel()
            self._pending.clear()

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> str:
        stream = self.stream
        saw_606 = False
        while True:
            msg = await ws.receive()
            if msg.type not in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                break
            frame = parse(msg.data)
            if frame is None:
                stream.stats.malformed += 1
            elif frame.kind is not None:
                stream.on_push(frame)
            else:
                if frame.ret == 606:
                    saw_606 = True
                    stream.stats.too_many += 1
                future = self._pending.pop(frame.seq_id or 0, None)
                if future is not None and not future.done():
                    future.set_result(frame)
        if saw_606:
            return "ret 606 (too many requests), closed by the server"
        if msg.type != aiohttp.WSMsgType.CLOSE:
            return "the connection dropped"
        reason = f": {msg.extra}" if msg.extra else ""
        return f"closed by the server (code {msg.data}{reason})"

    async def _exchange(
        self, ws: aiohttp.ClientWebSocketResponse, cmd_id: int, data: dict[str, Any] | None = None
    ) -> Frame:
        """Send one request and return its answer."""
        seq = next(self._seq)
        future: asyncio.Future[Frame] = asyncio.get_running_loop().create_future()
        self._pending[seq] = future
        await ws.send_str(request(cmd_id, seq, data))
        return await asyncio.wait_for(future, ANSWER_TIMEOUT)

    async def _beat(self, ws: aiohttp.ClientWebSocketResponse) -> str | None:
        """Send heartbeats; returns why when one got no answer, None when the socket closed."""
        stream = self.stream
        last = stream.clock.now()
        while True:
            await stream.clock.sleep_until(last + stream.heartbeat)
            try:
                await stream.pacer.request(
                    self.key, partial(self._exchange, ws, HEARTBEAT), subscription=False
                )
            except TimeoutError:
                return f"no answer to a heartbeat in {ANSWER_TIMEOUT:g} s"
            except (ConnectionError, RuntimeError):
                return None  # closed: the reader says why
            stream.stats.heartbeats += 1
            last = stream.clock.now()

    async def _sync(self, ws: aiohttp.ClientWebSocketResponse) -> str | None:
        """Subscribe each kind's full set whenever it differs from what was acknowledged;
        returns like :meth:`_beat`."""
        stream = self.stream
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            async with stream.pacer.subscribing():
                for kind in KINDS:
                    want = tuple(self.slot.codes[kind])
                    if want == self.acked[kind]:
                        continue
                    if want:
                        cmd, data = SUBSCRIBE[kind], subscription(kind, want, stream.depth_level)
                    else:
                        cmd, data = CANCEL, {"cancel_type": CANCEL_TYPE[kind]}
                    try:
                        answer = await stream.pacer.request(
                            self.key, partial(self._exchange, ws, cmd, data), subscription=True
                        )
                    except TimeoutError:
                        return f"no answer to a subscription in {ANSWER_TIMEOUT:g} s"
                    except (ConnectionError, RuntimeError):
                        return None  # closed: the reader says why
                    stream.stats.subscriptions += 1
                    if answer.ret == 200:
                        self.acked[kind] = want
                        stream.on_subscribed(self, kind, want)
                    else:
                        stream.on_refused(self, kind, want, answer)
