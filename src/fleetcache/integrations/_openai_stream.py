"""OpenAI chat-completion streams <-> one stored completion. Pure: no I/O, no SDK import.

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

Round trip: ``assemble(replay_chunks(c))`` gives back ``c``'s choices and usage.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["ChatCompletionAssembler", "assemble_chunks", "replay_chunks"]

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
