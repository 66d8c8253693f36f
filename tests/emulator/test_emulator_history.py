"""Paging back with ``kline_timestamp_end`` (FX/crypto only) and each plan's history depth."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pytest
from emu_helpers import FAST

from alltick_frames.emulator import CATALOGUE
from alltick_frames.emulator.pytest_plugin import FIXTURE_NOW

NOW = datetime.fromisoformat(FIXTURE_NOW.replace("Z", "+00:00")).timestamp()
DAY = 86_400


def stamps(reply):
    assert reply.ret == 200, reply.raw
    return [int(b["timestamp"]) for b in reply.data["kline_list"]]


async def page_back(client, code, kline_type, pages, num=500):
    """Page back the documented way: the next end is the smallest timestamp held."""
    seen: dict[int, dict] = {}
    end = 0
    for _ in range(pages):
        reply = await client.kline(code, kline_type=kline_type, num=num, end=end)
        bars = reply.data["kline_list"]
        if end:
            assert int(bars[-1]["timestamp"]) == end, "the bar at end_ts is included"
            assert bars[-1] == seen[end], "and it is the same bar as before"
        for bar in bars:
            seen[int(bar["timestamp"])] = bar
        end = int(bars[0]["timestamp"])
    return sorted(seen)


@pytest.mark.parametrize("code", ["EURUSD", "GOLD", "BTCUSDT"])
async def test_paging_back_fx_and_crypto(alltick_emulator, api, code):
    emu = alltick_emulator(plan=FAST)
    ts = await page_back(api(emu), code, kline_type=5, pages=5)
    assert len(ts) == 5 * 500 - 4, "each page repeats exactly one bar"
    gaps = {b - a for a, b in itertools.pairwise(ts)}
    if code == "BTCUSDT":
        assert gaps == {3600}
    else:  # FX is shut from Friday 22:00 to Sunday 22:00 UTC
        assert gaps == {3600, 49 * 3600}
        assert all(datetime.fromtimestamp(t, UTC).weekday() != 5 for t in ts), "no Saturday"


async def test_end_in_milliseconds_means_the_same_second(alltick_emulator, api):
    emu = alltick_emulator(plan=FAST)
    end = int(NOW) - 7 * DAY + 123
    seconds = await api(emu).kline("EURUSD", kline_type=1, num=50, end=end)
    millis = await api(emu).kline("EURUSD", kline_type=1, num=50, end=end * 1000 + 999)
    assert seconds.data == millis.data
    assert stamps(seconds)[-1] == end - end % 60, "the newest bar starts at or before end"


async def test_end_in_the_future_is_now(alltick_emulator, api):
    emu = alltick_emulator(plan=FAST)
    latest = await api(emu).kline("BTCUSDT", kline_type=1, num=20)
    future = await api(emu).kline("BTCUSDT", kline_type=1, num=20, end=int(NOW) + 10 * DAY)
    assert latest.data == future.data


@pytest.mark.parametrize(
    "code", ["AAPL.US", "700.HK", "HSI.HK", "000001.SH", "SPY.US", "USOIL", "NGAS", "US30"]
)
async def test_only_fx_metals_and_crypto_page(alltick_emulator, api, code):
    """kline.mdx: "Only forex, precious metals, and cryptocurrencies support timestamp input":
    stocks, indices, ETFs, energy and CFD indices answer their newest bars whatever the end."""
    emu = alltick_emulator(plan=FAST)
    latest = await api(emu).kline(code, kline_type=1, num=100)
    old_end = await api(emu).kline(code, kline_type=1, num=100, end=int(NOW) - 30 * DAY)
    assert latest.data == old_end.data
    assert stamps(latest)[-1] > NOW - 3 * DAY
    assert next(r for r in emu.codes() if r["code"] == code)["pageable"] is False
    assert emu.stats() == {"demo": {"kline": {"200": 2}}}


@pytest.mark.parametrize("code", ["USOIL", "UKOIL", "NGAS", "US30", "HK50"])
async def test_energy_and_cfd_page_when_switched(alltick_emulator, api, code):
    emu = alltick_emulator(plan=FAST, page_energy_cfd=True)
    ts = await page_back(api(emu), code, kline_type=5, pages=3)
    assert len(ts) == 3 * 500 - 2
    assert next(r for r in emu.codes() if r["code"] == code)["pageable"] is True
    assert emu.stats() == {"demo": {"kline": {"200": 3}}}


def test_the_catalogue_says_which_codes_page():
    pageable = {r["asset_class"] for r in CATALOGUE.rows if r["pageable"]}
    assert pageable == {"fx", "crypto", "metal"}


@pytest.mark.parametrize(("plan", "years"), [("basic", 1), ("premium", 3), ("professional", 5)])
async def test_history_depth_by_age(alltick_emulator, api, plan, years):
    emu = alltick_emulator(plan=plan, frozen_clock=True)
    client = api(emu)
    reach = NOW - years * 365 * DAY
    inside = stamps(await client.kline("EURUSD", kline_type=8, num=500, end=int(reach + 20 * DAY)))
    assert inside and min(inside) >= reach
    assert len(inside) < 20, "only the days after the reach come back"
    emu.clock.advance(1)
    assert stamps(await client.kline("EURUSD", kline_type=8, end=int(reach - DAY))) == []


async def test_history_depth_in_bars(alltick_emulator, api):
    plan = FAST.with_overrides(name="reach100", history_days=None, history_bars=100)
    emu = alltick_emulator(plan=plan)
    client = api(emu)
    newest = stamps(await client.kline("EURUSD", kline_type=1, num=500))
    assert len(newest) == 100
    older = stamps(await client.kline("EURUSD", kline_type=1, num=500, end=newest[0]))
    assert older == [newest[0]]


async def test_market_plans_get_the_latest_500_bars(alltick_emulator, api):
    emu = alltick_emulator(plan="all-us")
    assert len(stamps(await api(emu).kline("AAPL.US", kline_type=1, num=500))) == 500


async def test_no_bar_before_2000(alltick_emulator, api):
    plan = FAST.with_overrides(name="deep", history_days=None)
    emu = alltick_emulator(plan=plan)
    ts = stamps(await api(emu).kline("EURUSD", kline_type=10, num=500))
    assert datetime.fromtimestamp(ts[0], UTC) == datetime(2000, 1, 1, tzinfo=UTC)
    assert len(ts) == 24 * 12 + 5
