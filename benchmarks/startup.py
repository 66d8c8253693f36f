"""Startup: how long the package and its command line take to start, beside ``import pandas``.

Each case runs in a fresh interpreter (``sys.executable``), ``--runs`` times, the cases taking
turns round by round so that a change in the machine's load hits all of them alike; it prints
each case's fastest and median wall time, and judges the targets and ratios on the fastest
runs (other work on a shared machine only ever adds time, so the fastest run is closest to
the cost itself)::

    python benchmarks/startup.py             # 9 runs of each case, ~1 min on 2 busy cores
    python benchmarks/startup.py --runs 21

What the targets mean (issue 13, item 6):

* **The command line starts at once**: ``alltick-frames --help``, a subcommand's ``--help``,
  an argument argparse refuses and a request the client would refuse (``--count 0``) each
  take <= 0.25 s. The command line is the installed ``alltick-frames`` script beside
  ``sys.executable`` (``python -m alltick_frames.cli`` when there is none).
* **The library imports as fast as pandas**: ``<= 1.2x import pandas``. ``import
  alltick_frames`` alone loads its names on first use, so it takes next to nothing and would
  meet any target without proving anything. The honest case is the first line every user
  writes, ``from alltick_frames import AllTick``: it loads the client and the pure core
  (plans, planning, validation); the transport (aiohttp), the store (diskcache), the budget,
  the runner and the decoders wait until a client is built and a fetch runs
  (tests/test_layout.py keeps it so).

The time moves, it does not vanish: ``AllTick(...) built`` (a client without a cache, which
loads the transport, the budget and the store) and ``dependencies``
(``import pandas, pyarrow.json, aiohttp, orjson, diskcache``, the libraries a fetch uses)
show what the first fetch pays on top of the import. aiohttp alone takes about a third of
``import pandas``.

Every case runs compiled, as an installed package does: the first, unmeasured run of each
writes its byte code to a temporary directory (``PYTHONPYCACHEPREFIX``), whatever
``PYTHONDONTWRITEBYTECODE`` says. Figures vary with the machine's load: the load average is
printed with them.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

#: The interpreter that runs every case, and the command line beside it.
PYTHON = sys.executable
_SCRIPT = Path(PYTHON).with_name("alltick-frames")
CLI = [str(_SCRIPT)] if _SCRIPT.exists() else [PYTHON, "-m", "alltick_frames.cli"]

#: The libraries a fetch uses: what `from alltick_frames import AllTick` cannot go below.
DEPENDENCIES = "import pandas, pyarrow.json, aiohttp, orjson, diskcache"
#: Building a client, as a job does before its first call (no cache: nothing is written).
BUILT = "from alltick_frames import AllTick; AllTick(cache=False)"
#: Targets: seconds for the command line's quick answers, and the import ratio vs pandas.
CLI_TARGET = 0.25
IMPORT_TARGET = 1.2


@dataclass(frozen=True)
class Case:
    name: str
    argv: list[str]
    #: Exit statuses that count as this case working as meant (an argument error exits 2).
    statuses: tuple[int, ...] = (0,)
    #: A command-line case, held to :data:`CLI_TARGET`.
    cli: bool = False


def cases() -> list[Case]:
    py = [PYTHON, "-c"]
    # A token in the environment, so the request is checked (not the missing token).
    return [
        Case("python -c pass", [*py, "pass"]),
        Case("import pandas", [*py, "import pandas"]),
        Case("dependencies", [*py, DEPENDENCIES]),
        Case("import alltick_frames", [*py, "import alltick_frames"]),
        Case("from alltick_frames import AllTick", [*py, "from alltick_frames import AllTick"]),
        Case("AllTick(...) built", [*py, BUILT]),
        Case("alltick-frames --help", [*CLI, "--help"], cli=True),
        Case("fetch klines --help", [*CLI, "fetch", "klines", "--help"], cli=True),
        Case("argparse error (--count x)", [*CLI, "fetch", "klines", "--count", "x"], (2,), True),
        Case(
            "request error (--count 0)",
            [*CLI, "fetch", "klines", "--codes", "AAPL.US", "--count", "0"],
            (2,),
            True,
        ),
    ]


def environment(bytecode: str) -> dict[str, str]:
    """The cases' environment: a token (so a request is checked, not the missing token) and
    a byte-code cache in ``bytecode``, as an installed package has one (pip compiles what it
    installs). Without it, a ``PYTHONDONTWRITEBYTECODE`` in the environment would have this
    package, and only this one, compiled from source at every start."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return {**env, "ALLTICK_TOKEN": "startup-benchmark", "PYTHONPYCACHEPREFIX": bytecode}


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_once(case: Case, env: dict[str, str]) -> tuple[float, float]:
    """Wall time and CPU time (user + system) of one run of ``case``."""
    cpu, t0 = _children_cpu(), time.perf_counter()
    done = subprocess.run(case.argv, env=env, capture_output=True, text=True, check=False)
    elapsed, cpu = time.perf_counter() - t0, _children_cpu() - cpu
    if done.returncode not in case.statuses:
        raise SystemExit(
            f"{case.name}: exit status {done.returncode}, expected {case.statuses}\n"
            f"{done.stderr[-2000:]}"
        )
    return elapsed, cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=9, help="runs of each case (default 9)")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")

    all_cases = cases()
    load = os.getloadavg()
    times: dict[str, list[float]] = {c.name: [] for c in all_cases}
    cpus: dict[str, list[float]] = {c.name: [] for c in all_cases}
    with tempfile.TemporaryDirectory(prefix="startup-bytecode-") as bytecode:
        env = environment(bytecode)
        for case in all_cases:  # a first, unmeasured run of each compiles it, warms the disk
            run_once(case, env)
        for _ in range(args.runs):
            for case in all_cases:
                elapsed, cpu = run_once(case, env)
                times[case.name].append(elapsed)
                cpus[case.name].append(cpu)
    median = {name: statistics.median(t) for name, t in times.items()}
    # Other work on the machine only ever adds time: the fastest run is the cost itself.
    fastest = {name: min(t) for name, t in times.items()}
    least_cpu = {name: min(t) for name, t in cpus.items()}

    print(f"python          {sys.version.split()[0]} ({PYTHON})")
    print(f"command line    {' '.join(CLI)}")
    end = os.getloadavg()
    print(
        f"load average    {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at the start, "
        f"{end[0]:.2f} {end[1]:.2f} {end[2]:.2f} at the end, on {os.cpu_count()} cores"
    )
    print(f"runs            {args.runs} of each case, taking turns")
    print()
    print(f"{'case':<36}{'fastest':>9}{'median':>9}{'fastest / pandas':>18}{'CPU':>9}")
    pandas = fastest["import pandas"]
    ok = True
    for case in all_cases:
        t = fastest[case.name]
        line = f"{case.name:<36}{t:>7.3f} s{median[case.name]:>7.3f} s{t / pandas:>17.2f}x"
        line += f"{least_cpu[case.name]:>7.3f} s"
        if case.cli:
            met = t <= CLI_TARGET
            ok &= met
            line += f"   target <= {CLI_TARGET} s: {'met' if met else 'MISSED'}"
        print(line)
    print()
    client = fastest["from alltick_frames import AllTick"]
    met = client <= IMPORT_TARGET * pandas
    ok &= met
    print(
        f"{'from alltick_frames import AllTick / import pandas':<56}{client / pandas:5.2f}x"
        f"   target <= {IMPORT_TARGET}x: {'met' if met else 'MISSED'}"
    )
    built, floor = fastest["AllTick(...) built"], fastest["dependencies"]
    print(f"{'  a client built (paid before the first call) / pandas':<56}{built / pandas:5.2f}x")
    print(f"{'  the libraries a fetch uses, imported / pandas':<56}{floor / pandas:5.2f}x")
    cpu_ratio = least_cpu["from alltick_frames import AllTick"] / least_cpu["import pandas"]
    print(f"{'  the same in CPU time (least of the runs)':<56}{cpu_ratio:5.2f}x")
    print()
    print("Targets and ratios use each case's fastest run: the machine's load only adds time.")
    print("CPU time (user + system, least of the runs) is a cross-check that load sways less.")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
