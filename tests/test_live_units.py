"""The stream's pure parts: where codes go, when requests may leave, what frames mean."""

from __future__ import annotations

import asyncio

import pytest

from alltick_frames.core.codes import FOREX_PATH, STOCK_PATH, validate_codes
from alltick_frames.core.plans import get_plan
from alltick_frames.live import Stream
from alltick_frames.live.clock import PolledClock
from alltick_frames.live.layout import Layout
from alltick_frames.live.pacing import GUARD, Pacer
from alltick_frames.live.wire import DEPTH, TRADES, parse, subscription, ws_url

STOCKS = [f"{n}.HK" for n in range(1, 700)]


def test_codes_fill_sockets_up_to_the_plan_and_the_rest_is_rejected():
    layout = Layout(get_plan("premium"))  # 3 sockets per path, 200 codes per subscription
    changed, rejected = layout.add(validate_codes([*STOCKS[:650], "BTCUSDT"]), (TRADES, DEPTH))
    sizes = {key: {k: len(v) for k, v in s.codes.items()} for key, s in layout.slots.items()}
    assert sizes == {
        (STOCK_PATH, 0): {TRADES: 200, DEPTH: 200},
        (STOCK_PATH, 1): {TRADES: 200, DEPTH: 200},
        (STOCK_PATH, 2): {TRADES: 200, DEPTH: 200},
        (FOREX_PATH, 0): {TRADES: 1, DEPTH: 1},
    }
    assert changed == set(sizes)
    assert rejected == [(c, k) for c in STOCKS[600:650] for k in (TRADES, DEPTH)]


def test_codes_stay_put_and_empty_sockets_go():
    layout = Layout(get_plan("basic").with_overrides(ws_codes=2, ws_connections=3))
    layout.add(validate_codes(STOCKS[:4]), (TRADES,))
    assert layout.remove(STOCKS[:2], (TRADES,)) == {(STOCK_PATH, 0)}
    layout.add(validate_codes([STOCKS[2], STOCKS[9]]), (TRADES, DEPTH))
    assert layout.where(STOCKS[2], DEPTH).key == layout.where(STOCKS[2], TRADES).key  # beside
    assert layout.where(STOCKS[9], TRADES).index == 0  # the first socket with room
    assert [s.key for s in layout.discard_empty()] == []
    layout.remove([STOCKS[9]], (TRADES, DEPTH))
    assert [s.key for s in layout.discard_empty()] == [(STOCK_PATH, 0)]


async def test_requests_wait_for_the_spacing_from_the_last_answer():
    now = [100.0]
    pacer = Pacer(PolledClock(lambda: now[0]))
    one, two = ("stock", 0, 1), ("stock", 1, 1)
    assert pacer.ready_at(one, subscription=True) == -float("inf")

    async def answer_at(t: float) -> float:
        now[0] = t
        return t

    async with pacer.subscribing():
        await pacer.request(one, lambda: answer_at(100.5), subscription=True)
    assert pacer.ready_at(one, subscription=False) == 101.5 + GUARD  # same socket: 1 s
    assert pacer.ready_at(two, subscription=False) == -float("inf")  # a heartbeat elsewhere
    assert pacer.ready_at(two, subscription=True) == 103.5 + GUARD  # another socket: 3 s

    async def subscribe_two() -> float:
        async with pacer.subscribing():
            return await pacer.request(two, lambda: answer_at(now[0]), subscription=True)

    waiting = asyncio.create_task(subscribe_two())
    await asyncio.sleep(0.05)
    assert not waiting.done()  # held until 3 s after the other socket's answer
    now[0] = 103.5 + GUARD
    assert await waiting == 103.5 + GUARD


def test_frames():
    assert (
        ws_url("https://quote.alltick.co", "/quote-b-ws-api")
        == "wss://quote.alltick.co/quote-b-ws-api"
    )
    assert ws_url("http://127.0.0.1:8787/", "/x") == "ws://127.0.0.1:8787/x"
    push = parse(b'{"cmd_id":22998,"data":{"code":"BTCUSDT","price":"1"}}')
    assert (push.kind, push.data["code"]) == (TRADES, "BTCUSDT")
    answer = parse('{"ret":606,"msg":"too many","cmd_id":22005,"seq_id":7,"trace":"t","data":{}}')
    assert (answer.kind, answer.ret, answer.seq_id) == (None, 606, 7)
    for bad in ("<html>", '{"cmd_id":22998,"data":{"cod', "[]", '{"cmd_id":22999,"data":[]}'):
        assert parse(bad) is None
    assert subscription(DEPTH, ["700.HK"], 5) == {
        "symbol_list": [{"code": "700.HK", "depth_level": 5}]
    }
    assert subscription(TRADES, ["700.HK"], 5) == {"symbol_list": [{"code": "700.HK"}]}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"trades": False, "depth": False}, "nothing to stream"),
        ({"depth_level": 11}, "depth_level must be an int from 1 to 10"),
        ({"heartbeat": 30}, "heartbeat must be below 30 s"),
        ({"batch_rows": 0}, "batch_rows must be an int"),
        ({"duration": -1}, "duration must be a number above 0"),
        ({"jitter": -1}, "jitter must be >= 0"),
    ],
)
def test_bad_options_fail_before_any_connection(options, message):
    with pytest.raises(ValueError, match=message):
        Stream(["BTCUSDT"], token="t", **options)


def test_bad_codes_and_no_token(monkeypatch):
    with pytest.raises(ValueError, match="malformed"):
        Stream(["aapl.us"], token="t")
    monkeypatch.delenv("ALLTICK_TOKEN", raising=False)
    with pytest.raises(ValueError, match="no AllTick token"):
        Stream(["BTCUSDT"])
    assert "s3cret" not in repr(Stream(["BTCUSDT"], token="s3cret"))


async def test_codes_change_only_while_the_stream_runs():
    stream = Stream(["BTCUSDT"], token="t")
    with pytest.raises(RuntimeError, match="cannot add codes: the stream has not started"):
        await stream.add(["ETHUSDT"])
    with pytest.raises(RuntimeError, match="cannot remove codes: the stream has not started"):
        await stream.remove(["BTCUSDT"])
