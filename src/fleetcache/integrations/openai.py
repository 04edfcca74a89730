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

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, overload

import openai
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from ..aio import AsyncRedisExactCache
from ..cache import RedisExactCache
from ._client import AsyncContext, CachedClient, CachedEndpoint, WrapKeywords, wrap_client
from ._openai_stream import ChatCompletionAssembler, replay_chunks
from ._wrap import Codec, Proxy, WrapOptions

if TYPE_CHECKING:
    from typing_extensions import Unpack

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


class _Chat(Proxy):
    def __init__(self, inner: Any, cache: Any, options: WrapOptions, is_async: bool) -> None:
        super().__init__(inner)
        self.completions = CachedEndpoint(inner.completions, cache, options, is_async, CODEC)


class CachedOpenAI(CachedClient):
    """An ``openai.OpenAI`` whose ``chat.completions.create`` goes through a cache.

    Every other attribute is the wrapped client's (``wrapped``); ``with_options(...)`` and
    ``copy(...)`` return a cached copy on the same cache.
    """

    def __init__(self, client: Any, cache: Any, options: WrapOptions) -> None:
        super().__init__(client, cache, options)
        self.chat = _Chat(client.chat, cache, options, self._is_async)


class CachedAsyncOpenAI(AsyncContext, CachedOpenAI):
    """An ``openai.AsyncOpenAI`` whose ``chat.completions.create`` goes through a cache."""


def _flavour(client: Any) -> str | None:
    if isinstance(client, openai.AsyncOpenAI):
        return "async"
    return "sync" if isinstance(client, openai.OpenAI) else None


@overload
def cached(
    client: openai.AsyncOpenAI, cache: AsyncRedisExactCache, **keywords: Unpack[WrapKeywords]
) -> CachedAsyncOpenAI: ...
@overload
def cached(
    client: openai.OpenAI, cache: RedisExactCache, **keywords: Unpack[WrapKeywords]
) -> CachedOpenAI: ...
@overload
def cached(client: Any, cache: Any, **keywords: Unpack[WrapKeywords]) -> Any: ...


def cached(client: Any, cache: Any, **keywords: Unpack[WrapKeywords]) -> Any:
    """Wrap an ``OpenAI`` (with a ``RedisExactCache``) or ``AsyncOpenAI`` (with an
    ``AsyncRedisExactCache``) so that ``chat.completions.create`` goes through ``cache``.

    ``ttl_seconds``: entry TTL in seconds (default ``None``: the cache's own). ``control``:
    the default control for every call (``"default"``). ``lease_seconds``: single-flight
    lease of a non-streamed miss (30.0 s). ``should_store``: replaces the cache's rule of
    which answers are reusable. ``chunk_chars``: split replayed texts into deltas of at most
    this many characters (``None``: one delta per text). ``TypeError`` for a client that is
    not an OpenAI SDK client, or a sync/async mismatch between client and cache.
    """
    wrappers = (CachedOpenAI, CachedAsyncOpenAI)
    names = ("openai", "OpenAI")
    return wrap_client(client, cache, keywords, flavour_of=_flavour, wrappers=wrappers, names=names)
