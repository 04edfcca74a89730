"""One fake LLM upstream for the caching transport's tests: OpenAI-style chat completions,
Responses API, embeddings; Anthropic messages; Gemini generate/stream/embed. It counts the
calls, keeps each request, answers with the upstream's request-id header, and writes into
every answer *who* answered (host, port, path and the routing headers), so a test sees a
wrong answer as a wrong text, not only as a count. Streams are sent event by event; ``hold``
keeps the rest of a stream back after its first event until the test sets it.

Works with both flavours: ``mock(httpx2)`` / ``mock(httpx)`` give a ``MockTransport``.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from fleetcache.core._anthropic_sse import replay_events
from fleetcache.core._openai_sse import replay_chunks, replay_response_events


def chat(text: str, model: str = "gpt-4o-mini") -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": model,
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "logprobs": None,
                "message": {"role": "assistant", "content": text, "refusal": None},
            }
        ],
        "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18},
    }


def response(text: str, model: str = "gpt-4o-mini") -> dict[str, Any]:
    return {
        "id": "resp_fake",
        "object": "response",
        "created_at": 1_700_000_000,
        "status": "completed",
        "model": model,
        "output": [
            {
                "type": "message",
                "id": "msg_fake",
                "status": "completed",
                "role": "assistant",
                "content": [{"type": "output_text", "text": text, "annotations": []}],
            }
        ],
        "usage": {
            "input_tokens": 5,
            "output_tokens": 3,
            "total_tokens": 8,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens_details": {"reasoning_tokens": 0},
        },
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "error": None,
        "incomplete_details": None,
        "instructions": None,
        "metadata": {},
        "temperature": 1.0,
        "top_p": 1.0,
        "text": {"format": {"type": "text"}},
    }


def message(text: str, model: str = "claude-sonnet-4-5") -> dict[str, Any]:
    return {
        "id": "msg_fake",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 20, "output_tokens": 9},
    }


def gemini(text: str, finish: str | None = "STOP") -> dict[str, Any]:
    cand: dict[str, Any] = {"content": {"role": "model", "parts": [{"text": text}]}, "index": 0}
    if finish:
        cand["finishReason"] = finish
    return {
        "candidates": [cand],
        "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 4, "totalTokenCount": 7},
        "modelVersion": "gemini-2.0-flash",
    }


def vector(text: str) -> list[float]:
    """A deterministic fake embedding of ``text``."""
    return [float(len(text)), float(sum(map(ord, text)) % 97)]


@dataclass
class Upstream:
    """The fake API (see the module docstring)."""

    calls: int = 0
    requests: list[Any] = field(default_factory=list)
    bodies: list[dict[str, Any]] = field(default_factory=list)
    hold: threading.Event | None = None
    sent_first: threading.Event = field(default_factory=threading.Event)
    status: int = 200
    fail_after: int | None = None  # streams: a network error after n events
    delay: float = 0.0  # seconds each non-streamed answer takes (single-flight tests)
    frame_delay: float = 0.0  # seconds before each stream event after the first
    chat_usage: dict[str, Any] | None = None  # the chat completions' usage (else 11/7)
    message_usage: dict[str, Any] | None = None  # the Anthropic messages' usage (else 20/9)
    answer_model: str | None = None  # the ``model`` answers name (else the request's)
    embed_tokens: int | None = None  # an embeddings request's prompt tokens (else 2/input)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def who(self, request: Any) -> str:
        h = request.headers
        return (
            f"from {request.url.host}:{request.url.port}{request.url.path}"
            f" route={h.get('x-portkey-provider', '-')} beta={h.get('anthropic-beta', '-')}"
        )

    # -- answers ---------------------------------------------------------------------------

    def answer(self, request: Any) -> tuple[dict[str, Any] | None, list[bytes] | None, str]:
        """``(json answer, or SSE frames, request-id header name)``."""
        path = request.url.path
        body: dict[str, Any] = json.loads(request.content or b"{}")
        text = self.who(request)
        stream = body.get("stream") is True
        if path.endswith("/chat/completions"):
            answer = chat(text, self.answer_model or body.get("model", "gpt-4o-mini"))
            if self.chat_usage is not None:
                answer["usage"] = dict(self.chat_usage)
            tools = body.get("tools")
            if tools and not stream:  # answer with a call of the first tool (instructor)
                fn = tools[0]["function"]
                props = (fn.get("parameters") or {}).get("properties") or {}
                args = {k: "Paris" for k, v in props.items() if v.get("type") == "string"}
                said = answer["choices"][0]["message"]
                said["content"] = None
                said["tool_calls"] = [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": fn["name"], "arguments": json.dumps(args)},
                    }
                ]
                answer["choices"][0]["finish_reason"] = "tool_calls"
            if not stream:
                return answer, None, "x-request-id"
            usage = bool((body.get("stream_options") or {}).get("include_usage"))
            chunks = replay_chunks(answer, include_usage=usage, chunk_chars=6)
            frames = [f"data: {json.dumps(c)}\n\n".encode() for c in chunks]
            return None, [*frames, b"data: [DONE]\n\n"], "x-request-id"
        if path.endswith("/responses"):
            answer = response(text, body.get("model", "gpt-4o-mini"))
            if not stream:
                return answer, None, "x-request-id"
            events = replay_response_events(answer)
            frames = [f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events]
            return None, frames, "x-request-id"
        if path.endswith("/embeddings"):
            inputs = body["input"]
            inputs = [inputs] if isinstance(inputs, str) else inputs
            data = [
                {"object": "embedding", "index": i, "embedding": vector(f"{text}|{s}")}
                for i, s in enumerate(inputs)
            ]
            n = 2 * len(inputs) if self.embed_tokens is None else self.embed_tokens
            return (
                {
                    "object": "list",
                    "data": data,
                    "model": body["model"],
                    "usage": {"prompt_tokens": n, "total_tokens": n},
                },
                None,
                "x-request-id",
            )
        if path.endswith("/v1/messages"):
            answer = message(text, self.answer_model or body.get("model", "claude-sonnet-4-5"))
            if self.message_usage is not None:
                answer["usage"] = dict(self.message_usage)
            if not stream:
                return answer, None, "request-id"
            events = replay_events(answer, chunk_chars=6)
            frames = [f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events]
            return None, frames, "request-id"
        if path.endswith(":generateContent"):
            return gemini(text), None, "x-goog-request-id"
        if path.endswith(":streamGenerateContent"):
            pieces = [text[:10], text[10:]]
            chunks = [gemini(pieces[0], None), gemini(pieces[1], "STOP")]
            return None, [f"data: {json.dumps(c)}\r\n\r\n".encode() for c in chunks], "x"
        if path.endswith(":batchEmbedContents"):
            n = len(body.get("requests") or [])
            values = [{"values": vector(f"{text}|{i}")} for i in range(n)]
            return {"embeddings": values}, None, "x-goog-request-id"
        if path.endswith(":embedContent"):
            return {"embedding": {"values": vector(text)}}, None, "x-goog-request-id"
        return {"error": "unknown path"}, None, "x"

    def _count(self, request: Any) -> int:
        with self.lock:
            self.calls += 1
            self.requests.append(request)
            self.bodies.append(json.loads(request.content or b"{}"))
            return self.calls

    def _frames(self, frames: list[bytes]) -> Iterator[tuple[bytes, bool]]:
        for i, frame in enumerate(frames):
            if self.fail_after is not None and i == self.fail_after:
                raise OSError("connection reset by the fake upstream")
            yield frame, i == 0

    def respond(self, mod: ModuleType, request: Any, is_async: bool) -> Any:
        n = self._count(request)
        rid = f"req_{n}"
        if self.status != 200:
            return mod.Response(self.status, json={"error": {"message": "nope"}})
        answer, frames, rid_name = self.answer(request)
        headers = {rid_name: rid}
        if frames is None:
            if self.delay:
                threading.Event().wait(self.delay)
            return mod.Response(200, json=answer, headers=headers)
        headers["content-type"] = "text/event-stream"
        body = self._async_body(mod, frames) if is_async else self._sync_body(mod, frames)
        return mod.Response(200, headers=headers, content=body)

    def _sync_body(self, mod: ModuleType, frames: list[bytes]) -> Iterator[bytes]:
        try:
            for frame, first in self._frames(frames):
                if first:
                    self.sent_first.set()
                elif self.frame_delay:
                    threading.Event().wait(self.frame_delay)
                yield frame
                if first:
                    if self.hold is not None:
                        self.hold.wait(10)
        except OSError as exc:
            raise mod.ReadError(str(exc)) from None

    async def _async_body(self, mod: ModuleType, frames: list[bytes]) -> AsyncIterator[bytes]:
        try:
            for frame, first in self._frames(frames):
                if first:
                    self.sent_first.set()
                elif self.frame_delay:
                    await asyncio.sleep(self.frame_delay)
                yield frame
                if first:
                    while self.hold is not None and not self.hold.is_set():
                        await asyncio.sleep(0.005)
        except OSError as exc:
            raise mod.ReadError(str(exc)) from None

    def mock(self, mod: ModuleType, *, is_async: bool = False) -> Any:
        """A ``MockTransport`` of flavour ``mod`` answering as this upstream."""
        if is_async:

            async def ahandle(request: Any) -> Any:
                await request.aread()
                return self.respond(mod, request, True)

            return mod.MockTransport(ahandle)
        return mod.MockTransport(lambda request: self.respond(mod, request, False))
