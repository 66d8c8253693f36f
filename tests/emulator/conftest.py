"""Fixtures of the emulator's conformance suite: an HTTP session and an API helper."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import aiohttp
import pytest
from emu_helpers import Api
from ws_helpers import Sockets

from alltick_frames.emulator import EmulatorServer


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def api(http: aiohttp.ClientSession) -> Callable[..., Api]:
    """``api(emu, token="demo")``: a request helper bound to one emulator."""

    def make(emu: EmulatorServer, token: str = "demo") -> Api:
        return Api(http, emu, token)

    return make


@pytest.fixture
async def sockets(http: aiohttp.ClientSession) -> AsyncIterator[Callable[..., Sockets]]:
    """``sockets(emu)``: opens raw WebSockets on ``emu``; all are closed at teardown."""
    made: list[Sockets] = []

    def make(emu: EmulatorServer) -> Sockets:
        made.append(Sockets(http, emu))
        return made[-1]

    yield make
    for group in made:
        await group.close()
