"""Sync/async parity adapter: every behaviour scenario is written once, against one async
interface, and runs through both ``RedisExactCache`` and ``AsyncRedisExactCache``.

The ``cache_factory`` fixture is parametrised over ``["sync", "async"]``. Calling it builds a
cache of that flavour on the test's ``backend`` and namespace (``prefix``) and returns a
``Flavor`` with the same awaitable methods for both::

    async def test_x(cache_factory):
        c = cache_factory(ttl_seconds=5)
        await c.put(*REQ, resp)
        assert await c.get(*REQ) == resp

Methods that are properties or dunders on the sync class (``stats``, ``len``) are methods
here (``await c.stats()``, ``await c.size()``). Any other public method of the cache (for
example ``get_many``, ``put_many``, ``get_or_compute`` once they exist) is passed through by
name: ``await c.get_many(...)`` calls the sync method directly or awaits the async one.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from typing import Any

import pytest

from fleetcache import AsyncRedisExactCache, CacheStats, FleetStats, RedisExactCache

from .servers import ServerProc, servers_of

FLAVORS = ["sync", "async"]


class Flavor:
    """One cache behind a uniform async interface. ``.cache`` is the real object."""

    def __init__(self, kind: str, cache: RedisExactCache | AsyncRedisExactCache) -> None:
        self.kind = kind
        self.cache = cache

    @property
    def is_async(self) -> bool:
        return self.kind == "async"

    async def _call(self, name: str, *args: Any, **kw: Any) -> Any:
        result = getattr(self.cache, name)(*args, **kw)
        if inspect.isawaitable(result):
            result = await result
        return result

    # -- the public API, uniformly awaitable ----------------------------------------------

    async def get(self, *fields: Any) -> Any:
        return await self._call("get", *fields)

    async def put(self, *args: Any, **kw: Any) -> None:
        await self._call("put", *args, **kw)

    async def invalidate(self, *fields: Any) -> bool:
        return bool(await self._call("invalidate", *fields))

    async def clear(self, **kw: Any) -> None:
        await self._call("clear", **kw)

    async def size(self) -> int:
        c = self.cache
        if isinstance(c, AsyncRedisExactCache):
            return await c.size()
        return len(c)

    async def stats(self) -> CacheStats:
        c = self.cache
        if isinstance(c, AsyncRedisExactCache):
            return await c.stats()
        return c.stats

    async def fleet_stats(self) -> FleetStats:
        return await self._call("fleet_stats")  # type: ignore[no-any-return]

    async def reconcile(self, **kw: Any) -> int:
        return int(await self._call("reconcile", **kw))

    async def reset_stats(self) -> None:
        await self._call("reset_stats")

    async def close(self) -> None:
        c = self.cache
        if isinstance(c, AsyncRedisExactCache):
            await c.aclose()
        else:
            c.close()

    def __getattr__(self, name: str) -> Callable[..., Any]:
        """Pass any other public method through, awaitable (e.g. ``get_many``)."""
        if name.startswith("_"):
            raise AttributeError(name)
        target = getattr(self.cache, name)
        if not callable(target):
            raise AttributeError(f"{name} is not a method of {type(self.cache).__name__}")

        async def call(*args: Any, **kw: Any) -> Any:
            return await self._call(name, *args, **kw)

        return call

    # -- helpers for white-box assertions (key names of a request) -------------------------

    def keys_of(self, *fields: Any) -> tuple[str, str, str]:
        """(entry key, index key, stats key) of a request in this cache's namespace."""
        core = self.cache._core
        _req, digest, shard = core.request(fields)
        k = core.keys
        return k.entry(shard, digest), k.index(shard), k.stats(shard)

    def digest_of(self, *fields: Any) -> str:
        return self.cache._core.request(fields)[1]

    def __repr__(self) -> str:
        return f"Flavor({self.kind}, {self.cache!r})"


def cache_kwargs(
    url: str, prefix: str, defaults: Mapping[str, Any], kw: Mapping[str, Any]
) -> dict[str, Any]:
    """A test cache's keyword arguments: ``kw`` (the test's own), else the server ``url``,
    the test's namespace ``prefix`` and the backend's ``defaults`` (shards on a cluster)."""
    return {"url": url, "key_prefix": prefix, **defaults, **kw}


class CacheFactory:
    """Builds ``Flavor`` caches of one kind; closes them all at teardown."""

    def __init__(
        self, kind: str, url: str, prefix: str, defaults: dict[str, Any] | None = None
    ) -> None:
        self.kind = kind
        self.url = url
        self.prefix = prefix
        self.defaults = dict(defaults or {})  # backend's cache defaults (shards on a cluster)
        self.made: list[Flavor] = []

    @property
    def cls(self) -> type[RedisExactCache] | type[AsyncRedisExactCache]:
        return AsyncRedisExactCache if self.kind == "async" else RedisExactCache

    def raw_cache(self, **kw: Any) -> RedisExactCache | AsyncRedisExactCache:
        """Construct the cache class directly (for constructor-error tests)."""
        return self.cls(**cache_kwargs(self.url, self.prefix, self.defaults, kw))

    def __call__(self, **kw: Any) -> Flavor:
        f = Flavor(self.kind, self.raw_cache(**kw))
        self.made.append(f)
        return f

    async def aclose(self) -> None:
        for f in self.made:
            await f.close()


@pytest.fixture(params=FLAVORS)
async def cache_factory(
    request: pytest.FixtureRequest, backend: Any, prefix: str
) -> AsyncIterator[CacheFactory]:
    """Parametrised over ``["sync", "async"]``: ``cache_factory(**kw)`` -> ``Flavor``."""
    factory = CacheFactory(request.param, backend.url, prefix, backend.cache_defaults)
    yield factory
    await factory.aclose()


@pytest.fixture
async def cache(cache_factory: CacheFactory) -> Flavor:
    """One default cache (no TTL) of each flavour on the test's namespace."""
    return cache_factory()


@pytest.fixture
def private_server(backend: Any) -> Iterator[Callable[..., ServerProc]]:
    """``private_server(*extra_args)`` starts a standalone server of the backend's binary
    (redis-server or valkey-server) that only this test uses; stopped by PID at teardown."""
    with servers_of(backend.server.binary) as start:
        yield start


# -- request/response samples shared by the core tests ---------------------------------------


def req(i: int | str = 0, model: str = "gpt-test") -> tuple[str, str, str, float, int]:
    """A distinct request (the five positional fields) per ``i``."""
    return (f"question {i}", "be brief", model, 0.0, 256)


def response(i: int | str = 0, tokens: int = 30) -> Any:
    """A small ``LLMResponse`` with ``usage["total_tokens"] == tokens``."""
    from fleetcache import LLMResponse

    return LLMResponse(
        content=f"answer {i}",
        usage={"prompt_tokens": tokens - 10, "completion_tokens": 10, "total_tokens": tokens},
    )
