"""ret codes -> actions, plain-word explanations, typed exceptions, failure rows, redaction."""

from __future__ import annotations

import pickle

import pandas as pd
import pytest

from alltick_frames.core.errors import (
    FAILURE_COLUMNS,
    AllTickError,
    AuthError,
    CodeError,
    DailyCapReached,
    Failure,
    FetchFailed,
    MalformedResponse,
    PlanLimitError,
    RateLimitError,
    RequestError,
    TransportError,
    empty_failures,
    error_for,
    failures_frame,
    redact,
    sort_failures,
)
from alltick_frames.core.kinds import KINDS, Action, action_for, explain, kind_for

TOKEN = "e945d7d9-secret-c-app"


# --------------------------------------------------------------------------- actions


@pytest.mark.parametrize(
    ("ret", "action"),
    [
        (200, Action.OK),
        (429, Action.RETRY),
        (605, Action.RETRY),
        (603, Action.SPLIT),
        (600, Action.DROP_CODE),
        (604, Action.DROP_CODE),
        (400, Action.FAIL_FAST),
        (401, Action.FAIL_FAST),
        (402, Action.FAIL_FAST),
        (601, Action.FAIL_FAST),
        (201, Action.FAIL_FAST),
        (202, Action.FAIL_FAST),
        (999, Action.UNKNOWN),
        (500, Action.UNKNOWN),
    ],
)
def test_action_for_follows_the_error_table(ret: int, action: Action) -> None:
    assert action_for(ret) is action


def test_explain_covers_every_documented_ret_and_every_kind() -> None:
    for ret in (200, 400, 401, 402, 429, 600, 601, 603, 604, 605, 606, 201, 202):
        meaning, todo = explain(ret)
        assert meaning and todo
    for kind in KINDS:
        meaning, todo = explain(kind)
        assert meaning and todo
    assert "plan does not include" in explain(604)[0]
    assert "wrong base path" in explain(600)[0]
    assert explain("604") == explain(604)
    assert explain(999) == explain(12345)  # unknown rets share a generic text
    assert "latest 500 bars" in explain("not-pageable")[0]
    assert "00:00 UTC+8" in explain("daily-cap")[1]


def test_explain_rejects_an_unknown_kind() -> None:
    with pytest.raises(ValueError, match="unknown failure kind 'nope'"):
        explain("nope")


def test_kind_for() -> None:
    assert kind_for(604) == "code-unauthorized"
    assert kind_for(600) == "code-invalid"
    assert kind_for(605) == "rate-limit"
    assert kind_for(202) == "bad-request"
    assert kind_for(777) == "unknown-ret"
    with pytest.raises(ValueError):
        kind_for(200)


# --------------------------------------------------------------------------- exceptions


@pytest.mark.parametrize(
    ("ret", "cls", "kind"),
    [
        (401, AuthError, "auth"),
        (400, RequestError, "bad-request"),
        (402, RequestError, "bad-request"),
        (601, RequestError, "bad-request"),
        (201, RequestError, "bad-request"),
        (603, PlanLimitError, "plan-limit"),
        (600, CodeError, "code-invalid"),
        (604, CodeError, "code-unauthorized"),
        (429, RateLimitError, "rate-limit"),
        (605, RateLimitError, "rate-limit"),
        (999, AllTickError, "unknown-ret"),
    ],
)
def test_error_for_builds_the_typed_exception(ret: int, cls: type, kind: str) -> None:
    err = error_for(ret, "some msg", "kline", ["AAPL.US"])
    assert type(err) is cls
    assert (err.ret, err.msg, err.endpoint, err.codes, err.kind) == (
        ret,
        "some msg",
        "kline",
        ("AAPL.US",),
        kind,
    )


def test_error_for_200_is_a_bug() -> None:
    with pytest.raises(ValueError):
        error_for(200, "ok")


def test_exception_text_says_what_and_what_to_do() -> None:
    err = error_for(604, "code unauthorized", "kline", ["AAPL.US"])
    text = str(err)
    assert text.startswith("ret 604 (code unauthorized) on kline for AAPL.US: ")
    assert "plan does not include this code" in text
    assert "Drop the code" in text


def test_exception_text_shortens_long_code_lists() -> None:
    err = error_for(600, "code invalid", "batch-kline", [f"C{i}" for i in range(12)])
    assert "for C0, C1, C2, C3, C4 (+7 more)" in str(err)


