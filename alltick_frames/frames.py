"""Raw AllTick response bodies -> typed pandas DataFrames, vectorised.

Pure functions, no I/O. Every number arrives as a JSON string ("136.421"), so decoding is
mostly string -> float conversion, and how it is done decides the speed (DESIGN.md, "What
decoding costs"). K-line bodies take the fast path:

1. join many bodies into one newline-delimited JSON buffer (NDJSON; a JSON string cannot
   hold a raw newline, so replacing newlines in a body by spaces changes nothing);
2. parse it in one call of :func:`pyarrow.json.read_json` against the documented schema,
   using every core;
3. flatten the nested bar lists and cast the string columns with Arrow's vectorised casts.

Decode *many bodies per call*: one call over 200 bodies is several times faster than 200
calls over one body each. Anything the fast path does not expect (numbers sent as JSON
numbers, a ``ret`` sent as a string, a malformed body) sends the whole call to a slower,
tolerant path built on orjson, which either decodes the bodies to the same frame or raises
:class:`~alltick_frames.core.errors.MalformedResponse` naming the bad body.

The decoders expect bodies whose ``ret`` is 200; check each with
:func:`alltick_frames.core.wire.parse_envelope` first. Given a body with another ``ret`` they
raise ValueError, since it is a bug in the caller.

The DataFrame contract
----------------------

K-lines (:data:`KLINE_COLUMNS`), one row per (code, interval, bar):

* ``code`` (string): the code as AllTick spells it, e.g. ``AAPL.US``, ``700.HK``, ``EURUSD``;
* ``interval`` (string): the canonical alias of the bar size, ``1m`` ... ``1d``, ``1w``,
  ``1M`` (see :mod:`alltick_frames.core.intervals`);
* ``timestamp`` (datetime64[ns, UTC]): when the bar *opens* (AllTick sends Unix seconds);
* ``open``, ``high``, ``low``, ``close`` (float64): prices;
* ``volume``, ``turnover`` (float64): traded quantity and value; NaN where AllTick sent
  ``""`` (a since-fixed bug, issue #13) or nothing.

Decoders return rows in the order of the bodies; :func:`finalize_klines` sorts them by the
caller's code order, then interval, then time, and drops repeated bars (the later fetch wins).
Trades, order books, static information and trading halts have their own schemas, described
on :func:`decode_trade_ticks`, :func:`decode_depth_ticks`, :func:`decode_static_info` and
:func:`decode_suspensions`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from alltick_frames.core.errors import MalformedResponse
from alltick_frames.core.intervals import BY_KLINE_TYPE, INTERVALS, parse_interval
from alltick_frames.core.wire import Envelope, parse_envelope

__all__ = [
    "DEPTH_COLUMNS",
    "DEPTH_DTYPES",
    "EXCHANGE_TZ",
    "KLINE_COLUMNS",
    "KLINE_DTYPES",
    "STATIC_INFO_COLUMNS",
    "STATIC_INFO_DTYPES",
    "STRING",
    "SUSPENSION_COLUMNS",
    "SUSPENSION_DTYPES",
    "TRADE_COLUMNS",
    "TRADE_DTYPES",
    "UTC_NS",
    "decode_batch_kline_bodies",
    "decode_depth_ticks",
    "decode_kline_bodies",
    "decode_static_info",
    "decode_suspensions",
    "decode_trade_ticks",
    "empty_depth",
    "empty_klines",
    "empty_static_info",
    "empty_suspensions",
    "empty_trades",
    "finalize_klines",
    "wide",
]

#: The dtype of every text column: Arrow-backed strings with ``pd.NA`` for missing values.
STRING = pd.StringDtype("pyarrow")
#: The dtype of every time column: nanoseconds, tz-aware UTC.
UTC_NS = pd.DatetimeTZDtype("ns", "UTC")
_F64 = np.dtype("float64")

#: See the module docstring for what each column holds.
KLINE_DTYPES: dict[str, Any] = {
    "code": STRING,
    "interval": STRING,
    "timestamp": UTC_NS,
    "open": _F64,
    "high": _F64,
    "low": _F64,
    "close": _F64,
    "volume": _F64,
    "turnover": _F64,
}
KLINE_COLUMNS: list[str] = list(KLINE_DTYPES)
_PRICE_FIELDS = ("open", "high", "low", "close", "volume", "turnover")

# Wire name of each bar field -> column name.
_BAR_FIELDS: dict[str, str] = {
    "timestamp": "timestamp",
    "open_price": "open",
    "high_price": "high",
    "low_price": "low",
    "close_price": "close",
    "volume": "volume",
    "turnover": "turnover",
}

# The documented wire shapes (alltick-api.md §3.1, §3.2). Fields not listed are ignored.
_BAR = pa.struct([(name, pa.string()) for name in _BAR_FIELDS])
_KLINE_SCHEMA = pa.schema(
    [
        ("ret", pa.int64()),
        (
            "data",
            pa.struct(
                [("code", pa.string()), ("kline_type", pa.int64()), ("kline_list", pa.list_(_BAR))]
            ),
        ),
    ]
)
_BATCH_SCHEMA = pa.schema(
    [
        ("ret", pa.int64()),
        (
            "data",
            pa.struct(
                [
                    (
                        "kline_list",
                        pa.list_(
                            pa.struct(
                                [
                                    ("code", pa.string()),
                                    ("kline_type", pa.int64()),
                                    ("kline_data", pa.list_(_BAR)),
                                ]
                            )
                        ),
                    )
                ]
            ),
        ),
    ]
)

# kline_type -> alias, indexable by kline_type (slot 0 and unknown types are null).
_ALIAS_BY_TYPE = pa.array(
    [BY_KLINE_TYPE[k].alias if k in BY_KLINE_TYPE else None for k in range(max(BY_KLINE_TYPE) + 1)],
    pa.string(),
)
_INTERVAL_RANK: dict[str, int] = {i.alias: i.kline_type for i in INTERVALS}

# Epoch values above this are milliseconds, below it seconds: 1e11 s is the year 5138 and
# 1e11 ms is 1973, so the two never overlap for market data. AllTick documents seconds for
# bars and milliseconds for ticks, but one documented depth example has a 10-digit tick_time.
_MS_THRESHOLD = 100_000_000_000

_ARROW_TO_PANDAS = {pa.string(): STRING, pa.large_string(): STRING}.get


def _empty(dtypes: Mapping[str, Any]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in dtypes.items()})


def empty_klines() -> pd.DataFrame:
    """A k-line DataFrame with no rows and the exact dtypes of :data:`KLINE_COLUMNS`."""
    return _empty(KLINE_DTYPES)


# --------------------------------------------------------------------------- column casts


def _malformed(what: str, endpoint: str) -> MalformedResponse:
    return MalformedResponse(what, endpoint=endpoint)


def _text(value: Any, endpoint: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return repr(value)
    raise _malformed(f"expected a string or number, got {value!r}", endpoint)


def _strings(values: list[Any], endpoint: str) -> pa.Array:
    """Values as an Arrow string array; numbers (AllTick sometimes sends ints) become text."""
    try:
        return pa.array(values, pa.string())
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        return pa.array([_text(v, endpoint) for v in values], pa.string())


def _cast_numbers(arr: pa.Array, to: pa.DataType, name: str, endpoint: str) -> pa.Array:
    """Cast strings to numbers; ``""`` becomes null. Garbage raises MalformedResponse."""
    try:
        return arr.cast(to)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    # The rare path: blanks, surrounding spaces, or "1.0" for an integer field.
    if pa.types.is_string(arr.type):
        arr = pc.utf8_trim_whitespace(arr)
        arr = pc.if_else(pc.equal(arr, ""), pa.scalar(None, pa.string()), arr)
    try:
        return arr.cast(to)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        if pa.types.is_integer(to):
            try:
                return arr.cast(pa.float64()).cast(to)  # "1.0" -> 1; "1.5" still fails
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                pass
        raise _malformed(
            f"field {name!r} holds a value that is not a number: {exc}", endpoint
        ) from None


def _floats(arr: pa.Array, name: str, endpoint: str) -> pa.Array:
    return _cast_numbers(arr, pa.float64(), name, endpoint)


def _epoch(arr: pa.Array, name: str, endpoint: str) -> pa.Array:
    """Unix seconds or milliseconds (strings or ints) -> timestamp[ns, UTC]; nulls refused."""
    ints = _cast_numbers(arr, pa.int64(), name, endpoint)
    if ints.null_count:
        raise _malformed(f"a {name!r} is missing or empty", endpoint)
    try:
        millis = pc.if_else(pc.less(ints, _MS_THRESHOLD), pc.multiply_checked(ints, 1000), ints)
        return millis.cast(pa.timestamp("ms", "UTC")).cast(pa.timestamp("ns", "UTC"))
    except pa.ArrowInvalid as exc:
        raise _malformed(f"a {name!r} is out of range: {exc}", endpoint) from None


def _to_pandas(columns: dict[str, pa.Array], dtypes: Mapping[str, Any]) -> pd.DataFrame:
    df = pa.table(columns).to_pandas(types_mapper=_ARROW_TO_PANDAS)
    mismatched = {c: t for c, t in dtypes.items() if df[c].dtype != t}
    return df.astype(mismatched) if mismatched else df


# --------------------------------------------------------------------------- k-lines


def _klines_frame(
    code: pa.Array, kline_type: pa.Array, bars: Mapping[str, pa.Array], endpoint: str
) -> pd.DataFrame:
    """Typed k-line frame from per-bar code, kline_type and wire-named string fields."""
    if len(code) == 0:
        return empty_klines()
    if code.null_count or pc.any(pc.equal(code, "")).as_py():
        raise _malformed("a body with bars has no 'code'", endpoint)
    kline_type = kline_type.cast(pa.int64())
    known = pc.and_(pc.greater(kline_type, 0), pc.less(kline_type, len(_ALIAS_BY_TYPE)))
    if kline_type.null_count or not pc.all(known).as_py():
        bad = sorted(set(kline_type.to_pylist()) - set(BY_KLINE_TYPE), key=str)
        raise _malformed(f"unknown kline_type {bad} (AllTick uses 1..10)", endpoint)
    columns = {
        "code": code,
        "interval": pc.take(_ALIAS_BY_TYPE, kline_type),
        "timestamp": _epoch(bars["timestamp"], "timestamp", endpoint),
    }
    for wire_name, column in _BAR_FIELDS.items():
        if column != "timestamp":
            columns[column] = _floats(bars[wire_name], wire_name, endpoint)
    return _to_pandas(columns, KLINE_DTYPES)


def _bodies(bodies: Iterable[bytes]) -> list[bytes]:
    return [b if isinstance(b, bytes) else bytes(b) for b in bodies]


def _read_ndjson(bodies: list[bytes], schema: pa.Schema) -> pa.StructArray | None:
    """``data`` of every body as one Arrow struct array, or None when the fast path can't
    be trusted with these bodies (then the tolerant path decides)."""
    blob = b"\n".join(b.replace(b"\n", b" ").replace(b"\r", b" ") for b in bodies)
    # Arrow parses in blocks and a body must fit in one; 1 MiB blocks parallelise well.
    block_size = max(1 << 20, max(len(b) for b in bodies) + 1)
    try:
        table = pj.read_json(
            pa.BufferReader(blob),
            read_options=pj.ReadOptions(block_size=block_size),
            parse_options=pj.ParseOptions(
                explicit_schema=schema, unexpected_field_behavior="ignore"
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return None
    # Arrow skips blank lines and splits "{}{}" into two rows: the counts must agree.
    if table.num_rows != len(bodies):
        return None
    ret = table.column("ret")
    if ret.null_count or not pc.all(pc.equal(ret, 200)).as_py():
        return None
    return table.column("data").combine_chunks()


def _ok_data(body: bytes, index: int, endpoint: str) -> dict[str, Any]:
    """``data`` of one successful body (the tolerant path), checking its envelope."""
    env = parse_envelope(body, endpoint)
    return _envelope_data(env, index, endpoint)


def _envelope_data(env: Envelope, index: int, endpoint: str) -> dict[str, Any]:
    if env.ret != 200:
        raise ValueError(
            f"body {index} has ret {env.ret} ({env.msg!r}); decode only bodies whose ret is "
            "200 and handle the others with alltick_frames.core.errors"
        )
    if env.data is None:
        return {}
    if not isinstance(env.data, dict):
        raise _malformed(f"body {index}: 'data' is not an object", endpoint)
    return env.data


def _list_of_objects(value: Any, what: str, index: int, endpoint: str) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise _malformed(f"body {index}: {what} is not a list of objects", endpoint)
    return value


class _BarColumns:
    """Per-bar columns gathered bar by bar on the tolerant path."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.code: list[Any] = []
        self.kline_type: list[Any] = []
        self.fields: dict[str, list[Any]] = {f: [] for f in _BAR_FIELDS}

    def add(self, code: Any, kline_type: Any, bars: list[dict[str, Any]], where: str) -> None:
        if not bars:
            return
        if not isinstance(code, str) or not code:
            raise _malformed(f"{where}: bars without a 'code'", self.endpoint)
        kt = kline_type if isinstance(kline_type, int) else _int_or_none(kline_type)
        if kt not in BY_KLINE_TYPE:
            raise _malformed(f"{where}: unknown kline_type {kline_type!r}", self.endpoint)
        self.code.extend([code] * len(bars))
        self.kline_type.extend([kt] * len(bars))
        for name, values in self.fields.items():
            values.extend([bar.get(name) for bar in bars])

    def frame(self) -> pd.DataFrame:
        return _klines_frame(
            pa.array(self.code, pa.string()),
            pa.array(self.kline_type, pa.int64()),
            {name: _strings(values, self.endpoint) for name, values in self.fields.items()},
            self.endpoint,
        )


