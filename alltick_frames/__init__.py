"""alltick-frames: AllTick market data as pandas DataFrames, in bulk, inside your plan's limits.

>>> import alltick_frames as af
>>> result = af.klines(["AAPL.US", "700.HK", "EURUSD"], "1d", count=250)   # doctest: +SKIP
>>> result.data          # one row per (code, interval, bar)
>>> result.failures      # one row per item that could not be fetched, with what to do

``AllTick`` is the async client; ``klines``, ``latest``, ``trades``, ``depth``, ``static_info``,
``suspensions`` and ``retry`` are blocking versions that also work inside Jupyter's running
event loop.
"""

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

__all__ = [
    "PLANS",
    "AllTick",
    "AllTickError",
    "AuthError",
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
    "suspensions",
    "trades",
    "wide",
]
__version__ = "0.1.0"
