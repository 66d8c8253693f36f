"""Giving freed memory back to the system, where the C library keeps it.

A job's pages are many small arrays, freed once their chain's series is built. glibc keeps
freed small blocks in its heaps for reuse, and the large blocks that follow (the series,
the frame) are mapped anew, so without help the process holds the pages' memory until it
exits: the peak would be pages, series and frame together. :func:`give_back` asks glibc to
return what is free (``malloc_trim``, as dask's workers do; elsewhere there is nothing to
ask), and Arrow's own allocator (mimalloc or jemalloc, which keep freed pages for a while)
likewise.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from collections.abc import Callable

__all__ = ["GIVE_BACK_BYTES", "give_back", "release_arrow", "written"]


def _trim() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):  # not glibc (musl has no malloc_trim)
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


_TRIM = _trim()


def release_arrow() -> None:
    """Return what Arrow's allocator holds free to the system. mimalloc keeps the pages a
    thread freed in that thread's heap, which only that thread can release: call it on the
    thread that decoded."""
    import pyarrow as pa  # loaded already by whoever decodes

    pa.default_memory_pool().release_unused()


def give_back() -> None:
    """Return the memory the C library (glibc only) and Arrow's allocator hold free to the
    system."""
    import pyarrow as pa  # loaded already by whoever frees arrays

    pa.default_memory_pool().release_unused()
    if _TRIM is not None:
        _TRIM(0)


#: Bytes let go between two returns of free memory to the system.
GIVE_BACK_BYTES = 64 << 20
_let_go = 0


def written(n: int) -> None:
    """Count ``n`` bytes of pages let go (written to the store, say); give memory back once
    :data:`GIVE_BACK_BYTES` have been. Called from one thread only (the writer thread)."""
    global _let_go
    _let_go += n
    if _let_go > GIVE_BACK_BYTES:
        _let_go = 0
        give_back()