def _int_or_none(value: Any) -> int | None:
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def _group_bars(groups: Any, bars_field: str, endpoint: str) -> pd.DataFrame:
    """The bars of Arrow ``groups`` (structs with ``code``, ``kline_type`` and a list of bars
    under ``bars_field``), one row per bar carrying its group's code and type."""
    lists = pc.struct_field(groups, bars_field)
    parent = pc.list_parent_indices(lists)
    bars = pc.list_flatten(lists)
    return _klines_frame(
        pc.take(pc.struct_field(groups, "code"), parent),
        pc.take(pc.struct_field(groups, "kline_type"), parent),
        {name: pc.struct_field(bars, name) for name in _BAR_FIELDS},
        endpoint,
    )


def decode_kline_bodies(bodies: Sequence[bytes]) -> pd.DataFrame:
    """Decode successful ``GET /kline`` bodies into one k-line DataFrame (:data:`KLINE_COLUMNS`).

    Each body is ``{"ret":200, ..., "data":{"code", "kline_type", "kline_list":[bar, ...]}}``
    with bars ``{"timestamp", "open_price", "high_price", "low_price", "close_price",
    "volume", "turnover"}``, all strings (numbers are accepted too). Pass as many bodies per
    call as you have: the cost per bar falls steeply with batch size. Empty ``kline_list``\\ s
    give no rows; unknown fields are ignored; ``""`` volume or turnover gives NaN.

    Rows keep the order of the bodies and of the bars inside them: no sorting and no
    de-duplication here (see :func:`finalize_klines`).

    Raises ValueError for a body whose ``ret`` is not 200, and
    :class:`~alltick_frames.core.errors.MalformedResponse` for a body that is not a k-line answer
    (not JSON, bars without a code, an unknown kline_type, a price that is not a number).
    """
    bodies = _bodies(bodies)
    if not bodies:
        return empty_klines()
    data = _read_ndjson(bodies, _KLINE_SCHEMA)
    if data is not None:
        return _group_bars(data, "kline_list", "kline")
    columns = _BarColumns("kline")
    for i, body in enumerate(bodies):
        d = _ok_data(body, i, "kline")
        bars = _list_of_objects(d.get("kline_list"), "'kline_list'", i, "kline")
        columns.add(d.get("code"), d.get("kline_type"), bars, f"body {i}")
    return columns.frame()


