"""alltick-frames: AllTick market data as pandas DataFrames, in bulk, inside your plan's limits."""

from alltick_frames.intervals import Interval, parse_interval
from alltick_frames.plans import PLANS, Plan, Rate, get_plan, load_plan_file

__all__ = ["PLANS", "Interval", "Plan", "Rate", "get_plan", "load_plan_file", "parse_interval"]
__version__ = "0.1.0"
