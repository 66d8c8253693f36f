"""Completeness, measured: the bars each series' calendar expects against the bars that came.

For every requested (code, interval) the exchange calendar
(:mod:`alltick_frames.core.calendars`) says which bars the request should bring: those of
the range, or the newest ``count``, that have begun trading by the request's moment. Holidays
and lunch breaks hold no bars, so a range that starts on a holiday is complete. Comparing
them with the bars that arrived gives one row per series (:data:`COMPLETENESS_COLUMNS`) and
sorts what is missing into what AllTick cannot serve and what it skipped:

* older than a stock's latest 500 bars: ``not-pageable`` (AllTick cannot page stocks back);
  so is everything older than the oldest bar that came of a code whose answer showed that
  AllTick ignored the end time asked for (``unpaged``: it serves only the latest bars);
* older than the oldest bar that arrived: ``history-limit`` (the plan's history, or the
  market's, ends there);
* after the oldest bar that arrived: a ``gap``, one failure row per run of missing bars,
  which :func:`holes` hands to ``retry()`` so that it fetches exactly those bars.

Pure: frames and the calendar in, a table and failure rows out.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from alltick_frames.core import calendars
from alltick_frames.core.codes import CodeInfo
from alltick_frames.core.errors import Failure
from alltick_frames.core.intervals import Interval
from alltick_frames.core.planner import KlineRequest
from alltick_frames.core.plans import KLINE
from alltick_frames.frames.common import F64, STRING, empty_frame

#: The failure kinds measuring completeness produces.
KINDS = frozenset({"gap", "history-limit", "not-pageable"})
#: What a ``not-pageable`` row adds for a code whose end time AllTick ignored.
IGNORED_END = "AllTick ignored the end time asked for: it serves the latest bars"
#: How many missing bar times a completeness row lists.
FIRST_MISSING = 5
#: A bar that began trading less than this many seconds before the request is not missed yet:
#: AllTick publishes a bar a moment after it opens, and two clocks never quite agree.
GRACE = 60

COMPLETENESS_DTYPES: dict[str, object] = {
    "code": STRING,
    "interval": STRING,
    "expected": np.dtype("int64"),
    "received": np.dtype("int64"),
    "missing": np.dtype("int64"),
    "coverage": F64,
    "first_missing": np.dtype(object),
    "unexpected": np.dtype("int64"),
}
#: ``expected``: bars the calendar expects; ``received``: bars that arrived (within the
#: request); ``missing``: expected bars that did not arrive; ``coverage``: the share of
#: expected bars that arrived (1.0 when none are expected); ``first_missing``: the start
#: times of the first few missing bars (a list of Timestamps); ``unexpected``: bars that
#: arrived where the calendar has no slot (a day it records as a holiday, a misaligned time).
COMPLETENESS_COLUMNS: list[str] = list(COMPLETENESS_DTYPES)


def empty_completeness() -> pd.DataFrame:
    """A completeness table with no rows and the exact dtypes of :data:`COMPLETENESS_COLUMNS`."""
    return empty_frame(COMPLETENESS_DTYPES)


@dataclass(frozen=True, slots=True)
class Hole:
    """A run of missing bars inside a series: starts ``lo`` to ``hi`` (Unix seconds)."""

    code: CodeInfo
    lo: int
    hi: int
    bars: int


@dataclass
class Measured:
    """What :func:`measure` found: the table, the failure rows, and the holes to refetch."""

    table: pd.DataFrame
    failures: list[Failure] = field(default_factory=list)
    holes: list[Hole] = field(default_factory=list)


def received_stamps(data: pd.DataFrame) -> dict[str, np.ndarray]:
    """Bar starts (int64 Unix seconds, sorted, unique) of each code of a k-line frame of one
    interval whose codes come in runs, each sorted by time (as the client returns them)."""
    names, starts, ends, stamps = _code_runs(data)
    return {name: stamps[a:b] for name, a, b in zip(names, starts, ends, strict=True)}


#: The code column the client built last and its runs (see :func:`remember_runs`).
_LAST_RUNS: tuple[weakref.ref[Any], list[str], np.ndarray] | None = None


def remember_runs(column: Any, names: list[str], sizes: np.ndarray) -> None:
    """Say that the code column ``column`` (an Arrow-backed pandas array) holds runs of
    ``sizes[k]`` rows of ``names[k]``, distinct codes (a size may be 0): the client builds
    its frames that way, and measuring one then need not find its runs again.

    Only the last column is remembered, by a weak reference to its Arrow data, which cannot
    change: a column altered since holds other Arrow data and is measured from scratch.
    """
    global _LAST_RUNS
    arrow = getattr(column, "__arrow_array__", None)
    _LAST_RUNS = None if arrow is None else (weakref.ref(arrow()), names, sizes)


def _known_runs(code: pd.Series) -> tuple[list[str], np.ndarray] | None:
    """The runs :func:`remember_runs` was told of ``code``'s column, if it was."""
    last = _LAST_RUNS
    arrow = getattr(code.array, "__arrow_array__", None)
    if last is None or arrow is None or last[0]() is not arrow():
        return None
    return last[1], last[2]


