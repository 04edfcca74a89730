"""The cacheable LLM endpoints and everything that depends on their JSON and SSE shapes. No I/O.

- :func:`match` tells which endpoint a request goes to (POST only, any base path: OpenAI,
  Azure OpenAI deployments, vLLM, Ollama, gateways; Anthropic messages; Google Gemini).
- :func:`wants_stream`, :func:`upstream_body`: whether the caller asked for a stream, and the
  body to send upstream (a streamed chat or legacy completion asks for the usage chunk).
- :class:`StreamRecorder`: one per streamed miss; forwards each complete event's bytes as it
  arrives and assembles the non-streamed answer at the end (``None`` unless the stream ended
  normally). It never raises out of :meth:`~StreamRecorder.feed` or
  :meth:`~StreamRecorder.finish`: the caller's stream always gets the upstream's bytes.
- :func:`replay_stream`: SSE bytes synthesised from a stored answer, for a streamed hit.
- :func:`should_store`, :func:`model_of`: the default storing rule and the model name.

What a synthesised stream keeps: the SDKs build the same final objects from it as from the
original stream (text, tool calls and their arguments, thinking and signatures, citations,
refusals, logprobs, finish/stop reasons, usage), and the same non-streamed object from the
assembled JSON as from the upstream's own non-streamed answer. What it does not keep: how the
upstream cut the text into deltas (each text is one delta), per-chunk values that vary along
a stream (every OpenAI chunk repeats the stored ``id``, ``created``, ``model`` and
``system_fingerprint``; per-chunk ``obfuscation`` padding is gone), keep-alive comments and
Anthropic ``ping`` events.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from fleetcache.core._anthropic_sse import MessageAssembler, replay_events
from fleetcache.core._openai_sse import (
    ChatCompletionAssembler,
    ResponseAssembler,
    TextCompletionAssembler,
    replay_chunks,
    replay_response_events,
    replay_text_chunks,
)
from fleetcache.core.sse import Event, SSEParser, encode

__all__ = [
    "CHUNKS",
    "DEFAULT_MAX_BYTES",
    "ENDPOINTS",
    "Endpoint",
    "StreamRecorder",
    "match",
    "model_of",
    "replay_stream",
    "should_store",
    "upstream_body",
    "wants_stream",
]

#: Bytes of one stream a :class:`StreamRecorder` assembles at most (32 MiB); a longer stream is
#: forwarded all the same and not stored.
DEFAULT_MAX_BYTES = 32 * 1024 * 1024

#: The key under which a Gemini stream's chunks are stored (no non-streamed twin shares it).
CHUNKS = "__chunks__"


@dataclass(frozen=True)
class Endpoint:
    """One kind of cacheable endpoint.

    ``name`` is one of ``openai.chat``, ``openai.responses``, ``openai.embeddings``,
    ``openai.completions``, ``anthropic.messages``, ``google.generate``,
    ``google.stream_generate``, ``google.embed``, ``google.batch_embed``; ``provider`` its
    first part. ``ignored_fields``: top-level body fields that never change the answer (the
    default ``ignore=`` of the key). ``ignored_markers``: keys that never change the answer
    wherever they sit in the body's message, system and tool blocks (Anthropic's
    ``cache_control``). ``shares_stream_entry``: a streamed and a non-streamed request share
    one entry (the stored answer is the non-streamed JSON). ``streams``: the endpoint can
    answer with SSE at all.
    """

    name: str
    ignored_fields: frozenset[str]
    shares_stream_entry: bool
    streams: bool
    ignored_markers: frozenset[str] = frozenset()

    @property
    def provider(self) -> str:
        """``openai``, ``anthropic`` or ``google``."""
        return self.name.partition(".")[0]


_OPENAI_IGNORED = frozenset(
    {
        "stream",
        "stream_options",
        "user",
        "metadata",
        "store",
        "safety_identifier",
        "prompt_cache_key",
    }
)

ENDPOINTS: dict[str, Endpoint] = {
    e.name: e
    for e in (
        Endpoint("openai.chat", _OPENAI_IGNORED, shares_stream_entry=True, streams=True),
        Endpoint("openai.responses", _OPENAI_IGNORED, shares_stream_entry=True, streams=True),
        Endpoint(
            "openai.completions",
            frozenset({"stream", "stream_options", "user"}),
            shares_stream_entry=True,
            streams=True,
        ),
        Endpoint(
            "openai.embeddings", frozenset({"user"}), shares_stream_entry=False, streams=False
        ),
        Endpoint(
            "anthropic.messages",
            frozenset({"stream", "metadata"}),
            shares_stream_entry=True,
            streams=True,
            ignored_markers=frozenset({"cache_control"}),
        ),
        Endpoint("google.generate", frozenset(), shares_stream_entry=False, streams=False),
        Endpoint("google.stream_generate", frozenset(), shares_stream_entry=False, streams=True),
        Endpoint("google.embed", frozenset(), shares_stream_entry=False, streams=False),
        Endpoint("google.batch_embed", frozenset(), shares_stream_entry=False, streams=False),
    )
}

_GOOGLE_PATH = re.compile(
    r"/(?:models|tunedModels)/(?P<model>[^/:]+)"
    r":(?P<method>generateContent|streamGenerateContent|embedContent|batchEmbedContents)$"
)
_GOOGLE_METHODS = {
    "generateContent": "google.generate",
    "streamGenerateContent": "google.stream_generate",
    "embedContent": "google.embed",
    "batchEmbedContents": "google.batch_embed",
}
#: Path endings of the OpenAI-style endpoints, longest first (``/chat/completions`` before
#: ``/completions``).
_OPENAI_SUFFIXES = (
    ("/chat/completions", "openai.chat"),
    ("/completions", "openai.completions"),
    ("/responses", "openai.responses"),
    ("/embeddings", "openai.embeddings"),
)


def match(method: str, path: str) -> Endpoint | None:
    """The endpoint a request goes to, or ``None`` (not POST, or not a known LLM path).

    ``path`` is the URL path without the query (percent-decoding is not needed: the known
    paths are plain ASCII). Any base path matches: ``/v1/chat/completions``,
    ``/openai/deployments/{dep}/chat/completions``, ``/api/v1/chat/completions``,
    ``/v1/messages`` (also behind a gateway prefix), ``/v1beta/models/{model}:generateContent``.
    """
    if method.upper() != "POST":
        return None
    google = _GOOGLE_PATH.search(path)
    if google is not None:
        return ENDPOINTS[_GOOGLE_METHODS[google.group("method")]]
    for suffix, name in _OPENAI_SUFFIXES:
        if path.endswith(suffix):
            return ENDPOINTS[name]
    if path.endswith("/v1/messages"):
        return ENDPOINTS["anthropic.messages"]
    return None


def wants_stream(ep: Endpoint, body: Mapping[str, Any]) -> bool:
    """True when the request asks for SSE: ``"stream": true`` (OpenAI, Anthropic) or the
    ``:streamGenerateContent`` path (Google). ``False`` for endpoints that never stream."""
    if ep.name == "google.stream_generate":
        return True
    return ep.streams and ep.provider != "google" and body.get("stream") is True


def upstream_body(ep: Endpoint, body: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """The body to send upstream and whether the caller asked for usage in its stream.

    A streamed chat or legacy completion is sent with ``stream_options.include_usage = true``
    (so every stored entry has its usage; the usage chunk reaches the caller only when the
    second value is true). Any other body is returned as is (not copied) with ``True``: its
    usage is part of the answer anyway.
    """
    if ep.name not in ("openai.chat", "openai.completions") or not wants_stream(ep, body):
        return body, True
    options = body.get("stream_options")
    options = dict(options) if isinstance(options, Mapping) else {}
    asked = options.get("include_usage") is True
    if asked:
        return body, True
    options["include_usage"] = True
    return {**body, "stream_options": options}, False


# -- recording a streamed miss -----------------------------------------------------------------


class _Assembler(Protocol):
    def add(self, event: Mapping[str, Any]) -> None: ...

    @property
    def complete(self) -> bool: ...

    def result(self) -> dict[str, Any]: ...


def _plain_text(chunk: Mapping[str, Any], *, last: bool) -> str | None:
    """The text of a one-candidate chunk whose parts are all plain text (no thought, no
    signature, no call), else ``None``; with ``last=False`` the candidate must also hold
    nothing but its content (no finish reason, ratings or citations yet)."""
    candidates = chunk.get("candidates")
    if not isinstance(candidates, list) or len(candidates) != 1:
        return None
    candidate = candidates[0]
    if not isinstance(candidate, Mapping) or (not last and set(candidate) - {"content", "index"}):
        return None
    content = candidate.get("content")
    parts = content.get("parts") if isinstance(content, Mapping) else None
    if not isinstance(parts, list) or not parts:
        return None
    if not all(isinstance(p, Mapping) and set(p) == {"text"} for p in parts):
        return None
    texts = [p["text"] for p in parts]
    return "".join(texts) if all(isinstance(t, str) for t in texts) else None


def _same_top(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    keys = ("modelVersion", "responseId")
    return all(a.get(k) == b.get(k) for k in keys)


def compact_gemini(chunks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Merge runs of plain-text Gemini chunks: a chunk whose one candidate holds only text
    parts (and no finish reason yet) is folded into the next such chunk of the same
    ``modelVersion`` and ``responseId``, whose text becomes one part holding both texts;
    that later chunk keeps its own fields (finish reason, usage, ratings). Any other chunk
    (thoughts, signatures, calls, several candidates) is kept as it is. The concatenated text,
    the last chunk's finish reason and usage are unchanged; how the text was cut is not."""
    out: list[dict[str, Any]] = []
    for chunk in chunks:
        previous = out[-1] if out else None
        head = None if previous is None else _plain_text(previous, last=False)
        tail = _plain_text(chunk, last=True)
        if previous is None or head is None or tail is None or not _same_top(previous, chunk):
            out.append(copy.deepcopy(chunk))
            continue
        merged = copy.deepcopy(chunk)
        merged["candidates"][0]["content"]["parts"] = [{"text": head + tail}]
        out[-1] = merged
    return out


