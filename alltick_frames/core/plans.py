"""AllTick plans as data: every rate, cap and size limit in one table.

Limits are counted per token. A call must fit *every* window at once:

* its endpoint's own rate (``endpoint_rates``), e.g. Basic ``/kline`` 1 call per second,
  ``/batch-kline`` 1 call per 3 seconds;
* the all-endpoints rate (``all_endpoints``), e.g. Basic 1 call per second in total;
* the per-minute and the per-day caps (the day resets at 00:00 UTC+8).

Size caps bound a single call: ``batch_groups`` (code x kline_type groups per ``/batch-kline``),
``codes_per_call`` (codes per ``/trade-tick``, ``/depth-tick``, ``/static_info``),
``kline_bars`` (bars per ``/kline``) and ``batch_bars`` (bars per batch group).

The client derives chunk sizes, pacing and dry-run estimates from this table, and the emulator
enforces the same numbers; nothing else in the package hard-codes a limit. Custom plans load
from a JSON or TOML file with the same field names::

    {"name": "fast", "base": "professional",
     "endpoint_rates": {"kline": [100, 1.0]}, "all_endpoints": [200, 1.0],
     "per_minute": 12000}

``base`` (optional) names a built-in plan whose values fill every field the file leaves out.

Where AllTick's pages allow two readings, the table takes the **strictest documented one**, so
a client that paces by it is refused by neither (the README's "What the client assumes" lists
the same choices, with the pages they rest on):

* **Free, all endpoints together: 1 call per 10 s** (``STRICT_FREE_ALL_ENDPOINTS``). Every
  endpoint page says "only one interface request every 10 seconds" (e.g.
  ``en/api-reference/stock/depth-tick.mdx``), and the restriction table also says "10 per
  minute". The first binds across endpoints, so Free is paced at one call per 10 s in all,
  whatever a server allows: ``trades()`` then ``depth()`` then ``klines()`` go 10 s apart.
  The per-endpoint 1 per 10 s and the 10 a minute stay in the table and change nothing more.
* **Free, batch groups: 5**, not the 10 one endpoint page gives (every restriction page says 5).
* **Free, daily cap: 1,000**, the 2026 figure, not the 14,400 older pages show.
* **Codes per call: 50** on paid plans, a "recommendation" that the table keeps as a cap.
* **Windows are sliding**, not fixed: a window of S seconds counts every call in the last S
  seconds, so no two windows' worth of calls can meet at a boundary (the budget applies it).
* **The stock and forex base paths share** each endpoint's window (limits are per token and
  per endpoint name), and the suspension service counts against the per-minute and per-day
  caps although it is a service of its own.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

#: Endpoint names, as used for rate windows, statistics and failure rows.
KLINE = "kline"
BATCH_KLINE = "batch-kline"
TRADE_TICK = "trade-tick"
DEPTH_TICK = "depth-tick"
STATIC_INFO = "static_info"
SUSPENSION = "suspension"
ENDPOINTS: tuple[str, ...] = (KLINE, BATCH_KLINE, TRADE_TICK, DEPTH_TICK, STATIC_INFO)

#: The ten fixed symbols of the Free plan. AllTick's index spellings live in a code sheet that
#: is not available offline; this project spells the four Free indices as below (documented in
#: the README), and the emulator's catalogue uses the same spellings.
FREE_SYMBOLS: frozenset[str] = frozenset(
    {
        "USDJPY", "GOLD", "USOIL", "BTCUSDT", "TSLA.US", "700.HK",
        "HSI.HK", "DJI.US", "000001.SH", "399001.SZ",
    }
)  # fmt: skip

#: Seconds in the daily-cap day's offset from UTC: the day resets at 00:00 UTC+8.
DAY_RESET_UTC_OFFSET = 8 * 3600


@dataclass(frozen=True, slots=True)
class Rate:
    """At most ``calls`` calls in any sliding window of ``per`` seconds."""

    calls: int
    per: float

    def __post_init__(self) -> None:
        if self.calls < 1 or self.per <= 0:
            raise ValueError(f"a rate needs calls >= 1 and per > 0, got {self.calls}/{self.per}s")

    @property
    def interval(self) -> float:
        """Average seconds between calls when the rate is used in full."""
        return self.per / self.calls


@dataclass(frozen=True, slots=True)
class Plan:
    """The limits of one AllTick plan. See the module docstring for what each field bounds."""

    name: str
    endpoint_rates: Mapping[str, Rate]
    all_endpoints: Rate | None
    per_minute: int
    per_day: int
    batch_groups: int
    codes_per_call: int
    kline_bars: int = 500
    batch_bars: int = 2
    #: How far back history reaches, in days (None: no limit by age).
    history_days: int | None = 365
    #: How many bars back history reaches (market plans: about the latest 500).
    history_bars: int | None = None
    #: Markets a market plan covers (``None``: every market and asset class).
    markets: frozenset[str] | None = None
    #: The fixed symbol basket of a plan (``None``: any code in the catalogue).
    symbols: frozenset[str] | None = None
    suspension_rate: Rate = field(default_factory=lambda: Rate(1, 60.0))
    #: WebSocket connections per base path (the stock and the forex socket count apart).
    ws_connections: int = 1
    #: Codes per WebSocket subscription (each of trades and order books).
    ws_codes: int = 100
    #: Least seconds between two WebSocket reconnection attempts (10 on Free, 3 when paid).
    ws_reconnect: float = 3.0

    def rate_for(self, endpoint: str) -> Rate:
        """The per-endpoint rate of ``endpoint`` (suspension endpoints share one rule)."""
        if endpoint.startswith(SUSPENSION):
            return self.suspension_rate
        return self.endpoint_rates[endpoint]

    def with_overrides(self, **changes: Any) -> Plan:
        """A copy with some fields replaced, e.g. ``plan.with_overrides(per_day=10)``."""
        return replace(self, **_coerce(changes))

    def to_dict(self) -> dict[str, Any]:
        """The plan in the plan-file format (round-trips through :func:`plan_from_dict`)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Rate):
                value = [value.calls, value.per]
            elif isinstance(value, Mapping):
                value = {k: [r.calls, r.per] for k, r in value.items()}
            elif isinstance(value, frozenset):
                value = sorted(value)
            out[f.name] = value
        return out


