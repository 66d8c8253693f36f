"""Latest trades, order books, static information and trading halts, as DataFrames.

These methods are mixed into :class:`~alltick_frames.api.client.AllTick`::

    async with AllTick(plan="basic") as client:
        trades = await client.trades(["AAPL.US", "700.HK", "EURUSD"])
        books = await client.depth(["BTCUSDT", "700.HK"])
        info = await client.static_info(["AAPL.US", "700.HK"])
        halts = await client.suspensions("nasdaq")

Each returns a :class:`~alltick_frames.api.result.FetchResult` whose ``data`` follows the schemas
of :mod:`alltick_frames.frames` (:data:`~alltick_frames.frames.TRADE_DTYPES`,
:data:`~alltick_frames.frames.DEPTH_DTYPES`, :data:`~alltick_frames.frames.STATIC_INFO_DTYPES`,
:data:`~alltick_frames.frames.SUSPENSION_DTYPES`; times are UTC) and whose ``failures`` lists
every code that did not arrive.

Before any call, codes are validated and routed (a malformed or repeated code is a
ValueError), and codes a fixed-basket or market plan cannot see are reported without a call
(``ret`` 604). ``/static_info`` exists on the stock path only: FX, crypto and metal codes get
a ``code-invalid`` failure row without a call, while the stocks of the same request are
fetched. A request of nothing but non-stock codes is a mistake in the caller, so it is a
ValueError. How the calls themselves are driven is :mod:`alltick_frames.run.quote_jobs`.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import pandas as pd

from alltick_frames.api.progress import Progress
from alltick_frames.api.result import FetchResult, FetchStats
from alltick_frames.core.codes import CodeInfo, validate_codes
from alltick_frames.core.errors import Failure
from alltick_frames.core.planner import chunk_codes
from alltick_frames.core.plans import DEPTH_TICK, STATIC_INFO, TRADE_TICK, Plan

if TYPE_CHECKING:
    from alltick_frames.run.runner import Call, Job, Runner

__all__ = ["QuotesMixin"]


class QuotesMixin:
    """``trades``, ``depth``, ``static_info`` and ``suspensions`` for :class:`AllTick`.

    Also the ``_calls_for_*`` planners that :meth:`AllTick.estimate` reads: calls per
    endpoint, worked out without any call.
    """

    if TYPE_CHECKING:  # provided by AllTick
        plan: Plan
        progress: bool | None

        def _runner(self, stats: FetchStats, progress: Progress | None = None) -> Runner: ...

        async def _run(
            self, job: Job, calls: list[Call], stats: FetchStats, desc: str
        ) -> list[Failure]: ...

        def _result(
            self,
            data: pd.DataFrame,
            failures: list[Failure],
            stats: FetchStats,
            started: float,
            request: dict[str, Any],
        ) -> FetchResult: ...

    # ------------------------------------------------------------------ symbol-list endpoints

    async def trades(self, codes: str | Iterable[str]) -> FetchResult:
        """The latest trade of each code, via ``/trade-tick`` (no history: one row per code).

        Columns (:data:`~alltick_frames.frames.TRADE_DTYPES`): ``code``, ``time`` (UTC),
        ``seq``, ``price``, ``volume``, ``turnover``, ``direction`` (0 neutral, 1 buy, 2 sell)
        and ``side`` (the same in words). FX, metals and energy report no volume and always
        direction 1. Rows follow the caller's code order.
        """
        return await self._symbol_list(TRADE_TICK, "trades", codes)

    async def depth(self, codes: str | Iterable[str]) -> FetchResult:
        """The latest order book of each code, via ``/depth-tick``, in long form.

        One row per quoted (code, side, level) (:data:`~alltick_frames.frames.DEPTH_DTYPES`):
        ``code``, ``time`` (UTC), ``seq``, ``status``, ``side`` ("bid"/"ask"), ``level`` (1 is
        the best price), ``price``, ``volume``. AllTick sends 1 level for FX, metals and US
        stocks, 5 for crypto and A-shares, 10 for HK.

        AllTick marks a stock at its limit by zero-filling one side of the book, and a
        delisted stock by zero-filling both (``price-change-trading-status.mdx``). A level of
        price 0 is never returned as a quote; ``status`` says what the book is:
        ``"limit-up"`` (every ask zero: bid rows only), ``"limit-down"`` (every bid zero: ask
        rows only) or ``"normal"``. A delisted code has no rows and a ``delisted`` failure
        row. A code with an empty book (a market index) is answered but has no rows; that is
        not a failure.

        >>> books = (await client.depth(["700.HK"])).data              # doctest: +SKIP
        >>> books.pivot(index="level", columns="side", values="price")  # doctest: +SKIP
        """
        return await self._symbol_list(DEPTH_TICK, "depth", codes)

    async def static_info(self, codes: str | Iterable[str]) -> FetchResult:
        """Reference data of stocks, via ``/static_info`` (stock path only).

        Columns (:data:`~alltick_frames.frames.STATIC_INFO_DTYPES`): ``code``, names,
        ``exchange``, ``board``, ``currency``, ``lot_size``, share counts and per-share
        figures. FX, crypto and metal codes have no static information: each gets a
        ``code-invalid`` failure row without a call; a request of only such codes is a
        ValueError. AllTick answers "US stocks, Hong Kong stocks, and A-share products"
        (``static-info.mdx``): a market index fails its call with ``ret`` 600, and is
        bisected out to a ``code-invalid`` row of its own while the stocks arrive.
        """
        return await self._symbol_list(STATIC_INFO, "static_info", codes)

    def _plan_symbol_list(
        self, endpoint: str, codes: str | Iterable[str]
    ) -> tuple[list[CodeInfo], list[CodeInfo], list[Failure]]:
        """(all codes, codes to ask for, failures known before any call)."""
        from alltick_frames.run.jobs import outside_plan, unauthorized

        infos = validate_codes(codes)
        failures: list[Failure] = []
        todo = infos
        if endpoint == STATIC_INFO:
            todo = [c for c in infos if c.is_stock]
            if not todo:
                raise ValueError(
                    "static_info covers stocks only (AAPL.US, 700.HK, 600416.SH, "
                    f"...); none of these is one: {[c.code for c in infos][:5]}"
                )
            failures += [
                Failure(
                    code=c.code,
                    endpoint=STATIC_INFO,
                    msg="static_info serves stocks only; no call made",
                    kind="code-invalid",
                    attempts=0,
                )
                for c in infos
                if not c.is_stock
            ]
        blocked = outside_plan(todo, self.plan)
        failures += unauthorized(blocked, self.plan, endpoint, None)
        blocked_codes = {c.code for c in blocked}
        return infos, [c for c in todo if c.code not in blocked_codes], failures

    async def _symbol_list(
        self, endpoint: str, method: str, codes: str | Iterable[str]
    ) -> FetchResult:
        from alltick_frames.run.quote_jobs import SymbolListJob

        started = time.monotonic()
        infos, todo, failures = self._plan_symbol_list(endpoint, codes)
        stats = FetchStats(route=endpoint)
        job = SymbolListJob(endpoint, self.plan.codes_per_call)
        failures += await self._run(job, job.calls(todo), stats, method)
        code_order = [c.code for c in infos]
        data = job.frame(code_order)
        request = {"method": method, "codes": code_order}
        failures += job.left_out + job.delisted + job.rejected
        return self._result(data, failures, stats, started, request)

    # ------------------------------------------------------------------ trading halts

    async def suspensions(self, exchange: str) -> FetchResult:
        """Trading halts of the past year on ``exchange`` (``"sse"``, ``"nyse"``,
        ``"nasdaq"``), newest notice first, in one call (the service does not page).

        Columns (:data:`~alltick_frames.frames.SUSPENSION_DTYPES`): ``exchange``, ``code``
        (AllTick's code of the halted stock: ``600000.SH``, ``AAPL.US``), ``symbol`` (the
        bare ticker the service sends), ``name``, ``reason``, ``period`` (SSE only),
        ``halted_at``, ``resumes_at`` (NaT while no resumption is announced),
        ``published_at`` (all UTC), ``source_exchange`` and ``pause_threshold_price``. The
        service allows one call per minute per exchange on every plan, so a second call
        within the minute waits. An error the service keeps answering becomes a
        ``service-error`` failure row whose ``code`` is the exchange.
        """
        from alltick_frames.run.quote_jobs import SuspensionJob, as_suspension_failure

        started = time.monotonic()
        job = SuspensionJob(exchange)
        stats = FetchStats(route=job.endpoint)
        calls = [job.call()]
        bar = Progress(len(calls), "suspensions", self.progress)
        try:
            failures = await self._runner(stats, bar).run(job, calls)
        finally:
            bar.close()
        failures = [as_suspension_failure(f) for f in failures]
        request = {"method": "suspensions", "exchange": job.exchange}
        return self._result(job.frame(), failures, stats, started, request)

    # ------------------------------------------------------------------ estimates

    def _symbol_list_calls(self, endpoint: str, codes: str | Iterable[str]) -> dict[str, int]:
        _, todo, _ = self._plan_symbol_list(endpoint, codes)
        return {endpoint: len(chunk_codes(todo, self.plan.codes_per_call))}

    def _calls_for_trades(self, codes: str | Iterable[str]) -> dict[str, int]:
        """Calls :meth:`trades` would make, per endpoint (a plan, not a promise: re-asks for
        codes the server leaves out and bisections of bad codes come on top)."""
        return self._symbol_list_calls(TRADE_TICK, codes)

    def _calls_for_depth(self, codes: str | Iterable[str]) -> dict[str, int]:
        """Calls :meth:`depth` would make, per endpoint."""
        return self._symbol_list_calls(DEPTH_TICK, codes)

    def _calls_for_static_info(self, codes: str | Iterable[str]) -> dict[str, int]:
        """Calls :meth:`static_info` would make, per endpoint (stock codes only)."""
        return self._symbol_list_calls(STATIC_INFO, codes)

    def _calls_for_suspensions(self, exchange: str) -> dict[str, int]:
        """Calls :meth:`suspensions` would make: one."""
        from alltick_frames.run.quote_jobs import SuspensionJob

        return {SuspensionJob(exchange).endpoint: 1}
