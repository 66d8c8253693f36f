"""Planning: what the user asked for -> the fewest calls the plan's size caps allow.

Everything here is pure: no clock reads, no I/O. The runner executes what this module plans.

``/kline`` history is planned per code as a chain of pages of up to ``plan.kline_bars`` bars.
Codes of the FX path walk back in time: each next page ends one second before the oldest bar
already held (the server returns bars whose start is at or before ``kline_timestamp_end``), so
pages never overlap and ``count`` bars cost exactly ``ceil(count / 500)`` calls; a code whose
answer shows the end ignored (energy, CFD) stops there (the job decides, from the answer).
Stocks and market indices cannot be paged back: they get one page, and whatever lies beyond it
is reported.

``/batch-kline`` groups (code x kline_type) are packed up to ``plan.batch_groups`` per call, one
base path per call (stock and forex codes never share a call).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from alltick_frames.core.codes import CodeInfo, validate_codes
from alltick_frames.core.intervals import Interval, parse_interval
from alltick_frames.core.plans import BATCH_KLINE, KLINE, Plan
from alltick_frames.core.validate import is_whole, whole

#: A time as users give it (``pd.Timestamp`` is a ``datetime``).
TimeLike = str | int | float | date | datetime

#: Bars a history request gets when it names neither ``count`` nor ``start``: one page.
DEFAULT_COUNT = 500
#: The most bars one request may ask for per code: 1-minute bars over 19 years, more than any
#: plan's history (5 years on Professional) and 20,000 calls per code.
MAX_COUNT = 10_000_000
_MAX_COUNT_FIX = (
    ": no AllTick history holds that many bars; ask for fewer, or for a time range with start="
)


def to_epoch(value: TimeLike, name: str) -> int:
    """Epoch seconds from a time the user gave, refusing anything ambiguous.

    Accepted: tz-aware datetimes and Timestamps, ISO strings with an offset
    (``"2024-03-01T12:00Z"``), date-only strings and ``date`` objects (read as 00:00 UTC), and
    epoch seconds. Naive datetimes are refused: their time zone would be a guess.
    """
    not_a_time = (
        f"{name}={value!r} is not a time; use ISO 8601 like '2024-03-01' or '2024-03-01T12:00Z'"
    )
    if isinstance(value, bool):
        raise ValueError(not_a_time)
    if isinstance(value, numbers.Real):  # numpy's integers and floats too, not numpy's bools
        if not math.isfinite(value):
            raise ValueError(not_a_time)
        if value > 1e11:
            raise ValueError(f"{name}={value} looks like milliseconds; give epoch seconds")
        return int(value)
    # Only a time that is not a number needs pandas: the command line checks a request
    # without importing it (see alltick_frames.cli).
    import pandas as pd

    if pd.api.types.is_bool(value):
        raise ValueError(not_a_time)
    if isinstance(value, date) and not isinstance(value, datetime):
        return int(pd.Timestamp(value, tz="UTC").timestamp())
    if isinstance(value, str):
        text = value.strip()
        try:
            ts = pd.Timestamp(text)
        except ValueError:
            raise ValueError(not_a_time) from None
        if ts is not pd.NaT and ts.tzinfo is None and len(text) == 10:  # a bare date: 00:00 UTC
            ts = ts.tz_localize("UTC")
    else:
        ts = pd.Timestamp(value)
    if ts is pd.NaT:  # "", "NaT", pd.NaT, None-like
        raise ValueError(not_a_time)
    if ts.tzinfo is None:
        raise ValueError(
            f"{name}={value!r} has no time zone; add one, e.g. '2024-03-01T12:00Z' or "
            "pd.Timestamp('2024-03-01 12:00', tz='UTC')"
        )
    return int(ts.timestamp())


@dataclass(frozen=True, slots=True)
class KlineRequest:
    """A validated history request: ``count`` newest bars, or the range ``start``..``end``."""

    codes: tuple[CodeInfo, ...]
    interval: Interval
    count: int | None
    start: int | None
    end: int | None

    @property
    def code_order(self) -> list[str]:
        return [c.code for c in self.codes]


def kline_request(
    codes: str | Iterable[str],
    interval: str | int | Interval,
    count: int | None = None,
    start: TimeLike | None = None,
    end: TimeLike | None = None,
    *,
    now: float,
) -> KlineRequest:
    """Validate a ``klines`` call before any request; raises ValueError saying what to change."""
    infos = validate_codes(codes)
    ivl = parse_interval(interval)
    if count is not None:
        count = whole("count", count, high=MAX_COUNT, fix=_MAX_COUNT_FIX)
        if start is not None:
            raise ValueError("give either count (the newest N bars) or start, not both")
    start_s = None if start is None else to_epoch(start, "start")
    end_s = None if end is None else to_epoch(end, "end")
    if start_s is not None and end_s is not None and start_s > end_s:
        raise ValueError(f"start ({start}) is after end ({end})")
    if start_s is not None and start_s > now:
        raise ValueError(f"start ({start}) is in the future")
    if end_s is not None and end_s >= now:
        end_s = None  # up to the latest bar: the server's "0"
    if count is None and start_s is None:
        count = DEFAULT_COUNT
    return KlineRequest(tuple(infos), ivl, count, start_s, end_s)


@dataclass(frozen=True, slots=True)
class KlinePage:
    """One ``/kline`` call: ``num`` bars of ``code`` ending at ``end_ts`` (0 = the latest).

    A page starts a chain: the runner asks for the next page (ending one second before the
    oldest bar held) until the chain has ``want`` bars, or its oldest bar reaches ``floor``,
    or the server runs out of history. With neither ``want`` nor ``floor`` a chain is one page.
    """

    code: CodeInfo
    interval: Interval
    end_ts: int
    num: int
    floor: int | None = None
    want: int | None = None


def first_page(req: KlineRequest, code: CodeInfo, plan: Plan) -> KlinePage:
    """The page that starts a code's chain when nothing is cached."""
    if req.count is None or (req.end is not None and not code.pageable):
        num = plan.kline_bars  # a stock ignores the end time: take all it serves, then trim
    else:
        num = min(req.count, plan.kline_bars)
    end = req.end if (req.end is not None and code.pageable) else 0
    want = req.count if code.pageable else None
    return KlinePage(code, req.interval, end, num, floor=req.start, want=want)


