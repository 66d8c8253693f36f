"""The Parquet dataset's size on disk beside the cache's, for the same bars.

Writes ``--codes`` series of ``--bars`` daily bars into a fresh disk cache
(:class:`~alltick_frames.store.BarStore`), exports them with
:func:`~alltick_frames.store.dataset.export_store` (what ``alltick-frames cache export DIR``
runs) and prints, side by side: the bytes each takes on disk (every file under its directory,
as ``du --apparent-size`` counts), the files the dataset made, how long the export took, and
how long DuckDB takes to read the whole dataset back. ::

    python benchmarks/dataset_size.py            # 1,000 codes x 500 daily bars
    python benchmarks/dataset_size.py --quick    # 100 codes x 250 bars

The bars are random walks (the cache_load benchmark's), so they compress about as well as
real prices do; volumes are whole numbers, as exchanges report them.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

from cache_load import _DAY, _series, _stamps

from alltick_frames.store import BarStore
from alltick_frames.store.dataset import BarDataset, export_store


def _bytes(root: Path) -> tuple[int, int]:
    """Bytes of every file under ``root``, and how many files."""
    files = [p for p in root.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files), len(files)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--codes", type=int, default=1_000)
    parser.add_argument("--bars", type=int, default=500)
    parser.add_argument("--quick", action="store_true", help="100 codes x 250 bars")
    args = parser.parse_args()
    if args.quick:
        args.codes, args.bars = 100, 250

    import duckdb

    rng = np.random.default_rng(7)
    codes = [f"{i:05d}.HK" for i in range(args.codes)]
    stamps = _stamps(args.bars)
    end = int(stamps[-1]) + _DAY
    with tempfile.TemporaryDirectory() as tmp:
        cache, out = Path(tmp) / "cache", Path(tmp) / "bars"
        with BarStore(cache, source="benchmark") as store:
            for code in codes:
                bars = _series(rng, stamps)
                store.write(code, "1d", bars, int(stamps[0]), end)
        with BarStore(cache, source="benchmark") as store:
            started = time.perf_counter()
            done = export_store(store, [(c, "1d") for c in codes], BarDataset(out))
            export_s = time.perf_counter() - started
        assert done.written == args.codes
        started = time.perf_counter()
        rows = duckdb.sql(
            f"SELECT count(*), sum(close) FROM read_parquet('{out}/**/*.parquet', "
            "hive_partitioning=true)"
        ).fetchall()[0][0]
        read_s = time.perf_counter() - started
        assert rows == args.codes * args.bars
        cache_bytes, _ = _bytes(cache)
        dataset_bytes, files = _bytes(out)

    print(f"{args.codes:,} series x {args.bars:,} daily bars = {rows:,} bars")
    print(f"  cache on disk     {cache_bytes / 1e6:8.1f} MB")
    print(f"  dataset on disk   {dataset_bytes / 1e6:8.1f} MB in {files:,} files (zstd)")
    print(f"  dataset / cache   {dataset_bytes / cache_bytes:8.3f}")
    print(f"  export            {export_s:8.2f} s ({args.codes / export_s:,.0f} series/s)")
    print(f"  DuckDB full scan  {read_s:8.2f} s")


if __name__ == "__main__":
    main()
