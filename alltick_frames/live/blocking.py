"""The blocking stream, for scripts and notebooks: ``alltick_frames.stream(...)``.

::

    import alltick_frames as af

    with af.stream(["AAPL.US", "BTCUSDT"], duration=60, plan="premium") as s:
        for frame in s:                       # blocks until the next batch
            print(frame.attrs["kind"], len(frame))
    s.failures

The :class:`~alltick_frames.live.stream.Stream` runs on a private event loop in a worker
thread, so this works the same in a script and inside Jupyter's running loop. Leave the
``with`` block (or call :meth:`BlockingStream.close`) to stop it; with ``duration`` it also
ends by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd

from alltick_frames.core.plans import Plan
from alltick_frames.live.ledger import StreamStats
from alltick_frames.live.stream import Stream

T = TypeVar("T")
_END = object()


class BlockingStream(Iterator[pd.DataFrame]):
    """Iterate frames of a :class:`~alltick_frames.live.stream.Stream` without ``await``."""

    def __init__(self, stream: Stream) -> None:
        self._stream = stream
        self._frames: queue.Queue[Any] = queue.Queue()
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Event
        started: Future[None] = Future()
        self._thread = threading.Thread(
            target=self._run, args=(started,), name="alltick-stream", daemon=True
        )
        self._thread.start()
        started.result()  # bad input and start-up errors surface here

    def __repr__(self) -> str:
        return f"BlockingStream({self._stream!r})"

    def _run(self, started: Future[None]) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._pump(started))
        finally:
            self._loop.close()

    async def _pump(self, started: Future[None]) -> None:
        try:
            await self._stream.start()
        except BaseException as error:
            started.set_exception(error)
            return
        self._stop = asyncio.Event()
        started.set_result(None)
        reader = asyncio.create_task(self._read())
        stop = asyncio.create_task(self._stop.wait())
        try:
            await asyncio.wait({reader, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
            await self._stream.close()
            await reader
            self._frames.put(_END)

    async def _read(self) -> None:
        try:
            async for frame in self._stream:
                self._frames.put(frame)
        except Exception as error:
            self._frames.put(error)

    def __next__(self) -> pd.DataFrame:
        while True:
            try:  # a timeout, so Ctrl-C reaches a waiting notebook cell
                item = self._frames.get(timeout=0.2)
            except queue.Empty:
                continue
            if item is _END:
                self._frames.put(_END)
                raise StopIteration
            if isinstance(item, BaseException):
                raise item
            return item

    def _on_loop(self, make: Callable[[], Any]) -> Any:
        """Run ``make()`` (a coroutine, or a plain call) on the stream's loop while it runs."""
        if not self._loop.is_running():
            result = make()
            if asyncio.iscoroutine(result):
                result.close()
                raise RuntimeError("the stream has ended")
            return result

        async def call() -> Any:
            result = make()
            return await result if asyncio.iscoroutine(result) else result

        return asyncio.run_coroutine_threadsafe(call(), self._loop).result(timeout=60)

    def add(self, codes: str | Iterable[str], **kinds: bool) -> None:
        """Stream more codes (see :meth:`Stream.add <alltick_frames.live.stream.Stream.add>`)."""
        self._on_loop(lambda: self._stream.add(codes, **kinds))

    def remove(self, codes: str | Iterable[str], **kinds: bool) -> None:
        """Stop streaming codes (see :meth:`Stream.remove`)."""
        self._on_loop(lambda: self._stream.remove(codes, **kinds))

    def close(self) -> None:
        """Stop the stream and its thread (idempotent); frames not read yet stay readable."""
        with contextlib.suppress(RuntimeError):  # the loop is closed: the stream ended
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join()

    def __enter__(self) -> BlockingStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def failures(self) -> pd.DataFrame:
        """See :attr:`Stream.failures <alltick_frames.live.stream.Stream.failures>`."""
        return self._on_loop(lambda: self._stream.failures)

    @property
    def stats(self) -> StreamStats:
        return self._stream.stats

    @property
    def codes(self) -> dict[str, list[str]]:
        return self._on_loop(lambda: self._stream.codes)


def stream(
    codes: str | Iterable[str],
    *,
    trades: bool = True,
    depth: bool = True,
    duration: float | None = None,
    token: str | None = None,
    plan: str | Plan | Path = "basic",
    base_url: str | None = None,
    **options: Any,
) -> BlockingStream:
    """Live trades and order books of ``codes``, blocking: iterate it for DataFrames.

    Arguments as :class:`~alltick_frames.live.stream.Stream` (``options``: ``depth_level``,
    ``batch_rows``, ``batch_seconds``, ``silence_timeout``, ``heartbeat``, ``jitter``,
    ``clock``, ``seed``). Use it in a ``with`` block or close it when done.
    """
    return BlockingStream(
        Stream(
            codes,
            token=token,
            plan=plan,
            base_url=base_url,
            trades=trades,
            depth=depth,
            duration=duration,
            **options,
        )
    )
