"""Pure stream assembly and replay (no I/O), checked against the real SDKs' own types."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fleetcache.core._anthropic_sse import (
    MessageAssembler,
    assemble_events,
    replay_events,
)
from fleetcache.core._openai_sse import (
    ChatCompletionAssembler,
    assemble_chunks,
    replay_chunks,
)

openai_types = pytest.importorskip("openai.types.chat")
anthropic_types = pytest.importorskip("anthropic.types")

BASE = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1700000000}
BASE["model"] = "gpt-4o-mini"


def chunk(*choices: dict[str, Any], **top: Any) -> dict[str, Any]:
    return {**BASE, "choices": list(choices), **top}


def tok(t: str) -> dict[str, Any]:
    return {"token": t, "logprob": -0.5, "bytes": list(t.encode()), "top_logprobs": []}


# A stream as the API sends it: two choices interleaved (n=2), content and logprobs on choice
# 0, a tool call whose arguments arrive in fragments next to a second tool call on choice 1,
# then the usage chunk of stream_options={"include_usage": True}.
WIRE_STREAM = [
    chunk({"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}),
    chunk({"index": 1, "delta": {"role": "assistant", "content": None}, "finish_reason": None}),
    chunk(
        {
            "index": 0,
            "delta": {"content": "Héllo"},
            "logprobs": {"content": [tok("Héllo")], "refusal": None},
            "finish_reason": None,
        },
        system_fingerprint="fp_1",
    ),
    chunk(
        {
            "index": 1,
            "delta": {
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "call_a",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": ""},
                    }
                ]
            },
            "finish_reason": None,
        }
    ),
    chunk({"index": 1, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": '{"ci'}}]}}),
    chunk(
        {
            "index": 0,
            "delta": {"content": ", wörld 🌍"},
            "logprobs": {"content": [tok(", wörld 🌍")]},
            "finish_reason": None,
        }
    ),
    chunk(
        {
            "index": 1,
            "delta": {
                "tool_calls": [
                    {"index": 0, "function": {"arguments": 'ty": "Paris"}'}},
                    {"index": 1, "id": "call_b", "type": "function"},
                ]
            },
        }
    ),
    chunk(
        {
            "index": 1,
            "delta": {"tool_calls": [{"index": 1, "function": {"name": "now", "arguments": "{}"}}]},
        }
    ),
    chunk({"index": 0, "delta": {}, "finish_reason": "stop"}),
    chunk({"index": 1, "delta": {}, "finish_reason": "tool_calls"}),
    chunk(usage={"prompt_tokens": 12, "completion_tokens": 9, "total_tokens": 21}),
]

EXPECTED = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1700000000,
    "model": "gpt-4o-mini",
    "system_fingerprint": "fp_1",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Héllo, wörld 🌍", "refusal": None},
            "finish_reason": "stop",
            "logprobs": {"content": [tok("Héllo"), tok(", wörld 🌍")], "refusal": None},
        },
        {
            "index": 1,
            "message": {
                "role": "assistant",
                "content": None,
                "refusal": None,
                "tool_calls": [
                    {
                        "id": "call_a",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                    },
                    {
                        "id": "call_b",
                        "type": "function",
                        "function": {"name": "now", "arguments": "{}"},
                    },
                ],
            },
            "finish_reason": "tool_calls",
            "logprobs": None,
        },
    ],
    "usage": {"prompt_tokens": 12, "completion_tokens": 9, "total_tokens": 21},
}


def sdk_chunk_dicts(dicts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Parse each chunk with the SDK (strictly) and dump it as the wrapper does."""
    out = []
    for d in dicts:
        model = openai_types.ChatCompletionChunk.model_validate(d)
        out.append(model.model_dump(mode="json", exclude_unset=True))
    return out


def test_openai_assembles_wire_stream_into_the_completion() -> None:
    assembler = ChatCompletionAssembler()
    for i, c in enumerate(sdk_chunk_dicts(WIRE_STREAM)):
        assert not assembler.complete or i >= 9
        assembler.add(c)
    assert assembler.complete
    got = assembler.result()
    assert got == EXPECTED
    # The SDK accepts it as a ChatCompletion, strictly validated.
    completion = openai_types.ChatCompletion.model_validate(got)
    assert completion.choices[1].message.tool_calls[0].function.arguments == '{"city": "Paris"}'


def test_openai_incomplete_stream_is_not_complete() -> None:
    assembler = ChatCompletionAssembler()
    for c in WIRE_STREAM[:9]:  # choice 1 never got its finish_reason
        assembler.add(c)
    assert not assembler.complete
    assert not ChatCompletionAssembler().complete  # no choices at all


def test_openai_refusal_and_function_call_stream() -> None:
    stream = [
        chunk({"index": 0, "delta": {"role": "assistant", "refusal": "I can"}}),
        chunk({"index": 0, "delta": {"refusal": "not help."}}),
        chunk({"index": 0, "delta": {}, "finish_reason": "stop"}),
    ]
    got = assemble_chunks(sdk_chunk_dicts(stream))
    assert got["choices"][0]["message"]["refusal"] == "I cannot help."
    assert got["choices"][0]["message"]["content"] is None
    assert "usage" not in got


