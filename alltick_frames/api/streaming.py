"""Results as they arrive: :meth:`AllTick.iter_klines`, mixed into
:class:`~alltick_frames.api.client.AllTick`.

A job's codes are fetched a batch at a time (:data:`ITER_BATCH` codes by default), and each
batch is yielded as soon as its series are complete: a
:class:`~alltick_frames.api.result.FetchResult` of its own, with the batch's bars, failure
rows, completeness rows and stats. Nothing else is kept, so memory is bounded by one batch in
flight, not by the job::

    async with AllTick(plan="basic") as client:
        parts = client.iter_klines(codes, "1m", count=50_000)
        async for part in parts:
            part.data.to_parquet(f"bars-{part.request['codes'][0]}.parquet")
            print(part.failures)            # this batch's failures
            del part                        # (or the next batch is fetched beside it)
        print(parts.summary.failures)       # every failure, every stat, no bars

Every batch is fetched at the same market moment (the clock read when ``iter_klines`` was
called), so the parts together hold exactly the bars one :meth:`AllTick.klines` call returns.
``klines(..., out=DIR)`` and the command line's ``--out DIR`` run the same batches and write
each batch's series to the Parquet dataset as it completes: a job killed half way leaves the
series done so far, whole, and a rerun writes only what is missing.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterable
from typing import TYPE_CHECKING, Any

import pandas as pd

from alltick_frames.api.result import FetchResult, FetchStats
from alltick_frames.core import errors, planner
from alltick_frames.core.intervals import Interval

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from alltick_frames.api.client import AllTick
    from alltick_frames.store.dataset import BarDataset

__all__ = ["ITER_BATCH", "KlineParts", "StreamMixin", "kline_request_dict", "route"]

#: Codes fetched together by :meth:`StreamMixin.iter_klines` unless told otherwise: a chain
#: of pages asks one page at a time, so 12 codes keep 12 calls in flight.
ITER_BATCH = 12


def kline_request_dict(
    req: planner.KlineRequest, count: int | None, start: Any, end: Any
) -> dict[str, Any]:
    """The ``request`` a k-line result carries (what :meth:`AllTick.retry` asks again)."""
    return {
        "method": "klines",
        "codes": req.code_order,
        "interval": str(req.interval),
        "count": count,
        "start": start,
        "end": end,
    }


def route(stats: FetchStats) -> str:
    """The endpoints a job's calls went to (``kline``, ``batch-kline+kline``), or ``cache``."""
    return "+".join(sorted(e for e, n in stats.calls.items() if n)) or "cache"


class KlineParts:
    """The parts of a k-line job, one per batch of codes, as an async iterator (see the
    module docstring). After the last part, :attr:`summary` holds every failure row, the
    completeness table and the summed stats (and no bars)."""

    def __init__(
        self,
        client: AllTick,
        req: planner.KlineRequest,
        now: float,
        request: dict[str, Any],
        dataset: BarDataset | None = None,
        batch: int = ITER_BATCH,
        *,
        raises: bool = True,
    ) -> None:
        if batch < 1:
            raise ValueError(f"batch must be at least 1, got {batch}")
        self._client, self._req, self._now = client, req, now
        self._request, self._dataset, self._batch = request, dataset, batch
        self._started = time.monotonic()
        self._failures: list[pd.DataFrame] = []
        self._tables: list[pd.DataFrame] = []
        self._stats = FetchStats()
        self._rows = 0
        self._raises = raises
        self._done = False

    def __aiter__(self) -> AsyncIterator[FetchResult]:
        return self._parts()

    async def _parts(self) -> AsyncIterator[FetchResult]:
        if self._done:
            raise RuntimeError("a job's parts can be iterated once")
        self._done = True
        client, codes = self._client, self._req.codes
        if self._dataset is not None:
            self._dataset.sweep()  # what a killed job left there
        for k in range(0, len(codes), self._batch):
            started = time.monotonic()
            sub = planner.KlineRequest(
                codes[k : k + self._batch],
                self._req.interval,
                self._req.count,
                self._req.start,
                self._req.end,
            )
            data, failures, stats, table = await client._gather(sub, self._now)
            if self._dataset is not None:
                self._dataset.write(data)
            request = {**self._request, "codes": sub.code_order}
            part = client._result(
                data, failures, stats, started, request, table, self._now, raises=False
            )
            self._failures.append(part.failures)
            self._tables.append(part.completeness)
            self._stats.absorb(stats)
            self._rows += len(data)
            del data
            yield part
            del part  # the next batch is fetched without this one (the caller may drop it)
        if client.raise_on_failure and self._raises:
            self.summary.raise_for_failures()

    @property
    def summary(self) -> FetchResult:
        """Every part's failure rows and completeness rows, and their summed stats, with no
        bars (``rows`` counts the bars the parts held): complete once the parts have ended."""
        order = self._req.code_order
        stats = FetchStats()
        stats.absorb(self._stats)
        stats.route = route(stats)
        stats.rows = self._rows
        stats.wall_time = time.monotonic() - self._started
        stats.failover = self._client.budget.ledger.failover or ""
        failed = [f for f in self._failures if len(f)]
        failures = (
            errors.sort_failures(pd.concat(failed, ignore_index=True), order)
            if failed
            else errors.failures_frame([], order)
        )
        from alltick_frames import frames
        from alltick_frames.frames import completeness

        table = completeness.combine(self._tables, order)
        result = FetchResult(frames.empty_klines(), failures, stats, self._request)
        result.completeness, result.asof = table, self._now
        return result

    async def gather(self) -> pd.DataFrame:
        """Run every part and return their bars as one frame (what ``klines(..., out=)``
        does: the dataset is written part by part, the frame returned whole)."""
        from alltick_frames import frames

        data = [part.data async for part in self]
        if not data:
            return frames.empty_klines()
        return data[0] if len(data) == 1 else pd.concat(data, ignore_index=True)


class StreamMixin:
    """``iter_klines`` for :class:`~alltick_frames.api.client.AllTick`."""

    if TYPE_CHECKING:  # provided by AllTick
        clock: Callable[[], float]

    def iter_klines(
        self,
        codes: str | Iterable[str],
        interval: str | int | Interval = "1d",
        count: int | None = None,
        start: planner.TimeLike | None = None,
        end: planner.TimeLike | None = None,
        *,
        batch: int = ITER_BATCH,
        out: str | Path | None = None,
    ) -> KlineParts:
        """:meth:`klines`, a batch of ``batch`` codes at a time: ``async for part in ...``
        yields a :class:`~alltick_frames.api.result.FetchResult` per batch as soon as its
        series are complete, in the caller's order of codes, each with its own failure rows
        and completeness rows; ``.summary`` holds them all once the parts have ended.

        Memory is bounded by one batch, not by the job. ``out`` names a Parquet dataset
        directory to write each batch to as it completes (see :meth:`klines`). Bad input
        raises ValueError here, before any call; a client made with
        ``raise_on_failure=True`` raises after the last part if any item failed.
        """
        from alltick_frames.store.dataset import BarDataset

        now = self.clock()
        req = planner.kline_request(codes, interval, count, start, end, now=now)
        request = kline_request_dict(req, count, start, end)
        dataset = None if out is None else BarDataset(out)
        return KlineParts(self, req, now, request, dataset, batch)  # type: ignore[arg-type]
