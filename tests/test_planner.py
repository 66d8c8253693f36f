"""The planner, pure: pages per code, page chains, batch packing, and reading times."""

from __future__ import annotations

import itertools
import math
from datetime import UTC, date, datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from alltick_frames.core import planner
from alltick_frames.core.codes import FOREX_PATH, STOCK_PATH, classify
from alltick_frames.core.intervals import parse_interval
from alltick_frames.core.planner import KlinePage, first_page, next_page, pages_needed
from alltick_frames.core.plans import get_plan

PLAN = get_plan("professional")
NOW = 1_715_781_600  # 2024-05-15 14:00 UTC
HOUR = 3600
EURUSD, AAPL = classify("EURUSD"), classify("AAPL.US")
H1 = parse_interval("1h")


def request(codes, interval="1h", count=None, start=None, end=None) -> planner.KlineRequest:
    return planner.kline_request(codes, interval, count, start, end, now=NOW)


def walk(page: KlinePage | None, available: int, spacing: int = HOUR) -> list[KlinePage]:
    """A page chain against a server holding ``available`` bars ``spacing`` apart ending at
    NOW: each page gets the newest ``num`` bars starting at or before its end."""
    pages = []
    while page is not None:
        pages.append(page)
        top = NOW if page.end_ts == 0 else page.end_ts
        newest = top - top % spacing
        oldest_held = NOW - NOW % spacing - (available - 1) * spacing
        stamps = [t for t in range(newest, oldest_held - 1, -spacing)][: page.num]
        if not stamps:
            break
        page = next_page(page, PLAN, len(stamps), min(stamps))
        assert len(pages) < 100
    return pages


# --------------------------------------------------------------------------- pages


@pytest.mark.parametrize(
    ("count", "pages"), [(1, 1), (499, 1), (500, 1), (501, 2), (1000, 2), (1001, 3), (1200, 3)]
)
def test_a_count_costs_ceil_count_over_500_pages_for_pageable_codes(count, pages) -> None:
    req = request(["EURUSD", "AAPL.US"], count=count)
    assert pages_needed(req, EURUSD, PLAN, NOW) == pages
    assert pages_needed(req, AAPL, PLAN, NOW) == 1  # stocks cannot page
    assert planner.kline_calls(req, PLAN, NOW) == {"kline": pages + 1}
    chain = walk(first_page(req, EURUSD, PLAN), available=10_000)
    assert len(chain) == pages and sum(p.num for p in chain) == count
    assert [p.num for p in chain] == [500] * (pages - 1) + [count - 500 * (pages - 1)]


