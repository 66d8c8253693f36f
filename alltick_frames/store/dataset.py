"""The open store: bars as a hive-partitioned Parquet dataset that any engine reads.

The disk cache (:class:`~alltick_frames.store.BarStore`) is this package's private format,
built for "what do I hold, what is missing". A :class:`BarDataset` is for everyone else::

    bars/
      interval=1d/
        code=AAPL.US/part-0.parquet
        code=700.HK/part-0.parquet
        code=S%69%6C%76%65%72/part-0.parquet       <- Silver (see "paths" below)
      interval=1%4D/code=EURUSD/part-0.parquet     <- 1M, monthly bars

DuckDB, Polars, pyarrow and Spark read it as one table, with ``code`` and ``interval`` as
columns, and prune files by them (``WHERE code = 'AAPL.US'`` opens one file)::

    duckdb.sql("SELECT * FROM read_parquet('bars/**/*.parquet', hive_partitioning=true)")
    polars.scan_parquet("bars/**/*.parquet", hive_partitioning=True)
    pyarrow.dataset.dataset("bars", partitioning="hive")

The schema (:data:`SCHEMA`): the k-line frame's columns (``code`` and ``interval`` string,
``timestamp`` the bar's open as ``timestamp[us, tz=UTC]``, ``session`` the bar's trading date
as a naive ``timestamp[us]`` midnight, ``open high low close volume turnover`` float64), then
any further column of the frame as pandas gives it to Arrow. ``code`` and ``interval`` are
stored in each file as well as in its path, so a file read alone says what it holds, and no
engine guesses their type from the path (Polars would read a code like ``000001`` as an
integer). Microseconds rather than nanoseconds: Spark and older readers reject nanosecond
timestamps, and bars start on whole seconds. A frame without ``session`` (the disk cache's,
which never stores it) gets it computed from the timestamps, as the client's frames do.

One file per series
    A series (code, interval) is the unit of writing: its file is replaced whole, atomically
    (written to a temporary file in the same directory, flushed to disk with ``fsync``, then
    ``os.replace``d over the old one), so a reader or a killed job only ever sees whole
    files. Writing a series merges it with the file already there (the bars of both, the
    newer copy of a bar winning), and a series that would not change is not written, so a
    rerun writes only what is missing. Thousands of codes make thousands of
    files of some tens of kilobytes: engines list them in well under a second, and pruning by
    path beats packing series together, which would force a rewrite of the pack to add one.
    One writer per series at a time: jobs on disjoint codes may write one dataset together.

Paths
    A partition value is percent-encoded (as every hive reader decodes) except for digits,
    ``.``, ``-``, ``_`` and letters of the value's usual case: upper case in codes, lower
    case in intervals. So ``Silver`` and ``SILVER``, or ``1m`` (minutes) and ``1M`` (months),
    never meet in one directory on a case-insensitive filesystem (macOS, Windows), and no code
    can spell a path of its own.

Temporary files are named ``.part-0.<pid>.<random>.<host>.tmp`` (no ``.parquet`` ending, so no
glob reads them); :meth:`BarDataset.sweep` removes those a killed writer left behind, and every
job that writes a dataset calls it once before it starts. :func:`export_store` writes what the
disk cache holds in the same layout (``alltick-frames cache export DIR``).
"""

from __future__ import annotations

import os
import re
import socket
import time
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple
from urllib.parse import unquote

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from alltick_frames.frames.klines import KLINE_COLUMNS, KLINE_DTYPES, PRICE_FIELDS
from alltick_frames.frames.sessions import frame_sessions

if TYPE_CHECKING:
    from alltick_frames.store.disk import BarStore

#: The dataset's columns (further columns of the frame follow them).
SCHEMA = pa.schema(
    [
        ("code", pa.string()),
        ("interval", pa.string()),
        ("timestamp", pa.timestamp("us", tz="UTC")),
        ("session", pa.timestamp("us")),
        *((name, pa.float64()) for name in PRICE_FIELDS),
    ]
)
#: The one file of each series.
PART = "part-0.parquet"
_TMP_PREFIX = ".part-0."
_TMP_SUFFIX = ".tmp"
#: How files are encoded: zstd; floats split byte by byte (BYTE_STREAM_SPLIT), which lets
#: zstd find the bytes that prices share; times (bar starts, session dates) as deltas. A
#: 500-bar daily series of random walks takes 21 KB against 30 KB with Arrow's defaults
#: (benchmarks/dataset_size.py).
_PARQUET_OPTIONS = {
    "compression": "zstd",
    "use_dictionary": ["code", "interval"],
    "column_encoding": {
        "timestamp": "DELTA_BINARY_PACKED",
        "session": "DELTA_BINARY_PACKED",
        **dict.fromkeys(PRICE_FIELDS, "BYTE_STREAM_SPLIT"),
    },
}
#: Series files written at once by :meth:`BarDataset.write`.
WRITERS = 8
#: A temporary file older than this is a dead writer's, whichever host wrote it (seconds).
STALE_AFTER = 3600.0
_KEYS = ["code", "interval"]


