"""What the cache saved, counted on the server: every hit adds the tokens (by kind), cost
and upstream time its entry recorded when written, fleet-wide and per model, in the same
script call; a hit the client refuses takes exactly that back."""

from __future__ import annotations

import multiprocessing
import time
from typing import Any

import msgpack
import pytest

from fleetcache import LLMResponse, RedisExactCache
from fleetcache.core.envelope import HEADER, MAGIC
from fleetcache.core.models import RECORD, FleetStats

from ..conftest import Backend

#: USD per million tokens: input, output, cache read, cache write
PRICES = {"m-priced": (2.5, 10.0, 1.25, 3.75)}
#: 1,000 input tokens at $2.5/M + 500 output tokens at $10/M = $0.0075
COST_NANO = 7_500_000


def q(i: int | str = 0, model: str = "m-priced") -> tuple[str, str, str, float, int]:
    return (f"question {i}", "be brief", model, 0.0, 256)


def answer(i: int | str = 0) -> LLMResponse:
    """A 1,000-in / 500-out answer."""
    return LLMResponse(
        content=f"answer {i}",
        usage={"prompt_tokens": 1000, "completion_tokens": 500, "total_tokens": 1500},
    )


def _hit(cache: RedisExactCache, fields: tuple[Any, ...], times: int) -> None:
    for _ in range(times):
        assert cache.get(*fields) is not None


def test_a_priced_answer_hit_three_times_saves_three_times_its_cost(make_cache: Any) -> None:
    cache = make_cache(prices=PRICES)
    cache.put(*q(), answer(), upstream_ms=1200)
    _hit(cache, q(), 3)
    fs = cache.fleet_stats()
    assert fs.hits == 3
    assert fs.cost_saved_nanousd == 3 * COST_NANO
    assert fs.cost_saved_usd == pytest.approx(0.0225, abs=0)
    assert (fs.input_tokens_saved, fs.output_tokens_saved) == (3000, 1500)
    assert fs.tokens_saved == 4500
    assert (fs.ms_saved, fs.seconds_saved) == (3600, 3.6)
    assert fs.unpriced_hits == 0
    m = fs.by_model["m-priced"]
    assert (m.hits, m.input_tokens_saved, m.output_tokens_saved) == (3, 3000, 1500)
    assert m.cost_saved_nanousd == 3 * COST_NANO and m.cost_saved_usd == 0.0225
    assert (m.ms_saved, m.seconds_saved, m.unpriced_hits) == (3600, 3.6, 0)


def test_savings_are_summed_per_model_and_in_total(make_cache: Any) -> None:
    cache = make_cache(prices={**PRICES, "m-cheap": (0.1, 0.4)})
    cache.put(*q(1), answer(1))
    cache.put(*q(2, "m-cheap"), answer(2))
    cache.get_many([q(1), q(2, "m-cheap"), q(1)])
    fs = cache.fleet_stats()
    cheap = 1000 * 100 + 500 * 400  # nano-USD: $0.1/M = 100 nano a token
    assert fs.by_model["m-priced"].cost_saved_nanousd == 2 * COST_NANO
    assert fs.by_model["m-cheap"].cost_saved_nanousd == cheap
    assert fs.cost_saved_nanousd == 2 * COST_NANO + cheap
    assert fs.input_tokens_saved == 3000 and fs.output_tokens_saved == 1500


def test_a_model_without_a_price_counts_unpriced_hits_never_zero_dollars(
    make_cache: Any,
) -> None:
    cache = make_cache(prices=PRICES)
    cache.put(*q(0, "no-such-model-anywhere"), answer())
    _hit(cache, q(0, "no-such-model-anywhere"), 3)
    fs = cache.fleet_stats()
    assert fs.unpriced_hits == 3 and fs.cost_saved_nanousd == 0
    m = fs.by_model["no-such-model-anywhere"]
    assert (m.unpriced_hits, m.cost_saved_nanousd, m.input_tokens_saved) == (3, 0, 3000)


