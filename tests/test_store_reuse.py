"""A read that follows its planning reuses the index records planning read, only while the
database is provably unchanged: a write by this store, by another store on the same
directory (another connection, as another process would be) or damage planted with plain
SQL in between makes the read look again, and it returns what is stored now.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from alltick_frames.store import FIELDS, BarStore
from alltick_frames.store.backend import DiskBackend
from alltick_frames.store.codec import MIN_CHUNK

DAY = 86_400
CODES = ["A", "B", "C"]
#: Bars in each series, and in each write in between: enough that a write makes a chunk
#: of its own and leaves the old one in place (so an index read before it would still
#: find every chunk it names, and only the stamp tells that it is stale).
N = MIN_CHUNK


def bars(ts: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({"timestamp": ts, **{n: ts * 1.0 + k for k, n in enumerate(FIELDS)}})


@pytest.fixture
def root(tmp_path: Path) -> Path:
    with BarStore(tmp_path, source="test") as s:
        for code in CODES:
            s.write(code, "1d", bars(np.arange(N) * DAY), 0, N * DAY - 1)
    return tmp_path


@pytest.fixture
def store(root: Path) -> Iterator[BarStore]:
    with BarStore(root, source="test") as s:
        yield s


KEYS = [(code, "1d") for code in CODES]


def index_lookups(store: BarStore, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The index keys the store's backend is asked for from now on."""
    asked: list[str] = []
    real = DiskBackend.get_many

    def counted(self: DiskBackend, keys: list[str]) -> dict:
        asked.extend(k for k in keys if k.startswith("idx:"))
        return real(self, keys)

    monkeypatch.setattr(DiskBackend, "get_many", counted)
    return asked


def test_a_read_right_after_planning_does_not_read_the_indexes_again(
    store: BarStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked = index_lookups(store, monkeypatch)
    store.coverage_table(KEYS)
    assert len(asked) == 3
    got = store.read_arrays(KEYS, 0, N * DAY - 1)
    assert len(asked) == 3  # reused
    assert list(got.counts) == [N, N, N]
    store.read_arrays(KEYS[:2], 0, N * DAY - 1)  # a part of what was read: reused as well
    assert len(asked) == 3
    store.read_arrays([("D", "1d")], 0, N * DAY - 1)  # not read before: read
    assert asked[3:] == [k for k in asked[3:] if '"D"' in k] and len(asked) == 4


def test_a_write_by_this_store_in_between_is_seen(store: BarStore) -> None:
    store.coverage_table(KEYS)
    store.write("B", "1d", bars(np.arange(N, 2 * N) * DAY), N * DAY, 2 * N * DAY - 1)
    got = store.read_arrays(KEYS, 0, 2 * N * DAY)
    assert list(got.counts) == [N, 2 * N, N]


def test_a_write_by_another_connection_in_between_is_seen(root: Path, store: BarStore) -> None:
    store.coverage_table(KEYS)
    with BarStore(root, source="test") as other:  # its own connection, as another process
        other.write("C", "1d", bars(np.arange(N, 2 * N) * DAY), N * DAY, 2 * N * DAY - 1)
    got = store.read_arrays(KEYS, 0, 2 * N * DAY)
    assert list(got.counts) == [N, N, 2 * N]
    assert list(got.ts[-2:]) == [(2 * N - 2) * DAY, (2 * N - 1) * DAY]


def test_damage_planted_in_between_is_found(root: Path, store: BarStore) -> None:
    store.coverage_table(KEYS)
    con = sqlite3.connect(root / "bars" / "cache.db", isolation_level=None)
    con.execute("UPDATE Cache SET value = ? WHERE key LIKE 'idx:%\"A\"%'", (b"{nope",))
    con.close()
    got = store.read_arrays(KEYS, 0, 2 * N * DAY)
    assert list(got.counts) == [0, N, N]
    [note] = store.notes
    assert note.code == "A" and "its index fails its checksum" in note.text
