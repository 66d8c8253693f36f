"""Frames a researcher can use as they come (issue 12), against the emulator over real HTTP:
session dates across markets, completeness measured against the exchange calendars, gaps
reported and filled exactly, and 2h/4h stock bars built from 1h bars."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from test_client_support import (
    NOW,
    REF_PLAN,
    REF_TOKEN,
    TOKEN,
    client,
    fast_plan,
    reference,
    served,
)

import alltick_frames as af
from alltick_frames.core.codes import classify
from alltick_frames.core.intervals import parse_interval
from alltick_frames.frames import STRING, completeness
from alltick_frames.frames.completeness import COMPLETENESS_COLUMNS

PLAN = fast_plan(100)
FIVE = ["AAPL.US", "700.HK", "600519.SH", "EURUSD", "BTCUSDT"]
#: Friday 2024-05-24 21:00 UTC: every market has closed its Friday, and none had a holiday
#: that week.
FRIDAY = pd.Timestamp("2024-05-24T21:00:00Z")


def start(alltick_emulator: Any, now: pd.Timestamp = NOW, **faults: float) -> Any:
    return alltick_emulator(
        tokens={TOKEN: PLAN, REF_TOKEN: REF_PLAN}, now=now.isoformat(), faults=faults, seed=3
    )


def at(emu: Any, now: pd.Timestamp, **options: Any) -> af.AllTick:
    return client(emu, PLAN, clock=now.timestamp, **options)


async def test_five_markets_daily_bars_make_one_row_per_session(alltick_emulator) -> None:
    emu = start(alltick_emulator, FRIDAY)
    async with at(emu, FRIDAY) as c:
        result = await c.klines(FIVE, "1d", count=3)
    assert result.ok, result.failures
    closes = af.wide(result.data, "close")
    assert closes.index.name == "session"
    assert closes.index.tolist() == [pd.Timestamp(f"2024-05-{d}") for d in (22, 23, 24)]
    assert list(closes.columns) == FIVE and not closes.isna().any().any()
    assert len(af.wide(result.data, "close", on="timestamp")) == 9  # the bars' own times
    # HK's bar of the 24th starts at 16:00Z on the 23rd, and belongs to the 24th's session.
    hk = result.data[result.data["code"] == "700.HK"]
    assert hk["timestamp"].iloc[-1] == pd.Timestamp("2024-05-23T16:00Z")
    assert hk["session"].iloc[-1] == pd.Timestamp("2024-05-24")
    table = result.completeness
    assert list(table.columns) == COMPLETENESS_COLUMNS
    assert table[["code", "expected", "received", "missing", "coverage"]].values.tolist() == [
        [code, 3, 3, 0, 1.0] for code in FIVE
    ]
    assert table["first_missing"].map(len).eq(0).all() and table["unexpected"].eq(0).all()


async def test_a_holiday_is_no_gap_a_session_row_is_nan(alltick_emulator) -> None:
    """15 May 2024 is a Hong Kong holiday: the day-bar frame has a row for it (the other
    markets traded) with NaN for 700.HK, and nothing is reported missing."""
    emu = start(alltick_emulator, FRIDAY)
    async with at(emu, FRIDAY) as c:
        # From Sunday noon UTC: Monday's day bars start at 16:00Z (Hong Kong), 04:00Z (New York).
        result = await c.klines(["AAPL.US", "700.HK"], "1d", start="2024-05-12T12:00Z", end=FRIDAY)
    assert result.ok
    closes = af.wide(result.data)
    assert len(closes) == 10
    assert closes["700.HK"].isna().tolist() == [False, False, True] + [False] * 7
    assert result.completeness["expected"].tolist() == [10, 9]


@pytest.mark.parametrize("interval", ["1d", "1h"])
async def test_a_range_starting_in_lunar_new_year_is_complete(alltick_emulator, interval) -> None:
    """Hong Kong is shut 10-13 February 2024, Shanghai and Shenzhen 9-18 February: a range
    from the 10th starts with no bar for days, and nothing is missing."""
    codes = ["700.HK", "HSI.HK", "600519.SH", "000001.SZ"]
    emu = start(alltick_emulator)
    async with at(emu, NOW) as c:
        result = await c.klines(codes, interval, start="2024-02-10", end="2024-03-01")
    assert result.ok, result.failures[["code", "kind", "msg"]]
    first = result.data.groupby("code", sort=False)["session"].min()
    assert first.to_dict() == {
        "700.HK": pd.Timestamp("2024-02-14"),
        "HSI.HK": pd.Timestamp("2024-02-14"),
        "600519.SH": pd.Timestamp("2024-02-19"),
        "000001.SZ": pd.Timestamp("2024-02-19"),
    }
    table = result.completeness.set_index("code")
    assert (table["missing"] == 0).all() and (table["coverage"] == 1.0).all()
    assert (table["expected"] == table["received"]).all()


@pytest.mark.parametrize(
    ("code", "interval", "kline_type"), [("EURUSD", "1h", 5), ("700.HK", "1h", 5)]
)
@pytest.mark.parametrize("cache", [False, True], ids=["no-cache", "cache"])
async def test_a_dropped_bar_is_a_gap_and_retry_fetches_exactly_it(
    alltick_emulator, tmp_path: Path, code: str, interval: str, kline_type: int, cache: bool
) -> None:
    emu = start(alltick_emulator, drop_bars=1.0)
    options = {"cache": tmp_path if cache else False}
    async with at(emu, NOW, **options) as c:
        holed = await c.klines([code], interval, count=60)
        emu.set_faults(drop_bars=0.0)  # (the reference token's answers would have holes too)
        expected = (await reference(emu, [code], kline_type, 60))["timestamp"]
        (missing,) = set(expected) - set(holed.data["timestamp"])
        # The page reaches one bar further back, as a server whose history has a hole would.
        assert len(holed.data) == 60 and served(emu) == {"kline": {"200": 1}}

        (gap,) = holed.failures.itertuples()
        assert (gap.code, gap.interval, gap.kind) == (code, interval, "gap")
        when = f"{missing:%Y-%m-%d %H:%M}Z"
        assert gap.msg == f"1 bar missing inside the series, at {when}"
        iso = missing.isoformat().replace("+00:00", "Z")
        assert gap.detail == f"{iso}/{iso}"
        row = holed.completeness.iloc[0]
        assert (row.expected, row.received, row.missing) == (60, 60, 1)
        assert row.first_missing == [missing] and row.coverage == pytest.approx(59 / 60)

        filled = await c.retry(holed)
        assert served(emu) == {"kline": {"200": 2}}, "one call, for the hole alone"
        assert dict(filled.stats.calls) == {"kline": 1}
        assert filled.ok and filled.completeness["coverage"].tolist() == [1.0]
        assert filled.data["timestamp"].tolist() == expected.tolist()
        clean = await c.klines([code], interval, count=60)
    ref = await reference(emu, [code], kline_type, 60)
    for frame in (filled.data, clean.data):
        pd.testing.assert_series_equal(
            frame["close"].reset_index(drop=True), ref["close"], check_names=False
        )
    if cache:  # the store took the hole's bar: the same request is answered from it
        assert served(emu)["kline"] == {"200": 2}


async def test_a_gap_after_a_history_limit_is_filled_and_the_limit_stays(
    alltick_emulator,
) -> None:
    """A series with both a hole and an older shortfall: retry fills the hole, and the
    history row (which no retry can heal) is reported once, as before."""
    emu = start(alltick_emulator, drop_bars=1.0)
    async with at(emu, NOW) as c:
        holed = await c.klines(["AAPL.US", "EURUSD"], "1d", count=600)
        kinds = holed.failures.groupby("code")["kind"].apply(sorted).to_dict()
        assert kinds == {"AAPL.US": ["gap", "not-pageable"], "EURUSD": ["gap", "gap"]}
        emu.set_faults(drop_bars=0.0)
        filled = await c.retry(holed)
    assert holed.completeness["missing"].tolist() == [100, 2]
    assert filled.failures[["code", "kind"]].values.tolist() == [["AAPL.US", "not-pageable"]]
    limit = "asked for 600 bars, {} could be fetched (stocks serve only their latest 500 bars)"
    assert limit.format(500) in set(holed.failures["msg"])
    # The page reached one bar past its 500 (around its hole): that bar is kept.
    assert filled.failures["msg"].tolist() == [limit.format(501)]
    assert filled.completeness["missing"].tolist() == [99, 0]


def aggregate(bars: pd.DataFrame, zone: str, opens: dict[str, str], hours: int) -> pd.DataFrame:
    """The test's own 4h bars: 1h bars grouped by local date and trading segment (the segment
    whose open is the latest at or before the bar), ``hours`` 1h bars from each open."""
    local = bars["timestamp"].dt.tz_convert(zone)
    day = local.dt.normalize()
    clock = local.dt.strftime("%H:%M")
    seg_open = pd.Series([max(o for o in opens if o <= c) for c in clock], index=bars.index).map(
        lambda o: pd.Timedelta(hours=int(o[:2]), minutes=int(o[3:]))
    )
    start = day + seg_open
    k = ((local - start) // pd.Timedelta(hours=hours)).astype(int)
    key = (start + k * pd.Timedelta(hours=hours)).dt.tz_convert("UTC")
    grouped = bars.groupby([bars["code"], key.rename("start")], sort=False)
    return pd.DataFrame(
        {
            "open": grouped["open"].first(),
            "high": grouped["high"].max(),
            "low": grouped["low"].min(),
            "close": grouped["close"].last(),
            "volume": grouped["volume"].sum(),
            "turnover": grouped["turnover"].sum(),
        }
    ).reset_index()


MARKETS = {  # zone, segment opens
    "700.HK": ("Asia/Hong_Kong", {"09:30": 0, "13:00": 0}),
    "AAPL.US": ("America/New_York", {"09:30": 0}),
    "600519.SH": ("Asia/Shanghai", {"09:30": 0, "13:00": 0}),
}


@pytest.mark.parametrize("hours", [2, 4])
async def test_stock_4h_bars_are_1h_bars_aggregated_per_session(alltick_emulator, hours) -> None:
    """At 2024-05-21 04:00Z, a week after HK's Buddha's Birthday and over a weekend: each
    derived bar is the aggregation of the emulator's own 1h bars within one segment of one
    session, and costs what the 1h request costs."""
    now = pd.Timestamp("2024-05-21T04:00:00Z")
    emu = start(alltick_emulator, now)
    codes = list(MARKETS)
    async with at(emu, now) as c:
        estimate = c.estimate("klines", codes, f"{hours}h", count=12)
        derived = await c.klines(codes, f"{hours}h", count=12)
        calls = dict(derived.stats.calls)
        hourly = await c.klines(codes, "1h", count=100)
    assert derived.ok, derived.failures
    assert estimate.calls == calls == dict(hourly.stats.calls) == {"kline": 3}
    assert derived.stats.derived_from == "1h" and hourly.stats.derived_from == ""
    assert set(derived.data["interval"]) == {f"{hours}h"}
    ref = await reference(emu, codes, 5, 200)
    for code, (zone, opens) in MARKETS.items():
        ours = derived.data[derived.data["code"] == code].reset_index(drop=True)
        assert len(ours) == 12
        theirs = aggregate(ref[ref["code"] == code].reset_index(drop=True), zone, opens, hours)
        theirs = theirs[theirs["start"] >= ours["timestamp"].iloc[0]].reset_index(drop=True)
        assert ours["timestamp"].tolist() == theirs["start"].tolist()
        for field in ("open", "high", "low", "close", "volume", "turnover"):
            np.testing.assert_allclose(ours[field], theirs[field], rtol=1e-12, err_msg=field)
        starts = set(ours["timestamp"].dt.tz_convert(zone).dt.strftime("%H:%M"))
        if code == "700.HK":  # never across the lunch break
            want = {"09:30", "13:00"} if hours == 4 else {"09:30", "11:30", "13:00", "15:00"}
            assert starts == want
        assert (ours["session"] == ours["timestamp"].dt.tz_convert(zone).dt.normalize()
                .dt.tz_localize(None)).all()  # fmt: skip
    hk = derived.data[derived.data["code"] == "700.HK"]
    assert pd.Timestamp("2024-05-15") not in set(hk["session"]), "Buddha's Birthday"


async def test_fx_4h_comes_as_served_beside_derived_stock_4h(alltick_emulator, tmp_path) -> None:
    emu = start(alltick_emulator)
    async with at(emu, NOW, cache=tmp_path) as c:
        result = await c.klines(["700.HK", "EURUSD"], "4h", count=5)
        again = await c.klines(["700.HK", "EURUSD"], "4h", count=5)
    assert result.ok and dict(result.stats.calls) == {"kline": 2}
    # Both parts (the native and the derived) count what the cache answered.
    assert again.stats.total_calls == 0 and again.stats.cached == 2
    pd.testing.assert_frame_equal(again.data, result.data)
    fx = result.data[result.data["code"] == "EURUSD"].reset_index(drop=True)
    ref = await reference(emu, ["EURUSD"], 7, 5)
    pd.testing.assert_series_equal(fx["close"], ref["close"], check_names=False)
    assert list(dict.fromkeys(result.data["code"])) == ["700.HK", "EURUSD"]
    assert result.completeness["code"].tolist() == ["700.HK", "EURUSD"]


async def test_a_derived_bar_missing_a_1h_bar_is_a_gap_and_retry_rebuilds_it(
    alltick_emulator,
) -> None:
    emu = start(alltick_emulator, drop_bars=1.0)
    async with at(emu, NOW) as c:
        # 150 4h bars take 450 of the 500 1h bars a stock's page holds: the hole is inside.
        holed = await c.klines(["700.HK"], "4h", count=150)
        (gap,) = holed.failures.itertuples()
        assert (gap.kind, gap.interval) == ("gap", "4h")
        assert len(holed.data) == 149
        emu.set_faults(drop_bars=0.0)
        filled = await c.retry(holed)
        assert dict(filled.stats.calls) == {"kline": 1}
        clean = await c.klines(["700.HK"], "4h", count=150)
    assert filled.ok and len(filled.data) == 150
    pd.testing.assert_frame_equal(filled.data, clean.data)


async def test_to_arrow_and_to_polars_round_trip_the_frame(alltick_emulator, monkeypatch) -> None:
    emu = start(alltick_emulator, FRIDAY)
    async with at(emu, FRIDAY) as c:
        result = await c.klines(FIVE, "1h", count=30)
    data = result.data
    table = result.to_arrow()
    assert table.column_names == list(data.columns)
    assert str(table.schema.field("timestamp").type) == "timestamp[ns, tz=UTC]"
    assert str(table.schema.field("session").type) == "timestamp[ns]"
    # Handed over, not copied: the numbers' and times' buffers are the frame's own.
    for column in ("close", "volume"):
        assert (
            table.column(column).chunk(0).buffers()[1].address
            == (data[column].to_numpy().__array_interface__["data"][0])
        )
    back = table.to_pandas(types_mapper={pa.string(): STRING}.get)
    pd.testing.assert_frame_equal(back, data)

    polars = pytest.importorskip("polars")
    frame = result.to_polars()
    assert isinstance(frame, polars.DataFrame) and frame.columns == list(data.columns)
    assert str(frame.schema["timestamp"]) == "Datetime(time_unit='ns', time_zone='UTC')"
    again = frame.to_arrow().to_pandas(
        types_mapper={pa.string(): STRING, pa.large_string(): STRING}.get
    )
    pd.testing.assert_frame_equal(again.astype({"code": STRING}), data)

    monkeypatch.setitem(sys.modules, "polars", None)  # as if it were not installed
    with pytest.raises(ImportError, match=r"pip install 'alltick-frames\[polars\]'"):
        result.to_polars()


def test_a_code_whose_end_time_was_ignored_is_measured_like_a_stock() -> None:
    """A code whose answer showed its end time ignored (``KlineJob.unpaged``) could not be
    asked for anything older than its oldest bar: ``not-pageable``, saying why, where a code
    that pages gets ``history-limit``; a hole inside its bars is still a ``gap``; a code that
    brought nothing is ``not-pageable`` whole."""
    # Seconds, not the client's nanoseconds: a frame built by hand is measured all the same.
    hours = pd.date_range(FRIDAY - pd.Timedelta(hours=10), periods=10, freq="h", unit="s")
    came = hours[4:].delete(2)  # of 11:00 to 20:00: 15:00 to 20:00 without 17:00
    data = pd.DataFrame(
        {"code": ["EURUSD"] * len(came) + ["USDJPY"] * len(came), "timestamp": came.append(came)}
    )
    codes = [classify(c) for c in ("EURUSD", "GBPUSD", "USDJPY")]
    expect = completeness.Expectations(
        parse_interval("1h"), FRIDAY.timestamp(), start=int(hours[0].timestamp())
    )
    measured = completeness.measure(
        data, codes, expect, kline_bars=500, unpaged={"EURUSD", "GBPUSD"}
    )
    ignored = " (AllTick ignored the end time asked for: it serves the latest bars)"
    assert [(f.code, f.kind, f.msg) for f in measured.failures] == [
        ("EURUSD", "not-pageable", "no bars before 2024-05-24 15:00Z could be fetched" + ignored),
        ("EURUSD", "gap", "1 bar missing inside the series, at 2024-05-24 17:00Z"),
        ("GBPUSD", "not-pageable", "no bars in the requested range could be fetched" + ignored),
        ("USDJPY", "history-limit", "no bars before 2024-05-24 15:00Z could be fetched"),
        ("USDJPY", "gap", "1 bar missing inside the series, at 2024-05-24 17:00Z"),
    ]
    assert [h.code.code for h in measured.holes] == ["EURUSD", "USDJPY"]
    assert measured.table["missing"].tolist() == [5, 10, 5]


def test_a_count_that_came_whole_is_short_of_nothing() -> None:
    """Five FX day bars, one on a Saturday (a slot the 24/5 calendar lacks): the calendar's
    newest five reach a day further back, but five came; the table says so (one missing, one
    unexpected), and no row claims that 5 of 5 could not be fetched."""
    days = pd.date_range("2024-05-10", periods=5, freq="D", tz="UTC", unit="ns")  # Fri to Tue
    data = pd.DataFrame({"code": ["EURUSD"] * 5, "timestamp": days})
    now = pd.Timestamp("2024-05-14T12:00Z").timestamp()
    expect = completeness.Expectations(parse_interval("1d"), now, count=5)
    measured = completeness.measure(data, [classify("EURUSD")], expect, kline_bars=500)
    assert measured.failures == [] and measured.holes == []
    row = measured.table.iloc[0]
    assert (row["expected"], row["received"], row["missing"], row["unexpected"]) == (5, 5, 1, 1)
