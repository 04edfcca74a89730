"""fleetcache as LiteLLM's cache, against the real ``litellm`` (offline:
``mock_response=`` and the local model cost map): the second identical call is a hit by
LiteLLM's own flag and by fleetcache's fleet-wide counters, sync and async; two processes
share hits; LiteLLM's ``cache={...}`` controls map onto fleetcache's; should_store refusals;
Redis down: the (mock) upstream answers normally."""

from __future__ import annotations

import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # before litellm is imported

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest

litellm = pytest.importorskip("litellm")

from fleetcache import FleetStats, RedisExactCache  # noqa: E402
from fleetcache.integrations.litellm import (  # noqa: E402
    LITELLM_IGNORE,
    FleetLiteLLMBackend,
    FleetLiteLLMCache,
    fleetcache_litellm_cache,
    litellm_should_store,
)

from ..support.servers import free_port  # noqa: E402

pytestmark = pytest.mark.backends("redis")
ROOT = Path(__file__).resolve().parents[2]
MODEL = "gpt-4o-mini"


def msgs(text: str, turns: int = 1) -> list[dict[str, str]]:
    out = [{"role": "system", "content": "be brief"}]
    for i in range(turns - 1):
        out += [{"role": "user", "content": f"{text} {i}"}, {"role": "assistant", "content": "ok"}]
    return [*out, {"role": "user", "content": text}]


@pytest.fixture
def installed(backend: Any, prefix: str) -> Iterator[FleetLiteLLMCache]:
    """fleetcache installed as ``litellm.cache`` on the test's namespace; removed after."""
    cache = fleetcache_litellm_cache(backend.url, key_prefix=prefix)
    yield cache
    asyncio.run(cache.cache.disconnect())  # type: ignore[no-untyped-call]
    litellm.disable_cache()


def backend_of(c: FleetLiteLLMCache) -> FleetLiteLLMBackend:
    """The fleetcache storage under LiteLLM's ``Cache`` (typed as LiteLLM's base class)."""
    return cast(FleetLiteLLMBackend, c.cache)


def stats(c: FleetLiteLLMCache) -> FleetStats:
    return backend_of(c).sync_cache.fleet_stats()


def wait_puts(c: FleetLiteLLMCache, n: int, timeout: float = 10.0) -> FleetStats:
    """LiteLLM writes the cache after returning (a callback): wait for ``n`` puts."""
    deadline = time.monotonic() + timeout
    while True:
        fs = stats(c)
        if fs.puts + fs.not_stored >= n or time.monotonic() > deadline:
            return fs
        time.sleep(0.02)


async def await_puts(c: FleetLiteLLMCache, n: int, timeout: float = 10.0) -> FleetStats:
    deadline = time.monotonic() + timeout
    while True:
        fs = await asyncio.to_thread(stats, c)
        if fs.puts + fs.not_stored >= n or time.monotonic() > deadline:
            return fs
        await asyncio.sleep(0.02)


def hit_flag(response: Any) -> bool:
    return bool(getattr(response, "_hidden_params", {}).get("cache_hit"))


def test_second_call_is_a_hit_sync(installed: FleetLiteLLMCache) -> None:
    kw = {"model": MODEL, "messages": msgs("hello"), "mock_response": "hi there", "caching": True}
    first = litellm.completion(**kw)
    assert not hit_flag(first)
    assert wait_puts(installed, 1).puts == 1
    second = litellm.completion(**kw)
    assert hit_flag(second)
    assert second.choices[0].message.content == "hi there"
    fs = stats(installed)
    assert (fs.hits, fs.misses, fs.puts, fs.size) == (1, 1, 1, 1)
    assert fs.by_model[MODEL].hits == 1
    assert fs.tokens_saved == first.usage.total_tokens > 0


async def test_second_call_is_a_hit_async(installed: FleetLiteLLMCache) -> None:
    kw = {"model": MODEL, "messages": msgs("async"), "mock_response": "A", "caching": True}
    first = await litellm.acompletion(**kw)
    assert not hit_flag(first)
    assert (await await_puts(installed, 1)).puts == 1
    second = await litellm.acompletion(**kw)
    assert hit_flag(second) and second.choices[0].message.content == "A"
    fs = await asyncio.to_thread(stats, installed)
    assert (fs.hits, fs.misses, fs.puts) == (1, 1, 1)


