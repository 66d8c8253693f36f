"""How to configure an emulator: tokens and their plans, clocks, faults and the §8 switches."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from alltick_frames.emulator.clock import EmulatorClock, parse_moment
from alltick_frames.emulator.faults import FaultConfig
from alltick_frames.emulator.ws_rules import WsConfig
from alltick_frames.plans import Plan, get_plan, load_plan_file

OversizeMode = Literal["cut", "603"]
DEFAULT_TOKEN = "demo"


@dataclass(frozen=True, slots=True)
class TokenSpec:
    """A token's plan, optionally narrowed to an explicit basket of codes (others get 604)."""

    plan: Plan
    basket: frozenset[str] | None = None


TokenValue = str | Plan | TokenSpec | Mapping[str, Any]


@dataclass
class EmulatorConfig:
    """Everything an emulator needs; every field has a sensible default.

    ``tokens`` maps each token string clients send to its plan: a plan name (``"basic"``), a
    :class:`~alltick_frames.plans.Plan`, a :class:`TokenSpec`, or a dict
    ``{"plan": ..., "basket": [codes]}``. With no tokens, the one token ``"demo"`` gets the
    default plan. Any other token is answered ``ret`` 401.

    ``plan`` is the default plan (a name or a Plan); ``plan_file`` loads a custom plan from
    JSON or TOML, which becomes the default plan when ``plan`` is not given and can be named
    by tokens like a built-in plan.

    ``now`` fixes the market clock (ISO-8601, Unix seconds or a datetime); None follows real
    time. ``clock`` is the rate clock (a fresh real-time one unless given); ``frozen_clock``
    freezes that fresh clock at ``clock_start`` (default: now).

    ``mirror_status`` answers 401 and 429 with the same HTTP status; ``oversize`` chooses
    between cutting oversize requests to the cap (``"cut"``) and refusing them with ``"603"``;
    ``strict_free`` adds "1 call per 10 s across all endpoints" to the Free plan.

    ``ws`` sets the WebSocket's choices and faults: a
    :class:`~alltick_frames.emulator.ws_rules.WsConfig` or a dict of its fields.
    """

    tokens: Mapping[str, TokenValue] | None = None
    plan: str | Plan | None = None
    plan_file: str | Path | None = None
    now: str | float | datetime | None = None
    faults: FaultConfig | Mapping[str, float] | None = None
    seed: int = 0
    mirror_status: bool = False
    oversize: OversizeMode = "cut"
    strict_free: bool = False
    clock: EmulatorClock | None = None
    frozen_clock: bool = False
    clock_start: str | float | datetime | None = None
    ws: WsConfig | Mapping[str, Any] | None = None
    _file_plan: Plan | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.oversize not in ("cut", "603"):
            raise ValueError(f"oversize must be 'cut' or '603', not {self.oversize!r}")
        if self.plan_file is not None:
            self._file_plan = load_plan_file(self.plan_file)
        self.faults = FaultConfig.coerce(self.faults)  # validate early
        self.ws = WsConfig.coerce(self.ws)
        if self.now is not None:
            self.now = parse_moment(self.now)
        if self.clock is None:
            start = None if self.clock_start is None else parse_moment(self.clock_start)
            self.clock = EmulatorClock(start, frozen=self.frozen_clock)
        self.resolved_tokens()  # unknown plans fail here, not on the first request

    @property
    def market_now(self) -> float | None:
        """The fixed market clock in Unix seconds, or None for real time."""
        return None if self.now is None else parse_moment(self.now)

    @property
    def fault_config(self) -> FaultConfig:
        return FaultConfig.coerce(self.faults)

    @property
    def rate_clock(self) -> EmulatorClock:
        assert self.clock is not None
        return self.clock

    def resolve_plan(self, plan: str | Plan | Path) -> Plan:
        """A plan name (built-in or the plan file's), a plan file path, or a Plan."""
        if self._file_plan is not None and plan == self._file_plan.name:
            return self._file_plan
        return get_plan(plan)

    def default_plan(self) -> Plan:
        if self.plan is not None:
            return self.resolve_plan(self.plan)
        return self._file_plan or get_plan("basic")

    def resolved_tokens(self) -> dict[str, TokenSpec]:
        """Every accepted token and its :class:`TokenSpec`."""
        if not self.tokens:
            return {DEFAULT_TOKEN: TokenSpec(self.default_plan())}
        return {token: self._spec(token, value) for token, value in self.tokens.items()}

    def _spec(self, token: str, value: TokenValue) -> TokenSpec:
        if not token:
            raise ValueError("a token must be a non-empty string")
        if isinstance(value, TokenSpec):
            return value
        if isinstance(value, str | Plan):
            return TokenSpec(self.resolve_plan(value))
        plan = value.get("plan")
        basket: Iterable[str] | None = value.get("basket")
        return TokenSpec(
            self.resolve_plan(plan) if plan is not None else self.default_plan(),
            None if basket is None else frozenset(basket),
        )