def test_an_answer_without_usage_is_unpriced_not_free(make_cache: Any) -> None:
    cache = make_cache(prices=PRICES)
    cache.put(*q(), LLMResponse(content="streamed, no usage"))
    _hit(cache, q(), 2)
    fs = cache.fleet_stats()
    assert (fs.unpriced_hits, fs.cost_saved_nanousd, fs.tokens_saved) == (2, 0, 0)


def test_anthropic_counts_all_four_token_kinds(make_cache: Any) -> None:
    """An answer that cost 1,245 tokens (5 input, 40 output, 200 written to and 1,000 read
    from the prompt cache) saves 1,245 tokens a hit, each kind at its own price."""
    cache = make_cache(prices={"claude-x": (3.0, 15.0, 0.3, 3.75)})
    request = {
        "model": "claude-x",
        "max_tokens": 64,
        "messages": [{"role": "user", "content": "hi"}],
    }
    data = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-x",
        "content": [{"type": "text", "text": "hello"}],
        "stop_reason": "end_turn",
        "usage": {
            "input_tokens": 5,
            "output_tokens": 40,
            "cache_creation_input_tokens": 200,
            "cache_read_input_tokens": 1000,
        },
    }
    cache.put_request(request, data)
    assert cache.get_request(request) == data
    fs = cache.fleet_stats()
    assert fs.tokens_saved == 1245
    assert (fs.input_tokens_saved, fs.output_tokens_saved) == (5, 40)
    assert (fs.cache_write_tokens_saved, fs.cache_read_tokens_saved) == (200, 1000)
    # 5 x 3000 + 40 x 15000 + 200 x 3750 + 1000 x 300 nano-USD
    assert fs.by_model["claude-x"].cost_saved_nanousd == 15_000 + 600_000 + 750_000 + 300_000


def test_openai_cached_and_reasoning_tokens_through_the_request_path(make_cache: Any) -> None:
    cache = make_cache(prices={"gpt-x": (2.0, 8.0, 0.5)})
    request = {"model": "gpt-x", "messages": [{"role": "user", "content": "hi"}]}
    data = {
        "object": "chat.completion",
        "model": "gpt-x-2026-01-01",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}}],
        "usage": {
            "prompt_tokens": 1000,
            "completion_tokens": 500,
            "total_tokens": 1500,
            "prompt_tokens_details": {"cached_tokens": 600},
            "completion_tokens_details": {"reasoning_tokens": 300},
        },
    }
    cache.put_request(request, data, upstream_ms=250)
    for _ in range(2):
        assert cache.get_request(request) is not None
    fs = cache.fleet_stats()
    assert (fs.input_tokens_saved, fs.cache_read_tokens_saved) == (800, 1200)
    assert fs.output_tokens_saved == 1000  # reasoning stays in output
    assert fs.tokens_saved == 3000 and fs.ms_saved == 500
    assert fs.by_model["gpt-x"].cost_saved_nanousd == 2 * (400 * 2000 + 600 * 500 + 500 * 8000)


def test_get_or_compute_records_how_long_compute_took(make_cache: Any) -> None:
    cache = make_cache(prices=PRICES)

    def compute() -> LLMResponse:
        time.sleep(0.05)
        return answer()

    cache.get_or_compute(*q(), compute)
    assert cache.get_or_compute(*q(), compute) is not None
    fs = cache.fleet_stats()
    assert fs.hits == 1 and 50 <= fs.ms_saved < 5000
    assert fs.cost_saved_nanousd == COST_NANO


def test_get_or_compute_request_records_how_long_compute_took(make_cache: Any) -> None:
    cache = make_cache()
    request = {"model": "m", "messages": [{"role": "user", "content": "slow"}]}

    def compute() -> dict[str, Any]:
        time.sleep(0.05)
        return {"choices": [{"message": {"content": "ok"}}], "usage": {"prompt_tokens": 3}}

    cache.get_or_compute_request(request, compute)
    cache.get_or_compute_request(request, compute)
    fs = cache.fleet_stats()
    assert fs.hits == 1 and 50 <= fs.ms_saved < 5000 and fs.input_tokens_saved == 3


def _hits_in_a_process(url: str, prefix: str, shards: int, times: int) -> None:
    with RedisExactCache(url=url, key_prefix=prefix, shards=shards) as c:
        for _ in range(times):
            assert c.get(*q()) is not None