class _GeminiChunks:
    """Gemini stream chunks (compacted by :func:`compact_gemini`); complete once a chunk
    carries a finish reason on each of its candidates."""

    def __init__(self) -> None:
        self.chunks: list[dict[str, Any]] = []
        self._finished = False

    def add(self, event: Mapping[str, Any]) -> None:
        self.chunks.append(copy.deepcopy(dict(event)))
        candidates = event.get("candidates")
        if isinstance(candidates, list) and candidates:
            self._finished = all(
                isinstance(c, Mapping) and c.get("finishReason") for c in candidates
            )

    @property
    def complete(self) -> bool:
        return self._finished

    def result(self) -> dict[str, Any]:
        return {CHUNKS: compact_gemini(self.chunks)}


def _assembler(ep: Endpoint) -> _Assembler:
    if ep.name == "openai.chat":
        return ChatCompletionAssembler()
    if ep.name == "openai.completions":
        return TextCompletionAssembler()
    if ep.name == "openai.responses":
        return ResponseAssembler()
    if ep.name == "anthropic.messages":
        return MessageAssembler()
    if ep.name == "google.stream_generate":
        return _GeminiChunks()
    raise ValueError(f"endpoint {ep.name} does not stream")


class StreamRecorder:
    """Record one streamed miss: forward each complete event as it arrives, assemble at the end.

    :meth:`feed` takes the upstream's bytes as they come and returns the bytes to hand the
    caller now: every complete block (event) unchanged, in order, except the usage chunk
    (``choices == []``) of a chat or legacy completion when ``caller_wants_usage`` is false
    (the chunk :func:`upstream_body` asked for). At upstream EOF call :meth:`close` (the bytes
    of an incomplete last block, to forward too) and :meth:`finish` (the answer to store, or
    ``None``). Neither raises: a malformed, huge or odd event only means nothing is stored.
    ``max_bytes`` (default :data:`DEFAULT_MAX_BYTES`, 32 MiB; ``None``: no limit) bounds what is
    kept: past it the stream is still forwarded (the usage chunk rule too) but not stored.
    """

    def __init__(
        self, ep: Endpoint, caller_wants_usage: bool, *, max_bytes: int | None = DEFAULT_MAX_BYTES
    ) -> None:
        self.ep = ep
        self._drop_usage = not caller_wants_usage and ep.name in (
            "openai.chat",
            "openai.completions",
        )
        self._parser = SSEParser()
        self._assembler = _assembler(ep)
        self._openai_sse = ep.name in ("openai.chat", "openai.completions")
        self._max_bytes = max_bytes
        self._seen = 0  # bytes fed so far
        self._done = False  # [DONE] seen (chat and legacy completions)
        self._failed = False  # an error event, a parse failure, too big: store nothing
        self._closed = False
        #: Events seen so far.
        self.events = 0

    def feed(self, chunk: bytes) -> bytes:
        """Upstream bytes in (any chunking); the bytes to forward to the caller now out."""
        self._seen += len(chunk)
        if self._max_bytes is not None and self._seen > self._max_bytes and not self._failed:
            self._failed = True  # too big to keep: stop assembling, free what was kept
            self._assembler = _assembler(self.ep)
        try:
            blocks = self._parser.feed(chunk)
        except Exception:  # pragma: no cover - the parser only buffers and splits bytes
            self._failed = True
            return bytes(chunk)
        out = bytearray()
        for block in blocks:
            if block.event is None or self._on_event(block.event):
                out += block.raw
        return bytes(out)

    def close(self) -> bytes:
        """Upstream EOF: the bytes of an incomplete last block (``b""`` when none), to forward
        as they are; the event they started is not recorded. Later calls return ``b""``."""
        if self._closed:
            return b""
        self._closed = True
        return self._parser.close()

    def finish(self) -> dict[str, Any] | None:
        """The assembled non-streamed answer when the stream ended normally, else ``None``.

        Normal ends: ``[DONE]`` after every choice finished (chat, legacy completions),
        ``response.completed`` (Responses API), ``message_stop`` (Anthropic), a Gemini chunk
        with a finish reason on every candidate (then ``{"__chunks__": [chunk, ...]}``). An
        error event, a truncated stream or an event that does not parse gives ``None``.
        Calls :meth:`close` first if it was not called.
        """
        self.close()
        try:
            if self._failed or not self._assembler.complete:
                return None
            if self._openai_sse and not self._done:
                return None
            return self._assembler.result()
        except Exception:
            return None

    def _on_event(self, event: Event) -> bool:
        """Record one event; whether to forward it. Never raises."""
        self.events += 1
        try:
            if self._failed:
                return not self._forced_usage(event, None)
            return self._record(event)
        except Exception:
            self._failed = True
            return True

    def _forced_usage(self, event: Event, data: Mapping[str, Any] | None) -> bool:
        """Whether ``event`` is the usage chunk the caller did not ask for."""
        if not self._drop_usage or event.data.startswith("[DONE]"):
            return False
        if data is None:
            parsed = json.loads(event.data)
            if not isinstance(parsed, dict):
                return False
            data = parsed
        return data.get("choices") == [] and data.get("usage") is not None

    def _record(self, event: Event) -> bool:
        if self._openai_sse and event.data.startswith("[DONE]"):
            self._done = True
            return True
        if self.ep.name == "anthropic.messages" and event.type == "ping":
            return True
        data = json.loads(event.data)
        if not isinstance(data, dict):
            raise ValueError("an event's data must be a JSON object")
        if event.type == "error" or ("error" in data and data.get("type") in (None, "error")):
            self._failed = True
            return True
        self._assembler.add(data)
        return not self._forced_usage(event, data)