def next_page(page: KlinePage, plan: Plan, got: int, oldest: int) -> KlinePage | None:
    """The page after ``page`` (which brought ``got`` bars, the oldest at ``oldest``), or None
    when its chain is complete or the history ran out."""
    if not page.code.pageable or got < page.num:
        return None  # stocks cannot page; a short page means the history ran out
    want = None if page.want is None else page.want - got
    if (want is not None and want <= 0) or (page.floor is not None and oldest <= page.floor):
        return None
    if want is None and page.floor is None:
        return None
    num = plan.kline_bars if want is None else min(want, plan.kline_bars)
    return KlinePage(page.code, page.interval, oldest - 1, num, page.floor, want)


def hole_pages(
    code: CodeInfo,
    interval: Interval,
    holes: Sequence[tuple[int, int, int]],
    plan: Plan,
    now: float,
) -> list[KlinePage]:
    """The pages that fetch the bars of a series' holes, each ``(first, last, bars)`` (bar
    starts in Unix seconds, and how many bars the calendar has from first to last).

    A pageable code gets one chain per hole, ending at its last bar and exactly as long as it.
    A stock ignores the end time, so it gets one page of its newest bars reaching back to its
    oldest hole (one bar more, in case the server's clock is a bar ahead of ours).
    """
    if code.pageable:
        return [
            KlinePage(code, interval, hi, min(bars, plan.kline_bars), floor=lo, want=bars)
            for lo, hi, bars in holes
        ]
    # The calendars need pandas: the command line checks a request without it.
    from alltick_frames.core.calendars import calendar_of, expected_bars

    lo = min(h[0] for h in holes)
    since = expected_bars(calendar_of(code), interval, lo, int(now), now).size
    return [KlinePage(code, interval, 0, max(1, min(since + 1, plan.kline_bars)))]


