"""BarStore: coverage arithmetic, exact bars, management, and safety across processes and kills."""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from alltick_frames.store import (
    CHUNK_BARS,
    COLUMNS,
    FIELDS,
    BarStore,
    Coverage,
    VacuumReport,
    default_cache_dir,
    merge_spans,
)
from alltick_frames.store.codec import index_key, sid_of
from alltick_frames.store.records import parse_index


def bars(ts: list[int] | np.ndarray, bump: float = 0.0) -> pd.DataFrame:
    """Bars whose values are a function of the timestamp (plus ``bump``), so any read checks."""
    ts = np.asarray(ts, np.int64)
    values = {name: ts * 1.0 + k + bump for k, name in enumerate(FIELDS)}
    return pd.DataFrame({"timestamp": ts, **values})


def assert_bars(frame: pd.DataFrame, ts: list[int] | np.ndarray, bump: float = 0.0) -> None:
    assert list(frame.columns[-7:]) == list(COLUMNS)
    assert frame["timestamp"].dtype == np.int64
    expected = bars(ts, bump)
    pd.testing.assert_frame_equal(frame[list(COLUMNS)].reset_index(drop=True), expected)


def index_of(store: BarStore, code: str, interval: str) -> dict:
    """The checked index record of a series (what the store itself believes)."""
    sid = sid_of(store.source, code, interval)
    return parse_index(store._backend.get(index_key(sid)), sid)


@pytest.fixture
def store(tmp_path: Path) -> BarStore:
    with BarStore(tmp_path, source="test") as s:
        yield s


# ------------------------------------------------------------------------ spans and merges


def test_merge_spans_joins_overlapping_and_touching_only() -> None:
    assert merge_spans([(10, 19), (0, 9), (30, 40), (35, 50), (52, 60)]) == (
        (0, 19),
        (30, 50),
        (52, 60),
    )


def test_adjacent_and_overlapping_writes_merge_with_exact_bars(store: BarStore) -> None:
    store.write("A", "1m", bars([0, 60]), 0, 119)
    cov = store.write("A", "1m", bars([120, 180]), 120, 239)  # touches: 120 == 119 + 1
    assert cov.segments == ((0, 239),)
    cov = store.write("A", "1m", bars([600, 660]), 600, 719)
    assert cov.segments == ((0, 239), (600, 719))
    cov = store.write("A", "1m", bars(range(180, 661, 60)), 180, 660)  # bridges both
    assert cov.segments == ((0, 719),)
    assert cov.bars == 12
    assert_bars(store.read("A", "1m"), range(0, 661, 60))


def test_bars_outside_the_span_are_ignored(store: BarStore) -> None:
    cov = store.write("A", "1m", bars([0, 60, 120, 180]), 60, 120)
    assert cov.segments == ((60, 120),)
    assert_bars(store.read("A", "1m"), [60, 120])


def test_a_span_may_hold_no_bars(store: BarStore) -> None:
    store.write("A", "1d", bars([]), 0, 86_399)
    cov = store.write("A", "1d", None, 86_400, 2 * 86_400 - 1)
    assert cov.segments == ((0, 2 * 86_400 - 1),)
    assert cov.bars == 0
    assert store.read("A", "1d").empty


def test_later_writes_win_and_duplicates_keep_the_last_row(store: BarStore) -> None:
    store.write("A", "1m", bars(range(0, 600, 60)), 0, 599)
    store.write("A", "1m", bars(range(300, 900, 60), bump=0.5), 300, 899)
    got = store.read("A", "1m")
    assert_bars(got.iloc[:5], range(0, 300, 60))
    assert_bars(got.iloc[5:], range(300, 900, 60), bump=0.5)

    twice = pd.concat([bars([900], bump=1.0), bars([900], bump=2.0)])
    store.write("A", "1m", twice, 900, 959)
    assert_bars(store.read("A", "1m", 900, 900), [900], bump=2.0)


