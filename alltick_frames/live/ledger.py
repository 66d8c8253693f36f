"""What a stream knows about each code, and the failure rows that follows from it. Pure.

For every (kind, code) the :class:`Ledger` keeps when the stream asked for it, when its
subscription was acknowledged, whether it ever pushed, its last trade, and the gaps dropped
sockets left; :meth:`Ledger.failures` turns that into rows with the schema of every other
failures table (:func:`~alltick_frames.core.errors.failures_frame`):

* ``plan-limit``: over the plan's sockets x codes per subscription, never sent;
* ``code-unauthorized`` (604): outside a Free basket or a market plan, never sent;
* ``left-out``: no push ``silence_timeout`` seconds after the subscription was acknowledged
  (or asked for, while no socket could subscribe it), and at the end of the stream;
* ``transport``: a socket closed under the stream, so trades from the last one received
  until the resubscription may be missing (one row per code and drop);
* the ``ret`` of a subscription the server refused (603, 400).

Times are the stream's clock readings, passed in; nothing here reads a clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd

from alltick_frames.core.errors import Failure, failures_frame
from alltick_frames.live.wire import ENDPOINT, KINDS, TRADES

Pair = tuple[str, str]  # (kind, code)


@dataclass
class StreamStats:
    """What a stream did so far."""

    #: Pushes received, of each kind; frames that were not JSON AllTick documents.
    trades: int = 0
    books: int = 0
    malformed: int = 0
    #: Connections opened (reconnects included), reconnects, handshakes refused (HTTP 429, or
    #: any status but 401 and 404), sockets closed under the stream (server or network).
    connects: int = 0
    reconnects: int = 0
    refused: int = 0
    closes: int = 0
    #: Answers ``ret`` 606 (a stream that keeps to its plan never gets one).
    too_many: int = 0
    heartbeats: int = 0
    subscriptions: int = 0

    @property
    def messages(self) -> int:
        return self.trades + self.books

    def as_dict(self) -> dict[str, int]:
        return {**asdict(self), "messages": self.messages}


def _moment(ms: Any) -> str:
    try:
        return pd.Timestamp(int(ms), unit="ms", tz="UTC").isoformat()
    except (TypeError, ValueError):
        return "?"


class Ledger:
    """Per (kind, code): asked, acknowledged, arrived, last trade, gaps; and fixed rows."""

    def __init__(self) -> None:
        #: When each pair was asked for, then when its subscription was acknowledged.
        self.since: dict[Pair, float] = {}
        self.acked: set[Pair] = set()
        self.arrived: dict[str, set[str]] = {k: set() for k in KINDS}
        self.last_trade: dict[str, Any] = {}
        #: code -> (its last trade's tick_time, when its socket closed, why).
        self.gaps: dict[str, tuple[Any, float, str]] = {}
        self.rows: list[Failure] = []

    def asked(self, pairs: Iterable[Pair], now: float) -> None:
        for pair in pairs:
            self.since.setdefault(pair, now)

    def forget(self, pairs: Iterable[Pair]) -> None:
        for pair in pairs:
            self.since.pop(pair, None)
            self.acked.discard(pair)

    def acknowledged(self, kind: str, codes: Sequence[str], now: float) -> None:
        """A subscription of ``codes`` was answered 200; close the gaps of its trades."""
        for code in codes:
            if (kind, code) not in self.acked:
                self.acked.add((kind, code))
                self.since[(kind, code)] = now
            if kind == TRADES and code in self.gaps:
                last, closed_at, reason = self.gaps.pop(code)
                self.rows.append(_gap(code, last, reason, now - closed_at))

    def pushed(self, kind: str, code: str, tick_time: Any) -> bool:
        """Note a push; False when the code is not (or no longer) subscribed: ignore it."""
        if (kind, code) not in self.acked:
            return False
        self.arrived[kind].add(code)
        if kind == TRADES:
            self.last_trade[code] = tick_time
        return True

    def closed(self, trade_codes: Iterable[str], now: float, reason: str) -> None:
        """A socket carrying ``trade_codes`` closed under the stream."""
        for code in trade_codes:
            self.gaps.setdefault(code, (self.last_trade.get(code), now, reason))

    def ended(self) -> None:
        """The stream ended: gaps no resubscription closed become rows."""
        for code, (last, _, reason) in self.gaps.items():
            self.rows.append(_gap(code, last, reason, None))
        self.gaps.clear()

    def failures(
        self, now: float, *, ended: bool, timeout: float, order: Sequence[str]
    ) -> pd.DataFrame:
        """Every row: the fixed ones, and the codes silent past ``timeout`` (all silent codes
        once the stream ``ended``)."""
        silent = [
            _silent(kind, code, now - since, (kind, code) in self.acked)
            for (kind, code), since in self.since.items()
            if code not in self.arrived[kind] and (ended or now - since >= timeout)
        ]
        return failures_frame(self.rows + silent, code_order=order)


def _gap(code: str, last: Any, reason: str, seconds: float | None) -> Failure:
    after = f"after the trade of {_moment(last)}" if last is not None else "since subscribing"
    if seconds is None:
        until = "until the stream ended"
    else:
        until = f"until the resubscription {seconds:.1f} s later"
    return Failure(
        code=code,
        endpoint=ENDPOINT[TRADES],
        kind="transport",
        msg=f"socket closed: {reason}",
        detail=f"trades {after} {until} may be missing",
    )


def _silent(kind: str, code: str, seconds: float, acked: bool) -> Failure:
    if acked:
        msg = "acknowledged but never pushed"
        detail = (
            f"no push in the {seconds:.0f} s since the subscription was acknowledged: AllTick "
            "acks unknown, misrouted or unauthorised codes and never pushes them, and a closed "
            "market pushes nothing"
        )
    else:
        msg = "never subscribed"
        detail = (
            f"no subscription acknowledged in {seconds:.0f} s: the socket could not connect, "
            "was refused, or the stream ended first"
        )
    return Failure(code=code, endpoint=ENDPOINT[kind], kind="left-out", msg=msg, detail=detail)
