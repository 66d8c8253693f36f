"""``/static_info`` bodies -> the static-information frame (stocks and ETFs)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
import pyarrow as pa

from alltick_frames.core.wire import Envelope
from alltick_frames.frames.common import (
    F64,
    STRING,
    blank_to_null,
    empty_frame,
    floats,
    list_records,
    malformed,
    record_column,
    strings,
    to_pandas,
)

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
    **dict.fromkeys(_STATIC_NUMBERS, F64),
}
STATIC_INFO_COLUMNS: list[str] = list(STATIC_INFO_DTYPES)


def empty_static_info() -> pd.DataFrame:
    """A static-info DataFrame with no rows and the dtypes of :data:`STATIC_INFO_COLUMNS`."""
    return empty_frame(STATIC_INFO_DTYPES)


def decode_static_info(bodies: Sequence[bytes | Envelope]) -> pd.DataFrame:
    """Decode successful ``/static_info`` bodies (or :class:`Envelope`\\ s).

    Each body's ``data.static_info_list`` holds objects of string fields keyed by
    ``symbol`` (not ``code``). The columns are described at :data:`STATIC_INFO_DTYPES`.
    """
    endpoint = "static_info"
    records = list_records(bodies, "static_info_list", endpoint)
    if not records:
        return empty_static_info()
    code = strings([r.get("symbol", r.get("code")) for r in records], endpoint)
    if code.null_count:
        raise malformed("a static_info record lacks its 'symbol'", endpoint)
    columns: dict[str, pa.Array] = {"code": code}
    for key in _STATIC_TEXT:
        columns[key] = blank_to_null(record_column(records, key, endpoint))
    for key in _STATIC_NUMBERS:
        columns[key] = floats(record_column(records, key, endpoint), key, endpoint)
    return to_pandas(columns, STATIC_INFO_DTYPES)
