"""Random bodies against every reader of an answer (issue 10): the envelope parsers, each
decoder, the bar checks, and the jobs' answer handling. Each returns data or failure rows, or
raises the one error the runner turns into a failure row (MalformedResponse, a
TransportError); nothing else, whatever the server sends.

Bodies come in three strengths: raw bytes, random JSON, and answers shaped like AllTick's
whose every field may be garbage (the strongest: they get past the envelope checks).
``max_examples`` keeps the whole module to a few seconds.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_client_support import NOW, fast_plan

from alltick_frames import frames
from alltick_frames.core import planner, wire
from alltick_frames.core.codes import classify
from alltick_frames.core.errors import Failure, MalformedResponse, TransportError
from alltick_frames.core.intervals import parse_interval
from alltick_frames.core.plans import DEPTH_TICK, STATIC_INFO, TRADE_TICK
from alltick_frames.frames import checks
from alltick_frames.run.jobs import BatchJob, KlineJob
from alltick_frames.run.quote_jobs import SuspensionJob, SymbolListJob
from alltick_frames.run.transport import Response

PLAN = fast_plan(100)
FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --------------------------------------------------------------------------- strategies

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
#: What a field of a bar, a tick or a record may hold: mostly number-like text.
numberish = st.one_of(
    st.integers(min_value=-(2**66), max_value=2**66).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["", " ", "1.5", "-0", "1e309", "NaN", "inf", "n/a", "0x10", "1,5", "１"]),
    st.integers(min_value=-(2**66), max_value=2**66),
    scalars,
)
codes = st.sampled_from(["EURUSD", "EURUSD", "AAPL.US", "GBPUSD", "", None, 7])
kline_types = st.one_of(
    st.just(5), st.just(5), st.integers(-2, 12), st.sampled_from(["5", "x", None])
)
#: Plausible values, so that many bodies get past the decoders to the checks and the paging.
HOUR = int(NOW.timestamp()) // 3600 * 3600
starts = st.integers(0, 600).map(lambda k: str(HOUR - 3600 * k))
prices = st.floats(0.01, 1e4).map(lambda x: f"{x:.5f}")


def record(fields: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional=dict.fromkeys(fields, numberish))


PRICE_FIELDS = ["open_price", "high_price", "low_price", "close_price", "volume", "turnover"]


def _spoil(bar: dict[str, Any], field: str | None, value: Any) -> dict[str, Any]:
    if field is None:
        return bar
    if value is ...:
        return {k: v for k, v in bar.items() if k != field}
    return {**bar, field: value}


#: A plausible bar, often with one field replaced by anything (or left out).
bar = st.builds(
    _spoil,
    st.fixed_dictionaries({"timestamp": starts, **dict.fromkeys(PRICE_FIELDS, prices)}),
    st.sampled_from([None, None, None, "timestamp", *PRICE_FIELDS]),
    st.one_of(numberish, st.just(...)),
)
items = st.one_of(st.lists(bar, min_size=1, max_size=6), st.lists(bar | json_values, max_size=4))
kline_data = st.one_of(
    st.fixed_dictionaries({"code": codes, "kline_type": kline_types, "kline_list": items}),
    st.fixed_dictionaries(
        {}, optional={"code": codes, "kline_type": kline_types, "kline_list": items | json_values}
    ),
)
group = st.fixed_dictionaries(
    {"code": codes, "kline_type": st.sampled_from([5, 8, 5, 3]), "kline_data": items}
)
batch_data = st.one_of(
    st.fixed_dictionaries({"kline_list": st.lists(group, max_size=5)}),
    st.fixed_dictionaries({}, optional={"kline_list": st.lists(group | json_values, max_size=4)}),
    json_values,
)
tick = st.fixed_dictionaries(
    {"code": codes},
    optional={
        **dict.fromkeys(
            ["seq", "tick_time", "price", "volume", "turnover", "trade_direction"], numberish
        ),
        "bids": st.lists(record(["price", "volume"]) | json_values, max_size=3),
        "asks": st.lists(record(["price", "volume"]) | json_values, max_size=3),
    },
)
info = st.fixed_dictionaries(
    {"symbol": codes},
    optional=dict.fromkeys(["name_en", "exchange", "lot_size", "eps", "total_shares"], numberish),
)
halt = st.dictionaries(
    st.sampled_from(
        ["symbol", "symbolName", "haltDate", "haltTime", "haltDateTime", "resumeDate",
         "resumeTime", "publishDate", "pauseThresholdPrice", "haltReason"]
    ),
    st.one_of(numberish, st.sampled_from(["2024-01-15", "09:30:00", "2024-01-15 09:30", "25:9"])),
    max_size=6,
)  # fmt: skip


def envelope_of(data: st.SearchStrategy[Any]) -> st.SearchStrategy[bytes]:
    """Bodies shaped like AllTick's answers around ``data``, plus raw and random ones."""
    shaped = st.builds(
        lambda ret, d: json.dumps({"ret": ret, "msg": "ok", "trace": "t", "data": d}).encode(),
        st.sampled_from([200, "200", 200.0]),
        st.one_of(data, data, data, json_values),
    )
    return st.one_of(
        shaped, shaped, st.binary(max_size=200), json_values.map(lambda v: json.dumps(v).encode())
    )


def ok_envelope(body: bytes) -> wire.Envelope | None:
    """The envelope the runner would hand a job, or None where the runner stops earlier."""
    try:
        envelope = wire.parse_envelope(body, "fuzz")
    except MalformedResponse:
        return None
    return envelope if envelope.ok else None


