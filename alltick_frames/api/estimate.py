"""What a job would cost, worked out before any call: :meth:`AllTick.estimate`'s answer."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


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
