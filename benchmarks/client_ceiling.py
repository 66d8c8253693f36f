"""The client's own ceiling: calls/s, CPU and memory when the server is never the limit.

At a real plan's rate the plan is the bottleneck, but only while the client stays far below
it. This runs the real client (:class:`~alltick_frames.AllTick`, its own budget and cache
defaults) against a thin loopback server in a process of its own (``_thin_server.py``: the
emulator's windows, envelope checks and bytes for 0.1-0.3 ms of CPU a call, on a plan of
10,000 calls a second that never binds), and prints for each job, with and without the
cache:

* **calls/s** and **bars/s**: ``/kline`` calls (and bars) over the wall time of ``klines()``,
  from the call to holding the DataFrame (target: >= 1,000 calls/s without the cache,
  >= 600 with it); the client is opened, and aiohttp imported, before (set-up, like the
  package's own import: ``startup.py`` times those);
* **CPU us/bar**: the client process's CPU time (every thread: the event loop, the decode
  thread, SQLite) per bar, and per call; the event loop's own (the main thread's) per call,
  and the most calls/s that CPU time allows on an idle machine: on a shared machine the
  client gets a share of the cores, and its calls/s say as much about the load as about it;
* **peak/frame**: the peak RSS above the RSS after import and set-up, over the bytes of the
  final frame (``memory_usage(deep=True)``; target <= 1.5). Each job runs in a fresh process
  so that its peak (``ru_maxrss``) is its own;
* the 429/605 answers the server gave (there should be none).

The jobs (``--case``, repeatable; all four by default)::

    1h, 1h-cache    1,000 codes x 1,000 1h bars: 2 pages a code, 2,000 calls, 1 M bars
    1m, 1m-cache    100 codes x 50,000 1m bars: 100 pages a code, 10,000 calls, 5 M bars

The codes are made up (``C0000USDT``...), served as a 24/7 market with a year of history, so
every bar asked for exists and every chain pages back to its count. Before the jobs, the
server's own ceiling is measured with the thinnest client there is (aiohttp reading bodies,
32 in flight, nothing decoded): the client's calls/s beside it say how much of the loopback
ceiling the client reaches on this machine now. The load average is printed at the start.

    python benchmarks/client_ceiling.py                  # ~3 min on 2 busy cores
    python benchmarks/client_ceiling.py --quick          # about a fifth of each job
    python benchmarks/client_ceiling.py --case 1m --case 1m-cache --repeat 3
    python benchmarks/client_ceiling.py --case 1h --profile /tmp/prof   # cProfile per job

``--profile`` sees the main thread only, and counts its CPU time (not its waits) during
``klines()``; for every thread, run one job under py-spy::

    py-spy record --threads -o 1m.svg -- python benchmarks/client_ceiling.py \\
        --child '{"name": "1m", "interval": "1m", "codes": 100, "bars": 50000, "cache": false}' \\
        --url URL     # a running _thin_server.py (see its docstring)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

from alltick_frames.core.plans import ENDPOINTS, Plan, get_plan

HERE = Path(__file__).resolve().parent

TOKEN = "ceiling"
#: A plan no correct client reaches on one machine: 10,000 calls a second on every window,
#: a million a minute; a year of history (50,000 1m bars are 35 days).
PLAN: Plan = get_plan("professional").with_overrides(
    name="ceiling",
    endpoint_rates={e: (10_000, 1.0) for e in ENDPOINTS},
    all_endpoints=(10_000, 1.0),
    per_minute=1_000_000,
    per_day=1_000_000_000,
)
#: The market clock of the server and the client: 2024-05-15 14:00 UTC, a Wednesday.
MARKET_NOW = 1_715_781_600
CALLS_TARGET = {False: 1_000, True: 600}
PEAK_TARGET = 1.5
#: Calls in flight for the server's own ceiling (the client's default for PLAN is 32 too).
BARE_CONCURRENCY = 32
BARE_SECONDS = 3.0


@dataclass(frozen=True)
class Case:
    name: str
    interval: str
    codes: int
    bars: int
    cache: bool

    @property
    def job(self) -> str:
        return f"{self.codes:,} codes x {self.bars:,} {self.interval}"


CASES = {
    c.name: c
    for c in (
        Case("1h", "1h", 1_000, 1_000, False),
        Case("1h-cache", "1h", 1_000, 1_000, True),
        Case("1m", "1m", 100, 50_000, False),
        Case("1m-cache", "1m", 100, 50_000, True),
    )
}


def quick(case: Case) -> Case:
    """About a fifth of the job: 200 codes x 1,000 1h bars, 20 codes x 25,000 1m bars."""
    if case.interval == "1m":
        return replace(case, codes=case.codes // 5, bars=case.bars // 2)
    return replace(case, codes=case.codes // 5)


# ---------------------------------------------------------------------------- one job


def _maxrss() -> int:
    """Peak RSS of this process so far, in bytes (Linux reports KiB, macOS bytes)."""
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def _thread_cpu() -> float:
    """CPU seconds of this process's main thread, which runs the event loop (Linux; NaN
    elsewhere)."""
    try:
        stat = Path(f"/proc/self/task/{os.getpid()}/stat").read_text()
    except OSError:
        return float("nan")
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_job(case: Case, url: str, profile: Path | None) -> dict[str, Any]:
    """Run ``case`` in this (fresh) process and return its figures."""
    import gc

    import aiohttp  # noqa: F401  (the library imports it at its first call: set-up, not the job)

    from alltick_frames import AllTick

    codes = [f"C{i:04d}USDT" for i in range(case.codes)]
    spent: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="ceiling-") as tmp:
        cache: Path | bool = Path(tmp) if case.cache else False

        async def fetch() -> Any:
            async with AllTick(
                TOKEN, PLAN, url, cache=cache, progress=False, clock=lambda: MARKET_NOW
            ) as client:
                profiler = None
                if profile is not None:
                    import cProfile

                    profiler = cProfile.Profile(time.thread_time)  # the loop's CPU, not waits
                    profiler.enable()
                cpu, wall, loop = time.process_time(), time.perf_counter(), _thread_cpu()
                result = await client.klines(codes, case.interval, count=case.bars)
                spent["wall"] = time.perf_counter() - wall
                spent["cpu"] = time.process_time() - cpu
                spent["loop"] = _thread_cpu() - loop
                if profiler is not None:
                    profiler.disable()
                    profiler.dump_stats(str(profile))
                return result

        gc.collect()
        base = _maxrss()
        result = asyncio.run(fetch())
        peak = _maxrss()
    rows = len(result.data)
    if not result.ok or rows != case.codes * case.bars:
        raise SystemExit(f"{case.name}: {rows:,} bars, failures:\n{result.failures}")
    return {
        "calls": sum(result.stats.calls.values()),
        "rows": rows,
        "wall": spent["wall"],
        "cpu": spent["cpu"],
        "loop": spent["loop"],
        "base": base,
        "peak": peak,
        "frame": int(result.data.memory_usage(deep=True).sum()),
    }


# ---------------------------------------------------------------------------- the server


class ThinServerProcess:
    """``_thin_server.py`` in a child process."""

    def __enter__(self) -> ThinServerProcess:
        self._dir = tempfile.TemporaryDirectory(prefix="thin-server-")
        plan = Path(self._dir.name) / "plan.json"
        plan.write_text(json.dumps(PLAN.to_dict()), encoding="utf-8")
        command = [
            sys.executable, str(HERE / "_thin_server.py"),
            "--token", TOKEN, "--plan", str(plan), "--now", str(MARKET_NOW),
        ]  # fmt: skip
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        self.url = self.process.stdout.readline().strip()
        if not self.url:
            raise SystemExit("the thin server did not start")
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.process.terminate()
        self.process.wait()
        self._dir.cleanup()

    def _admin(self, path: str, method: str = "GET") -> Any:
        request = urllib.request.Request(self.url + path, method=method)
        with urllib.request.urlopen(request) as answer:
            return json.loads(answer.read())

    def reset(self) -> None:
        self._admin("/_reset", "POST")

    def stats(self) -> dict[str, int]:
        return self._admin("/_stats")

    def cpu(self) -> float:
        """CPU seconds the server process has used (Linux; NaN elsewhere)."""
        try:
            fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return float("nan")
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def bare_ceiling(url: str, seconds: float) -> dict[str, float]:
    """Calls/s the server answers to the thinnest client: aiohttp reading each body whole,
    :data:`BARE_CONCURRENCY` in flight, nothing parsed."""
    import aiohttp

    deadline = time.perf_counter() + seconds
    done = 0

    async def worker(session: aiohttp.ClientSession, k: int) -> None:
        nonlocal done
        end = 0
        while time.perf_counter() < deadline:
            data = {"code": f"C{k:04d}USDT", "kline_type": 5, "kline_timestamp_end": end,
                    "query_kline_num": 500, "adjust_type": 0}  # fmt: skip
            query = json.dumps({"trace": f"bare-{k}-{done}", "data": data})
            params = {"token": TOKEN, "query": query}
            async with session.get(url + "/quote-b-api/kline", params=params) as answer:
                await answer.read()
            done += 1
            end = end - 1_800_000 if end else 1_715_000_000  # page back, as the client does

    connector = aiohttp.TCPConnector(limit=BARE_CONCURRENCY)
    async with aiohttp.ClientSession(connector=connector) as session:
        cpu, wall = time.process_time(), time.perf_counter()
        await asyncio.gather(*(worker(session, k) for k in range(BARE_CONCURRENCY)))
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"calls": done, "wall": wall, "cpu": cpu}


# ---------------------------------------------------------------------------- report


def _child(case: Case, url: str, profile: Path | None) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", json.dumps(asdict(case)), "--url", url]
    if profile is not None:
        command += ["--profile", str(profile / f"{case.name}.prof")]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"{case.name} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


@dataclass
class Figures:
    """The medians of one job's runs."""

    case: Case
    calls: int
    wall: float
    calls_s: float
    bars_s: float
    us_bar: float
    ms_call: float
    loop_ms_call: float
    loop_busy: float
    peak_mb: float
    frame_mb: float
    peak_ratio: float
    rejected: int

    @classmethod
    def of(cls, case: Case, runs: list[dict[str, Any]], rejected: int) -> Figures:
        def med(f: Any) -> float:
            return statistics.median(f(r) for r in runs)

        return cls(
            case,
            runs[0]["calls"],
            med(lambda r: r["wall"]),
            med(lambda r: r["calls"] / r["wall"]),
            med(lambda r: r["rows"] / r["wall"]),
            med(lambda r: r["cpu"] / r["rows"] * 1e6),
            med(lambda r: r["cpu"] / r["calls"] * 1e3),
            med(lambda r: r["loop"] / r["calls"] * 1e3),
            med(lambda r: r["loop"] / r["wall"]),
            med(lambda r: r["peak"] - r["base"]) / 2**20,
            med(lambda r: r["frame"]) / 2**20,
            med(lambda r: (r["peak"] - r["base"]) / r["frame"]),
            rejected,
        )

    @property
    def cpu_ceiling(self) -> float:
        """The most calls/s the client's CPU time allows when nothing else runs: its event
        loop on one core, all of its threads on every core (an upper bound: the threads also
        take turns holding the GIL)."""
        cores = os.cpu_count() or 1
        return min(1e3 / self.loop_ms_call, cores * 1e3 / self.ms_call)

    @property
    def target(self) -> int:
        return CALLS_TARGET[self.case.cache]

    @property
    def ok(self) -> bool:
        return self.calls_s >= self.target and self.peak_ratio <= PEAK_TARGET and not self.rejected