def test_unsorted_and_datetime_input(store: BarStore) -> None:
    frame = bars([120, 0, 60])
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], unit="s", utc=True)
    store.write("A", "1m", frame, 0, 179)
    assert_bars(store.read("A", "1m"), [0, 60, 120])


def test_interval_aliases_name_one_series(store: BarStore) -> None:
    store.write("A", "D", bars([0]), 0, 86_399)
    assert store.coverage("A", "daily") == store.coverage("A", 8)
    assert_bars(store.read("A", "1d"), [0])


def test_sources_are_separate(tmp_path: Path) -> None:
    with BarStore(tmp_path, source="emulator") as emu, BarStore(tmp_path, source="live") as live:
        emu.write("A", "1d", bars([0]), 0, 86_399)
        assert live.coverage("A", "1d") == Coverage()
        assert live.read("A", "1d").empty
        assert len(emu.read("A", "1d")) == 1


# ------------------------------------------------------------------------ gaps, floor, forming


def test_gaps_without_and_with_floor(store: BarStore) -> None:
    store.write("A", "1m", bars([]), 100, 199)
    cov = store.write("A", "1m", bars([]), 300, 399)
    assert cov.gaps(0, 500) == [(0, 99), (200, 299), (400, 500)]
    assert cov.gaps(150, 350) == [(200, 299)]
    assert cov.gaps(120, 180) == []
    assert cov.covers(100, 199) and not cov.covers(100, 200)
    assert Coverage().gaps(5, 9) == [(5, 9)]

    cov = store.write("A", "1m", floor=150)
    assert cov.gaps(0, 500) == [(200, 299), (400, 500)]
    assert cov.covers(-(10**9), 199)
    assert store.write("A", "1m", floor=120).floor == 150  # the higher floor says more
    assert store.write("A", "1m", floor=250).gaps(0, 500) == [(250, 299), (400, 500)]
    with pytest.raises(ValueError, match="after"):
        cov.gaps(10, 5)


def test_forming_bar_counts_as_coverage_only_when_asked(store: BarStore) -> None:
    cov = store.write(
        "A", "1m", bars([0, 60]), 0, 119, forming=bars([120], bump=0.25), fetched_at=1000.0
    )
    assert (cov.forming_ts, cov.fetched_at) == (120, 1000.0)
    assert cov.gaps(0, 10_000) == [(120, 10_000)]
    assert cov.gaps(0, 10_000, forming=True) == []
    assert cov.is_fresh(now=1030.0, ttl=60) and not cov.is_fresh(now=1060.0, ttl=60)
    assert not Coverage().is_fresh(now=0.0, ttl=60)
    got = store.read("A", "1m")
    assert_bars(got.iloc[:2], [0, 60])
    assert_bars(got.iloc[2:], [120], bump=0.25)
    assert_bars(store.read("A", "1m", forming=False), [0, 60])
    assert store.read("A", "1m", 0, 119)["timestamp"].tolist() == [0, 60]


def test_forming_bar_is_replaced_by_newer_and_dropped_by_closed_data(store: BarStore) -> None:
    store.write("A", "1m", forming=bars([120], bump=0.1), fetched_at=10.0)
    cov = store.write("A", "1m", forming=bars([120], bump=0.2), fetched_at=20.0)
    assert (cov.forming_ts, cov.fetched_at) == (120, 20.0)
    cov = store.write("A", "1m", forming=bars([120], bump=0.3), fetched_at=15.0)  # stale
    assert cov.fetched_at == 20.0
    cov = store.write("A", "1m", forming=bars([60], bump=0.4), fetched_at=30.0)  # older bar
    assert cov.forming_ts == 120
    assert_bars(store.read("A", "1m"), [120], bump=0.2)

    cov = store.write("A", "1m", forming=bars([180], bump=0.5), fetched_at=40.0)
    assert (cov.forming_ts, cov.fetched_at) == (180, 40.0)

    cov = store.write("A", "1m", bars([120]), 120, 179)  # closed data below: forming stays
    assert cov.forming_ts == 180
    cov = store.write("A", "1m", bars([180]), 180, 239)  # closed data covers it: dropped
    assert (cov.forming_ts, cov.fetched_at) == (None, None)
    assert_bars(store.read("A", "1m"), [120, 180])
    # A forming bar at a time closed data already covers is refused outright.
    cov = store.write("A", "1m", forming=bars([180], bump=0.9), fetched_at=50.0)
    assert cov.forming_ts is None


