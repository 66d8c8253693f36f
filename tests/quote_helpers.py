"""What the tests of trades, depth, static_info and suspensions share: a plan no test can
exhaust, a client of an emulator, and the emulator's answers counted by endpoint."""

from __future__ import annotations

from typing import Any

import orjson
import pandas as pd

from alltick_frames import frames
from alltick_frames.api.client import AllTick
from alltick_frames.budget import Budget
from alltick_frames.core.plans import ENDPOINTS, Plan, Rate, get_plan
from alltick_frames.emulator import EmulatorServer
from alltick_frames.emulator import suspension as emu_suspension
from alltick_frames.emulator.clock import parse_moment
from alltick_frames.emulator.pytest_plugin import FIXTURE_NOW
from alltick_frames.run.runner import RetryPolicy

NOW = parse_moment(FIXTURE_NOW)
PRO = get_plan("professional")
#: Professional's caps with rates no test can exhaust, and halts served every 0.1 s.
FAST = PRO.with_overrides(
    name="fast",
    endpoint_rates={name: Rate(100_000, 1.0) for name in ENDPOINTS},
    all_endpoints=Rate(100_000, 1.0),
    per_minute=10**8,
    suspension_rate=Rate(1, 0.1),
)
QUICK_RETRY = RetryPolicy(attempts=3, base=0.01, cap=0.05)


def client_for(emu: EmulatorServer, plan: Plan | str = FAST, **options: Any) -> AllTick:
    """A client of ``emu`` with its own budget (budgets are otherwise shared per token)."""
    plan = get_plan(plan)
    options.setdefault("retry", QUICK_RETRY)
    return AllTick(
        emu.token, plan, emu.url, cache=False, budget=Budget(plan), progress=False, **options
    )


def body(data: dict[str, Any]) -> bytes:
    return orjson.dumps({"ret": 200, "msg": "ok", "trace": "t", "data": data})


def calls_of(emu: EmulatorServer, endpoint: str) -> dict[str, int]:
    return emu.stats().get(emu.token, {}).get(endpoint, {})


def expected_halts(exchange: str) -> pd.DataFrame:
    """The emulator's halt records of ``exchange`` at :data:`NOW`, decoded."""
    return frames.decode_suspensions(emu_suspension.records(exchange, NOW), exchange)
