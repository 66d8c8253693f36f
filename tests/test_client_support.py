"""Helpers for the client tests (``test_client_*.py``); this module holds no tests.

Every client test runs the real :class:`~alltick_frames.AllTick` against the emulator over real
HTTP and counts calls with the emulator's own statistics (``emu.stats()``), never with the
client's bookkeeping alone. Reference data comes from the emulator through plain aiohttp, with
a separate token whose plan serves a whole series in one call, so it shares no code (and no
paging logic) with the client.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterable
from typing import Any

import aiohttp
import pandas as pd

from alltick_frames import AllTick, RetryPolicy
from alltick_frames.budget import DEFAULT_GUARD, Budget
from alltick_frames.core.codes import classify
from alltick_frames.core.plans import ENDPOINTS, Plan, get_plan
from alltick_frames.emulator import EmulatorServer
from alltick_frames.emulator.clock import EmulatorClock

#: The emulator fixture's market clock: Wednesday 2024-05-15 14:00 UTC (US open, HK/CN closed,
#: FX and crypto trading).
NOW = pd.Timestamp("2024-05-15T14:00:00Z")
#: The token the client uses: long and distinctive, so finding it anywhere is no coincidence.
TOKEN = "tk-8Qv3Lz0WmP6sXa1Ry7Nc4Ud9Hf2Gb5Je-client-secret"
#: The token reference fetches use: its own plan, its own quota, its own line in the stats.
REF_TOKEN = "reference"
#: Retries fast enough for tests, and patient enough to outlast a 20% fault rate.
FAST_RETRY = RetryPolicy(attempts=10, base=0.01, cap=0.05)
#: The budget's guard in these tests: its default. (Before the budget spaced a window's calls
#: evenly, the in-process emulator counted a burst up to ~80 ms late and these tests needed
#: 0.1 s; keeping the default shows they no longer do.)
GUARD = DEFAULT_GUARD


def fast_plan(rate: int = 100, **overrides: Any) -> Plan:
    """A Professional-sized plan at ``rate`` calls/s on every endpoint and in total."""
    fields: dict[str, Any] = {
        "name": f"fast-{rate}",
        "endpoint_rates": {e: (rate, 1.0) for e in ENDPOINTS},
        "all_endpoints": (rate, 1.0),
        "per_minute": 60 * rate,
        "per_day": 10**7,
    }
    return get_plan("professional").with_overrides(**{**fields, **overrides})


#: What reference fetches run on: one call serves a whole series, and nothing is paced.
REF_PLAN = fast_plan(10_000, kline_bars=10_000, history_days=None, name="reference")


def tokens(plan: Plan, basket: Iterable[str] | None = None) -> dict[str, Any]:
    """Emulator tokens: :data:`TOKEN` on ``plan`` (narrowed to ``basket``), and the reference."""
    spec: dict[str, Any] = {"plan": plan}
    if basket is not None:
        spec["basket"] = list(basket)
    return {TOKEN: spec, REF_TOKEN: REF_PLAN}


def client(emu: EmulatorServer, plan: Plan, **options: Any) -> AllTick:
    """A client on ``emu`` with no cache and a budget of its own (so tests never share one)."""
    options.setdefault("cache", False)
    options.setdefault("retry", FAST_RETRY)
    options.setdefault("progress", False)
    options.setdefault("clock", NOW.timestamp)
    if "budget" not in options:
        options["budget"] = Budget(plan, guard=options.pop("guard", GUARD))
    return AllTick(options.pop("token", TOKEN), plan, emu.url, **options)


def served(emu: EmulatorServer, token: str = TOKEN) -> dict[str, dict[str, int]]:
    """The emulator's answers to ``token``: endpoint -> ret (or fault) -> count."""
    return emu.stats().get(token, {})


def rejections(emu: EmulatorServer, token: str = TOKEN) -> int:
    """429 and 605 answers ``token`` got, on every endpoint."""
    return sum(n for answers in served(emu, token).values() for k, n in answers.items()
               if k in ("429", "605"))  # fmt: skip


def codes_by_class(emu: EmulatorServer) -> dict[str, list[str]]:
    """The emulator's catalogue grouped as ``US``, ``HK``, ``SH``, ``SZ`` (stocks), ``index``,
    ``fx``, ``crypto``, ``metal``, ``energy``, ``cfd``, in catalogue order."""
    out: dict[str, list[str]] = {}
    for row in emu.codes():
        key = row["market"] if row["asset_class"] == "stock" else row["asset_class"]
        out.setdefault(str(key), []).append(str(row["code"]))
    return out


