"""AllTick's own examples, sent to the emulator: every documented request is answered with the
documented keys and value types (the fixtures are ``tests/fixtures/docs/``, see
``tests/docs_fixtures.py``)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from docs_fixtures import documented_response, examples, load
from emu_helpers import FAST

from alltick_frames.core.codes import classify

EXAMPLES = examples()


def kind(value: Any) -> str:
    """The JSON type of ``value`` (bool before int: True is an int in Python)."""
    for name, types in (
        ("boolean", bool),
        ("integer", int),
        ("number", float),
        ("string", str),
        ("null", type(None)),
        ("object", dict),
        ("array", list),
    ):
        if isinstance(value, types):
            return name
    raise TypeError(value)


def mismatches(answer: Any, documented: Any, optional: set[str], where: str = "") -> list[str]:
    """Where ``answer`` lacks a documented key or has another type than the docs show; every
    item of a list is held to the documented first item."""
    if kind(answer) != kind(documented):
        return [f"{where or '.'}: {kind(answer)}, documented {kind(documented)}"]
    problems = []
    if isinstance(documented, dict):
        for key, value in documented.items():
            if key not in answer:
                if key not in optional:
                    problems.append(f"{where}.{key}: missing")
                continue
            problems += mismatches(answer[key], value, optional, f"{where}.{key}")
    elif isinstance(documented, list) and documented:
        for i, item in enumerate(answer):
            problems += mismatches(item, documented[0], optional, f"{where}[{i}]")
    return problems


def test_the_shape_check_can_fail():
    documented = {"ret": 200, "data": {"list": [{"price": "1.0", "side": 0}]}}
    assert mismatches(documented, documented, set()) == []
    answer = {"ret": "200", "data": {"list": [{"price": "1.0"}, {"price": 1.0, "side": 0}]}}
    assert mismatches(answer, documented, set()) == [
        ".ret: string, documented integer",
        ".data.list[0].side: missing",
        ".data.list[1].price: number, documented string",
    ]
    assert mismatches({"ret": True}, {"ret": 1}, set()) == [".ret: boolean, documented integer"]


@pytest.mark.parametrize("example", [e for _, e in EXAMPLES], ids=[i for i, _ in EXAMPLES])
async def test_every_documented_request_gets_the_documented_shape(alltick_emulator, http, example):
    emu = alltick_emulator(tokens={"demo": FAST}, **example.get("config", {}))
    request = example["request"]
    params = {"token": "demo", **request.get("params", {})}
    if "query" in request:
        params["query"] = json.dumps(request["query"])
    body = json.dumps(request["body"]).encode() if "body" in request else None
    headers = {"Content-Type": "application/json"} if body else None
    url = emu.url + request["path"]
    async with http.request(
        request["method"], url, params=params, data=body, headers=headers
    ) as resp:
        assert resp.status == 200
        answer = json.loads(await resp.read())
    documented = documented_response(example)
    if example.get("exact"):
        assert answer == documented
        assert list(answer) == list(documented), "the documented key order"
    else:
        assert mismatches(answer, documented, set(example.get("optional", ()))) == []
    if "ret" in answer:  # the quote endpoints: the trace comes back as sent
        sent = request["query"] if "query" in request else request["body"]
        assert answer["trace"] == sent["trace"]
    key = str(answer.get("ret", resp.status))
    endpoint = request["path"].rsplit("/", 1)[1]
    if request["path"].startswith("/api/suspension/"):
        endpoint = f"suspension/{endpoint}"
    assert emu.stats() == {"demo": {endpoint: {key: 1}}}


def test_every_page_with_an_endpoint_example_is_transcribed():
    pages = {load(name)["page"] for name in {e["file"] for _, e in EXAMPLES}}
    for endpoint in ("kline", "batch-kline", "trade-tick", "depth-tick"):
        assert f"en/api-reference/stock/{endpoint}.mdx" in pages
        assert f"en/api-reference/forex/{endpoint}.mdx" in pages
    assert {"en/api-reference/stock/static-info.mdx", "en/api-reference/stock/suspension.mdx"} <= (
        pages
    )
    assert "en/getting-started/process.mdx" in pages


async def test_every_example_code_of_the_docs_is_served(alltick_emulator, api):
    """The code tables of en/product-codes/*.mdx and getting-started/product-codes.mdx: each
    code is ret 200 on /kline; SILVER (the getting-started page) is the commodities table's
    Silver, and codes are case-sensitive, so it is 600 (see product-codes.json "why")."""
    doc = load("product-codes.json")
    codes = list(dict.fromkeys(c for page in doc["pages"] for c in page["codes"]))
    assert len(codes) == 81
    listed = [c for c in codes if c not in doc["not_listed"]]
    emu = alltick_emulator(plan=FAST)
    client = api(emu)
    rets = {code: (await client.kline(code, path=classify(code).path)).ret for code in codes}
    assert {c: r for c, r in rets.items() if r != 200} == {"SILVER": 600}
    assert emu.stats() == {"demo": {"kline": {"200": len(listed), "600": 1}}}
    silver = await client.kline(doc["not_listed"]["SILVER"])
    assert silver.ret == 200
