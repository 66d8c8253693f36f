"""The envelope on the wire: request JSON out, response bodies in."""

from __future__ import annotations

import urllib.parse

import orjson
import pytest

from alltick_frames.core.errors import MalformedResponse
from alltick_frames.core.intervals import parse_interval
from alltick_frames.core.wire import (
    MAX_TRACE_LEN,
    Envelope,
    SuspensionPage,
    batch_kline_data,
    kline_data,
    new_trace,
    parse_envelope,
    parse_suspension,
    post_body,
    query_param,
    symbol_list_data,
)

# --------------------------------------------------------------------------- requests


def test_new_trace_is_unique_and_short() -> None:
    traces = {new_trace() for _ in range(1000)}
    assert len(traces) == 1000
    assert all(0 < len(t) <= MAX_TRACE_LEN for t in traces)


def test_kline_data_matches_the_documented_request() -> None:
    # The example request of alltick-openapi.json, field for field.
    assert kline_data("700.HK", 1, 0, 2) == {
        "code": "700.HK",
        "kline_type": 1,
        "kline_timestamp_end": 0,
        "query_kline_num": 2,
        "adjust_type": 0,
    }
    assert kline_data("EURUSD", "1d", end_ts=1_700_000_000)["kline_type"] == 8
    assert kline_data("EURUSD", parse_interval("1M"))["kline_type"] == 10
    assert kline_data("EURUSD", 8)["query_kline_num"] == 500


@pytest.mark.parametrize(
    "kwargs",
    [{"end_ts": -1}, {"num": 0}, {"num": True}, {"end_ts": 1.5}, {"kline_type": 11}],
)
def test_kline_data_rejects_bad_values(kwargs: dict) -> None:
    args = {"code": "EURUSD", "kline_type": 8, **kwargs}
    with pytest.raises(ValueError):
        kline_data(**args)


def test_query_param_is_compact_json_not_url_encoded() -> None:
    data = kline_data("700.HK", 1, 0, 2)
    q = query_param(data, "abc-123")
    assert q == (
        '{"trace":"abc-123","data":{"code":"700.HK","kline_type":1,'
        '"kline_timestamp_end":0,"query_kline_num":2,"adjust_type":0}}'
    )
    assert "%" not in q
    # Encoded exactly once by the HTTP layer, it decodes back to the same JSON.
    encoded = urllib.parse.urlencode({"query": q})
    assert orjson.loads(urllib.parse.parse_qs(encoded)["query"][0]) == {
        "trace": "abc-123",
        "data": data,
    }


def test_post_body_for_batch_kline() -> None:
    body = post_body(batch_kline_data([("700.HK", 1), ("AAPL.US", "1d")]), "t1")
    assert isinstance(body, bytes)
    assert orjson.loads(body) == {
        "trace": "t1",
        "data": {
            "data_list": [
                {
                    "code": "700.HK",
                    "kline_type": 1,
                    "kline_timestamp_end": 0,
                    "query_kline_num": 2,
                    "adjust_type": 0,
                },
                {
                    "code": "AAPL.US",
                    "kline_type": 8,
                    "kline_timestamp_end": 0,
                    "query_kline_num": 2,
                    "adjust_type": 0,
                },
            ]
        },
    }
    assert (
        orjson.loads(post_body(batch_kline_data([("X", 1)], num=1), "t"))["data"]["data_list"][0][
            "query_kline_num"
        ]
        == 1
    )


def test_batch_kline_data_needs_groups() -> None:
    with pytest.raises(ValueError):
        batch_kline_data([])


def test_symbol_list_data() -> None:
    assert symbol_list_data(["857.HK", "UNH.US"]) == {
        "symbol_list": [{"code": "857.HK"}, {"code": "UNH.US"}]
    }
    assert symbol_list_data("857.HK") == {"symbol_list": [{"code": "857.HK"}]}
    with pytest.raises(ValueError):
        symbol_list_data([])


@pytest.mark.parametrize("trace", ["", "x" * (MAX_TRACE_LEN + 1)])
def test_trace_must_fit(trace: str) -> None:
    with pytest.raises(ValueError, match="trace"):
        query_param({}, trace)
    query_param({}, "x" * MAX_TRACE_LEN)


# --------------------------------------------------------------------------- responses


