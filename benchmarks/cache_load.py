"""Warm-cache load speed: every bar of N series from the BarStore vs. one Parquet file.

Writes ``--codes`` series of ``--bars`` daily bars into a fresh store in a temporary
directory, writes the very same frame to one Parquet file, then loads all bars both ways
(best of ``--repeat``) and prints bars/s side by side::

    python benchmarks/cache_load.py            # 1,000 codes x 500 daily bars
    python benchmarks/cache_load.py --quick    # 100 codes x 250 bars

Parquet is the bar to clear: one columnar file read by pyarrow's C++ reader is about as fast
as loading bars from disk gets, while the store answers per-series questions (coverage,
ranges, the newest N) that a single file cannot.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from alltick_frames.store import FIELDS, BarStore

_DAY = 86_400
_START = 1_600_000_000 - 1_600_000_000 % _DAY


def _series(rng: np.random.Generator, n: int) -> pd.DataFrame:
    close = rng.uniform(5, 2_000) * np.exp(np.cumsum(rng.normal(0, 0.02, n)))
    values = {
        "open": close * (1 + rng.normal(0, 0.005, n)),
        "high": close * 1.01,
        "low": close * 0.99,
        "close": close,
        "volume": rng.integers(0, 5_000_000, n).astype(np.float64),
    }
    values["turnover"] = values["volume"] * close
    return pd.DataFrame({"timestamp": _START + _DAY * np.arange(n, dtype=np.int64), **values})


def _best_of(loaders: dict[str, Callable[[], pd.DataFrame]], repeat: int) -> dict[str, float]:
    """Best wall time of each loader; rounds alternate loaders so load drift hits all alike."""
    best = dict.fromkeys(loaders, float("inf"))
    for _ in range(repeat):
        for name, load in loaders.items():
            t0 = time.perf_counter()
            load()
            best[name] = min(best[name], time.perf_counter() - t0)
    return best


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--codes", type=int, default=1_000)
    parser.add_argument("--bars", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="100 codes x 250 bars")
    args = parser.parse_args(argv)
    if args.quick:
        args.codes, args.bars = 100, 250

    rng = np.random.default_rng(7)
    codes = [f"{i:05d}.HK" for i in range(args.codes)]
    keys = [(code, "1d") for code in codes]
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        with BarStore(tmp, source="benchmark") as store:
            for code in codes:
                bars = _series(rng, args.bars)
                store.write(
                    code, "1d", bars, int(bars.timestamp.iloc[0]), _START + _DAY * args.bars
                )
        write_s = time.perf_counter() - t0

        with BarStore(tmp, source="benchmark") as store:  # a fresh handle: nothing in memory
            frame = store.read_many(keys)
            total = len(frame)
            assert total == args.codes * args.bars, total
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

    print(f"{args.codes:,} series x {args.bars:,} daily bars = {total:,} bars")
    print(f"  store writes     {write_s:8.2f} s   ({args.codes / write_s:,.0f} series/s)")
    print(f"  on disk          {size / 1e6:8.1f} MB store, {parquet_mb:.1f} MB parquet (snappy)")
    print(f"  {'warm load':<26}{'seconds':>10}{'M bars/s':>12}")
    for name, seconds in best.items():
        print(f"  {name:<26}{seconds:10.4f}{total / seconds / 1e6:12.2f}")
    ratio = best["pd.read_parquet"] / best["BarStore.read_many"]
    print(f"  store / parquet speed ratio: {ratio:.2f}x")


if __name__ == "__main__":
    main()
