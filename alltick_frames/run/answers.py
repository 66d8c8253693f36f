"""Reading ``/kline`` answers off the event loop: decode them together, check their bars,
write them to the store (or assemble whole series without one).

:class:`~alltick_frames.run.jobs.KlineJob` hands its answers (:class:`Arrived`) to its decode
thread, which runs :func:`record` (with a store) or :func:`assemble` (without); both go
through :func:`_believe`, where the bars the checks do not believe
(:mod:`alltick_frames.frames.checks`) are counted and left out.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import pandas as pd

from alltick_frames import frames
from alltick_frames.core.errors import MalformedResponse
from alltick_frames.core.planner import KlinePage, KlineRequest
from alltick_frames.frames import checks
from alltick_frames.store import BarStore
from alltick_frames.store.series import bar_arrays, read_frame, record_page

__all__ = ["Arrived", "assemble", "by_code", "decode_each", "record", "trim"]

Key = TypeVar("Key", bound=Hashable)


def by_code(data: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """One frame per code of ``data``, in the order the codes first appear."""
    # iter(): a GroupBy has a .keys attribute, which dict() would take for a mapping's.
    return dict(iter(data.groupby("code", sort=False, observed=True)))


@dataclass(frozen=True, slots=True)
class Arrived:
    """One ``/kline`` answer waiting for the decode thread."""

    page: KlinePage
    body: bytes
    rows: int  # bars in the body
    got: int  # distinct timestamps among them


def decode_each(
    items: Sequence[tuple[Key, bytes]], decode: Callable[[Sequence[bytes]], pd.DataFrame]
) -> tuple[pd.DataFrame, dict[Key, MalformedResponse]]:
    """Decode ``(key, body)`` items together; if that fails, one by one, so that one bad body
    costs only its own key. Returns the frame of every good body and the bad keys' errors."""
    try:
        return decode([body for _, body in items]), {}
    except MalformedResponse:
        pass
    good: list[pd.DataFrame] = []
    bad: dict[Key, MalformedResponse] = {}
    for key, body in items:
        try:
            good.append(decode([body]))
        except MalformedResponse as exc:
            bad[key] = exc
    return pd.concat(good, ignore_index=True) if good else frames.empty_klines(), bad


def _decode_pages(
    arrived: Sequence[Arrived],
) -> tuple[pd.DataFrame, list[int], dict[int, MalformedResponse]]:
    """Decode answers together: their bars, how many came from each answer, and the answers
    that could not be read. If that fails, one by one, so one bad body costs only itself."""
    bodies = [a.body for a in arrived]
    try:
        decoded = frames.decode_kline_bodies(bodies)
        if len(decoded) == sum(a.rows for a in arrived):
            return decoded, [a.rows for a in arrived], {}
    except MalformedResponse:
        pass
    parts, sizes, errors = [], [], {}
    for k, body in enumerate(bodies):
        try:
            parts.append(frames.decode_kline_bodies([body]))
            sizes.append(len(parts[-1]))
        except MalformedResponse as exc:
            errors[k] = exc
            sizes.append(0)
    decoded = pd.concat(parts, ignore_index=True) if parts else frames.empty_klines()
    return decoded, sizes, errors


def _believe(
    arrived: Sequence[Arrived],
    now: float,
    bad: dict[str, MalformedResponse],
    dropped: dict[str, Counter[str]],
) -> tuple[pd.DataFrame, np.ndarray, list[int]]:
    """Decode and check answers (on the decode thread): their bars, which to keep, and how
    many came from each answer. A code with an unreadable answer goes to ``bad``; the bars
    not believed are counted in ``dropped``, by code and reason."""
    decoded, sizes, errors = _decode_pages(arrived)
    for k, exc in errors.items():
        bad.setdefault(arrived[k].page.code.code, exc)
    which = np.repeat(np.arange(len(arrived)), sizes)
    checked = checks.check_bars(decoded, checks.latest_start(now), group=which)
    for (code, _), counts in checked.problems.items():
        dropped.setdefault(code, Counter()).update(counts)
    return decoded, checked.keep, sizes


def assemble(
    arrived: Sequence[Arrived],
    req: KlineRequest,
    now: float,
    bad: dict[str, MalformedResponse],
    dropped: dict[str, Counter[str]],
) -> dict[str, pd.DataFrame]:
    """Decode finished series' answers into one clean frame per code.

    A code with an unreadable answer would have a hole: it goes to ``bad``, and none of its
    bars are kept.
    """
    decoded, keep, _ = _believe(arrived, now, bad, dropped)
    series = by_code(trim(frames.finalize_klines([decoded[keep]], []), req))
    return {code: bars for code, bars in series.items() if code not in bad}


def record(
    store: BarStore,
    arrived: Sequence[Arrived],
    now: float,
    bad: dict[str, MalformedResponse],
    dropped: dict[str, Counter[str]],
    ended: KlineRequest,
) -> dict[str, pd.DataFrame]:
    """Decode answers together and write each page's believed bars to the store, in arrival
    order; then read back the series of ``ended`` (chains whose pages are all written by
    now), one frame per code.

    A code with an unreadable page goes to ``bad``, and none of its later pages are written.
    A page all of whose bars were dropped proves nothing, so it is not written either.
    """
    decoded, keep, sizes = _believe(arrived, now, bad, dropped)
    ts, vals = bar_arrays(decoded)
    offset = 0
    for a, size in zip(arrived, sizes, strict=True):
        rows, offset = slice(offset, offset + size), offset + size
        mask = keep[rows]
        if a.page.code.code in bad or (size and not mask.any()):
            continue
        record_page(store, a.page, (ts[rows][mask], vals[:, rows][:, mask]), now, a.got)
    return by_code(read_frame(store, ended)) if ended.codes else {}


def trim(data: pd.DataFrame, req: KlineRequest) -> pd.DataFrame:
    """Keep the bars inside the request: its range, or its newest ``count`` per code."""
    if data.empty:
        return data
    keep = pd.Series(True, index=data.index)
    if req.start is not None:
        keep &= data["timestamp"] >= pd.Timestamp(req.start, unit="s", tz="UTC")
    if req.end is not None:
        keep &= data["timestamp"] <= pd.Timestamp(req.end, unit="s", tz="UTC")
    data = data[keep]
    if req.count is not None:
        data = data.groupby("code", sort=False, observed=True).tail(req.count)
    return data.reset_index(drop=True)
