"""Every answer body AllTick documents, fed to the client's decoders (the fixtures are
``tests/fixtures/docs/``, see ``tests/docs_fixtures.py``)."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
import pytest
from docs_fixtures import examples

from alltick_frames import frames
from alltick_frames.core import wire
from alltick_frames.core.codes import classify
from alltick_frames.core.errors import error_for
from alltick_frames.core.intervals import parse_interval
from alltick_frames.core.planner import KlinePage, first_page, kline_request
from alltick_frames.core.plans import get_plan
from alltick_frames.run.jobs import KlineJob, with_request
from alltick_frames.run.runner import Call

BODIES = [
    (i, {**e, "response": e.get("response", e.get("documented_response"))})
    for i, e in examples()
    if e.get("decoder")
]
ERRORS = [(i, e) for i, e in examples() if e.get("response", {}).get("ret", 200) != 200]


def requested(example: dict[str, Any]) -> dict[str, Any]:
    """The ``data`` of the example's own request (none for the halt service's)."""
    request = example["request"]
    return (request.get("query") or request.get("body") or {}).get("data", {})


def decode(decoder: str, body: dict[str, Any], request: dict[str, Any]) -> pd.DataFrame:
    raw = json.dumps(body).encode()
    if decoder.startswith("suspension/"):
        return frames.decode_suspensions(body["data"], decoder.split("/")[1])
    if decoder == "kline":
        # The job reads each answer with the request it made (see with_request).
        page = KlinePage(
            classify(request["code"]),
            parse_interval(request["kline_type"]),
            request["kline_timestamp_end"],
            request["query_kline_num"],
        )
        raw = with_request(raw, wire.parse_envelope(raw), page)
    return {
        "kline": frames.decode_kline_bodies,
        "batch-kline": frames.decode_batch_kline_bodies,
        "trade-tick": frames.decode_trade_ticks,
        "depth-tick": frames.decode_depth_ticks,
        "static_info": frames.decode_static_info,
    }[decoder]([raw])


def expected_rows(decoder: str, data: Any, request: dict[str, Any]) -> list[dict[str, Any]]:
    """What the decoder must make of ``data``: one dict per row, a few columns each."""
    if decoder == "kline":
        return [
            {"code": data.get("code", request["code"]), "close": float(b["close_price"])}
            for b in data["kline_list"]
        ]
    if decoder == "batch-kline":
        return [
            {"code": g["code"], "close": float(b["close_price"])}
            for g in data["kline_list"]
            for b in g["kline_data"]
        ]
    if decoder == "trade-tick":
        return [{"code": t["code"], "price": float(t["price"])} for t in data["tick_list"]]
    if decoder == "depth-tick":
        return [
            {"code": t["code"], "side": side[:-1], "price": float(level["price"])}
            for t in data["tick_list"]
            for side in ("bids", "asks")
            for level in t[side]
        ]
    if decoder == "static_info":
        return [{"code": i["symbol"], "lot_size": float(i["lot_size"])} for i in data]
    return [{"reason": r.get("haltReason")} for r in data]  # suspensions


@pytest.mark.parametrize("example", [e for _, e in BODIES], ids=[i for i, _ in BODIES])
def test_every_documented_body_decodes(example):
    decoder, body, request = example["decoder"], example["response"], requested(example)
    df = decode(decoder, body, request)
    data = body["data"]["static_info_list"] if decoder == "static_info" else body["data"]
    expected = expected_rows(decoder, data, request)
    assert len(df) == len(expected)
    columns = list(expected[0])
    got = df[columns].astype(object).to_dict("records")
    assert got == expected
    if decoder.startswith("suspension/"):
        assert df["halted_at"].notna().all() and df["published_at"].notna().all()


def test_the_quick_start_body_decodes_with_the_requested_code():
    """getting-started/process.mdx: bars with an integer timestamp and no code, kline_type or
    turnover; the call knows the code and the interval, and turnover is NaN."""
    (example,) = [e for i, e in BODIES if i.startswith("getting-started-process:")]
    assert "code" not in example["response"]["data"]
    df = decode("kline", example["response"], requested(example))
    row = df.iloc[0]
    assert (row["code"], row["interval"]) == ("AAPL.US", "1d")
    assert row["timestamp"] == pd.Timestamp(1_700_000_000, unit="s", tz="UTC")
    assert (row["open"], row["volume"]) == (189.5, 52_000_000.0)
    assert pd.isna(row["turnover"])
    # The same through the job that made the request, as the client reads its answers.
    now = 1_700_100_000
    req = kline_request("AAPL.US", "1d", count=10, now=now)

    def through_the_job(body: dict[str, Any]) -> KlineJob:
        raw = json.dumps(body).encode()
        job = KlineJob(req, get_plan("basic"), now=now)
        call = Call("/quote-stock-b-api/kline", first_page(req, req.codes[0], job.plan), ())
        assert job.on_ok(call, wire.parse_envelope(raw), raw) == []  # a stock: one page
        return job

    # The illustration's start, 2023-11-14 22:13:20Z, is not on a whole minute: no bar starts
    # there, so the bar checks drop it and say so (frames.checks, grid).
    job = through_the_job(example["response"])
    assert job.frame().empty
    assert [(f.code, f.interval, f.kind) for f in job.rejected] == [("AAPL.US", "1d", "bad-bars")]
    assert "off the 1d grid" in job.rejected[0].msg
    # On a whole minute, the job's frame is the decoder's.
    body = json.loads(json.dumps(example["response"]))
    body["data"]["kline_list"][0]["timestamp"] = 1_700_000_000 - 1_700_000_000 % 60
    job = through_the_job(body)
    pd.testing.assert_frame_equal(job.frame(), decode("kline", body, requested(example)))
    assert job.rejected == []


@pytest.mark.parametrize("example", [e for _, e in ERRORS], ids=[i for i, _ in ERRORS])
def test_every_documented_error_body_is_read(example):
    """The standard-header page's error example (ret 202 with data {}) is read field by field
    and stops the job as a 400 would (test_envelope_edges.py runs it against the emulator)."""
    body = example["response"]
    envelope = wire.parse_envelope(json.dumps(body).encode())
    assert (envelope.ret, envelope.msg) == (body["ret"], body["msg"])
    assert (envelope.trace, envelope.data) == (body.get("trace"), body.get("data"))
    assert error_for(envelope.ret, envelope.msg).kind == "bad-request"
