"""History paging only where AllTick honours it (issue 11 item 5).

"Only forex, precious metals, and cryptocurrencies support timestamp input"
(``en/api-reference/stock/kline.mdx``): the emulator ignores ``kline_timestamp_end`` for
energy and CFD codes by default and answers their newest bars. The client cannot tell USOIL
from EURUSD by its spelling, so it learns from the answer: bars newer than the end it asked
for. It then stops paging that code after exactly one extra call and writes a
``not-pageable`` row: no loop, no duplicate, no silent gap.
"""

from __future__ import annotations

import orjson
import pandas as pd
from test_client_support import (
    assert_same_bars,
    client,
    fast_plan,
    reference,
    served,
    tokens,
)

from alltick_frames.core import wire
from alltick_frames.core.codes import classify
from alltick_frames.core.intervals import parse_interval
from alltick_frames.core.planner import KlinePage, kline_request
from alltick_frames.run.jobs import KlineJob
from alltick_frames.run.runner import Call

PLAN = fast_plan(100)
HOUR = 5  # kline_type of 1h


def no_duplicates(data: pd.DataFrame) -> bool:
    return not data.duplicated(["code", "interval", "timestamp"]).any()


async def test_an_ignored_end_time_costs_one_extra_call_then_a_not_pageable_row(
    alltick_emulator,
) -> None:
    emu = alltick_emulator(tokens=tokens(PLAN))
    async with client(emu, PLAN) as c:
        result = await c.klines(["USOIL", "EURUSD"], "1h", count=1000)
    # EURUSD pages back (2 calls); USOIL's second call brings its newest bars again.
    assert served(emu) == {"kline": {"200": 4}}
    assert result.stats.calls == {"kline": 4}
    sizes = result.data.groupby("code", observed=True).size().to_dict()
    assert sizes == {"USOIL": 500, "EURUSD": 1000}
    assert no_duplicates(result.data)
    assert_same_bars(result.data, await reference(emu, ["USOIL"], HOUR, 500))
    row = result.failures[["code", "interval", "kind", "attempts", "ret"]].values.tolist()
    assert row == [["USOIL", "1h", "not-pageable", 2, pd.NA]]
    assert result.failures["msg"][0] == (
        "asked for 1000 bars, 500 could be fetched "
        "(AllTick ignored the end time asked for: it serves the latest bars)"
    )


async def test_a_range_whose_end_is_ignored_keeps_the_bars_inside_it(alltick_emulator) -> None:
    """The first call already ends in the past: its answer (the newest bars) is kept where it
    falls inside the range, and no second call is made."""
    emu = alltick_emulator(tokens=tokens(PLAN))
    start, end = pd.Timestamp("2024-04-01", tz="UTC"), pd.Timestamp("2024-05-01", tz="UTC")
    async with client(emu, PLAN) as c:
        result = await c.klines("USOIL", "1h", start=start, end=end)
    assert served(emu) == {"kline": {"200": 1}}
    newest = await reference(emu, ["USOIL"], HOUR, 500)
    inside = newest[newest["timestamp"].between(start, end)]
    assert len(inside) > 100
    assert_same_bars(result.data, inside)
    oldest = newest["timestamp"].min()
    assert result.failures[["code", "kind", "attempts"]].values.tolist() == [
        ["USOIL", "not-pageable", 1]
    ]
    assert result.failures["msg"][0].startswith(
        f"no bars before {oldest:%Y-%m-%d %H:%M}Z could be fetched"
    )


async def test_with_the_cache_the_ignored_page_is_never_stored_as_history(
    alltick_emulator, tmp_path
) -> None:
    emu = alltick_emulator(tokens=tokens(PLAN))
    async with client(emu, PLAN, cache=tmp_path) as c:
        first = await c.klines("USOIL", "1h", count=1000)
        assert served(emu) == {"kline": {"200": 2}}
        again = await c.klines("USOIL", "1h", count=1000)
    # The store holds the newest 500 bars; the older 500 are asked for once per run, and
    # refused once per run: one call, the same row, the same bars.
    assert served(emu) == {"kline": {"200": 3}}
    for result in (first, again):
        assert len(result.data) == 500 and no_duplicates(result.data)
        assert list(result.failures["kind"]) == ["not-pageable"]
    pd.testing.assert_frame_equal(first.data, again.data)
    assert_same_bars(again.data, await reference(emu, ["USOIL"], HOUR, 500))
    assert list(again.failures["attempts"]) == [1]


