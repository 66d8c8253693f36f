"""K-line bodies -> typed DataFrames: exact values and dtypes on AllTick's documented shapes; the
other endpoints' decoders are `test_frames_quotes.py`."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alltick_frames import frames
from alltick_frames.core.errors import MalformedResponse
from alltick_frames.core.intervals import BY_KLINE_TYPE
from alltick_frames.frames import (
    KLINE_COLUMNS,
    decode_batch_kline_bodies,
    decode_kline_bodies,
    empty_klines,
    finalize_klines,
    klines,
    wide,
)

STRING = pd.StringDtype("pyarrow")
UTC = pd.DatetimeTZDtype("ns", "UTC")


def ts(seconds: int) -> pd.Timestamp:
    return pd.Timestamp(seconds, unit="s", tz="UTC")


def bar(t: int, o: str = "1", h: str = "2", lo: str = "0.5", c: str = "1.5", **extra: Any) -> dict:
    return {
        "timestamp": str(t),
        "open_price": o,
        "close_price": c,
        "high_price": h,
        "low_price": lo,
        "volume": extra.pop("volume", "10"),
        "turnover": extra.pop("turnover", "15"),
        **extra,
    }


def kline_body(code: str, kline_type: int, bars: list[dict], **envelope: Any) -> bytes:
    env = {"ret": 200, "msg": "ok", "trace": "t", **envelope}
    env["data"] = {"code": code, "kline_type": kline_type, "kline_list": bars}
    return orjson.dumps(env)


def batch_body(groups: list[tuple[str, int, list[dict]]]) -> bytes:
    items = [{"code": c, "kline_type": k, "kline_data": b} for c, k, b in groups]
    return orjson.dumps({"ret": 200, "msg": "ok", "trace": "t", "data": {"kline_list": items}})


@pytest.fixture(params=["fast", "tolerant"])
def path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test on the Arrow fast path and again with it disabled (the orjson path)."""
    if request.param == "tolerant":
        monkeypatch.setattr(klines, "_read_ndjson", lambda bodies, schema: None)
    return request.param


# The documented /kline example (alltick-api.md §3.1), verbatim.
DOC_KLINE = (
    b'{"ret":200,"msg":"ok","trace":"3baaa938-f92c-4a74-a228-fd49d5e2f8bc-1678419657806",'
    b'"data":{"code":"EURUSD","kline_type":1,"kline_list":[{"timestamp":"1677829200",'
    b'"open_price":"136.421","close_price":"136.412","high_price":"136.422",'
    b'"low_price":"136.407","volume":"0","turnover":"0"}]}}'
)


# --------------------------------------------------------------------------- k-lines


def test_empty_klines_schema() -> None:
    df = empty_klines()
    assert list(df.columns) == KLINE_COLUMNS
    assert df.empty
    assert df.dtypes.to_dict() == {
        "code": STRING,
        "interval": STRING,
        "timestamp": UTC,
        "session": np.dtype("datetime64[ns]"),
        "open": np.float64,
        "high": np.float64,
        "low": np.float64,
        "close": np.float64,
        "volume": np.float64,
        "turnover": np.float64,
    }


def test_documented_kline_body(path: str) -> None:
    df = decode_kline_bodies([DOC_KLINE])
    expected = pd.DataFrame(
        {
            "code": ["EURUSD"],
            "interval": ["1m"],
            "timestamp": [ts(1677829200)],
            "session": [pd.Timestamp("2023-03-03")],
            "open": [136.421],
            "high": [136.422],
            "low": [136.407],
            "close": [136.412],
            "volume": [0.0],
            "turnover": [0.0],
        }
    ).astype(frames.KLINE_DTYPES)
    pd.testing.assert_frame_equal(df, expected, check_exact=True)
    assert str(df["timestamp"].iloc[0]) == "2023-03-03 07:40:00+00:00"


def test_fast_path_takes_documented_bodies() -> None:
    # Guards the speed: the documented shape must never fall back to the slow path.
    assert klines._read_ndjson([DOC_KLINE, DOC_KLINE], klines._KLINE_SCHEMA) is not None


