"""Free's content limit (issue 11 item 4): AllTick's pricing page gives Free "Last Price, End
of Day Data" only. The API reference does not say so, so the emulator serves Free everything
unless ``free_eod_only``; with it, intraday bars and order books are ``ret`` 603. The client
then returns what Free serves and a ``plan-limit`` row, in words that say why, for the rest.
"""

from __future__ import annotations

from quote_helpers import QUICK_RETRY
from test_client_support import NOW

from alltick_frames.api.client import AllTick
from alltick_frames.budget import Budget
from alltick_frames.core.kinds import explain
from alltick_frames.core.plans import ENDPOINTS, Rate, get_plan

#: The Free plan's basket and caps (its name makes the emulator apply Free's rules), at a
#: pace that keeps the test fast (``lenient_free`` drops the emulator's 1-per-10-s rule).
FREE = get_plan("free").with_overrides(
    endpoint_rates={name: Rate(1_000, 1.0) for name in ENDPOINTS},
    all_endpoints=None,
    per_minute=10**6,
    per_day=10**7,
)


def client(emu) -> AllTick:
    # The emulator fixture's market clock: completeness is judged by the client's.
    return AllTick(
        emu.token, FREE, emu.url, cache=False, budget=Budget(FREE), progress=False,
        retry=QUICK_RETRY, clock=NOW.timestamp,
    )  # fmt: skip


def served(emu) -> dict[str, dict[str, int]]:
    return emu.stats()[emu.token]


async def test_free_end_of_day_only_gets_day_bars_and_plan_limit_rows(alltick_emulator):
    emu = alltick_emulator(plan=FREE, lenient_free=True, free_eod_only=True)
    async with client(emu) as c:
        hourly = await c.klines(["GOLD", "TSLA.US"], "1h", count=10)
        daily = await c.klines(["GOLD", "TSLA.US"], "1d", count=10)
        trades = await c.trades(["GOLD", "TSLA.US"])
    assert hourly.data.empty
    rows = hourly.failures[["code", "interval", "endpoint", "ret", "kind", "attempts"]]
    assert rows.values.tolist() == [
        ["GOLD", "1h", "kline", 603, "plan-limit", 1],
        ["TSLA.US", "1h", "kline", 603, "plan-limit", 1],
    ]
    meaning, action = explain(603)
    assert "Free last prices and end-of-day data only" in meaning
    assert "on Free ask for 1d, 1w or 1M bars" in action
    assert set(hourly.failures["meaning"]) == {meaning}
    assert set(hourly.failures["action"]) == {action}
    assert daily.ok and len(daily.data) == 20
    assert trades.ok and list(trades.data["code"]) == ["GOLD", "TSLA.US"]
    # One /kline call per code and interval: a 603 on one code and one bar is not split.
    assert served(emu) == {"kline": {"603": 2, "200": 2}, "trade-tick": {"200": 2}}


async def test_free_end_of_day_only_refuses_every_order_book(alltick_emulator):
    emu = alltick_emulator(plan=FREE, lenient_free=True, free_eod_only=True)
    codes = ["700.HK", "TSLA.US", "GOLD", "BTCUSDT", "USDJPY"]
    async with client(emu) as c:
        result = await c.depth(codes)
    assert result.data.empty
    rows = result.failures[["code", "endpoint", "ret", "kind"]].values.tolist()
    assert rows == [[code, "depth-tick", 603, "plan-limit"] for code in codes]
    # Each call is split down to single codes before the client gives up on a code:
    # stock path 2 codes (3 calls), forex path 3 codes (1 + 2 + 2 calls).
    assert served(emu) == {"depth-tick": {"603": 8}}
    assert (result.failures["attempts"] == 1).all()


async def test_free_is_served_everything_without_the_switch(alltick_emulator):
    emu = alltick_emulator(plan=FREE, lenient_free=True)
    async with client(emu) as c:
        hourly = await c.klines(["GOLD"], "1h", count=10)
        books = await c.depth(["700.HK", "GOLD"])
    assert hourly.ok and len(hourly.data) == 10
    assert books.ok and set(books.data["code"]) == {"700.HK", "GOLD"}
    assert served(emu) == {"kline": {"200": 1}, "depth-tick": {"200": 2}}
