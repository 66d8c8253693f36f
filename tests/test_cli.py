"""The ``alltick-frames`` command line against the emulator: files written and exit statuses."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from alltick_frames import frames
from alltick_frames.cli import build_parser, main
from alltick_frames.cli.common import (
    EXIT_AUTH,
    EXIT_OK,
    EXIT_PARTIAL,
    EXIT_USAGE,
    read_codes_file,
)
from alltick_frames.core.errors import FAILURE_COLUMNS
from alltick_frames.emulator import EmulatorServer
from alltick_frames.frames.completeness import COMPLETENESS_COLUMNS

CONSOLE_SCRIPT = Path(sys.executable).with_name("alltick-frames")


@pytest.fixture
def emu(alltick_emulator) -> EmulatorServer:
    # Real time: the command line's client judges completeness by its own clock.
    return alltick_emulator(plan="professional", now=None)


@pytest.fixture
def cli(emu, tmp_path, monkeypatch):
    """``cli("fetch", "klines", ...)``: main() with the emulator's connection options."""
    monkeypatch.setenv("ALLTICK_TOKEN", emu.token)
    monkeypatch.chdir(tmp_path)
    connection = ["--base-url", emu.url, "--plan", "professional"]
    connection += ["--cache-dir", str(tmp_path / "cache")]

    def run(*argv: str, connect: bool = True) -> int:
        args = list(argv) + (connection if connect else [])
        return main(args)

    return run


def calls(emu: EmulatorServer) -> dict[str, dict[str, int]]:
    return emu.stats().get(emu.token, {})


# --------------------------------------------------------------------------- fetch


def test_klines_to_parquet_with_failures_csv(cli, emu, tmp_path, capsys):
    status = cli(
        "fetch", "klines", "--codes", "AAPL.US,EURUSD,NOPE.US", "--count", "5",
        "--out", "bars.parquet", "--failures", "failed/failures.csv",
    )  # fmt: skip
    assert status == EXIT_PARTIAL
    bars = pd.read_parquet(tmp_path / "bars.parquet")
    assert list(bars.columns) == frames.KLINE_COLUMNS
    assert bars.groupby("code")["timestamp"].size().to_dict() == {"AAPL.US": 5, "EURUSD": 5}
    assert str(bars["timestamp"].dtype) == "datetime64[ns, UTC]"
    failures = pd.read_csv(tmp_path / "failed" / "failures.csv")
    assert list(failures.columns) == FAILURE_COLUMNS
    assert failures[["code", "kind"]].values.tolist() == [["NOPE.US", "code-invalid"]]
    out = capsys.readouterr().out
    assert "wrote 10 rows to bars.parquet" in out
    assert "1 item(s) failed" in out and "NOPE.US" in out


def test_everything_fetched_exits_0_and_writes_csv(cli, tmp_path, capsys):
    status = cli(
        "fetch", "klines", "--codes", "700.HK,BTCUSDT", "--interval", "1h", "--count", "3",
        "--out", "bars.csv", "--failures", "failures.parquet",
    )  # fmt: skip
    assert status == EXIT_OK
    bars = pd.read_csv(tmp_path / "bars.csv")
    assert len(bars) == 6 and set(bars["interval"]) == {"1h"}
    assert pd.read_parquet(tmp_path / "failures.parquet").empty  # written even when empty


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_klines_write_sessions_and_the_completeness_table(cli, tmp_path, suffix):
    status = cli(
        "fetch", "klines", "--codes", "AAPL.US,700.HK,EURUSD", "--count", "4",
        "--out", f"bars{suffix}", "--completeness", f"complete{suffix}",
    )  # fmt: skip
    assert status == EXIT_OK
    read = pd.read_csv if suffix == ".csv" else pd.read_parquet
    bars = read(tmp_path / f"bars{suffix}")
    assert "session" in bars.columns and bars["session"].notna().all()
    table = read(tmp_path / f"complete{suffix}")
    assert list(table.columns) == COMPLETENESS_COLUMNS
    assert table[["code", "expected", "received", "missing"]].values.tolist() == [
        ["AAPL.US", 4, 4, 0], ["700.HK", 4, 4, 0], ["EURUSD", 4, 4, 0]
    ]  # fmt: skip
    assert cli("fetch", "klines", "--codes", "EURUSD", "--completeness", "c.txt") == EXIT_USAGE


