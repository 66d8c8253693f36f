"""How to configure an emulator: tokens and their plans, clocks, faults and the §8 switches."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from alltick_frames.core.plans import Plan, get_plan, load_plan_file, plan_from_dict
from alltick_frames.emulator.clock import EmulatorClock, parse_moment
from alltick_frames.emulator.faults import FaultConfig
from alltick_frames.emulator.ws_rules import WsConfig

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
    :class:`~alltick_frames.core.plans.Plan`, a :class:`TokenSpec`, or a dict
    ``{"plan": ..., "basket": [codes]}``. With no tokens, the one token ``"demo"`` gets the
    default plan. Any other token is answered ``ret`` 401.

    ``plan`` is the default plan (a name or a Plan); ``plan_file`` loads a custom plan from
    JSON or TOML, which becomes the default plan when ``plan`` is not given and can be named
    by tokens like a built-in plan.

    ``now`` fixes the market clock (ISO-8601, Unix seconds or a datetime); None follows real
    time. ``clock`` is the rate clock (a fresh real-time one unless given); ``frozen_clock``
    freezes that fresh clock at ``clock_start`` (default: now).

    ``mirror_status`` answers 401 and 429 with the same HTTP status; ``oversize`` chooses
    between cutting oversize requests to the cap (``"cut"``) and refusing them with ``"603"``.

    Switches for readings of the docs other than the default (all off; README "Assumptions"):
    ``lenient_free`` drops Free's "1 call per 10 s across all endpoints" (each endpoint and
    10 a minute remain); ``free_eod_only`` serves Free tokens last prices and end-of-day bars
    only (603 for intraday bars and order books); ``hard_code_cap`` cuts every plan's code
    lists at ``codes_per_call``, not only Free's; ``page_energy_cfd`` lets energy and CFD codes
    page back with ``kline_timestamp_end``; ``suspension_paging`` pages the halt service when
    ``page`` or ``size`` is sent; ``old_invalid_codes`` answers an invalid envelope with
    ``ret`` 201 and invalid data with 202 instead of 400; ``error_data`` adds ``"data": {}`` to
    error bodies and ``error_trace=False`` leaves ``trace`` out of them; ``refusals_count``
    counts a call answered 429/605 in every window it was judged by, as if admitted (the
    default reading: a refused call consumes nothing).

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
    lenient_free: bool = False
    free_eod_only: bool = False
    hard_code_cap: bool = False
    page_energy_cfd: bool = False
    suspension_paging: bool = False
    old_invalid_codes: bool = False
    error_data: bool = False
    error_trace: bool = True
    refusals_count: bool = False
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

    def to_dict(self) -> dict[str, Any]:
        """This config as plain JSON data, for an emulator in another process.

        Tokens are written with their resolved plans (so custom plans travel too), the fault
        settings in full, and the rate clock as its current reading when it is frozen (a
        running clock is real time in any process). :meth:`from_dict` reads it back.
        """
        skip = {"tokens", "plan", "plan_file", "faults", "clock", "clock_start", "frozen_clock"}
        out: dict[str, Any] = {
            f.name: getattr(self, f.name) for f in fields(self) if f.init and f.name not in skip
        }
        out["tokens"] = {
            token: {
                "plan": spec.plan.to_dict(),
                "basket": None if spec.basket is None else sorted(spec.basket),
            }
            for token, spec in self.resolved_tokens().items()
        }
        out["faults"] = self.fault_config.to_dict()
        out["ws"] = asdict(WsConfig.coerce(self.ws))
        out["now"] = self.market_now
        clock = self.rate_clock.state()
        out["frozen_clock"] = bool(clock["frozen"])
        out["clock_start"] = clock["now"] if clock["frozen"] else None
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EmulatorConfig:
        """The inverse of :meth:`to_dict`."""
        values = dict(data)
        tokens = {
            token: TokenSpec(
                plan_from_dict(spec["plan"]),
                None if spec.get("basket") is None else frozenset(spec["basket"]),
            )
            for token, spec in values.pop("tokens", {}).items()
        }
        return cls(tokens=tokens or None, **values)

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