def test_hierarchy() -> None:
    assert issubclass(MalformedResponse, TransportError)
    for cls in (AuthError, RequestError, PlanLimitError, CodeError, RateLimitError):
        assert issubclass(cls, AllTickError)
    assert issubclass(DailyCapReached, AllTickError)
    assert issubclass(FetchFailed, AllTickError)


def test_transport_and_daily_cap_keep_their_own_kind() -> None:
    err = MalformedResponse("truncated body", endpoint="kline")
    assert (err.ret, err.kind) == (None, "transport")
    assert str(err).startswith("transport (truncated body) on kline: no usable answer")
    cap = DailyCapReached("cap used up", ret=605, endpoint="kline", resets_at=1.5)
    assert (cap.kind, cap.ret, cap.resets_at) == ("daily-cap", 605, 1.5)
    assert "daily request cap" in str(cap)


def test_exceptions_pickle() -> None:
    err = error_for(604, "code unauthorized", "kline", ["AAPL.US"])
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is CodeError
    assert (back.ret, back.msg, back.endpoint, back.codes, back.kind) == (
        604,
        "code unauthorized",
        "kline",
        ("AAPL.US",),
        "code-unauthorized",
    )
    assert str(back) == str(err)


def test_exceptions_never_hold_the_token() -> None:
    url = f"https://quote.alltick.co/quote-b-api/kline?token={TOKEN}&query=%7B%7D"
    err = TransportError(f"Cannot connect to host quote.alltick.co:443 url={url}")
    assert TOKEN not in str(err)
    assert TOKEN not in repr(err)
    assert TOKEN not in err.msg
    assert TOKEN not in str(err.args)


# --------------------------------------------------------------------------- redaction


