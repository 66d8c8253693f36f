"""What ``alltick-frames stream`` runs: live trades and order books into rolling Parquet parts.

::

    alltick-frames stream --codes AAPL.US,700.HK,BTCUSDT --duration 60 --out ticks.parquet

Parts are written atomically (a temporary file, then a rename), so a killed job keeps all but
its last part. The command's options live in :mod:`alltick_frames.cli.stream`.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TextIO

import pandas as pd

from alltick_frames.live.stream import Stream


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


async def run_stream(stream: Stream, parts: dict[str, Parts], progress: TextIO | None) -> None:
    """Run ``stream``, adding its frames to ``parts`` and showing progress on ``progress``."""
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
