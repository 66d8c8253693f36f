"""``alltick-frames stream``: live trades and order books into rolling Parquet parts.

::

    alltick-frames stream --codes AAPL.US,700.HK,BTCUSDT --duration 60 --out ticks.parquet

``--out ticks.parquet`` is a directory: ``ticks.parquet/trades/part-00000.parquet``, ...
and ``ticks.parquet/depth/part-00000.parquet``, ..., each part written (atomically) once it
holds ``--part-rows`` rows or ``--part-seconds`` have passed, so a killed job keeps all but
its last part. Read a kind back whole with ``pd.read_parquet("ticks.parquet/trades")``.
Exit status 0 when every code arrived and nothing was lost, 3 otherwise (``--failures``
says what), 4 for a missing or refused token, 2 for a mistake on the command line.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path
from typing import Any, TextIO

import pandas as pd

from alltick_frames.cli import (
    EXIT_HELP,
    EXIT_OK,
    EXIT_PARTIAL,
    NoToken,
    UsageError,
    _codes_options,
    _help_formatter,
    _output_path,
    _wrap,
    gather_codes,
    print_failures,
    write_table,
)
from alltick_frames.live.stream import Stream
from alltick_frames.live.wire import KINDS

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
        parents=[_codes_options()],
        description=_wrap(
            "Live trades and order books over AllTick's WebSocket, inside the plan's socket "
            "limits: codes spread over the plan's connections, heartbeats, reconnects with "
            "resubscription. Rows have the columns of `fetch trades` and `fetch depth`. Codes "
            "that never arrive and trades a dropped socket may have lost are failure rows."
        ),
        epilog=f"{EXAMPLES}\n{EXIT_HELP}",
        formatter_class=_help_formatter,
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


class Parts:
    """Rolling Parquet parts of one kind under ``root/kind/``."""

    def __init__(self, root: Path, kind: str, rows: int, seconds: float) -> None:
        self.dir = root / kind
        self.rows, self.seconds = rows, seconds
        self.written = 0
        self._frames: list[pd.DataFrame] = []
        self._since: float | None = None

    def add(self, frame: pd.DataFrame, now: float) -> None:
        self._frames.append(frame)
        self._since = now if self._since is None else self._since
        if sum(map(len, self._frames)) >= self.rows or now - self._since >= self.seconds:
            self.flush()

    def flush(self) -> None:
        if not self._frames:
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        path = self.dir / f"part-{self.written:05d}.parquet"
        partial = path.with_suffix(".parquet.tmp")
        pd.concat(self._frames, ignore_index=True).to_parquet(partial, index=False)
        partial.replace(path)
        self.written += 1
        self._frames, self._since = [], None


class ProgressLine:
    """``12s  4,512 msgs  372/s  trades 3,010  books 1,502  codes 48/50  sockets 2 ...``: in
    place on a terminal, a line every 10 s otherwise."""

    def __init__(self, stream: Stream, parts: dict[str, Parts], file: TextIO) -> None:
        self.stream, self.parts, self.file = stream, parts, file
        self.tty = file.isatty()

    def line(self, rate: float) -> str:
        s, stream = self.stream.stats, self.stream
        arrived = set().union(*stream.arrived.values())
        written = sum(p.written for p in self.parts.values())
        return (
            f"{stream.elapsed:5.0f}s  {s.messages:,} msgs  {rate:,.0f}/s  trades {s.trades:,}  "
            f"books {s.books:,}  codes {len(arrived)}/{len(stream.asked)}  "
            f"sockets {stream.sockets}  reconnects {s.reconnects}  parts {written}"
        )

    def last(self) -> None:
        """The final state, with the average rate, on a line of its own."""
        rate = self.stream.stats.messages / max(self.stream.elapsed, 1e-9)
        start = "\r" if self.tty else ""
        print(f"{start}{self.line(rate)} (average)", file=self.file, flush=True)

    async def run(self) -> None:
        clock = self.stream.clock
        last, then, shown = 0, clock.now(), clock.now()
        while True:
            await clock.sleep(1.0)
            now, count = clock.now(), self.stream.stats.messages
            rate = (count - last) / max(now - then, 1e-9)
            last, then = count, now
            if self.tty:
                print("\r" + self.line(rate), end="", file=self.file, flush=True)
            elif now - shown >= 10:
                print(self.line(rate), file=self.file, flush=True)
                shown = now


def _stream_of(args: argparse.Namespace) -> Stream:
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
    failures_out = _output_path(args.failures, "--failures")
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
        asyncio.run(_run(stream, parts, None if args.quiet else sys.stderr))
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


async def _run(stream: Stream, parts: dict[str, Parts], progress: TextIO | None) -> None:
    async with stream:
        line = None if progress is None else ProgressLine(stream, parts, progress)
        ticker = None if line is None else asyncio.create_task(line.run())
        try:
            async for frame in stream:
                kind = frame.attrs["kind"]
                if kind in parts:
                    parts[kind].add(frame, stream.clock.now())
        finally:
            if line is not None and ticker is not None:
                ticker.cancel()
                line.last()


def summary(stream: Stream, parts: dict[str, Parts]) -> str:
    """One line on what the stream received and where it went."""
    s = stream.stats
    arrived = set().union(*stream.arrived.values())
    text = (
        f"stream: {stream.elapsed:.1f}s, {s.trades:,} trades and {s.books:,} books from "
        f"{len(arrived)} of {len(stream.asked)} codes; {s.connects} connection(s), "
        f"{s.reconnects} reconnect(s)"
    )
    for kind, part in parts.items():
        if part.written:
            text += f"; {part.written} {kind} part(s) in {part.dir}"
    return text
