"""Wrap an SDK's httpx/httpx2 client in the caching transport (shared by the SDK modules)."""

from __future__ import annotations

from typing import Any

from ..aio import AsyncRedisExactCache
from .http import flavour_of, transport


def caching_http_client(http: Any, cache: Any, **options: Any) -> Any:
    """A new client of ``http``'s flavour and kind (sync/async) whose transport is the
    caching transport around ``http``'s own (and whose mounts, e.g. proxies, are wrapped
    the same way), with the same timeout, redirect rule and default headers. ``TypeError``
    when the cache's kind does not match the client's (sync cache for a sync client)."""
    inner = http._transport
    mod = flavour_of(inner)
    is_async = isinstance(http, mod.AsyncClient)
    if is_async != isinstance(cache, AsyncRedisExactCache):
        want = "an AsyncRedisExactCache" if is_async else "a RedisExactCache"
        raise TypeError(f"a{'n async' if is_async else ' sync'} SDK client needs {want}")
    wrapped = transport(cache, inner, **options)
    mounts = {
        pattern.pattern: (transport(cache, t, **options) if t is not None else None)
        for pattern, t in getattr(http, "_mounts", {}).items()
    }
    cls = mod.AsyncClient if is_async else mod.Client
    return cls(
        transport=wrapped,
        mounts=mounts or None,
        timeout=http.timeout,
        follow_redirects=http.follow_redirects,
        headers=http.headers,
        event_hooks=http.event_hooks,
    )
