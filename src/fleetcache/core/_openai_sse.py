"""OpenAI streams <-> one stored answer (chat completions, legacy completions, Responses API).
Pure: no I/O, no SDK import. (Moved from ``integrations/_openai_stream.py``.)

Works on the JSON form of the SDK's objects (``model_dump(mode="json", exclude_unset=True)``
of a ``ChatCompletionChunk``; the dict a ``ChatCompletion`` is built from), so it does not
depend on one SDK version's classes.

- :class:`ChatCompletionAssembler` folds a stream of chunk dicts into the dict of the
  ``ChatCompletion`` the same request would have returned without ``stream=True``: content,
  refusal and tool-call argument fragments concatenated per choice (tool calls by their
  ``index``), the last ``finish_reason``, logprob lists extended, the usage chunk's usage.
- :func:`replay_chunks` turns a stored completion back into chunk dicts whose deltas
  concatenate to exactly the stored content, refusal, tool calls and logprobs; a final
  usage chunk (``choices == []``) only when ``include_usage`` is true.

- :class:`TextCompletionAssembler` / :func:`replay_text_chunks`: the same for ``/completions``.
- :class:`ResponseAssembler` / :func:`replay_response_events`: the Responses API's typed events
  (``response.created`` ... ``response.completed``) and the ``Response`` they end with.

Round trip: ``assemble(replay_chunks(c))`` gives back ``c``'s choices and usage.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "ChatCompletionAssembler",
    "ResponseAssembler",
    "TextCompletionAssembler",
    "assemble_chunks",
    "replay_chunks",
    "replay_response_events",
    "replay_text_chunks",
]

#: Top-level chunk keys that are not carried into the assembled completion: ``object`` is
#: replaced, ``choices``/``usage`` are folded separately, ``obfuscation`` is per-chunk padding.
_CHUNK_ONLY = frozenset({"object", "choices", "usage", "obfuscation"})
#: Top-level completion keys a replayed chunk repeats (the rest are not chunk fields).
_CHUNK_TOP = ("id", "created", "model", "system_fingerprint", "service_tier")
#: Keys that are set, never concatenated (identifiers, the role, timestamps).
_SET_ONCE = frozenset({"id", "type", "index", "role", "expires_at"})


def _merge(target: dict[str, Any], delta: Mapping[str, Any]) -> None:
    """Fold one delta object into ``target``: strings concatenate, lists extend, objects merge.

    The keys in ``_SET_ONCE`` are set, not concatenated; ``None`` never overwrites a value.
    """
    for key, value in delta.items():
        if value is None:
            target.setdefault(key, None)
            continue
        old = target.get(key)
        if isinstance(value, str) and isinstance(old, str) and key not in _SET_ONCE:
            target[key] = old + value
        elif isinstance(value, list) and isinstance(old, list):
            old.extend(copy.deepcopy(value))
        elif isinstance(value, Mapping) and isinstance(old, dict):
            _merge(old, value)
        else:
            target[key] = copy.deepcopy(value) if isinstance(value, (list, Mapping)) else value


class _Choice:
    __slots__ = ("finish_reason", "logprobs", "message", "tool_calls")

    def __init__(self) -> None:
        self.message: dict[str, Any] = {}
        self.tool_calls: dict[int, dict[str, Any]] = {}
        self.finish_reason: str | None = None
        self.logprobs: dict[str, Any] | None = None

    def add(self, choice: Mapping[str, Any]) -> None:
        delta = choice.get("delta") or {}
        if not isinstance(delta, Mapping):
            raise TypeError(f"chunk choice delta must be an object, got {type(delta).__name__}")
        for key, value in delta.items():
            if key == "tool_calls":
                for call in value or ():
                    index = call.get("index")
                    if not isinstance(index, int):
                        raise ValueError("a streamed tool call needs an integer 'index'")
                    state = self.tool_calls.setdefault(index, {})
                    _merge(state, {k: v for k, v in call.items() if k != "index"})
            else:
                _merge(self.message, {key: value})
        if choice.get("finish_reason") is not None:
            self.finish_reason = choice["finish_reason"]
        logprobs = choice.get("logprobs")
        if isinstance(logprobs, Mapping):
            if self.logprobs is None:
                self.logprobs = {}
            _merge(self.logprobs, logprobs)

    def result(self, index: int) -> dict[str, Any]:
        message = dict(self.message)
        message["role"] = message.get("role") or "assistant"
        message.setdefault("content", None)
        message.setdefault("refusal", None)
        if self.tool_calls:
            calls = []
            for _, state in sorted(self.tool_calls.items()):
                call = dict(state)
                call["type"] = call.get("type") or "function"
                calls.append(call)
            message["tool_calls"] = calls
        return {
            "index": index,
            "message": message,
            "finish_reason": self.finish_reason,
            "logprobs": self.logprobs,
        }


class ChatCompletionAssembler:
    """Fold ``ChatCompletionChunk`` dicts into one ``ChatCompletion`` dict.

    Feed every chunk with :meth:`add` in arrival order; :attr:`complete` tells whether the
    stream looked finished (at least one choice, each with a ``finish_reason``);
    :meth:`result` returns the assembled completion (a fresh dict each call).
    """

    def __init__(self) -> None:
        self._top: dict[str, Any] = {}
        self._choices: dict[int, _Choice] = {}
        self._usage: Any = None
        #: Chunks seen so far.
        self.chunks = 0

    def add(self, chunk: Mapping[str, Any]) -> None:
        """Fold one chunk (the JSON form of a ``ChatCompletionChunk``)."""
        if not isinstance(chunk, Mapping):
            raise TypeError(f"a chunk must be a mapping, got {type(chunk).__name__}")
        self.chunks += 1
        for key, value in chunk.items():
            if key not in _CHUNK_ONLY and value is not None:
                self._top[key] = copy.deepcopy(value)
        usage = chunk.get("usage")
        if usage is not None:
            self._usage = copy.deepcopy(usage)
        for choice in chunk.get("choices") or ():
            index = choice.get("index", 0)
            if not isinstance(index, int):
                raise ValueError("a chunk choice needs an integer 'index'")
            self._choices.setdefault(index, _Choice()).add(choice)

    @property
    def complete(self) -> bool:
        """True when at least one choice arrived and every choice has a ``finish_reason``."""
        return bool(self._choices) and all(
            c.finish_reason is not None for c in self._choices.values()
        )

    def result(self) -> dict[str, Any]:
        """The assembled ``ChatCompletion`` dict (``object == "chat.completion"``)."""
        out: dict[str, Any] = copy.deepcopy(self._top)
        out["object"] = "chat.completion"
        out["choices"] = [c.result(i) for i, c in sorted(self._choices.items())]
        if self._usage is not None:
            out["usage"] = copy.deepcopy(self._usage)
        return out


def assemble_chunks(chunks: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Assemble a whole list of chunk dicts (see :class:`ChatCompletionAssembler`)."""
    assembler = ChatCompletionAssembler()
    for chunk in chunks:
        assembler.add(chunk)
    return assembler.result()


