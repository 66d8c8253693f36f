"""The ``alltick-frames`` command line: fetch into files, look after the cache, demo, emulate.

Every command has ``--help``. The exit codes (:data:`EXIT_CODES`) are meant for scheduled
jobs: 0 when everything arrived, 3 when some items failed (the data that did arrive is still
written, and ``--failures`` says what is missing), 2 for a mistake in the command, 4 when
the token is missing or refused, 1 for anything else.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

import pandas as pd

from alltick_frames.api.result import FetchResult
from alltick_frames.core.errors import AllTickError, AuthError

#: Exit statuses of every command.
EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_PARTIAL = 3
EXIT_AUTH = 4
EXIT_CODES: dict[int, str] = {
    EXIT_OK: "everything asked for was fetched",
    EXIT_ERROR: "another error: a request AllTick refused as malformed, an unwritable file",
    EXIT_USAGE: "usage error: bad options, a malformed code, an unreadable codes file",
    EXIT_PARTIAL: "some items failed; what arrived was still written (see --failures)",
    EXIT_AUTH: "no token was given, or AllTick refused it (ret 401)",
}

EXIT_HELP = "exit status:\n" + "\n".join(f"  {code}  {text}" for code, text in EXIT_CODES.items())

#: ``fetch`` targets: command-line name -> client method.
METHODS: dict[str, str] = {
    "klines": "klines",
    "latest": "latest",
    "trades": "trades",
    "depth": "depth",
    "info": "static_info",
    "suspensions": "suspensions",
}

OUTPUT_SUFFIXES = (".parquet", ".pq", ".csv")

DESCRIPTION = """\
AllTick market data (stocks, indices, FX, crypto, metals) as tables, in bulk, as fast as your
plan allows and never faster. Failed items are listed, never lost.

Start with `alltick-frames demo`: it needs no token and no network.
"""

EPILOG = f"""\
examples:
  alltick-frames demo
  alltick-frames fetch klines --codes AAPL.US,700.HK,EURUSD --interval 1d --count 250 \\
      --out bars.parquet --failures failures.csv
  alltick-frames fetch klines --codes-file data/us.csv --start 2024-01-01 --dry-run
  alltick-frames fetch suspensions --exchange nasdaq --out halts.csv
  alltick-frames cache info
  alltick-frames emulate --plan basic

