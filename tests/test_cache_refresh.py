"""Refreshing many cached series one bar behind through ``/batch-kline``, counted by the server."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from test_cache import DAY, Market, cold, fast_plan, ok_calls, served, start_emulator
from test_cache import client as make_client

from alltick_frames.core.codes import FOREX_PATH, STOCK_PATH
from alltick_frames.emulator import EmulatorServer

#: Groups per /batch-kline call. Packing is per base path (stock and forex codes never share a
#: call), so 360 stock-path + 90 forex-path codes fill exactly ceil(450 / 90) = 5 calls.
CAP = 90
N_STOCK, N_FOREX = 360, 90
PLAN = fast_plan(200, batch_groups=CAP)
#: What is counted here is the refresh's route, so the cold fetch of 450 calls at 200/s gets a
#: guard wide enough for a loaded machine, fixed: a learned one may probe into one 429, which
#: would be retried (nothing lost) but would spoil the exact count of answers this test reads.
GUARD = 0.1


@pytest.fixture
def emu(alltick_emulator: Callable[..., EmulatorServer]) -> EmulatorServer:
    return start_emulator(alltick_emulator, PLAN, process=True)


@pytest.fixture
def market(emu: EmulatorServer) -> Market:
    return Market(emu)


def catalogue_codes(emu: EmulatorServer, n_stock: int, n_forex: int) -> list[str]:
    """Codes of both base paths from the emulator's catalogue, interleaved."""
    rows = emu.codes()
    stocks = [str(r["code"]) for r in rows if r["path"] == STOCK_PATH][:n_stock]
    forex = [str(r["code"]) for r in rows if r["path"] == FOREX_PATH][:n_forex]
    assert (len(stocks), len(forex)) == (n_stock, n_forex), "the catalogue is too small"
    step = n_stock // n_forex
    out: list[str] = []
    for k, code in enumerate(forex):
        out += [*stocks[k * step : (k + 1) * step], code]
    return out + stocks[n_forex * step :]


async def test_450_codes_one_bar_behind_cost_ceil_450_over_cap_batch_calls(
    emu: EmulatorServer, market: Market, tmp_path: Path
) -> None:
    codes = catalogue_codes(emu, N_STOCK, N_FOREX)
    assert len(codes) == 450
    want = math.ceil(450 / CAP)
    assert math.ceil(N_STOCK / CAP) + math.ceil(N_FOREX / CAP) == want == 5

    async with make_client(emu, market, tmp_path, PLAN, guard=GUARD) as c:
        first = await c.klines(codes, "1d", count=20)
        assert ok_calls(emu, "kline") == 450
        assert first.failures.empty

        # Wednesday 15:00Z -> Thursday 15:00Z: every market's Thursday day bar has opened
        # (US at 13:30Z, HK and CN in the night), and Wednesday's has closed. Wednesday was a
        # holiday in Hong Kong: its series are two days behind but one session, and batch too.
        market.advance(DAY)
        emu.reset()
        estimate = c.estimate("klines", codes, "1d", count=20)
        refreshed = await c.klines(codes, "1d", count=20)
        assert served(emu) == {"batch-kline": {"200": want}}
        assert refreshed.stats.route == "batch-kline"
        assert dict(refreshed.stats.calls) == {"batch-kline": want}
        assert estimate.calls == {"kline": 0, "batch-kline": want}
        assert estimate.route == "batch-kline"
        assert refreshed.failures.empty

        emu.reset()
        again = await c.klines(codes, "1d", count=20)
        assert served(emu) == {}
        pd.testing.assert_frame_equal(again.data, refreshed.data)

    # What a cold fetch at the new time returns, bar for bar.
    emu.reset()
    reference = await cold(emu, market, codes, "1d", count=20, plan=PLAN, budget=c.budget)
    assert ok_calls(emu, "kline") == 450
    pd.testing.assert_frame_equal(refreshed.data, reference.data)
    newest = refreshed.data.groupby("code", observed=True)["timestamp"].max()
    assert (newest > pd.Timestamp(market.now - DAY, unit="s", tz="UTC")).all()


async def test_range_requests_with_unreachable_stock_history_still_refresh_in_batches(
    emu: EmulatorServer, market: Market, tmp_path: Path
) -> None:
    """Stocks serve only their latest 500 bars, so 'since 2021' leaves a hole below them for
    good. That hole must not turn tomorrow's one-bar refresh into a /kline call per code."""
    codes = catalogue_codes(emu, 40, 10)
    async with make_client(emu, market, tmp_path, PLAN, guard=GUARD) as c:
        first = await c.klines(codes, "1d", start="2021-01-04")
        stocks = {code for code in codes if code[-3:] in (".US", ".HK", ".SH", ".SZ")}
        assert set(first.failures["code"]) == stocks
        assert set(first.failures["kind"]) == {"not-pageable"}
        market.advance(DAY)
        emu.reset()
        refreshed = await c.klines(codes, "1d", start="2021-01-04")
    assert served(emu) == {"batch-kline": {"200": 2}}  # one call per base path
    assert refreshed.stats.route == "batch-kline"
    reference = await cold(emu, market, codes, "1d", start="2021-01-04", plan=PLAN)
    # The cache keeps the bar that has just left each stock's 500-bar window; apart from that
    # one older bar per stock, the refreshed answer is the cold one.
    data = refreshed.data
    oldest = reference.data.groupby("code", observed=True)["timestamp"].min()
    kept = data["timestamp"] >= data["code"].map(oldest)
    assert sorted(data.loc[~kept, "code"]) == sorted(stocks)
    pd.testing.assert_frame_equal(data[kept].reset_index(drop=True), reference.data)


async def test_series_several_bars_behind_are_fetched_with_kline(
    emu: EmulatorServer, market: Market, tmp_path: Path
) -> None:
    """A batch answer holds two bars: series further behind need /kline, one call each."""
    codes = catalogue_codes(emu, 40, 10)
    async with make_client(emu, market, tmp_path, PLAN, guard=GUARD) as c:
        await c.klines(codes, "1d", count=20)
        market.advance(7 * DAY)  # the next Wednesday
        emu.reset()
        estimate = c.estimate("klines", codes, "1d", count=20)
        result = await c.klines(codes, "1d", count=20)
    assert served(emu) == {"kline": {"200": len(codes)}}
    assert estimate.calls == {"kline": len(codes), "batch-kline": 0}
    assert result.stats.route == "kline"
    reference = await cold(emu, market, codes, "1d", count=20, plan=PLAN)
    pd.testing.assert_frame_equal(result.data, reference.data)
