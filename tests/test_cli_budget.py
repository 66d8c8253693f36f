"""``alltick-frames budget show|reset`` against real ledgers: on disk beside the cache, and in
Redis. The token never appears in what they print; its fingerprint does."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from alltick_frames.budget import (
    DAILY_CAP_KEY,
    Budget,
    day_index,
    day_start,
    to_ticks,
    token_fingerprint,
)
from alltick_frames.budget.shared import budget_from_url
from alltick_frames.cli import main
from alltick_frames.cli.common import EXIT_AUTH, EXIT_ERROR, EXIT_OK
from alltick_frames.core.clock import FakeClock

NOW = time.time()
TOKEN = "tk-budget-cli-0123456789-secret"
OTHER = "tk-another-token-9876543210"


def spent(cache_dir: Path, token: str, calls: int) -> None:
    """``calls`` calls to /kline five minutes ago, a block on /kline that ended since, and the
    day's cap marked spent until the next 00:00 UTC+8. (Blocks are written as the budget
    writes them after a 429 or repeated 605s, without going through its rules.)"""
    budget = Budget.for_token("basic", token, cache_dir=cache_dir, clock=FakeClock(NOW - 300))
    for _ in range(calls):
        budget.reserve("kline")
    reset = to_ticks(day_start(day_index(NOW) + 1))
    ended = to_ticks(NOW - 200)
    budget.ledger.update(
        lambda s: s.blocked.update({"endpoint:kline": ended, DAILY_CAP_KEY: reset})
    )
    assert budget.usage()["exhausted"]
    budget.close()


def blocked_now(cache_dir: Path, token: str) -> None:
    """Blocks in force for the next 10 s on /kline and on all endpoints."""
    until = to_ticks(time.time() + 10)
    budget = now_budget(cache_dir, token)
    budget.ledger.update(
        lambda s: s.blocked.update({"endpoint:kline": until, "all-endpoints": until})
    )
    budget.close()


def now_budget(cache_dir: Path, token: str) -> Budget:
    return Budget.for_token("basic", token, cache_dir=cache_dir, clock=FakeClock(time.time()))


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    assert TOKEN not in out + err and OTHER not in out + err
    return status, out, err


def test_show_prints_each_fingerprint_its_windows_blocks_and_day(tmp_path: Path, capsys) -> None:
    spent(tmp_path, TOKEN, 3)
    other = now_budget(tmp_path, OTHER)
    other.reserve("trade-tick")
    other.close()
    status, out, _ = run(capsys, "budget", "show", "--cache-dir", str(tmp_path), "--token", TOKEN)
    assert status == EXIT_OK
    assert f"budget ledger: {tmp_path / 'budget'}; windows of plan basic" in out
    mine, other = token_fingerprint(TOKEN), token_fingerprint(OTHER)
    part = out.split(f"token {mine} (this token)\n")[1].split("token ")[0]
    assert re.search(r"today \(\d{4}-\d\d-\d\d, UTC\+8\): 3 of 86,400", part)
    # Three calls a second apart, five minutes ago: none is in a window now.
    assert "endpoint:kline: 0 of 1 in the last 1 s, 0 reserved ahead" in part
    assert "all-endpoints: 0 of 1 in the last 1 s, 0 reserved ahead" in part
    assert "the day's cap marked spent until " in part and " UTC (in " in part
    assert "endpoint:kline blocked" not in part  # the 429's block ended minutes ago
    assert f"token {other}\n" in out and f"token {other} (this token)" not in out
    theirs = out.split(f"token {other}\n")[1]
    assert "endpoint:trade-tick: 1 of 1 in the last 1 s, 0 reserved ahead" in theirs
    assert "per-minute: 1 of 60 in the last 60 s" in theirs
    assert "no block in force" in theirs


def test_reset_clears_the_tokens_blocks_and_spent_day_only(tmp_path: Path, capsys) -> None:
    spent(tmp_path, TOKEN, 3)
    blocked_now(tmp_path, TOKEN)
    blocked_now(tmp_path, OTHER)

    args = ["--cache-dir", str(tmp_path), "--token", TOKEN]
    status, out, _ = run(capsys, "budget", "reset", *args)
    assert status == EXIT_OK
    fp = token_fingerprint(TOKEN)
    assert out.startswith(
        f"token {fp}: cleared the day's spent mark, the block on all-endpoints, the block on "
        "endpoint:kline"
    )
    assert f"in the ledger at {tmp_path / 'budget'}" in out

    again = Budget.for_token("basic", TOKEN, cache_dir=tmp_path)
    usage = again.usage()
    assert not usage["exhausted"] and usage["calls_today"] == 3  # the calls made still count
    assert again.ledger.read(lambda s: s.blocked) == {}
    again.close()
    theirs = Budget.for_token("basic", OTHER, cache_dir=tmp_path)
    assert set(theirs.ledger.read(lambda s: s.blocked)) == {"endpoint:kline", "all-endpoints"}
    theirs.close()
    status, out, _ = run(capsys, "budget", "reset", *args)
    assert status == EXIT_OK and out.startswith(f"token {fp}: no block to clear")


def test_without_a_ledger_or_a_token(tmp_path: Path, capsys, monkeypatch) -> None:
    status, out, _ = run(capsys, "budget", "show", "--cache-dir", str(tmp_path))
    assert status == EXIT_OK and out == f"no budget ledger at {tmp_path / 'budget'} yet\n"
    monkeypatch.delenv("ALLTICK_TOKEN", raising=False)
    status, _, err = run(capsys, "budget", "reset", "--cache-dir", str(tmp_path))
    assert status == EXIT_AUTH and "no AllTick token" in err


def test_a_damaged_ledger_is_an_error_that_says_where(tmp_path: Path, capsys) -> None:
    (tmp_path / "budget").mkdir()
    (tmp_path / "budget" / "cache.db").write_bytes(b"garbage " * 512)
    status, _, err = run(capsys, "budget", "show", "--cache-dir", str(tmp_path))
    assert status == EXIT_ERROR
    assert f"cannot read the budget ledger at {tmp_path / 'budget'}" in err
    assert "Traceback" not in err


def test_show_and_reset_a_ledger_in_redis(redis_server, capsys) -> None:
    budget = budget_from_url(redis_server.url, "basic", TOKEN)
    budget.reserve("kline")
    until = to_ticks(time.time() + 10)
    budget.ledger.update(
        lambda s: s.blocked.update({"endpoint:kline": until, DAILY_CAP_KEY: until})
    )
    budget.close()
    args = ["--budget", redis_server.url, "--token", TOKEN]
    status, out, _ = run(capsys, "budget", "show", *args)
    assert status == EXIT_OK
    assert f"budget ledger: Redis at 127.0.0.1:{redis_server.port}/0" in out
    assert f"token {token_fingerprint(TOKEN)} (this token)" in out
    assert re.search(r"today \(.*\): 1 of 86,400", out)
    assert "endpoint:kline: 1 of 1 in the last 1 s" in out
    assert "endpoint:kline blocked until" in out and "the day's cap marked spent" in out
    status, out, _ = run(capsys, "budget", "reset", *args)
    assert status == EXIT_OK and "cleared the day's spent mark" in out
    check = budget_from_url(redis_server.url, "basic", TOKEN)
    assert check.ledger.read(lambda s: s.blocked) == {} and not check.usage()["exhausted"]
    check.close()
