"""What a fetch job with a store leaves resident (issue 13 item 4): SQLite's page caches filled
by the job's writes, and by its read of the bars just written, are freed before the frame is
built, so that only the frame stays (peak <= 1.5x the frame, ``benchmarks/client_ceiling.py``).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from test_client_support import (
    NOW,
    assert_same_bars,
    fast_plan,
    reference,
    run_kline_job,
)
from test_client_support import tokens as plan_tokens

from alltick_frames.core import planner
from alltick_frames.run import answers
from alltick_frames.store import FIELDS, BarStore

PLAN = fast_plan(1000)
CODES = ["EURUSD", "GBPUSD", "BTCUSDT", "ETHUSDT"]


def _sqlite_memory() -> Any:
    """SQLite's own count of the bytes it holds (``sqlite3_memory_used``), or None where
    Python's sqlite3 is not linked against a shared libsqlite3 that can be asked."""
    name = ctypes.util.find_library("sqlite3")
    try:
        lib = ctypes.CDLL(name or "libsqlite3.so.0")
        used = lib.sqlite3_memory_used
    except (OSError, AttributeError):
        return None
    used.restype = ctypes.c_int64
    return used


MEMORY_USED = _sqlite_memory()


class SpyStore(BarStore):
    """A store that records on which thread its batches are written and its caches freed."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.events: list[tuple[str, str]] = []

    def write_together(self, writes: Any) -> None:
        self.events.append(("write", threading.current_thread().name))
        super().write_together(writes)

    def shrink(self) -> None:
        self.events.append(("shrink", threading.current_thread().name))
        super().shrink()


async def test_the_writer_threads_page_cache_is_freed_once_the_job_is_written(
    alltick_emulator, tmp_path: Path
) -> None:
    emu = alltick_emulator(tokens=plan_tokens(PLAN))
    req = planner.kline_request(CODES, "1h", count=2000, now=NOW.timestamp())
    with SpyStore(tmp_path) as store:
        job, _, failures = await run_kline_job(emu.url, req, store, PLAN)
        assert failures == []
        data = job.frame()
    writes = [thread for event, thread in store.events if event == "write"]
    assert writes and all(thread.startswith("alltick-write") for thread in writes)
    # Once, after the last batch, on the thread whose connection wrote them.
    assert [e for e in store.events if e[0] == "shrink"] == [store.events[-1]]
    assert store.events[-1][0] == "shrink" and store.events[-1][1].startswith("alltick-write")
    assert_same_bars(data, await reference(emu, CODES, 5, 2000))


def _fill(store: BarStore, codes: int, n: int) -> None:
    ts = (np.arange(n, dtype=np.int64) + 1) * 60
    vals = np.tile(np.arange(n, dtype=np.float64), (len(FIELDS), 1))
    for k in range(codes):
        store.write(f"C{k}USDT", "1m", (ts, vals + k), int(ts[0]), int(ts[-1]))


@pytest.mark.skipif(MEMORY_USED is None, reason="SQLite's memory cannot be asked here")
def test_a_read_of_bars_just_written_leaves_no_page_cached(tmp_path: Path) -> None:
    with BarStore(tmp_path) as store:
        _fill(store, 8, 20_000)  # 8 x 1.1 MB of bars: more than the small cache holds
        keys = [(f"C{k}USDT", "1m") for k in range(8)]
        store.shrink()
        before = MEMORY_USED()
        got = store.read_arrays(keys)
        assert got.ts.size == 8 * 20_000
        filled = MEMORY_USED()
        assert filled - before > 4 << 20  # the read left pages in this connection's cache
        store.shrink()
        assert MEMORY_USED() - before < 1 << 20
        # A read inside passing() frees them on the way out by itself.
        with store.passing():
            assert store.read_arrays(keys).ts.size == 8 * 20_000
        assert MEMORY_USED() - before < 1 << 20


def test_the_frames_timestamps_are_the_reads_array_not_a_copy() -> None:
    ts = (np.arange(2000, dtype=np.int64) + 1) * 3600
    vals = np.tile(np.arange(2000, dtype=np.float64), (len(FIELDS), 1))
    frame = answers._frame(ts, vals, ["C0USDT", "C1USDT"], np.array([1000, 1000]), "1h")
    assert str(frame["timestamp"].dtype) == "datetime64[ns, UTC]"
    assert frame["timestamp"].iloc[0] == pd.Timestamp(3600, unit="s", tz="UTC")
    assert frame["timestamp"].iloc[-1] == pd.Timestamp(2000 * 3600, unit="s", tz="UTC")
    column = pd.DatetimeIndex(frame["timestamp"]).asi8
    assert np.shares_memory(column, ts) and np.shares_memory(frame["open"].to_numpy(), vals)
