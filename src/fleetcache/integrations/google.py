"""Google's ``google-genai`` SDK on a fleetcache namespace: ``cached(genai.Client(...), cache)``.

``client.models`` (sync: ``generate_content``, ``generate_content_stream``,
``embed_content``) is cached by a :class:`~fleetcache.RedisExactCache` passed as ``cache``
and ``client.aio.models`` by an :class:`~fleetcache.AsyncRedisExactCache` passed as
``async_cache`` (give both, on the same ``key_prefix``, to cache both surfaces; a surface
without its cache is not cached). The SDK's own http clients (``httpx2`` by default, plain
``httpx`` when you handed it one) get the caching transport around their transport.

The client is changed **in place** and returned (google-genai builds its surfaces around
one API client object, which has no ``with_options``); the API key travels in a header or
a ``key=`` query parameter and is never part of the key. Needs ``google-genai`` (extra
``google``).
"""

from __future__ import annotations

from typing import Any, TypeVar

from ..aio import AsyncRedisExactCache
from ..cache import RedisExactCache
from ._sdk import caching_http_client

__all__ = ["cached"]

C = TypeVar("C")


def cached(client: C, cache: Any = None, *, async_cache: Any = None, **options: Any) -> C:
    """``client`` with its sync surface cached by ``cache`` (a ``RedisExactCache``) and its
    async surface (``client.aio``) by ``async_cache`` (an ``AsyncRedisExactCache``);
    ``options`` go to the transport. ``TypeError`` for a wrong cache kind or no cache."""
    api = getattr(client, "_api_client", None)
    if api is None:
        raise TypeError(f"expected a google.genai.Client, not {type(client).__name__}")
    if cache is not None and not isinstance(cache, RedisExactCache):
        raise TypeError("cache must be a RedisExactCache (async_cache= takes the async one)")
    if async_cache is not None and not isinstance(async_cache, AsyncRedisExactCache):
        raise TypeError("async_cache must be an AsyncRedisExactCache")
    if cache is None and async_cache is None:
        raise TypeError("pass cache= (sync surface) and/or async_cache= (client.aio)")
    if cache is not None and getattr(api, "_httpx_client", None) is not None:
        api._httpx_client = caching_http_client(api._httpx_client, cache, **options)
        api._http_options.httpx_client = api._httpx_client
    if async_cache is not None and getattr(api, "_async_httpx_client", None) is not None:
        api._async_httpx_client = caching_http_client(
            api._async_httpx_client, async_cache, **options
        )
        api._http_options.httpx_async_client = api._async_httpx_client  # not aiohttp
    return client
