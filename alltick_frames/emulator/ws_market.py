"""Trades and order books for the emulator's WebSocket, from the market that serves ``/kline``.

Pure functions of (code, moment, cadence); nothing here does I/O.

**Trades.** A code's trades in one trading minute are a pure function of that minute's closed
1m bar (the bar ``/kline`` answers) and of the cadence: ``n = max(4, round(60 / cadence))``
trades at hashed times spread evenly over the minute, such that

* the first trade is at the bar's open and the last at its close; one trade is at the high,
  one at the low; the others follow the price path, clipped into ``[low, high]``;
* volumes are whole lots (stocks) or units of 0.0001 (crypto) summing to the bar's volume,
  and turnovers are whole cents summing to the bar's turnover, shared by volume (so a trade's
  turnover is its share of the minute's, close to but not exactly price × volume);
* FX, metals, energy and CFDs report volume and turnover ``"0"`` and direction 1, as
  ``/trade-tick`` does.

So the bar built from a closed minute's trades *is* that minute's ``/kline`` bar, field for
field. Each trade is pushed once the market clock passes its ``tick_time``; while a minute
forms, its trades so far build a bar with the same open whose close, high, low and volume are
"so far" (``/kline``'s forming bar differs: its close follows the price path continuously).

**Books.** Every ``cadence`` seconds while its market is open, at a phase hashed from the code,
a code's order book exactly as ``/depth-tick`` reports it at that moment, cut to the
subscription's ``depth_level`` (one level when none was asked for). A book replaces the one
before it, so when pushes fall behind only the newest due book is sent.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

from alltick_frames.emulator import market, sessions
from alltick_frames.emulator.catalogue import CRYPTO, Instrument, stable_hash
from alltick_frames.emulator.prices import prices as price_path
from alltick_frames.emulator.ws_rules import MIN_CADENCE

Push = dict[str, Any]


def trades_per_minute(cadence: float) -> int:
    """How many trades a code makes in a trading minute at this cadence (at least 4)."""
    return max(4, round(60 / max(cadence, MIN_CADENCE)))


def trading(inst: Instrument, t: float) -> bool:
    """Whether the market of ``inst`` is open at ``t``."""
    return sessions.last_open(sessions.schedule_of(inst), t) == t


def _seq(inst: Instrument, tick_ms: int) -> str:
    # The numbering of the HTTP side's ticks (market.py): one number per 50 ms, offset per code.
    return str(tick_ms // 50 + inst.seed % 1_000_000)


def _shares(total: int, weights: list[int]) -> list[int]:
    """``total`` split into whole shares in proportion to ``weights`` (largest remainder)."""
    whole = sum(weights)
    if total <= 0 or whole <= 0:
        return [0] * len(weights)
    exact = [total * w / whole for w in weights]
    out = [math.floor(x) for x in exact]
    by_remainder = sorted(range(len(weights)), key=lambda i: out[i] - exact[i])
    for i in by_remainder[: total - sum(out)]:
        out[i] += 1
    return out


def _volumes(inst: Instrument, bar: dict[str, str], n: int, h: int) -> tuple[list[str], list[str]]:
    """Trade volumes and turnovers (strings) that sum to the bar's."""
    if inst.market is None and inst.asset_class != CRYPTO:
        return ["0"] * n, ["0"] * n
    crypto = inst.asset_class == CRYPTO
    # Whole units: 0.0001 of a coin, or a lot of shares.
    units = round(float(bar["volume"]) * 10_000) if crypto else int(bar["volume"]) // inst.lot_size
    weights = [1 + (h >> (i % 48)) % 997 for i in range(n)]
    least = 1 if units >= n else 0  # every trade at least one unit when there are enough
    counts = [least + s for s in _shares(units - least * n, weights)]
    cents = _shares(round(float(bar["turnover"]) * 100), counts)
    if crypto:
        volumes = [f"{c / 10_000:.4f}" for c in counts]
    else:
        volumes = [str(c * inst.lot_size) for c in counts]
    return volumes, [f"{c / 100:.2f}" for c in cents]


