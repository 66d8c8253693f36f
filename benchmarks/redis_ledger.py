"""Contention on the Redis ledger: 4 processes sharing one token at 100 calls/s.

Starts a throwaway ``redis-server`` (Debian's package), then ``--processes`` processes that
each run ``--tasks`` asyncio tasks taking budget slots for ``/kline`` on a plan of 100 calls/s
(100 a second per endpoint and in all), ``--calls`` slots in all (601: six full windows and
one call, so the plan's minimum is a whole 6 s), and prints:

* how many ledger updates ran, and how many ran again because another process wrote first
  (the optimistic transaction's conflicts);
* the mean time of one update (two round trips on loopback);
* the span of the slots granted against the plan's theoretical minimum for them;
* whether the slots of all processes, merged, fit every window (they must).

No HTTP is made: this measures the ledger alone. ::

    python benchmarks/redis_ledger.py                 # 4 processes, 601 calls: ~6 s
    python benchmarks/redis_ledger.py --processes 8 --calls 1000
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # redis-server

from alltick_frames.budget import theoretical_minimum
from alltick_frames.budget.shared import budget_from_url
from alltick_frames.core.plans import ENDPOINTS, KLINE, Plan, get_plan

TOKEN = "bench-redis-ledger"
PLAN: Plan = get_plan("professional").with_overrides(
    name="bench-100",
    endpoint_rates={e: (100, 1.0) for e in ENDPOINTS},
    all_endpoints=(100, 1.0),
    per_minute=6_000,
)


def _worker(url: str, calls: int, tasks: int, barrier: Any, queue: Any) -> None:
    budget = budget_from_url(url, PLAN, TOKEN)
    ledger = budget.ledger
    left = [calls]

    async def take() -> list[float]:
        slots = []
        while left[0] > 0:
            left[0] -= 1
            slots.append(await budget.acquire(KLINE))
        return slots

    async def main() -> list[float]:
        parts = await asyncio.gather(*(take() for _ in range(tasks)))
        return [s for part in parts for s in part]

    barrier.wait(timeout=60)
    started = time.perf_counter()
    slots = asyncio.run(main())
    elapsed = time.perf_counter() - started
    queue.put((slots, ledger.updates, ledger.conflicts, elapsed))
    budget.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--calls", type=int, default=601, help="slots taken in all")
    parser.add_argument("--tasks", type=int, default=8, help="asyncio tasks per process")
    args = parser.parse_args()

    from redis_server import RedisServer
    from test_budget_checks import check_schedule

    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(args.processes)
    queue = ctx.Queue()
    each, extra = divmod(args.calls, args.processes)
    with RedisServer() as server:
        procs = [
            ctx.Process(
                target=_worker,
                args=(server.url, each + (i < extra), args.tasks, barrier, queue),
            )
            for i in range(args.processes)
        ]
        for p in procs:
            p.start()
        results = [queue.get(timeout=300) for _ in procs]
        for p in procs:
            p.join(timeout=30)
        # The ledger's own timing, alone on the server: empty updates in a loop.
        probe = budget_from_url(server.url, PLAN, TOKEN + "-probe")
        started = time.perf_counter()
        for _ in range(500):
            probe.ledger.update(lambda state: None)
        per_update = (time.perf_counter() - started) / 500
        probe.close()

    slots = sorted(s for result in results for s in result[0])
    updates = sum(r[1] for r in results)
    conflicts = sum(r[2] for r in results)
    check_schedule(PLAN, [(KLINE, s) for s in slots], guard=0.025)
    minimum = theoretical_minimum(PLAN, {KLINE: len(slots)})
    span = slots[-1] - slots[0]
    print(f"{args.processes} processes x {args.tasks} tasks, {len(slots)} slots at 100/s")
    print(f"ledger updates: {updates}, run again after a conflict: {conflicts} "
          f"({conflicts / max(1, updates):.2%})")  # fmt: skip
    print(f"one update (loopback): {per_update * 1000:.2f} ms")
    # With no more calls than one window holds, the minimum is 0: there is no ratio.
    ratio = f"ratio {span / minimum:.3f}" if minimum else "no ratio (one window holds them all)"
    print(f"slots span {span:.2f} s; the plan's minimum {minimum:.2f} s; {ratio}")
    print("every window holds for the merged slots: yes")


if __name__ == "__main__":
    main()
