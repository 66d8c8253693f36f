"""Fault injection: each kind behaves as documented and fires at its configured rate."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest
from emu_helpers import FAST, FOREX_PATH, kline_data

from alltick_frames.emulator import FaultConfig


async def outcome(client) -> str:
    """One request's fate as a client sees it."""
    try:
        reply = await client.kline("EURUSD", kline_type=1, num=5)
    except aiohttp.ClientConnectionError:
        return "reset"
    if reply.status >= 500:
        return f"http-{reply.status}"
    body = reply.json
    if body is None:
        return "malformed"
    return str(body["ret"])


async def test_faults_are_off_by_default(alltick_emulator, api):
    emu = alltick_emulator(plan=FAST)
    results = [await outcome(api(emu)) for _ in range(50)]
    assert results == ["200"] * 50
    assert emu.injected_faults() == {}


async def test_each_kind_at_its_configured_rate(alltick_emulator, api):
    rates = {"rate_limit": 0.1, "http_5xx": 0.15, "reset": 0.05, "malformed": 0.1, "slow": 0.1}
    emu = alltick_emulator(plan=FAST, faults=rates | {"latency": 0.0}, seed=11)
    await asyncio.gather(*(outcome(api(emu)) for _ in range(800)))
    stats = emu.stats()["demo"]["kline"]
    injected = emu.injected_faults()
    # Rates are per request the server saw: aiohttp retries some GETs after a reset.
    n = sum(v for k, v in stats.items() if k != "slow")
    assert n >= 800
    observed = {
        "rate_limit": stats.get("429", 0) + stats.get("605", 0),
        "http_5xx": sum(v for k, v in stats.items() if k.startswith("http-")),
        "reset": stats.get("reset", 0),
        "malformed": stats.get("malformed", 0),
        "slow": stats.get("slow", 0),
    }
    for kind, rate in rates.items():
        sd = (rate * (1 - rate) / n) ** 0.5
        assert abs(observed[kind] / n - rate) < 4 * sd, (kind, observed[kind])
    assert set(injected) >= {"http-500", "http-502", "http-503", "reset", "malformed", "slow"}
    assert injected["rate-limit-429"] + injected["rate-limit-605"] == observed["rate_limit"]


async def test_same_seed_same_faults(alltick_emulator, api):
    faults = FaultConfig.overall(0.5, latency=0.0)
    runs = []
    for _ in range(2):
        emu = alltick_emulator(plan=FAST, faults=faults, seed=3)
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as s:
            client = api(emu)
            client.http = s
            runs.append([await outcome(client) for _ in range(60)])
    assert runs[0] == runs[1]
    assert len(set(runs[0])) >= 4


async def test_rate_limit_faults_consume_no_quota(alltick_emulator, api):
    emu = alltick_emulator(plan="basic", faults={"rate_limit": 1.0}, frozen_clock=True)
    client = api(emu)
    for _ in range(5):
        reply = await client.kline("AAPL.US")
        assert (reply.ret, reply.msg) in ((429, "Too Many Requests"), (605, "too many requests"))
    emu.set_faults(rate_limit=0.0)
    assert (await client.kline("AAPL.US")).ret == 200, "the window is still empty"


async def test_reset_drops_the_connection(alltick_emulator, api):
    emu = alltick_emulator(plan=FAST, faults={"reset": 1.0})
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await api(emu).kline("EURUSD")
    assert emu.stats()["demo"]["kline"]["reset"] >= 1


async def test_http_5xx_bodies(alltick_emulator, http):
    emu = alltick_emulator(plan=FAST, faults={"http_5xx": 1.0}, seed=5)
    kinds = set()
    for _ in range(40):
        async with http.get(f"{emu.url}{FOREX_PATH}/trade-tick", params={"token": "demo"}) as r:
            assert r.status in (500, 502, 503)
            kinds.add(r.content_type)
            if r.content_type == "text/html":
                assert str(r.status) in await r.text()
    assert kinds == {"text/html", "application/json"}


