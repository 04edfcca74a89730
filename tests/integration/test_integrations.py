"""Framework integrations, each with the real library: ractogateway's developer kit with a
stubbed provider adapter (no network), and LangChain's BaseCache with its fake LLM."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

from fleetcache import AsyncRedisExactCache, RedisExactCache

if TYPE_CHECKING:
    from ..conftest import Backend

# -- ractogateway -----------------------------------------------------------------------------


def _kit(cache: RedisExactCache) -> tuple[Any, list[str]]:
    """An OpenAI developer kit whose provider adapter is a stub that counts its calls."""
    rg = pytest.importorskip("ractogateway")
    from ractogateway import openai_developer_kit as gpt
    from ractogateway.adapters.openai_kit import OpenAILLMKit
    from ractogateway.prompts.engine import RactoPrompt

    calls: list[str] = []

    class StubAdapter(OpenAILLMKit):  # the seam: the kit's per-model adapter pool
        def run(self, prompt: Any, user_message: str, **kw: Any) -> Any:
            calls.append(user_message)
            return gpt.LLMResponse(
                content=f"echo: {user_message}",
                usage={"prompt_tokens": 11, "completion_tokens": 31, "total_tokens": 42},
            )

    prompt = RactoPrompt(
        role="You are a test assistant.",
        aim="Answer the question.",
        constraints=["Be brief."],
        tone="Plain",
        output_format="text",
    )
    kit = gpt.OpenAIDeveloperKit(
        model="gpt-4o",
        exact_cache=cache,  # type: ignore[arg-type]  # duck-typed drop-in, not a subclass
        default_prompt=prompt,
    )
    kit._adapters["gpt-4o"] = StubAdapter(model="gpt-4o", api_key="not-used")
    assert rg is not None
    return kit, calls


def test_ractogateway_kit_second_chat_from_cache(
    make_cache: Callable[..., RedisExactCache],
) -> None:
    from ractogateway import openai_developer_kit as gpt

    cache = make_cache()
    kit, calls = _kit(cache)
    first = kit.chat(gpt.ChatConfig(user_message="What is Redis?"))
    assert calls == ["What is Redis?"]
    before = cache.fleet_stats()
    second = kit.chat(gpt.ChatConfig(user_message="What is Redis?"))
    assert calls == ["What is Redis?"]  # no second provider call
    assert second.content == first.content == "echo: What is Redis?"
    after = cache.fleet_stats()
    assert after.hits == before.hits + 1
    assert after.tokens_saved == before.tokens_saved + 42
    assert after.by_model["gpt-4o"].hits == 1


def test_ractogateway_response_model_is_its_own_llmresponse(
    make_cache: Callable[..., RedisExactCache],
) -> None:
    from ractogateway import openai_developer_kit as gpt

    cache = make_cache(response_model=gpt.LLMResponse)
    kit, calls = _kit(cache)
    kit.chat(gpt.ChatConfig(user_message="hi", temperature=0.3, max_tokens=100))
    got = kit.chat(gpt.ChatConfig(user_message="hi", temperature=0.3, max_tokens=100))
    assert type(got) is gpt.LLMResponse
    assert len(calls) == 1
    assert type(cache.get("hi", kit._default_prompt.compile(), "gpt-4o", 0.3, 100)) is (
        gpt.LLMResponse
    )


# -- LangChain --------------------------------------------------------------------------------


@pytest.fixture
def lc_cache(backend: Backend, prefix: str) -> Iterator[Any]:
    pytest.importorskip("langchain_core")
    from fleetcache.integrations.langchain import FleetLangChainCache

    c = FleetLangChainCache(url=backend.url, key_prefix=prefix, **backend.cache_defaults)
    yield c
    assert c.cache is not None
    c.cache.close()


def _counting_llm() -> tuple[Any, list[str]]:
    from langchain_core.language_models.fake import FakeListLLM

    seen: list[str] = []

    class CountingFakeLLM(FakeListLLM):
        def _call(self, prompt: str, *args: Any, **kwargs: Any) -> str:
            seen.append(prompt)
            return super()._call(prompt, *args, **kwargs)

    return CountingFakeLLM(responses=["first answer", "second answer"]), seen


def test_langchain_second_call_from_cache(lc_cache: Any) -> None:
    from langchain_core.globals import set_llm_cache

    llm, seen = _counting_llm()
    set_llm_cache(lc_cache)
    try:
        assert llm.invoke("tell me a joke") == "first answer"
        assert llm.invoke("tell me a joke") == "first answer"  # served from the cache
        assert seen == ["tell me a joke"]
        assert llm.invoke("another") == "second answer"
    finally:
        set_llm_cache(None)
    fs = lc_cache.cache.fleet_stats()
    assert (fs.hits, fs.misses, fs.size) == (1, 2, 2)
    assert "fake-list" in fs.by_model


async def test_langchain_async_and_chat_generations(
    backend: Backend, prefix: str, make_async_cache: Callable[..., AsyncRedisExactCache]
) -> None:
    pytest.importorskip("langchain_core")
    from langchain_core.messages import AIMessage
    from langchain_core.outputs import ChatGeneration, Generation

    from fleetcache.integrations.langchain import FleetLangChainCache, LangChainGenerations

    ac = make_async_cache(response_model=LangChainGenerations)
    cache = FleetLangChainCache(async_cache=ac)
    gens = [
        ChatGeneration(
            message=AIMessage(
                content="hello",
                usage_metadata={"input_tokens": 3, "output_tokens": 4, "total_tokens": 7},
            )
        ),
        Generation(text="plain", generation_info={"finish_reason": "stop"}),
    ]
    assert await cache.alookup("p", "llm-a") is None
    await cache.aupdate("p", "llm-a", gens)
    got = await cache.alookup("p", "llm-a")
    assert got == gens and type(got[0]) is ChatGeneration
    assert await cache.alookup("p", "llm-b") is None  # the llm_string is part of the key
    fs = await ac.fleet_stats()
    assert fs.tokens_saved == 7
    await cache.aclear()
    assert await cache.alookup("p", "llm-a") is None


def test_langchain_key_is_unambiguous(lc_cache: Any) -> None:
    from langchain_core.outputs import Generation

    lc_cache.update("a", "b:c", [Generation(text="1")])
    assert lc_cache.lookup("a:b", "c") is None
    assert lc_cache.lookup("a", "b:c") == [Generation(text="1")]
    lc_cache.clear()
    assert lc_cache.lookup("a", "b:c") is None


def test_langchain_cache_needs_its_response_model(
    make_cache: Callable[..., RedisExactCache],
) -> None:
    pytest.importorskip("langchain_core")
    from fleetcache.integrations.langchain import FleetLangChainCache

    with pytest.raises(ValueError, match="LangChainGenerations"):
        FleetLangChainCache(make_cache())


def test_langchain_hit_builds_only_allowed_classes(lc_cache: Any) -> None:
    """An entry whose JSON names a class outside the generation/message allow-list (here a
    core ``PromptTemplate``, which langchain_core's own "core" set would build) is a miss."""
    pytest.importorskip("langchain_core")
    from langchain_core.load import dumps
    from langchain_core.outputs import Generation
    from langchain_core.prompts import PromptTemplate

    from fleetcache.integrations.langchain import LangChainGenerations

    fields = lc_cache._fields("p", "llm-x")
    bad = LangChainGenerations.model_construct(
        generations=[dumps(PromptTemplate.from_template("hi {x}"))]
    )
    lc_cache.cache.put(*fields, bad)
    assert lc_cache.lookup("p", "llm-x") is None
    with pytest.raises(ValueError, match="allow-list"):
        LangChainGenerations(generations=bad.generations)
    good = LangChainGenerations(generations=[dumps(Generation(text="ok"))])
    lc_cache.cache.put(*fields, good)
    assert lc_cache.lookup("p", "llm-x") == [Generation(text="ok")]


def _unloadable(kind: str) -> Any:
    """A stored LangChain value (500 tokens of usage) whose generations do not load here."""
    from langchain_core.load import dumps
    from langchain_core.prompts import PromptTemplate

    from fleetcache.integrations.langchain import LangChainGenerations

    text = {
        "outside the allow-list": dumps(PromptTemplate.from_template("hi {x}")),
        "not JSON": "{not json",
        "unknown class": '{"lc": 1, "type": "constructor", "id": ["x", "Y"], "kwargs": {}}',
    }[kind]
    return LangChainGenerations.model_construct(generations=[text], usage={"total_tokens": 500})


UNLOADABLE = ["outside the allow-list", "not JSON", "unknown class"]


@pytest.mark.parametrize("kind", UNLOADABLE)
def test_langchain_entry_that_does_not_load_counts_a_miss_not_a_hit(
    lc_cache: Any, kind: str
) -> None:
    """An entry lookup() cannot load returns None (LangChain calls the model): the fleet
    counts a miss, no hit and no tokens saved; the entry is kept (counted rejected) for
    processes that can load it, and the next update replaces it."""
    from langchain_core.outputs import Generation

    fields = lc_cache._fields("p", "llm-x")
    lc_cache.cache.put(*fields, _unloadable(kind))
    assert lc_cache.lookup("p", "llm-x") is None
    fs = lc_cache.cache.fleet_stats()
    assert (fs.hits, fs.misses, fs.tokens_saved) == (0, 1, 0)
    assert (fs.rejected, fs.corrupt, fs.size) == (1, 0, 1)
    lc_cache.update("p", "llm-x", [Generation(text="ok")])
    assert lc_cache.lookup("p", "llm-x") == [Generation(text="ok")]
    fs = lc_cache.cache.fleet_stats()
    assert (fs.hits, fs.misses, fs.tokens_saved) == (1, 1, 0)


@pytest.mark.parametrize("kind", UNLOADABLE)
async def test_langchain_async_entry_that_does_not_load_counts_a_miss_not_a_hit(
    make_async_cache: Callable[..., AsyncRedisExactCache], kind: str
) -> None:
    pytest.importorskip("langchain_core")
    from fleetcache.integrations.langchain import FleetLangChainCache, LangChainGenerations

    ac = make_async_cache(response_model=LangChainGenerations)
    cache = FleetLangChainCache(async_cache=ac)
    await ac.put(*cache._fields("p", "llm-x"), _unloadable(kind))
    assert await cache.alookup("p", "llm-x") is None
    fs = await ac.fleet_stats()
    assert (fs.hits, fs.misses, fs.tokens_saved, fs.rejected) == (0, 1, 0, 1)


async def test_langchain_url_keywords_with_an_async_cache(
    backend: Backend, prefix: str, make_async_cache: Callable[..., AsyncRedisExactCache]
) -> None:
    """``FleetLangChainCache(url=..., async_cache=...)``: the sync cache is built from the
    keywords on the async cache's namespace; both read and count the same entries. A
    different namespace is a ValueError."""
    pytest.importorskip("langchain_core")
    from langchain_core.outputs import Generation

    from fleetcache.integrations.langchain import FleetLangChainCache, LangChainGenerations

    ac = make_async_cache(response_model=LangChainGenerations)
    cache = FleetLangChainCache(url=backend.url, async_cache=ac, ttl_seconds=60)
    assert cache.cache is not None and cache.async_cache is ac
    try:
        assert (cache.cache.key_prefix, cache.cache.shards) == (ac.key_prefix, ac.shards)
        assert cache.cache.ttl_seconds == 60
        cache.update("p", "llm", [Generation(text="from sync")])
        assert await cache.alookup("p", "llm") == [Generation(text="from sync")]
        await cache.aupdate("q", "llm", [Generation(text="from async")])
        assert cache.lookup("q", "llm") == [Generation(text="from async")]
        fs = await ac.fleet_stats()
        assert (fs.hits, fs.puts, fs.size) == (2, 2, 2)
    finally:
        cache.cache.close()
    with pytest.raises(ValueError, match="one namespace"):
        FleetLangChainCache(url=backend.url, key_prefix=prefix + ":other", async_cache=ac)
    other = make_async_cache(response_model=LangChainGenerations, key_prefix=prefix + ":b")
    with pytest.raises(ValueError, match="one namespace"):
        FleetLangChainCache(cache.cache, async_cache=other)
