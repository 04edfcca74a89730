"""The caches a team would pick instead of fleetcache, driven through their own public APIs
on the bench's server with the same realistic responses (``bench.payloads``):

- LiteLLM: ``litellm.caching.redis_cache.RedisCache`` (``get_cache``/``set_cache`` with the
  value LiteLLM's ``Cache`` writes), and the whole path, ``litellm.completion(...,
  caching=True, mock_response=...)`` with ``litellm.cache = Cache(type="redis", ...)``.
- LangChain: ``langchain_community.cache.RedisCache`` through ``lookup``/``update`` with a
  ``ChatGeneration`` (content, tool call, usage). ``langchain-redis``'s ``RedisCache`` stores
  entries with ``JSON.SET`` and so needs the RedisJSON module (Redis Stack, Redis >= 8): it
  cannot run on the plain Redis 7 / Valkey 9 servers this bench (and most fleets) use.
- fleetcache's own LangChain adapter (``FleetLangChainCache``) on the same generations.

Each ``Peer`` gives a get-hit callable, a put callable, a way to write entry ``i`` and name
its Redis key (for ``MEMORY USAGE``), and what it can say about the fleet.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bench.payloads import REQUEST, completion_json, request, response_fields

# LiteLLM must not fetch its model-cost map over the network at import time.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


@dataclass
class Peer:
    """One contestant: ``get`` serves a stored hit, ``put`` writes one entry."""

    name: str
    get: Callable[[], Any]
    put: Callable[[], Any]
    write: Callable[[int], Any]  # store entry number i
    key_of: Callable[[int], str]  # its Redis key
    counts: str  # what it counts fleet-wide (in Redis)
    how_many: str  # its nearest way to ask "how many entries"
    shared_keys: Callable[[], list[str]] = field(default=list)  # index/counters
    # keys of every 10th of n entries written, where key_of cannot name them (optional)
    sample_keys: Callable[[int], list[str]] | None = None


# -- LiteLLM --------------------------------------------------------------------------------


def _litellm_messages(i: int | None) -> list[dict[str, str]]:
    um, sp, _, _, _ = request(i)
    return [{"role": "system", "content": sp}, {"role": "user", "content": um}]


def _litellm_response(size: int) -> Any:
    from litellm import ModelResponse

    body = completion_json(response_fields(size))
    return ModelResponse(model=REQUEST[2], choices=body["choices"], usage=body["usage"])


def litellm_peers(
    port: int, client: Any, size: int, db: int = 0, url: str | None = None, prefix: str = "b"
) -> list[Peer]:
    """LiteLLM's RedisCache alone, and the whole ``completion(caching=True)`` path; with
    ``url``, also fleetcache's LiteLLM backend (``fleetcache.integrations.litellm``) on the
    same two levels, under the same LiteLLM keys and values."""
    import litellm
    from litellm.caching.caching import Cache
    from litellm.types.caching import LiteLLMCacheType

    _, _, model, temperature, max_tokens = REQUEST
    cache = Cache(type=LiteLLMCacheType.REDIS, host="127.0.0.1", port=str(port), db=db)
    litellm.cache = cache
    mock = _litellm_response(size)

    def kwargs(i: int | None) -> dict[str, Any]:
        return {
            "model": model,
            "messages": _litellm_messages(i),
            "temperature": temperature,
            "max_tokens": max_tokens,
        }

    def complete(i: int | None) -> Any:
        litellm.cache = cache  # the fleetcache-backed rows below swap in their own
        return litellm.completion(**kwargs(i), caching=True, mock_response=mock)

    complete(None)  # a miss: the mocked model answers and the Cache writes the entry
    hit = complete(None)
    assert hit._hidden_params.get("cache_hit") is True, "LiteLLM did not serve a cache hit"
    key = cache.get_cache_key(**kwargs(None))
    rc: Any = cache.cache  # litellm.caching.redis_cache.RedisCache (untyped methods)
    value = rc.get_cache(key)  # what LiteLLM's Cache stores: {"timestamp", "response"}
    assert isinstance(value, dict) and "response" in value
    fresh = iter(range(10**7, 2 * 10**7))
    counts = "nothing (per-process callbacks and hidden params only)"
    how_many = "cannot (no index; only SCAN of the whole keyspace)"
    out = [
        Peer(
            name="litellm RedisCache",
            get=lambda: rc.get_cache(key),
            put=lambda: rc.set_cache(key, value),
            write=lambda i: rc.set_cache(cache.get_cache_key(**kwargs(i)), value),
            key_of=lambda i: str(cache.get_cache_key(**kwargs(i))),
            counts=counts,
            how_many=how_many,
        ),
        Peer(
            name="litellm completion(caching=True)",
            get=lambda: complete(None),
            put=lambda: complete(next(fresh)),  # a miss: mocked answer, then the write
            write=lambda i: complete(i),
            key_of=lambda i: str(cache.get_cache_key(**kwargs(i))),
            counts=counts,
            how_many=how_many,
        ),
    ]
    if url is not None:
        out += _fleet_litellm_peers(url, prefix, kwargs, mock, value)
    return out


def _fleet_litellm_peers(
    url: str, prefix: str, kwargs: Callable[[int | None], dict[str, Any]], mock: Any, value: Any
) -> list[Peer]:
    """fleetcache as LiteLLM's cache: its backend alone, and ``completion(caching=True)``
    with ``litellm.cache = fleetcache_litellm_cache(...)``."""
    import litellm

    from fleetcache.integrations.litellm import fleetcache_litellm_cache

    fl = fleetcache_litellm_cache(url=url, key_prefix=f"{prefix}:litellm-fc", install=False)
    backend: Any = fl.cache
    model = kwargs(None)["model"]

    def complete(i: int | None) -> Any:
        litellm.cache = fl
        return litellm.completion(**kwargs(i), caching=True, mock_response=mock)

    complete(None)
    assert complete(None)._hidden_params.get("cache_hit") is True, "no fleetcache hit"
    key = fl.get_cache_key(**kwargs(None))
    assert backend.get_cache(key, model=model) is not None
    keys = backend.sync_cache._core.keys

    def sample(n: int) -> list[str]:
        members = backend.sync_cache.client.zrange(keys.index(0), 0, -1)
        return [str(keys.entry(0, m.decode())) for m in members[::10]]

    fresh = iter(range(2 * 10**7, 3 * 10**7))
    counts = "hits, misses, per model, tokens saved, not stored (the same counters)"
    return [
        Peer(
            name="fleetcache FleetLiteLLMBackend",
            get=lambda: backend.get_cache(key, model=model),
            put=lambda: backend.set_cache(key, value, model=model),
            write=lambda i: backend.set_cache(fl.get_cache_key(**kwargs(i)), value, model=model),
            key_of=lambda i: "",
            counts=counts,
            how_many="len(): one ZCOUNT",
            shared_keys=lambda: [str(keys.index(0)), str(keys.stats(0))],
            sample_keys=sample,
        ),
        Peer(
            name="fleetcache as litellm.cache: completion(caching=True)",
            get=lambda: complete(None),
            put=lambda: complete(next(fresh)),
            write=lambda i: complete(i),
            key_of=lambda i: "",
            counts=counts,
            how_many="len(): one ZCOUNT",
        ),
    ]


def litellm_off() -> None:
    """Detach LiteLLM's global cache (so later contestants do not pay for it)."""
    import litellm

    litellm.cache = None


