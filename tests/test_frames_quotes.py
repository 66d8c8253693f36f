"""Trade, order-book, static-information and trading-halt bodies -> typed DataFrames: exact
values and dtypes on AllTick's documented shapes (k-lines are ``test_frames.py``)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest

from alltick_frames import frames
from alltick_frames.core.errors import MalformedResponse
from alltick_frames.core.wire import parse_envelope, parse_suspension
from alltick_frames.frames import (
    DEPTH_COLUMNS,
    STATIC_INFO_COLUMNS,
    SUSPENSION_COLUMNS,
    TRADE_COLUMNS,
    decode_depth_ticks,
    decode_static_info,
    decode_suspensions,
    decode_trade_ticks,
    empty_depth,
    empty_static_info,
    empty_suspensions,
    empty_trades,
)

STRING = pd.StringDtype("pyarrow")
UTC = pd.DatetimeTZDtype("ns", "UTC")


# --------------------------------------------------------------------------- trades

DOC_TRADES = (
    b'{"ret":200,"msg":"ok","trace":"x","data":{"tick_list":['
    b'{"code":"857.HK","seq":"30841439","tick_time":"1677831545217","price":"136.302",'
    b'"volume":"0","turnover":"0","trade_direction":0},'
    # The WebSocket push example's values: seq and tick_time as ints.
    b'{"code":"1288.HK","seq":1782180168224,"tick_time":1782180164000,"price":"651.12",'
    b'"volume":"300","turnover":"12345.6","trade_direction":1},'
    b'{"code":"EURUSD","seq":"7","tick_time":"1677831545","price":"1.0612","volume":"",'
    b'"turnover":"","trade_direction":2}]}}'
)


def test_documented_trade_ticks() -> None:
    df = decode_trade_ticks([DOC_TRADES])
    expected = pd.DataFrame(
        {
            "code": ["857.HK", "1288.HK", "EURUSD"],
            "time": [
                pd.Timestamp(1677831545217, unit="ms", tz="UTC"),
                pd.Timestamp(1782180164000, unit="ms", tz="UTC"),
                pd.Timestamp(1677831545, unit="s", tz="UTC"),  # a 10-digit tick_time
            ],
            "seq": [30841439, 1782180168224, 7],
            "price": [136.302, 651.12, 1.0612],
            "volume": [0.0, 300.0, np.nan],
            "turnover": [0.0, 12345.6, np.nan],
            "direction": [0, 1, 2],
            "side": ["neutral", "buy", "sell"],
        }
    ).astype(frames.TRADE_DTYPES)
    pd.testing.assert_frame_equal(df, expected, check_exact=True)
    assert list(df.columns) == TRADE_COLUMNS


def test_trade_ticks_from_envelopes_and_empty() -> None:
    env = parse_envelope(DOC_TRADES)
    assert len(decode_trade_ticks([env, DOC_TRADES])) == 6
    empty = decode_trade_ticks([b'{"ret":200,"msg":"ok","data":{"tick_list":[]}}'])
    assert empty.dtypes.equals(empty_trades().dtypes)
    assert decode_trade_ticks([]).empty


def test_trade_ticks_odd_direction() -> None:
    body = b'{"ret":200,"data":{"tick_list":[{"code":"A","seq":"1","tick_time":"1","price":"1"},{"code":"B","seq":"2","tick_time":"1","price":"1","trade_direction":"7"}]}}'  # noqa: E501
    df = decode_trade_ticks([body])
    assert df["direction"].tolist() == [0, 7]
    assert df["side"].iloc[0] == "neutral"
    assert pd.isna(df["side"].iloc[1])


def test_trade_ticks_malformed() -> None:
    with pytest.raises(MalformedResponse, match="seq"):
        decode_trade_ticks([b'{"ret":200,"data":{"tick_list":[{"code":"A","tick_time":"1"}]}}'])
    with pytest.raises(MalformedResponse, match="not a number"):
        decode_trade_ticks(
            [b'{"ret":200,"data":{"tick_list":[{"code":"A","seq":"x","tick_time":"1"}]}}']
        )


# --------------------------------------------------------------------------- depth

DOC_DEPTH = (
    b'{"ret":200,"msg":"ok","trace":"x","data":{"tick_list":['
    b'{"code":"700.HK","seq":"30842062","tick_time":"1677831551297",'
    b'"bids":[{"price":"318.4","volume":"2600"},{"price":"318.2","volume":"4500"}],'
    b'"asks":[{"price":"318.6","volume":"1600"}]},'
    b'{"code":"600519.SH","seq":5,"tick_time":1677831551000,"bids":[{"price":"1700","volume":"3"}],"asks":[]},'
    b'{"code":"QUIET","seq":"6","tick_time":"1677831551000","bids":[],"asks":[]}]}}'
)


def test_documented_depth_ticks_in_long_form() -> None:
    df = decode_depth_ticks([DOC_DEPTH])
    t1 = pd.Timestamp(1677831551297, unit="ms", tz="UTC")
    t2 = pd.Timestamp(1677831551000, unit="ms", tz="UTC")
    expected = pd.DataFrame(
        {
            "code": ["700.HK", "700.HK", "700.HK", "600519.SH"],
            "time": [t1, t1, t1, t2],
            "seq": [30842062, 30842062, 30842062, 5],
            "status": ["normal"] * 4,
            "side": ["bid", "bid", "ask", "bid"],
            "level": [1, 2, 1, 1],
            "price": [318.4, 318.2, 318.6, 1700.0],
            "volume": [2600.0, 4500.0, 1600.0, 3.0],
        }
    ).astype(frames.DEPTH_DTYPES)
    pd.testing.assert_frame_equal(df, expected, check_exact=True)
    assert list(df.columns) == DEPTH_COLUMNS


def test_depth_empty() -> None:
    assert decode_depth_ticks([]).dtypes.equals(empty_depth().dtypes)
    body = b'{"ret":200,"data":{"tick_list":[{"code":"Q","seq":"1","tick_time":"1","bids":[],"asks":null}]}}'  # noqa: E501
    assert decode_depth_ticks([body]).dtypes.equals(empty_depth().dtypes)


def zero_levels(n: int) -> list[dict[str, str]]:
    return [{"price": "0.000000", "volume": "0"}] * n


def quotes(*prices: str) -> list[dict[str, str]]:
    return [{"price": p, "volume": "100"} for p in prices]


def book(code: str, bids: list[dict[str, str]], asks: list[dict[str, str]]) -> dict[str, Any]:
    return {"code": code, "seq": "7", "tick_time": "1715756399426", "bids": bids, "asks": asks}


def test_zero_filled_levels_are_never_quotes_and_say_the_books_status() -> None:
    """price-change-trading-status.mdx: asks all zero is limit-up, bids all zero limit-down,
    both delisted; a thin book's zero placeholder is dropped, the book stays normal."""
    ticks = [
        book("600196.SH", quotes("26.22", "26.21"), zero_levels(5)),
        book("600011.SH", zero_levels(5), quotes("9.92")),
        book("8040.HK", zero_levels(10), zero_levels(10)),
        book("THIN", quotes("5.1"), [*quotes("5.3"), *zero_levels(1), *quotes("5.5")]),
        book("HSI.HK", [], []),
    ]
    raw = orjson.dumps({"ret": 200, "msg": "ok", "data": {"tick_list": ticks}})
    df, status = frames.decode_depth_books([raw])
    assert status == {
        "600196.SH": "limit-up",
        "600011.SH": "limit-down",
        "8040.HK": "delisted",
        "THIN": "normal",
        "HSI.HK": "normal",
    }
    assert df[["code", "status", "side", "level", "price"]].values.tolist() == [
        ["600196.SH", "limit-up", "bid", 1, 26.22],
        ["600196.SH", "limit-up", "bid", 2, 26.21],
        ["600011.SH", "limit-down", "ask", 1, 9.92],
        ["THIN", "normal", "bid", 1, 5.1],
        ["THIN", "normal", "ask", 1, 5.3],
        ["THIN", "normal", "ask", 3, 5.5],  # AllTick's level numbers are kept
    ]
    assert (df["price"] > 0).all()
    assert df.dtypes.equals(empty_depth().dtypes)
    pd.testing.assert_frame_equal(decode_depth_ticks([raw]), df)
    only_delisted = orjson.dumps({"ret": 200, "data": {"tick_list": ticks[2:3]}})
    nothing, status = frames.decode_depth_books([only_delisted])
    assert nothing.empty and nothing.dtypes.equals(empty_depth().dtypes)
    assert status == {"8040.HK": "delisted"}
    assert frames.BOOK_STATUSES == ("normal", "limit-up", "limit-down", "delisted")


