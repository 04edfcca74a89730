"""Payloads and the response model contract, through both flavours: round
trips, unserialisable ``raw`` dropped and logged once, foreign models, oversize entries."""

from __future__ import annotations

import logging
from enum import Enum
from typing import Any

import pytest
from pydantic import BaseModel, Field

from fleetcache import EntryTooLargeError, FinishReason, LLMResponse, ToolCallResult

from ..support.flavors import CacheFactory, Flavor, req


def rich_response() -> LLMResponse:
    return LLMResponse(
        content="Grüße 😀 — \u0000 NUL, RTL \u202e, combining e\u0301, CJK 漢字",
        thinking="step 1 → step 2",
        parsed={"a": [1, 2.5, None, True, "ß"], "nested": {"x": {"y": [{}]}}, "big": 2**62},
        tool_calls=[
            ToolCallResult(id="call_1", name="lookup", arguments={"q": "weather", "n": 3}),
            ToolCallResult(name="noop", arguments={}),
        ],
        finish_reason=FinishReason.TOOL_CALL,
        usage={"prompt_tokens": 11, "completion_tokens": 22, "total_tokens": 33},
        raw={"id": "resp_1", "choices": [{"index": 0}], "float": 1.5},
    )


@pytest.mark.parametrize(
    "resp",
    [
        LLMResponse(),
        LLMResponse(content=""),
        LLMResponse(parsed=[1, "two", {"three": 3}]),
        LLMResponse(finish_reason=FinishReason.LENGTH, usage={"total_tokens": 0}),
        LLMResponse(content="x" * 200_000),  # compressed body
        LLMResponse(content="lone \ud800 surrogate"),
        rich_response(),
    ],
    ids=["empty", "empty-content", "parsed-list", "length", "large", "surrogate", "rich"],
)
async def test_round_trip(cache: Flavor, resp: LLMResponse) -> None:
    await cache.put(*req(1), resp)
    got = await cache.get(*req(1))
    assert type(got) is LLMResponse
    assert got == resp
    assert got.model_dump() == resp.model_dump()


class Opaque:
    """Not serialisable by pydantic."""


@pytest.mark.parametrize(
    "raw",
    [Opaque(), b"\xff\xfe", {"k": Opaque()}],
    ids=["object", "bad-bytes", "nested-object"],
)
async def test_unserialisable_raw_dropped_logged_once(
    cache: Flavor, raw: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="fleetcache")
    for i in range(3):
        await cache.put(*req(i), LLMResponse(content=f"c{i}", raw=raw))  # never raises
    for i in range(3):
        got = await cache.get(*req(i))
        assert got == LLMResponse(content=f"c{i}")  # everything but raw is kept
    dropped = [r for r in caplog.records if "raw" in r.getMessage()]
    assert len(dropped) == 1


async def test_unserialisable_raw_under_raise_policy(cache_factory: CacheFactory) -> None:
    c = cache_factory(on_error="raise")
    await c.put(*req(1), LLMResponse(content="c", raw=Opaque()))
    assert await c.get(*req(1)) == LLMResponse(content="c")


async def test_unstorable_parsed_is_a_skip_or_a_value_error(
    cache_factory: CacheFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """Not ``raw``: a value that cannot be serialised at all is a logged skip with "miss"
    (never raised from a fail-open cache), a ValueError with "raise"; nothing stored."""
    caplog.set_level(logging.WARNING, logger="fleetcache")
    lenient = cache_factory()
    await lenient.put(*req(1), LLMResponse(content="c", parsed={"o": Opaque()}))
    assert any("put skipped" in r.getMessage() for r in caplog.records)
    strict = cache_factory(on_error="raise")
    with pytest.raises(ValueError, match="cannot be stored"):
        await strict.put(*req(1), LLMResponse(content="c", parsed={"o": Opaque()}))
    assert await lenient.size() == 0


class ForeignFinish(str, Enum):
    STOP = "stop"
    TOOL_CALL = "tool_call"
    LENGTH = "length"
    CONTENT_FILTER = "content_filter"
    ERROR = "error"


class ForeignToolCall(BaseModel):
    id: str = ""
    name: str
    arguments: dict[str, Any]


class ForeignResponse(BaseModel):
    """Same shape as LLMResponse, another class (e.g. ractogateway's own)."""

    content: str | None = None
    thinking: str | None = None
    parsed: dict[str, Any] | list[Any] | None = None
    tool_calls: list[ForeignToolCall] = Field(default_factory=list)
    finish_reason: ForeignFinish = ForeignFinish.STOP
    usage: dict[str, int] = Field(default_factory=dict)
    raw: Any = None


async def test_put_accepts_foreign_model_of_same_shape(cache: Flavor) -> None:
    foreign = ForeignResponse(
        content="hi",
        tool_calls=[ForeignToolCall(name="f", arguments={"a": 1})],
        finish_reason=ForeignFinish.TOOL_CALL,
        usage={"total_tokens": 5},
    )
    await cache.put(*req(1), foreign)
    got = await cache.get(*req(1))
    assert type(got) is LLMResponse
    assert got.model_dump(mode="json") == foreign.model_dump(mode="json")
    assert (await cache.fleet_stats()).tokens_saved == 5


async def test_response_model_foreign_class(cache_factory: CacheFactory) -> None:
    c = cache_factory(response_model=ForeignResponse)
    assert c.cache.response_model is ForeignResponse
    await c.put(*req(1), rich_response())  # our LLMResponse into a foreign-model cache
    got = await c.get(*req(1))
    assert type(got) is ForeignResponse
    assert got.model_dump(mode="json") == rich_response().model_dump(mode="json")
    await c.put(*req(2), ForeignResponse(content="native"))
    assert (await c.get(*req(2))) == ForeignResponse(content="native")


class Other(BaseModel):
    text: str


async def test_put_refuses_a_model_of_another_shape(cache: Flavor) -> None:
    with pytest.raises(ValueError):
        await cache.put(*req(1), Other(text="x"))  # (ValidationError is a ValueError)
    assert await cache.size() == 0


async def test_response_model_must_be_pydantic(cache_factory: CacheFactory) -> None:
    with pytest.raises(TypeError):
        cache_factory.raw_cache(response_model=dict)


async def test_oversize_skipped_and_logged_under_miss(
    cache_factory: CacheFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="fleetcache")
    c = cache_factory(max_entry_bytes=1024, compress_threshold=None)
    await c.put(*req(1), LLMResponse(content="x" * 5000))  # no raise
    assert await c.get(*req(1)) is None
    assert any("max_entry_bytes" in r.getMessage() for r in caplog.records)
    await c.put(*req(2), LLMResponse(content="small"))
    assert (await c.get(*req(2))).content == "small"
    fs = await c.fleet_stats()
    assert fs.puts == 1


async def test_oversize_raises_under_raise(cache_factory: CacheFactory) -> None:
    c = cache_factory(max_entry_bytes=1024, compress_threshold=None, on_error="raise")
    with pytest.raises(EntryTooLargeError):
        await c.put(*req(1), LLMResponse(content="x" * 5000))
    assert await c.size() == 0
