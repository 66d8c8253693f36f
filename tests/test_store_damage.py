"""BarStore against damage it cannot cause itself: planted pickles, damaged indexes and
chunks, damaged database files, a full or read-only database, a directory others can write.

Damage is done with plain SQL on the store's own file, as a person or another program would.
Every test checks the store never returns a bar that differs from what was written, and that
nothing planted runs.
"""

from __future__ import annotations

import os
import pickle
import sqlite3
import stat
import warnings
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import orjson
import pandas as pd
import pytest

from alltick_frames.store import (
    CHUNK_BARS,
    COLUMNS,
    FIELDS,
    BarStore,
    CacheWarning,
    Coverage,
    StoreError,
    UnsafeCacheDir,
    VacuumReport,
)
from alltick_frames.store.codec import index_key, sid_of
from alltick_frames.store.records import parse_index

MINUTE = 60
#: Two chunks: [0, CHUNK_BARS) and the rest.
N = CHUNK_BARS + 1000


def bars(ts: np.ndarray | list[int]) -> pd.DataFrame:
    ts = np.asarray(ts, np.int64)
    return pd.DataFrame({"timestamp": ts, **{n: ts * 1.0 + k for k, n in enumerate(FIELDS)}})


def assert_true_bars(frame: pd.DataFrame) -> None:
    """Every bar is one that was written: its values follow from its timestamp."""
    expected = bars(frame["timestamp"].to_numpy())
    pd.testing.assert_frame_equal(frame[list(COLUMNS)].reset_index(drop=True), expected)
    assert frame["timestamp"].is_monotonic_increasing and frame["timestamp"].is_unique


class Planted:
    """A pickle that creates ``path`` when it is unpickled."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (str(self.path), "w"))


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A cache with series A (two chunks) and B (one) of source "test"."""
    with BarStore(tmp_path / "cache", source="test") as s:
        s.write("A", "1m", bars(np.arange(N) * MINUTE), 0, N * MINUTE - 1)
        s.write("B", "1m", bars(np.arange(100) * MINUTE), 0, 100 * MINUTE - 1)
    return tmp_path / "cache"


def db(root: Path) -> sqlite3.Connection:
    return sqlite3.connect(root / "bars" / "cache.db", isolation_level=None)


def key_of(code: str) -> str:
    return index_key(sid_of("test", code, "1m"))


def index(root: Path, code: str) -> dict:
    with db(root) as con:
        (blob,) = con.execute("SELECT value FROM Cache WHERE key = ?", (key_of(code),)).fetchone()
    return parse_index(blob, sid_of("test", code, "1m"))


def set_value(root: Path, key: str, value: object, mode: int = 1) -> None:
    con = db(root)
    con.execute("UPDATE Cache SET value = ?, mode = ? WHERE key = ?", (value, mode, key))
    con.close()


@pytest.fixture
def store(root: Path) -> Iterator[BarStore]:
    with BarStore(root, source="test") as s:
        yield s


# ------------------------------------------------------------------------ planted pickles


def plant(root: Path, where: str, marker: Path) -> None:
    payload = pickle.dumps(Planted(marker))
    con = db(root)
    if where == "index value":
        con.execute("UPDATE Cache SET mode = 4, value = ? WHERE key = ?", (payload, key_of("A")))
    elif where == "chunk value":
        con.execute(
            "UPDATE Cache SET mode = 4, value = ? WHERE key = ?",
            (payload, index(root, "A")["chunks"][0][3]),
        )
    elif where == "key":
        con.execute(
            "INSERT INTO Cache (key, raw, store_time, mode, value) VALUES (?, 0, 0, 1, ?)",
            (payload, b"x"),
        )
    else:  # a side file, named by the index row
        (root / "bars" / "planted.val").write_bytes(payload)
        con.execute(
            "UPDATE Cache SET mode = 4, filename = 'planted.val', value = NULL WHERE key = ?",
            (key_of("A"),),
        )
    con.close()


PLACES = ["index value", "chunk value", "key", "side file"]


