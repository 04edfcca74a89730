"""Session fixtures: real servers on free loopback ports, and a parametrised backend matrix.

Every test that takes ``backend`` runs once per backend that this machine can start
(standalone Redis always; others where their binary is present). Each test gets its own
namespace (``prefix``), so no test ever flushes a database.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import redis
import redis.asyncio

from fleetcache import AsyncRedisExactCache, RedisExactCache

from .servers import ServerProc, redis_server_bin


@dataclass
class Backend:
    """A running server the suite can use: a name, a URL and client factories."""

    name: str
    server: ServerProc

    @property
    def url(self) -> str:
        return self.server.url

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, decode_responses=False, socket_timeout=5)

    def async_client(self) -> redis.asyncio.Redis:
        return redis.asyncio.Redis.from_url(self.url, decode_responses=False, socket_timeout=5)


@pytest.fixture(scope="session")
def redis_proc() -> Iterator[ServerProc]:
    binary = redis_server_bin()
    if binary is None:
        pytest.exit(
            "redis-server not found: install it (Debian: apt-get install redis-server) "
            "or set REDIS_SERVER_BIN",
            returncode=3,
        )
    proc = ServerProc(binary).start()
    yield proc
    proc.stop()


BACKENDS = ["redis"]


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Backend:
    return Backend(request.param, request.getfixturevalue(f"{request.param}_proc"))


@pytest.fixture
def prefix() -> str:
    return f"t:{uuid.uuid4().hex[:12]}"


@pytest.fixture
def r(backend: Backend) -> Iterator[redis.Redis]:
    c = backend.client()
    yield c
    c.close()


@pytest.fixture
def make_cache(backend: Backend, prefix: str) -> Iterator[Callable[..., RedisExactCache]]:
    made: list[RedisExactCache] = []

    def make(**kw: Any) -> RedisExactCache:
        kw.setdefault("url", backend.url)
        kw.setdefault("key_prefix", prefix)
        c = RedisExactCache(**kw)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


@pytest.fixture
async def make_async_cache(
    backend: Backend, prefix: str
) -> AsyncIterator[Callable[..., AsyncRedisExactCache]]:
    made: list[AsyncRedisExactCache] = []

    def make(**kw: Any) -> AsyncRedisExactCache:
        kw.setdefault("url", backend.url)
        kw.setdefault("key_prefix", prefix)
        c = AsyncRedisExactCache(**kw)
        made.append(c)
        return c

    yield make
    for c in made:
        await c.aclose()
