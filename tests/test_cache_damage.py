"""A damaged cache against the emulator, over real HTTP: every command ends in a clear message
or a healed store, never a traceback, never a bar that differs from a clean fetch.

A cache is filled once (``fetch klines`` of three 1-minute series, two pieces each), then
copied and damaged in one way per case, the way a person or another program would, and each
command (``fetch``, ``cache info``, ``cache clear``, ``cache vacuum``) runs on its own fresh
copy. Damage to the database file itself runs the commands in subprocesses (SQLite reads the
garbage); a full and a read-only disk run them inside a small tmpfs in a mount namespace of
their own (``unshare``), which needs neither root nor a loop device.
"""

from __future__ import annotations

import json
import pickle
import shutil
import sqlite3
import subprocess
import sys
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import orjson
import pandas as pd
import pytest
from test_cache import NOW, TOKEN, Market, client, cold, ok_calls, start_emulator

from alltick_frames.cli import main
from alltick_frames.core.plans import get_plan
from alltick_frames.emulator import EmulatorServer
from alltick_frames.emulator.config import EmulatorConfig
from alltick_frames.store import BarStore, CacheWarning
from alltick_frames.store.codec import index_key, sid_of
from alltick_frames.store.records import parse_index

CODES = ["EURUSD", "BTCUSDT", "GOLD"]
REQUEST = ["--codes", ",".join(CODES), "--interval", "1m"]
REQUEST += ["--start", "2024-05-01", "--end", "2024-05-08T12:00Z"]
PLAN = {
    "name": "fast",
    "base": "professional",
    "endpoint_rates": {"kline": [50, 1.0]},
    "all_endpoints": [100, 1.0],
    "per_minute": 6000,
}


class Planted:
    """A pickle that creates ``path`` when it is unpickled."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (str(self.path), "w"))


# ---------------------------------------------------------------------------- the filled cache


class Setup:
    """The emulator, the plan file, a filled cache to copy, and the clean answer."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.plan_file = root / "plan.json"
        self.plan_file.write_text(json.dumps(PLAN))
        plan = get_plan(self.plan_file)
        self.emu = EmulatorServer(EmulatorConfig(plan=plan, tokens={TOKEN: plan}, now=NOW))
        self.emu.start()
        self.filled = root / "filled"
        self.reference = root / "reference.parquet"
        status, _, err = self.cli(
            "fetch", "klines", *REQUEST, "--no-cache", "--out", str(self.reference)
        )
        assert status == 0, err
        # In a process of its own, which closes every connection at exit: a database file
        # with nothing left in its write-ahead log, so damage to the file is damage to all.
        status, _, err = self.fetch(self.filled, root / "first.parquet", where="subprocess")
        assert status == 0, err
        assert not (self.filled / "bars" / "cache.db-wal").exists()

    def connection(self) -> list[str]:
        return ["--token", TOKEN, "--base-url", self.emu.url, "--plan-file", str(self.plan_file)]

    def cli(self, *argv: str, where: str = "here") -> tuple[int, str, str]:
        """Run the command line: in this process, in a subprocess, or (``where`` a callable)
        through a runner of its own; return (status, stdout, stderr)."""
        argv_ = list(argv) + (self.connection() if argv[0] == "fetch" else [])
        if where == "here":
            return _in_process(argv_)
        done = subprocess.run(
            [sys.executable, "-m", "alltick_frames.cli", *argv_],
            capture_output=True,
            text=True,
            timeout=120,
        )
        return done.returncode, done.stdout, done.stderr

    def fetch(self, cache: Path, out: Path, where: str = "here") -> tuple[int, str, str]:
        return self.cli(
            "fetch", "klines", *REQUEST, "--cache-dir", str(cache), "--out", str(out), where=where
        )

    def copy(self, to: Path) -> Path:
        shutil.copytree(self.filled, to)
        return to

    def assert_reference(self, out: Path) -> None:
        pd.testing.assert_frame_equal(pd.read_parquet(out), pd.read_parquet(self.reference))