def test_write_rejects_bad_input(store: BarStore) -> None:
    with pytest.raises(ValueError, match="after"):
        store.write("A", "1m", bars([]), 10, 5)
    with pytest.raises(ValueError, match="both lo and hi"):
        store.write("A", "1m", bars([]), 10)
    with pytest.raises(ValueError, match="span"):
        store.write("A", "1m", bars([0]))
    with pytest.raises(ValueError, match="fetched_at"):
        store.write("A", "1m", forming=bars([0]))
    with pytest.raises(ValueError, match="one bar"):
        store.write("A", "1m", forming=bars([0, 60]), fetched_at=1.0)
    with pytest.raises(ValueError, match="turnover"):
        store.write("A", "1m", bars([0]).drop(columns="turnover"), 0, 59)
    with pytest.raises(TypeError, match="epoch seconds"):
        store.write("A", "1m", bars([0]), 0.0, 59)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="interval"):
        store.write("A", "7m", bars([0]), 0, 59)
    assert store.coverage("A", "1m") == Coverage()


# ------------------------------------------------------------------------ reads


def test_read_ranges_are_inclusive_and_exact(store: BarStore) -> None:
    ts = np.arange(0, 6000 * 60, 60)
    store.write("A", "1m", bars(ts), 0, int(ts[-1]) + 59)
    assert_bars(store.read("A", "1m", 120, 300), [120, 180, 240, 300])
    assert_bars(store.read("A", "1m", 121, 299), [180, 240])
    assert_bars(store.read("A", "1m", hi=60), [0, 60])
    assert_bars(store.read("A", "1m", lo=int(ts[-1])), [ts[-1]])
    empty = store.read("A", "1m", 10**9, 10**9 + 5)
    assert empty.empty and list(empty.columns) == list(COLUMNS)
    assert empty.dtypes.tolist() == [np.int64] + [np.float64] * 6
    assert store.read("nothing", "1m").empty


