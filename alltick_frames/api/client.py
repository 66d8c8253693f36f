"""The async client: :class:`AllTick`."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pandas as pd

from alltick_frames.api.estimate import EstimateMixin
from alltick_frames.api.progress import Progress
from alltick_frames.api.quotes import QuotesMixin
from alltick_frames.api.result import FetchResult, FetchStats
from alltick_frames.api.retry import RetryMixin
from alltick_frames.api.streaming import KlineParts, StreamMixin, kline_request_dict, route
from alltick_frames.core import cache_planner, errors, planner, validate
from alltick_frames.core.codes import DEFAULT_BASE_URL, CodeInfo
from alltick_frames.core.errors import Failure
from alltick_frames.core.intervals import Interval
from alltick_frames.core.plans import BATCH_KLINE, KLINE, Plan, get_plan

# The transport, runner, store, budget and decoders are imported where they are first used
# (building a client, fetching): that keeps `from alltick_frames import AllTick` as light as
# `import pandas`, aiohttp above all (see tests/test_layout.py).
if TYPE_CHECKING:
    from alltick_frames.budget import Budget
    from alltick_frames.live.stream import Stream
    from alltick_frames.run.jobs import Fetched, KlineJob
    from alltick_frames.run.runner import Call, Job, RetryPolicy, Runner
    from alltick_frames.store import BarStore

#: Planning rounds per klines() call: the first fills gaps and refreshes stale tops, the next
#: ones see what those answers revealed (more bars wanted below, a hole a refresh left).
PLANNING_ROUNDS = 3
#: Times a klines() call fetches again the series the cache found damaged while reading them.
HEAL_ROUNDS = 2


class AllTick(QuotesMixin, RetryMixin, EstimateMixin, StreamMixin):
    """An async AllTick client that stays inside its plan.

    >>> async with AllTick(plan="basic") as client:          # doctest: +SKIP
    ...     result = await client.klines(["AAPL.US", "EURUSD"], "1d", count=250)
    ...     result.data, result.failures

    ``token`` defaults to ``$ALLTICK_TOKEN``; ``plan`` is a built-in plan name (``free``,
    ``basic``, ``premium``, ``professional``, ``all-hk``, ``all-cn``, ``all-us``), a plan file
    (``.json``/``.toml``) or a :class:`~alltick_frames.core.plans.Plan`; ``base_url`` defaults to
    ``$ALLTICK_BASE_URL`` or AllTick's production host.

    Bars are cached on disk (``cache=True``, in :func:`~alltick_frames.store.default_cache_dir`;
    a path or a :class:`~alltick_frames.store.BarStore` to choose; ``cache=False`` to bypass).
    The cache directory is a trust boundary: one that other users can write is refused unless
    ``shared_cache=True`` says the sharing is deliberate.
    Closed bars are kept for good; the forming bar is trusted for ``ttl`` (seconds, or a
    function of the interval; default
    :func:`~alltick_frames.core.cache_planner.forming_ttl`). Cached bars are namespaced by
    ``source`` (default: the base URL's host), never by token. With a cache, every process
    using the same directory shares one budget per token. ``budget`` shares it further: a
    ``redis://host:6379/0`` URL (or ``$ALLTICK_BUDGET_URL``) puts it in Redis, for every
    process and host on the token (see :mod:`~alltick_frames.budget.shared`), or pass a
    :class:`~alltick_frames.budget.Budget`.

    Options: ``timeout`` per request in seconds; ``retry`` a
    :class:`~alltick_frames.run.runner.RetryPolicy`; ``concurrency`` the most calls in flight
    (default: enough to use the plan's rate); ``raise_on_failure`` to raise
    :class:`~alltick_frames.core.errors.FetchFailed` instead of returning failure rows; ``guard``
    fixes the budget's safety margin in seconds (by default it is learned, see
    :mod:`~alltick_frames.budget.guard`); ``progress`` True/False to force a progress bar on
    or off (default: on in terminals and notebooks, for long jobs); ``clock`` the market
    clock (epoch seconds) used to judge what is forming and what is stale.
    """

    def __init__(
        self,
        token: str | None = None,
        plan: str | Plan | Path = "basic",
        base_url: str | None = None,
        *,
        cache: bool | str | Path | BarStore = True,
        shared_cache: bool = False,
        source: str | None = None,
        ttl: cache_planner.TTL | None = None,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        concurrency: int | None = None,
        raise_on_failure: bool = False,
        budget: Budget | str | None = None,
        guard: float | None = None,
        progress: bool | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        from alltick_frames.budget import Budget
        from alltick_frames.run.runner import RetryPolicy
        from alltick_frames.run.transport import Secret, Transport
        from alltick_frames.store import BarStore

        token = token if token is not None else os.environ.get("ALLTICK_TOKEN")
        if not token:
            raise ValueError("no AllTick token: pass token=... or set ALLTICK_TOKEN")
        self.plan = get_plan(plan)
        if base_url is not None:
            self.base_url = validate.base_url(base_url)
        elif os.environ.get("ALLTICK_BASE_URL"):
            self.base_url = validate.base_url(os.environ["ALLTICK_BASE_URL"], "$ALLTICK_BASE_URL")
        else:
            self.base_url = DEFAULT_BASE_URL
        timeout = validate.seconds("timeout", timeout)
        self._token = Secret(token)
        self.retry_policy = retry or RetryPolicy()
        self.concurrency = (
            default_concurrency(self.plan)
            if concurrency is None
            else validate.whole("concurrency", concurrency)
        )
        self.raise_on_failure = raise_on_failure
        self.progress = progress
        self.clock = clock
        self._ttl = ttl
        source = source or urlsplit(self.base_url).netloc or self.base_url
        if isinstance(cache, BarStore):
            self.store: BarStore | None = cache
        elif cache is False:
            self.store = None
        else:
            self.store = BarStore(
                None if cache is True else cache, source=source, shared=shared_cache
            )
        options = {} if guard is None else {"guard": guard}
        cache_dir = self.store.root if self.store is not None else None
        self._owns_budget = not isinstance(budget, Budget)
        if isinstance(budget, Budget):
            self.budget = budget
        else:
            self.budget = _budget(budget, self.plan, token, cache_dir, options)
        self._transport = Transport(
            self.base_url, self._token, timeout=timeout, connections=self.concurrency
        )

    def __repr__(self) -> str:
        cache = "off" if self.store is None else str(self.store.root)
        return f"AllTick(plan={self.plan.name!r}, base_url={self.base_url!r}, cache={cache!r})"

    async def __aenter__(self) -> AllTick:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the HTTP session, the cache and the budget ledger this client opened."""
        await self._transport.close()
        if self.store is not None:
            self.store.close()
        if self._owns_budget:
            self.budget.close()

    def stream(
        self, codes: str | Iterable[str], *, trades: bool = True, depth: bool = True, **options: Any
    ) -> Stream:
        """Live trades and order books of ``codes`` over AllTick's WebSocket, on this client's
        token, plan and base URL: ``async with client.stream(codes) as s: async for frame in s``
        (options as :class:`~alltick_frames.live.stream.Stream`)."""
        from alltick_frames.live.stream import Stream

        return Stream(
            codes, token=self._token, plan=self.plan, base_url=self.base_url,
            trades=trades, depth=depth, **options,
        )  # fmt: skip

    def ttl(self, interval: Interval) -> float:
        """Seconds a cached forming bar of ``interval`` is trusted."""
        if self._ttl is None:
            return cache_planner.forming_ttl(interval)
        return self._ttl(interval) if callable(self._ttl) else float(self._ttl)

    def _runner(self, stats: FetchStats, progress: Progress | None = None) -> Runner:
        """A runner on this client's transport, budget and retry policy."""
        from alltick_frames.run.runner import Runner

        return Runner(
            self._transport,
            self.budget,
            stats,
            retry=self.retry_policy,
            concurrency=self.concurrency,
            on_progress=None if progress is None else progress.update,
            on_more=None if progress is None else progress.grow,
        )

    async def _run(
        self, job: Job, calls: list[Call], stats: FetchStats, desc: str
    ) -> list[Failure]:
        """Run ``calls`` of ``job`` with a progress bar (shown for long jobs only)."""
        if not calls:
            return []
        bar = Progress(len(calls), desc, self.progress)
        try:
            return await self._runner(stats, bar).run(job, calls)
        finally:
            bar.close()

    async def _run_pages(
        self, job: KlineJob, pages: list[planner.KlinePage], stats: FetchStats
    ) -> list[Failure]:
        """Run ``pages`` of ``job``; return once every answer is decoded (and stored, so the
        next planning round sees it)."""
        try:
            failures = await self._run(job, job.calls(pages), stats, "klines")
        finally:
            job.flush()  # a run that raised keeps what it fetched
        await job.settle()
        return failures

    # ------------------------------------------------------------------------------ klines

    async def klines(
        self,
        codes: str | Iterable[str],
        interval: str | int | Interval = "1d",
        count: int | None = None,
        start: planner.TimeLike | None = None,
        end: planner.TimeLike | None = None,
        *,
        out: str | Path | None = None,
    ) -> FetchResult:
        """History bars for many codes, one ``/kline`` page of up to 500 bars per call.

        Give ``count`` for the newest N bars (up to ``end`` if given), or ``start`` (and
        optionally ``end``) for a time range; with neither, one page (500 bars) per code.
        FX, crypto and metals are paged back as far as the plan's history reaches. Stocks and
        indices cannot be paged: they get their latest 500 bars, and a failure row says what
        could not be fetched. Bad input raises ValueError before any call.

        With the cache, only what it lacks is fetched: a repeated request makes no call, an
        extended range fetches only its new pages, and series a bar or two behind are
        refreshed through ``/batch-kline`` when that takes fewer calls (``stats.route`` says).

        ``out`` names a directory to write the bars to as well, a Parquet dataset that DuckDB,
        Polars and Spark read (:class:`~alltick_frames.store.dataset.BarDataset`): one file
        per series, merged with what it holds, written even when some items failed, and
        written as the job goes, a batch of series at a time (see :meth:`iter_klines`), so
        that a job stopped half way keeps what it completed.
        """
        from alltick_frames.store.dataset import BarDataset

        started, now = time.monotonic(), self.clock()
        req = planner.kline_request(codes, interval, count, start, end, now=now)
        request = kline_request_dict(req, count, start, end)
        if out is not None:  # written series by series as they complete (see iter_klines)
            parts = KlineParts(self, req, now, request, BarDataset(out), raises=False)
            merged = await parts.gather()
            summary = parts.summary
            return self._result(
                merged, [], summary.stats, started, request, summary.completeness, now,
                failure_rows=summary.failures,
            )  # fmt: skip
        merged, failures, stats, table = await self._gather(req, now)
        return self._result(merged, failures, stats, started, request, table, now)

    async def _gather(
        self, req: planner.KlineRequest, now: float
    ) -> tuple[pd.DataFrame, list[Failure], FetchStats, pd.DataFrame]:
        """Fetch ``req`` at the market moment ``now``: its bars, failure rows, stats and
        completeness table (what :meth:`klines` returns, before it is made a result)."""
        from alltick_frames import frames
        from alltick_frames.frames import completeness, derive
        from alltick_frames.run.answers import trim

        stats = FetchStats()
        mark = self._notes_mark()
        data, failures, table = [], [], []
        for part in derive.split(req, now):
            fetched = await self._fetch(part.fetch, stats, now)
            got, failed = fetched.data, fetched.failures
            if part.derived:
                stats.derived_from = str(part.fetch.interval)
                got = trim(derive.derive_bars(got, req.interval, now), part.request)
                failed = [replace(f, interval=str(req.interval)) for f in failed]
            measured = part.measure(
                got, now, self.plan, {f.code for f in failed}, fetched.attempts, fetched.unpaged
            )
            data.append(got)
            failures += failed + measured.failures
            table.append(measured.table)
        stats.route = route(stats)
        stats.notes = self._notes_since(mark)
        merged = data[0] if len(data) == 1 else frames.finalize_klines(data, req.code_order)
        return merged, failures, stats, completeness.combine(table, req.code_order)

    async def _fetch(self, req: planner.KlineRequest, stats: FetchStats, now: float) -> Fetched:
        """Fetch ``req`` (from the cache where it can): its bars, its failure rows, the calls
        spent per code and the codes found not to page."""
        from alltick_frames.run.jobs import Fetched, KlineJob, outside_plan, unauthorized

        seen = self._notes_mark()  # damage the cache finds from here on is this fetch's
        blocked = outside_plan(req.codes, self.plan)
        failures = unauthorized(blocked, self.plan, KLINE, str(req.interval))
        todo = [c for c in req.codes if c not in blocked]
        job = KlineJob(req, self.plan, self.store, now)
        if self.store is None:
            pages = [planner.first_page(req, c, self.plan) for c in todo]
            failures += await self._run_pages(job, pages, stats)
            data = job.frame()
        else:
            failures += await self._fill(req, todo, job, stats, now)
            data = job.frame()
            for _ in range(HEAL_ROUNDS):  # series the cache found damaged while reading them
                healed = self._healed(req, todo, seen)
                if not healed:
                    break
                seen = len(self.store.notes)
                job.forget(c.code for c in healed)
                cached = stats.cached
                failures += await self._fill(req, healed, job, stats, now)
                stats.cached = cached
                data = job.frame()
        return Fetched(data, failures + job.rejected, job.attempts, job.unpaged)

    def _notes_mark(self) -> int:
        return 0 if self.store is None else len(self.store.notes)

    def _notes_since(self, mark: int) -> list[str]:
        """What the cache healed in series since ``mark`` (its warnings go to ``warnings``)."""
        notes = [] if self.store is None else self.store.notes[mark:]
        return [str(n) for n in notes if n.code is not None]

    def _healed(
        self, req: planner.KlineRequest, todo: Sequence[CodeInfo], mark: int
    ) -> list[CodeInfo]:
        """The codes of ``todo`` whose series the cache found damaged since ``mark``: all of
        them after an event of the whole store (a damaged database moved aside)."""
        assert self.store is not None
        alias, source = str(req.interval), self.store.source
        notes = self.store.notes[mark:]
        if any(n.code is None for n in notes):
            return list(todo)
        hit = {n.code for n in notes if n.source == source and n.interval == alias}
        return [c for c in todo if c.code in hit]

    def _plan_round(
        self, req: planner.KlineRequest, todo: Sequence[CodeInfo], now: float, paged: set[str]
    ) -> tuple[list[cache_planner.SeriesPlan], int]:
        """The plans of the codes of ``todo`` that need pages, and how many need none."""
        assert self.store is not None
        alias = str(req.interval)
        table = self.store.coverage_table([(c.code, alias) for c in todo])
        ttl = self.ttl(req.interval)
        return cache_planner.plan_many(req, todo, table, self.store, self.plan, now, ttl, paged)

    def _batch_route(
        self, plans: Sequence[cache_planner.SeriesPlan]
    ) -> tuple[list[cache_planner.SeriesPlan], list[planner.BatchChunk]]:
        """The series to refresh through /batch-kline, and its calls: when that takes fewer
        calls than one /kline per series (else nothing)."""
        batchable = [p for p in plans if p.batchable]
        groups = [(p.code, p.pages[0].interval) for p in batchable]
        chunks = planner.pack_groups(groups, self.plan.batch_groups, 2)
        return (batchable, chunks) if len(chunks) < len(batchable) else ([], [])

    async def _fill(
        self,
        req: planner.KlineRequest,
        todo: list[CodeInfo],
        job: KlineJob,
        stats: FetchStats,
        now: float,
    ) -> list[Failure]:
        """Fetch what the cache lacks for ``req``, in planning rounds; return failures."""
        from alltick_frames.run.jobs import BatchJob

        assert self.store is not None
        failures: list[Failure] = []
        paged: set[str] = set()
        for round_no in range(PLANNING_ROUNDS):
            needy, served = self._plan_round(req, todo, now, paged)
            if round_no == 0:  # a request of two parts (2h/4h: stocks derived) adds both
                stats.cached += served
            if not needy:
                break
            batch, chunks = self._batch_route(needy) if round_no == 0 else ([], [])
            if batch:
                batch_job = BatchJob(store=self.store, now=now)
                calls = [batch_job.call(c) for c in chunks]
                failures += await self._run(batch_job, calls, stats, "refresh")
                failures += batch_job.left_out + batch_job.rejected
            pages = [page for p in needy if p not in batch for page in p.pages]
            paged.update(page.code.code for page in pages)
            failures += await self._run_pages(job, pages, stats)
            # A code found not to page is not planned again: its gaps would only be asked for
            # (and ignored) once more.
            failed = {f.code for f in [*failures, *job.rejected]} | job.unpaged
            todo = [c for c in todo if c.code not in failed]
        return failures

    # ------------------------------------------------------------------------------ latest

    async def latest(
        self,
        codes: str | Iterable[str],
        intervals: str | int | Interval | Sequence[str | int | Interval] = ("1m",),
        count: int = 1,
    ) -> FetchResult:
        """The newest ``count`` (1 or 2) bars of each code and interval, via ``/batch-kline``.

        Groups (code x interval) are packed up to the plan's cap per call. The newest bar is
        usually still forming: its close is the latest price. Answers also refresh the cache.
        """
        from alltick_frames.run.jobs import BatchJob, outside_plan, unauthorized

        started, now = time.monotonic(), self.clock()
        groups = planner.latest_groups(codes, intervals, count)
        count = int(count)  # 1 or 2, of any integer type
        stats = FetchStats(route=BATCH_KLINE)
        mark = self._notes_mark()
        job = BatchJob(store=self.store, now=now)
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
        failures += await self._run(job, [job.call(c) for c in chunks], stats, "latest")
        data = job.frame(todo, count)
        stats.notes = self._notes_since(mark)
        request = {
            "method": "latest",
            "codes": [c.code for c in infos],
            "intervals": list(dict.fromkeys(str(i) for _, i in groups)),
            "count": count,
        }
        failures += job.left_out + job.rejected
        return self._result(data, failures, stats, started, request)

    def _result(
        self,
        data: pd.DataFrame,
        failures: list[Failure],
        stats: FetchStats,
        started: float,
        request: dict[str, Any],
        measured: pd.DataFrame | None = None,
        asof: float | None = None,
        *,
        raises: bool = True,
        failure_rows: pd.DataFrame | None = None,
    ) -> FetchResult:
        """The result of a job (raising if the client is to raise on failures and
        ``raises``); ``failure_rows`` are failure rows already made a frame."""
        stats.rows = len(data)
        stats.wall_time = time.monotonic() - started
        stats.failover = self.budget.ledger.failover or ""
        stats.guard = self.budget.guard
        stats.latency_spread = self.budget.margin.spread()
        code_order = request.get("codes")
        rows = errors.failures_frame(failures, code_order) if failure_rows is None else failure_rows
        result = FetchResult(data, rows, stats, request)
        if measured is not None:
            result.completeness, result.asof = measured, asof
        if self.raise_on_failure and raises:
            result.raise_for_failures()
        return result


def _budget(
    url: str | None, plan: Plan, token: str, cache_dir: Path | None, options: dict[str, Any]
) -> Budget:
    """The budget a client builds: in Redis at ``url`` (or ``$ALLTICK_BUDGET_URL``), else on
    disk beside the cache, else in this process's memory."""
    from alltick_frames.budget import Budget
    from alltick_frames.budget.shared import budget_from_url, budget_url_from_env

    url = url if url is not None else budget_url_from_env()
    if url is not None:
        return budget_from_url(url, plan, token, **options)
    return Budget.for_token(plan, token, cache_dir, **options)


def default_concurrency(plan: Plan) -> int:
    """Enough calls in flight to use the plan's rate when a call takes up to ~0.5 s (at most
    64): on a busy machine answers and decoding stall now and then, and calls reserved ahead
    keep the pace through a stall."""
    rate = plan.all_endpoints or max(plan.endpoint_rates.values(), key=lambda r: r.calls / r.per)
    return max(2, min(64, math.ceil(rate.calls / rate.per * 0.5) + 1))
