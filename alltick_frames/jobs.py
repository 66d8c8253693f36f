"""The kinds of work the runner drives: what each call asks, and what its answer means."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace

import orjson
import pandas as pd

from alltick_frames import cached, frames, planner, wire
from alltick_frames.codes import CodeInfo
from alltick_frames.errors import Failure, MalformedResponse
from alltick_frames.intervals import BY_KLINE_TYPE, Interval
from alltick_frames.planner import BatchChunk, KlinePage, KlineRequest
from alltick_frames.plans import BATCH_KLINE, KLINE, Plan
from alltick_frames.runner import Call
from alltick_frames.store import BarStore

#: Most bodies decoded together: batching is what makes decoding fast (see frames.py).
DECODE_BATCH = 128

#: Finished series are decoded, sorted and trimmed off the event loop while later calls are
#: still paced (Arrow's JSON reader releases the GIL), so that little is left to do after the
#: last answer. One thread keeps batches in arrival order.
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


#: Finished series by code, each sorted and trimmed; and the codes whose bars could not be read.
_Assembled = tuple[dict[str, pd.DataFrame], dict[str, MalformedResponse]]


def _assemble(items: Sequence[tuple[str, bytes]], req: KlineRequest) -> _Assembled:
    """Decode finished series' ``(code, body)`` items into one clean frame per code.

    A code with an unreadable page would have a hole, so none of its bars are kept.
    """
    decoded, bad = decode_each(items, frames.decode_kline_bodies)
    data = trim(frames.finalize_klines([decoded], []), req)
    by_code = data.groupby("code", sort=False, observed=True)
    return {code: bars for code, bars in by_code if code not in bad}, bad


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

    With a ``store``, every page is written to it the moment it arrives (so a killed job
    resumes from there) and the result is read back from it. Without one, a code's pages are
    kept until its chain ends; the finished series are then decoded, sorted and trimmed
    together on the decode thread (as soon as it is free, or once ``DECODE_BATCH`` bodies
    wait), and :meth:`frame` only has to put them in the caller's order.
    """

    req: KlineRequest
    plan: Plan
    store: BarStore | None = None
    #: The market clock when the job started: decides which bar is still forming.
    now: float = 0.0
    endpoint: str = KLINE
    series: dict[str, _Series] = field(default_factory=dict)
    #: Codes whose bars could not be read: failure rows, and no partial series for them.
    unreadable: list[Failure] = field(default_factory=list)
    #: Bodies of chains still running, by code; then of finished ones, waiting to be decoded.
    _running: dict[str, list[bytes]] = field(default_factory=dict)
    _finished: list[tuple[str, bytes]] = field(default_factory=list)
    _assembled: list[Future[_Assembled]] = field(default_factory=list)

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
        state = self.series.setdefault(page.code.code, _Series())
        state.pages += 1
        state.got += len(stamps)
        if self.store is not None:
            try:
                decoded = frames.decode_kline_bodies([body]) if stamps else frames.empty_klines()
            except MalformedResponse as exc:
                self.unreadable.append(unreadable(page.code.code, str(page.interval), KLINE, exc))
                return []
            decoded = frames.finalize_klines([decoded], [page.code.code])
            cached.record_page(self.store, page, decoded, self.now, len(stamps))
        elif stamps:
            self._running.setdefault(page.code.code, []).append(body)
        following = planner.next_page(page, self.plan, len(stamps), min(stamps)) if stamps else None
        if following is not None:
            return [self._call(following)]
        if self.store is None:
            self._finish(page.code.code)
        return []

    def split(self, call: Call) -> list[Call]:
        page: KlinePage = call.payload
        if page.num <= 1:
            return []
        # A 603 on one code means fewer bars per call than the table says: halve the page.
        return [self._call(replace(page, num=page.num // 2))]

    def _finish(self, code: str) -> None:
        """``code``'s chain has ended: queue its bodies, and decode if the thread is free."""
        self._finished += [(code, body) for body in self._running.pop(code, [])]
        idle = not self._assembled or self._assembled[-1].done()
        if idle or len(self._finished) >= DECODE_BATCH:
            self._decode()

    def _decode(self) -> None:
        if self._finished:
            self._assembled.append(_DECODER.submit(_assemble, self._finished, self.req))
            self._finished = []

    def frame(self) -> pd.DataFrame:
        """Every bar received (or stored), trimmed to the request, in the caller's order."""
        if self.store is not None:
            return cached.read_frame(self.store, self.req)  # trimmed as it is read
        for code in list(self._running):  # chains that failed part way keep what they got
            self._finish(code)
        self._decode()
        series: dict[str, pd.DataFrame] = {}  # a code's chain ends once: one batch holds it
        ivl = str(self.req.interval)
        for batch in self._assembled:
            assembled, bad = batch.result()
            series.update(assembled)
            self.unreadable += [unreadable(code, ivl, KLINE, exc) for code, exc in bad.items()]
        parts = [series[code] for code in self.req.code_order if code in series]
        return pd.concat(parts, ignore_index=True) if parts else frames.empty_klines()

    def shortfalls(self, data: pd.DataFrame, failed: set[str]) -> list[Failure]:
        """What was asked for but could not be fetched: never a silent gap.

        A count request that got fewer bars; a range whose oldest bar starts well after the
        range does; with the cache, a range with a hole the store could not fill (a stock's
        older history behind its latest 500 bars, say).
        """
        req = self.req
        by_code = data.groupby("code", observed=True)["timestamp"]
        rows, oldest = by_code.size().to_dict(), by_code.min().to_dict()
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
            detail = None
            if req.count is not None and got < req.count:
                detail = f"asked for {req.count} bars, {got} could be fetched"
            elif req.start is not None and first is None and top - req.start > tolerance:
                detail = "no bars in the requested range could be fetched"
            elif req.start is not None and first is not None:
                if first.timestamp() - req.start > tolerance:
                    detail = f"no bars before {first:%Y-%m-%d %H:%M}Z could be fetched"
                elif holes.get(code.code):
                    lo, hi = holes[code.code][0]
                    a, b = (pd.Timestamp(t, unit="s", tz="UTC") for t in (lo, hi))
                    detail = f"no bars between {a:%Y-%m-%d %H:%M}Z and {b:%Y-%m-%d %H:%M}Z"
            if detail is None:
                continue
            if not code.pageable:
                detail += f" (stocks serve only their latest {self.plan.kline_bars} bars)"
            state = self.series.get(code.code)
            out.append(
                Failure(
                    code=code.code,
                    interval=str(req.interval),
                    endpoint=KLINE,
                    msg=detail,
                    kind="history-limit" if code.pageable else "not-pageable",
                    attempts=state.pages if state else 0,
                )
            )
        return out


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

    #: With a store, each answer also refreshes the cached series (see cached.record_latest_many).
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
            cached.record_latest_many(self.store, answer, wanted, self.now)
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
