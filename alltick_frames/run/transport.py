"""One HTTP call on an aiohttp session, with the token kept out of every message.

aiohttp writes the full URL, ``?token=`` included, into its exceptions. Every failure leaves
this module as a :class:`~alltick_frames.core.errors.TransportError` whose text went through
:func:`~alltick_frames.core.errors.redact`, with the original exception detached, so a traceback,
a log record or a failure row can never carry the token.

A request may carry a ``ready`` hook: the transport calls it once the request's connection
is ready (reused from the pool, or freshly opened) and just before the request is written,
and awaits what it returns (an ``async def`` hook: always; a plain one returns None when it
has nothing to wait for).
The runner uses it to make each call leave at its budget slot, however long the connection
took to open. Time spent in the hook is the budget's, not the network's: the request's
``timeout`` is paused while it runs, so a call waiting for a slot behind a 605's block never
times out without having been sent. The answer's ``latency`` is measured from the hook's
end (the request leaving) to its status line and headers arriving. A request may also carry an
``answered`` hook, called as soon as its status line and headers are in (before the body is
read): the moment the runner's budget knows the server has dated the call.

A request may also carry a ``limit``: the most bytes its answer may take once inflated.
Bodies are read and inflated by :func:`~alltick_frames.run.bodies.read_body`, never whole by
aiohttp, so an endless or compressed-bomb answer fails its call instead of filling memory.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import TYPE_CHECKING
from urllib.parse import quote, quote_plus

from alltick_frames.core.errors import TransportError, redact
from alltick_frames.run.bodies import ACCEPT_ENCODING, DEFAULT_BYTES, read_body

if TYPE_CHECKING:
    import aiohttp

log = logging.getLogger("alltick_frames")

#: Called when a request's connection is ready, just before the request is written: what it
#: returns (if not None) is awaited first, outside the request's timeout.
Ready = Callable[[], Awaitable[None] | None]
#: Called once a request's status line and headers have arrived, before its body is read.
Answered = Callable[[], None]


class Secret:
    """A string that never shows itself in a repr, str or log line."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self._value)


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    body: bytes
    #: Seconds from the request leaving to its headers arriving (0 when not measured).
    latency: float = 0.0


class Transport:
    """Sends AllTick calls. ``base_url`` is the scheme and host, e.g. ``https://quote.alltick.co``.

    The session is opened lazily and closed by :meth:`close`.
    """

    def __init__(
        self, base_url: str, token: Secret, *, timeout: float = 30.0, connections: int = 32
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._token = token
        self.timeout = timeout
        self._connections = connections
        self._session: aiohttp.ClientSession | None = None

    def __repr__(self) -> str:
        return f"Transport({self.base_url!r})"

    def _open(self) -> aiohttp.ClientSession:
        import aiohttp

        if self._session is None or self._session.closed:
            trace = aiohttp.TraceConfig()
            trace.on_connection_reuseconn.append(_connection_ready)
            trace.on_connection_create_end.append(_connection_ready)
            self._session = aiohttp.ClientSession(
                # The total is kept by _send, which pauses it while the call waits for its slot.
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=self.timeout),
                connector=aiohttp.TCPConnector(limit=self._connections),
                raise_for_status=False,
                trace_configs=[trace],
                auto_decompress=False,  # read_body inflates, within the call's bound
                headers={"Accept-Encoding": ACCEPT_ENCODING},
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def get(
        self,
        path: str,
        params: dict[str, str],
        *,
        ready: Ready | None = None,
        answered: Answered | None = None,
        limit: int = DEFAULT_BYTES,
    ) -> Response:
        """GET ``path`` with ``params`` (URL-encoded once by aiohttp) plus the token."""
        return await self._send("GET", path, params, None, ready, answered, limit)

    async def post(
        self,
        path: str,
        body: bytes,
        *,
        ready: Ready | None = None,
        answered: Answered | None = None,
        limit: int = DEFAULT_BYTES,
    ) -> Response:
        """POST a JSON ``body`` to ``path``; the token goes in the URL, as AllTick wants."""
        return await self._send("POST", path, {}, body, ready, answered, limit)

    async def _send(
        self,
        method: str,
        path: str,
        params: dict[str, str],
        body: bytes | None,
        ready: Ready | None,
        answered: Answered | None,
        limit: int,
    ) -> Response:
        import aiohttp

        url = self.base_url + path
        query = {"token": self._token.reveal(), **params}
        headers = {"Content-Type": "application/json"} if body is not None else None
        error: TransportError | None = None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        sent = loop.time()
        try:
            async with asyncio.timeout_at(deadline) as timer:

                async def leave() -> None:
                    nonlocal deadline, sent
                    waiting = ready() if ready is not None else None
                    if waiting is None:  # nothing to wait for: the clock need not pause
                        sent = loop.time()
                        return
                    paused = loop.time()
                    timer.reschedule(None)
                    try:
                        await waiting
                    finally:
                        sent = loop.time()
                        deadline += sent - paused
                        timer.reschedule(deadline)

                async with self._open().request(
                    method, url, params=query, data=body, headers=headers, trace_request_ctx=leave
                ) as resp:
                    latency = loop.time() - sent
                    if answered is not None:
                        answered()
                    return Response(resp.status, await read_body(resp, limit, path), latency)
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            kind = "timeout" if isinstance(exc, TimeoutError) else type(exc).__name__
            text = scrub(str(exc), self._token.reveal())
            error = TransportError(ret=None, msg=f"{kind}: {text or 'no detail'}", endpoint=path)
        # Raised outside the except block so the aiohttp exception (and its URL) is not chained.
        raise error


def scrub(text: str, token: str) -> str:
    """``text`` without ``token``, however a URL spelled it, and without any ``token=`` value.

    The token is blanked first, in every spelling a URL may give it (as is, or percent-encoded),
    then :func:`~alltick_frames.core.errors.redact` blanks ``token=...``. In the other order a
    token holding a character that ends redact's match (``'``, ``(``, a space) would leave its
    tail behind.
    """
    import yarl

    if token:
        query = yarl.URL("/").with_query(token=token).raw_query_string.removeprefix("token=")
        for form in sorted({token, query, quote(token, safe=""), quote_plus(token)}, key=len)[::-1]:
            text = text.replace(form, "***")
    return redact(text)


async def _connection_ready(
    _session: aiohttp.ClientSession, context: SimpleNamespace, _params: object
) -> None:
    leave: Ready | None = context.trace_request_ctx
    if leave is not None:
        await leave()
