"""String vs categorical ``code`` and ``interval`` columns: bytes per bar and what each costs.

Writes ``--codes`` series of ``--bars`` daily bars into a fresh store, then builds the
client's k-line frame from it (what a warm ``klines()`` returns) twice, side by side: with
Arrow-backed string columns (the default) and with categoricals, and prints for each:

* bytes per bar (``memory_usage(deep=True)``);
* the warm read, store to frame (best of ``--repeat``), and the ratio of the two; a third
  row converts the string frame afterwards (``astype("category")``), which is what a
  categorical default would cost unless every path building frames made categoricals;
* what a researcher then does with the frame: one code's rows, the last close per code, the
  frame to Arrow, and ``pd.concat`` of two results fetched apart (whose dtype says whether
  the column survived)::

    python benchmarks/categories.py            # 1,000 codes x 500 daily bars
    python benchmarks/categories.py --quick    # 100 codes x 250 bars
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from alltick_frames import frames
from alltick_frames.core.codes import classify
from alltick_frames.core.intervals import parse_interval
from alltick_frames.core.planner import KlineRequest
from alltick_frames.frames.sessions import series_sessions
from alltick_frames.store import BarStore
from alltick_frames.store.codec import as_frame
from alltick_frames.store.series import read_frame

_DAY = 86_400
_START = 1_600_000_000 - 1_600_000_000 % _DAY


def _series(rng: np.random.Generator, n: int) -> pd.DataFrame:
    close = rng.uniform(5, 2_000) * np.exp(np.cumsum(rng.normal(0, 0.02, n)))
    values = {"open": close, "high": close * 1.01, "low": close * 0.99, "close": close}
    volume = rng.integers(0, 5_000_000, n).astype(np.float64)
    stamps = _START + _DAY * np.arange(n, dtype=np.int64)
    return pd.DataFrame({"timestamp": stamps, **values, "volume": volume, "turnover": volume})


def read_categorical(store: BarStore, req: KlineRequest) -> pd.DataFrame:
    """:func:`read_frame` with categorical ``code`` and ``interval`` (no count trimming)."""
    alias = str(req.interval)
    codes = [c.code for c in req.codes]
    got = store.read_arrays([(code, alias) for code in codes], req.start, req.end)
    which = np.repeat(np.arange(len(codes)), got.counts)
    nanos = pd.DatetimeIndex((got.ts * 1_000_000_000).view("datetime64[ns]"))
    frame = as_frame(
        nanos.tz_localize("UTC"),
        got.vals,
        code=pd.Categorical.from_codes(which.astype(np.int32), categories=codes),
        interval=pd.Categorical.from_codes(np.zeros(which.size, np.int8), categories=[alias]),
    )
    frame.insert(3, "session", series_sessions(codes, which, got.ts))
    return frame


def _best(work: Callable[[], Any], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - t0)
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
    req = KlineRequest(tuple(classify(c) for c in codes), parse_interval("1d"), None, None, None)
    half = KlineRequest(req.codes[: len(codes) // 2], req.interval, None, None, None)
    other = KlineRequest(req.codes[len(codes) // 2 :], req.interval, None, None, None)
    with tempfile.TemporaryDirectory() as tmp, BarStore(tmp, source="benchmark") as store:
        for code in codes:
            bars = _series(rng, args.bars)
            store.write(code, "1d", bars, int(bars.timestamp.iloc[0]), _START + _DAY * args.bars)
        readers = {
            "string": lambda r: read_frame(store, r),
            "categorical": lambda r: read_categorical(store, r),
            # What a categorical default costs without rebuilding every frame path natively.
            "str->category": lambda r: read_frame(store, r).astype(
                {"code": "category", "interval": "category"}
            ),
        }
        n = args.codes * args.bars
        print(f"{args.codes:,} codes x {args.bars:,} daily bars = {n:,} bars, warm store")
        print(f"{'':<14}{'B/bar':>7}{'read ms':>9}{'one code':>10}{'last close':>11}"
              f"{'to_arrow':>10}  concat of two results")  # fmt: skip
        reads = {}
        for name, read in readers.items():
            df = read(req)
            assert len(df) == n
            reads[name] = _best(lambda read=read: read(req), args.repeat)
            size = df.memory_usage(deep=True, index=False).sum() / n
            one = _best(lambda df=df: df[df["code"] == codes[len(codes) // 2]], args.repeat)
            last = _best(
                lambda df=df: df.groupby("code", observed=True, sort=False)["close"].last(),
                args.repeat,
            )
            arrow = _best(lambda df=df: pa.Table.from_pandas(df, preserve_index=False), args.repeat)
            joined = pd.concat([read(half), read(other)], ignore_index=True)
            print(
                f"{name:<14}{size:>7.1f}{reads[name] * 1e3:>9.1f}{one * 1e3:>10.2f}"
                f"{last * 1e3:>11.2f}{arrow * 1e3:>10.2f}  code is {joined['code'].dtype}"
            )
        ratio = reads["string"] / reads["categorical"]
        print(f"warm read, string / categorical: {ratio:.2f}x")
        print(f"(frames.KLINE_DTYPES['code'] today: {frames.KLINE_DTYPES['code']})")


if __name__ == "__main__":
    main()
