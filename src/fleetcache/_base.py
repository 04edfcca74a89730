"""What the sync and async caches share besides the core: constructor checks, the error
policy, and the I/O-free parts of the public surface."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from pydantic import BaseModel

from ._clients import DEFAULT_CONNECT_TIMEOUT, DEFAULT_SOCKET_TIMEOUT, check_client, check_timeout
from ._core import DEFAULT_MAX_ENTRY_BYTES, Core
from ._models import LLMResponse
from ._policy import ErrorPolicy
from ._reqcore import ShouldStore, check_ignore, check_should_store
from ._request import DEFAULT_IGNORE

DEFAULT_URL = "redis://localhost:6379/0"
DEFAULT_PREFIX = "ractogateway:exact"


class CacheBase:
    """Constructor and I/O-free surface shared by ``RedisExactCache`` and
    ``AsyncRedisExactCache`` (see their docstrings for the parameters)."""

    def __init__(
        self,
        *,
        url: str = DEFAULT_URL,
        client: Any | None = None,
        ttl_seconds: float | None = None,
        key_prefix: str = DEFAULT_PREFIX,
        response_model: type[BaseModel] = LLMResponse,
        on_error: str = "miss",
        shards: int = 1,
        socket_timeout: float = DEFAULT_SOCKET_TIMEOUT,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        breaker_seconds: float = 1.0,
        compress_threshold: int | None = 4096,
        max_entry_bytes: int = DEFAULT_MAX_ENTRY_BYTES,
        ignore: Collection[str] | None = None,
        should_store: ShouldStore | None = None,
    ) -> None:
        self._core = Core(
            key_prefix=key_prefix,
            shards=shards,
            ttl_seconds=ttl_seconds,
            response_model=response_model,
            compress_threshold=compress_threshold,
            max_entry_bytes=max_entry_bytes,
            ignore=check_ignore(ignore),
            should_store=check_should_store(should_store),
        )
        self._policy = ErrorPolicy(on_error, breaker_seconds)
        self._socket_timeout = check_timeout(socket_timeout, "socket_timeout")
        self._connect_timeout = check_timeout(connect_timeout, "connect_timeout")
        self._ttl_seconds = ttl_seconds
        self._url = url
        self._owns_client = client is None
        self._client: Any = (
            check_client(client) if client is not None else self._client_from_url(url)
        )
        self._store: Any = self._store_class(self._client)
        self._layout_lock: Any = self._lock_class()

    #: ``Store`` or ``AsyncStore``: what runs the core's instructions (set by the subclass).
    _store_class: Any = None
    #: ``threading.Lock`` or ``asyncio.Lock``: serialises the first (layout) call.
    _lock_class: Any = None

    def _client_from_url(self, url: str) -> Any:  # pragma: no cover - overridden
        raise NotImplementedError

    # -- I/O-free surface ---------------------------------------------------------------

    @property
    def key_prefix(self) -> str:
        """The namespace this cache reads and writes."""
        return self._core.keys.prefix

    @property
    def shards(self) -> int:
        """Number of hash-tagged shards the namespace is spread over (default 1)."""
        return self._core.keys.shards

    @property
    def ttl_seconds(self) -> float | None:
        """Default entry TTL in seconds (``None`` = no expiry)."""
        return self._ttl_seconds

    @property
    def response_model(self) -> type[BaseModel]:
        """The pydantic model ``get`` returns."""
        return self._core.codec.response_model

    @property
    def ignore(self) -> frozenset[str]:
        """Top-level request fields the request path leaves out of the key."""
        return DEFAULT_IGNORE if self._core.ignore is None else self._core.ignore

    @property
    def on_error(self) -> str:
        """``"miss"`` (fail open) or ``"raise"``."""
        return self._policy.on_error

    @property
    def client(self) -> Any:
        """The one redis-py client this cache uses."""
        return self._client

    @property
    def error_count(self) -> int:
        """Redis faults this cache object has seen (process-local)."""
        return self._policy.errors

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(key_prefix={self.key_prefix!r}, shards={self.shards}, "
            f"ttl_seconds={self._ttl_seconds!r}, on_error={self.on_error!r})"
        )
