"""Hostile answers (issue 10): a bad answer fails its own item, never the job, and no bar is
believed before it is checked.

The emulator's ``bad_bars`` fault spoils one bar of an answer (every way is in
:data:`~alltick_frames.emulator.faults.BAD_BARS`); which request it strikes follows from its
seed, so each test picks the seed that strikes where it wants (:func:`seed_for`) and runs the
calls one at a time, in a known order. What the emulator cannot send (a ``ret`` AllTick never
documented, one garbage record among good ones) comes from :mod:`hostile_server`.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pandas as pd
import pytest
from aiohttp import web
from hostile_server import bars, ok, serve
from test_client_support import TOKEN, assert_same_bars, client, fast_plan, reference, tokens

from alltick_frames import AllTick, RetryPolicy
from alltick_frames.cli import main
from alltick_frames.cli.common import EXIT_PARTIAL
from alltick_frames.emulator.faults import BAD_BARS, FaultConfig, FaultInjector

PLAN = fast_plan(100)
#: The same plan, one call at a time: the emulator then sees the calls in the order planned.
ONE_BY_ONE = {"concurrency": 1}


def seed_for(pattern: list[str | None], rate: float = 1.0) -> int:
    """A seed whose first draws spoil exactly as ``pattern`` says, request by request (a
    variant of BAD_BARS, or None for an answer left alone)."""
    for seed in range(20_000):
        injector = FaultInjector(FaultConfig(bad_bars=rate), seed)
        draws = [injector.draw() for _ in pattern]
        if [BAD_BARS[f.code] if f.kind else None for f in draws] == pattern:
            return seed
    raise AssertionError(f"no seed below 20,000 draws {pattern}")


def spoiling(emu_factory: Any, pattern: list[str | None], rate: float = 1.0) -> Any:
    seed = seed_for(pattern, rate)
    return emu_factory(tokens=tokens(PLAN), faults={"bad_bars": rate}, seed=seed)


PRICE = "1 with a price missing, not finite or not above 0"
#: Each way the emulator spoils a bar that is dropped -> the failure row's message.
DROPPED: dict[str, str] = {
    "nan-price": PRICE,
    "inf-price": PRICE,
    "negative-price": PRICE,
    "no-close": PRICE,
    "high-below-low": "1 with low above open or close, or high below them",
    "negative-volume": "1 with volume or turnover negative or infinite",
    "off-grid": "1 with a start not after 1970 or off the 1h grid",
    "before-1970": "1 with a start not after 1970 or off the 1h grid",
    "future": "1 with a start more than a day after the job's clock",
}


@pytest.mark.parametrize("cache", [False, True], ids=["no-cache", "cache"])
@pytest.mark.parametrize("variant", list(DROPPED))
async def test_a_bar_out_of_domain_is_dropped_and_counted(
    alltick_emulator, tmp_path, variant, cache
) -> None:
    emu = spoiling(alltick_emulator, [variant])
    store = tmp_path if cache else False
    async with client(emu, PLAN, cache=store, **ONE_BY_ONE) as c:
        result = await c.klines("EURUSD", "1h", count=24)
    emu.set_faults(bad_bars=0.0)
    ref = await reference(emu, ["EURUSD"], 5, 24)

    assert result.stats.calls == {"kline": 1}
    assert emu.stats()[TOKEN] == {"kline": {"bad-bars": 1}}
    # Every bar kept is the emulator's own; only the spoiled one is missing.
    assert len(result.data) == 23
    assert_same_bars(result.data, ref[ref["timestamp"].isin(result.data["timestamp"])])
    row = result.failures.iloc[0]
    assert len(result.failures) == 1
    assert (row["code"], row["interval"], row["kind"]) == ("EURUSD", "1h", "bad-bars")
    assert row["msg"] == f"dropped 1 bar: {DROPPED[variant]}"


@pytest.mark.parametrize("cache", [False, True], ids=["no-cache", "cache"])
async def test_a_start_sent_twice_with_other_values_is_reported_and_the_later_kept(
    alltick_emulator, tmp_path, cache
) -> None:
    emu = spoiling(alltick_emulator, ["conflict"])
    async with client(emu, PLAN, cache=tmp_path if cache else False, **ONE_BY_ONE) as c:
        result = await c.klines("EURUSD", "1h", count=24)
    emu.set_faults(bad_bars=0.0)
    ref = await reference(emu, ["EURUSD"], 5, 24)

    # The later copy was kept: one bar's volume is one more than the emulator's own.
    assert (result.data["volume"] - ref["volume"]).tolist().count(1.0) == 1
    assert_same_bars(result.data.drop(columns="volume"), ref.drop(columns="volume"))
    assert result.failures[["code", "kind", "msg"]].values.tolist() == [
        ["EURUSD", "bad-bars", "1 bar sent twice with different values (the later copy kept)"]
    ]


@pytest.mark.parametrize(
    ("variant", "words"),
    [
        ("not-a-number", "field 'open_price' holds a value that is not a number"),
        ("mislabelled", "the answer is labelled 'GBPUSD' kline_type 5, not the EURUSD 1h"),
    ],
)
async def test_an_answer_that_cannot_be_used_fails_its_code_without_a_retry(
    alltick_emulator, variant, words
) -> None:
    emu = spoiling(alltick_emulator, [variant, None], rate=0.5)
    async with client(emu, PLAN, **ONE_BY_ONE) as c:
        result = await c.klines(["EURUSD", "BTCUSDT"], "1h", count=24)
    assert list(result.data["code"].unique()) == ["BTCUSDT"]
    assert len(result.data) == 24
    assert result.failures[["code", "kind"]].values.tolist() == [["EURUSD", "unreadable"]]
    assert words in result.failures["msg"][0]
    assert emu.stats()[TOKEN] == {"kline": {"bad-bars": 1, "200": 1}}


@pytest.mark.parametrize("cache", [False, True], ids=["no-cache", "cache"])
async def test_one_poisoned_code_among_four_returns_the_other_three(
    alltick_emulator, tmp_path, cache
) -> None:
    """A negative bar timestamp on one code raised ``end_ts must be an int >= 0`` from
    wire.py while paging, and no code got its data (issue 10)."""
    codes = ["EURUSD", "GBPUSD", "BTCUSDT", "GOLD"]
    # Two pages per code, first pages first: the 2nd call is GBPUSD's first page.
    emu = spoiling(alltick_emulator, [None, "before-1970", *[None] * 6], rate=0.15)
    async with client(emu, PLAN, cache=tmp_path if cache else False, **ONE_BY_ONE) as c:
        result = await c.klines(codes, "1h", count=600)
    emu.set_faults(bad_bars=0.0)
    ref = await reference(emu, codes, 5, 600)

    healthy = ["EURUSD", "BTCUSDT", "GOLD"]
    assert_same_bars(result.data[result.data["code"].isin(healthy)], ref[ref["code"].isin(healthy)])
    poisoned = result.data[result.data["code"] == "GBPUSD"]
    assert 598 <= len(poisoned) <= 600  # the spoiled bar is gone; the rest are the real ones
    assert_same_bars(poisoned, ref[ref["timestamp"].isin(poisoned["timestamp"])
                                   & (ref["code"] == "GBPUSD")])  # fmt: skip
    assert result.failures[["code", "kind", "msg"]].values.tolist() == [
        ["GBPUSD", "bad-bars", "dropped 1 bar: 1 with a start not after 1970 or off the 1h grid"]
    ]
    assert emu.stats()[TOKEN] == {"kline": {"200": 7, "bad-bars": 1}}


async def test_a_spoiled_batch_group_is_dropped_whole(alltick_emulator, tmp_path) -> None:
    """``/batch-kline`` bars are a group's forming bar and the one before: a group with a bar
    out of domain is dropped whole, the other groups of the answer are kept."""
    emu = spoiling(alltick_emulator, ["nan-price"])
    codes = ["EURUSD", "GBPUSD", "BTCUSDT"]
    async with client(emu, PLAN, cache=tmp_path) as c:
        result = await c.latest(codes, ["1h", "1d"], count=2)
    (row,) = result.failures.itertuples()
    assert row.kind == "bad-bars" and row.endpoint == "batch-kline"
    assert row.msg == f"dropped 1 bar: {PRICE}; the group's other bars too"
    groups = result.data.groupby(["code", "interval"], observed=True).size()
    spoiled = (row.code, row.interval)
    pairs = [(code, ivl) for code in codes for ivl in ("1h", "1d")]
    assert groups.to_dict() == {pair: 2 for pair in pairs if pair != spoiled}
    assert emu.stats()[TOKEN] == {"batch-kline": {"bad-bars": 1}}


# --------------------------------------------------------------------------- beyond the emulator


def _kline_unless(code: str, answer: dict[str, Any]) -> Any:
    """A /kline handler answering ``code`` with ``answer``, every other code with good bars."""

    def handle(data: dict[str, Any]) -> dict[str, Any]:
        if data["code"] == code:
            return answer
        return ok(bars(data["code"], data["kline_type"], data["query_kline_num"]))

    return handle


HOSTILE_CODES = ["EURUSD", "GBPUSD", "BTCUSDT", "GOLD"]


async def test_an_unknown_ret_is_asked_once_more_then_reported() -> None:
    """ret 777 on one code aborted the whole job (issue 10)."""
    answer = {"ret": 777, "msg": "something new", "trace": "t"}
    async with serve(kline=_kline_unless("GBPUSD", answer)) as (url, seen):
        retry = RetryPolicy(attempts=6, base=0.01, cap=0.01)
        async with AllTick(TOKEN, PLAN, url, cache=False, retry=retry, progress=False) as c:
            result = await c.klines(HOSTILE_CODES, "1d", count=5)
    assert list(result.data["code"].unique()) == ["EURUSD", "BTCUSDT", "GOLD"]
    assert len(result.data) == 15
    row = result.failures.iloc[0]
    assert len(result.failures) == 1
    assert (row["code"], row["kind"], row["ret"], row["attempts"]) == (
        "GBPUSD",
        "unknown-ret",
        777,
        2,
    )
    assert row["msg"] == "something new"
    assert seen == {"EURUSD": 1, "GBPUSD": 2, "BTCUSDT": 1, "GOLD": 1}
    assert result.stats.faults == {"ret-777": 2}


async def test_one_garbage_record_fails_its_code_alone() -> None:
    """A trade record whose price is not a number failed (and retried) the whole call."""

    def trade_tick(data: dict[str, Any]) -> dict[str, Any]:
        ticks = [
            {"code": s["code"], "seq": "1", "tick_time": "1715781600000",
             "price": "n/a" if s["code"] == "GBPUSD" else "1.5",
             "volume": "1", "turnover": "1.5", "trade_direction": 1}
            for s in data["symbol_list"]
        ]  # fmt: skip
        junk = ["not a record", {"code": "NOTASKED", "seq": "x"}]
        return ok({"tick_list": [*ticks, *junk]})

    async with serve(trade_tick=trade_tick) as (url, seen):
        c = AllTick(TOKEN, PLAN, url, cache=False, progress=False)
        async with c:
            result = await c.trades(HOSTILE_CODES)
    assert result.data["code"].tolist() == ["EURUSD", "BTCUSDT", "GOLD"]
    assert result.failures[["code", "endpoint", "kind"]].values.tolist() == [
        ["GBPUSD", "trade-tick", "unreadable"]
    ]
    assert "field 'price' holds a value that is not a number" in result.failures["msg"][0]
    assert seen == dict.fromkeys(HOSTILE_CODES, 1)  # one call, not retried


async def test_one_garbage_book_fails_its_code_alone_beside_a_delisted_one() -> None:
    """A depth answer read record by record still tells a delisted book (zero on both sides)
    from a garbage one (bids not a list): each gets its own row, the good book its quotes."""
    level = {"price": "189.5", "volume": "100"}
    zero = {"price": "0", "volume": "0"}
    books = {
        "AAPL.US": {"bids": [level], "asks": [{**level, "price": "189.6"}]},
        "TSLA.US": {"bids": {}, "asks": []},
        "QDZ.US": {"bids": [zero], "asks": [zero]},
    }

    async def depth_tick(request: web.Request) -> web.Response:
        asked = json.loads(request.query["query"])["data"]["symbol_list"]
        ticks = [
            {"code": s["code"], "seq": "1", "tick_time": "1715781600000", **books[s["code"]]}
            for s in asked
        ]
        return web.json_response(ok({"tick_list": ticks}))

    path = "/quote-stock-b-api/depth-tick"
    async with serve(raw={path: depth_tick}) as (url, seen):
        c = AllTick(TOKEN, PLAN, url, cache=False, progress=False)
        async with c:
            result = await c.depth(list(books))
    assert result.data[["code", "status", "side", "price"]].values.tolist() == [
        ["AAPL.US", "normal", "bid", 189.5],
        ["AAPL.US", "normal", "ask", 189.6],
    ]
    assert result.failures[["code", "endpoint", "kind"]].values.tolist() == [
        ["TSLA.US", "depth-tick", "unreadable"],
        ["QDZ.US", "depth-tick", "delisted"],
    ]
    assert seen == {path: 1}  # one call, not retried


def _negative_start() -> dict[str, Any]:
    data = bars("GBPUSD", 8, 5)
    data["kline_list"][0]["timestamp"] = "-86400"
    return ok(data)


@pytest.mark.parametrize(
    ("answer", "kind", "gbpusd"),
    [
        ({"ret": 777, "msg": "new", "trace": "t"}, "unknown-ret", 0),
        (_negative_start(), "bad-bars", 4),
    ],
    ids=["unknown-ret", "negative-timestamp"],
)
async def test_the_command_line_writes_what_arrived_and_exits_3(
    tmp_path, monkeypatch, answer, kind, gbpusd
) -> None:
    """The CLI exited 2 (usage error) with a traceback and wrote no files (issue 10)."""
    monkeypatch.setenv("ALLTICK_TOKEN", TOKEN)
    async with serve(kline=_kline_unless("GBPUSD", answer)) as (url, _):
        argv = [
            "fetch", "klines", "--codes", ",".join(HOSTILE_CODES), "--count", "5",
            "--base-url", url, "--plan", "professional", "--no-cache", "--quiet",
            "--out", str(tmp_path / "bars.csv"), "--failures", str(tmp_path / "failures.csv"),
        ]  # fmt: skip
        status = await asyncio.to_thread(main, argv)
    assert status == EXIT_PARTIAL
    sizes = pd.read_csv(tmp_path / "bars.csv").groupby("code").size().to_dict()
    assert sizes == {"EURUSD": 5, "BTCUSDT": 5, "GOLD": 5, **({"GBPUSD": gbpusd} if gbpusd else {})}
    failures = pd.read_csv(tmp_path / "failures.csv")
    assert failures[["code", "kind"]].values.tolist() == [["GBPUSD", kind]]
