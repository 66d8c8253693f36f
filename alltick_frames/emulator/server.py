"""Run the emulator in a background thread: for tests, notebooks and benchmarks.

::

    with EmulatorServer(EmulatorConfig(plan="premium", now="2024-05-15T14:00:00Z")) as emu:
        url = emu.url                       # http://127.0.0.1:PORT
        ...                                 # point any HTTP client at it, token "demo"
        emu.clock.advance(1.0)              # move the rate windows along (frozen clock)
        assert emu.stats()["demo"]["kline"] == {"200": 1}

The server owns a private event loop in a daemon thread, so it works the same from sync code,
from async tests that run their own loop, and inside Jupyter. Methods that read or change the
emulator's state run on that loop, so they never race with a request in flight.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import Future
from datetime import datetime
from typing import Any

from aiohttp import web

from alltick_frames.core.codes import FOREX_PATH, STOCK_PATH
from alltick_frames.emulator import arrivals
from alltick_frames.emulator.app import EMULATOR_KEY, create_app
from alltick_frames.emulator.clock import EmulatorClock
from alltick_frames.emulator.config import EmulatorConfig
from alltick_frames.emulator.faults import FaultConfig
from alltick_frames.emulator.service import Emulator


class EmulatorServer:
    """A running emulator on ``host`` (loopback) and a free ``port`` unless one is given.

    Use it as a context manager, or call :meth:`start` and :meth:`stop`. Keyword arguments
    other than ``host`` and ``port`` build an :class:`EmulatorConfig` when ``config`` is None.
    """

    def __init__(
        self,
        config: EmulatorConfig | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        **config_fields: Any,
    ) -> None:
        if config is not None and config_fields:
            raise TypeError("pass either an EmulatorConfig or its fields, not both")
        self.config = config or EmulatorConfig(**config_fields)
        self.host = host
        self.port = port
        self.app = create_app(self.config)
        self.emulator: Emulator = self.app[EMULATOR_KEY]
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None

    # --- lifecycle ----------------------------------------------------------------------

    def start(self) -> EmulatorServer:
        """Start serving; returns once the port is bound."""
        if self._thread is not None:
            return self
        started: Future[int] = Future()
        self._thread = threading.Thread(
            target=self._run, args=(started,), name="alltick-emulator", daemon=True
        )
        self._thread.start()
        self.port = started.result(timeout=30)
        return self

    def _run(self, started: Future[int]) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        try:
            runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=0.5)
            loop.run_until_complete(runner.setup())
            site = web.SockSite(runner, arrivals.listening_socket(self.host, self.port))
            loop.run_until_complete(site.start())
            self._runner = runner
            started.set_result(runner.addresses[0][1])
        except BaseException as error:  # surface bind errors in the starting thread
            started.set_exception(error)
            loop.close()
            return
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())
        loop.close()

    def stop(self) -> None:
        """Stop serving and join the thread (idempotent)."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if loop.is_running():
            loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        self._loop = self._thread = self._runner = None

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- where to send requests ---------------------------------------------------------

    @property
    def url(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:8787`` (append the base path yourself)."""
        return f"http://{self.host}:{self.port}"

    @property
    def stock_url(self) -> str:
        return self.url + STOCK_PATH

    @property
    def forex_url(self) -> str:
        return self.url + FOREX_PATH

    @property
    def token(self) -> str:
        """The first configured token (``"demo"`` unless tokens were given)."""
        return next(iter(self.emulator.tokens))

    @property
    def clock(self) -> EmulatorClock:
        """The rate clock (thread-safe: advance or set it from any thread)."""
        return self.emulator.clock

    # --- state, read and changed on the server's loop -----------------------------------

    def _on_loop(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        loop = self._loop
        if loop is None or not loop.is_running():
            return fn(*args, **kwargs)

        async def call() -> Any:
            return fn(*args, **kwargs)

        return asyncio.run_coroutine_threadsafe(call(), loop).result(timeout=30)

    def stats(self) -> dict[str, dict[str, dict[str, int]]]:
        """Answers so far: token -> endpoint -> ``ret`` (or fault key) -> count (a copy)."""
        return self._on_loop(
            lambda: {
                token: {ep: dict(keys) for ep, keys in endpoints.items()}
                for token, endpoints in self.emulator.stats.items()
            }
        )

    def injected_faults(self) -> dict[str, int]:
        """How many faults of each kind were injected so far."""
        return self._on_loop(lambda: dict(self.emulator.injector.injected))

    def reset(self) -> None:
        """Clear windows, counters and stats; restart the fault sequence from its seed."""
        self._on_loop(self.emulator.reset)

    def set_faults(
        self, faults: FaultConfig | dict[str, Any] | None = None, **rates: float
    ) -> None:
        """Replace the fault settings, or change some: ``set_faults(reset=0.1, latency=0.2)``."""
        self._on_loop(self.emulator.set_faults, faults, **rates)

    def set_market_now(self, value: str | float | datetime | None) -> None:
        """Move the market clock (None: follow real time)."""
        self._on_loop(self.emulator.set_market_now, value)

    def codes(self) -> list[dict[str, object]]:
        """The catalogue as ``GET /_emulator/codes`` returns it."""
        return list(self._on_loop(self.emulator.codes))

    def __repr__(self) -> str:
        state = "running" if self._thread is not None else "stopped"
        return f"EmulatorServer({self.url}, {state})"
