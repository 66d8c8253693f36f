"""``alltick-frames fetch WHAT``: fetch klines, latest bars, trades, books, static information
or trading halts into a Parquet or CSV file."""

from __future__ import annotations

import argparse
import os
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from alltick_frames.cli.common import (
    EXIT_HELP,
    EXIT_OK,
    EXIT_PARTIAL,
    FetchStopped,
    NoToken,
    check_conflicts,
    codes_options,
    connection_options,
    dataset_dir,
    gather_codes,
    help_formatter,
    output_options,
    output_path,
    progress_choice,
    split_codes,
    wrap,
)

if TYPE_CHECKING:
    from alltick_frames.api.result import FetchResult

#: ``fetch`` targets: command-line name -> client method.
METHODS: dict[str, str] = {
    "klines": "klines",
    "latest": "latest",
    "trades": "trades",
    "depth": "depth",
    "info": "static_info",
    "suspensions": "suspensions",
}

_FETCH_HELP: dict[str, tuple[str, str]] = {
    "klines": (
        "history bars (OHLCV) for many codes",
        "History bars through /kline, one page of up to 500 bars per call, from the disk "
        "cache when it has them. Give --count for the newest N bars, or --start (and "
        "--end) for a range; with neither, the newest 500. FX, crypto and metals are paged "
        "back as far as the plan reaches; stocks and indices serve only their latest 500 "
        "bars, and a failure row says what could not be fetched.",
    ),
    "latest": (
        "the newest 1-2 bars of many codes and intervals",
        "The newest bars through /batch-kline, many (code, interval) groups per call. The "
        "newest bar is usually still forming: its close is the latest price.",
    ),
    "trades": (
        "the latest trade of each code",
        "The latest trade per code through /trade-tick (no history): time (UTC), price, "
        "volume, turnover, direction.",
    ),
    "depth": (
        "the latest order book of each code",
        "The latest order book per code through /depth-tick, in long form: one row per "
        "(code, side, level). 1 level for FX, metals and US stocks; 5 for crypto and "
        "A-shares; 10 for HK.",
    ),
    "info": (
        "static information on stocks",
        "Names, exchange, board, currency, lot size, share counts and per-share figures "
        "through /static_info. Stocks only: other codes (indices too) become failure rows.",
    ),
    "suspensions": (
        "trading halts of one exchange",
        "Trading halts of the past year on SSE, NYSE or NASDAQ, newest notice first, "
        "from AllTick's suspension service (1 call per minute per exchange on every plan).",
    ),
}


def add_fetch_parser(sub: Any) -> None:
    fetch = sub.add_parser(
        "fetch",
        help="fetch data into a file (klines, latest, trades, depth, info, suspensions)",
        description=wrap(
            "Fetch AllTick data into a Parquet or CSV file, inside the plan's limits. Items "
            "that cannot be fetched are listed in the failures table, never dropped. "
            "`alltick-frames fetch WHAT --help` for the options of each."
        ),
        epilog=EXIT_HELP,
        formatter_class=help_formatter,
    )
    what = fetch.add_subparsers(dest="what", required=True, metavar="WHAT")
    connection, output = connection_options(), output_options()
    for name, (short, long) in _FETCH_HELP.items():
        parents = [connection, output]
        if name != "suspensions":
            parents.insert(0, codes_options())
        parser = what.add_parser(
            name,
            help=short,
            description=wrap(long),
            epilog=_fetch_epilog(name),
            parents=parents,
            formatter_class=help_formatter,
        )
        parser.set_defaults(handler=run, method=METHODS[name])
        if name == "klines":
            bars = parser.add_argument_group("bars")
            bars.add_argument(
                "--interval",
                default="1d",
                help="bar size: 1m 5m 15m 30m 1h 2h 4h 1d 1w 1M, or AllTick's kline_type 1..10 "
                "(stocks' 2h/4h are built from their 1h bars; default: 1d)",
            )
            bars.add_argument("--count", type=int, help="the newest N bars of each code")
            bars.add_argument(
                "--start",
                help="first bar time: a date (2024-01-02, read as UTC), an ISO time with a "
                "zone (2024-01-02T09:30Z) or Unix seconds (1704187800)",
            )
            bars.add_argument("--end", help="last bar time, like --start (default: now)")
            bars.add_argument(
                "--completeness",
                type=Path,
                metavar="FILE",
                help="write the completeness table to FILE (.parquet or .csv): per code, the "
                "bars the exchange calendar expects, those that came, the missing ones",
            )
        elif name == "latest":
            bars = parser.add_argument_group("bars")
            bars.add_argument(
                "--intervals",
                default="1m",
                help="comma-separated bar sizes, e.g. 1m,1d (default: 1m)",
            )
            bars.add_argument(
                "--count",
                type=int,
                default=1,
                choices=(1, 2),
                help="bars per code and interval: 1 or 2 (AllTick's cap; default: 1)",
            )
        elif name == "suspensions":
            halts = parser.add_argument_group("halts")
            halts.add_argument(
                "--exchange",
                required=True,
                type=str.lower,
                choices=("sse", "nyse", "nasdaq"),
                help="which exchange's halts",
            )


