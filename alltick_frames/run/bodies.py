"""Reading an answer's body within a bound, so that no server can fill the client's memory.

Every call carries the most bytes its answer can plausibly take once decompressed (its job's
``max_body``, built from the sizes below: the items asked for times the largest plausible
item, plus :data:`ENVELOPE_BYTES`). :func:`read_body` reads the body as it streams in,
inflating gzip or deflate itself, and stops the moment the inflated size passes that bound,
or the body inflates more than :data:`MAX_RATIO` times its compressed size (a compression
bomb). Either way the call fails with a
:class:`~alltick_frames.core.errors.TransportError` that says why (``too-large: ...``,
``compression-bomb: ...``), and memory stays within the bound times the calls in flight.

The bounds are generous on purpose: AllTick's bars take 150-170 bytes as it sends them, so
:data:`BAR_BYTES` leaves room for six times that (pretty-printed JSON, fields AllTick adds).
"""

from __future__ import annotations

import zlib
from typing import TYPE_CHECKING

from alltick_frames.core.errors import TransportError

if TYPE_CHECKING:
    import aiohttp

__all__ = [
    "BAR_BYTES",
    "BOOK_BYTES",
    "DEFAULT_BYTES",
    "ENVELOPE_BYTES",
    "GROUP_BYTES",
    "INFO_BYTES",
    "MAX_RATIO",
    "SUSPENSION_BYTES",
    "TICK_BYTES",
    "bound",
    "read_body",
]

KiB = 1024
MiB = 1024 * KiB

#: What any answer may hold besides its items: ``ret``, ``msg``, ``trace``, an error page.
ENVELOPE_BYTES = 64 * KiB
#: The largest plausible k-line bar (AllTick's take 150-170 bytes).
BAR_BYTES = 1 * KiB
#: A ``/batch-kline`` group's own fields, besides its bars.
GROUP_BYTES = 256
#: The largest plausible latest trade of one code (AllTick's take about 150 bytes).
TICK_BYTES = 1 * KiB
#: The largest plausible order book of one code (ten levels a side take about 850 bytes).
BOOK_BYTES = 16 * KiB
#: The largest plausible static information of one code (about 350 bytes, names included).
INFO_BYTES = 8 * KiB
#: The bound of a trading-halt answer, which holds a year of an exchange's halts in one body:
#: about 400 bytes each, so 64 MiB is room for over 150,000 (NASDAQ halts run to thousands a
#: year, counting every volatility pause).
SUSPENSION_BYTES = 64 * MiB
#: The bound of a call whose job names none.
DEFAULT_BYTES = SUSPENSION_BYTES
#: The most an answer may inflate, once past :data:`RATIO_FLOOR`: AllTick's bodies compress
#: 4-12 times with gzip, a bomb thousands of times.
MAX_RATIO = 100
RATIO_FLOOR = 1 * MiB
#: Bytes read from the socket at a time, and the most inflated from them at a time (so that
#: the ratio is checked every mebibyte, whatever the bound).
CHUNK = 64 * KiB
STEP = 1 * MiB

#: ``Content-Encoding`` values read here (gzip and zlib headers are told apart by zlib).
_ENCODINGS = {"gzip", "x-gzip", "deflate"}
#: What the transport asks for: only what :func:`read_body` can inflate.
ACCEPT_ENCODING = "gzip, deflate"


def bound(items: int, per_item: int) -> int:
    """The most bytes an answer holding ``items`` of at most ``per_item`` bytes may take."""
    return ENVELOPE_BYTES + max(0, items) * per_item


def _fail(kind: str, text: str, endpoint: str) -> TransportError:
    return TransportError(f"{kind}: {text}", endpoint=endpoint)


def _size(n: int) -> str:
    return f"{n / MiB:.1f} MiB" if n >= MiB else f"{n / KiB:.0f} KiB"


class _Body:
    """The body so far: inflated as it arrives, refused as soon as it passes its bounds."""

    def __init__(self, limit: int, encoding: str, endpoint: str) -> None:
        self.limit = limit
        self.endpoint = endpoint
        self.inflate = zlib.decompressobj(47) if encoding else None  # 47: gzip or zlib header
        self.received = 0
        self.size = 0
        self.parts: list[bytes] = []

    def feed(self, chunk: bytes) -> None:
        if self.inflate is None:
            self.received += len(chunk)
            self._keep(chunk)
            return
        data = chunk
        while data and not self.inflate.eof:
            try:  # never more than one byte past the bound, and a step at a time
                out = self.inflate.decompress(data, min(STEP, self.limit - self.size + 1))
            except zlib.error as exc:
                what = f"the compressed body is corrupt ({exc})"
                raise _fail("malformed", what, self.endpoint) from None
            self.received += len(data) - len(self.inflate.unconsumed_tail)
            self._keep(out)
            data = self.inflate.unconsumed_tail

    def finish(self) -> bytes:
        if self.inflate is not None and not self.inflate.eof:
            self._keep(self.inflate.flush())
        return b"".join(self.parts)

    def _keep(self, out: bytes) -> None:
        self.size += len(out)
        if self.size > self.limit:
            raise _fail(
                "too-large",
                f"the answer passed {_size(self.limit)}, the most this call's answer can "
                "plausibly take; stopped reading it",
                self.endpoint,
            )
        if self.inflate is not None and self.size > max(RATIO_FLOOR, MAX_RATIO * self.received):
            raise _fail(
                "compression-bomb",
                f"the answer inflated {_size(self.received)} to over {_size(self.size)} (more "
                f"than {MAX_RATIO} times); stopped reading it",
                self.endpoint,
            )
        self.parts.append(out)


async def read_body(response: aiohttp.ClientResponse, limit: int, endpoint: str) -> bytes:
    """The body of ``response``, inflated, read in chunks and refused past ``limit`` bytes.

    Raises :class:`~alltick_frames.core.errors.TransportError` (``too-large``,
    ``compression-bomb``, or ``unsupported-encoding`` for an encoding never asked for).
    """
    encoding = response.headers.get("Content-Encoding", "").strip().lower()
    if encoding in ("", "identity"):
        encoding = ""
    elif encoding not in _ENCODINGS:
        raise _fail(
            "unsupported-encoding",
            f"the answer came as {encoding!r}, which was not asked for",
            endpoint,
        )
    if not encoding and (response.content_length or 0) > limit:
        raise _fail(
            "too-large",
            f"the answer announced {_size(response.content_length or 0)}, more than the "
            f"{_size(limit)} this call's answer can plausibly take; not read",
            endpoint,
        )
    body = _Body(limit, encoding, endpoint)
    async for chunk in response.content.iter_chunked(CHUNK):
        body.feed(chunk)
    return body.finish()
