"""Fake LLM upstreams for the real OpenAI and Anthropic SDKs: an ``httpx2.MockTransport``
(the httpx flavour both SDKs are built on) that answers chat completions / messages, counts
the calls, keeps each request body, and streams SSE events lazily, optionally holding the
rest of a stream back until the test says so (to prove the first chunk reaches the caller
before the upstream has finished) or failing part-way."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx2

from fleetcache.core._anthropic_sse import replay_events
from fleetcache.core._openai_sse import replay_chunks


def completion(text: str = "Paris is the capital.", *, finish: str = "stop") -> dict[str, Any]:
    """An OpenAI ChatCompletion as the API sends it, with a tool call and usage."""
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "gpt-4o-mini",
        "system_fingerprint": "fp_fake",
        "choices": [
            {
                "index": 0,
                "finish_reason": finish,
                "logprobs": None,
                "message": {
                    "role": "assistant",
                    "content": text,
                    "refusal": None,
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "lookup", "arguments": '{"q": "Paris", "n": 2}'},
                        }
                    ],
                },
            }
        ],
        "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18},
    }


def message(text: str = "Bonjour from Claude.", *, stop: str = "tool_use") -> dict[str, Any]:
    """An Anthropic Message as the API sends it: text + tool_use, usage."""
    return {
        "id": "msg_fake",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5",
        "content": [
            {"type": "text", "text": text},
            {"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {"q": "Paris"}},
        ],
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": {"input_tokens": 20, "output_tokens": 9},
    }


@dataclass
class Upstream:
    """The fake API. ``answers`` is what the next calls return (the last one repeats).

    Streaming: ``hold`` (an event) makes the body wait after its first SSE event until the
    event is set (``sent_first`` / ``finished`` say how far it got); ``fail_after=n`` ends
    the body with a network error after ``n`` events; ``error_event_after=n`` sends the
    API's error event after ``n`` events; ``truncate_after=n`` ends the body cleanly after
    ``n`` events (no finish, no ``[DONE]``).
    """

    kind: str  # "openai" | "anthropic"
    answers: list[dict[str, Any]] = field(default_factory=list)
    calls: int = 0
    bodies: list[dict[str, Any]] = field(default_factory=list)
    hold: threading.Event | None = None
    fail_after: int | None = None
    error_event_after: int | None = None
    truncate_after: int | None = None
    chunk_chars: int | None = 4
    sent_first: threading.Event = field(default_factory=threading.Event)
    finished: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        if not self.answers:
            self.answers = [completion() if self.kind == "openai" else message()]

    # -- what is sent ----------------------------------------------------------------------

    def _answer(self) -> dict[str, Any]:
        return self.answers[min(self.calls - 1, len(self.answers) - 1)]

    def _events(self, body: dict[str, Any]) -> list[bytes]:
        answer = self._answer()
        if self.kind == "openai":
            usage = bool((body.get("stream_options") or {}).get("include_usage"))
            chunks = replay_chunks(answer, include_usage=usage, chunk_chars=self.chunk_chars)
            frames = [f"data: {json.dumps(c)}\n\n".encode() for c in chunks]
            return [*frames, b"data: [DONE]\n\n"]
        events = replay_events(answer, chunk_chars=self.chunk_chars)
        frames = [f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events]
        return [frames[0], b"event: ping\ndata: {}\n\n", *frames[1:]]

    def _error_frame(self) -> bytes:
        if self.kind == "openai":
            return b'data: {"error": {"message": "upstream broke", "type": "server_error"}}\n\n'
        err = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
        return f"event: error\ndata: {json.dumps(err)}\n\n".encode()

    def _plan(self, body: dict[str, Any]) -> list[bytes | Exception]:
        frames: list[bytes | Exception] = list(self._events(body))
        if self.error_event_after is not None:
            frames = [*frames[: self.error_event_after], self._error_frame()]
        if self.fail_after is not None:
            frames = [*frames[: self.fail_after], httpx2.ReadError("connection reset")]
        if self.truncate_after is not None:
            frames = frames[: self.truncate_after]
        return frames

    # -- sync transport --------------------------------------------------------------------

    def _paced(self, plan: list[bytes | Exception]) -> Iterator[tuple[bytes, bool]]:
        """Each frame of ``plan`` (an Exception in it is raised) with "is it the first",
        after which a transport waits for ``hold``; sets ``sent_first`` and ``finished``."""
        for i, frame in enumerate(plan):
            if isinstance(frame, Exception):
                raise frame
            if i == 0:
                self.sent_first.set()
            if i == len(plan) - 1:
                self.finished.set()  # the last frame is going out
            yield frame, i == 0
        self.finished.set()

    def _sync_body(self, plan: list[bytes | Exception]) -> Iterator[bytes]:
        for frame, first in self._paced(plan):
            yield frame
            if first and self.hold is not None:
                self.hold.wait(10)

    def _respond(
        self, request: httpx2.Request, stream: Callable[[list[bytes | Exception]], Any]
    ) -> httpx2.Response:
        """One call: counted and kept; the answer as JSON, or ``stream(plan)`` as SSE."""
        self.calls += 1
        body: dict[str, Any] = json.loads(request.content or b"{}")
        self.bodies.append(body)
        if not body.get("stream"):
            self.finished.set()
            return httpx2.Response(200, json=self._answer())
        headers = {"content-type": "text/event-stream"}
        return httpx2.Response(200, headers=headers, content=stream(self._plan(body)))

    def handle(self, request: httpx2.Request) -> httpx2.Response:
        return self._respond(request, self._sync_body)

    # -- async transport -------------------------------------------------------------------

    async def _async_body(self, plan: list[bytes | Exception]) -> AsyncIterator[bytes]:
        for frame, first in self._paced(plan):
            yield frame
            while first and self.hold is not None and not self.hold.is_set():
                await asyncio.sleep(0.005)

    async def ahandle(self, request: httpx2.Request) -> httpx2.Response:
        return self._respond(request, self._async_body)

    # -- SDK clients on this transport -----------------------------------------------------

    def client(self) -> Any:
        http = httpx2.Client(transport=httpx2.MockTransport(self.handle))
        if self.kind == "openai":
            import openai

            return openai.OpenAI(api_key="sk-fake", http_client=http, max_retries=0)
        import anthropic

        return anthropic.Anthropic(api_key="sk-ant-fake", http_client=http, max_retries=0)

    def async_client(self) -> Any:
        http = httpx2.AsyncClient(transport=httpx2.MockTransport(self.ahandle))
        if self.kind == "openai":
            import openai

            return openai.AsyncOpenAI(api_key="sk-fake", http_client=http, max_retries=0)
        import anthropic

        return anthropic.AsyncAnthropic(api_key="sk-ant-fake", http_client=http, max_retries=0)
