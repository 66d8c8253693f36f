"""Every answer body AllTick documents, fed to the client's decoders (the fixtures are
``tests/fixtures/docs/``, see ``tests/docs_fixtures.py``)."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
import pytest
from docs_fixtures import examples

from alltick_frames import frames

#: Documented bodies the client cannot read yet, each with the reason and who fixes it.
# TODO(issue 11 item 7): the client helper makes these decode, drops "decodes": false from
# their fixtures, and so moves them into BODIES.
NOT_YET = [(i, e) for i, e in examples() if e.get("decodes") is False]
BODIES = [
    (i, {**e, "response": e.get("response", e.get("documented_response"))})
    for i, e in examples()
    if e.get("decoder") and e.get("decodes", True)
]


def decode(decoder: str, body: dict[str, Any]) -> pd.DataFrame:
    raw = json.dumps(body).encode()
    if decoder.startswith("suspension/"):
        return frames.decode_suspensions(body["data"], decoder.split("/")[1])
    return {
        "kline": frames.decode_kline_bodies,
        "batch-kline": frames.decode_batch_kline_bodies,
        "trade-tick": frames.decode_trade_ticks,
        "depth-tick": frames.decode_depth_ticks,
        "static_info": frames.decode_static_info,
    }[decoder]([raw])


def expected_rows(decoder: str, data: Any) -> list[dict[str, Any]]:
    """What the decoder must make of ``data``: one dict per row, a few columns each."""
    if decoder == "kline":
        return [
            {"code": data["code"], "close": float(b["close_price"])} for b in data["kline_list"]
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
    decoder, body = example["decoder"], example["response"]
    df = decode(decoder, body)
    data = body["data"]["static_info_list"] if decoder == "static_info" else body["data"]
    expected = expected_rows(decoder, data)
    assert len(df) == len(expected)
    columns = list(expected[0])
    got = df[columns].astype(object).to_dict("records")
    assert got == expected
    if decoder.startswith("suspension/"):
        assert df["halted_at"].notna().all() and df["published_at"].notna().all()


def test_the_bodies_the_client_cannot_read_yet_are_listed():
    """A body leaves this list when the client reads it: then its fixture loses "decodes"."""
    assert [i for i, _ in NOT_YET] == [
        "getting-started-process:4. Make your first request / 5. Check the response"
    ]
    for _, example in NOT_YET:
        assert "issue 11 item 7" in example["todo"]
