"""The pure core of pacing: sliding windows, calendar days, and the earliest slot for a call.

Nothing here sleeps, reads a clock or touches a file. A :class:`LedgerState` holds what a
ledger stores for one token (the ticks of recorded calls per window, blocks, calls per day);
:func:`find_slot` reads it and answers when the next call to an endpoint may start (built on
:func:`earliest_slot`); :func:`record`, :func:`unrecord`, :func:`prune` and :func:`block`
change it. :class:`~alltick_frames.budget.pacing.Budget` runs these inside a ledger's atomic
update. Times are integer microsecond ticks (see the package docstring for why).
"""

from __future__ import annotations

import functools
import math
from bisect import bisect_left, bisect_right, insort
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from alltick_frames.budget import counts as _counts
from alltick_frames.budget.counts import COUNT_ABOVE, Counted, Counts
from alltick_frames.core.errors import DailyCapReached
from alltick_frames.core.plans import DAY_RESET_UTC_OFFSET, SUSPENSION, Plan

#: Seconds added to every sliding window by a fixed guard when none is given to the pure
#: functions here. A :class:`~alltick_frames.budget.Budget` learns its own unless told
#: (see :mod:`~alltick_frames.budget.guard`).
DEFAULT_GUARD = 0.025
#: Window key of the all-endpoints rate (and of the block a 429 puts on every endpoint).
ALL_ENDPOINTS_KEY = "all-endpoints"
#: Window key of the per-minute cap (and of the block a 605 puts on every call).
PER_MINUTE_KEY = "per-minute"
#: Block key set when repeated 605s say the day's cap is spent; its value is the reset time.
DAILY_CAP_KEY = "daily-cap"
#: When a ``daily-cap`` block concluded from 605s may be tested by one call (a probe): the
#: conclusion holds for the UTC+8 day at most, and a probe answered lifts it.
DAILY_PROBE_KEY = "daily-cap-probe"
MINUTE = 60.0
DAY = 86_400.0
#: Ledger times are integer ticks of one microsecond.
TICKS_PER_SECOND = 1_000_000
DAY_TICKS = 86_400 * TICKS_PER_SECOND
OFFSET_TICKS = DAY_RESET_UTC_OFFSET * TICKS_PER_SECOND
_EPOCH = date(1970, 1, 1)


def to_ticks(seconds: float) -> int:
    """Seconds (an epoch time or a duration) as integer microsecond ticks."""
    return round(seconds * TICKS_PER_SECOND)


def from_ticks(ticks: int) -> float:
    """Integer microsecond ticks as float seconds."""
    return ticks / TICKS_PER_SECOND


def endpoint_key(endpoint: str) -> str:
    """Window key of ``endpoint``'s own rate, e.g. ``"endpoint:kline"``."""
    return f"endpoint:{endpoint}"


def is_suspension(endpoint: str) -> bool:
    """Whether ``endpoint`` is the suspension service (outside the all-endpoints window)."""
    return endpoint.startswith(SUSPENSION)


# --------------------------------------------------------------------------- calendar days


def day_index(t: float) -> int:
    """The UTC+8 calendar day of epoch time ``t``, as days since 1970-01-01."""
    return math.floor((t + DAY_RESET_UTC_OFFSET) / DAY)


def day_start(index: int) -> float:
    """Epoch seconds of 00:00 UTC+8 on day ``index`` (see :func:`day_index`)."""
    return index * DAY - DAY_RESET_UTC_OFFSET


@functools.lru_cache(maxsize=16)  # two days are in use at a time; read twice per call
def day_key(index: int) -> str:
    """The ledger key of day ``index``: its UTC+8 date, ``"day:2026-05-01"``."""
    return f"day:{(_EPOCH + timedelta(days=index)).isoformat()}"


def _days_of(t: int, guard: int) -> tuple[int, ...]:
    """The days a call starting at tick ``t`` counts against (two within ``guard`` of 00:00)."""
    first, last = (t + OFFSET_TICKS) // DAY_TICKS, (t + guard + OFFSET_TICKS) // DAY_TICKS
    return (first,) if first == last else (first, last)


