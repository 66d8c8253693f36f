"""Answering from the disk cache: what is missing and what to fetch. Pure planning.

Closed bars are kept for good. The newest bar of a series is still forming, so it is trusted
only for a TTL that fits its interval (:func:`forming_ttl`). A request is planned against what
the store covers: only the gaps are fetched, each gap as a chain of ``/kline`` pages bounded
below by the gap's start, so an extended range costs only its new pages.

When many series are just a bar or two behind, a ``/batch-kline`` call refreshes up to
``plan.batch_groups`` of them at once: its two bars (the one that closed and the one now
forming) join the cached history exactly when the older of the two is the bar that was
forming at the last fetch. When they do not join (more bars were missed), the hole is left
in the store's coverage and the next planning round fills it with ``/kline``.

A coverage snapshot (:class:`~alltick_frames.store.coverage.Coverage`) goes in and pages come
out; nothing here writes. The one read beyond the snapshot is :meth:`BarReader.newest`, for
the requests coverage alone cannot answer (a count of bars in a series broken into several
runs, or ending in the past); any object with that method will do, such as the
:class:`~alltick_frames.store.BarStore`. Recording what the pages bring back is
:mod:`alltick_frames.store.series`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np

from alltick_frames.core.calendars import calendar_of, expected_bars, recorded_span
from alltick_frames.core.codes import CodeInfo
from alltick_frames.core.intervals import Interval
from alltick_frames.core.planner import KlinePage, KlineRequest, bars_between, first_page
from alltick_frames.core.plans import Plan

if TYPE_CHECKING:
    from alltick_frames.store import Coverage, Newest
    from alltick_frames.store.coverage import CoverageTable

#: The open ends of a covered run (see :meth:`Coverage.run`).
_NEG_INF, _POS_INF = -(2**63), 2**63 - 1

#: Seconds a forming bar is trusted, by default: a twelfth of its interval, 5 s to 15 min.
TTL_MIN, TTL_MAX = 5.0, 900.0


def forming_ttl(interval: Interval) -> float:
    """How long a cached forming bar is served before it is fetched again."""
    return min(TTL_MAX, max(TTL_MIN, interval.seconds / 12))


TTL = float | Callable[[Interval], float]


class BarReader(Protocol):
    """The one read planning may make beyond a coverage snapshot (a :class:`BarStore` has it)."""

    def newest(
        self, code: str, interval: str, n: int, hi: int | None = None, *, forming: bool = True
    ) -> Newest:
        """The newest ``n`` bars at or before ``hi`` and whether they are provably complete."""
        ...


@dataclass(frozen=True, slots=True)
class SeriesPlan:
    """What one code needs: ``pages`` to fetch (chain starts), or nothing when served."""

    code: CodeInfo
    pages: tuple[KlinePage, ...]
    #: Only the newest bar or two are missing: a ``/batch-kline`` group can refresh it.
    batchable: bool = False


def plan_series(
    req: KlineRequest,
    code: CodeInfo,
    cov: Coverage,
    store: BarReader | None,
    plan: Plan,
    now: float,
    ttl: float,
    first_round: bool = True,
) -> SeriesPlan:
    """The fewest pages that complete ``req`` for ``code`` given what the store covers.

    Stocks cannot page back, so they get at most one page (the latest), in the first round
    (see :func:`_stock_plan`).
    """
    ivl = req.interval
    if not cov.segments and cov.forming_ts is None and cov.floor is None:
        return SeriesPlan(code, (first_page(req, code, plan),) if first_round else ())
    fresh = cov.is_fresh(now, ttl)
    top = int(now) if req.end is None else req.end
    if req.count is not None:
        gaps = _count_gaps(req, code, cov, store, fresh, plan.kline_bars)
    else:
        assert req.start is not None
        spans = cov.gaps(min(req.start, top), top, forming=fresh and req.end is None)
        gaps = [(lo, hi, None) for lo, hi in spans]
    if not gaps:
        return SeriesPlan(code, ())
    if not code.pageable:
        return (
            _stock_plan(req, code, cov, store, plan, now, fresh)
            if first_round
            else SeriesPlan(code, ())
        )
    pages = []
    for lo, hi, want in gaps:
        reaches_now = hi >= top and req.end is None
        end = 0 if reaches_now else hi
        if want is not None:
            num = min(plan.kline_bars, want)
        else:
            num = min(
                plan.kline_bars, bars_between(lo, hi if not reaches_now else int(now), ivl) + 2
            )
        pages.append(KlinePage(code, ivl, end, num, floor=lo if want is None else None, want=want))
    return SeriesPlan(code, tuple(pages), _batchable(code, cov, gaps, now, ivl))


def plan_many(
    req: KlineRequest,
    codes: Sequence[CodeInfo],
    table: CoverageTable,
    store: BarReader | None,
    plan: Plan,
    now: float,
    ttl: float,
    paged: set[str] | frozenset[str] = frozenset(),
) -> tuple[list[SeriesPlan], int]:
    """The plans of the codes that need pages, and how many need none: :func:`plan_series`
    of every code (``table`` holds their coverage, in order; codes in ``paged`` are past
    their first round). The series the cache answers whole are found for all codes at once
    (:func:`served`); the others are planned one by one."""
    first_round = np.array([c.code not in paged for c in codes], bool) if paged else True
    left = np.flatnonzero(~served(req, table.rows, now, ttl, first_round)).tolist()
    covs = table.coverages
    plans = [
        plan_series(req, codes[k], covs[k], store, plan, now, ttl, codes[k].code not in paged)
        for k in left
    ]
    needy = [p for p in plans if p.pages]
    return needy, len(codes) - len(needy)


def served(
    req: KlineRequest, rows: np.ndarray, now: float, ttl: float, first_round: np.ndarray | bool
) -> np.ndarray:
    """Which series :func:`plan_series` gives no page, decided from their coverage rows
    (:class:`~alltick_frames.store.coverage.CoverageTable`) with array operations: True
    only where that is certain, False where it needs a page or a closer look.

    Decided here: a series with nothing stored past its first round, and a series of at most
    one closed segment (the usual shape) whose coverage holds the whole range, or for the
    newest ``count`` bars a fresh forming bar with enough bars joined to it. The rest (holes,
    stale forming bars, a count up to an end, stocks short of bars) go to :func:`plan_series`.
    """
    n = rows.shape[0]
    segments = rows["segments"]
    has_floor, has_forming = rows["has_floor"], rows["has_forming"]
    empty = (segments == 0) & ~has_forming & ~has_floor
    out = empty & ~np.asarray(first_round, bool)
    if req.count is not None and req.end is not None:
        return out  # the newest bars up to an end: read from the store, series by series
    with np.errstate(invalid="ignore"):
        fresh = has_forming & (now - rows["fetched_at"] < ttl)
    # One segment at most, and the forming bar after its start: the covered spans are then the
    # floor's, the segment's and the forming bar's, in that order (see Coverage._covered).
    simple = (
        ~empty
        & (segments <= 1)
        & ~(has_forming & (segments == 1) & (rows["forming_ts"] < rows["first_lo"]))
    )
    if req.count is None:
        assert req.start is not None
        top = int(now) if req.end is None else req.end
        lo, hi = min(req.start, top), top
        forming = fresh if req.end is None else np.zeros(n, bool)
        run_lo, run_hi = _run_of(rows, forming, lo, hi)
        return out | (simple & (run_lo <= lo) & (hi <= run_hi))
    # The newest ``count``: served when the forming bar is fresh and the run that holds it
    # holds ``count`` bars, or reaches the floor (:func:`top_run`, read from coverage).
    run_lo, _ = _run_of(rows, fresh, _POS_INF, _POS_INF)
    joined = (segments == 1) & (run_lo <= rows["first_lo"])
    held = 1 + np.where(joined, rows["bars"], 0)
    complete = (held >= req.count) | (run_lo == _NEG_INF)
    return out | (simple & fresh & complete)


def _run_of(
    rows: np.ndarray, forming: np.ndarray, lo: int, hi: int
) -> tuple[np.ndarray, np.ndarray]:
    """Of each series of at most one segment, the covered run holding ``[lo, hi]`` (with the
    forming bar onwards where ``forming``), as its bounds; an empty run (1, 0) where none does.

    The floor's span, the segment and the forming bar's span are merged in that order, as
    :func:`~alltick_frames.store.coverage.merge_spans` does, without overflowing int64 at
    the open ends.
    """
    n = rows.shape[0]
    floor = rows["floor"]
    # The floor's span ends at floor - 1: a floor of -2**63 covers nothing (and would wrap).
    spans = (
        (np.full(n, _NEG_INF), floor - 1, rows["has_floor"] & (floor != _NEG_INF)),
        (rows["first_lo"], rows["first_hi"], rows["segments"] > 0),
        (rows["forming_ts"], np.full(n, _POS_INF), rows["has_forming"] & forming),
    )
    cur_lo, cur_hi = np.ones(n, np.int64), np.zeros(n, np.int64)
    cur = np.zeros(n, bool)
    best_lo, best_hi = np.ones(n, np.int64), np.zeros(n, np.int64)
    for a, b, valid in spans:
        touches = (a <= cur_hi) | ((cur_hi < _POS_INF) & (a == cur_hi + 1))
        extend = valid & cur & touches
        close = valid & cur & ~touches
        hold = close & (cur_lo <= lo) & (hi <= cur_hi)
        best_lo, best_hi = np.where(hold, cur_lo, best_lo), np.where(hold, cur_hi, best_hi)
        start = valid & ~extend
        cur_hi = np.where(extend, np.maximum(cur_hi, b), cur_hi)
        cur_lo, cur_hi = np.where(start, a, cur_lo), np.where(start, b, cur_hi)
        cur = cur | valid
    hold = cur & (cur_lo <= lo) & (hi <= cur_hi)
    return np.where(hold, cur_lo, best_lo), np.where(hold, cur_hi, best_hi)


def _stock_plan(
    req: KlineRequest,
    code: CodeInfo,
    cov: Coverage,
    store: BarReader | None,
    plan: Plan,
    now: float,
    fresh: bool,
) -> SeriesPlan:
    """The one call a stock with gaps may need, or none: stocks cannot page back.

    A call brings the newest ``num`` bars up to now, never older ones. So when the stored run
    at the top already holds as many bars as a call brings (or reaches the floor), the older
    gaps are out of reach for good (the result's shortfall reports them) and only a stale top
    is worth a call: a small one, which a ``/batch-kline`` group can replace. Otherwise one
    call of the newest bars the request wants fills the top and what lies below it at once.
    """
    assert store is not None
    ivl = req.interval
    want = plan.kline_bars
    if req.count is not None and req.end is None:
        want = min(req.count, plan.kline_bars)
    if not top_run(store, code.code, str(ivl), cov, want)[2]:
        return SeriesPlan(code, (KlinePage(code, ivl, 0, want),))
    if fresh or req.end is not None:
        return SeriesPlan(code, ())
    if cov.forming_ts is not None:
        lo = cov.forming_ts
    else:
        lo = cov.segments[-1][1] + 1 if cov.segments else int(now)
    num = min(plan.kline_bars, bars_between(lo, int(now), ivl) + 1)
    top_gap = [(lo, 2**62, None)]
    batchable = _batchable(code, cov, top_gap, now, ivl)
    return SeriesPlan(code, (KlinePage(code, ivl, 0, num),), batchable)


def _count_gaps(
    req: KlineRequest,
    code: CodeInfo,
    cov: Coverage,
    store: BarReader | None,
    fresh: bool,
    bars_per_call: int,
) -> list[tuple[int, int, int | None]]:
    """Gaps of a count request as (lo, hi, want): the stale top, then what lies below."""
    assert req.count is not None and store is not None
    latest = req.end is None
    if latest and not fresh:
        # Refresh the stale top and, in the same round, fetch what the newest run lacks
        # below it (counting the bars the refresh adds would need its answer first: they are
        # fetched twice at most, never missed, and the estimate sees every call).
        below = cov.segments[-1][1] + 1 if cov.segments else None
        if below is None:
            return [(0, 0, req.count)]
        gaps: list[tuple[int, int, int | None]] = [(below, 2**62, None)]
        run, held, complete = top_run(store, code.code, str(req.interval), cov, req.count)
        if not complete and run is not None:
            # ...unless one chain from the top takes no more calls (count fits in a page).
            if math.ceil(req.count / bars_per_call) <= 1 + math.ceil(
                (req.count - held) / bars_per_call
            ):
                return [(0, 2**62, req.count)]
            gaps.insert(0, (0, run[0] - 1, req.count - held))
        return gaps
    if latest:
        run, held, complete = top_run(store, code.code, str(req.interval), cov, req.count)
    else:
        newest = store.newest(code.code, str(req.interval), req.count, hi=req.end, forming=False)
        run, held, complete = newest.run, len(newest.bars), newest.complete
    if complete:
        return []
    if run is None:  # the end of the range itself is not cached
        return [(0, req.end or 0, req.count)]
    return [(0, run[0] - 1, req.count - held)]


def top_run(
    store: BarReader, code: str, alias: str, cov: Coverage, n: int
) -> tuple[tuple[int, int] | None, int, bool]:
    """The covered run holding a series' newest bar, how many of its bars count towards ``n``
    (at most ``n``), and whether they are the complete answer for the newest ``n`` bars.

    The answer of ``store.newest(code, alias, n, forming=True)`` (its ``run``, ``len(bars)``
    and ``complete``), read from ``cov`` alone when the series is one unbroken stretch (the
    usual case), so that planning a warm request of many codes reads no bars.
    """
    if len(cov.segments) == 1 or (cov.forming_ts is not None and not cov.segments):
        if cov.forming_ts is not None:
            run = cov.run(_POS_INF, forming=True)
            joined = bool(cov.segments) and run is not None and run[0] <= cov.segments[0][0]
            held = 1 + (cov.bars if joined else 0)
        else:
            run = cov.run(cov.segments[0][1])
            held = cov.bars
        assert run is not None
        return run, min(n, held), held >= n or run[0] == _NEG_INF
    newest = store.newest(code, alias, n, forming=True)
    return newest.run, len(newest.bars), newest.complete


def _batchable(code: CodeInfo, cov: Coverage, gaps: list, now: float, ivl: Interval) -> bool:
    """Whether only the newest bars are missing: one gap, from the cached forming bar on, and
    at most two bars from it to now by the code's calendar (a holiday holds none)."""
    if cov.forming_ts is None or len(gaps) != 1:
        return False
    lo = gaps[0][0]
    if lo < cov.forming_ts:
        return False
    calendar = calendar_of(code)
    first, stop = recorded_span(calendar)
    if first <= cov.forming_ts and now < stop:
        return expected_bars(calendar, ivl, cov.forming_ts, int(now), now).size <= 2
    return bars_between(cov.forming_ts, int(now), ivl) <= 2