def test_many_bodies_keep_body_then_bar_order(path: str) -> None:
    bodies = [
        kline_body("AAPL.US", 8, [bar(200), bar(100)]),  # newest first: kept as sent
        kline_body("700.HK", 5, []),
        kline_body("BTCUSDT", 10, [bar(300, o="3.25")]),
    ]
    df = decode_kline_bodies(bodies)
    assert df["code"].tolist() == ["AAPL.US", "AAPL.US", "BTCUSDT"]
    assert df["interval"].tolist() == ["1d", "1d", "1M"]
    assert df["timestamp"].tolist() == [ts(200), ts(100), ts(300)]
    assert df["open"].tolist() == [1.0, 1.0, 3.25]
    assert df.dtypes.equals(empty_klines().dtypes)


def test_empty_volume_is_nan_next_to_numbers(path: str) -> None:
    # Issue #13: the first bar came with "" volume and turnover.
    bodies = [
        kline_body("GOLD", 8, [bar(1, volume="", turnover=""), bar(2, volume="7")]),
        kline_body("EURUSD", 8, [bar(3, volume="0", turnover="0")]),
    ]
    df = decode_kline_bodies(bodies)
    assert df["volume"].tolist()[1:] == [7.0, 0.0]
    assert math.isnan(df["volume"].iloc[0])
    assert math.isnan(df["turnover"].iloc[0])
    assert df["volume"].dtype == np.float64


def test_missing_and_null_fields_are_nan(path: str) -> None:
    b = bar(1)
    del b["turnover"]
    df = decode_kline_bodies([kline_body("GOLD", 8, [b, bar(2, volume=None)])])
    assert math.isnan(df["turnover"].iloc[0])
    assert math.isnan(df["volume"].iloc[1])


def test_unknown_fields_are_ignored(path: str) -> None:
    body = orjson.dumps(
        {
            "ret": 200,
            "msg": "ok",
            "trace": "t",
            "server_time": 12,
            "data": {
                "code": "GOLD",
                "kline_type": 8,
                "note": {"nested": [1, {"x": None}]},
                "kline_list": [bar(5, vwap="1.2", flags=[1, 2])],
            },
        }
    )
    df = decode_kline_bodies([body])
    assert df["code"].tolist() == ["GOLD"]
    assert list(df.columns) == KLINE_COLUMNS


def test_numbers_sent_as_numbers_and_ret_as_string() -> None:
    # Not the documented wire, but seen in the wild: decoded the same, via the tolerant path.
    odd = orjson.dumps(
        {
            "ret": "200",
            "data": {
                "code": "GOLD",
                "kline_type": "8",
                "kline_list": [
                    {
                        "timestamp": 1677829200,
                        "open_price": 1.5,
                        "high_price": 2,
                        "low_price": "1",
                        "close_price": "1.75",
                        "volume": 3,
                        "turnover": "",
                    }
                ],
            },
        }
    )
    assert klines._read_ndjson([odd], klines._KLINE_SCHEMA) is None
    df = decode_kline_bodies([DOC_KLINE, odd])
    assert df["code"].tolist() == ["EURUSD", "GOLD"]
    assert df["interval"].tolist() == ["1m", "1d"]
    row = df.iloc[1]
    assert (row["open"], row["high"], row["low"], row["close"], row["volume"]) == (
        1.5,
        2.0,
        1.0,
        1.75,
        3.0,
    )
    assert math.isnan(row["turnover"])
    assert row["timestamp"] == ts(1677829200)


def test_pretty_printed_body_with_newlines(path: str) -> None:
    pretty = json.dumps(json.loads(DOC_KLINE), indent=2).replace("\n", "\r\n").encode()
    pd.testing.assert_frame_equal(decode_kline_bodies([pretty]), decode_kline_bodies([DOC_KLINE]))


def test_bytes_like_bodies() -> None:
    df = decode_kline_bodies([bytearray(DOC_KLINE), memoryview(DOC_KLINE)])
    assert len(df) == 2


def test_no_bodies_and_empty_lists(path: str) -> None:
    assert decode_kline_bodies([]).dtypes.equals(empty_klines().dtypes)
    df = decode_kline_bodies([kline_body("GOLD", 8, []), b'{"ret":200,"msg":"ok","data":null}'])
    assert df.empty
    assert df.dtypes.equals(empty_klines().dtypes)


