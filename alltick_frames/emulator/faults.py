"""Fault injection: the failures a real network and a real AllTick produce, on demand.

Each kind has its own probability per request, all zero by default:

``rate_limit``
    answer ``ret`` 429 or 605 although the plan has room (and consume no quota), as when
    another process shares the token;
``http_5xx``
    HTTP 500, 502 or 503 with an HTML page or a JSON error body;
``reset``
    close the connection without any response (aiohttp clients raise
    ``ServerDisconnectedError``);
``malformed``
    HTTP 200 whose body is the real answer cut short, or not JSON at all;
``slow``
    delay the answer by ``latency`` seconds plus up to ``jitter`` more (combines with the rest);
``bad_bars``
    a ``/kline`` or ``/batch-kline`` answer with one bar (or its label) out of domain, one of
    :data:`BAD_BARS` (a NaN, infinite or negative price, no close, high below low, negative
    volume, a start off the grid, before 1970 or in the future, a start sent twice with
    different values, a price that is not a number, the answer labelled with another code).
    Other endpoints, and answers without bars, are left as they are.

``drop_bars`` is about the data, not the transport: a ``/kline`` answer has a hole, as if
AllTick's history lacked one bar. The page is built one bar longer and loses one bar strictly
inside it (never the first or the last), so it still holds as many bars as were asked for and
shows where it starts and ends, as a real hole would; a page of one bar has no inside and is
left whole. The answer is otherwise whole and ``ret`` 200, and it is counted as usual;
``/_emulator/faults`` counts the holes under ``drop-bars``. It has its own random sequence and
is not part of ``--faults``.

Apart from these, ``arrival_jitter`` delays *every* request by a uniform 0 to
``arrival_jitter`` seconds before the emulator admits and counts it, as a network delays a
request on its way in: the rate windows then date the request that much after it reached
the front door (see :mod:`~alltick_frames.emulator.arrivals`), not when the client sent it,
and two requests may arrive in the other order. ``slow`` delays only the
answer, after the request was counted.

``rate_limit``, ``http_5xx``, ``reset``, ``malformed`` and ``bad_bars`` exclude each other, so
their rates may add up to at most 1; :meth:`FaultConfig.overall` spreads a rate over the five
network kinds only, since bad bars are no network fault. Every random choice comes from one
``random.Random(seed)``, so a run that sends the same requests in the same order sees the same
faults. A call hit by
``http_5xx``, ``reset`` or ``malformed`` was still processed and counted against the quota, as
when a proxy fails after the server answered.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

import orjson

#: The kinds that replace the answer, in the order their rates are stacked.
EXCLUSIVE_KINDS: tuple[str, ...] = ("rate_limit", "http_5xx", "reset", "malformed", "bad_bars")
KINDS: tuple[str, ...] = (*EXCLUSIVE_KINDS, "slow")
#: The kinds a network produces: what :meth:`FaultConfig.overall` spreads its rate over.
NETWORK_KINDS: tuple[str, ...] = ("rate_limit", "http_5xx", "reset", "malformed", "slow")
#: The ways ``bad_bars`` spoils one bar of an answer (``Fault.code`` indexes this).
BAD_BARS: tuple[str, ...] = (
    "nan-price",
    "inf-price",
    "negative-price",
    "no-close",
    "high-below-low",
    "negative-volume",
    "off-grid",
    "before-1970",
    "future",
    "conflict",
    "not-a-number",
    "mislabelled",
)


@dataclass(frozen=True, slots=True)
class FaultConfig:
    """Per-request probabilities of each fault kind, and the delay of ``slow``."""

    rate_limit: float = 0.0
    http_5xx: float = 0.0
    reset: float = 0.0
    malformed: float = 0.0
    bad_bars: float = 0.0
    slow: float = 0.0
    #: Seconds a ``slow`` answer is held back ...
    latency: float = 0.5
    #: ... plus a uniform extra of up to this many seconds.
    jitter: float = 0.0
    #: Every request waits a uniform 0 to this many seconds before it is admitted and counted.
    arrival_jitter: float = 0.0
    #: Probability that a ``/kline`` answer of three bars or more loses one inner bar.
    drop_bars: float = 0.0

    def __post_init__(self) -> None:
        for kind in (*KINDS, "drop_bars"):
            rate = getattr(self, kind)
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"fault rate {kind}={rate} must lie in [0, 1]")
        total = sum(getattr(self, k) for k in EXCLUSIVE_KINDS)
        if total > 1.0 + 1e-9:
            raise ValueError(
                f"rate_limit + http_5xx + reset + malformed + bad_bars = {total:.3f}; they "
                "exclude each other, so their sum must be at most 1"
            )
        if self.latency < 0 or self.jitter < 0 or self.arrival_jitter < 0:
            raise ValueError("latency, jitter and arrival_jitter must be >= 0 seconds")

    @classmethod
    def overall(cls, rate: float, **overrides: float) -> FaultConfig:
        """``rate`` split evenly over the five network kinds, then any per-kind ``overrides``."""
        share = rate / len(NETWORK_KINDS)
        return cls(**{**dict.fromkeys(NETWORK_KINDS, share), **overrides})

    @classmethod
    def coerce(cls, value: FaultConfig | Mapping[str, Any] | None) -> FaultConfig:
        """Accept a :class:`FaultConfig`, a dict of its fields, or None (no faults)."""
        if value is None:
            return cls()
        if isinstance(value, FaultConfig):
            return value
        known = {f.name for f in fields(cls)}
        unknown = set(value) - known
        if unknown:
            raise ValueError(f"unknown fault setting(s) {sorted(unknown)}; known: {sorted(known)}")
        return cls(**{k: float(v) for k, v in value.items()})

    def updated(self, **changes: float) -> FaultConfig:
        """A copy with some settings changed (validated like a new config)."""
        return FaultConfig.coerce({**self.to_dict(), **changes})

    @property
    def active(self) -> bool:
        return any(getattr(self, k) > 0 for k in KINDS)

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Fault:
    """What to do to one request: replace its answer with ``kind`` (or not) and delay it."""

    kind: str | None = None
    #: Whether ``slow`` struck, and the delay it chose.
    slow: bool = False
    delay: float = 0.0
    #: The concrete variant: the ``ret`` for rate_limit, the status for http_5xx, the index
    #: in :data:`BAD_BARS` for bad_bars, and for http_5xx/malformed whether the body is
    #: JSON-ish (True) or not.
    code: int = 0
    json_body: bool = False
    #: Where a truncated body is cut, or which bar is spoiled, as a fraction of its length.
    cut: float = 0.5


NO_FAULT = Fault()


class FaultInjector:
    """Draws a :class:`Fault` per request from a seeded RNG and counts what it drew
    (``injected``: ``"rate-limit-429"``, ``"rate-limit-605"``, ``"http-500"``, ``"http-502"``,
    ``"http-503"``, ``"reset"``, ``"malformed"``, ``"bad-bars"``, ``"slow"``; a ``bad_bars``
    drawn for an answer without bars changes nothing)."""

    def __init__(self, config: FaultConfig, seed: int = 0) -> None:
        self.config = config
        self.seed = seed
        self.injected: dict[str, int] = {}
        self.reset()

    def reset(self) -> None:
        """Forget the counts and restart the random sequences from the seed."""
        self.rng = random.Random(self.seed)
        # Their own sequences, so that turning these on leaves the faults drawn unchanged.
        self._arrival_rng = random.Random(f"arrival:{self.seed}")
        self._drop_rng = random.Random(f"drop:{self.seed}")
        self.injected = {}

    def arrival_delay(self) -> float:
        """Seconds the next request waits before it is admitted (0 without arrival jitter)."""
        spread = self.config.arrival_jitter
        return self._arrival_rng.uniform(0.0, spread) if spread > 0 else 0.0

    def hole(self) -> Callable[[list[Any]], list[Any]] | None:
        """At the ``drop_bars`` rate, what makes the next ``/kline`` page's hole (the page is
        then built one bar longer and handed to it); else None."""
        rate = self.config.drop_bars
        if rate <= 0 or self._drop_rng.random() >= rate:
            return None
        return self._drop_inner

    def _drop_inner(self, bars: list[Any]) -> list[Any]:
        """``bars`` without one bar strictly inside them, or without the oldest when fewer
        than three (then there is no inside to lose)."""
        if len(bars) < 3:
            return bars[1:]
        k = self._drop_rng.randrange(1, len(bars) - 1)
        self._count("drop-bars")
        return bars[:k] + bars[k + 1 :]

    def draw(self) -> Fault:
        cfg = self.config
        if not cfg.active:
            return NO_FAULT
        rng = self.rng
        kind = None
        u = rng.random()
        for name in EXCLUSIVE_KINDS:
            rate = getattr(cfg, name)
            if u < rate:
                kind = name
                break
            u -= rate
        slow = rng.random() < cfg.slow
        delay = 0.0
        if slow:
            delay = cfg.latency + rng.random() * cfg.jitter
            self._count("slow")
        if kind is None:
            return Fault(slow=slow, delay=delay) if slow else NO_FAULT
        code = 0
        if kind == "rate_limit":
            code = rng.choice((429, 605))
        elif kind == "http_5xx":
            code = rng.choice((500, 502, 503))
        elif kind == "bad_bars":
            code = rng.randrange(len(BAD_BARS))
        fault = Fault(kind, slow, delay, code, rng.random() < 0.5, rng.uniform(0.05, 0.95))
        self._count("rate-limit-" + str(code) if kind == "rate_limit" else fault_key(fault))
        return fault

    def _count(self, key: str) -> None:
        self.injected[key] = self.injected.get(key, 0) + 1


def fault_key(fault: Fault) -> str:
    """The key a fault is counted under: ``"429"``/``"605"`` for rate_limit, ``"http-502"``,
    ``"reset"``, ``"malformed"``, ``"bad-bars"``."""
    if fault.kind == "rate_limit":
        return str(fault.code)
    if fault.kind == "http_5xx":
        return f"http-{fault.code}"
    return str(fault.kind).replace("_", "-")


def spoil_bars(body: bytes, fault: Fault) -> bytes | None:
    """A ``/kline`` or ``/batch-kline`` answer with one bar spoiled as ``fault`` says (see
    :data:`BAD_BARS`), or None when ``body`` holds no bar to spoil."""
    doc = orjson.loads(body)
    data = doc.get("data")
    if not isinstance(data, dict) or not isinstance(data.get("kline_list"), list):
        return None
    if "code" in data:  # /kline
        group, key = data, "kline_list"
    else:  # /batch-kline: one of its groups that has bars
        groups = [g for g in data["kline_list"] if g.get("kline_data")]
        if not groups:
            return None
        group, key = groups[min(len(groups) - 1, int(len(groups) * fault.cut))], "kline_data"
    bars = group[key]
    if not bars:
        return None
    k = min(len(bars) - 1, int(len(bars) * fault.cut))
    bar = bars[k]
    variant = BAD_BARS[fault.code]
    if variant in _SPOILED_FIELDS:
        name, value = _SPOILED_FIELDS[variant]
        bar[name] = value
    elif variant == "no-close":
        del bar["close_price"]
    elif variant == "high-below-low":
        bar["high_price"] = repr(float(bar["low_price"]) / 2)
    elif variant == "off-grid":
        bar["timestamp"] = str(int(bar["timestamp"]) + 7)
    elif variant == "future":
        bar["timestamp"] = str(int(bar["timestamp"]) + 3650 * 86_400)
    elif variant == "conflict":
        bars.insert(k + 1, {**bar, "volume": repr(float(bar["volume"] or 0) + 1)})
    elif variant == "mislabelled":
        group["code"] = "GBPUSD" if group["code"] == "EURUSD" else "EURUSD"
    return orjson.dumps(doc)


#: The variants of :data:`BAD_BARS` that set one field of the bar to a value.
_SPOILED_FIELDS: dict[str, tuple[str, str]] = {
    "nan-price": ("close_price", "NaN"),
    "inf-price": ("high_price", "inf"),
    "negative-price": ("low_price", "-1.5"),
    "negative-volume": ("volume", "-100"),
    "before-1970": ("timestamp", "-86400"),
    "not-a-number": ("open_price", "n/a"),
}
