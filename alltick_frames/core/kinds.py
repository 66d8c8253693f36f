"""What a ``ret`` code or a failure kind means, and what to do about it.

AllTick reports success and failure in the ``ret`` field of the JSON body (200 is success;
see alltick-api.md §5). This module turns a ``ret`` into:

* an :class:`Action` for the runner: retry it, split the chunk, drop the code, or stop;
* a failure *kind* (:func:`kind_for`), the name under which failures are reported;
* plain words for people, :func:`explain`, used in the ``meaning`` and ``action`` columns of
  the failures DataFrame.

Failures that carry no ``ret`` (a timeout, a stock asked for more history than AllTick keeps,
the daily cap, a code the server silently left out, ...) have a kind string instead; the
kinds are listed in :data:`KINDS` and :func:`explain` covers them too. Pure tables and
lookups: the exceptions and the failures DataFrame built on them are in
:mod:`alltick_frames.core.errors`.
"""

from __future__ import annotations

import enum

__all__ = [
    "KINDS",
    "KIND_ALIASES",
    "Action",
    "action_for",
    "explain",
    "kind_for",
    "ret_kind",
]


class Action(enum.Enum):
    """What the runner does about a ``ret`` (alltick-api.md §5)."""

    #: 200: nothing went wrong.
    OK = "ok"
    #: 429/605/606: too fast; wait (next window, then backoff with jitter) and retry as is.
    RETRY = "retry"
    #: 603: too many codes, groups or bars for the plan; split the chunk, never resend it as is.
    SPLIT = "split"
    #: 600/604: a code is unknown or not in the plan; drop and report it. In a multi-code call
    #: the culprit is unknown, so bisect the chunk until the bad codes stand alone.
    DROP_CODE = "drop-code"
    #: 400/401/402/601 and the legacy 201/202: retrying cannot help, nor can any other call.
    FAIL_FAST = "fail-fast"
    #: A ret this table does not know: asked once more, then reported as ``unknown-ret`` for
    #: the items of that call alone (the server's oddity is no reason to stop the job).
    UNKNOWN = "unknown"


_ACTIONS: dict[int, Action] = {
    200: Action.OK,
    429: Action.RETRY,
    605: Action.RETRY,
    606: Action.RETRY,
    603: Action.SPLIT,
    600: Action.DROP_CODE,
    604: Action.DROP_CODE,
    400: Action.FAIL_FAST,
    401: Action.FAIL_FAST,
    402: Action.FAIL_FAST,
    601: Action.FAIL_FAST,
    201: Action.FAIL_FAST,
    202: Action.FAIL_FAST,
}


def action_for(ret: int) -> Action:
    """The runner's move for ``ret``; a ``ret`` this table does not know is ``UNKNOWN``.

    >>> action_for(605), action_for(603), action_for(604), action_for(777)
    (<Action.RETRY: 'retry'>, <Action.SPLIT: 'split'>, <Action.DROP_CODE: 'drop-code'>, \
<Action.UNKNOWN: 'unknown'>)
    """
    return _ACTIONS.get(int(ret), Action.UNKNOWN)


# --------------------------------------------------------------------------- plain words

_BUG = "retrying will not help; this is a bug in the request the client built, please report it"
_RET_TEXT: dict[int, tuple[str, str]] = {
    200: ("success", "nothing to do"),
    400: (
        "AllTick rejected the request as invalid: a field of the request JSON is missing or wrong",
        _BUG + " with the msg",
    ),
    401: (
        "the token was refused: it is missing, mistyped, or its account has expired",
        "check ALLTICK_TOKEN (or the token argument) and your subscription at alltick.co; "
        "nothing can be fetched until this is fixed",
    ),
    402: (
        "AllTick could not decode the request's query parameter (bad encoding or escaping)",
        _BUG,
    ),
    429: (
        "too many requests: a frequency limit of the plan was exceeded",
        "wait and retry the failures; if it keeps happening, another program is probably using "
        "the same token, or the plan given to the client is larger than the real one",
    ),
    600: (
        "the code is unknown to AllTick, or was sent to the wrong base path (stock vs FX/crypto)",
        "check its spelling and case against AllTick's product list (e.g. AAPL.US, 700.HK, "
        "EURUSD, Silver); the other codes were still fetched",
    ),
    601: ("the POST body was empty", _BUG),
    603: (
        "the plan refused the request: more codes, groups or bars than it allows in one call, "
        "or data it does not include (AllTick's pricing page gives Free last prices and "
        "end-of-day data only: no intraday bars, no order books)",
        "the client splits oversized requests by itself, so this row means even one code and "
        "one bar was refused: on Free ask for 1d, 1w or 1M bars and trades instead; otherwise "
        "the plan given to the client is larger than the real one: pass the right plan",
    ),
    604: (
        "the token's plan does not include this code",
        "drop the code, or move to a plan that covers its market; the other codes were "
        "still fetched",
    ),
    605: (
        "too many requests (the general HTTP limit: often the per-minute or the daily cap)",
        "wait and retry the failures; if it persists the daily cap is used up, and it resets "
        "at 00:00 UTC+8 (16:00 UTC)",
    ),
    606: (
        "too many WebSocket requests or connections; the server closed the connection",
        "reconnect after at least 3 s (10 s on Free) and space subscriptions at least 1 s apart",
    ),
}
# 201 and 202 are older spellings of 400 (alltick-api.md §2).
_RET_TEXT[201] = _RET_TEXT[202] = (
    "AllTick rejected the request as invalid (legacy code, same as 400)",
    _BUG + " with the msg",
)
_UNKNOWN_RET = (
    "AllTick answered with a ret code this client does not know (it was asked once more)",
    "read the msg and AllTick's error table; retry the failures later if it sounds passing",
)

