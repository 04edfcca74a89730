"""Adapters that plug fleetcache into LLM frameworks (each needs its framework installed).

- ``fleetcache.integrations.langchain``: ``FleetLangChainCache``, a ``langchain_core``
  ``BaseCache`` (extra ``langchain``).
- ractogateway needs no adapter: pass a ``RedisExactCache`` as ``exact_cache=`` to a
  developer kit (extra ``ractogateway`` pins the tested version).
"""
