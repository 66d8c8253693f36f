"""AllTick's WebSocket frames: building requests and reading what the server sends. Pure.

Requests are ``{"cmd_id": u32, "seq_id": u32, "trace": str, "data": {...}}``; answers add
``ret`` and ``msg``; pushes are ``{"cmd_id": 22998 | 22999, "data": {...}}`` with one trade or
one book each (alltick-api.md §6; alltick/docs ``en/websocket/*``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import orjson

from alltick_frames.core.codes import FOREX_PATH, STOCK_PATH
from alltick_frames.core.wire import new_trace

#: The WebSocket path that serves the codes of each HTTP base path.
WS_PATHS: dict[str, str] = {STOCK_PATH: "/quote-stock-b-ws-api", FOREX_PATH: "/quote-b-ws-api"}

HEARTBEAT = 22000
CANCEL = 22006
PUSH_TRADE = 22998
PUSH_DEPTH = 22999

#: The two kinds of subscription, as the stream names them.
TRADES, DEPTH = "trades", "depth"
KINDS: tuple[str, ...] = (TRADES, DEPTH)
SUBSCRIBE: dict[str, int] = {TRADES: 22004, DEPTH: 22002}
CANCEL_TYPE: dict[str, int] = {DEPTH: 1, TRADES: 2}
PUSH_KIND: dict[int, str] = {PUSH_TRADE: TRADES, PUSH_DEPTH: DEPTH}
#: The endpoint name failure rows of each kind carry.
ENDPOINT: dict[str, str] = {TRADES: "ws-trade", DEPTH: "ws-depth"}
#: The deepest book AllTick has (HK: 10 levels); asking for more gives what exists.
MAX_DEPTH_LEVEL = 10


def ws_url(base_url: str, path: str) -> str:
    """``https://quote.alltick.co`` + ``/quote-b-ws-api`` -> ``wss://quote.alltick.co/quote-b-ws-api``
    (``http`` becomes ``ws``), without the token: it is added as a query parameter."""
    parts = urlsplit(base_url)
    scheme = {"https": "wss", "http": "ws"}.get(parts.scheme, parts.scheme)
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/") + path, "", ""))


def request(cmd_id: int, seq_id: int, data: dict[str, Any] | None = None) -> str:
    """One request frame as JSON text, with a fresh ``trace``."""
    frame = {"cmd_id": cmd_id, "seq_id": seq_id, "trace": new_trace(), "data": data or {}}
    return orjson.dumps(frame).decode()


def subscription(kind: str, codes: Sequence[str], depth_level: int) -> dict[str, Any]:
    """``data`` of a trade (22004) or order-book (22002) subscription of ``codes``."""
    if kind == DEPTH:
        return {"symbol_list": [{"code": c, "depth_level": depth_level} for c in codes]}
    return {"symbol_list": [{"code": c} for c in codes]}


@dataclass(frozen=True, slots=True)
class Frame:
    """A frame from the server: a push (``kind`` set, ``data`` the trade or book) or an answer
    (``seq_id``, ``ret``, ``msg``)."""

    cmd_id: int
    data: Any = None
    kind: str | None = None
    seq_id: int | None = None
    ret: int | None = None
    msg: str = ""


def parse(raw: str | bytes) -> Frame | None:
    """The frame, or None when it is not one (not JSON, no integer ``cmd_id``, a push whose
    ``data`` is not an object with a ``code``)."""
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(doc, dict):
        return None
    cmd_id = doc.get("cmd_id")
    if not isinstance(cmd_id, int):
        return None
    data = doc.get("data")
    kind = PUSH_KIND.get(cmd_id)
    if kind is not None:
        if not isinstance(data, dict) or not isinstance(data.get("code"), str):
            return None
        return Frame(cmd_id, data, kind)
    ret, seq_id = doc.get("ret"), doc.get("seq_id")
    return Frame(
        cmd_id,
        data,
        seq_id=seq_id if isinstance(seq_id, int) else None,
        ret=ret if isinstance(ret, int) else None,
        msg=str(doc.get("msg") or ""),
    )
