"""Pacing over real HTTP: a client alone on its token sees no 429 or 605, whatever it mixes.

Wall-clock speed is never asserted here (the benchmark measures it); what is asserted is what
the emulator counted: every call answered, none refused.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

import pytest
from test_client_support import (
    FAST_RETRY,
    GUARD,
    NOW,
    TOKEN,
    client,
    codes_by_class,
    fast_plan,
    rejections,
    served,
    tokens,
)

from alltick_frames.api.result import FetchStats
from alltick_frames.budget import PER_MINUTE_KEY, Budget, to_ticks
from alltick_frames.budget.pacing import ANSWER_SLACK
from alltick_frames.core import planner, wire
from alltick_frames.core.plans import get_plan
from alltick_frames.run.jobs import KlineJob
from alltick_frames.run.runner import Call, Runner
from alltick_frames.run.transport import Secret, Transport


async def test_a_fast_plan_mixing_kline_and_batch_kline_sees_no_rejection(alltick_emulator) -> None:
    """``klines`` and ``latest`` at once on one client: both endpoints' windows and the shared
    all-endpoints window hold, on a 20 calls/s plan."""
    plan = fast_plan(20, batch_groups=40)
    emu = alltick_emulator(tokens=tokens(plan), process=True)
    by_class = codes_by_class(emu)
    codes = by_class["US"][:16] + by_class["HK"][:8] + by_class["fx"][:8] + by_class["crypto"][:8]
    async with client(emu, plan) as c:
        history, latest = await asyncio.gather(
            c.klines(codes, "1d", count=100), c.latest(codes, ["1m", "1h"], count=2)
        )
    assert history.ok and latest.ok
    assert len(history.data) == 100 * len(codes) and len(latest.data) == 4 * len(codes)
    # 40 /kline calls, and 80 groups packed 40 a call on each path (56 stock, 24 forex groups).
    assert served(emu) == {"kline": {"200": 40}, "batch-kline": {"200": 3}}


async def test_the_basic_plan_sees_no_rejection(alltick_emulator) -> None:
    """Basic allows one call a second in all, and one /batch-kline every three seconds."""
    plan = get_plan("basic")
    emu = alltick_emulator(tokens=tokens(plan), process=True)
    async with client(emu, plan) as c:
        history, latest = await asyncio.gather(
            c.klines(["AAPL.US", "EURUSD"], "1d", count=10), c.latest(["700.HK"], "1d")
        )
    assert history.ok and latest.ok and len(history.data) == 20 and len(latest.data) == 1
    assert served(emu) == {"kline": {"200": 2}, "batch-kline": {"200": 1}}


@dataclass
class FreezeOnce:
    """A k-line job whose first answer blocks the event loop, as a long decode would."""

    inner: KlineJob
    freeze: float
    frozen: bool = False

    @property
    def endpoint(self) -> str:
        return self.inner.endpoint

    def request(self, call: Call) -> tuple[dict[str, str] | None, bytes | None]:
        return self.inner.request(call)

    def on_ok(self, call: Call, envelope: wire.Envelope, body: bytes) -> Any:
        if not self.frozen:
            self.frozen = True
            time.sleep(self.freeze)  # deliberately blocking: the loop stands still
        return self.inner.on_ok(call, envelope, body)

    def split(self, call: Call) -> Any:
        return self.inner.split(call)

    def max_body(self, call: Call) -> int:
        return self.inner.max_body(call)


async def test_calls_whose_task_woke_late_take_a_new_slot(alltick_emulator, caplog) -> None:
    """Two calls per 0.5 s, sent in bursts (``smooth=False``, so the times below are exact).
    Two calls go at once; the next two wait for their slot 0.525 s later, but the first
    answer blocks the loop for 0.7 s, so they leave at 0.7 s. Had the ledger kept them at
    0.525 s, the next two would go at 1.05 s, less than a window after the late ones reached
    the server, and be refused."""
    plan = fast_plan(2)
    plan = plan.with_overrides(
        endpoint_rates={**plan.endpoint_rates, "kline": (2, 0.5)}, all_endpoints=None
    )
    emu = alltick_emulator(tokens=tokens(plan), process=True)
    codes = codes_by_class(emu)["US"][:8]
    req = planner.kline_request(codes, "1d", count=3, now=NOW.timestamp())
    job = FreezeOnce(KlineJob(req, plan, now=NOW.timestamp()), freeze=0.7)
    transport = Transport(emu.url, Secret(TOKEN))
    budget = Budget(plan, smooth=False)
    runner = Runner(transport, budget, FetchStats(), retry=FAST_RETRY, concurrency=4)
    caplog.set_level(logging.DEBUG, logger="alltick_frames")
    try:
        failures = await runner.run(
            job, job.inner.calls(planner.first_page(req, c, plan) for c in req.codes)
        )
    finally:
        await transport.close()
    assert failures == [] and job.frozen
    assert served(emu) == {"kline": {"200": 8}}
    assert sum("slot missed" in r.getMessage() for r in caplog.records) >= 2
    assert len(job.inner.frame()) == 24


@pytest.mark.parametrize("interval", ["1m", "1d"])
async def test_sequential_jobs_on_one_client_share_its_budget(alltick_emulator, interval) -> None:
    """A second job right after the first one waits for the windows the first one filled."""
    plan = fast_plan(10)
    emu = alltick_emulator(tokens=tokens(plan), process=True)
    codes = codes_by_class(emu)["fx"][:10]
    async with client(emu, plan) as c:
        for _ in range(3):
            result = await c.klines(codes, interval, count=5)
            assert result.ok
    assert served(emu) == {"kline": {"200": 30}} and rejections(emu) == 0


class LockstepClock:
    """The budget's clock in step with an emulator's frozen rate clock: a wait moves both to
    the slot at once, so the emulator dates each call exactly at the slot the budget chose,
    however busy the machine is (and the test never sleeps out Free's 10 s windows)."""

    def __init__(self, emulator: Any, start: float) -> None:
        self.emulator = emulator
        self.t = start

    def now(self) -> float:
        return self.t

    async def sleep_until(self, t: float) -> None:
        if t > self.t:
            self.t = t
            self.emulator.clock.set(t)
        await asyncio.sleep(0)


async def test_a_free_job_over_three_endpoints_draws_no_rejection(alltick_emulator) -> None:
    """Free read strictly (issue 9 item 3): one call per 10 s across all endpoints, which the
    emulator enforces by default (``lenient_free`` off). Trades, order books and k-lines, twice
    over, leave 10 s apart and are all answered; paced per endpoint, the second and third of
    each round were refused with 429. Each call is answered at the instant it is dated (the
    clocks stand still meanwhile), so its answer bounds its arrival tighter than the guard:
    the next leaves 10 s plus ``ANSWER_SLACK`` (1 ms) after it (see ``Budget.answered``)."""
    start = time.time()
    emu = alltick_emulator(plan="free", frozen_clock=True, clock_start=start, process=True)
    plan = get_plan("free")
    clock = LockstepClock(emu, start)
    budget = Budget(plan, clock=clock, guard=GUARD)
    async with client(emu, plan, token=emu.token, budget=budget) as c:
        for _ in range(2):
            trades = await c.trades(["BTCUSDT", "USDJPY"])
            books = await c.depth(["BTCUSDT", "GOLD"])
            bars = await c.klines(["BTCUSDT"], "1d", count=10)
            assert trades.ok and books.ok and bars.ok
            assert len(trades.data) == 2 and set(books.data["code"]) == {"BTCUSDT", "GOLD"}
            assert len(bars.data) == 10
    every = {"200": 2}
    assert served(emu, emu.token) == {"trade-tick": every, "depth-tick": every, "kline": every}
    assert clock.now() - start == pytest.approx(5 * (10 + ANSWER_SLACK), abs=1e-6)


class HearingBudget(Budget):
    """A budget that keeps the answers it was told of."""

    def __init__(self, plan: Any) -> None:
        super().__init__(plan, guard=GUARD)
        self.heard: list[tuple[str, float, float]] = []

    def answered(self, endpoint: str, slot: float, at: float) -> None:
        self.heard.append((endpoint, slot, at))
        super().answered(endpoint, slot, at)


async def test_the_runner_tells_the_budget_when_each_call_was_answered(alltick_emulator) -> None:
    """Every call answered is told to the budget once, at the time its ledger holds for it
    (where it left, moved there if it left late), no sooner than it left."""
    plan = fast_plan(20)
    emu = alltick_emulator(tokens=tokens(plan), process=True)
    codes = codes_by_class(emu)["fx"][:6]
    budget = HearingBudget(plan)
    async with client(emu, plan, budget=budget) as c:
        result = await c.klines(codes, "1h", count=1200)  # three pages a code
    assert result.ok and served(emu) == {"kline": {"200": 18}}
    recorded = budget.ledger.read(lambda state: state.calls[PER_MINUTE_KEY])
    assert sorted(to_ticks(slot) for _, slot, _ in budget.heard) == recorded
    assert all(endpoint == "kline" and at >= slot for endpoint, slot, at in budget.heard)
