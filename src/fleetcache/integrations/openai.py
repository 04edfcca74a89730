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

``OpenAI`` takes a ``RedisExactCache``, ``AsyncOpenAI`` an ``AsyncRedisExactCache`` (a
mismatch is a ``TypeError``). ``options`` go to the transport (``ttl_seconds``,
``cacheable``, ``ignore``, ``ignore_headers``, ``key_headers``, ``should_store``). Per call,
``extra_headers={"x-fleetcache-control": "no-cache", "x-fleetcache-ttl": "60"}`` (the
headers are stripped before the request leaves). Needs the ``openai`` package (extra
``openai``).
"""

from __future__ import annotations

from typing import Any, TypeVar

from ._sdk import caching_http_client

__all__ = ["cached"]

C = TypeVar("C")


def cached(client: C, cache: Any, **options: Any) -> C:
    """``client`` (an ``openai.OpenAI``/``AsyncOpenAI``/``AzureOpenAI``...) answering its
    cacheable calls from ``cache``: a copy of the same class (see the module docstring)."""
    http = getattr(client, "_client", None)
    if http is None or not hasattr(client, "with_options"):
        raise TypeError(f"expected an OpenAI SDK client, not {type(client).__name__}")
    out: C = client.with_options(http_client=caching_http_client(http, cache, **options))
    return out
