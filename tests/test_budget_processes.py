"""Four real processes on one token share one disk ledger and, together, keep every window.

This is the one budget test on real time. It asserts only what must hold however loaded the
machine is: the slots all processes took, merged, fit every window (guard included), no slot
was entered early, and the token is in no file. It never asserts on speed.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from pathlib import Path
from typing import Any

from alltick_frames.budget import Budget, token_fingerprint
from alltick_frames.core.plans import plan_from_dict

TOKEN = "proc-SECRET-token-5f0e2a9c7d41b8e3"
PROCESSES = 4
CALLS_EACH = 25
#: A fast plan: 50 calls/s overall, 10 per 0.2 s on each endpoint, so 100 calls take ~1 s
#: and several windows bind at once.
FAST = {
    "name": "fast-test",
    "base": "professional",
    "endpoint_rates": {"kline": [10, 0.2], "trade-tick": [10, 0.2]},
    "all_endpoints": [50, 1.0],
    "per_minute": 6000,
    "per_day": 1_000_000,
}


def _worker(cache_dir: str, index: int, barrier: Any, queue: Any) -> None:
    budget = Budget.for_token(plan_from_dict(FAST), TOKEN, cache_dir=cache_dir)
    endpoints = ["kline", "trade-tick"]

    async def main() -> list[tuple[str, float, float]]:
        made = []
        for i in range(CALLS_EACH):
            endpoint = endpoints[(index + i) % 2]
            slot = await budget.acquire(endpoint)
            made.append((endpoint, slot, time.time()))
        return made

    barrier.wait(timeout=30)
    try:
        queue.put(asyncio.run(main()))
    finally:
        budget.close()


def test_four_processes_share_one_budget(tmp_path: Path) -> None:
    # Imported here, not at the top: each spawned child imports this module for _worker,
    # and should not pay for pytest.
    from test_budget_checks import check_schedule

    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(PROCESSES)
    queue = ctx.Queue()
    procs = [
        ctx.Process(target=_worker, args=(str(tmp_path), i, barrier, queue))
        for i in range(PROCESSES)
    ]
    for p in procs:
        p.start()
    try:
        results = [queue.get(timeout=60) for _ in procs]
    finally:
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
    assert all(p.exitcode == 0 for p in procs)

    made = [call for result in results for call in result]
    assert len(made) == PROCESSES * CALLS_EACH
    plan = plan_from_dict(FAST)
    check_schedule(plan, [(endpoint, slot) for endpoint, slot, _ in made], guard=0.025)
    assert all(entered >= slot for _, slot, entered in made), "a slot was entered early"

    ledger_files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert ledger_files and all(p.is_relative_to(tmp_path / "budget") for p in ledger_files)
    for path in ledger_files:
        assert TOKEN.encode() not in path.read_bytes(), path
    assert all(TOKEN not in str(p) and token_fingerprint(TOKEN) != TOKEN for p in ledger_files)