def test_two_processes_add_up_exactly(make_cache: Any, backend: Backend, prefix: str) -> None:
    cache = make_cache(prices=PRICES)
    cache.put(*q(), answer(), upstream_ms=7)
    ctx = multiprocessing.get_context("spawn")
    shards = cache.shards
    procs = [
        ctx.Process(target=_hits_in_a_process, args=(backend.url, prefix, shards, 5))
        for _ in range(2)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    fs = cache.fleet_stats()
    assert fs.hits == 10 and fs.cost_saved_nanousd == 10 * COST_NANO
    assert (fs.input_tokens_saved, fs.output_tokens_saved, fs.ms_saved) == (10_000, 5000, 70)


def _entry_key(cache: RedisExactCache, fields: tuple[Any, ...]) -> str:
    _req, digest, shard = cache._core.request(fields)
    return cache._core.keys.entry(shard, digest)


def test_an_old_version_1_entry_is_served_and_counts_its_tokens(make_cache: Any, r: Any) -> None:
    cache = make_cache(prices=PRICES)
    cache.put(*q(), answer())  # records the layout; then overwritten by an old writer
    body = msgpack.packb({"content": "old", "usage": {"total_tokens": 30}})
    r.set(_entry_key(cache, q()), HEADER.pack(MAGIC, 1, 0, 30) + body)
    for _ in range(2):
        got = cache.get(*q())
        assert got is not None and got.content == "old"
    fs = cache.fleet_stats()
    assert fs.tokens_saved == 60 and fs.corrupt == 0
    # its cost is unknown: counted unpriced, never $0
    assert fs.unpriced_hits == 2 and fs.cost_saved_nanousd == 0
    assert fs.input_tokens_saved == 0


def test_a_hit_counts_in_one_packed_record_per_model(make_cache: Any, r: Any) -> None:
    """One stats-hash field per model (``m:<model>``, ten int64) holds its hits and savings;
    no per-kind integer fields are written on a hit."""
    cache = make_cache(prices=PRICES, shards=1)
    cache.put(*q(), answer(), upstream_ms=700)
    _hit(cache, q(), 2)
    fields = r.hgetall(cache._core.keys.stats(0))
    assert set(fields) == {b"puts", b"m:m-priced"}
    assert RECORD.unpack(fields[b"m:m-priced"]) == (
        2,
        3000,
        2000,
        1000,
        0,
        0,
        1400,
        0,
        2 * COST_NANO,
        0,
    )


def test_reset_stats_zeroes_the_savings_records(make_cache: Any, r: Any) -> None:
    cache = make_cache(prices=PRICES, shards=1)
    cache.put(*q(), answer(), upstream_ms=700)
    _hit(cache, q(), 2)
    assert cache.fleet_stats().cost_saved_nanousd == 2 * COST_NANO
    cache.reset_stats()
    fs = cache.fleet_stats()
    assert fs.hits == 0 and _savings(fs) == (0,) * 8 and fs.by_model == {}
    _hit(cache, q(), 1)  # counting starts again from a fresh record
    fs = cache.fleet_stats()
    assert (fs.hits, fs.cost_saved_nanousd, fs.ms_saved) == (1, COST_NANO, 700)


def test_cost_sums_exactly_across_whole_dollars_and_past_2_53_nano_usd(
    make_cache: Any, r: Any
) -> None:
    """The record keeps the cost as whole USD + nano-USD: adding and taking back carry across
    dollars, and a sum past 2^53 nano-USD (about $9M, where a double stops being exact)
    stays exact."""
    cache = make_cache(prices={"m-dear": (300.0, 600.0)}, shards=1)  # $0.6 an answer
    stats = cache._core.keys.stats(0)
    cache.put(*q(model="m-dear"), answer())
    _hit(cache, q(model="m-dear"), 3)
    assert cache.fleet_stats().cost_saved_nanousd == 1_800_000_000
    assert RECORD.unpack(r.hget(stats, "m:m-dear"))[7:9] == (1, 800_000_000)
    from fleetcache.core.envelope import EntryMeta
    from fleetcache.core.usage import Usage

    bad = EntryMeta(Usage(1, 1, 0, 0), 900_000_000, 1).header(0) + b"\xc1 not msgpack"
    r.set(_entry_key(cache, q(model="m-dear")), bad)
    assert cache.get(*q(model="m-dear")) is None  # credited $0.9 (carry), then taken back
    fs = cache.fleet_stats()
    assert (fs.hits, fs.corrupt, fs.cost_saved_nanousd) == (3, 1, 1_800_000_000)
    assert RECORD.unpack(r.hget(stats, "m:m-dear"))[7:9] == (1, 800_000_000)
    big = 10_000_000  # $10M already saved: 10^16 nano-USD > 2^53
    r.hset(stats, "m:m-dear", RECORD.pack(0, 0, 0, 0, 0, 0, 0, big, 999_999_999, 0))
    cache.put(*q(model="m-dear"), answer())
    _hit(cache, q(model="m-dear"), 1)
    assert cache.fleet_stats().cost_saved_nanousd == big * 10**9 + 999_999_999 + 600_000_000


def _v2_header(flags: int) -> bytes:
    """A version-2 header claiming large savings (for entries whose body is bad)."""
    from fleetcache.core.envelope import EntryMeta
    from fleetcache.core.usage import Usage

    return EntryMeta(Usage(10_000, 20_000, 300, 400), 123_456_789, 9999).header(flags)


def _savings(fs: FleetStats) -> tuple[int, ...]:
    return (
        fs.tokens_saved,
        fs.input_tokens_saved,
        fs.output_tokens_saved,
        fs.cache_read_tokens_saved,
        fs.cache_write_tokens_saved,
        fs.cost_saved_nanousd,
        fs.ms_saved,
        fs.unpriced_hits,
    )


def test_a_corrupt_entry_hit_taken_back_leaves_the_savings_unchanged(
    make_cache: Any, r: Any
) -> None:
    cache = make_cache(prices=PRICES)
    cache.put(*q(), answer())
    r.set(_entry_key(cache, q()), _v2_header(0) + b"\xc1\xc1 not msgpack")
    assert cache.get(*q()) is None
    fs = cache.fleet_stats()
    assert (fs.hits, fs.misses, fs.corrupt) == (0, 1, 1)
    assert _savings(fs) == (0,) * 8
    m = fs.by_model["m-priced"]
    assert (m.hits, m.input_tokens_saved, m.cost_saved_nanousd, m.ms_saved) == (0, 0, 0, 0)


def test_a_rejected_entry_in_get_many_takes_back_its_savings(make_cache: Any, r: Any) -> None:
    cache = make_cache(prices=PRICES)
    cache.put(*q(1), answer(1))
    r.set(_entry_key(cache, q(1)), _v2_header(0) + msgpack.packb({"finish_reason": "??"}))
    assert cache.get_many([q(1), q(1)]) == [None, None]
    fs = cache.fleet_stats()
    assert fs.hits == 0 and fs.rejected == 2 and _savings(fs) == (0,) * 8


def test_a_forged_entry_hit_taken_back_leaves_the_savings_unchanged(
    make_cache: Any, r: Any
) -> None:
    cache = make_cache(prices=PRICES, signing_key=b"k" * 32)
    cache.put(*q(), answer(), upstream_ms=5)
    _hit(cache, q(), 1)
    before = _savings(cache.fleet_stats())
    r.set(_entry_key(cache, q()), _v2_header(0) + msgpack.packb({"content": "forged"}))
    assert cache.get(*q()) is None
    fs = cache.fleet_stats()
    assert fs.forged == 1 and fs.hits == 1
    assert _savings(fs) == before
    assert before[5] == COST_NANO


def test_a_forged_entry_seen_by_a_waiter_takes_back_the_coalesced_savings(
    make_cache: Any, r: Any
) -> None:
    """A waiter's poll credits coalesced + savings; a MAC failure takes back exactly that."""
    from fleetcache._lua import script
    from fleetcache.core.keys import model_arg

    cache = make_cache(prices=PRICES)
    core = cache._core
    _req, digest, shard = core.request(q())
    keys = (
        core.keys.entry(shard, digest),
        core.keys.index(shard),
        core.keys.stats(shard),
        core.keys.lease(shard, digest),
    )
    cache.put(*q(), answer(), upstream_ms=40)
    raw = r.get(keys[0])
    lease = script("get_or_lease")
    # a waiter's poll (mode "0") finds the entry: coalesced and its savings are counted
    got = r.evalsha(lease.sha, 4, *keys, digest, model_arg("m-priced"), MAGIC, "tok", 1000, "0")
    assert int(got[0]) == 1
    fs = cache.fleet_stats()
    assert fs.coalesced == 1 and fs.cost_saved_nanousd == COST_NANO and fs.ms_saved == 40
    drop = script("drop_forged")
    r.evalsha(drop.sha, 3, *keys[:3], digest, model_arg("m-priced"), raw, "coalesced")
    fs = cache.fleet_stats()
    assert fs.coalesced == 0 and fs.forged == 1 and _savings(fs) == (0,) * 8


def test_prices_are_validated_at_construction() -> None:
    with pytest.raises(TypeError, match="prices must be a mapping"):
        RedisExactCache(url="redis://127.0.0.1:1", prices=[("m", 1, 2)])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="2 to 4"):
        RedisExactCache(url="redis://127.0.0.1:1", prices={"m": (1.0,)})
    with pytest.raises(ValueError, match=">= 0"):
        RedisExactCache(url="redis://127.0.0.1:1", prices={"m": (1.0, -2.0)})
    with pytest.raises(TypeError, match="numbers"):
        RedisExactCache(url="redis://127.0.0.1:1", prices={"m": (1.0, "2")})  # type: ignore[dict-item]


