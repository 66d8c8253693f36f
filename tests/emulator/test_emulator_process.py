"""The emulator in its own process, and the network's delay on the way in (arrival jitter)."""

from __future__ import annotations

import asyncio

import pytest

from alltick_frames.core.plans import get_plan
from alltick_frames.emulator import EmulatorConfig, EmulatorProcess, FaultConfig
from alltick_frames.emulator.faults import FaultInjector

NOW = "2024-05-15T14:00:00Z"


def test_config_round_trips_through_json_with_custom_plans_and_baskets():
    fast = get_plan("basic").with_overrides(name="fast", per_minute=600)
    config = EmulatorConfig(
        tokens={"alice": fast, "bob": {"plan": "free", "basket": ["GOLD", "USDJPY"]}},
        now=NOW,
        faults={"reset": 0.25, "arrival_jitter": 0.05},
        seed=9,
        mirror_status=True,
        frozen_clock=True,
        clock_start=1_700_000_000,
        ws={"cadence": 0.5},
    )
    back = EmulatorConfig.from_dict(config.to_dict())
    assert back.resolved_tokens() == config.resolved_tokens()
    assert back.fault_config == config.fault_config and back.ws == config.ws
    assert (back.market_now, back.seed, back.mirror_status) == (config.market_now, 9, True)
    assert back.rate_clock.state() == {"now": 1_700_000_000.0, "frozen": True}


async def test_process_emulator_serves_counts_and_is_driven_like_the_in_process_one(
    alltick_emulator, api
):
    emu = alltick_emulator(plan="basic", frozen_clock=True, process=True)
    assert isinstance(emu, EmulatorProcess)
    client = api(emu)
    first = await client.kline("EURUSD", kline_type=8, num=3)
    second = await client.kline("EURUSD", kline_type=8, num=3)
    assert (first.ret, len(first.data["kline_list"]), second.ret) == (200, 3, 429)
    emu.clock.advance(1.1)  # the rate clock is the child's, moved over the admin view
    assert (await client.kline("EURUSD", kline_type=8, num=3)).ret == 200
    assert emu.stats() == {"demo": {"kline": {"200": 2, "429": 1}}}
    assert any(row["code"] == "EURUSD" for row in emu.codes())

    emu.set_faults(malformed=1.0)
    assert (await client.kline("EURUSD", kline_type=8, num=3)).json is None
    assert emu.injected_faults() == {"malformed": 1}
    emu.reset()
    assert emu.stats() == {}


def test_a_process_that_cannot_start_says_why():
    config = EmulatorConfig()
    emu = EmulatorProcess(config, host="256.0.0.1")  # not an address: the child cannot bind
    with pytest.raises(RuntimeError, match="did not start"):
        emu.start()
    emu.stop()  # idempotent after a failed start


def test_arrival_delays_are_seeded_bounded_and_leave_the_fault_sequence_alone():
    plain = FaultInjector(FaultConfig(reset=0.5), seed=3)
    jittered = FaultInjector(FaultConfig(reset=0.5, arrival_jitter=0.2), seed=3)
    delays = [jittered.arrival_delay() for _ in range(200)]
    assert all(0.0 <= d <= 0.2 for d in delays) and max(delays) > 0.15
    assert [plain.draw() for _ in range(50)] == [jittered.draw() for _ in range(50)]
    jittered.reset()
    assert [jittered.arrival_delay() for _ in range(200)] == delays
    assert plain.arrival_delay() == 0.0


async def test_windows_judge_a_request_when_it_arrives_not_when_it_was_sent(alltick_emulator, api):
    # Seed 655 delays the first request to arrive by 1.94 s and the second by 0.01 s. A is sent
    # first; B is sent after the rate clock moved past A's window. B arrives first and is
    # admitted; A arrives after it, inside B's one-second window, and is refused.
    emu = alltick_emulator(
        plan="basic", frozen_clock=True, faults={"arrival_jitter": 2.0}, seed=655
    )
    client = api(emu)
    a = asyncio.create_task(client.kline("EURUSD", kline_type=8, num=1))
    await asyncio.sleep(0.3)
    emu.clock.advance(1.05)
    b = await client.kline("EURUSD", kline_type=8, num=1)
    assert (b.ret, (await a).ret) == (200, 429)
