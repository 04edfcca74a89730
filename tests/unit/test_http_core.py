"""The caching transport's decisions without I/O: what is cached, the control headers, the
body sent upstream, the store rule, replay headers and the per-input embeddings split."""

from __future__ import annotations

import json
from typing import Any

import pytest

from fleetcache.core.endpoints import ENDPOINTS
from fleetcache.core.models import LLMResponse
from fleetcache.core.ops import Core
from fleetcache.integrations._httpcore import (
    TransportCore,
    input_weight,
    merge_embeddings,
    meta_of_record,
    record_of,
    replay_headers,
    shares,
    split_embeddings,
)

CORE = Core(
    key_prefix="t",
    shards=1,
    ttl_seconds=None,
    response_model=LLMResponse,
    compress_threshold=None,
    max_entry_bytes=1 << 20,
)
CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


def plan(
    tc: TransportCore, path: str, body: Any = CHAT, headers: Any = (), method: str = "POST"
) -> Any:
    raw = json.dumps(body).encode()
    return tc.plan(CORE, method, "https", "api.openai.com", None, path, "", list(headers), raw)


def test_known_endpoints_are_planned_and_others_forwarded_untouched() -> None:
    tc = TransportCore()
    p = plan(tc, "/v1/chat/completions")
    assert p.endpoint is ENDPOINTS["openai.chat"] and p.key is not None
    assert p.body is None and p.headers is None  # the request leaves unchanged
    assert plan(tc, "/v1/models", method="GET") is None
    assert plan(tc, "/v1/moderations") is None
    assert plan(TransportCore(cacheable=lambda m, p: False), "/v1/chat/completions") is None
    custom = plan(TransportCore(cacheable=lambda m, p: True), "/v1/moderations")
    assert custom.key is not None


def test_control_headers_are_parsed_and_stripped() -> None:
    tc = TransportCore()
    headers = [("X-Fleetcache-Control", "no-store"), ("x-fleetcache-ttl", "2.5"), ("a", "b")]
    p = plan(tc, "/v1/chat/completions", headers=headers)
    assert (p.reads, p.writes, p.ttl_seconds) == (True, False, 2.5)
    assert p.headers == [("a", "b")]
    bypass = plan(tc, "/v1/chat/completions", headers=[("x-fleetcache-control", "bypass")])
    assert bypass.key is None and bypass.headers == []
    outside = plan(tc, "/v1/models", headers=[("x-fleetcache-control", "no-cache")], method="GET")
    assert outside.key is None and outside.headers == []
    for bad in ("0", "-1", "nan", "soon"):
        with pytest.raises(ValueError, match="x-fleetcache-ttl"):
            plan(tc, "/v1/chat/completions", headers=[("x-fleetcache-ttl", bad)])
    with pytest.raises(ValueError):
        plan(tc, "/v1/chat/completions", headers=[("x-fleetcache-control", "sometimes")])


def test_a_streamed_chat_goes_upstream_with_usage_and_shares_the_entry() -> None:
    tc = TransportCore()
    streamed = plan(tc, "/v1/chat/completions", body={**CHAT, "stream": True})
    assert streamed.stream and not streamed.caller_wants_usage
    assert json.loads(streamed.body)["stream_options"] == {"include_usage": True}
    assert plan(tc, "/v1/chat/completions").key.digest == streamed.key.digest


def test_the_store_rule() -> None:
    chat = ENDPOINTS["openai.chat"]
    answer = {"choices": [{"finish_reason": "stop", "message": {"content": "x"}}]}
    assert TransportCore().storable(chat, record_of(200, [], answer))
    assert not TransportCore().storable(chat, record_of(500, [], answer))
    assert not TransportCore().storable(chat, record_of(200, [], None))

    def boom(*_: Any) -> bool:
        raise RuntimeError("rule broke")

    assert not TransportCore(should_store=boom).storable(chat, record_of(200, [], answer))
    assert TransportCore(should_store=lambda e, s, b: e == "openai.chat").storable(
        chat, record_of(200, [], {"anything": 1})
    )


def test_only_replay_headers_are_kept_and_a_hit_says_so() -> None:
    record = record_of(
        200, [("X-Request-Id", "req_1"), ("set-cookie", "secret"), ("date", "x")], {"a": 1}
    )
    assert record["headers"] == [["x-request-id", "req_1"]]
    headers = dict(replay_headers(record, "application/json", None, 3.7))
    assert headers == {
        "content-type": "application/json",
        "x-request-id": "req_1",
        "x-fleetcache": "hit",
        "age": "3",
    }