def _in_process(argv: list[str]) -> tuple[int, str, str]:
    import contextlib
    import io
    import warnings

    out, err = io.StringIO(), io.StringIO()
    with (
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("always", CacheWarning)
        status = main(argv)
    return status, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    s = Setup(tmp_path_factory.mktemp("damage"))
    yield s
    s.emu.stop()


# ---------------------------------------------------------------------------- the damage


def _db(cache: Path, part: str = "bars") -> sqlite3.Connection:
    return sqlite3.connect(cache / part / "cache.db", isolation_level=None)


def source_of(emu: EmulatorServer) -> str:
    """The source a client of ``emu`` stores its bars under: the base URL's host and port."""
    return urlsplit(emu.url).netloc


def _key(source: str, code: str) -> str:
    return index_key(sid_of(source, code, "1m"))


def _index_blob(cache: Path, source: str, code: str) -> bytes:
    key = _key(source, code)
    with _db(cache) as con:
        return con.execute("SELECT value FROM Cache WHERE key = ?", (key,)).fetchone()[0]


def _first_chunk(cache: Path, source: str, code: str) -> tuple[tuple, bytes]:
    """The index entry of a series' first chunk, and the chunk's bytes."""
    record = parse_index(_index_blob(cache, source, code), sid_of(source, code, "1m"))
    entry = record["chunks"][0]
    with _db(cache) as con:
        (buf,) = con.execute("SELECT value FROM Cache WHERE key = ?", (entry[3],)).fetchone()
    return entry, buf


def _set(cache: Path, key: str, value: object, mode: int = 1) -> None:
    with _db(cache) as con:
        con.execute("UPDATE Cache SET value = ?, mode = ? WHERE key = ?", (value, mode, key))


def _forge(cache: Path, source: str, code: str, change: Callable[[dict], None]) -> None:
    """Rewrite a series' index record with a checksum that matches, after ``change``."""
    record = orjson.loads(_index_blob(cache, source, code).rpartition(b"\n")[0])
    change(record)
    body = orjson.dumps(record)
    _set(cache, _key(source, code), body + b"\n%08x" % zlib.crc32(body))


def _file(cache: Path, source: str, how: str) -> None:
    path = cache / "bars" / "cache.db"
    data = bytearray(path.read_bytes())
    rng = np.random.default_rng(11)
    if how == "truncated":
        data = data[: len(data) // 2]
    elif how == "header":
        data[:100] = rng.bytes(100)
    else:
        pages = len(data) // 4096
        for k in rng.choice(np.arange(1, pages), 8, replace=False):
            data[k * 4096 : (k + 1) * 4096] = rng.bytes(4096)
    path.write_bytes(bytes(data))


def _chunk(cache: Path, source: str, how: str) -> None:
    entry, buf = _first_chunk(cache, source, "EURUSD")
    key, n = entry[3], entry[2]
    if how == "short":
        buf = buf[:-56]
    elif how == "oversized":
        buf = buf + np.full(1499 * 7, 7e-304).tobytes()
    else:  # unsorted, with a checksum to match
        ts = np.frombuffer(buf, np.int64, n).copy()
        vals = np.frombuffer(buf, np.float64, 6 * n, 8 * n).reshape(6, n).copy()
        order = np.r_[0, np.random.default_rng(2).permutation(np.arange(1, n - 1)), n - 1]
        buf = ts[order].tobytes() + vals[:, order].tobytes()
        _forge(cache, source, "EURUSD", lambda r: r["chunks"][0].__setitem__(4, zlib.crc32(buf)))
    _set(cache, key, buf)


def _pickle(cache: Path, source: str, where: str, marker: Path) -> None:
    payload = pickle.dumps(Planted(marker))
    key = _key(source, "EURUSD")
    with _db(cache) as con:
        if where == "value":
            con.execute("UPDATE Cache SET mode = 4, value = ? WHERE key = ?", (payload, key))
        elif where == "key":
            con.execute(
                "INSERT INTO Cache (key, raw, store_time, mode, value) VALUES (?, 0, 0, 4, ?)",
                (payload, payload),
            )
        else:
            (cache / "bars" / "planted.val").write_bytes(payload)
            con.execute(
                "UPDATE Cache SET mode = 4, filename = 'planted.val', value = NULL WHERE key = ?",
                (key,),
            )


def _three_field_chunks(record: dict) -> None:
    record["chunks"] = [c[:3] for c in record["chunks"]]


#: case -> (damage, where the commands run, what vacuum says)
DROPPED = "removed 1 series whose index could not be read"
REPAIRED = "repaired 1 series by dropping 1 damaged or missing piece(s) of bars"
FOREIGN = "removed 1 entry this store never writes (planted by hand or by another program)"
MOVED = "was damaged"
Damage = Callable[[Path, str, Path], None]  # (cache, source, where a pickle would write)
CASES: dict[str, tuple[Damage, str, str]] = {
    "truncated db": (lambda c, s, m: _file(c, s, "truncated"), "subprocess", MOVED),
    "garbage header": (lambda c, s, m: _file(c, s, "header"), "subprocess", MOVED),
    "garbage pages": (lambda c, s, m: _file(c, s, "pages"), "subprocess", MOVED),
    "index of the wrong type": (
        lambda c, s, m: _set(c, _key(s, "EURUSD"), "[1, 2]"), "here", DROPPED
    ),
    "index of the wrong shape": (
        lambda c, s, m: _forge(c, s, "EURUSD", _three_field_chunks),
        "here",
        DROPPED,
    ),
    "chunk of the wrong length": (lambda c, s, m: _chunk(c, s, "short"), "here", REPAIRED),
    "oversized chunk": (lambda c, s, m: _chunk(c, s, "oversized"), "here", REPAIRED),
    "unsorted chunk": (lambda c, s, m: _chunk(c, s, "unsorted"), "here", REPAIRED),
    "pickle in a value": (lambda c, s, m: _pickle(c, s, "value", m), "here", DROPPED),
    "pickle in a key": (lambda c, s, m: _pickle(c, s, "key", m), "here", FOREIGN),
    "pickle in a side file": (lambda c, s, m: _pickle(c, s, "side", m), "here", DROPPED),
}  # fmt: skip


@pytest.fixture(params=list(CASES))
def damaged(
    request: pytest.FixtureRequest, setup: Setup, tmp_path: Path
) -> Callable[[], tuple[Path, str, str]]:
    """A fresh damaged copy of the filled cache per call: (cache, where to run, vacuum says)."""
    damage, where, says = CASES[request.param]
    made = []

    def make() -> tuple[Path, str, str]:
        cache = setup.copy(tmp_path / f"cache-{len(made)}")
        damage(cache, source_of(setup.emu), tmp_path / "pwned")
        made.append(cache)
        return cache, where, says

    yield make
    assert not (tmp_path / "pwned").exists(), "a planted pickle ran"


def _clean(status: int, out: str, err: str, expected: int = 0) -> None:
    assert status == expected, out + err
    assert "Traceback" not in err and "Error" not in err.split("warning:")[0], err


def test_fetch_gives_the_clean_answer(setup: Setup, damaged, tmp_path: Path) -> None:
    cache, where, says = damaged()
    status, out, err = setup.fetch(cache, tmp_path / "out.parquet", where)
    _clean(status, out, err)
    setup.assert_reference(tmp_path / "out.parquet")
    if says == MOVED:
        db = cache / "bars" / "cache.db"
        assert f"warning: the cache database {db} was damaged" in err
        assert f"moved it aside to {db}.corrupt-" in err
    elif says != FOREIGN:  # a pickled key is no series: fetch never reads it
        assert "cache: EURUSD 1m: " in out and "fetched again" in out


def test_info_lists_what_can_be_believed(setup: Setup, damaged) -> None:
    cache, where, says = damaged()
    status, out, err = setup.cli("cache", "info", "--cache-dir", str(cache), where=where)
    _clean(status, out, err)
    assert f"cache: {cache}" in out
    if says == DROPPED:
        assert "cache: EURUSD 1m: " in out and "2 series" in out
    elif says == MOVED:  # info reads indexes only: damage to pages of bars can go unseen
        assert "was damaged" in err or "3 series" in out
    else:
        assert "3 series" in out


def test_clear_empties_the_store(setup: Setup, damaged) -> None:
    cache, where, _ = damaged()
    status, out, err = setup.cli("cache", "clear", "--cache-dir", str(cache), where=where)
    _clean(status, out, err)
    assert "deleted" in out
    with _db(cache) as con:
        assert con.execute("SELECT key FROM Cache").fetchall() == [("meta:format",)]


def test_vacuum_repairs_and_says_what_it_did(setup: Setup, damaged, tmp_path: Path) -> None:
    cache, where, says = damaged()
    status, out, err = setup.cli("cache", "vacuum", "--cache-dir", str(cache), where=where)
    _clean(status, out, err)
    assert says in out + err
    status, out, err = setup.cli("cache", "vacuum", "--cache-dir", str(cache))
    _clean(status, out, err)
    assert ": found nothing to repair;" in out
    status, out, err = setup.fetch(cache, tmp_path / "after.parquet")
    _clean(status, out, err)
    setup.assert_reference(tmp_path / "after.parquet")


# ------------------------------------------------------------------ a full or read-only disk


def _namespaces_work() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = ["unshare", "--user", "--map-root-user", "--mount", "true"]
    return subprocess.run(probe, capture_output=True, timeout=30).returncode == 0


needs_namespaces = pytest.mark.skipif(
    not _namespaces_work(), reason="needs unshare with user and mount namespaces"
)


def _in_small_fs(
    cache: Path, root: Path, argv: list[str], *, read_only: bool
) -> tuple[int, str, str]:
    """Run the command line on a copy of ``cache`` at ``root``, the whole cache directory (the
    bar store and the budget ledger beside it) on a private tmpfs just big enough to hold it
    (``SPARE_KIB`` to spare), remounted read-only if asked, in a mount namespace of its own."""
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(mode=0o700)
    size = sum(p.stat().st_size for p in cache.rglob("*") if p.is_file()) // 1024 + SPARE_KIB
    script = (
        f'mount -t tmpfs -o size={size}k,mode=0700 tmpfs "{root}" && '
        f'cp -a "{cache}/." "{root}/" && '
        + (f'mount -o remount,ro "{root}" && ' if read_only else "")
        + f'exec "{sys.executable}" -m alltick_frames.cli "$@"'
    )
    done = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", script, "sh", *argv],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done.returncode, done.stdout, done.stderr


#: Room left on the small file system: less than the two series still to be written need,
#: and less than the ledger's write-ahead log grows to in the job.
SPARE_KIB = 64


@needs_namespaces
@pytest.mark.parametrize("read_only", [False, True], ids=["full disk", "read-only"])
def test_a_full_or_read_only_disk_runs_without_the_cache(
    setup: Setup, tmp_path: Path, read_only: bool
) -> None:
    """The bar store and the budget ledger both carry on in memory, each with one warning,
    and the job's answer is the clean one."""
    cache = setup.copy(tmp_path / "cache")
    with BarStore(cache, source=source_of(setup.emu)) as store:  # two series left to write
        assert store.clear("BTCUSDT") + store.clear("GOLD") == 2
    root, out = tmp_path / "root", tmp_path / "out.parquet"
    fetch = ["fetch", "klines", *REQUEST, "--cache-dir", str(root), "--out", str(out)]
    status, stdout, err = _in_small_fs(cache, root, fetch + setup.connection(), read_only=read_only)
    _clean(status, stdout, err)
    assert err.count(f"warning: cannot write the cache at {root / 'bars'} (") == 1
    assert "carrying on without writing to it" in err
    assert err.count(f"warning: cannot use the budget ledger at {root / 'budget'} (") == 1
    assert "pacing this process on a ledger in memory" in err
    setup.assert_reference(out)

    for action in ("info", "clear", "vacuum"):
        argv = ["cache", action, "--cache-dir", str(root)]
        status, stdout, err = _in_small_fs(cache, root, argv, read_only=read_only)
        if action == "info":
            _clean(status, stdout, err)
            assert "1 series" in stdout
        elif status != 0:  # deleting needs room too: a full disk may refuse it
            _clean(status, stdout, err, expected=1)
            assert f"cannot {action} the cache at {root / 'bars'}: it cannot be written" in err
        else:
            assert not read_only
            _clean(status, stdout, err)


# ---------------------------------------------------------------------------- the client heals


@pytest.fixture
def emu(alltick_emulator: Callable[..., EmulatorServer]) -> EmulatorServer:
    return start_emulator(alltick_emulator)


@pytest.fixture
def market(emu: EmulatorServer) -> Market:
    return Market(emu)


RANGE: dict[str, Any] = {"start": "2024-05-01", "end": "2024-05-08T12:00Z"}


async def test_a_damaged_piece_is_fetched_again_in_the_same_call(
    emu: EmulatorServer, market: Market, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    async with client(emu, market, cache) as c:
        first = await c.klines(CODES, "1m", **RANGE)
    (lo, hi, n, key, _), buf = _first_chunk(cache, source_of(emu), "BTCUSDT")
    _set(cache, key, buf[:100] + bytes([buf[100] ^ 1]) + buf[101:])
    emu.reset()
    async with client(emu, market, cache) as c:
        again = await c.klines(CODES, "1m", **RANGE)
    pd.testing.assert_frame_equal(again.data, first.data)
    a, b = (f"{pd.Timestamp(t, unit='s'):%Y-%m-%d %H:%M}" for t in (lo, hi))
    assert again.ok and again.stats.notes == [
        f"BTCUSDT 1m: a piece of its bars fails its checksum: dropped its bars from {a} to {b}, "
        "so they are fetched again"
    ]
    refetched = ok_calls(emu, "kline")
    emu.reset()
    gap = await cold(emu, market, ["BTCUSDT"], "1m", start=lo, end=hi, cache=tmp_path / "gap")
    assert refetched == ok_calls(emu, "kline") and len(gap.data) == n  # just that span


async def test_a_job_on_a_full_database_returns_everything_it_fetched(
    emu: EmulatorServer, market: Market, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    async with client(emu, market, cache) as c:
        await c.klines(["EURUSD"], "1m", **RANGE)
    with _db(cache) as con:  # SQLite itself reports the database full from here on
        (pages,) = con.execute("PRAGMA page_count").fetchone()
        con.execute("INSERT INTO Settings VALUES ('sqlite_max_page_count', ?)", (pages,))
    with pytest.warns(CacheWarning, match="cannot write the cache"):
        async with client(emu, market, cache) as c:
            full = await c.klines(CODES, "1m", **RANGE)
            assert not c.store.writable
    clean = await cold(emu, market, CODES, "1m", **RANGE)
    pd.testing.assert_frame_equal(full.data, clean.data)
    assert full.ok and full.stats.notes == []


async def test_a_job_on_a_read_only_budget_ledger_completes_on_a_ledger_in_memory(
    emu: EmulatorServer, market: Market, tmp_path: Path
) -> None:
    """(A full disk under the ledger: tests/test_budget_ledger_disk.py, and the tmpfs test
    above for the whole cache directory.)"""
    cache = tmp_path / "cache"
    async with client(emu, market, cache) as c:
        await c.klines(["EURUSD"], "1m", **RANGE)
    with _db(cache, "budget") as con:  # SQLite refuses every write to the ledger from here on
        con.execute("INSERT INTO Settings VALUES ('sqlite_query_only', 1)")
    emu.reset()
    with pytest.warns(CacheWarning, match="cannot use the budget ledger at .*budget"):
        async with client(emu, market, cache) as c:
            full = await c.klines(CODES, "1m", **RANGE)
    clean = await cold(emu, market, CODES, "1m", **RANGE)
    pd.testing.assert_frame_equal(full.data, clean.data)
    assert full.ok and "budget ledger" in full.stats.failover
    assert "paced on a ledger in this process's memory" in full.stats.failover
