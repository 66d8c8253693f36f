"""The package's shape: no import cycles, a light command line, the public API in one place."""

from __future__ import annotations

import ast
import importlib
import json
import os
import pkgutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import alltick_frames

PACKAGE = Path(alltick_frames.__file__).parent
#: What the command line must not import before it has work to do (asyncio alone takes
#: ~0.1 s: a third of the time --help may take).
HEAVY = ("pandas", "numpy", "pyarrow", "aiohttp", "diskcache", "asyncio")


def _modules() -> list[str]:
    names = ["alltick_frames"]
    for info in pkgutil.walk_packages([str(PACKAGE)], "alltick_frames."):
        if not info.name.endswith("__main__"):
            names.append(info.name)
    return names


def test_every_module_imports_on_its_own():
    """Each module imported first, in a fresh package, so an import cycle cannot hide behind
    the order in which the suite happens to import things."""
    script = textwrap.dedent(
        """
        import importlib, sys
        failed = []
        for name in sys.argv[1:]:
            for loaded in [m for m in sys.modules if m.split(".")[0] == "alltick_frames"]:
                del sys.modules[loaded]
            try:
                importlib.import_module(name)
            except Exception as exc:
                failed.append(f"{name}: {exc!r}")
        print("\\n".join(failed))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script, *_modules()], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""


def _cli_imports(argv: list[str]) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """Run ``python -m alltick_frames.cli *argv`` without a token; its heavy imports
    (``-X importtime`` lists every module the interpreter imported)."""
    env = {k: v for k, v in os.environ.items() if k != "ALLTICK_TOKEN"}
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "alltick_frames.cli", *argv],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines()}
    return done, sorted(m for m in imported if m.split(".")[0] in HEAVY)


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["fetch", "klines", "--help"],
        ["cache", "info", "--help"],
        ["budget", "show", "--help"],
        ["demo", "--help"],
    ],
    ids=" ".join,
)
def test_help_imports_no_data_or_network_library(argv):
    """``--help`` works and loads neither pandas nor aiohttp, nor even asyncio."""
    done, heavy = _cli_imports(argv)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: alltick-frames")
    assert heavy == []


ARGUMENT_ERRORS = [
    (["fetch", "klines", "--count", "x"], 2, "argument --count: invalid int value: 'x'"),
    (["fetch", "klines", "--codes", "AAPL.US", "--count", "0"], 2, "count must be a whole"),
    (["fetch", "klines", "--codes", "aapl.us"], 2, "malformed US code 'aapl.us'"),
    (["fetch", "latest", "--codes", "AAPL.US", "--intervals", "4h"], 2, "not offered for"),
    (["fetch", "latest", "--codes", "EURUSD", "--intervals", "7m"], 2, "interval"),
    (["fetch", "trades"], 2, "give the codes with --codes"),
    (["fetch", "trades", "--codes", "AAPL.US"], 4, "no AllTick token"),
]


@pytest.mark.parametrize(
    ("argv", "status", "message"), ARGUMENT_ERRORS, ids=[" ".join(a) for a, _, _ in ARGUMENT_ERRORS]
)
def test_argument_errors_import_no_data_or_network_library(argv, status, message):
    """A mistake in the command, whether argparse or the client's own checks find it, is
    reported before pandas or aiohttp is loaded: at once, not a second later."""
    done, heavy = _cli_imports(argv)
    assert done.returncode == status
    assert ": error: " in done.stderr and message in done.stderr
    assert heavy == []


#: What importing the package must leave for first use (building a client, fetching): each
#: costs import time the user pays whether or not they fetch, aiohttp most (~1/3 of pandas).
DEFERRED = (
    "aiohttp",
    "yarl",
    "asyncio",
    "ssl",
    "diskcache",
    "sqlite3",
    "orjson",
    "tqdm",
    "tomllib",
    "redis",
    "exchange_calendars",
    "pyarrow.json",
    "pyarrow.parquet",
    "alltick_frames.run",
    "alltick_frames.store",
    "alltick_frames.budget",
    "alltick_frames.frames",
    "alltick_frames.live",
    "alltick_frames.emulator",
    "alltick_frames.cli",
)


def _loaded_by(statement: str, after: str = "") -> list[str]:
    """The modules ``statement`` imports in a fresh interpreter, beyond those it held before
    (after running ``after``, e.g. ``import pandas``, whose own imports are not ours)."""
    script = textwrap.dedent(
        f"""
        import json, sys
        {after}
        before = set(sys.modules)
        {statement}
        print(json.dumps(sorted(set(sys.modules) - before)))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    return json.loads(done.stdout)


def _deferred(modules: list[str]) -> list[str]:
    return [m for m in modules if any(m == d or m.startswith(d + ".") for d in DEFERRED)]


def test_importing_the_package_loads_no_library():
    """``import alltick_frames`` loads only its own ``__init__``: the names come on use."""
    loaded = _loaded_by("import alltick_frames")
    assert [m for m in loaded if m.split(".")[0] in HEAVY + DEFERRED] == []
    assert [m for m in loaded if m.startswith("alltick_frames")] == ["alltick_frames"]


@pytest.mark.parametrize(
    "statement",
    [
        "from alltick_frames import AllTick",
        "import alltick_frames.api.client",
        "from alltick_frames import AllTick, AllTickError, FetchResult, get_plan, parse_interval",
    ],
)
def test_importing_the_client_leaves_the_fetch_machinery_for_first_use(statement):
    """Beyond pandas, the client's import loads the pure core only: the transport (aiohttp),
    the store (diskcache), the budget, the runner and the decoders wait for a client to be
    built and a fetch to run. This keeps the import within 1.2x ``import pandas``
    (benchmarks/startup.py); the list catches a top-level import that would undo it."""
    assert _deferred(_loaded_by(statement, after="import pandas")) == []


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_the_demo_job_does_not_import_the_command_line():
    for module in ("demo.py", "output.py"):
        assert not {n for n in _imports(PACKAGE / module) if n.startswith("alltick_frames.cli")}


def test_the_core_imports_no_io():
    """core/ is pure: it imports no other room of the package at run time (the cache
    planner names the store's types only for type checkers)."""
    for path in (PACKAGE / "core").glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:  # module level only: TYPE_CHECKING blocks are ast.If
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                "alltick_frames."
            ):
                assert node.module.startswith("alltick_frames.core."), (path.name, node.module)


