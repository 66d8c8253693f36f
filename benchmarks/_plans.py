"""The plan the pacing benchmarks share, so that their figures compare one to another."""

from __future__ import annotations

from alltick_frames.core.plans import ENDPOINTS, Plan, get_plan

#: 100 calls a second on every endpoint and in all: fast enough that a job of ~900 calls
#: takes seconds, slow enough that the plan, not the client, sets the pace.
BENCH_100: Plan = get_plan("professional").with_overrides(
    name="bench-100",
    endpoint_rates={e: (100, 1.0) for e in ENDPOINTS},
    all_endpoints=(100, 1.0),
    per_minute=6_000,
    per_day=10_000_000,
)
