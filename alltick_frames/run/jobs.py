"""The kinds of work the runner drives: what each call asks, and what its answer means."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import orjson
import pandas as pd

from alltick_frames import frames
from alltick_frames.core import planner, wire
from alltick_frames.core.codes import CodeInfo
from alltick_frames.core.errors import Failure, MalformedResponse
from alltick_frames.core.intervals import BY_KLINE_TYPE, Interval
from alltick_frames.core.planner import BatchChunk, KlinePage, KlineRequest
from alltick_frames.core.plans import BATCH_KLINE, KLINE, Plan
from alltick_frames.frames import checks
from alltick_frames.run import answers, bodies
from alltick_frames.run.runner import Call
from alltick_frames.store import BarStore
from alltick_frames.store.series import read_frame, record_latest_many

#: Most bodies decoded together: batching is what makes decoding fast (see alltick_frames.frames).
DECODE_BATCH = 128

#: Bars are decoded (and stored) off the event loop, so that pacing stays exact while they
#: arrive (Arrow's JSON reader releases the GIL) and little is left to do after the last
#: answer. One thread keeps the work in arrival order.
_DECODER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="alltick-decode")


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


def _starts(page: KlinePage, envelope: wire.Envelope) -> np.ndarray:
    """The bar starts (Unix seconds) of a ``/kline`` answer, once it is known to answer
    ``page``; MalformedResponse says why not (not the documented shape, labelled with
    another code or interval, a start that is not a whole number)."""
    data = envelope.data
    bars = data.get("kline_list") if isinstance(data, dict) else data
    if not bars:
        return np.empty(0, np.int64)
    if not isinstance(data, dict) or not isinstance(bars, list):
        raise MalformedResponse("the answer's data holds no kline_list", endpoint=KLINE)
    # A label left out is the request's (the quick start's documented answer has none).
    code, kline_type = data.get("code"), wire.as_int(data.get("kline_type"))
    if code not in (None, page.code.code) or kline_type not in (None, page.interval.kline_type):
        raise MalformedResponse(
            f"the answer is labelled {str(code)[:40]!r} kline_type {kline_type}, not the "
            f"{page.code.code} {page.interval} (kline_type {page.interval.kline_type}) asked "
            "for; its bars were dropped",
            endpoint=KLINE,
        )
    try:
        stamps = np.array([int(bar["timestamp"]) for bar in bars], np.int64)
    except (KeyError, TypeError, ValueError, OverflowError):
        raise MalformedResponse(
            "a bar's timestamp is missing or not a whole number", endpoint=KLINE
        ) from None
    return checks.epoch_seconds(stamps)


def outside_plan(codes: Sequence[CodeInfo], plan: Plan) -> list[CodeInfo]:
    """Codes the plan's fixed basket or markets cannot see: asking would only earn a 604."""
    if plan.symbols is not None:
        return [c for c in codes if c.code not in plan.symbols]
    if plan.markets is not None:
        return [c for c in codes if c.market not in plan.markets]
    return []


def unauthorized(
    codes: Sequence[CodeInfo], plan: Plan, endpoint: str, interval: str | None
) -> list[Failure]:
    return [
        Failure(
            code=c.code,
            interval=interval,
            endpoint=endpoint,
            ret=604,
            msg=f"code unauthorized: not in the {plan.name} plan (no call made)",
            kind="code",
            attempts=0,
        )
        for c in codes
    ]


@dataclass
class _Series:
    """Progress of one code's pages in this job."""

    got: int = 0
    pages: int = 0


