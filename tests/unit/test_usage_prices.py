"""Usage parsing of every provider shape, and pricing in integer nano-USD (pure)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from fleetcache.core.envelope import (
    COST_UNKNOWN,
    HEADER_V2_SIZE,
    Codec,
    EntryMeta,
    header_meta,
    tokens_of,
)
from fleetcache.core.models import LLMResponse
from fleetcache.core.prices import Prices, check_prices
from fleetcache.core.usage import Usage, usage_of

CASES: list[tuple[str, dict[str, Any], Usage | None]] = [
    (
        "openai chat: cached inside prompt, reasoning inside completion",
        {
            "object": "chat.completion",
            "usage": {
                "prompt_tokens": 1000,
                "completion_tokens": 500,
                "total_tokens": 1500,
                "prompt_tokens_details": {"cached_tokens": 200},
                "completion_tokens_details": {"reasoning_tokens": 300},
            },
        },
        Usage(input=800, output=500, cache_read=200, reported_total=1500),
    ),
    (
        "openai responses api",
        {
            "object": "response",
            "usage": {
                "input_tokens": 1000,
                "input_tokens_details": {"cached_tokens": 400},
                "output_tokens": 70,
                "output_tokens_details": {"reasoning_tokens": 50},
                "total_tokens": 1070,
            },
        },
        Usage(input=600, output=70, cache_read=400, reported_total=1070),
    ),
    (
        "anthropic: all four kinds, input excludes the cache",
        {
            "type": "message",
            "usage": {
                "input_tokens": 5,
                "output_tokens": 40,
                "cache_creation_input_tokens": 200,
                "cache_read_input_tokens": 1000,
            },
        },
        Usage(input=5, output=40, cache_read=1000, cache_write=200),
    ),
    (
        "google usageMetadata: thoughts are output, cached inside prompt",
        {
            "usageMetadata": {
                "promptTokenCount": 900,
                "cachedContentTokenCount": 300,
                "candidatesTokenCount": 100,
                "thoughtsTokenCount": 60,
                "totalTokenCount": 1060,
            }
        },
        Usage(input=600, output=160, cache_read=300, reported_total=1060),
    ),
    (
        "google sdk snake_case",
        {"usage_metadata": {"prompt_token_count": 10, "candidates_token_count": 4}},
        Usage(input=10, output=4),
    ),
    (
        "embeddings: input only",
        {"object": "list", "data": [{}], "usage": {"prompt_tokens": 10, "total_tokens": 10}},
        Usage(input=10, reported_total=10),
    ),
    (
        "litellm anthropic-backed ModelResponse",
        {
            "object": "chat.completion",
            "usage": {
                "prompt_tokens": 1205,
                "completion_tokens": 40,
                "total_tokens": 1245,
                "prompt_tokens_details": {"cached_tokens": 1000},
                "cache_creation_input_tokens": 200,
                "cache_read_input_tokens": 1000,
            },
        },
        Usage(input=5, output=40, cache_read=1000, cache_write=200, reported_total=1245),
    ),
    (
        "langchain generations: usage_metadata summed",
        {
            "generations": [
                {
                    "message": {
                        "usage_metadata": {
                            "input_tokens": 100,
                            "output_tokens": 20,
                            "total_tokens": 120,
                            "input_token_details": {"cache_read": 30},
                        }
                    }
                },
                {"generation_info": {"token_usage": {"prompt_tokens": 7, "completion_tokens": 3}}},
            ]
        },
        Usage(input=77, output=23, cache_read=30, reported_total=130),
    ),
    (
        "five-field usage with only a total",
        {"usage": {"total_tokens": 513}},
        Usage(reported_total=513),
    ),
    ("no usage", {"choices": []}, None),
    ("garbage values ignored", {"usage": {"prompt_tokens": "x", "completion_tokens": True}}, None),
]


@pytest.mark.parametrize(("name", "data", "want"), CASES, ids=[c[0] for c in CASES])
def test_usage_of(name: str, data: dict[str, Any], want: Usage | None) -> None:
    assert usage_of(data) == want


def test_anthropic_total_counts_the_prompt_cache() -> None:
    got = usage_of(CASES[2][1])
    assert got is not None and got.total == 1245


def test_the_reported_total_wins_else_the_kinds_add_up() -> None:
    assert Usage(reported_total=513).total == 513
    assert Usage(1, 2, 3, 4, reported_total=5).total == 5  # the provider's own total
    assert Usage(1, 2, 3, 4).total == 10


def test_five_field_tokens_of_reads_the_same_parser() -> None:
    assert tokens_of(LLMResponse(usage={"prompt_tokens": 10, "completion_tokens": 5})) == 15


def test_user_prices_in_nano_usd() -> None:
    p = Prices({"m": (2.5, 10.0)}, library=False)
    assert p.cost_nanousd("m", Usage(input=1000, output=500)) == 7_500_000
    # missing cache prices fall back to the input price
    assert p.cost_nanousd("m", Usage(cache_read=1000, cache_write=1000)) == 5_000_000
    p = Prices({"m": (2.5, 10.0, 1.25, 3.125)}, library=False)
    assert p.cost_nanousd("m", Usage(cache_read=1000, cache_write=1000)) == 4_375_000


def test_a_tiny_embedding_is_not_rounded_to_zero() -> None:
    p = Prices({"emb": (0.02, 0.0)}, library=False)
    assert p.cost_nanousd("emb", Usage(input=10)) == 200


def test_unknown_model_or_usage_is_unknown_cost() -> None:
    p = Prices({"m": (1, 1)}, library=False)
    assert p.cost_nanousd("other", Usage(input=1)) is None
    assert p.cost_nanousd("m", None) is None
    assert p.cost_of(("other", "m"), Usage(input=1_000_000)) == 1_000_000_000


def test_user_prices_take_precedence_over_the_library() -> None:
    pytest.importorskip("genai_prices")
    p = Prices({"gpt-4o": (100.0, 100.0)})
    assert p.cost_nanousd("gpt-4o", Usage(input=1000)) == 100_000_000


def test_library_prices_cached_input() -> None:
    pytest.importorskip("genai_prices")
    p = Prices()
    full = p.cost_nanousd("gpt-4o", Usage(input=1000))
    cached = p.cost_nanousd("gpt-4o", Usage(cache_read=1000))
    assert full is not None and cached is not None and 0 < cached < full
    assert p.cost_nanousd("no-such-model-anywhere", Usage(input=1)) is None


@pytest.mark.parametrize(
    ("bad", "exc"),
    [
        ([("m", 1, 2)], TypeError),
        ({1: (1, 2)}, TypeError),
        ({"m": "1,2"}, TypeError),
        ({"m": (1,)}, ValueError),
        ({"m": (1, 2, 3, 4, 5)}, ValueError),
        ({"m": (1, float("nan"))}, ValueError),
        ({"m": (1, -1)}, ValueError),
        ({"m": (1, True)}, TypeError),
    ],
)
def test_check_prices_rejects(bad: object, exc: type[Exception]) -> None:
    with pytest.raises(exc):
        check_prices(bad)


def test_check_prices_is_exact() -> None:
    assert check_prices({"m": (0.1, 2)})["m"] == (
        Decimal("0.1"),
        Decimal(2),
        Decimal("0.1"),
        Decimal("0.1"),
    )


def test_header_round_trip_and_unknown_cost() -> None:
    meta = EntryMeta(Usage(1, 2, 3, 4), 2**40, 1234)
    env = Codec(LLMResponse).encode(LLMResponse(content="x"), meta=meta)
    back = header_meta(env)
    assert back is not None and back.usage == Usage(1, 2, 3, 4)
    assert (back.cost_nanousd, back.upstream_ms) == (2**40, 1234)
    unknown = EntryMeta(Usage(1), None).header(0)
    assert len(unknown) == HEADER_V2_SIZE == 34
    assert int.from_bytes(unknown[28:34], "big") == COST_UNKNOWN
    assert header_meta(unknown + b"\x80").cost_nanousd is None  # type: ignore[union-attr]
    huge = EntryMeta(Usage(2**40), 2**60, 2**40).header(0)
    m = header_meta(huge + b"\x80")
    assert m is not None and m.usage is not None and m.usage.input == 2**32 - 1
    assert m.cost_nanousd == COST_UNKNOWN - 1 and m.upstream_ms == 2**32 - 1
