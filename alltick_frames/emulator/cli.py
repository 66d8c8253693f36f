"""``alltick-frames emulate`` (and ``python -m alltick_frames.emulator``): run the emulator."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web

from alltick_frames.core.plans import PLANS
from alltick_frames.emulator import arrivals
from alltick_frames.emulator.app import create_app
from alltick_frames.emulator.config import DEFAULT_TOKEN, EmulatorConfig
from alltick_frames.emulator.faults import KINDS, FaultConfig

DESCRIPTION = """\
Serve a local AllTick: both base paths (/quote-stock-b-api, /quote-b-api) and their
WebSockets (/quote-stock-b-ws-api, /quote-b-ws-api), the suspension service, each plan's rate
and size limits, a deterministic synthetic market of ~650 codes, and optional fault
injection. Point a client at the printed base URL with one of the tokens.

The admin view (not part of AllTick): GET /_emulator/codes, GET /_emulator/stats,
POST /_emulator/reset, GET|POST /_emulator/clock, GET|POST /_emulator/faults,
GET|POST /_emulator/ws.
"""

EPILOG = """\
examples:
  alltick-frames emulate --plan basic
  alltick-frames emulate --token alice=premium --token bob=free --now 2024-05-15T14:00:00Z
  alltick-frames emulate --plan-file fast.json --faults 0.05 --seed 7
