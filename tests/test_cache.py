"""The disk cache against the emulator, over real HTTP, counted with the emulator's stats.

Each test drives one market clock for both sides: the client's ``clock=`` and the emulator's
``set_market_now`` move together (:class:`Market`). Call counts are exact and come from the
server (``emu.stats()``), never from the client's own bookkeeping alone.

The helpers here are shared by ``test_cache_refresh.py`` and ``test_cache_processes.py``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from alltick_frames.api.client import AllTick
from alltick_frames.api.result import FetchResult
from alltick_frames.budget import Budget, estimate_schedule
from alltick_frames.core import plans
from alltick_frames.core.cache_planner import top_run
from alltick_frames.core.plans import Plan, get_plan
from alltick_frames.emulator import EmulatorServer
from alltick_frames.store import FIELDS, BarStore

#: Wednesday 2024-05-15 15:00 UTC: US session open (since 13:30Z), HK and CN closed for the
#: day, FX and crypto trading.
NOW = pd.Timestamp("2024-05-15T15:00:00Z").timestamp()
HOUR, DAY = 3600, 86_400

#: Long and distinctive, so finding it in a file cannot be a coincidence.
TOKEN = "tok-ZQ7xK2mV9pLw4RtY8uNc3HbG6sFd1JeA5oPi0qXzU-cache-secret"


def fast_plan(rate: int = 50, **overrides: Any) -> Plan:
    """A plan fast enough for tests: ``rate`` calls/s per endpoint, twice that in total."""
    return (
        get_plan("professional")
        .with_overrides(
            name="fast",
            endpoint_rates={e: (rate, 1.0) for e in plans.ENDPOINTS},
            all_endpoints=(2 * rate, 1.0),
            per_minute=120 * rate,
        )
        .with_overrides(**overrides)
    )


FAST = fast_plan()

#: Stocks and an index of every market, FX, crypto and a metal.
MIXED = [
    "AAPL.US",
    "700.HK",
    "600519.SH",
    "000001.SZ",
    "HSI.HK",
    "EURUSD",
    "USDJPY",
    "BTCUSDT",
    "ETHUSDT",
    "GOLD",
]
PAGEABLE = ["EURUSD", "USDJPY", "BTCUSDT", "ETHUSDT", "GOLD"]


class Market:
    """The market clock of the client (``clock=market``) and of the emulator, moved together."""

    def __init__(self, emu: EmulatorServer, now: float = NOW) -> None:
        self.emu = emu
        self.now = now
        emu.set_market_now(now)

    def __call__(self) -> float:
        return self.now

    def set(self, now: float) -> None:
        self.now = now
        self.emu.set_market_now(now)

    def advance(self, seconds: float) -> None:
        self.set(self.now + seconds)


def start_emulator(
    factory: Callable[..., EmulatorServer], plan: Plan = FAST, *, process: bool = False
) -> EmulatorServer:
    """An emulator serving :data:`TOKEN` on ``plan``; in its own process with ``process`` (for
    tests that assert zero rejections or a pace)."""
    return factory(plan=plan, tokens={TOKEN: plan}, now=NOW, process=process)


def client(
    emu: EmulatorServer,
    market: Callable[[], float],
    cache: bool | str | Path,
    plan: Plan = FAST,
    **options: Any,
) -> AllTick:
    return AllTick(
        TOKEN, plan=plan, base_url=emu.url, cache=cache, clock=market, progress=False, **options
    )


def served(emu: EmulatorServer) -> dict[str, dict[str, int]]:
    """Answers the emulator gave this token since its last reset: endpoint -> ret -> count."""
    return emu.stats().get(TOKEN, {})


def ok_calls(emu: EmulatorServer, endpoint: str) -> int:
    """Calls to ``endpoint`` the emulator answered, checking every answer was a success."""
    answers = served(emu).get(endpoint, {})
    assert set(answers) <= {"200"}, f"{endpoint} answers {answers}"
    return answers.get("200", 0)


async def cold(
    emu: EmulatorServer,
    market: Callable[[], float],
    *args: Any,
    plan: Plan = FAST,
    budget: Budget | None = None,
    cache: Path | None = None,
    **kwargs: Any,
) -> FetchResult:
    """The same request from scratch: with no cache at all, or into an empty ``cache`` dir.

    Pass the cached client's ``budget`` when it has just used a good part of the plan's
    window: a client without a cache paces on its own in-memory ledger otherwise.
    """
    if cache is not None:
        assert not cache.exists(), "a cold fetch needs an empty cache directory"
    directory: Path | bool = False if cache is None else cache
    async with client(emu, market, directory, plan, budget=budget) as fresh:
        return await fresh.klines(*args, **kwargs)


def failure_summary(result: FetchResult) -> list[tuple[str, str, str]]:
    f = result.failures
    return sorted(zip(f["code"], f["kind"], f["msg"], strict=True))


@pytest.fixture
def emu(alltick_emulator: Callable[..., EmulatorServer]) -> EmulatorServer:
    return start_emulator(alltick_emulator)


@pytest.fixture
def market(emu: EmulatorServer) -> Market:
    return Market(emu)


# ---------------------------------------------------------------- a repeated run: no call


REQUESTS = [
    pytest.param("1d", {"count": 300}, id="count-1d"),
    pytest.param("1h", {"count": 1200}, id="count-1h-multipage"),
    pytest.param("1d", {"start": "2023-09-01"}, id="range-to-now-1d"),
    pytest.param("1h", {"start": "2024-04-01", "end": "2024-05-10T12:00Z"}, id="closed-range-1h"),
]


@pytest.mark.parametrize(("interval", "request_"), REQUESTS)
async def test_a_second_identical_run_makes_no_call(
    emu: EmulatorServer, market: Market, tmp_path: Path, interval: str, request_: dict[str, Any]
) -> None:
    async with client(emu, market, tmp_path) as first:
        r1 = await first.klines(MIXED, interval, **request_)
    made = ok_calls(emu, "kline")
    assert made == r1.stats.calls["kline"] > 0
    if "count" in request_:  # one chain of ceil(count / 500) pages per FX/crypto code
        pages = math.ceil(request_["count"] / FAST.kline_bars)
        assert made == len(PAGEABLE) * pages + (len(MIXED) - len(PAGEABLE))
    assert set(r1.data["code"]) == set(MIXED)

    for again in range(2):  # the same client, then a new one on the same directory
        emu.reset()
        async with client(emu, market, tmp_path) as second:
            r2 = await second.klines(MIXED, interval, **request_)
        assert served(emu) == {}, f"run {again + 2} called the server"
        assert r2.stats.total_calls == 0
        assert r2.stats.route == "cache"
        assert r2.stats.cached == len(MIXED)
        pd.testing.assert_frame_equal(r2.data, r1.data)
        assert failure_summary(r2) == failure_summary(r1)


# ------------------------------------------------------- paging back writes each bar once


async def test_a_history_paged_back_is_written_to_the_cache_about_once(
    emu: EmulatorServer, market: Market, tmp_path: Path
) -> None:
    """21 pages of one chain, newest first: the store writes about the bars' own bytes, not
    each page folded again into the chunks next to it (that was 7x)."""
    async with client(emu, market, tmp_path) as c:
        assert c.store is not None
        written = 0
        backend, write = c.store._backend, c.store._backend.set

        def counted(key: str, value: bytes) -> None:
            nonlocal written
            written += len(value)
            write(key, value)

        backend.set = counted  # type: ignore[method-assign]
        result = await c.klines("EURUSD", "1m", count=21 * FAST.kline_bars)
        assert ok_calls(emu, "kline") == 21
        assert len(result.data) == 21 * FAST.kline_bars
        assert written <= 1.5 * len(result.data) * 8 * (1 + len(FIELDS))
        emu.reset()
        again = await c.klines("EURUSD", "1m", count=21 * FAST.kline_bars)
        assert served(emu) == {}
        pd.testing.assert_frame_equal(again.data, result.data)


# ------------------------------------------------------- an extended request: new pages only


async def test_a_larger_count_fetches_only_the_new_pages(
    emu: EmulatorServer, market: Market, tmp_path: Path
) -> None:
    codes = ["AAPL.US", *PAGEABLE]
    async with client(emu, market, tmp_path) as c:
        await c.klines(codes, "1h", count=300)
        for old, new in ((300, 1300), (1300, 1301), (1301, 2400)):
            emu.reset()
            result = await c.klines(codes, "1h", count=new)
            # Each FX/crypto chain continues below what is stored. The stock cannot page: one
            # call brings its newest 500 bars, and once it holds those there is no more to get.
            stock_calls = 1 if old < FAST.kline_bars else 0
            want = len(PAGEABLE) * math.ceil((new - old) / FAST.kline_bars) + stock_calls
            assert ok_calls(emu, "kline") == want, (old, new)
            assert ok_calls(emu, "batch-kline") == 0
            assert result.stats.cached == 1 - stock_calls
            reference = await cold(
                emu, market, codes, "1h", count=new, cache=tmp_path / f"cold-{new}"
            )
            pd.testing.assert_frame_equal(result.data, reference.data)
            assert failure_summary(result) == failure_summary(reference)


async def test_a_stock_asked_for_more_than_its_first_page_gets_the_rest(
    emu: EmulatorServer, market: Market, tmp_path: Path
) -> None:
    """A stock's first fetch of 100 bars does not make it 'complete': 500 can be served."""
    async with client(emu, market, tmp_path) as c:
        await c.klines(["AAPL.US", "700.HK"], "1d", count=100)
        emu.reset()
        result = await c.klines(["AAPL.US", "700.HK"], "1d", count=400)
        assert ok_calls(emu, "kline") == 2
        reference = await cold(
            emu, market, ["AAPL.US", "700.HK"], "1d", count=400, cache=tmp_path / "cold"
        )
        pd.testing.assert_frame_equal(result.data, reference.data)
        assert result.failures.empty
        emu.reset()
        again = await c.klines(["AAPL.US", "700.HK"], "1d", count=400)
        assert served(emu) == {}
        pd.testing.assert_frame_equal(again.data, reference.data)


