"""What a hit through the caching HTTP transport saves, and what it says about itself, under
the real OpenAI and Anthropic SDKs on a real server with a fake upstream
(``tests/support/http_fakes.py``).

What it proves: an answer is priced by the model the request asked for (the answer's own,
dated, model name only as a fallback); every hit adds exactly its entry's tokens by kind,
cost and the upstream round trip the transport measured (a stream until it ended), fleet-wide
and per model; a streamed miss whose caller did not ask for usage is stored with it; the
per-input embeddings entries split their request's usage so that they sum to it;
``cache_info`` works on every object the SDK builds from a hit or a miss, per object, across
threads and tasks; copies of a cached client stay cached.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import httpx2
import pytest

from fleetcache import AsyncRedisExactCache, RedisExactCache, cache_info
from fleetcache.integrations import anthropic as fc_anthropic
from fleetcache.integrations import openai as fc_openai
from fleetcache.integrations.http import control_headers

from ..support.http_fakes import Upstream

openai = pytest.importorskip("openai")
anthropic = pytest.importorskip("anthropic")

pytestmark = pytest.mark.backends("redis")

MSGS = [{"role": "user", "content": "Which city is the capital of France?"}]
#: USD per million tokens (input, output): 1,000 in + 500 out = $0.0075
PRICES = {"gpt-4o-mini": (2.5, 10.0)}
COST_NANO = 7_500_000
BIG = {"prompt_tokens": 1000, "completion_tokens": 500, "total_tokens": 1500}


def oai(up: Upstream, cache: Any) -> Any:
    client = openai.OpenAI(
        api_key="sk-secret-openai",
        http_client=httpx2.Client(transport=up.mock(httpx2)),
        max_retries=0,
    )
    return fc_openai.cached(client, cache)


def aoai(up: Upstream, cache: Any) -> Any:
    client = openai.AsyncOpenAI(
        api_key="sk-secret-openai",
        http_client=httpx2.AsyncClient(transport=up.mock(httpx2, is_async=True)),
        max_retries=0,
    )
    return fc_openai.cached(client, cache)


def anth(up: Upstream, cache: Any) -> Any:
    client = anthropic.Anthropic(
        api_key="sk-ant-secret",
        http_client=httpx2.Client(transport=up.mock(httpx2)),
        max_retries=0,
    )
    return fc_anthropic.cached(client, cache)


def chat(client: Any, content: str = MSGS[0]["content"], **kw: Any) -> Any:
    messages = [{"role": "user", "content": content}]
    return client.chat.completions.create(model="gpt-4o-mini", messages=messages, **kw)


def _assert_three_priced_hits(cache: RedisExactCache) -> None:
    fs = cache.fleet_stats()
    assert fs.hits == 3
    assert fs.cost_saved_nanousd == 3 * COST_NANO
    assert (fs.input_tokens_saved, fs.output_tokens_saved, fs.tokens_saved) == (3000, 1500, 4500)
    assert fs.unpriced_hits == 0
    m = fs.by_model["gpt-4o-mini"]
    assert (m.hits, m.input_tokens_saved, m.output_tokens_saved) == (3, 3000, 1500)
    assert m.cost_saved_nanousd == 3 * COST_NANO and m.unpriced_hits == 0


# -- savings ---------------------------------------------------------------------------------


def test_a_priced_chat_answer_hit_three_times_saves_three_times_its_cost(
    make_cache: Callable[..., RedisExactCache],
) -> None:
    """The answer names a dated snapshot that has no price: it is priced by the model the
    request asked for; each hit also saves the measured upstream round trip (>= 80 ms)."""
    cache = make_cache(prices=PRICES)
    up = Upstream(chat_usage=BIG, answer_model="gpt-4o-mini-2024-07-18", delay=0.08)
    client = oai(up, cache)
    for _ in range(4):
        chat(client)
    assert up.calls == 1
    _assert_three_priced_hits(cache)
    fs = cache.fleet_stats()
    assert fs.ms_saved >= 3 * 80
    assert fs.by_model["gpt-4o-mini"].ms_saved == fs.ms_saved


def test_a_no_cache_miss_records_the_upstream_time_too(
    make_cache: Callable[..., RedisExactCache],
) -> None:
    """A write without single-flight (``no-cache``: read skipped, answer stored) records
    the round trip it measured."""
    cache = make_cache(prices=PRICES)
    up = Upstream(chat_usage=BIG, delay=0.08)
    client = oai(up, cache)
    chat(client, extra_headers=control_headers(control="no-cache"))
    for _ in range(3):
        chat(client)
    assert up.calls == 1
    _assert_three_priced_hits(cache)
    assert cache.fleet_stats().ms_saved >= 3 * 80


def test_a_streamed_miss_without_include_usage_is_stored_with_usage_cost_and_time(
    make_cache: Callable[..., RedisExactCache],
) -> None:
    """The caller streams without asking for usage; the transport asks upstream, stores it,
    and the stream's duration until its end; later hits (streamed or not) count it all."""
    cache = make_cache(prices=PRICES)
    up = Upstream(chat_usage=BIG, frame_delay=0.01)
    client = oai(up, cache)
    chunks = list(chat(client, stream=True))
    assert all(ch.usage is None for ch in chunks)
    assert up.bodies[0]["stream_options"] == {"include_usage": True}
    n_events = len(chunks)
    chat(client)
    list(chat(client, stream=True))
    chat(client)
    assert up.calls == 1
    _assert_three_priced_hits(cache)
    # every event after the first waited 10 ms upstream
    assert cache.fleet_stats().ms_saved >= 3 * 10 * (n_events - 1)


