"""The endpoint table and the stream layer, checked against the real SDKs' own parsers.

Each provider has a stream as its API sends it (token-sized deltas, keep-alives, the usage
chunk) and the non-streamed JSON the same request returns. The SDK must build the same
objects from the synthesised stream as from the original, and from the assembled JSON as
from the original JSON.
"""

from __future__ import annotations

import copy
import itertools
import json
from collections.abc import Callable
from typing import Any

import httpx2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fleetcache.core.endpoints import (
    CHUNKS,
    ENDPOINTS,
    StreamRecorder,
    match,
    model_of,
    replay_stream,
    should_store,
    upstream_body,
    wants_stream,
)

openai = pytest.importorskip("openai")
anthropic = pytest.importorskip("anthropic")
genai = pytest.importorskip("google.genai")

SSE = {"content-type": "text/event-stream"}
JSON = {"content-type": "application/json"}


def data_frames(items: list[Any]) -> bytes:
    return b"".join(f"data: {json.dumps(i)}\n\n".encode() for i in items)


def typed_frames(items: list[dict[str, Any]]) -> bytes:
    return b"".join(f"event: {i['type']}\ndata: {json.dumps(i)}\n\n".encode() for i in items)


def record(ep_name: str, wire: bytes, wants_usage: bool, size: int = 13) -> tuple[bytes, Any]:
    """Feed ``wire`` in ``size``-byte chunks through a recorder: (forwarded bytes, finish())."""
    recorder = StreamRecorder(ENDPOINTS[ep_name], wants_usage)
    out = b"".join(recorder.feed(wire[i : i + size]) for i in range(0, len(wire), size))
    out += recorder.close()
    return out, recorder.finish()


def handler_for(body: bytes, headers: dict[str, str]) -> Callable[[httpx2.Request], Any]:
    def handle(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, headers=headers, content=body)

    return handle


def openai_client(body: bytes, headers: dict[str, str] = SSE) -> Any:
    http = httpx2.Client(transport=httpx2.MockTransport(handler_for(body, headers)))
    return openai.OpenAI(api_key="sk-fake", http_client=http, max_retries=0)


def anthropic_client(body: bytes, headers: dict[str, str] = SSE) -> Any:
    http = httpx2.Client(transport=httpx2.MockTransport(handler_for(body, headers)))
    return anthropic.Anthropic(api_key="sk-ant-fake", http_client=http, max_retries=0)


def google_client(body: bytes, headers: dict[str, str] = SSE) -> Any:
    http = httpx2.Client(transport=httpx2.MockTransport(handler_for(body, headers)))
    options = genai.types.HttpOptions(httpx_client=http)
    return genai.Client(api_key="g-fake", http_options=options)


# -- the endpoint table ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "name"),
    [
        ("POST", "/v1/chat/completions", "openai.chat"),
        ("post", "/v1/chat/completions", "openai.chat"),
        ("POST", "/openai/deployments/gpt4o-east/chat/completions", "openai.chat"),
        ("POST", "/api/v1/chat/completions", "openai.chat"),  # gateways, OpenRouter
        ("POST", "/v1/openai/chat/completions", "openai.chat"),
        ("POST", "/v1/completions", "openai.completions"),
        ("POST", "/openai/deployments/d/completions", "openai.completions"),
        ("POST", "/v1/responses", "openai.responses"),
        ("POST", "/openai/v1/responses", "openai.responses"),
        ("POST", "/v1/embeddings", "openai.embeddings"),
        ("POST", "/openai/deployments/emb/embeddings", "openai.embeddings"),
        ("POST", "/v1/messages", "anthropic.messages"),
        ("POST", "/anthropic/v1/messages", "anthropic.messages"),
        ("POST", "/v1beta/models/gemini-2.0-flash:generateContent", "google.generate"),
        ("POST", "/v1beta/models/gemini-2.0-flash:streamGenerateContent", "google.stream_generate"),
        ("POST", "/v1beta/models/text-embedding-004:embedContent", "google.embed"),
        ("POST", "/v1beta/models/text-embedding-004:batchEmbedContents", "google.batch_embed"),
        ("POST", "/v1beta/tunedModels/my-tune:generateContent", "google.generate"),
        (
            "POST",
            "/v1/projects/p/locations/us-central1/publishers/google/models/gemini-2.0-flash"
            ":generateContent",
            "google.generate",
        ),
        ("GET", "/v1/chat/completions", None),
        ("GET", "/v1/models", None),
        ("POST", "/v1/models", None),
        ("POST", "/v1/responses/resp_1/cancel", None),
        ("POST", "/v1/messages/count_tokens", None),
        ("POST", "/v1/messages/batches", None),
        ("POST", "/v1/files", None),
        ("POST", "/v1beta/models/gemini-2.0-flash:countTokens", None),
        ("DELETE", "/v1/responses", None),
        ("POST", "/", None),
    ],
)
def test_match(method: str, path: str, name: str | None) -> None:
    ep = match(method, path)
    assert (ep.name if ep else None) == name


@pytest.mark.parametrize(
    ("name", "body", "expected"),
    [
        ("openai.chat", {"stream": True}, True),
        ("openai.chat", {"stream": False}, False),
        ("openai.chat", {}, False),
        ("openai.chat", {"stream": "yes"}, False),
        ("openai.responses", {"stream": True}, True),
        ("openai.completions", {"stream": True}, True),
        ("openai.embeddings", {"stream": True}, False),
        ("anthropic.messages", {"stream": True}, True),
        ("anthropic.messages", {}, False),
        ("google.stream_generate", {}, True),
        ("google.generate", {"stream": True}, False),
    ],
)
def test_wants_stream(name: str, body: dict[str, Any], expected: bool) -> None:
    assert wants_stream(ENDPOINTS[name], body) is expected


