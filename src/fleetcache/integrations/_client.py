"""The client side the SDK wrappers share: a proxied client, its cached endpoints, ``cached()``.

Each SDK module (``openai``, ``anthropic``) supplies only what differs: its :class:`Codec`,
where its endpoint sits on the client (``chat.completions``, ``messages``) and how a sync
client is told from an async one; everything else (option checks, the sync/async match
between client and cache, ``with_options``, context managers) is written here once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypedDict

from ._aendpoint import AsyncCachedCreate
from ._endpoint import CachedCreate
from ._wrap import Codec, Proxy, WrapOptions, cache_flavour

if TYPE_CHECKING:
    pass

__all__ = ["AsyncContext", "CachedClient", "CachedEndpoint", "WrapKeywords", "wrap_client"]


class WrapKeywords(TypedDict, total=False):
    """The keywords of every ``cached(client, cache, **keywords)`` (see :class:`WrapOptions`).

    ``ttl_seconds``: entry TTL in seconds (default ``None``: the cache's own). ``control``:
    the default control for every call (``"default"``). ``lease_seconds``: single-flight
    lease of a non-streamed miss (30.0 s). ``should_store``: replaces the cache's rule of
    which answers are reusable. ``chunk_chars``: split replayed texts into deltas of at most
    this many characters (``None``: one delta per text).
    """

    ttl_seconds: float | None
    control: str
    lease_seconds: float
    should_store: Callable[[Mapping[str, Any]], bool] | None
    chunk_chars: int | None


class CachedEndpoint(Proxy):
    """An SDK resource (``chat.completions``, ``messages``) whose ``create`` goes through
    the cache; every other attribute is the SDK's."""

    def __init__(
        self, inner: Any, cache: Any, options: WrapOptions, is_async: bool, codec: Codec
    ) -> None:
        super().__init__(inner)
        kind = AsyncCachedCreate if is_async else CachedCreate
        #: ``create(**kwargs)`` through the cache.
        self.create = kind(inner.create, cache, options, codec)


class CachedClient(Proxy):
    """An SDK client whose cached endpoints a subclass mounts in ``__init__``.

    Every other attribute is the wrapped client's (``wrapped``); ``with_options(...)`` and
    ``copy(...)`` return a cached copy on the same cache.
    """

    _is_async = False

    def __init__(self, client: Any, cache: Any, options: WrapOptions) -> None:
        super().__init__(client)
        self._cache = cache
        self._options = options

    @property
    def wrapped(self) -> Any:
        """The real SDK client."""
        return self._inner

    def with_options(self, **kwargs: Any) -> Any:
        """The SDK's ``with_options`` (a new client), still going through this cache."""
        return type(self)(self._inner.with_options(**kwargs), self._cache, self._options)

    copy = with_options

    def __enter__(self) -> Any:
        self._inner.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._inner.__exit__(*exc)


class AsyncContext:
    """Mixed in before a :class:`CachedClient` for the SDK's async client: ``async with``."""

    _is_async = True
    _inner: Any

    async def __aenter__(self) -> Any:
        await self._inner.__aenter__()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self._inner.__aexit__(*exc)


def wrap_client(
    client: Any,
    cache: Any,
    keywords: WrapKeywords,
    *,
    flavour_of: Callable[[Any], str | None],
    wrappers: tuple[type[CachedClient], type[CachedClient]],
    names: tuple[str, str],
) -> Any:
    """``client`` wrapped for ``cache`` by ``wrappers`` (sync class, async class).

    ``flavour_of(client)``: ``"sync"``, ``"async"`` or ``None`` (not this SDK's client).
    ``names``: the SDK's module and sync client class (``("openai", "OpenAI")``), for the
    messages. ``TypeError`` for another client or a sync/async mismatch with the cache;
    ``TypeError``/``ValueError`` for a bad keyword (:class:`WrapOptions`).
    """
    options = WrapOptions(**keywords)
    flavour = cache_flavour(cache)
    module, name = names
    kind = flavour_of(client)
    if kind == "async":
        if flavour != "async":
            raise TypeError(f"Async{name} needs an AsyncRedisExactCache, not a sync cache")
        return wrappers[1](client, cache, options)
    if kind == "sync":
        if flavour != "sync":
            raise TypeError(f"{name} needs a RedisExactCache, not an AsyncRedisExactCache")
        return wrappers[0](client, cache, options)
    raise TypeError(
        f"client must be an {module}.{name} or {module}.Async{name}, not {type(client)}"
    )
