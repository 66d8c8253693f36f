"""The ``alltick-frames`` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="alltick-frames",
        description="AllTick market data as DataFrames, inside your plan's limits.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    from alltick_frames.emulator.cli import add_emulate_parser

    add_emulate_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return int(args.handler(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
