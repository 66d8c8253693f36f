"""Raw AllTick response bodies -> typed pandas DataFrames, vectorised.

Pure functions, no I/O. Every number arrives as a JSON string ("136.421"), so decoding is
mostly string -> float conversion, and how it is done decides the speed (DESIGN.md, "What
decoding costs"). K-line bodies take the fast path:

1. join many bodies into one newline-delimited JSON buffer (NDJSON; a JSON string cannot
   hold a raw newline, so replacing newlines in a body by spaces changes nothing);
2. parse it in one call of :func:`pyarrow.json.read_json` against the documented schema,
   using every core;
3. flatten the nested bar lists and cast the string columns with Arrow's vectorised casts.

Decode *many bodies per call*: one call over 200 bodies is several times faster than 200
calls over one body each. Anything the fast path does not expect (numbers sent as JSON
numbers, a ``ret`` sent as a string, a malformed body) sends the whole call to a slower,
tolerant path built on orjson, which either decodes the bodies to the same frame or raises
:class:`~alltick_frames.core.errors.MalformedResponse` naming the bad body.

The decoders expect bodies whose ``ret`` is 200; check each with
:func:`alltick_frames.core.wire.parse_envelope` first. Given a body with another ``ret`` they
raise ValueError, since it is a bug in the caller.

The DataFrame contract
----------------------

K-lines (:data:`KLINE_COLUMNS`), one row per (code, interval, bar):

* ``code`` (string): the code as AllTick spells it, e.g. ``AAPL.US``, ``700.HK``, ``EURUSD``;
* ``interval`` (string): the canonical alias of the bar size, ``1m`` ... ``1d``, ``1w``,
  ``1M`` (see :mod:`alltick_frames.core.intervals`);
* ``timestamp`` (datetime64[ns, UTC]): when the bar *opens* (AllTick sends Unix seconds);
* ``session`` (datetime64[ns], a naive midnight): the exchange-local trading date the bar
  belongs to, UTC for FX and crypto (see :mod:`alltick_frames.frames.sessions`);
* ``open``, ``high``, ``low``, ``close`` (float64): prices;
* ``volume``, ``turnover`` (float64): traded quantity and value; NaN where AllTick sent
  ``""`` (a since-fixed bug, issue #13) or nothing.

Decoders return rows in the order of the bodies; :func:`finalize_klines` sorts them by the
caller's code order, then interval, then time, and drops repeated bars (the later fetch wins).
Trades, order books, static information and trading halts have their own schemas, described
on :func:`decode_trade_ticks`, :func:`decode_depth_ticks` (with each book's status from
:func:`decode_depth_books`), :func:`decode_static_info` and :func:`decode_suspensions`.

One module per endpoint: :mod:`~alltick_frames.frames.klines` (``/kline`` and
``/batch-kline``), :mod:`~alltick_frames.frames.ticks` (``/trade-tick``, ``/depth-tick``),
:mod:`~alltick_frames.frames.static_info`, :mod:`~alltick_frames.frames.suspensions`; what they
share is in :mod:`~alltick_frames.frames.common`, and :func:`wide` reshapes k-lines for
research code. Import the names from this package.
"""

from alltick_frames.frames.common import STRING, UTC_NS
from alltick_frames.frames.klines import (
    KLINE_COLUMNS,
    KLINE_DTYPES,
    decode_batch_kline_bodies,
    decode_kline_bodies,
    empty_klines,
    finalize_klines,
)
from alltick_frames.frames.static_info import (
    STATIC_INFO_COLUMNS,
    STATIC_INFO_DTYPES,
    decode_static_info,
    empty_static_info,
)
from alltick_frames.frames.suspensions import (
    EXCHANGE_TZ,
    SUSPENSION_COLUMNS,
    SUSPENSION_DTYPES,
    decode_suspensions,
    empty_suspensions,
)
from alltick_frames.frames.ticks import (
    BOOK_STATUSES,
    DEPTH_COLUMNS,
    DEPTH_DTYPES,
    TRADE_COLUMNS,
    TRADE_DTYPES,
    decode_depth_books,
    decode_depth_ticks,
    decode_trade_ticks,
    empty_depth,
    empty_trades,
)
from alltick_frames.frames.wide import wide

__all__ = [
    "BOOK_STATUSES",
    "DEPTH_COLUMNS",
    "DEPTH_DTYPES",
    "EXCHANGE_TZ",
    "KLINE_COLUMNS",
    "KLINE_DTYPES",
    "STATIC_INFO_COLUMNS",
    "STATIC_INFO_DTYPES",
    "STRING",
    "SUSPENSION_COLUMNS",
    "SUSPENSION_DTYPES",
    "TRADE_COLUMNS",
    "TRADE_DTYPES",
    "UTC_NS",
    "decode_batch_kline_bodies",
    "decode_depth_books",
    "decode_depth_ticks",
    "decode_kline_bodies",
    "decode_static_info",
    "decode_suspensions",
    "decode_trade_ticks",
    "empty_depth",
    "empty_klines",
    "empty_static_info",
    "empty_suspensions",
    "empty_trades",
    "finalize_klines",
    "wide",
]