def test_depth_malformed() -> None:
    body = b'{"ret":200,"data":{"tick_list":[{"code":"Q","seq":"1","tick_time":"1","bids":{}}]}}'
    with pytest.raises(MalformedResponse, match="bids"):
        decode_depth_ticks([body])


# --------------------------------------------------------------------------- static info

DOC_STATIC = (
    b'{"ret":200,"msg":"ok","trace":"x","data":{"static_info_list":[{"board":"HKEquity",'
    b'"bps":"101.8226","circulating_shares":"9212483923","currency":"HKD",'
    b'"dividend_yield":"0.6782","eps":"24.1161","eps_ttm":"24.1161","exchange":"SEHK",'
    b'"hk_shares":"9212483923","lot_size":"100","name_cn":"\xe8\x85\xbe\xe8\xae\xaf\xe6\x8e\xa7\xe8\x82\xa1",'
    b'"name_en":"Tencent Holdings Ltd","name_hk":"\xe9\xa8\xb0\xe8\xa8\x8a\xe6\x8e\xa7\xe8\x82\xa1",'  # noqa: E501
    b'"symbol":"700.HK","total_shares":"9212483923"},'
    b'{"symbol":"AAPL.US","board":"","exchange":"NASDAQ","currency":"USD","lot_size":"1",'
    b'"name_en":"Apple Inc.","hk_shares":"","eps":"6.1","new_field":"x"}]}}'
)