def _rates(kline: Rate, batch: Rate) -> dict[str, Rate]:
    return {
        KLINE: kline,
        BATCH_KLINE: batch,
        TRADE_TICK: kline,
        DEPTH_TICK: kline,
        STATIC_INFO: kline,
    }


_PRO_RATES = _rates(Rate(20, 1.0), Rate(1, 1.0))

#: Free's all-endpoints rate by the strictest reading of "only one interface request every 10
#: seconds" (alltick-api.md §8 #4): one call per 10 s across every endpoint. The Free plan
#: paces by it; the emulator enforces it unless ``lenient_free``.
STRICT_FREE_ALL_ENDPOINTS = Rate(1, 10.0)

#: The built-in plans, by the names used everywhere a plan is named.
PLANS: dict[str, Plan] = {
    "free": Plan(
        name="free",
        endpoint_rates=_rates(Rate(1, 10.0), Rate(1, 10.0)),
        # The strictest reading of "one interface request every 10 seconds": across all
        # endpoints (see the module docstring), not the looser "10 per minute".
        all_endpoints=STRICT_FREE_ALL_ENDPOINTS,
        per_minute=10,
        per_day=1_000,
        batch_groups=5,
        codes_per_call=5,
        history_days=365,
        symbols=FREE_SYMBOLS,
        ws_connections=1,
        ws_codes=5,
        ws_reconnect=10.0,
    ),
    "basic": Plan(
        name="basic",
        endpoint_rates=_rates(Rate(1, 1.0), Rate(1, 3.0)),
        all_endpoints=Rate(1, 1.0),
        per_minute=60,
        per_day=86_400,
        batch_groups=100,
        codes_per_call=50,
        history_days=365,
        ws_connections=1,
        ws_codes=100,
    ),
    "premium": Plan(
        name="premium",
        endpoint_rates=_rates(Rate(10, 1.0), Rate(1, 2.0)),
        all_endpoints=Rate(10, 1.0),
        per_minute=600,
        per_day=864_000,
        batch_groups=200,
        codes_per_call=50,
        history_days=3 * 365,
        ws_connections=3,
        ws_codes=200,
    ),
    "professional": Plan(
        name="professional",
        endpoint_rates=_PRO_RATES,
        all_endpoints=Rate(20, 1.0),
        per_minute=1_200,
        per_day=1_728_000,
        batch_groups=500,
        codes_per_call=50,
        history_days=5 * 365,
        ws_connections=10,
        ws_codes=3_000,
    ),
}
for _name, _markets in (("all-hk", {"HK"}), ("all-cn", {"SH", "SZ"}), ("all-us", {"US"})):
    PLANS[_name] = replace(
        PLANS["professional"],
        name=_name,
        history_days=None,
        history_bars=500,
        markets=frozenset(_markets),
    )