def _bars_below(store: BarStore, reference: pd.DataFrame, code: str) -> int:
    """Bars of ``code`` in ``reference`` older than everything the store covers for it."""
    lowest = store.coverage(code, "1h").segments[0][0]
    stamps = reference.loc[reference["code"] == code, "timestamp"]
    return int((stamps < pd.Timestamp(lowest, unit="s", tz="UTC")).sum())


async def test_an_earlier_start_fetches_only_the_new_pages(
    emu: EmulatorServer, market: Market, tmp_path: Path
) -> None:
    codes = ["AAPL.US", *PAGEABLE]
    start_1 = pd.Timestamp(NOW - 20 * DAY, unit="s", tz="UTC")
    start_0 = pd.Timestamp("2024-02-14T09:00Z")  # a Wednesday hour: every code has a bar there
    async with client(emu, market, tmp_path) as c:
        await c.klines(codes, "1h", start=start_1)
        reference = await cold(emu, market, codes, "1h", start=start_0, cache=tmp_path / "cold")
        # What the new chains must bring: the bars below what the first run stored. Every page
        # but a chain's last is full, and a chain stops once it reaches the new start.
        want = sum(
            math.ceil(_bars_below(c.store, reference.data, code) / FAST.kline_bars)
            for code in PAGEABLE
        )
        assert want >= 2 * len(PAGEABLE)  # several pages each: paging is really exercised
        emu.reset()
        result = await c.klines(codes, "1h", start=start_0)
    assert ok_calls(emu, "kline") == want
    pd.testing.assert_frame_equal(result.data, reference.data)
    assert failure_summary(result) == failure_summary(reference)


