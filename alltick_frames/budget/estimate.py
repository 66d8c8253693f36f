"""Dry runs: how long calls would take under a plan, before any is made.

:func:`theoretical_minimum` is an analytic lower bound; :func:`estimate_schedule` runs the
real :class:`~alltick_frames.budget.pacing.Budget` on a
:class:`~alltick_frames.core.clock.FakeClock`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping

from alltick_frames.budget.guard import LearnedGuard
from alltick_frames.budget.ledger_memory import MemoryLedger
from alltick_frames.budget.pacing import Budget
from alltick_frames.budget.slots import MINUTE, day_index, day_key
from alltick_frames.core.clock import FakeClock
from alltick_frames.core.errors import DailyCapReached
from alltick_frames.core.plans import SUSPENSION, Plan, get_plan


def theoretical_minimum(plan: Plan | str, calls: Mapping[str, int]) -> float:
    """A lower bound, in seconds, from the first call's start to the last's for ``calls``.

    ``calls`` maps endpoint names to call counts. For every sliding window of ``L`` calls per
    ``S`` seconds that ``N`` of the calls count against, the ``N``-th can start no sooner than
    ``floor((N - 1) / L) * S`` after the first; the bound is the largest of these (no guard).
    More calls than the daily cap gives ``math.inf``. This reads the plan directly, not the
    budget's windows, so it can check them.

    >>> theoretical_minimum("basic", {"kline": 100, "batch-kline": 10})   # 1 call/s overall
    109.0
    """
    plan = get_plan(plan)
    counts = {k: n for k, n in calls.items() if n > 0}
    total = sum(counts.values())
    if total == 0:
        return 0.0
    if total > plan.per_day:
        return math.inf
    bounds = [(total, plan.per_minute, MINUTE)]
    quote = sum(n for e, n in counts.items() if not e.startswith(SUSPENSION))
    if plan.all_endpoints is not None and quote:
        bounds.append((quote, plan.all_endpoints.calls, plan.all_endpoints.per))
    for endpoint, n in counts.items():
        rate = plan.rate_for(endpoint)
        bounds.append((n, rate.calls, rate.per))
    return max((n - 1) // limit * per for n, limit, per in bounds)


def estimate_schedule(
    plan: Plan | str,
    calls: Mapping[str, int],
    used_today: int = 0,
    guard: float | None = None,
    *,
    start: float | None = None,
    wait_for_reset: bool = True,
) -> float:
    """How long, in seconds from first start to last, the budget itself would take for ``calls``.

    Runs the real slot algorithm on a :class:`~alltick_frames.core.clock.FakeClock` (no sleeping;
    about 10 µs per call). At each step the endpoint whose next slot comes first takes it;
    ties go to the endpoint with the longest chain left (calls left x its own interval), so
    a slow endpoint such as ``batch-kline`` is started early and the others fill its gaps.
    That is the schedule of callers that keep every endpoint's queue busy; callers that
    reserve in a worse order take longer, never less.

    ``used_today`` calls already spent today count against the daily cap; ``start`` is the
    epoch the run would begin (default now), which decides when the day resets. Past the cap
    the estimate waits for the reset (``wait_for_reset``) or is ``math.inf``.

    ``guard`` fixes the budget's guard (seconds). By default the estimate runs the learned
    guard a fresh budget starts with, on a **quiet link**: every call answered, with latencies
    that do not spread, so the guard is its cold 0.1 s until it has measured its first calls,
    then its floor (10 ms). A jittery link keeps it wider (up to 0.5 s) and a rejection widens
    it: pass the guard a job reported (``FetchStats.guard``) to estimate on that link.
    """
    plan = get_plan(plan)
    todo = {e: n for e, n in calls.items() if n > 0}
    if not todo:
        return 0.0
    clock = FakeClock(time.time() if start is None else start)
    ledger = MemoryLedger()
    if used_today:
        ledger.state.days[day_key(day_index(clock.now()))] = used_today
    margin = LearnedGuard() if guard is None else guard
    budget = Budget(plan, clock=clock, ledger=ledger, guard=margin, wait_for_reset=wait_for_reset)
    weight = {e: plan.rate_for(e).interval for e in todo}
    first: float | None = None
    last = clock.now()
    try:
        while todo:
            endpoint = min(todo, key=lambda e: (budget.next_slot(e), -todo[e] * weight[e], e))
            last = budget.reserve(endpoint)
            budget.observe(endpoint, 0.0)  # a quiet link (see above)
            budget.on_accepted(endpoint)
            first = last if first is None else first
            clock.set(max(last, clock.now()))  # a slot at "now" may round a hair below it
            todo[endpoint] -= 1
            if not todo[endpoint]:
                del todo[endpoint]
    except DailyCapReached:
        return math.inf
    return last - (first if first is not None else last)
