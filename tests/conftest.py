from collections.abc import Iterator

import pytest
from redis_server import RedisServer

pytest_plugins = ["alltick_frames.emulator.pytest_plugin"]


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A fresh ``redis-server`` on a free loopback port (see tests/redis_server.py)."""
    if not RedisServer.available():
        pytest.skip("redis-server is not installed (Debian: apt-get install redis-server)")
    with RedisServer() as server:
        yield server