# -- replaying a stored answer as a stream -------------------------------------------------------


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def replay_stream(ep: Endpoint, stored: Mapping[str, Any], caller_wants_usage: bool) -> list[bytes]:
    """The SSE events (bytes, one item per event) of a streamed hit on ``stored``.

    ``stored`` is what :meth:`StreamRecorder.finish` returned or the upstream's non-streamed
    JSON (for the endpoints that share one entry). Chat and legacy completions end with
    ``data: [DONE]`` and carry the usage chunk only when ``caller_wants_usage``; Responses API
    and Anthropic events carry their ``event:`` line; Gemini chunks are replayed as stored (a
    stored non-streamed ``GenerateContentResponse`` becomes one chunk). ``ValueError`` for an
    endpoint that does not stream.
    """
    if ep.name == "openai.chat":
        chunks = replay_chunks(stored, include_usage=caller_wants_usage)
        return [encode(_json(c)) for c in chunks] + [encode("[DONE]")]
    if ep.name == "openai.completions":
        chunks = replay_text_chunks(stored, include_usage=caller_wants_usage)
        return [encode(_json(c)) for c in chunks] + [encode("[DONE]")]
    if ep.name == "openai.responses":
        return [encode(_json(e), e["type"]) for e in replay_response_events(stored)]
    if ep.name == "anthropic.messages":
        return [encode(_json(e), e["type"]) for e in replay_events(stored)]
    if ep.name in ("google.stream_generate", "google.generate"):
        stored_chunks = stored.get(CHUNKS)
        items = stored_chunks if isinstance(stored_chunks, list) else [stored]
        return [encode(_json(c)) for c in items]
    raise ValueError(f"endpoint {ep.name} does not stream")


