"""What every decoder shares: the column dtypes, Arrow casts that refuse garbage, and
reading the ``data`` of a successful body.

Every number arrives as a JSON string (``"136.421"``); :func:`cast_numbers` and its friends
turn Arrow string columns into numbers and times in one vectorised step, and raise
:class:`~alltick_frames.core.errors.MalformedResponse` naming the field when a value is not
what AllTick documents.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from alltick_frames.core.errors import MalformedResponse
from alltick_frames.core.wire import Envelope, parse_envelope

#: The dtype of every text column: Arrow-backed strings with ``pd.NA`` for missing values.
STRING = pd.StringDtype("pyarrow")
#: The dtype of every time column: nanoseconds, tz-aware UTC.
UTC_NS = pd.DatetimeTZDtype("ns", "UTC")
#: The dtype of calendar dates (a k-line's ``session``): naive midnights, nanoseconds.
DATE_NS = np.dtype("datetime64[ns]")
#: The dtype of every number column.
F64 = np.dtype("float64")


# Epoch values above this are milliseconds, below it seconds: 1e11 s is the year 5138 and
# 1e11 ms is 1973, so the two never overlap for market data. AllTick documents seconds for
# bars and milliseconds for ticks, but one documented depth example has a 10-digit tick_time.
MS_THRESHOLD = 100_000_000_000

_ARROW_TO_PANDAS = {pa.string(): STRING, pa.large_string(): STRING}.get


def empty_frame(dtypes: Mapping[str, Any]) -> pd.DataFrame:
    """A frame with no rows and exactly these column dtypes."""
    try:
        template = _empty_frame(tuple(dtypes.items()))
    except TypeError:  # a dtype that cannot be a key
        return pd.DataFrame({c: pd.Series(dtype=t) for c, t in dtypes.items()})
    return template.copy()  # a copy of one built once: 40 times as fast as a build


@functools.lru_cache(maxsize=64)
def _empty_frame(items: tuple[tuple[str, Any], ...]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in items})


# --------------------------------------------------------------------------- column casts


def malformed(what: str, endpoint: str) -> MalformedResponse:
    """The error for a body of ``endpoint`` that is not what AllTick documents."""
    return MalformedResponse(what, endpoint=endpoint)


def _text(value: Any, endpoint: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return repr(value)
    raise malformed(f"expected a string or number, got {value!r}", endpoint)


def strings(values: list[Any], endpoint: str) -> pa.Array:
    """Values as an Arrow string array; numbers (AllTick sometimes sends ints) become text."""
    try:
        return pa.array(values, pa.string())
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        return pa.array([_text(v, endpoint) for v in values], pa.string())


def cast_numbers(arr: pa.Array, to: pa.DataType, name: str, endpoint: str) -> pa.Array:
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
        raise malformed(
            f"field {name!r} holds a value that is not a number: {exc}", endpoint
        ) from None


def floats(arr: pa.Array, name: str, endpoint: str) -> pa.Array:
    """:func:`cast_numbers` to float64."""
    return cast_numbers(arr, pa.float64(), name, endpoint)


def epoch(arr: pa.Array, name: str, endpoint: str) -> pa.Array:
    """Unix seconds or milliseconds (strings or ints) -> timestamp[ns, UTC]; nulls refused."""
    ints = cast_numbers(arr, pa.int64(), name, endpoint)
    if ints.null_count:
        raise malformed(f"a {name!r} is missing or empty", endpoint)
    try:
        millis = pc.if_else(pc.less(ints, MS_THRESHOLD), pc.multiply_checked(ints, 1000), ints)
        return millis.cast(pa.timestamp("ms", "UTC")).cast(pa.timestamp("ns", "UTC"))
    except pa.ArrowInvalid as exc:
        raise malformed(f"a {name!r} is out of range: {exc}", endpoint) from None


def to_pandas(columns: dict[str, pa.Array], dtypes: Mapping[str, Any]) -> pd.DataFrame:
    """Arrow columns as a pandas frame with exactly ``dtypes``."""
    df = pa.table(columns).to_pandas(types_mapper=_ARROW_TO_PANDAS)
    mismatched = {c: t for c, t in dtypes.items() if df[c].dtype != t}
    return df.astype(mismatched) if mismatched else df


# --------------------------------------------------------------------------- bodies


def ok_data(body: bytes, index: int, endpoint: str) -> dict[str, Any]:
    """``data`` of one successful body (the tolerant path), checking its envelope."""
    env = parse_envelope(body, endpoint)
    return envelope_data(env, index, endpoint)


def envelope_data(env: Envelope, index: int, endpoint: str) -> dict[str, Any]:
    """``data`` of the ``index``-th envelope; ValueError unless its ``ret`` is 200."""
    if env.ret != 200:
        raise ValueError(
            f"body {index} has ret {env.ret} ({env.msg!r}); decode only bodies whose ret is "
            "200 and handle the others with alltick_frames.core.errors"
        )
    if env.data is None:
        return {}
    if not isinstance(env.data, dict):
        raise malformed(f"body {index}: 'data' is not an object", endpoint)
    return env.data


def list_of_objects(value: Any, what: str, index: int, endpoint: str) -> list[dict[str, Any]]:
    """``value`` checked to be a list of JSON objects (None is an empty list)."""
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise malformed(f"body {index}: {what} is not a list of objects", endpoint)
    return value


def list_records(
    bodies: Sequence[bytes | Envelope], list_key: str, endpoint: str
) -> list[dict[str, Any]]:
    """The objects under ``data[list_key]`` of every successful body, in order."""
    out: list[dict[str, Any]] = []
    for i, body in enumerate(bodies):
        if isinstance(body, Envelope):
            data = envelope_data(body, i, endpoint)
        else:
            data = ok_data(body if isinstance(body, bytes) else bytes(body), i, endpoint)
        out.extend(list_of_objects(data.get(list_key), repr(list_key), i, endpoint))
    return out


def record_column(records: list[dict[str, Any]], key: str, endpoint: str) -> pa.Array:
    """Field ``key`` of every record, as an Arrow string array."""
    return strings([r.get(key) for r in records], endpoint)


def blank_to_null(arr: pa.Array) -> pa.Array:
    """Empty or all-blank strings become null."""
    trimmed = pc.utf8_trim_whitespace(arr)
    return pc.if_else(pc.equal(trimmed, ""), pa.scalar(None, pa.string()), arr)