def test_parse_envelope_success() -> None:
    body = (
        b'{"ret":200,"msg":"ok","trace":"abc","data":{"code":"EURUSD","kline_type":1,'
        b'"kline_list":[]}}'
    )
    env = parse_envelope(body)
    assert env == Envelope(
        ret=200, msg="ok", trace="abc", data={"code": "EURUSD", "kline_type": 1, "kline_list": []}
    )
    assert env.ok


def test_parse_envelope_token_gate_body() -> None:
    env = parse_envelope(b'{"msg":"token is required","ret":401}')
    assert env == Envelope(ret=401, msg="token is required", trace=None, data=None)
    assert not env.ok


@pytest.mark.parametrize(
    ("body", "ret"),
    [
        (b'{"ret":"200","msg":"ok"}', 200),
        (b'{"ret":" 605 ","msg":"too many requests"}', 605),
        (b'{"ret":603.0}', 603),
    ],
)
def test_parse_envelope_accepts_int_like_ret(body: bytes, ret: int) -> None:
    assert parse_envelope(body).ret == ret


def test_parse_envelope_tolerates_odd_fields() -> None:
    env = parse_envelope(b'{"ret":600,"msg":null,"trace":7,"extra":[1,2]}')
    assert (env.ret, env.msg, env.trace, env.data) == (600, "", "7", None)


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b"", "empty"),
        (b"   ", "empty"),
        (b"<html>502 Bad Gateway</html>", "not valid JSON"),
        (b'{"ret":200,"msg":"ok","data":{"kline_list":[{"timestamp":"16', "not valid JSON"),
        (b"[1,2]", "not an object"),
        (b'"ok"', "not an object"),
        (b'{"msg":"ok"}', "no integer 'ret'"),
        (b'{"ret":"ok"}', "no integer 'ret'"),
        (b'{"ret":true}', "no integer 'ret'"),
        (b'{"ret":200.5}', "no integer 'ret'"),
        (b'{"ret":null}', "no integer 'ret'"),
    ],
)
def test_parse_envelope_malformed(body: bytes, why: str) -> None:
    with pytest.raises(MalformedResponse, match=why) as info:
        parse_envelope(body, endpoint="kline")
    assert info.value.endpoint == "kline"
    assert info.value.ret is None


def test_malformed_message_never_shows_a_token() -> None:
    body = b"<html>bad gateway for /kline?token=abc123&query=x</html>"
    with pytest.raises(MalformedResponse) as info:
        parse_envelope(body)
    assert "abc123" not in str(info.value)


# --------------------------------------------------------------------------- suspensions

SUSPENSION_OK = b"""{
  "success": true, "timestamp": "2024-01-15T10:30:00", "totalCount": 2,
  "totalPages": 1, "currentPage": 1, "currentSize": 2,
  "data": [
    {"symbol": "600000", "symbolName": "PF Bank", "haltReason": "news",
     "haltDate": "2024-01-15 00:00:00", "haltTime": "09:30:00", "haltPeriod": "all day",
     "resumeDate": "", "resumeTime": null, "publishDate": "2024-01-14 18:00:00"},
    {"symbol": "600001", "publishDate": "2024-01-13 18:00:00"}
  ]
}"""


def test_parse_suspension_success() -> None:
    page = parse_suspension(SUSPENSION_OK)
    assert page.success
    assert page.error is None
    assert (page.timestamp, page.total_count) == ("2024-01-15T10:30:00", 2)
    assert [r["symbol"] for r in page.data] == ["600000", "600001"]


def test_parse_suspension_minimal_success() -> None:
    assert parse_suspension(b'{"success":true,"data":[]}') == SuspensionPage(True, [])
    assert parse_suspension(b'{"success":true}') == SuspensionPage(True, [])


def test_parse_suspension_error_is_returned_not_raised() -> None:
    page = parse_suspension(b'{"success":false,"error":"Internal Server Error"}')
    assert page == SuspensionPage(False, [], error="Internal Server Error")
    assert parse_suspension(b'{"success":false}').error == "unknown error"


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"[]",
        b'{"ret":200}',
        b'{"success":"true","data":[]}',
        b'{"success":true,"data":{"a":1}}',
        b'{"success":true,"data":[1,2]}',
    ],
)
def test_parse_suspension_malformed(body: bytes) -> None:
    with pytest.raises(MalformedResponse) as info:
        parse_suspension(body)
    assert info.value.endpoint == "suspension"