def report(figures: list[Figures], ceiling: float) -> None:
    print(
        f"{'job':<38}{'calls':>7}{'wall s':>8}{'calls/s':>9}{'target':>7}{'/target':>8}"
        f"{'/server':>8}{'bars/s':>11}{'429/605':>8}"
    )
    for f in figures:
        job = f"{f.case.name:<10}{f.case.job}"
        print(
            f"{job:<38}{f.calls:>7,}{f.wall:>8.2f}{f.calls_s:>9,.0f}{f.target:>7,}"
            f"{f.calls_s / f.target:>7.2f}x{f.calls_s / ceiling:>7.2f}x{f.bars_s:>11,.0f}"
            f"{f.rejected:>8}"
        )
    print()
    print(
        f"{'job':<12}{'CPU us/bar':>11}{'ms/call':>9}{'loop ms/call':>13}{'loop busy':>10}"
        f"{'CPU ceiling':>12}{'peak MB':>9}{'frame MB':>9}{'peak/frame':>11}{'target':>7}"
    )
    for f in figures:
        print(
            f"{f.case.name:<12}{f.us_bar:>11.2f}{f.ms_call:>9.2f}{f.loop_ms_call:>13.2f}"
            f"{f.loop_busy:>10.0%}{f.cpu_ceiling:>12,.0f}{f.peak_mb:>9,.0f}{f.frame_mb:>9,.0f}{f.peak_ratio:>10.2f}x"
            f"{PEAK_TARGET:>6}x"
        )
    print()
    print(
        "calls/s: /kline calls over the wall time of klines(); /server: over the server's\n"
        "ceiling above. CPU: the client process's CPU time, every thread; loop: its main\n"
        "thread's, which runs the event loop (busy: its CPU time over the wall time). CPU\n"
        "ceiling: the most calls/s that CPU time allows on an idle machine (the loop alone on\n"
        "one core, every thread on all cores; the GIL the threads share can only lower it):\n"
        "on a busy machine, hold it to the targets. peak MB: the peak RSS above the RSS after\n"
        "import and set-up; frame MB: the DataFrame's bytes."
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--case", action="append", choices=list(CASES), help="a job (repeatable)")
    parser.add_argument("--quick", action="store_true", help="about a fifth of each job")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each job; medians shown")
    parser.add_argument("--profile", type=Path, metavar="DIR", help="cProfile each job into DIR")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        case = Case(**json.loads(args.child))
        print(json.dumps(run_job(case, args.url, args.profile)))
        return 0
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    cases = [CASES[name] for name in dict.fromkeys(args.case or CASES)]
    if args.quick:
        cases = [quick(c) for c in cases]
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)

    load = os.getloadavg()
    print(f"load average    {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} cores")
    print(f"plan            {PLAN.name}: 10,000 calls/s on every window (never binds)")
    with ThinServerProcess() as server:
        server_cpu = server.cpu()
        bare = asyncio.run(bare_ceiling(server.url, BARE_SECONDS))
        server_cpu = server.cpu() - server_cpu
        server.reset()
        bare_rate = bare["calls"] / bare["wall"]
        print(
            f"server ceiling  {bare_rate:,.0f} calls/s to a bare aiohttp client; CPU a call: "
            f"{server_cpu / bare['calls'] * 1e3:.2f} ms in the server, "
            f"{bare['cpu'] / bare['calls'] * 1e3:.2f} ms in that client"
        )
        print()
        runs: dict[str, list[dict[str, Any]]] = {c.name: [] for c in cases}
        rejected = dict.fromkeys(runs, 0)
        for _ in range(args.repeat):
            for case in cases:
                runs[case.name].append(_child(case, server.url, args.profile))
                stats = server.stats()
                rejected[case.name] += stats.get("429", 0) + stats.get("605", 0)
                server.reset()
    figures = [Figures.of(c, runs[c.name], rejected[c.name]) for c in cases]
    report(figures, bare_rate)
    return 0 if all(f.ok for f in figures) else 1


if __name__ == "__main__":
    sys.exit(main())
