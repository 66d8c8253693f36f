"""Happy paths: every endpoint on every base path answers in AllTick's exact shape."""

from __future__ import annotations

import itertools
import re
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from emu_helpers import FAST, FOREX_PATH, STOCK_PATH, kline_data

from alltick_frames.emulator import CATALOGUE

NY = ZoneInfo("America/New_York")

BAR_KEYS = {
    "timestamp",
    "open_price",
    "close_price",
    "high_price",
    "low_price",
    "volume",
    "turnover",
}
STATIC_KEYS = {
    "board",
    "bps",
    "circulating_shares",
    "currency",
    "dividend_yield",
    "eps",
    "eps_ttm",
    "exchange",
    "lot_size",
    "name_cn",
    "name_en",
    "name_hk",
    "symbol",
    "total_shares",
}


@pytest.fixture
def emu(alltick_emulator):
    return alltick_emulator(plan=FAST)


def assert_bars(bars, count):
    assert len(bars) == count
    stamps = [int(b["timestamp"]) for b in bars]
    assert stamps == sorted(set(stamps)), "oldest first, no repeats"
    for bar in bars:
        assert set(bar) == BAR_KEYS
        assert all(isinstance(v, str) for v in bar.values()), bar
        assert len(bar["timestamp"]) == 10
        float(bar["open_price"]), float(bar["volume"]), float(bar["turnover"])


@pytest.mark.parametrize(
    ("code", "path"), [("AAPL.US", STOCK_PATH), ("700.HK", STOCK_PATH), ("EURUSD", FOREX_PATH)]
)
async def test_kline_shape(emu, api, code, path):
    reply = await api(emu).kline(code, kline_type=8, num=7, path=path, trace="abc-123")
    assert reply.status == 200
    body = reply.json
    assert list(body) == ["ret", "msg", "trace", "data"]
    assert (body["ret"], body["msg"], body["trace"]) == (200, "ok", "abc-123")
    assert set(body["data"]) == {"code", "kline_type", "kline_list"}
    assert body["data"]["code"] == code
    assert body["data"]["kline_type"] == 8 and isinstance(body["data"]["kline_type"], int)
    assert_bars(body["data"]["kline_list"], 7)


async def test_minute_bars_are_60_seconds_apart(emu, api):
    bars = (await api(emu).kline("BTCUSDT", kline_type=1, num=30)).data["kline_list"]
    stamps = [int(b["timestamp"]) for b in bars]
    assert {b - a for a, b in itertools.pairwise(stamps)} == {60}


@pytest.mark.parametrize("path", [STOCK_PATH, FOREX_PATH])
async def test_batch_kline_shape_and_order(emu, api, path):
    codes = ["AAPL.US", "700.HK", "600416.SH"] if path == STOCK_PATH else ["BTCUSDT", "GOLD"]
    groups = [kline_data(c, kt, num=2) for c in codes for kt in (1, 8)]
    reply = await api(emu).batch(groups, path=path, trace="b-9")
    assert reply.status == 200
    body = reply.json
    assert (body["ret"], body["msg"], body["trace"]) == (200, "ok", "b-9")
    assert set(body["data"]) == {"kline_list"}
    items = body["data"]["kline_list"]
    assert [(i["code"], i["kline_type"]) for i in items] == [
        (g["code"], g["kline_type"]) for g in groups
    ]
    for item in items:
        assert set(item) == {"code", "kline_type", "kline_data"}
        assert_bars(item["kline_data"], 2)


@pytest.mark.parametrize(
    ("codes", "path"),
    [(["857.HK", "UNH.US", "000627.SZ"], STOCK_PATH), (["EURUSD", "BTCUSDT", "GOLD"], FOREX_PATH)],
)
async def test_trade_tick_shape(emu, api, codes, path):
    reply = await api(emu).ticks("trade-tick", codes, path=path)
    assert reply.ret == 200
    ticks = reply.data["tick_list"]
    assert [t["code"] for t in ticks] == codes
    for tick in ticks:
        assert set(tick) == {
            "code",
            "seq",
            "tick_time",
            "price",
            "volume",
            "turnover",
            "trade_direction",
        }
        assert isinstance(tick["trade_direction"], int) and tick["trade_direction"] in (0, 1, 2)
        others = {k: v for k, v in tick.items() if k != "trade_direction"}
        assert all(isinstance(v, str) for v in others.values())
        assert len(tick["tick_time"]) == 13
        assert float(tick["price"]) > 0
    fx = [t for t in ticks if t["code"] in ("EURUSD", "GOLD")]
    assert all(t["trade_direction"] == 1 for t in fx), "FX and metals always send 1"


