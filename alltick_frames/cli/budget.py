"""``alltick-frames budget show|reset``: what the budget ledger holds, and clearing its blocks.

The ledger is the record every process on a token paces by: the calls in each sliding window,
the blocks a 429 or 605 put in force, and the calls of the day (UTC+8). It lives beside the
cache (``<cache dir>/budget``) or in Redis (``--budget URL``). Tokens appear only as their
fingerprint (:func:`~alltick_frames.budget.token_fingerprint`), never as themselves.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

from alltick_frames.cli.common import EXIT_OK, NoToken, help_formatter, wrap


def add_budget_parser(sub: Any) -> None:
    budget = sub.add_parser(
        "budget",
        help="show the budget ledger, or clear its blocks (show, reset)",
        description=wrap(
            "The budget ledger is what every process on a token paces by: the calls in each "
            "window of the plan, the blocks a 429 or 605 put in force, and the day's calls "
            "(the day starts at 00:00 UTC+8). It lives in the cache directory, or in Redis "
            "with --budget. Tokens are shown only as their fingerprint. These commands make "
            "no call to AllTick."
        ),
        formatter_class=help_formatter,
    )
    what = budget.add_subparsers(dest="what", required=True, metavar="ACTION")
    where = argparse.ArgumentParser(add_help=False)
    where.add_argument(
        "--cache-dir",
        type=Path,
        metavar="DIR",
        help="the cache whose ledger to read (default: $ALLTICK_CACHE_DIR or "
        "~/.cache/alltick-frames)",
    )
    where.add_argument(
        "--budget",
        metavar="URL",
        default=None,
        help="the ledger in Redis, e.g. redis://host:6379/0 (default: $ALLTICK_BUDGET_URL; "
        "else the cache directory's)",
    )
    where.add_argument(
        "--token",
        default=None,
        help="the token whose ledger to use (default: $ALLTICK_TOKEN); never printed",
    )
    plan = where.add_mutually_exclusive_group()
    plan.add_argument(
        "--plan",
        default=None,
        help="the plan whose windows to count in (default: basic)",
    )
    plan.add_argument("--plan-file", type=Path, metavar="PATH", help="a custom plan file")
    show = what.add_parser(
        "show",
        help="the ledger's windows, blocks and the day's calls, per token fingerprint",
        description=wrap(
            "For each token fingerprint in the ledger (in Redis: the token's only): the calls "
            "in each of the plan's windows now, calls reserved ahead, blocks in force and "
            "until when, and the day's calls against the plan's cap. With a token, its "
            "fingerprint is marked."
        ),
        formatter_class=help_formatter,
        parents=[where],
    )
    show.set_defaults(handler=_budget_show)
    reset = what.add_parser(
        "reset",
        help="clear the token's blocks and its day's spent mark",
        description=wrap(
            "Clear every block in force for the token (after a 429 or 605) and the mark "
            "that says its day's cap is spent, so the next job starts at once. The calls "
            "counted in each window and in the day stay: they were made."
        ),
        formatter_class=help_formatter,
        parents=[where],
    )
    reset.set_defaults(handler=_budget_reset)


# --------------------------------------------------------------------------- where the ledger is


def _token(args: argparse.Namespace, *, required: bool) -> str | None:
    token = args.token if args.token is not None else os.environ.get("ALLTICK_TOKEN")
    if not token and required:
        raise NoToken("no AllTick token: pass --token or set ALLTICK_TOKEN")
    return token or None


def _plan(args: argparse.Namespace) -> Any:
    from alltick_frames.core.plans import get_plan

    return get_plan(args.plan_file if args.plan_file is not None else (args.plan or "basic"))


def _url(args: argparse.Namespace) -> str | None:
    from alltick_frames.budget.shared import budget_url_from_env

    return args.budget if args.budget is not None else budget_url_from_env()


def _ledger_dir(args: argparse.Namespace) -> Path:
    from alltick_frames.store import default_cache_dir

    return Path(args.cache_dir or default_cache_dir()) / "budget"


class LedgerUnusable(OSError):
    """The ledger cannot be read or written (exit status 1); the message says where."""


# --------------------------------------------------------------------------- show


def describe(state: Any, plan: Any, now: float, fingerprint: str, mine: bool = False) -> str:
    """One token's part of the ledger in words: each window's calls (in the window now, and
    reserved ahead), the blocks in force and the day's calls."""
    from alltick_frames.budget.slots import (
        DAILY_CAP_KEY,
        MINUTE,
        PER_MINUTE_KEY,
        SPACING_SUFFIX,
        day_index,
        day_key,
        to_ticks,
    )
    from alltick_frames.core.plans import Rate

    t = to_ticks(now)
    lines = [f"token {fingerprint}" + (" (this token)" if mine else "")]
    today = day_key(day_index(now))
    used = state.days.get(today, 0)
    lines.append(f"  today ({today.removeprefix('day:')}, UTC+8): {used:,} of {plan.per_day:,}")
    for key in sorted({*state.calls, *state.counts}):
        if key.endswith(SPACING_SUFFIX):
            continue  # the even spacing inside a window, not a limit of the plan
        rate = _rate_of(plan, key)
        if key == PER_MINUTE_KEY:
            rate = Rate(plan.per_minute, MINUTE)
        # A window kept as counts per bucket is counted to the bucket (see budget/counts.py).
        about = " (counted per bucket)" if key in state.counts else ""
        recorded = len(state.window(key))
        ahead = recorded - state.calls_between(key, -1, t)
        if rate is None:
            lines.append(f"  {key}: {recorded} call(s) recorded, {ahead} reserved ahead{about}")
            continue
        inside = state.calls_between(key, t - to_ticks(rate.per), t)
        lines.append(
            f"  {key}: {inside} of {rate.calls} in the last {rate.per:g} s, "
            f"{ahead} reserved ahead{about}"
        )
    blocks = {k: v for k, v in state.blocked.items() if v > t}
    for key, until in sorted(blocks.items()):
        when = _utc(until / 1e6)
        what = "the day's cap marked spent" if key == DAILY_CAP_KEY else f"{key} blocked"
        lines.append(f"  {what} until {when} (in {(until - t) / 1e6:.1f} s)")
    if not blocks:
        lines.append("  no block in force")
    return "\n".join(lines)


