"""``benchmarks/_thin_server.py`` answers what the emulator answers, so that
``benchmarks/client_ceiling.py`` measures the client on AllTick's bytes."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import orjson
import pytest

from alltick_frames.core.plans import get_plan
from alltick_frames.emulator import EmulatorConfig, EmulatorServer

SERVER = Path(__file__).resolve().parents[1] / "benchmarks" / "_thin_server.py"
TOKEN = "thin"
#: 2024-05-15 14:00 UTC, a Wednesday.
NOW = 1_715_781_600
PLAN = get_plan("professional")


def _module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("thin_server", SERVER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


#: The emulator's code whose bars a code's answers reuse.
template_of = _module().template_of


@pytest.fixture(scope="module")
def thin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    plan = tmp_path_factory.mktemp("thin") / "plan.json"
    plan.write_text(json.dumps(PLAN.to_dict()), encoding="utf-8")
    command = [sys.executable, str(SERVER), "--token", TOKEN, "--plan", str(plan)]
    process = subprocess.Popen([*command, "--now", str(NOW)], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        yield process.stdout.readline().strip()
    finally:
        process.terminate()
        process.wait()


def _kline(url: str, code: str, kline_type: int, end: int, count: int) -> bytes:
    data = {"code": code, "kline_type": kline_type, "kline_timestamp_end": end,
            "query_kline_num": count, "adjust_type": 0}  # fmt: skip
    query = json.dumps({"trace": "t-1", "data": data})
    params = urllib.parse.urlencode({"token": TOKEN, "query": query})
    with urllib.request.urlopen(f"{url}/quote-b-api/kline?{params}") as answer:
        return answer.read()


def test_the_newest_page_is_the_emulators_byte_for_byte(thin):
    code = "C0042USDT"
    template = template_of(code)
    with EmulatorServer(EmulatorConfig(tokens={TOKEN: PLAN}, now=NOW)) as emu:
        for kline_type in (1, 5, 8):
            ours = _kline(thin, code, kline_type, 0, 500)
            theirs = _kline(emu.url, template, kline_type, 0, 500)
            assert ours == theirs.replace(f'"{template}"'.encode(), f'"{code}"'.encode(), 1)


def test_older_pages_have_the_emulators_bar_times(thin):
    code, template = "C0007USDT", template_of("C0007USDT")
    with EmulatorServer(EmulatorConfig(tokens={TOKEN: PLAN}, now=NOW)) as emu:
        for kline_type, end, count in ((1, NOW - 3_601, 3), (5, NOW - 86_400 * 30, 500)):
            ours = orjson.loads(_kline(thin, code, kline_type, end, count))["data"]
            theirs = orjson.loads(_kline(emu.url, template, kline_type, end, count))["data"]
            stamps = [bar["timestamp"] for bar in ours["kline_list"]]
            assert stamps == [bar["timestamp"] for bar in theirs["kline_list"]]
            assert len(stamps) == count
            assert list(ours["kline_list"][0]) == list(theirs["kline_list"][0])  # field order


def test_bad_requests_get_the_emulators_error_bodies(thin):
    assert _kline(thin, "C0001USDT", 11, 0, 5) == (
        b'{"ret":400,"msg":"request data param invalid","trace":"t-1"}'
    )
    with urllib.request.urlopen(f"{thin}/_stats") as answer:
        assert json.loads(answer.read())["400"] >= 1