# -- what is stored ------------------------------------------------------------------------------

_OPENAI_REFUSED = frozenset({"length", "content_filter"})
_ANTHROPIC_REFUSED = frozenset(
    {"max_tokens", "refusal", "pause_turn", "model_context_window_exceeded"}
)


def _nonempty(value: Any) -> bool:
    return isinstance(value, (str, list, dict)) and bool(value)


def _store_chat(response: Mapping[str, Any]) -> bool:
    choices = response.get("choices")
    if not isinstance(choices, list) or not choices:
        return False
    answered = False
    for choice in choices:
        if choice.get("finish_reason") in _OPENAI_REFUSED:
            return False
        message = choice.get("message") or {}
        if _nonempty(message.get("refusal")):
            return False
        if any(
            _nonempty(message.get(k)) for k in ("content", "tool_calls", "function_call", "audio")
        ):
            answered = True
    return answered


def _store_text_completion(response: Mapping[str, Any]) -> bool:
    choices = response.get("choices")
    if not isinstance(choices, list) or not choices:
        return False
    if any(c.get("finish_reason") in _OPENAI_REFUSED for c in choices):
        return False
    return any(_nonempty(c.get("text")) for c in choices)


def _store_response(response: Mapping[str, Any]) -> bool:
    if response.get("status") != "completed" or response.get("error"):
        return False
    answered = False
    for item in response.get("output") or ():
        if item.get("type") != "message":
            answered = answered or item.get("type") != "reasoning"
            continue
        for part in item.get("content") or ():
            if part.get("type") == "refusal":
                return False
            answered = answered or _nonempty(part.get("text"))
    return answered