def test_upstream_body_asks_for_usage_on_streamed_chat_and_tells_whether_the_caller_did() -> None:
    chat = ENDPOINTS["openai.chat"]
    body = {"model": "m", "stream": True}
    sent, asked = upstream_body(chat, body)
    assert sent == {"model": "m", "stream": True, "stream_options": {"include_usage": True}}
    assert asked is False
    assert body == {"model": "m", "stream": True}  # the caller's body is not changed
    own = {"model": "m", "stream": True, "stream_options": {"include_usage": True}}
    assert upstream_body(chat, own) == (own, True)
    other = {"stream": True, "stream_options": {"include_obfuscation": False}}
    sent, asked = upstream_body(chat, other)
    assert sent["stream_options"] == {"include_obfuscation": False, "include_usage": True}
    assert asked is False
    legacy = upstream_body(ENDPOINTS["openai.completions"], {"stream": True})
    assert legacy == ({"stream": True, "stream_options": {"include_usage": True}}, False)
    cases: list[tuple[str, dict[str, Any]]] = [
        ("openai.chat", {"model": "m"}),
        ("openai.responses", {"stream": True}),
        ("anthropic.messages", {"stream": True}),
        ("google.stream_generate", {"contents": []}),
    ]
    for name, unchanged in cases:
        assert upstream_body(ENDPOINTS[name], unchanged) == (unchanged, True)


def test_ignored_fields_and_shared_entries() -> None:
    chat = ENDPOINTS["openai.chat"]
    assert {"stream", "stream_options", "user", "metadata", "store"} <= chat.ignored_fields
    assert {"safety_identifier", "prompt_cache_key"} <= chat.ignored_fields
    assert "temperature" not in chat.ignored_fields
    assert ENDPOINTS["anthropic.messages"].ignored_markers == {"cache_control"}
    shared = {n for n, e in ENDPOINTS.items() if e.shares_stream_entry}
    assert shared == {"openai.chat", "openai.responses", "openai.completions", "anthropic.messages"}
    assert {e.provider for e in ENDPOINTS.values()} == {"openai", "anthropic", "google"}


def gem(texts: list[str], finish: str | None = None) -> dict[str, Any]:
    candidate: dict[str, Any] = {
        "content": {"parts": [{"text": t} for t in texts], "role": "model"},
        "index": 0,
    }
    if finish is not None:
        candidate["finishReason"] = finish
    return candidate


def chat_answer(**message: Any) -> dict[str, Any]:
    msg = {"role": "assistant", "content": "Paris.", **message}
    return {"choices": [{"index": 0, "message": msg, "finish_reason": "stop"}]}


@pytest.mark.parametrize(
    ("name", "status", "response", "expected"),
    [
        ("openai.chat", 200, chat_answer(), True),
        ("openai.chat", 201, chat_answer(), True),
        ("openai.chat", 500, chat_answer(), False),
        ("openai.chat", 429, chat_answer(), False),
        ("openai.chat", 200, chat_answer(content=""), False),
        ("openai.chat", 200, chat_answer(content=None), False),
        ("openai.chat", 200, chat_answer(content=None, tool_calls=[{"id": "c"}]), True),
        ("openai.chat", 200, chat_answer(refusal="I can't help with that."), False),
        ("openai.chat", 200, {"choices": []}, False),
        ("openai.chat", 200, {"error": {"message": "x"}}, False),
        (
            "openai.chat",
            200,
            {"choices": [{"message": {"content": "Pa"}, "finish_reason": "length"}]},
            False,
        ),
        (
            "openai.chat",
            200,
            {"choices": [{"message": {"content": "x"}, "finish_reason": "content_filter"}]},
            False,
        ),
        ("openai.chat", 200, {"choices": "odd"}, False),
        ("openai.completions", 200, {"choices": [{"text": "4", "finish_reason": "stop"}]}, True),
        ("openai.completions", 200, {"choices": [{"text": "", "finish_reason": "stop"}]}, False),
        ("openai.completions", 200, {"choices": [{"text": "4", "finish_reason": "length"}]}, False),
        (
            "openai.responses",
            200,
            {
                "status": "completed",
                "output": [{"type": "message", "content": [{"type": "output_text", "text": "a"}]}],
            },
            True,
        ),
        (
            "openai.responses",
            200,
            {"status": "completed", "output": [{"type": "function_call", "arguments": "{}"}]},
            True,
        ),
        (
            "openai.responses",
            200,
            {"status": "incomplete", "output": [{"type": "message", "content": []}]},
            False,
        ),
        ("openai.responses", 200, {"status": "failed", "output": []}, False),
        (
            "openai.responses",
            200,
            {"status": "completed", "output": [{"type": "reasoning"}]},
            False,
        ),
        (
            "openai.responses",
            200,
            {
                "status": "completed",
                "output": [{"type": "message", "content": [{"type": "refusal", "refusal": "no"}]}],
            },
            False,
        ),
        ("anthropic.messages", 200, {"content": [{"type": "text", "text": "a"}]}, True),
        (
            "anthropic.messages",
            200,
            {"stop_reason": "tool_use", "content": [{"type": "tool_use", "input": {}}]},
            True,
        ),
        (
            "anthropic.messages",
            200,
            {"stop_reason": "max_tokens", "content": [{"type": "text", "text": "a"}]},
            False,
        ),
        (
            "anthropic.messages",
            200,
            {"stop_reason": "refusal", "content": [{"type": "text", "text": "a"}]},
            False,
        ),
        ("anthropic.messages", 200, {"stop_reason": "end_turn", "content": []}, False),
        (
            "anthropic.messages",
            200,
            {"content": [{"type": "thinking", "thinking": "hmm"}, {"type": "text", "text": ""}]},
            False,
        ),
        ("google.generate", 200, {"candidates": [gem(["Hi"], "STOP")]}, True),
        ("google.generate", 200, {"candidates": [gem(["Hi"], "MAX_TOKENS")]}, False),
        ("google.generate", 200, {"candidates": [gem(["Hi"], "SAFETY")]}, False),
        ("google.generate", 200, {"candidates": [gem([""], "STOP")]}, False),
        ("google.generate", 200, {"promptFeedback": {"blockReason": "SAFETY"}}, False),
        ("google.generate", 200, {"candidates": []}, False),
        (
            "google.stream_generate",
            200,
            {CHUNKS: [{"candidates": [gem(["Hi"])]}, {"candidates": [gem([" there"], "STOP")]}]},
            True,
        ),
        (
            "google.stream_generate",
            200,
            {CHUNKS: [{"candidates": [gem(["Hi"])]}, {"candidates": [gem([""], "MAX_TOKENS")]}]},
            False,
        ),
        ("openai.embeddings", 200, {"data": [{"embedding": [0.1]}]}, True),
        ("openai.embeddings", 200, {"data": [{"embedding": "AAAA"}]}, True),  # base64
        ("openai.embeddings", 200, {"data": []}, False),
        ("google.embed", 200, {"embedding": {"values": [0.1]}}, True),
        ("google.embed", 200, {"embedding": {}}, False),
        ("google.batch_embed", 200, {"embeddings": [{"values": [0.1]}]}, True),
        ("google.batch_embed", 200, {"embeddings": [{"values": []}]}, False),
    ],
)
def test_should_store(name: str, status: int, response: dict[str, Any], expected: bool) -> None:
    assert should_store(ENDPOINTS[name], status, response) is expected


