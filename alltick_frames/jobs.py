"""The kinds of work the runner drives: what each call asks, and what its answer means."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd

from alltick_frames import frames, planner, wire
from alltick_frames.codes import CodeInfo
from alltick_frames.errors import Failure, MalformedResponse
from alltick_frames.intervals import Interval
from alltick_frames.planner import BatchChunk, KlinePage, KlineRequest
from alltick_frames.plans import BATCH_KLINE, KLINE, Plan
from alltick_frames.runner import Call

#: Bodies decoded together: batching is what makes decoding fast (see frames.py).
DECODE_BATCH = 128

#: A pageable series that stops this long after the requested start ran out of history
#: (weekend and holiday gaps stay well inside it).
HISTORY_TOLERANCE = 4 * 86400


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
    """Progress of one code's page chain."""

    got: int = 0
    oldest: int | None = None
    pages: int = 0


@dataclass
class KlineJob:
    """History through ``/kline``: a chain of pages per code (see :mod:`planner`)."""

    req: KlineRequest
    plan: Plan
    endpoint: str = KLINE
    series: dict[str, _Series] = field(default_factory=dict)
    _bodies: list[bytes] = field(default_factory=list)
    _frames: list[pd.DataFrame] = field(default_factory=list)

    def calls(self, codes: Sequence[CodeInfo]) -> list[Call]:
        return [self._call(planner.first_page(self.req, c, self.plan)) for c in codes]

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
            raise MalformedResponse(msg=f"unexpected /kline data: {exc!r}") from None
        state = self.series.setdefault(page.code.code, _Series())
        state.pages += 1
        state.got += len(stamps)
        if stamps:
            oldest = min(stamps)
            state.oldest = oldest if state.oldest is None else min(state.oldest, oldest)
            self._bodies.append(body)
            if len(self._bodies) >= DECODE_BATCH:
                self._flush()
        following = (
            planner.next_page(self.req, page, self.plan, state.got, len(stamps), state.oldest)
            if stamps
            else None
        )
        return [] if following is None else [self._call(following)]

    def split(self, call: Call) -> list[Call]:
        page: KlinePage = call.payload
        if page.num <= 1:
            return []
        # A 603 on one code means fewer bars per call than the table says: halve the page.
        return [self._call(KlinePage(page.code, page.interval, page.end_ts, page.num // 2))]

    def _shortfalls(self, data: pd.DataFrame) -> list[Failure]:
        """What the user asked for but the API could not give: never a silent gap."""
        req, plan = self.req, self.plan
        rows = data["code"].value_counts() if not data.empty else pd.Series(dtype=int)
        out = []
        for code in req.codes:
            state = self.series.get(code.code)
            if state is None:  # failed outright: the runner has its row
                continue
            kind = "history-limit" if code.pageable else "not-pageable"
            got = int(rows.get(code.code, 0))
            detail = None
            if req.count is not None and got < req.count:
                detail = f"asked for {req.count} bars, {got} could be fetched"
            elif req.start is not None and state.oldest is not None:
                gap = state.oldest - req.start
                full = state.got >= plan.kline_bars
                if (not code.pageable and gap > 0 and full) or (
                    code.pageable and gap > max(HISTORY_TOLERANCE, req.interval.seconds)
                ):
                    oldest = pd.Timestamp(state.oldest, unit="s", tz="UTC")
                    detail = f"no bars before {oldest:%Y-%m-%d %H:%M}Z could be fetched"
            if detail and not code.pageable:
                detail += f" (stocks serve only their latest {plan.kline_bars} bars)"
            if detail:
                out.append(
                    Failure(
                        code=code.code,
                        interval=str(req.interval),
                        endpoint=KLINE,
                        ret=None,
                        msg=detail,
                        kind=kind,
                        attempts=state.pages,
                    )
                )
        return out

    def _flush(self) -> None:
        if self._bodies:
            self._frames.append(frames.decode_kline_bodies(self._bodies))
            self._bodies = []

    def frame(self) -> tuple[pd.DataFrame, list[Failure]]:
        """Every bar received, trimmed to the request, in the caller's code order; and the
        shortfall rows for codes that got less than they asked for."""
        self._flush()
        data = trim(frames.finalize_klines(self._frames, self.req.code_order), self.req)
        return data, self._shortfalls(data)


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

    endpoint: str = BATCH_KLINE
    _bodies: list[bytes] = field(default_factory=list)
    left_out: list[Failure] = field(default_factory=list)

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
            raise MalformedResponse(msg=f"unexpected /batch-kline data: {exc!r}") from None
        self._bodies.append(body)
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
        data = frames.decode_batch_kline_bodies(self._bodies) if self._bodies else None
        order = list(dict.fromkeys(c.code for c, _ in groups))
        data = frames.finalize_klines([] if data is None else [data], order)
        wanted = pd.MultiIndex.from_tuples([(c.code, str(i)) for c, i in groups])
        data = data[pd.MultiIndex.from_frame(data[["code", "interval"]]).isin(wanted)]
        return data.groupby(["code", "interval"], sort=False).tail(count).reset_index(drop=True)