def _store_anthropic(response: Mapping[str, Any]) -> bool:
    if response.get("stop_reason") in _ANTHROPIC_REFUSED:
        return False
    for block in response.get("content") or ():
        kind = block.get("type")
        if kind == "text" and _nonempty(block.get("text")):
            return True
        if kind not in ("text", "thinking", "redacted_thinking"):
            return True
    return False


def _store_gemini(response: Mapping[str, Any]) -> bool:
    chunks = response.get(CHUNKS)
    items = chunks if isinstance(chunks, list) else [response]
    answered = False
    finish: dict[int, Any] = {}
    for item in items:
        if (item.get("promptFeedback") or {}).get("blockReason"):
            return False
        for n, candidate in enumerate(item.get("candidates") or ()):
            index = candidate.get("index", n)
            if candidate.get("finishReason") is not None:
                finish[index] = candidate["finishReason"]
            for part in (candidate.get("content") or {}).get("parts") or ():
                if part.get("thought"):
                    continue
                answered = answered or any(v not in ("", None) for v in part.values())
    return answered and bool(finish) and all(r == "STOP" for r in finish.values())


def _store_embeddings(response: Mapping[str, Any], name: str) -> bool:
    if name == "openai.embeddings":
        data = response.get("data")
        return (
            isinstance(data, list)
            and bool(data)
            and all(_nonempty(d.get("embedding")) for d in data)
        )
    if name == "google.embed":
        return _nonempty((response.get("embedding") or {}).get("values"))
    embeddings = response.get("embeddings")
    return (
        isinstance(embeddings, list)
        and bool(embeddings)
        and all(_nonempty(e.get("values")) for e in embeddings)
    )


