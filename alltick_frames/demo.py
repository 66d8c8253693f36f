"""The demo job: the main job of this library, end to end, in a few seconds.

With no ``ALLTICK_TOKEN`` it starts the built-in AllTick emulator inside this process (on
loopback, synthetic prices, no network), so a fresh clone can see the whole thing work: daily
bars for the sample universe in ``data/`` (US, HK and China A-share stocks, FX, crypto,
metals) arrive as one DataFrame, a short summary and the failures table are printed, and the
bars are written to a Parquet file. ``data/broken.csv`` holds two codes that fail on purpose,
so the failures table always has something to show.

With ``ALLTICK_TOKEN`` set, the same job runs against AllTick itself (``--base-url`` to point
elsewhere, ``--plan`` to match your plan, ``--emulator`` to stay offline anyway).

Its command line, ``alltick-frames demo``, is :mod:`alltick_frames.cli.demo`; this module does
not import the command line, and imports pandas and the client only when the job runs.
"""

from __future__ import annotations

import csv
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from alltick_frames.api.result import FetchResult

#: Where the package keeps its copy of the repository's data/ (see :func:`data_dir`).
SAMPLE_DIR = "sample_data"
#: The sample universe, in the order the demo asks for it.
SAMPLE_FILES = ("us.csv", "hk.csv", "cn.csv", "fx.csv", "crypto.csv", "metals.csv", "broken.csv")
#: The file of codes that fail on purpose.
BROKEN_FILE = "broken.csv"
DEFAULT_OUT = Path("alltick_demo.parquet")
DEFAULT_COUNT = 250
#: The emulator's plan: 20 calls a second, so ~100 codes take about five seconds.
EMULATOR_PLAN = "professional"
#: The plan assumed with a real token unless --plan says otherwise: the slowest paid plan, so
#: the demo never goes faster than a real plan allows.
TOKEN_PLAN = "basic"


@dataclass(frozen=True)
class Instrument:
    """One row of a sample universe file."""

    code: str
    name: str
    market: str
    source: str


def data_dir() -> Traversable:
    """The sample universe shipped inside the package, read with :mod:`importlib.resources`.

    It is a copy of the repository's ``data/`` (the CSV files; a test keeps the two
    identical), so the demo finds it in a wheel install as in a clone. On disk, as pip
    installs it, this is a :class:`~pathlib.Path`.
    """
    return resources.files("alltick_frames") / SAMPLE_DIR


def sample_universe(directory: Path | Traversable | None = None) -> list[Instrument]:
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
    shared_cache: bool = False,
) -> FetchResult:
    """The demo's job: ``count`` daily bars for ``codes``."""
    from alltick_frames.api.client import AllTick

    options: dict[str, Any] = {
        "cache": cache,
        "shared_cache": shared_cache,
        "progress": progress,
        "guard": guard,
    }
    if clock is not None:
        options["clock"] = clock
    async with AllTick(token, plan, base_url, **options) as client:
        return await client.klines(codes, "1d", count=count)


def run(
    *,
    out: Path = DEFAULT_OUT,
    count: int = DEFAULT_COUNT,
    sample_dir: Path | Traversable | None = None,
    emulator: bool = False,
    plan: str | None = None,
    base_url: str | None = None,
    now: str | None = None,
    no_cache: bool = False,
    cache_dir: Path | None = None,
    shared_cache: bool = False,
    progress: bool | None = None,
) -> FetchResult:
    """Run the demo job, print what it did, write the bars to ``out``, return the result.

    Against the built-in emulator when ``ALLTICK_TOKEN`` is unset or ``emulator`` is true
    (``plan`` defaults to :data:`EMULATOR_PLAN`, ``now`` fixes its market clock), else
    against AllTick at ``base_url`` (``plan`` defaults to :data:`TOKEN_PLAN`). Synthetic bars
    go into a cache only when ``cache_dir`` names one (``shared_cache`` as for
    :class:`~alltick_frames.api.client.AllTick`). Failed codes are part of the demo: they are
    printed, not raised.
    """
    import asyncio  # here, not at the top: the command line's --help reads this module

    from alltick_frames.output import write_table

    if count < 1:
        raise ValueError(f"--count must be >= 1, got {count}")
    universe = sample_universe(sample_dir)
    codes = list(dict.fromkeys(i.code for i in universe))
    token = os.environ.get("ALLTICK_TOKEN")
    use_emulator = emulator or not token
    started = time.monotonic()
    if use_emulator:
        from alltick_frames.emulator import EmulatorServer
        from alltick_frames.emulator.clock import parse_moment

        plan = plan or EMULATOR_PLAN
        moment = None if now is None else parse_moment(now)
        # Synthetic bars never go into the real cache unless a cache dir is named.
        cache: bool | Path = False if no_cache or cache_dir is None else cache_dir
        with EmulatorServer(plan=plan, now=moment) as emu:
            why = "--emulator given" if token else "no ALLTICK_TOKEN set"
            print(
                f"{why}: running against the built-in AllTick emulator at {emu.url}\n"
                f"(synthetic prices, no network; plan {plan})."
            )
            _announce(universe, count)
            result = asyncio.run(
                fetch_daily(
                    codes,
                    count,
                    token=emu.token,
                    plan=plan,
                    base_url=emu.url,
                    cache=cache,
                    shared_cache=shared_cache,
                    progress=progress,
                    # The budget's learned guard covers the in-process emulator too: its
                    # server thread shares the GIL with the client and dates requests late,
                    # which the guard measures (and widens for at the first 429).
                    clock=None if moment is None else (lambda: moment),
                )
            )
    else:
        given_plan, plan = plan, plan or TOKEN_PLAN
        where = base_url or os.environ.get("ALLTICK_BASE_URL") or "https://quote.alltick.co"
        print(f"ALLTICK_TOKEN is set: running against {where} on the {plan} plan.")
        if given_plan is None:
            print(f"(pass --plan to pace by your own plan; {TOKEN_PLAN} is the safe default)")
        _announce(universe, count)
        cache = False if no_cache else (cache_dir or True)
        result = asyncio.run(
            fetch_daily(
                codes,
                count,
                token=token or "",
                plan=plan,
                base_url=base_url,
                cache=cache,
                shared_cache=shared_cache,
                progress=progress,
            )
        )
    write_table(result.data, out)
    _report(result, universe, out, time.monotonic() - started)
    return result


def _announce(universe: list[Instrument], count: int) -> None:
    markets: dict[str, int] = {}
    for inst in universe:
        markets[inst.market or "?"] = markets.get(inst.market or "?", 0) + 1
    mix = ", ".join(f"{m} {n}" for m, n in markets.items())
    print(f"\nFetching {count} daily bars for {len(universe)} codes ({mix}) ...", flush=True)


def _report(result: FetchResult, universe: list[Instrument], out: Path, elapsed: float) -> None:
    from alltick_frames.output import print_failures

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
    "data_dir",
    "fetch_daily",
    "run",
    "sample_universe",
]