@pytest.mark.parametrize("chunk_chars", [None, 1, 3, 1000])
@pytest.mark.parametrize("include_usage", [False, True])
def test_openai_replay_round_trips_exactly(chunk_chars: int | None, include_usage: bool) -> None:
    chunks = replay_chunks(EXPECTED, include_usage=include_usage, chunk_chars=chunk_chars)
    parsed = [openai_types.ChatCompletionChunk.model_validate(c) for c in chunks]
    assert all(p.object == "chat.completion.chunk" and p.id == "chatcmpl-1" for p in parsed)
    # concatenated deltas equal the stored content and tool calls
    content = "".join(
        p.choices[0].delta.content or "" for p in parsed if p.choices and p.choices[0].index == 0
    )
    assert content == "Héllo, wörld 🌍"
    args = "".join(
        tc.function.arguments or ""
        for p in parsed
        if p.choices
        for tc in p.choices[0].delta.tool_calls or ()
        if tc.index == 0
    )
    assert args == '{"city": "Paris"}'
    usage_chunks = [p for p in parsed if p.usage is not None]
    if include_usage:
        assert len(usage_chunks) == 1 and parsed[-1].choices == []
        assert parsed[-1].usage.total_tokens == 21
    else:
        assert usage_chunks == [] and all(p.choices for p in parsed)
    back = assemble_chunks([p.model_dump(mode="json", exclude_unset=True) for p in parsed])
    expected = dict(EXPECTED)
    if not include_usage:
        del expected["usage"]
    assert back == expected


def test_openai_replay_custom_tool_and_extra_message_fields() -> None:
    stored = {
        "id": "c",
        "object": "chat.completion",
        "created": 1,
        "model": "m",
        "choices": [
            {
                "index": 0,
                "finish_reason": "tool_calls",
                "logprobs": None,
                "message": {
                    "role": "assistant",
                    "content": "",
                    "refusal": None,
                    "annotations": [
                        {
                            "type": "url_citation",
                            "url_citation": {
                                "url": "u",
                                "title": "t",
                                "start_index": 0,
                                "end_index": 1,
                            },
                        }
                    ],
                    "tool_calls": [
                        {
                            "id": "x",
                            "type": "custom",
                            "custom": {"name": "sql", "input": "SELECT 1"},
                        }
                    ],
                },
            }
        ],
    }
    for size in (None, 2):
        assert assemble_chunks(replay_chunks(stored, chunk_chars=size)) == stored


def test_openai_replay_rejects_bad_input() -> None:
    with pytest.raises(TypeError):
        replay_chunks([])  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        replay_chunks(EXPECTED, chunk_chars=0)
    with pytest.raises(TypeError):
        ChatCompletionAssembler().add("x")  # type: ignore[arg-type]


texts = st.text(st.characters(blacklist_categories=["Cs"]), max_size=40)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**6), 10**6) | texts,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=8,
)


@st.composite
def completions(draw: st.DrawFn) -> dict[str, Any]:
    choices = []
    for i in range(draw(st.integers(1, 3))):
        message: dict[str, Any] = {
            "role": "assistant",
            "content": draw(st.none() | texts),
            "refusal": draw(st.none() | texts),
        }
        calls = [
            {
                "id": draw(texts),
                "type": "function",
                "function": {"name": draw(texts), "arguments": json.dumps(draw(json_values))},
            }
            for _ in range(draw(st.integers(0, 3)))
        ]
        if calls:
            message["tool_calls"] = calls
        choices.append(
            {
                "index": i,
                "message": message,
                "finish_reason": draw(st.sampled_from(["stop", "tool_calls", "length"])),
                "logprobs": None,
            }
        )
    out: dict[str, Any] = {
        "id": draw(texts),
        "object": "chat.completion",
        "created": draw(st.integers(0, 2**31)),
        "model": draw(texts.filter(bool)),
        "choices": choices,
    }
    if draw(st.booleans()):
        out["usage"] = {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}
    return out


@settings(max_examples=150, deadline=None)
@given(completions(), st.none() | st.integers(1, 7), st.booleans())
def test_openai_replay_property(stored: dict[str, Any], size: int | None, usage: bool) -> None:
    chunks = replay_chunks(stored, include_usage=usage, chunk_chars=size)
    assembler = ChatCompletionAssembler()
    for c in chunks:
        assembler.add(c)
    assert assembler.complete
    expected = dict(stored)
    if not usage:
        expected.pop("usage", None)
    assert assembler.result() == expected


# ----------------------------------------------------------------------------- Anthropic


def block_start(i: int, **block: Any) -> dict[str, Any]:
    return {"type": "content_block_start", "index": i, "content_block": block}


def block_delta(i: int, **delta: Any) -> dict[str, Any]:
    return {"type": "content_block_delta", "index": i, "delta": delta}


def block_stop(i: int) -> dict[str, Any]:
    return {"type": "content_block_stop", "index": i}