def should_store(ep: Endpoint, status: int, response: Mapping[str, Any]) -> bool:
    """The default storing rule: a 2xx answer that is complete and not empty.

    Refused: any non-2xx status; OpenAI chat/legacy completions with a ``finish_reason`` of
    ``length`` or ``content_filter``, a ``refusal``, or no content, tool call or audio;
    Responses API answers whose ``status`` is not ``completed`` (``incomplete``, ``failed``),
    that hold a refusal part or no output text, tool call or other output; Anthropic
    ``stop_reason`` ``max_tokens``, ``refusal``, ``pause_turn`` or
    ``model_context_window_exceeded``, or no non-empty text or other block; Gemini answers
    whose candidates did not all finish with ``STOP`` (``MAX_TOKENS``, ``SAFETY``,
    ``RECITATION`` ...), a blocked prompt, or no non-thought part; embeddings without vectors.
    Never raises: an answer of an unexpected shape is not stored.
    """
    if not 200 <= status < 300 or not isinstance(response, Mapping):
        return False
    try:
        if ep.name == "openai.chat":
            return _store_chat(response)
        if ep.name == "openai.completions":
            return _store_text_completion(response)
        if ep.name == "openai.responses":
            return _store_response(response)
        if ep.name == "anthropic.messages":
            return _store_anthropic(response)
        if ep.name in ("google.generate", "google.stream_generate"):
            return _store_gemini(response)
        return _store_embeddings(response, ep.name)
    except (AttributeError, TypeError, KeyError, ValueError):
        return False


def model_of(
    ep: Endpoint, request_body: Mapping[str, Any], response: Mapping[str, Any], path: str
) -> str | None:
    """The model name for the per-model counters, or ``None`` when none is known.

    The answer's ``model`` (OpenAI, Anthropic) or ``modelVersion`` (Gemini, also inside a
    stored stream's first chunk), else the request's ``model``, else the model in a Google
    path (``.../models/{model}:generateContent``) or an Azure path
    (``.../deployments/{deployment}/...``: the deployment name).
    """
    candidates: list[Any] = [response.get("model"), response.get("modelVersion")]
    chunks = response.get(CHUNKS)
    if isinstance(chunks, list) and chunks and isinstance(chunks[0], Mapping):
        candidates.append(chunks[0].get("modelVersion"))
    candidates.append(request_body.get("model"))
    google = _GOOGLE_PATH.search(path)
    if google is not None:
        candidates.append(google.group("model"))
    azure = re.search(r"/deployments/([^/]+)/", path)
    if azure is not None:
        candidates.append(azure.group(1))
    for candidate in candidates:
        if isinstance(candidate, str) and candidate:
            return candidate
    return None
