"""The emulator's WebSocket as AllTick documents it: commands, answers, pushes, faults, stats.

Sources: alltick/docs ``en/websocket/*`` (heartbeat, trade-subscription, depth-subscription,
cancel-subscription) and the official repo's ``websocket_interface/*``. The rate clock is
frozen; moving it moves the socket's market, so pushes come when a test says so.
"""

from __future__ import annotations

import pytest
from ws_helpers import FOREX_WS, STOCK_WS, settle

from alltick_frames.emulator.catalogue import CATALOGUE
from alltick_frames.emulator.ws_market import trades_between

HEARTBEAT, DEPTH, TRADES, CANCEL = 22000, 22002, 22004, 22006
TRADE_KEYS = {"code", "seq", "tick_time", "price", "volume", "turnover", "trade_direction"}


@pytest.fixture
def emu(alltick_emulator):
    return alltick_emulator(plan="professional", frozen_clock=True, ws={"cadence": 1.0})


async def test_every_command_is_answered_as_documented(emu, sockets):
    sock = await sockets(emu)(FOREX_WS)
    assert await sock.request(HEARTBEAT, trace="3baaa938") == {
        "ret": 200, "msg": "ok", "cmd_id": 22001, "seq_id": 1, "trace": "3baaa938", "data": {},
    }  # fmt: skip
    emu.clock.advance(1)
    answer = await sock.request(TRADES, {"symbol_list": [{"code": "BTCUSDT"}]})
    assert (answer["ret"], answer["cmd_id"], answer["seq_id"]) == (200, 22005, 2)
    emu.clock.advance(1)
    answer = await sock.request(DEPTH, {"symbol_list": [{"code": "BTCUSDT", "depth_level": 5}]})
    assert (answer["ret"], answer["cmd_id"]) == (200, 22003)
    emu.clock.advance(1)
    answer = await sock.request(CANCEL, {"cancel_type": 0})
    assert (answer["ret"], answer["cmd_id"], answer["data"]) == (200, 22007, {})
    assert emu.stats()["demo"] == {
        "ws-connect": {"101": 1},
        "ws-heartbeat": {"200": 1},
        "ws-trade": {"200": 1},
        "ws-depth": {"200": 1},
        "ws-cancel": {"200": 1},
    }


async def test_pushes_carry_the_documented_fields_and_types(emu, sockets):
    sock = await sockets(emu)(FOREX_WS)
    assert await sock.subscribe(TRADES, ["BTCUSDT", "EURUSD"]) == 200
    emu.clock.advance(1)
    assert await sock.subscribe(DEPTH, ["BTCUSDT"], level=3) == 200
    emu.clock.advance(1)
    assert await sock.subscribe(DEPTH, ["BTCUSDT", "EURUSD"]) == 200  # no depth_level: 1
    await settle(emu, 4)
    pushes = sock.pushes + await sock.collect()
    trades = [p["data"] for p in pushes if p["cmd_id"] == 22998]
    books = [p["data"] for p in pushes if p["cmd_id"] == 22999]
    assert {t["code"] for t in trades} == {"BTCUSDT", "EURUSD"}
    for trade in trades:
        assert set(trade) == TRADE_KEYS
        assert isinstance(trade["trade_direction"], int)
        assert all(isinstance(trade[k], str) for k in TRADE_KEYS - {"trade_direction"})
        assert len(trade["tick_time"]) == 13
    assert {t["volume"] for t in trades if t["code"] == "EURUSD"} == {"0"}
    assert {b["code"] for b in books} == {"BTCUSDT", "EURUSD"}
    for b in books:
        assert set(b) == {"code", "seq", "tick_time", "bids", "asks"}
        assert all(isinstance(b[k], str) for k in ("seq", "tick_time"))
        assert len(b["bids"]) == len(b["asks"]) == 1  # the last subscription asked for none
    assert all(set(p) == {"cmd_id", "data"} for p in pushes)


