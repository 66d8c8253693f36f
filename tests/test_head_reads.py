"""Reading ``ret`` from an answer's head (issue 13 item 1): the event loop no longer parses a
``/kline`` body whole; the decode thread reads it once. What the runner does with an answer
must not change: a body whose whole says another ``ret`` than its head, or that is not JSON
past its head, is treated as it always was.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest
from aiohttp import web
from hostile_server import bars, ok, serve
from test_client_support import TOKEN, assert_same_bars, client, fast_plan, reference, tokens

from alltick_frames import AllTick, RetryPolicy
from alltick_frames.core import wire

PLAN = fast_plan(100)
NOW = 1_715_781_600  # 2024-05-15 14:00 UTC
QUICK = RetryPolicy(attempts=4, base=0.01, cap=0.01)


@pytest.mark.parametrize(
    "body",
    [
        b'{"ret":200,"msg":"ok","trace":"t","data":{"kline_list":[]}}',
        b'{"msg":"ok","ret":"200","data":null}',
        b'{"ret":200.0,"data":{}}',
    ],
)
def test_the_head_of_a_success_is_read_alone(body: bytes) -> None:
    envelope = wire.peek_ok(body)
    assert envelope is not None and envelope.ret == 200 and envelope.data is None


@pytest.mark.parametrize(
    "body",
    [
        b'{"ret":429,"msg":"slow down","data":null}',  # not a success: read whole
        b'{"data":{},"ret":200}',  # data first: the head holds no ret
        b'{"x":{"ret":200,"y":1,"data":2},"data":{}}',  # "data" nested, not top-level
        b'{"msg":"a,\\"data\\":","ret":200}',  # the key's bytes inside a string
        b'{"ret":200,"msg":"' + b"m" * 600 + b'","data":{}}',  # a head past PEEK_BYTES
        b' {"ret":200,"data":{}}',
        b"",
    ],
)
def test_a_head_that_is_not_the_expected_shape_is_left_to_the_full_parse(body: bytes) -> None:
    assert wire.peek_ok(body) is None


async def test_no_kline_answer_is_parsed_whole_on_the_event_loop(
    alltick_emulator, monkeypatch
) -> None:
    """Every /kline answer of a paged job is read from its head; the bars are the same."""
    parsed: Counter[int] = Counter()
    parse = wire.parse_envelope

    def counting(body: bytes, endpoint: str | None = None) -> wire.Envelope:
        envelope = parse(body, endpoint)
        parsed[envelope.ret] += 1
        return envelope

    monkeypatch.setattr(wire, "parse_envelope", counting)
    emu = alltick_emulator(tokens=tokens(PLAN))
    codes = ["EURUSD", "BTCUSDT", "GOLD"]
    async with client(emu, PLAN) as c:
        result = await c.klines(codes, "1h", count=1200)
    assert result.ok and result.stats.calls == {"kline": 9}
    assert parsed == Counter()
    assert_same_bars(result.data, await reference(emu, codes, 5, 1200))


def _raw_kline(spoiled: dict[str, list[bytes]]) -> Any:
    """A /kline handler: the next spoiled body of the code while there is one, then bars."""

    async def handle(request: web.Request) -> web.Response:
        data = json.loads(request.query["query"])["data"]
        left = spoiled.get(data["code"])
        if left:
            return web.Response(body=left.pop(0), content_type="application/json")
        body = ok(bars(data["code"], data["kline_type"], data["query_kline_num"], now=NOW))
        return web.json_response(body)

    return handle


def _good(code: str) -> bytes:
    return json.dumps(ok(bars(code, 8, 5, now=NOW)), separators=(",", ":")).encode()


@pytest.mark.parametrize(
    ("spoil", "rejections", "faults"),
    [
        # JSON's last key wins: the whole body says 429, whatever its head says.
        (lambda good: good[:-1] + b',"ret":429}', {429: 1}, {}),
        (lambda good: good[:-1] + b',"r\\u0065t":429}', {429: 1}, {}),
        # Not JSON past the head: malformed, retried.
        (lambda good: good[: len(good) // 2], {}, {"malformed": 1}),
        (lambda good: good[:-1] + b',"x":NaN}', {}, {"malformed": 1}),
        (lambda good: good[:-1] + b',"x":"\xff"}', {}, {"malformed": 1}),
        (lambda good: good + b"{}", {}, {"malformed": 1}),
    ],
    ids=["ret-twice", "ret-escaped", "truncated", "nan", "not-utf8", "two-objects"],
)
async def test_a_body_whose_head_says_200_is_judged_by_its_whole(
    spoil: Any, rejections: dict[int, int], faults: dict[str, int]
) -> None:
    spoiled = {"GBPUSD": [spoil(_good("GBPUSD"))]}
    async with serve(raw={"/quote-b-api/kline": _raw_kline(spoiled)}) as (url, seen):
        options: dict[str, Any] = {"retry": QUICK, "clock": lambda: NOW, "progress": False}
        async with AllTick(TOKEN, PLAN, url, cache=False, **options) as c:
            result = await c.klines(["EURUSD", "GBPUSD"], "1d", count=5)
    assert result.ok and len(result.data) == 10
    assert dict(result.stats.rejections) == rejections
    assert dict(result.stats.faults) == faults
    assert result.stats.calls == {"kline": 3} and seen == {"/quote-b-api/kline": 3}