def partition_value(value: str, upper: bool) -> str:
    """``value`` as a path segment: percent-encoded but for digits, ``.-_`` and letters of one
    case (``upper`` for codes, lower for intervals); see the module docstring."""
    out = []
    for ch in value:
        keep = ch.isascii() and (
            ch.isdigit() or ch in ".-_" or (ch.isupper() if upper else ch.islower())
        )
        out.append(ch if keep else "".join(f"%{b:02X}" for b in ch.encode("utf-8")))
    return "".join(out)


class Written(NamedTuple):
    """What a write did: series files written, and series that were already there whole."""

    written: int
    unchanged: int


class BarDataset:
    """A hive-partitioned Parquet dataset of bars under ``root`` (see the module docstring).

    >>> dataset = BarDataset("bars")                        # doctest: +SKIP
    >>> dataset.write(result.data)                          # doctest: +SKIP
    Written(written=93, unchanged=0)
    >>> dataset.read(codes=["AAPL.US"])                     # doctest: +SKIP
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        if self.root.exists() and not self.root.is_dir():
            raise ValueError(f"a dataset is a directory; {str(self.root)!r} is a file")

    def __repr__(self) -> str:
        return f"BarDataset({str(self.root)!r})"

    def path(self, code: str, interval: str) -> Path:
        """The file of one series."""
        return (
            self.root
            / f"interval={partition_value(interval, upper=False)}"
            / f"code={partition_value(code, upper=True)}"
            / PART
        )

    # -------------------------------------------------------------------------- writing

    def write(self, frame: pd.DataFrame) -> Written:
        """Write every series of ``frame`` (k-line columns, further columns kept; ``session``
        computed if absent), each merged with what the dataset holds, atomically. A job calls
        :meth:`sweep` once first.

        Series are written :data:`WRITERS` at a time: most of a write is waiting for the disk
        to confirm an ``fsync``, which threads overlap.
        """
        missing = [c for c in KLINE_COLUMNS if c not in frame.columns and c != "session"]
        if missing:
            raise ValueError(f"a dataset takes k-line frames; this one lacks {missing}")
        if "session" not in frame.columns:
            frame = frame.assign(session=frame_sessions(frame["code"], frame["timestamp"]))
        keys = frame[_KEYS].astype(str)
        groups = frame.groupby([keys["code"], keys["interval"]], sort=False)
        with ThreadPoolExecutor(WRITERS, thread_name_prefix="dataset") as pool:
            done = list(pool.map(lambda item: self.write_series(*item[0], item[1]), groups))
        return Written(sum(done), len(done) - sum(done))

    def write_series(self, code: str, interval: str, bars: pd.DataFrame) -> bool:
        """Merge ``bars`` (one series) into its file; False if the file already held them."""
        path = self.path(code, interval)
        new = _table(code, interval, bars)
        if path.exists():
            old = pq.read_table(path)
            merged = _merge(old, new)
            if _same(merged, old):
                return False
            new = merged
        _replace(path, new)
        return True

    def sweep(self) -> int:
        """Remove temporary files that killed writers left; return how many."""
        removed = 0
        for tmp in self._temporaries():
            if _abandoned(tmp):
                tmp.unlink(missing_ok=True)
                removed += 1
        return removed

    def _temporaries(self) -> Iterator[Path]:
        if self.root.is_dir():
            yield from self.root.glob(f"interval=*/code=*/{_TMP_PREFIX}*{_TMP_SUFFIX}")

    # -------------------------------------------------------------------------- reading

    def series(self) -> list[tuple[str, str]]:
        """The (code, interval) of every series file, decoded from the paths, sorted."""
        found = []
        for path in self.root.glob(f"interval=*/code=*/{PART}"):
            code = unquote(path.parent.name.removeprefix("code="))
            interval = unquote(path.parent.parent.name.removeprefix("interval="))
            found.append((code, interval))
        return sorted(found)

    def read(self, codes: list[str] | None = None, interval: str | None = None) -> pd.DataFrame:
        """Bars of the dataset as a k-line frame (the client's dtypes), sorted by code,
        interval and time; ``codes`` and ``interval`` narrow what is read."""
        import pyarrow.dataset as pds  # a quarter of a second to import: only when reading

        files = [
            str(self.path(c, i))
            for c, i in self.series()
            if (codes is None or c in codes) and (interval is None or i == interval)
        ]
        if not files:
            return pd.DataFrame({c: pd.Series(dtype=t) for c, t in KLINE_DTYPES.items()})
        schema = pa.unify_schemas([pq.read_schema(f) for f in files])
        table = pds.dataset(files, schema=schema, format="parquet").to_table()
        frame = table.to_pandas(types_mapper={pa.string(): KLINE_DTYPES["code"]}.get)
        frame = frame.astype({c: t for c, t in KLINE_DTYPES.items() if c in frame})
        return frame.sort_values(["code", "interval", "timestamp"], ignore_index=True)


def export_store(
    store: BarStore, keys: Sequence[tuple[str, str]], dataset: BarDataset, batch: int = 256
) -> Written:
    """Write the bars ``store`` holds for ``keys`` (code, interval), forming bars included,
    to ``dataset``, ``batch`` series at a time so memory stays bounded."""
    dataset.sweep()
    written = unchanged = 0
    for i in range(0, len(keys), batch):
        bars = store.read_many(keys[i : i + batch])
        bars["timestamp"] = pd.to_datetime(bars["timestamp"], unit="s", utc=True)
        done = dataset.write(bars)
        written, unchanged = written + done.written, unchanged + done.unchanged
    return Written(written, unchanged)


# ------------------------------------------------------------------------------ helpers


def _table(code: str, interval: str, bars: pd.DataFrame) -> pa.Table:
    """One series as an Arrow table in the dataset's schema, sorted by time, one row a bar
    (the last copy of a repeated bar wins)."""
    times = pd.DatetimeIndex(bars["timestamp"])
    if not (times.is_monotonic_increasing and times.is_unique):
        bars = bars.drop_duplicates("timestamp", keep="last").sort_values("timestamp")
    n = len(bars)
    columns: dict[str, pa.Array] = {
        "code": pa.array([code] * n, pa.string()),
        "interval": pa.array([interval] * n, pa.string()),
        "timestamp": pa.array(pd.DatetimeIndex(bars["timestamp"]).tz_convert("UTC")).cast(
            SCHEMA.field("timestamp").type
        ),
        "session": pa.array(bars["session"].to_numpy("datetime64[ns]")).cast(
            SCHEMA.field("session").type
        ),
    }
    for name in PRICE_FIELDS:
        columns[name] = pa.array(bars[name].to_numpy(dtype="float64"))
    for name in bars.columns:
        if name not in columns:
            columns[name] = pa.Array.from_pandas(bars[name])
    return pa.table(columns)


def _merge(old: pa.Table, new: pa.Table) -> pa.Table:
    """The bars of ``old`` and ``new``, ``new``'s copy of a bar winning, sorted by time."""
    keep = pc.invert(pc.is_in(old["timestamp"], value_set=new["timestamp"]))
    merged = pa.concat_tables([old.filter(keep), new], promote_options="permissive")
    return merged.sort_by("timestamp")


def _same(a: pa.Table, b: pa.Table) -> bool:
    """Whether two tables hold the same values (a NaN equal to a NaN, unlike Arrow's equals)."""
    return a.schema.equals(b.schema) and a.to_pandas().equals(b.to_pandas())


def _replace(path: Path, table: pa.Table) -> None:
    """Write ``table`` to ``path`` atomically: a temporary file beside it, fsync, rename.

    The rename is what makes the swap atomic; the fsync before it makes sure a crash of the
    machine cannot leave the new name on a file whose bytes never reached the disk.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f"{_TMP_PREFIX}{os.getpid()}.{uuid.uuid4().hex[:8]}.{_HOST}{_TMP_SUFFIX}"
    try:
        with tmp.open("wb") as f:
            pq.write_table(table, f, **_PARQUET_OPTIONS)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


_HOST = socket.gethostname().replace(os.sep, "_") or "host"
_TMP_NAME = re.compile(r"^\.part-0\.(?P<pid>\d+)\.[0-9a-f]+\.(?P<host>.+)\.tmp$")


def _abandoned(tmp: Path) -> bool:
    """Whether a temporary file's writer is gone: a dead process on this host (POSIX), or any
    writer that has not touched it for :data:`STALE_AFTER` seconds."""
    try:
        age = time.time() - tmp.stat().st_mtime
    except FileNotFoundError:
        return False
    if age > STALE_AFTER:
        return True
    named = _TMP_NAME.match(tmp.name)
    if named is None or named["host"] != _HOST or os.name != "posix":
        return False
    try:
        os.kill(int(named["pid"]), 0)  # signal 0: is it alive? (on Windows this would kill it)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # alive, someone else's
    return False
