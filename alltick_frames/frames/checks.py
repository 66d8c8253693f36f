"""The bar checks: which decoded bars can be believed.

The decoders turn what the server sent into typed columns; these checks decide which of those
bars are plausible market data. A bar that fails is **dropped** and counted, never kept with a
flag: a NaN close or a bar dated 1752 in a research frame is worse than a missing bar that a
failure row names. A bar is dropped when

* a price (open, high, low, close) is missing, not finite, or not above 0 (``price``);
* its low is above its open or close, or its high below them (``range``);
* its volume or turnover is negative or infinite (``volume``; missing is NaN, as documented);
* its start is not after 1970, or not on its interval's grid (``grid``): FX, crypto and metals
  intraday bars sit on the UTC grid (``timestamp % length == 0``); every other bar is only
  checked to start on a whole minute, because stock intraday bars start at session opens
  (HK 1h bars at 09:30, 10:30, ...) and whether each bar sits on its market's session grid is
  for the trading calendars to say: :func:`alltick_frames.frames.completeness.measure` counts
  a bar where its calendar has no slot as ``unexpected`` and keeps it, since a calendar that
  misses a special session (or a year it does not record yet) must not cost real bars, and
  the calendars (``exchange_calendars``, half a second to import) stay off a job that needs
  none of them; day, week and month bars start at midnight of an
  exchange's time zone in the emulator, which AllTick does not document (alltick-api.md §8
  #16), so a stricter grid for them would drop a real series on a guess;
* it starts more than :data:`CLOCK_SLACK` after the job's clock (``late``). A bar after the
  *end asked for* is no fault of the bar: it is how AllTick answers when it ignores
  ``kline_timestamp_end`` (stocks always do), and the jobs trim it or stop paging on it.

Two bars of one answer with the same start and different values are a conflict (``conflict``):
both are believed no more than the rest, the later copy is kept (as everywhere in this
package: the later fetch wins) and the conflict is counted.

Everything is vectorised on the decoded columns, so it runs at decoding speed.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from alltick_frames.core.intervals import INTERVALS
from alltick_frames.frames.common import MS_THRESHOLD

__all__ = [
    "CLOCK_SLACK",
    "REASONS",
    "Checked",
    "check_bars",
    "describe",
    "epoch_seconds",
    "failed_bars",
    "latest_start",
    "on_grid",
    "plausible_starts",
]

#: Seconds a bar may start after the job's clock before it counts as "in the future": a day,
#: so that a long job, a skewed local clock or a market a time zone ahead is never refused.
CLOCK_SLACK = 86_400

#: Why a bar is not believed, in the order failure rows list them.
REASONS: dict[str, str] = {
    "price": "a price missing, not finite or not above 0",
    "range": "low above open or close, or high below them",
    "volume": "volume or turnover negative or infinite",
    "grid": "a start not after 1970 or off the {interval} grid",
    "late": "a start more than a day after the job's clock",
    "conflict": "sent twice with different values (the later copy kept)",
}

_NS = 1_000_000_000
_PRICES = ("open", "high", "low", "close")
_SECONDS = {i.alias: i.seconds for i in INTERVALS}
#: Intervals on the UTC grid for FX, crypto and metals: 1m to 4h.
_INTRADAY = {i.alias for i in INTERVALS if i.kline_type <= 7}
#: Codes of the markets :mod:`alltick_frames.core.codes` routes to the stock path (their
#: intraday bars start at session opens, not on the UTC grid).
_STOCK = r"\.(?:US|HK|SH|SZ)$"


@dataclass(frozen=True)
class Checked:
    """The outcome of :func:`check_bars`: which rows to keep, and why the others were not."""

    #: One bool per row of the checked frame.
    keep: np.ndarray
    #: ``(code, interval) -> reason -> bars`` for every series with a problem.
    problems: dict[tuple[str, str], Counter[str]] = field(default_factory=dict)


def on_grid(code: str, interval: str) -> bool:
    """Whether ``code``'s ``interval`` bars must sit on the UTC grid (FX, crypto and metals
    intraday); any other bar is only checked to start on a whole minute."""
    return interval in _INTRADAY and re.search(_STOCK, code) is None


def latest_start(now: float) -> int:
    """The latest start a bar may have, for a job whose clock read ``now``."""
    return int(now) + CLOCK_SLACK


def epoch_seconds(stamps: np.ndarray) -> np.ndarray:
    """Bar starts as Unix seconds, from seconds or milliseconds (as the decoders read them)."""
    return np.where(stamps >= MS_THRESHOLD, stamps // 1000, stamps)


def plausible_starts(
    starts: np.ndarray, step: np.ndarray | int, upper: np.ndarray | int | None
) -> np.ndarray:
    """Mask of bar starts (Unix seconds, int64) after 1970, on a multiple of ``step`` seconds
    and (unless ``upper`` is None) not after ``upper``: the ``grid`` and ``late`` checks."""
    ok = (starts > 0) & (starts % step == 0)
    return ok if upper is None else ok & (starts <= upper)


def check_bars(
    data: pd.DataFrame, upper: np.ndarray | int, group: np.ndarray | None = None
) -> Checked:
    """Check the bars of a decoded k-line frame (:data:`~alltick_frames.frames.KLINE_COLUMNS`).

    ``upper`` is the latest start each bar may have (one per row, or one for all: see
    :func:`latest_start`). Conflicting duplicates are looked for within each ``group`` (one
    int per row, e.g. the answer each bar came in; default: its code and interval).
    """
    n = len(data)
    if n == 0:
        return Checked(np.ones(0, bool))
    prices = np.stack([data[c].to_numpy(np.float64) for c in _PRICES])
    amounts = np.stack([data[c].to_numpy(np.float64) for c in ("volume", "turnover")])
    ns = pd.DatetimeIndex(data["timestamp"]).as_unit("ns").asi8
    code_idx, codes = pd.factorize(data["code"])
    ivl_idx, ivls = pd.factorize(data["interval"])
    series = code_idx * len(ivls) + ivl_idx
    # The grid step of each row: its interval's length where on_grid() says so, else 60.
    paged = ~pc.match_substring_regex(pa.array(codes, pa.string()), _STOCK).to_numpy(False)
    length = np.array([_SECONDS[i] if i in _INTRADAY else 60 for i in ivls], np.int64)
    steps = np.where(paged[code_idx], length[ivl_idx], 60)
    keep, failed = failed_bars(
        prices, amounts, ns, steps, upper, group if group is not None else series
    )
    problems: dict[tuple[str, str], Counter[str]] = {}
    for name, mask in failed.items():
        if mask.any():
            for s, count in zip(*np.unique(series[mask], return_counts=True), strict=True):
                key = (str(codes[s // len(ivls)]), str(ivls[s % len(ivls)]))
                problems.setdefault(key, Counter())[name] += int(count)
    return Checked(keep, problems)


def failed_bars(
    prices: np.ndarray,
    amounts: np.ndarray,
    ns: np.ndarray,
    steps: np.ndarray | int,
    upper: np.ndarray | int,
    group: np.ndarray | int,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The checks of :func:`check_bars` on bars already laid out as arrays: ``prices`` (open,
    high, low, close) and ``amounts`` (volume, turnover) one row per field, ``ns`` the starts
    in Unix nanoseconds, ``steps`` the grid of each bar (see :func:`on_grid`), ``upper`` the
    latest start allowed, ``group`` where conflicting copies are looked for (one int per bar,
    or one for all).

    Returns the mask of bars kept and, by reason (:data:`REASONS`' order), the mask of bars
    dropped (each dropped bar under its first reason) or superseded (``conflict``).
    """
    starts = ns // _NS
    with np.errstate(invalid="ignore"):
        o, h, low, c = prices
        failed = {
            "price": ~(np.isfinite(prices) & (prices > 0)).all(axis=0),
            "range": (low > np.minimum(o, c)) | (h < np.maximum(o, c)),
            "volume": ((amounts < 0) | np.isinf(amounts)).any(axis=0),
            "late": starts > upper,
            "grid": ~plausible_starts(starts, steps, None) | (ns % _NS != 0),
        }
    # Each dropped bar is counted once, under the first reason in REASONS' order.
    keep = np.ones(ns.size, bool)
    for reason in REASONS:
        if reason in failed:
            failed[reason] &= keep
            keep &= ~failed[reason]
    failed["conflict"] = _conflicts(prices, amounts, ns, np.broadcast_to(group, ns.shape), keep)
    return keep, failed