async def test_energy_that_pages_is_paged_without_a_row(alltick_emulator) -> None:
    """The detection only acts on the answer: a server that honours the end pages as usual."""
    emu = alltick_emulator(tokens=tokens(PLAN), page_energy_cfd=True)
    async with client(emu, PLAN) as c:
        result = await c.klines(["USOIL", "US30"], "1h", count=1000)
    assert result.ok
    assert served(emu) == {"kline": {"200": 4}}
    assert result.data.groupby("code", observed=True).size().to_dict() == {
        "USOIL": 1000,
        "US30": 1000,
    }
    assert_same_bars(result.data, await reference(emu, ["USOIL", "US30"], HOUR, 1000))


def kline_answer(code: str, stamps: list[int]) -> tuple[wire.Envelope, bytes]:
    bar = {"open_price": "1", "high_price": "1", "low_price": "1", "close_price": "1",
           "volume": "0", "turnover": "0"}  # fmt: skip
    body = orjson.dumps(
        {
            "ret": 200,
            "msg": "ok",
            "data": {
                "code": code,
                "kline_type": HOUR,
                "kline_list": [{"timestamp": str(t), **bar} for t in stamps],
            },
        }
    )
    return wire.parse_envelope(body), body


def test_the_detection_does_not_trust_the_asset_class() -> None:
    """EURUSD pages by AllTick's docs; if an answer ever shows its end ignored, it too stops."""
    now = 1_715_781_600
    req = kline_request(["EURUSD"], "1h", count=1500, now=now)
    job = KlineJob(req, PLAN, now=now)
    eurusd = classify("EURUSD")
    hour = parse_interval("1h")
    page = KlinePage(eurusd, hour, end_ts=now - 500 * 3600 - 1, num=500, want=1000)
    call = Call("/quote-b-api/kline", page, (("EURUSD", "1h"),))
    honoured = [page.end_ts - 3599 - 3600 * k for k in range(500)][::-1]
    (following,) = job.on_ok(call, *kline_answer("EURUSD", honoured))
    assert following.payload.end_ts == honoured[0] - 1 and not job.unpaged
    ignored = [now - 3600 * k for k in range(500)][::-1]  # the newest bars again
    assert job.on_ok(following, *kline_answer("EURUSD", ignored)) == []
    assert job.unpaged == {"EURUSD"}


def test_a_spoiled_future_bar_is_not_taken_for_an_ignored_end_time() -> None:
    """A bar dated a year ahead is newer than any end asked for, but it is no answer to one:
    paging goes by the plausible starts, so the chain pages on and that bar alone is dropped
    (``bad-bars``, frames.checks' ``late``)."""
    now = 1_715_781_600
    req = kline_request(["EURUSD"], "1h", count=1500, now=now)
    job = KlineJob(req, PLAN, now=now)
    page = KlinePage(classify("EURUSD"), parse_interval("1h"), now - 500 * 3600 - 1, 500, 1000)
    call = Call("/quote-b-api/kline", page, (("EURUSD", "1h"),))
    honoured = [page.end_ts - 3599 - 3600 * k for k in range(500)][::-1]
    (following,) = job.on_ok(call, *kline_answer("EURUSD", [*honoured, now + 365 * 86_400]))
    assert following.payload.end_ts == honoured[0] - 1 and not job.unpaged
    assert len(job.frame()) == 500
    (row,) = job.rejected
    assert (row.code, row.interval, row.kind) == ("EURUSD", "1h", "bad-bars")
    assert row.msg == "dropped 1 bar: 1 with a start more than a day after the job's clock"
