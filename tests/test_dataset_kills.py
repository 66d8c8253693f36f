"""A dataset-writing job killed at random moments (issue 14 item 4): ``fetch klines --out
DIR`` writes each batch of series as it completes, every file atomically. SIGKILL at 6
moments, then a rerun: the dataset equals a clean run's, and no partial file is left.

The emulator runs in its own process on a frozen market clock, so every run is served the
same bars. The plan (20 calls/s) spreads the two batches 0.6 s apart, and the first kill waits
for the first file, so at least one kill lands between batches however fast or busy the
machine is; the other five land at random between the moment the first file appeared (before
it the job is still importing, and a kill there tests nothing new) and the clean run's end.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
from test_client_support import fast_plan, tokens

from alltick_frames.store.dataset import BarDataset

PLAN = fast_plan(20)
#: 24 codes of daily bars: two batches of 12 codes (ITER_BATCH), one page each.
CODES = [
    *("EURUSD", "GBPUSD", "USDJPY", "AUDUSD", "USDCAD", "USDCHF", "NZDUSD", "EURJPY"),
    *("BTCUSDT", "ETHUSDT", "GOLD", "Silver", "AAPL.US", "TSLA.US", "MSFT.US", "700.HK"),
    *("EURGBP", "EURCHF", "GBPJPY", "AUDJPY", "XRPUSDT", "SOLUSDT", "NVDA.US", "AMZN.US"),
]
KILLS = 6


def command(emu, plan_file: Path, out: Path) -> list[str]:
    return [
        sys.executable, "-m", "alltick_frames.cli", "fetch", "klines",
        "--codes", ",".join(CODES), "--interval", "1d", "--count", "30",
        "--out", str(out), "--no-cache", "--quiet",
        "--base-url", emu.url, "--plan-file", str(plan_file),
    ]  # fmt: skip


def run(argv: list[str], env: dict[str, str]) -> float:
    started = time.monotonic()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode in (0, 3), done.stderr  # 3: some items failed (shortfalls)
    return time.monotonic() - started


def whole_files(root: Path) -> list[Path]:
    """Every Parquet file of the dataset, each read whole (a partial one would not read)."""
    files = sorted(root.rglob("*.parquet"))
    for f in files:
        pq.read_table(f)
    return files


def first_file(root: Path, job: subprocess.Popen[bytes]) -> None:
    """Return as soon as the dataset under ``root`` holds a file (or the job ended)."""
    while job.poll() is None and not (root.exists() and any(root.rglob("*.parquet"))):
        time.sleep(0.005)


def test_a_killed_dataset_job_and_a_rerun_leave_what_a_clean_run_does(
    alltick_emulator, tmp_path
) -> None:
    emu = alltick_emulator(tokens=tokens(PLAN), process=True)
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(json.dumps(PLAN.to_dict()), encoding="utf-8")
    env = {**os.environ, "ALLTICK_TOKEN": emu.token}
    clean, killed = tmp_path / "clean", tmp_path / "killed"
    span = run(command(emu, plan_file, clean), env)

    rng = random.Random(14)
    left = []
    first = 0.0
    for k in range(KILLS):
        job = subprocess.Popen(
            command(emu, plan_file, killed), env=env,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        if k == 0:
            started = time.monotonic()
            first_file(killed, job)
            first = min(time.monotonic() - started, span)
        else:
            time.sleep(rng.uniform(first, span))
        job.send_signal(signal.SIGKILL)
        job.wait()
        left.append(len(whole_files(killed)) if killed.exists() else 0)
    run(command(emu, plan_file, killed), env)

    # Some kill came after a batch was written and before the job ended: its series were
    # there, whole, and the rest not yet.
    assert any(0 < n < len(CODES) for n in left), left
    assert whole_files(killed) == [killed / f.relative_to(clean) for f in whole_files(clean)]
    assert not [p for p in killed.rglob("*") if p.is_file() and p.suffix != ".parquet"]
    pd.testing.assert_frame_equal(BarDataset(killed).read(), BarDataset(clean).read())
    assert len(BarDataset(clean).series()) == len(CODES)