@dataclass
class KlineJob:
    """History through ``/kline``: chains of pages per code (see :mod:`planner`).

    Work goes to the decode thread as soon as it is free (or once ``DECODE_BATCH`` bodies
    wait), so that the event loop only paces calls and little is left after the last answer.
    With a ``store``, each page is written to it there within moments of arriving (so a killed
    job resumes from there), and a code's series is read back from it once its chain has
    ended. Without one, a code's pages are kept until its chain ends, then decoded, sorted and
    trimmed together. Either way :meth:`frame` mostly puts finished series in the caller's
    order. Call :meth:`settle` after each run, before planning from the store.
    """

    req: KlineRequest
    plan: Plan
    store: BarStore | None = None
    #: The market clock when the job started: decides which bar is still forming.
    now: float = 0.0
    endpoint: str = KLINE
    series: dict[str, _Series] = field(default_factory=dict)
    #: Without a store: answers of chains still running, by code; then of finished ones.
    _running: dict[str, list[answers.Arrived]] = field(default_factory=dict)
    _finished: list[answers.Arrived] = field(default_factory=list)
    #: With a store: answers not yet handed over; codes whose chains ended, to read back
    #: after their pages are written; codes with pages written since they were read back.
    _arrived: list[answers.Arrived] = field(default_factory=list)
    _ended: list[CodeInfo] = field(default_factory=list)
    _unread: set[str] = field(default_factory=set)
    #: Work handed to the decode thread and not yet collected; what it gave back.
    _work: list[Future[dict[str, pd.DataFrame]]] = field(default_factory=list)
    _assembled: dict[str, pd.DataFrame] = field(default_factory=dict)
    #: Codes with an answer that could not be used, and bars not believed by code and reason
    #: (filled in by the decode thread, and by :meth:`on_ok` for mislabelled answers).
    _bad: dict[str, MalformedResponse] = field(default_factory=dict)
    _dropped: dict[str, Counter[str]] = field(default_factory=dict)
    #: Codes whose answer showed that ``kline_timestamp_end`` was ignored: paging stopped.
    unpaged: set[str] = field(default_factory=set)

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

    def on_ok(self, call: Call, envelope: wire.Envelope, body: bytes) -> list[Call]:
        page: KlinePage = call.payload
        code = page.code.code
        if code in self._bad:
            return []  # an earlier page could not be read: the series stops there
        try:
            stamps = _starts(page, envelope)
        except MalformedResponse as exc:
            self._bad.setdefault(code, exc)
            return []
        if stamps.size:
            body = with_request(body, envelope, page)
        # The server's count, believed or not, says if the history ran out. Paging goes by
        # the *plausible* starts: a negative or misaligned one would page to nowhere, a
        # far-future one would pass for an ignored end time (its bar is dropped and counted on
        # the decode thread).
        got = int(np.unique(stamps).size)
        step = page.interval.seconds if checks.on_grid(code, str(page.interval)) else 60
        starts = stamps[checks.plausible_starts(stamps, step, checks.latest_start(self.now))]
        # Bars newer than the end asked for: AllTick ignored kline_timestamp_end and answered
        # the newest bars, as for 0 ("only forex, precious metals, and cryptocurrencies
        # support timestamp input", kline.mdx). Whatever the asset class, the answer decides:
        # the bars are kept as what they are, and the chain stops (the same end would bring
        # the same bars back); completeness.measure() reports what is missing.
        ignored = bool(page.end_ts and starts.size) and int(starts.max()) > page.end_ts
        if ignored:
            self.unpaged.add(code)
            page = replace(page, end_ts=0)
        state = self.series.setdefault(code, _Series())
        state.pages += 1
        state.got += got
        arrived = answers.Arrived(page, body, stamps.size, got)
        if self.store is not None:
            self._arrived.append(arrived)
            self._unread.add(code)
        elif stamps.size:
            self._running.setdefault(code, []).append(arrived)
        following = None
        if starts.size and not ignored:
            following = planner.next_page(page, self.plan, got, int(starts.min()))
        if following is None:  # the chain has ended: its series can be assembled
            if self.store is not None:
                self._ended.append(page.code)
                self._unread.discard(code)
            else:
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

    def _hand_over(self, force: bool = False) -> None:
        """Give the waiting work to the decode thread if it is idle, or enough bodies wait."""
        waiting = len(self._arrived) + len(self._finished)
        if not (waiting or self._ended):
            return
        idle = not self._work or self._work[-1].done()
        if not (force or idle or waiting >= DECODE_BATCH):
            return
        found = self.now, self._bad, self._dropped
        if self.store is not None:
            # A code whose two chains (a gap below, a refresh on top) ended meanwhile is read
            # back once: the store reads each series once, however often it is asked for.
            ended = replace(self.req, codes=tuple(dict.fromkeys(self._ended)))
            work = _DECODER.submit(answers.record, self.store, self._arrived, *found, ended)
            self._arrived, self._ended = [], []
        else:
            work = _DECODER.submit(answers.assemble, self._finished, self.req, *found)
            self._finished = []
        self._work.append(work)

    def flush(self) -> None:
        """Hand everything still waiting to the decode thread (even if the run stopped early:
        nothing fetched is lost)."""
        if self.store is None:  # chains that failed part way keep what they got
            for code in list(self._running):
                self._finished += self._running.pop(code)
        self._hand_over(force=True)

    def _collect(self) -> list[Future[dict[str, pd.DataFrame]]]:
        self.flush()
        work, self._work = self._work, []
        return work

    async def settle(self) -> None:
        """Wait, without blocking the event loop, until every answer so far is decoded (and
        stored)."""
        for work in self._collect():
            self._assembled.update(await asyncio.wrap_future(work))

    def frame(self) -> pd.DataFrame:
        """Every bar received (or stored), trimmed to the request, in the caller's order."""
        for work in self._collect():
            self._assembled.update(work.result())
        if self.store is not None:
            # Series no chain ended for (cached, refreshed, failed part way) are read now.
            rest = tuple(
                c for c in self.req.codes if c.code in self._unread or c.code not in self._assembled
            )
            for c in rest:
                self._assembled.pop(c.code, None)
            if rest and not self._assembled:  # all of them: already in the caller's order
                return read_frame(self.store, self.req)
            if rest:
                read = read_frame(self.store, replace(self.req, codes=rest))
                self._assembled.update(answers.by_code(read))
        parts = [self._assembled[c] for c in self.req.code_order if c in self._assembled]
        return pd.concat(parts, ignore_index=True) if parts else frames.empty_klines()

    def forget(self, codes: Iterable[str]) -> None:
        """Read these codes from the store again at the next :meth:`frame` (their series were
        found damaged and fetched again)."""
        for code in codes:
            self._assembled.pop(code, None)

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