@pytest.mark.parametrize(
    ("name", "request_body", "response", "path", "expected"),
    [
        (
            "openai.chat",
            {"model": "gpt-4o"},
            {"model": "gpt-4o-2024-08-06"},
            "/v1/x",
            "gpt-4o-2024-08-06",
        ),
        ("openai.chat", {"model": "gpt-4o"}, {}, "/v1/chat/completions", "gpt-4o"),
        ("openai.chat", {}, {}, "/openai/deployments/east4o/chat/completions", "east4o"),
        (
            "anthropic.messages",
            {"model": "claude-x"},
            {"model": "claude-x-1"},
            "/v1/messages",
            "claude-x-1",
        ),
        (
            "google.generate",
            {},
            {"modelVersion": "gemini-2.0-flash-001"},
            "/v1beta/models/g:generateContent",
            "gemini-2.0-flash-001",
        ),
        (
            "google.generate",
            {},
            {},
            "/v1beta/models/gemini-2.0-flash:generateContent",
            "gemini-2.0-flash",
        ),
        (
            "google.stream_generate",
            {},
            {CHUNKS: [{"modelVersion": "gem-1"}]},
            "/v1beta/models/g:streamGenerateContent",
            "gem-1",
        ),
        ("openai.embeddings", {}, {}, "/v1/embeddings", None),
        ("openai.chat", {"model": 5}, {"model": None}, "/v1/chat/completions", None),
    ],
)
def test_model_of(
    name: str, request_body: dict[str, Any], response: dict[str, Any], path: str, expected: str
) -> None:
    assert model_of(ENDPOINTS[name], request_body, response, path) == expected


# -- OpenAI chat completions -----------------------------------------------------------------

CHAT_TOP: dict[str, Any] = {
    "id": "chatcmpl-9",
    "object": "chat.completion.chunk",
    "created": 1_700_000_000,
    "model": "gpt-4o-mini-2024-07-18",
    "service_tier": "default",
    "system_fingerprint": "fp_1",
    "usage": None,
}
CHAT_USAGE: dict[str, Any] = {
    "prompt_tokens": 19,
    "completion_tokens": 12,
    "total_tokens": 31,
    "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
    "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
}


def chat_chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
    return {**CHAT_TOP, "choices": [choice], "obfuscation": "xYz"}


def tool_delta(**call: Any) -> dict[str, Any]:
    return {"tool_calls": [{"index": call.pop("index", 0), **call}]}


CHAT_CHUNKS = [
    chat_chunk({"role": "assistant", "content": "", "refusal": None}),
    *[chat_chunk({"content": t}) for t in ["The", " capital", " is", " Par", "is", " 🇫🇷", "."]],
    chat_chunk(
        tool_delta(id="call_1", type="function", function={"name": "lookup", "arguments": ""})
    ),
    *[chat_chunk(tool_delta(function={"arguments": a})) for a in ['{"q', '": "Pa', 'ris"}']],
    chat_chunk(
        tool_delta(
            index=1, id="call_2", type="function", function={"name": "now", "arguments": "{}"}
        )
    ),
    chat_chunk({}, "tool_calls"),
    {**CHAT_TOP, "choices": [], "usage": CHAT_USAGE, "obfuscation": "ab"},
]
CHAT_WIRE = b": OPENROUTER PROCESSING\n\n" + data_frames(CHAT_CHUNKS) + b"data: [DONE]\n\n"
#: The non-streamed answer to the same request.
CHAT_JSON: dict[str, Any] = {
    "id": "chatcmpl-9",
    "object": "chat.completion",
    "created": 1_700_000_000,
    "model": "gpt-4o-mini-2024-07-18",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "The capital is Paris 🇫🇷.",
                "refusal": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "lookup", "arguments": '{"q": "Paris"}'},
                    },
                    {
                        "id": "call_2",
                        "type": "function",
                        "function": {"name": "now", "arguments": "{}"},
                    },
                ],
            },
            "logprobs": None,
            "finish_reason": "tool_calls",
        }
    ],
    "usage": CHAT_USAGE,
    "service_tier": "default",
    "system_fingerprint": "fp_1",
}


