"""Where each refused call of the throughput job comes from: slot, departure, arrival, window.

Runs ``throughput.py``'s job once through :class:`~alltick_frames.AllTick` against an emulator
in its own process, and logs, for every request (joined by its ``trace``):

* client: the budget slot it was given, the instant the Departure let it go, the instant
  aiohttp finished writing its headers (``on_request_headers_sent``);
* emulator: when its socket's bytes were handed to the server (``data_received``), when the
  handler started (after the loop's backlog), when the quota admitted or refused it, its
  ``ret``, and for a refusal which window was full and its oldest admitted call.

Then for every 429/605 it prints the offending pair (the refused call and the oldest call of
the full window) as the server dated them and as the client slotted and sent them, and a
summary of where arrival time is lost (client lateness, loopback/loop backlog, jitter).

    python benchmarks/pacing_trace.py [--jitter 50] [--busy 2] [--quick] [--out trace.json]

A diagnostic, not a benchmark: the hooks cost a little time on both sides.
"""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from bisect import bisect_right
from pathlib import Path
from statistics import quantiles
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout
sys.path.insert(0, str(Path(__file__).resolve().parent))


def _trace_of(query: str | None) -> str | None:
    if not query:
        return None
    try:
        return json.loads(query).get("trace")
    except ValueError:
        return None


# --------------------------------------------------------------------------- the emulator side


def serve(config_file: str) -> None:
    """The emulator, patched to log arrivals, serving on a free port; prints its URL."""
    from aiohttp import web
    from aiohttp.web_protocol import RequestHandler

    from alltick_frames.emulator import arrivals, limits, service
    from alltick_frames.emulator.app import create_app
    from alltick_frames.emulator.config import EmulatorConfig

    log: list[dict[str, Any]] = []
    current: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
        "rec", default=None
    )

    original_received = RequestHandler.data_received

    stamps: dict[int, float] = {}  # RequestHandler has __slots__: its arrival by id

    def data_received(self: Any, data: bytes) -> None:
        stamps[id(self)] = time.time()
        original_received(self, data)

    RequestHandler.data_received = data_received  # type: ignore[method-assign]

    original_admit = limits.TokenQuota.admit

    def admit(self: Any, endpoint: str, now: float) -> int | None:
        rec = current.get()
        result = original_admit(self, endpoint, now)
        if rec is not None:
            rec["admit"] = now
            rec["ret"] = result or 200
            if result is not None:
                own = self._endpoint(endpoint)
                full = [("endpoint", own)] + [("all", w) for w in self._shared]
                full += [("minute", self._minute)]
                for name, w in full:
                    if not w.has_room(now):
                        oldest = w.times[bisect_right(w.times, now - w.rate.per)]
                        rec["window"] = name
                        rec["oldest"] = oldest
                        break
        return result

    limits.TokenQuota.admit = admit  # type: ignore[method-assign]

    original_serve = service.Emulator.serve

    async def serve_(self: Any, request: web.Request, *args: Any) -> web.StreamResponse:
        rec = {
            "trace": _trace_of(request.query.get("query")),
            "data": arrivals.arrived(request.transport),
            "read": stamps.get(id(request.protocol)),
            "handler": time.time(),
        }
        current.set(rec)
        log.append(rec)
        return await original_serve(self, request, *args)

    service.Emulator.serve = serve_  # type: ignore[method-assign]

    async def main() -> None:
        config = EmulatorConfig.from_dict(json.loads(Path(config_file).read_text()))
        app = create_app(config)

        async def dump(_request: web.Request) -> web.Response:
            body = json.dumps(log)
            log.clear()
            return web.Response(text=body, content_type="application/json")

        app.router.add_get("/_emulator/trace", dump)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.SockSite(runner, arrivals.listening_socket("127.0.0.1", 0))
        await site.start()
        print(f"http://127.0.0.1:{runner.addresses[0][1]}", flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())


# --------------------------------------------------------------------------- the client side


async def run_client(url: str, codes: list[str], count: int, guard: float | None) -> list[dict]:
    import aiohttp
    from throughput import MARKET_EPOCH, PLAN, TOKEN

    from alltick_frames import AllTick
    from alltick_frames.budget import Budget
    from alltick_frames.run import departure as departure_mod
    from alltick_frames.run import transport as transport_mod

    sent: list[dict[str, Any]] = []
    departed: contextvars.ContextVar[Any] = contextvars.ContextVar("dep", default=None)
    original_call = departure_mod.Departure.__call__

    def call(self: Any) -> Any:
        # The departure itself is read when its headers leave: its slot and sent_at are final.
        departed.set(self)
        return original_call(self)

    departure_mod.Departure.__call__ = call  # type: ignore[method-assign]

    async def headers_sent(_s: Any, _ctx: Any, params: Any) -> None:
        t = time.time()
        dep = departed.get()
        sent.append(
            {
                "trace": _trace_of(params.url.query.get("query")),
                "slot": dep.slot if dep else None,
                "left": dep.sent_at if dep else None,
                "headers": t,
                "guard": dep.budget.guard if dep else None,
            }
        )

    ended: dict[str, float] = {}

    async def request_end(_s: Any, _ctx: Any, params: Any) -> None:
        trace = _trace_of(params.url.query.get("query"))
        if trace:
            ended[trace] = time.time()

    moved = {"moved": 0, "refused": 0, "new slots": 0, "written late": 0}
    original_depart = Budget.depart

    def depart(self: Any, endpoint: str, slot: float, at: float, *, sent: bool = False) -> bool:
        ok = original_depart(self, endpoint, slot, at, sent=sent)
        moved["written late" if sent else "moved" if ok else "refused"] += 1
        return ok

    Budget.depart = depart  # type: ignore[method-assign]
    original_acquire = departure_mod.Departure.acquire

    async def acquire(self: Any) -> None:
        if self.slot:
            moved["new slots"] += 1
        await original_acquire(self)

    departure_mod.Departure.acquire = acquire  # type: ignore[method-assign]

    original_open = transport_mod.Transport._open

    def open_(self: Any) -> aiohttp.ClientSession:
        fresh = self._session is None or self._session.closed
        session = original_open(self)
        if fresh:
            extra = aiohttp.TraceConfig()
            extra.on_request_headers_sent.append(headers_sent)
            extra.on_request_end.append(request_end)
            extra.freeze()
            session._trace_configs.append(extra)
        return session

    transport_mod.Transport._open = open_  # type: ignore[method-assign]
    budget = Budget.for_token(PLAN, TOKEN, None, guard=guard)
    async with AllTick(
        TOKEN, PLAN, url, cache=False, budget=budget, progress=False, clock=lambda: MARKET_EPOCH
    ) as client:
        started, cpu = time.time(), time.process_time()
        result = await client.klines(codes, "1h", count=count)
        wall, cpu = time.time() - started, time.process_time() - cpu
    assert result.ok, result.failures
    for record in sent:
        record["answered"] = ended.get(record["trace"])
    print(
        f"wall {wall:.3f} s, client CPU {cpu:.3f} s, calls {dict(result.stats.calls)},"
        f" guard {budget.guard * 1e3:.1f} ms; late departures {moved}"
    )
    return sent


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=30) as resp:
        return json.loads(resp.read())


