"""What the store knows about a series' time range: spans, gaps, floors. Pure.

A *series* is ``(source, code, interval)``. ``source`` namespaces data by where it came from
(``"quote.alltick.co"``, ``"emulator"``): bars from a test server never answer a production
request. It is never a token, and the store never sees one.

A series holds three kinds of knowledge:

closed segments
    Inclusive spans ``[lo, hi]`` of bar-start times (epoch seconds). Inside a segment *every
    bar that exists is stored*; a segment may hold no bars at all (a weekend). Segments that
    overlap or touch (``next.lo <= cur.hi + 1``) are merged; where two writes hold a bar with
    the same timestamp, the later write wins.
floor
    "No bars exist before this timestamp": the server's history ran out. A request reaching
    below the floor is still fully covered. Of two floors the higher one is kept, since both
    claims are true and the higher one says more (history limited by age moves its floor up).
forming bar
    The newest bar, still changing, with ``fetched_at`` (the caller's clock) so the caller can
    apply a TTL. A forming bar replaces the stored one when ``(timestamp, fetched_at)`` is not
    older. It is dropped as soon as closed coverage reaches its start (a segment with
    ``hi >= forming timestamp``): closed values win, and a closed bar after it proves it no
    longer forms.

The convention that makes "everything up to now" expressible: after a call whose newest bar
``F`` is still forming, write the closed span with ``hi = F - 1`` and pass ``F`` as
``forming``. Then closed coverage touches the forming bar, and
``coverage.gaps(lo, now, forming=coverage.is_fresh(now, ttl))`` is empty while the forming bar
is fresh.

:class:`Coverage` answers the planner's question, *which parts of ``[lo, hi]`` must still be
fetched?*, from these facts alone, without reading a bar.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

NEG_INF = -(2**63)
POS_INF = 2**63 - 1

Span = tuple[int, int]


def merge_spans(spans: Sequence[Span]) -> tuple[Span, ...]:
    """Sort inclusive integer spans and merge those that overlap or touch.

    >>> merge_spans([(10, 19), (0, 9), (30, 40), (35, 50)])
    ((0, 19), (30, 50))
    """
    out: list[list[int]] = []
    for lo, hi in sorted(spans):
        if out and lo <= out[-1][1] + 1:
            out[-1][1] = max(out[-1][1], hi)
        else:
            out.append([lo, hi])
    return tuple((lo, hi) for lo, hi in out)


def subtract(lo: int, hi: int, covered: Sequence[Span]) -> list[Span]:
    """Parts of ``[lo, hi]`` outside ``covered`` (sorted, merged spans)."""
    gaps: list[Span] = []
    cursor = lo
    for a, b in covered:
        if b < cursor:
            continue
        if a > hi:
            break
        if a > cursor:
            gaps.append((cursor, a - 1))
        cursor = b + 1
        if cursor > hi:
            return gaps
    if cursor <= hi:
        gaps.append((cursor, hi))
    return gaps


@dataclass(frozen=True, slots=True)
class Coverage:
    """What the store knows about one series' time range (see the module docstring).

    ``segments`` are merged, sorted, inclusive spans of bar-start seconds in which every bar
    that exists is stored; ``floor`` says no bar exists before it; ``forming_ts`` and
    ``fetched_at`` describe the stored forming bar; ``bars`` counts the closed bars stored.
    """

    segments: tuple[Span, ...] = ()
    floor: int | None = None
    forming_ts: int | None = None
    fetched_at: float | None = None
    bars: int = 0

    def _covered(self, forming: bool) -> tuple[Span, ...]:
        spans = list(self.segments)
        if self.floor is not None:
            spans.append((NEG_INF, self.floor - 1))
        if forming and self.forming_ts is not None:
            spans.append((self.forming_ts, POS_INF))
        return merge_spans(spans)

    def gaps(self, lo: int, hi: int, *, forming: bool = False) -> list[Span]:
        """Sub-spans of ``[lo, hi]`` the store cannot answer: the fetches a request still needs.

        Time below the floor counts as covered. With ``forming=True`` a stored forming bar
        vouches for everything from its start onwards ("as of ``fetched_at`` this was the
        newest bar"); pass ``forming=coverage.is_fresh(now, ttl)`` to honour it only while it
        is fresh. ``[(lo, hi)]`` when nothing is known; ``[]`` when all is covered.
        """
        if lo > hi:
            raise ValueError(f"lo ({lo}) is after hi ({hi})")
        return subtract(lo, hi, self._covered(forming))

    def covers(self, lo: int, hi: int, *, forming: bool = False) -> bool:
        """Whether ``[lo, hi]`` has no gaps (see :meth:`gaps`)."""
        return not self.gaps(lo, hi, forming=forming)

    def is_fresh(self, now: float, ttl: float) -> bool:
        """Whether a forming bar is stored and was fetched less than ``ttl`` seconds before
        ``now`` (both on the caller's clock)."""
        return self.fetched_at is not None and now - self.fetched_at < ttl

    def run(self, ts: int, *, forming: bool = False) -> Span | None:
        """The covered stretch holding ``ts`` (joined segments, floor region and, with
        ``forming=True``, the forming bar onwards), or None when ``ts`` is not covered.

        The bounds are -2**63 and 2**63 - 1 where the floor or the forming bar leave them open.
        """
        for a, b in self._covered(forming):
            if a <= ts <= b:
                return (a, b)
        return None


#: The fields of a :class:`CoverageTable` row, one per series.
ROW = np.dtype(
    [
        ("segments", np.int64),  # how many closed segments
        ("first_lo", np.int64),  # the first segment's bounds (0 when there is none)
        ("first_hi", np.int64),
        ("has_floor", np.bool_),
        ("floor", np.int64),  # 0 when there is none
        ("has_forming", np.bool_),
        ("forming_ts", np.int64),  # 0 when there is none
        ("fetched_at", np.float64),  # NaN when there is none
        ("bars", np.int64),
    ]
)


def coverage_row(cov: Coverage) -> tuple[int, int, int, bool, int, bool, int, float, int]:
    """What a :class:`CoverageTable` holds of ``cov``: a row of :data:`ROW`."""
    seg = cov.segments
    first = seg[0] if seg else (0, 0)
    form = cov.forming_ts is not None
    return (
        len(seg),
        first[0],
        first[1],
        cov.floor is not None,
        cov.floor or 0,
        form,
        cov.forming_ts or 0,
        cov.fetched_at if cov.fetched_at is not None else float("nan"),
        cov.bars,
    )


@dataclass(frozen=True, slots=True, eq=False)
class CoverageTable:
    """The coverage of many series at once: each series' :class:`Coverage`, and the facts a
    planner decides most series on, as one record array (:data:`ROW`), so that a request of
    thousands of series is planned with a few array operations rather than series by series
    (see :func:`~alltick_frames.core.cache_planner.plan_many`)."""

    coverages: list[Coverage]
    rows: np.ndarray  # of dtype ROW, one per series, in the order of ``coverages``

    @classmethod
    def of(cls, coverages: list[Coverage], rows: list[tuple] | None = None) -> CoverageTable:
        """The table of ``coverages`` (``rows``: their :func:`coverage_row`, if known)."""
        if rows is None:
            rows = [coverage_row(c) for c in coverages]
        return cls(coverages, np.array(rows, ROW).reshape(len(coverages)))