def bars_between(lo: int, hi: int, interval: Interval) -> int:
    """At most how many bars start in ``[lo, hi]`` (markets that close make it fewer)."""
    return max(0, (hi - lo) // interval.seconds + 1)


def pages_needed(req: KlineRequest, code: CodeInfo, plan: Plan, now: float) -> int:
    """The number of ``/kline`` calls a code needs (exact for ``count``; an upper bound for a
    range, since markets close at nights and weekends)."""
    if not code.pageable:
        return 1
    if req.count is not None:
        return math.ceil(req.count / plan.kline_bars)
    assert req.start is not None
    bars = bars_between(req.start, req.end if req.end is not None else int(now), req.interval)
    return max(1, math.ceil(bars / plan.kline_bars))


@dataclass(frozen=True, slots=True)
class BatchChunk:
    """One ``/batch-kline`` call: up to ``plan.batch_groups`` (code, interval) groups."""

    groups: tuple[tuple[CodeInfo, Interval], ...]
    num: int

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(c.code for c, _ in self.groups))


def latest_groups(
    codes: str | Iterable[str], intervals: Any, count: int
) -> list[tuple[CodeInfo, Interval]]:
    """Validate a ``latest`` call and list its (code, interval) groups in the caller's order."""
    infos = validate_codes(codes)
    if isinstance(intervals, str | int | Interval):
        intervals = [intervals]
    ivls = [parse_interval(i) for i in intervals]
    if not ivls:
        raise ValueError("no intervals given: pass at least one, e.g. intervals=('1m',)")
    if len({i.kline_type for i in ivls}) != len(ivls):
        raise ValueError(f"intervals repeated: {[str(i) for i in ivls]}")
    if not is_whole(count) or count not in (1, 2):
        raise ValueError(f"count must be 1 or 2 for latest bars (AllTick's cap), got {count!r}")
    bad = [c.code for c in infos if c.is_stock for i in ivls if not i.stock_ok]
    if bad:
        raise ValueError(
            f"2h/4h bars are not offered for stocks and indices ({', '.join(bad[:5])}), and "
            "the newest bar or two cannot be built from 1h bars: use klines(codes, '2h', "
            "count=N), which builds them from the 1h bars of their sessions"
        )
    return [(c, i) for c in infos for i in ivls]


def pack_groups(
    groups: Sequence[tuple[CodeInfo, Interval]], cap: int, num: int
) -> list[BatchChunk]:
    """Pack groups into the fewest ``/batch-kline`` calls: ``cap`` per call, one path per call."""
    by_path: dict[str, list[tuple[CodeInfo, Interval]]] = {}
    for group in groups:
        by_path.setdefault(group[0].path, []).append(group)
    return [
        BatchChunk(tuple(items[i : i + cap]), num)
        for items in by_path.values()
        for i in range(0, len(items), cap)
    ]


def chunk_codes(codes: Sequence[CodeInfo], cap: int) -> list[tuple[CodeInfo, ...]]:
    """Split codes into calls of at most ``cap`` codes, one base path per call."""
    by_path: dict[str, list[CodeInfo]] = {}
    for c in codes:
        by_path.setdefault(c.path, []).append(c)
    return [
        tuple(items[i : i + cap]) for items in by_path.values() for i in range(0, len(items), cap)
    ]


def kline_calls(
    req: KlineRequest, plan: Plan, now: float, codes: Sequence[CodeInfo] | None = None
) -> dict[str, int]:
    """Calls per endpoint for a history request with nothing cached (see
    :func:`pages_needed`); ``codes`` defaults to all of the request's codes."""
    todo = req.codes if codes is None else codes
    return {KLINE: sum(pages_needed(req, c, plan, now) for c in todo)}


def chain_calls(page: KlinePage, plan: Plan, now: float) -> int:
    """How many calls the chain that ``page`` starts takes (an upper bound for a floor)."""
    if not page.code.pageable:
        return 1
    if page.want is not None:
        return math.ceil(page.want / plan.kline_bars)
    if page.floor is None:
        return 1
    top = page.end_ts or int(now)
    return max(1, math.ceil(bars_between(page.floor, top, page.interval) / plan.kline_bars))


def batch_calls(groups: Sequence[tuple[CodeInfo, Interval]], plan: Plan) -> dict[str, int]:
    return {BATCH_KLINE: len(pack_groups(groups, plan.batch_groups, 1))}
