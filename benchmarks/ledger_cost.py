"""The disk ledger's cost per reservation, by how many calls the per-minute window holds.

A plan of 120,000 calls a minute (5,000 a second per endpoint and in all) has its per-minute
window filled with 0, 10k and 60k calls spread over the last 55 s; then ``--reserves``
reservations of ``/kline`` are timed one by one (the clock moving 1 ms between them) and the
median is printed. Each size is measured twice, side by side in one run:

* ``exact``: every call's tick kept (the representation before issue 13 item 3; forced here
  by raising :data:`~alltick_frames.budget.counts.COUNT_ABOVE`);
* ``counts``: a window allowing and holding more than COUNT_ABOVE calls kept as counts.

No HTTP is made: this measures the ledger alone. ::

    python benchmarks/ledger_cost.py
    python benchmarks/ledger_cost.py --reserves 500
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

from alltick_frames.budget import Budget, DiskLedger, counts, slots
from alltick_frames.core.clock import FakeClock
from alltick_frames.core.plans import ENDPOINTS, KLINE, get_plan

PLAN = get_plan("professional").with_overrides(
    name="bench-120k",
    endpoint_rates={e: (5000, 1.0) for e in ENDPOINTS},
    all_endpoints=(5000, 1.0),
    per_minute=120_000,
    per_day=10_000_000,
)
T0 = 1_780_000_000.0


def median_reserve_ms(calls: int, reserves: int, exact: bool) -> float:
    """Median ms of one reservation with ``calls`` calls in the per-minute window."""
    slots.COUNT_ABOVE = 10**12 if exact else counts.COUNT_ABOVE
    clock = FakeClock(T0)
    with tempfile.TemporaryDirectory() as tmp:
        budget = Budget(PLAN, clock=clock, ledger=DiskLedger(tmp, "bench"))
        rules = slots.rules_for(PLAN, KLINE, budget.guard)
        minute = [r for r in rules if r[0] == slots.PER_MINUTE_KEY]
        start, step = slots.to_ticks(T0 - 55.0), slots.to_ticks(55.0) // max(calls, 1)

        def fill(state: slots.LedgerState) -> None:
            for i in range(calls):
                slots.record(state, minute, start + i * step, 0)

        budget.ledger.update(fill)
        for _ in range(5):  # warm up: the first update also prunes the filled days
            budget.reserve(KLINE)
        times = []
        for _ in range(reserves):
            clock.advance(0.001)
            began = time.perf_counter()
            budget.reserve(KLINE)
            times.append(time.perf_counter() - began)
        held = budget.ledger.read(lambda s: len(s.window(slots.PER_MINUTE_KEY)))
        budget.close()
    assert held >= calls, (held, calls)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reserves", type=int, default=300)
    args = parser.parse_args()
    print(subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    print(f"{'calls in window':>16} {'exact ms':>9} {'counts ms':>10} {'ratio':>6}")
    for calls in (0, 10_000, 60_000):
        exact = median_reserve_ms(calls, args.reserves, exact=True)
        counted = median_reserve_ms(calls, args.reserves, exact=False)
        print(f"{calls:>16,} {exact:>9.3f} {counted:>10.3f} {exact / counted:>5.1f}x")
    print(subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())


if __name__ == "__main__":
    main()
