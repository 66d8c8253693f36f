"""``alltick-frames demo`` end to end, and the sample universe it reads from ``data/``."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pandas as pd
import pytest

from alltick_frames import frames
from alltick_frames.cli import main
from alltick_frames.cli.common import EXIT_AUTH, EXIT_OK
from alltick_frames.core.codes import validate_codes
from alltick_frames.core.plans import ENDPOINTS, Rate, get_plan
from alltick_frames.demo import BROKEN_FILE, SAMPLE_FILES, data_dir, sample_universe
from alltick_frames.emulator import CATALOGUE
from alltick_frames.emulator.pytest_plugin import FIXTURE_NOW

DATA = Path(__file__).parents[1] / "data"
MARKET_FILES = [name for name in SAMPLE_FILES if name != BROKEN_FILE]

#: Professional's caps at a pace that makes the demo's 95 calls instant (for the tests that
#: are not about the default plan).
FAST = get_plan("professional").with_overrides(
    name="fast",
    endpoint_rates={name: Rate(100_000, 1.0) for name in ENDPOINTS},
    all_endpoints=Rate(100_000, 1.0),
    per_minute=10**8,
)


@pytest.fixture
def fast_plan_file(tmp_path: Path) -> Path:
    path = tmp_path / "fast.json"
    path.write_text(json.dumps(FAST.to_dict()))
    return path


# --------------------------------------------------------------------------- data/


@pytest.mark.parametrize("name", MARKET_FILES)
def test_every_sample_code_is_in_the_emulators_catalogue(name):
    with (DATA / name).open(newline="") as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == ["code", "name", "market"]
        rows = list(reader)
    codes = [row["code"] for row in rows]
    assert len(codes) >= 10
    validate_codes(codes)  # well formed, none repeated
    assert [c for c in codes if c not in CATALOGUE] == []
    for row in rows:
        assert row["name"].strip()


def test_the_broken_codes_fail_on_purpose():
    rows = list(csv.DictReader((DATA / BROKEN_FILE).open(newline="")))
    assert [r["code"] for r in rows] == ["DELISTED.US", "SILVER"]
    assert all(r["code"] not in CATALOGUE and r["why"] for r in rows)
    validate_codes([r["code"] for r in rows])  # they fail at AllTick, not before


def test_the_sample_universe_mixes_markets_and_has_no_repeats():
    universe = sample_universe()
    assert data_dir() == DATA
    codes = [i.code for i in universe]
    assert len(codes) == len(set(codes)) == 95
    assert {i.market for i in universe} >= {"US", "HK", "SH", "SZ", "FX", "CRYPTO", "METAL"}


# --------------------------------------------------------------------------- the demo


def test_demo_end_to_end_on_the_emulator(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("ALLTICK_TOKEN", raising=False)
    monkeypatch.chdir(tmp_path)
    assert main(["demo", "--now", FIXTURE_NOW]) == EXIT_OK
    out = capsys.readouterr().out
    data = pd.read_parquet(tmp_path / "alltick_demo.parquet")
    assert list(data.columns) == frames.KLINE_COLUMNS
    assert data["code"].nunique() == 93
    assert (data.groupby("code").size() == 250).all()
    assert data["timestamp"].max() <= pd.Timestamp(FIXTURE_NOW)
    assert "no ALLTICK_TOKEN set: running against the built-in AllTick emulator" in out
    assert "rows       23,250" in out
    assert "codes      93 of 95 with data" in out
    # 95 calls; a loaded machine may add a retry or two (the emulator shares our GIL).
    calls = re.search(r"calls      (\d+) \(kline (\d+)\)", out)
    assert calls is not None and 95 <= int(calls[1]) == int(calls[2]) <= 100
    assert "DELISTED.US" in out and "SILVER" in out
    assert "These failures are expected" in out
    assert "Wrote 23,250 rows to alltick_demo.parquet" in out
    assert not (tmp_path / "cache").exists()  # synthetic bars stay out of any cache


def test_demo_with_a_token_uses_the_given_service(
    alltick_emulator, fast_plan_file, tmp_path, monkeypatch, capsys
):
    emu = alltick_emulator(plan=FAST)
    monkeypatch.setenv("ALLTICK_TOKEN", emu.token)
    out_file = tmp_path / "out" / "bars.csv"
    argv = ["demo", "--base-url", emu.url, "--plan", str(fast_plan_file), "--count", "3"]
    argv += ["--out", str(out_file), "--cache-dir", str(tmp_path / "cache")]
    assert main(argv) == EXIT_OK
    out = capsys.readouterr().out
    assert f"ALLTICK_TOKEN is set: running against {emu.url}" in out
    data = pd.read_csv(out_file)
    assert len(data) == 93 * 3
    assert emu.stats()[emu.token]["kline"] == {"200": 93, "600": 2}
    assert "pandas.read_csv" in out


def test_demo_with_a_refused_token_exits_4(alltick_emulator, tmp_path, monkeypatch, capsys):
    emu = alltick_emulator(plan=FAST)
    monkeypatch.setenv("ALLTICK_TOKEN", "not-a-token")
    monkeypatch.chdir(tmp_path)
    argv = ["demo", "--base-url", emu.url, "--no-cache", "--count", "3"]
    assert main(argv) == EXIT_AUTH
    assert "ret 401" in capsys.readouterr().err
    assert not (tmp_path / "alltick_demo.parquet").exists()


def test_demo_emulator_flag_ignores_the_token(fast_plan_file, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ALLTICK_TOKEN", "a-real-token-we-must-not-use")
    monkeypatch.chdir(tmp_path)
    argv = ["demo", "--emulator", "--plan", str(fast_plan_file), "--count", "2", "--quiet"]
    assert main(argv) == EXIT_OK
    assert "--emulator given" in capsys.readouterr().out
    assert len(pd.read_parquet(tmp_path / "alltick_demo.parquet")) == 93 * 2
