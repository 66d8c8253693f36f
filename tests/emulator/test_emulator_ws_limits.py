"""The WebSocket's limits, per token, on the frozen rate clock (alltick-api.md §6, §8 #17;
alltick/docs ``en/getting-started/websocket-interface-limitations.mdx``)."""

from __future__ import annotations

import argparse
import asyncio

import pytest
from ws_helpers import FOREX_WS, STOCK_WS

from alltick_frames.core.plans import get_plan

HEARTBEAT, DEPTH, TRADES = 22000, 22002, 22004
TOO_MANY = {"ret": 606, "msg": "too many requests and connection will be closed"}


def frozen(alltick_emulator, plan="basic", **ws):
    return alltick_emulator(plan=plan, frozen_clock=True, ws=ws or None)


async def test_heartbeat_deadline_is_judged_on_the_rate_clock(alltick_emulator, sockets):
    emu = frozen(alltick_emulator)
    sock = await sockets(emu)()
    emu.clock.advance(30.0)  # exactly 30 s: still open
    await asyncio.sleep(0.1)
    assert (await sock.request(HEARTBEAT))["ret"] == 200
    emu.clock.advance(29.9)
    await asyncio.sleep(0.1)
    assert (await sock.request(HEARTBEAT))["ret"] == 200
    emu.clock.advance(30.01)
    closed = await sock.wait_closed()
    assert (closed.data, closed.extra) == (1000, "heartbeat")
    assert emu.stats()["demo"]["ws-close"] == {"heartbeat": 1}


async def test_requests_on_one_connection_need_a_second(alltick_emulator, sockets):
    emu = frozen(alltick_emulator)
    sock = await sockets(emu)(FOREX_WS)
    assert await sock.subscribe(TRADES, ["BTCUSDT"]) == 200
    assert (await sock.request(HEARTBEAT))["ret"] == 200  # heartbeats are exempt
    emu.clock.advance(1.0)
    assert await sock.subscribe(DEPTH, ["BTCUSDT"]) == 200  # exactly 1 s later: fine
    emu.clock.advance(0.999)
    answer = await sock.request(TRADES, {"symbol_list": [{"code": "ETHUSDT"}]})
    assert answer == TOO_MANY | {"cmd_id": 22005, "seq_id": 4, "trace": "t-1", "data": {}}
    await sock.wait_closed()
    stats = emu.stats()["demo"]
    assert stats["ws-trade"] == {"200": 1, "606": 1}
    assert stats["ws-close"] == {"606": 1}


async def test_strict_heartbeats_need_the_second_too(alltick_emulator, sockets):
    emu = frozen(alltick_emulator, heartbeat_spacing=True)
    sock = await sockets(emu)(FOREX_WS)
    assert await sock.subscribe(TRADES, ["BTCUSDT"]) == 200
    emu.clock.advance(0.5)
    assert (await sock.request(HEARTBEAT))["ret"] == 606


async def test_subscriptions_across_connections_need_three_seconds(alltick_emulator, sockets):
    emu = frozen(alltick_emulator, "premium")
    group = sockets(emu)
    one, two, forex = await group(), await group(), await group(FOREX_WS)
    assert await one.subscribe(TRADES, ["AAPL.US"]) == 200
    emu.clock.advance(3.0)
    assert await two.subscribe(TRADES, ["MSFT.US"]) == 200
    emu.clock.advance(1.0)
    assert await two.subscribe(DEPTH, ["MSFT.US"]) == 200  # same connection: 1 s is enough
    assert (await one.request(HEARTBEAT))["ret"] == 200  # heartbeats are no subscriptions
    emu.clock.advance(2.9)
    assert await forex.subscribe(TRADES, ["EURUSD"]) == 606  # the other path counts too
    assert emu.stats()["demo"]["ws-trade"] == {"200": 2, "606": 1}


