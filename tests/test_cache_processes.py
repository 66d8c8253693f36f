"""Several processes on one cache directory: one shared budget, and jobs that survive SIGKILL.

The emulator runs in the test process; each worker is this file run as a script (see
:func:`worker`), with its own :class:`AllTick` on the shared cache directory.
"""

from __future__ import annotations

import asyncio
import json
import math
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from test_cache import NOW, TOKEN, Market, fast_plan, ok_calls, served, start_emulator
from test_cache import client as make_client

from alltick_frames.api.client import AllTick
from alltick_frames.core import plans
from alltick_frames.core.codes import FOREX_PATH
from alltick_frames.core.plans import Plan
from alltick_frames.emulator import EmulatorServer
from alltick_frames.store import BarStore, VacuumReport

HERE = Path(__file__).resolve()


# --------------------------------------------------------------------------------- worker


def worker(spec: dict[str, Any]) -> None:
    """One process's job: wait for ``go``, fetch, write the data and how it went to ``out``."""
    plan = plans.plan_from_dict(spec["plan"])
    Path(spec["ready"]).touch()
    while not Path(spec["go"]).exists():
        time.sleep(0.005)

    async def run() -> dict[str, Any]:
        async with AllTick(
            TOKEN,
            plan=plan,
            base_url=spec["url"],
            cache=spec["cache"],
            clock=lambda: NOW,
            progress=False,
            guard=spec.get("guard"),
        ) as client:
            started = time.time()
            result = await client.klines(spec["codes"], spec["interval"], **spec["request"])
            finished = time.time()
        result.data.to_pickle(spec["out"] + ".pkl")
        return {
            "started": started,
            "finished": finished,
            "calls": dict(result.stats.calls),
            "rejections": {str(k): v for k, v in result.stats.rejections.items()},
            "failures": len(result.failures),
        }

    report = asyncio.run(run())
    Path(spec["out"] + ".json").write_text(json.dumps(report))


def spawn(spec: dict[str, Any]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, str(HERE), json.dumps(spec)],
        cwd=HERE.parent,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def wait_for(condition: Callable[[], bool], timeout: float, what: str, poll: float = 0.01) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(poll)


def forex_codes(emu: EmulatorServer, n: int) -> list[str]:
    return [str(r["code"]) for r in emu.codes() if r["path"] == FOREX_PATH][:n]


def specs(
    emu: EmulatorServer, plan: Plan, tmp_path: Path, jobs: list[list[str]], **request: Any
) -> list[dict[str, Any]]:
    return [
        {
            "plan": plan.to_dict(),
            "url": emu.url,
            "cache": str(tmp_path / "cache"),
            "codes": codes,
            "ready": str(tmp_path / f"ready-{k}"),
            "go": str(tmp_path / "go"),
            "out": str(tmp_path / f"out-{k}"),
            **request,
        }
        for k, codes in enumerate(jobs)
    ]


# --------------------------------------------------------------- four processes, one token

#: 16 calls/s for the token: four processes pacing alone would send up to 64/s.
SHARED = fast_plan(16)


@pytest.fixture
def shared_emu(alltick_emulator: Callable[..., EmulatorServer]) -> EmulatorServer:
    return start_emulator(alltick_emulator, SHARED, process=True)


def test_four_processes_on_one_token_stay_inside_the_plan(
    shared_emu: EmulatorServer, tmp_path: Path
) -> None:
    emu = shared_emu
    codes = forex_codes(emu, 24)
    jobs = [codes[k::4] for k in range(4)]  # different codes per process
    count, pages = 1000, 2  # two /kline pages per code
    options = {"interval": "1h", "request": {"count": count}}
    procs = [spawn(s) for s in specs(emu, SHARED, tmp_path, jobs, **options)]
    try:
        wait_for(lambda: all((tmp_path / f"ready-{k}").exists() for k in range(4)), 30, "workers")
        (tmp_path / "go").touch()
        for p in procs:
            _, err = p.communicate(timeout=60)
            assert p.returncode == 0, err.decode()
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()

    reports = [json.loads((tmp_path / f"out-{k}.json").read_text()) for k in range(4)]
    # Zero 429/605 at the server, every call answered once: the shared budget kept the pace.
    assert served(emu) == {"kline": {"200": len(codes) * pages}}
    assert all(r["rejections"] == {} and r["failures"] == 0 for r in reports)
    assert [r["calls"] for r in reports] == [{"kline": len(job) * pages} for job in jobs]
    # The processes really ran at the same time (else pacing alone would prove nothing).
    assert max(r["started"] for r in reports) < min(r["finished"] for r in reports)

    # All data arrived: every code's 1000 bars, and the shared cache answers for all of them.
    frames = [pd.read_pickle(tmp_path / f"out-{k}.pkl") for k in range(4)]
    for frame, job in zip(frames, jobs, strict=True):
        assert frame.groupby("code", observed=True).size().to_dict() == dict.fromkeys(job, count)
    emu.reset()
    market = Market(emu)
    everything = asyncio.run(_fetch(emu, market, tmp_path / "cache", SHARED, jobs, count))
    assert served(emu) == {}
    for frame, job in zip(frames, jobs, strict=True):
        mine = everything[everything["code"].isin(job)].reset_index(drop=True)
        pd.testing.assert_frame_equal(mine, frame)


