"""Bars from ticks: aligned as /kline aligns them, and equal to the emulator's HTTP bars."""

from __future__ import annotations

import pandas as pd
import pytest
from live_helpers import driven, stream_on

from alltick_frames.api.client import AllTick
from alltick_frames.frames import KLINE_DTYPES
from alltick_frames.live import BarBuilder, ticks_to_bars


def trades(rows: list[tuple[str, str, float]]) -> pd.DataFrame:
    """A trades frame from (code, UTC time, price) rows, volume 1 and turnover = price."""
    return pd.DataFrame(
        {
            "code": pd.array([r[0] for r in rows], dtype="string[pyarrow]"),
            "time": pd.to_datetime([r[1] for r in rows], utc=True),
            "seq": range(len(rows)),
            "price": [r[2] for r in rows],
            "volume": 1.0,
            "turnover": [r[2] for r in rows],
        }
    )


def starts(bars: pd.DataFrame, code: str) -> list[str]:
    stamps = bars.loc[bars["code"] == code, "timestamp"]
    return [t.strftime("%m-%d %H:%M") for t in stamps]


def test_intraday_stock_bars_start_at_each_session_open():
    df = trades(
        [
            ("700.HK", "2024-05-16T01:30:00Z", 1),  # 09:30 HK
            ("700.HK", "2024-05-16T03:59:59Z", 2),  # 11:59:59, the 11:30 bar
            ("700.HK", "2024-05-16T04:30:00Z", 3),  # lunch break: no bar
            ("700.HK", "2024-05-16T05:00:00Z", 4),  # 13:00, a new session
            ("700.HK", "2024-05-15T02:00:00Z", 0),  # Buddha's Birthday, an XHKG holiday
            ("AAPL.US", "2024-03-08T14:30:00Z", 5),  # 09:30 New York, winter time
            ("AAPL.US", "2024-03-11T13:30:00Z", 6),  # 09:30 New York, summer time
            ("AAPL.US", "2024-03-11T20:00:00Z", 7),  # 16:00: closed
            ("AAPL.US", "2024-03-09T15:00:00Z", 8),  # a Saturday
            ("EURUSD", "2024-05-15T13:59:00Z", 9),
        ]
    )
    bars = ticks_to_bars(df, "1h")
    assert starts(bars, "700.HK") == ["05-16 01:30", "05-16 03:30", "05-16 05:00"]
    assert starts(bars, "AAPL.US") == ["03-08 14:30", "03-11 13:30"]
    assert starts(bars, "EURUSD") == ["05-15 13:00"]
    assert bars.attrs["outside_sessions"] == 4
    assert dict(bars.dtypes) == KLINE_DTYPES
    assert list(bars["code"]) == ["700.HK"] * 3 + ["AAPL.US"] * 2 + ["EURUSD"]


def test_calendar_bars_are_local_for_stocks_and_utc_for_the_rest():
    df = trades(
        [
            ("700.HK", "2024-05-16T01:30:00Z", 1),  # Thursday 09:30 HK
            ("EURUSD", "2024-05-12T22:30:00Z", 2),  # Sunday evening: the short Sunday bar
            ("EURUSD", "2024-05-13T00:30:00Z", 3),
            ("BTCUSDT", "2024-05-31T23:59:59Z", 4),
        ]
    )
    assert starts(ticks_to_bars(df, "1d"), "700.HK") == ["05-15 16:00"]  # 00:00 HK
    assert starts(ticks_to_bars(df, "1d"), "EURUSD") == ["05-12 00:00", "05-13 00:00"]
    assert starts(ticks_to_bars(df, "1w"), "EURUSD") == ["05-06 00:00", "05-13 00:00"]
    assert starts(ticks_to_bars(df, "1w"), "700.HK") == ["05-12 16:00"]  # Monday, HK
    assert starts(ticks_to_bars(df, "1M"), "BTCUSDT") == ["05-01 00:00"]
    assert starts(ticks_to_bars(df, "4h"), "EURUSD") == ["05-12 20:00", "05-13 00:00"]
    # The session, as /kline's bars get it: the exchange-local date, UTC for the rest.
    daily = ticks_to_bars(df, "1d")
    sessions = daily["session"].dt.strftime("%m-%d")
    assert list(zip(daily["code"], sessions, strict=True)) == [
        ("700.HK", "05-16"), ("EURUSD", "05-12"), ("EURUSD", "05-13"), ("BTCUSDT", "05-31")
    ]  # fmt: skip