def final_chat(wire: bytes) -> dict[str, Any]:
    client = openai_client(wire)
    with client.chat.completions.stream(model="m", messages=[]) as stream:
        for _ in stream:
            pass
        return dict(stream.get_final_completion().model_dump())


def test_chat_stream_assembles_to_the_non_streamed_answer() -> None:
    forwarded, stored = record("openai.chat", CHAT_WIRE, wants_usage=True)
    assert forwarded == CHAT_WIRE
    sdk = openai_client(json.dumps(stored).encode(), JSON).chat.completions.create(
        model="m", messages=[]
    )
    direct = openai_client(json.dumps(CHAT_JSON).encode(), JSON).chat.completions.create(
        model="m", messages=[]
    )
    assert sdk.model_dump() == direct.model_dump()
    assert should_store(ENDPOINTS["openai.chat"], 200, stored)


def test_chat_replay_gives_the_sdk_the_same_final_completion() -> None:
    _, stored = record("openai.chat", CHAT_WIRE, wants_usage=True)
    for source in (stored, CHAT_JSON):
        replayed = b"".join(replay_stream(ENDPOINTS["openai.chat"], source, True))
        assert final_chat(replayed) == final_chat(CHAT_WIRE)


def test_chat_replay_chunks_keep_id_created_model_and_the_usage_chunk_rule() -> None:
    ep = ENDPOINTS["openai.chat"]
    with_usage = list(
        openai_client(b"".join(replay_stream(ep, CHAT_JSON, True))).chat.completions.create(
            model="m", messages=[], stream=True
        )
    )
    without = list(
        openai_client(b"".join(replay_stream(ep, CHAT_JSON, False))).chat.completions.create(
            model="m", messages=[], stream=True
        )
    )
    assert with_usage[-1].choices == []
    assert (
        with_usage[-1].usage.model_dump() == openai.types.CompletionUsage(**CHAT_USAGE).model_dump()
    )
    assert all(c.choices for c in without)
    assert all(c.usage is None for c in without)
    for chunk in with_usage + without:
        assert (chunk.id, chunk.created, chunk.model) == (
            "chatcmpl-9",
            1_700_000_000,
            "gpt-4o-mini-2024-07-18",
        )
        assert chunk.system_fingerprint == "fp_1"


def test_forced_usage_chunk_is_dropped_only_when_the_caller_did_not_ask() -> None:
    forwarded, stored = record("openai.chat", CHAT_WIRE, wants_usage=False)
    usage_frame = data_frames(CHAT_CHUNKS[-1:])
    assert forwarded == CHAT_WIRE.replace(usage_frame, b"")
    assert stored is not None
    assert stored["usage"] == CHAT_USAGE  # stored with its usage all the same
    chunks = list(
        openai_client(forwarded).chat.completions.create(model="m", messages=[], stream=True)
    )
    assert all(c.choices for c in chunks)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=len(CHAT_WIRE)), max_size=30))
def test_any_chunking_of_a_stream_forwards_the_same_bytes_and_stores_the_same(
    cuts: list[int],
) -> None:
    edges = [0, *sorted(set(cuts)), len(CHAT_WIRE)]
    recorder = StreamRecorder(ENDPOINTS["openai.chat"], True)
    out = b"".join(recorder.feed(CHAT_WIRE[a:b]) for a, b in itertools.pairwise(edges))
    assert out + recorder.close() == CHAT_WIRE
    assert recorder.finish() == record("openai.chat", CHAT_WIRE, True)[1]


@pytest.mark.parametrize(
    ("wire", "why"),
    [
        (CHAT_WIRE.replace(b"data: [DONE]\n\n", b""), "no [DONE]"),
        (CHAT_WIRE[: CHAT_WIRE.index(b'tool_calls"}')], "cut mid-stream"),
        (data_frames(CHAT_CHUNKS[:5]) + b"data: [DONE]\n\n", "[DONE] before any finish_reason"),
        (
            data_frames(CHAT_CHUNKS[:5])
            + b'data: {"error": {"message": "overloaded", "type": "server_error"}}\n\n'
            + data_frames(CHAT_CHUNKS[5:])
            + b"data: [DONE]\n\n",
            "an error event",
        ),
        (CHAT_WIRE.replace(b'"The"', b'"The'), "an event that does not parse"),
        (b"data: [1, 2]\n\n" + CHAT_WIRE, "an event that is not an object"),
    ],
)
def test_an_abnormal_stream_stores_nothing_but_is_forwarded(wire: bytes, why: str) -> None:
    forwarded, stored = record("openai.chat", wire, wants_usage=True)
    assert forwarded == wire, why
    assert stored is None, why


def test_close_returns_an_incomplete_last_block_to_forward() -> None:
    recorder = StreamRecorder(ENDPOINTS["openai.chat"], True)
    assert recorder.feed(b'data: [DONE]\n\ndata: {"half') == b"data: [DONE]\n\n"
    assert recorder.close() == b'data: {"half'
    assert recorder.close() == b""
    assert recorder.finish() is None


# -- OpenAI legacy completions ---------------------------------------------------------------

TEXT_TOP: dict[str, Any] = {
    "id": "cmpl-1",
    "object": "text_completion",
    "created": 1_700_000_001,
    "model": "gpt-3.5-turbo-instruct",
}
TEXT_USAGE = {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}


