"""An independent judge of budget schedules, and tests that it catches what it must.

``check_schedule`` reads the plan table directly (not ``budget.windows_for``) so that a
mistake in how the budget maps plans to windows cannot hide behind the same mistake here.
The other budget test modules import it.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone

import pytest

from alltick_frames.core.plans import Plan, get_plan

UTC8 = timezone(timedelta(hours=8))
#: Epoch times near 1.8e9 carry about 2.4e-7 s of float rounding; a microsecond is far below
#: the 25 ms guard, so it cannot hide a real violation.
EPS = 1e-6


def utc8_date(t: float) -> str:
    return datetime.fromtimestamp(t, UTC8).date().isoformat()


def _groups(plan: Plan, calls: Iterable[tuple[str, float]]) -> dict[str, tuple[int, float, list]]:
    groups: dict[str, tuple[int, float, list]] = {}
    minute: list[float] = []
    every: list[float] = []
    own: dict[str, list[float]] = defaultdict(list)
    for endpoint, t in calls:
        minute.append(t)
        own[endpoint].append(t)
        if not endpoint.startswith("suspension"):
            every.append(t)
    groups["per-minute"] = (plan.per_minute, 60.0, minute)
    if plan.all_endpoints is not None:
        groups["all"] = (plan.all_endpoints.calls, plan.all_endpoints.per, every)
    for endpoint, times in own.items():
        rate = plan.suspension_rate if endpoint.startswith("suspension") else None
        rate = rate or plan.endpoint_rates[endpoint]
        groups[endpoint] = (rate.calls, rate.per, times)
    return groups


def violations(plan: Plan | str, calls: Iterable[tuple[str, float]], guard: float) -> list[str]:
    """Every broken rule in a schedule of ``(endpoint, start)`` pairs, in words."""
    plan = get_plan(plan)
    calls = list(calls)
    found = []
    for name, (limit, per, times) in _groups(plan, calls).items():
        times = sorted(times)
        for i in range(len(times) - limit):
            gap = times[i + limit] - times[i]
            if gap < per + guard - EPS:
                found.append(
                    f"{name}: calls {i} and {i + limit} only {gap:.6f}s apart "
                    f"(limit {limit} per {per}s + guard {guard})"
                )
    days = Counter()
    for _, t in calls:
        for d in {utc8_date(t), utc8_date(t + guard)}:
            days[d] += 1
    found += [f"day {d}: {n} calls > {plan.per_day}" for d, n in days.items() if n > plan.per_day]
    return found


def check_schedule(plan: Plan | str, calls: Iterable[tuple[str, float]], guard: float) -> None:
    """Fail with a readable list if any window of ``plan`` is broken by ``calls``."""
    broken = violations(plan, calls, guard)
    assert not broken, "\n".join(broken[:10])


# --------------------------------------------------------------------------- the judge itself


def test_judge_accepts_a_paced_schedule() -> None:
    calls = [("kline", i * 1.025) for i in range(5)]
    check_schedule("basic", calls, guard=0.025)


@pytest.mark.parametrize(
    ("calls", "what"),
    [
        ([("kline", 0.0), ("kline", 1.0)], "kline"),  # 1/s but no guard
        ([("kline", 0.0), ("trade-tick", 0.5)], "all"),  # all-endpoints 1/s
        ([("batch-kline", 0.0), ("batch-kline", 2.0)], "batch-kline"),  # 1 per 3 s
    ],
)
def test_judge_catches_each_window(calls: list[tuple[str, float]], what: str) -> None:
    broken = violations("basic", calls, guard=0.025)
    assert any(b.startswith(what + ":") for b in broken), broken


def test_judge_catches_the_minute_and_the_day() -> None:
    plan = get_plan("basic").with_overrides(per_minute=3, per_day=4)
    calls = [("kline", i * 1.025) for i in range(4)]
    assert any(b.startswith("per-minute") for b in violations(plan, calls, 0.025))
    day = [("kline", i * 70.0) for i in range(5)]
    assert any(b.startswith("day") for b in violations(plan, day, 0.025))


def test_judge_counts_suspension_per_exchange_and_outside_all_endpoints() -> None:
    calls = [("kline", 0.0), ("suspension/sse", 0.0), ("suspension/nyse", 0.0)]
    assert violations("basic", calls, 0.025) == []
    assert violations("basic", [("suspension/sse", 0.0), ("suspension/sse", 30.0)], 0.0)
