"""The Parquet dataset: the layout, the schema as DuckDB and Polars read it, atomic files,
merges, and reruns that write nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import polars as pl
import pyarrow.parquet as pq
import pytest

from alltick_frames.frames.klines import KLINE_DTYPES
from alltick_frames.frames.sessions import frame_sessions
from alltick_frames.store.dataset import _HOST, PART, BarDataset, Written, partition_value

DAY = 86_400


def bars(code: str, interval: str, start: int, n: int, step: int = DAY, k: float = 1.0):
    ts = start + step * np.arange(n)
    close = k * (100 + np.arange(n, dtype=float))
    timestamp = pd.Series(pd.to_datetime(ts, unit="s", utc=True))
    return pd.DataFrame(
        {
            "code": code,
            "interval": interval,
            "timestamp": timestamp,
            "session": frame_sessions(pd.Series([code] * n), timestamp),
            "open": close - 1,
            "high": close + 2,
            "low": close - 2,
            "close": close,
            "volume": np.where(np.arange(n) % 3 == 0, np.nan, 1e3 * close),
            "turnover": 1e5 * close,
        }
    ).astype(KLINE_DTYPES)


def frame() -> pd.DataFrame:
    parts = [
        bars("AAPL.US", "1d", 1_700_006_400, 5),
        bars("Silver", "1d", 1_700_006_400, 4, k=2),
        bars("SILVER", "1d", 1_700_006_400, 3, k=3),
        bars("000001", "1d", 1_700_006_400, 2, k=4),  # a code any engine might take for a number
        bars("EURUSD", "1m", 1_700_000_040, 6, step=60),
        bars("EURUSD", "1M", 1_698_796_800, 2, step=30 * DAY),
    ]
    return pd.concat(parts, ignore_index=True)


def duck(root: Path) -> pd.DataFrame:
    query = f"SELECT * FROM read_parquet('{root}/**/*.parquet', hive_partitioning=true)"
    return duckdb.sql(query).df()


def as_frame(df: pd.DataFrame) -> pd.DataFrame:
    """An engine's answer in the client's dtypes and order, for comparison."""
    df = df[list(KLINE_DTYPES)].astype(KLINE_DTYPES)
    return df.sort_values(["code", "interval", "timestamp"], ignore_index=True)


def test_one_file_per_series_in_hive_paths_that_never_collide(tmp_path) -> None:
    assert BarDataset(tmp_path).write(frame()) == Written(6, 0)
    files = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert files == [
        f"interval=1%4D/code=EURUSD/{PART}",
        f"interval=1d/code=000001/{PART}",
        f"interval=1d/code=AAPL.US/{PART}",
        f"interval=1d/code=S%69%6C%76%65%72/{PART}",
        f"interval=1d/code=SILVER/{PART}",
        f"interval=1m/code=EURUSD/{PART}",
    ]
    # Lower case apart: Silver and SILVER, 1m and 1M, stay apart on a case-blind disk.
    assert len({f.lower() for f in files}) == len(files)
    assert partition_value("../etc/passwd", upper=True) == "..%2F%65%74%63%2F%70%61%73%73%77%64"
    assert partition_value("BRK.B-W_1.US", upper=True) == "BRK.B-W_1.US"


def test_duckdb_reads_the_documented_schema_and_the_same_bars(tmp_path) -> None:
    data = frame()
    BarDataset(tmp_path).write(data)
    types = duckdb.sql(
        f"SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM "
        f"read_parquet('{tmp_path}/**/*.parquet', hive_partitioning=true))"
    ).fetchall()
    assert types == [
        ("code", "VARCHAR"),
        ("interval", "VARCHAR"),
        ("timestamp", "TIMESTAMP WITH TIME ZONE"),
        ("session", "TIMESTAMP"),
        *((name, "DOUBLE") for name in ("open", "high", "low", "close", "volume", "turnover")),
    ]
    expected = data.sort_values(["code", "interval", "timestamp"], ignore_index=True)
    pd.testing.assert_frame_equal(as_frame(duck(tmp_path)), expected)
    # Hive pruning: a filter on the path's code opens one file and decodes %-escapes.
    silver = duckdb.sql(
        f"SELECT count(*) FROM read_parquet('{tmp_path}/**/*.parquet', hive_partitioning=true) "
        "WHERE code = 'Silver'"
    ).fetchall()
    assert silver == [(4,)]


def test_polars_reads_the_documented_schema_and_the_same_bars(tmp_path) -> None:
    data = frame()
    BarDataset(tmp_path).write(data)
    scanned = pl.scan_parquet(f"{tmp_path}/**/*.parquet", hive_partitioning=True).collect()
    assert scanned.schema["code"] == pl.String and scanned.schema["interval"] == pl.String
    assert scanned.schema["timestamp"] == pl.Datetime("us", "UTC")
    assert scanned.schema["session"] == pl.Datetime("us")
    assert all(scanned.schema[c] == pl.Float64 for c in ("open", "close", "volume"))
    expected = data.sort_values(["code", "interval", "timestamp"], ignore_index=True)
    pd.testing.assert_frame_equal(as_frame(scanned.to_pandas()), expected)
    pd.testing.assert_frame_equal(BarDataset(tmp_path).read(), expected)


def test_a_rerun_writes_nothing_and_a_later_job_merges(tmp_path) -> None:
    dataset = BarDataset(tmp_path)
    dataset.write(frame())
    path = dataset.path("AAPL.US", "1d")
    before = path.stat().st_mtime_ns, path.stat().st_ino
    assert dataset.write(frame()) == Written(0, 6)
    assert (path.stat().st_mtime_ns, path.stat().st_ino) == before
    # The next day: the last bar (it was forming) is revised and one more arrives.
    later = bars("AAPL.US", "1d", 1_700_006_400 + 4 * DAY, 2, k=1.5)
    assert dataset.write(later) == Written(1, 0)
    got = dataset.read(codes=["AAPL.US"])
    assert len(got) == 6
    assert got["close"].tolist() == [100, 101, 102, 103, 150, 151.5]


def test_extra_columns_are_kept_and_read(tmp_path) -> None:
    data = bars("AAPL.US", "1d", 1_700_006_400, 3).assign(
        phase=pd.Series(["regular", "regular", "pre"], dtype=KLINE_DTYPES["code"])
    )
    BarDataset(tmp_path).write(data)
    assert duck(tmp_path)["phase"].tolist() == ["regular", "regular", "pre"]
    assert pq.read_schema(BarDataset(tmp_path).path("AAPL.US", "1d")).names[-1] == "phase"


def test_a_frame_without_sessions_gets_them_computed(tmp_path) -> None:
    """The disk cache never stores ``session`` (cache export writes its frames): the dataset
    dates each bar in its exchange's zone, as the client's frames do."""
    data = pd.concat(
        [
            bars("700.HK", "1d", 1_700_006_400 - 8 * 3600, 2),
            bars("EURUSD", "1h", 1_700_006_400, 2, step=3600),
        ]
    )
    BarDataset(tmp_path).write(data.drop(columns="session"))
    sessions = duck(tmp_path).sort_values(["code", "timestamp"])["session"].astype(str).tolist()
    # 700.HK's day bars start at 16:00Z, midnight in Hong Kong: the next day's session.
    assert sessions == ["2023-11-15", "2023-11-16", "2023-11-15", "2023-11-15"]
    pd.testing.assert_frame_equal(
        BarDataset(tmp_path).read(),
        data.sort_values(["code", "interval", "timestamp"], ignore_index=True),
    )


_KILLED_WRITER = """
import os, sys
sys.path.insert(0, "tests")
import pyarrow.parquet as pq
from alltick_frames.store import dataset
from test_dataset import bars

