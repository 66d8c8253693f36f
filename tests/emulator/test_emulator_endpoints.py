"""Happy paths: every endpoint on every base path answers in AllTick's exact shape."""

from __future__ import annotations

import itertools

import pytest
from emu_helpers import FAST, FOREX_PATH, STOCK_PATH, kline_data

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


async def test_static_info_shape(emu, api):
    reply = await api(emu).ticks("static_info", ["700.HK", "AAPL.US", "600416.SH", "HSI.HK"])
    infos = reply.data["static_info_list"]
    assert [i["symbol"] for i in infos] == ["700.HK", "AAPL.US", "600416.SH", "HSI.HK"]
    for info in infos:
        assert "code" not in info
        assert all(isinstance(v, str) for v in info.values())
        expected = STATIC_KEYS | ({"hk_shares"} if info["symbol"].endswith(".HK") else set())
        assert set(info) == expected
    tencent = infos[0]
    assert (tencent["board"], tencent["exchange"], tencent["currency"], tencent["lot_size"]) == (
        "HKEquity",
        "SEHK",
        "HKD",
        "100",
    )


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
        ("sse", set()),
        ("nyse", {"haltDateTime", "resumeDateTime", "sourceExchange"}),
        ("nasdaq", {"haltDateTime", "resumeDateTime", "sourceExchange", "pauseThresholdPrice"}),
    ],
)
async def test_suspension_envelope_and_records(emu, api, exchange, extra):
    reply = await api(emu).suspension(exchange)
    assert reply.status == 200
    body = reply.json
    assert body["success"] is True
    assert set(body) == {"success", "timestamp", "totalCount", "data"}, "unpaged without page"
    assert len(body["timestamp"]) == 19 and body["timestamp"][10] == "T"
    records = body["data"]
    assert body["totalCount"] == len(records) > 10
    base = {
        "symbol",
        "symbolName",
        "haltReason",
        "haltDate",
        "haltTime",
        "haltPeriod",
        "resumeDate",
        "resumeTime",
        "publishDate",
    }
    published = [r["publishDate"] for r in records]
    assert published == sorted(published, reverse=True), "newest first"
    for record in records:
        assert set(record) == base | extra
        assert record["symbol"] and len(record["publishDate"]) == 19
    suffix = ".SH" if exchange == "sse" else ".US"
    assert all(r["symbol"].endswith(suffix) for r in records)


async def test_suspension_pages(emu, api, alltick_emulator):
    reply = await api(emu).suspension("nyse", page=2, size=5)
    body = reply.json
    assert body["currentPage"] == 2 and body["currentSize"] == len(body["data"]) == 5
    assert body["totalPages"] == -(-body["totalCount"] // 5)
    other = alltick_emulator(plan=FAST)
    everything = (await api(other).suspension("nyse")).json["data"]
    assert body["data"] == everything[5:10]
