"""What every fetch returns: the data, every item that failed, and how the job went."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow as pa

from alltick_frames.core.errors import FetchFailed

if TYPE_CHECKING:
    import polars as pl


def no_completeness() -> pd.DataFrame:
    """An empty completeness table: the default of results that measure none. The decoders
    are imported here, on first use, so that importing the client stays light."""
    from alltick_frames.frames.completeness import empty_completeness

    return empty_completeness()


@dataclass
class FetchStats:
    """How a job went. ``calls`` counts HTTP requests sent, retries included."""

    calls: Counter[str] = field(default_factory=Counter)
    #: Requests sent again after a fault or a 429/605.
    retries: int = 0
    #: ``ret`` 429/605 answers seen, by ret (a budgeted client alone on its token sees none).
    rejections: Counter[int] = field(default_factory=Counter)
    #: Transport faults seen, by kind ("timeout", "http-502", "malformed", ...).
    faults: Counter[str] = field(default_factory=Counter)
    #: Calls split in two after a 603, and calls bisected to isolate a 600/604 code.
    splits: int = 0
    bisections: int = 0
    #: Items answered from the disk cache without a call.
    cached: int = 0
    #: Which route a refresh took: "kline", "batch-kline" or "cache".
    route: str = ""
    #: The interval bars were built from when AllTick does not serve the one asked for
    #: (stocks' 2h and 4h bars are built from "1h"); "" when every bar came as served.
    derived_from: str = ""
    #: What the cache healed on the way: a damaged or missing part of a series, dropped and
    #: fetched again (a damaged or unwritable cache as a whole gets a CacheWarning).
    notes: list[str] = field(default_factory=list)
    rows: int = 0
    wall_time: float = 0.0
    #: Empty while the budget's shared ledger held; else what happened (Redis unreachable
    #: since when, and the share of the plan the job was paced at from then on; or the disk
    #: ledger unwritable since when, and the job paced on a ledger in memory).
    failover: str = ""
    #: The budget's guard in force when the job ended (seconds added to every sliding
    #: window; learned unless fixed, see :mod:`alltick_frames.budget.guard`) ...
    guard: float = 0.0
    #: ... and the spread of the calls' latencies it measured (95th minus 5th percentile of
    #: the most recent, seconds; None before two calls were answered).
    latency_spread: float | None = None

    def absorb(self, other: FetchStats) -> None:
        """Add the counts of ``other`` (a second job of the same request) to these."""
        self.calls.update(other.calls)
        self.rejections.update(other.rejections)
        self.faults.update(other.faults)
        self.retries += other.retries
        self.splits += other.splits
        self.bisections += other.bisections
        self.cached += other.cached
        self.route = "+".join(sorted({*self.route.split("+"), *other.route.split("+")} - {""}))
        self.derived_from = self.derived_from or other.derived_from
        self.notes += other.notes
        self.failover = self.failover or other.failover
        self.guard = other.guard or self.guard
        if other.latency_spread is not None:
            self.latency_spread = other.latency_spread

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "calls": dict(self.calls),
            "total_calls": self.total_calls,
            "retries": self.retries,
            "rejections": {str(k): v for k, v in self.rejections.items()},
            "faults": dict(self.faults),
            "splits": self.splits,
            "bisections": self.bisections,
            "cached": self.cached,
            "route": self.route,
            "derived_from": self.derived_from,
            "notes": list(self.notes),
            "rows": self.rows,
            "wall_time": round(self.wall_time, 3),
            "failover": self.failover,
            "guard": round(self.guard, 4),
            "latency_spread": None
            if self.latency_spread is None
            else round(self.latency_spread, 4),
        }

    def __str__(self) -> str:
        calls = ", ".join(f"{k} {v}" for k, v in sorted(self.calls.items())) or "none"
        text = f"{self.rows} rows in {self.wall_time:.2f}s; calls: {calls}"
        if self.cached:
            text += f"; {self.cached} from cache"
        if self.retries:
            text += f"; {self.retries} retries"
        if self.rejections:
            text += f"; rejections {dict(self.rejections)}"
        if self.guard:
            text += f"; guard {self.guard * 1000:.0f} ms"
            if self.latency_spread is not None:
                text += f" (latency spread {self.latency_spread * 1000:.0f} ms)"
        if self.derived_from:
            text += f"; stock bars built from {self.derived_from} bars"
        if self.notes:
            text += f"; {len(self.notes)} cache note(s)"
        if self.failover:
            text += f"; budget failed over: {self.failover}"
        return text


@dataclass
class FetchResult:
    """The outcome of one fetch.

    ``data`` holds everything that arrived; ``failures`` lists every item that did not, one row
    each with the ``ret``, what it means and what to do (empty when all went well);
    ``completeness`` measures k-lines against the exchange calendars; ``stats`` says how the
    job went. ``request`` records what was asked, so
    ``client.retry(result)`` can ask again for the failed items only.
    """

    data: pd.DataFrame
    failures: pd.DataFrame
    stats: FetchStats
    request: dict[str, Any] = field(default_factory=dict, repr=False)
    #: For k-lines: one row per (code, interval), the bars the exchange calendar expects
    #: against the bars that arrived (see :mod:`alltick_frames.frames.completeness`); empty
    #: for the other endpoints.
    completeness: pd.DataFrame = field(default_factory=no_completeness, repr=False)
    #: The market clock (epoch seconds) k-lines were judged complete against.
    asof: float | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        """True when nothing failed."""
        return self.failures.empty

    def raise_for_failures(self) -> FetchResult:
        """Raise :class:`~alltick_frames.core.errors.FetchFailed` if anything failed; else self."""
        if not self.ok:
            raise FetchFailed(self.failures, self)
        return self

    def to_arrow(self) -> pa.Table:
        """``data`` as a :class:`pyarrow.Table`, for DuckDB, Arrow Flight, Parquet writers.

        The columns are handed over, not copied: the text columns are Arrow arrays already,
        and the number and time columns' buffers are shared with the frame (so treat the
        table as read-only while the frame lives). Times stay ``timestamp[ns, tz=UTC]``,
        ``session`` is a ``timestamp[ns]`` of naive midnights.
        """
        return pa.Table.from_pandas(self.data, preserve_index=False)

    def to_polars(self) -> pl.DataFrame:
        """``data`` as a :class:`polars.DataFrame`, built from :meth:`to_arrow` (polars keeps
        the number and time buffers; it re-encodes text in its own string layout).

        Needs polars: ``pip install 'alltick-frames[polars]'``.
        """
        try:
            import polars as pl
        except ImportError:
            raise ImportError(
                "FetchResult.to_polars() needs polars: pip install 'alltick-frames[polars]' "
                "(or pip install polars); to_arrow() works without it"
            ) from None
        frame = pl.from_arrow(self.to_arrow())
        assert isinstance(frame, pl.DataFrame)
        return frame

    def __repr__(self) -> str:
        return f"<FetchResult {len(self.data)} rows, {len(self.failures)} failures; {self.stats}>"
