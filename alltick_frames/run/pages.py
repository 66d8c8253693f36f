"""Reading ``/kline`` answers on the decode thread, once each: their bar starts (which the
chain pages by) and their believed bars, as arrays.

The event loop reads only an answer's head (``ret``, see
:func:`~alltick_frames.core.wire.peek_ok`); :class:`~alltick_frames.run.jobs.KlineJob` hands
the body here. :func:`read_pages` parses many bodies together with Arrow, which releases the
GIL, so the loop keeps pacing calls meanwhile. The fast path takes only what it can read
exactly as the careful path would; any body it has a doubt about (a label other than the
request's, a timestamp that is not plain digits, bytes Arrow's reader accepts but JSON does
not) is read by itself the careful way: :func:`~alltick_frames.core.wire.parse_envelope`, then
Python over the bars, which says precisely what is wrong.

Each answer becomes a :class:`PageRead`: what it proves (its starts), the bars believed
(:mod:`alltick_frames.frames.checks`, counted by reason when not), and nothing of the body:
the body is dropped as soon as it is read.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from alltick_frames import frames
from alltick_frames.core import wire
from alltick_frames.core.errors import MalformedResponse
from alltick_frames.core.planner import KlinePage
from alltick_frames.core.plans import KLINE
from alltick_frames.frames import checks
from alltick_frames.frames.common import epoch, floats
from alltick_frames.frames.klines import _BAR_FIELDS, _KLINE_SCHEMA, _read_ndjson
from alltick_frames.store.codec import FIELDS, NF, Arrays
from alltick_frames.store.series import bar_arrays

__all__ = ["NO_BARS", "PageRead", "read_pages", "starts", "with_request"]

#: A page without bars, in the store's layout.
NO_BARS: Arrays = (np.empty(0, np.int64), np.empty((NF, 0), np.float64))

#: Timestamps the fast path reads: plain digits (``int()`` reads more, e.g. ``" 12"``,
#: ``"1_000"``; those go the careful way, which reads them as the chain always has).
_DIGITS = r"^[0-9]{1,18}$"
#: Bytes JSON forbids and Arrow's reader lets through (NaN and Infinity literals); a body
#: holding them, even inside a string, is read the careful way.
_LAX = (b"NaN", b"Infinity")
#: More brackets than this could nest deeper than a JSON parser allows (orjson refuses 1024
#: levels, Arrow does not): such a body is read the careful way.
_MAX_BRACKETS = 1000
_OPEN_LIST, _OPEN_OBJECT = ord("["), ord("{")
_NS = 1_000_000_000


@dataclass(slots=True)
class PageRead:
    """What one ``/kline`` answer holds, read off the event loop.

    ``stamps``: the starts (Unix seconds) of every bar the answer sent, believed or not: the
    chain pages by them. ``bars``: the bars believed, in the store's layout (timestamps in
    seconds, values one row per field), in the answer's order. ``dropped``: bars not believed,
    by code and reason (see :func:`~alltick_frames.frames.checks.check_bars`). ``error``: why
    the answer cannot be used at all (mislabelled, a timestamp or price that is not a
    number...); then its code stops there and gets an ``unreadable`` failure row.
    """

    stamps: np.ndarray
    bars: Arrays = NO_BARS
    #: Distinct starts among ``stamps``, and the oldest and newest plausible start (on the
    #: interval's grid, not in the future; None if none is): what the chain pages by.
    got: int = 0
    oldest: int | None = None
    newest: int | None = None
    dropped: dict[str, Counter[str]] = field(default_factory=dict)
    error: MalformedResponse | None = None
    #: Whether the answer holds a place in its job's write backlog (see KlineJob).
    reserved: bool = False


def starts(page: KlinePage, envelope: wire.Envelope) -> np.ndarray:
    """The bar starts (Unix seconds) of a ``/kline`` answer, once it is known to answer
    ``page``; MalformedResponse says why not (not the documented shape, labelled with
    another code or interval, a start that is not a whole number)."""
    data = envelope.data
    bars = data.get("kline_list") if isinstance(data, dict) else data
    if not bars:
        return np.empty(0, np.int64)
    if not isinstance(data, dict) or not isinstance(bars, list):
        raise MalformedResponse("the answer's data holds no kline_list", endpoint=KLINE)
    # A label left out is the request's (the quick start's documented answer has none).
    code, kline_type = data.get("code"), wire.as_int(data.get("kline_type"))
    if code not in (None, page.code.code) or kline_type not in (None, page.interval.kline_type):
        raise MalformedResponse(
            f"the answer is labelled {str(code)[:40]!r} kline_type {kline_type}, not the "
            f"{page.code.code} {page.interval} (kline_type {page.interval.kline_type}) asked "
            "for; its bars were dropped",
            endpoint=KLINE,
        )
    try:
        stamps = np.array([int(bar["timestamp"]) for bar in bars], np.int64)
    except (KeyError, TypeError, ValueError, OverflowError):
        raise MalformedResponse(
            "a bar's timestamp is missing or not a whole number", endpoint=KLINE
        ) from None
    return checks.epoch_seconds(stamps)


def with_request(body: bytes, envelope: wire.Envelope, page: KlinePage) -> bytes:
    """A ``/kline`` answer's body, its ``code`` and ``kline_type`` taken from the request
    where the answer lacks them.

    The quick start's documented answer (``en/getting-started/process.mdx``) has bars but no
    ``code`` or ``kline_type``: the call that asked knows both. A body that carries them
    (every API reference example, and the emulator's) is returned as it is.
    """
    data: dict[str, Any] = envelope.data
    code, kline_type = data.get("code"), data.get("kline_type")
    if code and kline_type is not None:
        return body
    filled = {
        **data,
        "code": code or page.code.code,
        "kline_type": page.interval.kline_type if kline_type is None else kline_type,
    }
    return orjson.dumps({"ret": envelope.ret, "msg": envelope.msg, "data": filled})


Item = tuple[KlinePage, bytes, "wire.Envelope | None"]


Outcome = PageRead | MalformedResponse | wire.Misread


def read_pages(items: Sequence[Item], now: float) -> list[Outcome]:
    """Read ``(page, body, envelope or None)`` answers of ``ret`` 200, together where they
    allow it: one :class:`PageRead` each; or the MalformedResponse of a body that is no
    envelope at all (not JSON, say: the runner retries it, as it retries any malformed body);
    or, for a body whose head alone was read, :class:`~alltick_frames.core.wire.Misread` if
    the whole body says another ``ret``.

    ``envelope`` is the body already parsed whole, if it was; None when only its head was
    read. ``now`` is the job's market clock, which decides what start is too late.
    """
    out: list[Outcome | None] = [None] * len(items)
    clean = [k for k, (_, body, _) in enumerate(items) if _clean(body)]
    for k, read in _fast(items, clean, now).items():
        out[k] = read  # its paging filled in already, for the whole batch at once
    for k, item in enumerate(items):
        if out[k] is None:
            read = out[k] = _careful(*item, now)
            if isinstance(read, PageRead):
                _paging(item[0], read, now)
    return out  # type: ignore[return-value]


def _paging(page: KlinePage, read: PageRead, now: float) -> None:
    """Fill in what the chain pages by. The server's count, believed or not, says if the
    history ran out; paging goes by the *plausible* starts: a negative or misaligned one would
    page to nowhere, a far-future one would pass for an ignored end time (its bar is dropped
    and counted among the bars not believed)."""
    stamps = read.stamps
    if not stamps.size:
        return
    code, alias = page.code.code, str(page.interval)
    steps = np.diff(stamps)
    ordered = bool((steps > 0).all() or (steps < 0).all())  # then no start comes twice
    read.got = stamps.size if ordered else int(np.unique(stamps).size)
    step = page.interval.seconds if checks.on_grid(code, alias) else 60
    plausible = stamps[checks.plausible_starts(stamps, step, checks.latest_start(now))]
    if plausible.size:
        read.oldest, read.newest = int(plausible.min()), int(plausible.max())


def _clean(body: bytes) -> bool:
    """Whether Arrow's reader would read ``body`` as strict JSON does (see _LAX)."""
    # One byte is looked for at memchr's speed; a word only where its first letter is found.
    if b"\n" in body or b"\r" in body:
        return False
    if any(word[:1] in body and word in body for word in _LAX):
        return False
    if not body.isascii():
        try:
            body.decode("utf-8")
        except UnicodeDecodeError:
            return False
    # NumPy counts a byte 5x faster than bytes.count (which is not vectorised).
    raw = np.frombuffer(body, np.uint8)
    brackets = np.count_nonzero(raw == _OPEN_LIST) + np.count_nonzero(raw == _OPEN_OBJECT)
    return int(brackets) <= _MAX_BRACKETS


def _fast(items: Sequence[Item], which: list[int], now: float) -> dict[int, PageRead]:
    """The answers ``which`` read together with Arrow; those it doubts are left out (and
    read the careful way). A batch that fails is read body by body."""
    if not which:
        return {}
    # On this thread alone: Arrow's workers would each keep some of the memory they parsed
    # into (mimalloc's heaps are per thread), tens of MB over a job, and save no CPU here.
    data = _read_ndjson([items[k][1] for k in which], _KLINE_SCHEMA, threads=False)
    if data is None:
        return _one_by_one(items, which, now)
    codes = pc.struct_field(data, "code").to_pylist()
    types = pc.struct_field(data, "kline_type").to_pylist()
    lists = pc.struct_field(data, "kline_list")
    counts = pc.list_value_length(lists).fill_null(0).to_numpy(zero_copy_only=False)
    bars = pc.list_flatten(lists)
    stamps_text = pc.struct_field(bars, "timestamp")
    plain = pc.fill_null(pc.match_substring_regex(stamps_text, _DIGITS), False)
    bounds = np.concatenate(([0], np.cumsum(counts)))
    running = np.concatenate(([0], np.cumsum(plain.to_numpy(zero_copy_only=False))))
    plain_per = running[bounds[1:]] - running[bounds[:-1]]
    doubted = []
    for j, k in enumerate(which):
        page = items[k][0]
        labelled = codes[j] in (None, page.code.code) and types[j] in (
            None,
            page.interval.kline_type,
        )
        if not labelled or (counts[j] and plain_per[j] != counts[j]):
            doubted.append(k)
    if doubted:
        return _fast(items, [k for k in which if k not in set(doubted)], now)
    pages = [items[k][0] for k in which]
    try:
        ns, vals = _numbers(bars)
    except MalformedResponse:
        return _one_by_one(items, which, now)
    return dict(zip(which, _believe_arrays(pages, counts, ns, vals, now), strict=True))


#: Each field of the store's layout (:data:`~alltick_frames.store.codec.FIELDS`) by its wire name.
_WIRE = {column: wire_name for wire_name, column in _BAR_FIELDS.items()}


def _numbers(bars: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """The starts (Unix nanoseconds) and values (the store's layout) of answers' bars, cast
    and refused as the decoder casts and refuses them (MalformedResponse)."""
    stamps = epoch(pc.struct_field(bars, "timestamp"), "timestamp", KLINE)
    ns = stamps.cast(pa.int64()).to_numpy(zero_copy_only=False)
    vals = np.empty((NF, len(bars)), np.float64)
    for row, column in enumerate(FIELDS):
        name = _WIRE[column]
        vals[row] = floats(pc.struct_field(bars, name), name, KLINE).to_numpy(zero_copy_only=False)
    return ns, vals


def _believe_arrays(
    pages: list[KlinePage], counts: np.ndarray, ns: np.ndarray, vals: np.ndarray, now: float
) -> list[PageRead]:
    """Split the bars of answers to ``pages`` (``counts`` bars each, laid out answer after
    answer) into pages of believed bars, checked as
    :func:`~alltick_frames.frames.checks.check_bars` checks a decoded frame (conflicting
    copies looked for within each answer), with what each chain pages by filled in."""
    ends = np.cumsum(counts)
    starts_at = ends - counts
    # The grid of each answer's bars: its interval's where on_grid() says so, else 60 s.
    steps = np.array(
        [p.interval.seconds if checks.on_grid(p.code.code, str(p.interval)) else 60 for p in pages],
        np.int64,
    )
    which = np.repeat(np.arange(len(pages)), counts)
    bar_steps = steps[which]
    upper = checks.latest_start(now)
    keep, failed = checks.failed_bars(vals[:4], vals[4:], ns, bar_steps, upper, which)
    ts = ns // _NS
    whole = bool(keep.all())
    reads = []
    for a, b in zip(starts_at.tolist(), ends.tolist(), strict=True):
        kept = keep[a:b]
        if whole or kept.all():
            bars = ts[a:b].copy(), vals[:, a:b].copy()
        else:
            bars = ts[a:b][kept], vals[:, a:b][:, kept]
        reads.append(PageRead(ts[a:b], bars))
    # Counts go with the first answer of each code here (they are summed by code anyway).
    first: dict[str, PageRead] = {}
    for read, page, n in zip(reads, pages, counts.tolist(), strict=True):
        if n:
            first.setdefault(page.code.code, read)
    for reason, mask in failed.items():
        if mask.any():
            for j, n in zip(*np.unique(which[mask], return_counts=True), strict=True):
                code = pages[j].code.code
                first[code].dropped.setdefault(code, Counter())[reason] += int(n)
    _paging_all(reads, starts_at, counts, ts, checks.plausible_starts(ts, bar_steps, upper))
    return reads


def _paging_all(
    reads: list[PageRead],
    starts_at: np.ndarray,
    counts: np.ndarray,
    ts: np.ndarray,
    plausible: np.ndarray,
) -> None:
    """:func:`_paging` for answers laid out one after another (``counts`` bars each from
    ``starts_at`` in ``ts``; ``plausible``: the mask of their plausible starts), at once."""
    full = np.flatnonzero(counts)
    if not full.size:
        return
    steps = np.diff(ts)
    rises = np.concatenate(([0], np.cumsum(steps > 0)))
    falls = np.concatenate(([0], np.cumsum(steps < 0)))
    a, n = starts_at[full], counts[full]
    last = a + n - 1  # steps a .. last-1 lie within one answer
    ordered = (rises[last] - rises[a] == n - 1) | (falls[last] - falls[a] == n - 1)
    big, small = np.iinfo(np.int64).max, np.iinfo(np.int64).min
    oldest = np.minimum.reduceat(np.where(plausible, ts, big), a)
    newest = np.maximum.reduceat(np.where(plausible, ts, small), a)
    for j, k in enumerate(full.tolist()):
        read = reads[k]
        read.got = int(n[j]) if ordered[j] else int(np.unique(read.stamps).size)
        if oldest[j] != big:
            read.oldest, read.newest = int(oldest[j]), int(newest[j])


def _one_by_one(items: Sequence[Item], which: list[int], now: float) -> dict[int, PageRead]:
    if len(which) == 1:
        return {}
    found: dict[int, PageRead] = {}
    for k in which:
        found.update(_fast(items, [k], now))
    return found


def _believe(decoded: Any, counts: np.ndarray, stamps: np.ndarray, now: float) -> list[PageRead]:
    """Split decoded answers (``counts`` bars each) into pages of believed bars; conflicting
    copies of a bar are looked for within each answer (the careful path's
    :func:`_believe_arrays`, on a decoded frame)."""
    which = np.repeat(np.arange(len(counts)), counts)
    checked = checks.check_bars(decoded, checks.latest_start(now), group=which)
    ts, vals = bar_arrays(decoded)
    reads = []
    offset = 0
    for n in counts.tolist():
        rows = slice(offset, offset + n)
        keep = checked.keep[rows]
        reads.append(PageRead(stamps[rows], (ts[rows][keep], vals[:, rows][:, keep])))
        offset += n
    # Counts go with the first answer of each code here (they are summed by code anyway).
    first: dict[str, PageRead] = {}
    for read, code in zip(reads, _codes(decoded, counts), strict=True):
        first.setdefault(code, read)
    for (code, _), problems in checked.problems.items():
        first[code].dropped.setdefault(code, Counter()).update(problems)
    return reads


def _codes(decoded: Any, counts: np.ndarray) -> list[str]:
    """The code of each answer (its first bar's; "" for an answer without bars)."""
    starts_at = np.concatenate(([0], np.cumsum(counts)[:-1]))
    column = decoded["code"]
    return [str(column.iat[s]) if n else "" for s, n in zip(starts_at, counts, strict=True)]


def _careful(page: KlinePage, body: bytes, envelope: wire.Envelope | None, now: float) -> Outcome:
    """One answer read the careful way: parsed whole, its starts read in Python."""
    if envelope is None:
        try:
            envelope = wire.parse_envelope(body, KLINE)
        except MalformedResponse as exc:
            return exc
        if not envelope.ok:  # its head said 200; a later "ret" says otherwise
            return wire.Misread(envelope)
    try:
        stamps = starts(page, envelope)
    except MalformedResponse as exc:
        return PageRead(np.empty(0, np.int64), error=exc)
    if not stamps.size:
        return PageRead(stamps)
    try:
        decoded = frames.decode_kline_bodies([with_request(body, envelope, page)])
    except MalformedResponse as exc:
        return PageRead(stamps, error=exc)
    (read,) = _believe(decoded, np.array([len(decoded)]), stamps, now)
    read.stamps = stamps  # all of them, even if the decoder read another number of bars
    return read