# -- LangChain ------------------------------------------------------------------------------


def langchain_generation(size: int) -> Any:
    """A ``ChatGeneration`` carrying the bench response: content, one tool call, usage."""
    from langchain_core.messages import AIMessage
    from langchain_core.outputs import ChatGeneration

    f = response_fields(size)
    tc = f["tool_calls"][0]
    u = f["usage"]
    msg = AIMessage(
        content=f["content"],
        tool_calls=[{"id": tc["id"], "name": tc["name"], "args": tc["arguments"]}],
        usage_metadata={
            "input_tokens": u["prompt_tokens"],
            "output_tokens": u["completion_tokens"],
            "total_tokens": u["total_tokens"],
        },
        response_metadata={"finish_reason": "tool_calls", "model_name": REQUEST[2]},
    )
    return ChatGeneration(message=msg)


def _lc_prompt(i: int | None) -> str:
    from langchain_core.load import dumps
    from langchain_core.messages import HumanMessage, SystemMessage

    um, sp, _, _, _ = request(i)
    return dumps([SystemMessage(content=sp), HumanMessage(content=um)])


LLM_STRING = (
    '{"lc": 1, "type": "constructor", "id": ["langchain", "chat_models", "openai", '
    '"ChatOpenAI"], "kwargs": {"model_name": "gpt-4o-mini", "temperature": 0.0, '
    "\"max_tokens\": 512}}---[('stop', None)]"
)


def langchain_peers(client: Any, url: str, size: int, prefix: str) -> list[Peer]:
    """langchain-community's RedisCache, and fleetcache's LangChain adapter beside it."""
    from langchain_community.cache import RedisCache as LCRedisCache

    from fleetcache import RedisExactCache
    from fleetcache.integrations.langchain import FleetLangChainCache, LangChainGenerations

    gen = [langchain_generation(size)]
    prompt = _lc_prompt(None)
    lc = LCRedisCache(redis_=client)
    lc.update(prompt, LLM_STRING, gen)
    assert lc.lookup(prompt, LLM_STRING) is not None
    fcache = RedisExactCache(
        url=url, key_prefix=f"{prefix}:lcfc", response_model=LangChainGenerations
    )
    flc = FleetLangChainCache(fcache)
    flc.update(prompt, LLM_STRING, gen)
    assert flc.lookup(prompt, LLM_STRING) is not None
    keys = fcache._core.keys

    def fc_key(i: int) -> str:
        _, d, s = fcache._core.request(FleetLangChainCache._fields(_lc_prompt(i), LLM_STRING))
        return str(keys.entry(s, d))

    return [
        Peer(
            name="langchain-community RedisCache",
            get=lambda: lc.lookup(prompt, LLM_STRING),
            put=lambda: lc.update(prompt, LLM_STRING, gen),
            write=lambda i: lc.update(_lc_prompt(i), LLM_STRING, gen),
            key_of=lambda i: str(LCRedisCache._key(_lc_prompt(i), LLM_STRING)),
            counts="nothing",
            how_many="cannot (keys carry no prefix: DBSIZE of a database of its own)",
        ),
        Peer(
            name="fleetcache FleetLangChainCache",
            get=lambda: flc.lookup(prompt, LLM_STRING),
            put=lambda: flc.update(prompt, LLM_STRING, gen),
            write=lambda i: flc.update(_lc_prompt(i), LLM_STRING, gen),
            key_of=fc_key,
            counts="hits, misses, puts, tokens saved, per model (the same counters)",
            how_many="len(): one ZCOUNT",
            shared_keys=lambda: [str(keys.index(0)), str(keys.stats(0))],
        ),
    ]