async def test_a_later_end_fetches_only_what_lies_beyond(
    emu: EmulatorServer, market: Market, tmp_path: Path
) -> None:
    """A closed range, then the same start up to now: one short page per FX/crypto code."""
    start, end = "2024-05-01", "2024-05-13T00:00Z"
    async with client(emu, market, tmp_path) as c:
        await c.klines(PAGEABLE, "1h", start=start, end=end)
        emu.reset()
        result = await c.klines(PAGEABLE, "1h", start=start)
    assert ok_calls(emu, "kline") == len(PAGEABLE)  # 2.6 days of hours fit in one page
    reference = await cold(emu, market, PAGEABLE, "1h", start=start, cache=tmp_path / "cold")
    pd.testing.assert_frame_equal(result.data, reference.data)


async def test_a_series_read_back_early_is_read_again_when_more_of_it_is_stored(
    alltick_emulator: Callable[..., EmulatorServer], tmp_path: Path
) -> None:
    """A series is read back from the store as soon as one of its chains ends. Around a
    cached middle, a range has two chains: the gap below ends after one page, the gap above
    goes on, and the daily cap cuts it after two pages. The result holds every bar stored,
    including the two pages that came after the early read."""
    capped = fast_plan(per_day=3)
    emu = alltick_emulator(plan=FAST, tokens={"setup": FAST, TOKEN: capped}, now=NOW)
    start = NOW - 3500 * HOUR
    async with AllTick(
        "setup", FAST, emu.url, cache=tmp_path, clock=lambda: NOW, progress=False
    ) as setup:
        await setup.klines("EURUSD", "1h", start=NOW - 3000 * HOUR, end=NOW - 2500 * HOUR)
    # One call at a time, so the chains take turns: below (ends), above, above, cut.
    async with client(emu, lambda: NOW, tmp_path, capped, concurrency=1) as c:
        result = await c.klines("EURUSD", "1h", start=start)
        stored = c.store.read("EURUSD", "1h", int(start), int(NOW))
    assert served(emu) == {"kline": {"200": 3}}
    assert result.failures[["code", "kind"]].values.tolist() == [["EURUSD", "daily-cap"]]
    assert result.data["timestamp"].max() == pd.Timestamp(NOW, unit="s", tz="UTC")
    got = result.data[list(stored.columns)].assign(
        timestamp=result.data["timestamp"].astype("int64") // 10**9
    )
    pd.testing.assert_frame_equal(got, stored)


