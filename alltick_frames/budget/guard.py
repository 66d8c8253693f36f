"""The budget's guard: the margin added to every sliding window, fixed or learned.

Why a guard at all
    AllTick dates a call when it *arrives*; the budget can only place when it *leaves*. With a
    limit of L calls per S seconds the budget starts the (k+L)-th call S + g after the k-th.
    The server refuses it when the k-th call's trip took more than ``g`` longer than the
    (k+L)-th call's: arrival times are spread by the network, by the server's own queue and
    by how late a busy client sends a call after its slot. So ``g`` must cover that spread,
    and every second of ``g`` costs ``g / S`` of the plan's pace. A fixed 25 ms was tuned on
    one quiet machine; on a jittery link it draws 429s, on a quiet one it wastes pace.

What the learned guard observes
    * every answered call's **latency** (from leaving to its answer). The latencies' spread
      (the 95th minus the 5th percentile of the last :data:`SAMPLES`) bounds the spread of
      arrival times from above: one leg of a round trip cannot vary more than the whole,
      except by the busy client's own lateness in reading answers, which only inflates the
      bound. So the guard is never kept above ``widen x`` that spread;
    * every **429/605** (:meth:`LearnedGuard.on_rejected`): proof that the server saw two of
      our calls closer than the guard kept them, i.e. that the spread exceeds the guard in
      force. The guard is widened at once, x1.5;
    * every **accepted** call: weak evidence that the guard is enough. The guard narrows by
      a small fraction of its excess over the floor.

Why multiplicative increase, slow multiplicative decrease (AIMD's shape, on a margin)
    The server's answer is the only exact measure of the spread it sees, and it only ever
    says "too narrow". A guard narrowed by ``r`` per accepted call and widened by x1.5 per
    rejection settles where rejections come about once per ``ln 1.5 / r`` calls (the two
    moves cancel): with :data:`NARROW` = 1/1000 per call that is about 1 rejection per 400
    calls at worst, below the 0.5 % a rejection-tolerant job can absorb (a rejection now
    costs one call sent again and a block as short as the ledger allows, see
    :meth:`~alltick_frames.budget.pacing.Budget.on_rejected`). Where the link is steady the
    rejections stop before that, since the guard only narrows to the spread the latencies
    bound, and a quiet link's guard sits on the floor with none at all.
    Measured-only guards (a quantile of the latencies) were tried and set it too wide when the
    client's own event loop is busy: the client reads answers late, the latencies' spread
    grows, but the server's arrival times do not. The latencies bound the guard; the server's
    rejections set it.

Bounds: :data:`FLOOR` 15 ms (below that, the OS's own timer and scheduling slack on a
loaded machine), :data:`CEILING` 0.5 s (half a 1-second window: beyond that a rejection is
not the network's doing but another client's, which blocks handle), :data:`COLD` 0.1 s until
:data:`MIN_SAMPLES` latencies were measured. ``Budget(guard=0.05)`` fixes it instead
(:class:`FixedGuard`), as before.

A guard lives in one process: every process learns its own from its own calls, and their
blocks meet in the shared ledger.
"""

from __future__ import annotations

from collections import deque
from typing import Any

#: The smallest guard the budget learns (seconds).
FLOOR = 0.015
#: The widest guard the budget learns (seconds).
CEILING = 0.5
#: The guard before enough latencies were measured (seconds).
COLD = 0.1
#: How many recent latencies the spread is measured over.
SAMPLES = 128
#: Latencies needed before the spread bounds the guard.
MIN_SAMPLES = 16
#: The guard's widening on a 429/605, and the spread's multiple it may reach by measurement.
WIDEN = 1.5
#: Fraction of the guard's excess over the floor dropped per accepted call.
NARROW = 1e-3


class FixedGuard:
    """A guard that never changes: ``Budget(guard=0.025)``."""

    learned = False

    def __init__(self, value: float) -> None:
        if value < 0:
            raise ValueError(f"guard must be >= 0 seconds, got {value}")
        self.value = float(value)
        self.rejections = 0
        self._latencies: deque[float] = deque(maxlen=SAMPLES)

    @property
    def widest(self) -> float:
        """The widest this guard can be (what a call near midnight is judged against)."""
        return self.value

    def spread(self) -> float | None:
        """The spread of recent latencies (seconds; 95th minus 5th percentile), if measured."""
        return _spread(self._latencies)

    def observe(self, latency: float) -> None:
        """One call's latency, from leaving to its answer (seconds)."""
        if latency >= 0:
            self._latencies.append(latency)

    def on_rejected(self) -> None:
        self.rejections += 1

    def on_accepted(self) -> None:
        pass

    def info(self) -> dict[str, Any]:
        """``{"guard": s, "learned": bool, "latency_spread": s or None, "rejections": n}``."""
        spread = self.spread()
        return {
            "guard": round(self.value, 6),
            "learned": self.learned,
            "latency_spread": None if spread is None else round(spread, 6),
            "rejections": self.rejections,
        }

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.value:.3f})"


class LearnedGuard(FixedGuard):
    """A guard learned from latencies and rejections (see the module docstring)."""

    learned = True

    def __init__(
        self,
        *,
        floor: float = FLOOR,
        ceiling: float = CEILING,
        cold: float = COLD,
        widen: float = WIDEN,
        narrow: float = NARROW,
    ) -> None:
        if not 0 <= floor <= cold <= ceiling:
            raise ValueError("a learned guard needs 0 <= floor <= cold <= ceiling")
        if widen <= 1 or not 0 <= narrow < 1:
            raise ValueError("a learned guard needs widen > 1 and 0 <= narrow < 1")
        super().__init__(cold)
        self.floor, self.ceiling, self.widen, self.narrow = floor, ceiling, widen, narrow
        # A rejection taken while at the latencies' bound lifts the bound (decaying as the
        # guard narrows): the server saw a spread the latencies did not show.
        self._lift = 0.0

    @property
    def widest(self) -> float:
        return self.ceiling

    def bound(self) -> float:
        """The widest guard the latencies justify (the ceiling until enough are measured)."""
        spread = self.spread() if len(self._latencies) >= MIN_SAMPLES else None
        if spread is None:
            return self.ceiling
        return min(self.ceiling, max(self.floor, self.widen * spread, self._lift))

    def observe(self, latency: float) -> None:
        super().observe(latency)
        if len(self._latencies) >= MIN_SAMPLES:
            self.value = min(self.value, self.bound())

    def on_rejected(self) -> None:
        """Widen at once: x1.5, within the latencies' bound; at the bound, past it (the spread
        the server sees is then not the network's: the ceiling still holds)."""
        self.rejections += 1
        wider = min(self.ceiling, max(self.floor, self.value * self.widen))
        bound = self.bound()
        if self.value >= bound:
            self._lift = wider
        self.value = min(wider, self.bound())

    def on_accepted(self) -> None:
        """Narrow a little: drop :data:`NARROW` of the excess over the floor."""
        self.value -= (self.value - self.floor) * self.narrow
        self._lift -= self._lift * self.narrow


def _spread(latencies: deque[float]) -> float | None:
    n = len(latencies)
    if n < 2:
        return None
    ordered = sorted(latencies)
    return ordered[min(n - 1, (n * 95) // 100)] - ordered[(n * 5) // 100]
