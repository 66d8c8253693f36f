"""Call counts equal the planner's minimum, as the emulator counted them, and paging stitches
series without a gap or a repeated bar."""

from __future__ import annotations

import json
import math
import threading
from collections import Counter

import pandas as pd
import pytest
from hostile_server import bars, ok
from test_client_support import (
    NOW,
    assert_same_bars,
    client,
    codes_by_class,
    fast_plan,
    reference,
    served,
    tokens,
)

from alltick_frames.core import planner, wire
from alltick_frames.core.codes import STOCK_PATH, classify
from alltick_frames.run import answers, jobs
from alltick_frames.store import BarStore

PLAN = fast_plan(100, batch_groups=30)


@pytest.fixture
def emu(alltick_emulator):
    return alltick_emulator(tokens=tokens(PLAN))


@pytest.mark.parametrize("count", [1, 499, 500, 501, 1000, 1200])
async def test_count_requests_cost_ceil_count_over_500_pages_per_pageable_code(
    emu, count: int
) -> None:
    by_class = codes_by_class(emu)
    pageable = by_class["fx"][:6] + by_class["crypto"][:3] + by_class["metal"][:3]
    stocks = by_class["US"][:3] + by_class["HK"][:2] + by_class["SZ"][:1]
    codes = pageable + stocks
    async with client(emu, PLAN) as c:
        estimate = c.estimate("klines", codes, "1h", count=count)
        result = await c.klines(codes, "1h", count=count)

    pages = math.ceil(count / 500)
    expected = len(pageable) * pages + len(stocks)  # a stock is never paged: one call each
    assert served(emu) == {"kline": {"200": expected}}
    assert result.stats.calls == {"kline": expected} == estimate.calls
    req = planner.kline_request(codes, "1h", count, now=NOW.timestamp())
    assert planner.kline_calls(req, PLAN, NOW.timestamp()) == {"kline": expected}

    # Pages stitched back to back: exactly the newest `count` bars the emulator has.
    assert_same_bars(result.data, await reference(emu, pageable, 5, count))
    sizes = result.data.groupby("code", observed=True).size()
    assert sizes[pageable].eq(count).all() and sizes[stocks].eq(min(count, 500)).all()
    # Only stocks asked for more than a page fail, and they say why.
    assert set(result.failures["code"]) == (set(stocks) if count > 500 else set())


async def test_each_series_is_decoded_whole_once_its_chain_ends(emu, monkeypatch) -> None:
    """Without a cache, a code's pages are decoded together, in one batch, as soon as its
    chain has ended (while other chains are still paced), so that little is left to do after
    the last answer: every batch holds whole series, and every series is in one batch."""
    batches: list[Counter[str]] = []

    def spy(items: list[answers.Arrived], *args: object) -> object:
        batches.append(Counter(a.page.code.code for a in items))
        return assemble(items, *args)

    assemble = answers.assemble
    monkeypatch.setattr(answers, "assemble", spy)
    by_class = codes_by_class(emu)
    codes = by_class["fx"][:6] + by_class["crypto"][:3] + by_class["US"][:2]
    async with client(emu, PLAN) as c:
        result = await c.klines(codes, "1h", count=1500)

    assert sorted(code for batch in batches for code in batch) == sorted(codes)
    pages = {code: 1 if classify(code).path == STOCK_PATH else 3 for code in codes}
    assert {code: n for batch in batches for code, n in batch.items()} == pages
    assert list(dict.fromkeys(result.data["code"])) == codes
    assert_same_bars(result.data, await reference(emu, codes[:9], 5, 1500))


def test_a_code_whose_two_chains_end_together_is_read_back_once(tmp_path) -> None:
    """With the cache, a code may run two chains at once (a gap below, a refresh on top). When
    both ended before the decode thread was free, the code was read back twice, and the store,
    which reads each series once, returned one count fewer than asked: a ValueError that sank
    the job (seen once in a few runs of test_cache.py)."""
    code = classify("EURUSD")
    req = planner.kline_request([code.code], "1d", start="2024-04-01", now=NOW.timestamp())
    top = planner.KlinePage(code, req.interval, 0, 500)
    gap = planner.KlinePage(code, req.interval, 1_714_000_000, 500)
    gate = threading.Event()
    with BarStore(tmp_path) as store:
        job = jobs.KlineJob(req, PLAN, store, NOW.timestamp())
        # The decode thread is busy with the job's earlier work: both chains end meanwhile.
        job._work.append(jobs._DECODER.submit(lambda: gate.wait() and {}))
        for page, n in ((top, 3), (gap, 2)):
            (call,) = job.calls([page])
            data = bars(code.code, 8, n, now=NOW.timestamp())
            if page.end_ts:
                for bar in data["kline_list"]:
                    bar["timestamp"] = str(int(bar["timestamp"]) - 30 * 86_400)
            body = json.dumps(ok(data)).encode()
            assert job.on_ok(call, wire.parse_envelope(body), body) == []  # short: chain ends
        gate.set()
        frame = job.frame()
    assert len(frame) == 5 and frame["timestamp"].is_monotonic_increasing


async def test_a_range_costs_one_page_per_500_bars_after_its_start(emu) -> None:
    """A chain stops at the page that reaches ``start``: ``N // 500 + 1`` calls for N bars
    after the start (the planner's estimate is an upper bound: markets close at weekends)."""
    codes = ["EURUSD", "BTCUSDT", "GOLD"]
    start, end = NOW - pd.Timedelta(days=75), NOW - pd.Timedelta(days=2)
    async with client(emu, PLAN) as c:
        estimate = c.estimate("klines", codes, "1h", start=start, end=end)
        result = await c.klines(codes, "1h", start=start, end=end)

    ref = await reference(emu, codes, 5, 5000, end=int(end.timestamp()))
    ref = ref[ref["timestamp"] >= start].reset_index(drop=True)
    assert_same_bars(result.data, ref)
    assert result.data["timestamp"].between(start, end).all() and result.ok
    after_start = ref[ref["timestamp"] > start].groupby("code").size()
    expected = int((after_start // 500 + 1).sum())
    assert served(emu) == {"kline": {"200": expected}}
    assert expected <= estimate.calls["kline"]
    # Crypto trades round the clock: 75 days of hours is 1,800 bars, four pages.
    assert after_start["BTCUSDT"] // 500 + 1 == 4


async def test_batch_kline_calls_are_ceil_groups_over_cap_per_base_path(emu) -> None:
    by_class = codes_by_class(emu)
    codes = by_class["US"][:9] + by_class["fx"][:7] + by_class["HK"][:8] + by_class["crypto"][:5]
    intervals = ["1m", "5m", "1d"]
    async with client(emu, PLAN) as c:
        estimate = c.estimate("latest", codes, intervals)
        result = await c.latest(codes, intervals)

    stock_groups = 3 * sum(classify(code).path == STOCK_PATH for code in codes)  # 51
    forex_groups = 3 * len(codes) - stock_groups  # 36
    expected = math.ceil(stock_groups / 30) + math.ceil(forex_groups / 30)  # 2 + 2
    assert served(emu) == {"batch-kline": {"200": expected}}
    assert result.stats.calls == {"batch-kline": expected} == estimate.calls
    assert result.ok and len(result.data) == 3 * len(codes)
    assert list(dict.fromkeys(result.data["code"])) == codes
