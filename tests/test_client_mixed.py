"""A mixed job: 200+ codes of every market and asset class, a few unknown and a few
unauthorized, through ``klines()`` and ``latest()``, with exact counts from the emulator."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence

import pytest
from test_client_support import (
    assert_same_bars,
    client,
    codes_by_class,
    fast_plan,
    reference,
    served,
    tokens,
)

from alltick_frames.core.codes import classify
from alltick_frames.core.errors import FAILURE_COLUMNS
from alltick_frames.core.kinds import explain
from alltick_frames.emulator import EmulatorServer

PLAN = fast_plan(100, batch_groups=50)
#: Well-formed codes the emulator's catalogue does not hold: ret 600.
UNKNOWN = ["NOPE.US", "99999.HK", "999999.SH", "NOSUCHPAIR"]


class Mixed:
    """The job: codes in a shuffled order, which of them are bad, and the emulator."""

    def __init__(self, emu: EmulatorServer, good: list[str], unauthorized: list[str]) -> None:
        self.emu = emu
        self.good = good
        self.unauthorized = unauthorized
        self.codes = good + unauthorized + UNKNOWN
        random.Random(7).shuffle(self.codes)

    @property
    def good_in_order(self) -> list[str]:
        return [c for c in self.codes if c in set(self.good)]


@pytest.fixture
def mixed(alltick_emulator) -> Mixed:
    probe = alltick_emulator()
    by_class = codes_by_class(probe)
    probe.stop()
    picks = {"US": 60, "HK": 40, "SH": 20, "SZ": 20, "index": 6, "fx": 30, "crypto": 20,
             "metal": 7, "energy": 3, "cfd": 4}  # fmt: skip
    good = [c for key, n in picks.items() for c in by_class[key][:n]]
    # In the catalogue, but left out of the token's basket: ret 604.
    unauthorized = [
        by_class[key][n] for key, n in picks.items() if key in ("US", "HK", "SZ", "fx", "crypto")
    ]
    assert len(good) >= 200 and not set(UNKNOWN) & {r["code"] for r in probe.codes()}
    # 219 calls at 100/s fill the windows: only an emulator in its own process dates them true.
    emu = alltick_emulator(tokens=tokens(PLAN, basket=good), process=True)
    return Mixed(emu, good, unauthorized)


def expected_bad(mixed: Mixed) -> dict[str, int]:
    return {c: 604 if c in mixed.unauthorized else 600 for c in mixed.unauthorized + UNKNOWN}


async def test_klines_returns_every_valid_bar_and_exactly_the_bad_codes(mixed: Mixed) -> None:
    emu = mixed.emu
    async with client(emu, PLAN) as c:
        result = await c.klines(mixed.codes, "1d", count=250)

    # Every valid code, 250 bars each, in the caller's order, equal to what the emulator serves.
    data = result.data
    assert list(dict.fromkeys(data["code"])) == mixed.good_in_order
    assert data.groupby("code", observed=True).size().eq(250).all()
    assert not data.duplicated(["code", "interval", "timestamp"]).any()
    assert set(data["interval"]) == {"1d"}
    assert_same_bars(data, await reference(emu, mixed.good, 8, 250))

    # Exactly the bad codes, each with its ret, kind and meaning, in the caller's order.
    failures = result.failures
    assert list(failures.columns) == FAILURE_COLUMNS
    bad = expected_bad(mixed)
    assert list(failures["code"]) == [c for c in mixed.codes if c in bad]
    for row in failures.itertuples():
        assert row.ret == bad[row.code]
        assert row.kind == ("code-unauthorized" if row.ret == 604 else "code-invalid")
        assert row.meaning == explain(row.ret)[0]
        assert (row.endpoint, row.interval, row.attempts) == ("kline", "1d", 1)

    # One call per code, as the emulator counted them: no rejection, no retry.
    n_good, n_unauth = len(mixed.good), len(mixed.unauthorized)
    assert served(emu) == {"kline": {"200": n_good, "604": n_unauth, "600": len(UNKNOWN)}}
    assert result.stats.calls == {"kline": len(mixed.codes)}
    assert result.stats.retries == 0 and not result.stats.rejections


def bisection_answers(
    codes: Sequence[str], intervals: Sequence[str], cap: int, bad: dict[str, int]
) -> Counter[str]:
    """The answers /batch-kline gives when groups are packed ``cap`` per call and path, and a
    failing call of several codes is halved by codes until each bad code stands alone (the
    emulator checks every code for 600 before any for 604)."""
    answers: Counter[str] = Counter()

    def visit(groups: list[tuple[str, str]]) -> None:
        names = list(dict.fromkeys(c for c, _ in groups))
        rets = {bad.get(c, 200) for c in names}
        ret = 600 if 600 in rets else 604 if 604 in rets else 200
        answers[str(ret)] += 1
        if ret != 200 and len(names) > 1:
            first = set(names[: len(names) // 2])
            visit([g for g in groups if g[0] in first])
            visit([g for g in groups if g[0] not in first])

    for path in dict.fromkeys(classify(c).path for c in codes):
        groups = [(c, i) for c in codes if classify(c).path == path for i in intervals]
        for start in range(0, len(groups), cap):
            visit(groups[start : start + cap])
    return answers


async def test_latest_isolates_bad_codes_by_bisection_and_delivers_every_good_one(
    mixed: Mixed,
) -> None:
    emu = mixed.emu
    intervals = ["1m", "1d"]
    async with client(emu, PLAN) as c:
        result = await c.latest(mixed.codes, intervals, count=2)

    data = result.data
    sizes = data.groupby(["code", "interval"], observed=True).size()
    assert len(sizes) == 2 * len(mixed.good) and sizes.eq(2).all()
    assert list(dict.fromkeys(data["code"])) == mixed.good_in_order
    # The newest two bars of each group are the newest two that /kline serves.
    for kline_type, alias in ((1, "1m"), (8, "1d")):
        assert_same_bars(
            data[data["interval"] == alias], await reference(emu, mixed.good, kline_type, 2)
        )

    bad = expected_bad(mixed)
    failures = result.failures
    assert list(zip(failures["code"], failures["interval"], strict=True)) == [
        (c, i) for c in mixed.codes if c in bad for i in intervals
    ]
    assert list(failures["ret"]) == [bad[c] for c in failures["code"]]
    assert set(failures["endpoint"]) == {"batch-kline"}
    assert list(failures["meaning"]) == [explain(r)[0] for r in failures["ret"]]

    expected = bisection_answers(mixed.codes, intervals, PLAN.batch_groups, bad)
    assert served(emu) == {"batch-kline": dict(expected)}
    assert expected["200"] > 0 and result.stats.bisections == expected["600"] + expected[
        "604"
    ] - len(bad)
    assert result.stats.calls == {"batch-kline": sum(expected.values())}


async def test_codes_outside_a_market_plan_fail_without_a_call(alltick_emulator) -> None:
    """A market plan (All US) cannot see HK or FX codes: they are reported, never sent."""
    plan = fast_plan(100).with_overrides(name="us-only", markets=["US"])
    emu = alltick_emulator(tokens=tokens(plan))
    codes = ["AAPL.US", "700.HK", "MSFT.US", "EURUSD"]
    async with client(emu, plan) as c:
        result = await c.klines(codes, "1d", count=5)
    assert list(dict.fromkeys(result.data["code"])) == ["AAPL.US", "MSFT.US"]
    assert list(result.failures["code"]) == ["700.HK", "EURUSD"]
    assert set(result.failures["ret"]) == {604} and set(result.failures["attempts"]) == {0}
    assert served(emu) == {"kline": {"200": 2}}
