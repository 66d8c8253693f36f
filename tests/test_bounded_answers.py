"""Bounded answers (issue 10): a body is read within a bound its request sets, inflated by the
client itself, and refused past it, so no server can fill the client's memory.

Before, every body was read whole with up to 32 calls in flight: an endless body drove the
client to 7.8 GB, and a 1 MB gzip body that inflates to 1 GB to 2.2 GB.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import sys
import textwrap
import zlib
from typing import Any

import pytest
from aiohttp import web
from hostile_server import bars, bomb, endless, gzip_bomb, ok, serve
from test_client_support import TOKEN

from alltick_frames.core.errors import TransportError
from alltick_frames.run import bodies
from alltick_frames.run.transport import Secret, Transport

KLINE = "/quote-b-api/kline"
#: The bound of a /kline call of 500 bars: 64 KiB + 500 x 1 KiB.
PAGE = bodies.bound(500, bodies.BAR_BYTES)
MiB = 1 << 20


async def _get(url: str, limit: int) -> bytes:
    transport = Transport(url, Secret(TOKEN), timeout=30)
    try:
        return (await transport.get(KLINE, {"query": "{}"}, limit=limit)).body
    finally:
        await transport.close()


def _encoded(body: bytes, encoding: str) -> Any:
    async def handle(request: web.Request) -> web.Response:
        assert request.headers["Accept-Encoding"] == "gzip, deflate"
        return web.Response(body=body, headers={"Content-Encoding": encoding})

    return handle


@pytest.mark.parametrize(
    ("encoding", "pack"),
    [("gzip", gzip.compress), ("deflate", zlib.compress), ("identity", lambda b: b)],
)
async def test_compressed_answers_are_inflated_by_the_client(encoding, pack) -> None:
    body = json.dumps(ok(bars("EURUSD", 8, 500))).encode()
    async with serve(raw={KLINE: _encoded(pack(body), encoding)}) as (url, _):
        assert await _get(url, PAGE) == body


@pytest.mark.parametrize(
    ("handler", "limit", "words"),
    [
        (endless, PAGE, "too-large: the answer passed 564 KiB, the most this call's answer"),
        (bomb(64 * MiB), PAGE, "too-large: the answer passed 564 KiB"),
        (
            bomb(64 * MiB),
            64 * MiB,
            "compression-bomb: the answer inflated 2 KiB to over 2.0 MiB (more than 100",
        ),
        (_encoded(b"x" * (PAGE + 1), "identity"), PAGE, "too-large: the answer announced 564 KiB"),
        (_encoded(b"\x1f\x8b garbage", "gzip"), PAGE, "malformed: the compressed body is corrupt"),
        (_encoded(b"{}", "br"), PAGE, "unsupported-encoding: the answer came as 'br'"),
    ],
    ids=["endless", "bomb-past-bound", "bomb-ratio", "announced", "corrupt", "brotli"],
)
async def test_an_answer_past_its_bounds_is_a_transport_fault(handler, limit, words) -> None:
    async with serve(raw={KLINE: handler}) as (url, _):
        with pytest.raises(TransportError) as info:
            await _get(url, limit)
    assert info.value.kind == "transport"
    assert str(info.value.msg).startswith(words), info.value.msg
    assert TOKEN not in str(info.value)


#: Runs in a fresh interpreter: a client job against the hostile server, then its memory.
CHILD = textwrap.dedent(
    """
    import asyncio, json, sys
    from alltick_frames import AllTick, RetryPolicy
    from alltick_frames.core.plans import ENDPOINTS, get_plan

    def kib(field):
        for line in open("/proc/self/status"):
            if line.startswith(field + ":"):
                return int(line.split()[1])

    async def main(url, codes, concurrency):
        rates = {e: (1000, 1.0) for e in ENDPOINTS}
        plan = get_plan("professional").with_overrides(
            name="hostile", endpoint_rates=rates, all_endpoints=(1000, 1.0), per_minute=60000
        )
        retry = RetryPolicy(attempts=1)  # the halt service allows one call a minute
        async with AllTick("tk", plan, url, cache=False, concurrency=concurrency, retry=retry,
                           progress=False) as client:
            warm = await client.klines(["EURUSD"], "1d", count=500)  # load what a job loads
            assert warm.ok, warm.failures
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")  # start the peak (VmHWM) afresh from here
            base = kib("VmRSS")
            klines = await client.klines(codes, "1d", count=500)
            halts = await client.suspensions("nasdaq")
        failures = [*klines.failures.itertuples(), *halts.failures.itertuples()]
        print(json.dumps({
            "base_kib": base, "peak_kib": kib("VmHWM"),
            "failures": [[f.code, f.kind, f.msg, f.attempts] for f in failures],
        }))

    asyncio.run(main(sys.argv[1], sys.argv[2].split(","), int(sys.argv[3])))
    """
)


async def test_endless_and_bomb_answers_keep_memory_bounded(tmp_path) -> None:
    """16 calls in flight, each answered with an endless body or a 1 MiB gzip body that
    inflates to 1 GiB, and a halt-service answer that is the same bomb: the client's resident
    memory grows by less than the stated bound, and every call fails with a row saying why.

    The bound: 16 calls x the /kline bound (564 KiB) = 9 MiB of bodies in flight, plus 39 MiB
    for the job itself (sockets, zlib, the failure rows): 48 MiB, against the 2.2-7.8 GB an
    unbounded read took. Measured: 3 MiB over a base of 137 MiB (with the bounds lifted, the
    same job grew by 6.1 GiB).
    """
    bound_mib = 48
    gzip_bomb(1 << 30)  # built before the server serves: 1 MiB, a few seconds
    codes = [f"ENDLESS{k}" for k in range(8)] + [f"BOMB{k}" for k in range(8)]

    def kline(data: dict[str, Any]) -> dict[str, Any]:
        return ok(bars(data["code"], data["kline_type"], data["query_kline_num"]))

    async def hostile(request: web.Request) -> web.StreamResponse:
        code = json.loads(request.query["query"])["data"]["code"]
        if code.startswith("ENDLESS"):
            return await endless(request)
        if code.startswith("BOMB"):
            return await bomb(1 << 30)(request)
        return web.json_response(kline({"code": code, "kline_type": 8, "query_kline_num": 500}))

    raw = {KLINE: hostile, "/api/suspension/nasdaq": bomb(1 << 30)}
    async with serve(raw=raw) as (url, seen):
        child = await asyncio.create_subprocess_exec(
            sys.executable, "-c", CHILD, url, ",".join(codes), "16",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(child.communicate(), timeout=240)
    assert child.returncode == 0, err.decode()[-3000:]
    report = json.loads(out)
    grew_mib = (report["peak_kib"] - report["base_kib"]) / 1024
    assert grew_mib < bound_mib, report
    # Every hostile call failed alone, saying why.
    rows = {
        code: (kind, msg.split(":")[0], attempts)
        for code, kind, msg, attempts in report["failures"]
    }
    assert rows == {
        **{code: ("transport", "too-large", 1) for code in codes},
        "nasdaq": ("transport", "compression-bomb", 1),
    }
    assert seen[KLINE] == 1 + len(codes)