@pytest.mark.parametrize(
    ("code", "levels"),
    [
        ("EURUSD", 1),
        ("GOLD", 1),
        ("USOIL", 1),
        ("US30", 1),
        ("BTCUSDT", 5),
        ("700.HK", 10),
        ("AAPL.US", 1),
        ("600416.SH", 5),
        ("000627.SZ", 5),
    ],
)
async def test_depth_levels_per_asset_class(emu, api, code, levels):
    reply = await api(emu).ticks("depth-tick", [code])
    (book,) = reply.data["tick_list"]
    assert set(book) == {"code", "seq", "tick_time", "bids", "asks"}
    assert all(isinstance(book[k], str) for k in ("code", "seq", "tick_time"))
    assert len(book["bids"]) == len(book["asks"]) == levels
    for side in ("bids", "asks"):
        for level in book[side]:
            assert set(level) == {"price", "volume"}
            assert all(isinstance(v, str) for v in level.values())
    bids = [float(b["price"]) for b in book["bids"]]
    asks = [float(a["price"]) for a in book["asks"]]
    assert bids == sorted(bids, reverse=True) and asks == sorted(asks), "best level first"
    assert bids[0] < asks[0]


async def test_index_depth_is_empty(emu, api):
    (book,) = (await api(emu).ticks("depth-tick", ["HSI.HK"])).data["tick_list"]
    assert book["bids"] == [] and book["asks"] == []


ZERO = {"price": "0.000000", "volume": "0"}


@pytest.mark.parametrize(
    ("code", "status", "levels"),
    [
        ("600416.SH", "normal", 5),
        ("600196.SH", "limit-up", 5),
        ("002049.SZ", "limit-up", 5),
        ("600011.SH", "limit-down", 5),
        ("002466.SZ", "limit-down", 5),
        ("QDZ.US", "delisted", 1),
        ("8040.HK", "delisted", 10),
        ("301040.SZ", "delisted", 5),
    ],
)
async def test_books_at_the_limits_are_zero_filled(emu, api, code, status, levels):
    """price-change-trading-status.mdx: limit-up has bids and zero asks, limit-down the
    reverse, delisted both sides zero; the catalogue says which code is which."""
    row = next(r for r in emu.codes() if r["code"] == code)
    assert row["book_status"] == status
    (book,) = (await api(emu).ticks("depth-tick", [code])).data["tick_list"]
    assert len(book["bids"]) == len(book["asks"]) == levels
    bids_zero = all(level == ZERO for level in book["bids"])
    asks_zero = all(level == ZERO for level in book["asks"])
    assert (bids_zero, asks_zero) == {
        "normal": (False, False),
        "limit-up": (False, True),
        "limit-down": (True, False),
        "delisted": (True, True),
    }[status]
    for side in ("bids", "asks"):
        assert all(float(level["price"]) > 0 for level in book[side] if level != ZERO)


def test_limits_are_a_shares_only_and_every_status_is_in_the_catalogue(emu):
    statuses: dict[str, set[str]] = {}
    for row in emu.codes():
        statuses.setdefault(row["book_status"], set()).add(row["market"] or row["asset_class"])
    assert statuses["limit-up"] == statuses["limit-down"] == {"SH", "SZ"}
    assert statuses["delisted"] == {"US", "HK", "SZ"}
    assert None not in statuses


async def test_a_delisted_code_shows_its_last_session(emu, api):
    """Delisted on 2024-03-29 (UTC): bars end with Thursday's session, the last trade is
    from its close, and later market moments change nothing."""
    client = api(emu)
    bars = (await client.kline("QDZ.US", kline_type=8, num=3)).data["kline_list"]
    days = [datetime.fromtimestamp(int(b["timestamp"]), NY).date().isoformat() for b in bars]
    assert days == ["2024-03-26", "2024-03-27", "2024-03-28"]
    minute = (await client.kline("QDZ.US", kline_type=1, num=1)).data["kline_list"]
    assert datetime.fromtimestamp(int(minute[0]["timestamp"]), NY).strftime("%F %H:%M") == (
        "2024-03-28 15:59"
    )
    (tick,) = (await client.ticks("trade-tick", ["QDZ.US"])).data["tick_list"]
    traded = datetime.fromtimestamp(int(tick["tick_time"]) / 1000, NY)
    assert traded.strftime("%F %H:%M") == "2024-03-28 15:59"
    (book,) = (await client.ticks("depth-tick", ["QDZ.US"])).data["tick_list"]
    assert book["tick_time"] == tick["tick_time"]
    emu.set_market_now("2024-03-27T15:00:00Z")  # before the delisting it trades as usual
    (book,) = (await client.ticks("depth-tick", ["QDZ.US"])).data["tick_list"]
    assert book["bids"][0] != ZERO and book["asks"][0] != ZERO


