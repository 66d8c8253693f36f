"""What every command shares: exit codes, option groups, reading codes, usage errors.

Nothing here imports pandas or aiohttp, so building the parser (and ``--help``) stays fast.
"""

from __future__ import annotations

import argparse
import csv
import textwrap
from pathlib import Path
from typing import Any

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

OUTPUT_SUFFIXES = (".parquet", ".pq", ".csv")

SHARED_CACHE_HELP = (
    "use a cache directory that other users can write (refused otherwise: whoever can write "
    "it decides what you read, and its budget ledger paces your token)"
)


class UsageError(ValueError):
    """A mistake in the command line that argparse itself cannot see (exit status 2)."""


class NoToken(Exception):
    """No token was given and none is in the environment (exit status 4)."""


class FetchStopped(Exception):
    """A fetch stopped on an error after its arguments were accepted (exit status 1, never
    the usage status 2: a server's answer is not a mistake in the command)."""


# --------------------------------------------------------------------------- parsers


def help_formatter(prog: str) -> argparse.HelpFormatter:
    """The help layout of every command: descriptions as written, options aligned."""
    return argparse.RawDescriptionHelpFormatter(prog, max_help_position=32)


def wrap(text: str) -> str:
    """A paragraph wrapped for a raw-description help screen."""
    return textwrap.fill(" ".join(text.split()), width=88)


def connection_options() -> argparse.ArgumentParser:
    """Token, plan, host, cache, budget and progress options, as a parent parser."""
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("connection")
    group.add_argument(
        "--token",
        default=None,
        help="AllTick token (default: $ALLTICK_TOKEN); never printed or logged",
    )
    # Mutually exclusive options are checked by check_conflicts: argparse (3.11) moves a
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
    cache_options(group, exclusive=False)
    group.add_argument(
        "--budget",
        metavar="URL",
        default=None,
        help="share the token's budget through Redis, e.g. redis://host:6379/0, with every "
        "process and host using the same URL (default: $ALLTICK_BUDGET_URL; else shared by "
        "the processes using the same cache directory). Needs alltick-frames[redis]",
    )
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


def check_conflicts(args: argparse.Namespace) -> None:
    """UsageError when two options of :func:`connection_options` that exclude each other
    were both given."""
    for a, b in _CONFLICTS:
        if getattr(args, a, None) and getattr(args, b, None):
            flag = "--" + a.replace("_", "-"), "--" + b.replace("_", "-")
            raise UsageError(f"{flag[0]} and {flag[1]} cannot be given together")


def cache_options(group: Any, exclusive: bool = True) -> None:
    """``--no-cache`` and ``--cache-dir`` on ``group`` (exclusive of each other if asked), and
    ``--shared-cache``."""
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
    group.add_argument("--shared-cache", action="store_true", help=SHARED_CACHE_HELP)


def codes_options() -> argparse.ArgumentParser:
    """``--codes``, ``--codes-file`` and ``--codes-column``, as a parent parser."""
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


def output_options() -> argparse.ArgumentParser:
    """``--out``, ``--failures`` and ``--dry-run``, as a parent parser."""
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("output")
    group.add_argument(
        "--out",
        type=Path,
        metavar="FILE|DIR",
        help="write the data to FILE (.parquet or .csv), or for klines to DIR (a name with no "
        "suffix, or a directory): a Parquet dataset, one file per series, that DuckDB and "
        "Polars read; without it, print a summary and the first rows",
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


def output_path(path: Path | None, option: str) -> Path | None:
    """``path`` if it names a table file (.parquet or .csv), else UsageError."""
    if path is not None and path.suffix.lower() not in OUTPUT_SUFFIXES:
        raise UsageError(f"{option} must end in .parquet or .csv, got {str(path)!r}")
    return path


def dataset_dir(path: Path | None, method: str) -> Path | None:
    """``path`` if ``--out`` names a dataset directory (no file suffix, or a directory that
    exists), which only ``klines`` writes; else None."""
    if path is None or not (path.is_dir() or path.suffix == ""):
        return None
    if method != "klines":
        raise UsageError(
            f"--out {path} is a directory (a Parquet dataset), which only klines writes; "
            "give a .parquet or .csv file"
        )
    return path


def progress_choice(args: argparse.Namespace) -> bool | None:
    """The client's ``progress=``: off with ``--quiet``, on with ``--progress``, else auto."""
    if getattr(args, "quiet", False):
        return False
    if getattr(args, "progress", False):
        return True
    return None


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
