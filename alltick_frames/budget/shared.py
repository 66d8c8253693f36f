"""One token's budget shared across hosts through Redis, and what it does when Redis goes away.

>>> budget = budget_from_url("redis://budget-host:6379/0", "basic", token)  # doctest: +SKIP
>>> AllTick(token, "basic", budget=budget)                                 # doctest: +SKIP

``AllTick(budget="redis://host:6379/0")``, ``$ALLTICK_BUDGET_URL`` and the command line's
``--budget URL`` all come here. The ledger is a :class:`~alltick_frames.budget.RedisLedger`
(see its module for the transaction, the clock and the keys).

The fail-over share
    If Redis becomes unreachable mid-job, each client carries on alone on a local ledger
    seeded with the last state it read, at **1/N of the plan**, where N is the most clients
    the ledger saw writing on the token within a minute (itself included). The seeded state
    keeps every call already made in each window, so nothing bursts at the switch; then N
    clients at 1/N each add up to the plan. Every rate window keeps its number of calls and
    stretches its span N times, the per-minute cap is divided by N and the rest of today's
    cap too. Clients that are not coordinated can still land calls in the same second by
    chance, so a rare 429 remains possible; the budget absorbs it like any rejection. A
    client that never saw the others (it failed before they first wrote) underestimates N:
    that is the one case where the share is not safe, and the server's answers pace it.
"""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Any

from alltick_frames.budget.ledger_redis import RedisLedger
from alltick_frames.budget.pacing import Budget, token_fingerprint
from alltick_frames.budget.slots import MINUTE, LedgerState, day_index, day_key
from alltick_frames.core.clock import Clock
from alltick_frames.core.plans import Plan, Rate, get_plan

#: The environment variable that names the budget's Redis when ``budget=`` is not given.
BUDGET_URL_ENV = "ALLTICK_BUDGET_URL"
#: URL schemes redis-py connects with.
SCHEMES = ("redis://", "rediss://", "unix://")
#: Seconds a Redis command may take before the budget fails over (URL query overrides it).
SOCKET_TIMEOUT = 2.0
#: Seconds added to the plan's longest window for how long a call is kept in Redis: covers
#: the widest guard the budget may use.
KEEP_MARGIN = 1.0


def plan_share(plan: Plan, clients: int, used_today: int = 0) -> Plan:
    """``plan`` cut to one client's share of ``clients``: every rate window N times longer,
    the per-minute cap and what is left of today's cap (``used_today`` calls made) divided by
    N. The plan keeps its name and its size caps."""
    if clients <= 1:
        return plan

    def part(rate: Rate) -> Rate:
        return Rate(rate.calls, rate.per * clients)

    return replace(
        plan,
        endpoint_rates={e: part(r) for e, r in plan.endpoint_rates.items()},
        all_endpoints=None if plan.all_endpoints is None else part(plan.all_endpoints),
        suspension_rate=part(plan.suspension_rate),
        per_minute=max(1, plan.per_minute // clients),
        per_day=used_today + max(0, plan.per_day - used_today) // clients,
    )


def longest_window(plan: Plan) -> float:
    """The longest sliding window of ``plan``, seconds (the per-minute cap at least)."""
    rates = [*plan.endpoint_rates.values(), plan.suspension_rate]
    if plan.all_endpoints is not None:
        rates.append(plan.all_endpoints)
    return max(MINUTE, *(r.per for r in rates))


class SharedBudget(Budget):
    """A :class:`Budget` on a :class:`RedisLedger`, on the server's clock, that cuts its plan
    to its share when the ledger fails over (see the module docstring)."""

    ledger: RedisLedger

    def __init__(self, plan: Plan | str, ledger: RedisLedger, **options: Any) -> None:
        super().__init__(plan, ledger=ledger, clock=ledger.clock, **options)
        ledger.on_failover = self._fail_over

    def _fail_over(self, clients: int, state: LedgerState) -> str:
        today = day_key(day_index(self.clock.now()))
        self.plan = plan_share(self.plan, clients, state.days.get(today, 0))
        self._rules.clear()  # built from the whole plan
        return "the whole plan" if clients <= 1 else f"1/{clients} of the plan"


def budget_from_url(
    url: str,
    plan: Plan | str,
    token: str,
    *,
    local_clock: Clock | None = None,
    **options: Any,
) -> SharedBudget:
    """The budget of ``token`` in the Redis at ``url`` (``redis://[:password@]host:6379/0``,
    ``rediss://`` for TLS, ``unix:///path.sock``); only the token's fingerprint is stored.

    Connects at once, so a wrong URL or a server that is down fails here with
    ``ConnectionError``, before any call. Connection options go in the URL's query
    (``?socket_timeout=5``); by default a command that takes over 2 s counts as Redis being
    unreachable. ``local_clock`` is this host's clock (tests skew it); ``options`` go to
    :class:`Budget`. Needs redis-py: ``pip install 'alltick-frames[redis]'``.
    """
    if not isinstance(url, str) or not url.startswith(SCHEMES):
        raise ValueError(
            f"a budget URL starts with {', '.join(SCHEMES)}, e.g. redis://host:6379/0; got "
            f"{_scheme(url)}"
        )
    try:
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry
    except ImportError:
        raise ImportError(
            "a budget in Redis needs redis-py: pip install 'alltick-frames[redis]'"
        ) from None
    plan = get_plan(plan)
    client = redis.Redis.from_url(
        url,
        socket_timeout=SOCKET_TIMEOUT,
        socket_connect_timeout=SOCKET_TIMEOUT,
        retry=Retry(NoBackoff(), 1),  # one quick retry of a dropped connection, no backoff
    )
    ledger = RedisLedger(
        client,
        token_fingerprint(token),
        keep=longest_window(plan) + KEEP_MARGIN,
        local_clock=local_clock,
    )
    budget = SharedBudget(plan, ledger, **options)
    try:
        ledger.connect()
    except ConnectionError as exc:
        raise ConnectionError(
            f"{exc}: check the budget URL (budget=, --budget or ${BUDGET_URL_ENV})"
        ) from None
    return budget


def budget_url_from_env() -> str | None:
    """``$ALLTICK_BUDGET_URL``, or None when unset or empty."""
    return os.environ.get(BUDGET_URL_ENV) or None


def _scheme(url: object) -> str:
    """What to show of a rejected URL: its scheme only (the rest may hold a password)."""
    if not isinstance(url, str):
        return type(url).__name__
    return repr(url.split("://", 1)[0] + "://...") if "://" in url else "no scheme"