{EXIT_HELP}
"""


class UsageError(ValueError):
    """A mistake in the command line that argparse itself cannot see (exit status 2)."""


class NoToken(Exception):
    """No token was given and none is in the environment (exit status 4)."""


# --------------------------------------------------------------------------- parsers


def _help_formatter(prog: str) -> argparse.HelpFormatter:
    return argparse.RawDescriptionHelpFormatter(prog, max_help_position=32)


def _wrap(text: str) -> str:
    """A paragraph wrapped for a raw-description help screen."""
    return textwrap.fill(" ".join(text.split()), width=88)


def _connection_options() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("connection")
    group.add_argument(
        "--token",
        default=None,
        help="AllTick token (default: $ALLTICK_TOKEN); never printed or logged",
    )
    # Mutually exclusive options are checked by _check_conflicts: argparse (3.11) moves a
    # parent parser's exclusive groups out of their argument group in --help.
    group.add_argument(
        "--plan",
        default=None,
        help="your plan: free, basic, premium, professional, all-hk, all-cn, all-us "
        "(default: basic). Pacing, chunk sizes and estimates follow it",
    )
    group.add_argument(
        "--plan-file",
        type=Path,
        metavar="PATH",
        help="a custom plan (.json or .toml with the plan table's fields)",
    )
    group.add_argument(
        "--base-url",
        default=None,
        help="AllTick host (default: $ALLTICK_BASE_URL or https://quote.alltick.co); "
        "point it at `alltick-frames emulate` to try things offline",
    )
    _cache_options(group, exclusive=False)
    group.add_argument(
        "--quiet",
        "-q",
        action="store_true",
        help="no progress bar and no summary; the exit status says how it went",
    )
    group.add_argument(
        "--progress",
        action="store_true",
        help="show a progress bar even when stderr is not a terminal",
    )
    return parent


#: Options that cannot be given together.
_CONFLICTS = (("plan", "plan_file"), ("no_cache", "cache_dir"), ("quiet", "progress"))


def _check_conflicts(args: argparse.Namespace) -> None:
    for a, b in _CONFLICTS:
        if getattr(args, a, None) and getattr(args, b, None):
            flag = "--" + a.replace("_", "-"), "--" + b.replace("_", "-")
            raise UsageError(f"{flag[0]} and {flag[1]} cannot be given together")


def _cache_options(group: Any, exclusive: bool = True) -> None:
    cache = group.add_mutually_exclusive_group() if exclusive else group
    cache.add_argument(
        "--no-cache", action="store_true", help="neither read nor write the disk cache of bars"
    )
    cache.add_argument(
        "--cache-dir",
        type=Path,
        metavar="DIR",
        help="the disk cache (default: $ALLTICK_CACHE_DIR or ~/.cache/alltick-frames)",
    )


def _codes_options() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("codes (at least one of --codes, --codes-file)")
    group.add_argument(
        "--codes",
        metavar="A,B,...",
        help="comma-separated AllTick codes, e.g. AAPL.US,700.HK,600519.SH,EURUSD,BTCUSDT,GOLD "
        "(case-sensitive)",
    )
    group.add_argument(
        "--codes-file",
        type=Path,
        action="append",
        default=[],
        metavar="PATH",
        help="a file of codes: one per line (# starts a comment), or a CSV with a header "
        "and a 'code' column, like data/us.csv (repeatable)",
    )
    group.add_argument(
        "--codes-column",
        metavar="NAME",
        help="the column holding the codes in CSV files (default: code)",
    )
    return parent


def _output_options() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("output")
    group.add_argument(
        "--out",
        type=Path,
        metavar="FILE",
        help="write the data to FILE (.parquet or .csv); without it, print a summary and "
        "the first rows",
    )
    group.add_argument(
        "--failures",
        type=Path,
        metavar="FILE",
        help="write the failures table to FILE (.parquet or .csv); one row per item that "
        "did not arrive, with what it means and what to do. Written even when empty",
    )
    group.add_argument(
        "--dry-run",
        action="store_true",
        help="make no call: print how many calls per endpoint the job needs, how long the "
        "plan makes them take, and what share of today's cap they use",
    )
    return parent


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
        "static information on stocks and indices",
        "Names, exchange, board, currency, lot size, share counts and per-share figures "
        "through /static_info. Stocks and indices only: other codes become failure rows.",
    ),
    "suspensions": (
        "trading halts of one exchange",
        "Trading halts of the past year on SSE, NYSE or NASDAQ, newest notice first, "
        "from AllTick's suspension service (1 call per minute per exchange on every plan).",
    ),
}


def _add_fetch_parser(sub: Any) -> None:
    fetch = sub.add_parser(
        "fetch",
        help="fetch data into a file (klines, latest, trades, depth, info, suspensions)",
        description=_wrap(
            "Fetch AllTick data into a Parquet or CSV file, inside the plan's limits. Items "
            "that cannot be fetched are listed in the failures table, never dropped. "
            "`alltick-frames fetch WHAT --help` for the options of each."
        ),
        epilog=EXIT_HELP,
        formatter_class=_help_formatter,
    )
    what = fetch.add_subparsers(dest="what", required=True, metavar="WHAT")
    connection, output = _connection_options(), _output_options()
    for name, (short, long) in _FETCH_HELP.items():
        parents = [connection, output]
        if name != "suspensions":
            parents.insert(0, _codes_options())
        parser = what.add_parser(
            name,
            help=short,
            description=_wrap(long),
            epilog=_fetch_epilog(name),
            parents=parents,
            formatter_class=_help_formatter,
        )
        parser.set_defaults(handler=_fetch, method=METHODS[name])
        if name == "klines":
            bars = parser.add_argument_group("bars")
            bars.add_argument(
                "--interval",
                default="1d",
                help="bar size: 1m 5m 15m 30m 1h 2h 4h 1d 1w 1M (2h/4h not for stocks; "
                "default: 1d)",
            )
            bars.add_argument("--count", type=int, help="the newest N bars of each code")
            bars.add_argument(
                "--start",
                help="first bar time: a date (2024-01-02, read as UTC) or ISO time with a "
                "zone (2024-01-02T09:30Z)",
            )
            bars.add_argument("--end", help="last bar time, like --start (default: now)")
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
            halts.add_argument(
                "--page-size",
                type=int,
                help="ask for pages of this many records (default: everything at once)",
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


_SOURCE_HELP = (
    "only this source: bars are kept apart by where they came from, the host by default "
    "(quote.alltick.co), or the client's source= (the notebooks use alltick-emulator)"
)


def _add_cache_parser(sub: Any) -> None:
    cache = sub.add_parser(
        "cache",
        help="look after the disk cache of bars (info, clear, vacuum)",
        description=_wrap(
            "The disk cache keeps closed bars for good and the forming bar for a short "
            "while, so repeated jobs fetch only what is new. These commands look at it and "
            "tidy it; they make no call to AllTick."
        ),
        formatter_class=_help_formatter,
    )
    what = cache.add_subparsers(dest="what", required=True, metavar="ACTION")
    where = argparse.ArgumentParser(add_help=False)
    where.add_argument(
        "--cache-dir",
        type=Path,
        metavar="DIR",
        help="the cache (default: $ALLTICK_CACHE_DIR or ~/.cache/alltick-frames)",
    )
    series = argparse.ArgumentParser(add_help=False)
    series.add_argument("--codes", metavar="A,B,...", help="only these codes")
    series.add_argument("--interval", help="only this bar size, e.g. 1d")
    series.add_argument("--source", help=_SOURCE_HELP)
    info = what.add_parser(
        "info",
        help="size and one row per stored series",
        description="Where the cache is, its size on disk, and one row per stored series "
        "(code, interval, bars, first and last closed bar, forming bar, when it was fetched).",
        parents=[where, series],
    )
    info.set_defaults(handler=_cache_info)
    clear = what.add_parser(
        "clear",
        help="delete stored series (all, or by code and interval)",
        description="Delete stored series: every one, or those of --codes and/or --interval. "
        "The next fetch of a deleted series fetches it again.",
        parents=[where, series],
    )
    clear.set_defaults(handler=_cache_clear)
    vacuum = what.add_parser(
        "vacuum",
        help="remove orphaned pieces and repair broken indexes",
        description="Remove stored pieces no series refers to (left by a killed process) and "
        "repair series that refer to missing pieces (those spans are fetched again).",
        parents=[where],
    )
    vacuum.set_defaults(handler=_cache_vacuum)


def build_parser() -> argparse.ArgumentParser:
    """The ``alltick-frames`` argument parser (every subcommand, with its help)."""
    from alltick_frames import __version__
    from alltick_frames.demo import add_demo_parser
    from alltick_frames.emulator.cli import add_emulate_parser

    parser = argparse.ArgumentParser(
        prog="alltick-frames",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=_help_formatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_fetch_parser(sub)
    _add_cache_parser(sub)
    add_demo_parser(sub)
    add_emulate_parser(sub)
    return parser


# --------------------------------------------------------------------------- codes


def split_codes(text: str) -> list[str]:
    """``"AAPL.US, 700.HK,,EURUSD"`` -> ``["AAPL.US", "700.HK", "EURUSD"]``."""
    return [c.strip() for c in text.split(",") if c.strip()]


def read_codes_file(path: Path, column: str | None = None) -> list[str]:
    """The codes in ``path``: a CSV with a header (codes in ``column``, default ``code``), or
    one code per line. Blank lines and lines starting with ``#`` are skipped.

    A file is read as CSV when it ends in ``.csv`` or its first line holds a comma;
    ``column`` applies to CSV files only.
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise UsageError(f"cannot read codes file {path}: {exc.strerror or exc}") from None
    lines = [
        line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")
    ]
    if not lines:
        raise UsageError(f"codes file {path} holds no codes")
    if path.suffix.lower() == ".csv" or "," in lines[0]:
        reader = csv.DictReader(lines)
        name = column or "code"
        fields = [f.strip() for f in reader.fieldnames or []]
        if name not in fields:
            raise UsageError(
                f"codes file {path} has no column {name!r} (columns: {', '.join(fields)}); "
                "choose one with --codes-column"
            )
        reader.fieldnames = fields
        return [row[name].strip() for row in reader if (row.get(name) or "").strip()]
    codes = [line.strip() for line in lines]
    return codes[1:] if codes[0].lower() == "code" else codes