# ----------------------------------------------------------------------------- estimate


async def test_estimate_predicts_the_calls_and_counts_the_cache(
    emu: EmulatorServer, market: Market, tmp_path: Path
) -> None:
    async with client(emu, market, tmp_path) as c:
        before = c.estimate("klines", MIXED, "1h", count=1200)
        assert before.cached == 0
        assert before.calls["kline"] == len(PAGEABLE) * 3 + (len(MIXED) - len(PAGEABLE))
        assert before.calls.get("batch-kline", 0) == 0
        assert before.route == "kline"
        assert before.seconds == pytest.approx(estimate_schedule(FAST, before.calls), abs=1e-6)
        # 20 calls spaced evenly at the plan's 50 /kline calls a second
        assert before.seconds == pytest.approx(19 / 50, abs=1e-5)
        assert before.share_of_day == before.total_calls / FAST.per_day
        assert before.remaining_today == FAST.per_day
        assert served(emu) == {}  # a dry run makes no call

        result = await c.klines(MIXED, "1h", count=1200)
        assert ok_calls(emu, "kline") == before.calls["kline"] == result.stats.calls["kline"]

        after = c.estimate("klines", MIXED, "1h", count=1200)
        assert after.total_calls == 0
        assert after.cached == len(MIXED)
        assert after.route == "cache"
        assert after.seconds == 0
        assert after.share_of_day == 0
        assert after.remaining_today == FAST.per_day - before.total_calls

        # Half of the codes ask for more: only their new pages are counted.
        bigger = c.estimate("klines", MIXED, "1h", count=1700)
        assert bigger.calls["kline"] == len(PAGEABLE)
        assert bigger.cached == len(MIXED) - len(PAGEABLE)
        used = c.budget.usage()["calls_today"]
        # A budget that has measured its calls estimates with the guard it learned.
        assert c.budget.margin.spread() is not None
        assert bigger.seconds == pytest.approx(
            estimate_schedule(FAST, bigger.calls, used, c.budget.guard), abs=1e-6
        )
        emu.reset()
        await c.klines(MIXED, "1h", count=1700)
        assert ok_calls(emu, "kline") == bigger.calls["kline"]

        # Far more calls than one second of the plan allows: the schedule takes time.
        huge = c.estimate("klines", PAGEABLE, "1m", count=100_000)
        assert huge.calls["kline"] == len(PAGEABLE) * 200
        used = c.budget.usage()["calls_today"]
        assert huge.seconds == pytest.approx(
            estimate_schedule(FAST, huge.calls, used, c.budget.guard), abs=1e-6
        )
        assert huge.seconds >= (huge.total_calls - FAST.endpoint_rates["kline"].calls) / 50
        assert huge.share_of_day == huge.total_calls / FAST.per_day


MOVES = [
    pytest.param("1h", {"count": 300}, {"count": 1300}, 3 * HOUR, id="stale-and-a-larger-count"),
    pytest.param(
        "1h", {"start": "2024-05-01"}, {"start": "2024-04-01"}, 3 * HOUR, id="stale-earlier-start"
    ),
    pytest.param("1d", {"count": 300}, {"count": 300}, DAY, id="next-day"),
    pytest.param("1d", {"count": 100}, {"count": 400}, DAY, id="next-day-larger-count"),
    pytest.param("1d", {"count": 300}, {"count": 300}, 5 * DAY, id="next-monday"),
]


