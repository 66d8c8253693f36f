"""The catalogue, the admin view, the clocks and the server handle."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime

import aiohttp
import pytest
from emu_helpers import FAST

from alltick_frames.core.codes import classify
from alltick_frames.core.plans import FREE_SYMBOLS, get_plan
from alltick_frames.emulator import (
    CATALOGUE,
    EmulatorClock,
    EmulatorConfig,
    EmulatorServer,
    TokenSpec,
    parse_moment,
)

DOC_CODES = [
    "AAPL.US",
    "GOOGL.US",
    "UNH.US",
    "TSLA.US",
    "700.HK",
    "857.HK",
    "1288.HK",
    "9988.HK",
    "600416.SH",
    "000627.SZ",
    "EURUSD",
    "USDJPY",
    "AUDJPY",
    "BTCUSDT",
    "ETHUSDT",
    "GOLD",
    "Silver",
    "USOIL",
    "UKOIL",
    "COPPER",
    "NGAS",
    "Platinum",
    "XAUUSD",
]
INDICES = (
    "HSI.HK HSTECH.HK DJI.US SPX.US IXIC.US 000001.SH 000300.SH 000905.SH 000852.SH "
    "399001.SZ 399006.SZ"
)


def test_catalogue_size_and_classes():
    assert len(CATALOGUE) >= 300
    classes = Counter(inst.asset_class for inst in CATALOGUE.values())
    assert set(classes) == {"stock", "index", "etf", "fx", "crypto", "metal", "energy", "cfd"}
    etfs = Counter(i.market for i in CATALOGUE.values() if i.asset_class == "etf")
    assert set(etfs) == {"US", "HK", "SH", "SZ"}
    markets = Counter(i.market for i in CATALOGUE.values() if i.asset_class == "stock")
    assert all(markets[m] >= 50 for m in ("US", "HK", "SH", "SZ"))


def test_catalogue_holds_every_documented_and_free_code():
    missing = [c for c in (*DOC_CODES, *FREE_SYMBOLS, *INDICES.split()) if c not in CATALOGUE]
    assert missing == []
    assert all(CATALOGUE[c].asset_class == "index" for c in INDICES.split())


def test_every_code_routes_like_the_client_would():
    for code, inst in CATALOGUE.items():
        info = classify(code)
        assert info.market == inst.market
        assert info.path == inst.path


async def test_codes_endpoint(alltick_emulator, api):
    emu = alltick_emulator()
    rows = await api(emu).admin("GET", "codes")
    assert rows == emu.codes()
    assert len(rows) == len(CATALOGUE)
    for row in rows:
        assert {"code", "name", "asset_class", "market", "path", "pageable", "book_status"} <= set(
            row
        )
    tencent = next(r for r in rows if r["code"] == "700.HK")
    assert (tencent["market"], tencent["path"]) == ("HK", "/quote-stock-b-api")


async def test_stats_format_and_reset(alltick_emulator, api):
    emu = alltick_emulator(plan="basic", frozen_clock=True)
    client = api(emu)
    await client.kline("AAPL.US")
    await client.kline("AAPL.US")
    await api(emu, "stranger").kline("AAPL.US")
    await client.suspension("sse")
    stats = await client.admin("GET", "stats")
    assert stats == {
        "demo": {"kline": {"200": 1, "429": 1}, "suspension/sse": {"200": 1}},
        "stranger": {"kline": {"401": 1}},
    }
    assert emu.stats() == stats
    assert await client.admin("POST", "reset") == {"ok": True}
    assert await client.admin("GET", "stats") == {}
    assert (await client.kline("AAPL.US")).ret == 200, "reset empties the windows too"
    emu.reset()
    assert emu.stats() == {}


async def test_clock_endpoint(alltick_emulator, api):
    emu = alltick_emulator(plan="basic")
    client = api(emu)
    state = await client.admin("POST", "clock", {"frozen": True, "set": 1_700_000_000})
    assert state["frozen"] is True and state["now"] == 1_700_000_000
    assert (await client.kline("AAPL.US")).ret == 200
    assert (await client.kline("AAPL.US")).ret == 429
    state = await client.admin("POST", "clock", {"advance": 1})
    assert state["now"] == 1_700_000_001
    assert (await client.kline("AAPL.US")).ret == 200
    state = await client.admin("POST", "clock", {"market_now": "2024-05-18T00:00:00Z"})
    assert state["market_now"] == datetime(2024, 5, 18, tzinfo=UTC).timestamp()
    assert (await client.admin("GET", "clock"))["now"] == 1_700_000_001


async def test_clock_endpoint_rejects_nonsense(alltick_emulator, http):
    emu = alltick_emulator()
    async with http.post(f"{emu.url}/_emulator/clock", json={"advance": "soon"}) as resp:
        assert resp.status == 400 and "error" in await resp.json()


async def test_config_endpoint(alltick_emulator, api):
    emu = alltick_emulator(tokens={"a": "free", "b": {"plan": "basic", "basket": ["AAPL.US"]}})
    config = await api(emu).admin("GET", "config")
    assert config["tokens"]["a"]["plan"]["name"] == "free"
    assert config["tokens"]["b"]["basket"] == ["AAPL.US"]
    assert config["oversize"] == "cut" and config["mirror_status"] is False
    switches = {k: v for k, v in config.items() if k not in ("tokens", "market_now", "oversize")}
    assert switches == {
        "mirror_status": False,
        "lenient_free": False,
        "free_eod_only": False,
        "hard_code_cap": False,
        "page_energy_cfd": False,
        "suspension_paging": False,
        "old_invalid_codes": False,
        "error_data": False,
        "error_trace": True,
        "refusals_count": False,
    }


def test_switches_travel_to_an_emulator_in_another_process():
    config = EmulatorConfig(
        lenient_free=True, error_trace=False, suspension_paging=True, refusals_count=True
    )
    back = EmulatorConfig.from_dict(config.to_dict())
    assert (back.lenient_free, back.error_trace, back.suspension_paging) == (True, False, True)
    assert back.refusals_count is True


def test_emulator_clock():
    clock = EmulatorClock(start=1000.0, frozen=True)
    assert clock.now() == 1000.0 and clock.frozen
    assert clock.advance(2.5) == 1002.5
    assert clock.set(50) == 50.0
    clock.freeze(False)
    assert not clock.frozen and 50 <= clock.now() < 51
    clock.advance(100)
    assert 150 <= clock.now() < 151
    clock.freeze()
    reading = clock.now()
    assert clock.now() == reading
    real = EmulatorClock()
    assert abs(real.now() - datetime.now(UTC).timestamp()) < 1


def test_clock_is_thread_safe():
    clock = EmulatorClock(start=0.0, frozen=True)
    threads = [
        threading.Thread(target=lambda: [clock.advance(1) for _ in range(1000)]) for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert clock.now() == 4000


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-05-15T14:00:00Z", 1715781600.0),
        ("2024-05-15T22:00:00+08:00", 1715781600.0),
        ("2024-05-15T14:00:00", 1715781600.0),
        ("1715781600", 1715781600.0),
        ("1715781600000", 1715781600.0),
        (1715781600, 1715781600.0),
    ],
)
def test_parse_moment(text, expected):
    assert parse_moment(text) == expected


def test_parse_moment_explains_bad_input():
    with pytest.raises(ValueError, match="ISO-8601"):
        parse_moment("yesterday")


def test_config_tokens():
    config = EmulatorConfig(
        tokens={"a": "premium", "b": get_plan("free"), "c": {"basket": ["GOLD"]}}, plan="all-hk"
    )
    tokens = config.resolved_tokens()
    assert tokens["a"] == TokenSpec(get_plan("premium"))
    assert tokens["b"].plan.name == "free"
    assert tokens["c"] == TokenSpec(get_plan("all-hk"), frozenset({"GOLD"}))
    assert EmulatorConfig().resolved_tokens() == {"demo": TokenSpec(get_plan("basic"))}
    with pytest.raises(ValueError, match="oversize"):
        EmulatorConfig(oversize="drop")  # type: ignore[arg-type]


def test_plan_file_becomes_the_default_plan(tmp_path):
    path = tmp_path / "fast.json"
    path.write_text('{"name": "fast", "base": "professional", "per_minute": 5000}')
    config = EmulatorConfig(plan_file=path, tokens={"x": "fast", "y": "basic"})
    assert config.default_plan().per_minute == 5000
    assert config.resolved_tokens()["x"].plan.per_minute == 5000
    assert config.resolved_tokens()["y"].plan.name == "basic"


async def test_server_handle_context_manager_and_urls():
    with EmulatorServer(plan=FAST, now="2024-05-15T14:00:00Z") as emu:
        assert emu.url.startswith("http://127.0.0.1:") and emu.port > 0
        assert emu.stock_url == emu.url + "/quote-stock-b-api"
        assert emu.forex_url == emu.url + "/quote-b-api"
        assert emu.token == "demo"
        async with aiohttp.ClientSession() as http, http.get(emu.url + "/_emulator/codes") as r:
            assert r.status == 200
        url = emu.url
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.ClientConnectionError):
            await http.get(url + "/_emulator/codes")


def test_server_rejects_config_and_fields_together():
    with pytest.raises(TypeError):
        EmulatorServer(EmulatorConfig(), plan="basic")


def test_the_emulator_never_imports_the_client():
    """Two independent readings of the docs: the emulator may share only the plan table,
    intervals and code routing with the client."""
    import ast
    from pathlib import Path

    import alltick_frames.emulator as package

    allowed = {
        "alltick_frames.core.plans",
        "alltick_frames.core.intervals",
        "alltick_frames.core.codes",
    }
    for source in Path(package.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            for name in names:
                if name.startswith("alltick_frames") and not name.startswith(
                    "alltick_frames.emulator"
                ):
                    assert name in allowed, f"{source.name} imports {name}"