def text_chunk(text: str, finish: str | None = None) -> dict[str, Any]:
    choice = {"text": text, "index": 0, "logprobs": None, "finish_reason": finish}
    return {**TEXT_TOP, "choices": [choice]}


TEXT_WIRE = (
    data_frames(
        [text_chunk("Two"), text_chunk(" plus"), text_chunk(" two"), text_chunk("", "stop")]
    )
    + data_frames([{**TEXT_TOP, "choices": [], "usage": TEXT_USAGE}])
    + b"data: [DONE]\n\n"
)
TEXT_JSON: dict[str, Any] = {
    **TEXT_TOP,
    "choices": [{"text": "Two plus two", "index": 0, "logprobs": None, "finish_reason": "stop"}],
    "usage": TEXT_USAGE,
}


def test_legacy_completion_stream_assembles_and_replays() -> None:
    forwarded, stored = record("openai.completions", TEXT_WIRE, wants_usage=True)
    assert forwarded == TEXT_WIRE
    assert stored == TEXT_JSON
    ep = ENDPOINTS["openai.completions"]
    for wire in (TEXT_WIRE, b"".join(replay_stream(ep, stored, True))):
        chunks = list(openai_client(wire).completions.create(model="m", prompt="2+2", stream=True))
        assert "".join(c.choices[0].text for c in chunks if c.choices) == "Two plus two"
        assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
        assert chunks[-1].usage.total_tokens == 8
    without = b"".join(replay_stream(ep, stored, False))
    chunks = list(openai_client(without).completions.create(model="m", prompt="2+2", stream=True))
    assert all(c.choices for c in chunks)


# -- OpenAI Responses API --------------------------------------------------------------------

RESPONSE_DONE: dict[str, Any] = {
    "id": "resp_1",
    "object": "response",
    "created_at": 1_700_000_002,
    "status": "completed",
    "model": "gpt-4.1-2025-04-14",
    "output": [
        {
            "id": "msg_1",
            "type": "message",
            "status": "completed",
            "role": "assistant",
            "content": [
                {"type": "output_text", "text": "Hello there!", "annotations": [], "logprobs": []}
            ],
        },
        {
            "id": "fc_1",
            "type": "function_call",
            "status": "completed",
            "call_id": "call_9",
            "name": "lookup",
            "arguments": '{"q":"x"}',
        },
    ],
    "parallel_tool_calls": True,
    "tool_choice": "auto",
    "tools": [],
    "text": {"format": {"type": "text"}},
    "usage": {
        "input_tokens": 10,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": 6,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 16,
    },
}


def response_events(final: dict[str, Any]) -> list[dict[str, Any]]:
    early = {**copy.deepcopy(final), "status": "in_progress", "output": [], "usage": None}
    msg, call = final["output"]
    at = {"item_id": "msg_1", "output_index": 0, "content_index": 0}
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": early},
        {"type": "response.in_progress", "response": early},
        {
            "type": "response.output_item.added",
            "output_index": 0,
            "item": {**msg, "status": "in_progress", "content": []},
        },
        {
            "type": "response.content_part.added",
            **at,
            "part": {"type": "output_text", "text": "", "annotations": [], "logprobs": []},
        },
        *[
            {
                "type": "response.output_text.delta",
                **at,
                "delta": d,
                "logprobs": [],
                "obfuscation": "q",
            }
            for d in ["Hel", "lo", " there", "!"]
        ],
        {"type": "response.output_text.done", **at, "text": "Hello there!", "logprobs": []},
        {"type": "response.content_part.done", **at, "part": msg["content"][0]},
        {"type": "response.output_item.done", "output_index": 0, "item": msg},
        {
            "type": "response.output_item.added",
            "output_index": 1,
            "item": {**call, "status": "in_progress", "arguments": ""},
        },
        *[
            {
                "type": "response.function_call_arguments.delta",
                "item_id": "fc_1",
                "output_index": 1,
                "delta": d,
            }
            for d in ['{"q"', ':"x"}']
        ],
        {
            "type": "response.function_call_arguments.done",
            "item_id": "fc_1",
            "output_index": 1,
            "arguments": '{"q":"x"}',
        },
        {"type": "response.output_item.done", "output_index": 1, "item": call},
        {"type": "response.completed", "response": final},
    ]
    return [{**e, "sequence_number": n} for n, e in enumerate(events)]


RESPONSE_WIRE = typed_frames(response_events(RESPONSE_DONE))


def final_response(wire: bytes) -> dict[str, Any]:
    with openai_client(wire).responses.stream(model="m", input="hi") as stream:
        for _ in stream:
            pass
        return dict(stream.get_final_response().model_dump())


def test_responses_stream_assembles_and_replays_to_the_same_sdk_objects() -> None:
    forwarded, stored = record("openai.responses", RESPONSE_WIRE, wants_usage=False)
    assert forwarded == RESPONSE_WIRE
    assert stored == RESPONSE_DONE
    direct = openai_client(json.dumps(RESPONSE_DONE).encode(), JSON).responses.create(
        model="m", input="hi"
    )
    again = openai_client(json.dumps(stored).encode(), JSON).responses.create(model="m", input="hi")
    assert again.model_dump() == direct.model_dump()
    replayed = b"".join(replay_stream(ENDPOINTS["openai.responses"], stored, False))
    assert final_response(replayed) == final_response(RESPONSE_WIRE)
    events = list(openai_client(replayed).responses.create(model="m", input="hi", stream=True))
    assert [e.sequence_number for e in events] == list(range(len(events)))
    deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
    assert "".join(deltas) == "Hello there!"