"""

_LOOPBACK = ("127.0.0.1", "localhost", "::1")

#: On/off readings of the docs other than the default (README "Assumptions"): EmulatorConfig
#: fields, each set by the flag of the same name (``--lenient-free``).
SWITCHES = {
    "lenient_free": "Free: each endpoint once per 10 s and 10 calls a minute, instead of "
    "1 call per 10 s across all endpoints",
    "free_eod_only": "Free: last prices and end-of-day bars only; intraday bars and order "
    "books are ret 603",
    "hard_code_cap": "cut every plan's trade/depth/static code lists at its codes_per_call "
    "(default: only Free's 5; paid plans are limited by the URL's length)",
    "page_energy_cfd": "let energy and CFD codes page back with kline_timestamp_end "
    "(default: only FX, metals and crypto)",
    "suspension_paging": "page the halt service when page or size is sent (default: the "
    "whole year, as documented)",
    "old_invalid_codes": "answer an invalid envelope with ret 201 and invalid data with "
    "ret 202, instead of 400",
    "error_data": 'add "data": {} to every error body',
    "refusals_count": "count a call answered 429/605 in every window it was judged by, as "
    "if admitted (default: a refused call consumes nothing)",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The emulator's options, shared by ``alltick-frames emulate`` and ``python -m``."""
    plans = ", ".join(PLANS)
    net = parser.add_argument_group("network")
    net.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback)")
    net.add_argument("--port", type=int, default=8787, help="port (0: any free port)")
    net.add_argument("--access-log", action="store_true", help="log every request to stderr")
    net.add_argument(
        "--config",
        metavar="FILE",
        help="take every setting from a JSON file (EmulatorConfig.to_dict(); what the "
        "out-of-process test fixture writes); the options below are then ignored",
    )

    who = parser.add_argument_group("tokens and plans")
    who.add_argument(
        "--plan",
        help=f"plan of the default token {DEFAULT_TOKEN!r} ({plans}, or a plan file path; "
        "default: basic, or the --plan-file plan)",
    )
    who.add_argument(
        "--token",
        action="append",
        default=[],
        metavar="TOKEN=PLAN",
        help="accept TOKEN on PLAN (repeatable); without any, only the token "
        f"{DEFAULT_TOKEN!r} on --plan is accepted and others get ret 401",
    )
    who.add_argument(
        "--basket",
        action="append",
        default=[],
        metavar="TOKEN=CODE,CODE",
        help="limit TOKEN (a --token, or 'demo' when there is none) to these codes; any "
        "other code gets ret 604 (repeatable)",
    )
    who.add_argument(
        "--plan-file",
        metavar="PATH",
        help="a custom plan (.json/.toml, same fields as the built-ins, optional 'base'); "
        "tokens may name it",
    )

    market = parser.add_argument_group("market")
    market.add_argument(
        "--now",
        metavar="MOMENT",
        help="fix the market clock (ISO-8601 like 2024-05-15T14:00:00Z, or Unix seconds); "
        "default: real time. Rate windows always run on real time.",
    )

    faults = parser.add_argument_group("fault injection (probabilities per request, default 0)")
    faults.add_argument(
        "--faults", type=float, default=0.0, metavar="RATE",
        help="overall fault rate, split evenly over the five network kinds below",
    )  # fmt: skip
    for flag, kind, what in (
        ("--fault-rate-limit", "rate_limit", "answer ret 429 or 605 without using quota"),
        ("--fault-5xx", "http_5xx", "answer HTTP 500/502/503 (HTML or JSON body)"),
        ("--fault-reset", "reset", "drop the connection without an answer"),
        ("--fault-slow", "slow", "hold the answer back by --latency (+ --jitter) seconds"),
        ("--fault-malformed", "malformed", "HTTP 200 with a truncated or non-JSON body"),
        (
            "--fault-bad-bars",
            "bad_bars",
            "a /kline or /batch-kline answer with one bar (or its label) out of domain: a NaN "
            "or negative price, high below low, a start off the grid, ... (not part of --faults)",
        ),
    ):
        faults.add_argument(flag, dest=f"fault_{kind}", type=float, metavar="RATE", help=what)
    faults.add_argument(
        "--latency", type=float, default=0.5, metavar="SECONDS", help="delay of a slow answer"
    )
    faults.add_argument(
        "--jitter", type=float, default=0.0, metavar="SECONDS",
        help="extra random delay of a slow answer, up to this much",
    )  # fmt: skip
    faults.add_argument(
        "--arrival-jitter", type=float, default=0.0, metavar="SECONDS",
        help="delay every request by a random 0 to SECONDS before it is admitted and counted, "
        "as a network would (--fault-slow delays only the answer)",
    )  # fmt: skip
    faults.add_argument(
        "--fault-drop-bars", type=float, default=0.0, metavar="RATE",
        help="a /kline answer of 3+ bars loses one bar inside its list (a hole in the data; "
        "not part of --faults)",
    )  # fmt: skip
    faults.add_argument("--seed", type=int, default=0, help="seed of the fault sequence")

    rules = parser.add_argument_group("where AllTick's docs are ambiguous (alltick-api.md §8)")
    rules.add_argument(
        "--mirror-status",
        action="store_true",
        help="answer ret 401 and 429 with HTTP status 401 and 429 (default: HTTP 200)",
    )
    rules.add_argument(
        "--oversize",
        choices=("cut", "603"),
        default="cut",
        help="too many bars, or codes over a hard cap, in one call: cut to the cap (default) "
        "or ret 603; too many batch groups is always 603",
    )
    for name, what in SWITCHES.items():
        rules.add_argument("--" + name.replace("_", "-"), action="store_true", help=what)
    rules.add_argument(
        "--no-error-trace",
        dest="error_trace",
        action="store_false",
        help="leave trace out of every error body",
    )

    ws = parser.add_argument_group("WebSocket (/quote-stock-b-ws-api, /quote-b-ws-api)")
    ws.add_argument(
        "--ws-cadence", type=float, default=5.0, metavar="SECONDS",
        help="market seconds between two trades of a code, and between two books (default 5)",
    )  # fmt: skip
    ws.add_argument(
        "--ws-refuse", choices=("429", "606"), default="429",
        help="a connection over the plan's cap or a reconnect too soon: HTTP 429 at the "
        "handshake (default), or accepted then ret 606 and closed",
    )  # fmt: skip
    ws.add_argument(
        "--ws-push-ints", action="store_true",
        help="send seq and tick_time of pushes as JSON integers (default: strings, as the docs)",
    )  # fmt: skip
    ws.add_argument(
        "--ws-heartbeat-spacing", action="store_true",
        help="heartbeats too need 1 s from other requests on their connection (default: exempt)",
    )  # fmt: skip
    for flag, what in (
        ("drop", "abort the socket instead of sending a push"),
        ("delay", "hold a push back by --latency seconds"),
        ("malformed", "send a broken frame instead of a push"),
    ):
        ws.add_argument(
            f"--ws-fault-{flag}", type=float, default=0.0, metavar="RATE", help=what + " (per push)"
        )