def test_embeddings_split_per_input_and_merge_in_the_callers_order() -> None:
    body = {
        "object": "list",
        "model": "e",
        "data": [{"index": 1, "embedding": [1.0]}, {"index": 0, "embedding": [0.0]}],
        "usage": {"prompt_tokens": 4, "total_tokens": 4},
    }
    parts = split_embeddings(body, 2)
    assert parts is not None
    assert [p["data"] for p in parts] == [
        [{"index": 0, "embedding": [0.0]}],
        [{"index": 0, "embedding": [1.0]}],
    ]
    assert parts[0]["usage"] == {"prompt_tokens": 2, "total_tokens": 2}
    assert split_embeddings(body, 3) is None
    merged = merge_embeddings([parts[1], parts[0]], None)
    assert merged["data"] == [{"index": 0, "embedding": [1.0]}, {"index": 1, "embedding": [0.0]}]
    assert merged["usage"] == {"prompt_tokens": 0, "total_tokens": 0}
    tc = TransportCore()
    p = plan(tc, "/v1/embeddings", body={"model": "e", "input": ["a", "b", "a"]})
    assert p.input_keys is not None and len(p.input_keys) == 3
    assert p.input_keys[0].digest == p.input_keys[2].digest != p.input_keys[1].digest
    single = plan(tc, "/v1/embeddings", body={"model": "e", "input": ["a"]})
    assert single.input_keys is None and single.key.digest == p.input_keys[0].digest


def test_bad_options_are_refused() -> None:
    with pytest.raises(ValueError):
        TransportCore(ttl_seconds=0)
    with pytest.raises(TypeError):
        TransportCore(cacheable="yes")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        TransportCore(ignore="user")
    with pytest.raises(TypeError):
        TransportCore(should_store=1)  # type: ignore[arg-type]


def test_a_ttl_header_beyond_the_caches_bound_is_refused_as_the_cache_refuses_it() -> None:
    """The ``x-fleetcache-ttl`` header and ``ttl_seconds=`` go through the caches' own TTL
    check: above 1e12 s (or under 1 ms) is a ``ValueError`` before anything is sent."""
    tc = TransportCore()
    for bad in ("1e13", "0.0001"):
        with pytest.raises(ValueError) as by_cache:
            Core(
                key_prefix="t",
                shards=1,
                ttl_seconds=float(bad),
                response_model=LLMResponse,
                compress_threshold=None,
                max_entry_bytes=1 << 20,
            )
        with pytest.raises(ValueError) as by_header:
            plan(tc, "/v1/chat/completions", headers=[("x-fleetcache-ttl", bad)])
        assert str(by_header.value) == str(by_cache.value).replace(
            "ttl_seconds", "x-fleetcache-ttl"
        )
        with pytest.raises(ValueError) as by_option:
            TransportCore(ttl_seconds=float(bad))
        assert str(by_option.value) == str(by_cache.value)
    assert (
        plan(tc, "/v1/chat/completions", headers=[("x-fleetcache-ttl", "1e12")]).ttl_seconds == 1e12
    )


def test_shares_split_a_total_in_proportion_and_sum_to_it_exactly() -> None:
    assert shares(7, [1, 3, 6]) == [1, 2, 4]
    assert shares(10, [1, 1, 1]) == [4, 3, 3]
    assert shares(0, [1, 2]) == [0, 0]
    assert shares(5, []) == []
    for total in range(50):
        assert sum(shares(total, [2, 5, 1, 7])) == total
    assert [input_weight(x) for x in ("", "abc", [1, 2], 3)] == [1, 3, 2, 1]


def test_per_input_usage_shares_follow_the_weights_and_sum_to_the_request() -> None:
    body = {
        "object": "list",
        "model": "e",
        "data": [{"index": i, "embedding": [float(i)]} for i in range(3)],
        "usage": {"prompt_tokens": 7, "total_tokens": 7},
    }
    parts = split_embeddings(body, 3, [1, 3, 6])
    assert parts is not None
    assert [p["usage"]["prompt_tokens"] for p in parts] == [1, 2, 4]
    assert sum(p["usage"]["total_tokens"] for p in parts) == 7


def test_an_http_answer_is_priced_by_the_requested_model_before_its_own() -> None:
    core = Core(
        key_prefix="t",
        shards=1,
        ttl_seconds=None,
        response_model=LLMResponse,
        compress_threshold=None,
        max_entry_bytes=1 << 20,
        prices={"asked": (1.0, 2.0), "answered-2025": (100.0, 100.0)},
    )
    record = record_of(
        200,
        [],
        {"model": "answered-2025", "usage": {"prompt_tokens": 1000, "completion_tokens": 500}},
    )
    asked = meta_of_record(core, record, 12, ("asked",))
    assert asked.cost_nanousd == (1000 * 1 + 500 * 2) * 1000 and asked.upstream_ms == 12
    fallback = meta_of_record(core, record, None, ("no-price",))
    assert fallback.cost_nanousd == 1500 * 100 * 1000