def test_timestamps_in_milliseconds_are_recognised(path: str) -> None:
    df = decode_kline_bodies([kline_body("GOLD", 10, [bar(1_677_829_200_000)])])
    assert df["timestamp"].tolist() == [ts(1_677_829_200)]


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (DOC_KLINE[:-20], "not valid JSON"),  # truncated
        (b"", "empty"),
        (b"<html>502</html>", "not valid JSON"),
        (b"[]", "not an object"),
        (b'{"msg":"ok","data":{}}', "no integer 'ret'"),
        (kline_body("GOLD", 8, [bar(1, o="abc")]), "not a number"),
        (kline_body("GOLD", 8, [bar(1, o="1,5")]), "not a number"),
        (kline_body("GOLD", 11, [bar(1)]), "kline_type"),
        (kline_body("", 8, [bar(1)]), "code"),
        (kline_body("GOLD", 8, [{**bar(1), "timestamp": ""}]), "timestamp"),
        (kline_body("GOLD", 8, [bar(1)]).replace(b'"kline_list":[', b'"kline_list":[1,'), "list"),
        (b'{"ret":200,"data":[1]}', "'data' is not an object"),
    ],
)
def test_malformed_kline_bodies(body: bytes, match: str, path: str) -> None:
    with pytest.raises(MalformedResponse, match=match) as info:
        decode_kline_bodies([DOC_KLINE, body])
    assert info.value.endpoint == "kline"


def test_malformed_body_is_named_by_index() -> None:
    with pytest.raises(MalformedResponse, match="body 1"):
        decode_kline_bodies([DOC_KLINE, b'{"ret":200,"data":{"kline_list":{}}}'])


def test_error_bodies_are_refused(path: str) -> None:
    with pytest.raises(ValueError, match="body 1 has ret 604"):
        decode_kline_bodies([DOC_KLINE, b'{"ret":604,"msg":"code unauthorized"}'])


# The documented /batch-kline answer shape (alltick-api.md §3.2).
DOC_BATCH = (
    b'{"ret":200,"msg":"ok","trace":"t1","data":{"kline_list":['
    b'{"code":"700.HK","kline_type":1,"kline_data":[{"timestamp":"1677829200",'
    b'"open_price":"136.421","close_price":"136.412","high_price":"136.422",'
    b'"low_price":"136.407","volume":"0","turnover":"0"},{"timestamp":"1677829260",'
    b'"open_price":"136.412","close_price":"136.5","high_price":"136.51",'
    b'"low_price":"136.4","volume":"1200","turnover":"163800.5"}]},'
    b'{"code":"AAPL.US","kline_type":8,"kline_data":[{"timestamp":"1677801600",'
    b'"open_price":"150.1","close_price":"151.2","high_price":"152","low_price":"149.9",'
    b'"volume":"","turnover":""}]}]}}'
)


def test_documented_batch_kline_body(path: str) -> None:
    df = decode_batch_kline_bodies([DOC_BATCH])
    expected = pd.DataFrame(
        {
            "code": ["700.HK", "700.HK", "AAPL.US"],
            "interval": ["1m", "1m", "1d"],
            "timestamp": [ts(1677829200), ts(1677829260), ts(1677801600)],
            # 15:40 in Hong Kong; 19:00 the evening before in New York (a day bar at 00:00Z).
            "session": pd.to_datetime(["2023-03-03", "2023-03-03", "2023-03-02"]),
            "open": [136.421, 136.412, 150.1],
            "high": [136.422, 136.51, 152.0],
            "low": [136.407, 136.4, 149.9],
            "close": [136.412, 136.5, 151.2],
            "volume": [0.0, 1200.0, np.nan],
            "turnover": [0.0, 163800.5, np.nan],
        }
    ).astype(frames.KLINE_DTYPES)
    pd.testing.assert_frame_equal(df, expected, check_exact=True)


def test_batch_fast_path_takes_documented_bodies() -> None:
    assert klines._read_ndjson([DOC_BATCH], klines._BATCH_SCHEMA) is not None


