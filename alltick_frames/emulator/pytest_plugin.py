"""pytest plugin with the ``alltick_emulator`` fixture: a real emulator on a free loopback port.

Enable it in a ``conftest.py`` with ``pytest_plugins = ["alltick_frames.emulator.pytest_plugin"]``.
The fixture is a factory, so one test can start several emulators with different plans::

    def test_paces_basic(alltick_emulator):
        emu = alltick_emulator(plan="basic", frozen_clock=True)
        ...                              # requests to emu.url with token emu.token ("demo")
        emu.clock.advance(1.0)           # the next second, without sleeping
        assert emu.stats()["demo"]["kline"] == {"200": 2}

Arguments (all optional): ``plan`` (name or Plan, default ``"basic"``), ``tokens`` (token ->
plan name, Plan, TokenSpec or ``{"plan": ..., "basket": [...]}``; default: ``{"demo": plan}``),
``faults`` (a FaultConfig or a dict like ``{"reset": 0.1}``), ``now`` (the market clock,
default :data:`FIXTURE_NOW`; None follows real time), ``frozen_clock`` (freeze the rate clock),
and any other :class:`~alltick_frames.emulator.config.EmulatorConfig` field as a keyword
(``mirror_status=True``, ``oversize="603"``, ``lenient_free=True``, ``seed=7``, ...). Every
emulator the factory started is stopped at teardown.

``process=True`` runs the emulator in its own process
(:class:`~alltick_frames.emulator.process.EmulatorProcess`, same methods). Use it in every test
that asserts a pace or zero rejections: an emulator in the test's process shares the GIL with
the client, dates requests late and in bursts when the client is busy, and so can refuse a
client that paced right. Tests that check shapes and errors may keep the faster in-process one.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any, Protocol

import pytest

from alltick_frames.core.plans import Plan
from alltick_frames.emulator.config import EmulatorConfig, TokenValue
from alltick_frames.emulator.faults import FaultConfig
from alltick_frames.emulator.process import EmulatorProcess
from alltick_frames.emulator.server import EmulatorServer

#: The fixture's default market clock: Wednesday 2024-05-15 14:00 UTC, i.e. 10:00 in New York
#: (US session open), 22:00 in Hong Kong and Shanghai (closed for the day), FX and crypto
#: trading. Pass ``now=None`` for real time.
FIXTURE_NOW = "2024-05-15T14:00:00Z"


class EmulatorFactory(Protocol):
    def __call__(
        self,
        plan: str | Plan = "basic",
        tokens: Mapping[str, TokenValue] | None = None,
        faults: FaultConfig | Mapping[str, float] | None = None,
        now: str | float | datetime | None = FIXTURE_NOW,
        frozen_clock: bool = False,
        process: bool = False,
        **config: Any,
    ) -> EmulatorServer | EmulatorProcess: ...


@pytest.fixture
def alltick_emulator() -> Iterator[EmulatorFactory]:
    """Start emulators: ``emu = alltick_emulator(plan="basic", frozen_clock=True)``."""
    servers: list[EmulatorServer | EmulatorProcess] = []

    def start(
        plan: str | Plan = "basic",
        tokens: Mapping[str, TokenValue] | None = None,
        faults: FaultConfig | Mapping[str, float] | None = None,
        now: str | float | datetime | None = FIXTURE_NOW,
        frozen_clock: bool = False,
        process: bool = False,
        **config: Any,
    ) -> EmulatorServer | EmulatorProcess:
        emulator_config = EmulatorConfig(
            tokens=tokens, plan=plan, faults=faults, now=now, frozen_clock=frozen_clock, **config
        )
        server = EmulatorProcess(emulator_config) if process else EmulatorServer(emulator_config)
        servers.append(server)
        return server.start()

    yield start
    for server in reversed(servers):
        server.stop()