def day_start_ticks(index: int) -> int:
    """Tick of 00:00 UTC+8 on day ``index`` (see :func:`day_start`)."""
    return index * DAY_TICKS - OFFSET_TICKS


# --------------------------------------------------------------------------- windows


@dataclass(frozen=True, slots=True)
class Window:
    """A sliding window: at most ``calls`` calls in any ``per`` seconds, stored under ``key``."""

    key: str
    calls: int
    per: float


def windows_for(plan: Plan, endpoint: str) -> tuple[Window, ...]:
    """The sliding windows a call to ``endpoint`` counts against under ``plan``.

    >>> from alltick_frames.core.plans import get_plan
    >>> [w.key for w in windows_for(get_plan("basic"), "kline")]
    ['endpoint:kline', 'all-endpoints', 'per-minute']
    >>> [w.key for w in windows_for(get_plan("basic"), "suspension/sse")]
    ['endpoint:suspension/sse', 'per-minute']
    """
    try:
        own = plan.rate_for(endpoint)
    except KeyError:
        known = ", ".join([*plan.endpoint_rates, f"{SUSPENSION}/<exchange>"])
        raise ValueError(f"unknown endpoint {endpoint!r}; known: {known}") from None
    windows = [Window(endpoint_key(endpoint), own.calls, own.per)]
    if plan.all_endpoints is not None and not is_suspension(endpoint):
        windows.append(Window(ALL_ENDPOINTS_KEY, plan.all_endpoints.calls, plan.all_endpoints.per))
    windows.append(Window(PER_MINUTE_KEY, plan.per_minute, MINUTE))
    return tuple(windows)


#: A window as the core uses it: ``(key, calls, span)``, span in ticks with the guard added.
Rule = tuple[str, int, int]


#: Suffix of the ledger key that spaces the calls of a rate window evenly (see rules_for).
SPACING_SUFFIX = ":spacing"


def rules_for(
    plan: Plan, endpoint: str, guard: float = DEFAULT_GUARD, *, smooth: bool | float = True
) -> tuple[Rule, ...]:
    """:func:`windows_for` in the core's units: ``(key, calls, ticks of per + guard)``.

    With ``smooth``, each rate window of L calls per S seconds (per endpoint, all endpoints)
    also spaces consecutive calls S / L apart, as a leaky bucket does, instead of letting a
    whole window's calls leave at one instant. The long-run rate is the same (L calls per
    S + guard), but a server that admits a burst one request at a time would date its last
    calls late and then find the next window crowded; evenly spaced calls never queue. A
    number keeps that share of the spacing (``0.25``: S / 4L): calls still never leave at one
    instant, and when answers free several slots of the window at once the calls waiting for
    them need not queue behind a full S / L each. ``False`` (or 0) keeps none.
    """
    share = float(smooth)
    if share < 0:
        raise ValueError(f"smooth must be a share >= 0 of the even spacing, got {smooth!r}")
    rules = []
    for w in windows_for(plan, endpoint):
        rules.append((w.key, w.calls, to_ticks(w.per + guard)))
        if share > 0 and w.calls > 1 and w.key != PER_MINUTE_KEY:
            rules.append((w.key + SPACING_SUFFIX, 1, to_ticks(w.per / w.calls * share)))
    return tuple(rules)


def block_keys(endpoint: str) -> tuple[str, ...]:
    """Keys whose blocks (set by :meth:`Budget.on_rejected`) hold back a call to ``endpoint``."""
    if is_suspension(endpoint):
        return (endpoint_key(endpoint), PER_MINUTE_KEY)
    return (endpoint_key(endpoint), ALL_ENDPOINTS_KEY, PER_MINUTE_KEY)


# --------------------------------------------------------------------------- the pure core


