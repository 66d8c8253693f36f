"""Results as they arrive (issue 14 item 4): ``iter_klines`` yields a batch of series at a
time, each part with its own failures, and the parts hold exactly what ``klines`` returns;
``klines(..., out=DIR)`` writes each batch to the dataset as it completes."""

from __future__ import annotations

import pandas as pd
import pytest
from test_client_support import client, fast_plan, served, tokens

from alltick_frames.store.dataset import BarDataset

PLAN = fast_plan(1000)
#: Paged FX and crypto, stocks (one page each, and a shortfall row), and a code that fails.
CODES = ["EURUSD", "AAPL.US", "BTCUSDT", "NOPE.US", "GBPUSD", "700.HK", "GOLD", "ETHUSDT"]


async def test_the_parts_hold_exactly_what_klines_returns(alltick_emulator) -> None:
    emu = alltick_emulator(tokens=tokens(PLAN))
    async with client(emu, PLAN) as c:
        whole = await c.klines(CODES, "1h", count=1200)
        calls = served(emu)
        emu.reset()
        parts = c.iter_klines(CODES, "1h", count=1200, batch=3)
        got = [part async for part in parts]
    assert [p.request["codes"] for p in got] == [CODES[0:3], CODES[3:6], CODES[6:8]]
    data = pd.concat([p.data for p in got], ignore_index=True)
    pd.testing.assert_frame_equal(data, whole.data)
    # Each part carries its own failures; the summary carries them all, in the caller's order.
    assert [p.failures["code"].tolist() for p in got] == [
        whole.failures["code"][whole.failures["code"].isin(p.request["codes"])].tolist()
        for p in got
    ]
    pd.testing.assert_frame_equal(parts.summary.failures, whole.failures)
    pd.testing.assert_frame_equal(parts.summary.completeness, whole.completeness)
    assert parts.summary.data.empty and parts.summary.stats.rows == len(whole.data)
    assert parts.summary.stats.calls == whole.stats.calls
    assert served(emu) == calls  # the same calls, not one more


async def test_each_batch_is_in_the_dataset_before_the_next_is_fetched(
    alltick_emulator, tmp_path
) -> None:
    emu = alltick_emulator(tokens=tokens(PLAN))
    dataset = BarDataset(tmp_path / "bars")
    seen = []
    async with client(emu, PLAN) as c:
        async for part in c.iter_klines(CODES, "1d", count=20, batch=4, out=dataset.root):
            seen.append(sorted(code for code, _ in dataset.series()))
            assert part.data["code"].isin(part.request["codes"]).all()
        whole = await c.klines(CODES, "1d", count=20)
    fetched = [c for c in CODES if c != "NOPE.US"]
    assert seen == [sorted(fetched[:3]), sorted(fetched)]
    expected = whole.data.sort_values(["code", "interval", "timestamp"], ignore_index=True)
    pd.testing.assert_frame_equal(dataset.read(), expected)


async def test_bad_input_is_refused_before_any_call(alltick_emulator) -> None:
    emu = alltick_emulator(tokens=tokens(PLAN))
    async with client(emu, PLAN) as c:
        with pytest.raises(ValueError, match="count"):
            c.iter_klines(CODES, "1h", count=1200, start="2024-01-01")
        with pytest.raises(ValueError, match="batch"):
            c.iter_klines(CODES, "1h", count=10, batch=0)
    assert served(emu) == {}
