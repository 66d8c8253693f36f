"""Throughput: our wall time beside the plan's minimum, and beside aiohttp + aiolimiter.

Starts the emulator in a process of its own (:class:`~alltick_frames.emulator.EmulatorProcess`:
it dates each request when it really arrives, as AllTick does) on a fast custom plan (every
endpoint 100 calls/s, 100/s in all, 6,000 a minute), runs one job through
:class:`~alltick_frames.AllTick` (no cache; ``--cache`` for a fresh one, which the budget's
ledger shares, as with a client's defaults), then the same job through a plain aiohttp +
aiolimiter client (``_plain_client.py``), and prints, side by side:

* each client's wall time, from the call to holding the bars;
* the plan's theoretical minimum for the job's calls (the calls answered, so a retried call
  costs its client time without raising the bar: ``theoretical_minimum``, first call's start
  to the last's, every window used to the full, a call taking no time);
* each wall/minimum ratio and each client's 429/605 answers (counted by the emulator);

and where our time went: the pacing span (first to last call leaving), the guard the budget
learned (its final value and the latency spread it measured) and the tail after the last call.

The field, not the lab:

* ``--jitter MS`` makes the emulator hold every request a uniform 0 to MS milliseconds before
  it admits and counts it (its ``arrival_jitter`` fault), as a network delays requests on
  their way in: its windows see arrivals, not departures, sometimes out of order;
* ``--busy N`` keeps N CPU-bound processes spinning for the whole run (2 fill a 2-core
  machine), so both clients and the emulator fight for the cores;
* ``--fault-rate-limit P`` answers a share P of the calls 429 or 605 at random, whatever the
  pace (as another client on the token would): what a rejection costs;
* ``--smooth F`` keeps that share of the budget's even spacing (default 1: a rate window's
  calls leave per/calls apart; 0.25: a quarter of that; 0: none), to see what the spacing
  costs when answers free several slots of a window at once;
* ``--refusals-count`` takes the other reading of whether a refused call uses up the plan
  (AllTick does not say; the emulator's default is that it does not): the emulator then
  counts every 429/605 in the windows that refused it, so a client that keeps sending into a
  full window keeps it full.

Targets: quiet, our ratio <= 1.04 with 0 rejections; with ``--jitter 50 --busy 2``, <= 1.10
with rejections <= 0.5 % of calls, and a lower ratio than aiolimiter's.

The job: every code of the emulator's catalogue that pages back in time (82: FX, crypto and
metals), ``count`` hourly bars each (5,500), paged back 500 bars a call: 11 pages a code, 902
calls, whose theoretical minimum is 9.0 s. ``--quick`` asks for 1,200 bars (3 pages, 246
calls, 2 s).

    python benchmarks/throughput.py                        # ~25 s
    python benchmarks/throughput.py --jitter 50 --busy 2   # ~30 s
    python benchmarks/throughput.py --repeat 3 --no-plain  # ours only, three times
    python benchmarks/throughput.py --guard 0.05           # a fixed guard instead of learned

``--concurrency`` defaults to the client's own choice for the plan (51 here; aiolimiter's
client gets the same). The load average is printed first: record it beside the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

from _plans import BENCH_100

from alltick_frames import AllTick
from alltick_frames.api.client import default_concurrency
from alltick_frames.budget import Budget, theoretical_minimum
from alltick_frames.core.plans import KLINE, Plan
from alltick_frames.emulator import EmulatorConfig
from alltick_frames.emulator.process import EmulatorProcess

TOKEN = "bench"
PLAN: Plan = BENCH_100
#: The emulator's market clock: a Wednesday afternoon (UTC), every market's history in reach.
MARKET_NOW = "2024-05-15T14:00:00Z"
MARKET_EPOCH = datetime.fromisoformat(MARKET_NOW).timestamp()


class RecordingBudget(Budget):
    """The client's budget, also keeping the slots it granted (and not given back)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.slots: list[float] = []

    async def acquire(self, endpoint: str) -> float:
        slot = await super().acquire(endpoint)
        self.slots.append(slot)
        return slot

    def release(self, endpoint: str, slot: float) -> None:
        super().release(endpoint, slot)
        self.slots.remove(slot)


@dataclass
class Run:
    wall: float
    minimum: float
    span: float
    tail: float
    calls: dict[str, int]
    rows: int
    guard: float
    spread: float | None
    rejections: dict[str, int] = field(default_factory=dict)

    @property
    def ratio(self) -> float:
        return self.wall / self.minimum if self.minimum else float("nan")


