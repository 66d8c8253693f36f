"""The envelope's edges (issue 11 item 3): error bodies with and without ``data``, with and
without ``trace``, and the legacy ``ret`` 201/202, against the emulator's switches.

``en/integration-process/http-common-standard-headers.mdx`` documents the error body as
``{"ret":202,"msg":"request data param invalid","trace":...,"data":{}}``; the error-code page
lists the same error as 400 with no ``data``; the token gate sends ``trace`` but other bodies
may not. The client reads every one of these shapes, and treats 201 and 202 as 400.
"""

from __future__ import annotations

from typing import Any

import orjson
import pandas as pd
import pytest
from quote_helpers import FAST, QUICK_RETRY, calls_of, client_for

from alltick_frames.api.result import FetchStats
from alltick_frames.budget import Budget
from alltick_frames.core import wire
from alltick_frames.core.errors import RequestError
from alltick_frames.run import bodies
from alltick_frames.run.runner import Call, Runner, read_answer
from alltick_frames.run.transport import Secret, Transport

#: The four shapes of an error body: (error_data, error_trace).
SHAPES = [(False, True), (True, True), (False, False), (True, False)]
SHAPE_IDS = ["trace", "trace+data", "bare", "data"]

TRACE = "edge-1"
GOOD = {"code": "EURUSD", "kline_type": 8, "kline_timestamp_end": 0, "adjust_type": 0}


class OneKline:
    """A job that sends one ``/kline`` query document exactly as given, right or wrong."""

    endpoint = "kline"

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document

    def request(self, call: Call) -> tuple[dict[str, str], None]:
        return {"query": orjson.dumps(self.document).decode()}, None

    def on_ok(self, call: Call, envelope: wire.Envelope, body: bytes) -> list[Call]:
        raise AssertionError(f"the emulator accepted a wrong request: {body!r}")

    def split(self, call: Call) -> list[Call]:
        return []

    def max_body(self, call: Call) -> int:
        return bodies.ENVELOPE_BYTES  # an error envelope is all it can get


def bad_data() -> dict[str, Any]:
    """``query_kline_num`` as a string: 400/202 "request data param invalid"."""
    return {"trace": TRACE, "data": {**GOOD, "query_kline_num": "8"}}


def bad_header() -> dict[str, Any]:
    """A trace of 65 characters: 400/201 "request header param invalid", and no trace back."""
    return {"trace": "t" * 65, "data": {**GOOD, "query_kline_num": 8}}


async def answer(emu: Any, document: dict[str, Any]) -> wire.Envelope:
    transport = Transport(emu.url, Secret(emu.token))
    query = {"query": orjson.dumps(document).decode()}
    try:
        response = await transport.get("/quote-b-api/kline", query)
    finally:
        await transport.close()
    return read_answer(response, "kline")


async def run(emu: Any, document: dict[str, Any]) -> RequestError:
    transport = Transport(emu.url, Secret(emu.token))
    try:
        runner = Runner(transport, Budget(FAST), FetchStats(), QUICK_RETRY)
        call = Call("/quote-b-api/kline", None, (("EURUSD", "1d"),))
        with pytest.raises(RequestError) as info:
            await runner.run(OneKline(document), [call])
    finally:
        await transport.close()
    return info.value


@pytest.mark.parametrize(("error_data", "error_trace"), SHAPES, ids=SHAPE_IDS)
async def test_error_bodies_are_read_in_every_shape(alltick_emulator, error_data, error_trace):
    emu = alltick_emulator(plan=FAST, error_data=error_data, error_trace=error_trace)
    got = await answer(emu, bad_data())
    assert (got.ret, got.msg) == (400, "request data param invalid")
    assert got.trace == (TRACE if error_trace else None)
    assert got.data == ({} if error_data else None)
    header = await answer(emu, bad_header())
    assert (header.ret, header.msg, header.trace) == (400, "request header param invalid", None)


@pytest.mark.parametrize(("error_data", "error_trace"), SHAPES, ids=SHAPE_IDS)
async def test_legacy_201_and_202_stop_the_job_as_400_does(
    alltick_emulator, error_data, error_trace
):
    emu = alltick_emulator(
        plan=FAST, old_invalid_codes=True, error_data=error_data, error_trace=error_trace
    )
    data_error = await run(emu, bad_data())
    assert (data_error.ret, data_error.kind, data_error.msg) == (
        202,
        "bad-request",
        "request data param invalid",
    )
    header_error = await run(emu, bad_header())
    assert (header_error.ret, header_error.kind) == (201, "bad-request")
    # Fail fast: one call each, never retried.
    assert calls_of(emu, "kline") == {"202": 1, "201": 1}


@pytest.mark.parametrize(("error_data", "error_trace"), SHAPES, ids=SHAPE_IDS)
async def test_a_bad_code_is_isolated_whatever_the_error_body(
    alltick_emulator, error_data, error_trace
):
    """600 bodies in every shape: the bisection still finds the bad code, the rest arrive."""
    emu = alltick_emulator(
        plan=FAST, old_invalid_codes=True, error_data=error_data, error_trace=error_trace
    )
    codes = ["AAPL.US", "TSLA.US", "NOPE.US", "700.HK"]
    async with client_for(emu) as client:
        result = await client.trades(codes)
    assert list(result.data["code"]) == ["AAPL.US", "TSLA.US", "700.HK"]
    rows = result.failures[["code", "ret", "kind", "msg"]].values.tolist()
    assert rows == [["NOPE.US", 600, "code-invalid", "code invalid"]]
    # 4 codes: 600; 2 + 2: 200 and 600; 1 + 1: 600 and 200.
    assert calls_of(emu, "trade-tick") == {"600": 3, "200": 2}
    assert pd.isna(result.failures["detail"]).all()
