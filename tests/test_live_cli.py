"""``alltick-frames stream`` against the emulator, on real time (a few seconds each)."""

from __future__ import annotations

import argparse

import pandas as pd
import pytest

from alltick_frames.cli.common import NoToken, UsageError
from alltick_frames.cli.stream import add_stream_parser
from alltick_frames.frames import DEPTH_DTYPES, TRADE_DTYPES


def command(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="alltick-frames")
    add_stream_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["stream", *argv])


@pytest.fixture
def emu(alltick_emulator):
    return alltick_emulator(plan="professional", ws={"cadence": 0.25})


def connect(emu) -> list[str]:
    return ["--token", emu.token, "--base-url", emu.url, "--plan", "professional"]


def test_writes_rolling_parts_and_exits_0(emu, tmp_path, capsys):
    out, failures = tmp_path / "ticks.parquet", tmp_path / "failures.csv"
    args = command(
        "--codes", "BTCUSDT,ETHUSDT", "--duration", "3", "--out", str(out),
        "--failures", str(failures), "--part-seconds", "0.5", *connect(emu),
    )  # fmt: skip
    assert args.handler(args) == 0
    trades, books = pd.read_parquet(out / "trades"), pd.read_parquet(out / "depth")
    assert len(list((out / "trades").glob("part-*.parquet"))) >= 2
    assert not list(out.rglob("*.tmp"))
    assert set(trades["code"]) == set(books["code"]) == {"BTCUSDT", "ETHUSDT"}
    assert list(trades.columns) == list(TRADE_DTYPES) and list(books.columns) == list(DEPTH_DTYPES)
    assert pd.read_csv(failures).empty
    captured = capsys.readouterr()
    assert "trades and" in captured.out and "from 2 of 2 codes" in captured.out
    assert "msgs" in captured.err and "/s" in captured.err and "codes 2/2" in captured.err


def test_codes_that_never_arrive_exit_3(emu, tmp_path, capsys):
    failures = tmp_path / "failures.parquet"
    args = command(
        "--codes", "BTCUSDT,NOPE", "--no-depth", "--duration", "2", "--failures", str(failures),
        *connect(emu),
    )  # fmt: skip
    assert args.handler(args) == 3
    table = pd.read_parquet(failures)
    assert table[["code", "endpoint", "kind"]].values.tolist() == [["NOPE", "ws-trade", "left-out"]]
    assert "1 item(s) failed (1 left-out)" in capsys.readouterr().out


def test_mistakes_before_any_connection(emu, tmp_path, monkeypatch):
    with pytest.raises(UsageError, match="nothing to stream"):
        args = command("--codes", "BTCUSDT", "--no-trades", "--no-depth", *connect(emu))
        args.handler(args)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(UsageError, match="not empty"):
        args = command("--codes", "BTCUSDT", "--out", str(tmp_path / "full"), *connect(emu))
        args.handler(args)
    monkeypatch.delenv("ALLTICK_TOKEN", raising=False)
    with pytest.raises(NoToken):
        args = command("--codes", "BTCUSDT", "--base-url", emu.url)
        args.handler(args)