def _fetch_epilog(name: str) -> str:
    examples = {
        "klines": "alltick-frames fetch klines --codes-file data/hk.csv --count 250 "
        "--out hk.parquet",
        "latest": "alltick-frames fetch latest --codes EURUSD,BTCUSDT --intervals 1m,1d",
        "trades": "alltick-frames fetch trades --codes-file data/crypto.csv --out trades.csv",
        "depth": "alltick-frames fetch depth --codes 700.HK,BTCUSDT",
        "info": "alltick-frames fetch info --codes-file data/cn.csv --out info.parquet",
        "suspensions": "alltick-frames fetch suspensions --exchange sse --out halts.csv",
    }
    return f"example:\n  {examples[name]}\n\n{EXIT_HELP}"


def _request(args: argparse.Namespace) -> tuple[list[Any], dict[str, Any]]:
    """Positional and keyword arguments of the client method ``args.method``, checked by the
    client's own rules (ValueError) before anything heavy is imported: a mistake in the
    request is reported at once, not after pandas and aiohttp have loaded."""
    if args.method == "suspensions":
        return [args.exchange], {}
    from alltick_frames.core import planner
    from alltick_frames.core.codes import validate_codes

    codes = gather_codes(args)
    if args.method == "klines":
        kwargs = {
            "interval": _number_or_text(args.interval),
            "count": args.count,
            "start": _number_or_text(args.start),
            "end": _number_or_text(args.end),
        }
        planner.kline_request(codes, **kwargs, now=time.time())
        return [codes], kwargs
    if args.method == "latest":
        intervals = [_number_or_text(i) for i in split_codes(args.intervals)]
        kwargs = {"intervals": intervals, "count": args.count}
        planner.latest_groups(codes, **kwargs)
        return [codes], kwargs
    validate_codes(codes)
    return [codes], {}


_NUMBER = re.compile(r"\s*-?\d+(\.\d+)?\s*")


def _number_or_text(text: str | None) -> int | float | str | None:
    """A number for a numeric option value (``--interval 8``, ``--start 1714000000``), so the
    command line means what the Python API means; any other text as it is."""
    if text is None or not _NUMBER.fullmatch(text):
        return text
    return float(text) if "." in text else int(text)


#: Stands in for the token of a dry run without one: nothing is sent, only planned.
DRY_RUN_TOKEN = "dry-run-without-token"