def write_then_die(table, f, **kw):
    f.write(b"PAR1 half a file")
    f.flush()
    os._exit(9)  # SIGKILL-like: no cleanup, no finally

pq.write_table = write_then_die
dataset.BarDataset(sys.argv[1]).write(bars("AAPL.US", "1d", 1_700_006_400, 9))
"""


def test_a_killed_writer_leaves_the_old_file_whole_and_the_next_write_sweeps(tmp_path) -> None:
    dataset = BarDataset(tmp_path)
    dataset.write(bars("AAPL.US", "1d", 1_700_006_400, 5))
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run(
        [sys.executable, "-c", _KILLED_WRITER, str(tmp_path)], cwd=root, timeout=60
    )
    assert done.returncode == 9
    folder = dataset.path("AAPL.US", "1d").parent
    leftovers = [p.name for p in folder.iterdir() if p.name != PART]
    assert len(leftovers) == 1 and leftovers[0].endswith(".tmp")
    assert len(duck(tmp_path)) == 5  # readers see the old whole file, never the half one
    assert dataset.sweep() == 1
    assert [p.name for p in folder.iterdir()] == [PART]


def test_a_live_writers_temporary_file_is_left_alone(tmp_path) -> None:
    dataset = BarDataset(tmp_path)
    dataset.write(bars("AAPL.US", "1d", 1_700_006_400, 2))
    folder = dataset.path("AAPL.US", "1d").parent
    mine = folder / f".part-0.{os.getpid()}.abcd1234.{_HOST}.tmp"
    mine.write_bytes(b"in flight")
    old = folder / f".part-0.{os.getpid()}.abcd1234.elsewhere.tmp"
    old.write_bytes(b"from another host, long gone")
    os.utime(old, (1, 1))
    assert dataset.sweep() == 1
    assert mine.exists() and not old.exists()


def test_bad_input_is_refused_before_writing(tmp_path) -> None:
    with pytest.raises(ValueError, match=r"lacks \['timestamp'"):
        BarDataset(tmp_path).write(pd.DataFrame({"code": ["A"], "interval": ["1d"]}))
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="is a file"):
        BarDataset(tmp_path / "file")
    assert list(tmp_path.iterdir()) == [tmp_path / "file"]


async def test_klines_out_writes_what_arrived_even_when_some_failed(alltick_emulator, tmp_path):
    """The client's own frame, written by ``klines(..., out=DIR)``, reads back equal in DuckDB."""
    from test_client_support import client, fast_plan, tokens

    plan = fast_plan(100)
    emu = alltick_emulator(tokens=tokens(plan))
    codes = ["AAPL.US", "700.HK", "EURUSD", "Silver", "NOPE.US"]
    async with client(emu, plan) as c:
        result = await c.klines(codes, "1h", count=30, out=tmp_path / "bars")
    assert result.failures["code"].tolist() == ["NOPE.US"]
    expected = result.data.sort_values(["code", "interval", "timestamp"], ignore_index=True)
    pd.testing.assert_frame_equal(as_frame(duck(tmp_path / "bars")), expected)
