"""Live trades and order books over AllTick's WebSocket, and bars built from them.

* :class:`Stream`: ``async with Stream(codes, ...) as s: async for frame in s`` (also
  ``AllTick.stream(codes)``);
* :func:`stream`: the same, blocking, for scripts and notebooks;
* :func:`ticks_to_bars` and :class:`BarBuilder`: OHLCV bars from trades, aligned as ``/kline``.
"""

from alltick_frames.live.bars import BarBuilder, ticks_to_bars
from alltick_frames.live.blocking import BlockingStream, stream
from alltick_frames.live.ledger import StreamStats
from alltick_frames.live.stream import Stream

__all__ = ["BarBuilder", "BlockingStream", "Stream", "StreamStats", "stream", "ticks_to_bars"]
