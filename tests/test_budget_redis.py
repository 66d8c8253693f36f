"""The Redis ledger against a real ``redis-server``: atomic reservations on the server's clock,
keys that expire, no token anywhere, and a fail-over that neither crashes nor bursts."""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
import time
from typing import Any

import pytest
import redis
from test_client_support import SkewedClock, fast_plan

from alltick_frames import AllTick
from alltick_frames.budget import LedgerState, token_fingerprint
from alltick_frames.budget.ledger_redis import VERSION_BYTES, LedgerClock, decode, record_of
from alltick_frames.budget.shared import SharedBudget, budget_from_url, plan_share
from alltick_frames.budget.slots import (
    DAY_TICKS,
    OFFSET_TICKS,
    day_key,
    day_start_ticks,
    to_ticks,
)
from alltick_frames.cli import build_parser
from alltick_frames.cli.fetch import make_client
from alltick_frames.core.plans import get_plan

TOKEN = "rd-SECRET-4c1b9e7a2f80d356-token"
GUARD = 0.025


def shared(url: str, plan: Any = "basic", **options: Any) -> SharedBudget:
    options.setdefault("guard", GUARD)
    return budget_from_url(url, plan, TOKEN, **options)


def test_reservations_are_paced_on_the_servers_clock_whatever_the_hosts(redis_server) -> None:
    """Two hosts, one 0.3 s fast and one 0.3 s slow, take Basic's one-a-second slots from one
    ledger: the slots interleave exactly, dated by Redis, and each host's offset says its skew
    (Redis and the test share this machine's true clock)."""
    fast = shared(redis_server.url, local_clock=SkewedClock(+0.3))
    slow = shared(redis_server.url, local_clock=SkewedClock(-0.3))
    try:
        before = time.time()
        slots = [b.reserve("kline") for b in (fast, slow, fast, slow)]
        assert slots[0] == pytest.approx(before, abs=0.05)
        assert [round(b - a, 6) for a, b in itertools.pairwise(slots)] == [1.025] * 3
        assert fast.clock.offset == pytest.approx(-0.3, abs=0.02)
        assert slow.clock.offset == pytest.approx(+0.3, abs=0.02)
        assert fast.clock.now() == pytest.approx(time.time(), abs=0.02)
        assert fast.ledger.clients == slow.ledger.clients == 2
        assert fast.usage()["calls_today"] == 4
    finally:
        fast.close()
        slow.close()


async def test_a_host_enters_its_slot_on_time_by_its_own_skewed_clock(redis_server) -> None:
    budget = shared(redis_server.url, local_clock=SkewedClock(-0.3))
    try:
        await budget.acquire("kline")
        slot = await budget.acquire("kline")
        entered = time.time()
        assert entered >= slot - 0.002  # never early (0.3 s early without the offset)
        assert entered - slot < 0.1
    finally:
        budget.close()


