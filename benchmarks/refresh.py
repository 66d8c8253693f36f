"""The daily refresh, end to end against the emulator: calls saved, and warm loads vs Parquet.

Starts the emulator in this process (over real HTTP on loopback), then with one client on a
fresh cache directory in a temporary folder:

1. **cold fill**: ``klines(codes, "1d", count=BARS)`` at Wednesday 15:00 UTC, one ``/kline``
   page per code;
2. **daily refresh**: both market clocks move on one day (to Thursday 15:00 UTC, when every
   market's day bar has opened) and the same request runs again. Every series is one bar
   behind, so the client refreshes them through ``/batch-kline``, up to the plan's group cap
   per call (one base path per call). Printed beside it: the naive way, one ``/kline`` per
   code, and what each would take on the real plan's rate limits;
3. **warm load**: the same request a third time is answered from the cache with no call. Its
   speed in bars/s (the whole ``klines`` call: planning against the store, reading, building
   the frame) is printed beside reading the very same bars from one Parquet file, and beside
   the raw :meth:`BarStore.read_many` underneath.

::

    python benchmarks/refresh.py             # 400 codes x 500 daily bars
    python benchmarks/refresh.py --quick     # 100 codes x 100 daily bars
    python benchmarks/refresh.py --plan premium --codes 1000

Call counts use the chosen plan's size caps (``batch_groups``, ``kline_bars``); its rates are
raised for the emulator run so the benchmark finishes in seconds, and the seconds the real
plan would need come from :func:`~alltick_frames.budget.estimate_schedule`. Timings are the
best of ``--repeat`` rounds that alternate the loaders, so load drift hits all alike.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

from alltick_frames.api.client import AllTick
from alltick_frames.budget import estimate_schedule
from alltick_frames.core import plans
from alltick_frames.core.codes import FOREX_PATH, STOCK_PATH
from alltick_frames.core.plans import BATCH_KLINE, KLINE, Plan, get_plan
from alltick_frames.emulator import EmulatorServer
from alltick_frames.emulator.config import EmulatorConfig

TOKEN = "benchmark-token"
#: Wednesday 15:00 UTC: US session open, HK and CN closed for the day, FX and crypto trading.
WEDNESDAY = pd.Timestamp("2024-05-15T15:00:00Z").timestamp()
DAY = 86_400
#: Emulator-run rates: fast enough to fill hundreds of codes in a few seconds on loopback.
RUN_RATE = 200


class Market:
    """One market clock for the client and the emulator."""

    def __init__(self, emu: EmulatorServer, now: float) -> None:
        self.emu, self.now = emu, now
        emu.set_market_now(now)

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
        self.emu.set_market_now(self.now)


def run_plan(plan: Plan) -> Plan:
    """``plan`` with its size caps kept and its rates raised for the emulator run."""
    return plan.with_overrides(
        name=f"{plan.name}-fast",
        endpoint_rates={e: (RUN_RATE, 1.0) for e in plans.ENDPOINTS},
        all_endpoints=(2 * RUN_RATE, 1.0),
        per_minute=120 * RUN_RATE,
    )


def pick_codes(emu: EmulatorServer, n: int) -> list[str]:
    """``n`` catalogue codes, forex-path ones first (all of them if n allows), then stocks."""
    rows = emu.codes()
    forex = [str(r["code"]) for r in rows if r["path"] == FOREX_PATH]
    stocks = [str(r["code"]) for r in rows if r["path"] == STOCK_PATH]
    n_forex = min(len(forex), n // 4)
    codes = forex[:n_forex] + stocks[: n - n_forex]
    if len(codes) < n:
        raise SystemExit(f"the emulator's catalogue has {len(rows)} codes; ask for fewer")
    return codes


async def best_of(
    loaders: dict[str, Callable[[], Awaitable[Any] | Any]], repeat: int
) -> dict[str, float]:
    """Best wall time of each loader, and its best CPU time (all threads) under
    ``"<name> CPU"``; each round runs every loader once, in turn."""
    best = dict.fromkeys([*loaders, *(f"{n} CPU" for n in loaders)], float("inf"))
    for _ in range(repeat):
        for name, load in loaders.items():
            t0, c0 = time.perf_counter(), time.process_time()
            out = load()
            if asyncio.iscoroutine(out):
                await out
            best[name] = min(best[name], time.perf_counter() - t0)
            best[f"{name} CPU"] = min(best[f"{name} CPU"], time.process_time() - c0)
    return best


def served(emu: EmulatorServer) -> dict[str, int]:
    """Successful calls per endpoint since the last reset (and a check that all succeeded)."""
    stats = emu.stats().get(TOKEN, {})
    bad = {e: v for e, v in stats.items() if set(v) - {"200"}}
    if bad:
        raise SystemExit(f"the emulator refused or failed calls: {bad}")
    return {e: v.get("200", 0) for e, v in stats.items()}


async def bench(args: argparse.Namespace) -> None:
    real = get_plan(args.plan)
    plan = run_plan(real)
    config = EmulatorConfig(tokens={TOKEN: plan}, now=WEDNESDAY)
    with EmulatorServer(config) as emu, tempfile.TemporaryDirectory() as tmp:
        market = Market(emu, WEDNESDAY)
        codes = pick_codes(emu, args.codes)
        n_forex = sum(1 for c in codes if not c.endswith((".US", ".HK", ".SH", ".SZ")))
        async with AllTick(
            TOKEN,
            plan=plan,
            base_url=emu.url,
            cache=Path(tmp) / "cache",
            clock=market,
            progress=False,
            guard=0.1,  # the in-process emulator admits bursts slower than a 25 ms guard
        ) as client:
            # 1. cold fill
            t0 = time.perf_counter()
            cold = await client.klines(codes, "1d", count=args.bars)
            cold_s = time.perf_counter() - t0
            cold_calls = served(emu)
            # Shortfalls (the plan's history is shorter than count) are fine; errors are not.
            errors = cold.failures[~cold.failures["kind"].isin(["history-limit", "not-pageable"])]
            if not errors.empty:
                raise SystemExit(f"the cold fill failed for some codes:\n{errors}")

            # 2. the daily refresh, one day later
            market.advance(DAY)
            emu.reset()
            estimate = client.estimate("klines", codes, "1d", count=args.bars)
            t0 = time.perf_counter()
            refreshed = await client.klines(codes, "1d", count=args.bars)
            refresh_s = time.perf_counter() - t0
            refresh_calls = served(emu)
            newest = refreshed.data.groupby("code", observed=True)["timestamp"].max()
            assert (newest >= pd.Timestamp(WEDNESDAY, unit="s", tz="UTC")).all()

            # 3. warm loads: the same request again, beside Parquet and the raw store
            emu.reset()
            third = await client.klines(codes, "1d", count=args.bars)
            assert served(emu) == {} and third.stats.route == "cache"
            parquet = Path(tmp) / "bars.parquet"
            third.data.to_parquet(parquet, index=False)
            again = pd.read_parquet(parquet)
            assert np.array_equal(again["close"].to_numpy(), third.data["close"].to_numpy())
            assert client.store is not None
            store, keys = client.store, [(c, "1d") for c in codes]
            best = await best_of(
                {
                    "AllTick.klines (warm cache)": lambda: client.klines(
                        codes, "1d", count=args.bars
                    ),
                    "BarStore.read_many (raw)": lambda: store.read_many(keys),
                    "pd.read_parquet": lambda: pd.read_parquet(parquet),
                },
                args.repeat,
            )
            assert served(emu) == {}
            rows = len(third.data)

    naive = {KLINE: len(codes)}
    ours = {e: n for e, n in refresh_calls.items() if n}
    ours_total, naive_total = sum(ours.values()), len(codes)
    print(
        f"{len(codes)} codes ({len(codes) - n_forex} stock path, {n_forex} forex path), "
        f"daily bars, count={args.bars}; plan caps: {real.name} "
        f"(batch_groups={real.batch_groups}, kline_bars={real.kline_bars})"
    )
    print(
        f"  cold fill          {cold_calls.get(KLINE, 0):6,} /kline calls      "
        f"{cold_s:6.2f} s on the emulator"
    )
    print("  daily refresh, market +1 day (every series one bar behind):")
    print(f"  {'':34}{'calls':>8}{'est. s on ' + real.name:>24}")
    label = f"this client ({refreshed.stats.route} route)"
    print(
        f"    {label:32}{ours_total:8,}{estimate_schedule(real, ours):24.1f}"
        f"   (estimate() said {estimate.total_calls}; {refresh_s:.2f} s on the emulator)"
    )
    print(
        f"    {'naive: one /kline per code':32}{naive_total:8,}"
        f"{estimate_schedule(real, naive):24.1f}"
    )
    print(f"    calls ratio naive / this client: {naive_total / max(1, ours_total):,.0f}x")
    print(f"  warm load, a third identical run (no call): {rows:,} bars, best of {args.repeat}")
    print(f"    {'':32}{'seconds':>10}{'M bars/s':>12}")
    for name, seconds in best.items():
        if not name.endswith(" CPU"):
            print(f"    {name:32}{seconds:10.4f}{rows / seconds / 1e6:12.2f}")
    parquet = best["pd.read_parquet"]
    warm_cpu, parquet_cpu = best["AllTick.klines (warm cache) CPU"], best["pd.read_parquet CPU"]
    print(
        f"    speed relative to Parquet: warm klines "
        f"{parquet / best['AllTick.klines (warm cache)']:.2f}x, "
        f"raw store {parquet / best['BarStore.read_many (raw)']:.2f}x; warm klines in CPU "
        f"seconds (all threads; {warm_cpu:.3f} s vs {parquet_cpu:.3f} s) "
        f"{parquet_cpu / warm_cpu:.2f}x"
    )
    if set(ours) != {BATCH_KLINE}:
        print(f"  note: the refresh did not take the batch route alone: {ours}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--codes", type=int, default=400)
    parser.add_argument("--bars", type=int, default=500, help="daily bars per code (count)")
    parser.add_argument("--plan", default="professional", help="whose size caps to use")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="100 codes x 100 bars, 3 rounds")
    args = parser.parse_args(argv)
    if args.quick:
        args.codes, args.bars, args.repeat = 100, 100, 3
    asyncio.run(bench(args))


if __name__ == "__main__":
    main()
