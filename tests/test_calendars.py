"""The client's calendars (core/calendars.py): session dates and the bars a market should have,
checked against known holidays, half days and breaks, and against exchange_calendars itself."""

from __future__ import annotations

import warnings

import exchange_calendars
import numpy as np
import pandas as pd
import pytest

from alltick_frames.core import calendars
from alltick_frames.core.codes import classify
from alltick_frames.core.intervals import parse_interval

LATER = pd.Timestamp("2025-06-01T00:00Z").timestamp()  # every bar below has begun by then


def t(moment: str) -> int:
    return int(pd.Timestamp(moment).timestamp())


def local(stamps: np.ndarray, zone: str) -> list[str]:
    return [f"{pd.Timestamp(s, unit='s', tz='UTC').tz_convert(zone):%m-%d %H:%M}" for s in stamps]


def bars(calendar: str, interval: str, lo: str, hi: str, now: float = LATER) -> list[str]:
    got = calendars.expected_bars(calendar, parse_interval(interval), t(lo), t(hi), now)
    return local(got, calendars.TIME_ZONES[calendar])


@pytest.mark.parametrize(
    ("code", "calendar"),
    [
        ("AAPL.US", "XNYS"), ("DJI.US", "XNYS"), ("700.HK", "XHKG"), ("HSI.HK", "XHKG"),
        ("600519.SH", "XSHG"), ("000001.SZ", "XSHG"), ("EURUSD", "24/5"), ("GOLD", "24/5"),
        ("Silver", "24/5"), ("USOIL", "24/5"), ("US30", "24/5"), ("USDTHB", "24/5"),
        ("BTCUSDT", "24/7"), ("ETHBTC", "24/7"), ("SOLUSDC", "24/7"),
    ],
)  # fmt: skip
def test_each_code_has_its_calendar(code: str, calendar: str) -> None:
    assert calendars.calendar_of(classify(code)) == calendar


def test_session_dates_are_local_dates_as_naive_midnights() -> None:
    stamps = np.array(
        [
            t("2024-05-15T04:00Z"),  # AAPL's day bar: 00:00 in New York
            t("2024-05-14T16:00Z"),  # 700.HK's: 00:00 on the 15th in Hong Kong
            t("2024-05-15T07:59Z"),  # 700.HK's 15:59 minute bar
            t("2024-05-12T22:00Z"),  # EURUSD's Sunday bar: dated Sunday
        ],
        np.int64,
    )
    zones = np.array([0, 1, 1, 2])
    got = calendars.session_dates(
        stamps * 10**9, zones, ("America/New_York", "Asia/Hong_Kong", "UTC")
    )
    assert got.dtype == np.dtype("datetime64[ns]")
    assert [str(d)[:10] for d in got] == ["2024-05-15", "2024-05-15", "2024-05-15", "2024-05-12"]


@pytest.mark.parametrize("zone", ["Asia/Hong_Kong", "Asia/Shanghai", "America/New_York"])
@pytest.mark.parametrize("years", [(1975, 1980), (1986, 1992), (2023, 2025)])
def test_session_dates_match_the_zone_instant_by_instant(zone: str, years: tuple[int, int]) -> None:
    """Bars every 7 minutes over years with and without daylight saving (Hong Kong kept it
    until 1979, Shanghai 1986-1991): the session date is the local date of each instant."""
    lo, hi = (int(pd.Timestamp(f"{y}-01-01", tz="UTC").timestamp()) for y in years)
    stamps = np.arange(lo, hi, 420, dtype=np.int64) * 1_000_000_000
    got = calendars.session_dates(stamps, np.zeros(stamps.size, np.int8), (zone,))
    local = pd.DatetimeIndex(stamps).tz_localize("UTC").tz_convert(zone).tz_localize(None)
    np.testing.assert_array_equal(got, local.normalize().to_numpy("datetime64[ns]"))


def test_lunar_new_year_2024() -> None:
    """Hong Kong closes from the 10th to the 13th after a half day on the 9th; Shanghai from
    the 9th to the 18th."""
    assert bars("XHKG", "1d", "2024-02-05T00:00+08:00", "2024-02-16T00:00+08:00") == [
        "02-05 00:00", "02-06 00:00", "02-07 00:00", "02-08 00:00", "02-09 00:00",
        "02-14 00:00", "02-15 00:00", "02-16 00:00",
    ]  # fmt: skip
    assert bars("XSHG", "1d", "2024-02-07T00:00+08:00", "2024-02-20T00:00+08:00") == [
        "02-07 00:00",
        "02-08 00:00",
        "02-19 00:00",
        "02-20 00:00",
    ]
    assert bars("XHKG", "1h", "2024-02-09T00:00+08:00", "2024-02-15T00:00+08:00") == [
        "02-09 09:30", "02-09 10:30", "02-09 11:30",  # the half day: no afternoon
        "02-14 09:30", "02-14 10:30", "02-14 11:30", "02-14 13:00", "02-14 14:00", "02-14 15:00",
    ]  # fmt: skip


def test_us_half_day_and_independence_day() -> None:
    assert bars("XNYS", "1h", "2024-07-03T00:00-04:00", "2024-07-05T11:00-04:00") == [
        "07-03 09:30", "07-03 10:30", "07-03 11:30", "07-03 12:30",  # closes 13:00
        "07-05 09:30", "07-05 10:30",
    ]  # fmt: skip


