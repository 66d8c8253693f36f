"""trades, depth and static_info against the emulator: rows, caps, left-out codes (the
trading-halt service is ``test_suspensions.py``)."""

from __future__ import annotations

import pandas as pd
import pytest
from quote_helpers import FAST, NOW, body, calls_of, client_for, expected_halts

import alltick_frames as af
from alltick_frames import frames
from alltick_frames.api.client import AllTick
from alltick_frames.core.plans import FREE_SYMBOLS
from alltick_frames.emulator import CATALOGUE
from alltick_frames.emulator import market as emu_market
from alltick_frames.run.runner import RetryPolicy

US = [r["code"] for r in CATALOGUE.rows if r["market"] == "US" and r["asset_class"] == "stock"]
HK = [r["code"] for r in CATALOGUE.rows if r["market"] == "HK" and r["asset_class"] == "stock"]
FX = [r["code"] for r in CATALOGUE.rows if r["asset_class"] == "fx"]
CRYPTO = [r["code"] for r in CATALOGUE.rows if r["asset_class"] == "crypto"]


def expected_trades(codes: list[str]) -> pd.DataFrame:
    ticks = [emu_market.trade_tick(CATALOGUE[c], NOW) for c in codes]
    return frames.decode_trade_ticks([body({"tick_list": ticks})])


def expected_depth(codes: list[str]) -> pd.DataFrame:
    ticks = [emu_market.depth_tick(CATALOGUE[c], NOW) for c in codes]
    return frames.decode_depth_ticks([body({"tick_list": ticks})])


def expected_static(codes: list[str]) -> pd.DataFrame:
    infos = [emu_market.static_info(CATALOGUE[c]) for c in codes]
    return frames.decode_static_info([body({"static_info_list": infos})])


# --------------------------------------------------------------------------- trades


async def test_trades_exact_rows_in_caller_order_and_chunked_per_path(alltick_emulator):
    emu = alltick_emulator(plan=FAST)
    # 60 stock and 60 forex-path codes, interleaved: 50 per call, one base path per call.
    codes = [c for pair in zip(US[:60], FX[:30] + CRYPTO[:30], strict=True) for c in pair]
    async with client_for(emu) as client:
        result = await client.trades(codes)
    assert result.ok
    pd.testing.assert_frame_equal(result.data, expected_trades(codes))
    assert list(result.data.columns) == frames.TRADE_COLUMNS
    assert calls_of(emu, "trade-tick") == {"200": 4}  # stock 50 + 10, forex 50 + 10
    assert result.stats.calls["trade-tick"] == 4
    assert result.request == {"method": "trades", "codes": codes}


async def test_caps_hold_when_the_server_refuses_oversize_calls(alltick_emulator):
    emu = alltick_emulator(plan=FAST, oversize="603")
    async with client_for(emu) as client:
        result = await client.trades(US[:101])
    assert result.ok and len(result.data) == 101
    assert calls_of(emu, "trade-tick") == {"200": 3}  # 50 + 50 + 1, never a 603


async def test_a_plan_larger_than_the_servers_is_split_on_603(alltick_emulator):
    # hard_code_cap: a server that refuses more than 50 codes (AllTick cuts Free at 5).
    emu = alltick_emulator(plan=FAST, oversize="603", hard_code_cap=True)
    too_big = FAST.with_overrides(name="too-big", codes_per_call=120)
    async with client_for(emu, too_big) as client:
        result = await client.trades(US[:120])
    assert result.ok
    pd.testing.assert_frame_equal(result.data, expected_trades(US[:120]))
    # 120 -> 603 -> 60 + 60 -> 603 each -> four calls of 30
    assert calls_of(emu, "trade-tick") == {"603": 3, "200": 4}
    assert result.stats.splits == 3


