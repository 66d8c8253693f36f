"""A ledger in a diskcache directory, shared by every process that opens it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from alltick_frames.budget.ledger import Ledger, T
from alltick_frames.budget.slots import LedgerState


class DiskLedger(Ledger):
    """A ledger in a ``diskcache.Cache`` directory, shared by every process that opens it.

    Each update is one SQLite ``BEGIN IMMEDIATE`` transaction (``Cache.transact``): read the
    state, compute, write it back, commit; a second process waits for the first to commit,
    so two processes can never take the same slot. The state is one record under
    ``budget/<key>``, where ``key`` is a :func:`token_fingerprint`; times are packed float64
    and old ones are pruned on every update, so a record stays a few kilobytes (about 8 bytes
    per call in the longest window) and an update costs well under a millisecond.
    """

    def __init__(self, directory: str | Path, key: str) -> None:
        import diskcache

        if not key or "/" in key:
            raise ValueError(f"a ledger key must be a non-empty fingerprint, got {key!r}")
        self.directory = Path(directory)
        self.key = key
        self._record_key = f"budget/{key}"
        self._cache = diskcache.Cache(
            str(self.directory),
            eviction_policy="none",  # never cull a live ledger for space
            disk_min_file_size=1 << 22,  # keep the record inside SQLite, not a side file
            statistics=False,
            tag_index=False,
        )

    def update(self, fn: Callable[[LedgerState], T]) -> T:
        cache = self._cache
        with cache.transact(retry=True):
            state = LedgerState.from_record(cache.get(self._record_key))
            result = fn(state)
            cache.set(self._record_key, state.to_record())
        return result

    def read(self, fn: Callable[[LedgerState], T]) -> T:
        return fn(LedgerState.from_record(self._cache.get(self._record_key)))

    def close(self) -> None:
        self._cache.close()

    def __repr__(self) -> str:
        return f"DiskLedger({str(self.directory)!r}, key={self.key!r})"
