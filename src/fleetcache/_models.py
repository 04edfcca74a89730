"""Response and statistics models.

``LLMResponse``, ``ToolCallResult``, ``FinishReason`` and ``CacheStats`` mirror the models of
the same names in ``ractogateway`` 0.2.1 (same fields, types and defaults), so code written
against that SDK works unchanged, and its own ``LLMResponse`` can be passed as
``response_model=``.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class FinishReason(str, Enum):
    """Why the model stopped generating."""

    STOP = "stop"
    TOOL_CALL = "tool_call"
    LENGTH = "length"
    CONTENT_FILTER = "content_filter"
    ERROR = "error"


class ToolCallResult(BaseModel):
    """A single tool/function call returned by the model."""

    id: str = ""
    name: str
    arguments: dict[str, Any]


class LLMResponse(BaseModel):
    """Unified, provider-agnostic LLM response (the cached value)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    content: str | None = Field(default=None, description="Text content of the response.")
    thinking: str | None = Field(default=None, description="Native reasoning text, if any.")
    parsed: dict[str, Any] | list[Any] | None = Field(
        default=None, description="Auto-parsed JSON when the response is valid JSON."
    )
    tool_calls: list[ToolCallResult] = Field(
        default_factory=list, description="Tool/function calls requested by the model."
    )
    finish_reason: FinishReason = FinishReason.STOP
    usage: dict[str, int] = Field(
        default_factory=dict,
        description="Token usage (prompt_tokens, completion_tokens, total_tokens).",
    )
    raw: Any = Field(
        default=None,
        description="The raw provider response. Cached only if it serialises to JSON types.",
    )


class CacheStats(BaseModel):
    """Snapshot of the cache's counters (fleet-wide here: read from Redis)."""

    hits: int = Field(default=0, ge=0, description="Requests served from cache.")
    misses: int = Field(default=0, ge=0, description="Requests that bypassed the cache.")
    size: int = Field(default=0, ge=0, description="Current number of live entries.")

    @property
    def total(self) -> int:
        """Total requests seen by the cache (hits + misses)."""
        return self.hits + self.misses

    @property
    def hit_rate(self) -> float:
        """Fraction of requests that were hits, 0.0-1.0 (0.0 when there were none)."""
        return self.hits / self.total if self.total else 0.0

    def __repr__(self) -> str:
        return (
            f"CacheStats(hits={self.hits}, misses={self.misses}, "
            f"size={self.size}, hit_rate={self.hit_rate:.1%})"
        )


class ModelStats(BaseModel):
    """Hits and misses of one model name, fleet-wide."""

    hits: int = 0
    misses: int = 0

    @property
    def hit_rate(self) -> float:
        """Fraction of this model's requests that were hits (0.0 when there were none)."""
        total = self.hits + self.misses
        return self.hits / total if total else 0.0


class FleetStats(BaseModel):
    """Every fleet-wide counter of a namespace, summed over its shards.

    All fields are integer counts since the namespace was created or last cleared / reset:
    ``hits``/``misses`` (gets), ``size`` (live entries now), ``puts``, ``invalidations``,
    ``expired`` (index members found past their TTL), ``evicted`` (entries that vanished
    before their TTL: maxmemory eviction, manual ``DEL``), ``corrupt`` (entries dropped
    because they did not decode), ``tokens_saved`` (tokens of the responses served from
    cache), ``coalesced`` (requests answered by waiting on another caller's computation),
    ``not_stored`` (computed responses the request path refused to store: truncated,
    filtered, an error, no content; see ``should_store``).
    """

    hits: int = 0
    misses: int = 0
    size: int = 0
    puts: int = 0
    invalidations: int = 0
    expired: int = 0
    evicted: int = 0
    corrupt: int = 0
    tokens_saved: int = 0
    coalesced: int = 0
    not_stored: int = 0
    by_model: dict[str, ModelStats] = Field(default_factory=dict)

    @property
    def total(self) -> int:
        """hits + misses."""
        return self.hits + self.misses

    @property
    def hit_rate(self) -> float:
        """Fraction of gets that were hits, 0.0-1.0 (0.0 when there were none)."""
        return self.hits / self.total if self.total else 0.0

    def to_cache_stats(self) -> CacheStats:
        """The ``CacheStats`` view (hits, misses, size) of these numbers."""
        return CacheStats(hits=max(self.hits, 0), misses=max(self.misses, 0), size=self.size)
