"""The token never shows: not in a log record (the whole package at DEBUG), an exception, a
failure row, a repr, the stats or the recorded request."""

from __future__ import annotations

import logging
import socket
import traceback
from typing import Any
from urllib.parse import quote, quote_plus

import pytest
from test_client_support import TOKEN, client, codes_by_class, fast_plan, tokens

from alltick_frames import AuthError, FetchFailed, FetchResult, RetryPolicy
from alltick_frames.emulator import EmulatorServer

PLAN = fast_plan(100, batch_groups=10)
#: A refused token is a secret too.
WRONG = "tk-Wrong-3kJ9qZ5cVb7Nm1-secret"
SECRETS = [TOKEN, WRONG]


def leaks(text: str) -> list[str]:
    """The secrets ``text`` holds, in any spelling a URL gives them, or a tell-tale piece."""
    forms = {f for s in SECRETS for f in (s, quote(s, safe=""), quote_plus(s), s[3:15])}
    return [f for f in forms if f in text]


def exception_texts(exc: BaseException) -> str:
    texts, todo, seen = [], [exc], set()
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        texts += [str(e), repr(e), "".join(traceback.format_exception(e)), repr(vars(e))]
        todo += [e.__cause__, e.__context__]
    return "\n".join(texts)


def result_texts(result: FetchResult) -> str:
    return "\n".join(
        [
            repr(result),
            str(result.stats),
            repr(result.stats.as_dict()),
            repr(result.request),
            result.failures.to_string(),
            result.failures.to_csv(),
            result.data.head().to_string(),
        ]
    )


def record_texts(records: list[logging.LogRecord]) -> str:
    handler = logging.Handler()
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    out = []
    for record in records:
        out += [handler.format(record), repr(record.args), repr(record.__dict__)]
    return "\n".join(out)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_the_token_never_shows(alltick_emulator, caplog) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, the package's and aiohttp's
    emu: EmulatorServer = alltick_emulator(
        tokens=tokens(PLAN),
        faults={"reset": 0.08, "malformed": 0.08, "http_5xx": 0.08, "slow": 0.05, "latency": 0.02},
        seed=5,
    )
    by_class = codes_by_class(emu)
    codes = by_class["US"][:10] + by_class["fx"][:10] + ["NOPE.US", "NOSUCHFX"]
    texts: list[str] = []

    async with client(emu, PLAN) as c:
        texts += [repr(c), str(c), repr(c.budget), repr(c._transport), repr(vars(c))]
        history = await c.klines(codes, "1h", count=800)
        latest = await c.latest(codes, ["1m", "1d"])
        texts += [result_texts(history), result_texts(latest)]
        estimate = c.estimate("klines", codes, "1h", count=800)
        texts += [str(estimate), repr(estimate.as_dict())]
    assert history.stats.retries > 0 and set(history.failures["kind"]) >= {"code-invalid"}

    # A refused token: the exception and its chain.
    async with client(emu, PLAN, token=WRONG) as c:
        with pytest.raises(AuthError) as refused:
            await c.klines(codes, "1d", count=5)
    texts.append(exception_texts(refused.value))

    # Nothing listening: transport failures as rows, then as an exception.
    dead = f"http://127.0.0.1:{closed_port()}"
    options: dict[str, Any] = {"retry": RetryPolicy(attempts=2, base=0.01)}
    async with client(emu, PLAN, **options) as c:
        c._transport.base_url = dead
        down = await c.klines(["AAPL.US", "EURUSD"], "1d", count=5)
    assert set(down.failures["kind"]) == {"transport"}
    assert down.failures["msg"].str.startswith("ClientConnectorError").all()
    texts.append(result_texts(down))
    async with client(emu, PLAN, raise_on_failure=True, **options) as c:
        c._transport.base_url = dead
        with pytest.raises(FetchFailed) as failed:
            await c.latest(["AAPL.US", "EURUSD"])
    texts.append(exception_texts(failed.value) + failed.value.failures.to_string())

    assert len(caplog.records) > 10  # the package did log at DEBUG
    texts.append(caplog.text)
    texts.append(record_texts(caplog.records))
    found = leaks("\n".join(texts))
    assert found == [], found


def test_the_leak_detector_finds_every_spelling() -> None:
    for text in (TOKEN, f"?token={quote_plus(WRONG)}&q=1", f"token%3D{quote(TOKEN, safe='')}"):
        assert leaks(text)
    assert leaks("token=***&query=%7B%7D") == []
