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

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, overload

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
from ._anthropic_stream import MessageAssembler, replay_events
from ._client import AsyncContext, CachedClient, CachedEndpoint, WrapKeywords, wrap_client
from ._wrap import Codec, WrapOptions

if TYPE_CHECKING:
    from typing_extensions import Unpack

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


class CachedAnthropic(CachedClient):
    """An ``anthropic.Anthropic`` whose ``messages.create`` goes through a cache.

    Every other attribute is the wrapped client's (``wrapped``); ``with_options(...)`` and
    ``copy(...)`` return a cached copy on the same cache.
    """

    def __init__(self, client: Any, cache: Any, options: WrapOptions) -> None:
        super().__init__(client, cache, options)
        self.messages = CachedEndpoint(client.messages, cache, options, self._is_async, CODEC)


class CachedAsyncAnthropic(AsyncContext, CachedAnthropic):
    """An ``anthropic.AsyncAnthropic`` whose ``messages.create`` goes through a cache."""


def _flavour(client: Any) -> str | None:
    if getattr(client, "messages", None) is None:
        return None
    if isinstance(client, AsyncAPIClient):
        return "async"
    return "sync" if isinstance(client, SyncAPIClient) else None


@overload
def cached(
    client: anthropic.AsyncAnthropic,
    cache: AsyncRedisExactCache,
    **keywords: Unpack[WrapKeywords],
) -> CachedAsyncAnthropic: ...
@overload
def cached(
    client: anthropic.Anthropic, cache: RedisExactCache, **keywords: Unpack[WrapKeywords]
) -> CachedAnthropic: ...
@overload
def cached(client: Any, cache: Any, **keywords: Unpack[WrapKeywords]) -> Any: ...


def cached(client: Any, cache: Any, **keywords: Unpack[WrapKeywords]) -> Any:
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
    wrappers = (CachedAnthropic, CachedAsyncAnthropic)
    names = ("anthropic", "Anthropic")
    return wrap_client(client, cache, keywords, flavour_of=_flavour, wrappers=wrappers, names=names)