def earliest_in_window(times: Sequence[int], calls: int, span: int, t: int) -> int:
    """Earliest ``t' >= t`` that one more call can take without breaking one window.

    ``times`` is sorted. Every run of ``calls`` consecutive recorded calls ``lo..hi`` that
    spans less than ``span`` forbids the open interval ``(hi - span, lo + span)``: a call in
    there would make ``calls + 1`` calls within less than ``span``. (A run spanning ``span``
    or more forbids nothing: a new call before, inside or after it stretches the group of
    ``calls + 1`` to at least ``span``.) Both ends of those intervals grow with the run's
    index, so one forward walk from the first interval still open at ``t`` finds the answer;
    in steady state that walk is one or two steps, whatever the window's length.
    """
    last = len(times) - calls
    j = bisect_right(times, t - span)  # runs starting before j forbid nothing after t
    while j <= last:
        hi = times[j + calls - 1]
        if hi - span >= t:
            break  # this and every later interval starts at or after t
        lo = times[j]
        if hi - lo < span and lo + span > t:
            t = lo + span
        j += 1
    return t


def earliest_slot(now: int, windows: Iterable[tuple[Sequence[int] | Counted, int, int]]) -> int:
    """The earliest tick ``t >= now`` at which one more call fits every sliding window.

    ``windows`` holds one ``(times, calls, span)`` per window: the sorted ticks of the calls
    already recorded in it (future reservations included), and its limit: ``calls`` calls in
    any ``span`` ticks (the window plus the guard). The answer keeps every ``calls + 1``
    consecutive times at least ``span`` apart in every window, and nothing earlier does.
    Integers keep it exact; any unit works. A window given as
    :class:`~alltick_frames.budget.counts.Counted` (counts per bucket) is read conservatively:
    the slot is never earlier than its exact times would allow.

    >>> earliest_slot(100, [([95], 1, 10)])              # 1 per 10 ticks, last call at 95
    105
    >>> earliest_slot(100, [([95], 1, 10), ([90, 98], 2, 30)])
    120
    """
    spans = windows if isinstance(windows, list) else list(windows)
    t = now
    moved = True
    while moved:  # each window moves t to its own earliest; stop when all agree
        moved = False
        for times, calls, span in spans:
            if len(times) >= calls:
                if isinstance(times, Counted):
                    later = times.earliest(calls, span, t)
                else:
                    later = earliest_in_window(times, calls, span, t)
                if later > t:
                    t, moved = later, True
    return t


@dataclass(slots=True)
class LedgerState:
    """Everything a ledger stores for one token.

    * ``calls``: window key -> sorted start ticks of recorded calls (past and reserved),
      pruned once older than the window plus guard;
    * ``counts``: window key -> the same calls as counts per bucket, ``[width, keys, counts]``
      (see :mod:`~alltick_frames.budget.counts`), for a window that allows and holds more
      than :data:`~alltick_frames.budget.counts.COUNT_ABOVE` calls, so that a reservation
      costs the same however many calls the window holds; a key is in ``calls`` or
      ``counts``, never both;
    * ``blocked``: block key -> tick before which nothing counted by that key may start
      (set by :meth:`Budget.on_rejected`; ``daily-cap`` holds the reset time);
    * ``days``: ``day:YYYY-MM-DD`` (UTC+8) -> number of calls recorded on that day.
    """

    calls: dict[str, list[int]] = field(default_factory=dict)
    blocked: dict[str, int] = field(default_factory=dict)
    days: dict[str, int] = field(default_factory=dict)
    counts: dict[str, Counts] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # A record read back from JSON is checked here, so a damaged one is refused
        # (TypeError, as for an unknown field) instead of failing a reservation later.
        for counted in self.counts.values():
            if not (isinstance(counted, list) and len(counted) == 3):
                raise TypeError(f"counts must be [width, keys, counts], got {counted!r:.60}")
            width, keys, ns = counted
            if not (
                type(width) is int
                and width > 0
                and isinstance(keys, list)
                and isinstance(ns, list)
                and len(keys) == len(ns)
                and all(type(k) is int for k in keys)
                and all(type(n) is int and n > 0 for n in ns)
            ):
                raise TypeError(f"counts must be [width, keys, counts], got {counted!r:.60}")

    def window(self, key: str) -> list[int] | Counted:
        """What :func:`earliest_slot` reads for window ``key``: its ticks, or its counts."""
        counted = self.counts.get(key)
        return Counted(counted) if counted is not None else self.calls.get(key, [])

    def calls_between(self, key: str, lo: int, hi: int) -> int:
        """Calls of window ``key`` in ``(lo, hi]`` (with counts, every bucket touching it)."""
        counted = self.counts.get(key)
        if counted is not None:
            return _counts.count_between(counted, lo, hi)
        times = self.calls.get(key, [])
        return bisect_right(times, hi) - bisect_right(times, lo)

    def earliest_after_past(self, key: str, calls: int, span: int, now: int) -> int:
        """Earliest ``t >= now`` that window ``key``'s calls up to ``now`` leave free
        (reservations after ``now`` ignored; with counts, ``now``'s whole bucket is kept)."""
        counted = self.counts.get(key)
        if counted is not None:
            past = Counted(_counts.up_to(counted, now))
            return past.earliest(calls, span, now) if len(past) >= calls else now
        times = self.calls.get(key, [])
        return earliest_in_window(times[: bisect_right(times, now)], calls, span, now)


