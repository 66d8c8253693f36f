"""The AllTick envelope on the wire: building request JSON and reading response bodies.

Pure functions, no I/O. Every request is ``{"trace": ..., "data": {...}}`` (alltick-api.md §2):

* GET endpoints carry it as the ``query`` URL parameter: :func:`query_param` returns the
  compact JSON *text*, and the HTTP layer URL-encodes it exactly once (encoding it twice is
  a known cause of ``ret`` 402);
* ``POST /batch-kline`` carries it as the body: :func:`post_body`.

The ``data`` part comes from :func:`kline_data`, :func:`batch_kline_data` and
:func:`symbol_list_data`.

Every response body is ``{"ret": int, "msg": str, "trace": str, "data": {...}}``;
:func:`parse_envelope` reads it and raises :class:`~alltick_frames.core.errors.MalformedResponse`
when it is not that shape. Decide on ``ret`` whatever the HTTP status was (AllTick puts errors
in ``ret``, usually with HTTP 200). The trading-halt service uses its own envelope, read by
:func:`parse_suspension`.

For bulk k-line data, check each body with :func:`parse_envelope` and hand the successful
*bytes* to :mod:`alltick_frames.frames`, which decodes many bodies at once much faster than
walking the parsed ``data``.
"""

from __future__ import annotations

import numbers
import random
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from alltick_frames.core.errors import MalformedResponse, redact
from alltick_frames.core.intervals import Interval, parse_interval

__all__ = [
    "MAX_TRACE_LEN",
    "Envelope",
    "Misread",
    "SuspensionPage",
    "as_int",
    "batch_kline_data",
    "kline_data",
    "new_trace",
    "parse_envelope",
    "parse_suspension",
    "peek_ok",
    "post_body",
    "query_param",
    "symbol_list_data",
]

#: The longest ``trace`` AllTick accepts.
MAX_TRACE_LEN = 64

_INT_TEXT = re.compile(r"^\s*-?\d+\s*$")


def new_trace() -> str:
    """A fresh request id: ``"af-"`` and 32 hex digits (35 characters, unique per call).

    AllTick echoes it in the response, so a body can be matched to its request in logs.
    """
    # Not uuid4: os.urandom costs a system call per request, and a trace needs no secrecy
    # (the random module's generator is seeded anew in a forked child).
    return f"af-{random.getrandbits(128):032x}"


def _request(data: dict[str, Any], trace: str) -> bytes:
    if not isinstance(trace, str) or not trace or len(trace) > MAX_TRACE_LEN:
        raise ValueError(f"trace must be a non-empty string of at most {MAX_TRACE_LEN} chars")
    if not isinstance(data, dict):
        raise ValueError(f"request data must be a dict, got {type(data).__name__}")
    return orjson.dumps({"trace": trace, "data": data})


def query_param(data: dict[str, Any], trace: str) -> str:
    """The ``query`` parameter of a GET request: compact JSON text, *not* URL-encoded.

    >>> query_param(symbol_list_data(["700.HK"]), "t1")
    '{"trace":"t1","data":{"symbol_list":[{"code":"700.HK"}]}}'
    """
    return _request(data, trace).decode()


def post_body(data: dict[str, Any], trace: str) -> bytes:
    """The JSON body of ``POST /batch-kline`` (send with ``Content-Type: application/json``)."""
    return _request(data, trace)


def _kline_type(kline_type: int | str | Interval) -> int:
    return parse_interval(kline_type).kline_type


