"""What went wrong, as exceptions and failure rows; and keeping the token out of both.

A typed exception, :func:`error_for`, for callers who prefer to raise: each carries the
``ret``, the endpoint and the codes, and says what happened and what to do (the words come
from :mod:`alltick_frames.core.kinds`).

Every failure the client meets becomes one :class:`Failure`; :func:`failures_frame` turns a
list of them into the stable failures schema (:data:`FAILURE_COLUMNS`), empty but typed when
everything went well.

The token is a secret: no exception here ever holds it. :func:`redact` strips ``token=...``
from any text (aiohttp puts the full URL, token included, into its exception messages), and
every exception message passes through it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from alltick_frames.core.kinds import KIND_ALIASES, KINDS, explain, kind_for, ret_kind

__all__ = [
    "FAILURE_COLUMNS",
    "FAILURE_DTYPES",
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
    "ServiceError",
    "TransportError",
    "empty_failures",
    "error_for",
    "failures_frame",
    "redact",
    "sort_failures",
]

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
        if self.ret is not None and ret_kind(self.ret) == self.kind:
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
    """603: more codes, groups or bars than the plan allows in one call, or data it lacks."""

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
        if self.ret is not None and ret_kind(self.ret) == self.kind:
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
    return _empty_failures().copy()  # a copy of one built once: 40 times as fast as a build


@functools.cache
def _empty_failures() -> pd.DataFrame:
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