def test_responses_completed_without_output_takes_the_done_items() -> None:
    events = response_events(RESPONSE_DONE)
    events[-1] = {**events[-1], "response": {**RESPONSE_DONE, "output": None}}
    _, stored = record("openai.responses", typed_frames(events), wants_usage=True)
    assert stored == RESPONSE_DONE


@pytest.mark.parametrize(
    "last",
    [
        {"type": "response.failed", "response": {**RESPONSE_DONE, "status": "failed"}},
        {"type": "response.incomplete", "response": {**RESPONSE_DONE, "status": "incomplete"}},
        {"type": "error", "code": "server_error", "message": "boom", "param": None},
    ],
)
def test_responses_failure_events_store_nothing(last: dict[str, Any]) -> None:
    events = [*response_events(RESPONSE_DONE)[:-1], {**last, "sequence_number": 99}]
    wire = typed_frames(events)
    forwarded, stored = record("openai.responses", wire, wants_usage=True)
    assert (forwarded, stored) == (wire, None)


# -- Anthropic messages ----------------------------------------------------------------------

MESSAGE: dict[str, Any] = {
    "id": "msg_01",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-5-20250929",
    "content": [
        {"type": "thinking", "thinking": "The user wants the capital.", "signature": "c2ln=="},
        {
            "type": "text",
            "text": "Paris is the capital.",
            "citations": [
                {
                    "type": "char_location",
                    "cited_text": "Paris is the capital of France.",
                    "document_index": 0,
                    "document_title": "Facts",
                    "start_char_index": 0,
                    "end_char_index": 31,
                }
            ],
        },
        {"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {"q": "Paris", "n": 2}},
    ],
    "stop_reason": "tool_use",
    "stop_sequence": None,
    "usage": {
        "input_tokens": 25,
        "output_tokens": 40,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "service_tier": "standard",
    },
}


def anthropic_events(message: dict[str, Any], json_parts: list[str]) -> list[dict[str, Any]]:
    start = {**copy.deepcopy(message), "content": [], "stop_reason": None}
    start["usage"] = {**message["usage"], "output_tokens": 1}
    _, text, tool = message["content"]

    def delta(index: int, **d: Any) -> dict[str, Any]:
        return {"type": "content_block_delta", "index": index, "delta": d}

    return [
        {"type": "message_start", "message": start},
        {
            "type": "content_block_start",
            "index": 0,
            "content_block": {"type": "thinking", "thinking": "", "signature": ""},
        },
        delta(0, type="thinking_delta", thinking="The user wants"),
        delta(0, type="thinking_delta", thinking=" the capital."),
        delta(0, type="signature_delta", signature="c2ln=="),
        {"type": "content_block_stop", "index": 0},
        {
            "type": "content_block_start",
            "index": 1,
            "content_block": {"type": "text", "text": "", "citations": []},
        },
        delta(1, type="citations_delta", citation=text["citations"][0]),
        delta(1, type="text_delta", text="Paris is"),
        delta(1, type="text_delta", text=" the capital."),
        {"type": "content_block_stop", "index": 1},
        {"type": "content_block_start", "index": 2, "content_block": {**tool, "input": {}}},
        *[delta(2, type="input_json_delta", partial_json=p) for p in json_parts],
        {"type": "content_block_stop", "index": 2},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "tool_use", "stop_sequence": None},
            "usage": {"output_tokens": 40},
        },
        {"type": "message_stop"},
    ]


def anthropic_wire(events: list[dict[str, Any]]) -> bytes:
    frames = typed_frames(events)
    first_end = frames.index(b"\n\n") + 2
    return frames[:first_end] + b'event: ping\ndata: {"type": "ping"}\n\n' + frames[first_end:]


MESSAGE_WIRE = anthropic_wire(anthropic_events(MESSAGE, ['{"q": "Pa', 'ris", "n"', ": 2}"]))


def final_message(wire: bytes) -> dict[str, Any]:
    client = anthropic_client(wire)
    with client.messages.stream(model="m", max_tokens=10, messages=[]) as stream:
        for _ in stream:
            pass
        return dict(stream.get_final_message().model_dump())


def test_anthropic_stream_assembles_and_replays_to_the_same_sdk_objects() -> None:
    forwarded, stored = record("anthropic.messages", MESSAGE_WIRE, wants_usage=False)
    assert forwarded == MESSAGE_WIRE
    direct = anthropic_client(json.dumps(MESSAGE).encode(), JSON).messages.create(
        model="m", max_tokens=10, messages=[]
    )
    again = anthropic_client(json.dumps(stored).encode(), JSON).messages.create(
        model="m", max_tokens=10, messages=[]
    )
    assert again.model_dump() == direct.model_dump()
    for source in (stored, MESSAGE):
        replayed = b"".join(replay_stream(ENDPOINTS["anthropic.messages"], source, True))
        assert final_message(replayed) == final_message(MESSAGE_WIRE)
    assert should_store(ENDPOINTS["anthropic.messages"], 200, stored)


def test_anthropic_error_event_or_missing_stop_stores_nothing() -> None:
    overloaded = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    error = typed_frames([overloaded])
    cut = MESSAGE_WIRE.index(b"event: message_delta")
    for wire in (
        MESSAGE_WIRE[:cut] + error,
        MESSAGE_WIRE[:cut],
        MESSAGE_WIRE + error,  # an error after message_stop: not trusted either
    ):
        forwarded, stored = record("anthropic.messages", wire, wants_usage=True)
        assert forwarded == wire
        assert stored is None


BIG = 123_456_789_012_345_678_901_234_567_890  # 30 digits: beyond 64 bits


