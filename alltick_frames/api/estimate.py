"""What a job would cost, worked out before any call: :meth:`AllTick.estimate` (mixed into
:class:`~alltick_frames.api.client.AllTick` by :class:`EstimateMixin`) and its answer."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from alltick_frames.core import planner
from alltick_frames.core.intervals import Interval
from alltick_frames.core.plans import BATCH_KLINE, KLINE

if TYPE_CHECKING:
    from alltick_frames.budget import Budget
    from alltick_frames.core import cache_planner
    from alltick_frames.core.codes import CodeInfo
    from alltick_frames.core.plans import Plan
    from alltick_frames.store import BarStore


@dataclass(frozen=True)
class CallPlan:
    """Calls per endpoint a job needs, and how many of its items the cache answers."""

    calls: dict[str, int]
    cached: int = 0
    route: str = ""


@dataclass(frozen=True)
class Estimate:
    """What a job would cost, worked out before any call (see :meth:`AllTick.estimate`)."""

    calls: dict[str, int]
    #: How long the plan's windows make those calls take, at the least (seconds).
    seconds: float
    #: Share of the plan's daily cap the calls would use, and calls left today before them.
    share_of_day: float
    remaining_today: int
    #: Items (codes, or code x interval groups) the cache answers without a call.
    cached: int = 0
    route: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "calls": dict(self.calls),
            "total_calls": self.total_calls,
            "seconds": round(self.seconds, 3),
            "share_of_day": round(self.share_of_day, 6),
            "remaining_today": self.remaining_today,
            "cached": self.cached,
            "route": self.route,
            "notes": list(self.notes),
        }

    def __str__(self) -> str:
        calls = ", ".join(f"{n} {e}" for e, n in sorted(self.calls.items()) if n) or "no calls"
        text = (
            f"{calls}; at least {self.seconds:.1f}s on this plan; "
            f"{self.share_of_day:.2%} of the daily cap ({self.remaining_today} calls left today)"
        )
        if self.cached:
            text += f"; {self.cached} answered from the cache"
        return text


class EstimateMixin:
    """``estimate`` and the call counts of each k-line method, for :class:`AllTick` (the quote
    methods' counts are :class:`~alltick_frames.api.quotes.QuotesMixin`'s)."""

    if TYPE_CHECKING:  # provided by AllTick
        plan: Plan
        store: BarStore | None
        budget: Budget
        clock: Callable[[], float]

        def _plan_round(
            self,
            req: planner.KlineRequest,
            todo: Sequence[CodeInfo],
            now: float,
            paged: set[str],
        ) -> tuple[list[cache_planner.SeriesPlan], int]: ...

        def _batch_route(
            self, plans: Sequence[cache_planner.SeriesPlan]
        ) -> tuple[list[cache_planner.SeriesPlan], list[planner.BatchChunk]]: ...

    def _estimate_guard(self) -> float | None:
        """The guard an estimate assumes: the budget's, if fixed or already learned from
        measured calls; else None, a fresh learned guard on a quiet link (see
        :func:`~alltick_frames.budget.estimate_schedule`)."""
        margin = self.budget.margin
        if not margin.learned or margin.spread() is not None:
            return margin.value
        return None

    def estimate(self, method: str, *args: Any, **kwargs: Any) -> Estimate:
        """What ``method(*args, **kwargs)`` would cost, without making any call.

        Counts what the cache already holds, then gives the calls per endpoint, how long the
        plan's windows make them take at the least, and what share of today's cap they use.
        ``method`` is ``"klines"``, ``"latest"``, ``"trades"``, ``"depth"``,
        ``"static_info"`` or ``"suspensions"``. Paging calls for a time range are an upper
        bound: markets that close at night and at weekends have fewer bars than the span.
        """
        from alltick_frames.budget import estimate_schedule

        planner_of = getattr(self, f"_calls_for_{method}", None)
        if planner_of is None:
            raise ValueError(f"cannot estimate {method!r}: use klines, latest, trades, ...")
        planned = planner_of(*args, **kwargs)
        if not isinstance(planned, CallPlan):
            planned = CallPlan(planned)
        calls = planned.calls
        usage = self.budget.usage()
        total = sum(calls.values())
        seconds = estimate_schedule(
            self.plan, calls, used_today=usage["calls_today"], guard=self._estimate_guard()
        )
        notes = []
        if total > usage["remaining_today"]:
            notes.append(
                f"needs {total} calls but only {usage['remaining_today']} remain today: "
                "the job will stop at the cap and list the rest as failures"
            )
        return Estimate(
            calls=dict(calls),
            seconds=seconds,
            share_of_day=total / self.plan.per_day,
            remaining_today=usage["remaining_today"],
            cached=planned.cached,
            route=planned.route or "+".join(sorted(e for e, n in calls.items() if n)),
            notes=notes,
        )

    def _calls_for_klines(
        self,
        codes: str | Iterable[str],
        interval: str | int | Interval = "1d",
        count: int | None = None,
        start: planner.TimeLike | None = None,
        end: planner.TimeLike | None = None,
    ) -> CallPlan:
        from alltick_frames.frames import derive

        now = self.clock()
        req = planner.kline_request(codes, interval, count, start, end, now=now)
        calls: Counter[str] = Counter()
        cached = 0
        for part in derive.split(req, now):  # a derived part costs what its 1h bars cost
            planned = self._calls_for_fetch(part.fetch, now)
            calls.update(planned.calls)
            cached += planned.cached
        if self.store is None:
            return CallPlan(dict(calls))
        route = "+".join(sorted(e for e, n in calls.items() if n)) or "cache"
        return CallPlan(dict(calls), cached, route)

    def _calls_for_fetch(self, req: planner.KlineRequest, now: float) -> CallPlan:
        from alltick_frames.run.jobs import outside_plan

        todo = [c for c in req.codes if c not in outside_plan(req.codes, self.plan)]
        if self.store is None:
            return CallPlan(planner.kline_calls(req, self.plan, now, todo))
        needy, served = self._plan_round(req, todo, now, set())
        batch, chunks = self._batch_route(needy)
        calls = {
            KLINE: sum(
                planner.chain_calls(page, self.plan, now)
                for p in needy
                if p not in batch
                for page in p.pages
            ),
            BATCH_KLINE: len(chunks),
        }
        route = "+".join(sorted(e for e, n in calls.items() if n)) or "cache"
        return CallPlan(calls, served, route)

    def _calls_for_latest(
        self,
        codes: str | Iterable[str],
        intervals: str | int | Interval | Sequence[str | int | Interval] = ("1m",),
        count: int = 1,
    ) -> dict[str, int]:
        from alltick_frames.run.jobs import outside_plan

        groups = planner.latest_groups(codes, intervals, count)
        blocked = set(outside_plan(list(dict.fromkeys(c for c, _ in groups)), self.plan))
        return planner.batch_calls([g for g in groups if g[0] not in blocked], self.plan)
