"""alltick-frames: AllTick market data as pandas DataFrames, in bulk, inside your plan's limits.

>>> import alltick_frames as af
>>> result = af.klines(["AAPL.US", "700.HK", "EURUSD"], "1d", count=250)   # doctest: +SKIP
>>> result.data          # one row per (code, interval, bar)
>>> result.failures      # one row per item that could not be fetched, with what to do

``AllTick`` is the async client; ``klines``, ``latest``, ``trades``, ``depth``, ``static_info``,
``suspensions`` and ``retry`` are blocking versions that also work inside Jupyter's running
event loop.

The names are loaded on first use, so that ``import alltick_frames`` (and the command line's
``--help``) stays light; ``from alltick_frames import AllTick`` works as usual.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: Every public name, by the module that defines it.
_EXPORTS: dict[str, str] = {
    "AllTick": "alltick_frames.api.client",
    "FetchResult": "alltick_frames.api.result",
    "FetchStats": "alltick_frames.api.result",
    **dict.fromkeys(
        ("depth", "klines", "latest", "retry", "static_info", "suspensions", "trades"),
        "alltick_frames.api.sync",
    ),
    **dict.fromkeys(
        (
            "AllTickError",
            "AuthError",
            "CodeError",
            "DailyCapReached",
            "FetchFailed",
            "PlanLimitError",
            "RateLimitError",
            "RequestError",
            "TransportError",
        ),
        "alltick_frames.core.errors",
    ),
    "Interval": "alltick_frames.core.intervals",
    "parse_interval": "alltick_frames.core.intervals",
    **dict.fromkeys(
        ("PLANS", "Plan", "Rate", "get_plan", "load_plan_file"), "alltick_frames.core.plans"
    ),
    "wide": "alltick_frames.frames",
    **dict.fromkeys(("BarBuilder", "stream", "ticks_to_bars"), "alltick_frames.live"),
    "RetryPolicy": "alltick_frames.run.runner",
}

__all__ = [
    "PLANS",
    "AllTick",
    "AllTickError",
    "AuthError",
    "BarBuilder",
    "CodeError",
    "DailyCapReached",
    "FetchFailed",
    "FetchResult",
    "FetchStats",
    "Interval",
    "Plan",
    "PlanLimitError",
    "Rate",
    "RateLimitError",
    "RequestError",
    "RetryPolicy",
    "TransportError",
    "depth",
    "get_plan",
    "klines",
    "latest",
    "load_plan_file",
    "parse_interval",
    "retry",
    "static_info",
    "stream",
    "suspensions",
    "ticks_to_bars",
    "trades",
    "wide",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})


if TYPE_CHECKING:
    from alltick_frames.api.client import AllTick
    from alltick_frames.api.result import FetchResult, FetchStats
    from alltick_frames.api.sync import (
        depth,
        klines,
        latest,
        retry,
        static_info,
        suspensions,
        trades,
    )
    from alltick_frames.core.errors import (
        AllTickError,
        AuthError,
        CodeError,
        DailyCapReached,
        FetchFailed,
        PlanLimitError,
        RateLimitError,
        RequestError,
        TransportError,
    )
    from alltick_frames.core.intervals import Interval, parse_interval
    from alltick_frames.core.plans import PLANS, Plan, Rate, get_plan, load_plan_file
    from alltick_frames.frames import wide
    from alltick_frames.run.runner import RetryPolicy
