"""The comparison client of ``throughput.py``: plain aiohttp paced by aiolimiter.

What a careful user writes without this library: an ``AsyncLimiter(100, 1)`` (the plan's
100 calls a second), at most ``concurrency`` requests in flight, each code's pages fetched
back in time one after the other, and a call answered 429/605 sent again after another
turn of the limiter. Bars are parsed with orjson and kept as tuples; no DataFrame is built
(so its wall time is a little flattered against ours, which ends holding the frame).
Needs the ``bench`` extra: ``pip install 'alltick-frames[bench]'``.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

import aiohttp
import orjson

#: AllTick's kline_type of hourly bars.
HOUR = 5
PAGE = 500


@dataclass
class PlainRun:
    wall: float
    bars: int
    answered: int
    rejections: Counter[int] = field(default_factory=Counter)


async def fetch(
    url: str, token: str, codes: list[str], count: int, rate: int, per: float, concurrency: int
) -> PlainRun:
    """Every code's newest ``count`` hourly bars from the emulator at ``url``."""
    from aiolimiter import AsyncLimiter

    limiter = AsyncLimiter(rate, per)
    gate = asyncio.Semaphore(concurrency)
    rejections: Counter[int] = Counter()
    answered = 0

    async def page(session: aiohttp.ClientSession, code: str, end: int, num: int) -> list:
        nonlocal answered
        query = {
            "trace": uuid.uuid4().hex,
            "data": {
                "code": code,
                "kline_type": HOUR,
                "kline_timestamp_end": end,
                "query_kline_num": num,
                "adjust_type": 0,
            },
        }
        params = {"token": token, "query": orjson.dumps(query).decode()}
        while True:
            async with gate:
                await limiter.acquire()
                async with session.get(f"{url}/quote-b-api/kline", params=params) as resp:
                    doc = orjson.loads(await resp.read())
            ret = doc.get("ret")
            if ret in (429, 605):
                rejections[ret] += 1
                continue
            answered += 1
            return doc["data"]["kline_list"]

    async def series(session: aiohttp.ClientSession, code: str) -> int:
        seen: set[int] = set()
        end = 0
        while len(seen) < count:
            bars = await page(session, code, end, min(PAGE, count - len(seen)))
            stamps = [int(b["timestamp"]) for b in bars]
            if not stamps:
                break
            seen.update(stamps)
            end = min(stamps) - 1
            if len(stamps) < min(PAGE, count):
                break
        return len(seen)

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.time()
        sizes = await asyncio.gather(*(series(session, c) for c in codes))
        wall = time.time() - started
    return PlainRun(wall, sum(sizes), answered, rejections)
