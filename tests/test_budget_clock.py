"""The clocks the budget runs on: FakeClock's virtual time, and SystemClock never waking early."""

from __future__ import annotations

import asyncio
import time

import pytest

from alltick_frames.core.clock import Clock, FakeClock, SystemClock


def test_both_clocks_satisfy_the_protocol() -> None:
    assert isinstance(SystemClock(), Clock)
    assert isinstance(FakeClock(), Clock)


async def test_fake_clock_stands_still_until_moved() -> None:
    clock = FakeClock(100.0)
    assert clock.now() == 100.0
    await clock.sleep_until(50.0)  # the past: returns at once
    clock.advance(2.5)
    assert clock.now() == 102.5
    with pytest.raises(ValueError, match="back in time"):
        clock.set(90.0)


async def test_set_wakes_due_sleepers_in_deadline_order() -> None:
    clock = FakeClock(0.0)
    woke: list[tuple[str, float]] = []

    async def sleeper(name: str, t: float) -> None:
        await clock.sleep_until(t)
        woke.append((name, clock.now()))

    tasks = [asyncio.ensure_future(sleeper(n, t)) for n, t in [("b", 2.0), ("a", 1.0), ("c", 9)]]
    await asyncio.sleep(0)
    assert clock.waiting == 3 and clock.next_deadline() == 1.0
    clock.set(5.0)
    await asyncio.sleep(0)
    assert woke == [("a", 5.0), ("b", 5.0)]  # both due; they see the time they were woken at
    assert clock.waiting == 1
    tasks[2].cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    assert clock.waiting == 0 and clock.next_deadline() is None


async def test_run_moves_time_only_when_every_task_waits_on_the_clock() -> None:
    clock = FakeClock(0.0)
    seen: list[tuple[str, float]] = []

    async def ticker(name: str, step: float, n: int) -> str:
        for _ in range(n):
            await clock.sleep_until(clock.now() + step)
            seen.append((name, clock.now()))
        return name

    started = time.perf_counter()
    results = await clock.run(ticker("slow", 3.0, 2), ticker("fast", 1.0, 4))
    assert time.perf_counter() - started < 1.0  # eight virtual seconds, no real sleeping
    assert results == ["slow", "fast"]
    assert seen == [
        ("fast", 1.0),
        ("fast", 2.0),
        ("slow", 3.0),
        ("fast", 3.0),
        ("fast", 4.0),
        ("slow", 6.0),
    ]
    assert clock.now() == 6.0


async def test_run_propagates_the_first_error_and_cancels_the_rest() -> None:
    clock = FakeClock(0.0)

    async def fails() -> None:
        await clock.sleep_until(1.0)
        raise KeyError("boom")

    async def forever() -> None:
        await clock.sleep_until(1e9)

    with pytest.raises(KeyError, match="boom"):
        await clock.run(fails(), forever())
    assert clock.now() == 1.0


async def test_run_refuses_to_hang_on_something_else() -> None:
    clock = FakeClock(0.0)
    never = asyncio.Event()
    with pytest.raises(RuntimeError, match="other than the FakeClock"):
        await clock.run(never.wait(), max_idle_steps=50)


async def test_system_clock_never_wakes_before_the_deadline() -> None:
    clock = SystemClock()
    target = clock.now() + 0.03
    await clock.sleep_until(target)
    assert time.time() >= target
    before = time.perf_counter()
    await clock.sleep_until(clock.now() - 5)  # the past: no sleep
    assert time.perf_counter() - before < 1.0  # not the 5 s it is past (a loaded machine stalls)
