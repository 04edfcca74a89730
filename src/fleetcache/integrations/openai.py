"""The OpenAI SDK on a fleetcache namespace: ``client = cached(OpenAI(), cache)``.

``client.chat.completions.create(**kwargs)`` is answered from the cache when the same
request (every keyword that changes the answer, see the README's key rules) was answered
before by any process of the fleet, and returns the SDK's own ``ChatCompletion``;
``fleetcache.cache_info(response)`` tells a hit from a miss, the entry's age and the digest.
Every other attribute is the real client's. Needs the ``openai`` package (extra ``openai``).

- Non-streamed misses go through ``get_or_compute_request``: while one process asks the
  upstream, the others with the same request wait for its answer (single-flight).
- ``stream=True``: a hit is replayed as the SDK's own ``ChatCompletionChunk`` stream (a
  final usage chunk when ``stream_options={"include_usage": True}`` and a usage was
  stored); a miss streams the upstream's chunks as they arrive and stores the assembled
  ``ChatCompletion`` only when the stream ended normally. A streamed and a non-streamed
  request share one entry (``stream`` and ``stream_options`` are not part of the key).
- Per call, ``fleetcache={"control": "no-cache", "ttl": 60}`` (control: ``default``,
  ``no-cache``, ``no-store``, ``bypass``; ttl in seconds) is removed before the upstream call.
- ``OpenAI`` takes a ``RedisExactCache``, ``AsyncOpenAI`` an ``AsyncRedisExactCache``; a
  mismatch is a ``TypeError``. Redis down: the cache's error policy (default: a miss, the
  upstream is called, nothing is raised).

Not cached (passed through): ``with_raw_response`` / ``with_streaming_response``,
``chat.completions.parse`` / ``stream`` helpers, and every other endpoint.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, overload

import openai
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from ..aio import AsyncRedisExactCache
from ..cache import RedisExactCache
from ._aendpoint import AsyncCachedCreate
from ._endpoint import CachedCreate
from ._openai_stream import ChatCompletionAssembler, replay_chunks
from ._wrap import Codec, Proxy, WrapOptions, cache_flavour

__all__ = ["CODEC", "CachedAsyncOpenAI", "CachedOpenAI", "cached"]


def _completion(data: Mapping[str, Any]) -> ChatCompletion:
    return ChatCompletion.construct(**dict(data))


def _replay(stored: Mapping[str, Any], kwargs: Mapping[str, Any], chars: int | None) -> list[Any]:
    options = kwargs.get("stream_options")
    usage = isinstance(options, Mapping) and bool(options.get("include_usage"))
    dicts = replay_chunks(stored, include_usage=usage, chunk_chars=chars)
    return [ChatCompletionChunk.construct(**d) for d in dicts]


#: How ``chat.completions`` objects are keyed, stored and replayed.
CODEC = Codec(
    endpoint="openai.chat.completions",
    sentinels=(openai.NotGiven, openai.Omit),
    response=_completion,
    replay=_replay,
    assembler=ChatCompletionAssembler,
)


class _Completions(Proxy):
    def __init__(self, inner: Any, cache: Any, options: WrapOptions, is_async: bool) -> None:
        super().__init__(inner)
        kind = AsyncCachedCreate if is_async else CachedCreate
        #: ``chat.completions.create(**kwargs)`` through the cache.
        self.create = kind(inner.create, cache, options, CODEC)


class _Chat(Proxy):
    def __init__(self, inner: Any, cache: Any, options: WrapOptions, is_async: bool) -> None:
        super().__init__(inner)
        self.completions = _Completions(inner.completions, cache, options, is_async)


class CachedOpenAI(Proxy):
    """An ``openai.OpenAI`` whose ``chat.completions.create`` goes through a cache.

    Every other attribute is the wrapped client's (``wrapped``); ``with_options(...)`` and
    ``copy(...)`` return a cached copy on the same cache.
    """

    _is_async = False

    def __init__(self, client: Any, cache: Any, options: WrapOptions) -> None:
        super().__init__(client)
        self._cache = cache
        self._options = options
        self.chat = _Chat(client.chat, cache, options, self._is_async)

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


class CachedAsyncOpenAI(CachedOpenAI):
    """An ``openai.AsyncOpenAI`` whose ``chat.completions.create`` goes through a cache."""

    _is_async = True

    async def __aenter__(self) -> Any:
        await self._inner.__aenter__()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self._inner.__aexit__(*exc)


@overload
def cached(
    client: openai.AsyncOpenAI,
    cache: AsyncRedisExactCache,
    *,
    ttl_seconds: float | None = ...,
    control: str = ...,
    lease_seconds: float = ...,
    should_store: Callable[[Mapping[str, Any]], bool] | None = ...,
    chunk_chars: int | None = ...,
) -> CachedAsyncOpenAI: ...


@overload
def cached(
    client: openai.OpenAI,
    cache: RedisExactCache,
    *,
    ttl_seconds: float | None = ...,
    control: str = ...,
    lease_seconds: float = ...,
    should_store: Callable[[Mapping[str, Any]], bool] | None = ...,
    chunk_chars: int | None = ...,
) -> CachedOpenAI: ...


@overload
def cached(
    client: Any,
    cache: Any,
    *,
    ttl_seconds: float | None = ...,
    control: str = ...,
    lease_seconds: float = ...,
    should_store: Callable[[Mapping[str, Any]], bool] | None = ...,
    chunk_chars: int | None = ...,
) -> Any: ...


def cached(
    client: Any,
    cache: Any,
    *,
    ttl_seconds: float | None = None,
    control: str = "default",
    lease_seconds: float = 30.0,
    should_store: Callable[[Mapping[str, Any]], bool] | None = None,
    chunk_chars: int | None = None,
) -> Any:
    """Wrap an ``OpenAI`` (with a ``RedisExactCache``) or ``AsyncOpenAI`` (with an
    ``AsyncRedisExactCache``) so that ``chat.completions.create`` goes through ``cache``.

    ``ttl_seconds``: entry TTL in seconds (default ``None``: the cache's own). ``control``:
    the default control for every call (``"default"``). ``lease_seconds``: single-flight
    lease of a non-streamed miss (30.0 s). ``should_store``: replaces the cache's rule of
    which answers are reusable. ``chunk_chars``: split replayed texts into deltas of at most
    this many characters (``None``: one delta per text). ``TypeError`` for a client that is
    not an OpenAI SDK client, or a sync/async mismatch between client and cache.
    """
    options = WrapOptions(
        ttl_seconds=ttl_seconds,
        control=control,
        lease_seconds=lease_seconds,
        should_store=should_store,
        chunk_chars=chunk_chars,
    )
    flavour = cache_flavour(cache)
    if isinstance(client, openai.AsyncOpenAI):
        if flavour != "async":
            raise TypeError("AsyncOpenAI needs an AsyncRedisExactCache, not a sync cache")
        return CachedAsyncOpenAI(client, cache, options)
    if isinstance(client, openai.OpenAI):
        if flavour != "sync":
            raise TypeError("OpenAI needs a RedisExactCache, not an AsyncRedisExactCache")
        return CachedOpenAI(client, cache, options)
    raise TypeError(f"client must be an openai.OpenAI or openai.AsyncOpenAI, not {type(client)}")
