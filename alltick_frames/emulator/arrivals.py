"""When a request reached the emulator's front door: the kernel's receive time, not the loop's.

AllTick dates a call when it arrives. The emulator's event loop can only read a request when it
is free: while it builds another answer (500 bars take a few milliseconds), or while its
process waits for a core on a busy machine, requests queue in the socket, and the loop then
reads them late and in a burst. Dated when the loop reads them, a client that paced exactly is
refused for a burst only the emulator made (measured with ``benchmarks/pacing_trace.py``: on
a loaded 2-core machine, the oldest call of every refused window had waited 40 to 210 ms in
the emulator's socket, not in the client). A real server's front door (nginx, a load balancer)
does not wait for the application's loop.

So the emulator's listening socket hands out connections that ask the kernel to stamp every
segment it receives (``SO_TIMESTAMPNS``, Linux; elsewhere the stamp is the instant the loop
reads the bytes, as before), and :func:`arrived` reports the stamp of a request's last bytes:
the moment the whole request had reached the host. Only the dating changes: the request is
still admitted and answered by the loop in its own time.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import sys
import time
from typing import Any

#: ``SO_TIMESTAMPNS`` (Linux's value when the socket module does not name it).
SO_TIMESTAMPNS: int | None = getattr(
    socket, "SO_TIMESTAMPNS", 35 if sys.platform.startswith("linux") else None
)
_TIMESPEC = struct.Struct("@qq")
_ANCILLARY = socket.CMSG_SPACE(_TIMESPEC.size) if hasattr(socket, "CMSG_SPACE") else 0

#: Socket file descriptor -> epoch seconds its last received bytes reached the host.
_ARRIVALS: dict[int, float] = {}


class _StampedConnection(socket.socket):
    """An accepted connection whose ``recv`` also records when the bytes arrived."""

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        if not _ANCILLARY:
            data = super().recv(bufsize, flags)
            _ARRIVALS[self.fileno()] = time.time()
            return data
        data, ancillary, _flags, _address = self.recvmsg(bufsize, _ANCILLARY, flags)
        stamp = None
        for level, kind, value in ancillary:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                seconds, nanoseconds = _TIMESPEC.unpack_from(value)
                stamp = seconds + nanoseconds / 1e9
        _ARRIVALS[self.fileno()] = time.time() if stamp is None else stamp
        return data

    def close(self) -> None:
        _ARRIVALS.pop(self.fileno(), None)
        super().close()


class _StampedListener(socket.socket):
    """A listening socket whose accepted connections are :class:`_StampedConnection`."""

    def accept(self) -> tuple[socket.socket, Any]:
        fd, address = self._accept()  # type: ignore[attr-defined]
        conn = _StampedConnection(self.family, self.type, self.proto, fileno=fd)
        if socket.getdefaulttimeout() is None and self.gettimeout():
            conn.setblocking(True)
        _stamp(conn)
        return conn, address


def listening_socket(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` and listening, for ``aiohttp.web.SockSite``."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    plain = socket.create_server((host, port), family=family, backlog=1024)
    sock = _StampedListener(plain.family, plain.type, plain.proto, fileno=plain.detach())
    sock.setblocking(False)
    # Set on the listener too: bytes that arrive before the loop accepts their connection
    # are stamped as well (accepted sockets inherit the option).
    _stamp(sock)
    return sock


def _stamp(sock: socket.socket) -> None:
    if SO_TIMESTAMPNS is not None:
        # Without kernel stamps, recv falls back to the time it reads.
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)


def arrived(transport: Any) -> float | None:
    """When the request last read on ``transport``'s connection reached the host (epoch
    seconds), or None if it was not served through :func:`listening_socket`."""
    if transport is None:
        return None
    sock = transport.get_extra_info("socket")
    return None if sock is None else _ARRIVALS.get(sock.fileno())