async def test_codes_cut_from_an_answer_are_asked_again_once(alltick_emulator):
    # hard_code_cap: answers the first 50 codes of a call, silently (as AllTick does on Free)
    emu = alltick_emulator(plan=FAST, hard_code_cap=True)
    wide_open = FAST.with_overrides(name="wide", codes_per_call=200)
    async with client_for(emu, wide_open) as client:
        recovered = await client.trades(US[:80])
        lost = await client.trades(US[:120])
    # 80: 50 answered, the other 30 asked again and answered.
    assert recovered.ok
    pd.testing.assert_frame_equal(recovered.data, expected_trades(US[:80]))
    # 120: 50 answered, 70 asked again, 50 of them answered, 20 left out twice.
    assert len(lost.data) == 100
    assert list(lost.data["code"]) == US[:100]
    failures = lost.failures
    assert list(failures["code"]) == US[100:120]
    assert set(failures["kind"]) == {"left-out"}
    assert set(failures["endpoint"]) == {"trade-tick"}
    assert (failures["attempts"] == 2).all()
    assert calls_of(emu, "trade-tick") == {"200": 4}


async def test_a_bad_code_is_bisected_out_of_its_chunk(alltick_emulator):
    emu = alltick_emulator(plan=FAST)
    codes = [*US[:20], "NOPE.US", *US[20:29]]
    async with client_for(emu) as client:
        result = await client.trades(codes)
    good = [c for c in codes if c != "NOPE.US"]
    pd.testing.assert_frame_equal(result.data, expected_trades(good))
    assert result.failures[["code", "kind", "ret"]].values.tolist() == [
        ["NOPE.US", "code-invalid", 600]
    ]
    assert result.stats.bisections > 0


async def test_codes_outside_a_fixed_basket_fail_without_a_call(alltick_emulator):
    # The Free plan's basket and caps, at a pace that keeps the test fast.
    basket = FAST.with_overrides(name="basket", symbols=FREE_SYMBOLS, codes_per_call=5)
    emu = alltick_emulator(plan=basket)
    async with client_for(emu, basket) as client:
        result = await client.trades(["TSLA.US", "AAPL.US", "GOLD", "EURUSD"])
    assert list(result.data["code"]) == ["TSLA.US", "GOLD"]
    rows = result.failures[["code", "kind", "ret", "attempts"]].values.tolist()
    assert rows == [
        ["AAPL.US", "code-unauthorized", 604, 0],
        ["EURUSD", "code-unauthorized", 604, 0],
    ]
    assert calls_of(emu, "trade-tick") == {"200": 2}  # one per base path, none for the rest


async def test_market_plans_report_other_markets_without_a_call(alltick_emulator):
    emu = alltick_emulator(plan="all-hk")
    async with client_for(emu, "all-hk") as client:
        result = await client.trades(["700.HK", "AAPL.US", "9988.HK"])
    assert list(result.data["code"]) == ["700.HK", "9988.HK"]
    assert list(result.failures["code"]) == ["AAPL.US"]
    assert calls_of(emu, "trade-tick") == {"200": 1}


async def test_faults_are_retried_and_every_code_arrives(alltick_emulator):
    emu = alltick_emulator(plan=FAST, faults={"malformed": 0.3, "http_5xx": 0.3}, seed=3)
    async with client_for(emu, retry=RetryPolicy(attempts=8, base=0.01, cap=0.02)) as client:
        result = await client.trades(US[:100] + FX[:20])
    assert result.ok
    pd.testing.assert_frame_equal(result.data, expected_trades(US[:100] + FX[:20]))
    assert result.stats.retries > 0


async def test_bad_input_is_a_value_error_before_any_call(alltick_emulator):
    emu = alltick_emulator(plan=FAST)
    async with client_for(emu) as client:
        for bad in ([], ["aapl.us"], ["AAPL.US", "AAPL.US"]):
            with pytest.raises(ValueError):
                await client.trades(bad)
    assert emu.stats() == {}


# --------------------------------------------------------------------------- depth


