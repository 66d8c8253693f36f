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
    delay the answer by ``latency`` seconds plus up to ``jitter`` more (combines with the rest).

Apart from these, ``arrival_jitter`` delays *every* request by a uniform 0 to
``arrival_jitter`` seconds before the emulator admits and counts it, as a network delays a
request on its way in: the rate windows then see the request when it arrives, not when the
client sent it, and two requests may arrive in the other order. ``slow`` delays only the
answer, after the request was counted.

``rate_limit``, ``http_5xx``, ``reset`` and ``malformed`` exclude each other, so their rates
may add up to at most 1. Every random choice comes from one ``random.Random(seed)``, so a run
that sends the same requests in the same order sees the same faults. A call hit by
``http_5xx``, ``reset`` or ``malformed`` was still processed and counted against the quota, as
when a proxy fails after the server answered.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

#: The kinds that replace the answer, in the order their rates are stacked.
EXCLUSIVE_KINDS: tuple[str, ...] = ("rate_limit", "http_5xx", "reset", "malformed")
KINDS: tuple[str, ...] = (*EXCLUSIVE_KINDS, "slow")


@dataclass(frozen=True, slots=True)
class FaultConfig:
    """Per-request probabilities of each fault kind, and the delay of ``slow``."""

    rate_limit: float = 0.0
    http_5xx: float = 0.0
    reset: float = 0.0
    malformed: float = 0.0
    slow: float = 0.0
    #: Seconds a ``slow`` answer is held back ...
    latency: float = 0.5
    #: ... plus a uniform extra of up to this many seconds.
    jitter: float = 0.0
    #: Every request waits a uniform 0 to this many seconds before it is admitted and counted.
    arrival_jitter: float = 0.0

    def __post_init__(self) -> None:
        for kind in KINDS:
            rate = getattr(self, kind)
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"fault rate {kind}={rate} must lie in [0, 1]")
        total = sum(getattr(self, k) for k in EXCLUSIVE_KINDS)
        if total > 1.0 + 1e-9:
            raise ValueError(
                f"rate_limit + http_5xx + reset + malformed = {total:.3f}; they exclude each "
                "other, so their sum must be at most 1"
            )
        if self.latency < 0 or self.jitter < 0 or self.arrival_jitter < 0:
            raise ValueError("latency, jitter and arrival_jitter must be >= 0 seconds")

    @classmethod
    def overall(cls, rate: float, **overrides: float) -> FaultConfig:
        """``rate`` split evenly over the five kinds, then any per-kind ``overrides``."""
        share = rate / len(KINDS)
        return cls(**{**dict.fromkeys(KINDS, share), **overrides})

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
    #: The concrete variant: the ``ret`` for rate_limit, the status for http_5xx, and for
    #: http_5xx/malformed whether the body is JSON-ish (True) or not.
    code: int = 0
    json_body: bool = False
    #: Where a truncated body is cut, as a fraction of its length.
    cut: float = 0.5


NO_FAULT = Fault()


class FaultInjector:
    """Draws a :class:`Fault` per request from a seeded RNG and counts what it injected
    (``injected``: ``"rate-limit-429"``, ``"rate-limit-605"``, ``"http-500"``, ``"http-502"``,
    ``"http-503"``, ``"reset"``, ``"malformed"``, ``"slow"``)."""

    def __init__(self, config: FaultConfig, seed: int = 0) -> None:
        self.config = config
        self.seed = seed
        self.injected: dict[str, int] = {}
        self.reset()

    def reset(self) -> None:
        """Forget the counts and restart the random sequences from the seed."""
        self.rng = random.Random(self.seed)
        # Its own sequence, so that turning arrival jitter on leaves the faults drawn unchanged.
        self._arrival_rng = random.Random(f"arrival:{self.seed}")
        self.injected = {}

    def arrival_delay(self) -> float:
        """Seconds the next request waits before it is admitted (0 without arrival jitter)."""
        spread = self.config.arrival_jitter
        return self._arrival_rng.uniform(0.0, spread) if spread > 0 else 0.0

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
        fault = Fault(kind, slow, delay, code, rng.random() < 0.5, rng.uniform(0.05, 0.95))
        self._count("rate-limit-" + str(code) if kind == "rate_limit" else fault_key(fault))
        return fault

    def _count(self, key: str) -> None:
        self.injected[key] = self.injected.get(key, 0) + 1


def fault_key(fault: Fault) -> str:
    """The key a fault is counted under: ``"429"``/``"605"`` for rate_limit, ``"http-502"``,
    ``"reset"``, ``"malformed"``."""
    if fault.kind == "rate_limit":
        return str(fault.code)
    if fault.kind == "http_5xx":
        return f"http-{fault.code}"
    return str(fault.kind)