@given(count=st.integers(1, 6000), available=st.integers(1, 6000))
def test_a_chain_is_never_longer_than_planned_and_its_pages_never_overlap(count, available):
    req = request(["BTCUSDT"], count=count)
    chain = walk(first_page(req, classify("BTCUSDT"), PLAN), available)
    assert len(chain) <= pages_needed(req, classify("BTCUSDT"), PLAN, NOW)
    assert len(chain) == min(math.ceil(count / 500), available // 500 + 1)
    ends = [p.end_ts for p in chain]
    assert ends[0] == 0 and all(a == 0 or a > b for a, b in itertools.pairwise(ends))
    # Each next page ends one second before the oldest bar held: contiguous, no overlap.
    for before, after in itertools.pairwise(chain):
        top = NOW if before.end_ts == 0 else before.end_ts
        oldest = (top - top % HOUR) - (before.num - 1) * HOUR
        assert after.end_ts == oldest - 1


def test_the_first_page_of_each_kind_of_request() -> None:
    end = NOW - 10 * HOUR
    by_count = request(["EURUSD", "AAPL.US"], count=120, end=end)
    assert first_page(by_count, EURUSD, PLAN) == KlinePage(EURUSD, H1, end, 120, None, 120)
    # A stock ignores the end time: take all it serves, then trim; no chain follows.
    assert first_page(by_count, AAPL, PLAN) == KlinePage(AAPL, H1, 0, 500, None, None)
    by_range = request(["EURUSD", "AAPL.US"], start=NOW - 2000 * HOUR)
    assert first_page(by_range, EURUSD, PLAN) == KlinePage(EURUSD, H1, 0, 500, NOW - 2000 * HOUR)
    assert first_page(by_range, AAPL, PLAN).num == 500
    # Neither count nor start: one page (500 bars).
    assert request(["EURUSD"]).count == planner.DEFAULT_COUNT == 500


def test_a_range_chain_stops_at_the_page_reaching_its_start() -> None:
    req = request(["EURUSD"], start=NOW - 1234 * HOUR)  # bars after the start: 1234
    chain = walk(first_page(req, EURUSD, PLAN), available=10_000)
    assert len(chain) == 1234 // 500 + 1 == 3
    assert len(chain) <= pages_needed(req, EURUSD, PLAN, NOW) == 3
    assert planner.chain_calls(chain[0], PLAN, NOW) == 3


def test_a_short_page_ends_the_chain_and_stocks_never_page() -> None:
    req = request(["EURUSD", "AAPL.US"], count=2000)
    assert len(walk(first_page(req, EURUSD, PLAN), available=700)) == 2
    assert next_page(first_page(req, AAPL, PLAN), PLAN, 500, NOW - 500 * HOUR) is None
    assert next_page(first_page(req, EURUSD, PLAN), PLAN, 499, NOW - 499 * HOUR) is None


def test_range_pages_are_an_upper_bound() -> None:
    req = request(["EURUSD"], "1d", start=NOW - 3 * 365 * 86400)
    assert pages_needed(req, EURUSD, PLAN, NOW) == math.ceil((3 * 365 + 1) / 500) == 3
    assert planner.bars_between(0, 86400, parse_interval("1d")) == 2
    assert planner.bars_between(10, 5, H1) == 0


# --------------------------------------------------------------------------- batch packing

codes_st = st.lists(
    st.sampled_from(["AAPL.US", "700.HK", "600519.SH", "000001.SZ", "EURUSD", "BTCUSDT", "GOLD"]),
    unique=True,
    min_size=1,
).map(lambda names: [classify(n) for n in names])
intervals_st = st.lists(st.sampled_from(["1m", "5m", "1h", "1d", "1w"]), unique=True, min_size=1)


@given(codes=codes_st, intervals=intervals_st, cap=st.integers(1, 12), num=st.sampled_from([1, 2]))
def test_pack_groups_fewest_calls_one_path_each_cap_kept_order_kept(codes, intervals, cap, num):
    groups = [(c, parse_interval(i)) for c in codes for i in intervals]
    chunks = planner.pack_groups(groups, cap, num)
    assert all(0 < len(ch.groups) <= cap and ch.num == num for ch in chunks)
    assert all(len({c.path for c, _ in ch.groups}) == 1 for ch in chunks)
    for path in (STOCK_PATH, FOREX_PATH):
        mine = [g for g in groups if g[0].path == path]
        packed = [g for ch in chunks if ch.groups[0][0].path == path for g in ch.groups]
        assert packed == mine  # every group once, in the caller's order
        assert sum(ch.groups[0][0].path == path for ch in chunks) == math.ceil(len(mine) / cap)
    assert planner.batch_calls(groups, get_plan("free")) == {
        "batch-kline": len(planner.pack_groups(groups, 5, 1))
    }


@given(codes=codes_st, cap=st.integers(1, 5))
def test_chunk_codes_one_path_each_cap_kept_order_kept(codes, cap):
    chunks = planner.chunk_codes(codes, cap)
    assert all(0 < len(ch) <= cap and len({c.path for c in ch}) == 1 for ch in chunks)
    for path in (STOCK_PATH, FOREX_PATH):
        mine = [c for c in codes if c.path == path]
        assert [c for ch in chunks if ch[0].path == path for c in ch] == mine
        assert sum(ch[0].path == path for ch in chunks) == math.ceil(len(mine) / cap)


def test_latest_groups_are_code_major_in_the_callers_order() -> None:
    groups = planner.latest_groups(["GOLD", "AAPL.US"], ["1d", 1], 2)
    assert [(c.code, str(i)) for c, i in groups] == [
        ("GOLD", "1d"),
        ("GOLD", "1m"),
        ("AAPL.US", "1d"),
        ("AAPL.US", "1m"),
    ]
    assert planner.latest_groups("GOLD", "4h", 1)[0][1].kline_type == 7


# --------------------------------------------------------------------------- times


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-03-01", "2024-03-01T00:00Z"),
        (" 2024-03-01 ", "2024-03-01T00:00Z"),
        ("2024-03-01T12:00Z", "2024-03-01T12:00Z"),
        ("2024-03-01T20:00+08:00", "2024-03-01T12:00Z"),
        (date(2024, 3, 1), "2024-03-01T00:00Z"),
        (datetime(2024, 3, 1, 12, tzinfo=UTC), "2024-03-01T12:00Z"),
        (datetime(2024, 3, 1, 7, tzinfo=timezone(timedelta(hours=-5))), "2024-03-01T12:00Z"),
        (pd.Timestamp("2024-03-01 12:00", tz="Asia/Hong_Kong"), "2024-03-01T04:00Z"),
        (1_709_294_400, "2024-03-01T12:00Z"),
        (1_709_294_400.9, "2024-03-01T12:00Z"),
        (np.int64(1_709_294_400), "2024-03-01T12:00Z"),  # e.g. read from a DataFrame
        (np.float64(1_709_294_400), "2024-03-01T12:00Z"),
    ],
)
def test_to_epoch_reads_unambiguous_times(value, expected) -> None:
    assert planner.to_epoch(value, "start") == int(pd.Timestamp(expected).timestamp())


@pytest.mark.parametrize(
    ("value", "words"),
    [
        (datetime(2024, 3, 1, 12), "has no time zone"),
        (pd.Timestamp("2024-03-01 12:00"), "has no time zone"),
        ("2024-03-01 12:00", "has no time zone"),
        ("2024-03-01T12:00", "has no time zone"),
        (np.datetime64("2024-03-01T12:00"), "has no time zone"),
        (1_709_294_400_000, "looks like milliseconds"),
        (np.int64(1_709_294_400_000), "looks like milliseconds"),
        (True, "is not a time"),
        (np.True_, "is not a time"),
        ("soon", "is not a time"),
        ("", "is not a time"),
        (pd.NaT, "is not a time"),
        (float("nan"), "is not a time"),
        (float("-inf"), "is not a time"),
    ],
)
def test_to_epoch_refuses_ambiguous_times(value, words) -> None:
    with pytest.raises(ValueError, match=words) as info:
        planner.to_epoch(value, "end")
    assert str(info.value).startswith("end=")


def test_counts_are_whole_numbers_numpy_ones_too() -> None:
    assert request(["EURUSD"], count=np.int64(1200)).count == 1200
    assert type(request(["EURUSD"], count=np.int32(7)).count) is int
    for bad in (0, -1, 2.0, np.float64(3), True, np.True_, "5"):
        with pytest.raises(ValueError, match="count must be a whole number >= 1"):
            request(["EURUSD"], count=bad)


def test_an_end_at_or_after_now_means_the_latest_bar() -> None:
    assert request(["EURUSD"], count=5, end=NOW).end is None
    assert request(["EURUSD"], count=5, end=NOW + 3600).end is None
    assert request(["EURUSD"], count=5, end=NOW - 1).end == NOW - 1