async def test_depth_long_form_exact_rows(alltick_emulator):
    emu = alltick_emulator(plan=FAST)
    codes = ["700.HK", "BTCUSDT", "EURUSD", "AAPL.US", "600519.SH", "HSI.HK"]
    async with client_for(emu) as client:
        result = await client.depth(codes)
    assert result.ok  # HSI.HK has no book: answered, no rows, not a failure
    expected = expected_depth(codes)
    pd.testing.assert_frame_equal(result.data, expected)
    assert set(result.data["status"]) == {"normal"}
    levels = result.data.groupby("code", sort=False)["level"].max().to_dict()
    assert levels == {"700.HK": 10, "BTCUSDT": 5, "EURUSD": 1, "AAPL.US": 1, "600519.SH": 5}
    hk = result.data[result.data["code"] == "700.HK"]
    assert list(hk["side"]) == ["bid"] * 10 + ["ask"] * 10
    assert hk[hk["side"] == "bid"]["price"].is_monotonic_decreasing
    assert str(result.data["time"].dtype) == "datetime64[ns, UTC]"
    assert calls_of(emu, "depth-tick") == {"200": 2}


async def test_depth_at_the_limits_has_no_zero_quote_and_says_each_books_status(
    alltick_emulator,
):
    """Limit-up, limit-down and delisted books come zero-filled (price-change-trading-status
    .mdx): no zero-price row, the right status on every row, delisted codes as failures."""
    emu = alltick_emulator(plan=FAST)
    book_status = {row["code"]: row["book_status"] for row in emu.codes()}
    codes = [
        "700.HK", "600196.SH", "600011.SH", "QDZ.US", "002049.SZ", "BTCUSDT",
        "002466.SZ", "8040.HK", "600519.SH", "301040.SZ", "HSI.HK",
    ]  # fmt: skip
    async with client_for(emu) as client:
        result = await client.depth(codes)
    data = result.data
    pd.testing.assert_frame_equal(data, expected_depth(codes))
    assert (data["price"] > 0).all()
    statuses = data.groupby("code", sort=False)["status"].unique().map(list).to_dict()
    assert statuses == {
        "700.HK": ["normal"],
        "600196.SH": ["limit-up"],
        "600011.SH": ["limit-down"],
        "002049.SZ": ["limit-up"],
        "BTCUSDT": ["normal"],
        "002466.SZ": ["limit-down"],
        "600519.SH": ["normal"],
    }
    assert all(book_status[code] == s for code, (s,) in statuses.items())
    sides = data.groupby("code", sort=False)["side"].unique().map(list).to_dict()
    assert sides["600196.SH"] == sides["002049.SZ"] == ["bid"]
    assert sides["600011.SH"] == sides["002466.SZ"] == ["ask"]
    assert (data.groupby("code")["level"].max().loc[["600196.SH", "600011.SH"]] == 5).all()
    delisted = [c for c in codes if book_status[c] == "delisted"]
    assert delisted == ["QDZ.US", "8040.HK", "301040.SZ"]
    rows = result.failures[["code", "endpoint", "kind", "attempts"]].values.tolist()
    assert rows == [[c, "depth-tick", "delisted", 1] for c in delisted]
    assert result.failures["ret"].isna().all()
    assert calls_of(emu, "depth-tick") == {"200": 2}  # one per base path


async def test_depth_left_out_codes_are_detected(alltick_emulator):
    emu = alltick_emulator(plan=FAST, hard_code_cap=True)
    wide_open = FAST.with_overrides(name="wide", codes_per_call=200)
    async with client_for(emu, wide_open) as client:
        result = await client.depth(HK[:83] + CRYPTO[:30])
    # stock call: 83 asked, 50 + 33 (re-ask) answered; forex: 30 in one call.
    assert result.ok
    assert result.data["code"].nunique() == 113
    assert calls_of(emu, "depth-tick") == {"200": 3}


# --------------------------------------------------------------------------- static info


async def test_static_info_exact_rows_keyed_by_symbol(alltick_emulator):
    emu = alltick_emulator(plan=FAST)
    codes = ["700.HK", "AAPL.US", "600519.SH", "2800.HK"]  # an ETF: no EPS or book value
    async with client_for(emu) as client:
        result = await client.static_info(codes)
    assert result.ok
    pd.testing.assert_frame_equal(result.data, expected_static(codes))
    assert list(result.data.columns) == frames.STATIC_INFO_COLUMNS
    assert calls_of(emu, "static_info") == {"200": 1}