def make_client(args: argparse.Namespace) -> Any:
    """The :class:`~alltick_frames.api.client.AllTick` the connection options describe."""
    token = args.token if args.token is not None else os.environ.get("ALLTICK_TOKEN")
    if not token and getattr(args, "dry_run", False):
        token = DRY_RUN_TOKEN
    if not token:
        raise NoToken(
            "no AllTick token: pass --token or set ALLTICK_TOKEN (`alltick-frames demo` and "
            "`--dry-run` need none)"
        )
    from alltick_frames.api.client import AllTick

    plan = args.plan_file if args.plan_file is not None else (args.plan or "basic")
    cache: bool | Path = False if args.no_cache else (args.cache_dir or True)
    return AllTick(
        token,
        plan,
        args.base_url,
        cache=cache,
        shared_cache=args.shared_cache,
        progress=progress_choice(args),
        budget=args.budget,
    )


def _estimate(client: Any, method: str, call_args: list[Any], kwargs: dict[str, Any]) -> str:
    if hasattr(client, "estimate"):
        estimate = client.estimate(method, *call_args, **kwargs)
        lines = [f"dry run, no call made: {estimate}"]
        lines += [f"note: {note}" for note in getattr(estimate, "notes", [])]
        return "\n".join(lines)
    calls = getattr(client, f"_calls_for_{method}")(*call_args, **kwargs)
    calls = getattr(calls, "calls", calls)
    text = ", ".join(f"{n} {e}" for e, n in sorted(calls.items()) if n) or "no calls"
    return f"dry run, no call made: {text}"


def _check_arguments(
    client: Any, method: str, call_args: list[Any], kwargs: dict[str, Any]
) -> None:
    """Check what :func:`_request` could not check without the client (a static_info list with
    no stock, say), without a call and without reading the cache: a damaged series found there
    is the fetch's to heal and to report in its ``stats.notes``, which a read beforehand would
    leave silent."""
    if method not in ("klines", "latest"):
        getattr(client, f"_calls_for_{method}")(*call_args, **kwargs)


async def _fetch_async(
    client: Any, method: str, call_args: list[Any], kwargs: dict[str, Any]
) -> FetchResult:
    async with client:
        # Every argument is checked first (a ValueError: a mistake in the command); after
        # that, an error comes from the fetch, never from the command line.
        _check_arguments(client, method, call_args, kwargs)
        try:
            return await getattr(client, method)(*call_args, **kwargs)
        except (ValueError, TypeError) as exc:
            raise FetchStopped(
                f"the fetch stopped on an unexpected error (please report it): {exc!r}"
            ) from exc


def run(args: argparse.Namespace) -> int:
    """Run ``fetch``: write what arrived, say what did not; the exit status says which."""
    check_conflicts(args)
    dataset = dataset_dir(args.out, args.method)
    out = None if dataset is not None else output_path(args.out, "--out")
    failures_out = output_path(args.failures, "--failures")
    completeness_out = output_path(getattr(args, "completeness", None), "--completeness")
    call_args, kwargs = _request(args)
    client = make_client(args)
    import asyncio

    from alltick_frames.output import print_failures, print_head, summary, write_table

    if args.dry_run:
        try:
            print(_estimate(client, args.method, call_args, kwargs))
        finally:
            asyncio.run(client.close())
        if not (args.token or os.environ.get("ALLTICK_TOKEN")):
            print("note: no token given, so calls already spent today are not counted")
        return EXIT_OK
    if dataset is not None:
        kwargs["out"] = dataset
    result = asyncio.run(_fetch_async(client, args.method, call_args, kwargs))
    if out is not None:
        write_table(result.data, out)
    if failures_out is not None:
        write_table(result.failures, failures_out)
    if completeness_out is not None:
        write_table(result.completeness, completeness_out)
    if not args.quiet:
        print(summary(args.method, result))
        for note in result.stats.notes:
            print(f"cache: {note}")
        if out is not None:
            print(f"wrote {len(result.data):,} rows to {out}")
        elif dataset is not None:
            print(f"wrote {len(result.data):,} rows to {dataset}/ (a Parquet dataset)")
        else:
            print_head(result.data)
        if not result.ok:
            print_failures(result.failures, saved_to=failures_out)
    return EXIT_OK if result.ok else EXIT_PARTIAL
