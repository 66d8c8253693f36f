"""The ``alltick-frames`` command line: fetch into files, look after the cache, demo, emulate.

Every command has ``--help``. The exit codes (:data:`~alltick_frames.cli.common.EXIT_CODES`)
are meant for scheduled jobs: 0 when everything arrived, 3 when some items failed (the data
that did arrive is still written, and ``--failures`` says what is missing), 2 for a mistake
in the command, 4 when the token is missing or refused, 1 for anything else.

One module per command (:mod:`~alltick_frames.cli.fetch`, :mod:`~alltick_frames.cli.cache`,
:mod:`~alltick_frames.cli.budget`, :mod:`~alltick_frames.cli.demo`,
:mod:`~alltick_frames.cli.stream`; ``emulate`` comes from
:mod:`alltick_frames.emulator.cli`) and :mod:`~alltick_frames.cli.common` for what they
share. Building the parser imports neither pandas nor aiohttp: each command imports what it
needs when it runs.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence
from typing import Any

from alltick_frames.cli.budget import add_budget_parser
from alltick_frames.cli.cache import add_cache_parser
from alltick_frames.cli.common import (
    EXIT_AUTH,
    EXIT_ERROR,
    EXIT_HELP,
    EXIT_USAGE,
    FetchStopped,
    NoToken,
    help_formatter,
)
from alltick_frames.cli.demo import add_demo_parser
from alltick_frames.cli.fetch import add_fetch_parser
from alltick_frames.cli.stream import add_stream_parser

__all__ = ["build_parser", "main"]

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
  alltick-frames budget show
  alltick-frames emulate --plan basic

{EXIT_HELP}
"""

#: The one-line help of ``emulate`` in the command list, while its options are not loaded.
EMULATE_HELP = "run a local AllTick emulator"


def build_parser(*, emulate: bool = False) -> argparse.ArgumentParser:
    """The ``alltick-frames`` argument parser (every subcommand, with its help).

    The ``emulate`` command's options come from the emulator, which needs aiohttp; they are
    added only with ``emulate=True`` (:func:`main` asks for them when that is the command).
    Without it, ``emulate`` is listed but takes no options.
    """
    from alltick_frames import __version__

    parser = argparse.ArgumentParser(
        prog="alltick-frames",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=help_formatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_fetch_parser(sub)
    add_cache_parser(sub)
    add_budget_parser(sub)
    add_demo_parser(sub)
    add_stream_parser(sub)
    if emulate:
        from alltick_frames.emulator.cli import add_emulate_parser

        add_emulate_parser(sub)
    else:
        sub.add_parser("emulate", help=EMULATE_HELP)
    return parser


def _command(argv: Sequence[str]) -> str | None:
    """The command word of ``argv`` (the top-level parser's own options take no values)."""
    return next((arg for arg in argv if not arg.startswith("-")), None)


def _fail(parser: argparse.ArgumentParser, status: int, message: str) -> int:
    print(f"{parser.prog}: error: {message}", file=sys.stderr)
    return status


def _warning_printer(prog: str) -> Any:
    """``warnings.showwarning`` for the command line: the cache's warnings as one plain line
    (what happened and what was done), every other warning as Python prints it."""
    shown = warnings.showwarning

    def show(message: Any, category: type[Warning], *args: Any, **kwargs: Any) -> None:
        if category.__name__ == "CacheWarning":
            print(f"{prog}: warning: {message}", file=sys.stderr)
        else:
            shown(message, category, *args, **kwargs)

    return show


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``); return the exit status.

    argparse's own usage errors exit with status 2 by raising SystemExit.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(emulate=_command(argv) == "emulate")
    args = parser.parse_args(argv)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _warning_printer(parser.prog)
            return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        return _fail(parser, 130, "interrupted")
    except Exception as exc:
        status = _status(exc)
        if status is None:
            raise
        return _fail(parser, status, str(exc))


def _status(exc: Exception) -> int | None:
    """The exit status of the error a command stopped with; None for a bug (raised as is).

    The package's own errors are imported last: their module imports pandas, which a usage
    error, found before any data was touched, should not wait for.
    """
    if isinstance(exc, NoToken):
        return EXIT_AUTH
    if isinstance(exc, FetchStopped):
        return EXIT_ERROR
    if isinstance(exc, ValueError):  # UsageError and bad input found before any call
        return EXIT_USAGE
    if isinstance(exc, OSError):
        return EXIT_ERROR
    from alltick_frames.core.errors import AllTickError, AuthError

    if isinstance(exc, AuthError):
        return EXIT_AUTH
    if isinstance(exc, AllTickError):
        return EXIT_ERROR
    return None
