"""Four hosts, one token, one budget in Redis: the wall time beside the plan's minimum.

Starts the emulator in its own process and a throwaway ``redis-server``, then four processes
standing in for four hosts: each with its own fresh cache directory and a clock skewed by
-300, -100, +100 and +300 ms, each fetching a quarter of the job through
:class:`~alltick_frames.AllTick` with ``budget=`` the Redis URL. Prints the wall time (from the
first host starting its job to the last one holding its frame), the plan's theoretical minimum
for all the calls made, their ratio (the issue's target: <= 1.10), the answers of 429/605 the
emulator gave (target 0), and the ledger's transaction conflicts.

The job is the throughput benchmark's: the 82 catalogue codes that page back, ``count`` hourly
bars each, on a plan of 100 calls/s (902 calls, 9.0 s at least). ``--alone`` runs the same
four hosts on ledgers of their own instead, to show what sharing prevents. ::

    python benchmarks/redis_hosts.py              # ~15 s
    python benchmarks/redis_hosts.py --quick      # 246 calls, ~6 s
    python benchmarks/redis_hosts.py --alone
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # redis-server

from _plans import BENCH_100

from alltick_frames import AllTick
from alltick_frames.budget import Budget, theoretical_minimum
from alltick_frames.budget.shared import budget_from_url
from alltick_frames.core.plans import Plan
from alltick_frames.emulator import EmulatorConfig, EmulatorProcess

TOKEN = "bench-hosts"
PLAN: Plan = BENCH_100
SKEWS = (-0.3, -0.1, +0.1, +0.3)
MARKET_NOW = "2024-05-15T14:00:00Z"


class SkewedClock:
    """This host's clock, ``skew`` seconds off true time."""

    def __init__(self, skew: float) -> None:
        self.skew = skew

    def now(self) -> float:
        return time.time() + self.skew

    async def sleep_until(self, t: float) -> None:
        while (delay := t - self.now()) > 0:
            await asyncio.sleep(delay)


def _host(emu_url: str, redis_url: str | None, skew: float, codes: list[str], count: int,
          start: Any, queue: Any) -> None:  # fmt: skip
    clock = SkewedClock(skew)

    async def job() -> tuple[float, float, int, dict[str, int], int]:
        with tempfile.TemporaryDirectory() as cache:
            if redis_url is None:
                budget: Budget = Budget.for_token(PLAN, TOKEN, cache, clock=clock)
            else:
                budget = budget_from_url(redis_url, PLAN, TOKEN, local_clock=clock)
            async with AllTick(
                TOKEN, PLAN, emu_url, cache=cache, budget=budget, progress=False
            ) as client:
                start.wait(timeout=120)
                started = time.time()
                result = await client.klines(codes, "1h", count=count)
                ended = time.time()
            conflicts = getattr(budget.ledger, "conflicts", 0)
            budget.close()
        return started, ended, len(result.data), dict(result.stats.calls), conflicts

    queue.put(asyncio.run(job()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1,200 bars a code (246 calls)")
    parser.add_argument("--alone", action="store_true", help="no Redis: a ledger per host")
    args = parser.parse_args()
    count = 1_200 if args.quick else 5_500

    from redis_server import RedisServer

    config = EmulatorConfig(tokens={TOKEN: PLAN}, plan=PLAN, now=MARKET_NOW)
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(4)
    queue = ctx.Queue()
    with EmulatorProcess(config) as emu, RedisServer() as redis_server:
        codes = [str(row["code"]) for row in emu.codes() if row["pageable"]]
        url = None if args.alone else redis_server.url
        hosts = [
            ctx.Process(target=_host, args=(emu.url, url, skew, codes[i::4], count, start, queue))
            for i, skew in enumerate(SKEWS)
        ]
        for host in hosts:
            host.start()
        results = [queue.get(timeout=600) for _ in hosts]
        for host in hosts:
            host.join(timeout=30)
        answers = emu.stats().get(TOKEN, {})

    calls: dict[str, int] = {}
    for *_, made, _ in results:
        for endpoint, n in made.items():
            calls[endpoint] = calls.get(endpoint, 0) + n
    wall = max(r[1] for r in results) - min(r[0] for r in results)
    minimum = theoretical_minimum(PLAN, calls)
    refused = sum(n for ep in answers.values() for ret, n in ep.items() if ret in ("429", "605"))
    mode = "on ledgers of their own" if args.alone else "through Redis"
    print(f"4 hosts {mode}, clocks skewed {', '.join(f'{s:+.1f}' for s in SKEWS)} s")
    print(f"{sum(calls.values())} calls, {sum(r[2] for r in results):,} bars")
    print(f"wall {wall:.2f} s; the plan's minimum {minimum:.2f} s; ratio {wall / minimum:.3f}")
    print(f"answers of 429/605: {refused}")
    if not args.alone:
        print(f"ledger transactions run again after a conflict: {sum(r[4] for r in results)}")


if __name__ == "__main__":
    main()
