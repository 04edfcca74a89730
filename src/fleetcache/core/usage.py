"""Token usage of an LLM answer, from any provider's response data. Pure: no I/O.

One parser, :func:`usage_of`, for every shape fleetcache stores: OpenAI chat completions,
completions and embeddings, the OpenAI Responses API, Anthropic messages, Google
(``usageMetadata``, camelCase or the SDK's snake_case), LiteLLM ``ModelResponse`` data
(OpenAI-shaped, with Anthropic's cache fields when LiteLLM adds them), LangChain
generations (``message.usage_metadata``, ``generation_info.token_usage``) and the
five-field path's ``LLMResponse.usage`` (``prompt_tokens``/``completion_tokens``/
``total_tokens``).

The four token kinds never overlap, so an answer's cost is the sum of each kind times its
price:

- ``input``: prompt tokens read at the full input price (every input token that was neither
  read from nor written to the provider's prompt cache);
- ``cache_read``: prompt tokens read from the provider's prompt cache (OpenAI
  ``cached_tokens``, Anthropic ``cache_read_input_tokens``, Google
  ``cachedContentTokenCount``);
- ``cache_write``: prompt tokens written to the provider's prompt cache (Anthropic
  ``cache_creation_input_tokens``);
- ``output``: every generated token, reasoning/thinking tokens included (OpenAI counts
  ``reasoning_tokens`` inside ``completion_tokens``; Google reports ``thoughtsTokenCount``
  beside ``candidatesTokenCount``: both are output).

``total`` is the provider's reported total when it reports one (``total_tokens``,
``totalTokenCount``), else the four added up (Anthropic reports no total).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Usage", "usage_of"]


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens of one answer, by kind (all integers >= 0; see the module docstring)."""

    input: int = 0
    output: int = 0
    cache_read: int = 0
    cache_write: int = 0
    #: the provider's reported total (0: it reported none)
    reported_total: int = 0

    @property
    def total(self) -> int:
        """All tokens of the answer: the reported total, else the four kinds added up."""
        if self.reported_total:
            return self.reported_total
        return self.input + self.output + self.cache_read + self.cache_write

    def __add__(self, other: Usage) -> Usage:
        reported = self.total + other.total if self.reported_total or other.reported_total else 0
        return Usage(
            self.input + other.input,
            self.output + other.output,
            self.cache_read + other.cache_read,
            self.cache_write + other.cache_write,
            reported,
        )


