"""A raw WebSocket client for the emulator's WebSocket tests (plain aiohttp, never the project's
client): send AllTick requests, read answers and pushes."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp

from alltick_frames.emulator import EmulatorServer

STOCK_WS = "/quote-stock-b-ws-api"
FOREX_WS = "/quote-b-ws-api"
PUSHES = (22998, 22999)


class Sock:
    """One socket to an emulator. Pushes read while waiting for an answer are kept in
    ``pushes``; ``closed`` holds the close message once the server closed the socket."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.pushes: list[dict[str, Any]] = []
        self.closed: aiohttp.WSMessage | None = None
        self._seq = 0

    async def send(self, cmd_id: int, data: Any = None, *, trace: str = "t-1") -> int:
        self._seq += 1
        frame = {"cmd_id": cmd_id, "seq_id": self._seq, "trace": trace, "data": data or {}}
        await self.ws.send_str(json.dumps(frame))
        return self._seq

    async def frame(self, timeout: float = 5.0) -> dict[str, Any] | None:
        """The next text frame as JSON (the raw text under ``"raw"`` if it is not JSON), or
        None once the socket is closed."""
        if self.closed is not None:
            return None
        msg = await self.ws.receive(timeout)
        if msg.type != aiohttp.WSMsgType.TEXT:
            self.closed = msg
            return None
        try:
            return json.loads(msg.data)
        except ValueError:
            return {"raw": msg.data}

    async def answer(self, timeout: float = 5.0) -> dict[str, Any] | None:
        """The next frame that is not a push (pushes on the way are kept)."""
        while (frame := await self.frame(timeout)) is not None:
            if frame.get("cmd_id") not in PUSHES:
                return frame
            self.pushes.append(frame)
        return None

    async def request(self, cmd_id: int, data: Any = None, **kwargs: Any) -> dict[str, Any]:
        await self.send(cmd_id, data, **kwargs)
        answer = await self.answer()
        assert answer is not None, f"closed instead of answering {cmd_id}: {self.closed}"
        return answer

    async def subscribe(self, cmd_id: int, codes: list[str], level: int | None = None) -> int:
        items = [{"code": c} | ({"depth_level": level} if level else {}) for c in codes]
        return (await self.request(cmd_id, {"symbol_list": items}))["ret"]

    async def collect(self, seconds: float = 0.3) -> list[dict[str, Any]]:
        """Pushes arriving within ``seconds`` of real time, added to ``pushes`` too."""
        out = []
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        while (left := end - loop.time()) > 0:
            try:
                frame = await self.frame(left)
            except TimeoutError:
                break
            if frame is None:
                break
            out.append(frame)
        self.pushes += out
        return out

    async def wait_closed(self, timeout: float = 5.0) -> aiohttp.WSMessage:
        while await self.frame(timeout) is not None:
            pass
        assert self.closed is not None
        return self.closed


class Sockets:
    """Opens sockets on one emulator and closes them at the end."""

    def __init__(self, http: aiohttp.ClientSession, emu: EmulatorServer) -> None:
        self.http = http
        self.emu = emu
        self.open: list[Sock] = []

    async def __call__(self, path: str = STOCK_WS, token: str | None = "demo") -> Sock:
        query = "" if token is None else f"?token={token}"
        ws = await self.http.ws_connect(f"{self.emu.url}{path}{query}")
        sock = Sock(ws)
        self.open.append(sock)
        return sock

    async def refusal(self, path: str = STOCK_WS, token: str = "demo") -> tuple[int, Any]:
        """The HTTP status and JSON body of a handshake the server refuses."""
        url = f"{self.emu.url}{path}?token={token}"
        headers = {
            "Upgrade": "websocket",
            "Connection": "Upgrade",
            "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
            "Sec-WebSocket-Version": "13",
        }
        async with self.http.get(url, headers=headers) as resp:
            return resp.status, json.loads(await resp.read())

    async def close(self) -> None:
        for sock in self.open:
            await sock.ws.close()


async def settle(emu: EmulatorServer, seconds: float, step: float = 1.0) -> None:
    """Drive the frozen rate clock ``seconds`` ahead in steps, letting pushes flow."""
    done = 0.0
    while done < seconds:
        emu.clock.advance(min(step, seconds - done))
        done += step
        await asyncio.sleep(0.03)