@pytest.mark.parametrize(("interval", "before", "after", "move"), MOVES)
async def test_estimate_matches_the_run_after_the_market_moves(
    emu: EmulatorServer,
    market: Market,
    tmp_path: Path,
    interval: str,
    before: dict[str, Any],
    after: dict[str, Any],
    move: float,
) -> None:
    async with client(emu, market, tmp_path) as c:
        await c.klines(MIXED, interval, **before)
        market.advance(move)
        emu.reset()
        estimate = c.estimate("klines", MIXED, interval, **after)
        result = await c.klines(MIXED, interval, **after)
    made = {e: ok_calls(emu, e) for e in ("kline", "batch-kline")}
    assert made == estimate.calls
    assert sum(made.values()) > 0
    reference = await cold(emu, market, MIXED, interval, **after)
    pd.testing.assert_frame_equal(result.data, reference.data)
    # Never more calls than fetching it all again.
    assert sum(made.values()) <= reference.stats.total_calls


# ---------------------------------------------------------------------- the forming bar


async def test_the_forming_bar_is_refreshed_after_its_ttl_and_only_then(
    emu: EmulatorServer, market: Market, tmp_path: Path
) -> None:
    codes = ["AAPL.US", "BTCUSDT"]  # one per base path: a batch would not save a call
    async with client(emu, market, tmp_path, ttl=60) as c:
        first = await c.klines(codes, "1h", count=50)
        newest = first.data.groupby("code").tail(1).set_index("code")

        emu.reset()
        market.advance(45)  # within the TTL: the cached forming bar is served
        within = await c.klines(codes, "1h", count=50)
        assert served(emu) == {}
        pd.testing.assert_frame_equal(within.data, first.data)

        market.advance(45)  # 90 s after the fetch: past the TTL, still the same hour bar
        emu.reset()
        after = await c.klines(codes, "1h", count=50)
        assert ok_calls(emu, "kline") == len(codes)  # exactly one refresh call per code
        assert ok_calls(emu, "batch-kline") == 0

    reference = await cold(emu, market, codes, "1h", count=50)
    pd.testing.assert_frame_equal(after.data, reference.data)
    updated = after.data.groupby("code").tail(1).set_index("code")
    assert list(updated["timestamp"]) == list(newest["timestamp"])  # the same bar...
    assert (updated["close"] != newest["close"]).all()  # ...with what the server now says
    # The bars before it were closed already and are unchanged.
    pd.testing.assert_frame_equal(
        after.data.groupby("code").head(49), first.data.groupby("code").head(49)
    )


async def test_stale_forming_bars_of_many_codes_refresh_through_batch_kline(
    emu: EmulatorServer, market: Market, tmp_path: Path
) -> None:
    async with client(emu, market, tmp_path, ttl=60) as c:
        await c.klines(PAGEABLE, "1h", count=50)
        market.advance(90)
        emu.reset()
        estimate = c.estimate("klines", PAGEABLE, "1h", count=50)
        result = await c.klines(PAGEABLE, "1h", count=50)
    assert estimate.calls == {"kline": 0, "batch-kline": 1}
    assert served(emu) == {"batch-kline": {"200": 1}}
    assert result.stats.route == "batch-kline"
    reference = await cold(emu, market, PAGEABLE, "1h", count=50)
    pd.testing.assert_frame_equal(result.data, reference.data)


# ---------------------------------------------------------------------- no cache, latest


