"""The emulator's WebSocket: ``/quote-stock-b-ws-api`` and ``/quote-b-ws-api`` with ``?token=``.

A handshake passes the token gate (missing: HTTP 401 ``{"msg":"token is required","ret":401}``;
unknown: HTTP 401 ``{"ret":401,"msg":"token invalid"}``), then the connection cap and the
reconnect spacing of :mod:`~alltick_frames.emulator.ws_rules`. An open socket answers

* 22000 heartbeat with 22001; 22002 order books and 22004 trades with 22003 and 22005 (each
  replaces the whole set of its kind); 22006 cancel with 22007. Every answer echoes ``seq_id``
  and ``trace`` and carries ``ret``, ``msg`` and ``data: {}``;
* a frame that is no request with ``{"ret":400,"msg":"request header param invalid",
  "cmd_id":0,"seq_id":0,"trace":"","data":{}}``, and bad ``data`` with 400
  "request data param invalid", the socket staying open;
* a request that breaks the spacing rules with ``ret`` 606, after which the socket is closed.

Codes that are unknown, on the other path or outside the token's plan or basket are
acknowledged with 200 and never pushed (alltick-api.md §8 #17). The others get pushes
``{"cmd_id":22998,"data":{...}}`` (trades) and ``{"cmd_id":22999,"data":{...}}`` (books) from
:mod:`~alltick_frames.emulator.ws_market`; numbers are strings as in the docs' push tables,
``trade_direction`` an integer (``push_ints`` sends ``seq`` and ``tick_time`` as integers).

**Time.** Rules and the heartbeat deadline run on the rate clock. Pushes follow the market:
with a real-time market clock, real time; with a fixed one (``--now``, the test fixture's
default) the socket's market runs on from that instant at the pace of the rate clock, so a test
that drives the rate clock drives the pushes too. HTTP answers stay at the fixed instant; move
it (``set_market_now``) to read the bars of the minutes a stream has covered.

**Admin** (not AllTick's): ``GET /_emulator/ws`` shows the settings, the live connections and
their subscriptions, and ``subscribed``: the last :data:`SUBSCRIPTION_LOG` subscriptions the
hub accepted, closed sockets' included (``{"id", "path", "kind", "codes"}``).
``POST /_emulator/ws`` takes ``{"disconnect": true}`` (or a token) to abort sockets now,
``{"reset": true}`` to forget closes and request times, and any
:class:`~alltick_frames.emulator.ws_rules.WsConfig` field to change it. Answers are counted in
``/_emulator/stats`` beside the HTTP ones, per token: ``ws-connect`` (``101`` accepted,
``429``/``606`` refused, ``401``), ``ws-heartbeat``, ``ws-trade``, ``ws-depth``, ``ws-cancel``
(by ``ret``), ``ws-frame`` (frames that are no request), ``ws-push-trade`` and
``ws-push-depth`` (``sent``, ``delayed``, ``malformed``, ``dropped``) and ``ws-close`` (why a
socket ended: ``client``, ``heartbeat``, ``606``, ``dropped``, ``shutdown``).
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import WSMsgType, web

from alltick_frames.emulator.config import TokenSpec
from alltick_frames.emulator.envelope import TOKEN_REQUIRED
from alltick_frames.emulator.handlers import authorised
from alltick_frames.emulator.service import MISSING_TOKEN, Emulator
from alltick_frames.emulator.ws_market import BookFeed, Push, TradeFeed
from alltick_frames.emulator.ws_rules import (
    BAD_FRAME,
    CANCEL,
    COMMANDS,
    DEPTH,
    HEARTBEAT,
    MESSAGES,
    PUSH_DEPTH,
    PUSH_TRADE,
    SUBSCRIBE_DEPTH,
    TOO_MANY,
    TRADES,
    WS_PATHS,
    TokenSockets,
    WsConfig,
    WsError,
    cancelled,
    parse_request,
    reply,
    symbols,
)

#: Real seconds between two rounds of pushes and heartbeat checks.
PUSH_TICK = 0.02
_JSON = "application/json"
_CLOSE = object()  # tells a socket's writer to close it


@dataclass(eq=False)
class Connection:
    """One open socket and what it subscribed to (a feed of None: acked, never pushed)."""

    id: int
    token: str
    path: str
    spec: TokenSpec
    ws: web.WebSocketResponse
    request: web.Request
    last_heartbeat: float
    trades: dict[str, TradeFeed | None] = field(default_factory=dict)
    depth: dict[str, BookFeed | None] = field(default_factory=dict)
    outbox: asyncio.Queue[Any] = field(default_factory=asyncio.Queue)
    closing: str | None = None

    def send(self, frame: bytes, delay: float = 0.0) -> None:
        self.outbox.put_nowait((frame, delay))

    def close(self, reason: str) -> None:
        if self.closing is None:
            self.closing = reason
            self.outbox.put_nowait(_CLOSE)

    def drop(self) -> None:
        """Abort the TCP connection without a close frame, as a broken network would."""
        self.closing = self.closing or "dropped"
        if self.request.transport is not None:
            self.request.transport.abort()

    def due(self, now: float) -> list[tuple[int, Push]]:
        """``(cmd_id, data)`` of every push due by market time ``now``, oldest first."""
        now_ms = int(now * 1000)
        out = [(PUSH_TRADE, t) for feed in self.trades.values() if feed for t in feed.due(now_ms)]
        out += [(PUSH_DEPTH, b) for feed in self.depth.values() if feed for b in feed.due(now)]
        out.sort(key=lambda push: int(push[1]["tick_time"]))
        return out

    async def write(self) -> None:
        """Send the outbox in order, holding delayed frames back; close on request."""
        while True:
            item = await self.outbox.get()
            if item is _CLOSE:
                await self.ws.close(message=(self.closing or "").encode())
                return
            frame, delay = item
            if delay:
                await asyncio.sleep(delay)
            if self.ws.closed:
                return
            await self.ws.send_str(frame.decode())


#: Accepted subscriptions the admin view keeps (the oldest are forgotten first).
SUBSCRIPTION_LOG = 1000


class WsHub:
    """The WebSocket side of one emulator: its connections, their rules and their pushes."""

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator
        self.config = WsConfig.coerce(emulator.config.ws)
        self.sockets: dict[str, TokenSockets] = {}
        self.connections: dict[int, Connection] = {}
        self.rng = random.Random(emulator.config.seed)
        self._ids = itertools.count(1)
        self._fixed = emulator.admin_state()["market_now"]
        self._anchor = emulator.clock.now()
        self._pusher: asyncio.Task[None] | None = None
        self.subscribed: deque[dict[str, Any]] = deque(maxlen=SUBSCRIPTION_LOG)

    # --- time --------------------------------------------------------------------------

    def market_now(self) -> float:
        """The socket's market time (see the module docstring)."""
        fixed = self.emulator.admin_state()["market_now"]
        rate = self.emulator.clock.now()
        if fixed is None:
            return time.time()
        if fixed != self._fixed:
            self._fixed, self._anchor = fixed, rate
        return fixed + (rate - self._anchor)

    def _count(self, token: str, event: str, key: str) -> None:
        self.emulator.count(token, event, key)

    def _rules(self, token: str, spec: TokenSpec) -> TokenSockets:
        rules = self.sockets.get(token)
        if rules is None:
            rules = self.sockets[token] = TokenSockets(spec.plan, self.config)
        return rules

    # --- handshake and the socket's life -------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """The handler of both WebSocket paths."""
        token = request.query.get("token", "")
        spec = self.emulator.tokens.get(token)
        if spec is None:
            self._count(token or MISSING_TOKEN, "ws-connect", "401")
            body = TOKEN_REQUIRED if not token else orjson.dumps({"ret": 401, "msg": MESSAGES[401]})
            return web.Response(status=401, body=body, content_type=_JSON)
        ws = web.WebSocketResponse()
        if not ws.can_prepare(request).ok:
            return web.Response(status=400, text="expected a WebSocket handshake (Upgrade)")
        rules = self._rules(token, spec)
        refused = rules.admit(request.path, self.emulator.clock.now())
        if refused is not None and self.config.refuse == "429":
            self._count(token, "ws-connect", "429")
            body = orjson.dumps({"ret": TOO_MANY, "msg": MESSAGES[TOO_MANY]})
            return web.Response(status=429, body=body, content_type=_JSON)
        await ws.prepare(request)
        if refused is not None:
            self._count(token, "ws-connect", str(TOO_MANY))
            await ws.send_str(reply(0, 0, "", TOO_MANY).decode())
            await ws.close()
            return ws
        self._count(token, "ws-connect", "101")
        conn = Connection(
            next(self._ids), token, request.path, spec, ws, request, self.emulator.clock.now()
        )
        rules.opened(conn.path, conn.id)
        self.connections[conn.id] = conn
        if self._pusher is None or self._pusher.done():
            self._pusher = asyncio.create_task(self._push_loop())
        writer = asyncio.create_task(conn.write())
        try:
            async for msg in ws:
                if msg.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                    self._command(conn, msg.data)
        finally:
            writer.cancel()
            del self.connections[conn.id]
            rules.closed(conn.path, conn.id, self.emulator.clock.now())
            self._count(token, "ws-close", conn.closing or "client")
        return ws

    def _command(self, conn: Connection, raw: str | bytes) -> None:
        if conn.closing:
            return
        try:
            req = parse_request(raw)
        except WsError as error:
            self._count(conn.token, "ws-frame", str(error.ret))
            conn.send(BAD_FRAME)
            return
        event = COMMANDS[req.cmd_id]
        now = self.emulator.clock.now()
        if not self.sockets[conn.token].request(conn.id, now, heartbeat=req.cmd_id == HEARTBEAT):
            self._count(conn.token, event, str(TOO_MANY))
            conn.send(reply(req.cmd_id, req.seq_id, req.trace, TOO_MANY))
            conn.close(str(TOO_MANY))
            return
        try:
            if req.cmd_id == HEARTBEAT:
                conn.last_heartbeat = now
            elif req.cmd_id == CANCEL:
                for kind in cancelled(req.data, conn.path):
                    (conn.trades if kind == TRADES else conn.depth).clear()
            else:
                plan = conn.spec.plan
                wanted = symbols(req.data, plan.ws_codes, self.emulator.config.oversize)
                self._subscribe(conn, DEPTH if req.cmd_id == SUBSCRIBE_DEPTH else TRADES, wanted)
        except WsError as error:
            self._count(conn.token, event, str(error.ret))
            conn.send(reply(req.cmd_id, req.seq_id, req.trace, error.ret, error.msg))
            return
        self._count(conn.token, event, "200")
        conn.send(reply(req.cmd_id, req.seq_id, req.trace))

    def _subscribe(self, conn: Connection, kind: str, wanted: dict[str, int | None]) -> None:
        """Replace the set of ``kind``; codes kept keep their feed (no repeat, no gap)."""
        now = self.market_now()
        catalogue, base = self.emulator.catalogue, WS_PATHS[conn.path]
        cadence = self.config.cadence
        old: dict[str, Any] = conn.trades if kind == TRADES else conn.depth
        new: dict[str, Any] = {}
        for code, level in wanted.items():
            feed = old.get(code)
            if code in old and (kind == TRADES or feed is None or feed.level == level):
                new[code] = feed
                continue
            inst = catalogue.get(code)
            if inst is None or inst.path != base or not authorised(conn.spec, inst):
                new[code] = None
            elif kind == TRADES:
                new[code] = TradeFeed(inst, cadence, int(now * 1000))
            else:
                new[code] = BookFeed(inst, cadence, level, now)
        if kind == TRADES:
            conn.trades = new
        else:
            conn.depth = new
        self.subscribed.append(
            {"id": conn.id, "path": conn.path, "kind": kind, "codes": list(wanted)}
        )

    # --- pushes --------------------------------------------------------------------------

    async def _push_loop(self) -> None:
        """Every tick: close sockets past their heartbeat deadline, push what is due."""
        while self.connections:
            await asyncio.sleep(PUSH_TICK)
            now = self.emulator.clock.now()
            market_now = self.market_now()
            for conn in list(self.connections.values()):
                if conn.closing:
                    continue
                if now - conn.last_heartbeat > self.config.heartbeat_timeout:
                    conn.close("heartbeat")
                    continue
                for cmd_id, data in conn.due(market_now):
                    if not self._push(conn, cmd_id, data):
                        break

    def _push(self, conn: Connection, cmd_id: int, data: Push) -> bool:
        """Send one push as the faults decide; False when the socket was dropped."""
        event = "ws-push-trade" if cmd_id == PUSH_TRADE else "ws-push-depth"
        if self.config.push_ints:
            data = {**data, "seq": int(data["seq"]), "tick_time": int(data["tick_time"])}
        frame = orjson.dumps({"cmd_id": cmd_id, "data": data})
        cfg, delay = self.config, 0.0
        if cfg.drop or cfg.malformed or cfg.delay:
            draw = self.rng.random()
            if draw < cfg.drop:
                self._count(conn.token, event, "dropped")
                conn.drop()
                return False
            if draw < cfg.drop + cfg.malformed:
                self._count(conn.token, event, "malformed")
                frame = frame[: max(1, len(frame) // 2)] if self.rng.random() < 0.5 else b"<busy>"
            if self.rng.random() < cfg.delay:
                self._count(conn.token, event, "delayed")
                delay = cfg.latency
        self._count(conn.token, event, "sent")
        conn.send(frame, delay)
        return True

    # --- admin ---------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        return {
            "config": self.config.to_dict(),
            "market_now": self.market_now(),
            "connections": [
                {
                    "id": conn.id,
                    "token": conn.token,
                    "path": conn.path,
                    "trades": list(conn.trades),
                    "depth": list(conn.depth),
                    "last_heartbeat": conn.last_heartbeat,
                }
                for conn in self.connections.values()
            ],
            "subscribed": list(self.subscribed),
        }

    async def admin(self, request: web.Request) -> web.Response:
        if request.method == "POST":
            try:
                body = orjson.loads(await request.read() or b"{}")
                disconnect = body.pop("disconnect", None)
                if body.pop("reset", False):
                    for rules in self.sockets.values():
                        rules.forget()
                if body:
                    self.config = self.config.updated(**body)
                    for rules in self.sockets.values():
                        rules.config = self.config
                for conn in list(self.connections.values()):
                    if disconnect is True or disconnect == conn.token:
                        conn.drop()
            except (ValueError, TypeError, AttributeError) as error:
                return web.Response(
                    status=400, body=orjson.dumps({"error": str(error)}), content_type=_JSON
                )
        return web.Response(body=orjson.dumps(self.state()), content_type=_JSON)

    async def shutdown(self, _app: web.Application) -> None:
        for conn in list(self.connections.values()):
            conn.closing = conn.closing or "shutdown"
            await conn.ws.close(message=b"server shutdown")
        if self._pusher is not None:
            self._pusher.cancel()


WS_HUB_KEY = web.AppKey("alltick_ws_hub", WsHub)


def add_websocket_routes(app: web.Application, emulator: Emulator) -> WsHub:
    """Serve the two WebSocket paths and ``/_emulator/ws`` on ``app``."""
    hub = WsHub(emulator)
    app[WS_HUB_KEY] = hub
    for path in WS_PATHS:
        app.router.add_get(path, hub.handle)
    app.router.add_route("*", "/_emulator/ws", hub.admin)
    app.on_shutdown.append(hub.shutdown)
    return hub
