"""A series' index record, pure: what it holds, its bytes on disk, and the checks on reading.

The record is a small JSON object, stored as its UTF-8 bytes, a newline and the CRC-32 of
those bytes in eight hex digits, so any flipped byte is caught and a record is readable with
nothing but a JSON parser::

    {"v":2,"rev":"<uuid hex>","segments":[[lo,hi],...],"floor":null,
     "forming":[ts,fetched_at,open,high,low,close,volume,turnover],
     "chunks":[[first_ts,last_ts,n,"chunk:...",crc32],...]}
    1a2b3c4d

``v``
    The record's format (:data:`FORMAT`); a reader that meets another one treats the series
    as damaged, so a later format can replace this one series by series.
``rev``
    A random revision id, new with every write: a reader that sees it change knows a writer
    got in between.
``segments``, ``floor``, ``forming``
    What the series covers (see :mod:`alltick_frames.store.coverage`). The forming bar is
    inline; a value that is not finite is written as the string ``"nan"``, ``"inf"`` or
    ``"-inf"``, so every float64 round-trips exactly.
``chunks``
    The pieces holding the closed bars, in time order and never overlapping, each with its
    length and checksum (:func:`~alltick_frames.store.codec.read_chunk` checks them).

:func:`parse_index` believes nothing: a record that is not bytes, fails its checksum, is not
JSON, has another format or breaks any rule above raises
:class:`~alltick_frames.store.codec.Damaged` with what was wrong. No pickle is read anywhere.
"""

from __future__ import annotations

import math
import uuid
import zlib
from typing import Any

import numpy as np
import orjson

from alltick_frames.store.codec import (
    LARGEST_CHUNK,
    NF,
    Arrays,
    ChunkEntry,
    Damaged,
    chunk_prefix,
)
from alltick_frames.store.coverage import Coverage, Span, subtract

#: The index record format this code writes and reads.
FORMAT = 2

_INT64 = (-(2**63), 2**63 - 1)
_NOT_FINITE = {"nan", "inf", "-inf"}


def empty_index() -> dict[str, Any]:
    """The index record of a series with nothing stored."""
    return {"v": FORMAT, "rev": "", "segments": (), "floor": None, "forming": None, "chunks": ()}


