"""Size caps per call: quiet cuts by default, 603 with ``oversize="603"`` (alltick-api.md §8 #2)."""

from __future__ import annotations

import pytest
from emu_helpers import FAST, kline_data

from alltick_frames.core.plans import FREE_SYMBOLS
from alltick_frames.emulator import CATALOGUE

US_STOCKS = [c for c, i in CATALOGUE.items() if i.market == "US" and i.asset_class == "stock"]


@pytest.mark.parametrize("code", ["EURUSD", "AAPL.US"])
async def test_kline_over_500_bars_is_cut_to_500(alltick_emulator, api, code):
    emu = alltick_emulator(plan=FAST)
    reply = await api(emu).kline(code, kline_type=1, num=1000)
    assert reply.ret == 200
    bars = reply.data["kline_list"]
    assert len(bars) == 500
    newest = (await api(emu).kline(code, kline_type=1, num=500)).data["kline_list"]
    assert bars == newest, "the cut keeps the most recent bars"


async def test_kline_over_500_bars_is_603_when_switched(alltick_emulator, api):
    emu = alltick_emulator(plan=FAST, oversize="603")
    reply = await api(emu).kline("EURUSD", kline_type=1, num=501)
    assert (reply.ret, reply.msg) == (603, "token level not enough")
    assert (await api(emu).kline("EURUSD", kline_type=1, num=500)).ret == 200


async def test_kline_cap_comes_from_the_plan(alltick_emulator, api):
    emu = alltick_emulator(plan=FAST.with_overrides(name="small", kline_bars=42))
    bars = (await api(emu).kline("EURUSD", kline_type=1, num=500)).data["kline_list"]
    assert len(bars) == 42


async def test_batch_over_2_bars_is_cut_to_2(alltick_emulator, api):
    emu = alltick_emulator(plan=FAST)
    reply = await api(emu).batch([kline_data("BTCUSDT", 1, 5), kline_data("ETHUSDT", 8, 1)])
    assert reply.ret == 200
    sizes = [len(item["kline_data"]) for item in reply.data["kline_list"]]
    assert sizes == [2, 1]


async def test_batch_over_2_bars_is_603_when_switched(alltick_emulator, api):
    emu = alltick_emulator(plan=FAST, oversize="603")
    reply = await api(emu).batch([kline_data("BTCUSDT", 1, 2), kline_data("ETHUSDT", 1, 3)])
    assert (reply.ret, reply.msg) == (603, "token level not enough")


async def test_batch_groups_over_the_cap_are_603_even_in_cut_mode(alltick_emulator, api):
    emu = alltick_emulator(plan=FAST.with_overrides(name="g3", batch_groups=3))
    groups = [kline_data("BTCUSDT", kt, 2) for kt in (1, 2, 3, 4)]
    reply = await api(emu).batch(groups)
    assert (reply.ret, reply.msg) == (603, "token level not enough")
    assert (await api(emu).batch(groups[:3])).ret == 200


@pytest.mark.parametrize("endpoint", ["trade-tick", "depth-tick", "static_info"])
async def test_codes_beyond_the_cap_are_silently_cut(alltick_emulator, api, endpoint):
    emu = alltick_emulator(plan=FAST.with_overrides(name="c50", codes_per_call=50))
    codes = US_STOCKS[:60]
    reply = await api(emu).ticks(endpoint, codes)
    assert reply.ret == 200
    items = reply.data["static_info_list" if endpoint == "static_info" else "tick_list"]
    key = "symbol" if endpoint == "static_info" else "code"
    assert [i[key] for i in items] == codes[:50]


async def test_a_bad_code_beyond_the_cap_is_never_seen(alltick_emulator, api):
    emu = alltick_emulator(plan="basic")
    reply = await api(emu).ticks("trade-tick", [*US_STOCKS[:50], "NOPE.US"])
    assert reply.ret == 200 and len(reply.data["tick_list"]) == 50


async def test_free_plan_answers_five_codes(alltick_emulator, api):
    emu = alltick_emulator(plan="free")
    stock_symbols = sorted(c for c in FREE_SYMBOLS if "." in c)
    assert len(stock_symbols) == 6
    reply = await api(emu).ticks("trade-tick", stock_symbols)
    assert [t["code"] for t in reply.data["tick_list"]] == stock_symbols[:5]


async def test_too_many_codes_is_603_when_switched(alltick_emulator, api):
    emu = alltick_emulator(plan="basic", oversize="603")
    reply = await api(emu).ticks("depth-tick", US_STOCKS[:51])
    assert (reply.ret, reply.msg) == (603, "token level not enough")