def decode_batch_kline_bodies(bodies: Sequence[bytes]) -> pd.DataFrame:
    """Decode successful ``POST /batch-kline`` bodies into one k-line DataFrame.

    Each body is ``{"ret":200, ..., "data":{"kline_list":[{"code", "kline_type",
    "kline_data":[bar, ...]}, ...]}}`` (note ``kline_data`` inside, not ``kline_list``); bars
    as in :func:`decode_kline_bodies`, and the same rules and errors apply. Groups are
    matched by the ``code`` and ``kline_type`` they carry, never by position.
    """
    bodies = _bodies(bodies)
    if not bodies:
        return empty_klines()
    data = _read_ndjson(bodies, _BATCH_SCHEMA)
    if data is not None:
        groups = pc.list_flatten(pc.struct_field(data, "kline_list"))
        return _group_bars(groups, "kline_data", "batch-kline")
    endpoint = "batch-kline"
    columns = _BarColumns(endpoint)
    for i, body in enumerate(bodies):
        d = _ok_data(body, i, endpoint)
        groups = _list_of_objects(d.get("kline_list"), "'kline_list'", i, endpoint)
        for j, group in enumerate(groups):
            what = f"group {j} 'kline_data'"
            bars = _list_of_objects(group.get("kline_data"), what, i, endpoint)
            columns.add(group.get("code"), group.get("kline_type"), bars, f"body {i}, group {j}")
    return columns.frame()


