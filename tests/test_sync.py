"""The blocking functions: from plain code, and from inside a running event loop (Jupyter)."""

from __future__ import annotations

import asyncio
import threading

import pandas as pd
import pytest
from test_client_support import TOKEN, codes_by_class, fast_plan, served, tokens

import alltick_frames as af
from alltick_frames.api.sync import run_sync

PLAN = fast_plan(100)
OPTIONS = {"token": TOKEN, "plan": PLAN, "cache": False, "progress": False}


@pytest.fixture
def emu(alltick_emulator):
    return alltick_emulator(tokens=tokens(PLAN))


def test_klines_and_latest_from_plain_code(emu) -> None:
    codes = [*codes_by_class(emu)["US"][:3], "EURUSD"]
    result = af.klines(codes, "1d", count=20, base_url=emu.url, **OPTIONS)
    latest = af.latest(codes, ["1m", "1d"], count=2, base_url=emu.url, **OPTIONS)
    assert result.ok and len(result.data) == 80
    assert list(dict.fromkeys(result.data["code"])) == codes
    assert latest.ok and len(latest.data) == 16
    assert served(emu) == {"kline": {"200": 4}, "batch-kline": {"200": 2}}


async def test_klines_inside_a_running_event_loop(emu) -> None:
    """A notebook cell calls the blocking function while its loop runs: no await, no error."""
    asyncio.get_running_loop()  # this test runs inside one
    result = af.klines(["EURUSD", "AAPL.US"], "1d", count=10, base_url=emu.url, **OPTIONS)
    again = af.retry(result, base_url=emu.url, **OPTIONS)  # nothing failed: nothing to do
    assert result.ok and len(result.data) == 20 and again is result
    assert served(emu) == {"kline": {"200": 2}}


async def test_the_same_data_sync_and_async(emu) -> None:
    sync = af.klines("BTCUSDT", "1h", count=700, base_url=emu.url, **OPTIONS)
    async with af.AllTick(TOKEN, PLAN, emu.url, cache=False, progress=False) as client:
        direct = await client.klines("BTCUSDT", "1h", count=700)
    pd.testing.assert_frame_equal(sync.data, direct.data)


def test_run_sync_runs_where_it_can() -> None:
    async def where() -> str:
        return threading.current_thread().name

    assert run_sync(where()) == threading.current_thread().name  # no loop: this thread

    async def nested() -> str:
        return run_sync(where())

    assert asyncio.run(nested()).startswith("alltick")  # inside a loop: a worker thread


def test_errors_raise_through_the_blocking_call(emu) -> None:
    with pytest.raises(ValueError, match="codes repeated"):
        af.klines(["EURUSD", "EURUSD"], base_url=emu.url, **OPTIONS)
    with pytest.raises(af.AuthError):
        af.klines(["EURUSD"], base_url=emu.url, **{**OPTIONS, "token": "tk-unknown"})
    assert served(emu) == {}