@lru_cache(maxsize=1 << 15)
def minute_trades(inst: Instrument, minute: int, n: int) -> tuple[tuple[int, Push], ...]:
    """The trades of ``inst`` in the minute starting at ``minute`` (Unix seconds), as
    ``(tick_ms, push data)`` in time order; empty when its market is closed then."""
    if not trading(inst, minute + 0.5):
        return ()
    end = minute + 60
    bars = market.klines(inst, 1, minute, end, 1, sessions.MARKET_FLOOR)
    if not bars or int(bars[0]["timestamp"]) != minute:
        return ()
    bar = bars[0]
    h = stable_hash(inst.code, "ws-trades", minute)
    width = 60_000 / n
    ticks = [
        minute * 1000 + math.floor((i + 0.1 + 0.8 * (stable_hash(h, i) % 1000) / 1000) * width)
        for i in range(n)
    ]
    low, high = float(bar["low_price"]), float(bar["high_price"])
    fmt = f"{{:.{inst.decimals}f}}".format
    path = price_path(inst, [t / 1000 for t in ticks]).tolist()
    prices = [fmt(min(max(p, low), high)) for p in path]
    at_high = 1 + h % (n - 2)
    at_low = 1 + (h >> 16) % (n - 3)
    at_low += at_low >= at_high
    prices[0], prices[-1] = bar["open_price"], bar["close_price"]
    prices[at_high], prices[at_low] = bar["high_price"], bar["low_price"]
    volumes, turnovers = _volumes(inst, bar, n, h)
    fx_like = inst.market is None and inst.asset_class != CRYPTO
    return tuple(
        (
            tick,
            {
                "code": inst.code,
                "seq": _seq(inst, tick),
                "tick_time": str(tick),
                "price": price,
                "volume": volume,
                "turnover": turnover,
                "trade_direction": 1 if fx_like else (stable_hash(h, "side", i) >> 8) % 3,
            },
        )
        for i, (tick, price, volume, turnover) in enumerate(
            zip(ticks, prices, volumes, turnovers, strict=True)
        )
    )


def trades_between(inst: Instrument, after_ms: int, until_ms: int, cadence: float) -> list[Push]:
    """Every trade of ``inst`` with ``after_ms < tick_time <= until_ms``, oldest first."""
    feed = TradeFeed(inst, cadence, after_ms)
    return feed.due(until_ms)


class TradeFeed:
    """One code's trades after a moment, handed out as the market clock passes them."""

    __slots__ = ("_after", "_index", "_minute", "_n", "_trades", "inst")

    def __init__(self, inst: Instrument, cadence: float, after_ms: int) -> None:
        self.inst = inst
        self._n = trades_per_minute(cadence)
        self._after = after_ms
        self._minute = after_ms // 60_000 * 60
        self._trades = minute_trades(inst, self._minute, self._n)
        self._index = 0

    def due(self, now_ms: int) -> list[Push]:
        """The trades with ``tick_time <= now_ms`` not handed out yet."""
        out: list[Push] = []
        while True:
            trades = self._trades
            while self._index < len(trades):
                tick, push = trades[self._index]
                if tick > now_ms:
                    return out
                self._index += 1
                if tick > self._after:
                    out.append(push)
            if (self._minute + 60) * 1000 > now_ms:
                return out
            self._minute += 60
            self._trades = minute_trades(self.inst, self._minute, self._n)
            self._index = 0


def book(inst: Instrument, t: float, level: int | None) -> Push:
    """The order book of ``inst`` at ``t`` as ``/depth-tick`` has it, cut to ``level``."""
    data = market.depth_tick(inst, t)
    keep = level or 1
    data["bids"] = data["bids"][:keep]
    data["asks"] = data["asks"][:keep]
    return data


class BookFeed:
    """One code's books: one every ``cadence`` seconds while its market is open."""

    __slots__ = ("_cadence", "_k", "_phase", "inst", "level")

    def __init__(self, inst: Instrument, cadence: float, level: int | None, after: float) -> None:
        self.inst = inst
        self.level = level
        self._cadence = cadence
        self._phase = (inst.seed % 1000) / 1000 * cadence
        self._k = math.floor((after - self._phase) / cadence) + 1

    def _at(self, k: int) -> float:
        return self._phase + k * self._cadence

    def due(self, now: float) -> list[Push]:
        """The newest book due by ``now`` (at most one: a book replaces the one before)."""
        if self._at(self._k) > now:
            return []
        last = math.floor((now - self._phase) / self._cadence)
        self._k = last + 1
        t = self._at(last)
        return [book(self.inst, t, self.level)] if trading(self.inst, t) else []
