"""The kinds of work the runner drives: what each call asks, and what its answer means."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
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
from alltick_frames.run.runner import Call
from alltick_frames.store import BarStore
from alltick_frames.store.series import bar_arrays, read_frame, record_latest_many, record_page

#: Most bodies decoded together: batching is what makes decoding fast (see alltick_frames.frames).
DECODE_BATCH = 128

#: Bars are decoded (and stored) off the event loop, so that pacing stays exact while they
#: arrive (Arrow's JSON reader releases the GIL) and little is left to do after the last
#: answer. One thread keeps the work in arrival order.
_DECODER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="alltick-decode")

#: A pageable series that stops this long after the requested start ran out of history
#: (weekend and holiday gaps stay well inside it).
HISTORY_TOLERANCE = 4 * 86400


def unreadable(code: str, interval: str, endpoint: str, exc: MalformedResponse) -> Failure:
    """The failure row of a series whose bars came back in a form that cannot be read."""
    return Failure(
        code=code, interval=interval, endpoint=endpoint, kind="transport",
        msg=f"unreadable bars: {exc.msg}",
    )  # fmt: skip


def _assemble(
    items: Sequence[tuple[str, bytes]], req: KlineRequest, bad: dict[str, MalformedResponse]
) -> dict[str, pd.DataFrame]:
    """Decode finished series' ``(code, body)`` items into one clean frame per code.

    A code with an unreadable page would have a hole: it goes to ``bad``, and none of its
    bars are kept.
    """
    decoded, errors = decode_each(items, frames.decode_kline_bodies)
    bad.update(errors)
    series = _by_code(trim(frames.finalize_klines([decoded], []), req))
    return {code: bars for code, bars in series.items() if code not in bad}


def _runs(data: pd.DataFrame) -> tuple[dict[str, int], dict[str, pd.Timestamp]]:
    """Rows and oldest bar of each code in ``data``, whose codes come in runs, each oldest bar
    first (as :meth:`KlineJob.frame` returns them): a pass over the runs, not a group-by."""
    code = data["code"]
    starts = np.flatnonzero(code.ne(code.shift()).to_numpy(bool, na_value=True))
    names = code.iloc[starts].tolist()
    sizes = np.diff(np.append(starts, len(data))).tolist()
    return dict(zip(names, sizes, strict=True)), dict(
        zip(names, data["timestamp"].iloc[starts], strict=True)
    )


def _by_code(data: pd.DataFrame) -> dict[str, pd.DataFrame]:
    # iter(): a GroupBy has a .keys attribute, which dict() would take for a mapping's.
    return dict(iter(data.groupby("code", sort=False, observed=True)))


@dataclass(frozen=True, slots=True)
class _Arrived:
    """One ``/kline`` answer waiting to be written to the store."""

    page: KlinePage
    body: bytes
    rows: int  # bars in the body
    got: int  # distinct timestamps among them


def _record(
    store: BarStore,
    arrived: Sequence[_Arrived],
    now: float,
    bad: dict[str, MalformedResponse],
    ended: KlineRequest,
) -> dict[str, pd.DataFrame]:
    """Decode answers together and write each page to the store, in arrival order; then read
    back the series of ``ended`` (chains whose pages are all written by now), one frame per
    code.

    A code with an unreadable page goes to ``bad``, and none of its later pages are written.
    """
    items = [(str(k), a.body) for k, a in enumerate(arrived) if a.rows]
    decoded, errors = decode_each(items, frames.decode_kline_bodies)
    ts, vals = bar_arrays(decoded)
    offset = 0
    for k, a in enumerate(arrived):
        code = a.page.code.code
        if str(k) in errors:
            bad.setdefault(code, errors[str(k)])
            continue
        page = slice(offset, offset + a.rows)  # the decoder keeps the bodies' order
        offset += a.rows
        if code not in bad:
            record_page(store, a.page, (ts[page], vals[:, page]), now, a.got)
    return _by_code(read_frame(store, ended)) if ended.codes else {}


def decode_each(
    items: Sequence[tuple[str, bytes]], decode: Callable[[Sequence[bytes]], pd.DataFrame]
) -> tuple[pd.DataFrame, dict[str, MalformedResponse]]:
    """Decode ``(key, body)`` items together; if that fails, one by one, so that one bad body
    costs only its own key. Returns the frame of every good body and the bad keys' errors."""
    try:
        return decode([body for _, body in items]), {}
    except MalformedResponse:
        pass
    good, bad = [], {}
    for key, body in items:
        try:
            good.append(decode([body]))
        except MalformedResponse as exc:
            bad[key] = exc
    return pd.concat(good, ignore_index=True) if good else frames.empty_klines(), bad


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
    #: Without a store: bodies of chains still running, by code; then of finished ones.
    _running: dict[str, list[bytes]] = field(default_factory=dict)
    _finished: list[tuple[str, bytes]] = field(default_factory=list)
    #: With a store: answers not yet handed over; codes whose chains ended, to read back
    #: after their pages are written; codes with pages written since they were read back.
    _arrived: list[_Arrived] = field(default_factory=list)
    _ended: list[CodeInfo] = field(default_factory=list)
    _unread: set[str] = field(default_factory=set)
    #: Work handed to the decode thread and not yet collected; what it gave back.
    _work: list[Future[dict[str, pd.DataFrame]]] = field(default_factory=list)
    _assembled: dict[str, pd.DataFrame] = field(default_factory=dict)
    #: Codes whose bars could not be read (filled in by the decode thread).
    _bad: dict[str, MalformedResponse] = field(default_factory=dict)
    #: Codes whose answer showed that ``kline_timestamp_end`` was ignored: paging stopped.
    unpaged: set[str] = field(default_factory=set)

    @property
    def unreadable(self) -> list[Failure]:
        """Failure rows for the codes whose bars could not be read; none of their bars are
        in :meth:`frame` without a store (a series with a hole), nor written after the bad
        page with one."""
        ivl = str(self.req.interval)
        return [unreadable(code, ivl, KLINE, exc) for code, exc in self._bad.items()]

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
        try:
            bars = (envelope.data or {}).get("kline_list") or []
            stamps = {int(bar["timestamp"]) for bar in bars}
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise MalformedResponse(f"unexpected /kline data: {exc!r}", endpoint=KLINE) from None
        code = page.code.code
        if code in self._bad:
            return []  # an earlier page could not be read: the series stops there
        if bars:
            body = with_request(body, envelope, page)
        # Bars newer than the end asked for: AllTick ignored kline_timestamp_end and answered
        # the newest bars, as for 0 ("only forex, precious metals, and cryptocurrencies
        # support timestamp input", kline.mdx). Whatever the asset class, the answer decides:
        # the bars are kept as what they are, and the chain stops (the same end would bring
        # the same bars back); shortfalls() reports what is missing.
        ignored = bool(page.end_ts and stamps) and max(stamps) > page.end_ts
        if ignored:
            self.unpaged.add(code)
            page = replace(page, end_ts=0)
        state = self.series.setdefault(code, _Series())
        state.pages += 1
        state.got += len(stamps)
        if self.store is not None:
            self._arrived.append(_Arrived(page, body, len(bars), len(stamps)))
            self._unread.add(code)
        elif stamps:
            self._running.setdefault(code, []).append(body)
        following = None
        if stamps and not ignored:
            following = planner.next_page(page, self.plan, len(stamps), min(stamps))
        if following is None:  # the chain has ended: its series can be assembled
            if self.store is not None:
                self._ended.append(page.code)
                self._unread.discard(code)
            else:
                self._finished += [(code, body) for body in self._running.pop(code, [])]
        self._hand_over()
        return [] if following is None else [self._call(following)]

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
        if self.store is not None:
            ended = replace(self.req, codes=tuple(self._ended))
            work = _DECODER.submit(_record, self.store, self._arrived, self.now, self._bad, ended)
            self._arrived, self._ended = [], []
        else:
            work = _DECODER.submit(_assemble, self._finished, self.req, self._bad)
            self._finished = []
        self._work.append(work)

    def flush(self) -> None:
        """Hand everything still waiting to the decode thread (even if the run stopped early:
        nothing fetched is lost)."""
        if self.store is None:  # chains that failed part way keep what they got
            for code in list(self._running):
                self._finished += [(code, body) for body in self._running.pop(code)]
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
                self._assembled.update(_by_code(read))
        parts = [self._assembled[c] for c in self.req.code_order if c in self._assembled]
        return pd.concat(parts, ignore_index=True) if parts else frames.empty_klines()

    def forget(self, codes: Iterable[str]) -> None:
        """Read these codes from the store again at the next :meth:`frame` (their series were
        found damaged and fetched again)."""
        for code in codes:
            self._assembled.pop(code, None)

    def shortfalls(self, data: pd.DataFrame, failed: set[str]) -> list[Failure]:
        """What was asked for but could not be fetched: never a silent gap.

        A count request that got fewer bars; a range whose oldest bar starts well after the
        range does; with the cache, a range with a hole the store could not fill (a stock's
        older history behind its latest 500 bars, say). A code whose end time AllTick
        ignored (:attr:`unpaged`) is held to the range's exact start: its older bars were
        not missing from the market, they could not be asked for.
        """
        req = self.req
        rows, oldest = _runs(data)
        top = int(req.end if req.end is not None else self.now)
        tolerance = max(HISTORY_TOLERANCE, req.interval.seconds)
        holes: dict[str, list[tuple[int, int]]] = {}
        if self.store is not None and req.start is not None:
            keys = [(c.code, str(req.interval)) for c in req.codes]
            for (code, _), cov in self.store.coverage_many(keys).items():
                gaps = cov.gaps(req.start, top, forming=True) if req.start <= top else []
                holes[code] = [(lo, hi) for lo, hi in gaps if hi - lo > tolerance]
        out = []
        for code in req.codes:
            if code.code in failed:
                continue  # its failure row says why already
            got = int(rows.get(code.code, 0))
            first = oldest.get(code.code)
            unpaged = code.code in self.unpaged
            slack = 0 if unpaged else tolerance
            detail = None
            if req.count is not None and got < req.count:
                detail = f"asked for {req.count} bars, {got} could be fetched"
            elif req.start is not None and first is None and top - req.start > slack:
                detail = "no bars in the requested range could be fetched"
            elif req.start is not None and first is not None:
                if first.timestamp() - req.start > slack:
                    detail = f"no bars before {first:%Y-%m-%d %H:%M}Z could be fetched"
                elif holes.get(code.code):
                    lo, hi = holes[code.code][0]
                    a, b = (pd.Timestamp(t, unit="s", tz="UTC") for t in (lo, hi))
                    detail = f"no bars between {a:%Y-%m-%d %H:%M}Z and {b:%Y-%m-%d %H:%M}Z"
            if detail is None:
                continue
            if not code.pageable:
                detail += f" (stocks serve only their latest {self.plan.kline_bars} bars)"
            elif unpaged:
                detail += " (AllTick ignored the end time asked for: it serves the latest bars)"
            state = self.series.get(code.code)
            out.append(
                Failure(
                    code=code.code,
                    interval=str(req.interval),
                    endpoint=KLINE,
                    msg=detail,
                    kind="history-limit" if code.pageable and not unpaged else "not-pageable",
                    attempts=state.pages if state else 0,
                )
            )
        return out


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


