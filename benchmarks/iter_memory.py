"""Peak memory of ``iter_klines`` against ``klines()`` on the same job (issue 14 item 4).

The same 100-series job (100 codes x 20,000 1m bars by default: 40 pages a code) is run
against the thin loopback server of ``client_ceiling.py``, once with ``klines()`` (the whole
frame at the end) and once with ``iter_klines`` (each batch of series dropped as soon as it
arrives, as a caller writing it out would), each in a fresh process so that its peak RSS
(``ru_maxrss``) is its own. It prints each peak above the RSS after import, set-up and a
warm-up job of one code (so that what any first job loads once, the exchange calendars and
Arrow's JSON reader, is counted in neither), the bytes of the bars each returned, and the
ratio of the two peaks (target: <= 0.3).

    python benchmarks/iter_memory.py                   # ~1 min on 2 busy cores
    python benchmarks/iter_memory.py --bars 50000      # the client_ceiling.py job
    python benchmarks/iter_memory.py --batch 8
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout
sys.path.insert(0, str(Path(__file__).resolve().parent))

from client_ceiling import MARKET_NOW, PLAN, TOKEN, ThinServerProcess, _maxrss

TARGET = 0.3


def child(how: str, url: str, codes: int, bars: int, batch: int) -> dict[str, Any]:
    """Run the job one way in this (fresh) process; its peak RSS above set-up, and bytes."""
    import gc

    from alltick_frames import AllTick

    names = [f"C{i:04d}USDT" for i in range(codes)]

    async def fetch() -> tuple[int, int]:
        async with AllTick(
            TOKEN, PLAN, url, cache=False, progress=False, clock=lambda: MARKET_NOW
        ) as client:
            if how == "klines":
                result = await client.klines(names, "1m", count=bars)
                return len(result.data), int(result.data.memory_usage(deep=True).sum())
            rows = size = 0
            async for part in client.iter_klines(names, "1m", count=bars, batch=batch):
                rows += len(part.data)
                size += int(part.data.memory_usage(deep=True).sum())
                del part  # as a caller that wrote it out would: the next batch comes alone
            return rows, size

    async def warm_up() -> None:
        async with AllTick(
            TOKEN, PLAN, url, cache=False, progress=False, clock=lambda: MARKET_NOW
        ) as client:
            await client.klines(["W0000USDT"], "1m", count=1_000)

    asyncio.run(warm_up())
    gc.collect()
    base = _maxrss()
    rows, size = asyncio.run(fetch())
    if rows != codes * bars:
        raise SystemExit(f"{how}: {rows:,} bars, not {codes * bars:,}")
    return {"peak": _maxrss() - base, "bytes": size}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--codes", type=int, default=100)
    parser.add_argument("--bars", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=12, help="iter_klines' batch of codes")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        figures = child(args.child, args.url, args.codes, args.bars, args.batch)
        print(json.dumps(figures))
        return
    print(f"load average    {' '.join(f'{x:.2f}' for x in os.getloadavg())} on "
          f"{os.cpu_count()} cores")  # fmt: skip
    print(f"job             {args.codes} codes x {args.bars:,} 1m bars, no cache; "
          f"iter_klines batch={args.batch}")  # fmt: skip
    figures = {}
    with ThinServerProcess() as server:
        for how in ("klines", "iter_klines"):
            server.reset()
            command = [
                sys.executable, __file__, "--child", how, "--url", server.url,
                "--codes", str(args.codes), "--bars", str(args.bars), "--batch", str(args.batch),
            ]  # fmt: skip
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            if done.returncode:
                raise SystemExit(done.stderr)
            figures[how] = json.loads(done.stdout.strip().splitlines()[-1])
    mib = 1 << 20
    for how, f in figures.items():
        print(f"{how:<12} peak {f['peak'] / mib:8,.0f} MiB   bars {f['bytes'] / mib:8,.0f} MiB")
    ratio = figures["iter_klines"]["peak"] / figures["klines"]["peak"]
    verdict = "ok" if ratio <= TARGET else "MISSED"
    print(f"iter_klines / klines peak: {ratio:.2f}x (target <= {TARGET}x: {verdict})")


if __name__ == "__main__":
    main()