def test_big_integer_in_a_streamed_tool_input_never_breaks_the_callers_stream() -> None:
    message = copy.deepcopy(MESSAGE)
    message["content"][2]["input"] = {"account": BIG, "nested": [{"n": -BIG}]}
    text = json.dumps(message["content"][2]["input"])
    wire = anthropic_wire(anthropic_events(message, [text[:9], text[9:20], text[20:]]))
    for size in (1, 7, 64, len(wire)):
        forwarded, stored = record("anthropic.messages", wire, wants_usage=True, size=size)
        assert forwarded == wire
        assert stored is not None
        assert stored["content"][2]["input"] == {"account": BIG, "nested": [{"n": -BIG}]}
    assert final_message(forwarded)["content"][2]["input"]["account"] == BIG  # the SDK reads it
    replayed = b"".join(replay_stream(ENDPOINTS["anthropic.messages"], stored, True))
    assert final_message(replayed) == final_message(wire)


@pytest.mark.parametrize(
    "payload",
    [
        '{"n": ' + "9" * 5000 + "}",  # beyond Python's int-from-text digit limit
        "[" * 3000 + "]" * 3000,  # deeper than the JSON parser's recursion limit
    ],
)
def test_tool_input_the_assembler_cannot_parse_stores_nothing_and_never_raises(
    payload: str,
) -> None:
    wire = anthropic_wire(anthropic_events(MESSAGE, [payload]))
    forwarded, stored = record("anthropic.messages", wire, wants_usage=True, size=100)
    assert forwarded == wire
    assert stored is None


def test_a_huge_event_the_recorder_cannot_parse_is_forwarded_and_stores_nothing() -> None:
    deep = b"data: " + b"[" * 3000 + b"]" * 3000 + b"\n\n"
    forwarded, stored = record("openai.chat", CHAT_WIRE[:40] + deep + CHAT_WIRE[40:], True)
    assert stored is None
    assert deep in forwarded


# -- Google Gemini ---------------------------------------------------------------------------

BIG_G = 2**70  # beyond 64 bits, in a Gemini function call's args
GEMINI_USAGE = {"promptTokenCount": 4, "candidatesTokenCount": 6, "totalTokenCount": 10}
GEMINI_CHUNKS: list[dict[str, Any]] = [
    {
        "candidates": [gem(["Bonjour"])],
        "usageMetadata": {"promptTokenCount": 4, "totalTokenCount": 4},
        "modelVersion": "gemini-2.0-flash",
        "responseId": "r1",
    },
    {"candidates": [gem([" le monde"])], "modelVersion": "gemini-2.0-flash", "responseId": "r1"},
    {
        "candidates": [gem([" !"], "STOP")],
        "usageMetadata": GEMINI_USAGE,
        "modelVersion": "gemini-2.0-flash",
        "responseId": "r1",
    },
]
GEMINI_WIRE = b"".join(f"data: {json.dumps(c)}\r\n\r\n".encode() for c in GEMINI_CHUNKS)


def gemini_stream(wire: bytes) -> list[dict[str, Any]]:
    client = google_client(wire)
    chunks = client.models.generate_content_stream(model="gemini-2.0-flash", contents="hi")
    # sdk_http_response holds the transport's headers (content-length): not the answer.
    return [c.model_dump(exclude={"sdk_http_response"}) for c in chunks]


def test_gemini_text_stream_is_stored_compacted_and_the_sdk_reads_the_same_answer() -> None:
    forwarded, stored = record("google.stream_generate", GEMINI_WIRE, wants_usage=True, size=5)
    assert forwarded == GEMINI_WIRE
    assert stored is not None
    assert len(stored[CHUNKS]) == 1  # three plain-text chunks folded into the last one
    assert should_store(ENDPOINTS["google.stream_generate"], 200, stored)
    replayed = b"".join(replay_stream(ENDPOINTS["google.stream_generate"], stored, True))
    original, again = gemini_stream(GEMINI_WIRE), gemini_stream(replayed)

    def text(chunks: list[dict[str, Any]]) -> str:
        return "".join(p["text"] for c in chunks for p in c["candidates"][0]["content"]["parts"])

    assert text(again) == text(original) == "Bonjour le monde !"
    last, last_again = original[-1], again[-1]
    for key in ("usage_metadata", "model_version", "response_id"):
        assert last_again[key] == last[key]
    assert last_again["candidates"][0]["finish_reason"] == last["candidates"][0]["finish_reason"]


def cand(parts: list[dict[str, Any]], index: int = 0, **extra: Any) -> dict[str, Any]:
    return {"content": {"parts": parts, "role": "model"}, "index": index, **extra}


THOUGHT_CHUNKS: list[dict[str, Any]] = [
    {"candidates": [cand([{"text": "Let me think", "thought": True}])]},
    {"candidates": [cand([{"text": "Hi", "thoughtSignature": "c2ln"}])]},
    {"candidates": [gem([" there"])]},
    {"candidates": [cand([{"functionCall": {"name": "f", "args": {"n": BIG_G}}}])]},
    {"candidates": [gem(["a"]), cand([{"text": "b"}], 1)]},
    {
        "candidates": [gem(["!"], "STOP"), cand([{"text": ""}], 1, finishReason="STOP")],
        "usageMetadata": {"totalTokenCount": 9},
    },
]


def test_gemini_chunks_with_thoughts_signatures_calls_or_candidates_are_kept_as_they_are() -> None:
    wire = b"".join(f"data: {json.dumps(c)}\r\n\r\n".encode() for c in THOUGHT_CHUNKS)
    forwarded, stored = record("google.stream_generate", wire, wants_usage=True)
    assert forwarded == wire
    assert stored is not None
    # no two neighbours are both plain text (" there" is followed by a call): all six stay
    assert stored[CHUNKS] == THOUGHT_CHUNKS
    replayed = b"".join(replay_stream(ENDPOINTS["google.stream_generate"], stored, True))
    assert gemini_stream(replayed) == gemini_stream(wire)


