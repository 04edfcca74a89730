"""What the sync and async caches share besides the core: constructor checks, the error
policy, the client binding (lazy, per event loop and per process for asyncio), and the
I/O-free parts of the public surface."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from pydantic import BaseModel

from . import _otel
from ._clients import DEFAULT_CONNECT_TIMEOUT, DEFAULT_SOCKET_TIMEOUT, check_client
from ._error_policy import REDIS_FAULTS, ErrorPolicy
from .core.canonical import DEFAULT_IGNORE
from .core.models import LLMResponse
from .core.ops import DEFAULT_MAX_ENTRY_BYTES, Core
from .core.request_ops import ShouldStore, check_ignore, check_should_store
from .core.validate import timeout

DEFAULT_URL = "redis://localhost:6379/0"
DEFAULT_PREFIX = "ractogateway:exact"

#: What a forked child inherited from its parent's asyncio clients (connections, pools): kept
#: referenced in the child and never closed or collected there, because closing one would
#: unregister the parent's socket from an event-loop selector the two processes share. One
#: entry per fork of a cache that had connections.
_INHERITED: list[Any] = []


class Binding:
    """A client and what runs on it: the store, and the lock that serialises the first
    (layout) call. The sync cache has one; the async cache one per event loop."""

    __slots__ = ("client", "lock", "store")

    def __init__(self, client: Any, store: Any, lock: Any) -> None:
        self.client = client
        self.store = store
        self.lock = lock


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
        signing_key: bytes | Sequence[bytes] | None = None,
        max_entries: int | None = None,
        ignore: Collection[str] | None = None,
        should_store: ShouldStore | None = None,
        prices: Mapping[str, Sequence[float]] | None = None,
    ) -> None:
        self._core = Core(
            key_prefix=key_prefix,
            shards=shards,
            ttl_seconds=ttl_seconds,
            response_model=response_model,
            compress_threshold=compress_threshold,
            max_entry_bytes=max_entry_bytes,
            signing_key=signing_key,
            max_entries=max_entries,
            ignore=check_ignore(ignore),
            should_store=check_should_store(should_store),
            prices=prices,
        )
        self._core.on_hit = _otel.HIT_HOOK  # None without the otel extra
        self._policy = ErrorPolicy(on_error, breaker_seconds)
        self._socket_timeout = timeout(socket_timeout, "socket_timeout")
        self._connect_timeout = timeout(connect_timeout, "connect_timeout")
        self._ttl_seconds = ttl_seconds
        self._url = url
        self._owns_client = client is None
        self._given = None if client is None else check_client(client, want_async=self._asyncio)
        self._open_lock = threading.Lock()
        # asyncio only: the process the bindings belong to; event loop -> binding (closed
        # loops are pruned when a new loop binds); (loop, pid, binding) of the last call
        self._pid = os.getpid()
        self._loops: dict[asyncio.AbstractEventLoop, Binding] = {}
        self._last: tuple[asyncio.AbstractEventLoop, int, Binding] | None = None
        #: the sync cache's binding; for asyncio, the one not yet claimed by an event loop
        self._binding: Binding | None = None
        try:
            self._binding = self._new_binding()
        except REDIS_FAULTS as exc:  # a cluster client connects when built: retried lazily
            self._policy.failed(exc, "connect", fail_open=True)

    #: ``Store`` or ``AsyncStore``: what runs the core's instructions (set by the subclass).
    _store_class: Any = None
    #: ``threading.Lock`` or ``asyncio.Lock``: serialises the first (layout) call.
    _lock_class: Any = None
    #: True for the asyncio cache: the client it takes must be an asyncio one.
    _asyncio = False

    def _client_from_url(self, url: str) -> Any:  # pragma: no cover - overridden
        raise NotImplementedError

    def _new_binding(self) -> Binding:
        """The given client, or a new one from ``url`` (a cluster client connects here:
        may raise a Redis fault), with its store and a new layout lock."""
        client = self._given if self._given is not None else self._client_from_url(self._url)
        return Binding(client, self._store_class(client), self._lock_class())

    def _bound(self) -> Binding:
        """The binding to run a call on; built on first use if the constructor could not
        (a Redis Cluster that was down: the fault then reaches the caller's error policy)."""
        b = self._binding
        if b is None:
            with self._open_lock:
                if self._binding is None:
                    self._binding = self._new_binding()
                b = self._binding
        return b

    def _clients_to_close(self) -> list[Any]:
        """The clients ``close()`` closes: the one built from ``url`` (a given one is yours)."""
        b, self._binding = self._binding, None
        return [b.client] if self._owns_client and b is not None else []

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
    def max_entries(self) -> int | None:
        """Most live entries the namespace holds (``None``: no cap); recorded in Redis."""
        return self._core.max_entries

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
        """The redis-py client this cache uses (for asyncio: the running event loop's, else
        the latest one); built now if the constructor could not (may raise a Redis fault)."""
        return self._current_client()

    def _current_client(self) -> Any:
        return self._bound().client

    @property
    def error_count(self) -> int:
        """Redis faults this cache object has seen (process-local)."""
        return self._policy.errors

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(key_prefix={self.key_prefix!r}, shards={self.shards}, "
            f"ttl_seconds={self._ttl_seconds!r}, on_error={self.on_error!r})"
        )


class AsyncCacheBase(CacheBase):
    """``CacheBase`` with one client per event loop and per process, for asyncio.

    An asyncio connection belongs to the event loop that opened it, and a forked child
    shares its parent's sockets (``redis.asyncio`` pools, unlike the sync ones, do not
    reset on fork). So the async cache keeps one binding per running event loop, made on
    first use in that loop, and forgets all of them in a forked child before any I/O:

    - built from ``url``: a new client (pool) per event loop; the one of a closed loop is
      dropped without being touched (its loop cannot run its clean-up any more).
    - a given ``redis.asyncio.Redis`` (or ``Sentinel.master_for``): its pool is reset (its
      connections dropped, not closed) in a forked child and when the loop it ran on has
      closed; used from two live event loops at once, or a given async ``RedisCluster`` in
      a second loop, raises ``RuntimeError`` before any I/O (build the cache from ``url=``).
    """

    _asyncio = True

    def _bound(self) -> Binding:
        loop = asyncio.get_running_loop()
        last = self._last
        if last is not None and last[0] is loop and last[1] == os.getpid():
            return last[2]
        with self._open_lock:
            b = self._bind(loop)
            self._last = (loop, self._pid, b)
        return b

    def _bind(self, loop: asyncio.AbstractEventLoop) -> Binding:
        pid = os.getpid()
        if pid != self._pid:
            self._forget_parent(pid)
        b = self._loops.get(loop)
        if b is not None:
            return b
        for other in [x for x in self._loops if x.is_closed()]:
            if self._given is not None:  # raises (state unchanged) if it cannot be reset
                _drop_connections(self._given, keep=False)
                self._binding = Binding(
                    self._given, self._store_class(self._given), self._lock_class()
                )
            del self._loops[other]
        if self._given is not None and self._loops:
            raise RuntimeError(
                "this AsyncRedisExactCache was given a client that is in use on another, "
                "still running event loop; an asyncio client belongs to one loop: build the "
                "cache from url= (one client per loop), or one cache per loop"
            )
        b, self._binding = self._binding, None
        if b is None:
            b = self._new_binding()  # may raise a Redis fault (cluster down): the policy's
        self._loops[loop] = b
        return b

    def _forget_parent(self, pid: int) -> None:
        """In a forked child: drop every binding the parent made, touching none of them."""
        if self._given is not None:  # raises (state unchanged) if it cannot be reset
            _drop_connections(self._given, keep=True)
        inherited = [b.client for b in self._loops.values()]
        if self._binding is not None:
            inherited.append(self._binding.client)
        self._loops.clear()
        self._last = None
        self._pid = pid
        if self._given is not None:
            self._binding = Binding(self._given, self._store_class(self._given), self._lock_class())
        else:
            _INHERITED.append(inherited)
            self._binding = None

    def _current_client(self) -> Any:
        try:
            asyncio.get_running_loop()
        except RuntimeError:  # no running loop: the latest binding, else a new one
            with self._open_lock:
                latest = self._last[2] if self._last is not None else self._binding
                if latest is None:
                    latest = self._binding = self._new_binding()
                return latest.client
        return self._bound().client

    def _clients_to_close(self) -> list[Any]:
        """The clients ``aclose()`` closes: the running loop's and the unclaimed one if this
        cache built them; clients of other loops are dropped (their loops own them)."""
        with self._open_lock:
            try:
                loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
            except RuntimeError:
                loop = None
            mine = [b for b in (self._loops.pop(loop, None) if loop else None, self._binding) if b]
            self._loops.clear()
            self._binding = None
            self._last = None
        if not self._owns_client or os.getpid() != self._pid:
            return []
        return [b.client for b in mine]


def _drop_connections(client: Any, *, keep: bool) -> None:
    """Empty the connection pools of a given asyncio client (and of its sentinels) without
    closing a connection; ``keep`` holds the dropped ones referenced forever (in a forked
    child). A client without a resettable pool (async ``RedisCluster``) raises
    ``RuntimeError``: its connections cannot be left behind safely."""
    pool = getattr(client, "connection_pool", None)
    if pool is None or not callable(getattr(pool, "reset", None)):
        raise RuntimeError(
            f"AsyncRedisExactCache cannot move a given {type(client).__qualname__} client to "
            "another event loop or a forked process; build the cache from url= (it then "
            "opens one client per event loop and per process)"
        )
    pools = [pool]
    manager = getattr(pool, "sentinel_manager", None)
    pools += [s.connection_pool for s in getattr(manager, "sentinels", ())]
    for p in pools:
        if keep:
            held = ("_available_connections", "_in_use_connections")
            _INHERITED.append([getattr(p, name, None) for name in held])
        p.reset()
