"""``alltick-frames emulate`` and ``python -m alltick_frames.emulator``."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote
from urllib.request import urlopen

import pytest

from alltick_frames.cli import build_parser
from alltick_frames.emulator.cli import SWITCHES, config_from_args

REPO = Path(__file__).resolve().parents[2]


def parse(*argv: str) -> argparse.Namespace:
    return build_parser(emulate=True).parse_args(["emulate", *argv])


def test_defaults():
    args = parse()
    assert (args.host, args.port) == ("127.0.0.1", 8787)
    config = config_from_args(args)
    tokens = config.resolved_tokens()
    assert list(tokens) == ["demo"] and tokens["demo"].plan.name == "basic"
    assert not config.fault_config.active
    assert (config.mirror_status, config.oversize) == (False, "cut")
    assert [getattr(config, name) for name in SWITCHES] == [False] * len(SWITCHES)
    assert config.error_trace is True
    assert config.market_now is None


def test_tokens_baskets_and_switches():
    args = parse(
        "--token", "alice=premium", "--token", "bob=free", "--basket", "alice=AAPL.US, GOLD",
        "--now", "2024-05-15T14:00:00Z", "--mirror-status", "--oversize", "603",
        "--lenient-free", "--free-eod-only", "--hard-code-cap", "--page-energy-cfd",
        "--suspension-paging", "--old-invalid-codes", "--error-data", "--no-error-trace",
        "--refusals-count",
    )  # fmt: skip
    config = config_from_args(args)
    tokens = config.resolved_tokens()
    assert tokens["alice"].plan.name == "premium"
    assert tokens["alice"].basket == frozenset({"AAPL.US", "GOLD"})
    assert tokens["bob"].plan.name == "free" and tokens["bob"].basket is None
    assert "demo" not in tokens
    assert config.market_now == 1715781600.0
    assert (config.mirror_status, config.oversize) == (True, "603")
    assert [getattr(config, name) for name in SWITCHES] == [True] * len(SWITCHES)
    assert config.error_trace is False


def test_basket_without_tokens_limits_demo():
    config = config_from_args(parse("--plan", "premium", "--basket", "demo=EURUSD"))
    assert config.resolved_tokens()["demo"].plan.name == "premium"
    assert config.resolved_tokens()["demo"].basket == frozenset({"EURUSD"})
    with pytest.raises(SystemExit, match="no --token"):
        config_from_args(parse("--token", "a=basic", "--basket", "b=EURUSD"))


def test_fault_flags():
    faults = config_from_args(parse("--faults", "0.25")).fault_config
    assert (faults.rate_limit, faults.http_5xx, faults.reset, faults.malformed, faults.slow) == (
        0.05,
    ) * 5
    assert faults.drop_bars == 0.0, "--faults never drops bars: that changes the data"
    assert config_from_args(parse("--fault-drop-bars", "0.3")).fault_config.drop_bars == 0.3
    args = parse(
        "--faults", "0.25", "--fault-reset", "0.2", "--fault-5xx", "0", "--latency", "2",
        "--jitter", "0.5", "--fault-rate-limit", "0.1", "--fault-malformed", "0.01",
        "--fault-slow", "0.3", "--seed", "42",
    )  # fmt: skip
    config = config_from_args(args)
    faults = config.fault_config
    assert (faults.reset, faults.http_5xx, faults.rate_limit, faults.malformed) == (
        0.2,
        0.0,
        0.1,
        0.01,
    )
    assert (faults.slow, faults.latency, faults.jitter, config.seed) == (0.3, 2.0, 0.5, 42)


def test_bad_values_exit_with_a_message():
    with pytest.raises(SystemExit, match="TOKEN=PLAN"):
        config_from_args(parse("--token", "alice"))
    with pytest.raises(SystemExit, match="unknown plan"):
        config_from_args(parse("--plan", "gold"))
    with pytest.raises(SystemExit, match="at most 1"):
        config_from_args(parse("--fault-reset", "0.7", "--fault-5xx", "0.7"))


def test_plan_file(tmp_path):
    path = tmp_path / "fast.toml"
    path.write_text('name = "fast"\nbase = "professional"\nper_minute = 100000\n')
    config = config_from_args(parse("--plan-file", str(path), "--token", "bench=fast"))
    assert config.resolved_tokens()["bench"].plan.per_minute == 100_000
    assert config_from_args(parse("--plan-file", str(path))).default_plan().name == "fast"


def test_help_texts(capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser(emulate=True).parse_args(["emulate", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--token TOKEN=PLAN", "--plan-file", "--now", "--faults", "--fault-5xx",
                 "--mirror-status", "--oversize", "--lenient-free", "--free-eod-only",
                 "--hard-code-cap", "--page-energy-cfd", "--suspension-paging",
                 "--old-invalid-codes", "--error-data", "--no-error-trace",
                 "--refusals-count", "/_emulator/stats"):  # fmt: skip
        assert flag in text


@pytest.mark.parametrize(
    "command",
    [
        ["-m", "alltick_frames.emulator"],
        ["-c", "import sys; from alltick_frames.cli import main; sys.exit(main())", "emulate"],
    ],
    ids=["python-m", "alltick-frames"],
)
def test_runs_until_terminated(command):
    env = os.environ | {"PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, *command, "--port", "0", "--now", "2024-05-15T14:00:00Z"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:"), url
        query = quote(json.dumps({"trace": "cli", "data": {"symbol_list": [{"code": "GOLD"}]}}))
        with urlopen(f"{url}/quote-b-api/trade-tick?token=demo&query={query}", timeout=10) as r:
            body = json.loads(r.read())
        assert body["ret"] == 200 and body["data"]["tick_list"][0]["code"] == "GOLD"
    finally:
        proc.send_signal(signal.SIGTERM)
        returncode = proc.wait(timeout=10)
    assert returncode == 0, proc.stderr.read() if proc.stderr else ""