def test_documented_static_info() -> None:
    df = decode_static_info([DOC_STATIC])
    assert list(df.columns) == STATIC_INFO_COLUMNS
    assert df.dtypes.equals(empty_static_info().dtypes)
    tencent = df.iloc[0]
    assert tencent["code"] == "700.HK"
    assert (tencent["name_cn"], tencent["name_hk"]) == ("腾讯控股", "騰訊控股")
    assert (tencent["exchange"], tencent["board"], tencent["currency"]) == (
        "SEHK",
        "HKEquity",
        "HKD",
    )
    assert tencent["lot_size"] == 100.0
    assert tencent["total_shares"] == 9212483923.0
    assert (tencent["eps"], tencent["bps"], tencent["dividend_yield"]) == (
        24.1161,
        101.8226,
        0.6782,
    )
    apple = df.iloc[1]
    assert apple["code"] == "AAPL.US"
    assert pd.isna(apple["board"]) and pd.isna(apple["name_cn"])
    assert math.isnan(apple["hk_shares"]) and math.isnan(apple["bps"])
    assert apple["eps"] == 6.1
    assert "new_field" not in df.columns


def test_static_info_empty() -> None:
    assert decode_static_info([]).dtypes.equals(empty_static_info().dtypes)


# --------------------------------------------------------------------------- suspensions