class _Seconds:
    """Every bar's start of a frame (int64 Unix seconds), converted a slice at a time from
    the frame's own nanoseconds when asked: the whole column in seconds would be 8 bytes a
    bar more, beside the frame, while it is measured (a fetch job's peak)."""

    def __init__(self, raw: np.ndarray, per_second: int) -> None:
        self.raw, self.per_second = raw, per_second

    def __getitem__(self, rows: slice) -> np.ndarray:
        # A division, several times cheaper than a conversion.
        return self.raw[rows] // self.per_second if self.per_second != 1 else self.raw[rows]

    def at(self, row: int) -> int:
        return int(self.raw[row]) // self.per_second


#: Runs of codes: each run's code, first row and end, and every bar's start.
_CodeRuns = tuple[list[str], list[int], list[int], _Seconds]
#: Values compared at once when runs are checked against a calendar's bars (512 KB).
_CHECK_VALUES = 1 << 16


def _code_runs(data: pd.DataFrame) -> _CodeRuns:
    """The runs of codes of a k-line frame (see :func:`received_stamps`): each run's code,
    first row and end, and every bar's start (int64 Unix seconds)."""
    if data.empty:
        return [], [], [], _Seconds(np.empty(0, np.int64), 1)
    code = data["code"]
    index = pd.DatetimeIndex(data["timestamp"])
    # The client's frames are in nanoseconds: read as they are, in seconds slice by slice.
    if index.unit == "ns":
        stamps = _Seconds(index.asi8, 1_000_000_000)
    else:
        stamps = _Seconds(index.as_unit("s").asi8, 1)
    known = _known_runs(code)
    if known is not None and int(known[1].sum()) == len(data):
        held = known[1] > 0
        names = [name for name, kept in zip(known[0], held.tolist(), strict=True) if kept]
        ends = np.cumsum(known[1][held])
        return names, (ends - known[1][held]).tolist(), ends.tolist(), stamps
    starts = np.flatnonzero(code.ne(code.shift()).to_numpy(bool, na_value=True))
    ends = np.append(starts[1:], len(data))
    names = [str(name) for name in code.iloc[starts].tolist()]  # one take, not one per code
    return names, starts.tolist(), ends.tolist(), stamps