def _pieces(text: str, size: int | None) -> list[str]:
    if size is None or len(text) <= size:
        return [text]
    return [text[i : i + size] for i in range(0, len(text), size)]


def _streamed_field(call_type: str) -> str:
    return "arguments" if call_type == "function" else "input"


def _tool_call_deltas(
    index: int, call: Mapping[str, Any], size: int | None
) -> list[dict[str, Any]]:
    """Deltas for one stored tool call: the first carries id/type/name, the rest fragments."""
    call_type = call.get("type") or "function"
    payload = call.get(call_type)
    head: dict[str, Any] = {k: copy.deepcopy(v) for k, v in call.items() if k != call_type}
    head["index"] = index
    head["type"] = call_type
    if not isinstance(payload, Mapping):
        return [head]
    field = _streamed_field(call_type)
    text = payload.get(field)
    first = {k: copy.deepcopy(v) for k, v in payload.items() if k != field}
    if not isinstance(text, str):
        if field in payload:
            first[field] = copy.deepcopy(text)
        head[call_type] = first
        return [head]
    pieces = _pieces(text, size)
    first[field] = pieces[0]
    head[call_type] = first
    rest = [{"index": index, call_type: {field: p}} for p in pieces[1:]]
    return [head, *rest]


def _choice_deltas(choice: Mapping[str, Any], size: int | None) -> list[dict[str, Any]]:
    message = choice.get("message") or {}
    deltas: list[dict[str, Any]] = []
    first: dict[str, Any] = {"role": message.get("role") or "assistant"}
    content = message.get("content")
    if isinstance(content, str):
        pieces = _pieces(content, size)
        first["content"] = pieces[0]
        deltas.append(first)
        deltas += [{"content": p} for p in pieces[1:]]
    else:
        deltas.append(first)
    refusal = message.get("refusal")
    if isinstance(refusal, str):
        deltas += [{"refusal": p} for p in _pieces(refusal, size)]
    function_call = message.get("function_call")
    if isinstance(function_call, Mapping):
        args = function_call.get("arguments")
        head = {k: v for k, v in function_call.items() if k != "arguments"}
        if isinstance(args, str):
            pieces = _pieces(args, size)
            deltas.append({"function_call": {**head, "arguments": pieces[0]}})
            deltas += [{"function_call": {"arguments": p}} for p in pieces[1:]]
        else:
            deltas.append({"function_call": dict(function_call)})
    for i, call in enumerate(message.get("tool_calls") or ()):
        deltas += [{"tool_calls": [d]} for d in _tool_call_deltas(i, call, size)]
    # Anything else the message carries (audio, annotations, newer fields) goes in one delta:
    # the assembler sets, extends or merges it back unchanged.
    known = {"role", "content", "refusal", "function_call", "tool_calls"}
    extra = {k: copy.deepcopy(v) for k, v in message.items() if k not in known and v is not None}
    if extra:
        deltas.append(extra)
    return deltas