def with_request(body: bytes, envelope: wire.Envelope, page: KlinePage) -> bytes:
    """A ``/kline`` answer's body, its ``code`` and ``kline_type`` taken from the request
    where the answer lacks them.

    The quick start's documented answer (``en/getting-started/process.mdx``) has bars but no
    ``code`` or ``kline_type``: the call that asked knows both. A body that carries them
    (every API reference example, and the emulator's) is returned as it is.
    """
    data: dict[str, Any] = envelope.data
    code, kline_type = data.get("code"), data.get("kline_type")
    if code and kline_type is not None:
        return body
    filled = {
        **data,
        "code": code or page.code.code,
        "kline_type": page.interval.kline_type if kline_type is None else kline_type,
    }
    return orjson.dumps({"ret": envelope.ret, "msg": envelope.msg, "data": filled})


def _batch_body(item: object) -> bytes:
    """A /batch-kline answer holding one group, to decode that group alone."""
    return orjson.dumps({"ret": 200, "msg": "ok", "data": {"kline_list": [item]}})


@dataclass
class BatchJob:
    """The newest 1–2 bars of many (code, interval) groups through ``/batch-kline``."""

    #: With a store, each answer also refreshes the cached series (see record_latest_many).
    store: BarStore | None = None
    now: float = 0.0
    endpoint: str = BATCH_KLINE
    left_out: list[Failure] = field(default_factory=list)
    #: Groups whose answer could not be used (``unreadable``) or had bars not believed
    #: (``bad-bars``, and the group is dropped).
    rejected: list[Failure] = field(default_factory=list)
    _frames: list[pd.DataFrame] = field(default_factory=list)

    @staticmethod
    def call(chunk: BatchChunk, reasks: int = 0) -> Call:
        items = tuple((c.code, str(i)) for c, i in chunk.groups)
        return Call(f"{chunk.groups[0][0].path}/batch-kline", chunk, items, reasks=reasks)

    def request(self, call: Call) -> tuple[None, bytes]:
        chunk: BatchChunk = call.payload
        groups = [(c.code, i.kline_type) for c, i in chunk.groups]
        return None, wire.post_body(wire.batch_kline_data(groups, chunk.num), wire.new_trace())

    def on_ok(self, call: Call, envelope: wire.Envelope, body: bytes) -> list[Call]:
        chunk: BatchChunk = call.payload
        groups = {(c.code, i.kline_type): (c, i) for c, i in chunk.groups}
        data = envelope.data
        items = data.get("kline_list") if isinstance(data, dict) else data
        if items and not isinstance(items, list):
            what = MalformedResponse("the answer's data holds no kline_list", endpoint=BATCH_KLINE)
            self.rejected += [
                unreadable(c.code, str(i), BATCH_KLINE, what) for c, i in groups.values()
            ]
            return []
        # Groups are matched by the code and kline_type they carry; any other group is junk.
        answered = {
            key: item
            for item in items or []
            if isinstance(item, dict)
            and (key := (item.get("code"), wire.as_int(item.get("kline_type")))) in groups
        }
        answer = self._believe(self._decode(body, answered), groups)
        self._frames.append(answer)
        if self.store is not None:
            wanted = {(c.code, str(i)) for c, i in chunk.groups}
            record_latest_many(self.store, answer, wanted, self.now)
        missing = tuple(g for key, g in groups.items() if key not in answered)
        if not missing:
            return []
        if call.reasks == 0:  # ask once more for what the server left out
            return [self.call(BatchChunk(missing, chunk.num), reasks=1)]
        self.left_out.extend(
            Failure(
                code=c.code,
                interval=str(i),
                endpoint=BATCH_KLINE,
                msg="left out of the answer twice",
                kind="left-out",
                attempts=call.attempts,
            )
            for c, i in missing
        )
        return []

    def _decode(self, body: bytes, answered: dict[tuple[str, int], Any]) -> pd.DataFrame:
        """The bars of the groups asked for; a group whose bars cannot be read gets a failure
        row alone."""
        try:
            return frames.decode_batch_kline_bodies([body])
        except MalformedResponse:
            pass
        items = [(key, _batch_body(item)) for key, item in answered.items()]
        decoded, bad = answers.decode_each(items, frames.decode_batch_kline_bodies)
        for (code, kline_type), exc in bad.items():
            self.rejected.append(unreadable(code, str(BY_KLINE_TYPE[kline_type]), BATCH_KLINE, exc))
        return decoded

    def _believe(
        self, decoded: pd.DataFrame, groups: dict[tuple[str, int], tuple[CodeInfo, Interval]]
    ) -> pd.DataFrame:
        """The asked groups' bars, sorted; a group with a bar not believed is dropped whole
        (its newest bar forms and the one before closed: one without the other would lie)."""
        wanted = {(c.code, str(i)) for c, i in groups.values()}
        pairs = pd.MultiIndex.from_frame(decoded[["code", "interval"]])
        decoded = decoded[pairs.isin(wanted)].reset_index(drop=True)
        checked = checks.check_bars(decoded, checks.latest_start(self.now))
        doubted = set()
        for (code, alias), counts in checked.problems.items():
            note = "" if set(counts) == {"conflict"} else "; the group's other bars too"
            self.rejected.append(bad_bars(code, alias, BATCH_KLINE, counts, note))
            doubted.add((code, alias))
        if doubted:
            pairs = pd.MultiIndex.from_frame(decoded[["code", "interval"]])
            checked.keep[pairs.isin(doubted)] = False
        order = list(dict.fromkeys(c.code for c, _ in groups.values()))
        return frames.finalize_klines([decoded[checked.keep]], order)

    def max_body(self, call: Call) -> int:
        chunk: BatchChunk = call.payload
        return bodies.bound(len(chunk.groups), bodies.GROUP_BYTES + chunk.num * bodies.BAR_BYTES)

    def split(self, call: Call) -> list[Call]:
        """Halve the call by codes, keeping each code's intervals together."""
        chunk: BatchChunk = call.payload
        codes = chunk.codes
        if len(codes) > 1:
            first = set(codes[: len(codes) // 2])
            halves = [
                tuple(g for g in chunk.groups if g[0].code in first),
                tuple(g for g in chunk.groups if g[0].code not in first),
            ]
        else:
            half = len(chunk.groups) // 2
            halves = [chunk.groups[:half], chunk.groups[half:]]
        return [self.call(BatchChunk(h, chunk.num), call.reasks) for h in halves if h]

    def frame(self, groups: Sequence[tuple[CodeInfo, Interval]], count: int) -> pd.DataFrame:
        """The newest ``count`` bars of each requested group, in the caller's order."""
        order = list(dict.fromkeys(c.code for c, _ in groups))
        data = frames.finalize_klines(self._frames, order)
        wanted = pd.MultiIndex.from_tuples([(c.code, str(i)) for c, i in groups])
        data = data[pd.MultiIndex.from_frame(data[["code", "interval"]]).isin(wanted)]
        return data.groupby(["code", "interval"], sort=False).tail(count).reset_index(drop=True)
