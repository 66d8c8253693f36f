"""A disk store of K-line bars that knows exactly which time ranges it holds.

The client asks the store two questions before it calls AllTick: *what do I already have?*
(:meth:`BarStore.coverage`, :meth:`BarStore.newest`) and *give me those bars*
(:meth:`BarStore.read`, :meth:`BarStore.read_many`). After a call it records what it learned
with one :meth:`BarStore.write`.

The package, from the pure core out: :mod:`~alltick_frames.store.coverage` (spans, gaps,
floors: what a series holds), :mod:`~alltick_frames.store.codec` (keys and checked bar
bytes), :mod:`~alltick_frames.store.records` (a series' index record: JSON, checksummed,
checked), :mod:`~alltick_frames.store.location` (where the cache lives, and whether to trust
it), :mod:`~alltick_frames.store.backend` (SQLite without pickles, or memory),
:mod:`~alltick_frames.store.health` (opening the database; damaged and unwritable ones),
:mod:`~alltick_frames.store.disk` (:class:`BarStore`: checked reads),
:mod:`~alltick_frames.store.writes` (atomic writes, and how bars are cut into chunks),
:mod:`~alltick_frames.store.manage` (describe, clear, vacuum, salvage) and
:mod:`~alltick_frames.store.series` (recording fetched pages and reading answers as k-line
frames). Import the names from this package.

The cache directory is a trust boundary: whoever can write it decides what the store returns,
so it is created private and a directory other users can write is refused unless sharing it
is asked for. Nothing in it is ever unpickled or executed.
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
from alltick_frames.store.disk import BarStore, ManyBars, Newest
from alltick_frames.store.health import CacheWarning, Note
from alltick_frames.store.location import StoreError, UnsafeCacheDir, default_cache_dir
from alltick_frames.store.manage import VacuumReport

__all__ = [
    "CHUNK_BARS",
    "COLUMNS",
    "FIELDS",
    "Arrays",
    "BarStore",
    "CacheWarning",
    "Coverage",
    "ManyBars",
    "Newest",
    "Note",
    "SeriesKey",
    "Span",
    "StoreError",
    "UnsafeCacheDir",
    "VacuumReport",
    "as_frame",
    "default_cache_dir",
    "merge_spans",
    "sort_bars",
]
