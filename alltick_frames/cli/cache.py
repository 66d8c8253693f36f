"""``alltick-frames cache ACTION``: look at the disk cache of bars and tidy it."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from alltick_frames.cli.common import (
    EXIT_OK,
    SHARED_CACHE_HELP,
    UsageError,
    help_formatter,
    split_codes,
    wrap,
)

_SOURCE_HELP = (
    "only this source: bars are kept apart by where they came from, the host by default "
    "(quote.alltick.co), or the client's source= (the notebooks use alltick-emulator)"
)


def add_cache_parser(sub: Any) -> None:
    cache = sub.add_parser(
        "cache",
        help="look after the disk cache of bars (info, clear, vacuum, export)",
        description=wrap(
            "The disk cache keeps closed bars for good and the forming bar for a short "
            "while, so repeated jobs fetch only what is new. These commands look at it and "
            "tidy it; they make no call to AllTick."
        ),
        formatter_class=help_formatter,
    )
    what = cache.add_subparsers(dest="what", required=True, metavar="ACTION")
    where = argparse.ArgumentParser(add_help=False)
    where.add_argument(
        "--cache-dir",
        type=Path,
        metavar="DIR",
        help="the cache (default: $ALLTICK_CACHE_DIR or ~/.cache/alltick-frames)",
    )
    where.add_argument("--shared-cache", action="store_true", help=SHARED_CACHE_HELP)
    series = argparse.ArgumentParser(add_help=False)
    series.add_argument("--codes", metavar="A,B,...", help="only these codes")
    series.add_argument("--interval", help="only this bar size, e.g. 1d")
    series.add_argument("--source", help=_SOURCE_HELP)
    info = what.add_parser(
        "info",
        help="size and one row per stored series",
        description="Where the cache is, its size on disk, and one row per stored series "
        "(code, interval, bars, first and last closed bar, forming bar, when it was fetched).",
        parents=[where, series],
    )
    info.set_defaults(handler=_cache_info)
    clear = what.add_parser(
        "clear",
        help="delete stored series (all, or by code and interval)",
        description="Delete stored series: every one, or those of --codes and/or --interval. "
        "The next fetch of a deleted series fetches it again.",
        parents=[where, series],
    )
    clear.set_defaults(handler=_cache_clear)
    vacuum = what.add_parser(
        "vacuum",
        help="find and repair damage, and say what was done",
        description="Check the whole cache and repair what is damaged: a damaged database "
        "file is moved aside and what still passes every check is kept; series with damaged "
        "or missing pieces lose those spans (fetched again); entries the cache never writes "
        "(planted pickles, side files) and pieces no series refers to are removed unread.",
        parents=[where],
    )
    vacuum.set_defaults(handler=_cache_vacuum)
    export = what.add_parser(
        "export",
        help="write the cached bars to a Parquet dataset",
        description=wrap(
            "Write the cached series (every one, or those of --codes and/or --interval) to "
            "DIR as a hive-partitioned Parquet dataset, one file per series "
            "(interval=1d/code=AAPL.US/part-0.parquet), the layout `fetch klines --out DIR` "
            "writes: DuckDB, Polars and Spark read it. Series already there whole are not "
            "written again. Forming bars are included."
        ),
        formatter_class=help_formatter,
        parents=[where, series],
    )
    export.add_argument("dir", type=Path, metavar="DIR", help="the dataset's directory")
    export.set_defaults(handler=_cache_export)


def _store(args: argparse.Namespace) -> Any:
    from alltick_frames.store import BarStore, default_cache_dir

    root = args.cache_dir or default_cache_dir()
    if not (Path(root) / "bars").exists():
        return None, root
    return BarStore(root, shared=args.shared_cache), root


def _print_notes(store: Any) -> None:
    """What the store healed in series while the command ran (warnings are printed apart)."""
    for note in store.notes:
        if note.code is not None:
            print(f"cache: {note}")


def _cache_info(args: argparse.Namespace) -> int:
    store, root = _store(args)
    if store is None:
        print(f"no cache at {root} yet")
        return EXIT_OK
    with store:
        table = store.describe(interval=args.interval, source=args.source)
        if args.codes:
            table = table[table["code"].isin(split_codes(args.codes))]
        size = store.size_bytes()
    _print_notes(store)
    print(f"cache: {root}")
    print(f"size on disk: {size / 1e6:.1f} MB; {len(table)} series")
    if not table.empty:
        import pandas as pd

        columns = ["source", "code", "interval", "bars", "first", "last", "forming", "fetched_at"]
        table = table.assign(fetched_at=table["fetched_at"].dt.floor("s"))
        with pd.option_context("display.width", 160, "display.max_rows", 500):
            print(table[columns].to_string(index=False))
    return EXIT_OK


def _cache_clear(args: argparse.Namespace) -> int:
    store, root = _store(args)
    if store is None:
        print(f"no cache at {root}: nothing to clear")
        return EXIT_OK
    codes = split_codes(args.codes) if args.codes else [None]
    with store:
        removed = sum(store.clear(code, args.interval, args.source) for code in codes)
    _print_notes(store)
    print(f"deleted {removed} series from {root}")
    return EXIT_OK


def _cache_vacuum(args: argparse.Namespace) -> int:
    store, root = _store(args)
    if store is None:
        print(f"no cache at {root}: nothing to vacuum")
        return EXIT_OK
    with store:
        report = store.vacuum()
        size = store.size_bytes()
    print(f"vacuum of {root}: {report}; {size / 1e6:.1f} MB on disk")
    return EXIT_OK


def _cache_export(args: argparse.Namespace) -> int:
    store, root = _store(args)
    if store is None:
        print(f"no cache at {root}: nothing to export")
        return EXIT_OK
    from alltick_frames.store import BarStore
    from alltick_frames.store.dataset import BarDataset, Written, export_store

    dataset = BarDataset(args.dir)
    with store:
        table = store.describe(interval=args.interval, source=args.source)
    if args.codes:
        table = table[table["code"].isin(split_codes(args.codes))]
    sources = sorted(set(table["source"]))
    if len(sources) > 1:
        raise UsageError(
            f"the cache holds bars from {len(sources)} sources ({', '.join(sources)}); "
            "export one at a time with --source"
        )
    keys = list(zip(table["code"], table["interval"], strict=True))
    done = Written(0, 0)
    if keys:
        with BarStore(root, source=sources[0]) as source:
            done = export_store(source, keys, dataset)
    print(
        f"exported {len(keys)} series to {args.dir}: {done.written} written, "
        f"{done.unchanged} already there"
    )
    return EXIT_OK