def test_gemini_stream_without_a_finish_reason_or_with_an_error_stores_nothing() -> None:
    error = (
        b'data: {"error": {"code": 503, "message": "overloaded", "status": "UNAVAILABLE"}}\r\n\r\n'
    )
    two = b"".join(f"data: {json.dumps(c)}\r\n\r\n".encode() for c in GEMINI_CHUNKS[:2])
    for wire in (two, two + error):
        forwarded, stored = record("google.stream_generate", wire, wants_usage=True)
        assert (forwarded, stored) == (wire, None)


def test_a_stored_non_streamed_gemini_answer_replays_as_one_chunk() -> None:
    answer = {"candidates": [gem(["Bonjour le monde !"], "STOP")], "usageMetadata": GEMINI_USAGE}
    replayed = b"".join(replay_stream(ENDPOINTS["google.stream_generate"], answer, True))
    chunks = gemini_stream(replayed)
    assert len(chunks) == 1
    assert chunks[0]["candidates"][0]["content"]["parts"][0]["text"] == "Bonjour le monde !"


def test_endpoints_that_do_not_stream_refuse_to_record_or_replay() -> None:
    for name in ("openai.embeddings", "google.embed", "google.batch_embed"):
        with pytest.raises(ValueError, match="does not stream"):
            StreamRecorder(ENDPOINTS[name], True)
        with pytest.raises(ValueError, match="does not stream"):
            replay_stream(ENDPOINTS[name], {}, True)


def anthropic_raw(wire: bytes) -> list[dict[str, Any]]:
    """The SDK's raw events with consecutive deltas of one kind on one block joined."""
    client = anthropic_client(wire)
    events = client.messages.create(model="m", max_tokens=10, messages=[], stream=True)
    out: list[dict[str, Any]] = []
    for event in events:
        dumped = dict(event.model_dump())
        previous = out[-1] if out else None
        if (
            previous is not None
            and dumped["type"] == previous["type"] == "content_block_delta"
            and dumped["index"] == previous["index"]
            and dumped["delta"]["type"] == previous["delta"]["type"]
            and dumped["delta"]["type"] != "citations_delta"
        ):
            for key, value in dumped["delta"].items():
                if key != "type":
                    previous["delta"][key] += value
            continue
        out.append(dumped)
    for event in out:  # JSON text may be spaced differently: compare what it says
        delta = event.get("delta") or {}
        if delta.get("type") == "input_json_delta":
            delta["partial_json"] = json.loads(delta["partial_json"])
    return out


def test_anthropic_replayed_raw_events_match_the_original_up_to_delta_cuts() -> None:
    _, stored = record("anthropic.messages", MESSAGE_WIRE, wants_usage=True)
    replayed = b"".join(replay_stream(ENDPOINTS["anthropic.messages"], stored, True))
    original, again = anthropic_raw(MESSAGE_WIRE), anthropic_raw(replayed)
    # message_start: the stream's output_tokens so far is not stored (the final count is)
    assert again[0]["message"]["usage"]["output_tokens"] == 40
    original[0]["message"]["usage"]["output_tokens"] = 40
    # the original text block got its citation before its text; the replay after: same block
    assert sorted(map(json.dumps, again)) == sorted(map(json.dumps, original))
    assert [e["type"] for e in again] == [e["type"] for e in original]


def test_stream_bytes_bench_records_the_stream_it_measures() -> None:
    from bench.stream_bytes import measure, wire

    sizes = measure(chars=1024, token_chars=4)
    assert sizes["events"] == 256 + 4  # role chunk, 256 tokens, finish, usage, [DONE]
    assert sizes["sse_bytes"] == len(wire(1024, 4))
    # the assembled answer is far smaller than the events it came from, raw and compressed
    assert sizes["assembled_msgpack_bytes"] * 20 < sizes["sse_bytes"]
    assert sizes["assembled_msgpack_zlib_bytes"] < sizes["sse_zlib_bytes"]


@pytest.mark.parametrize("wants_usage", [True, False])
def test_a_stream_past_max_bytes_is_forwarded_with_the_usage_rule_but_not_stored(
    wants_usage: bool,
) -> None:
    recorder = StreamRecorder(ENDPOINTS["openai.chat"], wants_usage, max_bytes=len(CHAT_WIRE) // 2)
    out = b"".join(recorder.feed(CHAT_WIRE[i : i + 50]) for i in range(0, len(CHAT_WIRE), 50))
    out += recorder.close()
    usage_frame = data_frames(CHAT_CHUNKS[-1:])
    assert out == (CHAT_WIRE if wants_usage else CHAT_WIRE.replace(usage_frame, b""))
    assert recorder.finish() is None
    unlimited = StreamRecorder(ENDPOINTS["openai.chat"], wants_usage, max_bytes=None)
    unlimited.feed(CHAT_WIRE)
    assert unlimited.finish() is not None


def test_after_an_error_event_the_forced_usage_chunk_is_still_dropped() -> None:
    error = b'data: {"error": {"message": "overloaded", "type": "server_error"}}\n\n'
    wire = data_frames(CHAT_CHUNKS[:3]) + error + data_frames(CHAT_CHUNKS[3:]) + b"data: [DONE]\n\n"
    forwarded, stored = record("openai.chat", wire, wants_usage=False)
    assert stored is None
    assert forwarded == wire.replace(data_frames(CHAT_CHUNKS[-1:]), b"")
