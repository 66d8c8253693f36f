"""Run the emulator in its own process: for tests and benchmarks that measure pacing.

An :class:`~alltick_frames.emulator.server.EmulatorServer` runs in the client's process, so it
shares the GIL with the client: while the client decodes a page, the server cannot read the
next request. Both date a request by the kernel's stamp of its arrival
(:mod:`~alltick_frames.emulator.arrivals`), not by when they read it, but the shared process
still delays every answer, and where the kernel gives no stamp (not Linux) the in-process
server dates late, in bursts. An :class:`EmulatorProcess` is ``python -m
alltick_frames.emulator`` on a free loopback port: timing tests and benchmarks use it. It
has the same methods as ``EmulatorServer`` (``url``, ``stats()``, ``reset()``,
``set_faults()``, ``clock.advance()``, ...), carried over the emulator's admin view
(``/_emulator/*``)::

    with EmulatorProcess(plan="basic", frozen_clock=True) as emu:
        ...                                  # requests to emu.url with token emu.token
        emu.clock.advance(1.0)
        assert emu.stats()["demo"]["kline"] == {"200": 2}

In tests, ``alltick_emulator(..., process=True)`` starts one and stops it at teardown.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import urllib.request
from datetime import datetime
from pathlib import Path
from queue import Empty, Queue
from typing import Any

from alltick_frames.emulator.config import EmulatorConfig
from alltick_frames.emulator.faults import FaultConfig

#: Seconds to wait for the child to print its URL (it imports pandas and builds its catalogue).
START_TIMEOUT = 60.0


class EmulatorProcess:
    """An emulator in a child process on ``host`` and a free port.

    Use it as a context manager, or call :meth:`start` and :meth:`stop`. Keyword arguments other
    than ``host`` build an :class:`EmulatorConfig` when ``config`` is None; the config travels to
    the child as JSON (:meth:`EmulatorConfig.to_dict`), custom plans included.
    """

    def __init__(
        self, config: EmulatorConfig | None = None, *, host: str = "127.0.0.1", **config_fields: Any
    ) -> None:
        if config is not None and config_fields:
            raise TypeError("pass either an EmulatorConfig or its fields, not both")
        self.config = config or EmulatorConfig(**config_fields)
        self.host = host
        self.port = 0
        self._process: subprocess.Popen[str] | None = None
        self._workdir: tempfile.TemporaryDirectory[str] | None = None
        self.clock = RemoteClock(self)

    # --- lifecycle ----------------------------------------------------------------------

    def start(self) -> EmulatorProcess:
        """Start the child and return once it serves (it prints its URL after binding)."""
        if self._process is not None:
            return self
        self._workdir = tempfile.TemporaryDirectory(prefix="alltick-emulator-")
        workdir = Path(self._workdir.name)
        config_file = workdir / "config.json"
        config_file.write_text(json.dumps(self.config.to_dict()), encoding="utf-8")
        self._stderr = (workdir / "stderr.txt").open("w+", encoding="utf-8")
        command = [
            sys.executable, "-m", "alltick_frames.emulator",
            "--config", str(config_file), "--host", self.host, "--port", "0",
        ]  # fmt: skip
        self._process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            stdin=subprocess.DEVNULL,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        lines: Queue[str] = Queue()
        stdout = self._process.stdout
        assert stdout is not None
        threading.Thread(target=_pump, args=(stdout, lines), daemon=True).start()
        try:
            first = lines.get(timeout=START_TIMEOUT)
        except Empty:
            first = ""
        if not first.startswith("http://"):
            errors = self._errors() or first
            self.stop()
            raise RuntimeError(f"the emulator process did not start: {errors}")
        self.port = int(first.strip().rsplit(":", 1)[1])
        return self

    def stop(self) -> None:
        """Stop the child (SIGTERM, then SIGKILL after 10 s) and clean up (idempotent)."""
        process, self._process = self._process, None
        if process is not None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            self._stderr.close()
        if self._workdir is not None:
            self._workdir.cleanup()
            self._workdir = None

    def _errors(self) -> str:
        self._stderr.flush()
        self._stderr.seek(0)
        return self._stderr.read()[-2000:]

    def __enter__(self) -> EmulatorProcess:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- where to send requests ---------------------------------------------------------

    @property
    def url(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:PORT`` (append the base path yourself)."""
        return f"http://{self.host}:{self.port}"

    @property
    def stock_url(self) -> str:
        return self.url + "/quote-stock-b-api"

    @property
    def forex_url(self) -> str:
        return self.url + "/quote-b-api"

    @property
    def token(self) -> str:
        """The first configured token (``"demo"`` unless tokens were given)."""
        return next(iter(self.config.resolved_tokens()))

    # --- state, over the admin view -----------------------------------------------------

    def admin(self, path: str, body: dict[str, Any] | None = None) -> Any:
        """``GET /_emulator/<path>``, or POST ``body`` to it; returns the decoded JSON."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"{self.url}/_emulator/{path}",
            data=data,
            method="GET" if body is None else "POST",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    def stats(self) -> dict[str, dict[str, dict[str, int]]]:
        """Answers so far: token -> endpoint -> ``ret`` (or fault key) -> count."""
        return self.admin("stats")

    def injected_faults(self) -> dict[str, int]:
        """How many faults of each kind were injected so far."""
        return self.admin("faults")["injected"]

    def reset(self) -> None:
        """Clear windows, counters and stats; restart the fault sequence from its seed."""
        self.admin("reset", {})

    def set_faults(
        self, faults: FaultConfig | dict[str, Any] | None = None, **rates: float
    ) -> None:
        """Replace the fault settings, or change some: ``set_faults(reset=0.1, latency=0.2)``."""
        changes = {} if faults is None else FaultConfig.coerce(faults).to_dict()
        self.admin("faults", {**changes, **rates})

    def set_market_now(self, value: str | float | datetime | None) -> None:
        """Move the market clock (None: follow real time)."""
        moment = value.isoformat() if isinstance(value, datetime) else value
        self.admin("clock", {"market_now": moment})

    def codes(self) -> list[dict[str, object]]:
        """The catalogue as ``GET /_emulator/codes`` returns it."""
        return self.admin("codes")

    def __repr__(self) -> str:
        state = "running" if self._process is not None else "stopped"
        return f"EmulatorProcess({self.url}, {state})"


class RemoteClock:
    """The child's rate clock, with :class:`~alltick_frames.emulator.clock.EmulatorClock`'s
    methods."""

    def __init__(self, emulator: EmulatorProcess) -> None:
        self._emulator = emulator

    def _post(self, body: dict[str, Any]) -> float:
        return float(self._emulator.admin("clock", body)["now"])

    def now(self) -> float:
        return float(self._emulator.admin("clock")["now"])

    @property
    def frozen(self) -> bool:
        return bool(self._emulator.admin("clock")["frozen"])

    def freeze(self, frozen: bool = True) -> None:
        self._post({"frozen": frozen})

    def advance(self, seconds: float) -> float:
        return self._post({"advance": seconds})

    def set(self, epoch: float) -> float:
        return self._post({"set": epoch})


def _pump(stream: Any, lines: Queue[str]) -> None:
    # Read the child's stdout to the end, so that it never blocks on a full pipe; an empty
    # line says it closed (the child exited before printing its URL).
    for line in stream:
        lines.put(line)
    lines.put("")