async def _fetch(
    emu: EmulatorServer,
    market: Market,
    cache: Path,
    plan: Plan,
    jobs: list[list[str]],
    count: int,
) -> pd.DataFrame:
    async with make_client(emu, market, cache, plan) as c:
        result = await c.klines([code for job in jobs for code in job], "1h", count=count)
    return result.data


# ------------------------------------------------------------------- SIGKILL, then rerun

#: Slow enough that the job is still running when it is killed.
SLOW = fast_plan(8)
KILL_CODES = ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
KILL_BARS = 4000  # eight /kline pages per code: 24 calls in all
KILL_REQUESTS = [
    pytest.param({"count": KILL_BARS}, id="count"),
    pytest.param({"start": int(NOW) - (KILL_BARS - 1) * 60}, id="range"),  # crypto: 24/7
]


def _stored_bars(cache: Path) -> int:
    with BarStore(cache) as store:
        table = store.describe()
    return int(table["bars"].sum())


def _missing_pages(store: BarStore, code: str, request: dict[str, Any]) -> int:
    """The /kline pages ``code`` still needs, from what the store holds of it."""
    per_call = SLOW.kline_bars
    if "count" in request:
        held = len(store.newest(code, "1m", request["count"], forming=True).bars)
        return math.ceil((request["count"] - held) / per_call)
    cov = store.coverage(code, "1m")
    assert len(cov.segments) <= 1, cov  # pages of one chain join up
    lowest = [*(lo for lo, _ in cov.segments), cov.forming_ts or int(NOW) + 60]
    return math.ceil(max(0, (min(lowest) - request["start"]) // 60) / per_call)


@pytest.mark.parametrize("request_", KILL_REQUESTS)
async def test_a_job_killed_mid_way_resumes_with_only_the_missing_pages(
    alltick_emulator: Callable[..., EmulatorServer], tmp_path: Path, request_: dict[str, Any]
) -> None:
    emu = start_emulator(alltick_emulator, SLOW, process=True)
    cache = tmp_path / "cache"
    total_pages = len(KILL_CODES) * math.ceil(KILL_BARS / SLOW.kline_bars)
    (spec,) = specs(emu, SLOW, tmp_path, [KILL_CODES], interval="1m", request=request_)
    (tmp_path / "go").touch()
    proc = spawn(spec)
    try:
        await asyncio.to_thread(
            wait_for, lambda: _stored_bars(cache) >= 5 * SLOW.kline_bars, 30, "stored pages", 0.05
        )
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    assert not (tmp_path / "out-0.json").exists()

    # The store is consistent: nothing to remove or repair.
    with BarStore(cache) as store:
        assert store.vacuum() == VacuumReport(orphan_chunks=0, repaired_series=0)

    emu.reset()
    market = Market(emu)
    async with make_client(emu, market, cache, SLOW) as c:
        assert c.store is not None
        # What is still missing, from the store itself.
        missing = sum(_missing_pages(c.store, code, request_) for code in KILL_CODES)
        assert 0 < missing < total_pages - 4  # killed after 5+ pages, before the end
        estimate = c.estimate("klines", KILL_CODES, "1m", **request_)
        assert estimate.calls == {"kline": missing, "batch-kline": 0}
        result = await c.klines(KILL_CODES, "1m", **request_)
    assert ok_calls(emu, "kline") == missing
    assert dict(result.stats.calls) == {"kline": missing}
    assert result.failures.empty

    # A cold fetch of the same request, from a fast emulator with the same market.
    fast = start_emulator(alltick_emulator)
    async with make_client(fast, Market(fast), False) as plain:
        reference = await plain.klines(KILL_CODES, "1m", **request_)
    assert len(reference.data) == len(KILL_CODES) * KILL_BARS
    pd.testing.assert_frame_equal(result.data, reference.data)


if __name__ == "__main__":
    worker(json.loads(sys.argv[1]))
