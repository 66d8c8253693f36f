"""The synthetic market: sessions, alignment, OHLC consistency, the forming bar, determinism."""

from __future__ import annotations

import warnings
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import exchange_calendars
import pandas as pd
import pytest
from emu_helpers import FAST

from alltick_frames.emulator import CATALOGUE, sessions
from alltick_frames.emulator import market as mk

NY, HK, SH = ZoneInfo("America/New_York"), ZoneInfo("Asia/Hong_Kong"), ZoneInfo("Asia/Shanghai")
SESSIONS = {
    "AAPL.US": (NY, [("09:30", "16:00")]),
    "DJI.US": (NY, [("09:30", "16:00")]),
    "700.HK": (HK, [("09:30", "12:00"), ("13:00", "16:00")]),
    "600416.SH": (SH, [("09:30", "11:30"), ("13:00", "15:00")]),
    "000627.SZ": (SH, [("09:30", "11:30"), ("13:00", "15:00")]),
}
SATURDAY = "2024-05-18T12:00:00Z"


def bars_of(reply):
    assert reply.ret == 200, reply.raw
    return reply.data["kline_list"]


def local(bar, tz):
    return datetime.fromtimestamp(int(bar["timestamp"]), tz)


@pytest.fixture
def emu(alltick_emulator):
    return alltick_emulator(plan=FAST)


@pytest.mark.parametrize("code", list(SESSIONS))
@pytest.mark.parametrize("kline_type", [1, 2, 3, 4, 5])
async def test_stock_bars_only_in_sessions(emu, api, code, kline_type):
    tz, sessions = SESSIONS[code]
    length = {1: 1, 2: 5, 3: 15, 4: 30, 5: 60}[kline_type]
    bars = bars_of(await api(emu).kline(code, kline_type=kline_type, num=500))
    assert len(bars) == 500
    for bar in bars:
        start = local(bar, tz)
        assert start.weekday() < 5, start
        hhmm = start.strftime("%H:%M")
        session = [(o, c) for o, c in sessions if o <= hhmm < c]
        assert session, f"{code} bar at {start} is outside every session"
        opened = datetime.strptime(session[0][0], "%H:%M")
        offset = (datetime.strptime(hhmm, "%H:%M") - opened).seconds // 60
        assert offset % length == 0, f"{start} is not aligned to the session open"


