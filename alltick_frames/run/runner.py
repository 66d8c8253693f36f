"""Running calls: budget -> transport -> envelope -> what the ``ret`` asks for.

The runner is the only place that retries. A :class:`Job` says how to ask for one kind of
call and what its answers mean; the runner drives any job the same way:

* every call first waits for the :class:`~alltick_frames.budget.Budget`, so the plan's windows
  are never broken by us, and leaves at the slot it was given: a call whose connection was
  ready late (a new connection, a busy loop) is moved or takes a new slot
  (:class:`~alltick_frames.run.departure.Departure`);
* every answer is read within its job's ``max_body`` bound (an endless or compressed-bomb body
  is a fault, not a memory blow-up);
* faults (timeouts, resets, HTTP 5xx, malformed bodies) are sent again after a capped,
  jittered exponential backoff, up to ``RetryPolicy.attempts`` tries; a 429/605 is sent again
  at once, when the budget (which it taught) allows, up to ``RetryPolicy.rejections`` times;
* 603 (too big) splits the call in two; 600/604 in a call of several codes bisects it until
  the bad codes stand alone, so every good code is still delivered;
* 400/401/402/601 stop the job with a typed exception; a ``ret`` the client does not know is
  asked once more, then reported as ``unknown-ret`` for that call's items alone;
* an answer a job cannot read fails only that call's items (``unreadable``), never the job;
* when the day's cap is reached the job stops, and every item not yet fetched becomes a
  failure row of kind ``daily-cap``.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from alltick_frames.api.result import FetchStats
from alltick_frames.budget import Budget
from alltick_frames.core import wire
from alltick_frames.core.errors import (
    AllTickError,
    DailyCapReached,
    Failure,
    MalformedResponse,
    TransportError,
    error_for,
)
from alltick_frames.core.kinds import Action, action_for
from alltick_frames.run.departure import Departure
from alltick_frames.run.transport import Response, Transport

log = logging.getLogger("alltick_frames")

#: (code, interval alias or None): the unit a failure row is about.
Item = tuple[str, str | None]

#: Tries of a call answered with a ``ret`` the client does not know: the first and one more.
UNKNOWN_RET_ATTEMPTS = 2


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how patiently transient faults are retried.

    Try ``n`` waits about ``base * 2**(n-1)`` seconds (at most ``cap``), jittered down by up
    to half so that parallel retries spread out; ``attempts`` tries in all.

    A call answered 429/605 is not a fault: it is sent again at once, and the budget (which
    the rejection taught, see :meth:`~alltick_frames.budget.Budget.on_rejected`) decides
    when it leaves, so a backoff on top would only slow the job. It may be refused
    ``rejections`` times before it fails ``rate-limited``; those tries do not count against
    ``attempts``.
    """

    attempts: int = 6
    base: float = 0.5
    cap: float = 30.0
    rejections: int = 20

    def delay(self, attempt: int, rng: random.Random) -> float:
        return min(self.cap, self.base * 2 ** (attempt - 1)) * rng.uniform(0.5, 1.0)


@dataclass(eq=False)
class Call:
    """One request to make. ``payload`` is the job's own description of it."""

    path: str
    payload: Any
    items: tuple[Item, ...]
    attempts: int = 0
    #: How many times this call re-asks for items the server left out of an earlier answer.
    reasks: int = 0
    #: How many of its attempts were answered 429/605.
    rejected: int = 0

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(code for code, _ in self.items))


class Job(Protocol):
    """One kind of work for the runner."""

    endpoint: str

    def request(self, call: Call) -> tuple[dict[str, str] | None, bytes | None]:
        """GET parameters, or a POST body, for ``call``."""
        ...

    def on_ok(self, call: Call, envelope: wire.Envelope, body: bytes) -> Sequence[Call]:
        """Take a ``ret`` 200 answer; return follow-up calls (next pages, re-asks)."""
        ...

    def split(self, call: Call) -> Sequence[Call]:
        """Smaller calls covering ``call`` (603, or bisection); empty if it cannot shrink."""
        ...

    def max_body(self, call: Call) -> int:
        """The most bytes ``call``'s answer may take once inflated (see
        :mod:`alltick_frames.run.bodies`): past it the call fails instead of filling memory."""
        ...

    # A job may also define ``read(response) -> wire.Envelope`` for a service that does not
    # speak AllTick's envelope (the trading-halt service); :func:`read_answer` is the default.
    #
    # And ``async digest(call, body) -> Any``, to read a successful answer's ``data`` itself,
    # off the event loop: the runner then reads only the envelope's head on the loop
    # (:func:`~alltick_frames.core.wire.peek_ok`), awaits the digest, and hands it to
    # ``on_ok`` as ``envelope.data``. A digest raises MalformedResponse for a body that is not
    # an envelope at all, which the runner treats as it treats any malformed body.


