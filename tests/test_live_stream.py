"""The stream against the emulator's WebSocket, over real sockets, on a driven clock.

The emulator's rate clock is frozen and moved forward in small steps (``driven``); the
stream runs its timers on the same clock (``clock=emu.clock.now``), so minutes of stream
take seconds, and the heartbeat, spacing and reconnect rules are judged on one time line by
both sides.
"""

from __future__ import annotations

import asyncio
import json

import pandas as pd
import pytest
from aiohttp import web
from live_helpers import admin, count, driven, millis, run, scheduled, stream_on, ws_stats

from alltick_frames.core.plans import get_plan
from alltick_frames.emulator.catalogue import CATALOGUE
from alltick_frames.frames import DEPTH_DTYPES, TRADE_DTYPES
from alltick_frames.live import Stream
from alltick_frames.live import socket as socket_module
from alltick_frames.live.socket import RECONNECT_GUARD

US = [c for c, i in CATALOGUE.items() if i.market == "US"]
CRYPTO = [c for c, i in CATALOGUE.items() if i.asset_class == "crypto"]
FX = [c for c, i in CATALOGUE.items() if i.asset_class == "fx"]
STOCK_WS, FOREX_WS = "/quote-stock-b-ws-api", "/quote-b-ws-api"


def frozen(alltick_emulator, plan="professional", **ws):
    return alltick_emulator(plan=plan, frozen_clock=True, ws=ws or None)


async def test_frames_have_the_schemas_of_trades_and_depth(alltick_emulator):
    emu = frozen(alltick_emulator, cadence=1.0)
    async with driven(emu):
        got = await run(stream_on(emu, ["AAPL.US", "BTCUSDT"], duration=8, batch_seconds=1))
    assert dict(got["trades"].dtypes) == TRADE_DTYPES
    assert dict(got["depth"].dtypes) == DEPTH_DTYPES
    assert set(got["trades"]["code"]) == set(got["depth"]["code"]) == {"AAPL.US", "BTCUSDT"}
    levels = got["depth"].groupby("code")["level"].max()
    assert levels.to_dict() == {"AAPL.US": 1, "BTCUSDT": 5}  # all the code has by default


async def test_heartbeats_keep_a_socket_alive_past_30_seconds(alltick_emulator):
    emu = frozen(alltick_emulator, cadence=2.0)
    stream = stream_on(emu, ["BTCUSDT"], depth=False, duration=75)
    async with driven(emu):
        got = await run(stream)
    stats = await ws_stats(emu)
    assert stats["ws-connect"] == {"101": 1}
    assert stats["ws-close"] == {"client": 1}
    assert stats["ws-heartbeat"]["200"] == stream.stats.heartbeats >= 7
    assert stream.stats.reconnects == stream.stats.closes == 0
    span = got["trades"]["time"].max() - got["trades"]["time"].min()
    assert span > pd.Timedelta(seconds=70)


async def test_a_missed_heartbeat_closes_the_socket_and_the_stream_resubscribes(alltick_emulator):
    """The server here closes a socket after 5 s without a heartbeat, so the stream's
    heartbeat (every 10 s) always comes too late: each connection lives 5 s."""
    emu = frozen(alltick_emulator, cadence=1.0, heartbeat_timeout=5.0)
    codes = ["BTCUSDT", "ETHUSDT", "EURUSD"]
    stream = stream_on(emu, codes, depth=False, duration=20)  # closes at ~5 s and ~13 s
    async with driven(emu):
        got = await run(stream)
    stats = await ws_stats(emu)
    assert stats["ws-close"] == {"heartbeat": 2, "client": 1}
    assert stream.stats.closes == 2
    assert stats["ws-connect"]["101"] == stream.stats.connects == stream.stats.reconnects + 1
    assert stats["ws-trade"]["200"] == stream.stats.connects
    # Each resubscription carried the full set, as the emulator received it: one trade
    # subscription of every code per connection.
    subscribed = (await admin(emu, "ws"))["subscribed"]
    assert len({s["id"] for s in subscribed}) == stream.stats.connects
    assert [sorted(s["codes"]) for s in subscribed] == [sorted(codes)] * stream.stats.connects
    # Each connection's trades form one run (cadence 1 s; reconnecting takes over 3 s), and
    # every run the server ended (5 s of trades) holds every code. The last connection is cut
    # by the stream's end, wherever that falls in the trades' cadence: it may hold fewer
    # codes, or none when the end comes before its first trade.
    times = got["trades"].sort_values("time")
    run_of = (times["time"].diff() > pd.Timedelta(seconds=2.5)).cumsum()
    closed = stream.stats.closes
    assert closed <= run_of.max() + 1 <= stream.stats.connects
    per_run = times.groupby(run_of)["code"].nunique()
    assert per_run.iloc[:closed].eq(len(codes)).all()
    failures = stream.failures
    assert set(failures["kind"]) == {"transport"} and set(failures["code"]) == set(codes)
    assert failures["msg"].str.contains("closed by the server .code 1000: heartbeat").all()
    assert failures["detail"].str.contains("until the resubscription").sum() == 3 * 2