def calendar_sessions(name: str, last: str) -> list[date]:
    """The sessions the exchange calendar records up to ``last``: the external fact the
    emulator's market must follow (read here straight from the package)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        cal = exchange_calendars.get_calendar(name, start="2000-01-01")
    return [d.date() for d in cal.sessions if d <= pd.Timestamp(last)]


@pytest.mark.parametrize(
    ("code", "tz", "calendar"),
    [("AAPL.US", NY, "XNYS"), ("700.HK", HK, "XHKG"), ("600416.SH", SH, "XSHG")],
)
async def test_stock_calendar_bars_follow_the_exchange_calendar(emu, api, code, tz, calendar):
    """One day bar per session at local midnight, holidays skipped; a week or month bar for
    each week (Monday) or month (the 1st) holding at least one session."""
    sessions = calendar_sessions(calendar, "2024-05-15")
    days = [local(b, tz) for b in bars_of(await api(emu).kline(code, kline_type=8, num=300))]
    assert all(d.time().isoformat() == "00:00:00" for d in days)
    assert [d.date() for d in days] == sessions[-300:]
    weeks = [local(b, tz) for b in bars_of(await api(emu).kline(code, kline_type=9, num=100))]
    mondays = sorted({d - timedelta(days=d.weekday()) for d in sessions})
    assert all(w.time().isoformat() == "00:00:00" for w in weeks)
    assert [w.date() for w in weeks] == mondays[-100:]
    months = [local(b, tz) for b in bars_of(await api(emu).kline(code, kline_type=10, num=60))]
    firsts = sorted({d.replace(day=1) for d in sessions})
    assert [m.date() for m in months] == firsts[-60:]
    assert all(m.time().isoformat() == "00:00:00" for m in months)


@pytest.mark.parametrize("code", ["EURUSD", "BTCUSDT", "GOLD", "US30"])
async def test_fx_and_crypto_calendar_bars_at_utc_midnight(emu, api, code):
    days = [local(b, UTC) for b in bars_of(await api(emu).kline(code, kline_type=8, num=60))]
    assert all(d.hour == 0 and d.minute == 0 for d in days)
    weekdays = {d.weekday() for d in days}
    assert weekdays == (set(range(7)) if code == "BTCUSDT" else {0, 1, 2, 3, 4, 6})
    weeks = [local(b, UTC) for b in bars_of(await api(emu).kline(code, kline_type=9, num=20))]
    assert all(w.weekday() == 0 and w.hour == 0 for w in weeks)


@pytest.mark.parametrize(("kline_type", "length"), [(1, 60), (3, 900), (6, 7200), (7, 14400)])
async def test_fx_intraday_bars_sit_on_the_utc_grid(emu, api, kline_type, length):
    bars = bars_of(await api(emu).kline("EURUSD", kline_type=kline_type, num=200))
    assert all(int(b["timestamp"]) % length == 0 for b in bars)


async def test_weekend_crypto_trades_fx_and_stocks_do_not(alltick_emulator, api):
    emu = alltick_emulator(plan=FAST, now=SATURDAY)
    saturday = datetime.fromisoformat(SATURDAY.replace("Z", "+00:00"))
    btc = bars_of(await api(emu).kline("BTCUSDT", kline_type=1, num=10))
    assert local(btc[-1], UTC) == saturday, "crypto's newest bar is forming now"
    fx = bars_of(await api(emu).kline("EURUSD", kline_type=1, num=10))
    assert local(fx[-1], UTC) == datetime(2024, 5, 17, 21, 59, tzinfo=UTC), "Friday's last"
    aapl = bars_of(await api(emu).kline("AAPL.US", kline_type=1, num=10))
    assert local(aapl[-1], NY) == datetime(2024, 5, 17, 15, 59, tzinfo=NY)
    aapl_days = bars_of(await api(emu).kline("AAPL.US", kline_type=8, num=10))
    assert local(aapl_days[-1], NY).date().isoformat() == "2024-05-17"


@pytest.mark.parametrize(
    "code", ["AAPL.US", "700.HK", "600416.SH", "HSI.HK", "EURUSD", "BTCUSDT", "PEPEUSDT", "NGAS"]
)
@pytest.mark.parametrize("kline_type", [1, 5, 8, 9, 10])
async def test_ohlc_consistency(emu, api, code, kline_type):
    decimals = CATALOGUE[code].decimals
    prices = ("open_price", "high_price", "low_price", "close_price")
    for bar in bars_of(await api(emu).kline(code, kline_type=kline_type, num=500)):
        o, h, lo, c = (float(bar[k]) for k in prices)
        assert 0 < lo <= min(o, c) <= max(o, c) <= h, bar
        assert float(bar["volume"]) >= 0 and float(bar["turnover"]) >= 0
        assert all(len(bar[k].partition(".")[2]) == decimals for k in prices), bar


async def test_fx_has_no_volume_crypto_and_stocks_do(emu, api):
    for code, has_volume in (
        ("EURUSD", False),
        ("GOLD", False),
        ("BTCUSDT", True),
        ("AAPL.US", True),
    ):
        bars = bars_of(await api(emu).kline(code, kline_type=8, num=5))
        assert any(float(b["volume"]) > 0 for b in bars) == has_volume, code
        if not has_volume:
            assert {(b["volume"], b["turnover"]) for b in bars} == {("0", "0")}


async def test_the_forming_bar(alltick_emulator, api):
    """At 14:00:30 UTC (10:00:30 in New York) the newest bars are still forming: they all
    close at the price of this moment, and they change as the market clock moves."""
    emu = alltick_emulator(plan=FAST, now="2024-05-15T14:00:30Z")
    client = api(emu)
    for code in ("BTCUSDT", "EURUSD", "AAPL.US"):
        minute = bars_of(await client.kline(code, kline_type=1, num=3))
        hour = bars_of(await client.kline(code, kline_type=5, num=3))
        day = bars_of(await client.kline(code, kline_type=8, num=3))
        assert local(minute[-1], UTC) == datetime(2024, 5, 15, 14, 0, tzinfo=UTC)
        assert minute[-1]["close_price"] == hour[-1]["close_price"] == day[-1]["close_price"]
        assert minute[-1]["open_price"] == minute[-2]["close_price"], "no gap inside a session"
    before = bars_of(await client.kline("BTCUSDT", kline_type=1, num=3))
    emu.set_market_now("2024-05-15T14:00:50Z")
    after = bars_of(await client.kline("BTCUSDT", kline_type=1, num=3))
    assert after[:2] == before[:2], "closed bars never change"
    assert after[-1]["timestamp"] == before[-1]["timestamp"]
    assert after[-1]["close_price"] != before[-1]["close_price"]
    assert float(after[-1]["volume"]) > float(before[-1]["volume"]), "volume so far grows"
    assert float(after[-1]["high_price"]) >= float(before[-1]["high_price"]), "high so far"


async def test_a_closed_market_shows_its_last_close(emu, api):
    """At 22:00 in Hong Kong today's day bar is complete: it closes where the last minute
    bar (15:59) closes, and the last trade has that price."""
    client = api(emu)
    day = bars_of(await client.kline("700.HK", kline_type=8, num=2))
    minute = bars_of(await client.kline("700.HK", kline_type=1, num=2))
    assert local(day[-1], HK).date() == local(minute[-1], HK).date()
    assert local(minute[-1], HK).strftime("%H:%M") == "15:59"
    assert day[-1]["close_price"] == minute[-1]["close_price"]
    (tick,) = (await client.ticks("trade-tick", ["700.HK"])).data["tick_list"]
    last = datetime.fromtimestamp(int(tick["tick_time"]) / 1000, HK)
    assert last.strftime("%H:%M") == "15:59"


async def test_same_request_same_bytes(alltick_emulator, api):
    one = alltick_emulator(plan=FAST)
    two = alltick_emulator(plan=FAST)
    for code, kline_type in (("AAPL.US", 1), ("EURUSD", 7), ("BTCUSDT", 8), ("700.HK", 10)):
        first = await api(one).kline(code, kline_type=kline_type, num=300)
        again = await api(one).kline(code, kline_type=kline_type, num=300)
        other = await api(two).kline(code, kline_type=kline_type, num=300)
        assert first.raw == again.raw == other.raw
    for endpoint in ("trade-tick", "depth-tick", "static_info"):
        codes = ["AAPL.US", "700.HK"]
        assert (await api(one).ticks(endpoint, codes)).raw == (
            await api(two).ticks(endpoint, codes)
        ).raw


async def test_bars_do_not_depend_on_the_window_asked_for(emu, api):
    client = api(emu)
    wide = bars_of(await client.kline("GOLD", kline_type=2, num=400))
    end = int(wide[199]["timestamp"])
    narrow = bars_of(await client.kline("GOLD", kline_type=2, num=50, end=end))
    assert narrow == wide[150:200]


def test_500_bars_are_made_for_every_window_asked_for():
    """Each of 20 windows gives its 500 bars, strictly in time. (How fast the emulator makes
    them is a benchmark's question, not a test's: see ``benchmarks/client_ceiling.py``.)"""
    now = datetime(2024, 5, 15, 14, tzinfo=UTC).timestamp()
    for code, kline_type in (("AAPL.US", 1), ("EURUSD", 8), ("700.HK", 9)):
        inst = CATALOGUE[code]
        for i in range(20):
            bars = mk.klines(inst, kline_type, now - i * 3600, now, 500, sessions.MARKET_FLOOR)
            assert len(bars) == 500
            stamps = [int(b["timestamp"]) for b in bars]
            assert stamps == sorted(set(stamps))


def test_dst_does_not_move_us_sessions():
    """09:30 New York is 13:30 UTC in summer and 14:30 UTC in winter."""
    inst = CATALOGUE["AAPL.US"]
    for day, utc_hour in (("2024-01-10", 14), ("2024-07-10", 13)):
        now = datetime.fromisoformat(f"{day}T21:00:00+00:00").timestamp()
        bars = sessions.bars_before(inst, 1, now, now, 390, sessions.MARKET_FLOOR)
        first = datetime.fromtimestamp(bars[0].start, UTC)
        assert (first.hour, first.minute) == (utc_hour, 30)
        assert bars[-1].start - bars[0].start == timedelta(hours=6, minutes=29).seconds


def hhmm(bars, tz, day):
    """Start times (HH:MM, local) of the bars that start on ``day`` (YYYY-MM-DD, local)."""
    return [local(b, tz).strftime("%H:%M") for b in bars if str(local(b, tz).date()) == day]


async def test_holidays_half_days_and_lunch_breaks(alltick_emulator, api):
    """The market follows the exchange calendars: no bars on a holiday, an early close on a
    half day (XNYS 13:00, XHKG 12:00 with no afternoon), and bars around each lunch break."""
    emu = alltick_emulator(plan=FAST, now="2024-07-05T12:00:00Z")
    client = api(emu)
    aapl = bars_of(await client.kline("AAPL.US", num=3))
    assert [local(b, NY).date().isoformat() for b in aapl] == [
        "2024-07-01", "2024-07-02", "2024-07-03"
    ], "no bar on the 4th, and the 5th has not opened yet at 08:00 in New York"  # fmt: skip
    hours = bars_of(await client.kline("AAPL.US", kline_type=5, num=20))
    assert hhmm(hours, NY, "2024-07-03") == ["09:30", "10:30", "11:30", "12:30"]
    minutes = bars_of(await client.kline("AAPL.US", kline_type=1, num=300))
    assert hhmm(minutes, NY, "2024-07-03")[-1] == "12:59", "the half day closes at 13:00"

    emu.set_market_now("2024-02-20T00:00:00Z")
    hk = bars_of(await client.kline("700.HK", kline_type=5, num=40))
    assert hhmm(hk, HK, "2024-02-08") == ["09:30", "10:30", "11:30", "13:00", "14:00", "15:00"]
    assert hhmm(hk, HK, "2024-02-09") == ["09:30", "10:30", "11:30"], "Lunar New Year's Eve"
    assert not any(hhmm(hk, HK, f"2024-02-{d}") for d in (10, 11, 12, 13)), "Lunar New Year"
    cn = bars_of(await client.kline("600519.SH", kline_type=8, num=3))
    assert [local(b, SH).date().isoformat() for b in cn] == [
        "2024-02-07",
        "2024-02-08",
        "2024-02-19",
    ]
    cn_minutes = bars_of(await client.kline("600519.SH", kline_type=1, num=240))
    day = hhmm(cn_minutes, SH, "2024-02-19")
    assert (day[0], day[119], day[120], day[-1]) == ("09:30", "11:29", "13:00", "14:59")
    assert len(day) == 240, "two hours before lunch, two after"


async def test_a_long_holiday_shows_the_last_close(alltick_emulator, api):
    """On the last day of China's 2024 National Day week the last trade is still the close
    of 30 September, eight calendar days earlier."""
    emu = alltick_emulator(plan=FAST, now="2024-10-07T06:00:00Z")
    (tick,) = (await api(emu).ticks("trade-tick", ["600519.SH"])).data["tick_list"]
    last = datetime.fromtimestamp(int(tick["tick_time"]) / 1000, SH)
    assert (last.date().isoformat(), last.strftime("%H:%M")) == ("2024-09-30", "14:59")