def replay_chunks(
    completion: Mapping[str, Any], *, include_usage: bool = False, chunk_chars: int | None = None
) -> list[dict[str, Any]]:
    """Chunk dicts that replay a stored ``ChatCompletion`` dict as a stream.

    Per choice (in index order): a first chunk with the role and the first content piece
    (and the choice's whole ``logprobs``), further content/refusal pieces, one run of deltas
    per tool call (id, type and name first, then argument fragments), and a last chunk with
    an empty delta and the ``finish_reason``. ``chunk_chars`` (characters, default ``None`` =
    each text in one delta) splits long texts. With ``include_usage`` every chunk carries
    ``"usage": None`` and a final chunk with ``choices == []`` carries the stored usage (only
    when the stored completion has one).
    """
    if not isinstance(completion, Mapping):
        raise TypeError(f"completion must be a mapping, got {type(completion).__name__}")
    if chunk_chars is not None and (isinstance(chunk_chars, bool) or chunk_chars < 1):
        raise ValueError(f"chunk_chars must be a positive int or None, got {chunk_chars!r}")
    base: dict[str, Any] = {"object": "chat.completion.chunk"}
    for key in _CHUNK_TOP:
        if completion.get(key) is not None:
            base[key] = copy.deepcopy(completion[key])
    if include_usage:
        base["usage"] = None
    chunks: list[dict[str, Any]] = []
    choices = sorted(completion.get("choices") or (), key=lambda c: c.get("index", 0))
    for choice in choices:
        index = choice.get("index", 0)
        for n, delta in enumerate(_choice_deltas(choice, chunk_chars)):
            entry: dict[str, Any] = {"index": index, "delta": delta, "finish_reason": None}
            if n == 0 and choice.get("logprobs") is not None:
                entry["logprobs"] = copy.deepcopy(choice["logprobs"])
            chunks.append({**base, "choices": [entry]})
        last = {"index": index, "delta": {}, "finish_reason": choice.get("finish_reason")}
        chunks.append({**base, "choices": [last]})
    usage = completion.get("usage")
    if include_usage and usage is not None:
        chunks.append({**base, "choices": [], "usage": copy.deepcopy(usage)})
    return [copy.deepcopy(c) for c in chunks]


# -- legacy completions (``/completions``, ``object == "text_completion"``) -----------------