async def test_codes_over_a_socket_are_split_up_to_the_cap_and_the_rest_reported(
    alltick_emulator,
):
    plan = get_plan("premium").with_overrides(name="small", ws_codes=4, ws_connections=2)
    emu = alltick_emulator(plan=plan, frozen_clock=True, ws={"cadence": 1.0})
    stocks, forex = US[:10], CRYPTO[:3]
    stream = stream_on(emu, stocks + forex, duration=20)
    state = None
    async with driven(emu), stream:
        async for _ in stream:
            if state is None and stream.stats.subscriptions == 6:
                state = await admin(emu, "ws")
    by_path = {}
    for conn in state["connections"]:
        by_path.setdefault(conn["path"], []).append(conn["trades"])
        assert conn["depth"] == conn["trades"]
    assert sorted(by_path[STOCK_WS]) == [stocks[:4], stocks[4:8]]
    assert by_path[FOREX_WS] == [forex]
    failures = stream.failures
    endpoints = ("ws-depth", "ws-trade")
    assert failures[["code", "endpoint", "kind"]].values.tolist() == [
        [code, endpoint, "plan-limit"] for code in stocks[8:] for endpoint in endpoints
    ]
    assert failures["msg"].str.contains("2 connection.s. x 4 codes").all()
    assert stream.codes["trades"] == stocks[:8] + forex


async def test_300_codes_for_two_minutes_on_premium_never_get_606(alltick_emulator):
    """The strict reading of the rules: heartbeats too need 1 s from other requests."""
    emu = alltick_emulator(plan="premium", frozen_clock=True, ws={"heartbeat_spacing": True})
    codes = US[:250] + CRYPTO[:30] + FX[:20]
    stream = stream_on(emu, codes, duration=120, batch_rows=2000, batch_seconds=2)
    async with driven(emu, step=0.5):
        got = await run(stream)
    stats = await ws_stats(emu)
    assert count(stats, "606") == count(stats, "429") == 0
    assert stats["ws-connect"] == {"101": 3}  # 200 + 50 stocks, 50 forex codes
    assert stats["ws-trade"] == stats["ws-depth"] == {"200": 3}
    assert stream.stats.too_many == stream.stats.refused == stream.stats.reconnects == 0
    assert stream.failures.empty  # every code pushed (indices push empty books)
    assert got["trades"]["code"].nunique() == 300
    # Every push sent before the stream said goodbye arrived (some were still on the way).
    assert stream.stats.trades == len(got["trades"]) <= stats["ws-push-trade"]["sent"]
    assert got["trades"]["time"].max() - got["trades"]["time"].min() > pd.Timedelta("115s")


async def test_a_dropped_socket_loses_only_its_window_and_says_so(alltick_emulator):
    cadence, jitter = 1.0, 0.5
    emu = frozen(alltick_emulator, cadence=cadence)
    codes = ["BTCUSDT", "ETHUSDT", "EURUSD"]
    stream = stream_on(emu, codes, depth=False, duration=30, jitter=jitter, seed=1)
    frames = []
    async with driven(emu), stream:
        async for frame in stream:
            frames.append(frame)
            if stream.stats.trades >= 20 and not stream.stats.closes:
                await admin(emu, "ws", {"disconnect": True})
                await asyncio.sleep(0.1)
    assert stream.stats.closes == stream.stats.reconnects == 1
    trades = pd.concat(frames, ignore_index=True)
    window = get_plan("professional").ws_reconnect + RECONNECT_GUARD + jitter + 2 * cadence + 1
    for code in codes:
        got = trades[trades["code"] == code].sort_values("time")
        missing = sorted(scheduled(code, got["time"], cadence) - millis(got["time"]))
        assert missing, "the drop lost trades"
        before = got[got["time"] < pd.Timestamp(missing[0], unit="ms", tz="UTC")]["time"].max()
        after = got[got["time"] > pd.Timestamp(missing[-1], unit="ms", tz="UTC")]["time"].min()
        assert not ((got["time"] > before) & (got["time"] < after)).any()  # one hole ...
        assert (after - before).total_seconds() <= window  # ... no longer than documented
    failures = stream.failures
    assert sorted(failures["code"]) == sorted(codes)
    assert set(failures["kind"]) == {"transport"}
    assert failures["msg"].eq("socket closed: the connection dropped").all()
    detail = r"trades after the trade of 2024-05-15T\S+ until the resubscription"
    assert failures["detail"].str.match(detail).all()