async def reference(
    emu: EmulatorServer, codes: Iterable[str], kline_type: int, count: int, end: int = 0
) -> pd.DataFrame:
    """What the emulator serves for each code, fetched with plain aiohttp in one call per code
    (the reference token's plan allows any number of bars) and decoded naively."""
    frames = []
    async with aiohttp.ClientSession() as http:
        for code in codes:
            query = {
                "trace": "reference",
                "data": {
                    "code": code,
                    "kline_type": kline_type,
                    "kline_timestamp_end": end,
                    "query_kline_num": count,
                    "adjust_type": 0,
                },
            }
            url = f"{emu.url}{classify(code).path}/kline"
            params = {"token": REF_TOKEN, "query": json.dumps(query)}
            async with http.get(url, params=params) as resp:
                body = json.loads(await resp.read())
            assert body["ret"] == 200, (code, body)
            bars = pd.DataFrame(body["data"]["kline_list"])
            bars.insert(0, "code", code)
            frames.append(bars)
    raw = pd.concat(frames, ignore_index=True)
    return pd.DataFrame(
        {
            "code": raw["code"],
            "timestamp": pd.to_datetime(raw["timestamp"].astype("int64"), unit="s", utc=True),
            "open": raw["open_price"].astype(float),
            "high": raw["high_price"].astype(float),
            "low": raw["low_price"].astype(float),
            "close": raw["close_price"].astype(float),
            "volume": raw["volume"].astype(float),
            "turnover": raw["turnover"].astype(float),
        }
    )


def assert_same_bars(data: pd.DataFrame, ref: pd.DataFrame) -> None:
    """``data`` (the client's frame) holds exactly the bars of ``ref``, value for value."""
    ours = data[data["code"].isin(set(ref["code"]))]
    cols = list(ref.columns)
    left = ours[cols].astype({"code": object}).sort_values(["code", "timestamp"])
    right = ref.sort_values(["code", "timestamp"])
    pd.testing.assert_frame_equal(
        left.reset_index(drop=True), right.reset_index(drop=True), check_dtype=False
    )


class WarpClock:
    """A budget clock that skips long waits, moving the emulator's rate clock along.

    Real time plus an offset. A wait longer than ``jump`` seconds (the minute a 605 blocks, a
    day's reset) is skipped by advancing this clock *and* the emulator's rate clock by the
    same amount, so both sides still agree on every window; shorter waits (the pacing itself)
    are slept for real. Used where a test would otherwise sit out a 60 s block or a day.
    """

    def __init__(self, emulator_clock: EmulatorClock, jump: float = 2.0) -> None:
        self.emulator_clock = emulator_clock
        self.jump = jump
        self.offset = 0.0
        self.jumped = 0.0

    def now(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        """Move both clocks ``seconds`` ahead."""
        self.offset += seconds
        self.jumped += seconds
        self.emulator_clock.advance(seconds)

    async def sleep_until(self, t: float) -> None:
        while (delay := t - self.now()) > 0:
            if delay > self.jump:
                self.advance(delay)
            else:
                await asyncio.sleep(delay)


class SkewedClock:
    """This host's clock, ``skew`` seconds off true time (as hosts without NTP are)."""

    def __init__(self, skew: float) -> None:
        self.skew = skew

    def now(self) -> float:
        return time.time() + self.skew

    async def sleep_until(self, t: float) -> None:
        while (delay := t - self.now()) > 0:
            await asyncio.sleep(delay)


async def run_kline_job(url: str, req: Any, store: Any, plan: Plan) -> tuple[Any, Any, list]:
    """Run a k-line job for ``req`` through ``store`` against the emulator at ``url`` (16 in
    flight, fast retries) until its writes settle: ``(job, runner, failures)``."""
    from alltick_frames.api.result import FetchStats
    from alltick_frames.core import planner
    from alltick_frames.run import kline_job
    from alltick_frames.run.runner import Runner
    from alltick_frames.run.transport import Secret, Transport

    transport = Transport(url, Secret(TOKEN))
    job = kline_job.KlineJob(req, plan, store, NOW.timestamp())
    runner = Runner(transport, Budget(plan), FetchStats(), retry=FAST_RETRY, concurrency=16)
    try:
        pages = [planner.first_page(req, c, plan) for c in req.codes]
        failures = await runner.run(job, job.calls(pages))
        await job.settle()
    finally:
        await transport.close()
    return job, runner, failures
