"""Planning many series at once (:func:`cache_planner.plan_many`) decides exactly what
planning them one by one (:func:`cache_planner.plan_series`) decides: the same pages for the
series that need some, and the same count of series served.

Pure: coverages are built by hand, so every shape the store's index may hold is tried (holes,
floors below or inside segments, forming bars fresh or stale, before or after the segment,
ends at +-2**63), against range and count requests, in and after the first round.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from alltick_frames.core import cache_planner
from alltick_frames.core.cache_planner import SeriesPlan, plan_many, plan_series, served
from alltick_frames.core.codes import classify
from alltick_frames.core.intervals import parse_interval
from alltick_frames.core.planner import KlineRequest
from alltick_frames.core.plans import get_plan
from alltick_frames.store import Coverage
from alltick_frames.store.codec import as_frame, empty_arrays
from alltick_frames.store.coverage import NEG_INF, POS_INF, CoverageTable
from alltick_frames.store.disk import Newest

HOUR = 3_600
#: The market moment: a Wednesday, 15:00 UTC, on an hour.
NOW = 1_715_785_200.0
PLAN = get_plan("professional")
IVL = parse_interval("1h")
TTL = 300.0
CODES = [classify("EURUSD"), classify("700.HK")]  # pageable, and a stock (one page at most)


class NoReads:
    """A store that must not be read: planning a series the cache answers reads no bar."""

    def newest(self, *args: Any, **kwargs: Any) -> Newest:
        raise AssertionError("a served series was planned with a read of its bars")


class Incomplete:
    """A store whose every series lacks the bars asked for (a broken or short run)."""

    def newest(self, code: str, interval: str, n: int, hi: int | None = None, **_: Any) -> Newest:
        return Newest(as_frame(*empty_arrays()), complete=False, run=None, fetched_at=None)


def _time(k: int) -> int:
    return int(NOW) + k * HOUR


#: Times near the market moment, in hours, and the open ends.
times = st.one_of(
    st.integers(-12, 3).map(_time),
    st.integers(-12, 3).map(lambda k: _time(k) - 1),  # the end of an hour: spans that touch
    st.sampled_from([NEG_INF, POS_INF - 1]),
)


@st.composite
def coverages(draw: st.DrawFn) -> Coverage:
    """Any coverage an index may hold: merged, sorted segments (never touching), a floor, a
    forming bar with its fetch time, and a count of closed bars."""
    points = sorted(set(draw(st.lists(times, max_size=6))))
    segments: list[tuple[int, int]] = []
    for lo, hi in zip(points[::2], points[1::2], strict=False):
        if not segments or lo > segments[-1][1] + 1:
            segments.append((lo, hi))
    floor = draw(st.none() | times)
    forming = draw(st.none() | times)
    fetched = None
    if forming is not None:
        fetched = draw(
            st.sampled_from([NOW, NOW - TTL, NOW - TTL + 1, NOW - 3 * HOUR, float("nan")])
        )
    bars = draw(st.integers(0, 16))
    return Coverage(tuple(segments), floor, forming, fetched, bars)


@st.composite
def requests(draw: st.DrawFn) -> KlineRequest:
    codes = tuple(CODES)
    end = draw(st.none() | st.integers(-13, -1).map(_time))
    if draw(st.booleans()):
        return KlineRequest(codes, IVL, draw(st.integers(1, 16)), None, end)
    start = draw(st.integers(-14, -1).map(_time))
    if end is not None and start > end:
        start, end = end, start
    return KlineRequest(codes, IVL, None, start, end)


def _decided_at_once(req: KlineRequest, cov: Coverage) -> bool:
    """Whether :func:`served` decides ``cov`` itself (see its docstring)."""
    if not cov.segments and cov.floor is None and cov.forming_ts is None:
        return True
    if len(cov.segments) > 1:
        return False
    if cov.segments and cov.forming_ts is not None and cov.forming_ts < cov.segments[0][0]:
        return False
    if req.count is None:
        return True
    return req.end is None and cov.is_fresh(NOW, TTL)


def _one_by_one(
    req: KlineRequest, covs: list[Coverage], store: Any, paged: set[str]
) -> list[SeriesPlan]:
    return [
        plan_series(req, c, cov, store, PLAN, NOW, TTL, c.code not in paged)
        for c, cov in zip(req.codes, covs, strict=True)
    ]


@settings(max_examples=600, deadline=None)
@given(req=requests(), covs=st.lists(coverages(), min_size=2, max_size=2), late=st.booleans())
@example(
    req=KlineRequest(tuple(CODES), IVL, None, _time(-20), None),
    covs=[Coverage(((_time(-30), _time(0) - 1),), None, _time(0), NOW, 30)] * 2,
    late=False,
)
def test_plan_many_decides_what_plan_series_decides(
    req: KlineRequest, covs: list[Coverage], late: bool
) -> None:
    """For random coverage: the same plan for every series, and a series found served at once
    is one that planning alone would serve without reading a bar."""
    paged = {c.code for c in req.codes} if late else set()
    table = CoverageTable.of(covs)
    first_round = np.array([not late] * len(covs))
    for k, done in enumerate(served(req, table.rows, NOW, TTL, first_round).tolist()):
        c, cov = req.codes[k], covs[k]
        if done:
            assert plan_series(req, c, cov, NoReads(), PLAN, NOW, TTL, not late) == SeriesPlan(
                c, ()
            )
        elif c.pageable and _decided_at_once(req, cov):
            # The shapes served() decides: a series it leaves is one that needs a page (a
            # stock may have gaps that no page can fill, which plan_series alone knows).
            assert plan_series(req, c, cov, Incomplete(), PLAN, NOW, TTL, not late).pages
    one_by_one = _one_by_one(req, covs, Incomplete(), paged)
    needy = [p for p in one_by_one if p.pages]
    got = plan_many(req, req.codes, table, Incomplete(), PLAN, NOW, TTL, paged)
    assert got == (needy, len(covs) - len(needy))


WARM = Coverage(((_time(-30), _time(0) - 1),), None, _time(0), NOW - 60, 30)


@pytest.mark.parametrize(
    ("req", "cov", "want"),
    [
        (KlineRequest(tuple(CODES), IVL, None, _time(-20), None), WARM, True),
        (KlineRequest(tuple(CODES), IVL, None, _time(-20), _time(-5)), WARM, True),
        (KlineRequest(tuple(CODES), IVL, 25, None, None), WARM, True),
        (KlineRequest(tuple(CODES), IVL, 40, None, None), WARM, False),  # 31 bars held
        (KlineRequest(tuple(CODES), IVL, None, _time(-40), None), WARM, False),  # before them
        (  # the forming bar is stale: fetched again
            KlineRequest(tuple(CODES), IVL, None, _time(-20), None),
            Coverage(WARM.segments, None, _time(0), NOW - 2 * TTL, 30),
            False,
        ),
        (  # a hole in the range
            KlineRequest(tuple(CODES), IVL, None, _time(-20), _time(-5)),
            Coverage(((_time(-30), _time(-12)), (_time(-10), _time(0) - 1)), None, None, None, 30),
            False,
        ),
    ],
)
def test_the_usual_shapes_are_served_at_once(req: KlineRequest, cov: Coverage, want: bool) -> None:
    """A warm range or count over one segment and a fresh forming bar is decided by the
    arrays; a stale forming bar, a hole or too few bars are not served."""
    table = CoverageTable.of([cov, cov])
    assert served(req, table.rows, NOW, TTL, True).tolist() == [want, want]
    if want:
        plans = _one_by_one(req, [cov, cov], NoReads(), set())
        assert all(not p.pages for p in plans)


def test_plan_many_reads_no_bar_for_a_warm_request(monkeypatch: pytest.MonkeyPatch) -> None:
    """A warm request of many codes is planned without planning any series one by one."""
    calls: list[str] = []
    real = cache_planner.plan_series

    def counted(req: KlineRequest, code: Any, *args: Any) -> SeriesPlan:
        calls.append(code.code)
        return real(req, code, *args)

    monkeypatch.setattr(cache_planner, "plan_series", counted)
    req = KlineRequest(tuple(CODES), IVL, None, _time(-20), None)
    plans = plan_many(req, req.codes, CoverageTable.of([WARM, WARM]), NoReads(), PLAN, NOW, TTL)
    assert plans == ([], 2)
    assert calls == []
