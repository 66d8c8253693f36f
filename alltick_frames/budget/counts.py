"""Counts per bucket: a compact, conservative stand-in for the call times of a long window.

A window that allows many calls (the per-minute cap: thousands a minute) would otherwise keep
every call's tick, so each reservation would read, search and write back a record that grows
with the window (8 bytes a call, 480 KB at 60k calls). For such a window the ledger keeps,
instead, how many calls started in each small bucket of ``width`` ticks (about 1/512 of the
window), so a reservation costs the same whatever the window holds.

A call counted in bucket ``k`` may lie anywhere in ``[k * width, (k + 1) * width)``, so the
slot search assumes the worst: a run of ``calls`` calls is taken to start as late as its
first bucket allows and end as early as its last bucket allows. A slot found on the counts is
therefore never earlier than the exact times would allow (never a call the exact rule
forbids), and at most about two buckets (0.4% of the window) later.

The counts of one window are plain data, ``[width, keys, counts]``: sorted bucket indices and
the number of calls in each, so a ledger stores them as JSON or a pickle unchanged.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from itertools import accumulate
from typing import Any

#: A window that allows more calls than this moves from ticks to counts per bucket once it
#: holds this many. Every built-in plan's windows stay below it (exact ticks, at most 16 KB a
#: window); a custom plan of thousands of calls a minute is counted once its minute fills.
COUNT_ABOVE = 2048
#: Buckets per window span: the precision given up is about 2 / BUCKETS of the window.
BUCKETS = 512

#: One window's counts: ``[width, keys, counts]`` (width in ticks; keys sorted).
Counts = list[Any]


def new_counts(span: int) -> Counts:
    """Empty counts for a window of ``span`` ticks (buckets of ``span / BUCKETS``, rounded up)."""
    return [max(1, -(-span // BUCKETS)), [], []]


def add(counts: Counts, t: int) -> None:
    """Count one call at tick ``t``."""
    width, keys, ns = counts
    k = t // width
    i = bisect_left(keys, k)
    if i < len(keys) and keys[i] == k:
        ns[i] += 1
    else:
        keys.insert(i, k)
        ns.insert(i, 1)


def remove(counts: Counts, t: int) -> None:
    """Uncount one call at tick ``t`` (a reservation given back); nothing if none is there."""
    width, keys, ns = counts
    k = t // width
    i = bisect_left(keys, k)
    if i < len(keys) and keys[i] == k:
        if ns[i] > 1:
            ns[i] -= 1
        else:
            del keys[i], ns[i]


def drop_until(counts: Counts, tick: int) -> None:
    """Forget the buckets whose every tick is at or before ``tick``."""
    width, keys, ns = counts
    cut = bisect_left(keys, (tick + 1) // width)
    if cut:
        del keys[:cut], ns[:cut]


def up_to(counts: Counts, tick: int) -> Counts:
    """The buckets that may hold a call at or before ``tick`` (a copy)."""
    width, keys, ns = counts
    cut = bisect_right(keys, tick // width)
    return [width, keys[:cut], ns[:cut]]


def count_between(counts: Counts, lo: int, hi: int) -> int:
    """How many counted calls may lie in ``(lo, hi]`` (every bucket touching it counts)."""
    width, keys, ns = counts
    return sum(ns[bisect_left(keys, (lo + 1) // width) : bisect_right(keys, hi // width)])


class Counted:
    """One window's counts, read by :func:`~alltick_frames.budget.slots.earliest_slot`."""

    __slots__ = ("cum", "keys", "width")

    def __init__(self, counts: Counts) -> None:
        self.width: int = counts[0]
        self.keys: list[int] = counts[1]
        self.cum = list(accumulate(counts[2]))  # calls in buckets 0..i

    def __len__(self) -> int:
        return self.cum[-1] if self.cum else 0

    def earliest(self, calls: int, span: int, t: int) -> int:
        """Earliest ``t' >= t`` at which one more call cannot break ``calls`` per ``span``.

        :func:`~alltick_frames.budget.slots.earliest_in_window` on worst-case times: the run
        of ``calls`` calls starting with the first call of bucket ``r`` forbids
        ``(hi - span, lo + span)``, with ``lo`` the last tick of bucket ``r`` and ``hi`` the
        first tick of the bucket holding the run's last call. Later runs starting in the same
        bucket end no earlier, so forbid no more: one step per bucket.
        """
        width, keys, cum = self.width, self.keys, self.cum
        n = len(self)
        r = bisect_left(keys, (t - span + 1) // width)  # buckets ending by t - span forbid nothing
        while r < len(keys):
            first = cum[r - 1] if r else 0  # index of the run's first call
            if first + calls > n:
                break
            hi = keys[bisect_right(cum, first + calls - 1)] * width
            if hi - span >= t:
                break  # this and every later run forbids only ticks after t
            lo = (keys[r] + 1) * width - 1
            if hi - lo < span and lo + span > t:
                t = lo + span
            r += 1
        return t
