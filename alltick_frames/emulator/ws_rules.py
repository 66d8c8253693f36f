"""AllTick's WebSocket rules as pure functions and state over the rate clock; no I/O here.

What the emulator enforces, per token (alltick-api.md §6 and §8 #17; alltick/docs
``en/getting-started/websocket-interface-limitations.mdx`` and ``en/websocket/*``):

==============================  ================================  ==============================
rule                            number                            when broken
==============================  ================================  ==============================
connections per base path       ``plan.ws_connections``           handshake refused: HTTP 429
                                (1/1/3/10/10; the stock and the   (``refuse="606"``: accepted,
                                forex socket count apart)         then ``ret`` 606 and closed)
reconnecting after a close      ``plan.ws_reconnect`` s after     as above; a refused attempt
                                the last close or refused         restarts the wait
                                attempt on that path (10 Free,
                                3 paid)
requests on one connection      ``WS_REQUEST_SPACING`` (1 s)      ``ret`` 606, then closed
                                apart; heartbeats exempt unless
                                ``heartbeat_spacing``
subscriptions on different      ``WS_SUBSCRIBE_SPACING`` (3 s)    ``ret`` 606, then closed
connections of the token        apart (22002, 22004, 22006)
codes per subscription          ``plan.ws_codes``                 cut to the first N
                                                                  (``oversize="603"``: 603)
heartbeat                       one per ``heartbeat_timeout``     closed
                                (30 s) at least
==============================  ================================  ==============================

Every time is read on the emulator's rate clock, so a test that drives that clock drives the
heartbeat deadline and the spacing rules too. A time exactly on a limit passes: a request
1.0 s after the previous one is allowed, a socket is closed only once *more* than 30 s have
passed without a heartbeat.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

import orjson

from alltick_frames.core.codes import FOREX_PATH, STOCK_PATH
from alltick_frames.core.plans import (
    WS_HEARTBEAT_TIMEOUT,
    WS_REQUEST_SPACING,
    WS_SUBSCRIBE_SPACING,
    Plan,
)

#: The two WebSocket paths, and the HTTP base path whose codes each one serves.
WS_STOCK_PATH = "/quote-stock-b-ws-api"
WS_FOREX_PATH = "/quote-b-ws-api"
WS_PATHS: dict[str, str] = {WS_STOCK_PATH: STOCK_PATH, WS_FOREX_PATH: FOREX_PATH}

HEARTBEAT = 22000
SUBSCRIBE_DEPTH = 22002
SUBSCRIBE_TRADES = 22004
CANCEL = 22006
PUSH_TRADE = 22998
PUSH_DEPTH = 22999
#: Requests, and the name the emulator's stats count their answers under.
COMMANDS: dict[int, str] = {
    HEARTBEAT: "ws-heartbeat",
    SUBSCRIBE_DEPTH: "ws-depth",
    SUBSCRIBE_TRADES: "ws-trade",
    CANCEL: "ws-cancel",
}

TOO_MANY = 606
MESSAGES: dict[int, str] = {
    200: "ok",
    401: "token invalid",
    603: "token level not enough",
    606: "too many requests and connection will be closed",
}
HEADER_INVALID = "request header param invalid"
DATA_INVALID = "request data param invalid"
MAX_TRACE = 64

Refusal = Literal["connections", "reconnect"]

#: The shortest cadence: trades of one code stay at least 50 ms apart, so their ``seq``
#: numbers (one per 50 ms, as on the HTTP side) strictly increase.
MIN_CADENCE = 0.25


@dataclass(frozen=True, slots=True)
class WsConfig:
    """How the emulator's WebSocket behaves where AllTick leaves a choice, and its faults.

    ``refuse``: a handshake over the connection cap or too soon after a close gets HTTP 429
    (``"429"``, seen by one client) or is accepted, answered ``ret`` 606 and closed (``"606"``).
    ``cadence``: seconds of market time between two trades of one code, and between two books.
    ``push_ints``: send ``seq`` and ``tick_time`` of pushes as JSON integers (the docs' push
    tables and examples show strings; alltick-api.md §6 reports integers too).
    ``heartbeat_spacing``: heartbeats also need 1 s from other requests on their connection
    (§8 #17 exempts them). ``heartbeat_timeout``: seconds without a heartbeat before a close.

    Faults, as probabilities per push: ``drop`` aborts the socket instead of sending the push,
    ``delay`` holds the push (and those after it on that socket) back ``latency`` seconds of
    real time, ``malformed`` sends a broken frame in its place (the push is lost).
    """

    refuse: Literal["429", "606"] = "429"
    cadence: float = 5.0
    push_ints: bool = False
    heartbeat_spacing: bool = False
    heartbeat_timeout: float = WS_HEARTBEAT_TIMEOUT
    drop: float = 0.0
    delay: float = 0.0
    malformed: float = 0.0
    latency: float = 0.5

    def __post_init__(self) -> None:
        if self.refuse not in ("429", "606"):
            raise ValueError(f"ws refuse must be '429' or '606', not {self.refuse!r}")
        if not MIN_CADENCE <= self.cadence <= 3600:
            raise ValueError(
                f"ws cadence must lie in [{MIN_CADENCE}, 3600] seconds, not {self.cadence}"
            )
        if self.heartbeat_timeout <= 0 or self.latency < 0:
            raise ValueError("ws heartbeat_timeout must be > 0 and latency >= 0 seconds")
        for name in ("drop", "delay", "malformed"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"ws fault rate {name}={getattr(self, name)} must lie in [0, 1]")
        if self.drop + self.malformed > 1.0:
            raise ValueError("ws drop + malformed exclude each other: their sum must be <= 1")

    @classmethod
    def coerce(cls, value: WsConfig | Mapping[str, Any] | None) -> WsConfig:
        """Accept a :class:`WsConfig`, a dict of its fields, or None (the defaults)."""
        if value is None:
            return cls()
        if isinstance(value, WsConfig):
            return value
        known = {f.name for f in fields(cls)}
        unknown = set(value) - known
        if unknown:
            raise ValueError(f"unknown ws setting(s) {sorted(unknown)}; known: {sorted(known)}")
        return cls(**value)

    def updated(self, **changes: Any) -> WsConfig:
        return WsConfig.coerce({**asdict(self), **changes})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class WsError(Exception):
    """Ends a request with ``ret`` and its message (the socket stays open unless 606)."""

    def __init__(self, ret: int, msg: str | None = None) -> None:
        super().__init__(ret)
        self.ret = ret
        self.msg = msg or MESSAGES[ret]


@dataclass(frozen=True, slots=True)
class Request:
    """One parsed request frame."""

    cmd_id: int
    seq_id: int
    trace: str
    data: dict[str, Any]


def _is_int(value: Any) -> bool:
    return type(value) is int  # bool is an int in Python, and a JSON true is no cmd_id


def parse_request(raw: str | bytes) -> Request:
    """A request frame, or :class:`WsError` 400 "request header param invalid" when it is not
    a JSON object with an integer ``cmd_id`` this server knows, an integer ``seq_id``, a
    ``trace`` of at most 64 characters and an object ``data``."""
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise WsError(400, HEADER_INVALID) from None
    if not isinstance(doc, dict):
        raise WsError(400, HEADER_INVALID)
    cmd_id, seq_id, trace, data = (doc.get(k) for k in ("cmd_id", "seq_id", "trace", "data"))
    if (
        not _is_int(cmd_id)
        or cmd_id not in COMMANDS
        or not _is_int(seq_id)
        or seq_id < 0
        or not isinstance(trace, str)
        or len(trace) > MAX_TRACE
        or not isinstance(data, dict)
    ):
        raise WsError(400, HEADER_INVALID)
    return Request(cmd_id, seq_id, trace, data)


def reply(cmd_id: int, seq_id: int, trace: str, ret: int = 200, msg: str | None = None) -> bytes:
    """The answer to a request: its ``cmd_id`` + 1, the request's ``seq_id`` and ``trace``."""
    return orjson.dumps(
        {
            "ret": ret,
            "msg": msg or MESSAGES[ret],
            "cmd_id": cmd_id + 1 if cmd_id else 0,
            "seq_id": seq_id,
            "trace": trace,
            "data": {},
        }
    )


#: What a frame that is not a request gets (the documented example has 201; the emulator
#: answers 400 as its HTTP side does).
BAD_FRAME = reply(0, 0, "", 400, HEADER_INVALID)


def symbols(data: Mapping[str, Any], cap: int, oversize: str) -> dict[str, int | None]:
    """``code -> depth_level`` (None when not given) of a subscription, in the order sent.

    ``symbol_list`` must be a list of objects with a non-empty string ``code`` and, optionally,
    an integer ``depth_level`` of at least 1 (else 400 "request data param invalid"). A code
    listed twice counts once. More codes than ``cap``: the first ``cap`` (``oversize="cut"``)
    or 603 (``oversize="603"``).
    """
    items = data.get("symbol_list")
    if not isinstance(items, list):
        raise WsError(400, DATA_INVALID)
    out: dict[str, int | None] = {}
    for item in items:
        code = item.get("code") if isinstance(item, dict) else None
        if not isinstance(code, str) or not code:
            raise WsError(400, DATA_INVALID)
        level = item.get("depth_level")
        if level is not None and (not _is_int(level) or level < 1):
            raise WsError(400, DATA_INVALID)
        out.setdefault(code, level)
    if len(out) > cap:
        if oversize == "603":
            raise WsError(603)
        out = dict(list(out.items())[:cap])
    return out


TRADES, DEPTH = "trade", "depth"


def cancelled(data: Mapping[str, Any], path: str) -> frozenset[str]:
    """The subscription kinds a 22006 cancels: ``cancel_type`` 0 both, 1 depth, 2 trades.

    3 ("cancel forex", listed by the 2026 docs without a word more) cancels both on the forex
    socket and nothing on the stock socket: the emulator's reading. Anything else is 400.
    """
    kind = data.get("cancel_type")
    if not _is_int(kind) or not 0 <= kind <= 3:
        raise WsError(400, DATA_INVALID)
    if kind == 3:
        return frozenset((TRADES, DEPTH)) if path == WS_FOREX_PATH else frozenset()
    return {0: frozenset((TRADES, DEPTH)), 1: frozenset((DEPTH,)), 2: frozenset((TRADES,))}[kind]


class TokenSockets:
    """The connections and request history of one token: every limit of the table above."""

    def __init__(self, plan: Plan, config: WsConfig) -> None:
        self.plan = plan
        self.config = config
        self.live: dict[str, set[int]] = {path: set() for path in WS_PATHS}
        #: Per path: the last close, or the last attempt refused for coming too soon.
        self._quiet_since: dict[str, float] = {}
        self._last_request: dict[int, float] = {}
        self._last_subscription: dict[int, float] = {}

    def admit(self, path: str, now: float) -> Refusal | None:
        """Whether a handshake on ``path`` may open a connection now (None) or why not."""
        if len(self.live[path]) >= self.plan.ws_connections:
            return "connections"
        quiet = self._quiet_since.get(path)
        if quiet is not None and now - quiet < self.plan.ws_reconnect:
            self._quiet_since[path] = now
            return "reconnect"
        return None

    def opened(self, path: str, conn: int) -> None:
        self.live[path].add(conn)

    def closed(self, path: str, conn: int, now: float) -> None:
        self.live[path].discard(conn)
        self._quiet_since[path] = now
        self._last_request.pop(conn, None)

    def request(self, conn: int, now: float, *, heartbeat: bool = False) -> bool:
        """Count a request on ``conn`` if the spacing rules allow it; False means 606."""
        if heartbeat and not self.config.heartbeat_spacing:
            return True
        last = self._last_request.get(conn, -math.inf)
        if now - last < WS_REQUEST_SPACING:
            return False
        if not heartbeat:
            recent = {
                c: t for c, t in self._last_subscription.items() if now - t < WS_SUBSCRIBE_SPACING
            }
            if recent.keys() - {conn}:
                return False
            recent[conn] = now
            self._last_subscription = recent
        self._last_request[conn] = now
        return True

    def forget(self) -> None:
        """Forget closes and request times (not the live connections): a fresh start."""
        self._quiet_since.clear()
        self._last_request.clear()
        self._last_subscription.clear()
