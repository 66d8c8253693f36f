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


#: A book's status, as AllTick marks it
#: (``en/api-reference/stock/price-change-trading-status.mdx``): a side whose every level is
#: ``{"price":"0...","volume":"0"}`` holds no quotes. Every ask
#: level zero is ``limit-up``, every bid level zero ``limit-down``, both sides zero
#: ``delisted``; anything else is ``normal``.
BOOK_STATUSES: tuple[str, ...] = ("normal", "limit-up", "limit-down", "delisted")
_STATUS = pa.array(BOOK_STATUSES, pa.string())

#: Order books in long form, one row per quoted (code, side, level):
#:
#: * ``code`` (string);
#: * ``time`` (datetime64[ns, UTC]): the book's ``tick_time``;
#: * ``seq`` (int64): AllTick's sequence number of the quote;
#: * ``status`` (string): the book's status, one of :data:`BOOK_STATUSES`, on every row of it;
#: * ``side`` (string): ``"bid"`` or ``"ask"``;
#: * ``level`` (int64): 1 for the best price on that side, then 2, 3, ... as AllTick numbers
#:   them;
#: * ``price``, ``volume`` (float64): NaN where sent empty.
#:
#: Rows come code by code, bids before asks, best level first. AllTick sends 1 level for
#: FX, metals, US stocks; 5 for crypto and A-shares; 10 for HK. A level whose price is 0 is a
#: placeholder, never a quote, and has no row: a limit-up book has bid rows only, a limit-down
#: book ask rows only, and a delisted book none (its code is reported apart, see
#: :func:`decode_depth_books`).
DEPTH_DTYPES: dict[str, Any] = {
    "code": STRING,
    "time": UTC_NS,
    "seq": np.dtype("int64"),
    "status": STRING,
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
    :data:`DEPTH_DTYPES`. A code whose book has no quote on either side (a market index, a
    delisted stock) has no row at all, so detect left-out codes from the envelopes'
    ``tick_list``, not from this frame; :func:`decode_depth_books` also gives each book's
    status.
    """
    return decode_depth_books(bodies)[0]


def decode_depth_books(
    bodies: Sequence[bytes | Envelope],
) -> tuple[pd.DataFrame, dict[str, str]]:
    """:func:`decode_depth_ticks`, and the status of every book answered, by code.

    The status (one of :data:`BOOK_STATUSES`) is ``"delisted"`` for a book zero on both
    sides, whose code has no row in the frame; a book with no levels at all (a market index)
    is ``"normal"``: nothing marks it.
    """
    endpoint = "depth-tick"
    ticks = list_records(bodies, "tick_list", endpoint)
    tick_of_row: list[int] = []
    is_ask: list[bool] = []
    level: list[int] = []
    price: list[Any] = []
    volume: list[Any] = []
    for t, tick in enumerate(ticks):
        for ask, key in ((False, "bids"), (True, "asks")):
            levels = list_of_objects(tick.get(key), repr(key), t, endpoint)
            n = len(levels)
            tick_of_row.extend([t] * n)
            is_ask.extend([ask] * n)
            level.extend(range(1, n + 1))
            price.extend([lv.get("price") for lv in levels])
            volume.extend([lv.get("volume") for lv in levels])
    code = record_column(ticks, "code", endpoint)
    if code.null_count:
        raise malformed("a depth tick lacks its 'code'", endpoint)
    prices = floats(strings(price, endpoint), "price", endpoint)
    zero = pc.fill_null(pc.equal(prices, 0.0), False).to_numpy(zero_copy_only=False)
    status = _book_status(np.array(tick_of_row, np.int64), np.array(is_ask, bool), zero, len(ticks))
    statuses = dict(zip(code.to_pylist(), pc.take(_STATUS, status).to_pylist(), strict=True))
    quoted = np.flatnonzero(~zero)
    if not quoted.size:
        return empty_depth(), statuses
    seq = cast_numbers(record_column(ticks, "seq", endpoint), pa.int64(), "seq", endpoint)
    if seq.null_count:
        raise malformed("a depth tick lacks its 'seq'", endpoint)
    time = epoch(record_column(ticks, "tick_time", endpoint), "tick_time", endpoint)
    rows = pa.array(np.array(tick_of_row, np.int64)[quoted])
    columns = {
        "code": pc.take(code, rows),
        "time": pc.take(time, rows),
        "seq": pc.take(seq, rows),
        "status": pc.take(_STATUS, pc.take(status, rows)),
        "side": pc.take(_SIDE_NAMES, pa.array(np.array(is_ask, np.int8)[quoted])),
        "level": pa.array(np.array(level, np.int64)[quoted]),
        "price": pc.take(prices, pa.array(quoted)),
        "volume": pc.take(floats(strings(volume, endpoint), "volume", endpoint), pa.array(quoted)),
    }
    return to_pandas(columns, DEPTH_DTYPES), statuses


_SIDE_NAMES = pa.array(["bid", "ask"], pa.string())


def _book_status(tick: np.ndarray, ask: np.ndarray, zero: np.ndarray, books: int) -> pa.Array:
    """Each book's index into :data:`BOOK_STATUSES`, from which of its sides are all zero."""
    key = tick * 2 + ask
    levels = np.bincount(key, minlength=2 * books).reshape(books, 2)
    zeros = np.bincount(key, weights=zero, minlength=2 * books).reshape(books, 2)
    empty = (levels > 0) & (zeros == levels)  # columns: bids, asks
    # 0 normal, 1 limit-up (asks zero), 2 limit-down (bids zero), 3 delisted (both).
    return pa.array(empty[:, 1].astype(np.int8) + 2 * empty[:, 0].astype(np.int8))
