"""The ``session`` column of k-line frames: each bar's exchange-local trading date.

Computed from the bars' timestamps and codes (never stored): see
:func:`alltick_frames.core.calendars.session_dates` for what the date means. A
``datetime64[ns]`` column of naive midnights, the form ``exchange_calendars`` gives its own
session labels, so that a frame's sessions line up with a calendar's, pivot into a
``DatetimeIndex`` (``.loc["2024-05"]``, resampling) and go to Parquet, Arrow, DuckDB and
polars as a timestamp without a copy per row.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from alltick_frames.core.calendars import session_dates, zone_of

_NS = 1_000_000_000


def zones_of(codes: Sequence[str]) -> tuple[np.ndarray, tuple[str, ...]]:
    """Each code's time zone, as an index into the distinct zones (which follow)."""
    zones = [zone_of(c) for c in codes]
    names = tuple(dict.fromkeys(zones))
    return np.array([names.index(z) for z in zones], np.int8), names


def session_column(code: pa.Array, stamps: pa.Array) -> pa.Array:
    """``session`` for bars given as Arrow arrays: ``code`` (strings) and ``stamps``
    (timestamp[ns, UTC])."""
    encoded = pc.dictionary_encode(code)
    per_code, names = zones_of(encoded.dictionary.to_pylist())
    zones = per_code[encoded.indices.to_numpy(zero_copy_only=False)]
    ns = stamps.cast(pa.int64()).to_numpy(zero_copy_only=False)
    return pa.array(session_dates(ns, zones, names), pa.timestamp("ns"))


def series_sessions(
    codes: Sequence[str], which: np.ndarray, stamps: np.ndarray, nanos: np.ndarray | None = None
) -> np.ndarray:
    """``session`` for bars read series by series: bar ``i`` is of ``codes[which[i]]`` and
    starts at ``stamps[i]`` (int64 Unix seconds); ``nanos``, when given, are the same starts
    in nanoseconds (not computed again)."""
    per_code, names = zones_of(codes)
    zones = per_code[which] if len(names) > 1 else per_code[:0]  # one zone: no need
    return session_dates(stamps * _NS if nanos is None else nanos, zones, names)


def frame_sessions(code: pd.Series, timestamp: pd.Series) -> np.ndarray:
    """``session`` for a k-line frame that lacks it (one built by hand, say): ``timestamp``
    must be tz-aware."""
    which, codes = pd.factorize(code)
    stamps = pd.DatetimeIndex(timestamp).tz_convert("UTC").as_unit("ns").asi8
    return series_sessions(list(codes), which, stamps // _NS)