def test_klines_range_prints_a_summary_and_head(cli, capsys):
    status = cli(
        "fetch", "klines", "--codes", "EURUSD", "--start", "2024-05-01", "--end", "2024-05-10"
    )
    assert status == EXIT_OK
    out = capsys.readouterr().out
    assert out.startswith("klines: 9 rows, 1 codes, 2024-05-01 to 2024-05-10")
    assert "EURUSD" in out


def test_kline_type_integers_and_epoch_seconds_mean_what_they_mean_in_python(cli, tmp_path):
    """``--interval 8`` and epoch ``--start``/``--end`` were refused although the README said
    they work (issue 10): the same request spelled both ways writes the same bars."""
    start, end = pd.Timestamp("2024-05-01", tz="UTC"), pd.Timestamp("2024-05-10", tz="UTC")
    assert cli(
        "fetch", "klines", "--codes", "EURUSD", "--interval", "8",
        "--start", str(int(start.timestamp())), "--end", f"{end.timestamp():.1f}",
        "--out", "epoch.parquet",
    ) == EXIT_OK  # fmt: skip
    assert cli(
        "fetch", "klines", "--codes", "EURUSD", "--interval", "1d",
        "--start", "2024-05-01", "--end", "2024-05-10", "--out", "dates.parquet",
    ) == EXIT_OK  # fmt: skip
    assert cli(
        "fetch", "latest", "--codes", "EURUSD", "--intervals", "1,8", "--out", "latest.parquet"
    ) == EXIT_OK  # fmt: skip
    epoch, dates = (pd.read_parquet(tmp_path / f"{n}.parquet") for n in ("epoch", "dates"))
    assert len(epoch) == 9
    pd.testing.assert_frame_equal(epoch, dates)
    latest = pd.read_parquet(tmp_path / "latest.parquet")
    assert latest["interval"].tolist() == ["1m", "1d"]


def test_latest(cli, tmp_path):
    status = cli(
        "fetch", "latest", "--codes", "EURUSD,AAPL.US", "--intervals", "1m,1d", "--count", "2",
        "--out", "latest.parquet",
    )  # fmt: skip
    assert status == EXIT_OK
    data = pd.read_parquet(tmp_path / "latest.parquet")
    assert data.groupby(["code", "interval"]).size().to_dict() == {
        ("AAPL.US", "1d"): 2,
        ("AAPL.US", "1m"): 2,
        ("EURUSD", "1d"): 2,
        ("EURUSD", "1m"): 2,
    }


def test_trades_depth_info_files(cli, emu, tmp_path):
    assert cli("fetch", "trades", "--codes", "AAPL.US,BTCUSDT", "--out", "t.parquet") == 0
    assert cli("fetch", "depth", "--codes", "700.HK,EURUSD", "--out", "d.csv") == 0
    assert cli("fetch", "info", "--codes", "700.HK,EURUSD", "--out", "i.parquet") == 3
    trades = pd.read_parquet(tmp_path / "t.parquet")
    assert list(trades.columns) == frames.TRADE_COLUMNS
    assert list(trades["code"]) == ["AAPL.US", "BTCUSDT"]
    depth = pd.read_csv(tmp_path / "d.csv")
    assert list(depth.columns) == frames.DEPTH_COLUMNS
    assert depth.groupby("code").size().to_dict() == {"700.HK": 20, "EURUSD": 2}
    info = pd.read_parquet(tmp_path / "i.parquet")
    assert list(info["code"]) == ["700.HK"]  # EURUSD: a failure row, no call
    assert {k: dict(v) for k, v in calls(emu).items()} == {
        "trade-tick": {"200": 2},
        "depth-tick": {"200": 2},
        "static_info": {"200": 1},
    }


def test_suspensions(cli, emu, tmp_path):
    assert cli("fetch", "suspensions", "--exchange", "NYSE", "--out", "halts.csv") == EXIT_OK
    halts = pd.read_csv(tmp_path / "halts.csv")
    assert list(halts.columns) == frames.SUSPENSION_COLUMNS
    assert len(halts) > 10 and set(halts["exchange"]) == {"NYSE"}
    assert calls(emu) == {"suspension/nyse": {"200": 1}}


