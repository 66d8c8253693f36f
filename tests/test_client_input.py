"""Bad input raises ValueError, saying what to change, before any call: the emulator sees
nothing at all."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pandas as pd
import pytest
from test_client_support import NOW, TOKEN, client, fast_plan, tokens

from alltick_frames import AllTick

PLAN = fast_plan(100)
LAST_WEEK = NOW - pd.Timedelta(days=7)

#: (what is wrong, klines arguments, words the message must hold)
BAD_KLINES: list[tuple[str, dict[str, Any], str]] = [
    ("no codes", {"codes": []}, "no codes given"),
    ("a repeated code", {"codes": ["EURUSD", "GOLD", "EURUSD"]}, "codes repeated: ['EURUSD']"),
    ("lower-case stock", {"codes": ["aapl.us"]}, "malformed US code 'aapl.us'"),
    ("zero-padded HK", {"codes": ["0700.hk"]}, "malformed HK code"),
    ("empty code", {"codes": ["EURUSD", ""]}, "empty or has surrounding spaces"),
    ("leading space", {"codes": [" AAPL.US"]}, "surrounding spaces"),
    ("trailing space", {"codes": ["EURUSD "]}, "surrounding spaces"),
    ("inner space", {"codes": ["BTC USDT"]}, "malformed code 'BTC USDT'"),
    ("not a string", {"codes": ["EURUSD", 700]}, "codes must be strings"),
    ("count zero", {"codes": "EURUSD", "count": 0}, "count must be a whole number >= 1"),
    ("count negative", {"codes": "EURUSD", "count": -5}, "count must be a whole number >= 1"),
    ("count float", {"codes": "EURUSD", "count": 2.5}, "count must be a whole number >= 1"),
    ("count bool", {"codes": "EURUSD", "count": True}, "count must be a whole number >= 1"),
    ("count and start", {"codes": "EURUSD", "count": 5, "start": "2024-01-02"}, "either count"),
    (
        "start after end",
        {"codes": "EURUSD", "start": "2024-03-02", "end": "2024-03-01"},
        "is after end",
    ),
    (
        "naive datetime",
        {"codes": "EURUSD", "start": datetime(2024, 3, 1, 12)},
        "has no time zone",
    ),
    ("naive string", {"codes": "EURUSD", "start": "2024-03-01 12:00"}, "has no time zone"),
    (
        "naive end",
        {"codes": "EURUSD", "start": "2024-03-01", "end": datetime(2024, 4, 1, 9)},
        "end=",
    ),
    ("milliseconds", {"codes": "EURUSD", "start": 1_700_000_000_000}, "looks like milliseconds"),
    ("not a time", {"codes": "EURUSD", "start": "yesterday"}, "is not a time"),
    ("bool time", {"codes": "EURUSD", "start": True}, "is not a time"),
    ("future start", {"codes": "EURUSD", "start": "2030-01-01"}, "is in the future"),
    ("unknown interval", {"codes": "EURUSD", "interval": "3h"}, "unknown interval '3h'"),
    ("kline_type 11", {"codes": "EURUSD", "interval": 11}, "kline_type 1..10"),
    ("5M is months", {"codes": "EURUSD", "interval": "5M"}, "m = minute, M = month"),
    ("bool interval", {"codes": "EURUSD", "interval": False}, "not False"),
]

#: (what is wrong, latest arguments, words the message must hold)
BAD_LATEST: list[tuple[str, dict[str, Any], str]] = [
    ("count 3", {"codes": ["EURUSD"], "count": 3}, "count must be 1 or 2"),
    ("count 0", {"codes": ["EURUSD"], "count": 0}, "count must be 1 or 2"),
    ("no intervals", {"codes": ["EURUSD"], "intervals": []}, "no intervals given"),
    ("repeated interval", {"codes": ["EURUSD"], "intervals": ["1m", "1T"]}, "intervals repeated"),
    (
        "4h for a stock",  # klines() builds them from 1h bars; two bars of a batch cannot
        {"codes": ["EURUSD", "TSLA.US"], "intervals": "4h"},
        "not offered for stocks and indices (TSLA.US), and the newest bar or two cannot be "
        "built from 1h bars: use klines(codes, '2h', count=N)",
    ),
    ("no codes", {"codes": []}, "no codes given"),
    ("a repeated code", {"codes": ["TSLA.US", "TSLA.US"]}, "codes repeated"),
    ("lower-case stock", {"codes": ["tsla.us"]}, "malformed US code"),
]


@pytest.fixture
def emu(alltick_emulator):
    return alltick_emulator(tokens=tokens(PLAN))


@pytest.mark.parametrize(("what", "args", "words"), BAD_KLINES, ids=[c[0] for c in BAD_KLINES])
async def test_bad_klines_input_raises_before_any_call(emu, what, args, words) -> None:
    async with client(emu, PLAN) as c:
        with pytest.raises(ValueError) as info:
            await c.klines(**args)
        with pytest.raises(ValueError):
            c.estimate("klines", **args)
    assert words in str(info.value), str(info.value)
    assert emu.stats() == {}


@pytest.mark.parametrize(("what", "args", "words"), BAD_LATEST, ids=[c[0] for c in BAD_LATEST])
async def test_bad_latest_input_raises_before_any_call(emu, what, args, words) -> None:
    async with client(emu, PLAN) as c:
        with pytest.raises(ValueError) as info:
            await c.latest(**args)
    assert words in str(info.value), str(info.value)
    assert emu.stats() == {}


async def test_good_spellings_of_the_same_request_are_accepted(emu) -> None:
    """Aliases, kline_type integers, dates, aware datetimes and epoch seconds all work."""
    async with client(emu, PLAN) as c:
        a = await c.klines("EURUSD", "1d", start="2024-05-01", end=LAST_WEEK.isoformat())
        b = await c.klines(["EURUSD"], 8, start=date(2024, 5, 1), end=LAST_WEEK)
        e = await c.klines(
            ("EURUSD",),
            "daily",
            start=datetime(2024, 5, 1, tzinfo=UTC),
            end=int(LAST_WEEK.timestamp()),
        )
    assert a.ok and len(a.data) == 7  # 1-8 May 2024: FX trades from Sunday 22:00 UTC
    for other in (b, e):
        pd.testing.assert_frame_equal(other.data, a.data)
    assert emu.stats()[TOKEN] == {"kline": {"200": 3}}


def test_a_missing_token_or_unknown_plan_is_refused(monkeypatch, emu) -> None:
    monkeypatch.delenv("ALLTICK_TOKEN", raising=False)
    with pytest.raises(ValueError, match="no AllTick token"):
        AllTick(None, PLAN, emu.url, cache=False)
    with pytest.raises(ValueError, match="no AllTick token"):
        AllTick("", PLAN, emu.url, cache=False)
    with pytest.raises(ValueError, match="unknown plan 'platinum'"):
        AllTick(TOKEN, "platinum", emu.url, cache=False)
    assert emu.stats() == {}
