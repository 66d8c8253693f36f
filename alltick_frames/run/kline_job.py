"""History through ``/kline``: :class:`KlineJob`, chains of pages per code (see
:mod:`alltick_frames.core.planner`), read as they arrive and kept as arrays.

Where the work happens, and what it holds:

* the event loop reads each answer's head only (``ret``), and paces calls;
* the decode thread reads each body once (:mod:`alltick_frames.run.pages`): the body is
  dropped there, and only its believed bars are kept, as arrays (56 bytes a bar);
* without a store, a code's pages wait as arrays until its chain ends, then become one
  sorted series (:func:`~alltick_frames.run.answers.assemble`): for a count of bars, copied
  straight into its place in the frame's arrays (:class:`~alltick_frames.run.answers.Slab`);
  with a store, each page is written there within moments of arriving, on a writer thread,
  up to :data:`WRITE_BATCH` pages in one transaction (:func:`~alltick_frames.run.answers.record`);
* :meth:`KlineJob.frame` builds the frame once: on the slab's arrays, or series by series,
  freeing each as it goes (with a store, it reads the request from the store: a job that
  fetched a few series at a time, straight into the frame's arrays).

With a store, answers read and not yet written (the *backlog*) never exceed
:data:`MAX_BACKLOG`: past it the job makes the runner wait before it takes another answer, so
a slow disk slows the fetch instead of filling memory, and a killed job loses at most that many
answers (they are fetched again by the next run).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

import pandas as pd

from alltick_frames.core import planner, wire
from alltick_frames.core.errors import Failure, MalformedResponse
from alltick_frames.core.planner import KlinePage, KlineRequest
from alltick_frames.core.plans import KLINE, Plan
from alltick_frames.frames import checks
from alltick_frames.run import answers, bodies, memory, pages
from alltick_frames.run.pages import PageRead
from alltick_frames.run.runner import Call
from alltick_frames.store import BarStore
from alltick_frames.store.codec import Arrays

__all__ = [
    "DECODE_BATCH",
    "MAX_BACKLOG",
    "WRITE_BATCH",
    "Fetched",
    "KlineJob",
    "bad_bars",
    "unreadable",
]

#: Most bodies read, or answers written, together: batching is what makes decoding fast (see
#: alltick_frames.frames).
DECODE_BATCH = 128
#: Most answers a job with a store holds read but not yet written (see the module docstring).
MAX_BACKLOG = 128
#: Answers written together, in one transaction, when the writer is free; fewer wait at most
#: WRITE_DELAY seconds. A batch's commit costs about as much as writing a page, and each batch
#: wakes the writer thread, whose SQLite calls hand the GIL back and forth with the event loop:
#: 64 took 623-672 calls/s where 32 took 569-603 (benchmarks/client_ceiling.py, runs taken in
#: turns on an idle machine), and half the backlog's bound leaves the other half to arrive
#: while a batch is written.
WRITE_BATCH = 64
WRITE_DELAY = 0.2

#: Bars are decoded off the event loop, so that pacing stays exact while they arrive
#: (Arrow's JSON reader releases the GIL) and little is left to do after the last answer.
#: One thread keeps the work in arrival order.
_DECODER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="alltick-decode")
#: Pages are written to the store on a thread of their own, so that reading answers never
#: waits behind a write (SQLite releases the GIL while it writes); one thread keeps the writes
#: in arrival order, each batch in one transaction.
_WRITER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="alltick-write")


def unreadable(code: str, interval: str | None, endpoint: str, exc: MalformedResponse) -> Failure:
    """The failure row of an item whose answer came back in a form that cannot be used."""
    return Failure(
        code=code, interval=interval, endpoint=endpoint, kind="unreadable", msg=exc.msg
    )  # fmt: skip


def bad_bars(
    code: str, interval: str, endpoint: str, counts: Counter[str], note: str = ""
) -> Failure:
    """The failure row of an item some of whose bars were not believed (see frames.checks)."""
    return Failure(
        code=code, interval=interval, endpoint=endpoint, kind="bad-bars",
        msg=checks.describe(counts, interval) + note,
    )  # fmt: skip


def _soon(loop: asyncio.AbstractEventLoop, callback: Callable[..., Any], *args: Any) -> None:
    """Run ``callback`` on ``loop`` (from the decode thread), unless the loop is gone."""
    with contextlib.suppress(RuntimeError):  # closed: nobody waits any more
        loop.call_soon_threadsafe(callback, *args)


def _read_pages(items: list[pages.Item], now: float) -> list[pages.Outcome]:
    """:func:`pages.read_pages` on the decode thread, then Arrow's memory freed there given
    back (see :func:`memory.release_arrow`): without it, what one batch of bodies took
    stays resident (about 45 MB) beside everything the job holds."""
    try:
        return pages.read_pages(items, now)
    finally:
        memory.release_arrow()


class _Reads:
    """Bodies waiting for the decode thread, read together whenever it is free."""

    def __init__(self, now: float) -> None:
        self.now = now
        self.waiting: list[tuple[KlinePage, bytes, asyncio.Future[Any]]] = []
        self.busy = False

    def read(self, page: KlinePage, body: bytes) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[Any] = loop.create_future()
        self.waiting.append((page, body, done))
        if not self.busy:
            self._submit(loop)
        return done

    def _submit(self, loop: asyncio.AbstractEventLoop) -> None:
        batch, self.waiting = self.waiting[:DECODE_BATCH], self.waiting[DECODE_BATCH:]
        self.busy = True
        items = [(page, body, None) for page, body, _ in batch]
        work = _DECODER.submit(_read_pages, items, self.now)
        work.add_done_callback(lambda w: _soon(loop, self._done, loop, batch, w))

    def _done(
        self,
        loop: asyncio.AbstractEventLoop,
        batch: list[tuple[KlinePage, bytes, asyncio.Future[Any]]],
        work: Future[list[Any]],
    ) -> None:
        self.busy = False
        error = work.exception()
        results = [None] * len(batch) if error is not None else work.result()
        for (_, _, done), result in zip(batch, results, strict=True):
            if done.done():  # its call was cancelled meanwhile
                continue
            if error is not None:
                done.set_exception(error)
            else:
                done.set_result(result)
        if self.waiting:
            self._submit(loop)


@dataclass
class _Series:
    """Progress of one code's pages in this job."""

    got: int = 0
    pages: int = 0