def test_codes_files(cli, tmp_path, capsys):
    (tmp_path / "plain.txt").write_text("# my watchlist\nAAPL.US\n\n700.HK\n")
    (tmp_path / "list.csv").write_text("symbol,weight\nEURUSD,0.5\nGOLD,0.5\n")
    status = cli(
        "fetch", "trades", "--codes", "AAPL.US", "--codes-file", "plain.txt",
        "--codes-file", "list.csv", "--codes-column", "symbol", "--out", "t.csv",
    )  # fmt: skip
    assert status == EXIT_OK
    assert list(pd.read_csv(tmp_path / "t.csv")["code"]) == ["AAPL.US", "700.HK", "EURUSD", "GOLD"]
    data_dir = Path(__file__).parents[1] / "data"
    assert read_codes_file(data_dir / "metals.csv")[:2] == ["GOLD", "Silver"]
    assert cli("fetch", "trades", "--codes-file", "list.csv") == EXIT_USAGE
    assert "no column 'code'" in capsys.readouterr().err


def test_dry_run_makes_no_call(cli, emu, capsys, monkeypatch):
    status = cli(
        "fetch", "klines", "--codes-file", str(Path(__file__).parents[1] / "data" / "us.csv"),
        "--count", "1200", "--dry-run",
    )  # fmt: skip
    assert status == EXIT_OK
    out = capsys.readouterr().out
    assert out.startswith("dry run, no call made: 26 kline")  # stocks: one page each
    monkeypatch.delenv("ALLTICK_TOKEN")
    assert cli("fetch", "trades", "--codes", "AAPL.US,EURUSD", "--dry-run") == EXIT_OK
    out = capsys.readouterr().out
    assert "2 trade-tick" in out and "no token given" in out
    assert calls(emu) == {}


def test_quiet_prints_nothing(cli, capsys):
    assert cli("fetch", "trades", "--codes", "AAPL.US,NOPE.US", "--quiet") == EXIT_PARTIAL
    assert capsys.readouterr().out == ""


def test_klines_to_a_dataset_and_the_cache_exported_alike(cli, emu, tmp_path, capsys):
    """``--out DIR`` writes the Parquet dataset; ``cache export`` writes the same from the
    cache, and a second export writes nothing."""
    import duckdb

    codes = "AAPL.US,EURUSD,Silver"
    assert cli("fetch", "klines", "--codes", codes, "--count", "5", "--out", "bars") == EXIT_OK
    assert "wrote 15 rows to bars/ (a Parquet dataset)" in capsys.readouterr().out

    def read(root: str) -> list[tuple]:
        return duckdb.sql(
            f"SELECT code, interval, timestamp, close FROM read_parquet('{tmp_path / root}/"
            "**/*.parquet', hive_partitioning=true) ORDER BY ALL"
        ).fetchall()

    fetched = read("bars")
    assert len(fetched) == 15 and {row[0] for row in fetched} == {"AAPL.US", "EURUSD", "Silver"}
    export = ["cache", "export", "exported", "--cache-dir", str(tmp_path / "cache")]
    assert cli(*export, connect=False) == EXIT_OK
    assert "exported 3 series to exported: 3 written, 0 already there" in capsys.readouterr().out
    assert read("exported") == fetched
    assert cli(*export, connect=False) == EXIT_OK
    assert "0 written, 3 already there" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv",
    [
        ["fetch", "klines", "--codes", "aapl.us"],  # malformed code
        ["fetch", "klines", "--codes", "AAPL.US", "--count", "5", "--start", "2024-01-01"],
        ["fetch", "latest", "--codes", "AAPL.US", "--intervals", "4h"],  # no 4h batch for stocks
        ["fetch", "klines", "--codes", "AAPL.US", "--interval", "11"],  # kline_type 1..10
        ["fetch", "klines", "--codes", "EURUSD", "--count", str(10**20)],
        ["fetch", "klines", "--codes", "EURUSD", "--start", "1700000000000"],  # milliseconds
        ["fetch", "trades"],  # no codes
        ["fetch", "trades", "--codes-file", "missing.txt"],
        ["fetch", "trades", "--codes", "AAPL.US", "--out", "t.xlsx"],
        ["fetch", "trades", "--codes", "AAPL.US", "--out", "a-dataset-dir"],  # klines only
        ["fetch", "trades", "--codes", "AAPL.US", "--quiet", "--progress"],
        ["fetch", "trades", "--codes", "AAPL.US", "--no-cache", "--cache-dir", "x"],
    ],
)
def test_usage_errors_exit_2(cli, emu, argv, capsys):
    assert cli(*argv) == EXIT_USAGE
    assert "alltick-frames: error:" in capsys.readouterr().err
    assert calls(emu) == {}


def test_argparse_errors_exit_2(cli):
    for argv in (["fetch"], ["fetch", "bars"], ["fetch", "suspensions"], ["nope"]):
        with pytest.raises(SystemExit) as exit_info:
            cli(*argv, connect=False)
        assert exit_info.value.code == EXIT_USAGE


