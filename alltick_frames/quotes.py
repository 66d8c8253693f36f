"""Latest trades, order books, static information and trading halts, as DataFrames.

These methods are mixed into :class:`~alltick_frames.client.AllTick`.
"""

from __future__ import annotations


class QuotesMixin:
    """``trades``, ``depth``, ``static_info`` and ``suspensions`` (filled in with issue 5)."""
