"""Faults: with 20% of the answers broken (429/605, HTTP 5xx, resets, truncated or non-JSON
bodies, slow answers) the same data comes back as without, and nothing is fetched twice."""

from __future__ import annotations

import pandas as pd
from test_client_support import (
    GUARD,
    WarpClock,
    client,
    codes_by_class,
    fast_plan,
    served,
    tokens,
)

from alltick_frames.api.result import FetchResult
from alltick_frames.budget import Budget
from alltick_frames.emulator import EmulatorServer
from alltick_frames.emulator.faults import FaultConfig

PLAN = fast_plan(100, batch_groups=10)
#: 4% of each kind: 20% of the answers are broken (slow ones combine with the rest).
FAULTS = FaultConfig(
    rate_limit=0.04, http_5xx=0.04, reset=0.04, malformed=0.04, slow=0.04, latency=0.05
)


async def fetch_all(emu: EmulatorServer, budget: Budget) -> list[FetchResult]:
    """Three jobs on one client: paged FX/crypto/metals, stocks, and the latest bars of all."""
    by_class = codes_by_class(emu)
    pageable = by_class["fx"][:10] + by_class["crypto"][:6] + by_class["metal"][:4]
    stocks = by_class["US"][:8] + by_class["HK"][:4] + by_class["SH"][:4] + by_class["SZ"][:4]
    async with client(emu, PLAN, budget=budget) as c:
        return [
            await c.klines(pageable, "1h", count=1200),  # 3 pages each: 60 calls
            await c.klines(stocks, "1d", count=300),  # 20 calls
            await c.latest(stocks + pageable, ["1m", "1d"], count=2),  # 4 + 4 calls
        ]


async def test_twenty_percent_faults_give_the_same_data_and_nothing_twice(
    alltick_emulator,
) -> None:
    clean_emu = alltick_emulator(tokens=tokens(PLAN))
    clean = await fetch_all(clean_emu, Budget(PLAN, guard=GUARD))
    planned = served(clean_emu)
    assert planned == {"kline": {"200": 80}, "batch-kline": {"200": 8}}

    emu = alltick_emulator(tokens=tokens(PLAN), faults=FAULTS, seed=3)
    # The minute a 605 blocks is skipped on both sides rather than sat out; 605s injected at
    # random are no daily cap, so it takes more of them in a row to conclude one.
    warp = WarpClock(emu.clock, jump=0.5)
    faulty = await fetch_all(emu, Budget(PLAN, clock=warp, guard=GUARD, daily_cap_after_605s=5))

    for got, want in zip(faulty, clean, strict=True):
        assert got.ok, got.failures[["code", "kind", "msg"]]
        pd.testing.assert_frame_equal(got.data, want.data)
        assert not got.data.duplicated(["code", "interval", "timestamp"]).any()
    # Every fault kind struck, and each one cost a retry...
    injected = emu.injected_faults()
    assert {"reset", "malformed", "slow"} <= set(injected)
    assert any(k.startswith("http-5") for k in injected)
    assert any(k.startswith("rate-limit-") for k in injected)
    answers = served(emu)
    broken = sum(n for ep in answers.values() for k, n in ep.items() if k not in ("200", "slow"))
    assert broken >= 10 and sum(r.stats.retries for r in faulty) == broken
    # ... but every call the plan needs was answered exactly once: nothing fetched twice.
    for endpoint, clean_answers in planned.items():
        assert answers[endpoint]["200"] == clean_answers["200"]
    assert sum(r.stats.total_calls for r in faulty) == 88 + broken