def read_answer(response: Response, endpoint: str, *, peek: bool = False) -> wire.Envelope:
    """AllTick's envelope of ``response``; HTTP 5xx and unreadable bodies are faults.

    An HTTP 401 or 429 whose body is not an envelope (a plain-text "Too Many Requests") is
    read as that ``ret``: the status says what the body does not.

    With ``peek``, an HTTP 200 whose head says ``ret`` 200 is read from its head alone
    (:func:`~alltick_frames.core.wire.peek_ok`): its ``data`` is left unread, for the job's
    ``digest``. Any other answer is read whole, as without it.

    Raises :class:`~alltick_frames.core.errors.TransportError` (``http-502: ...``) or
    :class:`~alltick_frames.core.errors.MalformedResponse`, which the runner retries.
    """
    status = response.status
    if status >= 500:
        raise TransportError(f"http-{status}: HTTP {status}", endpoint=endpoint)
    if peek and status == 200:
        head = wire.peek_ok(response.body)
        if head is not None:
            return head
    try:
        return wire.parse_envelope(response.body, endpoint)
    except MalformedResponse:
        if status in (401, 429):
            return wire.Envelope(status, f"HTTP {status}", None, None)
        raise


@dataclass
class Runner:
    """Runs calls concurrently, each one paced by ``budget``."""

    transport: Transport
    budget: Budget
    stats: FetchStats
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    concurrency: int = 4
    #: Called with the number of calls finished, and of calls added beyond those planned.
    on_progress: Callable[[int], None] | None = None
    on_more: Callable[[int], None] | None = None
    rng: random.Random = field(default_factory=random.Random)
    failures: list[Failure] = field(default_factory=list)

    async def run(self, job: Job, calls: Iterable[Call]) -> list[Failure]:
        """Run ``calls`` and everything they lead to; return the failure rows.

        Raises the typed :class:`~alltick_frames.core.errors.AllTickError` of a fail-fast ``ret``.
        """
        self._job = job
        self._queue: asyncio.Queue[Call] = asyncio.Queue()
        self._outstanding = 0
        self._idle = asyncio.Event()
        self._fatal: BaseException | None = None
        self._stopped: DailyCapReached | None = None
        self._timers: set[asyncio.TimerHandle] = set()
        for call in calls:
            self._submit(call)
        if self._outstanding == 0:
            return self.failures
        workers = [asyncio.create_task(self._worker()) for _ in range(max(1, self.concurrency))]
        try:
            await self._idle.wait()
        finally:
            for timer in self._timers:
                timer.cancel()
            for worker in workers:
                worker.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
        if self._fatal is not None:
            raise self._fatal
        return self.failures

    def _submit(self, call: Call) -> None:
        self._outstanding += 1
        self._queue.put_nowait(call)

    def _submit_more(self, calls: Sequence[Call]) -> None:
        for call in calls:
            self._submit(call)
        if calls and self.on_more is not None:
            self.on_more(len(calls))

    def _done(self, n: int = 1) -> None:
        self._outstanding -= n
        if self.on_progress is not None:
            self.on_progress(n)
        if self._outstanding <= 0:
            self._idle.set()

    async def _worker(self) -> None:
        while True:
            call = await self._queue.get()
            try:
                await self._execute(call)
            except AllTickError as exc:
                self._fatal = exc
                self._idle.set()
                return
            except Exception as exc:  # a bug: stop the job rather than hang it
                log.exception("unexpected error in the runner")
                self._fatal = exc
                self._idle.set()
                return

    async def _execute(self, call: Call) -> None:
        job = self._job
        departure: Departure | None = None
        if self._stopped is None:
            try:
                departure = Departure(self.budget, job.endpoint, on_resend=self._resent)
                await departure.acquire()
            except DailyCapReached as exc:
                self._stopped, departure = exc, None
        if departure is None:  # a call that got its slot goes, even if the cap came meanwhile
            self._fail(call, "daily-cap", None, str(self._stopped))
            return
        self._count(call)
        params, body = job.request(call)
        limit = job.max_body(call)
        try:
            if body is not None:
                response = await self.transport.post(
                    call.path, body, ready=departure, answered=departure.answered, limit=limit
                )
            else:
                response = await self.transport.get(
                    call.path,
                    params or {},
                    ready=departure,
                    answered=departure.answered,
                    limit=limit,
                )
        except TransportError as exc:
            self._fault(call, exc)
            return
        except DailyCapReached as exc:  # met while taking a new slot
            assert departure is not None
            if not departure.sent:  # the call never left
                self._uncount(call)
            self._stopped = exc
            self._fail(call, "daily-cap", None, str(exc))
            return
        if response.latency > 0:
            self.budget.observe(job.endpoint, response.latency)
        await self._answer(call, response, departure.sent_at)

    def _count(self, call: Call) -> None:
        """Count an attempt of ``call`` about to be sent."""
        call.attempts += 1
        self.stats.calls[self._job.endpoint] += 1
        if call.attempts > 1:
            self.stats.retries += 1

    def _resent(self) -> None:
        """Count a request aiohttp sent again on its own (see :class:`Departure`)."""
        self.stats.calls[self._job.endpoint] += 1
        self.stats.retries += 1

    def _uncount(self, call: Call) -> None:
        """Take back the attempt :meth:`_count` counted, for a call that never left."""
        if call.attempts > 1:
            self.stats.retries -= 1
        call.attempts -= 1
        self.stats.calls[self._job.endpoint] -= 1

    async def _answer(self, call: Call, response: Response, sent_at: float) -> None:
        job = self._job
        read = getattr(job, "read", None)
        digest = getattr(job, "digest", None)
        try:
            if read is not None:
                envelope = read(response)
            else:
                envelope = read_answer(response, job.endpoint, peek=digest is not None)
        except TransportError as exc:
            self._fault(call, exc)
            return
        await self._act(call, envelope, response, digest, sent_at)

    async def _act(
        self,
        call: Call,
        envelope: wire.Envelope,
        response: Response,
        digest: Callable[[Call, bytes], Awaitable[Any]] | None,
        sent_at: float,
    ) -> None:
        """Do what ``envelope``'s ``ret`` asks for ``call`` (sent at ``sent_at``)."""
        job = self._job
        ret, action = envelope.ret, action_for(envelope.ret)
        if log.isEnabledFor(logging.DEBUG):  # call.codes costs a tuple per answer
            log.debug(
                "%s %s codes=%d attempt=%d -> ret %s",
                job.endpoint, call.path, len(call.codes), call.attempts, ret,
            )  # fmt: skip
        if action is Action.OK:
            if digest is not None:
                try:  # off the loop; a body that is no envelope is malformed, as ever
                    envelope = replace(envelope, data=await digest(call, response.body))
                except MalformedResponse as exc:
                    self._fault(call, exc)
                    return
                except wire.Misread as misread:  # the head said 200, the whole body did not
                    await self._act(call, misread.envelope, response, None, sent_at)
                    return
            self.budget.on_accepted(job.endpoint)
            try:
                follow_ups = job.on_ok(call, envelope, response.body)
            except MalformedResponse as exc:
                self._fault(call, exc)
                return
            except Exception as exc:  # a job's reading of one answer must not sink the job
                log.exception("could not read a %s answer", job.endpoint)
                self._fail(call, "unreadable", None, f"could not read the answer: {exc!r}")
                return
            self._submit_more(follow_ups)
            self._done()
        elif action is Action.RETRY:
            self.stats.rejections[ret] += 1
            self.budget.on_rejected(job.endpoint, ret, sent_at)
            call.rejected += 1
            if call.rejected > self.retry.rejections:
                self._fail(call, "rate-limited", ret, envelope.msg)
            else:
                self._queue.put_nowait(call)  # the budget says when it may leave
        elif action in (Action.SPLIT, Action.DROP_CODE):
            # 603 shrinks any call of several items; a bad code is isolated once it stands alone.
            divisible = len(call.items) if action is Action.SPLIT else len(call.codes)
            parts = job.split(call) if divisible > 1 else ()
            if not parts:
                self._fail(call, "too-big" if action is Action.SPLIT else "code", ret, envelope.msg)
                return
            if action is Action.SPLIT:
                self.stats.splits += 1
            else:
                self.stats.bisections += 1
            self._submit_more(parts)
            self._done()
        elif action is Action.UNKNOWN:
            self.stats.faults[f"ret-{ret}"] += 1
            self._again_or_fail(call, "unknown-ret", ret, envelope.msg, UNKNOWN_RET_ATTEMPTS)
        else:
            raise error_for(ret, envelope.msg, job.endpoint, call.codes)

    def _fault(self, call: Call, exc: TransportError) -> None:
        """Count a fault by its name (``timeout``, ``http-502``, ``malformed``, ...), then retry."""
        if isinstance(exc, MalformedResponse):
            name = "malformed"
        elif exc.kind != TransportError.kind:
            name = exc.kind  # e.g. service-error
        else:
            name = exc.msg.split(":", 1)[0]
        self.stats.faults[name] += 1
        self._again_or_fail(call, exc.kind, None, exc.msg)

    def _again_or_fail(
        self, call: Call, kind: str, ret: int | None, msg: str, attempts: int | None = None
    ) -> None:
        tries = call.attempts - call.rejected
        if tries >= min(self.retry.attempts, attempts or self.retry.attempts):
            self._fail(call, kind, ret, msg)
            return
        delay = self.retry.delay(tries, self.rng)
        loop = asyncio.get_running_loop()
        timer: asyncio.TimerHandle | None = None

        def requeue() -> None:
            self._timers.discard(timer)  # type: ignore[arg-type]
            self._queue.put_nowait(call)

        timer = loop.call_later(delay, requeue)
        self._timers.add(timer)

    def _fail(self, call: Call, kind: str, ret: int | None, msg: str) -> None:
        for code, interval in call.items:
            self.failures.append(
                Failure(
                    code=code,
                    interval=interval,
                    endpoint=self._job.endpoint,
                    ret=ret,
                    msg=msg,
                    kind=kind,
                    attempts=call.attempts,
                )
            )
        self._done()
