"""Building redis-py clients from URLs, with timeouts that keep a stalled server from
holding an LLM call: ``socket_timeout`` and ``socket_connect_timeout`` default to 0.25 s and
redis-py's own retry is limited to ONE immediate retry of a failure to connect
(``ConnectRetry``), so a call on a server that accepts but never answers returns within
about 0.25 s, one that cannot be reached within about 0.5 s (then the error policy applies).

Why no other retry: redis-py retries a command after a timeout or a broken connection by
sending it again, but the first one may have run (a server stalled for 0.45 s runs it when
it wakes up), and every fleetcache script counts: a retried get would count two hits, a put
two puts. A command is therefore sent once. Only faults that provably happened before it
was sent are retried: a failed or timed-out connect (a burst of new connections on a busy
machine), a pooled connection the server had closed (replaced when it is taken from the
pool), ``NOSCRIPT`` (the script did not run: reloaded and re-sent by the store). A cluster
client built from a URL does no retry at all (redis-py's cluster retry cannot tell the two
kinds apart). A ``client=`` you pass keeps its own retry policy: redis-py >= 6 retries 3
times by default, so pass ``retry=fleetcache.ConnectRetry()`` (``AsyncConnectRetry()``
for asyncio; or ``Retry(NoBackoff(), 0)``) for
exactly-once counts.

URL forms (the scheme picks the client class; everything after it is redis-py's own syntax):

- ``redis://``, ``rediss://``, ``unix://``: one server (``redis.Redis.from_url``).
- ``redis+cluster://host:port`` (or ``rediss+cluster://``): Redis Cluster; one seed node is
  enough, the rest are discovered (``RedisCluster.from_url``). No database number.
- ``redis+sentinel://host:port[,host:port...]/service_name[/db]`` (or
  ``rediss+sentinel://``, TLS to the primary): the primary that the sentinels name for
  ``service_name`` (``Sentinel(...).master_for``); a failover is followed by itself. A
  ``user:password@`` before the hosts authenticates to the primary (not to the sentinels).
"""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from ._validate import timeout

#: Default socket read/write timeout for URL-built clients (seconds).
DEFAULT_SOCKET_TIMEOUT = 0.25
#: Default connect timeout for URL-built clients (seconds).
DEFAULT_CONNECT_TIMEOUT = 0.25
#: Connections a URL-built single-server client may open (one per concurrent call).
#: redis-py >= 6 caps a pool at 100 by default and fails the 101st concurrent call at once
#: with ``MaxConnectionsError``, which a burst of threads or tasks reaches. A plain pool with
#: a high cap is used rather than ``BlockingConnectionPool``: its queue and lock cost about
#: 20 us per call on the hot path (measured), more than the whole fleetcache layer.
DEFAULT_MAX_CONNECTIONS = 10_000


#: A timeout in seconds: a finite number > 0 (the one check in ``_validate``).
check_timeout = timeout


R = TypeVar("R")
_RETRYABLE = (RedisConnectionError, RedisTimeoutError, socket.timeout)


def never_sent(error: BaseException) -> bool:
    """True for a failure to connect ("Error 111 connecting to ...", "Timeout connecting to
    server"): nothing of the command was written, so sending it is not a re-send."""
    return "connecting to" in str(error)


def _retryable(error: BaseException, is_retryable: Any) -> bool:
    return never_sent(error) and (is_retryable is None or bool(is_retryable(error)))


class ConnectRetry(Retry):
    """redis-py ``Retry`` that retries once, immediately, and only a failure to connect;
    a command that may have reached the server is never sent again (it would be counted
    twice). Same call shape as ``Retry.call_with_retry`` (redis-py 5 to 8)."""

    def __init__(self) -> None:
        super().__init__(NoBackoff(), 1)

    def call_with_retry(  # type: ignore[override, unused-ignore]
        self,
        do: Callable[[], R],
        fail: Callable[..., Any],
        is_retryable: Callable[[Exception], bool] | None = None,
        with_failure_count: bool = False,
    ) -> R:
        failures = 0
        while True:
            try:
                return do()
            except _RETRYABLE as error:
                failures += 1
                fail(error, failures) if with_failure_count else fail(error)
                if failures > 1 or not _retryable(error, is_retryable):
                    raise


