"""Which socket carries which code: pure bookkeeping under the plan's WebSocket caps.

Each base path (stock, forex) gets up to ``plan.ws_connections`` sockets, the two paths
counted apart, as AllTick counts them. Each socket subscribes up to ``plan.ws_codes`` codes
for trades and, separately, up to ``plan.ws_codes`` for order books. A new code goes to the
socket already carrying it for the other kind, else to the first socket with room, else to
a new socket while the cap allows; beyond that it is rejected, and the stream reports it.
Codes never move between sockets once placed, so adding codes only resubscribes the sockets
that take them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from alltick_frames.core.codes import CodeInfo
from alltick_frames.core.plans import Plan
from alltick_frames.live.wire import KINDS

SlotKey = tuple[str, int]


@dataclass
class Slot:
    """One socket's share: its base path, its number on that path, its codes per kind."""

    path: str
    index: int
    codes: dict[str, list[str]] = field(default_factory=lambda: {k: [] for k in KINDS})

    @property
    def key(self) -> SlotKey:
        return (self.path, self.index)

    @property
    def empty(self) -> bool:
        return not any(self.codes.values())


class Layout:
    """The sockets a stream needs under ``plan``, and the codes each one subscribes."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.slots: dict[SlotKey, Slot] = {}

    def _on(self, path: str) -> list[Slot]:
        return [s for s in self.slots.values() if s.path == path]

    def where(self, code: str, kind: str) -> Slot | None:
        return next((s for s in self.slots.values() if code in s.codes[kind]), None)

    def add(
        self, infos: Iterable[CodeInfo], kinds: Iterable[str]
    ) -> tuple[set[SlotKey], list[tuple[str, str]]]:
        """Place every (code, kind) not placed yet; returns the slots that changed (new ones
        included) and the ``(code, kind)`` pairs no socket can take."""
        changed: set[SlotKey] = set()
        rejected: list[tuple[str, str]] = []
        kinds = tuple(kinds)
        for info in infos:
            for kind in kinds:
                if self.where(info.code, kind) is not None:
                    continue
                slot = self._room(info, kind)
                if slot is None:
                    rejected.append((info.code, kind))
                    continue
                slot.codes[kind].append(info.code)
                changed.add(slot.key)
        return changed, rejected

    def _room(self, info: CodeInfo, kind: str) -> Slot | None:
        path = info.path
        cap = self.plan.ws_codes
        candidates = self._on(path)
        beside = [s for s in candidates if any(info.code in c for c in s.codes.values())]
        for slot in beside + candidates:
            if len(slot.codes[kind]) < cap:
                return slot
        if len(candidates) >= self.plan.ws_connections:
            return None
        index = next(i for i in range(len(candidates) + 1) if (path, i) not in self.slots)
        slot = self.slots[(path, index)] = Slot(path, index)
        return slot

    def remove(self, codes: Iterable[str], kinds: Iterable[str]) -> set[SlotKey]:
        """Take codes off their sockets; returns the slots that changed (empty ones too)."""
        changed: set[SlotKey] = set()
        drop = set(codes)
        for slot in self.slots.values():
            for kind in kinds:
                kept = [c for c in slot.codes[kind] if c not in drop]
                if len(kept) != len(slot.codes[kind]):
                    slot.codes[kind] = kept
                    changed.add(slot.key)
        return changed

    def discard_empty(self) -> list[Slot]:
        """Forget the slots that carry nothing any more, and return them."""
        empty = [s for s in self.slots.values() if s.empty]
        for slot in empty:
            del self.slots[slot.key]
        return empty
