"""The kinds of work the runner drives: what each call asks, and what its answer means.

History through ``/kline`` is :class:`~alltick_frames.run.kline_job.KlineJob` (in a module of
its own, re-exported here); the newest bars through ``/batch-kline`` are :class:`BatchJob`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import pandas as pd

from alltick_frames import frames
from alltick_frames.core import wire
from alltick_frames.core.codes import CodeInfo
from alltick_frames.core.errors import Failure, MalformedResponse
from alltick_frames.core.intervals import BY_KLINE_TYPE, Interval
from alltick_frames.core.planner import BatchChunk
from alltick_frames.core.plans import BATCH_KLINE, Plan
from alltick_frames.frames import checks
from alltick_frames.run import answers, bodies
from alltick_frames.run.kline_job import (
    _DECODER,
    DECODE_BATCH,
    MAX_BACKLOG,
    Fetched,
    KlineJob,
    bad_bars,
    unreadable,
)
from alltick_frames.run.pages import with_request
from alltick_frames.run.runner import Call

__all__ = [
    "DECODE_BATCH",
    "MAX_BACKLOG",
    "_DECODER",
    "BatchJob",
    "Fetched",
    "KlineJob",
    "bad_bars",
    "outside_plan",
    "unauthorized",
    "unreadable",
    "with_request",
]
from alltick_frames.store import BarStore
from alltick_frames.store.series import record_latest_many


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
