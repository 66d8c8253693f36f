"""The jobs behind trades, depth, static_info and suspensions: what each call asks, and what
its answer means.

How the three ``symbol_list`` endpoints (``/trade-tick``, ``/depth-tick``, ``/static_info``)
are driven, by :class:`SymbolListJob` on the client's :class:`~alltick_frames.run.runner.Runner`:

* codes are cut into calls of at most ``plan.codes_per_call`` codes, one base path per call,
  since a stock and an FX code in one call fail with ``ret`` 600;
* AllTick may answer only the first N codes of a long list without saying so: every answer is
  compared with the codes asked, the missing ones are asked again once, and codes still
  missing become ``left-out`` failure rows;
* a 600/604 for a call of several codes is bisected until the bad code stands alone, so the
  good codes of the chunk still arrive; a 603 splits the call the same way;
* an order book zero on both sides is how AllTick marks a delisted stock
  (``en/api-reference/stock/price-change-trading-status.mdx``): its code gets a ``delisted``
  failure row instead of quote rows.

The trading-halt service (``/api/suspension/{sse,nyse,nasdaq}``) has its own envelope and
errors (alltick-api.md §3.6): :class:`SuspensionJob` reads them itself (see
:meth:`SuspensionJob.read`), so the runner still paces, retries and reports it like any
other call. It allows one call per minute per exchange, on every plan.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import pandas as pd

from alltick_frames import frames
from alltick_frames.core import wire
from alltick_frames.core.codes import CodeInfo
from alltick_frames.core.errors import Failure, MalformedResponse, ServiceError
from alltick_frames.core.planner import chunk_codes
from alltick_frames.core.plans import DEPTH_TICK, STATIC_INFO, SUSPENSION, TRADE_TICK
from alltick_frames.run import bodies
from alltick_frames.run.jobs import unreadable
from alltick_frames.run.runner import Call, read_answer
from alltick_frames.run.transport import Response

__all__ = [
    "EXCHANGES",
    "SuspensionJob",
    "SymbolListJob",
    "as_suspension_failure",
    "suspension_endpoint",
]

#: Exchanges the trading-halt service covers, as they appear in its URL.
EXCHANGES: tuple[str, ...] = ("sse", "nyse", "nasdaq")


# --------------------------------------------------------------------------- symbol lists


@dataclass(frozen=True, slots=True)
class _Endpoint:
    """How one ``symbol_list`` endpoint answers: its list key, code key and decoder."""

    name: str
    list_key: str
    code_key: str
    decode: Callable[[Sequence[wire.Envelope]], pd.DataFrame]
    empty: Callable[[], pd.DataFrame]
    #: The largest plausible record of one code (see :mod:`alltick_frames.run.bodies`).
    record_bytes: int


_ENDPOINTS: dict[str, _Endpoint] = {
    TRADE_TICK: _Endpoint(
        TRADE_TICK,
        "tick_list",
        "code",
        frames.decode_trade_ticks,
        frames.empty_trades,
        bodies.TICK_BYTES,
    ),
    DEPTH_TICK: _Endpoint(
        DEPTH_TICK,
        "tick_list",
        "code",
        frames.decode_depth_ticks,
        frames.empty_depth,
        bodies.BOOK_BYTES,
    ),
    # Static information is keyed by "symbol", not "code" (alltick-api.md §3.5).
    STATIC_INFO: _Endpoint(
        STATIC_INFO,
        "static_info_list",
        "symbol",
        frames.decode_static_info,
        frames.empty_static_info,
        bodies.INFO_BYTES,
    ),
}


@dataclass
class SymbolListJob:
    """``/trade-tick``, ``/depth-tick`` or ``/static_info`` for many codes.

    ``chunk`` is the most codes per call (the plan's ``codes_per_call``). Each answer is
    decoded as it arrives; :meth:`frame` puts them together. ``left_out`` collects the codes
    the server left out of an answer twice, ``rejected`` those whose record was unreadable,
    ``delisted`` the codes whose order book is zero on both sides.
    """

    endpoint: str
    chunk: int
    _frames: list[pd.DataFrame] = field(default_factory=list)
    left_out: list[Failure] = field(default_factory=list)
    #: Codes whose record could not be read (kind ``unreadable``).
    rejected: list[Failure] = field(default_factory=list)
    delisted: list[Failure] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.endpoint not in _ENDPOINTS:
            raise ValueError(f"not a symbol_list endpoint: {self.endpoint!r}")
        if self.chunk < 1:
            raise ValueError(f"chunk must be >= 1, got {self.chunk}")

    @property
    def spec(self) -> _Endpoint:
        return _ENDPOINTS[self.endpoint]

    def calls(self, codes: Sequence[CodeInfo], reasks: int = 0) -> list[Call]:
        """Calls of at most ``chunk`` codes, one base path each."""
        return [self._call(part, reasks) for part in chunk_codes(codes, self.chunk)]

    def _call(self, codes: tuple[CodeInfo, ...], reasks: int = 0) -> Call:
        items = tuple((c.code, None) for c in codes)
        return Call(f"{codes[0].path}/{self.endpoint}", codes, items, reasks=reasks)

    def request(self, call: Call) -> tuple[dict[str, str], None]:
        data = wire.symbol_list_data(c.code for c in call.payload)
        return {"query": wire.query_param(data, wire.new_trace())}, None

    def on_ok(self, call: Call, envelope: wire.Envelope, body: bytes) -> list[Call]:
        spec = self.spec
        data = envelope.data if envelope.data is not None else {}
        records = (data.get(spec.list_key) if isinstance(data, dict) else None) or []
        if not isinstance(data, dict) or not isinstance(records, list):
            what = MalformedResponse(f"the answer holds no {spec.list_key}", endpoint=spec.name)
            self.rejected += [unreadable(c.code, None, spec.name, what) for c in call.payload]
            return []
        # Records are matched by the code they carry; a record for no code asked is junk.
        asked = {c.code for c in call.payload}
        mine = [r for r in records if isinstance(r, dict) and r.get(spec.code_key) in asked]
        # Decoded now, not at the end, so that a record that is not what the docs say (a
        # price that is not a number, ...) fails its own code alone, with a row saying why.
        try:
            self._decode(mine, call.attempts)
        except MalformedResponse:
            for record in mine:
                try:
                    self._decode([record], call.attempts)
                except MalformedResponse as exc:
                    code = record[spec.code_key]
                    self.rejected.append(unreadable(code, None, spec.name, exc))
        answered = {r[spec.code_key] for r in mine}
        missing = tuple(c for c in call.payload if c.code not in answered)
        if not missing:
            return []
        if call.reasks == 0:  # ask once more, for the missing codes only
            return self.calls(missing, reasks=1)
        self.left_out.extend(
            Failure(
                code=c.code,
                endpoint=self.endpoint,
                msg=f"left out of the answer twice (asked with {len(call.payload)} codes)",
                kind="left-out",
                attempts=call.attempts + 1,  # the first ask and this re-ask
            )
            for c in missing
        )
        return []

    def max_body(self, call: Call) -> int:
        return bodies.bound(len(call.payload), self.spec.record_bytes)

    def _decode(self, records: list[dict[str, Any]], attempts: int) -> None:
        """Decode ``records`` (raises MalformedResponse); a depth code whose book is zero on
        both sides gets a ``delisted`` row instead of quote rows."""
        answer = self._answer(records)
        if self.endpoint != DEPTH_TICK:
            self._frames.append(self.spec.decode([answer]))
            return
        books, status = frames.decode_depth_books([answer])
        known = {f.code for f in self.delisted}
        self.delisted += [
            Failure(
                code=code,
                endpoint=DEPTH_TICK,
                msg="order book zero on both sides (delisted)",
                kind="delisted",
                attempts=attempts,
            )
            for code, book in status.items()
            if book == "delisted" and code not in known
        ]
        self._frames.append(books)

    def _answer(self, records: list[dict[str, Any]]) -> wire.Envelope:
        """A successful envelope holding ``records`` alone, for the decoder."""
        return wire.Envelope(200, "ok", None, {self.spec.list_key: records})

    def split(self, call: Call) -> list[Call]:
        """Halve the call's codes (a 603, or bisecting to find a 600/604 code)."""
        codes: tuple[CodeInfo, ...] = call.payload
        half = len(codes) // 2
        return [self._call(part, call.reasks) for part in (codes[:half], codes[half:]) if part]

    def frame(self, code_order: Sequence[str]) -> pd.DataFrame:
        """Every answer decoded, limited to the codes asked, in the caller's code order.

        A code answered twice (a re-ask racing a slow answer) keeps its first answer.
        """
        spec = self.spec
        parts = [f for f in self._frames if len(f)]
        if not parts:
            return spec.empty()
        data = pd.concat(parts, ignore_index=True)
        rank = {code: i for i, code in enumerate(code_order)}
        ranks = data["code"].map(rank)
        data = data[ranks.notna()]
        if self.endpoint == DEPTH_TICK:
            # Long form: keep the first book (code, seq) seen for each code.
            first_seq = data.groupby("code", observed=True)["seq"].transform("first")
            data = data[data["seq"] == first_seq]
            data = data.drop_duplicates(["code", "side", "level"])
        else:
            data = data.drop_duplicates("code")
        order = data["code"].map(rank).astype("int64").to_numpy()
        data = data.iloc[order.argsort(kind="stable")]
        return data.reset_index(drop=True)


# --------------------------------------------------------------------------- trading halts


def suspension_endpoint(exchange: str) -> str:
    """The budget and statistics name of an exchange's halt feed, e.g. ``"suspension/sse"``.

    Each exchange has its own window of one call per minute
    (:func:`alltick_frames.budget.windows_for`).
    """
    return f"{SUSPENSION}/{_exchange(exchange)}"


def _exchange(exchange: str) -> str:
    key = exchange.strip().lower() if isinstance(exchange, str) else exchange
    if key not in EXCHANGES:
        raise ValueError(
            f"exchange must be one of {', '.join(EXCHANGES)} (AllTick's halt service covers "
            f"only these); got {exchange!r}"
        )
    return key


@dataclass
class SuspensionJob:
    """Trading halts of one exchange: one call, the whole past year.

    "All interfaces do not support pagination and return the full data for the most recent
    year" (``en/api-reference/stock/suspension.mdx``), so no ``page`` or ``size`` is sent and
    no page is followed.
    """

    exchange: str
    endpoint: str = ""
    pages: list[wire.SuspensionPage] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.exchange = _exchange(self.exchange)
        self.endpoint = suspension_endpoint(self.exchange)

    @property
    def path(self) -> str:
        return f"/api/suspension/{self.exchange}"

    def call(self) -> Call:
        return Call(self.path, None, ((self.exchange, None),))

    def request(self, call: Call) -> tuple[dict[str, str], None]:
        return {}, None

    def read(self, response: Response) -> wire.Envelope:
        """The halt service's answer in the runner's terms, from its HTTP status and the
        shape of its body:

        * ``{"success": true, ...}``: ``ret`` 200 with the
          :class:`~alltick_frames.core.wire.SuspensionPage` as data;
        * HTTP 429 (too frequent; the service's body is plain text) or HTTP 401 (the host's
          token gate, ``{"msg":"token is required","trace":"","ret":401}``), whatever the
          body: that ``ret``, so the budget holds the exchange back for its window and the
          runner retries, or the job stops with AuthError;
        * ``{"success": false, "error": "..."}`` with another status (HTTP 500, the page's
          documented error): the text is all there is to go on, so it is read for AllTick's
          own words for those two errors (``en/getting-started/error-code-description.mdx``):
          a text holding "token invalid" is ``ret`` 401, "Too Many Requests" (any case)
          ``ret`` 429. Any other error
          is a :class:`~alltick_frames.core.errors.ServiceError`, retried with backoff and
          reported as ``service-error`` if it persists;
        * anything else as any AllTick answer (a proxy's 502 page is a fault).
        """
        try:
            page = wire.parse_suspension(response.body)
        except MalformedResponse:
            return read_answer(response, self.endpoint)
        if page.success:
            return wire.Envelope(200, "ok", None, page)
        error = page.error or "unknown error"
        ret = response.status if response.status in (401, 429) else _documented_ret(error)
        if ret is not None:
            return wire.Envelope(ret, error, None, None)
        raise ServiceError(error, endpoint=self.endpoint)

    def on_ok(self, call: Call, envelope: wire.Envelope, body: bytes) -> list[Call]:
        self.pages.append(envelope.data)
        return []

    def split(self, call: Call) -> list[Call]:
        return []  # one exchange per call: nothing to split

    def max_body(self, call: Call) -> int:
        return bodies.SUSPENSION_BYTES

    def frame(self) -> pd.DataFrame:
        """Every record received, newest notice first, as :data:`frames.SUSPENSION_DTYPES`."""
        records = [r for p in self.pages for r in p.data]
        return frames.decode_suspensions(records, self.exchange)


#: AllTick's documented error contents (``en/getting-started/error-code-description.mdx``)
#: that change what the client does, by the ``ret`` they stand for.
_DOCUMENTED_ERRORS: dict[str, int] = {"token invalid": 401, "too many requests": 429}


def _documented_ret(error: str) -> int | None:
    """The ``ret`` of a halt-service error whose text holds one of AllTick's documented words."""
    text = error.lower()
    return next((ret for words, ret in _DOCUMENTED_ERRORS.items() if words in text), None)


def as_suspension_failure(failure: Failure) -> Failure:
    """A failure of the halt job under the failures schema's endpoint name, ``suspension``."""
    return replace(failure, endpoint=SUSPENSION)