def test_redact_aiohttp_style_message() -> None:
    text = (
        "Cannot connect to host quote.alltick.co:443 ssl:default [Connect call failed "
        "('1.2.3.4', 443)] url=https://quote.alltick.co/quote-b-api/kline?token=abc123"
        "&query=%7B%22trace%22%7D"
    )
    out = redact(text)
    assert "abc123" not in out
    assert out == text.replace("token=abc123", "token=***")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("https://h/p?token=abc123", "https://h/p?token=***"),
        ("https://h/p?a=1&token=abc-123_x.y&b=2", "https://h/p?a=1&token=***&b=2"),
        ("URL('https://h/p?token=abc123')", "URL('https://h/p?token=***')"),
        ("<ClientResponse(h?token=abc) [500]>", "<ClientResponse(h?token=***) [500]>"),
        ("TOKEN=abc&x", "TOKEN=***&x"),
        ("q%3Ftoken%3Dabc123%26x", "q%3Ftoken%3D***%26x"),
        ('{"token": "abc123", "x": 1}', '{"token": "***", "x": 1}'),
        ("no secrets here", "no secrets here"),
        ("token=", "token=***"),
    ],
)  # fmt: skip
def test_redact_forms(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_redact_known_secret_anywhere() -> None:
    assert redact(f"the key {TOKEN} leaked", TOKEN) == "the key *** leaked"
    assert redact("nothing", "") == "nothing"


# --------------------------------------------------------------------------- failure rows


def test_empty_failures_schema() -> None:
    df = empty_failures()
    assert list(df.columns) == FAILURE_COLUMNS
    assert df.empty
    assert str(df["ret"].dtype) == "Int64"
    assert df["attempts"].dtype == "int64"
    for col in ("code", "interval", "endpoint", "msg", "kind", "meaning", "action", "detail"):
        assert df[col].dtype == pd.StringDtype("pyarrow"), col


def test_failures_frame_values_and_order() -> None:
    rows = [
        Failure(code="B", endpoint="kline", interval="1d", ret=604, msg="code unauthorized"),
        Failure(code="A", endpoint="kline", interval="1d", kind="not-pageable", detail="x"),
        Failure(code="A", endpoint="kline", interval="1m", kind="left-out"),
        Failure(code="Z", endpoint="trade-tick", kind="transport", attempts=4, msg="timeout"),
        Failure(code="B", endpoint="kline", interval="1d", kind="daily-cap", attempts=0),
    ]
    df = failures_frame(rows, code_order=["B", "A"])
    assert list(df.columns) == FAILURE_COLUMNS
    assert df["code"].tolist() == ["B", "B", "A", "A", "Z"]
    assert df["interval"].tolist()[:4] == ["1d", "1d", "1m", "1d"]  # 1m sorts before 1d
    assert df["kind"].tolist() == [
        "code-unauthorized",
        "daily-cap",  # ties keep their arrival order
        "left-out",
        "not-pageable",
        "transport",
    ]
    assert df["ret"].tolist() == [604, pd.NA, pd.NA, pd.NA, pd.NA]
    assert df["attempts"].tolist() == [1, 0, 1, 1, 4]
    assert df.loc[0, "meaning"] == explain(604)[0]
    assert df.loc[0, "action"] == explain(604)[1]
    assert df.loc[1, "meaning"] == explain("daily-cap")[0]
    assert df.loc[3, "detail"] == "x"
    assert pd.isna(df.loc[4, "interval"])
    assert df.dtypes.equals(empty_failures().dtypes)


def test_failures_frame_of_nothing_is_empty_not_none() -> None:
    df = failures_frame([])
    assert df is not None and df.empty
    assert df.dtypes.equals(empty_failures().dtypes)


def test_failure_kind_comes_from_ret_and_aliases_normalise() -> None:
    assert Failure(code="A", endpoint="kline", ret=600).kind == "code-invalid"
    assert Failure(code="A", endpoint="kline", ret=604, kind="code").kind == "code-unauthorized"
    assert Failure(code="A", endpoint="kline", ret=603, kind="too-big").kind == "plan-limit"
    assert Failure(code="A", endpoint="kline", ret=429, kind="rate-limited").kind == "rate-limit"
    with pytest.raises(ValueError, match="needs a ret or a kind"):
        Failure(code="A", endpoint="kline")
    with pytest.raises(ValueError, match="unknown failure kind"):
        Failure(code="A", endpoint="kline", kind="whatever")


def test_failure_explanation_prefers_the_more_precise_source() -> None:
    assert Failure(code="A", endpoint="kline", ret=402).explanation() == explain(402)
    # A daily-cap row that saw a 605 is explained as a daily cap, not as "too many requests".
    cap = Failure(code="A", endpoint="kline", ret=605, kind="daily-cap")
    assert cap.explanation() == explain("daily-cap")


def test_failure_redacts_its_text() -> None:
    row = Failure(code="A", endpoint="kline", kind="transport", msg="url=x?token=abc&q=1")
    assert row.msg == "url=x?token=***&q=1"


def test_failure_from_error() -> None:
    err = error_for(604, "code unauthorized", "kline", ["A", "B"])
    rows = [Failure.from_error(err, c, interval="1d", attempts=2) for c in err.codes]
    assert [(r.code, r.kind, r.ret, r.attempts) for r in rows] == [
        ("A", "code-unauthorized", 604, 2),
        ("B", "code-unauthorized", 604, 2),
    ]


def test_sort_failures_after_concat() -> None:
    a = failures_frame([Failure(code="B", endpoint="kline", interval="1d", ret=600)])
    b = failures_frame([Failure(code="A", endpoint="kline", interval="1d", ret=600)])
    merged = sort_failures(pd.concat([a, b], ignore_index=True))
    assert merged["code"].tolist() == ["A", "B"]
    assert merged.index.tolist() == [0, 1]
    assert sort_failures(empty_failures()).dtypes.equals(empty_failures().dtypes)


def test_fetch_failed_carries_the_failures() -> None:
    df = failures_frame(
        [
            Failure(code="A", endpoint="kline", interval="1d", ret=604),
            Failure(code="B", endpoint="kline", interval="1d", kind="left-out"),
        ]
    )
    err = FetchFailed(df)
    assert err.failures is df
    assert err.codes == ("A", "B")
    assert err.ret is None  # not every failure shares one ret
    assert err.endpoint == "kline"
    assert str(err) == (
        "2 item(s) failed (1 code-unauthorized, 1 left-out); see .failures; codes: A, B"
    )
    same = FetchFailed(failures_frame([Failure(code="A", endpoint="kline", ret=604)]))
    assert same.ret == 604
    assert isinstance(pickle.loads(pickle.dumps(err)), FetchFailed)
