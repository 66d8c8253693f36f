"""A thin AllTick ``/kline`` server for ``client_ceiling.py``: the emulator's windows and bytes,
at a small fraction of its cost per call, in a process of its own.

The emulator computes every bar from hashed noise (1-3 ms for a page of 500), so a client
that decodes a page in less time than that would measure the emulator, not itself. This
server answers ``GET /quote-b-api/kline`` for any code of the forex path, as a 24/7 market
(every bar of every interval exists, back to the plan's history reach), and:

* keeps the emulator's windows for one token on one plan (``--token``, ``--plan``: a name or
  a plan file): the same :class:`~alltick_frames.emulator.limits.TokenQuota` admits or
  refuses each call (429/605 in the emulator's own error bodies), so a client that broke its
  plan would be told;
* reads the request with the emulator's own envelope checks (``trace``, ``data``, the five
  ``/kline`` fields) and echoes its ``trace``;
* answers the bytes the emulator renders: the bars of a few of its crypto codes
  (:data:`TEMPLATES`), rendered once by :func:`~alltick_frames.emulator.market.klines`; each
  answer takes the newest ``count`` bars of one template and writes its own timestamps into
  them (fixed-width digits, written in place with numpy), so prices repeat from page to page
  while every byte has the form and length AllTick's has.

``GET /_stats`` answers ``{ret: count}``; ``POST /_reset`` forgets the windows and the counts.
``python benchmarks/_thin_server.py --token T --plan PLAN --now EPOCH`` prints its base URL,
then serves until it is killed.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import orjson
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

from alltick_frames.core.intervals import BY_KLINE_TYPE
from alltick_frames.core.plans import KLINE, Plan, get_plan
from alltick_frames.emulator.catalogue import CATALOGUE
from alltick_frames.emulator.envelope import (
    HEADER_INVALID,
    JSON,
    ApiError,
    ErrorStyle,
    kline_fields,
    read_data,
    read_trace,
)
from alltick_frames.emulator.limits import TokenQuota
from alltick_frames.emulator.market import klines as render_klines
from alltick_frames.emulator.sessions import DAY, MARKET_FLOOR

#: The emulator's codes whose rendered bars every answer reuses.
TEMPLATES = ("BTCUSDT", "ETHUSDT", "SHIBUSDT", "SOLUSDT")
#: A placeholder timestamp: every bar's is 10 digits until the year 2286.
_STAMP = "0" * 10
_POWERS = 10 ** np.arange(9, -1, -1, dtype=np.int64)
_DIGITS = np.arange(10)


class Template:
    """The newest :attr:`size` bars of one code and interval, as the emulator renders them,
    with placeholder timestamps: the bytes of ``kline_list``'s items and where each bar's
    timestamp digits sit."""

    def __init__(self, code: str, kline_type: int, now: float, size: int) -> None:
        bars = render_klines(CATALOGUE[code], kline_type, now, now, size, MARKET_FLOOR)
        items = [orjson.dumps({**bar, "timestamp": _STAMP}) for bar in bars]
        self.size = len(items)
        self.blob = b",".join(items)
        lengths = np.array([len(item) + 1 for item in items], np.int64)  # with the comma
        self.starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
        self.stamps = self.starts + items[0].index(_STAMP.encode())

    def write(self, out: bytearray, starts: np.ndarray) -> None:
        """Append the newest ``len(starts)`` bars to ``out``, stamped with ``starts``."""
        first = self.size - starts.size
        base = len(out) - int(self.starts[first])
        out += memoryview(self.blob)[int(self.starts[first]) :]
        digits = (starts[:, None] // _POWERS) % 10 + ord("0")
        where = base + self.stamps[first:, None] + _DIGITS
        view = np.frombuffer(out, np.uint8)
        view[where] = digits
        del view  # the bytearray may be resized again once no view holds it


def template_of(code: str) -> str:
    """The emulator's code whose rendered bars ``code``'s answers reuse."""
    return TEMPLATES[sum(code.encode()) % len(TEMPLATES)]


class ThinServer:
    """The state of the server: the token's windows, the templates, the counts by ``ret``."""

    def __init__(self, token: str, plan: Plan, now: float) -> None:
        self.token, self.plan, self.now = token, plan, now
        self.quota = TokenQuota(plan)
        self.errors = ErrorStyle()
        self.stats: Counter[str] = Counter()
        self._templates: dict[tuple[str, int], Template] = {}

    def template(self, code: str, kline_type: int) -> Template:
        key = (template_of(code), kline_type)
        found = self._templates.get(key)
        if found is None:
            found = Template(key[0], kline_type, self.now, self.plan.kline_bars)
            self._templates[key] = found
        return found

    def bar_starts(self, kline_type: int, end: int, count: int) -> np.ndarray:
        """Bar starts of the newest ``count`` bars starting at or before ``end`` (0: now),
        within the plan's history: what the emulator serves for a 24/7 code."""
        length = BY_KLINE_TYPE[kline_type].seconds
        t0 = self.now if end == 0 else min(end, self.now)
        floor = max(MARKET_FLOOR, self.now - (self.plan.history_days or 0) * DAY)
        last = math.floor(t0 / length) * length
        first = max(last - (count - 1) * length, math.ceil(floor / length) * length)
        if last < first:
            return np.empty(0, np.int64)
        return np.arange(first, last + 1, length, dtype=np.int64)

    def answer(self, ret: int, trace: str | None = None, msg: str | None = None) -> web.Response:
        self.stats[str(ret)] += 1
        return web.Response(body=self.errors.answer(ret, trace, msg).body, content_type=JSON)

    async def kline(self, request: web.Request) -> web.Response:
        if request.query.get("token") != self.token:
            return self.answer(401)
        refused = self.quota.admit(KLINE, time.monotonic())
        if refused is not None:
            return self.answer(refused)
        trace = None
        try:
            document = orjson.loads(request.query.get("query", ""))
            if not isinstance(document, dict):
                raise ApiError(400, HEADER_INVALID)
            trace = read_trace(document)
            code, kline_type, end, count = kline_fields(read_data(document))
        except orjson.JSONDecodeError:
            return self.answer(402)
        except ApiError as error:
            return self.answer(error.ret, trace, error.msg)
        starts = self.bar_starts(kline_type, end, min(count, self.plan.kline_bars))
        out = bytearray(b'{"ret":200,"msg":"ok","trace":')
        out += orjson.dumps(trace)
        out += b',"data":{"code":' + orjson.dumps(code) + b',"kline_type":'
        out += str(kline_type).encode() + b',"kline_list":['
        if starts.size:
            self.template(code, kline_type).write(out, starts)
        out += b"]}}"
        self.stats["200"] += 1
        return web.Response(body=out, content_type=JSON)

    async def stats_view(self, _request: web.Request) -> web.Response:
        return web.Response(body=orjson.dumps(self.stats), content_type=JSON)

    async def reset(self, _request: web.Request) -> web.Response:
        self.quota = TokenQuota(self.plan)
        self.stats.clear()
        return web.Response(body=b"{}", content_type=JSON)


async def serve(server: ThinServer, host: str, port: int) -> None:
    app = web.Application()
    app.router.add_get("/quote-b-api/kline", server.kline)
    app.router.add_get("/_stats", server.stats_view)
    app.router.add_post("/_reset", server.reset)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = runner.addresses[0]
    print(f"http://{bound[0]}:{bound[1]}", flush=True)
    await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--token", required=True)
    parser.add_argument("--plan", required=True, help="a plan name or plan file")
    parser.add_argument("--now", type=float, required=True, help="the market clock, epoch s")
    args = parser.parse_args()
    server = ThinServer(args.token, get_plan(args.plan), args.now)
    asyncio.run(serve(server, args.host, args.port))


if __name__ == "__main__":
    main()
