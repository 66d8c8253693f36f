"""Throughput: our wall time beside the plan's theoretical minimum, against the emulator.

Starts the emulator in this process (:class:`~alltick_frames.emulator.EmulatorServer`) on a
fast custom plan (every endpoint 100 calls/s, 100/s in all, 6,000 a minute), runs one job
through :class:`~alltick_frames.AllTick` (no cache; ``--cache`` for a fresh one, which the
budget's ledger shares, as with a client's defaults) and prints, side by side:

* our wall time, from calling ``klines()`` to holding the DataFrame;
* the plan's theoretical minimum for the calls actually made
  (:func:`alltick_frames.budget.theoretical_minimum`: from the first call's start to the
  last's, if every window were used to the full and a call took no time);
* their ratio (target <= 1.05);
* the 429/605 answers the emulator gave (target 0);

and where the time went: the pacing span (first to last call leaving, as the budget
granted them), the budget's guard (the margin it keeps per full window), and the tail after
the last call (the last answers, decoding, building the frame).

The job: every code of the emulator's catalogue that pages back in time (82: FX, crypto and
metals; energy and CFD codes ignore ``kline_timestamp_end``, as AllTick's kline page says), with
``count`` hourly bars each (5,500), paged back 500 bars a call: 11 pages a code, 902 calls,
whose theoretical minimum is 9.0 s. ``--quick`` asks for 1,200 bars (3 pages, 246 calls, 2 s).

    python benchmarks/throughput.py              # ~10 s
    python benchmarks/throughput.py --quick      # ~3 s
    python benchmarks/throughput.py --cache      # ~10 s, every page stored and read back
    python benchmarks/throughput.py --concurrency 4 --guard 0.05

``--concurrency`` defaults to the client's own choice for the plan (32 here), ``--guard`` to
the budget's (25 ms). The ratio pays the guard (25 ms per full 1 s window: 2.5%) and the tail
after the last answer (the last series decoded, then ~550,000 bars put in the caller's order;
the other series were decoded and sorted as their chains ended, while calls were paced). The
budget spaces a window's calls evenly rather than sending them in one burst (which the
emulator, one thread sharing this process's GIL, would count up to ~100 ms late, and refuse
the next window's calls); against the bursty minimum that costs up to one window per job,
which ``--quick`` (2 s of calls) shows and the full job (11 s) mostly hides.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

from alltick_frames import AllTick
from alltick_frames.api.client import default_concurrency
from alltick_frames.budget import DEFAULT_GUARD, Budget, theoretical_minimum
from alltick_frames.core.plans import ENDPOINTS, KLINE, Plan, get_plan
from alltick_frames.emulator import EmulatorConfig, EmulatorServer

TOKEN = "bench"
PLAN: Plan = get_plan("professional").with_overrides(
    name="bench-100",
    endpoint_rates={e: (100, 1.0) for e in ENDPOINTS},
    all_endpoints=(100, 1.0),
    per_minute=6_000,
    per_day=10_000_000,
)
#: The emulator's market clock: a Wednesday afternoon (UTC), every market's history in reach.
MARKET_NOW = "2024-05-15T14:00:00Z"


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
    rejections: dict[str, int] = field(default_factory=dict)

    @property
    def ratio(self) -> float:
        return self.wall / self.minimum if self.minimum else float("nan")


async def run_job(
    emu: EmulatorServer,
    codes: list[str],
    count: int,
    concurrency: int | None,
    guard: float,
    cache: Path | None,
) -> Run:
    # With a cache, the budget keeps its ledger there too, as a client's own budget would.
    budget = RecordingBudget.for_token(PLAN, TOKEN, cache, guard=guard)
    async with AllTick(
        TOKEN,
        PLAN,
        emu.url,
        cache=cache or False,
        budget=budget,
        concurrency=concurrency,
        progress=False,
    ) as client:
        started = time.time()
        result = await client.klines(codes, "1h", count=count)
        ended = time.time()
    assert result.ok, result.failures
    assert len(result.data) == count * len(codes)
    calls = dict(result.stats.calls)
    answers = emu.stats().get(TOKEN, {})
    rejections = {
        ret: n for ep in answers.values() for ret, n in ep.items() if ret in ("429", "605")
    }
    return Run(
        wall=ended - started,
        minimum=theoretical_minimum(PLAN, calls),
        span=max(budget.slots) - min(budget.slots),
        tail=ended - max(budget.slots),
        calls=calls,
        rows=len(result.data),
        rejections=rejections,
    )


def report(run: Run, codes: int, count: int, concurrency: int, guard: float, cache: bool) -> None:
    pages = run.calls.get(KLINE, 0)
    rate = PLAN.rate_for(KLINE)
    windows = (pages - 1) // rate.calls  # full windows between the first call and the last
    print(f"plan            {PLAN.name}: 100 calls/s per endpoint and in all, 6,000/min")
    print(f"job             {codes} codes x {count} hourly bars = {pages} /kline calls, ", end="")
    print(f"{run.rows:,} bars; concurrency {concurrency}, guard {guard * 1000:.0f} ms, ", end="")
    print("with a cache" if cache else "no cache")
    print()
    print(f"{'our wall time':<24}{run.wall:>9.3f} s")
    print(f"{'theoretical minimum':<24}{run.minimum:>9.3f} s")
    print(f"{'ratio':<24}{run.ratio:>9.3f}   (target <= 1.05)")
    n_rejected = sum(run.rejections.values())
    print(f"{'429/605 from the server':<24}{n_rejected:>9d}   (target 0) {run.rejections or ''}")
    print()
    print("where the time went")
    print(f"  {'pacing span':<22}{run.span:>9.3f} s   first to last call leaving")
    guarded = f"{windows} full windows x {guard * 1000:.0f} ms"
    print(f"  {'  of which guard':<22}{windows * guard * rate.per:>9.3f} s   {guarded}")
    print(f"  {'tail':<22}{run.tail:>9.3f} s   last answers, decoding, the frame")
    print(f"  {'bars per second':<22}{run.rows / run.wall:>9,.0f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 pages a code (~3 s)")
    parser.add_argument("--count", type=int, help="hourly bars per code (default 5500)")
    parser.add_argument(
        "--concurrency", type=int, help="calls in flight (default: the client's for the plan)"
    )
    parser.add_argument(
        "--guard", type=float, default=DEFAULT_GUARD, help="the budget's guard, seconds"
    )
    parser.add_argument(
        "--cache",
        action="store_true",
        help="with an (empty) cache: every page is stored as it arrives and read back",
    )
    args = parser.parse_args(argv)
    count = args.count or (1_200 if args.quick else 5_500)

    config = EmulatorConfig(tokens={TOKEN: PLAN}, now=MARKET_NOW)
    with EmulatorServer(config) as emu, tempfile.TemporaryDirectory() as tmp:
        codes = [str(row["code"]) for row in emu.codes() if row["pageable"]]
        cache = Path(tmp) if args.cache else None
        run = asyncio.run(run_job(emu, codes, count, args.concurrency, args.guard, cache))
    concurrency = args.concurrency or default_concurrency(PLAN)
    report(run, len(codes), count, concurrency, args.guard, args.cache)
    return 0 if run.ratio <= 1.05 and not run.rejections else 1


if __name__ == "__main__":
    sys.exit(main())
