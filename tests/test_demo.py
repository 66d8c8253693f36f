"""``alltick-frames demo`` end to end, the sample universe it ships (a copy of ``data/``), and
the newcomer's path: a wheel, not an editable install, running the demo in an empty folder."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import site
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from alltick_frames import frames
from alltick_frames.cli import main
from alltick_frames.cli.common import EXIT_AUTH, EXIT_OK
from alltick_frames.core.codes import FOREX_PATH, STOCK_PATH, validate_codes
from alltick_frames.core.plans import ENDPOINTS, Rate, get_plan
from alltick_frames.demo import BROKEN_FILE, SAMPLE_DIR, SAMPLE_FILES, data_dir, sample_universe
from alltick_frames.emulator import CATALOGUE
from alltick_frames.emulator.pytest_plugin import FIXTURE_NOW

REPO = Path(__file__).parents[1]
DATA = REPO / "data"
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
    assert [r["code"] for r in rows] == ["NOSUCHCODE.US", "NOSUCHPAIR"]
    assert all(r["code"] not in CATALOGUE and r["why"] for r in rows)
    # Well formed, one per base path, so they fail at AllTick (ret 600), not before.
    assert {c.path for c in validate_codes([r["code"] for r in rows])} == {STOCK_PATH, FOREX_PATH}


def test_the_package_ships_an_identical_copy_of_data():
    """data/ is the source; the demo reads the package's copy (importlib.resources), which
    must not drift from it."""
    shipped = data_dir()
    names = sorted(f.name for f in shipped.iterdir() if f.name.endswith(".csv"))
    assert names == sorted(f.name for f in DATA.glob("*.csv")) == sorted(SAMPLE_FILES)
    for name in names:
        assert (shipped / name).read_bytes() == (DATA / name).read_bytes(), (
            f"alltick_frames/{SAMPLE_DIR}/{name} differs from data/{name}: copy it over"
        )


def test_the_sample_universe_mixes_markets_and_has_no_repeats():
    universe = sample_universe()
    assert universe == sample_universe(DATA)  # --data-dir reads the same files
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
    assert "NOSUCHCODE.US" in out and "NOSUCHPAIR" in out
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


# --------------------------------------------------------------------------- from a wheel


def _ok(argv: list[str | Path], **kwargs: object) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(a) for a in argv], capture_output=True, text=True, timeout=120, **kwargs
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def test_the_demo_runs_from_a_wheel_in_an_empty_folder(tmp_path):
    # Build from a copy of the sources, so the build writes nothing into the checkout, with
    # this venv's setuptools (no download: --no-build-isolation, --no-index).
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    shutil.copytree(
        REPO / "alltick_frames",
        src / "alltick_frames",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    dist = tmp_path / "dist"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    _ok([*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", dist, src])
    (wheel,) = dist.glob("alltick_frames-*.whl")
    shipped = zipfile.ZipFile(wheel).namelist()
    assert "alltick_frames/sample_data/us.csv" in shipped
    assert f"alltick_frames/sample_data/{BROKEN_FILE}" in shipped

    # A fresh venv that sees this venv's packages (pandas, aiohttp, ...) through a .pth line,
    # which adds the directory without running its .pth files (so not the editable install),
    # and gets the wheel installed by this venv's pip.
    venv = tmp_path / "venv"
    _ok([sys.executable, "-m", "venv", "--without-pip", venv])
    python = venv / ("Scripts" if os.name == "nt" else "bin") / "python"
    purelib = Path(
        _ok([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"]).stdout.strip()
    )
    deps = [sysconfig.get_path("purelib"), *site.getsitepackages()]
    (purelib / "deps.pth").write_text("\n".join(dict.fromkeys(deps)) + "\n")
    _ok([*pip, "--python", python, "install", "--no-deps", "--no-index", wheel])

    empty = tmp_path / "empty"
    empty.mkdir()
    plan = tmp_path / "fast.json"
    plan.write_text(json.dumps(FAST.to_dict()))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ALLTICK_", "PYTHON"))}
    code = "import alltick_frames; print(alltick_frames.__file__)"
    imported = _ok([python, "-c", code], cwd=empty, env=env)
    assert Path(imported.stdout.strip()).is_relative_to(venv)
    script = python.with_name("alltick-frames")
    argv = [script, "demo", "--now", FIXTURE_NOW, "--plan", plan, "--count", "3", "--quiet"]
    done = _ok(argv, cwd=empty, env=env)

    assert "no ALLTICK_TOKEN set: running against the built-in AllTick emulator" in done.stdout
    assert "These failures are expected" in done.stdout
    assert [p.name for p in empty.iterdir()] == ["alltick_demo.parquet"]
    data = pd.read_parquet(empty / "alltick_demo.parquet")
    expected = [i.code for i in sample_universe() if i.source != BROKEN_FILE]
    assert list(pd.unique(data["code"])) == expected
    assert (data.groupby("code").size() == 3).all()
