"""Tables to files and terminals: what the command line and the demo print and write.

Kept apart from both, so that the demo job does not import the command line.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import pandas as pd

if TYPE_CHECKING:
    from alltick_frames.api.result import FetchResult

__all__ = ["print_failures", "print_head", "summary", "write_table"]


def write_table(df: pd.DataFrame, path: Path) -> None:
    """Write ``df`` as Parquet or CSV, by the file's suffix (parent directories created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".csv":
        df.to_csv(path, index=False)
    else:
        df.to_parquet(path, index=False)


def _span(values: pd.Series) -> str:
    values = values.dropna()
    if values.empty:
        return ""
    first, last = values.min(), values.max()
    fmt = "%Y-%m-%d" if (first.hour, first.minute, last.hour, last.minute) == (0,) * 4 else None
    show = (lambda t: t.strftime(fmt)) if fmt else (lambda t: t.strftime("%Y-%m-%d %H:%M:%SZ"))
    return f", {show(first)} to {show(last)}"


def summary(method: str, result: FetchResult) -> str:
    """One line on what arrived and what it cost, e.g. for ``klines``:
    ``klines: 23,250 rows, 93 codes, 2023-05-17 to 2024-05-15; 95 calls in 4.1s``."""
    data = result.data
    parts = [f"{method}: {len(data):,} rows"]
    if "code" in data and len(data):
        parts[0] += f", {data['code'].nunique()} codes"
    for column in ("timestamp", "time", "published_at"):
        if column in data:
            parts[0] += _span(data[column])
            break
    stats = result.stats
    calls = ", ".join(f"{n} {e}" for e, n in sorted(stats.calls.items()) if n) or "no calls"
    text = f"{parts[0]}; {stats.total_calls} calls ({calls}) in {stats.wall_time:.1f}s"
    if stats.cached:
        text += f"; {stats.cached} from the cache"
    if stats.retries:
        text += f"; {stats.retries} retries"
    return text


def print_head(data: pd.DataFrame, rows: int = 10, file: TextIO | None = None) -> None:
    """The first ``rows`` rows of ``data``, and how many more there are."""
    if data.empty:
        return
    with pd.option_context("display.width", 120, "display.max_columns", 12):
        print(data.head(rows).to_string(index=False), file=file or sys.stdout)
    if len(data) > rows:
        print(f"... {len(data) - rows:,} more rows (write them all with --out)", file=file)


def print_failures(
    failures: pd.DataFrame, saved_to: Path | None = None, rows: int = 20, file: TextIO | None = None
) -> None:
    """The failures table, short: one line per item, then what to do once per kind."""
    kinds = ", ".join(f"{n} {k}" for k, n in failures["kind"].value_counts().items())
    print(f"{len(failures)} item(s) failed ({kinds}):", file=file)
    shown = failures[["code", "interval", "endpoint", "kind", "msg"]].head(rows).copy()
    shown["interval"] = shown["interval"].fillna("")
    shown["msg"] = shown["msg"].str.slice(0, 70)
    print(shown.to_string(index=False), file=file)
    if len(failures) > rows:
        print(f"... {len(failures) - rows} more", file=file)
    print("what to do:", file=file)
    for kind, action in failures.drop_duplicates("kind")[["kind", "action"]].itertuples(
        index=False
    ):
        print(f"  {kind}: {action}", file=file)
    if saved_to is not None:
        print(f"wrote the failures table to {saved_to}", file=file)