@pytest.mark.parametrize("where", PLACES)
def test_a_planted_pickle_runs_nothing_in_any_method(root: Path, tmp_path: Path, where: str):
    marker = tmp_path / "pwned"
    plant(root, where, marker)
    pickle.loads(pickle.dumps(Planted(tmp_path / "works")))  # the payload does work
    assert (tmp_path / "works").exists()
    with BarStore(root, source="test") as s:
        s.coverage_many([("A", "1m"), ("B", "1m")])
        assert_true_bars(s.read("A", "1m"))
        s.read_many([("A", "1m"), ("B", "1m")])
        s.newest("A", "1m", 10)
        s.write("A", "1m", bars([N * MINUTE]), N * MINUTE, N * MINUTE + 59)
        s.describe()
        report = s.vacuum()
        s.clear()
    assert not marker.exists()
    assert (root / "bars" / "planted.val").exists() == (where == "side file")  # never deleted
    if where == "key":
        assert report.foreign_entries == 1


def test_a_pickled_index_drops_its_series_with_a_note(root: Path, tmp_path: Path):
    plant(root, "index value", tmp_path / "pwned")
    with BarStore(root, source="test") as s:
        assert s.coverage("A", "1m") == Coverage()
        assert s.read("A", "1m").empty
        [note] = s.notes
        assert str(note) == (
            "A 1m: its index is not one this store wrote (a pickle, or another kind of value): "
            "dropped the series, so it is fetched again"
        )
        assert len(s.read("B", "1m")) == 100
        assert s.vacuum() == VacuumReport()  # its chunks went with it


# ------------------------------------------------------------------------ damaged indexes


def forged(record: dict) -> bytes:
    """An index record with a valid checksum: only the record's own checks can catch it."""
    body = orjson.dumps(record)
    return body + b"\n%08x" % zlib.crc32(body)


def raw_index(root: Path, code: str) -> dict:
    with db(root) as con:
        (blob,) = con.execute("SELECT value FROM Cache WHERE key = ?", (key_of(code),)).fetchone()
    return orjson.loads(blob.rpartition(b"\n")[0])


INDEX_DAMAGE = {
    "text": (lambda r: "not bytes", "its index is not one this store wrote"),
    "number": (lambda r: 42, "its index is not one this store wrote"),
    "flipped byte": (lambda r: None, "its index fails its checksum"),
    "not json": (lambda r: b"{nope" + b"\n%08x" % zlib.crc32(b"{nope"), "is not JSON"),
    "a list": (lambda r: forged([1, 2]), "its index has format None, not 2"),
    "old format": (lambda r: forged({**r, "v": 1}), "its index has format 1, not 2"),
    "short chunk entry": (
        lambda r: forged({**r, "chunks": [c[:3] for c in r["chunks"]]}),
        "its index is malformed: not enough values to unpack",
    ),
    "chunk of another series": (
        lambda r: forged({**r, "chunks": [[*c[:3], c[3].replace("A", "B"), c[4]] for c in r["chunks"]]}),  # noqa: E501
        "its index is malformed: chunk entry [",
    ),
    "overlapping chunks": (
        lambda r: forged({**r, "chunks": [r["chunks"][1], r["chunks"][0]]}),
        "is impossible here (its types, its place after the one before",
    ),
    "impossible count": (
        lambda r: forged({**r, "chunks": [[c[0], c[1], 10**9, c[3], c[4]] for c in r["chunks"]]}),
        "is impossible here",
    ),
    "unmerged segments": (
        lambda r: forged({**r, "segments": [[0, 10], [5, 20]]}),
        "segment [5, 20] is not an int64 span after the one before",
    ),
    "float timestamp": (lambda r: forged({**r, "floor": 1.5}), "floor is 1.5, not an int64"),
}  # fmt: skip


@pytest.mark.parametrize("damage", INDEX_DAMAGE)
def test_an_index_of_the_wrong_type_or_shape_drops_its_series(root: Path, damage: str):
    make, why = INDEX_DAMAGE[damage]
    value = make(raw_index(root, "A"))
    if value is None:  # flip one byte inside the JSON
        with db(root) as con:
            (blob,) = con.execute(
                "SELECT value FROM Cache WHERE key = ?", (key_of("A"),)
            ).fetchone()
        value = blob.replace(b'"floor":null', b'"floor":nulL')
    set_value(root, key_of("A"), value)
    with BarStore(root, source="test") as s:
        assert s.read("A", "1m").empty
        assert s.coverage("A", "1m") == Coverage()
        [note] = s.notes
        assert note.code == "A" and why in note.text, note.text
        assert len(s.read("B", "1m")) == 100
        s.write("A", "1m", bars([0, 60]), 0, 119)  # the series starts afresh
        assert_true_bars(s.read("A", "1m"))
        assert len(s.read("A", "1m")) == 2
        assert s.vacuum() == VacuumReport()


