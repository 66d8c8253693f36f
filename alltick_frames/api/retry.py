"""Asking again: :meth:`AllTick.retry`, mixed into :class:`~alltick_frames.api.client.AllTick`.

Failed items are asked for again and merged into a new result. Most are asked for whole: the
same request, for the failed codes only. A ``gap`` is different: a run of bars the exchange
calendar expects inside a series that did not arrive
(:mod:`alltick_frames.frames.completeness`). Asking for the code's whole range again would
cost every page of it, and with the cache nothing at all (the store holds the span the hole
is in). So each hole is fetched directly, bypassing the cache planner: for FX, crypto and
metals (which page by end time) one chain of exactly its length, for a stock one page reaching
back to its oldest hole. The bars are written to the cache like any other answer, the hole's
bars merged into the result, and the series measured again against the result's own moment
(:attr:`~alltick_frames.api.result.FetchResult.asof`), so a hole that stays is reported again.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import pandas as pd

from alltick_frames.api.result import FetchResult, FetchStats, no_completeness
from alltick_frames.core import errors, planner
from alltick_frames.core.errors import Failure
from alltick_frames.core.plans import Plan

if TYPE_CHECKING:
    from collections.abc import Callable

    from alltick_frames.frames import completeness
    from alltick_frames.run.jobs import Fetched, KlineJob
    from alltick_frames.store import BarStore

__all__ = ["RETRYABLE_KINDS", "RetryMixin"]

#: Failure kinds worth asking again by default: the rest are permanent (a bad code stays bad).
RETRYABLE_KINDS = frozenset(
    {
        "transport",
        "rate-limit",
        "daily-cap",
        "left-out",
        "cancelled",
        "service-error",
        "unreadable",
        "bad-bars",
        "unknown-ret",
        "gap",
    }
)


@dataclass
class Refilled:
    """What filling the holes of some codes brought: the holes' bars, the codes' failure rows
    and completeness rows measured again, and the calls it took."""

    data: pd.DataFrame
    failures: list[Failure] = field(default_factory=list)
    table: pd.DataFrame = field(default_factory=no_completeness)
    stats: FetchStats = field(default_factory=FetchStats)


class RetryMixin:
    """``retry`` for :class:`~alltick_frames.api.client.AllTick`."""

    if TYPE_CHECKING:  # provided by AllTick
        plan: Plan
        store: BarStore | None
        clock: Callable[[], float]

        async def _run_pages(
            self, job: KlineJob, pages: list[planner.KlinePage], stats: FetchStats
        ) -> list[Failure]: ...

    async def retry(self, result: FetchResult, *, everything: bool = False) -> FetchResult:
        """Ask again for the failed items of ``result`` and merge them into a new result.

        By default only failures that can heal are retried (faults, rate limits, the daily cap,
        items the server left out, gaps); ``everything=True`` retries every failed code. A
        ``gap`` is asked for exactly: only the missing bars, not the code's whole range.
        """
        from alltick_frames import frames
        from alltick_frames.frames import completeness
        from alltick_frames.run.answers import trim

        failures = result.failures
        if not everything:
            failures = failures[failures["kind"].isin(RETRYABLE_KINDS)]
        if failures.empty:
            return result
        request = dict(result.request)
        method = request.pop("method")
        code_order = request.get("codes")
        holes = failures["kind"].eq("gap") & (method == "klines")
        again = set(failures.loc[~holes, "code"])
        gapped = [c for c in code_order or [] if c in set(failures.loc[holes, "code"]) - again]
        kept = result.failures.drop(failures.index)
        if gapped:  # measuring those series again reports their shortfalls anew
            kept = kept[~(kept["code"].isin(gapped) & kept["kind"].isin(completeness.KINDS))]
        data, found, stats = [result.data], [kept], FetchStats()
        table = result.completeness
        if again:
            if code_order is not None:  # ask only for the failed codes
                request["codes"] = [c for c in code_order if c in again]
            fresh: FetchResult = await getattr(self, method)(**request)
            data.append(fresh.data)
            found.append(fresh.failures)
            stats.absorb(fresh.stats)
            table = completeness.replace_rows(table, fresh.completeness, code_order or [])
        if gapped:
            filled = await self._refill(result, gapped)
            data.append(filled.data)
            found.append(errors.failures_frame(filled.failures))
            stats.absorb(filled.stats)
            table = completeness.replace_rows(table, filled.table, code_order or [])
        if method in ("klines", "latest"):
            merged_data = frames.finalize_klines(data, code_order or [])
            if gapped:  # the holes' bars make a count request's oldest bars surplus
                merged_data = trim(merged_data, self._asked(result))
        else:
            merged_data = pd.concat(data, ignore_index=True)
        merged = errors.sort_failures(pd.concat(found), code_order)
        stats.wall_time += result.stats.wall_time
        stats.rows = len(merged_data)
        return FetchResult(merged_data, merged, stats, result.request, table, result.asof)

    def _asked(self, result: FetchResult, codes: list[str] | None = None) -> planner.KlineRequest:
        """The k-line request of ``result`` (for ``codes``) as it was read at its moment."""
        asked = result.request
        asof = result.asof if result.asof is not None else self.clock()
        return planner.kline_request(
            codes or asked["codes"], asked["interval"], asked["count"], asked["start"],
            asked["end"], now=asof,
        )  # fmt: skip

    async def _refill(self, result: FetchResult, codes: list[str]) -> Refilled:
        """Fetch exactly the holes that ``codes`` have in ``result``, and measure again."""
        from alltick_frames import frames
        from alltick_frames.frames import completeness, derive
        from alltick_frames.run.answers import trim

        req = self._asked(result, codes)
        asof = result.asof if result.asof is not None else self.clock()
        now = self.clock()
        out = Refilled(frames.empty_klines())
        bars, tables = [], []
        for part in derive.split(req, asof):
            old = result.data[result.data["code"].isin(part.request.code_order)]
            holes = part.measure(old, asof, self.plan).holes
            fetched = await self._fetch_holes(part.fetch, holes, out.stats, now)
            got, failed = fetched.data, fetched.failures
            if part.derived:
                got = derive.derive_bars(got, req.interval, now)
                failed = [replace(f, interval=str(req.interval)) for f in failed]
            fresh = completeness.within(got, holes)
            merged = trim(frames.finalize_klines([old, fresh], part.request.code_order), req)
            measured = part.measure(
                merged, asof, self.plan, {f.code for f in failed}, fetched.attempts,
                fetched.unpaged,
            )  # fmt: skip
            bars.append(fresh)
            out.failures += failed + measured.failures
            tables.append(measured.table)
        out.data = frames.finalize_klines(bars, req.code_order)
        out.table = completeness.combine(tables, req.code_order)
        return out

    async def _fetch_holes(
        self,
        req: planner.KlineRequest,
        holes: list[completeness.Hole],
        stats: FetchStats,
        now: float,
    ) -> Fetched:
        """Run the pages of ``holes`` (bars of ``req.interval``) in rounds of one chain per
        code (a job assembles one chain per code)."""
        from alltick_frames import frames
        from alltick_frames.run.jobs import Fetched, KlineJob

        spans: dict[str, list[tuple[int, int, int]]] = {}
        for hole in holes:
            spans.setdefault(hole.code.code, []).append((hole.lo, hole.hi, hole.bars))
        chains = [
            planner.hole_pages(code, req.interval, spans[code.code], self.plan, now)
            for code in req.codes
            if code.code in spans
        ]
        data, failures, attempts, unpaged = [], [], {}, set()
        for k in range(max(map(len, chains), default=0)):
            pages = [chain[k] for chain in chains if len(chain) > k]
            floors = [p.floor for p in pages if p.floor is not None]
            start = min(floors) if len(floors) == len(pages) else None  # stocks read to now
            span = replace(
                req, codes=tuple(p.code for p in pages), count=None, start=start, end=None
            )
            job = KlineJob(span, self.plan, self.store, now)
            failures += await self._run_pages(job, pages, stats)
            failures += job.rejected
            data.append(job.frame())
            unpaged |= job.unpaged
            for code, calls in job.attempts.items():
                attempts[code] = attempts.get(code, 0) + calls
        return Fetched(frames.finalize_klines(data, req.code_order), failures, attempts, unpaged)