def test_large_series_stays_in_few_bounded_chunks(store: BarStore) -> None:
    step, page = 60, 1500
    total = page * (3 * CHUNK_BARS // page)
    for start in range(0, total, page):  # appended in pages, like an incremental history fetch
        ts = np.arange(start, start + page) * step
        store.write("A", "1m", bars(ts), int(ts[0]), int(ts[-1]) + step - 1)
    row = store.describe().iloc[0]
    assert row["bars"] == total
    assert row["chunks"] <= -(-total // CHUNK_BARS) + 1
    index = index_of(store, "A", "1m")
    assert all(0 < n <= CHUNK_BARS for _, _, n, _, _ in index["chunks"])
    assert_bars(store.read("A", "1m"), np.arange(total) * step)
    lo, hi = (CHUNK_BARS - 3) * step, (CHUNK_BARS + 3) * step  # across a chunk boundary
    assert_bars(store.read("A", "1m", lo, hi), np.arange(CHUNK_BARS - 3, CHUNK_BARS + 4) * step)


class WriteMeter:
    """Counts the bytes a store hands its database (chunks and index records alike)."""

    def __init__(self, store: BarStore) -> None:
        self.bytes = 0
        backend, write = store._backend, store._backend.set

        def counted(key: str, value: bytes) -> None:
            self.bytes += len(value)
            write(key, value)

        backend.set = counted  # type: ignore[method-assign]


def test_paging_a_series_back_writes_each_bar_about_once(store: BarStore) -> None:
    """A history fetched newest page first, 20 pages further back, as the client records it:
    each page is written once, not folded again and again into the chunks next to it."""
    step, page, now = 60, 500, 10_000_000 * 60
    meter = WriteMeter(store)
    newest = now - np.arange(page)[::-1] * step  # the first page ends with the forming bar
    store.write(
        "A", "1m", bars(newest[:-1]), int(newest[0]), int(newest[-1]) - 1,
        forming=bars(newest[-1:]), fetched_at=now,
    )  # fmt: skip
    oldest = int(newest[0])
    for _ in range(20):
        ts = oldest - np.arange(1, page + 1)[::-1] * step
        store.write("A", "1m", bars(ts), int(ts[0]), oldest - 1)
        oldest = int(ts[0])
    closed = np.arange(oldest, now, step)
    assert closed.size == 21 * page - 1
    amplification = meter.bytes / (closed.size * 56)
    assert amplification <= 1.5, f"wrote {amplification:.2f}x the bars' bytes"
    assert_bars(store.read("A", "1m", forming=False), closed)
    assert store.coverage("A", "1m").segments == ((oldest, now - 1),)
    index = index_of(store, "A", "1m")
    assert all(0 < n <= CHUNK_BARS for _, _, n, _, _ in index["chunks"])


def test_one_bar_refreshes_gather_in_one_chunk(store: BarStore) -> None:
    """A daily series refreshed one bar at a time stays one chunk (one lookup to load)."""
    day = 86_400
    store.write("A", "1d", bars(np.arange(499) * day), 0, 499 * day - 1)
    for k in range(499, 800):
        store.write("A", "1d", bars([k * day]), k * day, (k + 1) * day - 1)
    assert store.describe().iloc[0]["chunks"] == 1
    assert_bars(store.read("A", "1d"), np.arange(800) * day)


def test_read_many_keeps_caller_order_with_categorical_codes(store: BarStore) -> None:
    store.write("B", "1d", bars([0, 86_400]), 0, 2 * 86_400 - 1)
    store.write("A", "1d", bars([86_400]), 0, 2 * 86_400 - 1, forming=bars([172_800]),
                fetched_at=5.0)  # fmt: skip
    store.write("A", "1h", bars([3600]), 3600, 7199)
    got = store.read_many([("A", "1d"), ("B", "D"), ("missing", "1d"), ("A", "1h"), ("A", "1d")])
    assert got["code"].tolist() == ["A", "A", "B", "B", "A"]
    assert got["interval"].tolist() == ["1d", "1d", "1d", "1d", "1h"]
    assert got["timestamp"].tolist() == [86_400, 172_800, 0, 86_400, 3600]
    assert list(got["code"].cat.categories) == ["A", "B", "missing"]
    assert list(got.columns) == ["code", "interval", *COLUMNS]
    assert_bars(got, [86_400, 172_800, 0, 86_400, 3600])

    closed = store.read_many([("A", "1d"), ("B", "1d")], 86_400, 86_400, forming=False)
    assert closed["code"].tolist() == ["A", "B"]
    nothing = store.read_many([])
    assert nothing.empty and list(nothing.columns) == ["code", "interval", *COLUMNS]


def test_bars_written_as_arrays_equal_bars_written_as_a_frame(store: BarStore) -> None:
    """Unsorted, with a repeated bar (the later copy wins), and a forming bar."""
    frame = bars([7200, 0, 3600, 0], bump=1.0)
    frame.loc[3, "close"] = -1.0
    arrays = (frame["timestamp"].to_numpy(), frame[list(FIELDS)].to_numpy().T)
    forming = bars([10_800])
    store.write("F", "1h", frame, 0, 10_799, forming=forming, fetched_at=1.0)
    forming_arrays = (np.array([10_800]), forming[list(FIELDS)].to_numpy().T)
    store.write("A", "1h", arrays, 0, 10_799, forming=forming_arrays, fetched_at=1.0)
    pd.testing.assert_frame_equal(store.read("A", "1h"), store.read("F", "1h"))
    assert store.read("A", "1h")["close"].tolist()[0] == -1.0
    assert store.coverage("A", "1h") == store.coverage("F", "1h")
    with pytest.raises(ValueError, match=r"shape \(6, 4\)"):
        store.write("A", "1h", (arrays[0], arrays[1][:5]), 0, 10_799)


def test_read_arrays_are_read_many_without_the_frame(store: BarStore) -> None:
    store.write("B", "1d", bars([0, 86_400]), 0, 2 * 86_400 - 1)
    store.write("A", "1h", bars([3600, 7200], bump=1.0), 3600, 7200)
    keys = [("A", "1h"), ("missing", "1d"), ("B", "D"), ("A", "1h")]
    got = store.read_arrays(keys)
    assert got.series == [("A", "1h"), ("missing", "1d"), ("B", "1d")]  # repeats read once
    assert got.counts.tolist() == [2, 0, 2]
    assert got.ts.tolist() == [3600, 7200, 0, 86_400]
    frame = store.read_many(keys)
    np.testing.assert_array_equal(got.vals, frame[list(FIELDS)].to_numpy().T)


def test_coverage_many_matches_coverage(store: BarStore) -> None:
    store.write("A", "1d", bars([0]), 0, 86_399, floor=0)
    store.write("B", "1h", bars([3600]), 3600, 7199, forming=bars([7200]), fetched_at=1.0)
    many = store.coverage_many([("A", "D"), ("B", "1h"), ("C", "1d")])
    assert many == {
        ("A", "1d"): store.coverage("A", "1d"),
        ("B", "1h"): store.coverage("B", "1h"),
        ("C", "1d"): Coverage(),
    }
    with pytest.raises(ValueError, match="code"):
        store.coverage_many([("", "1d")])
    with pytest.raises(ValueError, match="code"):
        store.read("", "1d")


def test_reader_retries_when_a_writer_swaps_the_index(store: BarStore, tmp_path: Path) -> None:
    store.write("A", "1m", bars([0, 60]), 0, 119)
    other = BarStore(tmp_path, source="test")
    real_get = store._backend.get
    swapped = []

    def get_with_a_writer_in_between(key: str, *args: object, **kwargs: object) -> object:
        if key.startswith("chunk:") and not swapped:
            swapped.append(key)
            other.write("A", "1m", bars([60], bump=1.0), 60, 119)  # replaces the chunk
        return real_get(key, *args, **kwargs)

    store._backend.get = get_with_a_writer_in_between  # type: ignore[method-assign]
    got = store.read("A", "1m")
    assert swapped and store.notes == []  # a writer's swap is not damage
    assert_bars(got.iloc[:1], [0])
    assert_bars(got.iloc[1:], [60], bump=1.0)
    other.close()


# ------------------------------------------------------------------------ newest N


def test_newest_counts_only_the_covered_run(store: BarStore) -> None:
    day = 86_400
    store.write("A", "1d", bars([0, day]), 0, 2 * day - 1)
    store.write("A", "1d", bars([5 * day, 6 * day, 7 * day]), 5 * day, 8 * day - 1)
    tail = store.newest("A", "1d", 2)
    assert tail.complete and tail.run == (5 * day, 8 * day - 1) and tail.fetched_at is None
    assert_bars(tail.bars, [6 * day, 7 * day])

    tail = store.newest("A", "1d", 5)  # the hole before 5 * day cannot be skipped
    assert not tail.complete
    assert_bars(tail.bars, [5 * day, 6 * day, 7 * day])

    tail = store.newest("A", "1d", 2, hi=day)
    assert tail.complete
    assert_bars(tail.bars, [0, day])
    assert not store.newest("A", "1d", 3, hi=day).complete
    assert store.newest("A", "1d", 3, hi=3 * day).run is None  # not covered at all

    store.write("A", "1d", floor=0)  # no older bars exist: fewer than n is all there is
    tail = store.newest("A", "1d", 3, hi=day)
    assert tail.complete and len(tail.bars) == 2
    assert not store.newest("nothing", "1d", 1).complete
    with pytest.raises(ValueError, match="n must"):
        store.newest("A", "1d", 0)


def test_newest_includes_the_forming_bar_and_its_age(store: BarStore) -> None:
    day = 86_400
    cov = store.write(
        "A", "1d", bars([0, day]), 0, 2 * day - 1, forming=bars([2 * day]), fetched_at=99.0
    )
    assert cov.covers(0, 10 * day, forming=True)
    tail = store.newest("A", "1d", 2)
    assert tail.complete and tail.fetched_at == 99.0
    assert_bars(tail.bars, [day, 2 * day])
    tail = store.newest("A", "1d", 2, forming=False)
    assert tail.complete and tail.fetched_at is None
    assert_bars(tail.bars, [0, day])
    assert not store.newest("A", "1d", 4).complete

    # Closed data that stops short of the forming bar leaves a hole a count cannot cross.
    store.write("B", "1d", bars([0]), 0, day - 1, forming=bars([2 * day]), fetched_at=1.0)
    tail = store.newest("B", "1d", 2)
    assert not tail.complete
    assert_bars(tail.bars, [2 * day])


# ------------------------------------------------------------------------ management


def test_describe_clear_and_size(tmp_path: Path) -> None:
    day = 86_400
    with BarStore(tmp_path, source="emu") as emu, BarStore(tmp_path, source="live") as live:
        assert emu.describe().empty
        emu.write("A", "1d", bars([0, day]), 0, 2 * day - 1, floor=0)
        emu.write("A", "1d", bars([5 * day]), 5 * day, 6 * day - 1, forming=bars([6 * day]),
                  fetched_at=7 * day)  # fmt: skip
        emu.write("A", "1h", bars([3600]), 3600, 7199)
        emu.write("B", "1d", bars([0]), 0, day - 1)
        live.write("A", "1d", bars([0]), 0, day - 1)
        assert emu.size_bytes() > 0

        table = emu.describe()
        assert table[["source", "code", "interval"]].values.tolist() == [
            ["emu", "A", "1d"], ["emu", "A", "1h"], ["emu", "B", "1d"], ["live", "A", "1d"],
        ]  # fmt: skip
        row = table.iloc[0]
        assert (row["bars"], row["segments"], row["chunks"]) == (3, 2, 1)
        assert row["first"] == pd.Timestamp(0, unit="s", tz="UTC")
        assert row["last"] == pd.Timestamp(5 * day, unit="s", tz="UTC")
        assert row["floor"] == pd.Timestamp(0, unit="s", tz="UTC")
        assert row["forming"] == pd.Timestamp(6 * day, unit="s", tz="UTC")
        assert row["fetched_at"] == pd.Timestamp(7 * day, unit="s", tz="UTC")
        assert row["bytes"] == 3 * 56
        assert pd.isna(table.iloc[1]["floor"]) and pd.isna(table.iloc[1]["forming"])
        assert len(emu.describe(code="A")) == 3
        assert len(emu.describe(interval="D", source="emu")) == 2

        assert emu.clear(code="A", interval="1h") == 1
        assert emu.coverage("A", "1h") == Coverage()
        assert emu.clear(source="live") == 1
        assert live.read("A", "1d").empty
        assert len(emu.read("A", "1d")) == 4
        assert emu.clear() == 2
        assert emu.describe().empty
        assert emu._backend.list_keys() == ["meta:format"]  # no chunk left behind
        assert emu.vacuum().orphan_chunks == 0


def test_vacuum_removes_orphans_and_repairs_missing_chunks(store: BarStore) -> None:
    day = 86_400
    store.write("A", "1d", bars([0, day]), 0, 2 * day - 1)
    store.write("A", "1d", bars(np.arange(10, 20) * day), 10 * day, 20 * day - 1)
    store.write("B", "1d", bars(np.arange(CHUNK_BARS + 10) * day), 0, (CHUNK_BARS + 10) * day)
    # Damage the store's own writes cannot cause: a leftover chunk, a lost chunk.
    store._backend.set('chunk:["test","A","1d"]:' + "0" * 32, b"leftover")
    lost = index_of(store, "B", "1d")["chunks"][0]
    store._backend.delete(lost[3])

    report = store.vacuum()
    assert report == VacuumReport(orphan_chunks=1, repaired_series=1, dropped_chunks=1)
    assert str(report) == (
        "repaired 1 series by dropping 1 damaged or missing piece(s) of bars; those spans are "
        "fetched again; removed 1 orphaned piece(s) of bars"
    )
    cov = store.coverage("B", "1d")
    assert cov.gaps(0, (CHUNK_BARS + 10) * day) == [(lost[0], lost[1])]
    assert_bars(store.read("B", "1d"), np.arange(lost[2], CHUNK_BARS + 10) * day)
    assert_bars(store.read("A", "1d"), [0, day, *np.arange(10, 20) * day])
    assert store.vacuum() == VacuumReport()
    assert str(VacuumReport()) == "found nothing to repair"


def test_a_read_drops_a_missing_chunk_from_coverage_and_notes_it(store: BarStore) -> None:
    day = 86_400
    store.write("B", "1d", bars(np.arange(CHUNK_BARS + 10) * day), 0, (CHUNK_BARS + 10) * day)
    lost = index_of(store, "B", "1d")["chunks"][0]
    store._backend.delete(lost[3])
    assert_bars(store.read("B", "1d"), np.arange(lost[2], CHUNK_BARS + 10) * day)
    assert store.coverage("B", "1d").gaps(0, lost[1] + day) == [(lost[0], lost[1])]
    [note] = store.notes
    assert (note.source, note.code, note.interval) == ("test", "B", "1d")
    assert str(note) == (
        "B 1d: a piece of its bars is missing: dropped its bars from 1970-01-01 00:00 to "
        f"{pd.Timestamp(lost[1], unit='s'):%Y-%m-%d %H:%M}, so they are fetched again"
    )
    assert store.vacuum() == VacuumReport()


def test_default_directory_follows_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("ALLTICK_CACHE_DIR", str(tmp_path / "explicit"))
    assert default_cache_dir() == tmp_path / "explicit"
    monkeypatch.delenv("ALLTICK_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "alltick-frames"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "alltick-frames"
    monkeypatch.setenv("ALLTICK_CACHE_DIR", str(tmp_path / "explicit"))
    with BarStore() as s:
        assert s.directory == tmp_path / "explicit" / "bars"
        assert "explicit" in repr(s) and s.directory.is_dir()


# ------------------------------------------------------------------------ processes and kills

MINUTE = 60
N_SPANS = 100


def _exists(ts: np.ndarray) -> np.ndarray:
    """The market of these tests: a bar every minute except every 10th (a trading pause)."""
    return ts[(ts // MINUTE) % 10 != 3]


def _span_bars(lo_minute: int, hi_minute: int) -> tuple[pd.DataFrame, int, int]:
    ts = _exists(np.arange(lo_minute, hi_minute + 1, dtype=np.int64) * MINUTE)
    return bars(ts), lo_minute * MINUTE, hi_minute * MINUTE + MINUTE - 1


def _write_spans(directory: str, spans: list[tuple[int, int]], go: object) -> None:
    with BarStore(directory, source="test") as s:
        go.wait()  # type: ignore[attr-defined]  # both writers start together, so they interleave
        for lo, hi in spans:
            frame, a, b = _span_bars(lo, hi)
            s.write("X", "1m", frame, a, b)


def _write_forever(directory: str, seed: int, ready: object) -> None:
    rng = random.Random(seed)
    with BarStore(directory, source="test") as s:
        ready.set()  # type: ignore[attr-defined]
        while True:
            lo = rng.randrange(0, 40_000)
            frame, a, b = _span_bars(lo, lo + rng.randrange(1, 6_000))
            s.write("X", "1m", frame, a, b)


def _die_inside_the_transaction(directory: str, method: str) -> None:
    """Write once, SIGKILLing ourselves at the worst moment: new chunks stored, index not."""
    s = BarStore(directory, source="test")
    real = getattr(s._backend, method)

    def fatal(key: str, *args: object, **kwargs: object) -> object:
        if method == "delete" or key.startswith("idx:"):
            os.kill(os.getpid(), signal.SIGKILL)
        return real(key, *args, **kwargs)

    setattr(s._backend, method, fatal)
    frame, a, b = _span_bars(100, 200)
    s.write("X", "1m", frame, a, b)


def assert_consistent(store: BarStore) -> None:
    """Every index entry's data exists, every covered span holds exactly the bars that exist,
    and nothing lies outside the coverage."""
    cov = store.coverage("X", "1m")
    got = store.read("X", "1m")
    ts = got["timestamp"].to_numpy()
    assert_bars(got, ts)
    assert store.notes == []  # nothing was found damaged or missing
    expected = np.concatenate(
        [_exists(np.arange(lo // MINUTE, hi // MINUTE + 1) * MINUTE) for lo, hi in cov.segments]
        or [np.empty(0, np.int64)]
    )
    assert np.array_equal(ts, expected)
    assert store.vacuum().repaired_series == 0


def test_two_processes_writing_one_series_keep_every_segment(tmp_path: Path) -> None:
    spans = [(k * 300, k * 300 + 149) for k in range(N_SPANS)]  # the other fills the gaps
    others = [(k * 300 + 150, k * 300 + 299) for k in range(N_SPANS)]
    ctx = multiprocessing.get_context("spawn")
    go = ctx.Event()
    procs = [
        ctx.Process(target=_write_spans, args=(str(tmp_path), part, go)) for part in (spans, others)
    ]
    for p in procs:
        p.start()
    time.sleep(0.2)
    go.set()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    with BarStore(tmp_path, source="test") as s:
        assert s.coverage("X", "1m").segments == ((0, N_SPANS * 300 * MINUTE - 1),)
        assert_consistent(s)
        assert len(s.read("X", "1m")) == N_SPANS * 300 * 9 // 10


def _context() -> multiprocessing.context.BaseContext:
    # fork starts in milliseconds, which lets the test kill many writers quickly.
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else "spawn")


def test_sigkill_during_writes_leaves_a_consistent_store(tmp_path: Path) -> None:
    ctx = _context()
    rng = random.Random(4)
    for round_ in range(6):
        ready = ctx.Event()
        proc = ctx.Process(target=_write_forever, args=(str(tmp_path), round_, ready))
        proc.start()
        assert ready.wait(30)
        time.sleep(rng.uniform(0.02, 0.15))
        os.kill(proc.pid, signal.SIGKILL)
        proc.join(10)
        assert proc.exitcode == -signal.SIGKILL
        with BarStore(tmp_path, source="test") as s:
            assert_consistent(s)
    with BarStore(tmp_path, source="test") as s:
        assert s.coverage("X", "1m").bars > 0


@pytest.mark.parametrize("method", ["set", "delete"])
def test_kill_between_new_chunks_and_index_swap_keeps_the_old_state(
    tmp_path: Path, method: str
) -> None:
    with BarStore(tmp_path, source="test") as s:
        frame, a, b = _span_bars(150, 180)
        s.write("X", "1m", frame, a, b)
        before = s.coverage("X", "1m"), s.read("X", "1m"), sorted(s._backend.list_keys())
    proc = _context().Process(target=_die_inside_the_transaction, args=(str(tmp_path), method))
    proc.start()
    proc.join(30)
    assert proc.exitcode == -signal.SIGKILL
    with BarStore(tmp_path, source="test") as s:
        assert s.coverage("X", "1m") == before[0]
        pd.testing.assert_frame_equal(s.read("X", "1m"), before[1])
        assert sorted(s._backend.list_keys()) == before[2]
        assert_consistent(s)
        assert s.vacuum().orphan_chunks == 0
