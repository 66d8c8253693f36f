"""What a rejection costs a job: one call sent again, a block as short as the evidence allows,
never a timeout, and a daily cap only on evidence, probed by later jobs and gone with the day.
Counts come from the emulator."""

from __future__ import annotations

import json

import aiohttp
from test_client_support import GUARD, TOKEN, WarpClock, client, codes_by_class, fast_plan, served

from alltick_frames.budget import Budget
from alltick_frames.core.codes import classify

PLAN = fast_plan(100, per_day=100)
#: The emulator's fault sequence under this seed answers its first faulted call 605.
SEED_605_FIRST = 3


async def other_client(emu, code: str, calls: int) -> None:
    """``calls`` requests on our token that our budget never hears of (another process)."""
    data = {"code": code, "kline_type": 8, "kline_timestamp_end": 0, "query_kline_num": 2}
    query = {"trace": "other", "data": {**data, "adjust_type": 0}}
    async with aiohttp.ClientSession() as http:
        for _ in range(calls):
            url = f"{emu.url}{classify(code).path}/kline"
            params = {"token": TOKEN, "query": json.dumps(query)}
            async with http.get(url, params=params) as resp:
                assert json.loads(await resp.read())["ret"] == 200


async def test_a_605_once_costs_one_call_sent_again_and_nothing_else(alltick_emulator) -> None:
    """A call answered 605 is sent again once the (short) block ends: no timeout, no attempt
    lost to waiting, every request counted once, and the day is not concluded spent. The
    transport's timeout (0.5 s) is shorter than the block (1 s): a call that waits for its
    slot in the transport's ``ready`` hook must not time out (test_transport covers that
    wait directly)."""
    emu = alltick_emulator(tokens={TOKEN: PLAN}, faults={"rate_limit": 1.0}, seed=SEED_605_FIRST)

    class OnceBudget(Budget):
        def on_rejected(self, endpoint: str, ret: int, sent: float | None = None) -> None:
            emu.set_faults(rate_limit=0.0)  # the server answers 605 once
            super().on_rejected(endpoint, ret, sent)

    budget = OnceBudget(PLAN, guard=GUARD)
    codes = codes_by_class(emu)["US"][:6]
    # One call in flight: none can reach the server between the 605 and the faults' end.
    async with client(emu, PLAN, budget=budget, concurrency=1, timeout=0.5) as c:
        result = await c.klines(codes, "1d", count=10)
    assert served(emu) == {"kline": {"605": 1, "200": 6}}
    assert result.ok and result.stats.calls == {"kline": 7} and result.stats.retries == 1
    assert result.stats.rejections == {605: 1} and not result.stats.faults
    assert not budget.usage()["exhausted"]


async def test_a_spent_day_is_concluded_on_evidence_probed_and_gone_with_the_day(
    alltick_emulator, tmp_path
) -> None:
    """Another client spent the token's day (100 calls). Our jobs share a cache directory:

    * the first job's calls all get 605, probes ever further apart; only 605s persisting two
      minutes past the first conclude the day is spent, and its items fail ``daily-cap``;
    * a job started within the minute sends nothing; one started a minute on sends a single
      probe (605: the cap holds);
    * the next UTC+8 day, the conclusion is gone: the job runs.
    """
    emu = alltick_emulator(tokens={TOKEN: PLAN})
    codes = codes_by_class(emu)["US"][:4]
    await other_client(emu, codes[0], 100)
    warp = WarpClock(emu.clock, jump=0.5)
    warp.advance(1.0)  # past the other client's second: its day is spent, not its rate

    async def job() -> object:
        budget = Budget.for_token(PLAN, TOKEN, tmp_path, clock=warp, guard=GUARD)
        # One call in flight, so that no call is on its way when a 605 comes back: the count
        # of 605s is then the budget's probes alone, however loaded the machine.
        async with client(emu, PLAN, budget=budget, cache=tmp_path, concurrency=1) as c:
            return await c.klines(codes, "1d", count=10)

    first = await job()
    # 605s at 0, 0.01, 0.03 ... 40.95 s (one call's spacing at 6,000 a minute, doubling),
    # then 101 s (a minute past the first: the second in a row) and 161 s (the third)
    assert served(emu)["kline"] == {"200": 100, "605": 15}
    assert set(first.failures["kind"]) == {"daily-cap"}
    assert list(first.failures["code"]) == codes

    second = await job()
    assert served(emu)["kline"]["605"] == 15 and set(second.failures["kind"]) == {"daily-cap"}
    warp.advance(61)
    third = await job()
    assert served(emu)["kline"]["605"] == 16 and set(third.failures["kind"]) == {"daily-cap"}

    warp.advance(86_400)
    fourth = await job()
    assert fourth.ok and served(emu)["kline"] == {"200": 104, "605": 16}
