"""The OpenAI SDK on a fleetcache namespace: ``client = cached(OpenAI(), cache)``.

Returns the SDK's own client class (``isinstance(cached(OpenAI(), c), openai.OpenAI)``),
built with ``client.with_options(http_client=...)``: a client of the same httpx flavour
whose transport is the caching transport (:mod:`fleetcache.integrations.http`) around the
transport the client already had (a proxy or a mock transport keeps working). Every call
the SDK makes to a cacheable endpoint is cached: ``chat.completions.create`` (streamed
too), ``.parse``, ``.stream()``, ``responses.create``/``.stream``, ``embeddings.create``,
``completions.create``, ``with_raw_response`` (``x-fleetcache: hit|miss`` and ``age`` are
in its headers), on ``OpenAI``, ``AzureOpenAI`` and any OpenAI-compatible server. The key
is what is sent and to whom (URL, answer-changing headers, canonical body), so two
``base_url``s, two Azure deployments or two gateway routing headers never share an entry.
``with_options(...)``/``copy(...)`` of the result stay cached.

``fleetcache.cache_info(obj)`` says hit/miss, age and digest for every object the client
builds from a response (``ChatCompletion``, ``Stream``, a ``with_raw_response`` wrapper and
its ``parse()``...), per object (threads and tasks each see their own): the returned client
is the same object re-classed as a subclass of its own class (same name, no added state)
whose response processing attaches the info the transport put on the http response;
``isinstance`` holds and ``with_options``/``copy`` keep it.

``OpenAI`` takes a ``RedisExactCache``, ``AsyncOpenAI`` an ``AsyncRedisExactCache`` (a
mismatch is a ``TypeError``). ``options`` go to the transport (``ttl_seconds``,
``cacheable``, ``ignore``, ``ignore_headers``, ``key_headers``, ``should_store``).

Per call, the cache control and TTL are request headers, stripped before the request
leaves: ``extra_headers=control_headers(control="no-cache", ttl=60)``
(:func:`fleetcache.integrations.http.control_headers`; for a whole client
``with_options(default_headers=control_headers(...))``). This is the one way: the old
``fleetcache={"control", "ttl"}`` keyword is gone, because the SDK's resource methods
(``chat.completions.create``...) take a fixed set of keywords and accepting another one
would mean wrapping every resource method of every SDK version, the mechanism the
transport replaced. Needs the ``openai`` package (extra ``openai``).
"""

from __future__ import annotations

from typing import Any, TypeVar

from ._sdk import caching_http_client, info_class

__all__ = ["cached"]

C = TypeVar("C")


def cached(client: C, cache: Any, **options: Any) -> C:
    """``client`` (an ``openai.OpenAI``/``AsyncOpenAI``/``AzureOpenAI``...) answering its
    cacheable calls from ``cache``: a copy of the same class (see the module docstring)."""
    http = getattr(client, "_client", None)
    if http is None or not hasattr(client, "with_options"):
        raise TypeError(f"expected an OpenAI SDK client, not {type(client).__name__}")
    out: Any = client.with_options(http_client=caching_http_client(http, cache, **options))
    if hasattr(type(out), "_process_response_data") and hasattr(type(out), "_process_response"):
        # the same object as a subclass that only adds cache_info to what it builds
        out.__class__ = info_class(type(out))
    result: C = out
    return result
