"""What went wrong, what it means, and what to do: ``ret`` codes, failure rows and exceptions.

AllTick reports success and failure in the ``ret`` field of the JSON body (200 is success;
see alltick-api.md §5). This module turns a ``ret`` into three things:

* an :class:`Action` for the runner: retry it, split the chunk, drop the code, or stop;
* plain words for people, :func:`explain`, used in the ``meaning`` and ``action`` columns of
  the failures DataFrame;
* a typed exception, :func:`error_for`, for callers who prefer to raise.

Failures that carry no ``ret`` (a timeout, a stock asked for more history than AllTick keeps,
the daily cap, a code the server silently left out, ...) have a *kind* string instead; the
kinds are listed in :data:`KINDS` and :func:`explain` covers them too.

Every failure the client meets becomes one :class:`Failure`; :func:`failures_frame` turns a
list of them into the stable failures schema (:data:`FAILURE_COLUMNS`), empty but typed when
everything went well.

The token is a secret: no exception here ever holds it. :func:`redact` strips ``token=...``
from any text (aiohttp puts the full URL, token included, into its exception messages), and
every exception message passes through it.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "FAILURE_COLUMNS",
    "FAILURE_DTYPES",
    "KINDS",
    "KIND_ALIASES",
    "Action",
    "AllTickError",
    "AuthError",
    "CodeError",
    "DailyCapReached",
    "Failure",
    "FetchFailed",
    "MalformedResponse",
    "PlanLimitError",
    "RateLimitError",
    "RequestError",
    "TransportError",
    "action_for",
    "empty_failures",
    "error_for",
    "explain",
    "failures_frame",
    "kind_for",
    "redact",
    "sort_failures",
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
    #: 400/401/402/601, the legacy 201/202 and any unknown ret: retrying cannot help.
    FAIL_FAST = "fail-fast"


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
    """The runner's move for ``ret``; a ``ret`` this table does not know fails fast.

    >>> action_for(605), action_for(603), action_for(604), action_for(999)
    (<Action.RETRY: 'retry'>, <Action.SPLIT: 'split'>, <Action.DROP_CODE: 'drop-code'>, \
<Action.FAIL_FAST: 'fail-fast'>)
    """
    return _ACTIONS.get(int(ret), Action.FAIL_FAST)


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
        "the request asked for more codes, groups or bars than the plan allows",
        "the client splits such requests by itself; if this row remains, the plan given to the "
        "client is larger than the real one: pass the right plan",
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
    "AllTick answered with a ret code this client does not know",
    "retrying is unlikely to help; read the msg and AllTick's error table",
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
        "no usable answer came back: timeouts, dropped connections, HTTP 5xx or malformed "
        "bodies, after every retry",
        "retry the failures later; if it persists, check your network and status.alltick.co",
    ),
    "not-pageable": (
        "stocks and indices cannot be paged back: AllTick serves only their latest 500 bars, "
        "so the older part of the range was not fetched",
        "ask for a range inside the latest 500 bars, or use a coarser interval "
        "(e.g. 1d instead of 1h) to reach further back",
    ),
    "history-limit": (
        "the range is older than the plan's history depth, or the server returned no bars for it",
        "narrow the range to what the plan reaches (1 year on Free and Basic, 3 on Premium, "
        "5 on Professional), or move to a larger plan",
    ),
    "daily-cap": (
        "the plan's daily request cap was reached, so the job stopped before this item",
        "retry the failures after the daily reset at 00:00 UTC+8 (16:00 UTC), or use a larger plan",
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


def _ret_kind(ret: int) -> str | None:
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
    kind = _ret_kind(ret)
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


# --------------------------------------------------------------------------- redaction

# ``token=`` (also URL-encoded as ``token%3D``) up to the next ``&`` or the end of the text,
# stopping early only at characters that cannot occur in a URL (whitespace, quotes, brackets)
# so that the text around an aiohttp URL survives.
_TOKEN_PARAM = re.compile(r"(?i)(token=)[^&\s'\"<>()\[\]]*")
_TOKEN_PARAM_ENCODED = re.compile(r"(?i)(token%3D)(?:(?!%26)[^&\s'\"<>()\[\]])*")
_TOKEN_JSON = re.compile(r"""(?i)(["']token["']\s*:\s*["'])[^"']*""")


