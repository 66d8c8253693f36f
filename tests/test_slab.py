"""The slab (answers.Slab): series put in place as their chains end make the same frame as
the series assembled and copied at the end (answers.build_frame), whatever the series are:
full, short, missing, overlapping, unsorted, trimmed by an end, or fetched twice."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from alltick_frames.core import planner
from alltick_frames.run import answers
from alltick_frames.store.codec import NF

NOW = 1_715_781_600
STEP = 3600
CODES = ["BTCUSDT", "ETHUSDT", "EURUSD", "XAUUSD"]


def pages_of(ts: np.ndarray, size: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """A chain's pages of the bars ``ts`` (sorted), newest first, ``size`` bars each."""
    rng = np.random.default_rng(seed)
    vals = rng.uniform(1, 2, (NF, ts.size))
    bounds = list(range(ts.size, 0, -size))
    return [(ts[max(0, b - size) : b].copy(), vals[:, max(0, b - size) : b].copy()) for b in bounds]


def both(req: planner.KlineRequest, chains: list[tuple[str, list]]) -> tuple[pd.DataFrame, ...]:
    """The frame of ``chains`` (code, pages) put into a slab, and built the usual way."""
    slab = answers.Slab.for_request(req)
    assert slab is not None
    series: dict[str, answers.Arrays] = {}
    for code, parts in chains:
        copy = [(t.copy(), v.copy()) for t, v in parts]
        slab.put(code, parts, req)
        assert parts == []
        series[code] = answers.trim_arrays(*answers.join_pages(copy), req)
    interval = str(req.interval)
    return slab.frame(interval), answers.build_frame(series, req.code_order, interval)


def grid(n: int, end: int = NOW - NOW % STEP) -> np.ndarray:
    return np.arange(end - (n - 1) * STEP, end + 1, STEP, dtype=np.int64)


@pytest.mark.parametrize("count", [1, 7, 500, 1200])
def test_full_series_are_the_frame_without_a_copy(count: int) -> None:
    req = planner.kline_request(CODES, "1h", count=count, now=NOW)
    chains = [(c, pages_of(grid(count + 3), 500, k)) for k, c in enumerate(CODES)]
    got, want = both(req, chains)
    pd.testing.assert_frame_equal(got, want)
    assert len(got) == count * len(CODES)


def test_short_missing_and_twice_fetched_series_are_moved_up_in_place() -> None:
    req = planner.kline_request(CODES, "1h", count=1000, now=NOW)
    chains = [
        ("EURUSD", pages_of(grid(1000), 500, 1)),
        ("BTCUSDT", pages_of(grid(420), 500, 2)),  # short: the history ran out
        ("XAUUSD", pages_of(grid(10), 500, 3)),  # fetched twice: the second replaces it
        ("XAUUSD", pages_of(grid(730), 300, 4)),
    ]  # ETHUSDT: no series at all
    got, want = both(req, chains)
    pd.testing.assert_frame_equal(got, want)
    assert list(dict.fromkeys(got["code"])) == ["BTCUSDT", "EURUSD", "XAUUSD"]


def test_overlapping_and_unsorted_pages_keep_the_copy_that_came_last() -> None:
    req = planner.kline_request(CODES[:2], "1h", count=600, now=NOW)
    ts = grid(900)
    overlapping = pages_of(ts, 400, 5)
    overlapping.insert(1, (ts[450:520].copy(), np.full((NF, 70), 9.0)))  # a page seen again
    shuffled = pages_of(ts, 300, 6)
    order = np.random.default_rng(7).permutation(300)
    shuffled[1] = (shuffled[1][0][order], shuffled[1][1][:, order])
    got, want = both(req, [("BTCUSDT", overlapping), ("ETHUSDT", shuffled)])
    pd.testing.assert_frame_equal(got, want)
    assert (got["close"] == 9.0).sum() == 20  # the page after it sent 50 of them again


def test_an_end_and_a_count_trim_each_series_to_a_run() -> None:
    end = NOW - NOW % STEP - 50 * STEP
    req = planner.kline_request(CODES, "1h", count=300, end=end, now=NOW)
    chains = [(c, pages_of(grid(300 + 80 * k), 200, k)) for k, c in enumerate(CODES)]
    got, want = both(req, chains)
    pd.testing.assert_frame_equal(got, want)
    assert got["timestamp"].max() == pd.Timestamp(end, unit="s", tz="UTC")


def test_no_slab_for_a_range_or_a_huge_request() -> None:
    ranged = planner.kline_request(CODES, "1h", start=NOW - 30 * 86_400, now=NOW)
    assert answers.Slab.for_request(ranged) is None
    many = [f"C{k:03d}USDT" for k in range(30)]
    huge = planner.kline_request(many, "1m", count=10_000_000, now=NOW)  # 3e8 bars
    assert answers.Slab.for_request(huge) is None


def test_an_empty_slab_is_an_empty_frame() -> None:
    req = planner.kline_request(CODES, "1h", count=10, now=NOW)
    slab = answers.Slab.for_request(req)
    assert slab is not None
    pd.testing.assert_frame_equal(slab.frame("1h"), answers.build_frame({}, req.code_order, "1h"))