def _rate_of(plan: Any, key: str) -> Any:
    from alltick_frames.budget.slots import ALL_ENDPOINTS_KEY

    if key == ALL_ENDPOINTS_KEY:
        return plan.all_endpoints
    if key.startswith("endpoint:"):
        try:
            return plan.rate_for(key.removeprefix("endpoint:"))
        except KeyError:
            return None
    return None


def _utc(seconds: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(seconds))


def _budget_show(args: argparse.Namespace) -> int:
    from alltick_frames.budget import token_fingerprint

    plan = _plan(args)
    token = _token(args, required=False)
    mine = token_fingerprint(token) if token else None
    url = _url(args)
    if url is not None:
        budget = _redis_budget(url, plan, _token(args, required=True) or "")
        try:
            state, now = budget.ledger.read(lambda s: s), budget.clock.now()
            where = f"Redis at {budget.ledger.where}"
        finally:
            budget.close()
        states = {budget.ledger.key: state}
    else:
        directory = _ledger_dir(args)
        where = str(directory)
        if not (directory / "cache.db").exists():
            print(f"no budget ledger at {directory} yet")
            return EXIT_OK
        states, now = _read_disk(directory), time.time()
    print(f"budget ledger: {where}; windows of plan {plan.name}; now {_utc(now)}")
    if not states:
        print("no token has a record in it yet")
    for fingerprint, state in sorted(states.items()):
        if state is None:
            print(f"token {fingerprint}: a record this version cannot read (ignored)")
        else:
            print(describe(state, plan, now, fingerprint, fingerprint == mine))
    return EXIT_OK


def _read_disk(directory: Path) -> dict[str, Any]:
    import sqlite3

    from alltick_frames.budget.ledger_disk import ledger_records

    try:
        return ledger_records(directory)
    except (sqlite3.Error, OSError) as exc:
        raise LedgerUnusable(
            f"cannot read the budget ledger at {directory} ({exc}); remove that directory to "
            "start a new ledger (it holds at most the last minute's calls and today's count)"
        ) from None


def _redis_budget(url: str, plan: Any, token: str) -> Any:
    from alltick_frames.budget.shared import budget_from_url

    try:
        return budget_from_url(url, plan, token)
    except ConnectionError as exc:
        raise LedgerUnusable(str(exc)) from None


# --------------------------------------------------------------------------- reset


def _budget_reset(args: argparse.Namespace) -> int:
    from alltick_frames.budget import DiskLedger, token_fingerprint

    plan = _plan(args)
    token = _token(args, required=True) or ""
    fingerprint = token_fingerprint(token)
    url = _url(args)
    if url is not None:
        budget = _redis_budget(url, plan, token)
        ledger, where = budget.ledger, f"Redis at {budget.ledger.where}"
    else:
        directory = _ledger_dir(args)
        if not (directory / "cache.db").exists():
            print(f"no budget ledger at {directory}: nothing to reset")
            return EXIT_OK
        ledger, where = DiskLedger(directory, fingerprint), str(directory)
    try:
        cleared = ledger.update(_clear_blocks)
        if ledger.failover:
            raise LedgerUnusable(f"could not reset the budget ledger: {ledger.failover}")
    finally:
        ledger.close()
    if cleared:
        print(f"token {fingerprint}: cleared {', '.join(cleared)} in the ledger at {where}")
    else:
        print(f"token {fingerprint}: no block to clear in the ledger at {where}")
    return EXIT_OK


def _clear_blocks(state: Any) -> list[str]:
    """Drop every block from ``state``; what was in force, in words."""
    from alltick_frames.budget.slots import DAILY_CAP_KEY, to_ticks

    now = to_ticks(time.time())
    cleared = [
        "the day's spent mark" if key == DAILY_CAP_KEY else f"the block on {key}"
        for key, until in sorted(
            state.blocked.items(), key=lambda kv: (kv[0] != DAILY_CAP_KEY, kv[0])
        )
        if until > now
    ]
    state.blocked.clear()
    return cleared