async def test_depth_level_cuts_the_book_and_more_gives_what_exists(emu, sockets):
    sock = await sockets(emu)(FOREX_WS)
    assert await sock.subscribe(DEPTH, ["BTCUSDT", "ETHUSDT"], level=3) == 200
    await settle(emu, 2)
    emu.clock.advance(1)
    assert await sock.subscribe(DEPTH, ["BTCUSDT"], level=10) == 200  # crypto has 5
    sock.pushes.clear()
    await settle(emu, 2)
    books = [p["data"] for p in sock.pushes + await sock.collect()]
    assert books and {b["code"] for b in books} == {"BTCUSDT"}
    assert {len(b["bids"]) for b in books} == {5}


async def test_push_ints_switch(alltick_emulator, sockets):
    emu = alltick_emulator(plan="basic", frozen_clock=True, ws={"push_ints": True})
    sock = await sockets(emu)(FOREX_WS)
    await sock.subscribe(TRADES, ["BTCUSDT"])
    await settle(emu, 12)
    trade = (sock.pushes + await sock.collect())[0]["data"]
    assert isinstance(trade["seq"], int) and isinstance(trade["tick_time"], int)
    assert isinstance(trade["price"], str)


async def test_trades_rebuild_the_closed_kline_minute(emu, api):
    """Each closed minute's trades: open first, close last, the high and the low among them,
    volumes and turnovers summing to the bar's."""
    for code in ("AAPL.US", "BTCUSDT", "EURUSD", "DJI.US"):
        bars = (await api(emu).kline(code, kline_type=1, num=4)).data["kline_list"][:-1]
        inst = CATALOGUE[code]
        for bar in bars:
            start = int(bar["timestamp"]) * 1000
            trades = trades_between(inst, start - 1, start + 59_999, 1.0)
            assert len(trades) == 60
            prices = [float(t["price"]) for t in trades]
            assert trades[0]["price"] == bar["open_price"]
            assert trades[-1]["price"] == bar["close_price"]
            assert max(prices) == float(bar["high_price"])
            assert min(prices) == float(bar["low_price"])
            volume = sum(float(t["volume"]) for t in trades)
            assert volume == pytest.approx(float(bar["volume"]), rel=1e-12, abs=1e-9)
            turnover = sum(float(t["turnover"]) for t in trades)
            assert turnover == pytest.approx(float(bar["turnover"]), rel=1e-12, abs=1e-9)
            ticks = [int(t["tick_time"]) for t in trades]
            seqs = [int(t["seq"]) for t in trades]
            assert ticks == sorted(ticks) and seqs == sorted(set(seqs))
            assert start <= ticks[0] and ticks[-1] < start + 60_000


async def test_closed_markets_push_nothing(emu, sockets):
    sock = await sockets(emu)(STOCK_WS)
    assert await sock.subscribe(TRADES, ["700.HK", "600519.SH"]) == 200  # 22:00 there
    emu.clock.advance(1)
    assert await sock.subscribe(DEPTH, ["700.HK"]) == 200
    await settle(emu, 5)
    assert sock.pushes + await sock.collect() == []


async def test_subscriptions_replace_their_kind_and_cancel_types(emu, sockets):
    sock = await sockets(emu)(FOREX_WS)
    await sock.subscribe(TRADES, ["BTCUSDT", "ETHUSDT"])
    emu.clock.advance(1)
    await sock.subscribe(DEPTH, ["GOLD"])
    emu.clock.advance(1)
    await sock.subscribe(TRADES, ["EURUSD"])  # replaces both crypto codes
    sock.pushes.clear()
    await settle(emu, 3)
    assert {(p["cmd_id"], p["data"]["code"]) for p in sock.pushes + await sock.collect()} == {
        (22998, "EURUSD"),
        (22999, "GOLD"),
    }
    emu.clock.advance(1)
    assert (await sock.request(CANCEL, {"cancel_type": 2}))["ret"] == 200  # trades only
    sock.pushes.clear()
    await settle(emu, 3)
    assert {p["cmd_id"] for p in sock.pushes + await sock.collect()} == {22999}
    emu.clock.advance(1)
    assert (await sock.request(CANCEL, {"cancel_type": 3}))["ret"] == 200  # forex: all
    sock.pushes.clear()
    await settle(emu, 3)
    assert sock.pushes + await sock.collect() == []
    emu.clock.advance(1)
    assert (await sock.request(CANCEL, {"cancel_type": 4}))["ret"] == 400