def test_batch_groups_with_no_bars_and_many_bodies(path: str) -> None:
    bodies = [
        batch_body([("A.US", 8, []), ("B.US", 1, [bar(60), bar(120)])]),
        batch_body([]),
        batch_body([("EURUSD", 5, [bar(3600)])]),
    ]
    df = decode_batch_kline_bodies(bodies)
    assert list(zip(df["code"], df["interval"], df["timestamp"], strict=True)) == [
        ("B.US", "1m", ts(60)),
        ("B.US", "1m", ts(120)),
        ("EURUSD", "1h", ts(3600)),
    ]


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (DOC_BATCH[:50], "not valid JSON"),
        (batch_body([("A.US", 8, [bar(1, c="x")])]), "not a number"),
        (batch_body([("A.US", 0, [bar(1)])]), "kline_type"),
        (b'{"ret":200,"data":{"kline_list":[{"code":"A","kline_type":8,"kline_data":5}]}}', "list"),
    ],
)  # fmt: skip
def test_malformed_batch_bodies(body: bytes, match: str, path: str) -> None:
    with pytest.raises(MalformedResponse, match=match) as info:
        decode_batch_kline_bodies([body])
    assert info.value.endpoint == "batch-kline"


# --------------------------------------------------------------------------- finalize


def test_finalize_orders_by_caller_codes_then_interval_then_time() -> None:
    a = decode_kline_bodies(
        [
            kline_body("ZZZ.US", 8, [bar(300), bar(100), bar(200)]),
            kline_body("AAA.US", 1, [bar(60)]),
            kline_body("AAA.US", 8, [bar(86400)]),
            kline_body("MMM.US", 8, [bar(5)]),
        ]
    )
    df = finalize_klines([a], code_order=["ZZZ.US", "AAA.US"])
    assert list(zip(df["code"], df["interval"], df["timestamp"], strict=True)) == [
        ("ZZZ.US", "1d", ts(100)),
        ("ZZZ.US", "1d", ts(200)),
        ("ZZZ.US", "1d", ts(300)),
        ("AAA.US", "1m", ts(60)),  # 1m before 1d, by bar size rather than by name
        ("AAA.US", "1d", ts(86400)),
        ("MMM.US", "1d", ts(5)),  # not in the caller's order: after it
    ]
    assert df.index.equals(pd.RangeIndex(6))
    assert df.dtypes.equals(empty_klines().dtypes)


def test_finalize_dedupes_keeping_the_last_fetch() -> None:
    # Issue #12: the newest bars came first and were repeated at the end.
    first = decode_kline_bodies(
        [kline_body("GOLD", 10, [bar(3, c="3.0"), bar(2), bar(1), bar(2), bar(3, c="3.1")])]
    )
    # A later refresh of the forming bar, from /batch-kline.
    refresh = decode_batch_kline_bodies([batch_body([("GOLD", 10, [bar(3, c="3.2")])])])
    df = finalize_klines([first, refresh], ["GOLD"])
    assert df["timestamp"].tolist() == [ts(1), ts(2), ts(3)]
    assert df["close"].tolist() == [1.5, 1.5, 3.2]
    again = finalize_klines([first], ["GOLD"])
    assert again["close"].tolist() == [1.5, 1.5, 3.1]  # the later copy in the same body wins


def test_finalize_same_time_different_interval_is_not_a_duplicate() -> None:
    a = decode_kline_bodies([kline_body("GOLD", 8, [bar(0)]), kline_body("GOLD", 9, [bar(0)])])
    assert len(finalize_klines([a], ["GOLD"])) == 2


def test_finalize_nothing() -> None:
    assert finalize_klines([], ["A"]).dtypes.equals(empty_klines().dtypes)
    assert finalize_klines([empty_klines(), empty_klines()], ["A"]).empty


def test_finalize_restores_dtypes_of_a_foreign_frame() -> None:
    loose = pd.DataFrame(
        {
            "code": ["A"],
            "interval": ["1d"],
            "timestamp": pd.to_datetime(["2024-01-02"], utc=True).astype("datetime64[us, UTC]"),
            "open": [1],
            "high": [1],
            "low": [1],
            "close": [1],
            "volume": [1],
            "turnover": [1],
        }
    )
    df = finalize_klines([loose], ["A"])
    assert df.dtypes.equals(empty_klines().dtypes)