class AsyncConnectRetry(AsyncRetry):
    """The asyncio twin of ``ConnectRetry``."""

    def __init__(self) -> None:
        super().__init__(NoBackoff(), 1)

    async def call_with_retry(  # type: ignore[override, unused-ignore]
        self,
        do: Callable[[], Awaitable[R]],
        fail: Callable[..., Any],
        is_retryable: Callable[[Exception], bool] | None = None,
        with_failure_count: bool = False,
    ) -> R:
        failures = 0
        while True:
            try:
                return await do()
            except _RETRYABLE as error:
                failures += 1
                await (fail(error, failures) if with_failure_count else fail(error))
                if failures > 1 or not _retryable(error, is_retryable):
                    raise


def _client_kwargs(socket_timeout: float, connect_timeout: float) -> dict[str, Any]:
    return {
        "decode_responses": False,
        "socket_timeout": socket_timeout,
        "socket_connect_timeout": connect_timeout,
        "retry": ConnectRetry(),  # never re-send a command that may have run
    }


#: Connections per node an async cluster client built from a URL may open (redis-py's
#: default, 100, turns the 101st concurrent call on one node into an error).
ASYNC_CLUSTER_MAX_CONNECTIONS = 10_000

_CLUSTER = ("redis+cluster://", "rediss+cluster://")
_SENTINEL = ("redis+sentinel://", "rediss+sentinel://")


def _split_scheme(url: object) -> tuple[str, str]:
    """``("plain"|"cluster"|"sentinel", url)``; the cluster URL loses its ``+cluster``."""
    if not isinstance(url, str):
        raise TypeError("url must be a str")
    low = url.lower()
    if low.startswith(_CLUSTER):
        return "cluster", url.split("+", 1)[0] + url[low.index("://") :]
    if low.startswith(_SENTINEL):
        return "sentinel", url
    return "plain", url


def parse_sentinel_url(url: str) -> dict[str, Any]:
    """Parse ``redis+sentinel://[user:password@]h:p[,h:p...]/service[/db]``.

    Returns ``hosts`` (list of (host, port); port defaults to 26379), ``service``, ``db``
    (default 0), ``ssl``, ``username``, ``password`` (``None`` when absent). Raises
    ``ValueError`` for a URL without hosts or service name.
    """
    from urllib.parse import unquote

    scheme, _, rest = url.partition("://")
    netloc, _, path = rest.partition("/")
    username = password = None
    if "@" in netloc:
        auth, _, netloc = netloc.rpartition("@")
        user, sep, pw = auth.partition(":")
        username = unquote(user) or None
        password = unquote(pw) if sep else None
    hosts: list[tuple[str, int]] = []
    for part in netloc.split(","):
        if not part:
            continue
        host, sep, port = part.rpartition(":")
        if not sep or "]" in port:  # no port given ("h" or "[::1]")
            host, port = part, "26379"
        try:
            hosts.append((host.strip("[]"), int(port)))
        except ValueError:
            raise ValueError(f"bad sentinel address {part!r} in {url!r}") from None
    pieces = [p for p in path.split("/") if p]
    if not hosts or not pieces:
        raise ValueError(f"sentinel URL {url!r} needs host:port[,host:port...]/service_name[/db]")
    try:
        db = int(pieces[1]) if len(pieces) > 1 else 0
    except ValueError:
        raise ValueError(f"bad database number in sentinel URL {url!r}") from None
    return {
        "hosts": hosts,
        "service": unquote(pieces[0]),
        "db": db,
        "ssl": scheme.lower().startswith("rediss"),
        "username": username,
        "password": password,
    }


def _sentinel_kwargs(parsed: dict[str, Any], kw: dict[str, Any]) -> dict[str, Any]:
    out = dict(kw, db=parsed["db"])
    if parsed["ssl"]:
        out["ssl"] = True
    if parsed["username"]:
        out["username"] = parsed["username"]
    if parsed["password"] is not None:
        out["password"] = parsed["password"]
    return out


