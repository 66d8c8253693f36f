"""The ``alltick_emulator`` pytest fixture, as client tests will use it."""

from __future__ import annotations

from datetime import UTC, datetime

from alltick_frames.emulator import EmulatorServer
from alltick_frames.emulator.pytest_plugin import FIXTURE_NOW


async def test_defaults(alltick_emulator, api):
    emu = alltick_emulator()
    assert isinstance(emu, EmulatorServer)
    assert emu.token == "demo" and emu.url.startswith("http://127.0.0.1:")
    assert emu.emulator.tokens["demo"].plan.name == "basic"
    assert emu.emulator.market_now() == datetime.fromisoformat(FIXTURE_NOW).timestamp()
    assert not emu.clock.frozen
    reply = await api(emu).kline("AAPL.US", kline_type=1, num=1)
    newest = datetime.fromtimestamp(int(reply.data["kline_list"][0]["timestamp"]), UTC)
    assert newest == datetime(2024, 5, 15, 14, 0, tzinfo=UTC)


async def test_several_emulators_with_their_own_settings(alltick_emulator, api):
    free = alltick_emulator(plan="free", frozen_clock=True)
    pro = alltick_emulator(tokens={"k1": "professional"}, faults={"slow": 0.0}, now=None)
    assert free.port != pro.port
    assert free.clock.frozen and not pro.clock.frozen
    assert (await api(free).kline("AAPL.US")).ret == 604
    assert (await api(pro, "k1").kline("AAPL.US")).ret == 200
    assert (await api(pro).kline("AAPL.US")).ret == 401, "only the configured tokens work"


async def test_config_fields_pass_through(alltick_emulator, api):
    emu = alltick_emulator(plan="basic", mirror_status=True, frozen_clock=True, seed=4)
    await api(emu).kline("AAPL.US")
    assert (await api(emu).kline("AAPL.US")).status == 429
    assert emu.emulator.injector.seed == 4
