"""Responses validate against AllTick's own OpenAPI schemas (``tests/fixtures``).

Every documented operation is called with the example request the OpenAPI file itself gives,
and its answer is validated twice: against the schema as published, and against a strict copy
that also forbids undocumented fields.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from emu_helpers import FAST
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

#: AllTick's OpenAPI file, kept with the tests (see tests/fixtures/README.md for its licence).
SPEC_PATH = Path(__file__).resolve().parents[1] / "fixtures" / "alltick-openapi.json"
BASE = "urn:alltick-openapi"
#: Fields the docs mark as present only sometimes.
OPTIONAL = {"hk_shares", "trace", "totalPages", "currentPage", "currentSize"}


def load_spec() -> dict[str, Any]:
    return json.loads(SPEC_PATH.read_text(encoding="utf-8"))


def strict(node: Any) -> Any:
    """A copy where every documented object forbids extra fields and requires its fields."""
    if isinstance(node, list):
        return [strict(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: strict(v) for k, v in node.items()}
    if "properties" in out and "additionalProperties" not in out:
        out["additionalProperties"] = False
        out["required"] = sorted(set(out["properties"]) - OPTIONAL)
    return out


def validator(spec: dict[str, Any], pointer: str) -> Draft202012Validator:
    resource = Resource.from_contents(spec, default_specification=DRAFT202012)
    registry = Registry().with_resource(BASE, resource)
    return Draft202012Validator({"$ref": f"{BASE}#{pointer}"}, registry=registry)


def operations() -> list[tuple[str, str]]:
    return [(path, method) for path, ops in load_spec()["paths"].items() for method in ops]


def escape(path: str) -> str:
    return path.replace("~", "~0").replace("/", "~1")


@pytest.mark.parametrize(("path", "method"), operations())
async def test_response_matches_the_documented_schema(alltick_emulator, http, path, method):
    spec = load_spec()
    op = spec["paths"][path][method]
    params = {p["name"]: str(p["example"]) for p in op.get("parameters", []) if "example" in p}
    emu = alltick_emulator(tokens={params["token"]: FAST})
    body = None
    if "requestBody" in op:
        body = op["requestBody"]["content"]["application/json"]["example"]
        request_schema = "/components/schemas/BatchKlineRequest"
        validator(spec, request_schema).validate(body)
    async with http.request(method, emu.url + path, params=params, json=body) as resp:
        assert resp.status == 200
        answer = await resp.json()
    schema = op["responses"]["200"]["content"]["application/json"]["schema"]
    if path.startswith("/api/suspension/"):
        pointer = "/components/schemas/SuspensionResponse"
        assert answer["success"] is True and answer["data"]
    else:
        pointer = f"/paths/{escape(path)}/{method}/responses/200/content/application~1json/schema"
        assert answer["ret"] == 200
        assert "$ref" in schema
    validator(spec, pointer).validate(answer)

    strict_spec = copy.deepcopy(spec)
    strict_spec["components"] = strict(strict_spec["components"])
    errors = list(validator(strict_spec, pointer).iter_errors(answer))
    assert not errors, [f"{list(e.absolute_path)}: {e.message}" for e in errors[:5]]


async def test_our_own_requests_match_the_request_schema(alltick_emulator, api):
    from emu_helpers import kline_data

    spec = load_spec()
    body = {"trace": "t", "data": {"data_list": [kline_data("AAPL.US", 8, 2)]}}
    validator(spec, "/components/schemas/BatchKlineRequest").validate(body)