def add_emulate_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``emulate`` on the ``alltick-frames`` command line."""
    parser = subparsers.add_parser(
        "emulate",
        help="run a local AllTick emulator",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    parser.set_defaults(handler=run)
    return parser


def _pairs(values: Sequence[str], what: str) -> dict[str, str]:
    out = {}
    for value in values:
        key, sep, rest = value.partition("=")
        if not sep or not key or not rest:
            raise SystemExit(f"error: {what} must look like {what.upper()}, got {value!r}")
        out[key] = rest
    return out


def config_from_args(args: argparse.Namespace) -> EmulatorConfig:
    """Build the :class:`EmulatorConfig` the parsed options describe."""
    if args.config:
        try:
            return EmulatorConfig.from_dict(json.loads(Path(args.config).read_text("utf-8")))
        except (ValueError, OSError, TypeError, KeyError) as error:
            raise SystemExit(f"error: cannot use --config {args.config}: {error}") from None
    # A token maps to {"plan": name} (no plan: the default plan) plus an optional basket.
    tokens: dict[str, dict[str, Any]] = {
        token: {"plan": plan} for token, plan in _pairs(args.token, "token=plan").items()
    }
    baskets = _pairs(args.basket, "token=codes")
    if baskets and not tokens:
        tokens = {DEFAULT_TOKEN: {}}
    for token, codes in baskets.items():
        if token not in tokens:
            raise SystemExit(f"error: --basket names {token!r}, which no --token defines")
        tokens[token]["basket"] = [c.strip() for c in codes.split(",") if c.strip()]
    overrides = {
        kind: rate for kind in KINDS if (rate := getattr(args, f"fault_{kind}")) is not None
    }
    try:
        faults = FaultConfig.overall(
            args.faults,
            latency=args.latency,
            jitter=args.jitter,
            arrival_jitter=args.arrival_jitter,
            drop_bars=args.fault_drop_bars,
            **overrides,
        )
        return EmulatorConfig(
            tokens=tokens or None,
            plan=args.plan,
            plan_file=args.plan_file,
            now=args.now,
            faults=faults,
            seed=args.seed,
            mirror_status=args.mirror_status,
            oversize=args.oversize,
            error_trace=args.error_trace,
            **{name: getattr(args, name) for name in SWITCHES},
            ws={
                "cadence": args.ws_cadence,
                "refuse": args.ws_refuse,
                "push_ints": args.ws_push_ints,
                "heartbeat_spacing": args.ws_heartbeat_spacing,
                "drop": args.ws_fault_drop,
                "delay": args.ws_fault_delay,
                "malformed": args.ws_fault_malformed,
                "latency": args.latency,
            },
        )
    except (ValueError, OSError) as error:
        raise SystemExit(f"error: {error}") from None


def run(args: argparse.Namespace) -> int:
    """Serve until interrupted (Ctrl-C or SIGTERM)."""
    config = config_from_args(args)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(config, args.host, args.port, args.access_log))
    return 0


async def _serve(config: EmulatorConfig, host: str, port: int, access_log: bool) -> None:
    if access_log:
        logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    app = create_app(config)
    runner = web.AppRunner(
        app, access_log=logging.getLogger("aiohttp.access") if access_log else None
    )
    await runner.setup()
    site = web.SockSite(runner, arrivals.listening_socket(host, port))
    await site.start()
    bound = runner.addresses[0][1]
    shown = f"[{host}]" if ":" in host else host
    print(f"http://{shown}:{bound}", flush=True)
    for token, spec in config.resolved_tokens().items():
        basket = "" if spec.basket is None else f", basket of {len(spec.basket)} codes"
        print(f"  token {token!r}: plan {spec.plan.name}{basket}", flush=True)
    now = config.market_now
    when = "real time" if now is None else f"fixed at {datetime.fromtimestamp(now, UTC):%F %T} UTC"
    print(f"  market clock: {when}; press Ctrl-C to stop", flush=True)
    if host not in _LOOPBACK:
        print(f"  warning: bound to {host}, reachable from other machines", file=sys.stderr)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError):  # no signal handlers on Windows
        loop.add_signal_handler(signal.SIGTERM, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m alltick_frames.emulator``: the same options as ``alltick-frames emulate``."""
    parser = argparse.ArgumentParser(
        prog="python -m alltick_frames.emulator",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))