def _exactly_settled(
    runs: _CodeRuns,
    calendar_by_code: dict[str, str],
    expect: Expectations,
) -> dict[str, bool]:
    """Whether each code of ``runs`` brought exactly the settled bars its calendar expects
    (and the calendar expects no newer one): the common answer, a warm read say.

    Checked over runs of consecutive codes of one calendar at once (their bars, laid out one
    series after another, compared with the calendar's as one table), not code by code.
    """
    names, starts, ends, stamps = runs
    exact: dict[str, bool] = {}
    group: list[int] = []  # consecutive candidates of one calendar
    group_key: tuple[str, int] | None = None

    def check() -> None:
        if not group:
            return
        assert group_key is not None
        settled = expect.settled(group_key[0])[0]
        step = max(1, _CHECK_VALUES // settled.size)  # runs at once: a few passing copies
        for at in range(0, len(group), step):
            part = group[at : at + step]
            block = stamps[starts[part[0]] : ends[part[-1]]].reshape(len(part), settled.size)
            for k, ok in zip(part, (block == settled).all(axis=1).tolist(), strict=True):
                exact[names[k]] = ok
        group.clear()

    for k, name in enumerate(names):
        exact[name] = False
        calendar = calendar_by_code.get(name)
        if calendar is None:
            check()
            continue
        settled, recent = expect.settled(calendar)
        size = ends[k] - starts[k]
        if recent.size or size != settled.size or not size:
            check()
            continue
        if group_key != (calendar, size):
            check()
            group_key = (calendar, size)
        group.append(k)
    check()
    return exact


def _fmt(t: int) -> str:
    return f"{pd.Timestamp(t, unit='s', tz='UTC'):%Y-%m-%d %H:%M}Z"


def _iso(t: int) -> str:
    return pd.Timestamp(t, unit="s", tz="UTC").isoformat().replace("+00:00", "Z")


class Expectations:
    """The bars each calendar expects for one request at one moment, computed once per
    calendar and shared by its codes."""

    def __init__(
        self,
        interval: Interval,
        now: float,
        *,
        count: int | None = None,
        start: int | None = None,
        end: int | None = None,
    ) -> None:
        self.interval = interval
        self.now = now
        self.count, self.start, self.end = count, start, end
        self._cache: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    @classmethod
    def of_request(cls, req: KlineRequest, now: float) -> Expectations:
        """The expectations of a validated request at the market moment ``now``."""
        return cls(req.interval, now, count=req.count, start=req.start, end=req.end)

    def _bars(self, calendar: str, now: float) -> np.ndarray:
        top = self.end if self.end is not None else int(self.now)
        if self.count is not None:
            return calendars.newest_bars(calendar, self.interval, top, now, self.count)
        assert self.start is not None
        return calendars.expected_bars(calendar, self.interval, self.start, top, now)

    def settled(self, calendar: str) -> tuple[np.ndarray, np.ndarray]:
        """Bars begun more than :data:`GRACE` seconds ago, and the newer ones."""
        if calendar not in self._cache:
            settled = self._bars(calendar, self.now - GRACE)
            full = self._bars(calendar, self.now)
            recent = full[full > settled[-1]] if settled.size else full
            self._cache[calendar] = (settled, recent)
        return self._cache[calendar]

    def of(self, calendar: str, got: np.ndarray) -> np.ndarray:
        """The bars expected of a series that brought ``got``: every settled bar, a newer one
        only if it came, and any bar that came after this moment (the server's clock may run
        a little ahead: then its newest ``count`` bars are those)."""
        settled, recent = self.settled(calendar)
        newest = recent[-1] if recent.size else settled[-1] if settled.size else None
        later = got[got > newest] if newest is not None and got.size else got[:0]
        if self.start is not None:
            later = later[later >= self.start]
        if self.end is not None:
            later = later[later <= self.end]
        if recent.size == 0 and later.size == 0:
            return settled
        bars = np.concatenate([settled, recent[member(recent, got)], later])
        return bars[-self.count :] if self.count is not None else bars


def member(values: np.ndarray, sorted_set: np.ndarray) -> np.ndarray:
    """Whether each of ``values`` is in ``sorted_set`` (sorted, unique): a binary search per
    value, cheaper than :func:`numpy.isin` when one side is a long calendar."""
    if sorted_set.size == 0:
        return np.zeros(values.size, bool)
    at = np.minimum(np.searchsorted(sorted_set, values), sorted_set.size - 1)
    return sorted_set[at] == values


def _slots(
    calendar: str,
    interval: Interval,
    rows_by_code: dict[str, tuple[int, int]],
    stamps: _Seconds,
    codes: list[CodeInfo],
) -> np.ndarray:
    """Every slot ``calendar`` has over the bars its codes brought (once per calendar)."""
    first, stop = calendars.recorded_span(calendar)
    spans = [
        (stamps.at(rows[0]), stamps.at(rows[1] - 1))
        for c in codes
        if calendars.calendar_of(c) == calendar and (rows := rows_by_code.get(c.code)) is not None
    ]
    if not spans:
        return np.empty(0, np.int64)
    lo, hi = max(min(a for a, _ in spans), first), min(max(b for _, b in spans), stop - 1)
    return calendars.expected_bars(calendar, interval, int(lo), int(hi), 2.0**62)


def _runs(positions: np.ndarray) -> list[tuple[int, int]]:
    """``[first, last]`` index pairs of the consecutive runs in sorted ``positions``."""
    breaks = np.flatnonzero(np.diff(positions) != 1)
    firsts = np.concatenate([[0], breaks + 1])
    lasts = np.concatenate([breaks, [positions.size - 1]])
    return list(zip(firsts.tolist(), lasts.tolist(), strict=True))


def measure(
    data: pd.DataFrame,
    codes: list[CodeInfo],
    expect: Expectations,
    *,
    kline_bars: int,
    reach_interval: Interval | None = None,
    failed: frozenset[str] | set[str] = frozenset(),
    attempts: dict[str, int] | None = None,
    unpaged: frozenset[str] | set[str] = frozenset(),
) -> Measured:
    """Measure ``data`` (one interval, the client's order) against the calendars.

    ``codes`` are the requested codes; ``kline_bars`` the bars a stock's ``/kline`` reaches
    back (its latest 500), counted in ``reach_interval`` bars (the interval fetched, when the
    bars were derived from another). Codes in ``failed`` get a table row but no shortfall
    rows: their failure rows say why already. ``attempts`` are the calls spent per code.
    ``unpaged`` codes are those whose answer showed the end time ignored
    (:attr:`~alltick_frames.run.jobs.KlineJob.unpaged`): like a stock's, their older bars
    could not be asked for.
    """
    interval = expect.interval
    alias = str(interval)
    runs = _code_runs(data)
    names, starts, ends, stamps = runs
    rows_by_code = {name: (a, b) for name, a, b in zip(names, starts, ends, strict=True)}
    calendar_by_code = {code.code: calendars.calendar_of(code) for code in codes}
    exact = _exactly_settled(runs, calendar_by_code, expect)
    attempts = attempts or {}
    rows = _Rows(codes)
    out = Measured(pd.DataFrame())  # its table is built at the end, from the rows
    reach: dict[str, float] = {}
    slots: dict[str, np.ndarray] = {}
    # The common answer (a warm read, say): exactly the settled bars the calendar expects.
    # Nothing is missing, and each is a slot of the calendar: filled in for all at once.
    sizes = dict(zip(names, (np.array(ends) - np.array(starts)).tolist(), strict=True))
    done = [exact.get(code.code, False) for code in codes]
    rows.exact(done, [sizes[code.code] if ok else 0 for code, ok in zip(codes, done, strict=True)])
    for k, code in enumerate(codes):
        if done[k]:
            continue
        held = rows_by_code.get(code.code)
        got = np.empty(0, np.int64) if held is None else stamps[held[0] : held[1]]
        calendar = calendar_by_code[code.code]
        exp = expect.of(calendar, got)
        missing = exp[~member(exp, got)]
        unexpected = 0
        if got.size:
            if calendar not in slots:
                slots[calendar] = _slots(calendar, interval, rows_by_code, stamps, codes)
            first, stop = calendars.recorded_span(calendar)
            checked = got[(got >= first) & (got < stop)]
            unexpected = int((~member(checked, slots[calendar])).sum())
        rows.add(
            k,
            exp.size,
            got.size,
            missing.size,
            1.0 - missing.size / exp.size if exp.size else 1.0,
            [pd.Timestamp(t, unit="s", tz="UTC") for t in missing[:FIRST_MISSING]],
            unexpected,
        )
        if missing.size == 0 or code.code in failed:
            continue
        if code.code in unpaged:  # nothing older than what came can be asked for
            at, why = (float(got[0]) if got.size else np.inf), IGNORED_END
        elif not code.pageable:
            if calendar not in reach:
                reach[calendar] = _reach(
                    calendar, reach_interval or interval, expect.now, kline_bars
                )
            at, why = reach[calendar], f"stocks serve only their latest {kline_bars} bars"
        else:
            at, why = -np.inf, ""
        _classify(out, code, alias, exp, missing, got, expect, (at, why), attempts)
    out.table = rows.table(alias)
    return out


class _Rows:
    """The completeness table's rows, one per code, gathered column by column: the rows of
    codes that brought exactly what was expected all at once (:meth:`exact`), the others one
    by one (:meth:`add`). A frame built from a dict per row, then cast, took longer than
    measuring a thousand codes."""

    def __init__(self, codes: list[CodeInfo]) -> None:
        n = len(codes)
        self.code = [c.code for c in codes]
        self.counts = np.zeros((n, 3), np.int64)  # expected, received, missing
        self.coverage = np.ones(n, F64)
        self.first_missing = np.empty(n, object)
        self.unexpected = np.zeros(n, np.int64)

    def exact(self, done: list[bool], sizes: list[int]) -> None:
        """Rows of the codes that brought exactly the ``sizes`` bars expected, where ``done``."""
        at = np.flatnonzero(np.array(done, bool))
        held = np.array(sizes, np.int64)[at]
        self.counts[at, 0] = held
        self.counts[at, 1] = held
        for k in at.tolist():
            self.first_missing[k] = []

    def add(
        self,
        k: int,
        expected: int,
        received: int,
        missing: int,
        coverage: float,
        first_missing: list[pd.Timestamp],
        unexpected: int,
    ) -> None:
        """The row of the ``k``-th code."""
        self.counts[k] = (expected, received, missing)
        self.coverage[k] = coverage
        self.first_missing[k] = first_missing
        self.unexpected[k] = unexpected

    def table(self, alias: str) -> pd.DataFrame:
        """The rows as a table of :data:`COMPLETENESS_DTYPES`."""
        n = len(self.code)
        columns = {
            "code": pd.array(self.code, dtype=STRING),
            "interval": pd.array([alias] * n, dtype=STRING),
            "expected": self.counts[:, 0],
            "received": self.counts[:, 1],
            "missing": self.counts[:, 2],
            "coverage": self.coverage,
            "first_missing": self.first_missing,
            "unexpected": self.unexpected,
        }
        return pd.DataFrame(columns, columns=COMPLETENESS_COLUMNS)


def _reach(calendar: str, interval: Interval, now: float, kline_bars: int) -> float:
    """The oldest bar start a stock's ``/kline`` still serves: its latest ``kline_bars``."""
    newest = calendars.newest_bars(calendar, interval, int(now), now, kline_bars)
    return float(newest[0]) if newest.size == kline_bars else -np.inf


def _classify(
    out: Measured,
    code: CodeInfo,
    alias: str,
    exp: np.ndarray,
    missing: np.ndarray,
    got: np.ndarray,
    expect: Expectations,
    reach: tuple[float, str],
    attempts: dict[str, int],
) -> None:
    """Failure rows (and holes) for the missing bars of one series. ``reach``: the oldest
    bar start that could be asked for, and why no older one could."""

    def row(kind: str, msg: str, detail: str | None = None) -> None:
        calls = attempts.get(code.code, 0)
        failure = Failure(
            code=code.code, interval=alias, endpoint=KLINE, kind=kind, msg=msg, detail=detail,
            attempts=calls,
        )  # fmt: skip
        out.failures.append(failure)

    first_got = int(got[0]) if got.size else None
    at, why = reach
    unreachable, rest = missing[missing < at], missing[missing >= at]
    older = rest if first_got is None else rest[rest < first_got]
    inner = rest[:0] if first_got is None else rest[rest > first_got]
    # A count request that got its count is short of nothing: a bar where the calendar has no
    # slot (counted ``unexpected``) took the place of the oldest one it expected.
    whole = expect.count is not None and got.size >= expect.count
    if (unreachable.size or older.size) and not whole:
        if expect.count is not None:
            msg = f"asked for {expect.count} bars, {got.size} could be fetched"
        elif first_got is None:
            msg = "no bars in the requested range could be fetched"
        else:
            msg = f"no bars before {_fmt(first_got)} could be fetched"
        if unreachable.size:
            row("not-pageable", f"{msg} ({why})")
        else:
            row("history-limit", msg)
    if inner.size == 0:
        return
    positions = np.searchsorted(exp, inner)
    for a, b in _runs(positions):
        lo, hi, n = int(inner[a]), int(inner[b]), b - a + 1
        where = f"at {_fmt(lo)}" if n == 1 else f"from {_fmt(lo)} to {_fmt(hi)}"
        part = "inside the series" if lo < got[-1] else "after the newest bar that came"
        bars = f"{n} bar{'s' if n > 1 else ''}"
        row("gap", f"{bars} missing {part}, {where}", f"{_iso(lo)}/{_iso(hi)}")
        out.holes.append(Hole(code, lo, hi, n))


def combine(tables: list[pd.DataFrame], code_order: list[str]) -> pd.DataFrame:
    """Tables of parts of one request, as one table in the caller's code order."""
    if len(tables) == 1:
        return tables[0]
    table = pd.concat(tables, ignore_index=True)
    rank = {code: k for k, code in enumerate(code_order)}
    order = np.argsort(table["code"].map(rank).to_numpy(), kind="stable")
    return table.take(order).reset_index(drop=True)


def replace_rows(table: pd.DataFrame, new: pd.DataFrame, code_order: list[str]) -> pd.DataFrame:
    """``table`` with the rows of ``new``'s codes replaced by ``new``'s, in the caller's order."""
    if new.empty:
        return table
    rest = table[~table["code"].isin(set(new["code"]))]
    return combine([rest, new], code_order)


def within(data: pd.DataFrame, holes: list[Hole]) -> pd.DataFrame:
    """The bars of ``data`` that fall inside ``holes`` (of their own code)."""
    if data.empty or not holes:
        return data.iloc[:0]
    stamps = pd.DatetimeIndex(data["timestamp"]).as_unit("s").asi8
    codes = data["code"].to_numpy(object)
    keep = np.zeros(len(data), bool)
    for hole in holes:
        keep |= (codes == hole.code.code) & (stamps >= hole.lo) & (stamps <= hole.hi)
    return data[keep].reset_index(drop=True)