def _ranks(values: pd.Series, order: Sequence[str]) -> np.ndarray:
    """Rank of each value: its place in ``order``; values it lacks follow, alphabetically.

    Computed by Arrow on the column's own strings, with no Python object per row.
    """
    order = list(dict.fromkeys(order))
    known = set(order)
    extra = sorted(v for v in values.dropna().unique() if v not in known)
    everything = pa.array(order + extra, pa.string())
    ranks = pc.index_in(pa.array(values.array), value_set=everything).fill_null(len(everything))
    return ranks.to_numpy(zero_copy_only=False).astype(np.int64)


def finalize_klines(frames: Sequence[pd.DataFrame], code_order: Sequence[str]) -> pd.DataFrame:
    """Concatenate decoded k-line frames into the final, clean result.

    * drops repeated (code, interval, timestamp) bars, keeping the *last* occurrence: pass
      frames oldest fetch first, so a refreshed forming bar replaces the stale one;
    * sorts by the caller's ``code_order``, then interval (1m ... 1M), then timestamp (bars
      may arrive newest first or repeated, issue #12); codes missing from ``code_order``
      come after, alphabetically;
    * returns a fresh RangeIndex and the exact :data:`KLINE_DTYPES`.
    """
    parts = [f for f in frames if len(f)]
    if not parts:
        return empty_klines()
    df = pd.concat(parts, ignore_index=True)
    df = df[KLINE_COLUMNS].astype(KLINE_DTYPES)
    code_rank = _ranks(df["code"], code_order)
    interval_rank = _ranks(df["interval"], list(_INTERVAL_RANK))
    ts = pd.DatetimeIndex(df["timestamp"]).asi8
    position = np.arange(len(df))
    # Sort by key, then by arrival, so the last copy of each bar is the last of its run.
    idx = np.lexsort((position, ts, interval_rank, code_rank))
    c, i, t = code_rank[idx], interval_rank[idx], ts[idx]
    last_of_run = np.ones(len(idx), dtype=bool)
    last_of_run[:-1] = (c[1:] != c[:-1]) | (i[1:] != i[:-1]) | (t[1:] != t[:-1])
    return df.take(idx[last_of_run]).reset_index(drop=True)