def redact(text: str, *secrets: str) -> str:
    """``text`` with every token removed, for messages, logs and failure rows.

    Replaces ``token=<value>`` (up to ``&`` or the end of the URL) with ``token=***``, and
    ``"token": "<value>"`` likewise. Pass the token itself as ``secrets`` to also blank any
    bare occurrence of it, however it got there.

    >>> redact("Cannot connect to host quote.alltick.co:443 "
    ...        "url=https://quote.alltick.co/quote-b-api/kline?token=abc123&query=%7B%7D")
    'Cannot connect to host quote.alltick.co:443 url=https://quote.alltick.co/quote-b-api/kline?token=***&query=%7B%7D'
    """
    text = _TOKEN_PARAM.sub(r"\1***", str(text))
    text = _TOKEN_PARAM_ENCODED.sub(r"\1***", text)
    text = _TOKEN_JSON.sub(r"\1***", text)
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


# --------------------------------------------------------------------------- exceptions


def _codes_text(codes: Sequence[str], limit: int = 5) -> str:
    shown = ", ".join(codes[:limit])
    return shown + (f" (+{len(codes) - limit} more)" if len(codes) > limit else "")


class AllTickError(Exception):
    """Base of every error this package raises about a fetch.

    Attributes (all may be empty, none ever holds the token):

    * ``ret``: AllTick's ``ret`` code, or None when the failure has none (network, caps);
    * ``msg``: the server's ``msg`` or a description of the fault, already redacted;
    * ``endpoint``: ``"kline"``, ``"batch-kline"``, ... (the names in ``plans.ENDPOINTS``);
    * ``codes``: the codes the failed call was about, as a tuple.

    ``str(err)`` says what happened and what to do, e.g.
    ``ret 604 (code unauthorized) on kline for AAPL.US: the token's plan does not include
    this code. Drop the code, or ...``.
    """

    #: The failure kind this exception reports (a key of :data:`KINDS`).
    kind: str = "unknown-ret"

    def __init__(
        self,
        msg: str = "",
        *,
        ret: int | None = None,
        endpoint: str | None = None,
        codes: Iterable[str] = (),
    ) -> None:
        self.msg = redact(msg)
        self.ret = None if ret is None else int(ret)
        self.endpoint = endpoint
        self.codes: tuple[str, ...] = tuple(codes)
        # The class names a default kind; a ret refines it when the ret is what this class
        # stands for (CodeError 600 vs 604), but never overrides a kind like "daily-cap".
        own = type(self) is AllTickError or type(self) is _ERROR_OF_RET.get(self.ret or 0)
        if self.ret is not None and self.ret != 200 and own:
            self.kind = kind_for(self.ret)
        super().__init__(self.msg)

    def explanation(self) -> tuple[str, str]:
        """``(meaning, what to do)`` for this error (see :func:`explain`)."""
        if self.ret is not None and _ret_kind(self.ret) == self.kind:
            return explain(self.ret)
        return explain(self.kind)

    def __str__(self) -> str:
        head = f"ret {self.ret}" if self.ret is not None else self.kind
        if self.msg:
            head += f" ({self.msg})"
        if self.endpoint:
            head += f" on {self.endpoint}"
        if self.codes:
            head += f" for {_codes_text(self.codes)}"
        meaning, todo = self.explanation()
        return f"{head}: {meaning}. {todo[:1].upper()}{todo[1:]}."

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only arguments do not survive Exception's default pickling.
        return (_rebuild, (type(self), self.msg, self.__dict__))


def _rebuild(cls: type[AllTickError], msg: str, state: dict[str, Any]) -> AllTickError:
    err = cls.__new__(cls)
    Exception.__init__(err, msg)
    err.__dict__.update(state)
    return err


class AuthError(AllTickError):
    """401: the token is missing, invalid or expired. Nothing will work; fail fast."""

    kind = "auth"


class RequestError(AllTickError):
    """400/402/601 (and legacy 201/202): the request itself was malformed. A client bug."""

    kind = "bad-request"


class PlanLimitError(AllTickError):
    """603: more codes, groups or bars than the plan allows in one call."""

    kind = "plan-limit"


class CodeError(AllTickError):
    """600 (unknown code or wrong base path) or 604 (code not in the plan)."""

    kind = "code-invalid"

    @property
    def unauthorized(self) -> bool:
        """True for 604 (not in the plan), False for 600 (unknown or misrouted)."""
        return self.ret == 604


class RateLimitError(AllTickError):
    """429/605: over a frequency limit. Transient: the runner waits and retries."""

    kind = "rate-limit"


class DailyCapReached(AllTickError):
    """The plan's daily cap is used up: the job stops and returns what it has.

    ``resets_at`` is when the cap resets (Unix seconds; next 00:00 UTC+8), when known.
    """

    kind = "daily-cap"

    def __init__(
        self,
        msg: str = "",
        *,
        ret: int | None = None,
        endpoint: str | None = None,
        codes: Iterable[str] = (),
        resets_at: float | None = None,
    ) -> None:
        super().__init__(msg, ret=ret, endpoint=endpoint, codes=codes)
        self.resets_at = resets_at


