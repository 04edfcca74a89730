"""Adapters that plug fleetcache into LLM frameworks (each needs its framework installed).

- ``fleetcache.integrations.langchain``: ``FleetLangChainCache``, a ``langchain_core``
  ``BaseCache`` (extra ``langchain``).
- ``fleetcache.integrations.http``: ``transport(cache, inner)``, a caching transport for any
  ``httpx2``/``httpx`` client, keyed on what is sent and to whom.
- ``fleetcache.integrations.openai`` / ``.anthropic``: ``cached(client, cache)``, the SDK's
  own client class on that transport (extras ``openai``, ``anthropic``).
- ``fleetcache.integrations.google``: ``cached(genai.Client(...), cache, async_cache=...)``
  (extra ``google``).
- ractogateway needs no adapter: pass a ``RedisExactCache`` as ``exact_cache=`` to a
  developer kit (extra ``ractogateway`` pins the tested version).
"""
