"""AllTick's envelope, read and written: the request document, its fields, and the answers.

Pure functions of their input: nothing here knows about tokens, windows or the market. A
request that breaks a rule raises :class:`ApiError` with the ``ret`` AllTick documents for it
(alltick-api.md §2, §5); an :class:`ErrorStyle` turns that into the body the emulator sends.

Error bodies differ between AllTick's own pages, so their shape is a setting:

* ``{"ret":400,"msg":"...","trace":"..."}`` by default: ``trace`` is echoed once the request
  document got far enough to have a valid one, and left out before that;
* ``"data": {}`` added (``error_data``), as the standard-header page's example shows
  (``en/integration-process/http-common-standard-headers.mdx``);
* no ``trace`` at all (``error_trace=False``), as the token gate's reported body had once;
* ``ret`` 201 "request header param invalid" and 202 "request data param invalid" instead of
  400 (``old_invalid_codes``), as that same example and older docs show.

The host's token gate is none of these: it answers every path that has no ``token`` with the
fixed body :data:`TOKEN_REQUIRED` and HTTP 401 (api-evangelist ``well-known/``, probed).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from alltick_frames.core.plans import BATCH_KLINE

HEADER_INVALID = "request header param invalid"
DATA_INVALID = "request data param invalid"
MESSAGES: dict[int, str] = {
    200: "ok",
    401: "token invalid",
    402: "query invalid",
    429: "Too Many Requests",
    600: "code invalid",
    601: "body empty",
    603: "token level not enough",
    604: "code unauthorized",
    605: "too many requests",
}
TOKEN_REQUIRED = b'{"msg":"token is required","trace":"","ret":401}'
MAX_TRACE = 64
JSON = "application/json"
_OLD_CODES = {HEADER_INVALID: 201, DATA_INVALID: 202}


class ApiError(Exception):
    """Ends a request with ``ret`` (and its documented message unless ``msg`` is given)."""

    def __init__(self, ret: int, msg: str | None = None) -> None:
        super().__init__(ret)
        self.ret = ret
        self.msg = msg or MESSAGES[ret]


@dataclass(frozen=True, slots=True)
class Answer:
    """A finished answer: ``key`` is what the stats count it under (the ``ret``, or for the
    suspension service the HTTP status)."""

    key: int
    body: bytes
    status: int = 200
    content_type: str = JSON


@dataclass(frozen=True, slots=True)
class ErrorStyle:
    """How error bodies look (see the module docstring)."""

    trace: bool = True
    data: bool = False
    old_codes: bool = False

    def answer(self, ret: int, trace: str | None = None, msg: str | None = None) -> Answer:
        """The error ``ret`` in AllTick's envelope, counted under the ``ret`` it carries."""
        msg = msg or MESSAGES[ret]
        if self.old_codes and ret == 400:
            ret = _OLD_CODES[msg]
        body: dict[str, Any] = {"ret": ret, "msg": msg}
        if trace is not None and self.trace:
            body["trace"] = trace
        if self.data:
            body["data"] = {}
        return Answer(ret, orjson.dumps(body))


def ok_answer(trace: str, data: dict[str, Any]) -> Answer:
    return Answer(200, orjson.dumps({"ret": 200, "msg": "ok", "trace": trace, "data": data}))


async def read_document(request: web.Request, endpoint: str) -> dict[str, Any]:
    """The request's JSON document: the POST body for batch-kline, else ``query``."""
    if endpoint == BATCH_KLINE:
        raw = await request.read()
        if not raw.strip():
            raise ApiError(601)
        try:
            document = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise ApiError(400, HEADER_INVALID) from None
    else:
        query = request.query.get("query")
        if not query:
            raise ApiError(402)
        try:
            document = orjson.loads(query)
        except orjson.JSONDecodeError:
            raise ApiError(402) from None
    if not isinstance(document, dict):
        raise ApiError(400, HEADER_INVALID)
    return document


def read_trace(document: dict[str, Any]) -> str:
    """The document's ``trace`` (400 header unless a string of at most 64 characters)."""
    trace = document.get("trace")
    if not isinstance(trace, str) or len(trace) > MAX_TRACE:
        raise ApiError(400, HEADER_INVALID)
    return trace


def read_data(document: dict[str, Any]) -> dict[str, Any]:
    """The document's ``data`` (400 header unless an object)."""
    data = document.get("data")
    if not isinstance(data, dict):
        raise ApiError(400, HEADER_INVALID)
    return data


def int_field(data: dict[str, Any], name: str, low: int, high: int | None = None) -> int:
    value = data.get(name)
    # JSON numbers only: "8", 8.0 and true are all refused (bool is an int in Python).
    if type(value) is not int or value < low or (high is not None and value > high):
        raise ApiError(400, DATA_INVALID)
    return value


def kline_fields(data: Any) -> tuple[str, int, int, int]:
    """``code, kline_type, kline_timestamp_end, query_kline_num`` of a /kline request or a
    batch group; all five documented fields are required."""
    if not isinstance(data, dict):
        raise ApiError(400, DATA_INVALID)
    code = data.get("code")
    if not isinstance(code, str) or not code:
        raise ApiError(400, DATA_INVALID)
    kline_type = int_field(data, "kline_type", 1, 10)
    end = int_field(data, "kline_timestamp_end", 0)
    count = int_field(data, "query_kline_num", 1)
    int_field(data, "adjust_type", 0, 1)  # 1 (forward-adjusted) is served as 0
    return code, kline_type, end, count


def symbol_list(data: dict[str, Any]) -> list[Any]:
    """The ``symbol_list`` of a request (400 data unless a non-empty list)."""
    items = data.get("symbol_list")
    if not isinstance(items, list) or not items:
        raise ApiError(400, DATA_INVALID)
    return items


def symbol_codes(items: list[Any]) -> list[str]:
    """The codes of ``symbol_list`` items (400 data if one is not ``{"code": "..."}``)."""
    codes = []
    for item in items:
        code = item.get("code") if isinstance(item, dict) else None
        if not isinstance(code, str) or not code:
            raise ApiError(400, DATA_INVALID)
        codes.append(code)
    return codes


def positive(value: str | None) -> int | None:
    """A ``page``/``size`` parameter: None when absent, ValueError unless a positive int."""
    if value is None:
        return None
    number = int(value)
    if number < 1:
        raise ValueError(value)
    return number