async def test_unknown_misrouted_and_unauthorised_codes_are_acked_and_never_pushed(
    alltick_emulator, sockets
):
    emu = alltick_emulator(plan="free", frozen_clock=True)
    sock = await sockets(emu)(FOREX_WS)
    # NOPE: unknown; AAPL.US: stock path; ETHUSDT: not in the Free basket; BTCUSDT: fine.
    assert await sock.subscribe(TRADES, ["NOPE", "AAPL.US", "ETHUSDT", "BTCUSDT"]) == 200
    await settle(emu, 12)
    assert {p["data"]["code"] for p in sock.pushes + await sock.collect()} == {"BTCUSDT"}


async def test_frames_that_are_no_request(emu, sockets):
    sock = await sockets(emu)(FOREX_WS)
    bad = {"ret": 400, "msg": "request header param invalid", "cmd_id": 0, "seq_id": 0}
    for frame in ("not json", "[1]", '{"cmd_id":22004,"seq_id":1,"trace":"t"}',
                  '{"cmd_id":99,"seq_id":1,"trace":"t","data":{}}',
                  '{"cmd_id":"22000","seq_id":1,"trace":"t","data":{}}',
                  '{"cmd_id":22000,"seq_id":1,"trace":"' + "x" * 65 + '","data":{}}'):  # fmt: skip
        await sock.ws.send_str(frame)
        assert await sock.answer() == bad | {"trace": "", "data": {}}
    for data in ({}, {"symbol_list": "BTCUSDT"}, {"symbol_list": [{"code": ""}]},
                 {"symbol_list": [{"code": "BTCUSDT", "depth_level": 0}]}):  # fmt: skip
        emu.clock.advance(1)
        answer = await sock.request(DEPTH, data)
        assert (answer["ret"], answer["msg"]) == (400, "request data param invalid")
    assert (await sock.request(HEARTBEAT))["ret"] == 200  # still open
    stats = emu.stats()["demo"]
    assert stats["ws-frame"] == {"400": 6} and stats["ws-depth"] == {"400": 4}


async def test_token_gate(emu, sockets):
    status, body = await sockets(emu).refusal(token="")
    assert (status, body) == (401, {"msg": "token is required", "trace": "", "ret": 401})
    status, body = await sockets(emu).refusal(token="nobody")
    assert (status, body) == (401, {"ret": 401, "msg": "token invalid"})


async def test_faults_drop_malform_and_delay_pushes(alltick_emulator, sockets, api):
    emu = alltick_emulator(plan="professional", frozen_clock=True, ws={"cadence": 1.0})
    sock = await sockets(emu)(FOREX_WS)
    await sock.subscribe(TRADES, ["BTCUSDT"])
    await api(emu).admin("POST", "ws", {"malformed": 1.0})
    await settle(emu, 3)
    frames = sock.pushes + await sock.collect()
    assert frames and all("raw" in f or "cmd_id" not in f for f in frames)
    await api(emu).admin("POST", "ws", {"malformed": 0.0, "delay": 1.0, "latency": 0.3})
    await settle(emu, 2)
    assert await sock.collect(0.1) == []  # held back ...
    assert len(await sock.collect(1.0)) == 2  # ... then delivered, in order
    await api(emu).admin("POST", "ws", {"delay": 0.0, "drop": 1.0})
    await settle(emu, 2)
    closed = await sock.wait_closed()
    assert closed.type.name in ("CLOSED", "ERROR", "CLOSE")
    stats = emu.stats()["demo"]
    assert stats["ws-push-trade"]["malformed"] == 3
    assert stats["ws-push-trade"]["delayed"] == 2
    assert stats["ws-push-trade"]["dropped"] == 1
    assert stats["ws-close"] == {"dropped": 1}


async def test_admin_drop_and_state(emu, sockets, api):
    group = sockets(emu)
    sock = await group(FOREX_WS)
    await sock.subscribe(TRADES, ["BTCUSDT", "NOPE"])
    state = await api(emu).admin("GET", "ws")
    (conn,) = state["connections"]
    assert (conn["path"], conn["trades"], conn["depth"]) == (FOREX_WS, ["BTCUSDT", "NOPE"], [])
    assert state["config"]["cadence"] == 1.0
    await api(emu).admin("POST", "ws", {"disconnect": True})
    await sock.wait_closed()
    assert (await api(emu).admin("GET", "ws"))["connections"] == []