class TransportError(AllTickError):
    """No usable answer after every retry: timeouts, resets, HTTP 5xx, malformed bodies."""

    kind = "transport"


class MalformedResponse(TransportError):
    """A body that is not the JSON AllTick documents (not JSON, truncated, no ``ret``, ...).

    A subclass of :class:`TransportError` because it is handled the same way: a truncated
    body is usually a dropped connection, so the runner retries it.
    """


class ServiceError(TransportError):
    """The suspension service answered ``{"success": false, "error": ...}`` for another reason
    than rate or token: retried like a fault, reported as ``service-error`` if it persists."""

    kind = "service-error"


class FetchFailed(AllTickError):
    """Raised by the client's raise mode when some items could not be fetched.

    ``failures`` is the failures DataFrame (:data:`FAILURE_COLUMNS`); ``result`` is the
    partial result, when the client has one. ``codes`` lists the failed codes; ``ret`` and
    ``endpoint`` are set when every failure shares the same one.
    """

    kind = "fetch-failed"

    def __init__(self, failures: pd.DataFrame, result: Any = None) -> None:
        self.failures = failures
        self.result = result
        rets = failures["ret"].unique() if "ret" in failures else []
        endpoints = failures["endpoint"].unique() if "endpoint" in failures else []
        codes = list(dict.fromkeys(failures["code"].dropna())) if "code" in failures else []
        kinds = failures["kind"].value_counts() if "kind" in failures else pd.Series()
        summary = ", ".join(f"{n} {k}" for k, n in kinds.items())
        super().__init__(
            f"{len(failures)} item(s) failed ({summary}); see .failures",
            ret=int(rets[0]) if len(rets) == 1 and pd.notna(rets[0]) else None,
            endpoint=str(endpoints[0]) if len(endpoints) == 1 and pd.notna(endpoints[0]) else None,
            codes=codes,
        )

    def explanation(self) -> tuple[str, str]:
        return (
            f"{len(self.failures)} item(s) could not be fetched",
            "read the failures DataFrame: each row says what it means and what to do",
        )

    def __str__(self) -> str:
        text = self.msg
        if self.codes:
            text += f"; codes: {_codes_text(self.codes)}"
        return text

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.failures, self.result))


_ERROR_OF_RET: dict[int, type[AllTickError]] = {
    401: AuthError,
    400: RequestError,
    402: RequestError,
    601: RequestError,
    201: RequestError,
    202: RequestError,
    603: PlanLimitError,
    600: CodeError,
    604: CodeError,
    429: RateLimitError,
    605: RateLimitError,
    606: RateLimitError,
}


def error_for(
    ret: int, msg: str = "", endpoint: str | None = None, codes: Iterable[str] = ()
) -> AllTickError:
    """The typed exception for a non-200 ``ret`` (an unknown ``ret`` gives :class:`AllTickError`).

    >>> err = error_for(604, "code unauthorized", "kline", ["AAPL.US"])
    >>> type(err).__name__, err.ret, err.codes
    ('CodeError', 604, ('AAPL.US',))
    """
    ret = int(ret)
    if ret == 200:
        raise ValueError("ret 200 is success; there is no error to build")
    cls = _ERROR_OF_RET.get(ret, AllTickError)
    return cls(msg, ret=ret, endpoint=endpoint, codes=codes)


# --------------------------------------------------------------------------- failure rows


@dataclass(frozen=True, slots=True, kw_only=True)
class Failure:
    """One thing the user asked for that did not arrive, as the client reports it.

    ``kind`` defaults to the kind of ``ret`` (see :func:`kind_for`), so a failure from a
    ``ret`` needs only ``Failure(code=..., endpoint=..., ret=604, msg=...)``; a failure
    without a ``ret`` must name its kind, e.g. ``kind="left-out"``.
    """

    code: str
    endpoint: str
    #: Canonical interval alias ("1d") for k-line failures; None for the other endpoints.
    interval: str | None = None
    ret: int | None = None
    msg: str = ""
    kind: str = ""
    #: How many calls were spent on this item, retries included.
    attempts: int = 1
    #: Anything more specific, e.g. "bars before 2024-01-02 not fetched".
    detail: str | None = None

    def __post_init__(self) -> None:
        kind = KIND_ALIASES.get(self.kind, self.kind)
        if kind in ("", "code") and self.ret is not None and self.ret != 200:
            kind = kind_for(self.ret)
        if not kind:
            raise ValueError("a Failure needs a ret or a kind")
        if kind not in KINDS:
            raise ValueError(f"unknown failure kind {self.kind!r}; known: {', '.join(KINDS)}")
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "msg", redact(self.msg))
        if self.detail is not None:
            object.__setattr__(self, "detail", redact(self.detail))

    @classmethod
    def from_error(
        cls,
        err: AllTickError,
        code: str,
        *,
        interval: str | None = None,
        attempts: int = 1,
        detail: str | None = None,
    ) -> Failure:
        """The failure row for ``code`` after ``err`` (one row per code of a failed call)."""
        return cls(
            code=code,
            endpoint=err.endpoint or "",
            interval=interval,
            ret=err.ret,
            msg=err.msg,
            kind=err.kind,
            attempts=attempts,
            detail=detail,
        )

    def explanation(self) -> tuple[str, str]:
        """``(meaning, what to do)``: from the ``ret`` when it is what produced the failure
        (it is more precise, e.g. 400 vs 402), else from the kind."""
        if self.ret is not None and _ret_kind(self.ret) == self.kind:
            return explain(self.ret)
        return explain(self.kind)