def new_revision(index: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """``index`` with ``changes`` and a fresh revision id."""
    return {**index, **changes, "v": FORMAT, "rev": uuid.uuid4().hex}


# --------------------------------------------------------------------------------- bytes


def _value(x: float) -> float | str:
    return x if math.isfinite(x) else str(x)


def encode_index(index: dict[str, Any]) -> bytes:
    """An index record as the bytes the store keeps: JSON, a newline, its CRC-32."""
    form = index["forming"]
    body = orjson.dumps(
        {
            "v": FORMAT,
            "rev": index["rev"],
            "segments": index["segments"],
            "floor": index["floor"],
            "forming": None if form is None else [*form[:2], *map(_value, form[2:])],
            "chunks": index["chunks"],
        }
    )
    return body + b"\n%08x" % zlib.crc32(body)


def parse_index(blob: object, sid: str) -> dict[str, Any]:
    """The index record of series ``sid`` in ``blob``, checked; :class:`Damaged` if it fails."""
    if not isinstance(blob, bytes):
        raise Damaged("its index is not one this store wrote (a pickle, or another kind of value)")
    body, _, tail = blob.rpartition(b"\n")
    if tail != b"%08x" % zlib.crc32(body):
        raise Damaged("its index fails its checksum")
    try:
        record = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise Damaged("its index is not JSON") from None
    if not isinstance(record, dict) or record.get("v") != FORMAT:
        version = record.get("v") if isinstance(record, dict) else None
        raise Damaged(f"its index has format {version!r}, not {FORMAT}")
    try:
        return _checked(record, sid)
    except (KeyError, TypeError, ValueError) as exc:
        raise Damaged(f"its index is malformed: {exc}") from None


def _int(x: object, what: str) -> int:
    if type(x) is not int or not _INT64[0] <= x <= _INT64[1]:
        raise ValueError(f"{what} is {x!r}, not an int64")
    return x


def _float(x: object) -> float:
    if type(x) in (int, float) or x in _NOT_FINITE:
        return float(x)  # type: ignore[arg-type]
    raise ValueError(f"a value of the forming bar is {x!r}, not a number")


def _checked(record: dict[str, Any], sid: str) -> dict[str, Any]:
    """The record with tuples for lists, once every field is of its type and in order.

    It runs on every read of every series, so each segment and chunk entry is checked in one
    expression, and the message names the entry rather than the rule it broke.
    """
    rev = record["rev"]
    if type(rev) is not str:
        raise ValueError(f"rev is {rev!r}")
    segments = []
    end = _INT64[0] - 2  # merged spans: each starts after the last one's end + 1
    for span in record["segments"]:
        a, b = span
        if not (type(a) is int and type(b) is int and end + 1 < a <= b <= _INT64[1]):
            raise ValueError(f"segment {span!r} is not an int64 span after the one before")
        segments.append((a, b))
        end = b
    floor = record["floor"]
    floor = None if floor is None else _int(floor, "floor")
    form = record["forming"]
    if form is not None:
        if not (isinstance(form, list) and len(form) == 2 + NF):
            raise ValueError(f"the forming bar {form!r} has not {2 + NF} fields")
        form = (_int(form[0], "the forming bar's time"), *map(_float, form[1:]))
    prefix = chunk_prefix(sid)
    chunks: list[ChunkEntry] = []
    end = _INT64[0] - 1
    for entry in record["chunks"]:
        first, last, n, key, crc = entry
        if not (
            type(first) is int
            and type(last) is int
            and type(n) is int
            and type(crc) is int
            and end < first <= last <= _INT64[1]
            and 0 < n <= min(LARGEST_CHUNK, last - first + 1)
            and 0 <= crc <= 0xFFFFFFFF
            and type(key) is str
            and key.startswith(prefix)
        ):
            raise ValueError(
                f"chunk entry {entry!r} is impossible here (its types, its place after the one "
                "before, its count of bars, its key or its checksum)"
            )
        chunks.append((first, last, n, key, crc))
        end = last
    return {
        "v": FORMAT,
        "rev": rev,
        "segments": tuple(segments),
        "floor": floor,
        "forming": form,
        "chunks": tuple(chunks),
    }


# --------------------------------------------------------------------------------- meaning


def index_coverage(index: dict[str, Any]) -> Coverage:
    """What an index record says the series covers."""
    form = index["forming"]
    return Coverage(
        segments=index["segments"],
        floor=index["floor"],
        forming_ts=form[0] if form else None,
        fetched_at=form[1] if form else None,
        bars=sum(c[2] for c in index["chunks"]),
    )


def without_chunks(index: dict[str, Any], lost: list[ChunkEntry]) -> dict[str, Any]:
    """The index minus chunks whose data is gone or damaged: their time range stops counting
    as covered, so it is fetched again."""
    segments: list[Span] = list(index["segments"])
    for first, last, *_ in lost:
        kept: list[Span] = []
        for a, b in segments:
            kept.extend(subtract(a, b, [(first, last)]))
        segments = kept
    gone = {c[3] for c in lost}
    chunks = tuple(c for c in index["chunks"] if c[3] not in gone)
    return new_revision(index, segments=tuple(segments), chunks=chunks)


def forming_piece(index: dict[str, Any], lo: int, hi: int) -> list[Arrays]:
    """The forming bar of an index record as arrays, when it lies in ``[lo, hi]``."""
    form = index["forming"]
    if form is None or not lo <= form[0] <= hi:
        return []
    return [(np.array([form[0]], np.int64), np.array(form[2:], np.float64).reshape(NF, 1))]
