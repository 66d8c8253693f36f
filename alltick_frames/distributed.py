"""Jobs sharded across workers on ``dask.distributed``: many machines, one token, one budget.

A token's plan caps the calls, not the CPU; but decoding, caching and writing thousands of
series, or keeping each host's cache on its own disk, can outgrow one machine. This module
splits a job's codes into shards and runs each on a Dask worker, as a job of its own:

* each worker fetches its shard with an :class:`~alltick_frames.AllTick` of its own, and its
  own cache (the worker's host's, as ``cache=`` says there);
* all of them pace by **one budget in Redis** (``budget=``, a ``redis://`` URL every worker
  can reach; see :mod:`alltick_frames.budget.shared`), so together they stay inside the plan;
* with ``out=``, each writes its series into one Parquet dataset
  (:class:`~alltick_frames.store.dataset.BarDataset`: a file per series, so workers never
  write the same file), which must then be a directory every worker reaches;
* the results come back as one :class:`~alltick_frames.FetchResult`: the bars in the caller's
  code order, the failures of every shard, the statistics added up.

>>> from dask.distributed import Client                                    # doctest: +SKIP
>>> import alltick_frames.distributed as afd                               # doctest: +SKIP
>>> with Client("tcp://scheduler:8786") as dask:                           # doctest: +SKIP
...     result = afd.klines(dask, codes, "1d", count=250, plan="premium",
...                         budget="redis://budget-host:6379/0", out="/shared/bars")

Why Dask: it is already where Python data jobs scale out (a ``LocalCluster`` on one machine,
the same code on a cluster of hosts, Kubernetes or a batch scheduler), it ships functions and
frames between processes as they are, and a shard is one plain task; nothing here needs a
dataflow engine's shuffles or a Ray actor's state. The token goes to the workers wrapped so
that no repr, log line or dashboard shows it; without ``token=`` each worker reads its own
``$ALLTICK_TOKEN``. Needs ``pip install 'alltick-frames[distributed]'``.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from alltick_frames.api.result import FetchResult, FetchStats
from alltick_frames.budget.shared import budget_url_from_env
from alltick_frames.core import errors, planner
from alltick_frames.core.intervals import Interval
from alltick_frames.core.plans import Plan, get_plan
from alltick_frames.frames import completeness, finalize_klines
from alltick_frames.run.transport import Secret

if TYPE_CHECKING:
    from dask.distributed import Client

__all__ = ["klines", "split"]


def split(codes: Sequence[str], shards: int) -> list[list[str]]:
    """``codes`` in ``shards`` runs of nearly equal length, in order (fewer if codes are few).

    >>> split(["A", "B", "C", "D", "E"], 2)
    [['A', 'B', 'C'], ['D', 'E']]
    """
    if shards < 1:
        raise ValueError(f"shards must be at least 1, got {shards}")
    size = math.ceil(len(codes) / shards) if codes else 1
    return [list(codes[i : i + size]) for i in range(0, len(codes), size)]


def klines(
    client: Client,
    codes: str | Iterable[str],
    interval: str | int | Interval = "1d",
    count: int | None = None,
    start: planner.TimeLike | None = None,
    end: planner.TimeLike | None = None,
    *,
    budget: str | None = None,
    out: str | Path | None = None,
    shards: int | None = None,
    token: str | None = None,
    plan: str | Plan | Path = "basic",
    base_url: str | None = None,
    **options: Any,
) -> FetchResult:
    """:meth:`AllTick.klines <alltick_frames.AllTick.klines>` sharded across ``client``'s
    workers (a ``dask.distributed.Client``); see the module docstring.

    ``budget`` is the Redis URL every worker shares (default ``$ALLTICK_BUDGET_URL``; one is
    needed: workers pacing alone would overrun the token together). ``out`` a dataset
    directory every worker can write. ``shards`` how many pieces the codes are cut into
    (default: one per worker). ``options`` go to each worker's
    :class:`~alltick_frames.AllTick` (``cache=``, ``timeout=``, ``concurrency=``, ...);
    ``raise_on_failure=True`` raises once, here, for the whole job. Bad input raises
    ``ValueError`` before any worker starts.
    """
    started = time.monotonic()
    req = planner.kline_request(codes, interval, count, start, end, now=time.time())
    url = budget if budget is not None else budget_url_from_env()
    if url is None:
        raise ValueError(
            "a sharded job needs one budget for all its workers: pass budget='redis://host:"
            "6379/0' (a Redis every worker reaches) or set ALLTICK_BUDGET_URL"
        )
    if not isinstance(plan, Plan):
        plan = get_plan(plan)  # a plan file is read here, once, not on every worker
    raise_on_failure = bool(options.pop("raise_on_failure", False))
    if shards is None:
        shards = max(1, len(client.scheduler_info()["workers"]))
    secret = None if token is None else Secret(token)
    job = {"interval": interval, "count": count, "start": start, "end": end}
    futures = client.map(
        _fetch_shard,
        split(req.code_order, shards),
        job=job,
        token=secret,
        plan=plan,
        base_url=base_url,
        budget=url,
        out=None if out is None else str(out),
        options=options,
        pure=False,
    )
    parts: list[FetchResult] = client.gather(futures)
    request = {"method": "klines", "codes": req.code_order, **job}
    result = combine(parts, request, time.monotonic() - started)
    if raise_on_failure:
        result.raise_for_failures()
    return result


def _fetch_shard(
    codes: list[str],
    *,
    job: dict[str, Any],
    token: Secret | None,
    plan: Plan,
    base_url: str | None,
    budget: str,
    out: str | None,
    options: dict[str, Any],
) -> FetchResult:
    """One shard, on a worker: a client of its own on the shared budget."""
    from alltick_frames.api.client import AllTick
    from alltick_frames.api.sync import run_sync

    async def main() -> FetchResult:
        secret = token.reveal() if token is not None else os.environ.get("ALLTICK_TOKEN")
        async with AllTick(secret, plan, base_url, budget=budget, **options) as client:
            return await client.klines(codes, **job, out=out)

    return run_sync(main())


def combine(parts: Sequence[FetchResult], request: dict[str, Any], wall_time: float) -> FetchResult:
    """The shards' results as one: bars in the request's code order, every failure, the
    completeness rows (judged at the latest shard's moment), the statistics summed
    (``wall_time`` is the whole job's, ``route`` and ``failover`` joined)."""
    order = request["codes"]
    data = finalize_klines([p.data for p in parts], order)
    failures = errors.sort_failures(pd.concat([p.failures for p in parts]), order)
    table = completeness.combine([p.completeness for p in parts], order)
    stats = FetchStats()
    for part in parts:
        stats.absorb(part.stats)
    routes = {r for p in parts for r in p.stats.route.split("+") if r not in ("", "cache")}
    stats.route = "+".join(sorted(routes)) or "cache"
    stats.failover = "; ".join(dict.fromkeys(p.stats.failover for p in parts if p.stats.failover))
    stats.rows = len(data)
    stats.wall_time = wall_time
    asof = max((p.asof for p in parts if p.asof is not None), default=None)
    return FetchResult(data, failures, stats, request, table, asof)