def test_keys_hold_no_token_and_expire_with_their_windows(redis_server) -> None:
    budget = shared(redis_server.url)
    try:
        budget.reserve("kline")
        slot = budget.reserve("kline")
        r = redis.Redis.from_url(redis_server.url)
        fp = token_fingerprint(TOKEN)
        keys = sorted(k.decode() for k in r.keys("*"))
        day = budget.usage()["day"]
        prefix = f"alltick-frames:{{{fp}}}"
        assert keys == [f"{prefix}:budget", f"{prefix}:clients", f"{prefix}:day:{day}"]
        for key in keys:
            assert TOKEN not in key
            value = r.get(key) if r.type(key) == b"string" else repr(r.zrange(key, 0, -1))
            assert TOKEN.encode() not in (value if isinstance(value, bytes) else value.encode())
        # The state outlives its last reservation by the longest window (60 s) + 1 s.
        state_ttl = r.pttl(f"{prefix}:budget") / 1000
        assert state_ttl == pytest.approx(slot - time.time() + 61.0, abs=0.5)
        # A day's count lives until that UTC+8 day ends (+ the same 61 s).
        now = to_ticks(time.time())
        ends = day_start_ticks((now + OFFSET_TICKS) // DAY_TICKS + 1) / 1e6
        assert r.pttl(f"{prefix}:day:{day}") / 1000 == pytest.approx(ends - time.time() + 61, abs=1)
        assert int(r.get(f"{prefix}:day:{day}")) == 2
    finally:
        budget.close()
    assert r.exists(f"{prefix}:clients") == 0  # a closed client leaves the count at once


def test_an_update_that_loses_the_race_runs_again_on_the_fresh_state(redis_server) -> None:
    """Another host writes between this update's read and its commit: EXEC refuses, and the
    update runs again on what that host wrote, so both reservations stand."""
    mine, theirs = shared(redis_server.url), shared(redis_server.url)
    runs: list[int] = []
    their_slots: list[float] = []

    def reserve_while_another_host_writes(state: LedgerState) -> int:
        runs.append(len(state.calls.get("endpoint:kline", [])))
        if len(runs) == 1:
            their_slots.append(theirs.reserve("kline"))  # commits while our update is open
        return mine._reserve_in("kline", state)[0]

    try:
        slot = mine.ledger.update(reserve_while_another_host_writes)
        assert runs == [0, 1] and mine.ledger.conflicts == 1
        assert slot == to_ticks(their_slots[0] + 1.025)  # behind theirs, not on top of it
        assert mine.usage()["calls_today"] == 2
    finally:
        mine.close()
        theirs.close()


def test_the_plans_share_after_a_fail_over() -> None:
    basic = get_plan("basic")
    assert plan_share(basic, 1) is basic
    half = plan_share(basic, 2, used_today=400)
    assert half.name == "basic" and half.batch_groups == basic.batch_groups
    assert half.rate_for("kline").calls == 1 and half.rate_for("kline").per == 2.0
    assert half.rate_for("batch-kline").per == 6.0 and half.all_endpoints.per == 2.0
    assert half.rate_for("suspension/sse").per == 120.0
    assert half.per_minute == 30 and half.per_day == 400 + (86_400 - 400) // 2


def test_redis_killed_the_budget_fails_over_once_without_a_burst(redis_server, caplog) -> None:
    """Two clients shared the token; Redis dies. The next reservation neither raises nor
    jumps ahead of the calls already granted: the local ledger starts from the last state
    read, at half the plan (two clients were seen)."""
    one, two = shared(redis_server.url), shared(redis_server.url)
    try:
        granted = [one.reserve("kline"), two.reserve("kline"), one.reserve("kline")]
        redis_server.kill()
        caplog.set_level(logging.WARNING, logger="alltick_frames")
        after = [one.reserve("kline") for _ in range(3)]
        assert after[0] >= granted[-1] + 1.025
        assert [round(b - a, 6) for a, b in itertools.pairwise(after)] == [2.025] * 2
        failover = one.ledger.failover
        assert failover is not None and "1/2 of the plan" in failover
        assert "2 client(s)" in failover and "unusable since" in failover
        assert [r.getMessage() for r in caplog.records] == [f"budget: {failover}"]
        assert one.usage()["calls_today"] == 6
    finally:
        one.close()
        two.close()


def test_bad_urls_fail_before_any_call_and_never_show_a_password(redis_server) -> None:
    with pytest.raises(ValueError, match=r"redis://host:6379/0; got 'http://\.\.\.'"):
        budget_from_url("http://user:hunter2@host/0", "basic", TOKEN)
    dead = f"redis://:hunter2@127.0.0.1:{redis_server.port}/0"
    redis_server.kill()
    with pytest.raises(ConnectionError, match="cannot reach the budget's Redis") as caught:
        budget_from_url(dead, "basic", TOKEN)
    assert "hunter2" not in str(caught.value) and "--budget" in str(caught.value)


def test_a_url_or_the_environment_chooses_the_redis_budget(
    redis_server, monkeypatch, tmp_path
) -> None:
    client = AllTick(TOKEN, "basic", "http://127.0.0.1:9", cache=False, budget=redis_server.url)
    assert isinstance(client.budget, SharedBudget)
    assert "hunter2" not in repr(client.budget)
    asyncio.run(client.close())
    monkeypatch.setenv("ALLTICK_BUDGET_URL", redis_server.url)
    client = AllTick(TOKEN, "basic", "http://127.0.0.1:9", cache=False)
    assert isinstance(client.budget, SharedBudget)
    asyncio.run(client.close())
    monkeypatch.delenv("ALLTICK_BUDGET_URL")
    args = build_parser().parse_args(
        ["fetch", "klines", "--codes", "EURUSD", "--token", TOKEN, "--budget", redis_server.url,
         "--cache-dir", str(tmp_path / "cache")]
    )  # fmt: skip
    client = make_client(args)
    assert isinstance(client.budget, SharedBudget)
    assert client.budget.ledger.where == f"127.0.0.1:{redis_server.port}/0"
    asyncio.run(client.close())


def test_the_clock_offset_comes_from_the_quickest_round_trip() -> None:
    """A round trip stretched by a busy CPU would misplace the offset by half its length;
    the quickest recent one bounds the error best."""
    clock = LedgerClock(SkewedClock(0.0))
    clock.measure(server=100.0, sent=10.0, received=10.002)
    assert clock.offset == pytest.approx(89.999)
    clock.measure(server=101.0, sent=11.0, received=11.080)  # slow: ignored
    assert clock.offset == pytest.approx(89.999)
    clock.measure(server=102.0, sent=12.0, received=12.0004)  # quicker still: taken
    assert clock.offset == pytest.approx(89.9998)
    with clock.held(5.0):
        assert clock.now() == 5.0
    assert clock.now() == pytest.approx(time.time() + 89.9998, abs=0.01)


def _calls(r: redis.Redis) -> dict[str, int]:
    """Commands the server ran, by name (its ``INFO commandstats``)."""
    return {k.removeprefix("cmdstat_"): v["calls"] for k, v in r.info("commandstats").items()}


def test_an_update_is_one_atomic_read_and_one_compare_and_set(redis_server) -> None:
    """Two round trips an update: TIME and the state read together in MULTI/EXEC, then the
    script that writes only if the state's version is still the one read. Nothing is
    WATCHed, and the slots are those of the slot algorithm, as ever."""
    budget = shared(redis_server.url)
    r = redis.Redis.from_url(redis_server.url)
    try:
        before = _calls(r)
        slots = [budget.reserve("kline") for _ in range(5)]
        ran = {k: n - before.get(k, 0) for k, n in _calls(r).items() if n != before.get(k, 0)}
        ran.pop("info", None)
        ran.pop("script|load", None)  # once per server, the first time the script runs
        sent = {k: ran.pop(k, 0) for k in ("multi", "time", "mget", "exec", "evalsha")}
        assert sent == {"multi": 5, "time": 5, "mget": 5, "exec": 5, "evalsha": 5}
        # The rest ran inside the script: the version read, the state and the day written,
        # the heartbeat.
        assert ran == {"get": 5, "set": 10, "zadd": 5, "zremrangebyscore": 5, "pexpire": 5,
                       "zcard": 5}  # fmt: skip
        assert [round(b - a, 6) for a, b in itertools.pairwise(slots)] == [1.025] * 4
        assert budget.ledger.updates == 1 + 5 and budget.ledger.conflicts == 0  # 1: connecting
    finally:
        budget.close()


def test_a_record_changed_behind_the_ledgers_back_is_never_overwritten(
    redis_server, caplog
) -> None:
    """Whatever replaced the record between the read and the write (here: bytes that are no
    record) changed its version, so the write is refused and the update runs again on what
    is there now: unreadable, a fresh state, said once."""
    budget = shared(redis_server.url)
    r = redis.Redis.from_url(redis_server.url)
    key = f"alltick-frames:{{{token_fingerprint(TOKEN)}}}:budget"
    runs: list[int] = []

    def reserve_while_the_record_is_damaged(state: LedgerState) -> int:
        runs.append(len(state.calls.get("endpoint:kline", [])))
        if len(runs) == 1:
            r.set(key, b"garbage that is no record")
        return budget._reserve_in("kline", state)[0]

    try:
        budget.reserve("kline")
        caplog.set_level(logging.WARNING, logger="alltick_frames")
        budget.ledger.update(reserve_while_the_record_is_damaged)
        assert runs == [1, 0] and budget.ledger.conflicts == 1
        assert [m.getMessage() for m in caplog.records] == [
            "budget ledger in Redis: unreadable record (no version); starting afresh"
        ]
        version, state = decode(r.get(key), {})
        assert len(version) == VERSION_BYTES and len(state.calls["endpoint:kline"]) == 1
    finally:
        budget.close()


def test_records_carry_their_version_and_unreadable_ones_start_afresh() -> None:
    state = LedgerState(calls={"endpoint:kline": [1, 2]}, blocked={"per-minute": 9})
    record = record_of(b"0123456789abcdef", state)
    assert decode(record, {"day:2026-05-01": 3}) == (
        b"0123456789abcdef",
        LedgerState(calls={"endpoint:kline": [1, 2]}, blocked={"per-minute": 9},
                    days={"day:2026-05-01": 3}),
    )  # fmt: skip
    assert decode(None, {}) == (b"", LedgerState())
    # The version is the first 16 bytes, whatever they are: the script compares the same.
    assert decode(b'{"calls": {}, "blocked": {}}', {}) == (b'{"calls": {}, "b', LedgerState())
    assert decode(b"0123456789abcdef {not json", {})[1] == LedgerState()


def test_a_host_whose_clock_is_days_off_still_counts_the_servers_day(redis_server) -> None:
    """The read guesses the days around its own clock; a guess two days off is read again
    with the offset that round trip measured, and the counts land on the server's day."""
    budget = shared(redis_server.url, local_clock=SkewedClock(2 * 86_400.0))
    try:
        assert budget.reserve("kline") == pytest.approx(time.time(), abs=0.05)
        budget.reserve("kline")
        now = to_ticks(time.time())
        day = f"day:{budget.usage()['day']}"
        assert day == day_key((now + OFFSET_TICKS) // DAY_TICKS)
        assert budget.usage()["calls_today"] == 2
    finally:
        budget.close()


def test_hosts_reserving_at_once_lose_no_reservation(redis_server) -> None:
    """Four clients, each on its own connection and thread, take 30 slots each at once. The
    compare-and-set lets no write overwrite another: the ledger holds all 120 calls, the
    day's count says 120, and the slots, merged, keep the plan's spacing and windows, as
    if one client had taken them all."""
    plan = fast_plan(50)
    budgets = [shared(redis_server.url, plan) for _ in range(4)]
    slots: list[list[float]] = [[] for _ in budgets]
    start = threading.Barrier(len(budgets))

    def take(i: int) -> None:
        start.wait()
        slots[i] = [budgets[i].reserve("kline") for _ in range(30)]

    threads = [threading.Thread(target=take, args=(i,)) for i in range(len(budgets))]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        merged = sorted(to_ticks(s) for part in slots for s in part)
        assert len(set(merged)) == 120
        assert min(b - a for a, b in itertools.pairwise(merged)) >= to_ticks(1 / 50)
        span = to_ticks(1 + GUARD)
        assert all(b - a >= span for a, b in zip(merged, merged[50:], strict=False))
        calls = budgets[0].ledger.read(lambda state: state.calls["endpoint:kline"])
        assert calls == merged
        assert budgets[0].usage()["calls_today"] == 120
        assert sum(b.ledger.updates for b in budgets) == 4 + 120  # 4: connecting
    finally:
        for b in budgets:
            b.close()