def _daily_cap_error(endpoint: str, resets_at: float) -> DailyCapReached:
    when = datetime.fromtimestamp(resets_at, UTC).isoformat(timespec="seconds")
    err = DailyCapReached(
        f"the plan's daily call cap is used up; it resets at {when} (00:00 UTC+8)",
        endpoint=endpoint,
    )
    err.resets_at = resets_at  # type: ignore[attr-defined]
    return err


def find_slot(
    state: LedgerState,
    endpoint: str,
    rules: Sequence[Rule],
    now: int,
    *,
    per_day: int,
    guard: int,
    wait_for_reset: bool = False,
    probe: bool = False,
) -> int:
    """The earliest tick ``t >= now`` for a call to ``endpoint``, or raise DailyCapReached.

    Pure: it reads ``state`` and changes nothing. The slot fits every sliding window in
    ``rules`` (see :func:`rules_for` and :func:`earliest_slot`), waits out every block on
    ``endpoint``'s keys, and lands on a UTC+8 day (two days when it starts within ``guard``
    ticks of 00:00) with fewer than ``per_day`` calls recorded. If the day is full, or a
    ``daily-cap`` block says so, it raises :class:`~alltick_frames.core.errors.DailyCapReached`
    with ``resets_at`` set to the next 00:00 UTC+8 (epoch seconds), or, with
    ``wait_for_reset``, looks for a slot from that moment on. With ``probe``, a ``daily-cap``
    block (a conclusion drawn from 605s, not from the day's count) is passed over.
    """
    blocked = state.blocked
    start = max([now, *(blocked.get(k, now) for k in block_keys(endpoint))])
    spent_until = now if probe else blocked.get(DAILY_CAP_KEY, now)
    sliding = [(state.window(key), calls, span) for key, calls, span in rules]
    while True:
        if start < spent_until:
            if not wait_for_reset:
                raise _daily_cap_error(endpoint, from_ticks(spent_until))
            start = spent_until
        t = earliest_slot(start, sliding)
        full = [d for d in _days_of(t, guard) if state.days.get(day_key(d), 0) >= per_day]
        if not full:
            return t
        resets_at = day_start_ticks(max(full) + 1)
        if not wait_for_reset:
            raise _daily_cap_error(endpoint, from_ticks(resets_at))
        start = resets_at


def record(state: LedgerState, rules: Sequence[Rule], t: int, guard: int) -> None:
    """Record a call at tick ``t`` in every window of ``rules`` and on its day(s).

    A window that allows more than :data:`~alltick_frames.budget.counts.COUNT_ABOVE` calls
    moves to counts per bucket once it holds that many ticks (they are counted first), and
    stays on counts until it empties.
    """
    for key, calls, span in rules:
        counted = state.counts.get(key)
        if counted is None and calls > COUNT_ABOVE and len(state.calls.get(key, ())) >= COUNT_ABOVE:
            counted = state.counts[key] = _counts.new_counts(span)
            for old in state.calls.pop(key, ()):
                _counts.add(counted, old)
        if counted is not None:
            _counts.add(counted, t)
        else:
            insort(state.calls.setdefault(key, []), t)
    for d in _days_of(t, guard):
        key = day_key(d)
        state.days[key] = state.days.get(key, 0) + 1