def wide(df: pd.DataFrame, field: str = "close", interval: str | None = None) -> pd.DataFrame:
    """One k-line field as a wide table: index ``timestamp``, one column per code.

    For research code: ``wide(result.data)`` gives closing prices with codes as columns (in
    the order they first appear, i.e. the caller's order after :func:`finalize_klines`),
    NaN where a code has no bar at that time. A frame holding several intervals needs
    ``interval=`` to pick one, since their timestamps do not line up.

    >>> wide(result.data, "volume", interval="1d")  # doctest: +SKIP
    """
    if field not in _PRICE_FIELDS:
        raise ValueError(f"field must be one of {', '.join(_PRICE_FIELDS)}; got {field!r}")
    present = list(pd.unique(df["interval"].dropna()))
    if interval is not None:
        alias = parse_interval(interval).alias
        if alias not in present and len(df):
            raise ValueError(f"no {alias} bars here; intervals present: {', '.join(present)}")
        df = df[df["interval"] == alias]
    elif len(present) > 1:
        raise ValueError(
            f"the frame holds several intervals ({', '.join(present)}); pick one with "
            f"interval=, e.g. wide(df, {field!r}, interval={present[0]!r})"
        )
    df = df.drop_duplicates(["timestamp", "code"], keep="last")
    out = df.pivot(index="timestamp", columns="code", values=field)
    out = out.reindex(columns=pd.Index(pd.unique(df["code"]), dtype=STRING, name="code"))
    return out.sort_index()


# --------------------------------------------------------------------------- ticks


def _records(
    bodies: Sequence[bytes | Envelope], list_key: str, endpoint: str
) -> list[dict[str, Any]]:
    """The objects under ``data[list_key]`` of every successful body, in order."""
    out: list[dict[str, Any]] = []
    for i, body in enumerate(bodies):
        if isinstance(body, Envelope):
            data = _envelope_data(body, i, endpoint)
        else:
            data = _ok_data(body if isinstance(body, bytes) else bytes(body), i, endpoint)
        out.extend(_list_of_objects(data.get(list_key), repr(list_key), i, endpoint))
    return out


def _column(records: list[dict[str, Any]], key: str, endpoint: str) -> pa.Array:
    return _strings([r.get(key) for r in records], endpoint)


def _blank_to_null(arr: pa.Array) -> pa.Array:
    trimmed = pc.utf8_trim_whitespace(arr)
    return pc.if_else(pc.equal(trimmed, ""), pa.scalar(None, pa.string()), arr)


_SIDES = pa.array(["neutral", "buy", "sell"], pa.string())

#: Latest trades, one row per code answered:
#:
#: * ``code`` (string);
#: * ``time`` (datetime64[ns, UTC]): when the trade happened (``tick_time``, milliseconds);
#: * ``seq`` (int64): AllTick's sequence number of the quote;
#: * ``price``, ``volume``, ``turnover`` (float64): NaN where sent empty;
#: * ``direction`` (int8): AllTick's ``trade_direction``, 0 neutral or unknown, 1 buy
#:   (aggressive, at or above the ask), 2 sell; FX, metals and energy always send 1;
#: * ``side`` (string): the same in words, ``"neutral"``, ``"buy"`` or ``"sell"``.
TRADE_DTYPES: dict[str, Any] = {
    "code": STRING,
    "time": UTC_NS,
    "seq": np.dtype("int64"),
    "price": _F64,
    "volume": _F64,
    "turnover": _F64,
    "direction": np.dtype("int8"),
    "side": STRING,
}
TRADE_COLUMNS: list[str] = list(TRADE_DTYPES)


def empty_trades() -> pd.DataFrame:
    """A trades DataFrame with no rows and the dtypes of :data:`TRADE_COLUMNS`."""
    return _empty(TRADE_DTYPES)


