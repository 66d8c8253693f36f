"""Warm-cache load speed: every bar of N series from the cache vs. one Parquet file.

Writes ``--codes`` series of ``--bars`` daily bars into a fresh store in a temporary
directory, then loads them all: with ``AllTick.klines`` answered from that cache (no call:
planning against the store, reading, building the k-line frame, measuring completeness), with
the raw :meth:`BarStore.read_many`, and with ``pd.read_parquet`` of the very same frames
written to Parquet. Rounds alternate the loaders (best of ``--repeat``); bars/s and the
ratios to Parquet are printed side by side::

    python benchmarks/cache_load.py            # 1,000 codes x 500 daily bars
    python benchmarks/cache_load.py --quick    # 100 codes x 250 bars
    python benchmarks/cache_load.py --phases   # and where a warm klines() spends its CPU

Parquet decodes on two threads, the client reads on one: the wall-clock ratio depends on
whether a second core is free. So the run prints the load average and how much faster a
job that releases Python's lock runs on two threads than on one (about 2x on an idle
two-core machine, about 1x on a busy one).

Parquet is the bar to clear: one columnar file read by pyarrow's C++ reader is about as fast
as loading bars from disk gets, while the store answers per-series questions (coverage,
ranges, the newest N) that a single file cannot.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import os
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from alltick_frames.api.client import AllTick
from alltick_frames.core import planner
from alltick_frames.core.calendars import XHKG, newest_bars
from alltick_frames.core.intervals import parse_interval
from alltick_frames.frames import derive
from alltick_frames.run import answers
from alltick_frames.store import FIELDS, BarStore, disk
from alltick_frames.store.backend import DiskBackend

_DAY = 86_400
#: The newest bar written: Wednesday 2024-05-15; bars follow the Hong Kong calendar's
#: sessions, so the completeness measured by ``klines`` finds every bar it expects.
_TOP = int(pd.Timestamp("2024-05-15").timestamp())


def _stamps(n: int) -> np.ndarray:
    """The starts of the newest ``n`` daily bars of a Hong Kong stock up to :data:`_TOP`."""
    stamps = newest_bars(XHKG, parse_interval("1d"), _TOP, _TOP + _DAY, n)
    assert stamps.size == n, "the calendar does not reach back that far"
    return stamps


def _series(rng: np.random.Generator, stamps: np.ndarray) -> pd.DataFrame:
    n = stamps.size
    close = rng.uniform(5, 2_000) * np.exp(np.cumsum(rng.normal(0, 0.02, n)))
    values = {
        "open": close * (1 + rng.normal(0, 0.005, n)),
        "high": close * 1.01,
        "low": close * 0.99,
        "close": close,
        "volume": rng.integers(0, 5_000_000, n).astype(np.float64),
    }
    values["turnover"] = values["volume"] * close
    return pd.DataFrame({"timestamp": stamps, **values})


def _best_of(loaders: dict[str, Callable[[], pd.DataFrame]], repeat: int) -> dict[str, float]:
    """Best wall time of each loader; rounds alternate loaders so load drift hits all alike."""
    best = dict.fromkeys(loaders, float("inf"))
    for _ in range(repeat):
        for name, load in loaders.items():
            t0 = time.perf_counter()
            load()
            best[name] = min(best[name], time.perf_counter() - t0)
    return best


async def _warm_klines(
    tmp: str, codes: list[str], bars: int, repeat: int
) -> tuple[pd.DataFrame, dict[str, float]]:
    """``klines`` of every series, answered from the cache in ``tmp`` alone (no server runs:
    a call would fail), timed beside ``pd.read_parquet`` of the frame it returns."""
    stamps = _stamps(bars)
    first, last = int(stamps[0]), int(stamps[-1])
    async with AllTick(
        "benchmark-token",
        plan="professional",
        base_url="http://127.0.0.1:9",  # never called: the cache answers
        cache=tmp,
        source="benchmark",
        clock=lambda: float(last + 7 * _DAY),
        progress=False,
    ) as client:
        result = await client.klines(codes, "1d", start=first, end=last)
        assert result.stats.route == "cache" and len(result.data) == len(codes) * bars
        parquet = Path(tmp) / "klines.parquet"
        result.data.to_parquet(parquet, index=False)
        names = ["AllTick.klines (warm)", "pd.read_parquet (klines)"]
        best = dict.fromkeys([*names, *(f"{n} CPU" for n in names)], float("inf"))
        for _ in range(repeat):
            for name in names:
                t0, c0 = time.perf_counter(), time.process_time()
                if name == names[0]:
                    await client.klines(codes, "1d", start=first, end=last)
                else:
                    pd.read_parquet(parquet)
                wall, cpu = time.perf_counter() - t0, time.process_time() - c0
                best[name] = min(best[name], wall)
                best[f"{name} CPU"] = min(best[f"{name} CPU"], cpu)
    return result.data, best


def _second_core(repeat: int = 15) -> float:
    """How many times faster two threads run a job that releases Python's lock (``np.sin``
    of two 1M arrays) than one thread runs it: about 2 when a second core is free."""
    x, y = np.random.default_rng(0).random((2, 1_000_000))
    out_x, out_y = np.empty_like(x), np.empty_like(y)
    one = two = float("inf")
    with ThreadPoolExecutor(1) as pool:
        for _ in range(repeat):
            t0 = time.perf_counter()
            np.sin(x, out=out_x)
            np.sin(y, out=out_y)
            t1 = time.perf_counter()
            other = pool.submit(np.sin, y, out=out_y)
            np.sin(x, out=out_x)
            other.result()
            t2 = time.perf_counter()
            one, two = min(one, t1 - t0), min(two, t2 - t1)
    return one / two


#: The phases of a warm ``klines()`` timed by ``--phases``: (label, owner, attribute). The
#: read's own parts (SQLite, checks, copy) are inside "store read"; SQLite's hand-over counts
#: the index records read by planning too.
_PHASES = [
    ("validate the request", planner, "kline_request"),
    ("plan (coverage of every series)", BarStore, "coverage_table"),
    ("store read (read_arrays)", BarStore, "read_arrays"),
    ("  SQLite hands over bytes", DiskBackend, "get_many"),
    ("  checks (length, CRC-32)", disk, "_first_bad"),
    ("  copy into the columns", disk, "stack_chunks"),
    ("frame (code, session columns)", answers, "_frame"),
    ("completeness", derive.Part, "measure"),
]


@contextlib.contextmanager
def _timed(spent: dict[str, float]) -> Iterator[None]:
    """CPU seconds of the thread that runs each phase of :data:`_PHASES`, added to ``spent``
    while inside (the functions are wrapped, then put back)."""
    saved = []
    for label, owner, name in _PHASES:
        real = getattr(owner, name)

        def timed(*args: object, _real: Callable = real, _label: str = label, **kw: object):
            t0 = time.thread_time()
            try:
                return _real(*args, **kw)
            finally:
                spent[_label] += time.thread_time() - t0

        saved.append((owner, name, real))
        setattr(owner, name, functools.wraps(real)(timed))
    try:
        yield
    finally:
        for owner, name, real in reversed(saved):
            setattr(owner, name, real)


async def _phases(tmp: str, codes: list[str], bars: int, repeat: int) -> list[str]:
    """Where a warm ``klines()`` spends its CPU, as lines to print: the round with the least
    CPU in all."""
    stamps = _stamps(bars)
    first, last = int(stamps[0]), int(stamps[-1])
    async with AllTick(
        "benchmark-token",
        plan="professional",
        base_url="http://127.0.0.1:9",
        cache=tmp,
        source="benchmark",
        clock=lambda: float(last + 7 * _DAY),
        progress=False,
    ) as client:
        await client.klines(codes, "1d", start=first, end=last)
        best_total, best = float("inf"), {}
        for _ in range(repeat):
            spent: dict[str, float] = defaultdict(float)
            with _timed(spent):
                c0 = time.process_time()
                await client.klines(codes, "1d", start=first, end=last)
                total = time.process_time() - c0
            if total < best_total:
                best_total, best = total, dict(spent)
    lines = [f"  warm klines() CPU by phase (best of {repeat}): {best_total * 1e3:.1f} ms in all"]
    for label, _, _ in _PHASES:
        ms = best.get(label, 0.0) * 1e3
        lines.append(f"    {label:<34}{ms:8.1f} ms {100 * ms / 1e3 / best_total:5.0f}%")
    rest = best_total - sum(best.get(label, 0.0) for label, _, _ in _PHASES if label[0] != " ")
    lines.append(f"    {'the rest':<34}{rest * 1e3:8.1f} ms {100 * rest / best_total:5.0f}%")
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--codes", type=int, default=1_000)
    parser.add_argument("--bars", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="100 codes x 250 bars")
    parser.add_argument("--phases", action="store_true", help="CPU of a warm read by phase")
    args = parser.parse_args(argv)
    if args.quick:
        args.codes, args.bars = 100, 250

    rng = np.random.default_rng(7)
    codes = [f"{i:05d}.HK" for i in range(args.codes)]
    keys = [(code, "1d") for code in codes]
    with tempfile.TemporaryDirectory() as tmp:
        stamps = _stamps(args.bars)
        t0 = time.perf_counter()
        with BarStore(tmp, source="benchmark") as store:
            for code in codes:
                store.write(code, "1d", _series(rng, stamps), int(stamps[0]), _TOP + _DAY - 1)
        write_s = time.perf_counter() - t0

        load = os.getloadavg()
        cores = _second_core()
        warm, klines_best = asyncio.run(_warm_klines(tmp, codes, args.bars, args.repeat))
        with BarStore(tmp, source="benchmark") as store:  # a fresh handle: nothing in memory
            frame = store.read_many(keys)
            total = len(frame)
            assert total == args.codes * args.bars == len(warm), total
            parquet = Path(tmp) / "bars.parquet"
            frame.to_parquet(parquet, index=False)
            again = pd.read_parquet(parquet)
            assert np.array_equal(again["close"].to_numpy(), frame["close"].to_numpy())
            columns = ["timestamp", *FIELDS]
            best = _best_of(
                {
                    "BarStore.read_many": lambda: store.read_many(keys),
                    "pd.read_parquet": lambda: pd.read_parquet(parquet),
                    "pd.read_parquet (no code)": lambda: pd.read_parquet(parquet, columns=columns),
                },
                args.repeat,
            )
            size, parquet_mb = store.size_bytes(), parquet.stat().st_size / 1e6
        cores_after = _second_core()
        phases = asyncio.run(_phases(tmp, codes, args.bars, args.repeat)) if args.phases else []

    cpu = {n: klines_best.pop(f"{n} CPU") for n in list(klines_best) if f"{n} CPU" in klines_best}
    best.update(klines_best)
    print(f"{args.codes:,} series x {args.bars:,} daily bars = {total:,} bars")
    print(
        f"  load average {' '.join(f'{x:.2f}' for x in load)} before; two threads ran a "
        f"job that releases Python's lock {cores:.2f}x / {cores_after:.2f}x as fast as one "
        "(before / after: about 2 on an idle two-core machine)"
    )
    print(f"  store writes     {write_s:8.2f} s   ({args.codes / write_s:,.0f} series/s)")
    print(f"  on disk          {size / 1e6:8.1f} MB store, {parquet_mb:.1f} MB parquet (snappy)")
    print(f"  {'warm load':<26}{'seconds':>10}{'M bars/s':>12}")
    for name, seconds in best.items():
        print(f"  {name:<26}{seconds:10.4f}{total / seconds / 1e6:12.2f}")
    ratio = best["pd.read_parquet"] / best["BarStore.read_many"]
    print(f"  store / parquet speed ratio: {ratio:.2f}x")
    ratio = best["pd.read_parquet (klines)"] / best["AllTick.klines (warm)"]
    cpu_ratio = cpu["pd.read_parquet (klines)"] / cpu["AllTick.klines (warm)"]
    print(
        f"  warm klines / parquet of the same frame: {ratio:.2f}x (target 0.9x); in CPU "
        f"seconds (all threads; {cpu['AllTick.klines (warm)']:.3f} s vs "
        f"{cpu['pd.read_parquet (klines)']:.3f} s) {cpu_ratio:.2f}x"
    )
    for line in phases:
        print(line)


if __name__ == "__main__":
    main()