def test_sse_suspensions() -> None:
    page = parse_suspension(
        b'{"success":true,"timestamp":"2024-01-15T10:30:00","totalCount":3,"data":['
        b'{"symbol":"600000","symbolName":"PF Bank","haltReason":"major event",'
        b'"haltDate":"2024-01-15 00:00:00","haltTime":"09:30:00","haltPeriod":"all day",'
        b'"resumeDate":"","resumeTime":null,"publishDate":"2024-01-14 18:00:00"},'
        b'{"symbol":"600001","haltDate":"2024-01-16","resumeDate":"2024-01-17 09:30:00",'
        b'"publishDate":"2024-01-15 18:00:00"},'
        b'{"symbol":"600002","haltDate":"2024-01-16 00:00:00","haltTime":"2024-01-16 13:00:00",'
        b'"resumeDate":"garbage","publishDate":"2024-01-15 19:00:00"}]}'
    )
    df = decode_suspensions(page.data, "SSE")
    assert list(df.columns) == SUSPENSION_COLUMNS
    assert df.dtypes.equals(empty_suspensions().dtypes)
    assert df["exchange"].tolist() == ["SSE"] * 3
    assert df["code"].tolist() == ["600000.SH", "600001.SH", "600002.SH"]
    assert df["symbol"].tolist() == ["600000", "600001", "600002"]
    # Shanghai is UTC+8 all year.
    assert df["halted_at"].tolist() == [
        pd.Timestamp("2024-01-15 01:30", tz="UTC"),
        pd.Timestamp("2024-01-15 16:00", tz="UTC"),
        pd.Timestamp("2024-01-16 05:00", tz="UTC"),
    ]
    assert pd.isna(df["resumes_at"].iloc[0])
    assert df["resumes_at"].iloc[1] == pd.Timestamp("2024-01-17 01:30", tz="UTC")
    assert pd.isna(df["resumes_at"].iloc[2])
    assert df["published_at"].iloc[0] == pd.Timestamp("2024-01-14 10:00", tz="UTC")
    assert (df["name"].iloc[0], df["reason"].iloc[0], df["period"].iloc[0]) == (
        "PF Bank",
        "major event",
        "all day",
    )
    assert df["name"].isna().tolist() == [False, True, True]


def test_nyse_and_nasdaq_suspensions() -> None:
    nyse = decode_suspensions(
        [
            {
                "symbol": "XYZ",
                "symbolName": "XYZ Corp",
                "haltDateTime": "2024-07-01 10:15:00",
                "resumeDateTime": None,
                "sourceExchange": "NYSE Arca",
                "publishDate": "2024-07-01 10:15:30",
            }
        ],
        "nyse",
    )
    assert nyse["halted_at"].iloc[0] == pd.Timestamp("2024-07-01 14:15", tz="UTC")  # EDT
    assert pd.isna(nyse["resumes_at"].iloc[0])
    assert nyse["source_exchange"].iloc[0] == "NYSE Arca"
    nasdaq = decode_suspensions(
        [
            {
                "symbol": "ABC",
                "haltDate": "2024-01-05 11:00:00",
                "pauseThresholdPrice": "12.34",
                "publishDate": "2024-01-05 11:00:01",
            },
            {"symbol": "DEF", "pauseThresholdPrice": "", "publishDate": "2024-01-05 11:00:01"},
        ],
        "nasdaq",
    )
    assert nasdaq["halted_at"].iloc[0] == pd.Timestamp("2024-01-05 16:00", tz="UTC")  # EST
    assert nasdaq["pause_threshold_price"].iloc[0] == 12.34
    assert math.isnan(nasdaq["pause_threshold_price"].iloc[1])
    assert nasdaq["exchange"].tolist() == ["NASDAQ", "NASDAQ"]
    assert nasdaq["code"].tolist() == ["ABC.US", "DEF.US"]


def test_halt_tickers_that_fit_no_code_keep_their_symbol_and_get_no_code() -> None:
    """A ticker is mapped only when it spells a code of the exchange's market; one that
    already carries the suffix is kept; anything else is NA, never a guess."""
    records = [
        {"symbol": s, "publishDate": "2024-01-05 11:00:01"}
        for s in ("600000", "600000.SH", "60000", "00700", "")
    ]
    sse = decode_suspensions(records, "sse")
    assert sse["code"].tolist() == ["600000.SH", "600000.SH", pd.NA, pd.NA, pd.NA]
    assert sse["symbol"].tolist() == ["600000", "600000.SH", "60000", "00700", pd.NA]
    us = [{"symbol": s, "publishDate": "2024-01-05 11:00:01"} for s in ("BRK.B", "brk/b")]
    assert decode_suspensions(us, "nyse")["code"].tolist() == ["BRK.B.US", pd.NA]


def test_suspensions_empty_and_bad_exchange() -> None:
    assert decode_suspensions([], "sse").dtypes.equals(empty_suspensions().dtypes)
    with pytest.raises(ValueError, match="exchange"):
        decode_suspensions([], "lse")