@dataclass
class KlineJob:
    """History through ``/kline``: chains of pages per code (see :mod:`planner`).

    Each answer is read once, on the decode thread (:meth:`digest`), into arrays; the event
    loop only reads ``ret`` and paces calls. With a ``store``, each page is written to it
    within moments of arriving (so a killed job resumes from there), at most
    :data:`MAX_BACKLOG` answers behind. Without one, a code's pages are kept as arrays until
    its chain ends, then sorted and trimmed together. Either way :meth:`frame` builds the
    frame once, in the caller's order. Call :meth:`settle` after each run, before planning
    from the store.
    """

    req: KlineRequest
    plan: Plan
    store: BarStore | None = None
    #: The market clock when the job started: decides which bar is still forming.
    now: float = 0.0
    endpoint: str = KLINE
    series: dict[str, _Series] = field(default_factory=dict)
    #: Answers read and not yet written (with a store), and the most there ever were.
    backlog: int = 0
    backlog_peak: int = 0
    #: Without a store: answers of chains still running, by code; then of finished ones.
    _running: dict[str, list[answers.Arrived]] = field(default_factory=dict)
    _finished: list[answers.Arrived] = field(default_factory=list)
    #: With a store: answers not yet handed over to be written.
    _arrived: list[answers.Arrived] = field(default_factory=list)
    #: Work handed to the decode thread and not yet collected; the series it gave back.
    _work: list[Future[dict[str, Arrays]]] = field(default_factory=list)
    _assembled: dict[str, Arrays] = field(default_factory=dict)
    #: Without a store: the frame :meth:`frame` built (its series are gone from _assembled).
    _built: pd.DataFrame | None = None
    #: Codes with an answer that could not be used, and bars not believed by code and reason
    #: (filled in as answers are read).
    _bad: dict[str, MalformedResponse] = field(default_factory=dict)
    _dropped: dict[str, Counter[str]] = field(default_factory=dict)
    #: Codes whose answer showed that ``kline_timestamp_end`` was ignored: paging stopped.
    unpaged: set[str] = field(default_factory=set)
    _reads: _Reads | None = None
    #: Without a store, for a count of bars: where each series is put once assembled (see
    #: answers.Slab), and whether the request could have none.
    _slab: answers.Slab | None = None
    _unslabbed: bool = False
    _room: asyncio.Event | None = None
    #: With a store: the last batch handed to the writer thread, and the timer that hands
    #: over the answers that wait (see _write_later).
    _writing: Future[Any] | None = None
    _timer: asyncio.TimerHandle | None = None

    @property
    def rejected(self) -> list[Failure]:
        """Failure rows for what the answers held that could not be believed.

        ``unreadable``: a code with an answer that could not be used; none of its bars are
        in :meth:`frame` without a store (a series with a hole), nor written from that answer
        on with one. ``bad-bars``: a code some of whose bars were dropped (or sent twice with
        different values), counted by reason; its other bars are kept.
        """
        ivl = str(self.req.interval)
        rows = [unreadable(code, ivl, KLINE, exc) for code, exc in self._bad.items()]
        rows += [
            bad_bars(code, ivl, KLINE, counts)
            for code, counts in self._dropped.items()
            if code not in self._bad
        ]
        return rows

    def calls(self, pages: Iterable[KlinePage]) -> list[Call]:
        return [self._call(page) for page in pages]

    def _call(self, page: KlinePage) -> Call:
        return Call(f"{page.code.path}/kline", page, ((page.code.code, str(page.interval)),))

    def request(self, call: Call) -> tuple[dict[str, str], None]:
        page: KlinePage = call.payload
        data = wire.kline_data(page.code.code, page.interval.kline_type, page.end_ts, page.num)
        return {"query": wire.query_param(data, wire.new_trace())}, None

    # ------------------------------------------------------------------------ answers

    async def digest(self, call: Call, body: bytes) -> PageRead:
        """Read a ``ret`` 200 answer on the decode thread (with others that wait), once the
        backlog has room for it. Raises MalformedResponse for a body that is no envelope."""
        reserved = self.store is not None
        if reserved:
            await self._make_room()
            self.backlog += 1
            self.backlog_peak = max(self.backlog_peak, self.backlog)
        if self._reads is None:
            self._reads = _Reads(self.now)
        try:
            read = await self._reads.read(call.payload, body)
        except BaseException:
            self._release(reserved)
            raise
        if isinstance(read, (MalformedResponse, wire.Misread)):
            self._release(reserved)
            raise read
        read.reserved = reserved
        return read

    async def _make_room(self) -> None:
        while self.backlog >= MAX_BACKLOG:
            self._hand_over(force=True)  # what waits to be written, so that room is made
            if self._room is None:
                self._room = asyncio.Event()
            self._room.clear()
            await self._room.wait()

    def _release(self, n: int) -> None:
        """Free ``n`` places in the backlog (answers written, or never to be)."""
        if n:
            self.backlog -= n
            if self._room is not None:
                self._room.set()

    def on_ok(self, call: Call, envelope: wire.Envelope, body: bytes) -> list[Call]:
        """Take a ``ret`` 200 answer: its data read by :meth:`digest`, or (if it was not)
        read here; return the chain's next page, if any."""
        page: KlinePage = call.payload
        code = page.code.code
        read = envelope.data
        if not isinstance(read, PageRead):
            (read,) = pages.read_pages([(page, body, envelope)], self.now)
            assert isinstance(read, PageRead)  # the envelope was read whole
        if code in self._bad or read.error is not None:
            # An answer that cannot be used: the series stops there (and at any later page).
            if read.error is not None:
                self._bad.setdefault(code, read.error)
            self._release(read.reserved)
            return []
        for name, counts in read.dropped.items():
            self._dropped.setdefault(name, Counter()).update(counts)
        stamps, got = read.stamps, read.got
        # Bars newer than the end asked for: AllTick ignored kline_timestamp_end and answered
        # the newest bars, as for 0 ("only forex, precious metals, and cryptocurrencies
        # support timestamp input", kline.mdx). Whatever the asset class, the answer decides:
        # the bars are kept as what they are, and the chain stops (the same end would bring
        # the same bars back); completeness.measure() reports what is missing.
        ignored = bool(page.end_ts and read.newest is not None) and read.newest > page.end_ts
        if ignored:
            self.unpaged.add(code)
            page = replace(page, end_ts=0)
        state = self.series.setdefault(code, _Series())
        state.pages += 1
        state.got += got
        arrived = answers.Arrived(page, read.bars, stamps.size, got, read.reserved)
        if self.store is not None:
            self._arrived.append(arrived)
        elif stamps.size:
            self._running.setdefault(code, []).append(arrived)
        following = None
        if read.oldest is not None and not ignored:
            following = planner.next_page(page, self.plan, got, read.oldest)
        if following is None and self.store is None:  # the series can be assembled
            self._finished += self._running.pop(code, [])
        self._hand_over()
        return [] if following is None else [self._call(following)]

    def max_body(self, call: Call) -> int:
        return bodies.bound(call.payload.num, bodies.BAR_BYTES)

    def split(self, call: Call) -> list[Call]:
        page: KlinePage = call.payload
        if page.num <= 1:
            return []
        # A 603 on one code means fewer bars per call than the table says: halve the page.
        return [self._call(replace(page, num=page.num // 2))]

    # ------------------------------------------------------------------------ the decode thread

    def _hand_over(self, force: bool = False) -> None:
        """Give the waiting work to its thread: without a store, to the decode thread if it
        is idle or enough answers wait; with one, to the writer when it is idle and
        :data:`WRITE_BATCH` answers wait, else :data:`WRITE_DELAY` after the first waited (or
        when the backlog is full). Each batch is written in one transaction."""
        waiting = len(self._arrived) + len(self._finished)
        if not waiting:
            return
        busy = self._writing if self.store is not None else self._work[-1] if self._work else None
        idle = busy is None or busy.done()
        if self.store is not None and not (force or (waiting >= WRITE_BATCH and idle)):
            self._write_later()
            return
        if not (force or idle or waiting >= DECODE_BATCH):
            return
        if self.store is not None:
            written = sum(a.reserved for a in self._arrived)
            work = _WRITER.submit(answers.record, self.store, self._arrived, self.now)
            self._arrived = []
            self._writing = work
            self._on_written(work, written)
        else:
            if self._slab is None and not self._unslabbed:
                self._slab = answers.Slab.for_request(self.req)
                self._unslabbed = self._slab is None
            found = self.now, self._bad, self._dropped, self._slab
            work = _DECODER.submit(answers.assemble, self._finished, self.req, *found)
            self._finished = []
        self._work.append(work)

    def _write_later(self) -> None:
        """Hand the waiting answers to the writer :data:`WRITE_DELAY` from now, unless enough
        of them go before (or at once, with no event loop to wait on)."""
        if self._timer is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._hand_over(force=True)
            return
        self._timer = loop.call_later(WRITE_DELAY, self._write_now)

    def _write_now(self) -> None:
        self._timer = None
        self._hand_over(force=True)

    def _on_written(self, work: Future[Any], written: int) -> None:
        """Free the backlog's places of ``written`` answers once ``work`` has written them."""
        if not written:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop: nobody can be waiting for room
            self._release(written)
            return
        work.add_done_callback(lambda _: _soon(loop, self._written, written))

    def _written(self, n: int) -> None:
        self._release(n)
        if self._arrived:  # what came while the thread was busy
            self._hand_over()

    def flush(self) -> None:
        """Hand everything still waiting to the decode thread (even if the run stopped early:
        nothing fetched is lost)."""
        if self.store is None:  # chains that failed part way keep what they got
            for code in list(self._running):
                self._finished += self._running.pop(code)
        self._hand_over(force=True)

    def _collect(self) -> list[Future[dict[str, Arrays]]]:
        self.flush()
        work, self._work = self._work, []
        return work

    async def settle(self) -> None:
        """Wait, without blocking the event loop, until every answer so far is decoded (and
        stored)."""
        for work in self._collect():
            self._assembled.update(await asyncio.wrap_future(work))

    def frame(self) -> pd.DataFrame:
        """Every bar received (or stored), trimmed to the request, in the caller's order.

        Without a store, the series are moved into the frame as it is built (so that it
        costs its own size once, not twice), and later calls return the same frame. With one,
        every series of the request is read from the store.
        """
        for work in self._collect():
            self._assembled.update(work.result())
        if self.store is not None:
            fetched = bool(self.series)
            if fetched:  # pages were fetched (and written): let their memory go first, and
                # the writer's page cache (on its thread: SQLite's caches are a connection's)
                _WRITER.submit(self.store.shrink).result()
                memory.give_back()
            self._built = answers.read_request(self.store, self.req, self.now, fetched=fetched)
            return self._built
        if self._slab is not None:  # the series are in place already (see answers.Slab)
            slab, self._slab = self._slab, None
            self._built = slab.frame(str(self.req.interval))
            return self._built
        if self._built is not None and not self._assembled:
            return self._built
        if self._built is None or self._assembled:
            self._built = answers.build_frame(
                self._assembled, self.req.code_order, str(self.req.interval)
            )
        return self._built

    def forget(self, codes: Iterable[str]) -> None:
        """Read these codes from the store again at the next :meth:`frame` (their series were
        found damaged and fetched again): with a store, :meth:`frame` reads every series."""

    @property
    def attempts(self) -> dict[str, int]:
        """Calls that brought an answer, per code (what a shortfall's failure row reports)."""
        return {code: state.pages for code, state in self.series.items()}


@dataclass
class Fetched:
    """What fetching one k-line request brought: its bars, its failure rows, the calls that
    brought an answer per code, and the codes whose end time AllTick ignored
    (:attr:`KlineJob.unpaged`), which completeness measures like stocks."""

    data: pd.DataFrame
    failures: list[Failure]
    attempts: dict[str, int] = field(default_factory=dict)
    unpaged: set[str] = field(default_factory=set)
