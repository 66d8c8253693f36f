"""Plain-aiohttp helpers for the emulator's conformance tests (never the project's client)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import aiohttp

from alltick_frames.core.codes import FOREX_PATH, STOCK_PATH, classify
from alltick_frames.core.plans import ENDPOINTS, Rate, get_plan
from alltick_frames.emulator import EmulatorServer

#: A plan no test can exhaust by accident: for shape tests that make many calls.
FAST = get_plan("professional").with_overrides(
    name="fast",
    endpoint_rates={name: Rate(1_000_000, 1.0) for name in ENDPOINTS},
    all_endpoints=Rate(1_000_000, 1.0),
    per_minute=10**9,
    per_day=10**12,
    batch_groups=500,
)
_UNSET: Any = object()


@dataclass
class Reply:
    """One HTTP answer: status, raw bytes and the JSON body (None if it is not JSON)."""

    status: int
    raw: bytes

    @property
    def json(self) -> Any:
        try:
            return json.loads(self.raw)
        except ValueError:
            return None

    @property
    def ret(self) -> int:
        return self.json["ret"]

    @property
    def msg(self) -> str:
        return self.json["msg"]

    @property
    def data(self) -> Any:
        return self.json["data"]


def path_of(code: str) -> str:
    return classify(code).path


def kline_data(code: str, kline_type: int = 8, num: int = 10, end: int = 0) -> dict[str, Any]:
    return {
        "code": code,
        "kline_type": kline_type,
        "kline_timestamp_end": end,
        "query_kline_num": num,
        "adjust_type": 0,
    }


class Api:
    """Sends AllTick requests to one emulator over real HTTP."""

    def __init__(self, http: aiohttp.ClientSession, emu: EmulatorServer, token: str = "demo"):
        self.http = http
        self.emu = emu
        self.token = token

    def _params(self, token: Any, query: Any) -> dict[str, str]:
        params = {}
        token = self.token if token is _UNSET else token
        if token is not None:
            params["token"] = token
        if query is not None:
            params["query"] = query
        return params

    async def get(
        self,
        endpoint: str,
        data: Any = None,
        *,
        path: str,
        token: Any = _UNSET,
        trace: str = "trace-1",
        query: Any = _UNSET,
    ) -> Reply:
        """GET ``path/endpoint`` with ``query`` (default: the envelope around ``data``)."""
        if query is _UNSET:
            query = json.dumps({"trace": trace, "data": data})
        url = f"{self.emu.url}{path}/{endpoint}"
        async with self.http.get(url, params=self._params(token, query)) as resp:
            return Reply(resp.status, await resp.read())

    async def kline(
        self,
        code: str,
        kline_type: int = 8,
        num: int = 10,
        end: int = 0,
        *,
        path: str | None = None,
        **kwargs: Any,
    ) -> Reply:
        data = kline_data(code, kline_type, num, end)
        return await self.get("kline", data, path=path or path_of(code), **kwargs)

    async def ticks(
        self, endpoint: str, codes: list[str], *, path: str | None = None, **kwargs: Any
    ) -> Reply:
        data = {"symbol_list": [{"code": c} for c in codes]}
        return await self.get(endpoint, data, path=path or path_of(codes[0]), **kwargs)

    async def batch(
        self,
        groups: list[dict[str, Any]] | None = None,
        *,
        path: str | None = None,
        body: bytes | None = None,
        token: Any = _UNSET,
        trace: str = "batch-1",
    ) -> Reply:
        """POST batch-kline with ``groups`` as ``data_list`` (or a raw ``body``)."""
        if body is None:
            body = json.dumps({"trace": trace, "data": {"data_list": groups}}).encode()
        if path is None:
            path = path_of(groups[0]["code"]) if groups else STOCK_PATH
        url = f"{self.emu.url}{path}/batch-kline"
        headers = {"Content-Type": "application/json"}
        params = self._params(token, None)
        async with self.http.post(url, params=params, data=body, headers=headers) as resp:
            return Reply(resp.status, await resp.read())

    async def suspension(self, exchange: str, token: Any = _UNSET, **params: Any) -> Reply:
        query = self._params(token, None) | {k: str(v) for k, v in params.items()}
        url = f"{self.emu.url}/api/suspension/{exchange}"
        async with self.http.get(url, params=query) as resp:
            return Reply(resp.status, await resp.read())

    async def admin(self, method: str, what: str, body: Any = None) -> Any:
        url = f"{self.emu.url}/_emulator/{what}"
        async with self.http.request(method, url, json=body) as resp:
            assert resp.status == 200, await resp.text()
            return await resp.json()


__all__ = ["FAST", "FOREX_PATH", "STOCK_PATH", "Api", "Reply", "kline_data", "path_of"]