# --------------------------------------------------------------------------- wide


def test_wide_pivots_one_interval_in_caller_order() -> None:
    df = finalize_klines(
        [
            decode_kline_bodies(
                [
                    kline_body("B.US", 8, [bar(1, c="10"), bar(2, c="11")]),
                    kline_body("A.US", 8, [bar(2, c="20")]),
                ]
            )
        ],
        ["B.US", "A.US"],
    )
    out = wide(df, on="timestamp")
    assert list(out.columns) == ["B.US", "A.US"]
    assert out.index.tolist() == [ts(1), ts(2)]
    assert out.index.name == "timestamp"
    assert out["B.US"].tolist() == [10.0, 11.0]
    assert math.isnan(out.loc[ts(1), "A.US"])
    assert wide(df, "volume", on="timestamp")["A.US"].tolist()[1] == 10.0
    with pytest.raises(ValueError, match="on must be 'session' or 'timestamp'"):
        wide(df, on="time")  # type: ignore[arg-type]


def day(code: str, local_midnight: str, close: str) -> dict[str, str]:
    """A day bar of ``code`` starting at local midnight (``"2024-05-13 00:00-04:00"``)."""
    return bar(int(pd.Timestamp(local_midnight).timestamp()), c=close)


def test_wide_lines_day_bars_up_by_session() -> None:
    """Five markets' day bars of the same three trading days start at five different times
    (New York, Hong Kong and Shanghai midnights, 00:00Z): one row per session, not nine."""
    midnights = {
        "AAPL.US": "{} 00:00-04:00",
        "700.HK": "{} 00:00+08:00",
        "600519.SH": "{} 00:00+08:00",
        "EURUSD": "{} 00:00Z",
        "BTCUSDT": "{} 00:00Z",
    }
    dates = ["2024-05-21", "2024-05-22", "2024-05-23"]
    bodies = [
        kline_body(code, 8, [day(code, form.format(d), str(k + i)) for i, d in enumerate(dates)])
        for k, (code, form) in enumerate(midnights.items())
    ]
    df = finalize_klines([decode_kline_bodies(bodies)], list(midnights))
    out = wide(df)
    assert out.index.name == "session"
    assert out.index.tolist() == [pd.Timestamp(d) for d in dates]
    assert list(out.columns) == list(midnights)
    assert out.loc["2024-05-22"].tolist() == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert len(wide(df, on="timestamp")) == 9, "the timestamps themselves: 3 times x 3 dates"
    intraday = finalize_klines([decode_kline_bodies([kline_body("EURUSD", 5, [bar(0)])])], [])
    assert wide(intraday).index.name == "timestamp"
    assert wide(intraday, on="session").index.tolist() == [pd.Timestamp("1970-01-01")]


def test_wide_needs_an_interval_choice_when_mixed() -> None:
    df = decode_kline_bodies([kline_body("A", 8, [bar(1)]), kline_body("A", 1, [bar(60)])])
    with pytest.raises(ValueError, match=r"several intervals \(1d, 1m\).*interval="):
        wide(df)
    assert wide(df, interval="1m").index.tolist() == [ts(60)]
    assert wide(df, interval="D").index.tolist() == [pd.Timestamp("1970-01-01")]  # by session
    with pytest.raises(ValueError, match="no 1w bars"):
        wide(df, interval="1w")
    with pytest.raises(ValueError, match="field must be one of"):
        wide(df, "timestamp", interval="1d")


def test_wide_of_nothing() -> None:
    assert wide(empty_klines()).empty


# --------------------------------------------------------------------------- property


ZONES = {".US": "America/New_York", ".HK": "Asia/Hong_Kong", ".SH": "Asia/Shanghai"}


def session_of(code: str, epoch: int) -> pd.Timestamp:
    """The local date of a bar's start, by the code's market (UTC off the stock path)."""
    zone = ZONES.get(code[-3:], "Asia/Shanghai" if code.endswith(".SZ") else "UTC")
    return pd.Timestamp(epoch, unit="s", tz="UTC").tz_convert(zone).normalize().tz_localize(None)


