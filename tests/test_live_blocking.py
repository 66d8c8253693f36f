"""The blocking stream: plain iteration in scripts, and inside a running loop (notebooks).

These run on real time (the emulator's market is fixed and its socket runs on from there),
for a couple of seconds each.
"""

from __future__ import annotations

import asyncio
import threading

import pytest

from alltick_frames.live import stream


@pytest.fixture
def emu(alltick_emulator):
    return alltick_emulator(plan="professional", ws={"cadence": 0.25})


def test_iterating_frames_without_await(emu):
    with stream(
        ["BTCUSDT", "ETHUSDT"], duration=2.5, token=emu.token, base_url=emu.url,
        plan="professional", batch_seconds=0.2,
    ) as s:  # fmt: skip
        frames = list(s)
    kinds = {f.attrs["kind"] for f in frames}
    assert kinds == {"trades", "depth"}
    assert {c for f in frames for c in f["code"]} == {"BTCUSDT", "ETHUSDT"}
    assert s.failures.empty and s.stats.trades > 4
    assert list(s) == []  # ended for good
    assert not any(t.name == "alltick-stream" for t in threading.enumerate())


async def test_inside_a_running_loop_with_codes_added_and_removed(emu):
    asyncio.get_running_loop()  # as in a notebook cell
    s = stream(["BTCUSDT"], depth=False, token=emu.token, base_url=emu.url, plan="professional")
    seen = []
    for frame in s:
        seen.append(set(frame["code"]))
        if len(seen) == 2:
            s.add(["ETHUSDT"])
            assert s.codes == {"trades": ["BTCUSDT", "ETHUSDT"]}
        if "ETHUSDT" in seen[-1]:
            s.remove(["BTCUSDT"])
            break
    s.close()
    assert s.codes == {"trades": ["ETHUSDT"]}
    assert list(s) == [] or all(set(f["code"]) <= {"BTCUSDT", "ETHUSDT"} for f in s)


def test_a_bad_base_url_surfaces_in_the_iteration(emu):
    s = stream(["BTCUSDT"], token=emu.token, base_url=emu.url + "/nowhere", plan="basic")
    with pytest.raises(Exception, match=r"no AllTick WebSocket at .*check the base URL"):
        next(s)
    s.close()
