"""A job sharded on a 4-process Dask ``LocalCluster``: the same bars as one process, no
429/605 (the workers share one budget in Redis), the failures of every shard, and a dataset
that reads back in DuckDB equal to the frame."""

from __future__ import annotations

import asyncio
import logging

import duckdb
import pandas as pd
import pytest
from dask.distributed import Client, LocalCluster
from test_client_support import NOW, TOKEN, client, codes_by_class, fast_plan, served, tokens

import alltick_frames.distributed as afd
from alltick_frames import FetchResult
from alltick_frames.frames.klines import KLINE_DTYPES
from alltick_frames.run.transport import Secret

PLAN = fast_plan(50)


@pytest.fixture(scope="module")
def dask_client():
    with (
        LocalCluster(
            n_workers=4,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=logging.ERROR,
        ) as cluster,
        Client(cluster) as dask,
    ):
        yield dask


def test_a_sharded_job_equals_one_process_and_writes_the_dataset(
    dask_client, alltick_emulator, redis_server, tmp_path
) -> None:
    emu = alltick_emulator(tokens=tokens(PLAN), process=True)
    by_class = codes_by_class(emu)
    # Two bad codes, in different shards, so the failures are the union of two workers'.
    codes = [*by_class["US"][:9], "NOPE.US", *by_class["fx"][:9], *by_class["HK"][:10]]
    codes += ["ZZZZ.US", *by_class["crypto"][:9]]
    out = tmp_path / "bars"
    sharded = afd.klines(
        dask_client, codes, "1d", count=40, token=TOKEN, plan=PLAN, base_url=emu.url,
        budget=redis_server.url, out=out, cache=tmp_path / "cache", progress=False, guard=0.1,
        clock=NOW.timestamp,  # the emulator fixture's market clock, as client() uses
    )  # fmt: skip
    assert served(emu) == {"kline": {"200": 37, "600": 2}}  # one call a code, none refused
    assert sum(sharded.stats.calls.values()) == sharded.stats.calls["kline"]
    assert sharded.stats.rejections == {} and sharded.stats.failover == ""
    assert sharded.failures["code"].tolist() == ["NOPE.US", "ZZZZ.US"]
    assert sharded.request["codes"] == codes
    assert (tmp_path / "cache" / "bars").is_dir()  # the workers' cache on this host

    async def alone() -> FetchResult:
        async with client(emu, PLAN) as single:
            return await single.klines(codes, "1d", count=40)

    single = asyncio.run(alone())
    pd.testing.assert_frame_equal(sharded.data, single.data)
    pd.testing.assert_frame_equal(sharded.completeness, single.completeness)
    assert sharded.asof == single.asof == NOW.timestamp()
    assert len(sharded.data) == 37 * 40 and sharded.stats.rows == len(sharded.data)

    written = duckdb.sql(
        f"SELECT * FROM read_parquet('{out}/**/*.parquet', hive_partitioning=true)"
    ).df()
    written = written[list(KLINE_DTYPES)].astype(KLINE_DTYPES)
    order = {c: i for i, c in enumerate(codes)}
    written = written.sort_values(
        ["code", "timestamp"], key=lambda s: s.map(order) if s.name == "code" else s
    ).reset_index(drop=True)
    pd.testing.assert_frame_equal(written, sharded.data)


def test_the_codes_are_cut_in_order_and_bad_input_stops_before_any_worker(dask_client) -> None:
    assert afd.split(list("ABCDEFG"), 3) == [["A", "B", "C"], ["D", "E", "F"], ["G"]]
    assert afd.split(["A"], 4) == [["A"]]
    with pytest.raises(ValueError, match="one budget for all its workers"):
        afd.klines(dask_client, ["AAPL.US"], count=5)
    with pytest.raises(ValueError, match="count"):
        afd.klines(dask_client, ["AAPL.US"], count=0, budget="redis://h:1/0")
    assert repr(Secret(TOKEN)) == "Secret('***')"