def _conflicts(
    prices: np.ndarray, amounts: np.ndarray, ns: np.ndarray, group: np.ndarray, keep: np.ndarray
) -> np.ndarray:
    """Mask of kept bars followed, in their group, by a kept bar with the same start and other
    values (one mark per superseded copy)."""
    rows = np.flatnonzero(keep)
    if rows.size < 2:
        return np.zeros(keep.size, bool)
    order = rows[np.lexsort((rows, ns[rows], group[rows]))]
    same = (group[order[1:]] == group[order[:-1]]) & (ns[order[1:]] == ns[order[:-1]])
    if not same.any():
        return np.zeros(keep.size, bool)
    values = np.concatenate([prices, amounts])
    a, b = values[:, order[:-1]], values[:, order[1:]]
    differ = ((a != b) & ~(np.isnan(a) & np.isnan(b))).any(axis=0)
    out = np.zeros(keep.size, bool)
    out[order[:-1][same & differ]] = True
    return out


def describe(counts: Mapping[str, int], interval: str) -> str:
    """Words for a failure row: ``"dropped 2 bars: 1 with a price missing, ...; 1 with ..."``."""
    dropped = sum(n for reason, n in counts.items() if reason != "conflict")
    parts = []
    for reason, words in REASONS.items():
        n = counts.get(reason, 0)
        if not n:
            continue
        if reason == "conflict":
            parts.append(f"{n} {'bar' if n == 1 else 'bars'} {words}")
        else:
            parts.append(f"{n} with {words.format(interval=interval)}")
    head = f"dropped {dropped} {'bar' if dropped == 1 else 'bars'}: " if dropped else ""
    return head + "; ".join(parts)
