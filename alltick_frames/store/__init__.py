"""A disk store of K-line bars that knows exactly which time ranges it holds.

The client asks the store two questions before it calls AllTick: *what do I already have?*
(:meth:`BarStore.coverage`, :meth:`BarStore.newest`) and *give me those bars*
(:meth:`BarStore.read`, :meth:`BarStore.read_many`). After a call it records what it learned
with one :meth:`BarStore.write`.

The package, from the pure core out: :mod:`~alltick_frames.store.coverage` (spans, gaps,
floors: what a series holds), :mod:`~alltick_frames.store.codec` (keys, index records and bar
bytes), :mod:`~alltick_frames.store.disk` (:class:`BarStore` on diskcache: reads and writes),
:mod:`~alltick_frames.store.manage` (describe, clear, vacuum),
:mod:`~alltick_frames.store.location` (where the cache lives) and
:mod:`~alltick_frames.store.series` (recording fetched pages and reading answers as k-line
frames). Import the names from this package.
"""

from alltick_frames.store.codec import (
    CHUNK_BARS,
    COLUMNS,
    FIELDS,
    Arrays,
    SeriesKey,
    as_frame,
    sort_bars,
)
from alltick_frames.store.coverage import Coverage, Span, merge_spans
from alltick_frames.store.disk import BarStore, ManyBars, Newest, StoreError
from alltick_frames.store.location import default_cache_dir
from alltick_frames.store.manage import VacuumReport

__all__ = [
    "CHUNK_BARS",
    "COLUMNS",
    "FIELDS",
    "Arrays",
    "BarStore",
    "Coverage",
    "ManyBars",
    "Newest",
    "SeriesKey",
    "Span",
    "StoreError",
    "VacuumReport",
    "as_frame",
    "default_cache_dir",
    "merge_spans",
    "sort_bars",
]
