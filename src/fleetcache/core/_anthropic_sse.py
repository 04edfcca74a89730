"""Anthropic Messages event streams <-> one stored ``Message``. Pure: no I/O, no SDK import.
(Moved from ``integrations/_anthropic_stream.py``.)

Works on the JSON form of the SDK's events (``model_dump(mode="json", exclude_unset=True)``
of a ``RawMessageStreamEvent``) and of a ``Message``.

- :class:`MessageAssembler` folds ``message_start``, ``content_block_start`` /
  ``content_block_delta`` / ``content_block_stop`` (text, tool_use with ``input_json_delta``
  fragments, thinking and signature deltas, citations), ``message_delta`` (stop reason,
  usage) and ``message_stop`` into the ``Message`` dict the same request returns without
  streaming.
- :func:`replay_events` turns a stored ``Message`` dict back into that event sequence: the
  text deltas concatenate to each block's text, the JSON fragments parse to each tool's
  ``input``, and the final usage equals the stored usage.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["MessageAssembler", "assemble_events", "replay_events"]

#: Delta types and the block field each one appends to (strings).
_TEXT_DELTAS = {"text_delta": "text", "thinking_delta": "thinking", "signature_delta": "signature"}


class MessageAssembler:
    """Fold Anthropic stream event dicts into one ``Message`` dict.

    :attr:`complete` is true once ``message_stop`` arrived after a ``message_start`` and
    every event was understood (an unknown delta type makes the stream not reproducible, so
    it is never complete). :meth:`result` returns a fresh dict each call.
    """

    def __init__(self) -> None:
        self._message: dict[str, Any] | None = None
        self._blocks: dict[int, dict[str, Any]] = {}
        self._json: dict[int, list[str]] = {}
        self._stopped = False
        self._unknown = False
        #: Events seen so far.
        self.events = 0

    def add(self, event: Mapping[str, Any]) -> None:
        """Fold one event (the JSON form of a ``RawMessageStreamEvent``)."""
        if not isinstance(event, Mapping):
            raise TypeError(f"an event must be a mapping, got {type(event).__name__}")
        self.events += 1
        kind = event.get("type")
        if kind == "message_start":
            self._message = copy.deepcopy(dict(event.get("message") or {}))
            for i, block in enumerate(self._message.get("content") or ()):
                self._blocks[i] = copy.deepcopy(block)
        elif kind == "content_block_start":
            index = self._index(event)
            self._blocks[index] = copy.deepcopy(dict(event.get("content_block") or {}))
        elif kind == "content_block_delta":
            self._delta(self._index(event), event.get("delta") or {})
        elif kind == "content_block_stop":
            index = self._index(event)
            parts = self._json.pop(index, None)
            if parts is not None and index in self._blocks:
                text = "".join(parts)
                self._blocks[index]["input"] = json.loads(text) if text.strip() else {}
        elif kind == "message_delta":
            message = self._require_message()
            for key, value in (event.get("delta") or {}).items():
                message[key] = copy.deepcopy(value)
            usage = event.get("usage")
            if isinstance(usage, Mapping):
                merged = dict(message.get("usage") or {})
                merged.update({k: copy.deepcopy(v) for k, v in usage.items() if v is not None})
                message["usage"] = merged
        elif kind == "message_stop":
            self._stopped = self._message is not None
        elif kind != "ping":
            self._unknown = True

    @staticmethod
    def _index(event: Mapping[str, Any]) -> int:
        index = event.get("index")
        if not isinstance(index, int) or isinstance(index, bool):
            raise ValueError(f"a {event.get('type')} event needs an integer 'index'")
        return index

    def _require_message(self) -> dict[str, Any]:
        if self._message is None:
            raise ValueError("message_delta before message_start")
        return self._message

    def _delta(self, index: int, delta: Mapping[str, Any]) -> None:
        block = self._blocks.setdefault(index, {})
        kind = delta.get("type")
        if kind in _TEXT_DELTAS:
            field = _TEXT_DELTAS[str(kind)]
            block[field] = (block.get(field) or "") + str(delta.get(field, ""))
        elif kind == "input_json_delta":
            self._json.setdefault(index, []).append(str(delta.get("partial_json", "")))
        elif kind == "citations_delta":
            citations = block.get("citations")
            if not isinstance(citations, list):
                citations = block["citations"] = []
            citations.append(copy.deepcopy(delta.get("citation")))
        else:
            self._unknown = True

    @property
    def complete(self) -> bool:
        """True after ``message_start`` ... ``message_stop`` with every event understood."""
        return self._stopped and not self._unknown and not self._json

    def result(self) -> dict[str, Any]:
        """The assembled ``Message`` dict."""
        message = copy.deepcopy(self._message or {"type": "message", "role": "assistant"})
        message["content"] = [copy.deepcopy(b) for _, b in sorted(self._blocks.items())]
        return message


def assemble_events(events: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Assemble a whole list of event dicts (see :class:`MessageAssembler`)."""
    assembler = MessageAssembler()
    for event in events:
        assembler.add(event)
    return assembler.result()


