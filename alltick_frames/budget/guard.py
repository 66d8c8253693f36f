"""The budget's guard: the margin added to every sliding window, fixed or learned.

Why a guard at all
    AllTick dates a call when it *arrives*; the budget can only place when it *leaves*. With a
    limit of L calls per S seconds the budget starts the (k+L)-th call S + g after the k-th.
    The server refuses it when the k-th call's trip took more than ``g`` longer than the
    (k+L)-th call's: arrival times are spread by the network and the server's own queue. (How
    late a busy client sends a call after its slot is not the guard's to cover: the runner
    records a late call in the ledger when it really leaves, see
    :meth:`~alltick_frames.budget.pacing.Budget.depart`.) So ``g`` must cover that spread,
    and every second of ``g`` costs ``g / S`` of the plan's pace. A fixed 25 ms was tuned on
    one quiet machine; on a jittery link it draws 429s, on a quiet one it wastes pace.

A call's answer bounds it better
    The server dates a call before it answers it, so a call answered at ``h`` arrived by
    ``h``: a call leaving ``h + S`` or later cannot share its window. Once a call is answered
    sooner than the guard, the budget counts it where that bound puts it
    (:meth:`~alltick_frames.budget.pacing.Budget.answered`): its margin is its own latency,
    not ``g``. With 51 calls in flight at 100 calls/s, a call is reserved about half a window
    ahead, when the call a window before it has long been answered; so the guard is left to
    cover what is not yet answered (a window's first calls, calls answered slower than the
    guard), and a cold or wide guard costs little. ``benchmarks/guard_sim.py`` (902 calls,
    51 in flight, ``--no-answers`` for the old reading): with no jitter 1.011 -> 1.004 of the
    plan's minimum; with 0-50 ms, 1.044-1.050 -> 1.033-1.044, 0-1 x 429 either way.

What the learned guard observes
    * every answered call's **latency** (from the request leaving to its headers arriving).
      Their spread (the 95th minus the 5th percentile of the last :data:`SAMPLES`) bounds the
      spread of arrival times from above: one leg of a round trip cannot vary more than the
      whole, except that a busy client reads answers late, which only inflates the bound. So
      the guard is kept within :data:`WIDEN` x that spread (its *measured* bound), and a
      cold guard drops to it as soon as :data:`MIN_SAMPLES` latencies are in;
    * every **429/605 our own pace explains** (the ledger holds a full window of our calls:
      see :meth:`~alltick_frames.budget.pacing.Budget.on_rejected`): proof that the server saw
      two of our calls closer than the guard kept them. The guard widens at once, x1.5, up to
      one step past the measured bound (the server saw a spread the latencies did not show;
      a rejection that keeps coming at that width is not the spread's doing, and the
      budget's blocks answer it). A rejection the ledger cannot explain (another client on
      the token, a random refusal) widens nothing: a wider guard would not have avoided it;
    * every **accepted** call: weak evidence that the guard is enough. The guard narrows by
      :data:`NARROW` of its excess over the floor.

Why multiplicative increase, slow multiplicative decrease (AIMD's shape, on a margin)
    The server's answer is the only exact measure of the spread it sees, and it only ever
    says "too narrow". A guard widened x1.5 per rejection and narrowed by ``r`` per accepted
    call settles where the two cancel, about one rejection per ``ln 1.5 / r`` calls: with
    ``r`` = 1/1000, at most about one per 400 calls (0.25 %), and fewer where the spread is
    steady, since the guard never narrows below the floor and a quiet link's measured bound
    is the floor. A rejection now costs one call sent again and a block as short as the
    ledger allows, so that rate costs less than a wider guard would: 10 ms more guard costs
    1 % of a 1-second window's pace on every call. Faster narrowing would cost more
    rejections; slower, a guard left wide after a passing burst.
    Why not a guard measured from latencies alone: on a busy client they spread wider than
    the server's arrival times (the client reads its answers late), and such a guard was
    measured too wide by half. The latencies bound the guard; the server's rejections set it.

Bounds: :data:`FLOOR` 10 ms (what is left between a call leaving and the server dating it
once late departures are recorded: the write, the kernel, a loaded machine's scheduling.
``benchmarks/pacing_trace.py`` measured it under 0.5 ms at the 99th percentile and at most
15 ms on a 2-core machine with both cores busy; a fixed 5 ms guard drew no rejection in 6
runs of the throughput job at load 4 to 5. Each 10 ms of floor costs 1 % of a 1-second
window's pace; a rare slower trip draws a 429 that widens the guard),
:data:`CEILING` 0.5 s (half a 1-second window: beyond that a rejection is not the network's
doing but another client's, which blocks handle), :data:`COLD` 0.1 s until
:data:`MIN_SAMPLES` latencies were measured. ``Budget(guard=0.05)`` fixes it instead
(:class:`FixedGuard`), as before.

A guard lives in one process: every process learns its own from its own calls, and their
blocks meet in the shared ledger.
"""

from __future__ import annotations

from collections import deque
from typing import Any

#: The smallest guard the budget learns (seconds).
FLOOR = 0.01
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
        # What the last rejection widened to: the latencies' bound does not undo it, and it
        # narrows as the guard does.
        self._lift = 0.0

    @property
    def widest(self) -> float:
        return self.ceiling

    def measured(self) -> float:
        """The widest guard the latencies justify: ``widen x`` their spread, within the bounds
        (the ceiling until :data:`MIN_SAMPLES` are measured)."""
        spread = self.spread() if len(self._latencies) >= MIN_SAMPLES else None
        if spread is None:
            return self.ceiling
        return min(self.ceiling, max(self.floor, self.widen * spread))

    def observe(self, latency: float) -> None:
        super().observe(latency)
        if len(self._latencies) >= MIN_SAMPLES:
            self.value = min(self.value, max(self.measured(), self._lift))

    def on_rejected(self) -> None:
        """Widen at once, x1.5, up to one step past what the latencies justify: the server
        saw a spread they did not show, but no more than once over (a rejection that keeps
        coming at that width is not the spread's doing, and blocks answer it)."""
        self.rejections += 1
        wider = min(self.ceiling, max(self.floor, self.value * self.widen))
        self.value = self._lift = min(wider, self.widen * self.measured(), self.ceiling)

    def on_accepted(self) -> None:
        """Narrow a little: drop :data:`NARROW` of the excess over the floor."""
        self.value -= (self.value - self.floor) * self.narrow
        self._lift -= (self._lift - self.floor) * self.narrow if self._lift > self.floor else 0


def _spread(latencies: deque[float]) -> float | None:
    n = len(latencies)
    if n < 2:
        return None
    ordered = sorted(latencies)
    return ordered[min(n - 1, (n * 95) // 100)] - ordered[(n * 5) // 100]