# ------------------------------------------------------------------------ damaged chunks


def damage_chunk(root: Path, how: str) -> tuple[int, int, int, str, int]:
    """Damage the first chunk of A; return its index entry."""
    entry = index(root, "A")["chunks"][0]
    key = entry[3]
    with db(root) as con:
        (buf,) = con.execute("SELECT value FROM Cache WHERE key = ?", (key,)).fetchone()
    if how == "missing":
        db(root).execute("DELETE FROM Cache WHERE key = ?", (key,))
        return entry
    if how == "short":
        buf = buf[:-8]
    elif how == "oversized":
        buf = buf + np.full(1500 * 7, 7e-304).tobytes()
    elif how == "flipped bit":
        buf = buf[:100] + bytes([buf[100] ^ 1]) + buf[101:]
    elif how == "unsorted":  # same bars, shuffled, with a checksum that matches
        n = entry[2]
        ts = np.frombuffer(buf, np.int64, n).copy()
        vals = np.frombuffer(buf, np.float64, 6 * n, 8 * n).reshape(6, n).copy()
        order = np.random.default_rng(0).permutation(n)
        order[[0, -1]] = [0, n - 1]  # first and last stay where the index says
        buf = ts[order].tobytes() + vals[:, order].tobytes()
        record = raw_index(root, "A")
        record["chunks"][0][4] = zlib.crc32(buf)
        set_value(root, key_of("A"), forged(record))
    elif how == "text":
        buf = "not bytes"
    set_value(root, key, buf)
    return entry


#: What the note says, for a chunk of ``n`` bars (56 bytes each).
CHUNK_DAMAGE = {
    "missing": lambda n: "a piece of its bars is missing",
    "short": lambda n: f"a piece of its bars holds {n * 56 - 8} bytes, not {n * 56}",
    "oversized": lambda n: f"a piece of its bars holds {n * 56 + 1500 * 56} bytes, not {n * 56}",
    "flipped bit": lambda n: "a piece of its bars fails its checksum",
    "unsorted": lambda n: "a piece of its bars is out of order or outside its stated range",
    "text": lambda n: "a piece of its bars is not raw bytes (not written by this store)",
}


@pytest.mark.parametrize("how", CHUNK_DAMAGE)
@pytest.mark.parametrize("reader", ["read", "read_many", "newest", "write"])
def test_a_damaged_chunk_drops_its_span_and_never_returns_a_bar(root: Path, how: str, reader: str):
    first, last, n, _, _ = damage_chunk(root, how)
    with BarStore(root, source="test") as s:
        if reader == "read":
            got = s.read("A", "1m")
        elif reader == "read_many":
            got = s.read_many([("B", "1m"), ("A", "1m")])
            assert len(got) == 100 + N - n
            got = got[got["code"] == "A"]
        elif reader == "newest":
            newest = s.newest("A", "1m", N, hi=(N - 1) * MINUTE)
            assert not newest.complete  # the run now starts after the dropped span
            got = newest.bars
        else:  # a write that merges with the damaged chunk heals it first
            s.write("A", "1m", bars([first]), first, first + 59)
            got = s.read("A", "1m", last + 1)
        assert_true_bars(got)
        assert list(got["timestamp"]) == list(np.arange(n, N) * MINUTE)
        [note] = s.notes
        assert note.text == (
            f"{CHUNK_DAMAGE[how](n)}: dropped its bars from 1970-01-01 00:00 to "
            f"{pd.Timestamp(last, unit='s'):%Y-%m-%d %H:%M}, so they are fetched again"
        )
        gaps = s.coverage("A", "1m").gaps(0, N * MINUTE - 1)
        assert gaps == ([(first + 60, last)] if reader == "write" else [(first, last)])
        assert s.vacuum() == VacuumReport()


@pytest.mark.parametrize("how", ["unsorted", "flipped bit"])
def test_a_read_of_part_of_a_damaged_chunk_checks_all_of_it(root: Path, how: str):
    """A range that cuts into the damaged chunk copies only a part of it: the rest is
    checked all the same, and none of its bars come back."""
    first, last, n, _, _ = damage_chunk(root, how)
    with BarStore(root, source="test") as s:
        got = s.read("A", "1m", 10 * MINUTE, (n + 5) * MINUTE)
        assert list(got["timestamp"]) == list(np.arange(n, n + 6) * MINUTE)
        assert_true_bars(got)
        [note] = s.notes
        assert note.text.startswith(CHUNK_DAMAGE[how](n))
        assert s.coverage("A", "1m").gaps(0, N * MINUTE - 1) == [(first, last)]


