"""What every fetch returns: the data, every item that failed, and how the job went."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from alltick_frames.core.errors import FetchFailed


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
    #: What the cache healed on the way: a damaged or missing part of a series, dropped and
    #: fetched again (a damaged or unwritable cache as a whole gets a CacheWarning).
    notes: list[str] = field(default_factory=list)
    rows: int = 0
    wall_time: float = 0.0
    #: Empty while the budget's shared ledger held; else what happened (Redis unreachable
    #: since when, and the share of the plan the job was paced at from then on).
    failover: str = ""

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
            "notes": list(self.notes),
            "rows": self.rows,
            "wall_time": round(self.wall_time, 3),
            "failover": self.failover,
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
    ``stats`` says how the job went. ``request`` records what was asked, so
    ``client.retry(result)`` can ask again for the failed items only.
    """

    data: pd.DataFrame
    failures: pd.DataFrame
    stats: FetchStats
    request: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def ok(self) -> bool:
        """True when nothing failed."""
        return self.failures.empty

    def raise_for_failures(self) -> FetchResult:
        """Raise :class:`~alltick_frames.core.errors.FetchFailed` if anything failed; else self."""
        if not self.ok:
            raise FetchFailed(self.failures, self)
        return self

    def __repr__(self) -> str:
        return f"<FetchResult {len(self.data)} rows, {len(self.failures)} failures; {self.stats}>"