#: Failure kinds that come from a ``ret``, by the ``ret`` that produces them.
_KIND_OF_RET: dict[int, str] = {
    400: "bad-request",
    402: "bad-request",
    601: "bad-request",
    201: "bad-request",
    202: "bad-request",
    401: "auth",
    429: "rate-limit",
    605: "rate-limit",
    606: "rate-limit",
    603: "plan-limit",
    600: "code-invalid",
    604: "code-unauthorized",
}

#: Every failure kind with its (meaning, what to do). The first block comes from ``ret`` codes
#: (see :func:`kind_for`); the second from things the client itself detects.
KINDS: dict[str, tuple[str, str]] = {
    "bad-request": _RET_TEXT[400],
    "auth": _RET_TEXT[401],
    "rate-limit": _RET_TEXT[429],
    "plan-limit": _RET_TEXT[603],
    "code-invalid": _RET_TEXT[600],
    "code-unauthorized": _RET_TEXT[604],
    "unknown-ret": _UNKNOWN_RET,
    "transport": (
        "no usable answer came back: timeouts, dropped connections, HTTP 5xx, bodies that are "
        "not JSON, or bodies past their size bound (the msg says which), after every retry",
        "retry the failures later; if it persists, check your network and status.alltick.co",
    ),
    "unreadable": (
        "an answer came back but could not be used for this item: a value out of its domain "
        "(a price or timestamp that is not a number, an unknown kline_type), a shape AllTick "
        "does not document, or bars labelled with another code or interval (the msg says "
        "what); none of the item's bars from that answer on were kept",
        "retry the failures later; if it persists, report the msg to AllTick",
    ),
    "bad-bars": (
        "some bars could not be believed and were dropped (a price missing, not finite or "
        "not above 0, low/high that do not bound open/close, negative volume, a start off "
        "the interval's grid or more than a day ahead); or one start came twice with "
        "different values. The msg counts them by reason; the item's other bars were kept",
        "retry the failures later; if it persists, report the msg to AllTick",
    ),
    "not-pageable": (
        "AllTick serves only the latest 500 bars of this code: it ignores the end time that "
        "pages back (stocks, indices, energy and CFD codes; only forex, precious metals and "
        "crypto take one), so the older part of the range was not fetched",
        "ask for a range inside the latest 500 bars, or use a coarser interval "
        "(e.g. 1d instead of 1h) to reach further back",
    ),
    "history-limit": (
        "the range is older than the plan's history depth, or the server returned no bars for it",
        "narrow the range to what the plan reaches (1 year on Free and Basic, 3 on Premium, "
        "5 on Professional), or move to a larger plan",
    ),
    "gap": (
        "bars the exchange calendar expects inside the series did not arrive: a hole between "
        "bars that did (detail names it)",
        "retry the failures: retry() asks for exactly the missing bars; a hole that stays may "
        "be a closure the calendar does not know (a typhoon day in Hong Kong, say)",
    ),
    "daily-cap": (
        "the plan's daily request cap was reached, so the job stopped before this item",
        "retry the failures after the daily reset at 00:00 UTC+8 (16:00 UTC), or use a larger plan",
    ),
    "delisted": (
        "the order book is zero on both sides, which is how AllTick marks a delisted stock "
        "(price-change-trading-status.mdx): there is no quote to return",
        "drop the code: AllTick removes delisted stocks from its product list, after which "
        "asking for it is ret 600",
    ),
    "left-out": (
        "the server silently left this code out of its answer, even when asked again",
        "check that the code is in your plan and still listed; retry the failures later",
    ),
    "cancelled": (
        "the job was cancelled before this item was fetched",
        "retry the failures",
    ),
    "service-error": (
        "the suspension service answered with an error (success=false)",
        "retry later; it allows one request per minute per exchange",
    ),
}


def ret_kind(ret: int) -> str | None:
    """The failure kind a ``ret`` produces, or None for 200 (see :func:`kind_for`)."""
    return None if int(ret) == 200 else _KIND_OF_RET.get(int(ret), "unknown-ret")


#: Other spellings accepted for a kind, normalised on the way in. ``"code"`` becomes
#: ``code-invalid`` or ``code-unauthorized`` according to the ``ret``.
KIND_ALIASES: dict[str, str] = {
    "rate-limited": "rate-limit",
    "too-big": "plan-limit",
    "split": "plan-limit",
    "malformed": "transport",
    "timeout": "transport",
}


def kind_for(ret: int) -> str:
    """The failure kind a ``ret`` produces, e.g. ``604 -> "code-unauthorized"``."""
    kind = ret_kind(ret)
    if kind is None:
        raise ValueError("ret 200 is success, not a failure")
    return kind


def explain(ret_or_kind: int | str) -> tuple[str, str]:
    """``(meaning, what to do)`` in plain words for a ``ret`` code or a failure kind.

    An int (or a numeric string) is read as a ``ret``; any other string must be one of
    :data:`KINDS`. An unknown ``ret`` gets a generic explanation; an unknown kind is a
    ValueError, because it is a bug in the caller.

    >>> explain(604)[0]
    "the token's plan does not include this code"
    >>> explain("left-out")[1]
    'check that the code is in your plan and still listed; retry the failures later'
    """
    if isinstance(ret_or_kind, str) and not ret_or_kind.strip().lstrip("-").isdigit():
        try:
            return KINDS[ret_or_kind]
        except KeyError:
            raise ValueError(
                f"unknown failure kind {ret_or_kind!r}; known kinds: {', '.join(KINDS)}"
            ) from None
    return _RET_TEXT.get(int(ret_or_kind), _UNKNOWN_RET)