async def test_codes_added_and_removed_while_running(alltick_emulator):
    emu = frozen(alltick_emulator, cadence=1.0)
    stream = stream_on(emu, ["BTCUSDT"], depth=False, duration=40)
    seen: list[set[str]] = []
    async with driven(emu), stream:
        async for frame in stream:
            seen.append(set(frame["code"]))
            subs = stream.stats.subscriptions
            if subs == 1 and stream.stats.trades > 5:
                await stream.add(["ETHUSDT", "AAPL.US"])
            elif subs == 3 and "AAPL.US" in seen[-1] and stream.codes["trades"][0] == "BTCUSDT":
                state = await admin(emu, "ws")
                await stream.remove(["BTCUSDT", "AAPL.US"])
                marker = len(seen)
    paths = {c["path"]: c["trades"] for c in state["connections"]}
    assert paths == {FOREX_WS: ["BTCUSDT", "ETHUSDT"], STOCK_WS: ["AAPL.US"]}
    assert stream.codes == {"trades": ["ETHUSDT"]}
    assert set().union(*seen[marker + 2 :]) == {"ETHUSDT"}
    stats = await ws_stats(emu)
    assert stats["ws-trade"] == {"200": 4}  # BTC; BTC+ETH; AAPL; ETH
    assert stats["ws-close"] == {"client": 2}  # the stock socket closed when emptied
    assert stream.failures.empty


async def test_faults_malformed_frames_and_delayed_pushes(alltick_emulator):
    emu = frozen(alltick_emulator, cadence=1.0, malformed=0.2, delay=0.3, latency=0.05)
    stream = stream_on(emu, ["BTCUSDT"], depth=False, duration=30)
    async with driven(emu):
        got = await run(stream)
    stats = (await ws_stats(emu))["ws-push-trade"]
    assert 0 < stream.stats.malformed <= stats["malformed"]  # the last may still be on the way
    assert stats["delayed"] > 0
    trades = got["trades"]
    assert stream.stats.trades == len(trades) and trades["time"].is_monotonic_increasing
    lost = scheduled("BTCUSDT", trades["time"], 1.0) - millis(trades["time"])
    assert len(lost) <= stream.stats.malformed  # a malformed frame loses its push, nothing else


async def test_pushes_with_integer_fields(alltick_emulator):
    emu = frozen(alltick_emulator, cadence=1.0, push_ints=True)
    async with driven(emu):
        got = await run(stream_on(emu, ["BTCUSDT"], duration=5))
    assert len(got["trades"]) >= 3 and (got["trades"]["seq"] > 0).all()


async def test_silent_codes_become_left_out_rows_after_the_timeout(alltick_emulator):
    emu = frozen(alltick_emulator, cadence=1.0)
    codes = ["BTCUSDT", "700.HK", "NOPE.US"]  # HK is closed at 22:00; NOPE.US does not exist
    stream = stream_on(emu, codes, depth=False, duration=30, silence_timeout=10)
    async with driven(emu), stream:
        async for _ in stream:
            if stream.clock.now() - stream._started_at > 15 and stream.failures.shape[0] == 2:
                break
        running = stream.failures
    assert running[["code", "endpoint", "kind"]].values.tolist() == [
        ["700.HK", "ws-trade", "left-out"],
        ["NOPE.US", "ws-trade", "left-out"],
    ]
    assert running["detail"].str.contains("acks unknown, misrouted or unauthorised").all()


async def test_codes_outside_the_plan_are_reported_without_a_request(alltick_emulator):
    emu = frozen(alltick_emulator, "free")
    stream = stream_on(emu, ["BTCUSDT", "ETHUSDT"], duration=12)
    async with driven(emu):
        await run(stream)
    failures = stream.failures
    assert failures[["code", "ret", "kind", "attempts"]].values.tolist() == [
        ["ETHUSDT", 604, "code-unauthorized", 0],
        ["ETHUSDT", 604, "code-unauthorized", 0],
    ]
    assert (await admin(emu, "ws"))["connections"] == []


async def test_a_refused_token_ends_the_stream_and_never_shows(alltick_emulator):
    emu = frozen(alltick_emulator)
    stream = stream_on(emu, ["BTCUSDT"])
    stream.token = type(stream.token)("not-the-token-s3cret")
    with pytest.raises(Exception) as caught:
        await run(stream)
    assert type(caught.value).__name__ == "AuthError"
    assert "s3cret" not in str(caught.value) and "s3cret" not in repr(stream)


async def test_a_server_that_stops_answering_is_given_up(monkeypatch):
    """A link that dies without a word: no answer within the timeout closes the socket."""
    monkeypatch.setattr(socket_module, "ANSWER_TIMEOUT", 0.3)
    heard = []

    async def mute(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for msg in ws:
            heard.append(json.loads(msg.data)["cmd_id"])  # ... and never answers
        return ws

    app = web.Application()
    app.router.add_get("/quote-b-ws-api", mute)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        stream = Stream(["BTCUSDT"], token="t", base_url=f"http://127.0.0.1:{port}", duration=1)
        await run(stream)
    finally:
        await runner.cleanup()
    assert heard == [22004]  # trades first; no answer, so no depth subscription
    assert stream.stats.closes == 1 and stream.stats.subscriptions == 0
    failures = stream.failures
    assert set(failures["msg"]) == {"never subscribed"}