def trim(data: pd.DataFrame, req: KlineRequest) -> pd.DataFrame:
    """Keep the bars inside the request: its range, or its newest ``count`` per code."""
    if data.empty:
        return data
    keep = pd.Series(True, index=data.index)
    if req.start is not None:
        keep &= data["timestamp"] >= pd.Timestamp(req.start, unit="s", tz="UTC")
    if req.end is not None:
        keep &= data["timestamp"] <= pd.Timestamp(req.end, unit="s", tz="UTC")
    data = data[keep]
    if req.count is not None:
        data = data.groupby("code", sort=False, observed=True).tail(req.count)
    return data.reset_index(drop=True)


@dataclass
class BatchJob:
    """The newest 1–2 bars of many (code, interval) groups through ``/batch-kline``."""

    #: With a store, each answer also refreshes the cached series (see record_latest_many).
    store: BarStore | None = None
    now: float = 0.0
    endpoint: str = BATCH_KLINE
    left_out: list[Failure] = field(default_factory=list)
    unreadable: list[Failure] = field(default_factory=list)
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
        try:
            answered = {
                (item["code"], int(item["kline_type"]))
                for item in (envelope.data or {}).get("kline_list") or []
            }
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise MalformedResponse(
                f"unexpected /batch-kline data: {exc!r}", endpoint=BATCH_KLINE
            ) from None
        answer = self._decode(envelope, body, chunk)
        self._frames.append(answer)
        if self.store is not None:
            wanted = {(c.code, str(i)) for c, i in chunk.groups}
            record_latest_many(self.store, answer, wanted, self.now)
        missing = tuple(g for g in chunk.groups if (g[0].code, g[1].kline_type) not in answered)
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

    def _decode(self, envelope: wire.Envelope, body: bytes, chunk: BatchChunk) -> pd.DataFrame:
        """This answer's bars; a group whose bars cannot be read gets a failure row alone."""
        try:
            decoded = frames.decode_batch_kline_bodies([body])
        except MalformedResponse:
            groups = [
                (f"{item.get('code')}\x00{item.get('kline_type')}", _batch_body(item))
                for item in envelope.data["kline_list"]
            ]
            decoded, bad = decode_each(groups, frames.decode_batch_kline_bodies)
            for key, exc in bad.items():
                code, kline_type = key.split("\x00")
                alias = str(BY_KLINE_TYPE.get(int(kline_type), kline_type))
                self.unreadable.append(unreadable(code, alias, BATCH_KLINE, exc))
        return frames.finalize_klines([decoded], chunk.codes)

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