def _check_int(name: str, value: int, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
    return int(value)


def kline_data(
    code: str, kline_type: int | str | Interval, end_ts: int = 0, num: int = 500
) -> dict[str, Any]:
    """``data`` for ``GET /kline``: the ``num`` bars of ``code`` ending at ``end_ts``.

    ``kline_type`` is AllTick's integer (8) or any alias :func:`parse_interval` accepts
    ("1d"). ``end_ts`` is Unix *seconds*; 0 means "up to the latest bar". Only FX, crypto and
    precious metals honour a non-zero ``end_ts``; stocks, indices, energy and CFD codes
    answer their latest bars. ``num`` is
    not capped here (the plan table decides; AllTick cuts above 500). ``adjust_type`` is
    always 0, the only value AllTick supports.

    >>> kline_data("700.HK", "1d", num=2)
    {'code': '700.HK', 'kline_type': 8, 'kline_timestamp_end': 0, 'query_kline_num': 2, \
'adjust_type': 0}
    """
    return {
        "code": code,
        "kline_type": _kline_type(kline_type),
        "kline_timestamp_end": _check_int("end_ts", end_ts, 0),
        "query_kline_num": _check_int("num", num, 1),
        "adjust_type": 0,
    }


def batch_kline_data(
    groups: Sequence[tuple[str, int | str | Interval]], num: int = 2
) -> dict[str, Any]:
    """``data`` for ``POST /batch-kline``: the latest ``num`` (1 or 2) bars of each group.

    A group is ``(code, kline_type)``; the plan bounds how many fit in one call.

    >>> batch_kline_data([("700.HK", 1), ("EURUSD", "1d")])["data_list"][1]
    {'code': 'EURUSD', 'kline_type': 8, 'kline_timestamp_end': 0, 'query_kline_num': 2, \
'adjust_type': 0}
    """
    if not groups:
        raise ValueError("batch_kline_data needs at least one (code, kline_type) group")
    return {"data_list": [kline_data(code, kt, 0, num) for code, kt in groups]}


def symbol_list_data(codes: Iterable[str]) -> dict[str, Any]:
    """``data`` for ``/trade-tick``, ``/depth-tick`` and ``/static_info``.

    >>> symbol_list_data(["857.HK", "UNH.US"])
    {'symbol_list': [{'code': '857.HK'}, {'code': 'UNH.US'}]}
    """
    items = [{"code": c} for c in ([codes] if isinstance(codes, str) else codes)]
    if not items:
        raise ValueError("symbol_list_data needs at least one code")
    return {"symbol_list": items}


# --------------------------------------------------------------------------- responses


@dataclass(frozen=True, slots=True)
class Envelope:
    """A parsed AllTick response: ``ret`` (200 is success), ``msg``, echoed ``trace``, ``data``.

    ``data`` is whatever the body held (usually a dict; None when the body had none, as
    error bodies often do).
    """

    ret: int
    msg: str
    trace: str | None
    data: Any

    @property
    def ok(self) -> bool:
        """Whether ``ret`` is 200."""
        return self.ret == 200


def _snippet(body: bytes, limit: int = 120) -> str:
    text = body[:limit].decode("utf-8", "replace")
    return redact(text) + ("..." if len(body) > limit else "")


def _load_object(body: bytes, endpoint: str | None) -> dict[str, Any]:
    try:
        obj = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        what = "is empty" if not body.strip() else f"is not valid JSON ({exc})"
        raise MalformedResponse(
            f"response body {what}: {_snippet(body)}", endpoint=endpoint
        ) from None
    if not isinstance(obj, dict):
        raise MalformedResponse(
            f"response body is JSON but not an object: {_snippet(body)}", endpoint=endpoint
        )
    return obj


def as_int(value: Any) -> int | None:
    """An int from an int, an integral float or a numeric string; None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and _INT_TEXT.match(value):
        return int(value)
    return None


def parse_envelope(body: bytes, endpoint: str | None = None) -> Envelope:
    """Read an AllTick response body (any HTTP status) into an :class:`Envelope`.

    ``ret`` may arrive as an int or as a numeric string (``"200"``); both give an int.
    ``endpoint`` only labels the error.

    Raises :class:`~alltick_frames.core.errors.MalformedResponse` when the body is empty, not
    JSON, truncated, not a JSON object, or has no int-like ``ret``.

    >>> parse_envelope(b'{"msg":"token is required","ret":401}')
    Envelope(ret=401, msg='token is required', trace=None, data=None)
    """
    obj = _load_object(body, endpoint)
    ret = as_int(obj.get("ret"))
    if ret is None:
        raise MalformedResponse(
            f"response body has no integer 'ret': {_snippet(body)}", endpoint=endpoint
        )
    msg = obj.get("msg")
    trace = obj.get("trace")
    return Envelope(
        ret=ret,
        msg="" if msg is None else str(msg),
        trace=None if trace is None else str(trace),
        data=obj.get("data"),
    )


#: How far into a body :func:`peek_ok` looks for the ``"data"`` key: AllTick's envelope head
#: (``ret``, ``msg``, a 35-character ``trace``) takes under 100 bytes.
PEEK_BYTES = 512
_DATA_KEY = b',"data":'


def peek_ok(body: bytes) -> Envelope | None:
    """The envelope of a successful body read from its head alone, or None: then read it
    whole with :func:`parse_envelope`.

    A ``/kline`` answer is ~80 KB of bars behind a head of ~80 bytes. This reads ``ret``,
    ``msg`` and ``trace`` from the head (everything before a top-level ``"data"`` key within
    :data:`PEEK_BYTES`, which must parse as a JSON object by itself, so that ``"data"`` is
    known to be a top-level key) and answers only when ``ret`` is 200. The rest of the body
    is *not* read: whoever reads ``data`` must parse it, treat a body that does not parse as
    malformed, and raise :class:`Misread` if the whole body says another ``ret`` (JSON lets a
    key come twice; the last one counts).

    >>> peek_ok(b'{"ret":200,"msg":"ok","trace":"t","data":{"kline_list":[]}}')
    Envelope(ret=200, msg='ok', trace='t', data=None)
    >>> peek_ok(b'{"ret":429,"msg":"slow down","data":null}') is None
    True
    """
    cut = body.find(_DATA_KEY, 0, PEEK_BYTES)
    if cut <= 0 or body[:1] != b"{":
        return None
    try:
        head = orjson.loads(body[:cut] + b"}")
    except orjson.JSONDecodeError:
        return None
    if not isinstance(head, dict) or as_int(head.get("ret")) != 200:
        return None
    msg, trace = head.get("msg"), head.get("trace")
    return Envelope(
        200, "" if msg is None else str(msg), None if trace is None else str(trace), None
    )


class Misread(Exception):
    """A body whose head said ``ret`` 200 (:func:`peek_ok`) and whose whole said otherwise:
    ``envelope`` is the body read whole, to act on instead."""

    def __init__(self, envelope: Envelope) -> None:
        super().__init__(f"the whole body says ret {envelope.ret}")
        self.envelope = envelope


@dataclass(frozen=True, slots=True)
class SuspensionPage:
    """A parsed answer of the trading-halt service (``/api/suspension/{exchange}``).

    This service has its own envelope (alltick-api.md §3.6): ``success`` instead of ``ret``,
    the records in ``data`` (a list of dicts, newest ``publishDate`` first; the whole year,
    never paged), and on failure ``{"success": false, "error": "..."}`` (with HTTP 500).
    Decode the records with :func:`alltick_frames.frames.decode_suspensions`.
    """

    success: bool
    data: list[dict[str, Any]] = field(default_factory=list)
    #: The service's own clock, as sent (e.g. "2024-01-15T10:30:00").
    timestamp: str | None = None
    total_count: int | None = None
    #: The error text when ``success`` is false.
    error: str | None = None


def parse_suspension(body: bytes) -> SuspensionPage:
    """Read a trading-halt service body into a :class:`SuspensionPage`.

    A ``{"success": false, "error": ...}`` body is returned (``success=False``), not raised:
    the caller turns it into a failure row. Raises
    :class:`~alltick_frames.core.errors.MalformedResponse` when the body is not JSON, not an
    object, has no boolean ``success``, or succeeds with ``data`` that is not a list of
    objects.

    >>> parse_suspension(b'{"success":false,"error":"busy"}')
    SuspensionPage(success=False, data=[], timestamp=None, total_count=None, error='busy')
    """
    endpoint = "suspension"
    obj = _load_object(body, endpoint)
    success = obj.get("success")
    if not isinstance(success, bool):
        raise MalformedResponse(
            f"suspension body has no boolean 'success': {_snippet(body)}", endpoint=endpoint
        )
    if not success:
        error = obj.get("error", obj.get("msg"))
        return SuspensionPage(False, error="unknown error" if error is None else str(error))
    data = obj.get("data")
    if data is None:
        data = []
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise MalformedResponse(
            f"suspension body's 'data' is not a list of objects: {_snippet(body)}",
            endpoint=endpoint,
        )
    timestamp = obj.get("timestamp")
    return SuspensionPage(
        success=True,
        data=data,
        timestamp=None if timestamp is None else str(timestamp),
        total_count=as_int(obj.get("totalCount")),
    )
