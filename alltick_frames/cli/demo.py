"""``alltick-frames demo``: the demo command's options, handed to the demo job.

The job itself (:mod:`alltick_frames.demo`) is imported inside these functions only: it does
not need the command line, and the command line does not need it until ``demo`` runs.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from alltick_frames.cli.common import (
    EXIT_HELP,
    EXIT_OK,
    cache_options,
    output_path,
    progress_choice,
)

DESCRIPTION = """\
Fetch a year of daily bars for the sample universe in data/ (US, HK and A-share stocks,
FX, crypto, metals: about 100 codes) and write them to a Parquet file.

Without ALLTICK_TOKEN this starts the built-in AllTick emulator in this process: synthetic
prices, no network, done in a few seconds. With ALLTICK_TOKEN set it runs the same job
against AllTick (at your plan's pace: pass --plan).

Two codes of the sample (data/broken.csv) fail on purpose, so the failures table shows what a
failure looks like; the demo still exits 0 when it ran.
"""


def add_demo_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``demo`` on the ``alltick-frames`` command line."""
    from alltick_frames import demo

    parser = subparsers.add_parser(
        "demo",
        help="fetch daily bars for the sample universe (no token needed)",
        description=DESCRIPTION,
        epilog="examples:\n  alltick-frames demo\n  alltick-frames demo --out bars.parquet"
        "\n  ALLTICK_TOKEN=... alltick-frames demo --plan premium\n\n" + EXIT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=demo.DEFAULT_OUT,
        metavar="FILE",
        help=f"where to write the bars (.parquet or .csv; default: {demo.DEFAULT_OUT})",
    )
    parser.add_argument(
        "--count",
        type=int,
        default=demo.DEFAULT_COUNT,
        help=f"daily bars per code (default: {demo.DEFAULT_COUNT}, about a year)",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        metavar="DIR",
        help="where the sample universe lives (default: the copy of data/ shipped with "
        "the package)",
    )
    where = parser.add_argument_group("where the data comes from")
    where.add_argument(
        "--emulator",
        action="store_true",
        help="use the built-in emulator even when ALLTICK_TOKEN is set",
    )
    where.add_argument(
        "--plan",
        help=f"the plan to pace by (default: {demo.EMULATOR_PLAN} on the emulator, "
        f"{demo.TOKEN_PLAN} with a token: pass yours)",
    )
    where.add_argument(
        "--base-url",
        help="AllTick host when ALLTICK_TOKEN is set (default: $ALLTICK_BASE_URL or "
        "https://quote.alltick.co)",
    )
    where.add_argument(
        "--now",
        metavar="MOMENT",
        help="fix the emulator's market clock, e.g. 2024-05-15T14:00:00Z, for the same "
        "output on every run (default: real time)",
    )
    options = parser.add_argument_group("cache and progress")
    cache_options(options)
    shown = options.add_mutually_exclusive_group()
    shown.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    shown.add_argument("--progress", action="store_true", help="always show a progress bar")
    parser.set_defaults(handler=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Run the demo; returns 0 when it ran (partial failures are part of the demo)."""
    from alltick_frames import demo

    out = output_path(args.out, "--out")
    assert out is not None
    demo.run(
        out=out,
        count=args.count,
        sample_dir=args.data_dir,
        emulator=args.emulator,
        plan=args.plan,
        base_url=args.base_url,
        now=args.now,
        no_cache=args.no_cache,
        cache_dir=args.cache_dir,
        shared_cache=args.shared_cache,
        progress=progress_choice(args),
    )
    return EXIT_OK