def test_upstream_ms_is_validated(make_cache: Any) -> None:
    cache = make_cache()
    with pytest.raises(ValueError, match="milliseconds"):
        cache.put(*q(), answer(), upstream_ms=-1)
    with pytest.raises(TypeError, match="milliseconds"):
        cache.put(*q(), answer(), upstream_ms="5")


def test_anthropic_prompt_cache_tokens_count_in_tokens_saved(make_cache: Any) -> None:
    """tokens_saved counts the prompt-cache reads and writes too: an answer that cost 1,245
    tokens saves 1,245 a hit, not the 45 of input_tokens + output_tokens."""
    cache = make_cache()
    request = {"model": "claude-y", "messages": [{"role": "user", "content": "hi"}]}
    data = {
        "type": "message",
        "content": [{"type": "text", "text": "hello"}],
        "stop_reason": "end_turn",
        "usage": {
            "input_tokens": 5,
            "output_tokens": 40,
            "cache_creation_input_tokens": 200,
            "cache_read_input_tokens": 1000,
        },
    }
    cache.put_request(request, data)
    assert cache.get_request(request) is not None
    assert cache.fleet_stats().tokens_saved == 1245


def test_langchain_generations_are_counted_by_kind_and_priced(make_cache: Any) -> None:
    from langchain_core.messages import AIMessage
    from langchain_core.outputs import ChatGeneration

    from fleetcache.integrations.langchain import FleetLangChainCache, LangChainGenerations

    cache = make_cache(response_model=LangChainGenerations, prices={"lc-model": (1.0, 2.0)})
    lc = FleetLangChainCache(cache=cache)
    usage: Any = {
        "input_tokens": 100,
        "output_tokens": 20,
        "total_tokens": 120,
        "input_token_details": {"cache_read": 30},
    }
    gens = [ChatGeneration(message=AIMessage(content="hi", usage_metadata=usage))]
    llm = "{'model_name': 'lc-model', 'temperature': 0}"
    lc.update("prompt", llm, gens)
    assert lc.lookup("prompt", llm) == gens
    fs = cache.fleet_stats()
    assert (fs.input_tokens_saved, fs.cache_read_tokens_saved, fs.output_tokens_saved) == (
        70,
        30,
        20,
    )
    assert fs.tokens_saved == 120
    assert fs.by_model["lc-model"].cost_saved_nanousd == 70 * 1000 + 30 * 1000 + 20 * 2000
