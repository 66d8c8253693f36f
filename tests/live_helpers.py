"""Helpers of the stream tests: drive an emulator's frozen rate clock, read its admin views."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pandas as pd

from alltick_frames.emulator import EmulatorServer
from alltick_frames.emulator.catalogue import CATALOGUE
from alltick_frames.emulator.ws_market import trades_between
from alltick_frames.live import Stream


@asynccontextmanager
async def driven(
    emu: EmulatorServer, step: float = 0.25, pause: float = 0.005
) -> AsyncIterator[None]:
    """Move ``emu``'s frozen rate clock ``step`` seconds at a time while the block runs.

    Each step is a ``POST /_emulator/clock`` answered on the emulator's own loop, so time only
    moves as fast as the emulator keeps up, and not at all while this loop is busy: the
    emulator, the test and the stream (``clock=emu.clock.now``) share one time line that
    runs many times faster than real time.
    """
    async with aiohttp.ClientSession() as http:

        async def run() -> None:
            while True:
                async with http.post(f"{emu.url}/_emulator/clock", json={"advance": step}):
                    pass
                await asyncio.sleep(pause)

        task = asyncio.create_task(run())
        try:
            yield
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


async def admin(emu: EmulatorServer, what: str, body: Any = None) -> Any:
    async with aiohttp.ClientSession() as http:
        method = "GET" if body is None else "POST"
        async with http.request(method, f"{emu.url}/_emulator/{what}", json=body) as resp:
            assert resp.status == 200, await resp.text()
            return await resp.json()


def stream_on(emu: EmulatorServer, codes: Any, plan: Any = None, **options: Any) -> Stream:
    """A stream to ``emu`` on its driven clock (no reconnect jitter unless given)."""
    options.setdefault("jitter", 0.0)
    return Stream(
        codes,
        token=emu.token,
        plan=plan or emu.emulator.tokens[emu.token].plan,
        base_url=emu.url,
        clock=emu.clock.now,
        **options,
    )


async def run(stream: Stream) -> dict[str, pd.DataFrame]:
    """Iterate ``stream`` to its end; every trade and book row, per kind."""
    frames: dict[str, list[pd.DataFrame]] = {"trades": [], "depth": []}
    async with stream:
        async for frame in stream:
            frames[frame.attrs["kind"]].append(frame)
    return {k: pd.concat(v, ignore_index=True) if v else pd.DataFrame() for k, v in frames.items()}


async def ws_stats(emu: EmulatorServer, token: str = "demo") -> dict[str, dict[str, int]]:
    """The emulator's ``ws-*`` stats, once it has seen every socket of the test close."""
    for _ in range(100):
        if not (await admin(emu, "ws"))["connections"]:
            break
        await asyncio.sleep(0.05)
    return {k: v for k, v in emu.stats().get(token, {}).items() if k.startswith("ws-")}


def count(stats: dict[str, dict[str, int]], key: str) -> int:
    """How many answers or events were counted under ``key`` over every ws event."""
    return sum(keys.get(key, 0) for keys in stats.values())


def millis(times: pd.Series) -> set[int]:
    """Trade times as Unix milliseconds."""
    return {t.value // 10**6 for t in times}


def scheduled(code: str, times: pd.Series, cadence: float) -> set[int]:
    """The tick times (ms) of every trade the emulator made for ``code`` between the first
    and the last of ``times``, both included."""
    first, last = min(millis(times)), max(millis(times))
    return {int(t["tick_time"]) for t in trades_between(CATALOGUE[code], first - 1, last, cadence)}
