"""Where a budget's reservations live: the :class:`Ledger` interface."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TypeVar

from alltick_frames.budget.slots import LedgerState

T = TypeVar("T")


class Ledger(ABC):
    """Where reservations live. A ledger runs a function on its :class:`LedgerState` atomically.

    Implementations: :class:`MemoryLedger` (this process), :class:`DiskLedger` (every
    process using the same directory) and :class:`RedisLedger` (every host reaching one Redis).
    All are safe for many asyncio tasks: ``update`` is synchronous, so no other task runs in
    the middle of it.
    """

    #: What happened if a shared ledger had to fall back to a local one (None while it holds).
    failover: str | None = None

    @abstractmethod
    def update(self, fn: Callable[[LedgerState], T]) -> T:
        """Run ``fn`` on the state with exclusive access and keep its changes.

        If ``fn`` raises, a disk ledger rolls back while a memory ledger keeps whatever was
        changed before the raise (copying the state to undo would cost a copy per call), so
        ``fn`` must raise before it changes anything that matters. The budget's functions
        only prune expired entries before they can raise.

        A ledger that detects conflicting writers instead of locking them out (Redis) runs
        ``fn`` again on the fresh state when another client wrote first, so whatever ``fn``
        changes outside the state must bear being done twice.
        """

    @abstractmethod
    def read(self, fn: Callable[[LedgerState], T]) -> T:
        """Run ``fn`` on a consistent view of the state; ``fn`` must not change it."""

    def close(self) -> None:  # noqa: B027 (a no-op is the right default)
        """Release resources (files, connections)."""
