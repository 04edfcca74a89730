"""The Anthropic SDK on a fleetcache namespace: ``client = cached(Anthropic(), cache)``.

``client.messages.create(**kwargs)`` is answered from the cache when the same request was
answered before by any process of the fleet, and returns the SDK's own ``Message``;
``fleetcache.cache_info(message)`` tells a hit from a miss, the entry's age and the digest.
Every other attribute is the real client's. Needs the ``anthropic`` package (extra
``anthropic``).

- Non-streamed misses go through ``get_or_compute_request`` (fleet single-flight).
- ``stream=True``: a hit is replayed as the SDK's own event stream (``message_start``,
  ``content_block_start`` / ``_delta`` / ``_stop`` for text, thinking and ``tool_use`` with
  ``input_json_delta``, ``message_delta``, ``message_stop``); a miss streams the upstream's
  events as they arrive and stores the assembled ``Message`` only when the stream ended
  normally (``message_stop`` seen). Streamed and non-streamed requests share one entry.
- Per call, ``fleetcache={"control": "no-cache", "ttl": 60}`` is removed before the
  upstream call. ``Anthropic`` takes a ``RedisExactCache``, ``AsyncAnthropic`` an
  ``AsyncRedisExactCache``; a mismatch is a ``TypeError``. Redis down: the cache's error
  policy (default: a miss, the upstream is called, nothing is raised).

Not cached (passed through): ``messages.stream(...)`` (the helper stream manager),
``messages.count_tokens``, ``beta``, ``with_raw_response`` and every other endpoint.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, overload

import anthropic
from anthropic._base_client import AsyncAPIClient, SyncAPIClient
from anthropic.types import (
    Message,
    RawContentBlockDeltaEvent,
    RawContentBlockStartEvent,
    RawContentBlockStopEvent,
    RawMessageDeltaEvent,
    RawMessageStartEvent,
    RawMessageStopEvent,
)

from ..aio import AsyncRedisExactCache
from ..cache import RedisExactCache
from ._aendpoint import AsyncCachedCreate
from ._anthropic_stream import MessageAssembler, replay_events
from ._endpoint import CachedCreate
from ._wrap import Codec, Proxy, WrapOptions, cache_flavour

__all__ = ["CODEC", "CachedAnthropic", "CachedAsyncAnthropic", "cached"]

_EVENTS: dict[str, Any] = {
    "message_start": RawMessageStartEvent,
    "message_delta": RawMessageDeltaEvent,
    "message_stop": RawMessageStopEvent,
    "content_block_start": RawContentBlockStartEvent,
    "content_block_delta": RawContentBlockDeltaEvent,
    "content_block_stop": RawContentBlockStopEvent,
}


def _message(data: Mapping[str, Any]) -> Message:
    return Message.construct(**dict(data))


def _replay(stored: Mapping[str, Any], kwargs: Mapping[str, Any], chars: int | None) -> list[Any]:
    return [_EVENTS[e["type"]].construct(**e) for e in replay_events(stored, chunk_chars=chars)]


#: How ``messages`` objects are keyed, stored and replayed.
CODEC = Codec(
    endpoint="anthropic.messages",
    sentinels=(anthropic.NotGiven, anthropic.Omit),
    response=_message,
    replay=_replay,
    assembler=MessageAssembler,
)


class _Messages(Proxy):
    def __init__(self, inner: Any, cache: Any, options: WrapOptions, is_async: bool) -> None:
        super().__init__(inner)
        kind = AsyncCachedCreate if is_async else CachedCreate
        #: ``messages.create(**kwargs)`` through the cache.
        self.create = kind(inner.create, cache, options, CODEC)


class CachedAnthropic(Proxy):
    """An ``anthropic.Anthropic`` whose ``messages.create`` goes through a cache.

    Every other attribute is the wrapped client's (``wrapped``); ``with_options(...)`` and
    ``copy(...)`` return a cached copy on the same cache.
    """

    _is_async = False

    def __init__(self, client: Any, cache: Any, options: WrapOptions) -> None:
        super().__init__(client)
        self._cache = cache
        self._options = options
        self.messages = _Messages(client.messages, cache, options, self._is_async)

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


class CachedAsyncAnthropic(CachedAnthropic):
    """An ``anthropic.AsyncAnthropic`` whose ``messages.create`` goes through a cache."""

    _is_async = True

    async def __aenter__(self) -> Any:
        await self._inner.__aenter__()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self._inner.__aexit__(*exc)


@overload
def cached(
    client: anthropic.AsyncAnthropic,
    cache: AsyncRedisExactCache,
    *,
    ttl_seconds: float | None = ...,
    control: str = ...,
    lease_seconds: float = ...,
    should_store: Callable[[Mapping[str, Any]], bool] | None = ...,
    chunk_chars: int | None = ...,
) -> CachedAsyncAnthropic: ...


@overload
def cached(
    client: anthropic.Anthropic,
    cache: RedisExactCache,
    *,
    ttl_seconds: float | None = ...,
    control: str = ...,
    lease_seconds: float = ...,
    should_store: Callable[[Mapping[str, Any]], bool] | None = ...,
    chunk_chars: int | None = ...,
) -> CachedAnthropic: ...


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
    """Wrap an ``Anthropic`` (with a ``RedisExactCache``) or ``AsyncAnthropic`` (with an
    ``AsyncRedisExactCache``) so that ``messages.create`` goes through ``cache``.

    The keywords are those of ``fleetcache.integrations.openai.cached``: ``ttl_seconds``
    (entry TTL in seconds; ``None``: the cache's own), ``control`` (default per-call
    control, ``"default"``), ``lease_seconds`` (single-flight lease, 30.0 s),
    ``should_store`` (replaces the reusability rule), ``chunk_chars`` (split replayed texts;
    ``None``: one delta per text). The SDK's Bedrock and Vertex clients are accepted
    (same base classes; not tested here).
    ``TypeError`` for another client or a sync/async mismatch between client and cache.
    """
    options = WrapOptions(
        ttl_seconds=ttl_seconds,
        control=control,
        lease_seconds=lease_seconds,
        should_store=should_store,
        chunk_chars=chunk_chars,
    )
    flavour = cache_flavour(cache)
    messages = getattr(client, "messages", None)
    if isinstance(client, AsyncAPIClient) and messages is not None:
        if flavour != "async":
            raise TypeError("AsyncAnthropic needs an AsyncRedisExactCache, not a sync cache")
        return CachedAsyncAnthropic(client, cache, options)
    if isinstance(client, SyncAPIClient) and messages is not None:
        if flavour != "sync":
            raise TypeError("Anthropic needs a RedisExactCache, not an AsyncRedisExactCache")
        return CachedAnthropic(client, cache, options)
    raise TypeError(
        f"client must be an anthropic.Anthropic or anthropic.AsyncAnthropic, not {type(client)}"
    )