def _ms(x: float) -> str:
    return f"{x * 1000:7.2f}"


def analyse(client: list[dict], server: list[dict]) -> None:
    by_trace = {r["trace"]: r for r in client}
    joined = []
    for s in server:
        c = by_trace.get(s["trace"])
        if c is None or "admit" not in s:
            continue
        joined.append({**c, **s})
    joined.sort(key=lambda r: r["admit"])
    admitted = {r["admit"]: r for r in joined if r["ret"] == 200}
    print(f"joined {len(joined)} requests")

    def q(xs: list[float]) -> str:
        if len(xs) < 4:
            return "n/a"
        p = quantiles(xs, n=100, method="inclusive")
        return f"p50 {_ms(p[49])} p95 {_ms(p[94])} p99 {_ms(p[98])} max {_ms(max(xs))} ms"

    print("  client late (left - slot)      ", q([r["left"] - r["slot"] for r in joined]))
    print("  write (headers - left)         ", q([r["headers"] - r["left"] for r in joined]))
    print("  to host (kernel - headers)     ", q([r["data"] - r["headers"] for r in joined]))
    print("  loop reads (read - kernel)     ", q([r["read"] - r["data"] for r in joined]))
    print("  server backlog (handler - read)", q([r["handler"] - r["read"] for r in joined]))
    print("  dated (admit date - kernel)    ", q([r["admit"] - r["data"] for r in joined]))
    print("  answered (headers in - kernel) ", q([r["answered"] - r["data"] for r in joined]))
    print("  arrival - slot (total)         ", q([r["admit"] - r["slot"] for r in joined]))
    refused = [r for r in joined if r["ret"] != 200]
    print(f"refused {len(refused)}")
    for r in refused:
        o = admitted.get(r.get("oldest"))
        print(
            f"  ret {r['ret']} window {r.get('window')} t+{r['admit'] - joined[0]['admit']:.3f}s"
            f" guard {_ms(r['guard'])}"
        )
        if o is None:
            print("    oldest call of the window not found")
            continue
        for name, x in (("refused", r), ("oldest ", o)):
            print(
                f"    {name} late {_ms(x['left'] - x['slot'])}"
                f" write {_ms(x['headers'] - x['left'])}"
                f" host {_ms(x['data'] - x['headers'])} read {_ms(x['read'] - x['data'])}"
                f" dated {_ms(x['admit'] - x['data'])} | total {_ms(x['admit'] - x['slot'])}"
            )
        print(
            f"    gap: slots {_ms(r['slot'] - o['slot'])}  left {_ms(r['left'] - o['left'])}"
            f"  server {_ms(r['admit'] - o['admit'])} ms"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--jitter", type=float, default=0.0)
    parser.add_argument("--busy", type=int, default=0)
    parser.add_argument("--guard", type=float)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve)
        return 0
    from throughput import MARKET_NOW, PLAN, TOKEN, busy

    from alltick_frames.emulator import EmulatorConfig

    config = EmulatorConfig(
        tokens={TOKEN: PLAN}, now=MARKET_NOW, faults={"arrival_jitter": args.jitter / 1000}
    )
    print(f"load average {os.getloadavg()}")
    spinners = busy(args.busy)
    with tempfile.TemporaryDirectory() as tmp:
        config_file = Path(tmp) / "config.json"
        config_file.write_text(json.dumps(config.to_dict()))
        child = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(config_file)],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        try:
            assert child.stdout is not None
            url = child.stdout.readline().strip()
            codes = [str(r["code"]) for r in _get(url + "/_emulator/codes") if r["pageable"]]
            for _ in range(args.repeat):
                urllib.request.urlopen(
                    urllib.request.Request(url + "/_emulator/reset", method="POST")
                ).close()
                _get(url + "/_emulator/trace")
                count = 1_200 if args.quick else 5_500
                client = asyncio.run(run_client(url, codes, count, args.guard))
                server = _get(url + "/_emulator/trace")
                if args.out:
                    args.out.write_text(json.dumps({"client": client, "server": server}))
                analyse(client, server)
        finally:
            child.terminate()
            child.wait()
            for w in spinners:
                w.terminate()
    print(f"load average {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
