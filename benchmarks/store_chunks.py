"""How the store's chunking rule trades bytes written against lookups per load.

For each candidate rule (``MIN_CHUNK``, ``CHUNK_BARS``; the first row is the rule before,
which folded every write into its neighbours up to 8,192 bars), in a fresh store:

* **paged back**: ``--codes`` series of 1m bars fetched as the client does, newest page
  first (its last bar forming), then ``--pages`` pages of 500 bars further back each: the
  bytes handed to the database per byte of bars (write amplification) and the write speed;
* **warm load** of those series (``read_many``), in M bars/s, and the chunks they took;
* **refresh**: a daily series of 5,000 bars (written in one go) refreshed one bar at a
  time, ``--refreshes`` times: KB written per refresh, and the chunks it ends in;
* **appended**: 16 pages of 1,500 bars appended oldest first: the chunks they end in.

::

    python benchmarks/store_chunks.py             # 20 codes x 21 pages
    python benchmarks/store_chunks.py --quick     # 5 codes x 11 pages

The store's rule is chosen from this table (see the README's cache section).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from alltick_frames.store import FIELDS, Arrays, BarStore
from alltick_frames.store import writes as store_writes
from alltick_frames.store.codec import BAR_BYTES

#: (label, MIN_CHUNK, CHUNK_BARS); a MIN_CHUNK above CHUNK_BARS folds every write.
RULES = [
    ("fold all, 8192 (before)", 1 << 30, 8192),
    ("min 500, 1024", 500, 1024),
    ("min 500, 2048", 500, 2048),
    ("min 500, 4096", 500, 4096),
    ("min 500, 8192", 500, 8192),
]
PAGE, MINUTE, DAY = 500, 60, 86_400
#: Bars of the daily series that is refreshed (20 years), written in one go.
DAILY = 5_000


def _bars(ts: np.ndarray) -> Arrays:
    """Bars as the client hands them to the store (arrays, not a frame)."""
    ts = np.asarray(ts, np.int64)
    return ts, ts * 1.0 + np.arange(len(FIELDS), dtype=np.float64)[:, None]


class Meter:
    """Bytes a store hands its database."""

    def __init__(self, store: BarStore) -> None:
        self.bytes = 0
        backend, write = store._backend, store._backend.set

        def counted(key: str, value: bytes) -> None:
            self.bytes += len(value)
            write(key, value)

        backend.set = counted  # type: ignore[method-assign]


def paged_back(store: BarStore, code: str, pages: int) -> int:
    """Write a 1m series as a chain of ``pages`` pages does; return its closed bars."""
    now = 30_000_000 * MINUTE
    newest = now - np.arange(PAGE)[::-1] * MINUTE
    store.write(
        code, "1m", _bars(newest[:-1]), int(newest[0]), int(newest[-1]) - 1,
        forming=_bars(newest[-1:]), fetched_at=now,
    )  # fmt: skip
    oldest = int(newest[0])
    for _ in range(pages - 1):
        ts = oldest - np.arange(1, PAGE + 1)[::-1] * MINUTE
        store.write(code, "1m", _bars(ts), int(ts[0]), oldest - 1)
        oldest = int(ts[0])
    return pages * PAGE - 1


def build(root: Path, args: argparse.Namespace) -> dict[str, float]:
    """Fill a store under the current rule; what its writes cost."""
    codes = [f"C{k:03d}" for k in range(args.codes)]
    with BarStore(root, source="bench") as store:
        meter = Meter(store)
        t0 = time.perf_counter()
        closed = sum(paged_back(store, code, args.pages) for code in codes)
        write_s = time.perf_counter() - t0
        amplification = meter.bytes / (closed * BAR_BYTES)
        chunks = store.describe()["chunks"].mean()

        store.write("D", "1d", _bars(np.arange(DAILY) * DAY), 0, DAILY * DAY - 1)
        before = meter.bytes
        t0 = time.perf_counter()
        for k in range(DAILY, DAILY + args.refreshes):
            store.write("D", "1d", _bars(np.array([k * DAY])), k * DAY, (k + 1) * DAY - 1)
        refresh_s = (time.perf_counter() - t0) / args.refreshes
        refresh_kb = (meter.bytes - before) / args.refreshes / 1e3
        refresh_chunks = int(store.describe(code="D")["chunks"].iloc[0])

        for start in range(0, 16 * 1500, 1500):
            ts = np.arange(start, start + 1500) * MINUTE
            store.write("F", "1m", _bars(ts), int(ts[0]), int(ts[-1]) + MINUTE - 1)
        appended_chunks = int(store.describe(code="F")["chunks"].iloc[0])
    return {
        "closed": closed,
        "amp": amplification,
        "write": closed / write_s / 1e6,
        "chunks": chunks,
        "refresh_kb": refresh_kb,
        "refresh_ms": refresh_s * 1e3,
        "refresh_chunks": refresh_chunks,
        "appended_chunks": appended_chunks,
    }


def loads(roots: dict[str, Path], args: argparse.Namespace) -> dict[str, float]:
    """Best time to load every paged-back series of each store; rounds alternate the stores,
    so load drift on the machine hits them all alike."""
    keys = [(f"C{k:03d}", "1m") for k in range(args.codes)]
    stores = {label: BarStore(root, source="bench") for label, root in roots.items()}
    best = dict.fromkeys(stores, float("inf"))
    try:
        for _ in range(args.repeat):
            for label, store in stores.items():
                t0 = time.perf_counter()
                store.read_many(keys, forming=False)
                best[label] = min(best[label], time.perf_counter() - t0)
    finally:
        for store in stores.values():
            store.close()
    return best


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--codes", type=int, default=20)
    parser.add_argument("--pages", type=int, default=21, help="pages per series (first + back)")
    parser.add_argument("--refreshes", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--quick", action="store_true", help="5 codes x 11 pages")
    args = parser.parse_args(argv)
    if args.quick:
        args.codes, args.pages, args.refreshes, args.repeat = 5, 11, 100, 3

    saved = store_writes.MIN_CHUNK, store_writes.CHUNK_BARS
    rows, roots = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        try:
            for k, (label, min_chunk, chunk_bars) in enumerate(RULES):
                store_writes.MIN_CHUNK, store_writes.CHUNK_BARS = min_chunk, chunk_bars
                roots[label] = Path(tmp) / str(k)
                rows[label] = build(roots[label], args)
        finally:
            store_writes.MIN_CHUNK, store_writes.CHUNK_BARS = saved
        for label, seconds in loads(roots, args).items():
            rows[label]["load"] = rows[label]["closed"] / seconds / 1e6

    print(
        f"{args.codes} series x {args.pages} pages of {PAGE} 1m bars, paged back; "
        f"{DAILY:,} daily bars refreshed {args.refreshes} times; 16 pages of 1,500 appended"
    )
    print(
        f"  {'rule':<24}{'write amp':>10}{'M bars/s':>9}{'load M/s':>9}{'chunks':>7}"
        f"{'refresh KB':>11}{'ms':>6}{'chunks':>7}{'appended':>9}"
    )
    for label, r in rows.items():
        print(
            f"  {label:<24}{r['amp']:9.2f}x{r['write']:9.2f}{r['load']:9.2f}{r['chunks']:7.1f}"
            f"{r['refresh_kb']:11.1f}{r['refresh_ms']:6.2f}{r['refresh_chunks']:7d}"
            f"{r['appended_chunks']:9d}"
        )
    chosen = f"min {saved[0]}, {saved[1]}"
    print(f"  the store's rule: {chosen}")


if __name__ == "__main__":
    main()