async def test_sync_and_async_share_entries(installed: FleetLiteLLMCache) -> None:
    kw = {"model": MODEL, "messages": msgs("shared"), "mock_response": "S", "caching": True}
    await asyncio.to_thread(litellm.completion, **kw)
    await await_puts(installed, 1)
    assert hit_flag(await litellm.acompletion(**kw))


def test_long_conversations_are_cached(installed: FleetLiteLLMCache) -> None:
    # LiteLLM's own default (max_messages=4) would neither look up nor store these
    messages = msgs("long", turns=8)
    kw: dict[str, Any] = {"model": MODEL, "messages": messages, "mock_response": "L"}
    kw["caching"] = True
    litellm.completion(**kw)
    wait_puts(installed, 1)
    assert hit_flag(litellm.completion(**kw))
    other = {**kw, "messages": [*messages[:-1], {"role": "user", "content": "other"}]}
    assert not hit_flag(litellm.completion(**other))


def test_controls_map_onto_fleetcache(installed: FleetLiteLLMCache, backend: Any) -> None:
    base = {"model": MODEL, "messages": msgs("ctl"), "caching": True}
    litellm.completion(**base, mock_response="v1")
    wait_puts(installed, 1)
    # no-cache: the read is skipped, the fresh answer is stored (a refresh)
    fresh = litellm.completion(**base, mock_response="v2", cache={"no-cache": True})
    assert not hit_flag(fresh) and fresh.choices[0].message.content == "v2"
    wait_puts(installed, 2)
    again = litellm.completion(**base, mock_response="unused")
    assert hit_flag(again) and again.choices[0].message.content == "v2"
    # no-store: read, never write
    nostore = {"model": MODEL, "messages": msgs("nostore"), "caching": True}
    litellm.completion(**nostore, mock_response="x", cache={"no-store": True})
    time.sleep(0.3)
    assert not hit_flag(litellm.completion(**nostore, mock_response="y", cache={"no-store": True}))
    # both: bypass
    litellm.completion(**nostore, mock_response="z", cache={"no-cache": True, "no-store": True})
    time.sleep(0.3)
    fs = stats(installed)
    assert fs.puts == 2 and fs.size == 1
    # ttl: the entry's TTL (server clock, ms)
    ttl_req = {"model": MODEL, "messages": msgs("ttl"), "caching": True}
    litellm.completion(**ttl_req, mock_response="t", cache={"ttl": 30})
    wait_puts(installed, 3)
    r = backend.client()
    keys = backend_of(installed).sync_cache._core.keys
    digests = [d.decode() for d in r.zrange(keys.index(0), 0, -1)]  # index members
    entry_pttls = sorted(r.pttl(keys.entry(0, d)) for d in digests)
    assert entry_pttls[0] == -1 and 0 < entry_pttls[1] <= 30_000 and len(entry_pttls) == 2
    r.close()


def test_a_ttl_beyond_the_caches_bound_is_ignored_like_a_bad_one(
    installed: FleetLiteLLMCache, backend: Any
) -> None:
    """LiteLLM's ``ttl`` goes through the caches' TTL check: one over 1e12 s is ignored (the
    namespace's TTL applies) as a negative one is, so the answer is still stored."""
    req = {"model": MODEL, "messages": msgs("huge-ttl"), "caching": True}
    litellm.completion(**req, mock_response="kept", cache={"ttl": 1e13})
    fs = wait_puts(installed, 1, timeout=3.0)
    assert fs.puts == 1 and fs.size == 1
    again = litellm.completion(**req, mock_response="unused")
    assert hit_flag(again) and again.choices[0].message.content == "kept"


def test_should_store_refusals_are_counted(installed: FleetLiteLLMCache) -> None:
    truncated = {
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "cut o"},
                "finish_reason": "length",
            }
        ],
        "model": MODEL,
    }
    kw = {"model": MODEL, "messages": msgs("trunc"), "caching": True}
    litellm.completion(**kw, mock_response=truncated)
    fs = wait_puts(installed, 1)
    assert (fs.puts, fs.not_stored) == (0, 1)
    assert not hit_flag(litellm.completion(**kw, mock_response=truncated))
    assert litellm_should_store({"embedding": [0.1], "index": 0})  # LiteLLM's embedding items
    assert not litellm_should_store({"choices": []})


