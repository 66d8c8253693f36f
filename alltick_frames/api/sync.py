"""Blocking functions with the client's arguments, for scripts and notebooks.

Each call opens a client, runs one job and closes it. Inside a running event loop (Jupyter,
IPython) the job runs on a private loop in a worker thread, so ``klines(...)`` works in a
notebook cell without ``await`` and without nest_asyncio.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from alltick_frames.api.client import AllTick
from alltick_frames.api.result import FetchResult
from alltick_frames.core.intervals import Interval
from alltick_frames.core.planner import TimeLike
from alltick_frames.core.plans import Plan

T = TypeVar("T")


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion, whether or not an event loop is already running here."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="alltick") as pool:
        return pool.submit(asyncio.run, coro).result()


def _with_client(
    job: Callable[[AllTick], Awaitable[T]],
    token: str | None,
    plan: str | Plan | Path,
    base_url: str | None,
    options: dict[str, Any],
) -> T:
    async def main() -> T:
        async with AllTick(token, plan, base_url, **options) as client:
            return await job(client)

    return run_sync(main())


def klines(
    codes: str | Iterable[str],
    interval: str | int | Interval = "1d",
    count: int | None = None,
    start: TimeLike | None = None,
    end: TimeLike | None = None,
    *,
    out: str | Path | None = None,
    token: str | None = None,
    plan: str | Plan | Path = "basic",
    base_url: str | None = None,
    **options: Any,
) -> FetchResult:
    """Blocking :meth:`AllTick.klines` (``out``: a Parquet dataset directory to write the bars
    to as well); ``options`` go to :class:`AllTick`."""
    return _with_client(
        lambda c: c.klines(codes, interval, count, start, end, out=out),
        token,
        plan,
        base_url,
        options,
    )


def latest(
    codes: str | Iterable[str],
    intervals: str | int | Interval | Sequence[str | int | Interval] = ("1m",),
    count: int = 1,
    *,
    token: str | None = None,
    plan: str | Plan | Path = "basic",
    base_url: str | None = None,
    **options: Any,
) -> FetchResult:
    """Blocking :meth:`AllTick.latest`; ``options`` go to :class:`AllTick`."""
    return _with_client(lambda c: c.latest(codes, intervals, count), token, plan, base_url, options)


def retry(
    result: FetchResult,
    *,
    everything: bool = False,
    token: str | None = None,
    plan: str | Plan | Path = "basic",
    base_url: str | None = None,
    **options: Any,
) -> FetchResult:
    """Blocking :meth:`AllTick.retry`: ask again for the failed items of ``result``."""
    return _with_client(
        lambda c: c.retry(result, everything=everything), token, plan, base_url, options
    )


def trades(
    codes: str | Iterable[str],
    *,
    token: str | None = None,
    plan: str | Plan | Path = "basic",
    base_url: str | None = None,
    **options: Any,
) -> FetchResult:
    """Blocking :meth:`AllTick.trades`: the latest trade of each code."""
    return _with_client(lambda c: c.trades(codes), token, plan, base_url, options)


def depth(
    codes: str | Iterable[str],
    *,
    token: str | None = None,
    plan: str | Plan | Path = "basic",
    base_url: str | None = None,
    **options: Any,
) -> FetchResult:
    """Blocking :meth:`AllTick.depth`: the latest order book of each code, in long form."""
    return _with_client(lambda c: c.depth(codes), token, plan, base_url, options)


def static_info(
    codes: str | Iterable[str],
    *,
    token: str | None = None,
    plan: str | Plan | Path = "basic",
    base_url: str | None = None,
    **options: Any,
) -> FetchResult:
    """Blocking :meth:`AllTick.static_info`: reference data of stocks."""
    return _with_client(lambda c: c.static_info(codes), token, plan, base_url, options)


def suspensions(
    exchange: str,
    *,
    token: str | None = None,
    plan: str | Plan | Path = "basic",
    base_url: str | None = None,
    **options: Any,
) -> FetchResult:
    """Blocking :meth:`AllTick.suspensions`: trading halts of ``sse``, ``nyse`` or ``nasdaq``."""
    return _with_client(lambda c: c.suspensions(exchange), token, plan, base_url, options)
