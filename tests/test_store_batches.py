"""Pages written together (issue 13): a batch of writes is one SQLite transaction, which a
kill or a failing disk leaves whole or absent, and nothing in it is ever lost; a disk ledger
that skips parsing its own last record still sees every other writer's reservations."""

from __future__ import annotations

import sqlite3
from datetime import datetime
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_budget_checks import UTC8

from alltick_frames.budget import Budget
from alltick_frames.core.clock import FakeClock
from alltick_frames.store import FIELDS, BarStore, CacheWarning

MINUTE = 60
T0 = datetime(2026, 5, 1, 10, 0, tzinfo=UTC8).timestamp()
TOKEN = "tk-batches-0123456789"


def bars(first: int, n: int) -> pd.DataFrame:
    ts = (first + np.arange(n)) * MINUTE
    frame = pd.DataFrame({"timestamp": ts})
    for i, name in enumerate(FIELDS):
        frame[name] = ts / MINUTE + i
    return frame


def write(store: BarStore, code: str, n: int) -> None:
    store.write(code, "1m", bars(0, n), 0, n * MINUTE - 1)


def on_disk(root: Path, code: str) -> int:
    with sqlite3.connect(root / "bars" / "cache.db") as con:
        (n,) = con.execute(
            "SELECT count(*) FROM Cache WHERE key LIKE ?", (f'%"{code}"%',)
        ).fetchone()
        return int(n)


def test_writes_made_together_are_one_transaction(tmp_path: Path) -> None:
    with BarStore(tmp_path, source="test") as store:
        store.write_together([partial(write, store, code, 700) for code in "ABC"])
        for code in "ABC":
            assert store.read(code, "1m")["open"].tolist() == list(range(700))
            assert store.coverage(code, "1m").segments == ((0, 700 * MINUTE - 1),)


def test_a_disk_that_fills_mid_batch_loses_nothing_of_the_batch(tmp_path: Path) -> None:
    """The first write of the batch fits, the second does not: the transaction rolls back
    whole (the first write reaches the disk no more than the others), the store carries on
    in memory with one warning, and every write of the batch is made again there."""
    with BarStore(tmp_path, source="test") as store:
        write(store, "OLD", 100)
    with sqlite3.connect(tmp_path / "bars" / "cache.db") as con:
        (pages,) = con.execute("PRAGMA page_count").fetchone()
        (free,) = con.execute("PRAGMA freelist_count").fetchone()
        # Room for 40 more pages: one write of 2,000 bars (112 KB, 28 pages), not two.
        con.execute("INSERT INTO Settings VALUES ('sqlite_max_page_count', ?)", (pages + 40,))
    assert free < 10
    with pytest.warns(CacheWarning, match="carrying on without writing to it") as caught:
        store = BarStore(tmp_path, source="test")
        assert store.writable
        store.write_together([partial(write, store, code, 2000) for code in "CDE"])
    assert len(caught) == 1
    with store:
        assert not store.writable
        for code in "CDE":
            assert store.read(code, "1m")["open"].tolist() == list(range(2000))
        assert len(store.read("OLD", "1m")) == 100  # the disk is still read
    for code in "CDE":
        assert on_disk(tmp_path, code) == 0


def test_an_error_that_is_not_the_disks_rolls_the_batch_back_and_is_raised(
    tmp_path: Path,
) -> None:
    def fail() -> None:
        raise RuntimeError("a bug")

    with BarStore(tmp_path, source="test") as store:
        with pytest.raises(RuntimeError, match="a bug"):
            store.write_together([partial(write, store, "A", 100), fail])
        assert store.writable and store.read("A", "1m").empty
        store.write_together([partial(write, store, "A", 100)])  # the store is still usable
        assert len(store.read("A", "1m")) == 100


def test_two_ledgers_on_one_directory_see_each_others_reservations(tmp_path: Path) -> None:
    """Each ledger keeps the state it last wrote and skips parsing its record while the
    record still holds those bytes; a reservation by the other must be seen all the same."""
    clock = FakeClock(T0)
    one = Budget.for_token("basic", TOKEN, cache_dir=tmp_path, clock=clock)
    two = Budget.for_token("basic", TOKEN, cache_dir=tmp_path, clock=clock)
    try:
        slots = [budget.reserve("kline") for budget in (one, two, one, one, two, one)]
        assert len(set(slots)) == 6 and slots == sorted(slots)
        assert one.usage()["calls_today"] == two.usage()["calls_today"] == 6
        two.release("kline", slots[-1])
        assert one.usage()["calls_today"] == 5
        assert one.reserve("kline") == slots[-1]  # the slot given back, seen by the other
    finally:
        one.close()
        two.close()
