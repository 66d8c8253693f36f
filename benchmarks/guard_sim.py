"""The guard's own figures, free of the machine: the real budget against the emulator's real
windows, in simulated time.

``throughput.py`` measures the whole client on this machine, where CPU starvation (other jobs,
``--busy``) can bound the pace before the guard does. This isolates the pacing: the real
:class:`~alltick_frames.budget.Budget` (learned or fixed guard) on a
:class:`~alltick_frames.core.clock.FakeClock` reserves slots, up to ``--concurrency`` ahead;
each call leaves exactly at its slot, reaches the server a uniform 0 to ``--jitter`` ms later
(as the emulator's ``arrival_jitter`` fault delays it), and is admitted or refused by the
emulator's own windows (:class:`~alltick_frames.emulator.limits.TokenQuota`). Its answer comes
back ``--latency`` ms after it arrived; the budget observes the latency, hears when the
answer came (:meth:`~alltick_frames.budget.Budget.answered`; ``--no-answers`` leaves it out, to
see what that bound is worth), and hears of every 429/605, exactly as the runner tells it. A
call whose slot a rejection has blocked meanwhile takes a new one (as the runner's departure
check does); a refused call is sent again.

It prints, per guard and jitter: the pacing span over the plan's theoretical minimum for the
calls answered (no tail, no decoding: the cost of the guard and of rejections alone), the
429/605 answers and the guard at the end. Seeds make every run repeatable.

    python benchmarks/guard_sim.py                       # 902 calls, jitter 0 25 50 100 ms
    python benchmarks/guard_sim.py --calls 5000 --seeds 5
"""

from __future__ import annotations

import argparse
import heapq
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

from _plans import BENCH_100

from alltick_frames.budget import Budget, theoretical_minimum
from alltick_frames.budget.guard import LearnedGuard
from alltick_frames.core.clock import FakeClock
from alltick_frames.core.plans import KLINE, Plan
from alltick_frames.emulator.limits import TokenQuota

PLAN: Plan = BENCH_100
T0 = 1_777_600_800.0  # 2026-05-01 10:00 UTC+8, far from the daily reset


def simulate(
    guard: float | None,
    jitter: float,
    calls: int,
    concurrency: int,
    latency: float,
    seed: int,
    answers: bool = True,
    smooth: float = 1.0,
) -> tuple[float, int, float]:
    """(span / minimum, rejections, final guard) of ``calls`` calls under ``guard``; with
    ``answers``, the budget hears when each call was answered, as the runner tells it."""
    rng = random.Random(seed)
    clock = FakeClock(T0)
    budget = Budget(
        PLAN, clock=clock, guard=LearnedGuard() if guard is None else guard, smooth=smooth
    )
    quota = TokenQuota(PLAN)
    events: list[tuple[float, int, str, float, int]] = []  # (time, order, kind, slot, seen)
    order = 0
    todo, outstanding, answered, rejected = calls, 0, 0, 0
    sends: list[float] = []

    def push(t: float, kind: str, slot: float, seen: int = 0) -> None:
        nonlocal order
        order += 1
        heapq.heappush(events, (t, order, kind, slot, seen))

    def refill() -> None:
        nonlocal todo, outstanding
        while todo and outstanding < concurrency:
            push(budget.reserve(KLINE), "send", 0.0, budget.rejected)
            todo, outstanding = todo - 1, outstanding + 1

    refill()
    while events:
        t, _, kind, slot, seen = heapq.heappop(events)
        clock.set(max(t, clock.now()))
        if kind == "send":
            if budget.rejected != seen and budget.blocked(KLINE, t):
                budget.release(KLINE, t)  # blocked since it was reserved: a new slot
                push(budget.reserve(KLINE), "send", 0.0, budget.rejected)
                continue
            sends.append(t)
            push(t + rng.uniform(0.0, jitter), "arrive", t)
        elif kind == "arrive":
            ret = quota.admit(KLINE, t)
            push(t + latency, "answer", slot, 0 if ret is None else ret)
        else:
            budget.observe(KLINE, t - slot)
            if answers:
                budget.answered(KLINE, slot, t)
            outstanding -= 1
            if seen:  # the ret
                rejected += 1
                budget.on_rejected(KLINE, seen, sent=slot)
                todo += 1
            else:
                answered += 1
                budget.on_accepted(KLINE)
            refill()
    minimum = theoretical_minimum(PLAN, {KLINE: answered})
    return (max(sends) - min(sends)) / minimum, rejected, budget.guard


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=902)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--latency", type=float, default=2.0, help="ms from arrival to answer")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument(
        "--no-answers", action="store_true", help="do not tell the budget when calls were answered"
    )
    parser.add_argument(
        "--smooth", type=float, default=1.0, help="share of the even spacing kept (default 1)"
    )
    parser.add_argument("--jitter", type=float, nargs="*", default=[0, 25, 50, 100], help="ms")
    args = parser.parse_args(argv)
    guards: list[tuple[str, float | None]] = [
        ("fixed 25 ms", 0.025),
        ("fixed 50 ms", 0.05),
        ("learned", None),
    ]
    print(f"{args.calls} /kline calls at 100/s, {args.concurrency} reserved ahead, ", end="")
    print(f"answers {args.latency:g} ms after arrival; seeds 0..{args.seeds - 1}", end="")
    print(f"; spacing x{args.smooth:g}" if args.smooth != 1 else "")
    print(f"{'jitter':>8}  {'guard':<12}{'span/minimum':>20}{'429/605':>14}{'final guard':>16}")
    for jitter in args.jitter:
        for name, guard in guards:
            runs = [
                simulate(
                    guard,
                    jitter / 1000,
                    args.calls,
                    args.concurrency,
                    args.latency / 1000,
                    s,
                    answers=not args.no_answers,
                    smooth=args.smooth,
                )
                for s in range(args.seeds)
            ]
            ratios = [r for r, _, _ in runs]
            rejections = [n for _, n, _ in runs]
            finals = [g * 1000 for _, _, g in runs]
            print(
                f"{jitter:>6g}ms  {name:<12}{min(ratios):>10.3f}–{max(ratios):.3f}"
                f"{min(rejections):>8d}–{max(rejections):<5d}"
                f"{min(finals):>8.1f}–{max(finals):.1f} ms"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
