"""The cache's write backlog is bounded (issue 13 item 4): when the store falls behind, the
job makes the runner wait instead of holding every answer read and not yet written. A killed
job loses at most that many answers (the README's "at most 128")."""

from __future__ import annotations

import time
from typing import Any

from test_client_support import (
    FAST_RETRY,
    NOW,
    TOKEN,
    assert_same_bars,
    fast_plan,
    reference,
    tokens,
)

from alltick_frames.api.result import FetchStats
from alltick_frames.budget import Budget
from alltick_frames.core import planner
from alltick_frames.run import kline_job
from alltick_frames.run.runner import Runner
from alltick_frames.run.transport import Secret, Transport
from alltick_frames.store import BarStore

PLAN = fast_plan(1000)
CODES = ["EURUSD", "GBPUSD", "USDJPY", "BTCUSDT", "ETHUSDT", "GOLD"]
BOUND = 6


class SlowStore(BarStore):
    """A store whose every write takes 20 ms: far slower than answers arrive."""

    def write(self, *args: Any, **kwargs: Any) -> Any:
        time.sleep(0.02)
        return super().write(*args, **kwargs)


async def test_a_slow_store_holds_the_fetch_back_not_the_answers(
    alltick_emulator, tmp_path, monkeypatch
) -> None:
    monkeypatch.setattr(kline_job, "MAX_BACKLOG", BOUND)
    emu = alltick_emulator(tokens=tokens(PLAN))
    req = planner.kline_request(CODES, "1h", count=2000, now=NOW.timestamp())
    transport = Transport(emu.url, Secret(TOKEN))
    with SlowStore(tmp_path) as store:
        job = kline_job.KlineJob(req, PLAN, store, NOW.timestamp())
        runner = Runner(transport, Budget(PLAN), FetchStats(), retry=FAST_RETRY, concurrency=16)
        try:
            pages = [planner.first_page(req, c, PLAN) for c in req.codes]
            failures = await runner.run(job, job.calls(pages))
            await job.settle()
        finally:
            await transport.close()
        data = job.frame()
    assert failures == [] and runner.stats.calls == {"kline": 24}
    # The backlog filled up to its bound (the store was the bottleneck) and never past it.
    assert job.backlog_peak == BOUND
    assert job.backlog == 0
    assert_same_bars(data, await reference(emu, CODES, 5, 2000))