def test_ohlcv_of_a_bar():
    df = trades(
        [
            ("BTCUSDT", f"2024-05-15T14:00:{s:02d}Z", p)
            for s, p in [(1, 5), (9, 7), (30, 2), (59, 4)]
        ]
    )
    (bar,) = ticks_to_bars(df.sample(frac=1, random_state=1), "1m").itertuples()  # any order
    assert (bar.open, bar.high, bar.low, bar.close, bar.volume, bar.turnover) == (5, 7, 2, 4, 4, 18)


def test_bad_input():
    with pytest.raises(ValueError, match="needs a trades frame"):
        ticks_to_bars(pd.DataFrame({"code": ["X"]}))
    with pytest.raises(ValueError, match="unknown interval"):
        ticks_to_bars(trades([]), "7m")
    assert ticks_to_bars(trades([]), "1m").empty


def test_the_builder_hands_out_closed_bars_and_counts_late_trades():
    builder = BarBuilder("1m")
    first = trades([("BTCUSDT", "2024-05-15T14:00:01Z", 1), ("BTCUSDT", "2024-05-15T14:00:50Z", 2)])
    assert builder.update(first).empty
    assert list(builder.forming["close"]) == [2]
    second = trades([("BTCUSDT", "2024-05-15T14:01:02Z", 3)])
    (closed,) = builder.update(second).itertuples()
    assert (closed.open, closed.close, closed.volume) == (1, 2, 2)
    assert builder.update(trades([("BTCUSDT", "2024-05-15T14:00:55Z", 9)])).empty
    assert builder.late == 1 and list(builder.forming["close"]) == [3]


async def test_bars_from_streamed_ticks_equal_the_http_bars(alltick_emulator):
    """The minutes streamed in full (all but the first and the last) equal /kline's 1m bars,
    field for field, and the builder handed out the same bars as they closed."""
    codes = ["AAPL.US", "DJI.US", "BTCUSDT", "EURUSD", "GOLD"]
    emu = alltick_emulator(plan="professional", frozen_clock=True, ws={"cadence": 2.0})
    stream = stream_on(emu, codes, depth=False, duration=250, batch_seconds=5)
    builder, frames, closed = BarBuilder("1m"), [], []
    async with driven(emu, step=0.5), stream:
        async for frame in stream:
            frames.append(frame)
            closed.append(builder.update(frame))
    ticks = pd.concat(frames, ignore_index=True)
    ours = ticks_to_bars(ticks, "1m")
    nth, size = ours.groupby("code").cumcount(), ours.groupby("code")["code"].transform("size")
    ours = ours[(nth > 0) & (nth < size - 1)].reset_index(drop=True)
    assert ours.groupby("code").size().min() >= 2
    emu.set_market_now((ticks["time"].max().ceil("min") + pd.Timedelta(minutes=1)).timestamp())
    async with AllTick(emu.token, "professional", emu.url, cache=False) as client:
        theirs = (await client.klines(codes, "1m", count=8)).data
    keys = ["code", "timestamp"]
    theirs = ours[keys].merge(theirs, on=keys, how="left")[ours.columns]
    pd.testing.assert_frame_equal(ours, theirs, rtol=1e-12)
    built = pd.concat(closed, ignore_index=True)
    pd.testing.assert_frame_equal(ours[keys].merge(built, on=keys)[ours.columns], ours, rtol=1e-12)