async def test_static_info_shape(emu, api):
    codes = ["700.HK", "AAPL.US", "600416.SH", "2800.HK", "510300.SH", "SPY.US"]
    reply = await api(emu).ticks("static_info", codes)
    infos = reply.data["static_info_list"]
    assert [i["symbol"] for i in infos] == codes
    for info in infos:
        assert "code" not in info
        assert all(isinstance(v, str) for v in info.values())
        expected = STATIC_KEYS | ({"hk_shares"} if info["symbol"].endswith(".HK") else set())
        assert set(info) == expected
        fund = info["symbol"] in ("2800.HK", "510300.SH", "SPY.US")
        assert (info["eps"] == info["eps_ttm"] == info["bps"] == "") == fund
        assert float(info["total_shares"]) > 0
    tencent = infos[0]
    assert (tencent["board"], tencent["exchange"], tencent["currency"], tencent["lot_size"]) == (
        "HKEquity",
        "SEHK",
        "HKD",
        "100",
    )
    assert (infos[3]["lot_size"], infos[4]["lot_size"]) == ("500", "100")


@pytest.mark.parametrize("index", ["HSI.HK", "000001.SH", "DJI.US", "000905.SH"])
async def test_static_info_of_an_index_is_600(emu, api, index):
    """static-info.mdx: "only supports ... US stocks, Hong Kong stocks, and A-share products"."""
    reply = await api(emu).ticks("static_info", ["700.HK", index])
    assert (reply.ret, reply.msg) == (600, "code invalid")
    assert emu.stats()["demo"]["static_info"] == {"600": 1}


async def test_static_info_does_not_exist_on_the_forex_path(emu, api):
    reply = await api(emu).ticks("static_info", ["EURUSD"], path=FOREX_PATH)
    assert reply.status == 404
    assert reply.json is None


async def test_static_info_for_a_forex_code_is_600(emu, api):
    reply = await api(emu).ticks("static_info", ["EURUSD"], path=STOCK_PATH)
    assert (reply.ret, reply.msg) == (600, "code invalid")


async def test_unknown_paths_are_404(emu, api):
    reply = await api(emu).get("ticks", {}, path=STOCK_PATH)
    assert reply.status == 404


@pytest.mark.parametrize(
    ("exchange", "extra"),
    [
        ("sse", {"haltPeriod"}),
        ("nyse", {"haltDateTime", "resumeDateTime", "sourceExchange"}),
        ("nasdaq", {"haltDateTime", "resumeDateTime", "sourceExchange", "pauseThresholdPrice"}),
    ],
)
async def test_suspension_envelope_and_records(emu, api, exchange, extra):
    """As suspension.mdx shows them: bare tickers, haltPeriod on SSE only, and haltDate/
    resumeDate either a date or a date and time."""
    reply = await api(emu).suspension(exchange)
    assert reply.status == 200
    body = reply.json
    assert body["success"] is True
    assert set(body) == {"success", "timestamp", "totalCount", "data"}
    assert len(body["timestamp"]) == 19 and body["timestamp"][10] == "T"
    records = body["data"]
    assert body["totalCount"] == len(records) > 10
    base = {
        "symbol",
        "symbolName",
        "haltReason",
        "haltDate",
        "haltTime",
        "resumeDate",
        "resumeTime",
        "publishDate",
    }
    published = [r["publishDate"] for r in records]
    assert published == sorted(published, reverse=True), "newest first"
    for record in records:
        assert set(record) == base | extra
        assert record["symbol"] and len(record["publishDate"]) == 19
        assert len(record["haltDate"]) in (10, 19)
        assert len(record["resumeDate"]) in (0, len(record["haltDate"]))
    assert {len(r["haltDate"]) for r in records} == {10, 19}, "both forms appear"
    if exchange == "sse":
        assert all(re.fullmatch(r"6\d{5}", r["symbol"]) for r in records)
    else:
        assert all(f"{r['symbol']}.US" in CATALOGUE for r in records)
        assert all(CATALOGUE[f"{r['symbol']}.US"].exchange == r["sourceExchange"] for r in records)


async def test_suspension_ignores_page_and_size(alltick_emulator, api):
    """suspension.mdx: "All interfaces do not support pagination and return the full data for
    the most recent year", even when the call example sends page=1&size=10."""
    emu = alltick_emulator(plan=FAST, frozen_clock=True)
    replies = []
    for params in ({}, {"page": 2, "size": 5}, {"page": "x", "size": -1}):
        replies.append((await api(emu).suspension("nyse", **params)).raw)
        emu.clock.advance(60)
    assert replies[0] == replies[1] == replies[2]
    assert emu.stats()["demo"] == {"suspension/nyse": {"200": 3}}


async def test_suspension_pages_when_switched(alltick_emulator, api):
    emu = alltick_emulator(plan=FAST, frozen_clock=True, suspension_paging=True)
    body = (await api(emu).suspension("nyse", page=2, size=5)).json
    assert body["currentPage"] == 2 and body["currentSize"] == len(body["data"]) == 5
    assert body["totalPages"] == -(-body["totalCount"] // 5)
    emu.clock.advance(60)
    everything = (await api(emu).suspension("nyse")).json["data"]
    assert body["data"] == everything[5:10]
    emu.clock.advance(60)
    bad = await api(emu).suspension("nyse", page=0)
    assert bad.status == 500 and bad.json["success"] is False
    assert emu.stats()["demo"] == {"suspension/nyse": {"200": 2, "500": 1}}