_STRING = pd.StringDtype("pyarrow")

#: The failures schema, column by column:
#:
#: * ``code`` (string): the code that failed, as the caller spelled it;
#: * ``interval`` (string, NA for non-k-line endpoints): canonical alias such as ``"1d"``;
#: * ``endpoint`` (string): ``kline``, ``batch-kline``, ``trade-tick``, ``depth-tick``,
#:   ``static_info`` or ``suspension``;
#: * ``ret`` (Int64, NA when there was none): AllTick's ``ret`` code;
#: * ``msg`` (string): the server's ``msg``, or a description of the fault;
#: * ``kind`` (string): one of :data:`KINDS`, e.g. ``code-unauthorized``, ``left-out``;
#: * ``meaning`` (string): what the failure means, in plain words;
#: * ``action`` (string): what to do about it;
#: * ``attempts`` (int64): calls spent on the item, retries included;
#: * ``detail`` (string, may be NA): anything more specific.
FAILURE_DTYPES: dict[str, Any] = {
    "code": _STRING,
    "interval": _STRING,
    "endpoint": _STRING,
    "ret": pd.Int64Dtype(),
    "msg": _STRING,
    "kind": _STRING,
    "meaning": _STRING,
    "action": _STRING,
    "attempts": np.dtype("int64"),
    "detail": _STRING,
}
FAILURE_COLUMNS: list[str] = list(FAILURE_DTYPES)

# Interval aliases in kline_type order, so failures sort 1m, 5m, ..., 1M rather than
# alphabetically; kept local to avoid importing intervals for a sort key.
_INTERVAL_ORDER = ["1m", "5m", "15m", "30m", "1h", "2h", "4h", "1d", "1w", "1M"]


def empty_failures() -> pd.DataFrame:
    """The failures DataFrame of a job where everything went well: no rows, right dtypes."""
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in FAILURE_DTYPES.items()})


def failures_frame(
    rows: Iterable[Failure], code_order: Sequence[str] | None = None
) -> pd.DataFrame:
    """The failures DataFrame (:data:`FAILURE_COLUMNS`) for ``rows``.

    Rows are sorted by code (in ``code_order`` when given, codes it lacks after it in
    alphabetical order; alphabetical otherwise), then interval (1m before 1d before 1M),
    then endpoint. The sort is stable, so rows equal on those keep the order they came in.
    """
    rows = list(rows)
    if not rows:
        return empty_failures()
    explained = [r.explanation() for r in rows]
    df = pd.DataFrame(
        {
            "code": [r.code for r in rows],
            "interval": [r.interval for r in rows],
            "endpoint": [r.endpoint for r in rows],
            "ret": [r.ret for r in rows],
            "msg": [r.msg for r in rows],
            "kind": [r.kind for r in rows],
            "meaning": [m for m, _ in explained],
            "action": [a for _, a in explained],
            "attempts": [r.attempts for r in rows],
            "detail": [r.detail for r in rows],
        }
    )
    return sort_failures(df, code_order)


def sort_failures(df: pd.DataFrame, code_order: Sequence[str] | None = None) -> pd.DataFrame:
    """A failures DataFrame in the standard order and dtypes (e.g. after concatenating two).

    The order is the one :func:`failures_frame` documents; the index is reset.
    """
    if df.empty:
        return empty_failures()
    df = df[FAILURE_COLUMNS].astype(FAILURE_DTYPES)
    order = list(dict.fromkeys(code_order or ()))
    extra = sorted(set(df["code"].dropna()) - set(order))
    code_rank = pd.Categorical(df["code"], categories=order + extra).codes
    interval_rank = pd.Categorical(df["interval"], categories=_INTERVAL_ORDER).codes
    endpoint_rank = pd.factorize(df["endpoint"], sort=True)[0]
    # lexsort is stable and sorts by the last key first.
    idx = np.lexsort((endpoint_rank, interval_rank, code_rank))
    return df.take(idx).reset_index(drop=True)