def test_auth_errors_exit_4(cli, monkeypatch, capsys):
    assert cli("fetch", "trades", "--codes", "AAPL.US", "--token", "wrong") == EXIT_AUTH
    err = capsys.readouterr().err
    assert "ret 401" in err and "wrong" not in err  # the token is never printed
    monkeypatch.delenv("ALLTICK_TOKEN")
    assert cli("fetch", "trades", "--codes", "AAPL.US") == EXIT_AUTH
    assert "no AllTick token" in capsys.readouterr().err


def test_every_command_has_help(capsys):
    commands = [
        [],
        ["fetch"],
        *(["fetch", w] for w in ("klines", "latest", "trades", "depth", "info", "suspensions")),
        ["cache"],
        *(["cache", w] for w in ("info", "clear", "vacuum")),
        ["demo"],
        ["emulate"],
    ]
    for command in commands:
        with pytest.raises(SystemExit) as exit_info:
            main([*command, "--help"])
        assert exit_info.value.code == 0
        text = capsys.readouterr().out
        assert text.startswith("usage: alltick-frames")
        if command[:1] in ([], ["fetch"], ["demo"]):
            assert "exit status" in text and "3  some items failed" in text, command
    assert build_parser().prog == "alltick-frames"


# --------------------------------------------------------------------------- cache


def test_cache_info_clear_vacuum(cli, tmp_path, capsys):
    cache = ["--cache-dir", str(tmp_path / "cache")]
    assert main(["cache", "info", *cache]) == EXIT_OK
    assert "no cache" in capsys.readouterr().out
    cli("fetch", "klines", "--codes", "AAPL.US,EURUSD,700.HK", "--count", "3", "--quiet")
    cli("fetch", "klines", "--codes", "EURUSD", "--interval", "1h", "--count", "3", "--quiet")
    assert main(["cache", "info", *cache]) == EXIT_OK
    out = capsys.readouterr().out
    assert "4 series" in out and "700.HK" in out and "MB" in out
    assert main(["cache", "info", *cache, "--codes", "EURUSD"]) == EXIT_OK
    assert "2 series" in capsys.readouterr().out
    assert main(["cache", "info", *cache, "--source", "elsewhere"]) == EXIT_OK
    assert "0 series" in capsys.readouterr().out
    assert main(["cache", "clear", *cache, "--source", "elsewhere"]) == EXIT_OK
    assert "deleted 0 series" in capsys.readouterr().out
    assert main(["cache", "clear", *cache, "--codes", "EURUSD", "--interval", "1h"]) == 0
    assert "deleted 1 series" in capsys.readouterr().out
    assert main(["cache", "clear", *cache, "--codes", "AAPL.US,700.HK"]) == 0
    assert "deleted 2 series" in capsys.readouterr().out
    assert main(["cache", "vacuum", *cache]) == EXIT_OK
    assert ": found nothing to repair;" in capsys.readouterr().out
    assert main(["cache", "clear", *cache]) == EXIT_OK
    assert "deleted 1 series" in capsys.readouterr().out


def test_a_repeated_fetch_is_answered_by_the_cache(cli, emu, capsys):
    argv = ["fetch", "klines", "--codes", "AAPL.US,EURUSD", "--count", "5"]
    assert cli(*argv) == EXIT_OK
    first = calls(emu)["kline"]["200"]
    capsys.readouterr()
    assert cli(*argv) == EXIT_OK
    assert calls(emu)["kline"]["200"] == first
    assert "from the cache" in capsys.readouterr().out


# --------------------------------------------------------------------------- the real script


def test_console_script_in_a_subprocess(emu, tmp_path):
    env = {**os.environ, "ALLTICK_TOKEN": emu.token, "ALLTICK_CACHE_DIR": str(tmp_path / "c")}
    argv = [
        str(CONSOLE_SCRIPT), "fetch", "trades", "--codes", "AAPL.US,NOPE.US,EURUSD",
        "--base-url", emu.url, "--plan", "professional",
        "--out", "trades.parquet", "--failures", "failures.csv",
    ]  # fmt: skip
    done = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == EXIT_PARTIAL, done.stderr
    assert list(pd.read_parquet(tmp_path / "trades.parquet")["code"]) == ["AAPL.US", "EURUSD"]
    assert list(pd.read_csv(tmp_path / "failures.csv")["code"]) == ["NOPE.US"]
    assert emu.token not in done.stdout + done.stderr