@pytest.mark.parametrize("plan", ["free", "basic", "premium", "professional", "all-us"])
async def test_connection_caps_count_each_path_apart(alltick_emulator, sockets, plan):
    emu = frozen(alltick_emulator, plan)
    group = sockets(emu)
    cap = get_plan(plan).ws_connections
    for _ in range(cap):
        await group(STOCK_WS)
        await group(FOREX_WS)
    for path in (STOCK_WS, FOREX_WS):
        status, body = await group.refusal(path)
        assert (status, body) == (429, TOO_MANY)
    assert emu.stats()["demo"]["ws-connect"] == {"101": 2 * cap, "429": 2}


async def test_refusals_may_be_606_frames_instead(alltick_emulator, sockets):
    emu = frozen(alltick_emulator, refuse="606")
    group = sockets(emu)
    await group()
    extra = await group()
    assert await extra.answer() == TOO_MANY | {"cmd_id": 0, "seq_id": 0, "trace": "", "data": {}}
    await extra.wait_closed()
    assert emu.stats()["demo"]["ws-connect"] == {"101": 1, "606": 1}


@pytest.mark.parametrize(("plan", "spacing"), [("free", 10.0), ("basic", 3.0), ("premium", 3.0)])
async def test_reconnects_are_spaced(alltick_emulator, sockets, plan, spacing):
    emu = frozen(alltick_emulator, plan)
    group = sockets(emu)
    first = await group()
    await first.ws.close()
    await asyncio.sleep(0.1)  # the server sees the close
    emu.clock.advance(spacing - 0.1)
    assert (await group.refusal())[0] == 429
    emu.clock.advance(spacing - 0.1)  # a refused attempt restarts the wait
    assert (await group.refusal())[0] == 429
    emu.clock.advance(spacing)
    again = await group()
    assert (await again.request(HEARTBEAT))["ret"] == 200


@pytest.mark.parametrize(("oversize", "ret"), [("cut", 200), ("603", 603)])
async def test_codes_per_subscription(alltick_emulator, sockets, api, oversize, ret):
    emu = alltick_emulator(plan="free", frozen_clock=True, oversize=oversize)
    sock = await sockets(emu)()
    codes = ["TSLA.US", "700.HK", "HSI.HK", "DJI.US", "000001.SH", "399001.SZ"]
    assert await sock.subscribe(TRADES, codes) == ret
    emu.clock.advance(1.0)
    assert await sock.subscribe(DEPTH, codes[:5]) == 200  # exactly the cap
    (conn,) = (await api(emu).admin("GET", "ws"))["connections"]
    assert conn["trades"] == (codes[:5] if ret == 200 else [])
    assert conn["depth"] == codes[:5]


async def test_tokens_are_counted_apart(alltick_emulator, sockets):
    emu = alltick_emulator(tokens={"alice": "basic", "bob": "basic"}, frozen_clock=True)
    group = sockets(emu)
    alice, bob = await group(token="alice"), await group(token="bob")
    assert await alice.subscribe(TRADES, ["AAPL.US"]) == 200
    assert await bob.subscribe(TRADES, ["AAPL.US"]) == 200  # another token: no 3 s rule
    assert (await group.refusal(token="alice"))[0] == 429


def test_the_command_line_and_config_set_the_websocket():
    from alltick_frames.emulator.cli import add_arguments, config_from_args
    from alltick_frames.emulator.config import EmulatorConfig
    from alltick_frames.emulator.ws_rules import WsConfig

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(
        ["--ws-cadence", "2", "--ws-refuse", "606", "--ws-push-ints", "--ws-heartbeat-spacing",
         "--ws-fault-drop", "0.1", "--ws-fault-malformed", "0.2", "--latency", "0.3"]
    )  # fmt: skip
    assert config_from_args(args).ws == WsConfig(
        refuse="606", cadence=2.0, push_ints=True, heartbeat_spacing=True, drop=0.1,
        malformed=0.2, latency=0.3,
    )  # fmt: skip
    with pytest.raises(ValueError, match="unknown ws setting"):
        EmulatorConfig(ws={"cadense": 1})
    with pytest.raises(ValueError, match="cadence must lie in"):
        EmulatorConfig(ws={"cadence": 0.1})