async def test_static_info_reports_non_stock_codes_and_fetches_the_stocks(alltick_emulator):
    emu = alltick_emulator(plan=FAST)
    async with client_for(emu) as client:
        result = await client.static_info(["EURUSD", "700.HK", "GOLD"])
        with pytest.raises(ValueError, match="stocks only"):
            await client.static_info(["EURUSD", "BTCUSDT"])
    assert list(result.data["code"]) == ["700.HK"]
    rows = result.failures[["code", "kind", "endpoint", "attempts"]].values.tolist()
    assert rows == [
        ["EURUSD", "code-invalid", "static_info", 0],
        ["GOLD", "code-invalid", "static_info", 0],
    ]
    assert calls_of(emu, "static_info") == {"200": 1}


async def test_static_info_bisects_market_indices_out(alltick_emulator):
    """static-info.mdx covers stocks only: an index fails its call with 600, so it is
    bisected out to a code-invalid row of its own and the stocks still arrive."""
    emu = alltick_emulator(plan=FAST)
    async with client_for(emu) as client:
        result = await client.static_info(["700.HK", "HSI.HK", "AAPL.US", "000300.SH"])
    pd.testing.assert_frame_equal(result.data, expected_static(["700.HK", "AAPL.US"]))
    rows = result.failures[["code", "ret", "kind"]].values.tolist()
    assert rows == [["HSI.HK", 600, "code-invalid"], ["000300.SH", 600, "code-invalid"]]
    # 4 codes: 600; halves of 2: 600 each; quarters: 200, 600, 200, 600.
    assert calls_of(emu, "static_info") == {"600": 5, "200": 2}


async def test_static_info_left_out_codes_use_the_symbol_key(alltick_emulator):
    emu = alltick_emulator(plan=FAST, hard_code_cap=True)
    wide_open = FAST.with_overrides(name="wide", codes_per_call=500)
    async with client_for(emu, wide_open) as client:
        result = await client.static_info(US[:145])
    # 145 -> 50 answered; 95 re-asked -> 50 answered; 45 left out.
    assert len(result.data) == 100
    assert list(result.failures["code"]) == US[100:145]
    assert set(result.failures["kind"]) == {"left-out"}


# --------------------------------------------------------------------------- estimates, sync


def test_calls_for_each_endpoint():
    client = AllTick("t", "professional", "http://127.0.0.1:9", cache=False)
    codes = US[:60] + (FX + CRYPTO)[:60]
    assert client._calls_for_trades(codes) == {"trade-tick": 4}
    assert client._calls_for_depth(codes[:50]) == {"depth-tick": 1}
    assert client._calls_for_static_info(codes) == {"static_info": 2}  # the 60 stocks only
    assert client._calls_for_suspensions("SSE") == {"suspension/sse": 1}
    free = AllTick("t", "free", "http://127.0.0.1:9", cache=False)
    assert free._calls_for_trades(["TSLA.US", "AAPL.US", "GOLD"]) == {"trade-tick": 2}
    assert free._calls_for_trades(["TSLA.US", "AAPL.US"]) == {"trade-tick": 1}
    estimate = client.estimate("trades", codes)
    assert estimate.calls == {"trade-tick": 4}


def test_sync_functions(alltick_emulator):
    emu = alltick_emulator(plan=FAST)
    options = {"token": emu.token, "plan": FAST, "base_url": emu.url, "cache": False}
    assert list(af.trades(["AAPL.US", "EURUSD"], **options).data["code"]) == ["AAPL.US", "EURUSD"]
    assert af.depth("700.HK", **options).data["level"].max() == 10
    assert list(af.static_info(["700.HK"], **options).data["code"]) == ["700.HK"]
    assert len(af.suspensions("sse", **options).data) == len(expected_halts("sse"))