class TextCompletionAssembler:
    """Fold legacy ``/completions`` stream chunks into the non-streamed completion dict.

    Text is concatenated per choice ``index``; ``logprobs`` lists (``tokens``,
    ``token_logprobs``, ``top_logprobs``, ``text_offset``) are extended; the last
    ``finish_reason`` and the usage chunk's usage are kept. :attr:`complete` as for chat.
    """

    def __init__(self) -> None:
        self._top: dict[str, Any] = {}
        self._choices: dict[int, dict[str, Any]] = {}
        self._usage: Any = None

    def add(self, chunk: Mapping[str, Any]) -> None:
        """Fold one chunk."""
        for key, value in chunk.items():
            if key not in _CHUNK_ONLY and value is not None:
                self._top[key] = copy.deepcopy(value)
        if chunk.get("usage") is not None:
            self._usage = copy.deepcopy(chunk["usage"])
        for choice in chunk.get("choices") or ():
            index = choice.get("index", 0)
            if not isinstance(index, int):
                raise ValueError("a chunk choice needs an integer 'index'")
            state = self._choices.setdefault(
                index, {"text": "", "index": index, "logprobs": None, "finish_reason": None}
            )
            state["text"] += str(choice.get("text") or "")
            logprobs = choice.get("logprobs")
            if isinstance(logprobs, Mapping):
                if state["logprobs"] is None:
                    state["logprobs"] = {}
                _merge(state["logprobs"], logprobs)
            if choice.get("finish_reason") is not None:
                state["finish_reason"] = choice["finish_reason"]

    @property
    def complete(self) -> bool:
        """True when at least one choice arrived and every choice has a ``finish_reason``."""
        return bool(self._choices) and all(
            c["finish_reason"] is not None for c in self._choices.values()
        )

    def result(self) -> dict[str, Any]:
        """The assembled completion dict (``object == "text_completion"``)."""
        out: dict[str, Any] = copy.deepcopy(self._top)
        out["object"] = "text_completion"
        out["choices"] = [copy.deepcopy(c) for _, c in sorted(self._choices.items())]
        if self._usage is not None:
            out["usage"] = copy.deepcopy(self._usage)
        return out


def replay_text_chunks(
    completion: Mapping[str, Any], *, include_usage: bool = False
) -> list[dict[str, Any]]:
    """Chunk dicts that replay a stored legacy completion: per choice one chunk with the whole
    text (and ``logprobs``), then one with ``""`` and the ``finish_reason``; the usage chunk
    (``choices == []``) last, only with ``include_usage``. Every chunk repeats the stored
    ``id``, ``created``, ``model`` and ``system_fingerprint``."""
    base: dict[str, Any] = {"object": "text_completion"}
    for key in _CHUNK_TOP:
        if completion.get(key) is not None:
            base[key] = copy.deepcopy(completion[key])
    chunks: list[dict[str, Any]] = []
    for choice in sorted(completion.get("choices") or (), key=lambda c: c.get("index", 0)):
        index = choice.get("index", 0)
        first = {"text": choice.get("text") or "", "index": index, "finish_reason": None}
        first["logprobs"] = copy.deepcopy(choice.get("logprobs"))
        last = {"text": "", "index": index, "logprobs": None}
        last["finish_reason"] = choice.get("finish_reason")
        chunks += [{**base, "choices": [first]}, {**base, "choices": [last]}]
    if include_usage and completion.get("usage") is not None:
        chunks.append({**base, "choices": [], "usage": copy.deepcopy(completion["usage"])})
    return chunks


# -- Responses API (``/responses``) ----------------------------------------------------------

#: Events after which the stream can never complete.
_RESPONSE_FAILED = frozenset({"response.failed", "response.incomplete", "error"})


class ResponseAssembler:
    """Fold Responses API stream events into the non-streamed ``Response`` dict.

    The answer is the ``response`` of ``response.completed``; when that response omits its
    ``output``, the items of the ``response.output_item.done`` events take its place (in
    ``output_index`` order). ``response.failed``, ``response.incomplete`` and ``error`` make
    the stream never complete.
    """

    def __init__(self) -> None:
        self._done_items: dict[int, Any] = {}
        self._response: dict[str, Any] | None = None
        self._failed = False

    def add(self, event: Mapping[str, Any]) -> None:
        """Fold one event (its ``data`` parsed)."""
        kind = event.get("type")
        if kind in _RESPONSE_FAILED:
            self._failed = True
        elif kind == "response.output_item.done":
            index = event.get("output_index")
            if not isinstance(index, int):
                raise ValueError("response.output_item.done needs an integer 'output_index'")
            self._done_items[index] = copy.deepcopy(event.get("item"))
        elif kind == "response.completed":
            response = event.get("response")
            if not isinstance(response, Mapping):
                raise ValueError("response.completed needs a 'response' object")
            self._response = copy.deepcopy(dict(response))

    @property
    def complete(self) -> bool:
        """True after ``response.completed`` with no failure event."""
        return self._response is not None and not self._failed

    def result(self) -> dict[str, Any]:
        """The ``Response`` dict of ``response.completed`` (``output`` filled in if omitted)."""
        response = copy.deepcopy(self._response or {})
        if response.get("output") is None:
            response["output"] = [copy.deepcopy(i) for _, i in sorted(self._done_items.items())]
        return response


