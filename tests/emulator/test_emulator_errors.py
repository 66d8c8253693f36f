"""Every error of AllTick's error table, with its exact ``msg`` (alltick-api.md §2, §5, §8)."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest
from emu_helpers import FAST, FOREX_PATH, STOCK_PATH, kline_data

HEADER = "request header param invalid"
DATA = "request data param invalid"


@pytest.fixture
def emu(alltick_emulator):
    return alltick_emulator(plan=FAST)


def expect(reply, ret, msg, status=200):
    assert reply.status == status, reply.raw
    assert (reply.json["ret"], reply.json["msg"]) == (ret, msg), reply.raw


# --- 401 ------------------------------------------------------------------------------------


GATE = b'{"msg":"token is required","trace":"","ret":401}'


async def test_missing_token_is_http_401_with_the_gate_body(emu, api, http):
    reply = await api(emu).kline("AAPL.US", token=None)
    assert (reply.status, reply.raw) == (401, GATE)
    async with http.post(f"{emu.url}{STOCK_PATH}/batch-kline", data=b"{}") as resp:
        assert resp.status == 401 and await resp.read() == GATE
    assert emu.stats() == {"<missing>": {"kline": {"401": 1}, "batch-kline": {"401": 1}}}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/.well-known/security.txt"),
        ("GET", "/"),
        ("GET", f"{FOREX_PATH}/static_info"),
        ("GET", f"{STOCK_PATH}/batch-kline"),
        ("POST", f"{STOCK_PATH}/kline"),
        ("GET", "/api/suspension/hkex"),
    ],
)
async def test_the_gate_answers_every_path_without_a_token(emu, http, method, path):
    """The API host answers every path so (api-evangelist's probe of /.well-known/*)."""
    async with http.request(method, emu.url + path) as resp:
        assert (resp.status, await resp.read()) == (401, GATE)
    assert emu.stats() == {"<missing>": {"unknown": {"401": 1}}}


@pytest.mark.parametrize("token", ["demo", "nope"])
async def test_an_unknown_path_with_a_token_is_404(emu, http, token):
    """Right or wrong, the token passes the gate; no service answers an unknown path."""
    async with http.get(f"{emu.url}/quote-stock-b-api/ticks", params={"token": token}) as resp:
        assert resp.status == 404
        assert await resp.text() == "404: Not Found"
    assert emu.stats() == {}


async def test_unknown_token_is_ret_401_over_http_200(emu, api):
    expect(await api(emu, token="nope").kline("AAPL.US"), 401, "token invalid")


async def test_mirror_status_sets_http_401_and_429(alltick_emulator, api):
    emu = alltick_emulator(plan="basic", mirror_status=True, frozen_clock=True)
    expect(await api(emu, token="nope").kline("AAPL.US"), 401, "token invalid", status=401)
    expect(await api(emu).kline("AAPL.US"), 200, "ok")
    expect(await api(emu).kline("AAPL.US"), 429, "Too Many Requests", status=429)


# --- 402 and 400 "request header param invalid" -----------------------------------------


async def test_query_missing_or_not_json_is_402(emu, api):
    client = api(emu)
    expect(await client.get("kline", path=STOCK_PATH, query=None), 402, "query invalid")
    expect(await client.get("kline", path=STOCK_PATH, query="{'trace': 'x'}"), 402, "query invalid")


async def test_double_encoded_query_is_402(emu, api):
    once = quote(json.dumps({"trace": "t", "data": kline_data("AAPL.US")}))
    reply = await api(emu).get("kline", path=STOCK_PATH, query=once)  # aiohttp encodes again
    expect(reply, 402, "query invalid")


@pytest.mark.parametrize(
    "document",
    [
        [1, 2],
        {"data": kline_data("AAPL.US")},
        {"trace": 7, "data": kline_data("AAPL.US")},
        {"trace": "x" * 65, "data": kline_data("AAPL.US")},
        {"trace": "t"},
        {"trace": "t", "data": [kline_data("AAPL.US")]},
    ],
    ids=["list", "no-trace", "trace-int", "trace-65", "no-data", "data-list"],
)
async def test_bad_envelope_is_400_header(emu, api, document):
    reply = await api(emu).get("kline", path=STOCK_PATH, query=json.dumps(document))
    expect(reply, 400, HEADER)
    assert "trace" not in reply.json or reply.json["trace"] == document.get("trace")


async def test_trace_of_64_chars_is_fine_and_echoed_in_errors(emu, api):
    reply = await api(emu).kline("AAPL.US", trace="x" * 64)
    assert reply.ret == 200 and reply.json["trace"] == "x" * 64
    reply = await api(emu).kline("NOPE.US", trace="tr-600")
    assert reply.json == {"ret": 600, "msg": "code invalid", "trace": "tr-600"}


async def test_batch_body_not_json_is_400_header(emu, api):
    expect(await api(emu).batch(body=b"{not json"), 400, HEADER)


@pytest.mark.parametrize("body", [b"", b"  \n"])
async def test_batch_empty_body_is_601(emu, api, body):
    expect(await api(emu).batch(body=body), 601, "body empty")


# --- 400 "request data param invalid" ---------------------------------------------------


@pytest.mark.parametrize(
    "change",
    [
        {"code": ""},
        {"code": 700},
        {"kline_type": 0},
        {"kline_type": 11},
        {"kline_type": "8"},
        {"kline_type": 8.0},
        {"kline_type": True},
        {"query_kline_num": 0},
        {"kline_timestamp_end": -1},
        {"adjust_type": 2},
    ],
)
async def test_bad_kline_field_is_400_data(emu, api, change):
    data = kline_data("AAPL.US") | change
    expect(await api(emu).get("kline", data, path=STOCK_PATH), 400, DATA)


@pytest.mark.parametrize(
    "field", ["code", "kline_type", "kline_timestamp_end", "query_kline_num", "adjust_type"]
)
async def test_every_kline_field_is_required(emu, api, field):
    data = kline_data("EURUSD")
    del data[field]
    expect(await api(emu).get("kline", data, path=FOREX_PATH), 400, DATA)


async def test_adjust_type_1_is_served_as_0(emu, api):
    plain = await api(emu).kline("AAPL.US")
    data = kline_data("AAPL.US") | {"adjust_type": 1}
    adjusted = await api(emu).get("kline", data, path=STOCK_PATH)
    assert adjusted.data == plain.data


@pytest.mark.parametrize("kline_type", [6, 7])
@pytest.mark.parametrize("code", ["AAPL.US", "HSI.HK", "000001.SH"])
async def test_2h_and_4h_bars_for_stocks_and_indices_are_400_data(emu, api, code, kline_type):
    expect(await api(emu).kline(code, kline_type=kline_type), 400, DATA)
    expect(await api(emu).batch([kline_data(code, kline_type, 2)]), 400, DATA)


async def test_2h_and_4h_bars_for_fx_are_fine(emu, api):
    for kline_type in (6, 7):
        assert (await api(emu).kline("EURUSD", kline_type=kline_type)).ret == 200


@pytest.mark.parametrize(
    "data",
    [{}, {"symbol_list": []}, {"symbol_list": [{"code": ""}]}, {"symbol_list": ["AAPL.US"]}],
)
async def test_bad_symbol_list_is_400_data(emu, api, data):
    for endpoint in ("trade-tick", "depth-tick", "static_info"):
        expect(await api(emu).get(endpoint, data, path=STOCK_PATH), 400, DATA)


@pytest.mark.parametrize("data_list", [None, [], [{"code": "AAPL.US"}], ["AAPL.US"]])
async def test_bad_data_list_is_400_data(emu, api, data_list):
    body = json.dumps({"trace": "t", "data": {"data_list": data_list}}).encode()
    expect(await api(emu).batch(body=body), 400, DATA)


# --- error bodies with and without trace and data; 201/202 ------------------------------


STYLES = {
    "default": ({}, {"trace"}),
    "data": ({"error_data": True}, {"trace", "data"}),
    "no-trace": ({"error_trace": False}, set()),
    "data-no-trace": ({"error_data": True, "error_trace": False}, {"data"}),
}


@pytest.mark.parametrize("style", list(STYLES))
async def test_error_bodies_with_and_without_trace_and_data(alltick_emulator, api, style):
    switches, extra = STYLES[style]
    emu = alltick_emulator(plan=FAST, **switches)
    client = api(emu)
    reply = await client.kline("NOPE.US", trace="tr-600")
    expected = {"ret": 600, "msg": "code invalid", "trace": "tr-600", "data": {}}
    assert reply.json == {k: v for k, v in expected.items() if k in {"ret", "msg"} | extra}
    assert list(reply.json) == [k for k in expected if k in reply.json], "documented order"
    # before the trace is known, there is none to echo
    reply = await client.get("kline", path=STOCK_PATH, query="not json")
    assert set(reply.json) == {"ret", "msg"} | (extra - {"trace"})
    assert emu.stats() == {"demo": {"kline": {"600": 1, "402": 1}}}


async def test_old_invalid_codes_answer_201_and_202(alltick_emulator, api):
    """The standard-header page's example: ``ret`` 202 with ``data: {}``."""
    emu = alltick_emulator(plan=FAST, old_invalid_codes=True, error_data=True)
    client = api(emu)
    trace = "c2a8a146-a647-4d6f-ac07-8c4805bf0b74"
    reply = await client.get("kline", {}, path=STOCK_PATH, trace=trace)
    assert reply.raw == (
        b'{"ret":202,"msg":"request data param invalid",'
        b'"trace":"c2a8a146-a647-4d6f-ac07-8c4805bf0b74","data":{}}'
    )
    reply = await client.get("kline", path=STOCK_PATH, query='{"data": {}}')
    assert reply.json == {"ret": 201, "msg": HEADER, "data": {}}
    assert (await client.kline("NOPE.US")).ret == 600, "other errors keep their ret"
    assert emu.stats() == {"demo": {"kline": {"202": 1, "201": 1, "600": 1}}}


# --- 600 --------------------------------------------------------------------------------


async def test_unknown_code_is_600(emu, api):
    expect(await api(emu).kline("NOPE.US"), 600, "code invalid")
    expect(await api(emu).kline("SILVER", path=FOREX_PATH), 600, "code invalid")  # case matters


@pytest.mark.parametrize(
    ("code", "path"), [("EURUSD", STOCK_PATH), ("AAPL.US", FOREX_PATH), ("HSI.HK", FOREX_PATH)]
)
async def test_code_on_the_wrong_base_path_is_600(emu, api, code, path):
    expect(await api(emu).kline(code, path=path), 600, "code invalid")
    expect(await api(emu).batch([kline_data(code, 8, 2)], path=path), 600, "code invalid")
    expect(await api(emu).ticks("trade-tick", [code], path=path), 600, "code invalid")
    expect(await api(emu).ticks("depth-tick", [code], path=path), 600, "code invalid")


async def test_one_bad_code_fails_the_whole_call(emu, api):
    groups = [kline_data("AAPL.US", 8, 2), kline_data("NOPE.US", 8, 2)]
    expect(await api(emu).batch(groups), 600, "code invalid")
    reply = await api(emu).ticks("trade-tick", ["AAPL.US", "EURUSD"], path=STOCK_PATH)
    expect(reply, 600, "code invalid")


# --- 603 --------------------------------------------------------------------------------


@pytest.mark.parametrize(("plan", "cap"), [("free", 5), ("basic", 100), ("premium", 200)])
async def test_too_many_batch_groups_is_603(alltick_emulator, api, plan, cap):
    emu = alltick_emulator(plan=plan)
    code = "TSLA.US" if plan == "free" else "AAPL.US"
    groups = [kline_data(code, kt, 2) for kt in (1, 2, 3, 4, 5, 8, 9, 10)] * (cap // 8 + 1)
    expect(await api(emu).batch(groups[: cap + 1]), 603, "token level not enough")
    emu.clock.advance(60)
    assert (await api(emu).batch(groups[:cap])).ret == 200


async def test_free_eod_only_refuses_intraday_bars_and_books(alltick_emulator, api):
    """The pricing page: Free has "Last Price, End of Day Data", no real-time candlesticks,
    order book or tick-by-tick."""
    emu = alltick_emulator(plan="free", frozen_clock=True, free_eod_only=True)
    client = api(emu)
    answers = []
    for kline_type in (1, 5, 8, 9, 10):
        answers.append((await client.kline("TSLA.US", kline_type=kline_type)).ret)
        emu.clock.advance(10)
    assert answers == [603, 603, 200, 200, 200]
    groups = [kline_data("TSLA.US", 8, 2), kline_data("700.HK", 2, 2)]
    expect(await client.batch(groups), 603, "token level not enough")
    for endpoint, ret in (("depth-tick", 603), ("trade-tick", 200), ("static_info", 200)):
        emu.clock.advance(10)
        assert (await client.ticks(endpoint, ["TSLA.US", "700.HK"])).ret == ret, endpoint
    assert emu.stats()["demo"] == {
        "kline": {"603": 2, "200": 3},
        "batch-kline": {"603": 1},
        "depth-tick": {"603": 1},
        "trade-tick": {"200": 1},
        "static_info": {"200": 1},
    }


async def test_free_eod_only_leaves_paid_plans_alone(alltick_emulator, api):
    emu = alltick_emulator(plan=FAST, free_eod_only=True)
    assert (await api(emu).kline("AAPL.US", kline_type=1)).ret == 200
    assert (await api(emu).ticks("depth-tick", ["AAPL.US"])).ret == 200


# --- 604 --------------------------------------------------------------------------------


@pytest.mark.parametrize("code", ["AAPL.US", "EURUSD", "ETHUSDT", "600416.SH", "HSTECH.HK"])
async def test_free_plan_sees_only_its_ten_symbols(alltick_emulator, api, code):
    emu = alltick_emulator(plan="free")
    expect(await api(emu).kline(code), 604, "code unauthorized")


async def test_free_plan_symbols_are_served(alltick_emulator, api):
    from alltick_frames.core.plans import FREE_SYMBOLS

    emu = alltick_emulator(plan="free", frozen_clock=True)
    for code in sorted(FREE_SYMBOLS):
        emu.clock.advance(10)
        assert (await api(emu).kline(code)).ret == 200, code


@pytest.mark.parametrize(
    ("plan", "allowed", "refused"),
    [
        ("all-hk", ["700.HK", "HSI.HK"], ["AAPL.US", "600416.SH", "EURUSD", "BTCUSDT"]),
        ("all-cn", ["600416.SH", "000627.SZ", "000001.SH", "399006.SZ"], ["700.HK", "GOLD"]),
        ("all-us", ["AAPL.US", "DJI.US", "BRK.B.US"], ["9988.HK", "000001.SZ", "EURUSD"]),
    ],
)
async def test_market_plans_see_only_their_market(alltick_emulator, api, plan, allowed, refused):
    emu = alltick_emulator(plan=plan, frozen_clock=True)
    for code in allowed:
        emu.clock.advance(1)
        assert (await api(emu).kline(code)).ret == 200, code
    for code in refused:
        emu.clock.advance(1)
        expect(await api(emu).kline(code), 604, "code unauthorized")


async def test_one_unauthorised_code_fails_the_whole_call(alltick_emulator, api):
    emu = alltick_emulator(plan="all-hk", frozen_clock=True)
    reply = await api(emu).ticks("trade-tick", ["700.HK", "AAPL.US"])
    expect(reply, 604, "code unauthorized")
    emu.clock.advance(1)
    groups = [kline_data("700.HK", 8, 2), kline_data("AAPL.US", 8, 2)]
    expect(await api(emu).batch(groups), 604, "code unauthorized")


async def test_basket_limits_any_token(alltick_emulator, api):
    emu = alltick_emulator(tokens={"t": {"plan": FAST, "basket": ["AAPL.US", "EURUSD"]}, "u": FAST})
    assert (await api(emu, "t").kline("AAPL.US")).ret == 200
    assert (await api(emu, "t").kline("EURUSD")).ret == 200
    expect(await api(emu, "t").kline("TSLA.US"), 604, "code unauthorized")
    expect(await api(emu, "t").ticks("depth-tick", ["AAPL.US", "UNH.US"]), 604, "code unauthorized")
    assert (await api(emu, "u").kline("TSLA.US")).ret == 200, "other tokens are not limited"


async def test_unknown_code_wins_over_unauthorised(alltick_emulator, api):
    emu = alltick_emulator(plan="free")
    expect(await api(emu).kline("NOPE.US"), 600, "code invalid")
