"""``/kline`` and ``/batch-kline`` bodies -> the k-line frame (:data:`KLINE_COLUMNS`).

The fast path (see the package docstring): many bodies joined into one NDJSON buffer, parsed
by Arrow against the documented schema, the bar lists flattened and cast in bulk. Anything it
does not expect falls back to a tolerant path that gathers bars one by one
(:class:`_BarColumns`) and raises MalformedResponse for what cannot be read.
:func:`finalize_klines` puts decoded frames together into the final, sorted, de-duplicated
result.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from alltick_frames.core.intervals import BY_KLINE_TYPE, INTERVALS
from alltick_frames.frames.common import (
    DATE_NS,
    F64,
    STRING,
    UTC_NS,
    empty_frame,
    epoch,
    floats,
    list_of_objects,
    malformed,
    ok_data,
    strings,
    to_pandas,
)
from alltick_frames.frames.sessions import frame_sessions, session_column

#: See the module docstring for what each column holds.
KLINE_DTYPES: dict[str, Any] = {
    "code": STRING,
    "interval": STRING,
    "timestamp": UTC_NS,
    "session": DATE_NS,
    "open": F64,
    "high": F64,
    "low": F64,
    "close": F64,
    "volume": F64,
    "turnover": F64,
}
KLINE_COLUMNS: list[str] = list(KLINE_DTYPES)
PRICE_FIELDS = ("open", "high", "low", "close", "volume", "turnover")

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


def empty_klines() -> pd.DataFrame:
    """A k-line DataFrame with no rows and the exact dtypes of :data:`KLINE_COLUMNS`."""
    return empty_frame(KLINE_DTYPES)


def _klines_frame(
    code: pa.Array, kline_type: pa.Array, bars: Mapping[str, pa.Array], endpoint: str
) -> pd.DataFrame:
    """Typed k-line frame from per-bar code, kline_type and wire-named string fields."""
    if len(code) == 0:
        return empty_klines()
    if code.null_count or pc.any(pc.equal(code, "")).as_py():
        raise malformed("a body with bars has no 'code'", endpoint)
    kline_type = kline_type.cast(pa.int64())
    known = pc.and_(pc.greater(kline_type, 0), pc.less(kline_type, len(_ALIAS_BY_TYPE)))
    if kline_type.null_count or not pc.all(known).as_py():
        bad = sorted(set(kline_type.to_pylist()) - set(BY_KLINE_TYPE), key=str)
        raise malformed(f"unknown kline_type {bad} (AllTick uses 1..10)", endpoint)
    columns = {
        "code": code,
        "interval": pc.take(_ALIAS_BY_TYPE, kline_type),
        "timestamp": epoch(bars["timestamp"], "timestamp", endpoint),
    }
    columns["session"] = session_column(code, columns["timestamp"])
    for wire_name, column in _BAR_FIELDS.items():
        if column != "timestamp":
            columns[column] = floats(bars[wire_name], wire_name, endpoint)
    return to_pandas(columns, KLINE_DTYPES)


def _bodies(bodies: Iterable[bytes]) -> list[bytes]:
    return [b if isinstance(b, bytes) else bytes(b) for b in bodies]


def _read_ndjson(
    bodies: list[bytes], schema: pa.Schema, *, threads: bool = True
) -> pa.StructArray | None:
    """``data`` of every body as one Arrow struct array, or None when the fast path can't
    be trusted with these bodies (then the tolerant path decides).

    ``threads=False`` parses on the calling thread alone: for a thread that reads batch after
    batch, whose allocator then reuses its own memory instead of leaving some with each of
    Arrow's workers."""
    blob = b"\n".join(b.replace(b"\n", b" ").replace(b"\r", b" ") for b in bodies)
    # Arrow parses in blocks and a body must fit in one; 1 MiB blocks parallelise well.
    block_size = max(1 << 20, max(len(b) for b in bodies) + 1)
    try:
        table = pj.read_json(
            pa.BufferReader(blob),
            read_options=pj.ReadOptions(block_size=block_size, use_threads=threads),
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
            raise malformed(f"{where}: bars without a 'code'", self.endpoint)
        kt = kline_type if isinstance(kline_type, int) else _int_or_none(kline_type)
        if kt not in BY_KLINE_TYPE:
            raise malformed(f"{where}: unknown kline_type {kline_type!r}", self.endpoint)
        self.code.extend([code] * len(bars))
        self.kline_type.extend([kt] * len(bars))
        for name, values in self.fields.items():
            values.extend([bar.get(name) for bar in bars])

    def frame(self) -> pd.DataFrame:
        return _klines_frame(
            pa.array(self.code, pa.string()),
            pa.array(self.kline_type, pa.int64()),
            {name: strings(values, self.endpoint) for name, values in self.fields.items()},
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
        d = ok_data(body, i, "kline")
        bars = list_of_objects(d.get("kline_list"), "'kline_list'", i, "kline")
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
        d = ok_data(body, i, endpoint)
        groups = list_of_objects(d.get("kline_list"), "'kline_list'", i, endpoint)
        for j, group in enumerate(groups):
            what = f"group {j} 'kline_data'"
            bars = list_of_objects(group.get("kline_data"), what, i, endpoint)
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
    * returns a fresh RangeIndex and the exact :data:`KLINE_DTYPES` (``session`` computed
      from the timestamps for frames without it).
    """
    parts = [f for f in frames if len(f)]
    if not parts:
        return empty_klines()
    df = pd.concat(parts, ignore_index=True)
    if "session" not in df:
        df["session"] = frame_sessions(df["code"], df["timestamp"])
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