WEATHER_INPUT = {"city": "Paris", "days": [1, 2.5]}
ANTHROPIC_WIRE = [
    {
        "type": "message_start",
        "message": {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-5",
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 25, "output_tokens": 1},
        },
    },
    block_start(0, type="thinking", thinking="", signature=""),
    block_delta(0, type="thinking_delta", thinking="Let me "),
    block_delta(0, type="thinking_delta", thinking="think."),
    block_delta(0, type="signature_delta", signature="sig=="),
    block_stop(0),
    block_start(1, type="text", text=""),
    {"type": "ping"},
    block_delta(1, type="text_delta", text="Checking "),
    block_delta(1, type="text_delta", text="the wéather."),
    block_stop(1),
    block_start(2, type="tool_use", id="toolu_1", name="get_weather", input={}),
    block_delta(2, type="input_json_delta", partial_json=""),
    block_delta(2, type="input_json_delta", partial_json='{"city": "Par'),
    block_delta(2, type="input_json_delta", partial_json='is", "days": [1, 2.5]}'),
    block_stop(2),
    {
        "type": "message_delta",
        "delta": {"stop_reason": "tool_use", "stop_sequence": None},
        "usage": {"output_tokens": 57},
    },
    {"type": "message_stop"},
]

ANTHROPIC_EXPECTED = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-5",
    "content": [
        {"type": "thinking", "thinking": "Let me think.", "signature": "sig=="},
        {"type": "text", "text": "Checking the wéather."},
        {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": WEATHER_INPUT},
    ],
    "stop_reason": "tool_use",
    "stop_sequence": None,
    "usage": {"input_tokens": 25, "output_tokens": 57},
}


def sdk_event_dicts(dicts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    from pydantic import TypeAdapter

    adapter: TypeAdapter[Any] = TypeAdapter(anthropic_types.RawMessageStreamEvent)
    return [
        adapter.validate_python(d).model_dump(mode="json", exclude_unset=True)
        for d in dicts
        if d["type"] != "ping"
    ]


def test_anthropic_assembles_wire_stream() -> None:
    assembler = MessageAssembler()
    events = sdk_event_dicts(ANTHROPIC_WIRE)
    for e in events[:-1]:
        assembler.add(e)
    assert not assembler.complete
    assembler.add(events[-1])
    assert assembler.complete
    got = assembler.result()
    assert got == ANTHROPIC_EXPECTED
    anthropic_types.Message.model_validate(got)


def test_anthropic_unknown_delta_is_never_complete() -> None:
    events = [
        *ANTHROPIC_WIRE[:2],
        {"type": "content_block_delta", "index": 0, "delta": {"type": "new_delta"}},
    ]
    assembler = MessageAssembler()
    for e in [*events, *ANTHROPIC_WIRE[2:]]:
        assembler.add(e)
    assert not assembler.complete


@pytest.mark.parametrize("chunk_chars", [None, 1, 4])
def test_anthropic_replay_round_trips(chunk_chars: int | None) -> None:
    from pydantic import TypeAdapter

    adapter: TypeAdapter[Any] = TypeAdapter(anthropic_types.RawMessageStreamEvent)
    events = [
        adapter.validate_python(e)
        for e in replay_events(ANTHROPIC_EXPECTED, chunk_chars=chunk_chars)
    ]
    assert [e.type for e in events][:2] == ["message_start", "content_block_start"]
    assert events[-2].type == "message_delta" and events[-1].type == "message_stop"
    text = "".join(
        e.delta.text
        for e in events
        if e.type == "content_block_delta" and e.delta.type == "text_delta"
    )
    assert text == "Checking the wéather."
    partial = "".join(
        e.delta.partial_json
        for e in events
        if e.type == "content_block_delta" and e.delta.type == "input_json_delta"
    )
    assert json.loads(partial) == {"city": "Paris", "days": [1, 2.5]}
    back = assemble_events([e.model_dump(mode="json", exclude_unset=True) for e in events])
    assert back == ANTHROPIC_EXPECTED


def test_anthropic_replay_citations_and_other_blocks() -> None:
    citation = {
        "type": "char_location",
        "cited_text": "x",
        "document_index": 0,
        "start_char_index": 0,
        "end_char_index": 1,
    }
    stored = {
        **ANTHROPIC_EXPECTED,
        "content": [
            {"type": "text", "text": "Cited.", "citations": [citation]},
            {"type": "redacted_thinking", "data": "opaque"},
        ],
        "stop_reason": "end_turn",
    }
    assert assemble_events(replay_events(stored, chunk_chars=2)) == stored


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.builds(lambda t: {"type": "text", "text": t}, texts),
            st.builds(
                lambda i, n: {"type": "tool_use", "id": "t", "name": n, "input": i},
                st.dictionaries(texts, json_values, max_size=3),
                texts,
            ),
        ),
        max_size=4,
    ),
    st.none() | st.integers(1, 5),
)
def test_anthropic_replay_property(blocks: list[dict[str, Any]], size: int | None) -> None:
    stored = {**ANTHROPIC_EXPECTED, "content": blocks}
    assembler = MessageAssembler()
    for e in replay_events(stored, chunk_chars=size):
        assembler.add(e)
    assert assembler.complete
    assert assembler.result() == stored
