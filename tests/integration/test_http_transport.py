"""The caching HTTP transport under the real OpenAI, Anthropic and google-genai SDKs, on a
real server, with a fake upstream (``tests/support/http_fakes.py``) that counts calls and
writes who answered into every answer.

What it proves: requests that differ in where they go or in an answer-changing header are
never answered from each other's entries (every case is a miss and each caller gets its own
upstream's text); every SDK call that goes to a cacheable endpoint is a hit on its second
call, sync and async, streamed where it streams; a hit looks like a miss to the SDK
(``_request_id``, ``usage``, ``with_raw_response``, the class); a streamed miss reaches the
caller event by event and is stored only when it ended normally; the control headers; a
failing store rule; non-2xx answers; single-flight; a stopped server.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import httpx
import httpx2
import pytest

from fleetcache import AsyncRedisExactCache, RedisExactCache
from fleetcache.integrations import anthropic as fc_anthropic
from fleetcache.integrations import openai as fc_openai
from fleetcache.integrations.http import transport

from ..support.http_fakes import Upstream

openai = pytest.importorskip("openai")
anthropic = pytest.importorskip("anthropic")

pytestmark = pytest.mark.backends("redis")

MSGS = [{"role": "user", "content": "Which city is the capital of France?"}]
AZURE_VERSION = "2024-06-01"


def oai(up: Upstream, cache: Any, **kw: Any) -> Any:
    client = openai.OpenAI(
        api_key="sk-secret-openai",
        http_client=httpx2.Client(transport=up.mock(httpx2)),
        max_retries=0,
        **kw,
    )
    return fc_openai.cached(client, cache)


def aoai(up: Upstream, cache: Any, **kw: Any) -> Any:
    client = openai.AsyncOpenAI(
        api_key="sk-secret-openai",
        http_client=httpx2.AsyncClient(transport=up.mock(httpx2, is_async=True)),
        max_retries=0,
        **kw,
    )
    return fc_openai.cached(client, cache)


def azure(up: Upstream, cache: Any, endpoint: str, deployment: str) -> Any:
    client = openai.AzureOpenAI(
        api_key="azure-secret",
        api_version=AZURE_VERSION,
        azure_endpoint=endpoint,
        azure_deployment=deployment,
        http_client=httpx2.Client(transport=up.mock(httpx2)),
        max_retries=0,
    )
    return fc_openai.cached(client, cache)


def anth(up: Upstream, cache: Any, **kw: Any) -> Any:
    client = anthropic.Anthropic(
        api_key="sk-ant-secret",
        http_client=httpx2.Client(transport=up.mock(httpx2)),
        max_retries=0,
        **kw,
    )
    return fc_anthropic.cached(client, cache)


def aanth(up: Upstream, cache: Any, **kw: Any) -> Any:
    client = anthropic.AsyncAnthropic(
        api_key="sk-ant-secret",
        http_client=httpx2.AsyncClient(transport=up.mock(httpx2, is_async=True)),
        max_retries=0,
        **kw,
    )
    return fc_anthropic.cached(client, cache)


def chat(client: Any, **kw: Any) -> Any:
    return client.chat.completions.create(model="gpt-4o-mini", messages=MSGS, **kw)


def msg(client: Any, **kw: Any) -> Any:
    return client.messages.create(model="claude-sonnet-4-5", max_tokens=64, messages=MSGS, **kw)


# -- wrong answers become misses ---------------------------------------------------------


def test_two_base_urls_never_share_an_entry(make_cache: Callable[..., RedisExactCache]) -> None:
    cache, up = make_cache(), Upstream()
    a = oai(up, cache, base_url="http://vllm-a:8000/v1")
    b = oai(up, cache, base_url="http://vllm-b:8000/v1")
    ra, rb = chat(a), chat(b)
    assert up.calls == 2
    assert "vllm-a" in ra.choices[0].message.content
    assert "vllm-b" in rb.choices[0].message.content
    # with_options(base_url=...) of a cached client is cached, and keyed on its new URL
    c = a.with_options(base_url="http://gateway:9000/v1")
    assert "gateway" in chat(c).choices[0].message.content
    assert up.calls == 3
    assert "vllm-a" in chat(a).choices[0].message.content
    assert up.calls == 3  # a hit on A's own entry


def test_azure_deployment_resource_and_openai_are_four_entries(
    make_cache: Callable[..., RedisExactCache],
) -> None:
    cache, up = make_cache(), Upstream()
    clients = [
        azure(up, cache, "https://eastus.openai.azure.com", "X"),
        azure(up, cache, "https://eastus.openai.azure.com", "Y"),
        azure(up, cache, "https://westeurope.openai.azure.com", "X"),
        oai(up, cache),
    ]
    texts = [chat(c).choices[0].message.content for c in clients]
    assert up.calls == 4
    assert "eastus" in texts[0] and "/deployments/X/" in texts[0]
    assert "/deployments/Y/" in texts[1]
    assert "westeurope" in texts[2]
    assert "api.openai.com" in texts[3]
    assert [chat(c).choices[0].message.content for c in clients] == texts
    assert up.calls == 4
    assert all(r.url.params["api-version"] == AZURE_VERSION for r in up.requests[:3])


def test_routing_and_beta_headers_are_keyed(make_cache: Callable[..., RedisExactCache]) -> None:
    cache, up = make_cache(), Upstream()
    gw = "http://portkey:8787/v1"
    to_openai = oai(up, cache, base_url=gw, default_headers={"x-portkey-provider": "openai"})
    to_claude = oai(up, cache, base_url=gw, default_headers={"x-portkey-provider": "anthropic"})
    assert "route=openai" in chat(to_openai).choices[0].message.content
    assert "route=anthropic" in chat(to_claude).choices[0].message.content
    per_call = chat(to_openai, extra_headers={"x-portkey-provider": "mistral"})
    assert "route=mistral" in per_call.choices[0].message.content
    assert up.calls == 3
    a = anth(up, cache)
    plain = msg(a).content[0].text
    beta = msg(a, extra_headers={"anthropic-beta": "interleaved-thinking-2025-05-14"})
    assert "beta=-" in plain and "beta=interleaved" in beta.content[0].text
    assert up.calls == 5


def test_anthropic_base_urls_never_share_an_entry(
    make_cache: Callable[..., RedisExactCache],
) -> None:
    cache, up = make_cache(), Upstream()
    a = anth(up, cache, base_url="http://claude-a:1")
    b = anth(up, cache, base_url="http://claude-b:2")
    assert "claude-a" in msg(a).content[0].text
    assert "claude-b" in msg(b).content[0].text
    assert up.calls == 2


def test_credentials_do_not_change_the_key(make_cache: Callable[..., RedisExactCache]) -> None:
    cache, up = make_cache(), Upstream()
    one = openai.OpenAI(
        api_key="sk-one", http_client=httpx2.Client(transport=up.mock(httpx2)), max_retries=0
    )
    two = openai.OpenAI(
        api_key="sk-two", http_client=httpx2.Client(transport=up.mock(httpx2)), max_retries=0
    )
    chat(fc_openai.cached(one, cache))
    chat(fc_openai.cached(two, cache))
    assert up.calls == 1


# -- every pass-through call is now a hit on its second call ------------------------------


def _drain(stream: Any) -> list[Any]:
    return list(stream)


SYNC_CALLS: dict[str, Callable[[Any], Any]] = {
    "chat.create": lambda c: chat(c).choices[0].message.content,
    "chat.create stream": lambda c: "".join(
        ch.choices[0].delta.content or "" for ch in chat(c, stream=True) if ch.choices
    ),
    "chat.parse": lambda c: (
        c.chat.completions.parse(model="gpt-4o-mini", messages=MSGS).choices[0].message.content
    ),
    "chat.stream helper": lambda c: _stream_helper_text(c),
    "chat raw": lambda c: (
        c.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MSGS)
        .parse()
        .choices[0]
        .message.content
    ),
    "responses.create": lambda c: c.responses.create(model="gpt-4o-mini", input="hi").output_text,
    "responses.create stream": lambda c: "".join(
        e.delta
        for e in c.responses.create(model="gpt-4o-mini", input="hi", stream=True)
        if e.type == "response.output_text.delta"
    ),
    "responses.stream": lambda c: _responses_stream_text(c),
    "embeddings.create": lambda c: (
        c.embeddings.create(model="text-embedding-3-small", input=["a", "b"]).data[1].embedding
    ),
}


def _stream_helper_text(c: Any) -> str:
    with c.chat.completions.stream(model="gpt-4o-mini", messages=MSGS) as s:
        out: str = s.get_final_completion().choices[0].message.content
    return out


def _responses_stream_text(c: Any) -> str:
    with c.responses.stream(model="gpt-4o-mini", input="hi") as s:
        out: str = s.get_final_response().output_text
    return out


@pytest.mark.parametrize("name", list(SYNC_CALLS))
def test_openai_calls_are_hits_on_their_second_call(
    make_cache: Callable[..., RedisExactCache], name: str
) -> None:
    cache, up = make_cache(), Upstream()
    client = oai(up, cache)
    call = SYNC_CALLS[name]
    first = call(client)
    assert up.calls == 1
    assert call(client) == first
    assert up.calls == 1, name
    assert cache.fleet_stats().hits == (2 if name == "embeddings.create" else 1)  # per input


ANTHROPIC_CALLS: dict[str, Callable[[Any], Any]] = {
    "messages.create": lambda c: msg(c).content[0].text,
    "messages.create stream": lambda c: "".join(
        e.delta.text for e in msg(c, stream=True) if e.type == "content_block_delta"
    ),
    "messages.stream": lambda c: _anthropic_stream_text(c),
    "messages.parse": lambda c: (
        c.messages.parse(model="claude-sonnet-4-5", max_tokens=64, messages=MSGS).content[0].text
    ),
    "raw": lambda c: (
        c.messages.with_raw_response.create(model="claude-sonnet-4-5", max_tokens=64, messages=MSGS)
        .parse()
        .content[0]
        .text
    ),
}


def _anthropic_stream_text(c: Any) -> str:
    with c.messages.stream(model="claude-sonnet-4-5", max_tokens=64, messages=MSGS) as s:
        out: str = s.get_final_message().content[0].text
    return out


@pytest.mark.parametrize("name", list(ANTHROPIC_CALLS))
def test_anthropic_calls_are_hits_on_their_second_call(
    make_cache: Callable[..., RedisExactCache], name: str
) -> None:
    cache, up = make_cache(), Upstream()
    client = anth(up, cache)
    call = ANTHROPIC_CALLS[name]
    first = call(client)
    assert call(client) == first
    assert up.calls == 1, name


async def test_async_calls_are_hits_on_their_second_call(
    make_async_cache: Callable[..., AsyncRedisExactCache],
) -> None:
    cache, up = make_async_cache(), Upstream()
    o, a = aoai(up, cache), aanth(up, cache)
    for _ in range(2):
        r = await o.chat.completions.create(model="gpt-4o-mini", messages=MSGS)
        assert "api.openai.com" in r.choices[0].message.content
        s = await o.chat.completions.create(model="gpt-4o-mini", messages=MSGS, stream=True)
        text = "".join([ch.choices[0].delta.content or "" async for ch in s if ch.choices])
        assert text == r.choices[0].message.content
        rr = await o.responses.create(model="gpt-4o-mini", input="hi")
        assert "responses" in rr.output_text
        rs = await o.responses.create(model="gpt-4o-mini", input="hi", stream=True)
        assert [e.type async for e in rs][-1] == "response.completed"
        m = await a.messages.create(model="claude-sonnet-4-5", max_tokens=64, messages=MSGS)
        async with a.messages.stream(model="claude-sonnet-4-5", max_tokens=64, messages=MSGS) as ms:
            assert (await ms.get_final_message()).content[0].text == m.content[0].text
    # chat: one entry shared by the streamed and non-streamed call; responses likewise;
    # anthropic likewise
    assert up.calls == 3
    stats = await cache.fleet_stats()
    assert stats.misses == 3


# -- a hit looks like a miss ---------------------------------------------------------------


def test_request_id_usage_raw_response_and_class_are_the_same_on_a_hit(
    make_cache: Callable[..., RedisExactCache],
) -> None:
    cache, up = make_cache(), Upstream()
    client = oai(up, cache)
    assert isinstance(client, openai.OpenAI)
    raw_miss = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MSGS)
    raw_hit = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MSGS)
    assert raw_miss.headers["x-fleetcache"] == "miss"
    assert raw_hit.headers["x-fleetcache"] == "hit"
    assert int(raw_hit.headers["age"]) >= 0
    miss, hit = raw_miss.parse(), raw_hit.parse()
    assert miss._request_id == hit._request_id == "req_1"
    assert type(miss) is type(hit)
    assert hit.usage.total_tokens == miss.usage.total_tokens == 18
    assert hit.model_dump() == miss.model_dump()
    a = anth(up, cache)
    assert isinstance(a, anthropic.Anthropic)
    m1, m2 = msg(a), msg(a)
    assert m1._request_id == m2._request_id == "req_2"
    assert m2.usage.output_tokens == 9


def test_a_streamed_miss_without_include_usage_stores_usage_for_later_hits(
    make_cache: Callable[..., RedisExactCache],
) -> None:
    cache, up = make_cache(), Upstream()
    client = oai(up, cache)
    chunks = list(chat(client, stream=True))
    assert all(ch.usage is None for ch in chunks)  # the caller did not ask for it
    assert up.bodies[0]["stream_options"] == {"include_usage": True}
    hit = chat(client)
    assert up.calls == 1
    assert hit.usage.total_tokens == 18
    with_usage = list(chat(client, stream=True, stream_options={"include_usage": True}))
    assert with_usage[-1].usage.total_tokens == 18
    assert up.calls == 1


# -- streams -------------------------------------------------------------------------------


def test_a_streamed_miss_reaches_the_caller_event_by_event(
    make_cache: Callable[..., RedisExactCache],
) -> None:
    hold = threading.Event()
    cache, up = make_cache(), Upstream(hold=hold)
    client = oai(up, cache)
    stream = chat(client, stream=True)
    first = next(iter(stream))
    assert up.sent_first.is_set()
    assert not hold.is_set()  # the upstream is still holding the rest back
    assert first.choices[0].delta.role == "assistant" or first.choices[0].delta.content
    hold.set()
    list(stream)
    chat(client)
    assert up.calls == 1


@pytest.mark.parametrize("how", ["close", "network error"])
def test_a_stream_that_did_not_end_normally_is_not_stored(
    make_cache: Callable[..., RedisExactCache], how: str
) -> None:
    cache, up = make_cache(), Upstream()
    client = oai(up, cache)
    if how == "close":
        stream = chat(client, stream=True)
        next(iter(stream))
        stream.close()
    else:
        up.fail_after = 2
        # newer SDKs wrap the transport's error in APIConnectionError, openai 3.3 does not
        with pytest.raises((openai.APIConnectionError, httpx2.ReadError)):
            list(chat(client, stream=True))
        up.fail_after = None
    chat(client)
    assert up.calls == 2


# -- controls, store rules, errors ------------------------------------------------------


def test_control_and_ttl_headers_work_and_never_leave(
    make_cache: Callable[..., RedisExactCache],
) -> None:
    cache, up = make_cache(), Upstream()
    client = oai(up, cache)
    chat(client, extra_headers={"x-fleetcache-control": "no-store"})
    chat(client, extra_headers={"x-fleetcache-control": "bypass"})
    assert up.calls == 2 and cache.fleet_stats().puts == 0
    chat(client, extra_headers={"x-fleetcache-ttl": "0.3"})
    assert up.calls == 3
    chat(client)
    assert up.calls == 3
    chat(client, extra_headers={"x-fleetcache-control": "no-cache"})
    assert up.calls == 4
    for request in up.requests:
        assert not any(n.lower().startswith("x-fleetcache") for n in request.headers)
    threading.Event().wait(0.6)
    chat(client, extra_headers={"x-fleetcache-control": "no-store"})
    assert up.calls == 4  # the no-cache refresh had the cache's TTL (none)


def test_a_should_store_rule_that_raises_is_a_logged_skip(
    make_cache: Callable[..., RedisExactCache],
) -> None:
    cache, up = make_cache(), Upstream()

    def boom(endpoint: str, status: int, body: Any) -> bool:
        raise RuntimeError("rule broke")

    plain = openai.OpenAI(
        api_key="k", http_client=httpx2.Client(transport=up.mock(httpx2)), max_retries=0
    )
    client = fc_openai.cached(plain, cache, should_store=boom)
    assert "api.openai.com" in chat(client).choices[0].message.content
    assert "api.openai.com" in "".join(
        ch.choices[0].delta.content or "" for ch in chat(client, stream=True) if ch.choices
    )
    chat(client)
    assert up.calls == 3
    assert cache.fleet_stats().not_stored == 3


def test_non_2xx_answers_are_returned_and_not_stored(
    make_cache: Callable[..., RedisExactCache],
) -> None:
    cache, up = make_cache(), Upstream(status=429)
    client = oai(up, cache)
    for _ in range(2):
        with pytest.raises(openai.RateLimitError):
            chat(client)
    assert up.calls == 2
    assert cache.fleet_stats().puts == 0


def test_unknown_paths_and_gets_are_forwarded_untouched(
    make_cache: Callable[..., RedisExactCache],
) -> None:
    cache, up = make_cache(), Upstream()
    http = httpx2.Client(transport=transport(cache, up.mock(httpx2)))
    for _ in range(2):
        http.post("http://h/v1/moderations", json={"input": "x"})
        http.get("http://h/v1/models")
    assert up.calls == 4
    stats = cache.fleet_stats()
    assert stats.hits == stats.misses == 0
    # cacheable= adds a path
    http2 = httpx2.Client(
        transport=transport(cache, up.mock(httpx2), cacheable=lambda m, p: p == "/v1/moderations")
    )
    for _ in range(2):
        r = http2.post("http://h/v1/moderations", json={"input": "x"})
    assert up.calls == 5 and r.headers["x-fleetcache"] == "hit"


def test_single_flight_for_concurrent_identical_misses(
    make_cache: Callable[..., RedisExactCache],
) -> None:
    cache, up = make_cache(), Upstream(delay=0.3)
    client = oai(up, cache)
    out: list[str] = []
    threads = [
        threading.Thread(target=lambda: out.append(chat(client).choices[0].message.content))
        for _ in range(5)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(out) == 5 and len(set(out)) == 1
    assert up.calls == 1


def test_sync_and_async_mismatch_is_a_type_error(
    make_cache: Callable[..., RedisExactCache],
    make_async_cache: Callable[..., AsyncRedisExactCache],
) -> None:
    up = Upstream()
    with pytest.raises(TypeError):
        transport(make_cache(), httpx2.AsyncHTTPTransport())
    with pytest.raises(TypeError):
        transport(make_async_cache(), httpx2.HTTPTransport())
    with pytest.raises(TypeError):
        transport(object(), up.mock(httpx2))
    with pytest.raises(TypeError):
        aoai(up, make_cache())


def test_plain_httpx_clients_are_cached_too(make_cache: Callable[..., RedisExactCache]) -> None:
    cache, up = make_cache(), Upstream()
    http = httpx.Client(transport=transport(cache, up.mock(httpx)))
    body = {"model": "gpt-4o-mini", "messages": MSGS}
    first = http.post("http://h/v1/chat/completions", json=body)
    second = http.post("http://h/v1/chat/completions", json=body)
    assert isinstance(second, httpx.Response)
    assert first.headers["x-fleetcache"] == "miss" and second.headers["x-fleetcache"] == "hit"
    assert first.json() == second.json()
    assert second.headers["x-request-id"] == "req_1"
    assert up.calls == 1


def test_redis_down_still_answers(unused_redis_url: str) -> None:
    cache = RedisExactCache(url=unused_redis_url)
    up = Upstream()
    client = oai(up, cache)
    for _ in range(2):
        assert "api.openai.com" in chat(client).choices[0].message.content
        text = "".join(
            ch.choices[0].delta.content or "" for ch in chat(client, stream=True) if ch.choices
        )
        assert "api.openai.com" in text
    assert up.calls == 4
    cache.close()


async def test_redis_down_still_answers_async(unused_redis_url: str) -> None:
    cache = AsyncRedisExactCache(url=unused_redis_url)
    up = Upstream()
    client = aoai(up, cache)
    for _ in range(2):
        r = await client.chat.completions.create(model="gpt-4o-mini", messages=MSGS)
        assert "api.openai.com" in r.choices[0].message.content
        s = await client.chat.completions.create(model="gpt-4o-mini", messages=MSGS, stream=True)
        assert [ch async for ch in s]
    assert up.calls == 4
    await cache.aclose()


@pytest.fixture
def unused_redis_url() -> str:
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"redis://127.0.0.1:{port}/0"


# -- two processes ---------------------------------------------------------------------------


def _worker(url: str, prefix: str, mode: str) -> dict[str, Any]:
    import json
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-m", "tests.support.http_worker", url, prefix, mode],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def test_two_processes_share_entries(backend: Any, prefix: str) -> None:
    first = _worker(backend.url, prefix, "stream")
    second = _worker(backend.url, prefix, "plain")
    assert (first["calls"], first["status"]) == (1, "miss")
    assert (second["calls"], second["status"]) == (0, "hit")
    assert first["text"] == second["text"]


# -- embeddings, per input ----------------------------------------------------------------


def _vectors(result: Any) -> list[list[float]]:
    return [d.embedding for d in result.data]


@pytest.mark.parametrize("is_async", [False, True])
async def test_embeddings_send_only_the_missing_inputs(
    make_cache: Callable[..., RedisExactCache],
    make_async_cache: Callable[..., AsyncRedisExactCache],
    is_async: bool,
) -> None:
    up = Upstream()
    words = [f"word-{i}" for i in range(10)]
    cached_words = words[:7]
    if is_async:
        cache: Any = make_async_cache()
        client = aoai(up, cache)

        async def embed(inputs: list[str]) -> Any:
            return await client.embeddings.create(
                model="text-embedding-3-small", input=inputs, encoding_format="float"
            )

    else:
        cache = make_cache()
        client = oai(up, cache)

        async def embed(inputs: list[str]) -> Any:
            return client.embeddings.create(
                model="text-embedding-3-small", input=inputs, encoding_format="float"
            )

    await embed(cached_words)
    assert up.calls == 1
    order = [words[9], *cached_words[::-1], words[8], words[7]]
    result = await embed(order)
    assert up.calls == 2
    assert up.bodies[-1]["input"] == [words[9], words[8], words[7]]  # only the 3 missing
    assert [d.index for d in result.data] == list(range(10))
    who = "from api.openai.com:None/v1/embeddings route=- beta=-"
    from ..support.http_fakes import vector

    assert _vectors(result) == [vector(f"{who}|{w}") for w in order]
    assert result.usage.prompt_tokens == 6  # what was sent upstream: 3 inputs
    again = await embed(order)
    assert up.calls == 2
    assert _vectors(again) == _vectors(result)
    assert again.usage.prompt_tokens == 0
    single = await embed([words[3]])
    assert up.calls == 2 and _vectors(single) == [vector(f"{who}|{words[3]}")]
    stats = (await cache.fleet_stats()) if is_async else cache.fleet_stats()
    assert stats.misses == 7 + 3 and stats.hits == 7 + 10 + 1


# -- google-genai ------------------------------------------------------------------------------


@pytest.mark.parametrize("flavour", ["httpx2", "httpx"])
async def test_google_genai_sync_and_async_surfaces_are_cached(
    make_cache: Callable[..., RedisExactCache],
    make_async_cache: Callable[..., AsyncRedisExactCache],
    flavour: str,
) -> None:
    genai = pytest.importorskip("google.genai")
    from fleetcache.integrations import google as fc_google

    mod = httpx2 if flavour == "httpx2" else httpx
    up = Upstream()
    options = genai.types.HttpOptions(
        httpx_client=mod.Client(transport=up.mock(mod)),
        httpx_async_client=mod.AsyncClient(transport=up.mock(mod, is_async=True)),
    )
    client = genai.Client(api_key="goog-secret", http_options=options)
    cached_client = fc_google.cached(client, make_cache(), async_cache=make_async_cache())
    assert isinstance(cached_client, genai.Client)
    model = "gemini-2.0-flash"
    texts = [cached_client.models.generate_content(model=model, contents="hi").text]
    texts.append(cached_client.models.generate_content(model=model, contents="hi").text)
    assert up.calls == 1 and texts[0] == texts[1] and ":generateContent" in texts[0]
    streamed = [
        "".join(
            c.text or ""
            for c in cached_client.models.generate_content_stream(model=model, contents="hi")
        )
        for _ in range(2)
    ]
    assert up.calls == 2 and streamed[0] == streamed[1] and "streamGenerate" in streamed[0]
    emb = [
        cached_client.models.embed_content(model="text-embedding-004", contents="hi")
        for _ in range(2)
    ]
    assert up.calls == 3 and emb[0].embeddings[0].values == emb[1].embeddings[0].values
    for _ in range(2):
        r = await cached_client.aio.models.generate_content(model=model, contents="hi")
        assert r.text == texts[0]  # the async surface shares the sync surface's entry
    assert up.calls == 3
    assert all("goog-secret" not in str(r.url) for r in up.requests)