def _pieces(text: str, size: int | None) -> list[str]:
    if size is None or len(text) <= size:
        return [text]
    return [text[i : i + size] for i in range(0, len(text), size)]


def _block_events(index: int, block: Mapping[str, Any], size: int | None) -> list[dict[str, Any]]:
    kind = block.get("type")
    start: dict[str, Any] = copy.deepcopy(dict(block))
    deltas: list[dict[str, Any]] = []
    if kind == "text" and isinstance(block.get("text"), str):
        start["text"] = ""
        deltas = [{"type": "text_delta", "text": p} for p in _pieces(block["text"], size)]
        citations = block.get("citations")
        if isinstance(citations, list):
            start["citations"] = []
            deltas += [{"type": "citations_delta", "citation": copy.deepcopy(c)} for c in citations]
    elif kind == "thinking" and isinstance(block.get("thinking"), str):
        start["thinking"] = ""
        deltas = [
            {"type": "thinking_delta", "thinking": p} for p in _pieces(block["thinking"], size)
        ]
        if isinstance(block.get("signature"), str):
            start["signature"] = ""
            deltas.append({"type": "signature_delta", "signature": block["signature"]})
    elif isinstance(kind, str) and kind.endswith("tool_use") and "input" in block:
        start["input"] = {}
        text = json.dumps(block["input"], ensure_ascii=False, separators=(",", ":"))
        deltas = [{"type": "input_json_delta", "partial_json": p} for p in _pieces(text, size)]
    events: list[dict[str, Any]] = [
        {"type": "content_block_start", "index": index, "content_block": start}
    ]
    events += [{"type": "content_block_delta", "index": index, "delta": d} for d in deltas]
    events.append({"type": "content_block_stop", "index": index})
    return events


def replay_events(
    message: Mapping[str, Any], *, chunk_chars: int | None = None
) -> list[dict[str, Any]]:
    """Event dicts that replay a stored ``Message`` dict as Anthropic's stream.

    ``message_start`` (the message without content, stop reason or stop sequence, with the
    stored usage), per block ``content_block_start`` / deltas / ``content_block_stop``, then
    ``message_delta`` (stop reason, stop sequence, ``stop_details`` when stored, output
    tokens) and ``message_stop``. ``chunk_chars`` (characters, default ``None`` = one delta
    per text) splits long texts and JSON.
    """
    if not isinstance(message, Mapping):
        raise TypeError(f"message must be a mapping, got {type(message).__name__}")
    if chunk_chars is not None and (isinstance(chunk_chars, bool) or chunk_chars < 1):
        raise ValueError(f"chunk_chars must be a positive int or None, got {chunk_chars!r}")
    final_keys = ("stop_reason", "stop_sequence", "stop_details")
    start = {k: copy.deepcopy(v) for k, v in message.items() if k != "content"}
    start["content"] = []
    for key in final_keys:
        if key in start:
            start[key] = None
    usage = message.get("usage")
    events: list[dict[str, Any]] = [{"type": "message_start", "message": start}]
    for i, block in enumerate(message.get("content") or ()):
        events += _block_events(i, block, chunk_chars)
    delta = {k: copy.deepcopy(message[k]) for k in final_keys if k in message}
    delta_usage: dict[str, Any] = {}
    if isinstance(usage, Mapping) and "output_tokens" in usage:
        delta_usage["output_tokens"] = usage["output_tokens"]
    events.append({"type": "message_delta", "delta": delta, "usage": delta_usage})
    events.append({"type": "message_stop"})
    return events
