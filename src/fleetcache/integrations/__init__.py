"""Adapters that plug fleetcache into LLM frameworks (each needs its framework installed).

- ``fleetcache.integrations.langchain``: ``FleetLangChainCache``, a ``langchain_core``
  ``BaseCache`` (extra ``langchain``).
- ``fleetcache.integrations.openai``: ``cached(OpenAI() | AsyncOpenAI(), cache)``, whose
  ``chat.completions.create`` (streamed too) is answered from the cache (extra ``openai``).
- ``fleetcache.integrations.anthropic``: ``cached(Anthropic() | AsyncAnthropic(), cache)``,
  the same for ``messages.create`` (extra ``anthropic``).
- ractogateway needs no adapter: pass a ``RedisExactCache`` as ``exact_cache=`` to a
  developer kit (extra ``ractogateway`` pins the tested version).
"""
