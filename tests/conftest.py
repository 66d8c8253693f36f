import os
import shutil
import tempfile
from collections.abc import Iterator

import pytest
from redis_server import RedisServer

pytest_plugins = ["alltick_frames.emulator.pytest_plugin"]

#: Settings of the user's own environment that would point the suite at their real cache,
#: budget, token or service.
_USER_SETTINGS = ("ALLTICK_CACHE_DIR", "ALLTICK_BUDGET_URL", "ALLTICK_TOKEN", "ALLTICK_BASE_URL")
_SANDBOX: list[str] = []


def pytest_configure(config: pytest.Config) -> None:
    """No test may touch the user's real cache (``~/.cache/alltick-frames``) or settings: the
    session's default cache directory (and every subprocess's) is a throwaway one."""
    for name in _USER_SETTINGS:
        os.environ.pop(name, None)
    sandbox = tempfile.mkdtemp(prefix="alltick-tests-")
    _SANDBOX.append(sandbox)
    os.environ["XDG_CACHE_HOME"] = os.path.join(sandbox, "xdg-cache")
    os.environ["ALLTICK_CACHE_DIR"] = os.path.join(sandbox, "cache")


def pytest_unconfigure(config: pytest.Config) -> None:
    for sandbox in _SANDBOX:
        shutil.rmtree(sandbox, ignore_errors=True)


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A fresh ``redis-server`` on a free loopback port (see tests/redis_server.py)."""
    if not RedisServer.available():
        pytest.skip("redis-server is not installed (Debian: apt-get install redis-server)")
    with RedisServer() as server:
        yield server