def test_another_process_shares_hits(installed: FleetLiteLLMCache, backend: Any) -> None:
    code = f"""
import os, sys, time
os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
import litellm
from fleetcache.integrations.litellm import fleetcache_litellm_cache
c = fleetcache_litellm_cache(sys.argv[1], key_prefix=sys.argv[2])
r = litellm.completion(model={MODEL!r}, messages=[{{"role": "user", "content": "fleet"}}],
                       mock_response="from another process", caching=True)
deadline = time.monotonic() + 10
while c.cache.sync_cache.fleet_stats().puts < 1 and time.monotonic() < deadline:
    time.sleep(0.02)
print(r._hidden_params.get("cache_hit"))
"""
    prefix = backend_of(installed).sync_cache.key_prefix
    out = subprocess.run(
        [sys.executable, "-c", code, backend.url, prefix],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        cwd=ROOT,
    )
    assert out.stdout.strip().splitlines()[-1] == "None"  # a miss over there
    got = litellm.completion(
        model=MODEL,
        messages=[{"role": "user", "content": "fleet"}],
        mock_response="not used",
        caching=True,
    )
    assert hit_flag(got) and got.choices[0].message.content == "from another process"
    fs = stats(installed)
    assert (fs.hits, fs.misses, fs.puts) == (1, 1, 1)


def test_redis_down_sync_and_async() -> None:
    cache = fleetcache_litellm_cache(f"redis://127.0.0.1:{free_port()}/0", key_prefix="down")
    try:
        kw = {
            "model": MODEL,
            "messages": msgs("down"),
            "mock_response": "upstream",
            "caching": True,
        }
        for _ in range(2):
            r = litellm.completion(**kw)
            assert r.choices[0].message.content == "upstream" and not hit_flag(r)

        async def twice() -> list[Any]:
            return [await litellm.acompletion(**kw) for _ in range(2)]

        for r in asyncio.run(twice()):
            assert r.choices[0].message.content == "upstream" and not hit_flag(r)
        assert backend_of(cache).sync_cache.error_count >= 1
    finally:
        litellm.disable_cache()


def test_backend_arguments(backend: Any, prefix: str) -> None:
    plain = RedisExactCache(url=backend.url, key_prefix=prefix)
    with pytest.raises(ValueError, match="LITELLM_IGNORE"):
        FleetLiteLLMBackend(cache=plain)
    with pytest.raises(TypeError, match="either url"):
        FleetLiteLLMBackend(url=backend.url, cache=plain)
    with pytest.raises(TypeError, match="ignore"):
        FleetLiteLLMBackend(url=backend.url, ignore=())
    good = RedisExactCache(url=backend.url, key_prefix=prefix, ignore=LITELLM_IGNORE)
    b = FleetLiteLLMBackend(cache=good)
    assert asyncio.run(b.test_connection())["status"] == "success"
    # given caches only: async calls run the sync cache in a thread
    b.set_cache(
        "k1",
        {
            "timestamp": 1.0,
            "response": json.dumps(
                {
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": "x"},
                            "finish_reason": "stop",
                        }
                    ]
                }
            ),
        },
        model=MODEL,
    )
    got = asyncio.run(b.async_get_cache("k1", model=MODEL))
    assert got["response"]["choices"][0]["message"]["content"] == "x"
    assert abs(got["timestamp"] - time.time()) < 5
    assert b.get_cache("missing") is None
    b.delete_cache("k1")
    assert b.get_cache("k1") is None
    plain.close()
    good.close()


def _two_calls(first: dict[str, Any], second: dict[str, Any], c: FleetLiteLLMCache) -> Any:
    """``litellm.completion(**first)``, wait for its write, then ``(**second)``: the second."""
    base = {"model": MODEL, "caching": True}
    r1 = litellm.completion(**base, **first, mock_response="first upstream")
    assert not hit_flag(r1)
    wait_puts(c, 1)
    return litellm.completion(**base, **second, mock_response="second upstream")


def assert_miss(response: Any) -> None:
    assert not hit_flag(response)
    assert response.choices[0].message.content == "second upstream"


def test_another_api_base_is_a_miss(installed: FleetLiteLLMCache) -> None:
    # two OpenAI-compatible servers (e.g. two vLLM deployments) answer differently
    m = msgs("where")
    r = _two_calls(
        {"messages": m, "api_base": "http://vllm-a:8000/v1"},
        {"messages": m, "api_base": "http://vllm-b:8000/v1"},
        installed,
    )
    assert_miss(r)
    again = litellm.completion(
        model=MODEL, messages=m, api_base="http://vllm-a:8000/v1", mock_response="x", caching=True
    )
    assert hit_flag(again) and again.choices[0].message.content == "first upstream"


