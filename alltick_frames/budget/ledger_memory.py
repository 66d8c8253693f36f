"""A ledger in this process's memory, shared per token fingerprint."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable

from alltick_frames.budget.ledger import Ledger, T
from alltick_frames.budget.slots import LedgerState


class MemoryLedger(Ledger):
    """A ledger in this process's memory (guarded by a lock, so threads may share it too)."""

    def __init__(self) -> None:
        self.state = LedgerState()
        self._lock = threading.RLock()

    @classmethod
    def shared(cls, key: str) -> MemoryLedger:
        """The one ledger of this process for ``key`` (a token fingerprint), while in use.

        Budgets built by :meth:`Budget.for_token` for the same token in one process share
        it, so two clients on one token stay inside one budget. It lives as long as some
        budget holds it.
        """
        with _SHARED_LOCK:
            ledger = _SHARED.get(key)
            if ledger is None:
                ledger = _SHARED[key] = cls()
            return ledger

    def update(self, fn: Callable[[LedgerState], T]) -> T:
        with self._lock:
            return fn(self.state)

    def read(self, fn: Callable[[LedgerState], T]) -> T:
        with self._lock:
            return fn(self.state)

    def __repr__(self) -> str:
        return f"MemoryLedger(windows={len(self.state.calls)})"


_SHARED: weakref.WeakValueDictionary[str, MemoryLedger] = weakref.WeakValueDictionary()
_SHARED_LOCK = threading.Lock()