def unrecord(state: LedgerState, rules: Sequence[Rule], t: int, guard: int) -> None:
    """Undo :func:`record` (a reserved slot given back)."""
    for key, _, _ in rules:
        counted = state.counts.get(key)
        if counted is not None:
            _counts.remove(counted, t)
            continue
        times = state.calls.get(key, [])
        i = bisect_left(times, t)
        if i < len(times) and times[i] == t:
            del times[i]
    for d in _days_of(t, guard):
        key = day_key(d)
        if state.days.get(key, 0) > 0:
            state.days[key] -= 1


def move(
    state: LedgerState,
    rules: Sequence[Rule],
    slot: int,
    t: int,
    *,
    per_day: int,
    guard: int,
    sent: bool = False,
    view: Callable[[LedgerState], LedgerState] | None = None,
) -> bool:
    """Move a call recorded at ``slot`` to tick ``t`` (when it really left), if ``t`` fits.

    With ``sent`` the call has already gone: it is moved whether ``t`` fits or not, since
    the ledger must hold where the server saw it for the calls that follow.

    ``t`` fits when every rate window would give it now, with every other recorded call
    (reservations after ``t`` included) in place, on a day with room: then the ledger holds
    the call where the server will see it, and every window stays as it would had the call
    been reserved at ``t``. Otherwise nothing changes and False is returned. The even
    spacing of :func:`rules_for` (``smooth``) is not a limit of the server and is not
    checked: a call that left late may go closer to the next one than the spacing would
    place it, and later slots keep their distance from where it really went. ``view`` is how
    the budget reads the state when it seeks a slot (its own answered calls moved, see
    :meth:`~alltick_frames.budget.pacing.Budget.answered`): ``t`` fits if a slot search
    could have given it.
    """
    unrecord(state, rules, slot, guard)
    judged = state if view is None else view(state)
    sliding = [
        (judged.window(key), calls, span)
        for key, calls, span in rules
        if not key.endswith(SPACING_SUFFIX)
    ]
    fits = earliest_slot(t, sliding) == t
    if sent or (fits and all(state.days.get(day_key(d), 0) < per_day for d in _days_of(t, guard))):
        record(state, rules, t, guard)
        return True
    record(state, rules, slot, guard)
    return False


def settle(times: list[int], moves: dict[int, int]) -> list[int]:
    """``times`` with answered calls moved to their bound: one occurrence of each tick ``t`` in
    ``moves`` replaced by ``moves[t]`` (sorted again). ``times`` itself is returned,
    unchanged, when no tick of ``moves`` is in it.

    The budget reads a window this way when some of its own calls were answered sooner than
    its guard (see :meth:`~alltick_frames.budget.pacing.Budget.answered`).

    >>> settle([10, 20, 30], {20: 5})
    [5, 10, 30]
    >>> settle([10, 20, 20], {20: 15, 99: 1})
    [10, 15, 20]
    """
    if not moves:
        return times
    kept, seen = [], set()
    for x in times:
        if x in moves and x not in seen:  # two calls at one tick (no smoothing): one moves
            seen.add(x)
            kept.append(moves[x])
        else:
            kept.append(x)
    if not seen:
        return times
    kept.sort()
    return kept


def prune(state: LedgerState, rules: Sequence[Rule], now: int) -> None:
    """Drop what can no longer constrain a call at or after ``now``: old calls, old days."""
    # A call at or before now - span can no longer forbid any t >= now.
    for key, _, span in rules:
        counted = state.counts.get(key)
        if counted is not None:
            _counts.drop_until(counted, now - span)
            if not counted[1]:
                del state.counts[key]
            continue
        times = state.calls.get(key)
        if times:
            cut = bisect_right(times, now - span)
            if cut:
                del times[:cut]
    if len(state.days) > 2:
        oldest = day_key((now + OFFSET_TICKS) // DAY_TICKS - 1)
        for key in [k for k in state.days if k < oldest]:
            del state.days[key]


def block(state: LedgerState, key: str, until: int) -> None:
    """Hold back everything counted by ``key`` until ``until`` (a later block wins)."""
    if until > state.blocked.get(key, until - 1):
        state.blocked[key] = until