def test_anthropic_cache_read_and_write_tokens_are_counted_and_priced(
    make_cache: Callable[..., RedisExactCache],
) -> None:
    prices = {"claude-x": (3.0, 15.0, 0.3, 3.75)}
    cache = make_cache(prices=prices)
    usage = {
        "input_tokens": 1000,
        "output_tokens": 500,
        "cache_creation_input_tokens": 200,
        "cache_read_input_tokens": 1000,
    }
    up = Upstream(message_usage=usage, answer_model="claude-x-20250101")
    client = anth(up, cache)
    for _ in range(4):
        client.messages.create(model="claude-x", max_tokens=64, messages=MSGS)
    assert up.calls == 1
    fs = cache.fleet_stats()
    # $ per answer: 1000*3 + 500*15 + 1000*0.3 + 200*3.75 per million = $0.01155
    cost = 11_550_000
    assert fs.hits == 3 and fs.cost_saved_nanousd == 3 * cost
    assert (fs.input_tokens_saved, fs.output_tokens_saved) == (3000, 1500)
    assert (fs.cache_read_tokens_saved, fs.cache_write_tokens_saved) == (3000, 600)
    assert fs.tokens_saved == 3 * 2700
    m = fs.by_model["claude-x"]
    assert m.cost_saved_nanousd == 3 * cost and m.cache_read_tokens_saved == 3000


def test_per_input_embeddings_entries_split_the_usage_so_it_sums_to_the_request(
    make_cache: Callable[..., RedisExactCache],
) -> None:
    """Inputs of 1, 3 and 6 characters that cost 7 tokens together record shares in
    proportion to their length (1, 2, 4), so hits on all three save exactly 7."""
    cache = make_cache(prices={"text-embedding-3-small": (0.02, 0.0)})
    up = Upstream(embed_tokens=7, delay=0.05)
    client = oai(up, cache)
    inputs = ["a", "bbb", "cccccc"]

    def embed(words: list[str]) -> Any:
        return client.embeddings.create(
            model="text-embedding-3-small", input=words, encoding_format="float"
        )

    embed(inputs)
    again = embed(inputs[::-1])
    assert up.calls == 1 and again.usage.prompt_tokens == 0
    fs = cache.fleet_stats()
    assert fs.hits == 3 and fs.input_tokens_saved == 7
    assert fs.cost_saved_nanousd == 7 * 20  # $0.02 per million tokens: 20 nano-$ a token
    assert 45 <= fs.ms_saved  # the three shares add up to the one round trip
    # a one-input request is answered by its input's entry, which says its share
    assert [embed([w]).usage.prompt_tokens for w in inputs] == [1, 2, 4]
    assert cache.fleet_stats().input_tokens_saved == 14