def rejected(emu: EmulatorProcess) -> dict[str, int]:
    """The 429/605 answers the emulator gave, by ret."""
    answers = emu.stats().get(TOKEN, {})
    return {ret: n for ep in answers.values() for ret, n in ep.items() if ret in ("429", "605")}


def answered(emu: EmulatorProcess) -> int:
    """The calls the emulator answered ``ret`` 200."""
    return sum(ep.get("200", 0) for ep in emu.stats().get(TOKEN, {}).values())


async def run_job(
    emu: EmulatorProcess,
    codes: list[str],
    count: int,
    concurrency: int | None,
    guard: float | None,
    cache: Path | None,
    smooth: float = 1.0,
) -> Run:
    # With a cache, the budget keeps its ledger there too, as a client's own budget would.
    budget = RecordingBudget.for_token(PLAN, TOKEN, cache, guard=guard, smooth=smooth)
    async with AllTick(
        TOKEN,
        PLAN,
        emu.url,
        cache=cache or False,
        budget=budget,
        concurrency=concurrency,
        progress=False,
        clock=lambda: MARKET_EPOCH,  # the emulator's market clock, so nothing looks stale
    ) as client:
        started = time.time()
        result = await client.klines(codes, "1h", count=count)
        ended = time.time()
    assert result.ok, result.failures
    assert len(result.data) == count * len(codes)
    return Run(
        wall=ended - started,
        minimum=theoretical_minimum(PLAN, {KLINE: answered(emu)}),
        span=max(budget.slots) - min(budget.slots),
        tail=ended - max(budget.slots),
        calls=dict(result.stats.calls),
        rows=len(result.data),
        guard=result.stats.guard,
        spread=result.stats.latency_spread,
        rejections=rejected(emu),
    )


def run_plain(emu: EmulatorProcess, codes: list[str], count: int, concurrency: int) -> Run:
    from _plain_client import fetch

    rate = PLAN.rate_for(KLINE)
    plain = asyncio.run(fetch(emu.url, TOKEN, codes, count, rate.calls, rate.per, concurrency))
    assert plain.bars == count * len(codes), plain.bars
    return Run(
        wall=plain.wall,
        minimum=theoretical_minimum(PLAN, {KLINE: answered(emu)}),
        span=0.0,
        tail=0.0,
        calls={KLINE: plain.answered + sum(plain.rejections.values())},
        rows=plain.bars,
        guard=0.0,
        spread=None,
        rejections=rejected(emu),
    )


def _spin() -> None:
    while True:
        pass


def busy(n: int) -> list[multiprocessing.Process]:
    """``n`` processes that keep a core busy each until terminated."""
    workers = [multiprocessing.Process(target=_spin, daemon=True) for _ in range(n)]
    for w in workers:
        w.start()
    return workers


def report_line(name: str, run: Run) -> None:
    n = sum(run.rejections.values())
    sent = sum(run.calls.values())
    share = 100 * n / sent if sent else 0.0
    print(
        f"{name:<22}{run.wall:>8.3f} s{run.minimum:>9.3f} s{run.ratio:>8.3f}"
        f"{n:>8d} ({share:.2f}%){sent:>8d}"
    )


def summary(name: str, runs: list[Run]) -> None:
    """One line per client: the range of its ratios and of its rejections over the runs."""
    if not runs:
        return
    ratios = [r.ratio for r in runs]
    refused = [sum(r.rejections.values()) for r in runs]
    shares = [100 * n / max(1, sum(r.calls.values())) for n, r in zip(refused, runs, strict=True)]
    print(
        f"{name:<22}ratio {min(ratios):.3f}-{max(ratios):.3f},"
        f" 429/605 {min(refused)}-{max(refused)}"
        f" ({min(shares):.2f}-{max(shares):.2f}% of calls) over {len(runs)} run(s)"
    )