@pytest.mark.parametrize("how", CHUNK_DAMAGE)
def test_vacuum_finds_and_repairs_a_damaged_chunk(root: Path, how: str):
    damage_chunk(root, how)
    with BarStore(root, source="test") as s:
        report = s.vacuum()
        assert report == VacuumReport(repaired_series=1, dropped_chunks=1)
        assert str(report) == (
            "repaired 1 series by dropping 1 damaged or missing piece(s) of bars; those spans "
            "are fetched again"
        )
        assert s.vacuum() == VacuumReport()
        assert_true_bars(s.read("A", "1m"))


# ------------------------------------------------------------------------ damaged files


def damage_file(root: Path, how: str) -> None:
    path = root / "bars" / "cache.db"
    data = bytearray(path.read_bytes())
    rng = np.random.default_rng(3)
    if how == "truncated":
        data = data[: len(data) // 3]
    elif how == "garbage header":
        data[:100] = rng.bytes(100)
    else:  # garbage pages: a few 4 KiB pages of noise, past the first
        pages = len(data) // 4096
        for k in rng.choice(np.arange(1, pages), 6, replace=False):
            data[k * 4096 : (k + 1) * 4096] = rng.bytes(4096)
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("how", ["truncated", "garbage header", "garbage pages"])
def test_a_damaged_database_is_moved_aside_and_what_passes_is_kept(root: Path, how: str):
    damage_file(root, how)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with BarStore(root, source="test") as s:
            got = s.read_many([("A", "1m"), ("B", "1m")])
            assert_true_bars(got)  # only bars that passed every check, maybe none
            for code in ("A", "B"):
                cov, held = s.coverage(code, "1m"), got[got["code"] == code]
                assert cov.bars == len(held)  # coverage claims nothing it cannot show
                for lo, hi in cov.segments:
                    expected = np.arange(lo // MINUTE, hi // MINUTE + 1) * MINUTE
                    inside = held["timestamp"].between(lo, hi)
                    assert list(held.loc[inside, "timestamp"]) == list(expected)
            assert s.vacuum() == VacuumReport()
            s.write("C", "1m", bars([0]), 0, 59)
            assert len(s.read("C", "1m")) == 1
    messages = [str(w.message) for w in caught if w.category is CacheWarning]
    aside = sorted((root / "bars").glob("cache.db.corrupt-*[0-9TZ]"))
    assert len(messages) == 1 and len(aside) == 1, messages
    assert messages[0].startswith(f"the cache database {root / 'bars' / 'cache.db'} was damaged")
    assert f"moved it aside to {aside[0]}" in messages[0]


def test_a_database_that_cannot_be_read_at_all_starts_empty(root: Path):
    damage_file(root, "garbage header")
    with pytest.warns(CacheWarning, match=r"keeping the 0 series \(0 bars\)"):
        store = BarStore(root, source="test")
    with store:
        assert store.describe().empty and store.writable


def test_vacuum_moves_aside_a_database_sqlite_finds_damaged(root: Path):
    """Damage a page of bars only: reads of other series still work, so it takes vacuum's
    integrity check to find it."""
    with BarStore(root, source="test") as s:
        s.write("C", "1m", bars(np.arange(N) * MINUTE), 0, N * MINUTE - 1)
    damage_file(root, "garbage pages")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CacheWarning)
        with BarStore(root, source="test") as s:
            report = s.vacuum()
            assert s.vacuum() == VacuumReport()
            assert_true_bars(s.read_many([("A", "1m"), ("B", "1m"), ("C", "1m")]))
    assert len(report.notes) == 1 and "was damaged" in report.notes[0]
    assert str(report).startswith(report.notes[0])


# ------------------------------------------------------------------------ a disk that fails


def limit(root: Path, setting: str, value: int) -> None:
    """Plant a SQLite pragma diskcache applies on every connection: ``max_page_count`` makes
    the database full, ``query_only`` read-only, as SQLite itself reports them."""
    con = db(root)
    if setting == "max_page_count":
        (value,) = con.execute("PRAGMA page_count").fetchone()
    con.execute("INSERT INTO Settings VALUES (?, ?)", (f"sqlite_{setting}", value))
    con.close()


@pytest.mark.parametrize("setting", ["max_page_count", "query_only"])
def test_a_full_or_read_only_database_carries_on_in_memory(root: Path, setting: str):
    """A full database opens and fails on the first write that needs a page; a read-only one
    fails already on opening (diskcache writes its settings). Either way: one warning."""
    limit(root, setting, 1)
    with pytest.warns(CacheWarning, match="carrying on without writing to it") as caught:
        s = BarStore(root, source="test")
        assert s.writable == (setting == "max_page_count")
        s.write("C", "1m", bars(np.arange(N) * MINUTE), 0, N * MINUTE - 1)
    assert len(caught) == 1
    with s:
        assert not s.writable
        s.write("C", "1m", bars([N * MINUTE]), N * MINUTE, N * MINUTE + 59)  # no second warning
        assert len(s.read("C", "1m")) == N + 1  # what it was given is kept, in memory
        assert len(s.read("A", "1m")) == N  # and the disk is still read
        assert s.coverage("C", "1m").segments == ((0, (N + 1) * MINUTE - 1),)
        assert set(s.describe()["code"]) == {"A", "B", "C"}
        for action in (s.clear, s.vacuum):
            with pytest.raises(StoreError, match="it cannot be written"):
                action()
    with db(root) as con:  # nothing of C reached the disk
        assert con.execute("SELECT count(*) FROM Cache WHERE key LIKE '%\"C\"%'").fetchone() == (0,)


# ------------------------------------------------------------------------ who may write it


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_the_cache_directory_is_private_and_a_shared_one_is_refused(tmp_path: Path):
    root = tmp_path / "new" / "cache"
    BarStore(root).close()
    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    assert stat.S_IMODE((root / "bars").stat().st_mode) == 0o700

    (root / "bars").chmod(0o770)
    with pytest.raises(UnsafeCacheDir) as caught:
        BarStore(root)
    assert str(caught.value) == (
        f"the cache directory {root / 'bars'} can be written by other users (mode drwxrwx---). "
        "Whoever can write it decides what you read from the cache, and its budget ledger "
        f"paces your token. Make it private (chmod 700 {root / 'bars'}), choose another "
        "directory (cache=PATH or --cache-dir), or share it on purpose (shared_cache=True or "
        "--shared-cache)"
    )
    (root / "bars").chmod(0o700)
    root.chmod(0o707)
    with pytest.raises(UnsafeCacheDir, match="can be written by other users"):
        BarStore(root)
    BarStore(root, shared=True).close()
    root.chmod(0o700)
    BarStore(root).close()
    if os.getuid() == 0:  # only root can hand a directory to another user
        os.chown(root, 12345, -1)
        with pytest.raises(UnsafeCacheDir, match=r"is owned by another user \(uid 12345\)"):
            BarStore(root)


# ------------------------------------------------------------------------ other versions


def test_a_store_of_an_older_version_is_emptied_without_unpickling(tmp_path: Path):
    """The layout before this one pickled its indexes and had no format marker."""
    root = tmp_path / "cache"
    BarStore(root).close()
    con = db(root)
    con.execute("DELETE FROM Cache")
    payload = pickle.dumps(Planted(tmp_path / "pwned"))
    con.execute(
        "INSERT INTO Cache (key, raw, store_time, mode, value) VALUES (?, 1, 0, 4, ?)",
        (key_of("A"), payload),
    )
    con.close()
    with pytest.warns(CacheWarning, match="an older version wrote it"):
        store = BarStore(root, source="test")
    with store:
        assert store.describe().empty
        assert store._backend.list_keys() == ["meta:format"]
    assert not (tmp_path / "pwned").exists()


def test_a_store_of_a_newer_version_is_left_alone(root: Path):
    set_value(root, "meta:format", b"3")
    with pytest.warns(CacheWarning, match=r"newer version of alltick-frames \(format 3\)"):
        store = BarStore(root, source="test")
    with store:
        assert not store.writable and store.describe().empty
        store.write("A", "1m", bars([0]), 0, 59)
    with db(root) as con:
        assert con.execute("SELECT value FROM Cache WHERE key = 'meta:format'").fetchone() == (
            b"3",
        )