def test_the_public_api_is_the_same_names_loaded_on_use():
    assert set(alltick_frames._EXPORTS) == set(alltick_frames.__all__)
    assert len(alltick_frames.__all__) == 31
    for name, module in alltick_frames._EXPORTS.items():
        assert getattr(alltick_frames, name) is getattr(importlib.import_module(module), name)
    assert alltick_frames.__version__ == "0.1.0"
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        alltick_frames.nope  # noqa: B018


def test_every_benchmark_script_loads_and_parses_its_arguments():
    """Each ``benchmarks/*.py`` imports and answers ``--help``: a benchmark that no longer
    runs (a helper renamed in a sibling script, say) is caught here, not when a user re-measures
    the README's figures."""
    bench = PACKAGE.parent / "benchmarks"
    scripts = sorted(str(p) for p in bench.glob("*.py") if not p.name.startswith("_"))
    script = textwrap.dedent(
        """
        import contextlib, io, runpy, sys
        sys.path.insert(0, sys.argv[1])
        failed = []
        for path in sys.argv[2:]:
            sys.argv = [path, "--help"]
            out = io.StringIO()
            try:
                with contextlib.redirect_stdout(out):
                    runpy.run_path(path, run_name="__main__")
            except SystemExit as exc:
                if exc.code not in (0, None) or "usage:" not in out.getvalue():
                    failed.append(f"{path}: exit {exc.code}")
            except Exception as exc:
                failed.append(f"{path}: {exc!r}")
            else:
                failed.append(f"{path}: --help did not exit")
        print("\\n".join(failed))
        """
    )
    assert len(scripts) >= 10
    done = subprocess.run(
        [sys.executable, "-c", script, str(bench), *scripts],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""
