"""The async client: :class:`AllTick`."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from alltick_frames import errors, frames, planner
from alltick_frames.budget import Budget
from alltick_frames.codes import DEFAULT_BASE_URL
from alltick_frames.errors import Failure
from alltick_frames.intervals import Interval
from alltick_frames.jobs import BatchJob, KlineJob, outside_plan, unauthorized
from alltick_frames.plans import BATCH_KLINE, KLINE, Plan, get_plan
from alltick_frames.quotes import QuotesMixin
from alltick_frames.result import FetchResult, FetchStats
from alltick_frames.runner import RetryPolicy, Runner
from alltick_frames.transport import Secret, Transport

#: Failure kinds worth asking again by default: the rest are permanent (a bad code stays bad).
RETRYABLE_KINDS = frozenset({"transport", "rate-limited", "daily-cap", "left-out", "cancelled"})


class AllTick(QuotesMixin):
    """An async AllTick client that stays inside its plan.

    >>> async with AllTick(plan="basic") as client:          # doctest: +SKIP
    ...     result = await client.klines(["AAPL.US", "EURUSD"], "1d", count=250)
    ...     result.data, result.failures

    ``token`` defaults to ``$ALLTICK_TOKEN``; ``plan`` is a built-in plan name (``free``,
    ``basic``, ``premium``, ``professional``, ``all-hk``, ``all-cn``, ``all-us``), a plan file
    (``.json``/``.toml``) or a :class:`~alltick_frames.plans.Plan`; ``base_url`` defaults to
    ``$ALLTICK_BASE_URL`` or AllTick's production host.

    Options: ``timeout`` per request in seconds; ``retry`` a
    :class:`~alltick_frames.runner.RetryPolicy`; ``concurrency`` the most calls in flight
    (default: enough to use the plan's rate); ``raise_on_failure`` to raise
    :class:`~alltick_frames.errors.FetchFailed` instead of returning failure rows;
    ``guard`` the budget's safety margin in seconds.
    """

    def __init__(
        self,
        token: str | None = None,
        plan: str | Plan | Path = "basic",
        base_url: str | None = None,
        *,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        concurrency: int | None = None,
        raise_on_failure: bool = False,
        budget: Budget | None = None,
        guard: float | None = None,
    ) -> None:
        token = token if token is not None else os.environ.get("ALLTICK_TOKEN")
        if not token:
            raise ValueError("no AllTick token: pass token=... or set ALLTICK_TOKEN")
        self.plan = get_plan(plan)
        self.base_url = (base_url or os.environ.get("ALLTICK_BASE_URL") or DEFAULT_BASE_URL).rstrip(
            "/"
        )
        self._token = Secret(token)
        self.retry_policy = retry or RetryPolicy()
        self.concurrency = concurrency or default_concurrency(self.plan)
        self.raise_on_failure = raise_on_failure
        options = {} if guard is None else {"guard": guard}
        self.budget = budget or Budget.for_token(self.plan, token, **options)
        self._transport = Transport(
            self.base_url, self._token, timeout=timeout, connections=self.concurrency
        )

    def __repr__(self) -> str:
        return f"AllTick(plan={self.plan.name!r}, base_url={self.base_url!r})"

    async def __aenter__(self) -> AllTick:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the HTTP session."""
        await self._transport.close()

    def _runner(self, stats: FetchStats) -> Runner:
        return Runner(
            self._transport,
            self.budget,
            stats,
            retry=self.retry_policy,
            concurrency=self.concurrency,
        )

    async def klines(
        self,
        codes: str | Iterable[str],
        interval: str | int | Interval = "1d",
        count: int | None = None,
        start: planner.TimeLike | None = None,
        end: planner.TimeLike | None = None,
    ) -> FetchResult:
        """History bars for many codes, one ``/kline`` page of up to 500 bars per call.

        Give ``count`` for the newest N bars (up to ``end`` if given), or ``start`` (and
        optionally ``end``) for a time range; with neither, one page (500 bars) per code.
        FX, crypto and metals are paged back as far as the plan's history reaches. Stocks and
        indices cannot be paged: they get their latest 500 bars, and a failure row says what
        could not be fetched. Bad input raises ValueError before any call.
        """
        started = time.monotonic()
        req = planner.kline_request(codes, interval, count, start, end, now=time.time())
        stats = FetchStats(route=KLINE)
        job = KlineJob(req, self.plan)
        blocked = outside_plan(req.codes, self.plan)
        failures = unauthorized(blocked, self.plan, KLINE, str(req.interval))
        todo = [c for c in req.codes if c not in blocked]
        failures += await self._runner(stats).run(job, job.calls(todo))
        data, shortfalls = job.frame()
        request = {
            "method": "klines",
            "codes": req.code_order,
            "interval": str(req.interval),
            "count": count,
            "start": start,
            "end": end,
        }
        return self._result(data, failures + shortfalls, stats, started, request)

    async def latest(
        self,
        codes: str | Iterable[str],
        intervals: str | int | Interval | Sequence[str | int | Interval] = ("1m",),
        count: int = 1,
    ) -> FetchResult:
        """The newest ``count`` (1 or 2) bars of each code and interval, via ``/batch-kline``.

        Groups (code x interval) are packed up to the plan's cap per call. The newest bar is
        usually still forming: its close is the latest price.
        """
        started = time.monotonic()
        groups = planner.latest_groups(codes, intervals, count)
        stats = FetchStats(route=BATCH_KLINE)
        job = BatchJob()
        infos = list(dict.fromkeys(c for c, _ in groups))
        blocked = set(outside_plan(infos, self.plan))
        failures = [
            f
            for c, i in groups
            if c in blocked
            for f in unauthorized([c], self.plan, BATCH_KLINE, str(i))
        ]
        todo = [g for g in groups if g[0] not in blocked]
        chunks = planner.pack_groups(todo, self.plan.batch_groups, count)
        failures += await self._runner(stats).run(job, [job.call(c) for c in chunks])
        data = job.frame(todo, count)
        request = {
            "method": "latest",
            "codes": [c.code for c in infos],
            "intervals": list(dict.fromkeys(str(i) for _, i in groups)),
            "count": count,
        }
        return self._result(data, failures + job.left_out, stats, started, request)

    async def retry(self, result: FetchResult, *, everything: bool = False) -> FetchResult:
        """Ask again for the failed items of ``result`` and merge them into a new result.

        By default only failures that can heal are retried (faults, rate limits, the daily cap,
        items the server left out); ``everything=True`` retries every failed code.
        """
        failures = result.failures
        if not everything:
            failures = failures[failures["kind"].isin(RETRYABLE_KINDS)]
        if failures.empty:
            return result
        request = dict(result.request)
        method = request.pop("method")
        retry_codes = set(failures["code"])
        request["codes"] = [c for c in request["codes"] if c in retry_codes]
        fresh: FetchResult = await getattr(self, method)(**request)
        kept = result.failures.drop(failures.index)
        data = frames.finalize_klines([result.data, fresh.data], result.request["codes"])
        merged_failures = pd.concat([kept, fresh.failures], ignore_index=True)
        fresh.stats.wall_time += result.stats.wall_time
        return FetchResult(data, errors.sort_failures(merged_failures), fresh.stats, result.request)

    def _result(
        self,
        data: pd.DataFrame,
        failures: list[Failure],
        stats: FetchStats,
        started: float,
        request: dict[str, Any],
    ) -> FetchResult:
        stats.rows = len(data)
        stats.wall_time = time.monotonic() - started
        result = FetchResult(data, errors.failures_frame(failures), stats, request)
        if self.raise_on_failure:
            result.raise_for_failures()
        return result


def default_concurrency(plan: Plan) -> int:
    """Enough calls in flight to use the plan's rate when a call takes up to ~0.5 s."""
    rate = plan.all_endpoints or max(plan.endpoint_rates.values(), key=lambda r: r.calls / r.per)
    return max(2, min(32, math.ceil(rate.calls / rate.per * 0.5) + 1))