def reference_decode(bodies: list[bytes]) -> pd.DataFrame:
    """The obvious decoder, one bar at a time: what decode_kline_bodies must agree with."""

    def number(value: Any) -> float:
        return math.nan if value in (None, "") else float(value)

    rows = []
    for body in bodies:
        data = json.loads(body)["data"]
        for b in data["kline_list"]:
            rows.append(
                {
                    "code": data["code"],
                    "interval": BY_KLINE_TYPE[int(data["kline_type"])].alias,
                    "timestamp": pd.Timestamp(int(b["timestamp"]), unit="s", tz="UTC"),
                    "session": session_of(data["code"], int(b["timestamp"])),
                    "open": number(b.get("open_price")),
                    "high": number(b.get("high_price")),
                    "low": number(b.get("low_price")),
                    "close": number(b.get("close_price")),
                    "volume": number(b.get("volume")),
                    "turnover": number(b.get("turnover")),
                }
            )
    if not rows:
        return empty_klines()
    return pd.DataFrame(rows, columns=KLINE_COLUMNS).astype(frames.KLINE_DTYPES)


finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
price = st.one_of(finite.map(repr), st.integers(0, 10**9).map(str))
volume = st.one_of(price, st.just(""), st.none())
bars = st.lists(
    st.builds(
        lambda t, o, h, lo, c, v, tv: {
            "timestamp": str(t),
            "open_price": o,
            "high_price": h,
            "low_price": lo,
            "close_price": c,
            "volume": v,
            "turnover": tv,
        },
        st.integers(0, 4_000_000_000),
        price,
        price,
        price,
        price,
        volume,
        volume,
    ),
    max_size=6,
)
codes = st.sampled_from(["AAPL.US", "700.HK", "EURUSD", "GOLD", "Silver", "600519.SH"])
bodies_strategy = st.lists(
    st.builds(kline_body, codes, st.sampled_from(sorted(BY_KLINE_TYPE)), bars), max_size=5
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bodies_strategy)
def test_decode_agrees_with_reference(bodies: list[bytes]) -> None:
    expected = reference_decode(bodies)
    pd.testing.assert_frame_equal(decode_kline_bodies(bodies), expected, check_exact=True)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bodies_strategy)
def test_tolerant_path_agrees_with_reference(bodies: list[bytes]) -> None:
    fast = klines._read_ndjson
    klines._read_ndjson = lambda bodies, schema: None  # type: ignore[assignment]
    try:
        got = decode_kline_bodies(bodies)
    finally:
        klines._read_ndjson = fast  # type: ignore[assignment]
    pd.testing.assert_frame_equal(got, reference_decode(bodies), check_exact=True)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bodies_strategy)
def test_batch_decode_agrees_with_reference(bodies: list[bytes]) -> None:
    # The same bars, regrouped as one /batch-kline body per /kline body.
    batch = []
    for body in bodies:
        data = json.loads(body)["data"]
        batch.append(batch_body([(data["code"], data["kline_type"], data["kline_list"])]))
    pd.testing.assert_frame_equal(
        decode_batch_kline_bodies(batch), reference_decode(bodies), check_exact=True
    )


@settings(max_examples=60, deadline=None)
@given(bodies_strategy, st.permutations(list(range(6))))
def test_finalize_is_sorted_unique_and_keeps_last(bodies: list[bytes], perm: list[int]) -> None:
    order = ["AAPL.US", "700.HK", "EURUSD", "GOLD", "Silver", "600519.SH"]
    order = [order[i] for i in perm]
    decoded = decode_kline_bodies(bodies)
    df = finalize_klines([decoded], order)
    key = ["code", "interval", "timestamp"]
    assert not df.duplicated(key).any()
    expected = decoded.drop_duplicates(key, keep="last")
    assert len(df) == len(expected)
    rank = df["code"].map({c: i for i, c in enumerate(order)})
    irank = df["interval"].map({a.alias: k for k, a in BY_KLINE_TYPE.items()})
    sort_key = list(zip(rank, irank, df["timestamp"], strict=True))
    assert sort_key == sorted(sort_key)
    merged = df.merge(expected, on=key, suffixes=("", "_last"))
    assert len(merged) == len(df)
    pd.testing.assert_series_equal(
        merged["close"], merged["close_last"], check_names=False, check_exact=True
    )
