"""The cache's write backlog is bounded (issue 13 item 4): when the store falls behind, the
job makes the runner wait instead of holding every answer read and not yet written. A killed
job loses at most that many answers (the README's "at most 128")."""

from __future__ import annotations

import time
from typing import Any

from test_client_support import (
    NOW,
    assert_same_bars,
    fast_plan,
    reference,
    run_kline_job,
    tokens,
)

from alltick_frames.core import planner
from alltick_frames.run import kline_job
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
    with SlowStore(tmp_path) as store:
        job, runner, failures = await run_kline_job(emu.url, req, store, PLAN)
        data = job.frame()
    assert failures == [] and runner.stats.calls == {"kline": 24}
    # The backlog filled up to its bound (the store was the bottleneck) and never past it.
    assert job.backlog_peak == BOUND
    assert job.backlog == 0
    assert_same_bars(data, await reference(emu, CODES, 5, 2000))