def decode_trade_ticks(bodies: Sequence[bytes | Envelope]) -> pd.DataFrame:
    """Decode successful ``/trade-tick`` bodies (or their parsed :class:`Envelope`\\ s).

    Each body's ``data.tick_list`` holds ``{"code", "seq", "tick_time", "price", "volume",
    "turnover", "trade_direction"}``; ``seq`` and ``tick_time`` may be strings or ints. The
    columns are described at :data:`TRADE_DTYPES`; rows keep the order of the answer.
    A code the server left out of its answer has no row: compare with what was asked.
    """
    endpoint = "trade-tick"
    records = _records(bodies, "tick_list", endpoint)
    if not records:
        return empty_trades()
    direction = _column(records, "trade_direction", endpoint)
    direction = _cast_numbers(direction, pa.int8(), "trade_direction", endpoint)
    direction = pc.fill_null(direction, 0)
    in_range = pc.and_(pc.greater_equal(direction, 0), pc.less_equal(direction, 2))
    side = pc.take(_SIDES, pc.if_else(in_range, direction, pa.scalar(None, pa.int8())))
    columns = {
        "code": _column(records, "code", endpoint),
        "time": _epoch(_column(records, "tick_time", endpoint), "tick_time", endpoint),
        "seq": _cast_numbers(_column(records, "seq", endpoint), pa.int64(), "seq", endpoint),
        "price": _floats(_column(records, "price", endpoint), "price", endpoint),
        "volume": _floats(_column(records, "volume", endpoint), "volume", endpoint),
        "turnover": _floats(_column(records, "turnover", endpoint), "turnover", endpoint),
        "direction": direction,
        "side": side,
    }
    if columns["code"].null_count or columns["seq"].null_count:
        raise _malformed("a trade tick lacks its 'code' or 'seq'", endpoint)
    return _to_pandas(columns, TRADE_DTYPES)


#: Order books in long form, one row per (code, side, level):
#:
#: * ``code`` (string);
#: * ``time`` (datetime64[ns, UTC]): the book's ``tick_time``;
#: * ``seq`` (int64): AllTick's sequence number of the quote;
#: * ``side`` (string): ``"bid"`` or ``"ask"``;
#: * ``level`` (int64): 1 for the best price on that side, then 2, 3, ...;
#: * ``price``, ``volume`` (float64): NaN where sent empty.
#:
#: Rows come code by code, bids before asks, best level first. AllTick sends 1 level for
#: FX, metals, US stocks; 5 for crypto and A-shares; 10 for HK. One side may be missing
#: (limit-up: bids only; limit-down: asks only); both sides at price 0 mean delisted.
DEPTH_DTYPES: dict[str, Any] = {
    "code": STRING,
    "time": UTC_NS,
    "seq": np.dtype("int64"),
    "side": STRING,
    "level": np.dtype("int64"),
    "price": _F64,
    "volume": _F64,
}
DEPTH_COLUMNS: list[str] = list(DEPTH_DTYPES)


def empty_depth() -> pd.DataFrame:
    """An order-book DataFrame with no rows and the dtypes of :data:`DEPTH_COLUMNS`."""
    return _empty(DEPTH_DTYPES)


def decode_depth_ticks(bodies: Sequence[bytes | Envelope]) -> pd.DataFrame:
    """Decode successful ``/depth-tick`` bodies (or :class:`Envelope`\\ s) into long form.

    Each body's ``data.tick_list`` holds ``{"code", "seq", "tick_time", "bids":[{"price",
    "volume"}, ...], "asks":[...]}``, best level first. The columns are described at
    :data:`DEPTH_DTYPES`. A code whose book is empty on both sides has no row at all, so
    detect left-out codes from the envelopes' ``tick_list``, not from this frame.
    """
    endpoint = "depth-tick"
    ticks = _records(bodies, "tick_list", endpoint)
    tick_of_row: list[int] = []
    side: list[str] = []
    level: list[int] = []
    price: list[Any] = []
    volume: list[Any] = []
    for t, tick in enumerate(ticks):
        for side_name, key in (("bid", "bids"), ("ask", "asks")):
            levels = _list_of_objects(tick.get(key), repr(key), t, endpoint)
            n = len(levels)
            tick_of_row.extend([t] * n)
            side.extend([side_name] * n)
            level.extend(range(1, n + 1))
            price.extend([lv.get("price") for lv in levels])
            volume.extend([lv.get("volume") for lv in levels])
    if not tick_of_row:
        return empty_depth()
    rows = pa.array(tick_of_row, pa.int64())
    code = _column(ticks, "code", endpoint)
    seq = _cast_numbers(_column(ticks, "seq", endpoint), pa.int64(), "seq", endpoint)
    if code.null_count or seq.null_count:
        raise _malformed("a depth tick lacks its 'code' or 'seq'", endpoint)
    time = _epoch(_column(ticks, "tick_time", endpoint), "tick_time", endpoint)
    columns = {
        "code": pc.take(code, rows),
        "time": pc.take(time, rows),
        "seq": pc.take(seq, rows),
        "side": pa.array(side, pa.string()),
        "level": pa.array(level, pa.int64()),
        "price": _floats(_strings(price, endpoint), "price", endpoint),
        "volume": _floats(_strings(volume, endpoint), "volume", endpoint),
    }
    return _to_pandas(columns, DEPTH_DTYPES)