def test_extra_body_is_keyed(installed: FleetLiteLLMCache) -> None:
    m = msgs("json please")
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    r = _two_calls(
        {"messages": m, "extra_body": {"guided_json": schema}}, {"messages": m}, installed
    )
    assert_miss(r)


def test_routing_header_is_keyed(installed: FleetLiteLLMCache) -> None:
    m = msgs("route")
    r = _two_calls(
        {"messages": m, "extra_headers": {"x-portkey-provider": "anthropic"}},
        {"messages": m},
        installed,
    )
    assert_miss(r)


def test_provider_is_keyed(installed: FleetLiteLLMCache) -> None:
    m = msgs("provider")
    r = _two_calls(
        {"messages": m, "api_base": "http://gw/v1", "custom_llm_provider": "openai"},
        {"messages": m, "api_base": "http://gw/v1", "custom_llm_provider": "hosted_vllm"},
        installed,
    )
    assert_miss(r)


def test_credentials_are_not_keyed(installed: FleetLiteLLMCache) -> None:
    # two keys (or two bearer tokens) to one upstream share its answers; no secret is keyed
    m = msgs("creds")
    r = _two_calls(
        {"messages": m, "api_key": "sk-one", "extra_headers": {"Authorization": "Bearer a"}},
        {"messages": m, "api_key": "sk-two", "extra_headers": {"authorization": "Bearer b"}},
        installed,
    )
    assert hit_flag(r) and r.choices[0].message.content == "first upstream"


async def test_whole_request_key_hits_async(installed: FleetLiteLLMCache) -> None:
    kw: dict[str, Any] = {
        "model": MODEL,
        "messages": msgs("async whole"),
        "api_base": "http://vllm-a:8000/v1",
        "extra_body": {"guided_choice": ["yes", "no"]},
        "extra_headers": {"x-route": "a"},
        "caching": True,
    }
    assert not hit_flag(await litellm.acompletion(**kw, mock_response="yes"))
    await await_puts(installed, 1)
    second = await litellm.acompletion(**kw, mock_response="unused")
    assert hit_flag(second) and second.choices[0].message.content == "yes"
    other = await litellm.acompletion(**{**kw, "api_base": "http://b/v1"}, mock_response="no")
    assert not hit_flag(other) and other.choices[0].message.content == "no"


def test_request_key_fields() -> None:
    from fleetcache.integrations.litellm import is_litellm_credential, litellm_request_key

    key = litellm_request_key(
        {
            "model": MODEL,
            "messages": [{"role": "user", "content": "x"}],
            "api_key": "sk",
            "aws_secret_access_key": "s",
            "stream": True,
            "timeout": 3,
            "litellm_call_id": "id",
            "mock_response": "m",
            "temperature": None,
            "extra_headers": {"X-Api-Key": "k", "traceparent": "t", "X-Route": "r"},
            "headers": {"Authorization": "Bearer z"},
        }
    )
    assert key == {
        "model": MODEL,
        "messages": [{"role": "user", "content": "x"}],
        "extra_headers": {"x-route": "r"},
    }
    assert is_litellm_credential("vertex_credentials") and not is_litellm_credential("max_tokens")


def test_streamed_call_replays_the_stored_answer(installed: FleetLiteLLMCache) -> None:
    # stream= is not keyed: LiteLLM replays a stored answer as a stream
    kw: dict[str, Any] = {"model": MODEL, "messages": msgs("stream me"), "caching": True}
    litellm.completion(**kw, mock_response="streamed answer")
    wait_puts(installed, 1)
    chunks = list(litellm.completion(**kw, stream=True, mock_response="unused"))
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert text == "streamed answer"
    assert stats(installed).hits == 1


def test_embeddings_hit_and_are_keyed_on_api_base(installed: FleetLiteLLMCache) -> None:
    kw: dict[str, Any] = {"model": "text-embedding-3-small", "caching": True, "input": ["alpha"]}
    first = litellm.embedding(**kw, mock_response=[0.1, 0.2])
    assert not hit_flag(first)
    wait_puts(installed, 1)
    again = litellm.embedding(**kw, mock_response=[0.9, 0.9])
    assert hit_flag(again) and again.data[0]["embedding"] == [0.1, 0.2]
    other = litellm.embedding(**kw, api_base="http://embed-b/v1", mock_response=[0.5, 0.5])
    assert not hit_flag(other) and other.data[0]["embedding"] == [0.5, 0.5]