def _n(value: object) -> int | None:
    """A token count: an int >= 0 (not a bool); anything else is None."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, float) and value.is_integer() and value >= 0:  # JSON number
        return int(value)
    return None


def _get(m: Mapping[str, Any], *names: str) -> int | None:
    for name in names:
        v = _n(m.get(name))
        if v is not None:
            return v
    return None


def _sub(m: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    v = m.get(name)
    return v if isinstance(v, Mapping) else {}


def _openai_like(u: Mapping[str, Any]) -> Usage | None:
    """OpenAI chat/completions/embeddings (and LiteLLM): ``prompt_tokens`` counts all input."""
    prompt = _get(u, "prompt_tokens")
    completion = _get(u, "completion_tokens")
    total = _get(u, "total_tokens")
    if prompt is None and completion is None:
        return None if total is None else Usage(reported_total=total)
    prompt = prompt or 0
    details = _sub(u, "prompt_tokens_details")
    read = _get(details, "cached_tokens") or _get(u, "cache_read_input_tokens") or 0
    write = _get(u, "cache_creation_input_tokens") or 0
    read = min(read, prompt)
    write = min(write, prompt - read)
    return _finish(Usage(prompt - read - write, completion or 0, read, write), total)


def _anthropic(u: Mapping[str, Any]) -> Usage:
    """Anthropic: ``input_tokens`` excludes the cache reads and writes (no total is
    reported; one that is, as fleetcache's LangChain records carry, is kept)."""
    got = Usage(
        _get(u, "input_tokens") or 0,
        _get(u, "output_tokens") or 0,
        _get(u, "cache_read_input_tokens") or 0,
        _get(u, "cache_creation_input_tokens") or 0,
    )
    return _finish(got, _get(u, "total_tokens"))


def _input_output(u: Mapping[str, Any]) -> Usage | None:
    """OpenAI Responses API and LangChain ``usage_metadata``: ``input_tokens`` counts all
    input, cached included (``input_tokens_details.cached_tokens`` / ``input_token_details``
    ``cache_read`` and ``cache_creation``)."""
    inp = _get(u, "input_tokens")
    out = _get(u, "output_tokens")
    total = _get(u, "total_tokens")
    if inp is None and out is None:
        return None if total is None else Usage(reported_total=total)
    inp = inp or 0
    read = _get(_sub(u, "input_tokens_details"), "cached_tokens")
    lc = _sub(u, "input_token_details")
    if read is None:
        read = _get(lc, "cache_read") or 0
    write = _get(lc, "cache_creation") or 0
    read = min(read, inp)
    write = min(write, inp - read)
    return _finish(Usage(inp - read - write, out or 0, read, write), total)


def _google(u: Mapping[str, Any]) -> Usage | None:
    prompt = _get(u, "promptTokenCount", "prompt_token_count")
    cand = _get(u, "candidatesTokenCount", "candidates_token_count")
    thoughts = _get(u, "thoughtsTokenCount", "thoughts_token_count") or 0
    tool = _get(u, "toolUsePromptTokenCount", "tool_use_prompt_token_count") or 0
    cached = _get(u, "cachedContentTokenCount", "cached_content_token_count") or 0
    total = _get(u, "totalTokenCount", "total_token_count")
    if prompt is None and cand is None:
        return None if total is None else Usage(reported_total=total)
    inp = (prompt or 0) + tool
    cached = min(cached, inp)
    return _finish(Usage(inp - cached, (cand or 0) + thoughts, cached, 0), total)


def _finish(u: Usage, total: int | None) -> Usage:
    if total:
        return Usage(u.input, u.output, u.cache_read, u.cache_write, total)
    return u


def _of_usage_map(u: Mapping[str, Any], anthropic: bool) -> Usage | None:
    """A ``usage`` member of any provider."""
    if anthropic or ("cache_creation_input_tokens" in u and "prompt_tokens" not in u):
        return _anthropic(u)
    if "prompt_tokens" in u or "completion_tokens" in u:
        return _openai_like(u)
    if "input_tokens" in u or "output_tokens" in u:
        if "cache_read_input_tokens" in u:
            return _anthropic(u)
        return _input_output(u)
    if "promptTokenCount" in u or "prompt_token_count" in u or "totalTokenCount" in u:
        return _google(u)
    total = _get(u, "total_tokens")
    return None if total is None else Usage(reported_total=total)


def _langchain(gen: Mapping[str, Any]) -> Usage | None:
    """One LangChain generation (its dict form): the message's ``usage_metadata``, else
    ``generation_info``'s ``token_usage``/``usage``."""
    message = gen.get("message")
    meta: Any = None
    if isinstance(message, Mapping):
        kwargs = _sub(message, "kwargs")  # langchain's dumpd() form
        meta = message.get("usage_metadata") or kwargs.get("usage_metadata")
    else:
        meta = getattr(message, "usage_metadata", None)
    if isinstance(meta, Mapping):
        got = _input_output(meta)
        if got is not None:
            return got
    info = _sub(gen, "generation_info")
    tu = info.get("token_usage") or info.get("usage")
    return _of_usage_map(tu, False) if isinstance(tu, Mapping) else None


def usage_of(response: Mapping[str, Any]) -> Usage | None:
    """The token usage in an answer's JSON data, or ``None`` when it reports none.

    ``response`` is the provider's response data (a mapping): OpenAI, Anthropic, Google,
    LiteLLM; a LangChain ``{"generations": [...]}`` record or one generation's dict (summed
    over the generations); or ``{"usage": LLMResponse.usage}``. Values that are not
    non-negative integers are ignored.
    """
    if not isinstance(response, Mapping):
        return None
    usage = response.get("usage")
    if isinstance(usage, Mapping) and usage:
        anthropic = response.get("type") == "message"
        got = _of_usage_map(usage, anthropic)
        if got is not None:
            return got
    for key in ("usageMetadata", "usage_metadata"):
        meta = response.get(key)
        if isinstance(meta, Mapping):
            got = _google(meta) if key == "usageMetadata" else None
            if got is None:
                got = _input_output(meta) or _google(meta)
            if got is not None:
                return got
    gens = response.get("generations")
    if isinstance(gens, list):
        found: Usage | None = None
        for g in gens:
            one = _langchain(g) if isinstance(g, Mapping) else None
            if one is not None:
                found = one if found is None else found + one
        return found
    if "message" in response or "generation_info" in response:
        return _langchain(response)
    return None