def test_derived_intervals_restart_at_each_segment() -> None:
    day = ("2024-02-08T00:00+08:00", "2024-02-08T23:00+08:00")
    assert bars("XHKG", "2h", *day) == ["02-08 09:30", "02-08 11:30", "02-08 13:00", "02-08 15:00"]
    assert bars("XHKG", "4h", *day) == ["02-08 09:30", "02-08 13:00"]
    assert bars("XSHG", "4h", *day) == ["02-08 09:30", "02-08 13:00"]
    us = ("2024-05-15T00:00-04:00", "2024-05-15T23:00-04:00")
    assert bars("XNYS", "2h", *us) == ["05-15 09:30", "05-15 11:30", "05-15 13:30", "05-15 15:30"]
    assert bars("XNYS", "4h", *us) == ["05-15 09:30", "05-15 13:30"]


def test_weeks_and_months_hold_a_session() -> None:
    # 2 to 6 October 2023: a whole week of China's National Day holiday, so no week bar.
    assert bars("XSHG", "1w", "2023-09-20", "2023-10-20") == [
        "09-25 00:00",
        "10-09 00:00",
        "10-16 00:00",
    ]
    assert bars("XNYS", "1M", "2024-01-01T05:00Z", "2024-04-01T05:00Z") == [
        "01-01 00:00",
        "02-01 00:00",
        "03-01 00:00",
        "04-01 00:00",
    ]


def test_fx_opens_sunday_2200_utc_and_crypto_never_closes() -> None:
    assert bars("24/5", "1d", "2024-05-10", "2024-05-15") == [
        "05-10 00:00",
        "05-12 00:00",
        "05-13 00:00",
        "05-14 00:00",
        "05-15 00:00",
    ]
    assert bars("24/5", "4h", "2024-05-10T12:00Z", "2024-05-13T02:00Z") == [
        "05-10 12:00",
        "05-10 16:00",
        "05-10 20:00",
        "05-12 20:00",
        "05-13 00:00",
    ]
    assert bars("24/5", "1h", "2024-05-10T20:00Z", "2024-05-12T23:00Z") == [
        "05-10 20:00",
        "05-10 21:00",
        "05-12 22:00",
        "05-12 23:00",
    ]
    assert len(bars("24/7", "1d", "2024-05-10", "2024-05-16")) == 7
    # Saturday the 1st: June's FX month bar begins trading on Sunday 22:00.
    assert bars("24/5", "1M", "2024-06-01", "2024-06-01", now=t("2024-06-02T21:00Z")) == []
    assert bars("24/5", "1M", "2024-06-01", "2024-06-01", now=t("2024-06-02T22:00Z")) == [
        "06-01 00:00"
    ]


def test_fx_and_crypto_arithmetic_is_exchange_calendars_24_5_and_24_7() -> None:
    """The arithmetic stands in for the package's 24/5 and 24/7, which have no holidays."""
    lo, hi = "2019-01-01", "2024-12-31"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        for name in ("24/5", "24/7"):
            sessions = exchange_calendars.get_calendar(name, start=lo, end=hi).sessions
            days = calendars.expected_bars(name, parse_interval("1d"), t(lo), t(hi), LATER)
            ours = {pd.Timestamp(d, unit="s").normalize() for d in days}
            if name == "24/5":  # FX's Sunday stub is a day bar of its own
                ours = {d for d in ours if d.dayofweek != 6}
            assert ours == set(sessions)


def test_a_bar_is_expected_once_its_market_has_traded_in_it() -> None:
    now = t("2024-05-15T13:30:00Z")  # 09:30 in New York: today's bar has just begun
    day = parse_interval("1d")
    newest = calendars.newest_bars("XNYS", day, now, now, 2)
    assert local(newest, "America/New_York") == ["05-14 00:00", "05-15 00:00"]
    before = calendars.newest_bars("XNYS", day, now, now - 1, 2)
    assert local(before, "America/New_York") == ["05-13 00:00", "05-14 00:00"]


def test_no_bars_beyond_what_a_calendar_records() -> None:
    first, stop = calendars.recorded_span("XSHG")
    assert pd.Timestamp(first, unit="s", tz="Asia/Shanghai").date().isoformat() == "2000-01-04"
    beyond = calendars.expected_bars("XSHG", parse_interval("1d"), stop, stop + 30 * 86_400, 2e10)
    assert beyond.size == 0


def test_segment_opens() -> None:
    stamps = np.array([t("2024-02-08T10:30+08:00"), t("2024-02-08T14:00+08:00"),
                       t("2024-02-08T12:30+08:00"), t("2024-02-10T10:00+08:00")])  # fmt: skip
    got = calendars.segment_opens("XHKG", stamps)
    assert local(got[:2], "Asia/Hong_Kong") == ["02-08 09:30", "02-08 13:00"]
    assert got[2:].tolist() == [-1, -1], "the lunch break, and a holiday"


def test_session_dates_of_no_bars_are_empty():
    """A series whose every bar the checks dropped still gets its (empty) session column."""
    for zone in ("America/New_York", "Asia/Hong_Kong", "UTC"):
        none = np.array([], dtype=np.int64)
        got = calendars.session_dates(none, np.zeros(0, np.intp), (zone,))
        assert got.dtype == np.dtype("datetime64[ns]") and got.size == 0
