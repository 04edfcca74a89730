"""The public API end to end, through both the sync and the async cache (parity): get/put,
invalidate, counters (fleet and per model), tokens_saved, size, stats, reset_stats, clear."""

from __future__ import annotations

import pytest
import redis

import fleetcache
from fleetcache import (
    CacheStats,
    CacheUnavailableError,
    FinishReason,
    FleetStats,
    LLMResponse,
    RedisExactCache,
    ToolCallResult,
)

from ..support.flavors import CacheFactory, Flavor, req, response


def test_public_names() -> None:
    for name in (
        "RedisExactCache",
        "AsyncRedisExactCache",
        "LLMResponse",
        "ToolCallResult",
        "FinishReason",
        "CacheStats",
        "FleetStats",
        "CacheUnavailableError",
    ):
        assert hasattr(fleetcache, name), name
    assert issubclass(CacheUnavailableError, Exception)
    assert FinishReason.STOP.value == "stop"
    assert ToolCallResult(name="f", arguments={}).id == ""


def test_constructor_defaults() -> None:
    c = RedisExactCache(url="redis://127.0.0.1:1/0")  # lazy: no connection at construction
    try:
        assert c.key_prefix == "ractogateway:exact"
        assert c.ttl_seconds is None
        assert c.response_model is LLMResponse
        assert c.on_error == "miss"
    finally:
        c.close()
    with pytest.raises(TypeError):
        RedisExactCache("redis://127.0.0.1:1/0")  # type: ignore[call-arg]  # keyword-only
    with pytest.raises(ValueError):
        RedisExactCache(url="redis://127.0.0.1:1/0", on_error="ignore")


async def test_put_get_invalidate(cache: Flavor) -> None:
    assert await cache.get(*req(1)) is None
    await cache.put(*req(1), response(1))
    got = await cache.get(*req(1))
    assert isinstance(got, LLMResponse)
    assert got == response(1)
    assert await cache.size() == 1
    assert await cache.invalidate(*req(1)) is True
    assert await cache.invalidate(*req(1)) is False
    assert await cache.get(*req(1)) is None
    assert await cache.size() == 0
    fs = await cache.fleet_stats()
    assert (fs.hits, fs.misses, fs.puts, fs.invalidations) == (1, 2, 1, 1)


async def test_put_replaces(cache: Flavor) -> None:
    await cache.put(*req(1), response("old"))
    await cache.put(*req(1), response("new"))
    assert (await cache.get(*req(1))) == response("new")
    assert await cache.size() == 1
    assert (await cache.fleet_stats()).puts == 2


async def test_positional_call_shapes(cache: Flavor) -> None:
    # The ractogateway kits call get(*5) and put(*5, response) positionally.
    um, sp, model, temp, mt = req(2)
    await cache.put(um, sp, model, temp, mt, response(2))
    assert await cache.get(um, sp, model, temp, mt) == response(2)


async def test_counters_and_stats(cache: Flavor) -> None:
    await cache.put(*req(1, model="m1"), response(1, tokens=30))
    await cache.put(*req(2, model="m2"), response(2, tokens=7))
    for _ in range(3):
        assert await cache.get(*req(1, model="m1")) is not None
    assert await cache.get(*req(2, model="m2")) is not None
    assert await cache.get(*req(3, model="m2")) is None
    assert await cache.get(*req(4, model="m3")) is None

    st = await cache.stats()
    assert isinstance(st, CacheStats)
    assert (st.hits, st.misses, st.size) == (4, 2, 2)
    assert st.total == 6
    assert st.hit_rate == pytest.approx(4 / 6)

    fs = await cache.fleet_stats()
    assert isinstance(fs, FleetStats)
    assert (fs.hits, fs.misses, fs.size, fs.puts) == (4, 2, 2, 2)
    assert fs.tokens_saved == 3 * 30 + 7
    assert fs.hit_rate == pytest.approx(4 / 6)
    assert {m: (s.hits, s.misses) for m, s in fs.by_model.items()} == {
        "m1": (3, 0),
        "m2": (1, 1),
        "m3": (0, 1),
    }


@pytest.mark.parametrize(
    ("usage", "saved"),
    [
        ({"prompt_tokens": 5, "completion_tokens": 6, "total_tokens": 40}, 40),
        ({"prompt_tokens": 5, "completion_tokens": 6}, 11),
        ({"completion_tokens": 6}, 6),
        ({}, 0),
    ],
)
async def test_tokens_saved_rule(cache: Flavor, usage: dict[str, int], saved: int) -> None:
    await cache.put(*req(1), LLMResponse(content="x", usage=usage))
    assert await cache.get(*req(1)) is not None
    assert await cache.get(*req(1)) is not None
    assert (await cache.fleet_stats()).tokens_saved == 2 * saved


async def test_reset_stats_keeps_entries(cache: Flavor) -> None:
    await cache.put(*req(1), response(1))
    await cache.get(*req(1))
    await cache.get(*req(2))
    await cache.reset_stats()
    fs = await cache.fleet_stats()
    assert (fs.hits, fs.misses, fs.puts, fs.tokens_saved, fs.by_model) == (0, 0, 0, 0, {})
    assert fs.size == 1
    assert await cache.get(*req(1)) == response(1)


async def test_clear_deletes_entries_and_counters(cache: Flavor, r: redis.Redis) -> None:
    for i in range(1234):  # more than one clear chunk
        await cache.put(*req(i), response(i))
    await cache.get(*req(0))
    assert await cache.size() == 1234
    await cache.clear()
    assert await cache.size() == 0
    fs = await cache.fleet_stats()
    assert (fs.hits, fs.misses, fs.puts) == (0, 0, 0)
    assert await cache.get(*req(0)) is None
    entry, index, _stats = cache.keys_of(*req(5))
    assert r.exists(entry, index) == 0
    await cache.clear()  # an empty namespace clears fine


async def test_two_caches_share_one_namespace(cache_factory: CacheFactory) -> None:
    a = cache_factory()
    b = cache_factory()
    await a.put(*req(1), response(1))
    assert await b.get(*req(1)) == response(1)
    assert (await a.fleet_stats()).hits == 1
    assert await a.size() == await b.size() == 1


async def test_per_entry_ttl_overrides(cache_factory: CacheFactory, r: redis.Redis) -> None:
    c = cache_factory(ttl_seconds=100)
    await c.put(*req(1), response(1))
    await c.put(*req(2), response(2), ttl_seconds=5.5)
    e1 = c.keys_of(*req(1))[0]
    e2 = c.keys_of(*req(2))[0]
    assert 90_000 < r.pttl(e1) <= 100_000
    assert 0 < r.pttl(e2) <= 5_500


async def test_response_model_instance_and_finish_reason(cache: Flavor) -> None:
    resp = LLMResponse(
        content=None,
        tool_calls=[ToolCallResult(id="c1", name="f", arguments={"a": 1})],
        finish_reason=FinishReason.TOOL_CALL,
    )
    await cache.put(*req(1), resp)
    got = await cache.get(*req(1))
    assert isinstance(got, LLMResponse)
    assert got.finish_reason is FinishReason.TOOL_CALL
    assert got == resp


async def test_adapter_passes_other_methods_through(cache: Flavor) -> None:
    """The parity adapter forwards methods it does not wrap (get_many, put_many, ...)."""
    if not hasattr(cache.cache, "get_many"):
        pytest.skip("this version has no get_many")
    await cache.put(*req(1), response(1))
    assert await cache.get_many([req(1), req(2)]) == [response(1), None]
    with pytest.raises(AttributeError):
        cache.no_such_method