# -- cache_info on SDK objects -----------------------------------------------------------------


def test_cache_info_on_sdk_objects_from_misses_and_hits(
    make_cache: Callable[..., RedisExactCache],
) -> None:
    cache, up = make_cache(), Upstream()
    client = oai(up, cache)
    assert isinstance(client, openai.OpenAI) and type(client).__name__ == "OpenAI"
    miss, hit = chat(client), chat(client)
    mi, hi = cache_info(miss), cache_info(hit)
    assert mi is not None and hi is not None
    assert (mi.hit, mi.age_seconds) == (False, None)
    assert hi.hit is True and hi.age_seconds is not None and hi.age_seconds >= 0
    assert mi.digest == hi.digest and len(mi.digest) == 32
    # streams: the Stream object itself
    s_miss = chat(client, "a streamed question", stream=True)
    list(s_miss)
    s_hit = chat(client, "a streamed question", stream=True)
    assert cache_info(s_miss).hit is False  # type: ignore[union-attr]
    assert cache_info(s_hit).hit is True  # type: ignore[union-attr]
    list(s_hit)
    # with_raw_response: the wrapper, its http response and what parse() builds
    raw = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MSGS)
    assert cache_info(raw).hit is True  # type: ignore[union-attr]
    assert cache_info(raw.http_response).hit is True  # type: ignore[union-attr]
    assert cache_info(raw.parse()) == cache_info(raw)
    # chat.completions.parse builds its object after the SDK's own post-parser
    parsed = client.chat.completions.parse(model="gpt-4o-mini", messages=MSGS)
    assert cache_info(parsed).hit is True  # type: ignore[union-attr]
    # Anthropic
    a = anth(up, cache)
    assert isinstance(a, anthropic.Anthropic)
    m1 = a.messages.create(model="claude-sonnet-4-5", max_tokens=64, messages=MSGS)
    m2 = a.messages.create(model="claude-sonnet-4-5", max_tokens=64, messages=MSGS)
    assert cache_info(m1).hit is False and cache_info(m2).hit is True  # type: ignore[union-attr]


def test_cache_info_is_per_object_across_threads(
    make_cache: Callable[..., RedisExactCache],
) -> None:
    """Eight threads share one client, each asking its own question twice: each object
    says its own hit/miss and digest."""
    cache, up = make_cache(), Upstream()
    client = oai(up, cache)
    out: dict[int, tuple[Any, Any]] = {}
    go = threading.Barrier(8)

    def work(i: int) -> None:
        go.wait()
        first = chat(client, f"question {i}")
        second = chat(client, f"question {i}")
        out[i] = (cache_info(first), cache_info(second))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    digests = set()
    for first, second in out.values():
        assert first.hit is False and second.hit is True
        assert first.digest == second.digest
        digests.add(first.digest)
    assert len(digests) == 8 and up.calls == 8


async def test_cache_info_is_per_object_across_tasks(
    make_async_cache: Callable[..., AsyncRedisExactCache],
) -> None:
    cache, up = make_async_cache(), Upstream()
    client = aoai(up, cache)
    assert isinstance(client, openai.AsyncOpenAI)

    async def ask(i: int) -> tuple[Any, Any]:
        messages = [{"role": "user", "content": f"question {i}"}]
        first = await client.chat.completions.create(model="gpt-4o-mini", messages=messages)
        second = await client.chat.completions.create(model="gpt-4o-mini", messages=messages)
        return cache_info(first), cache_info(second)

    got = await asyncio.gather(*(ask(i) for i in range(6)))
    assert all(f.hit is False and s.hit is True and f.digest == s.digest for f, s in got)
    assert len({f.digest for f, _ in got}) == 6