async def test_without_a_cache_every_run_calls_and_nothing_is_written(
    emu: EmulatorServer,
    market: Market,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    for name in ("HOME", "XDG_CACHE_HOME", "ALLTICK_CACHE_DIR"):
        monkeypatch.setenv(name, str(home))
    runs = []
    for _ in range(2):
        emu.reset()
        async with client(emu, market, False) as c:
            assert c.store is None
            runs.append(await c.klines(MIXED, "1d", count=300))
            await c.latest(MIXED, "1d")
        assert ok_calls(emu, "kline") == len(MIXED)
        assert ok_calls(emu, "batch-kline") == 2  # stocks and FX never share a call
        assert runs[-1].stats.cached == 0
        assert runs[-1].stats.route == "kline"
    pd.testing.assert_frame_equal(runs[0].data, runs[1].data)
    assert list(home.rglob("*")) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home"]


async def test_latest_with_the_cache_answers_like_without_and_keeps_the_cache_right(
    emu: EmulatorServer, market: Market, tmp_path: Path
) -> None:
    async with client(emu, market, False) as plain:
        expected = await plain.latest(MIXED, ["1h", "1d"], count=2)
    async with client(emu, market, tmp_path, ttl=60) as c:
        before = await c.latest(MIXED, ["1h", "1d"], count=2)  # nothing cached yet
        pd.testing.assert_frame_equal(before.data, expected.data)
        history = await c.klines(MIXED, "1d", count=30)
        pd.testing.assert_frame_equal(
            history.data, (await cold(emu, market, MIXED, "1d", count=30)).data
        )
        market.advance(120)  # the stored forming bars are stale now
        now_latest = await c.latest(MIXED, "1d", count=1)
        async with client(emu, market, False) as plain:
            pd.testing.assert_frame_equal(now_latest.data, (await plain.latest(MIXED, "1d")).data)
        emu.reset()
        # latest() refreshed every forming bar: the history is served without a call.
        again = await c.klines(MIXED, "1d", count=30)
        assert served(emu) == {}
    pd.testing.assert_frame_equal(again.data, (await cold(emu, market, MIXED, "1d", count=30)).data)


# ------------------------------------------------------------------------ the token, secret


def _files(root: Path) -> Iterator[Path]:
    return (p for p in root.rglob("*") if p.is_file())


async def test_the_token_appears_in_no_file_under_the_cache_directory(
    emu: EmulatorServer, market: Market, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    needles = [TOKEN.encode(), TOKEN.encode("utf-16-le"), TOKEN[4:40].encode()]
    async with client(emu, market, cache, ttl=60) as c:
        await c.klines(MIXED, "1h", count=600)
        await c.latest(MIXED, ["1m", "1d"], count=2)
        c.estimate("klines", MIXED, "1h", count=900)
        market.advance(120)
        await c.klines(MIXED, "1h", count=900)
        c.store.describe()
        open_files = {p: p.read_bytes() for p in _files(cache)}  # WAL files included
    closed_files = {p: p.read_bytes() for p in _files(cache)}

    for files in (open_files, closed_files):
        # The scan sees real content: both databases, with the series keys in them.
        assert {p.relative_to(cache).parts[0] for p in files} == {"bars", "budget"}
        assert any(b"BTCUSDT" in data for data in files.values())
        for path, data in files.items():
            for needle in needles:
                assert needle not in data, f"the token is in {path}"
    assert os.fsencode(TOKEN) not in b"".join(os.fsencode(p) for p in closed_files)


# ------------------------------------------------------- planning from coverage alone


def _bars(stamps: list[int]) -> pd.DataFrame:
    values = [float(k + 1) for k in range(len(stamps))]
    return pd.DataFrame(
        {"timestamp": stamps, **dict.fromkeys(FIELDS, values)}, dtype="float64"
    ).astype({"timestamp": "int64"})


D0 = 1_700_006_400 - 1_700_006_400 % DAY  # a UTC midnight


@pytest.mark.parametrize(
    "writes",
    [
        pytest.param([dict(span=(0, 9), forming=10)], id="one-run-with-forming"),
        pytest.param([dict(span=(0, 9))], id="segment-only"),
        pytest.param([dict(forming=3)], id="forming-only"),
        pytest.param([dict(span=(0, 4)), dict(forming=8)], id="forming-apart"),
        pytest.param([dict(span=(2, 6), floor=2, forming=7)], id="down-to-the-floor"),
        pytest.param([dict(span=(0, 2)), dict(span=(5, 7), forming=8)], id="two-segments"),
        pytest.param([dict(span=(3, 5), floor=1)], id="floor-apart"),
    ],
)
@pytest.mark.parametrize("n", [1, 2, 3, 5, 11, 500])
def test_top_run_from_coverage_agrees_with_the_store(
    tmp_path: Path, writes: list[dict[str, Any]], n: int
) -> None:
    """The planner's shortcut must answer exactly what ``BarStore.newest`` answers."""
    with BarStore(tmp_path, source="t") as store:
        for k, w in enumerate(writes):
            days = (
                [D0 + d * DAY for d in range(w["span"][0], w["span"][1] + 1)] if "span" in w else []
            )
            forming = _bars([D0 + w["forming"] * DAY]) if "forming" in w else None
            store.write(
                "EURUSD",
                "1d",
                _bars(days) if days else None,
                days[0] if days else None,
                days[-1] + DAY - 1 if days else None,
                floor=D0 + w["floor"] * DAY if "floor" in w else None,
                forming=forming,
                fetched_at=float(k) if forming is not None else None,
            )
        cov = store.coverage("EURUSD", "1d")
        newest = store.newest("EURUSD", "1d", n, forming=True)
        assert top_run(store, "EURUSD", "1d", cov, n) == (
            newest.run,
            len(newest.bars),
            newest.complete,
        )
