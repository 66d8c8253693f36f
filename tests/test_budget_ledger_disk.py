"""The disk ledger's record and its troubles: JSON, never a pickle; a planted or older pickled
record is ignored; a database that cannot be written moves the ledger to memory, once, and
says so."""

from __future__ import annotations

import pickle
import sqlite3
import warnings
from datetime import datetime
from pathlib import Path

import diskcache
import orjson
import pytest
from test_budget_checks import UTC8

from alltick_frames.budget import Budget, DiskLedger, LedgerState, token_fingerprint
from alltick_frames.budget.ledger_disk import decode, encode
from alltick_frames.core.clock import FakeClock
from alltick_frames.store import CacheWarning

T0 = datetime(2026, 5, 1, 10, 0, tzinfo=UTC8).timestamp()
TOKEN = "tk-ledger-0123456789"
#: How every pickle protocol since 2 starts (PROTO opcode, then its number).
PICKLE_HEADERS = tuple(bytes([0x80, n]) for n in range(2, 6))


class Planted:
    """A pickle that creates ``path`` when it is unpickled."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (str(self.path), "w"))


def used_budget(cache_dir: Path, calls: int = 5) -> Budget:
    budget = Budget.for_token("premium", TOKEN, cache_dir=cache_dir, clock=FakeClock(T0))
    for _ in range(calls):
        budget.reserve("kline")
    budget.on_rejected("kline", 429)
    return budget


def rows(db: Path) -> list[tuple[object, int, int, object]]:
    with sqlite3.connect(db) as con:
        return con.execute("SELECT key, raw, mode, value FROM Cache").fetchall()


def test_the_record_is_json_and_the_database_holds_no_pickle(tmp_path: Path) -> None:
    budget = used_budget(tmp_path)
    expected = budget.ledger.read(lambda state: state)
    budget.close()
    db = tmp_path / "budget" / "cache.db"
    ((key, raw, mode, value),) = rows(db)
    assert (key, raw, mode) == (f"budget/{token_fingerprint(TOKEN)}", 1, diskcache.core.MODE_RAW)
    record = orjson.loads(value)
    assert record["format"] == 3 and set(record) == {"format", "calls", "blocked", "days"}
    assert record["days"] == {"day:2026-05-01": 5}
    assert decode(value) == expected and len(expected.calls["endpoint:kline"]) == 5
    for path in (tmp_path / "budget").iterdir():  # the database, its WAL: no pickle at all
        data = path.read_bytes()
        assert not any(header in data for header in PICKLE_HEADERS), path


def test_a_pickled_record_is_ignored_and_replaced_never_unpickled(tmp_path: Path) -> None:
    """An older version's record (a pickled dict), or a pickle planted by whoever can write
    the cache directory: read as no record at all, then overwritten with JSON."""
    ledger_dir = tmp_path / "budget"
    proof = tmp_path / "pwned"
    old = diskcache.Cache(str(ledger_dir))  # diskcache's own Disk pickles
    old.set(f"budget/{token_fingerprint(TOKEN)}", {"v": 2, "calls": {}, "x": Planted(proof)})
    old.close()
    budget = Budget.for_token("basic", TOKEN, cache_dir=tmp_path, clock=FakeClock(T0))
    assert budget.usage()["calls_today"] == 0
    assert budget.reserve("kline") == T0
    budget.close()
    assert not proof.exists()
    ((_, _, mode, value),) = rows(ledger_dir / "cache.db")
    assert mode == diskcache.core.MODE_RAW and orjson.loads(value)["days"] == {"day:2026-05-01": 1}


def test_the_planted_pickle_is_live(tmp_path: Path) -> None:
    """The plant above is no dud: diskcache's own Disk, which the ledger used to read its
    record with, runs it."""
    proof = tmp_path / "pwned"
    cache = diskcache.Cache(str(tmp_path / "budget"))
    cache.set("budget/x", {"x": Planted(proof)})
    assert not proof.exists()
    cache.get("budget/x")
    cache.close()
    assert proof.exists()


@pytest.mark.parametrize(
    "data",
    [
        b"not json",
        b"[]",
        b'{"format": 2, "calls": {}, "blocked": {}, "days": {}}',
        b'{"format": 3, "calls": {"k": [1, "2"]}, "blocked": {}, "days": {}}',
        b'{"format": 3, "calls": {}, "blocked": {"k": 1.5}, "days": {}}',
        b'{"format": 3, "calls": {}, "blocked": {}, "days": {}, "unknown": 1}',
        pickle.dumps({"format": 3}),
        None,
        "text",
    ],
)
def test_a_record_that_is_not_this_versions_json_is_no_record(data: object) -> None:
    assert decode(data) is None


def test_a_record_round_trips() -> None:
    state = LedgerState(
        {"endpoint:kline": [10, 15, 15, 40], "per-minute": [7], "spacing": []},
        {"per-minute": 99},
        {"day:x": 3},
    )
    assert decode(encode(state)) == state
    assert decode(encode(LedgerState())) == LedgerState()


def _fill_the_database(ledger_dir: Path) -> None:
    """Make SQLite report the database full from now on (diskcache applies the setting)."""
    with sqlite3.connect(ledger_dir / "cache.db") as con:
        (pages,) = con.execute("PRAGMA page_count").fetchone()
        con.execute("INSERT INTO Settings VALUES ('sqlite_max_page_count', ?)", (pages,))


def test_a_full_database_moves_the_ledger_to_memory_once_and_says_so(tmp_path: Path) -> None:
    used_budget(tmp_path, calls=3).close()
    _fill_the_database(tmp_path / "budget")
    budget = Budget.for_token("premium", TOKEN, cache_dir=tmp_path, clock=FakeClock(T0))
    ledger = budget.ledger
    assert isinstance(ledger, DiskLedger) and ledger.on_disk and ledger.failover is None
    with pytest.warns(CacheWarning, match="cannot use the budget ledger at .*budget") as caught:
        slots = [budget.reserve("kline") for _ in range(300)]  # the record outgrows its pages
    assert len(caught) == 1 and not ledger.on_disk
    assert "could not be used since" in ledger.failover and "memory" in ledger.failover
    # Nothing was lost on the way: the calls made before and during the move still count.
    assert budget.usage()["calls_today"] == 3 + 300
    assert slots == sorted(slots) and len(set(slots)) == 300
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once is enough
        budget.reserve("kline")
    budget.close()


def test_a_damaged_ledger_database_is_moved_aside_and_started_afresh(tmp_path: Path) -> None:
    used_budget(tmp_path).close()
    db = tmp_path / "budget" / "cache.db"
    for suffix in ("-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    db.write_bytes(b"garbage " * 1000)
    with pytest.warns(CacheWarning, match="budget ledger .* was damaged"):
        budget = Budget.for_token("basic", TOKEN, cache_dir=tmp_path, clock=FakeClock(T0))
    assert budget.ledger.on_disk and budget.reserve("kline") == T0
    budget.close()
    assert [p.name for p in (tmp_path / "budget").glob("cache.db.corrupt-*")]