#: WebSocket rules every plan shares (alltick-api.md §6): a heartbeat every 10 s, the socket
#: closed after 30 s without one, requests on one connection at least 1 s apart and
#: subscriptions on different connections at least 3 s apart.
WS_HEARTBEAT = 10.0
WS_HEARTBEAT_TIMEOUT = 30.0
WS_REQUEST_SPACING = 1.0
WS_SUBSCRIBE_SPACING = 3.0


def _rate(value: Any) -> Rate:
    if isinstance(value, Rate):
        return value
    if isinstance(value, Mapping):
        return Rate(int(value["calls"]), float(value["per"]))
    calls, per = value
    return Rate(int(calls), float(per))


def _coerce(values: Mapping[str, Any]) -> dict[str, Any]:
    known = {f.name for f in fields(Plan)}
    unknown = set(values) - known
    if unknown:
        raise ValueError(f"unknown plan field(s) {sorted(unknown)}; known: {sorted(known)}")
    out = dict(values)
    if "endpoint_rates" in out:
        out["endpoint_rates"] = {k: _rate(v) for k, v in out["endpoint_rates"].items()}
    for key in ("all_endpoints", "suspension_rate"):
        if out.get(key) is not None:
            out[key] = _rate(out[key])
    for key in ("markets", "symbols"):
        if out.get(key) is not None:
            out[key] = frozenset(out[key])
    return out


def plan_from_dict(data: Mapping[str, Any]) -> Plan:
    """Build a plan from plan-file fields; ``base`` names a built-in plan to start from."""
    data = dict(data)
    base_name = data.pop("base", None)
    if "name" not in data:
        raise ValueError("a plan needs a 'name'")
    if base_name is None:
        values = _coerce(data)
        missing = {
            f.name
            for f in fields(Plan)
            if f.name not in values and f.default is MISSING and f.default_factory is MISSING
        }
        if missing:
            raise ValueError(f"plan {data['name']!r} lacks {sorted(missing)} (or give a 'base')")
        plan = Plan(**values)
    else:
        base = get_plan(base_name)
        rates = dict(base.endpoint_rates)
        rates.update(_coerce({"endpoint_rates": data.pop("endpoint_rates", {})})["endpoint_rates"])
        plan = base.with_overrides(endpoint_rates=rates, **data)
    missing_rates = set(ENDPOINTS) - set(plan.endpoint_rates)
    if missing_rates:
        raise ValueError(f"plan {plan.name!r} has no rate for {sorted(missing_rates)}")
    return plan


def load_plan_file(path: str | Path) -> Plan:
    """Load a custom plan from a ``.json`` or ``.toml`` file (see the module docstring)."""
    import tomllib  # here, not at the top: only plan files need it

    path = Path(path)
    text = path.read_text(encoding="utf-8")
    data = tomllib.loads(text) if path.suffix.lower() == ".toml" else json.loads(text)
    return plan_from_dict(data)


def get_plan(plan: str | Plan | Path) -> Plan:
    """Resolve a built-in plan name, a plan file path, or a :class:`Plan` to a :class:`Plan`."""
    if isinstance(plan, Plan):
        return plan
    if isinstance(plan, Path) or str(plan).endswith((".json", ".toml")):
        return load_plan_file(plan)
    try:
        return PLANS[str(plan).lower()]
    except KeyError:
        raise ValueError(
            f"unknown plan {plan!r}; use one of {', '.join(PLANS)} or a .json/.toml plan file"
        ) from None
