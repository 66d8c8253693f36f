"""``/trade-tick`` and ``/depth-tick`` bodies -> the trades and order-book frames."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from alltick_frames.core.wire import Envelope
from alltick_frames.frames.common import (
    F64,
    STRING,
    UTC_NS,
    cast_numbers,
    empty_frame,
    epoch,
    floats,
    list_of_objects,
    list_records,
    malformed,
    record_column,
    strings,
    to_pandas,
)

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
    "price": F64,
    "volume": F64,
    "turnover": F64,
    "direction": np.dtype("int8"),
    "side": STRING,
}
TRADE_COLUMNS: list[str] = list(TRADE_DTYPES)


def empty_trades() -> pd.DataFrame:
    """A trades DataFrame with no rows and the dtypes of :data:`TRADE_COLUMNS`."""
    return empty_frame(TRADE_DTYPES)


def decode_trade_ticks(bodies: Sequence[bytes | Envelope]) -> pd.DataFrame:
    """Decode successful ``/trade-tick`` bodies (or their parsed :class:`Envelope`\\ s).

    Each body's ``data.tick_list`` holds ``{"code", "seq", "tick_time", "price", "volume",
    "turnover", "trade_direction"}``; ``seq`` and ``tick_time`` may be strings or ints. The
    columns are described at :data:`TRADE_DTYPES`; rows keep the order of the answer.
    A code the server left out of its answer has no row: compare with what was asked.
    """
    endpoint = "trade-tick"
    records = list_records(bodies, "tick_list", endpoint)
    if not records:
        return empty_trades()
    direction = record_column(records, "trade_direction", endpoint)
    direction = cast_numbers(direction, pa.int8(), "trade_direction", endpoint)
    direction = pc.fill_null(direction, 0)
    in_range = pc.and_(pc.greater_equal(direction, 0), pc.less_equal(direction, 2))
    side = pc.take(_SIDES, pc.if_else(in_range, direction, pa.scalar(None, pa.int8())))
    columns = {
        "code": record_column(records, "code", endpoint),
        "time": epoch(record_column(records, "tick_time", endpoint), "tick_time", endpoint),
        "seq": cast_numbers(record_column(records, "seq", endpoint), pa.int64(), "seq", endpoint),
        "price": floats(record_column(records, "price", endpoint), "price", endpoint),
        "volume": floats(record_column(records, "volume", endpoint), "volume", endpoint),
        "turnover": floats(record_column(records, "turnover", endpoint), "turnover", endpoint),
        "direction": direction,
        "side": side,
    }
    if columns["code"].null_count or columns["seq"].null_count:
        raise malformed("a trade tick lacks its 'code' or 'seq'", endpoint)
    return to_pandas(columns, TRADE_DTYPES)


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
    "price": F64,
    "volume": F64,
}
DEPTH_COLUMNS: list[str] = list(DEPTH_DTYPES)


def empty_depth() -> pd.DataFrame:
    """An order-book DataFrame with no rows and the dtypes of :data:`DEPTH_COLUMNS`."""
    return empty_frame(DEPTH_DTYPES)


def decode_depth_ticks(bodies: Sequence[bytes | Envelope]) -> pd.DataFrame:
    """Decode successful ``/depth-tick`` bodies (or :class:`Envelope`\\ s) into long form.

    Each body's ``data.tick_list`` holds ``{"code", "seq", "tick_time", "bids":[{"price",
    "volume"}, ...], "asks":[...]}``, best level first. The columns are described at
    :data:`DEPTH_DTYPES`. A code whose book is empty on both sides has no row at all, so
    detect left-out codes from the envelopes' ``tick_list``, not from this frame.
    """
    endpoint = "depth-tick"
    ticks = list_records(bodies, "tick_list", endpoint)
    tick_of_row: list[int] = []
    side: list[str] = []
    level: list[int] = []
    price: list[Any] = []
    volume: list[Any] = []
    for t, tick in enumerate(ticks):
        for side_name, key in (("bid", "bids"), ("ask", "asks")):
            levels = list_of_objects(tick.get(key), repr(key), t, endpoint)
            n = len(levels)
            tick_of_row.extend([t] * n)
            side.extend([side_name] * n)
            level.extend(range(1, n + 1))
            price.extend([lv.get("price") for lv in levels])
            volume.extend([lv.get("volume") for lv in levels])
    if not tick_of_row:
        return empty_depth()
    rows = pa.array(tick_of_row, pa.int64())
    code = record_column(ticks, "code", endpoint)
    seq = cast_numbers(record_column(ticks, "seq", endpoint), pa.int64(), "seq", endpoint)
    if code.null_count or seq.null_count:
        raise malformed("a depth tick lacks its 'code' or 'seq'", endpoint)
    time = epoch(record_column(ticks, "tick_time", endpoint), "tick_time", endpoint)
    columns = {
        "code": pc.take(code, rows),
        "time": pc.take(time, rows),
        "seq": pc.take(seq, rows),
        "side": pa.array(side, pa.string()),
        "level": pa.array(level, pa.int64()),
        "price": floats(strings(price, endpoint), "price", endpoint),
        "volume": floats(strings(volume, endpoint), "volume", endpoint),
    }
    return to_pandas(columns, DEPTH_DTYPES)
