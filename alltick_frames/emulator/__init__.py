"""A local AllTick: the documented HTTP API, each plan's limits, and faults on demand.

Start one in-process (tests, notebooks, benchmarks)::

    from alltick_frames.emulator import EmulatorServer

    with EmulatorServer(plan="basic", now="2024-05-15T14:00:00Z") as emu:
        print(emu.url)      # http://127.0.0.1:PORT, token "demo"

or in a process of its own (:class:`EmulatorProcess`, same methods), where a test or a
benchmark measures pacing; or from the shell: ``alltick-frames emulate --plan basic`` (see
``--help``). The pytest fixture
``alltick_emulator`` lives in :mod:`alltick_frames.emulator.pytest_plugin`.

The emulator never imports the client: it reads only the plan table
(:mod:`alltick_frames.core.plans`), intervals and code routing, so it is an independent second
reading of AllTick's documentation.
"""

from alltick_frames.emulator.app import EMULATOR_KEY, create_app
from alltick_frames.emulator.catalogue import CATALOGUE, Catalogue, Instrument
from alltick_frames.emulator.clock import EmulatorClock, parse_moment
from alltick_frames.emulator.config import DEFAULT_TOKEN, EmulatorConfig, TokenSpec
from alltick_frames.emulator.faults import FaultConfig
from alltick_frames.emulator.process import EmulatorProcess
from alltick_frames.emulator.server import EmulatorServer
from alltick_frames.emulator.service import Emulator

__all__ = [
    "CATALOGUE",
    "DEFAULT_TOKEN",
    "EMULATOR_KEY",
    "Catalogue",
    "Emulator",
    "EmulatorClock",
    "EmulatorConfig",
    "EmulatorProcess",
    "EmulatorServer",
    "FaultConfig",
    "Instrument",
    "TokenSpec",
    "create_app",
    "parse_moment",
]
