"""``alltick-frames demo``: the main job of this library, end to end, in a few seconds.

With no ``ALLTICK_TOKEN`` it starts the built-in AllTick emulator inside this process (on
loopback, synthetic prices, no network), so a fresh clone can see the whole thing work: daily
bars for the sample universe in ``data/`` (US, HK and China A-share stocks, FX, crypto,
metals) arrive as one DataFrame, a short summary and the failures table are printed, and the
bars are written to a Parquet file. ``data/broken.csv`` holds two codes that fail on purpose,
so the failures table always has something to show.

With ``ALLTICK_TOKEN`` set, the same job runs against AllTick itself (``--base-url`` to point
elsewhere, ``--plan`` to match your plan, ``--emulator`` to stay offline anyway).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alltick_frames.api.result import FetchResult

#: The sample universe, in the order the demo asks for it.
SAMPLE_FILES = ("us.csv", "hk.csv", "cn.csv", "fx.csv", "crypto.csv", "metals.csv", "broken.csv")
#: The file of codes that fail on purpose.
BROKEN_FILE = "broken.csv"
DEFAULT_OUT = Path("alltick_demo.parquet")
DEFAULT_COUNT = 250
#: The emulator's plan: 20 calls a second, so ~100 codes take about five seconds.
EMULATOR_PLAN = "professional"
#: The budget's safety margin (s) against the in-process emulator. Its server thread shares
#: the GIL with the client, so a request can reach it tens of milliseconds after the budget's
#: slot; the default 25 ms margin then lets 21 calls land in one second now and then (ret 429).
IN_PROCESS_GUARD = 0.15
#: The plan assumed with a real token unless --plan says otherwise: the slowest paid plan, so
#: the demo never goes faster than a real plan allows.
TOKEN_PLAN = "basic"

DESCRIPTION = """\
Fetch a year of daily bars for the sample universe in data/ (US, HK and A-share stocks,
FX, crypto, metals: about 100 codes) and write them to a Parquet file.