def _sentinel_primary(
    sentinel_cls: Any, url: str, kw: dict[str, Any], socket_timeout: float, connect_timeout: float
) -> Any:
    """The primary that the sentinels of a ``redis+sentinel://`` URL name (sync or async
    ``Sentinel`` class), followed across failovers by redis-py."""
    parsed = parse_sentinel_url(url)
    sentinel = sentinel_cls(
        parsed["hosts"],
        sentinel_kwargs={
            "socket_timeout": socket_timeout,
            "socket_connect_timeout": connect_timeout,
        },
    )
    return sentinel.master_for(parsed["service"], **_sentinel_kwargs(parsed, kw))


def sync_client_from_url(url: str, socket_timeout: float, connect_timeout: float) -> Any:
    """A client for ``url`` (one connection pool, reused by the cache object):
    ``redis.Redis``, ``RedisCluster`` or a sentinel-managed primary (see the URL forms)."""
    import redis

    kind, url = _split_scheme(url)
    kw = _client_kwargs(socket_timeout, connect_timeout)
    if kind == "cluster":
        from redis.cluster import RedisCluster

        kw["retry"] = Retry(NoBackoff(), 0)  # cluster-level: cannot tell unsent from sent
        return RedisCluster.from_url(url, **kw)
    if kind == "sentinel":
        from redis.sentinel import Sentinel

        return _sentinel_primary(Sentinel, url, kw, socket_timeout, connect_timeout)
    pool = redis.ConnectionPool.from_url(url, max_connections=DEFAULT_MAX_CONNECTIONS, **kw)
    return _owning(redis.Redis, pool)


def async_client_from_url(url: str, socket_timeout: float, connect_timeout: float) -> Any:
    """The asyncio twin of ``sync_client_from_url``: ``redis.asyncio.Redis``, async
    ``RedisCluster`` or a sentinel-managed primary."""
    import redis.asyncio

    kind, url = _split_scheme(url)
    kw = _client_kwargs(socket_timeout, connect_timeout)
    # the asyncio clients need the asyncio Retry: a sync one returns the coroutine from its
    # loop without awaiting it, so it would never retry
    kw["retry"] = AsyncConnectRetry()
    if kind == "cluster":
        kw["retry"] = AsyncRetry(NoBackoff(), 0)  # cluster-level: cannot tell unsent from sent
        from redis.asyncio.cluster import RedisCluster

        # redis-py's async cluster raises MaxConnectionsError past 100 connections per node
        # (it does not wait for a free one): 200 concurrent gets would be 100 misses
        kw["max_connections"] = ASYNC_CLUSTER_MAX_CONNECTIONS
        return RedisCluster.from_url(url, **kw)
    if kind == "sentinel":
        from redis.asyncio.sentinel import Sentinel as AsyncSentinel

        return _sentinel_primary(AsyncSentinel, url, kw, socket_timeout, connect_timeout)
    pool = redis.asyncio.ConnectionPool.from_url(url, max_connections=DEFAULT_MAX_CONNECTIONS, **kw)
    return _owning(redis.asyncio.Redis, pool)


def _owning(cls: Any, pool: Any) -> Any:
    """A client of class ``cls`` that owns (and on close disconnects) ``pool``."""
    from_pool = getattr(cls, "from_pool", None)
    if from_pool is not None:
        return from_pool(pool)
    client = cls(connection_pool=pool)  # redis-py < 5.0.1
    client.auto_close_connection_pool = True
    return client


def check_client(client: Any) -> Any:
    """Refuse a client that decodes responses (payloads are binary)."""
    try:
        kwargs = client.get_connection_kwargs()
    except AttributeError:
        kwargs = getattr(getattr(client, "connection_pool", None), "connection_kwargs", {}) or {}
    if isinstance(kwargs, dict) and kwargs.get("decode_responses"):
        raise ValueError(
            "the client was built with decode_responses=True; fleetcache stores binary "
            "payloads and needs decode_responses=False"
        )
    return client