async def test_malformed_is_http_200_and_not_json(alltick_emulator, api):
    emu = alltick_emulator(plan=FAST, faults={"malformed": 1.0})
    for _ in range(20):
        reply = await api(emu).kline("EURUSD", kline_type=1, num=50)
        assert reply.status == 200
        assert reply.json is None
        assert reply.raw


async def test_slow_delays_by_latency_plus_jitter(alltick_emulator, api):
    emu = alltick_emulator(plan=FAST, faults={"slow": 1.0, "latency": 0.15, "jitter": 0.05})
    started = time.perf_counter()
    reply = await api(emu).kline("EURUSD")
    elapsed = time.perf_counter() - started
    assert reply.ret == 200
    assert 0.15 <= elapsed < 1.0
    assert emu.stats()["demo"]["kline"] == {"slow": 1, "200": 1}


async def test_admin_endpoints_never_fail(alltick_emulator, api):
    emu = alltick_emulator(plan=FAST, faults={"reset": 1.0})
    client = api(emu)
    assert len(await client.admin("GET", "codes")) > 300
    await client.admin("GET", "stats")
    await client.admin("POST", "reset")


async def test_faults_change_at_runtime_over_http(alltick_emulator, api):
    emu = alltick_emulator(plan=FAST)
    client = api(emu)
    state = await client.admin("POST", "faults", {"malformed": 1.0, "seed": 9})
    assert state["config"]["malformed"] == 1.0 and state["seed"] == 9
    assert (await outcome(client)) == "malformed"
    state = await client.admin("POST", "faults", {"malformed": 0})
    assert state["injected"] == {"malformed": 1}
    assert (await outcome(client)) == "200"


def test_fault_config_validation():
    with pytest.raises(ValueError, match="at most 1"):
        FaultConfig(rate_limit=0.6, reset=0.6)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        FaultConfig(slow=1.5)
    with pytest.raises(ValueError, match="unknown"):
        FaultConfig.coerce({"boom": 0.1})
    split = FaultConfig.overall(0.5, reset=0.0)
    assert (split.rate_limit, split.slow, split.reset) == (0.1, 0.1, 0.0)


async def test_drop_bars_leaves_a_hole_inside_a_kline_answer(alltick_emulator, api):
    """With drop_bars=1 every /kline page is built one bar longer and loses one inner bar: as
    many bars as asked for, with a hole, as a server whose history lacks a bar would answer.
    Batch groups (two bars) are whole."""
    clean = alltick_emulator(plan=FAST)
    holed = alltick_emulator(plan=FAST, faults={"drop_bars": 1.0}, seed=4)
    full = (await api(clean).kline("EURUSD", kline_type=5, num=51)).data["kline_list"]
    reply = await api(holed).kline("EURUSD", kline_type=5, num=50)
    got = reply.data["kline_list"]
    assert reply.data["code"] == "EURUSD" and len(got) == 50
    assert (got[0], got[-1]) == (full[0], full[-1])
    (dropped,) = [bar for bar in full if bar not in got]
    assert got == [bar for bar in full if bar is not dropped]
    one = (await api(holed).kline("EURUSD", kline_type=5, num=1)).data["kline_list"]
    assert one == full[-1:], "a page of one bar has no inside to lose"
    batch = await api(holed).batch([kline_data("EURUSD", 5, 2)])
    assert batch.data["kline_list"][0]["kline_data"] == full[-2:]
    assert holed.injected_faults() == {"drop-bars": 1}
    assert holed.stats()["demo"] == {"kline": {"200": 2}, "batch-kline": {"200": 1}}
    again = alltick_emulator(plan=FAST, faults={"drop_bars": 1.0}, seed=4)
    same = await api(again).kline("EURUSD", kline_type=5, num=50)
    assert same.data["kline_list"] == got, "the same seed drops the same bar"