# --------------------------------------------------------------------------- static info

_STATIC_TEXT = ("name_en", "name_cn", "name_hk", "exchange", "board", "currency")
_STATIC_NUMBERS = (
    "lot_size",
    "total_shares",
    "circulating_shares",
    "hk_shares",
    "eps",
    "eps_ttm",
    "bps",
    "dividend_yield",
)

#: Static information, one row per code answered (``/static_info``, stocks only):
#:
#: * ``code`` (string): AllTick's ``symbol`` field, e.g. ``700.HK``;
#: * ``name_en``, ``name_cn``, ``name_hk`` (string): English, simplified and traditional
#:   Chinese names;
#: * ``exchange`` (string), e.g. ``SEHK``, ``NASDAQ``; ``board`` (string), e.g.
#:   ``HKEquity``; ``currency`` (string), e.g. ``HKD``;
#: * ``lot_size`` (float64): shares per board lot;
#: * ``total_shares``, ``circulating_shares`` (float64): share counts; ``hk_shares``
#:   (float64): shares listed in Hong Kong (HK stocks only, NaN otherwise);
#: * ``eps``, ``eps_ttm`` (float64): earnings per share, last report and trailing twelve
#:   months; ``bps`` (float64): book value per share; ``dividend_yield`` (float64), as sent.
#:
#: Empty strings become NA (text) or NaN (numbers). Fields AllTick adds later are ignored.
STATIC_INFO_DTYPES: dict[str, Any] = {
    "code": STRING,
    **dict.fromkeys(_STATIC_TEXT, STRING),
    **dict.fromkeys(_STATIC_NUMBERS, _F64),
}
STATIC_INFO_COLUMNS: list[str] = list(STATIC_INFO_DTYPES)


def empty_static_info() -> pd.DataFrame:
    """A static-info DataFrame with no rows and the dtypes of :data:`STATIC_INFO_COLUMNS`."""
    return _empty(STATIC_INFO_DTYPES)


def decode_static_info(bodies: Sequence[bytes | Envelope]) -> pd.DataFrame:
    """Decode successful ``/static_info`` bodies (or :class:`Envelope`\\ s).

    Each body's ``data.static_info_list`` holds objects of string fields keyed by
    ``symbol`` (not ``code``). The columns are described at :data:`STATIC_INFO_DTYPES`.
    """
    endpoint = "static_info"
    records = _records(bodies, "static_info_list", endpoint)
    if not records:
        return empty_static_info()
    code = _strings([r.get("symbol", r.get("code")) for r in records], endpoint)
    if code.null_count:
        raise _malformed("a static_info record lacks its 'symbol'", endpoint)
    columns: dict[str, pa.Array] = {"code": code}
    for key in _STATIC_TEXT:
        columns[key] = _blank_to_null(_column(records, key, endpoint))
    for key in _STATIC_NUMBERS:
        columns[key] = _floats(_column(records, key, endpoint), key, endpoint)
    return _to_pandas(columns, STATIC_INFO_DTYPES)


# --------------------------------------------------------------------------- suspensions

#: Time zone of each exchange's local times.
EXCHANGE_TZ: dict[str, str] = {
    "sse": "Asia/Shanghai",
    "nyse": "America/New_York",
    "nasdaq": "America/New_York",
}