def assert_failures(rows: list[Failure]) -> None:
    assert all(isinstance(r, Failure) for r in rows)


# --------------------------------------------------------------------------- parsers, decoders


@FUZZ
@given(st.one_of(st.binary(max_size=300), envelope_of(kline_data)))
def test_the_envelope_parsers_return_or_raise_malformed(body: bytes) -> None:
    for parse in (wire.parse_envelope, wire.parse_suspension):
        with contextlib.suppress(MalformedResponse):
            parse(body)


@FUZZ
@given(st.lists(envelope_of(kline_data), min_size=1, max_size=3), envelope_of(batch_data))
def test_the_kline_decoders_and_checks_return_bars_or_raise_malformed(
    bodies: list[bytes], batch: bytes
) -> None:
    good = [b for b in bodies if ok_envelope(b) is not None]
    for decode, given_bodies in (
        (frames.decode_kline_bodies, good),
        (frames.decode_batch_kline_bodies, [batch] if ok_envelope(batch) else []),
    ):
        try:
            data = decode(given_bodies)
        except MalformedResponse:
            continue
        assert list(data.columns) == frames.KLINE_COLUMNS
        checked = checks.check_bars(data, int(NOW.timestamp()))
        assert checked.keep.shape == (len(data),)


@FUZZ
@given(
    st.lists(tick | json_values, max_size=4),
    st.lists(info | json_values, max_size=4),
    st.lists(halt, max_size=4),
)
def test_the_tick_info_and_halt_decoders_return_rows_or_raise_malformed(
    ticks: list[Any], infos: list[Any], halts: list[dict[str, Any]]
) -> None:
    for decode, key, records in (
        (frames.decode_trade_ticks, "tick_list", ticks),
        (frames.decode_depth_ticks, "tick_list", ticks),
        (frames.decode_static_info, "static_info_list", infos),
    ):
        with contextlib.suppress(MalformedResponse):
            decode([wire.Envelope(200, "ok", None, {key: records})])
    assert isinstance(frames.decode_suspensions(halts, "nyse"), pd.DataFrame)


# --------------------------------------------------------------------------- jobs


@FUZZ
@given(envelope_of(kline_data), st.sampled_from(["EURUSD", "EURUSD", "AAPL.US"]))
def test_a_kline_job_reads_any_answer_into_bars_or_failure_rows(body: bytes, code: str) -> None:
    envelope = ok_envelope(body)
    if envelope is None:
        return
    req = planner.kline_request([code], "1h", count=4, now=NOW.timestamp())
    job = KlineJob(req, PLAN, now=NOW.timestamp())
    (call,) = job.calls([planner.first_page(req, classify(code), PLAN)])
    follow_ups = job.on_ok(call, envelope, body)
    assert all(f.payload.end_ts >= 0 for f in follow_ups)
    assert list(job.frame().columns) == frames.KLINE_COLUMNS
    assert_failures(job.rejected)


@FUZZ
@given(envelope_of(batch_data))
def test_a_batch_job_reads_any_answer_into_bars_or_failure_rows(body: bytes) -> None:
    envelope = ok_envelope(body)
    if envelope is None:
        return
    groups = [(classify(c), parse_interval(i)) for c in ("EURUSD", "GBPUSD") for i in ("1h", "1d")]
    # (kline_type 5 is 1h, 8 is 1d: most groups the strategy sends are these.)
    (chunk,) = planner.pack_groups(groups, PLAN.batch_groups, 2)
    job = BatchJob(now=NOW.timestamp())
    job.on_ok(job.call(chunk), envelope, body)
    assert list(job.frame(groups, 2).columns) == frames.KLINE_COLUMNS
    assert_failures(job.rejected + job.left_out)


@FUZZ
@given(
    st.sampled_from([TRADE_TICK, DEPTH_TICK, STATIC_INFO]),
    st.one_of(st.lists(tick | info | json_values, max_size=4), json_values),
)
def test_a_symbol_list_job_reads_any_answer_into_rows_or_failure_rows(
    endpoint: str, records: Any
) -> None:
    key = "static_info_list" if endpoint == STATIC_INFO else "tick_list"
    body = json.dumps({"ret": 200, "msg": "ok", "data": {key: records}}).encode()
    envelope = ok_envelope(body)
    if envelope is None:
        return
    job = SymbolListJob(endpoint, 50)
    (call,) = job.calls([classify("AAPL.US"), classify("700.HK")])
    job.on_ok(call, envelope, body)
    job.frame(["AAPL.US", "700.HK"])
    assert_failures(job.rejected + job.left_out)


@FUZZ
@given(
    st.one_of(
        st.binary(max_size=200),
        st.builds(
            lambda ok, data, extra: json.dumps({"success": ok, "data": data, **extra}).encode(),
            st.one_of(st.booleans(), json_values),
            st.one_of(st.lists(halt, max_size=3), json_values),
            st.dictionaries(
                st.sampled_from(["totalPages", "currentPage", "totalCount", "error"]), numberish
            ),
        ),
    ),
    st.sampled_from([200, 429, 500, 502]),
)  # fmt: skip
def test_the_halt_job_reads_any_answer_into_rows_or_a_fault(body: bytes, status: int) -> None:
    job = SuspensionJob("nasdaq")
    call = job.call()
    try:
        envelope = job.read(Response(status, body))
    except TransportError:  # a fault the runner retries and reports
        return
    if envelope.ok:
        assert job.on_ok(call, envelope, body) == []  # the service does not page
    assert isinstance(job.frame(), pd.DataFrame)