Without ALLTICK_TOKEN this starts the built-in AllTick emulator in this process: synthetic
prices, no network, done in a few seconds. With ALLTICK_TOKEN set it runs the same job
against AllTick (at your plan's pace: pass --plan).

Two codes of the sample (data/broken.csv) fail on purpose, so the failures table shows what a
failure looks like; the demo still exits 0 when it ran.
"""


@dataclass(frozen=True)
class Instrument:
    """One row of a sample universe file."""

    code: str
    name: str
    market: str
    source: str


def data_dir() -> Path:
    """The sample universe: ``data/`` of the clone this package runs from, else ``./data``."""
    candidates = [Path(__file__).resolve().parents[1] / "data", Path.cwd() / "data"]
    for candidate in candidates:
        if (candidate / SAMPLE_FILES[0]).is_file():
            return candidate
    raise FileNotFoundError(
        "cannot find the sample universe (data/us.csv, ...): run the demo from a clone of "
        "the repository, or pass --data-dir"
    )


def sample_universe(directory: Path | None = None) -> list[Instrument]:
    """Every code of the sample files in ``directory`` (default :func:`data_dir`), in order."""
    directory = directory or data_dir()
    out: list[Instrument] = []
    for name in SAMPLE_FILES:
        path = directory / name
        if not path.is_file():
            continue
        with path.open(encoding="utf-8", newline="") as f:
            for row in csv.DictReader(f):
                out.append(Instrument(row["code"], row["name"], row.get("market") or "", name))
    if not out:
        raise FileNotFoundError(
            f"no sample universe files ({', '.join(SAMPLE_FILES)}) in {directory}"
        )
    return out


def add_demo_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``demo`` on the ``alltick-frames`` command line."""
    from alltick_frames.cli import EXIT_HELP

    parser = subparsers.add_parser(
        "demo",
        help="fetch daily bars for the sample universe (no token needed)",
        description=DESCRIPTION,
        epilog="examples:\n  alltick-frames demo\n  alltick-frames demo --out bars.parquet"
        "\n  ALLTICK_TOKEN=... alltick-frames demo --plan premium\n\n" + EXIT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        metavar="FILE",
        help=f"where to write the bars (.parquet or .csv; default: {DEFAULT_OUT})",
    )
    parser.add_argument(
        "--count",
        type=int,
        default=DEFAULT_COUNT,
        help=f"daily bars per code (default: {DEFAULT_COUNT}, about a year)",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        metavar="DIR",
        help="where the sample universe lives (default: the repository's data/)",
    )
    where = parser.add_argument_group("where the data comes from")
    where.add_argument(
        "--emulator",
        action="store_true",
        help="use the built-in emulator even when ALLTICK_TOKEN is set",
    )
    where.add_argument(
        "--plan",
        help=f"the plan to pace by (default: {EMULATOR_PLAN} on the emulator, {TOKEN_PLAN} "
        "with a token: pass yours)",
    )
    where.add_argument(
        "--base-url",
        help="AllTick host when ALLTICK_TOKEN is set (default: $ALLTICK_BASE_URL or "
        "https://quote.alltick.co)",
    )
    where.add_argument(
        "--now",
        metavar="MOMENT",
        help="fix the emulator's market clock, e.g. 2024-05-15T14:00:00Z, for the same "
        "output on every run (default: real time)",
    )
    from alltick_frames.cli import _cache_options

    options = parser.add_argument_group("cache and progress")
    _cache_options(options)
    shown = options.add_mutually_exclusive_group()
    shown.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    shown.add_argument("--progress", action="store_true", help="always show a progress bar")
    parser.set_defaults(handler=run)
    return parser


async def fetch_daily(
    codes: list[str],
    count: int,
    *,
    token: str,
    plan: str,
    base_url: str | None,
    cache: bool | Path,
    progress: bool | None,
    clock: Callable[[], float] | None = None,
    guard: float | None = None,
) -> FetchResult:
    """The demo's job: ``count`` daily bars for ``codes``."""
    from alltick_frames.api.client import AllTick

    options: dict[str, Any] = {"cache": cache, "progress": progress, "guard": guard}
    if clock is not None:
        options["clock"] = clock
    async with AllTick(token, plan, base_url, **options) as client:
        return await client.klines(codes, "1d", count=count)


def run(args: argparse.Namespace) -> int:
    """Run the demo; returns 0 when it ran (partial failures are part of the demo)."""
    from alltick_frames.cli import EXIT_OK, _output_path, _progress, write_table

    out = _output_path(args.out, "--out")
    assert out is not None
    if args.count < 1:
        raise ValueError(f"--count must be >= 1, got {args.count}")
    universe = sample_universe(args.data_dir)
    codes = list(dict.fromkeys(i.code for i in universe))
    token = os.environ.get("ALLTICK_TOKEN")
    use_emulator = args.emulator or not token
    progress = _progress(args)
    started = time.monotonic()
    if use_emulator:
        from alltick_frames.emulator import EmulatorServer
        from alltick_frames.emulator.clock import parse_moment

        plan = args.plan or EMULATOR_PLAN
        now = None if args.now is None else parse_moment(args.now)
        # Synthetic bars never go into the real cache unless a cache dir is named.
        cache: bool | Path = False if args.no_cache or args.cache_dir is None else args.cache_dir
        with EmulatorServer(plan=plan, now=now) as emu:
            why = "--emulator given" if token else "no ALLTICK_TOKEN set"
            print(
                f"{why}: running against the built-in AllTick emulator at {emu.url}\n"
                f"(synthetic prices, no network; plan {plan})."
            )
            _announce(universe, args.count)
            result = asyncio.run(
                fetch_daily(
                    codes,
                    args.count,
                    token=emu.token,
                    plan=plan,
                    base_url=emu.url,
                    cache=cache,
                    progress=progress,
                    clock=None if now is None else (lambda: now),
                    guard=IN_PROCESS_GUARD,
                )
            )
    else:
        plan = args.plan or TOKEN_PLAN
        where = args.base_url or os.environ.get("ALLTICK_BASE_URL") or "https://quote.alltick.co"
        print(f"ALLTICK_TOKEN is set: running against {where} on the {plan} plan.")
        if args.plan is None:
            print(f"(pass --plan to pace by your own plan; {TOKEN_PLAN} is the safe default)")
        _announce(universe, args.count)
        cache = False if args.no_cache else (args.cache_dir or True)
        result = asyncio.run(
            fetch_daily(
                codes,
                args.count,
                token=token or "",
                plan=plan,
                base_url=args.base_url,
                cache=cache,
                progress=progress,
            )
        )
    write_table(result.data, out)
    _report(result, universe, out, time.monotonic() - started)
    return EXIT_OK


def _announce(universe: list[Instrument], count: int) -> None:
    markets: dict[str, int] = {}
    for inst in universe:
        markets[inst.market or "?"] = markets.get(inst.market or "?", 0) + 1
    mix = ", ".join(f"{m} {n}" for m, n in markets.items())
    print(f"\nFetching {count} daily bars for {len(universe)} codes ({mix}) ...", flush=True)


def _report(result: FetchResult, universe: list[Instrument], out: Path, elapsed: float) -> None:
    from alltick_frames.cli import print_failures

    data, stats = result.data, result.stats
    calls = ", ".join(f"{e} {n}" for e, n in sorted(stats.calls.items()) if n) or "none"
    if data.empty:
        dates = "none"
    else:
        dates = f"{data['timestamp'].min():%Y-%m-%d} to {data['timestamp'].max():%Y-%m-%d}"
    got = data["code"].nunique() if len(data) else 0
    print()
    print(f"  rows       {len(data):,}")
    print(f"  codes      {got} of {len(universe)} with data")
    print(f"  dates      {dates}")
    print(f"  calls      {stats.total_calls} ({calls})")
    print(f"  wall time  {elapsed:.1f} s")
    print()
    if result.ok:
        print("No failures.")
    else:
        print_failures(result.failures)
        broken = {i.code for i in universe if i.source == BROKEN_FILE}
        failed = set(result.failures["code"])
        if failed and failed <= broken:
            print(
                "\nThese failures are expected: data/broken.csv holds codes that fail on\n"
                "purpose (see data/README.md). Every other code was fetched."
            )
        else:
            print(
                "\nSome failures are expected (data/broken.csv fails on purpose); the\n"
                "others say what they mean and what to do above."
            )
    reader = "read_csv" if out.suffix.lower() == ".csv" else "read_parquet"
    print(f"\nWrote {len(data):,} rows to {out}; load it with pandas.{reader}({str(out)!r}).")
    print("Next: `alltick-frames fetch klines --help`, or notebooks/quickstart.ipynb.")


__all__ = [
    "DEFAULT_OUT",
    "Instrument",
    "add_demo_parser",
    "data_dir",
    "fetch_daily",
    "run",
    "sample_universe",
]