#: Trading halts, one row per record of ``/api/suspension/{exchange}``:
#:
#: * ``exchange`` (string): ``SSE``, ``NYSE`` or ``NASDAQ``;
#: * ``code`` (string): the ``symbol`` as the service sends it (SSE sends bare digits);
#: * ``name`` (string): ``symbolName``; ``reason`` (string): ``haltReason``;
#: * ``period`` (string): ``haltPeriod`` as sent (SSE only);
#: * ``halted_at`` (datetime64[ns, UTC]): ``haltDateTime`` (NYSE), else ``haltDate`` with
#:   ``haltTime``;
#: * ``resumes_at`` (datetime64[ns, UTC]): ``resumeDateTime``, else ``resumeDate`` with
#:   ``resumeTime``; NaT while no resumption is announced;
#: * ``published_at`` (datetime64[ns, UTC]): ``publishDate``, when the notice came out;
#: * ``source_exchange`` (string): ``sourceExchange`` (NYSE only);
#: * ``pause_threshold_price`` (float64): ``pauseThresholdPrice`` (NASDAQ only).
#:
#: The service sends exchange-local ``yyyy-MM-dd HH:mm:ss`` text; it is read in the
#: exchange's time zone (:data:`EXCHANGE_TZ`) and converted to UTC. ``null``, ``""`` and
#: unreadable dates become NaT; missing text becomes NA.
SUSPENSION_DTYPES: dict[str, Any] = {
    "exchange": STRING,
    "code": STRING,
    "name": STRING,
    "reason": STRING,
    "period": STRING,
    "halted_at": UTC_NS,
    "resumes_at": UTC_NS,
    "published_at": UTC_NS,
    "source_exchange": STRING,
    "pause_threshold_price": _F64,
}
SUSPENSION_COLUMNS: list[str] = list(SUSPENSION_DTYPES)

_CLOCK = re.compile(r"^\s*\d{1,2}:\d{2}(:\d{2})?\s*$")


def empty_suspensions() -> pd.DataFrame:
    """A trading-halt DataFrame with no rows and the dtypes of :data:`SUSPENSION_COLUMNS`."""
    return _empty(SUSPENSION_DTYPES)


def _local_times(values: pd.Series) -> pd.Series:
    """Naive local datetimes from text like ``2024-01-15 09:30:00`` (NaT when unreadable)."""
    text = values.astype("string").str.strip().replace("", pd.NA)
    return pd.to_datetime(text, format="ISO8601", errors="coerce").astype("datetime64[ns]")


def _moment(records: pd.DataFrame, datetime_key: str, date_key: str, time_key: str) -> pd.Series:
    """One naive local moment from a datetime field, else a date and a time field.

    The time field may be a full datetime or a bare clock time (``09:30:00``).
    """
    nat = pd.Series(pd.NaT, index=records.index, dtype="datetime64[ns]")
    full = _local_times(records[datetime_key]) if datetime_key in records else nat
    date = _local_times(records[date_key]) if date_key in records else nat
    if time_key not in records:
        return full.fillna(date)
    time_text = records[time_key].astype("string")
    clock = time_text.where(time_text.str.match(_CLOCK).fillna(False).astype(bool))
    on_date = date.dt.normalize() + pd.to_timedelta(clock.str.strip(), errors="coerce")
    return full.fillna(_local_times(time_text)).fillna(on_date).fillna(date)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def decode_suspensions(records: Sequence[Mapping[str, Any]], exchange: str) -> pd.DataFrame:
    """Decode the records of one trading-halt answer (``SuspensionPage.data``).

    ``exchange`` is ``"sse"``, ``"nyse"`` or ``"nasdaq"`` (case-insensitive): it sets the
    time zone the local times are read in. The columns are described at
    :data:`SUSPENSION_DTYPES`; rows keep the service's order (newest notice first).
    """
    key = exchange.lower()
    if key not in EXCHANGE_TZ:
        raise ValueError(f"exchange must be one of {', '.join(EXCHANGE_TZ)}; got {exchange!r}")
    if not records:
        return empty_suspensions()
    raw = pd.DataFrame.from_records([dict(r) for r in records])

    def text(name: str) -> pd.Series:
        if name not in raw:
            return pd.Series(pd.NA, index=raw.index, dtype=STRING)
        # Records missing a key come out of from_records as NaN: missing, not "nan".
        col = raw[name].map(lambda v: v if isinstance(v, str) or _missing(v) else str(v))
        return col.astype(STRING).str.strip().replace("", pd.NA)

    def utc(moment: pd.Series) -> pd.Series:
        local = moment.dt.tz_localize(EXCHANGE_TZ[key], ambiguous="NaT", nonexistent="NaT")
        return local.dt.tz_convert("UTC").astype(UTC_NS)

    threshold = text("pauseThresholdPrice")
    df = pd.DataFrame(
        {
            "exchange": pd.Series(key.upper(), index=raw.index, dtype=STRING),
            "code": text("symbol"),
            "name": text("symbolName"),
            "reason": text("haltReason"),
            "period": text("haltPeriod"),
            "halted_at": utc(_moment(raw, "haltDateTime", "haltDate", "haltTime")),
            "resumes_at": utc(_moment(raw, "resumeDateTime", "resumeDate", "resumeTime")),
            "published_at": utc(_moment(raw, "publishDateTime", "publishDate", "publishTime")),
            "source_exchange": text("sourceExchange"),
            "pause_threshold_price": pd.to_numeric(threshold, errors="coerce").astype(_F64),
        }
    )
    return df.astype(SUSPENSION_DTYPES)
