"""AllTick's own examples, transcribed as data under ``tests/fixtures/docs/``.

Each file is named after the docs page it transcribes and holds::

    {"page": "en/api-reference/stock/kline.mdx", "repository": "alltick/docs",
     "commit": "...",                 # only where the page changed and an older version is used
     "note": "...",                   # what was transcribed and how
     "follows": "...", "why": "...",  # where the docs contradict each other: the page followed
     "examples": [
        {"name": "...",
         "request": {"method": "GET", "path": "/quote-stock-b-api/kline",
                     "query": {...},  # the JSON the query string carries (GET), or
                     "body": {...},   # the POST body,
                     "params": {...}},  # and any other query-string parameter
         "response": {...},           # the documented answer, or
         "response_like": "file.json",  # another page's, where this page shows none
         "documented_response": {...},  # a documented answer not followed (see "why")
         "optional": ["hk_shares"],   # documented keys an answer may lack
         "config": {...},             # emulator switches the example needs
         "exact": true,               # the answer must equal the documented one
         "decoder": "kline"}]}        # the client decoder that reads the answer, or null

``product-codes.json`` lists the example codes of the product-code pages instead.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).parent / "fixtures" / "docs"


def load(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def examples() -> list[tuple[str, dict[str, Any]]]:
    """Every example of every page: ``(id, example)`` with the page added to the example."""
    out = []
    for path in sorted(FIXTURES.glob("*.json")):
        page = json.loads(path.read_text(encoding="utf-8"))
        for example in page.get("examples", []):
            out.append((f"{path.stem}:{example['name']}", {**example, "file": path.name}))
    return out


def documented_response(example: dict[str, Any]) -> dict[str, Any]:
    """The answer an example is checked against: its own, or the page it points to."""
    if "response" in example:
        return example["response"]
    return load(example["response_like"])["examples"][0]["response"]
