"""Wrap an SDK's httpx/httpx2 client in the caching transport (shared by the SDK modules)."""

from __future__ import annotations

import inspect
import threading
from typing import Any

from ..aio import AsyncRedisExactCache
from ..core.info import CacheInfo, attach
from .http import INFO_EXTENSION, flavour_of, transport

_classes: dict[type, type] = {}
_classes_lock = threading.Lock()


def _with_info(obj: Any, response: Any) -> Any:
    """``obj`` carrying the ``CacheInfo`` the transport put in ``response.extensions``
    (when there is one and ``obj`` can carry it), for ``fleetcache.cache_info``."""
    ext = getattr(response, "extensions", None)
    info = ext.get(INFO_EXTENSION) if isinstance(ext, dict) else None
    if obj is None or not isinstance(info, CacheInfo):
        return obj
    try:
        return attach(obj, info)
    except TypeError:  # neither a dict nor weak-referenceable: no info, same object
        return obj


def info_class(cls: type) -> type:
    """A subclass of the Stainless SDK client class ``cls`` (OpenAI, Anthropic, sync or
    async) that attaches the transport's ``CacheInfo`` to every object it builds from a
    response: the parsed model (``ChatCompletion``, ``Message``...), a ``Stream``, a
    ``with_raw_response`` wrapper and what its ``parse()`` returns. It adds no state and
    keeps ``cls``'s name, so ``isinstance(client, cls)`` holds and the SDK's
    ``copy``/``with_options`` (which build ``self.__class__``) keep it. One class per
    ``cls``, made once."""
    if getattr(cls, "_fleetcache_info_class", False):
        return cls
    with _classes_lock:
        made = _classes.get(cls)
        if made is not None:
            return made
        base: Any = cls

        def _process_response_data(self: Any, *args: Any, **kwargs: Any) -> Any:
            out = base._process_response_data(self, *args, **kwargs)
            return _with_info(out, kwargs.get("response"))

        ns: dict[str, Any] = {
            "_fleetcache_info_class": True,
            "__module__": cls.__module__,
            "__qualname__": cls.__qualname__,
            "__doc__": cls.__doc__,
            "_process_response_data": _process_response_data,
        }
        if inspect.iscoroutinefunction(getattr(cls, "_process_response", None)):

            async def _aprocess_response(self: Any, *args: Any, **kwargs: Any) -> Any:
                out = await base._process_response(self, *args, **kwargs)
                return _with_info(out, kwargs.get("response"))

            ns["_process_response"] = _aprocess_response
        else:

            def _process_response(self: Any, *args: Any, **kwargs: Any) -> Any:
                out = base._process_response(self, *args, **kwargs)
                return _with_info(out, kwargs.get("response"))

            ns["_process_response"] = _process_response
        made = type(cls.__name__, (cls,), ns)
        _classes[cls] = made
        return made


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
