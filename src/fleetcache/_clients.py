"""Building redis-py clients from URLs, with timeouts that keep a stalled server from
holding an LLM call: ``socket_timeout`` and ``socket_connect_timeout`` default to 0.25 s and
redis-py's own retry is limited to one immediate retry, so a call on a server that accepts but
never answers returns within about 0.5 s (then the error policy applies)."""

from __future__ import annotations

from typing import Any

from redis.backoff import NoBackoff
from redis.retry import Retry

#: Default socket read/write timeout for URL-built clients (seconds).
DEFAULT_SOCKET_TIMEOUT = 0.25
#: Default connect timeout for URL-built clients (seconds).
DEFAULT_CONNECT_TIMEOUT = 0.25


def check_timeout(value: object, name: str) -> float:
    """A timeout in seconds: a finite number > 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number of seconds")
    v = float(value)
    if not 0 < v < float("inf"):
        raise ValueError(f"{name} must be a finite number of seconds > 0, not {value!r}")
    return v


def _client_kwargs(socket_timeout: float, connect_timeout: float) -> dict[str, Any]:
    return {
        "decode_responses": False,
        "socket_timeout": socket_timeout,
        "socket_connect_timeout": connect_timeout,
        "retry": Retry(NoBackoff(), 1),
    }


def sync_client_from_url(url: str, socket_timeout: float, connect_timeout: float) -> Any:
    """A ``redis.Redis`` for ``url`` (one connection pool, reused by the cache object)."""
    import redis

    if not isinstance(url, str):
        raise TypeError("url must be a str")
    return redis.Redis.from_url(url, **_client_kwargs(socket_timeout, connect_timeout))


def async_client_from_url(url: str, socket_timeout: float, connect_timeout: float) -> Any:
    """A ``redis.asyncio.Redis`` for ``url``."""
    import redis.asyncio

    if not isinstance(url, str):
        raise TypeError("url must be a str")
    return redis.asyncio.Redis.from_url(url, **_client_kwargs(socket_timeout, connect_timeout))


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