def _item_events(index: int, item: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Events for one output item: added (empty), its text or argument deltas, done (whole)."""
    kind = item.get("type")
    item_id = item.get("id")
    where = {"item_id": item_id, "output_index": index}
    added: dict[str, Any] = {**copy.deepcopy(dict(item)), "status": "in_progress"}
    middle: list[dict[str, Any]] = []
    if kind == "message":
        added["content"] = []
        for n, part in enumerate(item.get("content") or ()):
            middle += _part_events(where, n, part)
    elif kind == "function_call" and isinstance(item.get("arguments"), str):
        added["arguments"] = ""
        args = item["arguments"]
        middle.append({"type": "response.function_call_arguments.delta", **where, "delta": args})
        middle.append({"type": "response.function_call_arguments.done", **where, "arguments": args})
    if "status" not in item:
        del added["status"]
    return [
        {"type": "response.output_item.added", "output_index": index, "item": added},
        *middle,
        {"type": "response.output_item.done", "output_index": index, "item": copy.deepcopy(item)},
    ]


def _part_events(where: Mapping[str, Any], n: int, part: Mapping[str, Any]) -> list[dict[str, Any]]:
    kind = part.get("type")
    at = {**where, "content_index": n}
    empty = copy.deepcopy(dict(part))
    middle: list[dict[str, Any]] = []
    if kind == "output_text":
        empty.update(text="", annotations=[])
        if "logprobs" in part:
            empty["logprobs"] = []
        text, logprobs = part.get("text") or "", part.get("logprobs") or []
        delta = {"type": "response.output_text.delta", **at, "delta": text, "logprobs": logprobs}
        middle = [delta]
        for a, annotation in enumerate(part.get("annotations") or ()):
            middle.append(
                {
                    "type": "response.output_text.annotation.added",
                    **at,
                    "annotation_index": a,
                    "annotation": copy.deepcopy(annotation),
                }
            )
        middle.append(
            {"type": "response.output_text.done", **at, "text": text, "logprobs": logprobs}
        )
    elif kind == "refusal":
        empty["refusal"] = ""
        refusal = part.get("refusal") or ""
        middle = [
            {"type": "response.refusal.delta", **at, "delta": refusal},
            {"type": "response.refusal.done", **at, "refusal": refusal},
        ]
    return [
        {"type": "response.content_part.added", **at, "part": empty},
        *middle,
        {"type": "response.content_part.done", **at, "part": copy.deepcopy(dict(part))},
    ]


def replay_response_events(response: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Event dicts that replay a stored ``Response`` dict as the Responses API stream.

    ``response.created`` and ``response.in_progress`` (the response with ``status
    "in_progress"``, no output, no usage), per output item ``output_item.added``, its content
    parts (``output_text`` text in one delta, annotations, refusals) or function-call
    arguments (one delta), ``output_item.done`` with the whole stored item, then
    ``response.completed`` with the whole stored response. ``sequence_number`` counts from 0.
    """
    early = copy.deepcopy(dict(response))
    early.update(status="in_progress", output=[], usage=None)
    if "completed_at" in early:
        early["completed_at"] = None
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": early},
        {"type": "response.in_progress", "response": copy.deepcopy(early)},
    ]
    for index, item in enumerate(response.get("output") or ()):
        events += _item_events(index, item)
    events.append({"type": "response.completed", "response": copy.deepcopy(dict(response))})
    return [{**e, "sequence_number": n} for n, e in enumerate(events)]
