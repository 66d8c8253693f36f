"""Four hosts, one token, one budget in Redis: the wall time beside the plan's minimum.

Starts the emulator in its own process and a throwaway ``redis-server``, then four processes
standing in for four hosts: each with its own fresh cache directory and a clock skewed by
-300, -100, +100 and +300 ms, each fetching a quarter of the job through
:class:`~alltick_frames.AllTick` with ``budget=`` the Redis URL. Each host has imported what
the job uses and connected to Redis before the clock starts: four hosts would compile their
modules each on its own CPU, not four at once on this machine's two cores. Prints, per run:

* the wall time (from the first host starting its job to the last one holding its frame), the
  plan's theoretical minimum for all the calls made, their ratio (the issue's target: <= 1.10)
  and the answers of 429/605 the emulator gave (target 0);
* where the time went: the start (to the first slot), the pacing span (first slot to last),
  the tail (last slot to the last frame), and the slots given back by calls that left late or
  behind a block (each leaves its slot idle);
* the ledger: updates, those run again after a conflict, the mean time of one;
* each host: its clock offset's error (the skew it was given against what it measured), its
  guard at the end, the latency spread it saw and the rejections it handled.

The job is the throughput benchmark's: the 82 catalogue codes that page back, ``count`` hourly
bars each, on a plan of 100 calls/s (902 calls, 9.0 s at least). ``--alone`` runs the same
four hosts on ledgers of their own instead, to show what sharing prevents. ::

    python benchmarks/redis_hosts.py              # ~15 s
    python benchmarks/redis_hosts.py --repeat 4   # four runs, each with a fresh emulator
    python benchmarks/redis_hosts.py --quick      # 246 calls, ~6 s
    python benchmarks/redis_hosts.py --alone

The load average is printed before and after each run: record it beside the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # redis-server

from _plans import BENCH_100

from alltick_frames import AllTick
from alltick_frames.budget import Budget, theoretical_minimum
from alltick_frames.budget.shared import SharedBudget, budget_from_url
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


def recording(budget: Budget) -> Budget:
    """``budget``, also keeping the slots it granted and counting those given back."""
    base = type(budget)

    class Recording(base):  # type: ignore[misc, valid-type]
        def __init__(self) -> None:  # adopts ``budget``'s state rather than building anew
            self.__dict__.update(budget.__dict__)
            if isinstance(self, SharedBudget):
                self.ledger.on_failover = self._fail_over
            self.slots: list[float] = []
            self.given_back = 0

        async def acquire(self, endpoint: str) -> float:
            slot = await base.acquire(self, endpoint)
            self.slots.append(slot)
            return slot

        def release(self, endpoint: str, slot: float) -> None:
            base.release(self, endpoint, slot)
            self.slots.remove(slot)
            self.given_back += 1

    return Recording()


@dataclass
class Host:
    """What one host reports back."""

    skew: float
    started: float
    ended: float
    rows: int
    calls: dict[str, int]
    slots: list[float]
    given_back: int
    offset: float = 0.0
    guard: float = 0.0
    spread: float | None = None
    rejected: int = 0
    updates: int = 0
    conflicts: int = 0
    busy: float = 0.0


def _host(emu_url: str, redis_url: str | None, skew: float, codes: list[str], count: int,
          start: Any, queue: Any) -> None:  # fmt: skip
    # What the job imports on its first call, imported before the clock starts (see above).
    import alltick_frames.frames.completeness
    import alltick_frames.frames.derive
    import alltick_frames.run.answers
    import alltick_frames.run.jobs
    import alltick_frames.store.dataset  # noqa: F401

    clock = SkewedClock(skew)

    async def job() -> Host:
        with tempfile.TemporaryDirectory() as cache:
            if redis_url is None:
                budget: Budget = Budget.for_token(PLAN, TOKEN, cache, clock=clock)
            else:
                budget = budget_from_url(redis_url, PLAN, TOKEN, local_clock=clock)
            budget = recording(budget)
            async with AllTick(
                TOKEN, PLAN, emu_url, cache=cache, budget=budget, progress=False
            ) as client:
                start.wait(timeout=120)
                started = time.time()
                result = await client.klines(codes, "1h", count=count)
                ended = time.time()
            ledger = budget.ledger
            # Slots on Redis's clock (this machine's true time), or on this host's skewed one.
            on_redis = isinstance(budget, SharedBudget)
            slots = [s if on_redis else s - skew for s in budget.slots]  # type: ignore[attr-defined]
            host = Host(
                skew, started, ended, len(result.data), dict(result.stats.calls),
                slots, budget.given_back,  # type: ignore[attr-defined]
                offset=budget.clock.offset if on_redis else -skew,
                guard=budget.guard, spread=result.stats.latency_spread, rejected=budget.rejected,
                updates=getattr(ledger, "updates", 0), conflicts=getattr(ledger, "conflicts", 0),
                busy=getattr(ledger, "busy", 0.0),
            )  # fmt: skip
            budget.close()
        return host

    queue.put(asyncio.run(job()))


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def run_once(count: int, alone: bool) -> float:
    """One run with a fresh emulator and Redis; prints its figures and returns its ratio."""
    from redis_server import RedisServer

    config = EmulatorConfig(tokens={TOKEN: PLAN}, plan=PLAN, now=MARKET_NOW)
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(4)
    queue = ctx.Queue()
    before = load()
    with EmulatorProcess(config) as emu, RedisServer() as redis_server:
        codes = [str(row["code"]) for row in emu.codes() if row["pageable"]]
        url = None if alone else redis_server.url
        hosts = [
            ctx.Process(target=_host, args=(emu.url, url, skew, codes[i::4], count, start, queue))
            for i, skew in enumerate(SKEWS)
        ]
        for host in hosts:
            host.start()
        results: list[Host] = sorted((queue.get(timeout=600) for _ in hosts), key=lambda h: h.skew)
        for host in hosts:
            host.join(timeout=30)
        answers = emu.stats().get(TOKEN, {})

    calls: dict[str, int] = {}
    for r in results:
        for endpoint, n in r.calls.items():
            calls[endpoint] = calls.get(endpoint, 0) + n
    first, last = min(r.started for r in results), max(r.ended for r in results)
    slots = sorted(s for r in results for s in r.slots)
    wall = last - first
    minimum = theoretical_minimum(PLAN, calls)
    refused = sum(n for ep in answers.values() for ret, n in ep.items() if ret in ("429", "605"))
    mode = "on ledgers of their own" if alone else "through Redis"
    print(f"4 hosts {mode}, clocks skewed {', '.join(f'{s:+.1f}' for s in SKEWS)} s")
    print(f"load average {before} (before), {load()} (after)")
    print(f"{sum(calls.values())} calls, {sum(r.rows for r in results):,} bars")
    print(f"wall {wall:.2f} s; the plan's minimum {minimum:.2f} s; ratio {wall / minimum:.3f}")
    print(f"answers of 429/605: {refused}")
    print(
        f"where the time went: start {slots[0] - first:.3f} s, pacing span "
        f"{slots[-1] - slots[0]:.3f} s, tail {last - slots[-1]:.3f} s; "
        f"slots given back {sum(r.given_back for r in results)}"
    )
    if not alone:
        updates = sum(r.updates for r in results)
        conflicts = sum(r.conflicts for r in results)
        busy = sum(r.busy for r in results)
        print(
            f"ledger: {updates} updates, {conflicts} run again after a conflict, "
            f"{1000 * busy / max(1, updates):.2f} ms each on average (conflicts included)"
        )
    for r in results:
        spread = "n/a" if r.spread is None else f"{r.spread * 1000:.1f} ms"
        error = "" if alone else f"offset error {1000 * (r.offset + r.skew):+.2f} ms, "
        print(
            f"  host {r.skew:+.1f} s: {error}"
            f"guard {r.guard * 1000:.1f} ms, latency spread {spread}, "
            f"{r.rejected} rejection(s), {sum(r.calls.values())} calls"
        )
    return wall / minimum


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1,200 bars a code (246 calls)")
    parser.add_argument("--alone", action="store_true", help="no Redis: a ledger per host")
    parser.add_argument("--repeat", type=int, default=1, help="runs (default 1)")
    args = parser.parse_args()
    count = 1_200 if args.quick else 5_500
    ratios = []
    for i in range(args.repeat):
        if args.repeat > 1:
            print(f"--- run {i + 1} of {args.repeat}")
        ratios.append(run_once(count, args.alone))
    if len(ratios) > 1:
        print(f"ratios: {', '.join(f'{r:.3f}' for r in ratios)}")


if __name__ == "__main__":
    main()