def report(ours: list[Run], plain: list[Run], args: argparse.Namespace, codes: int) -> None:
    count = args.count or (1_200 if args.quick else 5_500)
    pages = ours[0].calls.get(KLINE, 0)
    concurrency = args.concurrency or default_concurrency(PLAN)
    print(f"plan            {PLAN.name}: 100 calls/s per endpoint and in all, 6,000/min")
    print(f"job             {codes} codes x {count} hourly bars = {pages} /kline calls; ", end="")
    print(f"concurrency {concurrency}, ", end="")
    guard = "learned" if args.guard is None else f"fixed {args.guard * 1000:.0f} ms"
    print(f"guard {guard}, {'with a cache' if args.cache else 'no cache'}", end="")
    print(f", spacing x{args.smooth:g}" if args.smooth != 1 else "")
    print(
        f"field           arrival jitter 0-{args.jitter:g} ms, {args.busy} busy process(es)", end=""
    )
    print(f", {args.fault_rate_limit:.0%} random 429/605" if args.fault_rate_limit else "", end="")
    print(", refused calls counted" if args.refusals_count else "")
    print()
    print(f"{'client':<22}{'wall':>10}{'minimum':>11}{'ratio':>8}{'429/605':>17}{'sent':>8}")
    for i, run in enumerate(ours):
        report_line(f"alltick-frames #{i + 1}", run)
    for i, run in enumerate(plain):
        report_line(f"aiohttp+aiolimiter #{i + 1}", run)
    if len(ours) > 1 or plain:
        print()
        summary("alltick-frames", ours)
        summary("aiohttp+aiolimiter", plain)
    print()
    print("where our time went: pacing span (first to last call leaving), guard at the end")
    print("(and the latency spread it saw), tail (last answers, decoding, the frame)")
    for i, run in enumerate(ours):
        spread = "n/a" if run.spread is None else f"{run.spread * 1000:.1f} ms"
        print(
            f"  #{i + 1}  span {run.span:6.3f} s  guard {run.guard * 1000:5.1f} ms"
            f" (spread {spread})  tail {run.tail:5.3f} s  {run.rows / run.wall:,.0f} bars/s"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 pages a code (~3 s)")
    parser.add_argument("--count", type=int, help="hourly bars per code (default 5500)")
    parser.add_argument(
        "--concurrency", type=int, help="calls in flight (default: the client's for the plan)"
    )
    parser.add_argument(
        "--guard", type=float, help="fix the budget's guard, seconds (default: learned)"
    )
    parser.add_argument(
        "--cache",
        action="store_true",
        help="with an (empty) cache: every page is stored as it arrives and read back",
    )
    parser.add_argument(
        "--jitter", type=float, default=0.0, metavar="MS",
        help="delay each request 0 to MS ms before the emulator admits and counts it",
    )  # fmt: skip
    parser.add_argument(
        "--busy", type=int, default=0, metavar="N", help="N CPU-bound processes run meanwhile"
    )
    parser.add_argument(
        "--fault-rate-limit", type=float, default=0.0, metavar="P",
        help="answer a share P of the calls 429 or 605 at random (as another client would)",
    )  # fmt: skip
    parser.add_argument(
        "--refusals-count",
        action="store_true",
        help="the emulator counts each 429/605 in the windows that refused it",
    )
    parser.add_argument(
        "--smooth", type=float, default=1.0, metavar="F",
        help="share of the budget's even spacing kept (default 1: per/calls; 0: none)",
    )  # fmt: skip
    parser.add_argument("--repeat", type=int, default=1, help="runs of each client")
    parser.add_argument("--no-plain", action="store_true", help="skip the aiolimiter client")
    args = parser.parse_args(argv)
    count = args.count or (1_200 if args.quick else 5_500)
    concurrency = args.concurrency or default_concurrency(PLAN)

    print(f"load average    {' '.join(f'{x:.2f}' for x in os.getloadavg())} (before the run)")
    faults = {"arrival_jitter": args.jitter / 1000, "rate_limit": args.fault_rate_limit}
    config = EmulatorConfig(
        tokens={TOKEN: PLAN}, now=MARKET_NOW, faults=faults, refusals_count=args.refusals_count
    )
    spinners = busy(args.busy)
    ours: list[Run] = []
    plain: list[Run] = []
    try:
        with EmulatorProcess(config) as emu, tempfile.TemporaryDirectory() as tmp:
            codes = [str(row["code"]) for row in emu.codes() if row["pageable"]]
            for i in range(args.repeat):
                emu.reset()
                cache = Path(tmp) / f"cache{i}" if args.cache else None
                ours.append(
                    asyncio.run(
                        run_job(emu, codes, count, args.concurrency, args.guard, cache, args.smooth)
                    )
                )
                if not args.no_plain:
                    emu.reset()
                    plain.append(run_plain(emu, codes, count, concurrency))
    finally:
        for w in spinners:
            w.terminate()
    report(ours, plain, args, len(codes))
    print(f"load average    {' '.join(f'{x:.2f}' for x in os.getloadavg())} (after)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
