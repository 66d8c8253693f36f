"""The emulator's two clocks, and how to read a moment written by a person.

The emulator keeps two notions of "now" apart on purpose:

* the **rate clock** (:class:`EmulatorClock`) decides which calls fall into which sliding window
  and which calendar day the daily cap counts. It runs on real time by default, but a test can
  freeze it and move it by hand, so a test of a one-minute window takes microseconds::

      clock = EmulatorClock(frozen=True)
      clock.advance(60)          # the next call sees a fresh minute

* the **market clock** decides which bars exist and which one is still forming. It is either a
  fixed instant (``--now``) or the real time; it never jumps when the rate clock is driven, so
  moving quota windows never changes the data a test compares.

Both clocks are plain Unix seconds (floats).
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime


class EmulatorClock:
    """A thread-safe clock for rate windows: real time plus an offset, or frozen.

    ``EmulatorClock()`` follows ``time.time()``. ``EmulatorClock(frozen=True)`` stands still
    at the moment of creation (or at ``start``) until :meth:`advance` or :meth:`set` moves it.
    Advancing a running clock shifts it ahead of real time; freezing and unfreezing keep the
    current reading, so the clock never jumps by itself.
    """

    def __init__(self, start: float | None = None, *, frozen: bool = False) -> None:
        self._lock = threading.Lock()
        now = time.time()
        self._offset = 0.0 if start is None else start - now
        self._frozen_at: float | None = (now + self._offset) if frozen else None

    def now(self) -> float:
        """The current reading in Unix seconds."""
        with self._lock:
            return self._read()

    def _read(self) -> float:
        if self._frozen_at is not None:
            return self._frozen_at
        return time.time() + self._offset

    def at(self, real: float) -> float:
        """The reading the clock had at real (``time.time()``) instant ``real``: the instant
        itself plus the offset, or the frozen reading."""
        with self._lock:
            return self._frozen_at if self._frozen_at is not None else real + self._offset

    @property
    def frozen(self) -> bool:
        return self._frozen_at is not None

    def freeze(self, frozen: bool = True) -> None:
        """Stop (or, with ``False``, restart) the clock at its current reading."""
        with self._lock:
            reading = self._read()
            if frozen:
                self._frozen_at = reading
            else:
                self._offset = reading - time.time()
                self._frozen_at = None

    def advance(self, seconds: float) -> float:
        """Move the clock ``seconds`` ahead (negative moves it back); returns the new reading."""
        with self._lock:
            if self._frozen_at is not None:
                self._frozen_at += seconds
            else:
                self._offset += seconds
            return self._read()

    def set(self, epoch: float) -> float:
        """Jump to ``epoch`` (Unix seconds); a running clock keeps running from there."""
        with self._lock:
            if self._frozen_at is not None:
                self._frozen_at = float(epoch)
            else:
                self._offset = float(epoch) - time.time()
            return self._read()

    def state(self) -> dict[str, float | bool]:
        """``{"now": seconds, "frozen": bool}``, as the admin endpoint reports it."""
        with self._lock:
            return {"now": self._read(), "frozen": self._frozen_at is not None}

    def __repr__(self) -> str:
        state = self.state()
        return f"EmulatorClock(now={state['now']:.3f}, frozen={state['frozen']})"


def parse_moment(value: str | float | int | datetime) -> float:
    """Turn ``"2024-05-15T14:00:00Z"``, ``"1715781600"``, ``1715781600`` or a datetime into Unix
    seconds. ISO-8601 without an offset is read as UTC; values above 1e11 are milliseconds.
    """
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.timestamp()
    if isinstance(value, bool):
        raise ValueError(f"not a moment: {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        text = value.strip()
        try:
            seconds = float(text)
        except ValueError:
            try:
                moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                raise ValueError(
                    f"cannot read {value!r} as a moment: use ISO-8601 such as "
                    "2024-05-15T14:00:00Z or Unix seconds such as 1715781600"
                ) from None
            return parse_moment(moment)
    return seconds / 1000.0 if seconds > 1e11 else seconds