def test_copies_of_a_cached_client_stay_cached_and_keep_cache_info(
    make_cache: Callable[..., RedisExactCache],
) -> None:
    cache, up = make_cache(), Upstream()
    client = oai(up, cache)
    chat(client)
    for copy in (client.with_options(timeout=5.0), client.copy(max_retries=1)):
        assert isinstance(copy, openai.OpenAI)
        hit = chat(copy)
        assert cache_info(hit).hit is True  # type: ignore[union-attr]
    assert up.calls == 1
    a = anth(up, cache)
    a.messages.create(model="claude-sonnet-4-5", max_tokens=64, messages=MSGS)
    b = a.with_options(timeout=5.0)
    assert isinstance(b, anthropic.Anthropic)
    m = b.messages.create(model="claude-sonnet-4-5", max_tokens=64, messages=MSGS)
    assert cache_info(m).hit is True and up.calls == 2  # type: ignore[union-attr]


def test_control_headers_helper_sets_control_and_ttl_per_call(
    make_cache: Callable[..., RedisExactCache],
) -> None:
    cache, up = make_cache(), Upstream()
    client = oai(up, cache)
    assert control_headers(control="no-store", ttl=60) == {
        "x-fleetcache-control": "no-store",
        "x-fleetcache-ttl": "60",
    }
    chat(client, extra_headers=control_headers(control="no-store"))
    chat(client, extra_headers=control_headers(ttl=60))
    assert up.calls == 2  # the no-store answer was not stored; the second one was
    assert cache_info(chat(client)).hit is True  # type: ignore[union-attr]
    assert up.calls == 2
    assert all("x-fleetcache-ttl" not in r.headers for r in up.requests)
    with pytest.raises(ValueError):
        control_headers(control="sometimes")
    with pytest.raises(ValueError):
        control_headers(ttl=0)


def test_a_google_answer_is_priced_by_the_model_in_its_path(
    make_cache: Callable[..., RedisExactCache],
) -> None:
    """Gemini requests name their model only in the path (``models/{m}:generateContent``)
    and the answer says ``modelVersion``: the path's model prices it."""
    genai = pytest.importorskip("google.genai")
    from fleetcache.integrations import google as fc_google

    up = Upstream()
    options = genai.types.HttpOptions(httpx_client=httpx2.Client(transport=up.mock(httpx2)))
    cache = make_cache(prices={"gemini-priced": (1.0, 2.0)})
    client = fc_google.cached(genai.Client(api_key="goog-secret", http_options=options), cache)
    for _ in range(3):
        client.models.generate_content(model="gemini-priced", contents="hi")
    assert up.calls == 1
    fs = cache.fleet_stats()
    # 3 prompt tokens at $1/M + 4 answer tokens at $2/M = 11,000 nano-$ an answer
    assert fs.hits == 2 and fs.cost_saved_nanousd == 2 * 11_000 and fs.unpriced_hits == 0
    assert fs.by_model["gemini-priced"].cost_saved_nanousd == 2 * 11_000


async def test_an_async_streamed_miss_records_its_duration_and_usage(
    make_async_cache: Callable[..., AsyncRedisExactCache],
) -> None:
    cache = make_async_cache(prices=PRICES)
    up = Upstream(chat_usage=BIG, frame_delay=0.01)
    client = aoai(up, cache)
    stream = await client.chat.completions.create(model="gpt-4o-mini", messages=MSGS, stream=True)
    events = [c async for c in stream]
    assert cache_info(stream).hit is False  # type: ignore[union-attr]
    for _ in range(3):
        hit = await client.chat.completions.create(model="gpt-4o-mini", messages=MSGS)
        assert cache_info(hit).hit is True  # type: ignore[union-attr]
    assert up.calls == 1
    fs = await cache.fleet_stats()
    assert fs.cost_saved_nanousd == 3 * COST_NANO
    assert (fs.input_tokens_saved, fs.output_tokens_saved) == (3000, 1500)
    assert fs.ms_saved >= 3 * 10 * (len(events) - 1)