def gather_codes(args: argparse.Namespace) -> list[str]:
    """Codes from ``--codes`` and every ``--codes-file``, in order, each once."""
    codes = split_codes(args.codes) if args.codes else []
    for path in args.codes_file:
        codes += read_codes_file(path, args.codes_column)
    if not args.codes and not args.codes_file:
        raise UsageError("give the codes with --codes A,B or --codes-file PATH")
    if not codes:
        raise UsageError("no codes given")
    return list(dict.fromkeys(codes))


# --------------------------------------------------------------------------- fetch


def _output_path(path: Path | None, option: str) -> Path | None:
    if path is not None and path.suffix.lower() not in OUTPUT_SUFFIXES:
        raise UsageError(f"{option} must end in .parquet or .csv, got {str(path)!r}")
    return path


def write_table(df: pd.DataFrame, path: Path) -> None:
    """Write ``df`` as Parquet or CSV, by the file's suffix (parent directories created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".csv":
        df.to_csv(path, index=False)
    else:
        df.to_parquet(path, index=False)


def _request(args: argparse.Namespace) -> tuple[list[Any], dict[str, Any]]:
    """Positional and keyword arguments of the client method ``args.method``."""
    if args.method == "suspensions":
        return [args.exchange], {"page_size": args.page_size}
    codes = gather_codes(args)
    if args.method == "klines":
        return [codes], {
            "interval": args.interval,
            "count": args.count,
            "start": args.start,
            "end": args.end,
        }
    if args.method == "latest":
        return [codes], {"intervals": split_codes(args.intervals), "count": args.count}
    return [codes], {}


def _progress(args: argparse.Namespace) -> bool | None:
    if getattr(args, "quiet", False):
        return False
    if getattr(args, "progress", False):
        return True
    return None


#: Stands in for the token of a dry run without one: nothing is sent, only planned.
DRY_RUN_TOKEN = "dry-run-without-token"


def make_client(args: argparse.Namespace) -> Any:
    """The :class:`~alltick_frames.api.client.AllTick` the connection options describe."""
    from alltick_frames.api.client import AllTick

    token = args.token if args.token is not None else os.environ.get("ALLTICK_TOKEN")
    if not token and getattr(args, "dry_run", False):
        token = DRY_RUN_TOKEN
    if not token:
        raise NoToken(
            "no AllTick token: pass --token or set ALLTICK_TOKEN (`alltick-frames demo` and "
            "`--dry-run` need none)"
        )
    plan = args.plan_file if args.plan_file is not None else (args.plan or "basic")
    cache: bool | Path = False if args.no_cache else (args.cache_dir or True)
    return AllTick(token, plan, args.base_url, cache=cache, progress=_progress(args))


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


async def _fetch_async(
    client: Any, method: str, call_args: list[Any], kwargs: dict[str, Any]
) -> FetchResult:
    async with client:
        return await getattr(client, method)(*call_args, **kwargs)


def _fetch(args: argparse.Namespace) -> int:
    _check_conflicts(args)
    out = _output_path(args.out, "--out")
    failures_out = _output_path(args.failures, "--failures")
    call_args, kwargs = _request(args)
    client = make_client(args)
    if args.dry_run:
        try:
            print(_estimate(client, args.method, call_args, kwargs))
        finally:
            asyncio.run(client.close())
        if not (args.token or os.environ.get("ALLTICK_TOKEN")):
            print("note: no token given, so calls already spent today are not counted")
        return EXIT_OK
    result = asyncio.run(_fetch_async(client, args.method, call_args, kwargs))
    if out is not None:
        write_table(result.data, out)
    if failures_out is not None:
        write_table(result.failures, failures_out)
    if not args.quiet:
        print(summary(args.method, result))
        if out is not None:
            print(f"wrote {len(result.data):,} rows to {out}")
        else:
            print_head(result.data)
        if not result.ok:
            print_failures(result.failures, saved_to=failures_out)
    return EXIT_OK if result.ok else EXIT_PARTIAL


# --------------------------------------------------------------------------- printing


def _span(values: pd.Series) -> str:
    values = values.dropna()
    if values.empty:
        return ""
    first, last = values.min(), values.max()
    fmt = "%Y-%m-%d" if (first.hour, first.minute, last.hour, last.minute) == (0,) * 4 else None
    show = (lambda t: t.strftime(fmt)) if fmt else (lambda t: t.strftime("%Y-%m-%d %H:%M:%SZ"))
    return f", {show(first)} to {show(last)}"


def summary(method: str, result: FetchResult) -> str:
    """One line on what arrived and what it cost, e.g. for ``klines``:
    ``klines: 23,250 rows, 93 codes, 2023-05-17 to 2024-05-15; 95 calls in 4.1s``."""
    data = result.data
    parts = [f"{method}: {len(data):,} rows"]
    if "code" in data and len(data):
        parts[0] += f", {data['code'].nunique()} codes"
    for column in ("timestamp", "time", "published_at"):
        if column in data:
            parts[0] += _span(data[column])
            break
    stats = result.stats
    calls = ", ".join(f"{n} {e}" for e, n in sorted(stats.calls.items()) if n) or "no calls"
    text = f"{parts[0]}; {stats.total_calls} calls ({calls}) in {stats.wall_time:.1f}s"
    if stats.cached:
        text += f"; {stats.cached} from the cache"
    if stats.retries:
        text += f"; {stats.retries} retries"
    return text


def print_head(data: pd.DataFrame, rows: int = 10, file: TextIO | None = None) -> None:
    if data.empty:
        return
    with pd.option_context("display.width", 120, "display.max_columns", 12):
        print(data.head(rows).to_string(index=False), file=file or sys.stdout)
    if len(data) > rows:
        print(f"... {len(data) - rows:,} more rows (write them all with --out)", file=file)


def print_failures(
    failures: pd.DataFrame, saved_to: Path | None = None, rows: int = 20, file: TextIO | None = None
) -> None:
    """The failures table, short: one line per item, then what to do once per kind."""
    kinds = ", ".join(f"{n} {k}" for k, n in failures["kind"].value_counts().items())
    print(f"{len(failures)} item(s) failed ({kinds}):", file=file)
    shown = failures[["code", "interval", "endpoint", "kind", "msg"]].head(rows).copy()
    shown["interval"] = shown["interval"].fillna("")
    shown["msg"] = shown["msg"].str.slice(0, 70)
    print(shown.to_string(index=False), file=file)
    if len(failures) > rows:
        print(f"... {len(failures) - rows} more", file=file)
    print("what to do:", file=file)
    for kind, action in failures.drop_duplicates("kind")[["kind", "action"]].itertuples(
        index=False
    ):
        print(f"  {kind}: {action}", file=file)
    if saved_to is not None:
        print(f"wrote the failures table to {saved_to}", file=file)


# --------------------------------------------------------------------------- cache


def _store(args: argparse.Namespace) -> Any:
    from alltick_frames.store import BarStore, default_cache_dir

    root = args.cache_dir or default_cache_dir()
    if not (Path(root) / "bars").exists():
        return None, root
    return BarStore(root), root


def _cache_info(args: argparse.Namespace) -> int:
    store, root = _store(args)
    if store is None:
        print(f"no cache at {root} yet")
        return EXIT_OK
    with store:
        table = store.describe(interval=args.interval, source=args.source)
        if args.codes:
            table = table[table["code"].isin(split_codes(args.codes))]
        size = store.size_bytes()
    print(f"cache: {root}")
    print(f"size on disk: {size / 1e6:.1f} MB; {len(table)} series")
    if not table.empty:
        columns = ["source", "code", "interval", "bars", "first", "last", "forming", "fetched_at"]
        table = table.assign(fetched_at=table["fetched_at"].dt.floor("s"))
        with pd.option_context("display.width", 160, "display.max_rows", 500):
            print(table[columns].to_string(index=False))
    return EXIT_OK


def _cache_clear(args: argparse.Namespace) -> int:
    store, root = _store(args)
    if store is None:
        print(f"no cache at {root}: nothing to clear")
        return EXIT_OK
    codes = split_codes(args.codes) if args.codes else [None]
    with store:
        removed = sum(store.clear(code, args.interval, args.source) for code in codes)
    print(f"deleted {removed} series from {root}")
    return EXIT_OK


def _cache_vacuum(args: argparse.Namespace) -> int:
    store, root = _store(args)
    if store is None:
        print(f"no cache at {root}: nothing to vacuum")
        return EXIT_OK
    with store:
        report = store.vacuum()
        size = store.size_bytes()
    print(
        f"removed {report.orphan_chunks} orphaned piece(s), repaired "
        f"{report.repaired_series} series; {size / 1e6:.1f} MB on disk"
    )
    return EXIT_OK


# --------------------------------------------------------------------------- main


def _fail(parser: argparse.ArgumentParser, status: int, message: str) -> int:
    print(f"{parser.prog}: error: {message}", file=sys.stderr)
    return status


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``); return the exit status.

    argparse's own usage errors exit with status 2 by raising SystemExit.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except (AuthError, NoToken) as exc:
        return _fail(parser, EXIT_AUTH, str(exc))
    except ValueError as exc:  # UsageError and bad input found before any call
        return _fail(parser, EXIT_USAGE, str(exc))
    except AllTickError as exc:
        return _fail(parser, EXIT_ERROR, str(exc))
    except OSError as exc:
        return _fail(parser, EXIT_ERROR, str(exc))
    except KeyboardInterrupt:
        return _fail(parser, 130, "interrupted")


if __name__ == "__main__":
    sys.exit(main())
