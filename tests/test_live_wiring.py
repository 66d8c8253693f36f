"""The stream as the package exposes it: ``AllTick.stream``, ``af.stream`` and the
``alltick-frames stream`` command."""

from __future__ import annotations

import pandas as pd
from live_helpers import driven

import alltick_frames as af
from alltick_frames.cli import build_parser, main


async def test_the_client_streams_on_its_token_plan_and_base_url(alltick_emulator):
    emu = alltick_emulator(plan="professional", frozen_clock=True, ws={"cadence": 1.0})
    async with af.AllTick(emu.token, "professional", emu.url, cache=False) as client:
        stream = client.stream(["BTCUSDT"], depth=False, duration=6, clock=emu.clock.now)
        async with driven(emu), stream:
            frames = [frame async for frame in stream]
    assert stream.plan.name == "professional" and len(pd.concat(frames)) >= 4
    assert stream.failures.empty
    assert af.stream is not None and af.ticks_to_bars is not None


def test_the_command_line(alltick_emulator):
    emu = alltick_emulator(plan="professional", ws={"cadence": 0.25})
    connect = ["--token", emu.token, "--base-url", emu.url, "--plan", "professional"]
    assert main(["stream", "--codes", "BTCUSDT,NOPE", "--duration", "2", "-q", *connect]) == 3
    assert main(["stream", "--codes", "BTCUSDT", "--no-trades", "--no-depth", *connect]) == 2
    assert "stream" in build_parser().format_help()
