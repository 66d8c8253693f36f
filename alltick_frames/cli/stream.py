"""``alltick-frames stream``: live trades and order books into rolling Parquet parts.

::

    alltick-frames stream --codes AAPL.US,700.HK,BTCUSDT --duration 60 --out ticks.parquet

``--out ticks.parquet`` is a directory: ``ticks.parquet/trades/part-00000.parquet``, ...
and ``ticks.parquet/depth/part-00000.parquet``, ..., each part written (atomically) once it
holds ``--part-rows`` rows or ``--part-seconds`` have passed, so a killed job keeps all but
its last part. Read a kind back whole with ``pd.read_parquet("ticks.parquet/trades")``.
Exit status 0 when every code arrived and nothing was lost, 3 otherwise (``--failures``
says what), 4 for a missing or refused token, 2 for a mistake on the command line. The
stream itself lives in :mod:`alltick_frames.live`, imported when the command runs.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from alltick_frames.cli.common import (
    EXIT_HELP,
    EXIT_OK,
    EXIT_PARTIAL,
    NoToken,
    UsageError,
    codes_options,
    gather_codes,
    help_formatter,
    output_path,
    wrap,
)

if TYPE_CHECKING:
    from alltick_frames.live.stream import Stream

EXAMPLES = """\
examples:
  alltick-frames stream --codes AAPL.US,700.HK,BTCUSDT --duration 60 --out ticks.parquet
  alltick-frames stream --codes-file data/crypto.csv --no-depth --out trades.parquet
  alltick-frames stream --codes EURUSD,GOLD --duration 30          # progress and a summary only
"""


def add_stream_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``stream`` on the ``alltick-frames`` command line."""
    parser = subparsers.add_parser(
        "stream",
        help="stream live trades and order books (WebSocket) into Parquet parts",
        parents=[codes_options()],
        description=wrap(
            "Live trades and order books over AllTick's WebSocket, inside the plan's socket "
            "limits: codes spread over the plan's connections, heartbeats, reconnects with "
            "resubscription. Rows have the columns of `fetch trades` and `fetch depth`. Codes "
            "that never arrive and trades a dropped socket may have lost are failure rows."
        ),
        epilog=f"{EXAMPLES}\n{EXIT_HELP}",
        formatter_class=help_formatter,
    )
    what = parser.add_argument_group("what to stream")
    what.add_argument("--no-trades", action="store_true", help="no trades, order books only")
    what.add_argument("--no-depth", action="store_true", help="no order books, trades only")
    what.add_argument(
        "--depth-level", type=int, metavar="N", help="book levels (default: all, at most 10)"
    )
    what.add_argument(
        "--duration", type=float, metavar="SECONDS", help="stop after this long (default: Ctrl-C)"
    )
    what.add_argument(
        "--silence-timeout", type=float, default=60.0, metavar="SECONDS",
        help="a code without a push this long after subscribing is a failure row (default 60)",
    )  # fmt: skip
    out = parser.add_argument_group("output")
    out.add_argument(
        "--out", type=Path, metavar="DIR",
        help="a new directory for the parts (e.g. ticks.parquet); without it, only progress "
        "and a summary",
    )  # fmt: skip
    out.add_argument(
        "--failures", type=Path, metavar="FILE",
        help="the failures table (.parquet or .csv), written even when empty",
    )  # fmt: skip
    out.add_argument(
        "--part-rows", type=int, default=100_000, metavar="N", help="rows per part (default 100000)"
    )
    out.add_argument(
        "--part-seconds",
        type=float,
        default=60.0,
        metavar="S",
        help="seconds per part (default 60)",
    )
    out.add_argument("--quiet", "-q", action="store_true", help="no progress line, no summary")
    conn = parser.add_argument_group("connection")
    conn.add_argument("--token", help="AllTick token (default: $ALLTICK_TOKEN); never printed")
    conn.add_argument("--plan", help="your plan (default: basic); socket caps follow it")
    conn.add_argument("--plan-file", type=Path, metavar="PATH", help="a custom plan file")
    conn.add_argument(
        "--base-url", help="AllTick host (default: $ALLTICK_BASE_URL or https://quote.alltick.co)"
    )
    parser.set_defaults(handler=run)
    return parser


def _stream_of(args: argparse.Namespace) -> Stream:
    from alltick_frames.live.stream import Stream

    if args.no_trades and args.no_depth:
        raise UsageError("--no-trades and --no-depth leave nothing to stream")
    if args.plan and args.plan_file:
        raise UsageError("--plan and --plan-file cannot be given together")
    token = args.token if args.token is not None else os.environ.get("ALLTICK_TOKEN")
    if not token:
        raise NoToken("no AllTick token: pass --token or set ALLTICK_TOKEN")
    return Stream(
        gather_codes(args),
        token=token,
        plan=args.plan_file or args.plan or "basic",
        base_url=args.base_url,
        trades=not args.no_trades,
        depth=not args.no_depth,
        depth_level=args.depth_level,
        duration=args.duration,
        silence_timeout=args.silence_timeout,
    )


def run(args: argparse.Namespace) -> int:
    """Stream until ``--duration`` ends (or Ctrl-C), writing parts; the exit status."""
    import asyncio

    from alltick_frames.live.command import Parts, run_stream, summary
    from alltick_frames.live.wire import KINDS
    from alltick_frames.output import print_failures, write_table

    failures_out = output_path(args.failures, "--failures")
    if args.out is not None and args.out.exists() and any(args.out.iterdir()):
        raise UsageError(f"--out {args.out} exists and is not empty: choose a new directory")
    if args.part_rows < 1 or args.part_seconds <= 0:
        raise UsageError("--part-rows and --part-seconds must be above 0")
    stream = _stream_of(args)
    parts = {
        kind: Parts(args.out, kind, args.part_rows, args.part_seconds)
        for kind in KINDS
        if args.out is not None
    }
    try:
        asyncio.run(run_stream(stream, parts, None if args.quiet else sys.stderr))
    finally:
        for part in parts.values():
            part.flush()
        if failures_out is not None:
            write_table(stream.failures, failures_out)
    failures = stream.failures
    if not args.quiet:
        print(summary(stream, parts))
        if not failures.empty:
            print_failures(failures, saved_to=failures_out)
    return EXIT_OK if failures.empty else EXIT_PARTIAL
