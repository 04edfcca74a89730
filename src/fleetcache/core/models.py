"""Response and statistics models.

``LLMResponse``, ``ToolCallResult``, ``FinishReason`` and ``CacheStats`` mirror the models of
the same names in ``ractogateway`` 0.2.1 (same fields, types and defaults), so code written
against that SDK works unchanged, and its own ``LLMResponse`` can be passed as
``response_model=``.
"""

from __future__ import annotations

import logging
import re
import struct
from collections.abc import Sequence
from enum import Enum
from typing import TYPE_CHECKING, Any, NamedTuple

from pydantic import BaseModel, ConfigDict, Field

log = logging.getLogger("fleetcache")


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


class _HitRate:
    """``total`` and ``hit_rate`` from ``hits`` and ``misses`` (both stats models)."""

    if TYPE_CHECKING:  # fields of the model this is mixed into
        hits: int
        misses: int

    @property
    def total(self) -> int:
        """Total gets seen (hits + misses)."""
        return self.hits + self.misses

    @property
    def hit_rate(self) -> float:
        """Fraction of gets that were hits, 0.0-1.0 (0.0 when there were none)."""
        return self.hits / self.total if self.total else 0.0


class CacheStats(_HitRate, BaseModel):
    """Snapshot of the cache's counters (fleet-wide here: read from Redis)."""

    hits: int = Field(default=0, ge=0, description="Requests served from cache.")
    misses: int = Field(default=0, ge=0, description="Requests that bypassed the cache.")
    size: int = Field(default=0, ge=0, description="Current number of live entries.")

    def __repr__(self) -> str:
        return (
            f"CacheStats(hits={self.hits}, misses={self.misses}, "
            f"size={self.size}, hit_rate={self.hit_rate:.1%})"
        )


class ModelStats(BaseModel):
    """Hits, misses and what the hits saved, of one model name, fleet-wide.

    The savings are what each hit's entry recorded when it was written (see
    ``FleetStats``): tokens by kind, cost in integer nano-USD (``cost_saved_usd`` is the
    same in USD), upstream time in ms (``seconds_saved`` in s), and the hits whose cost was
    unknown (``unpriced_hits``: no price for the model, or no usage in the answer)."""

    hits: int = 0
    misses: int = 0
    input_tokens_saved: int = 0
    output_tokens_saved: int = 0
    cache_read_tokens_saved: int = 0
    cache_write_tokens_saved: int = 0
    cost_saved_nanousd: int = 0
    ms_saved: int = 0
    unpriced_hits: int = 0

    @property
    def cost_saved_usd(self) -> float:
        """``cost_saved_nanousd`` in US dollars (priced hits only; see ``unpriced_hits``)."""
        return self.cost_saved_nanousd / 1e9

    @property
    def seconds_saved(self) -> float:
        """``ms_saved`` in seconds: upstream time the hits did not spend."""
        return self.ms_saved / 1000

    @property
    def hit_rate(self) -> float:
        """Fraction of this model's requests that were hits (0.0 when there were none)."""
        total = self.hits + self.misses
        return self.hits / total if total else 0.0


class Counter(NamedTuple):
    """One fleet-wide counter. Everything else is derived from ``COUNTERS``: the field of
    ``FleetStats``, the field of each shard's stats hash the Lua scripts ``HINCRBY`` (same
    name), the row of ``fleetcache stats`` (``name`` with spaces), its key in ``--json``,
    and the Prometheus metric ``fleetcache_<name>_total`` with ``description`` as HELP."""

    #: field name in ``FleetStats``, in the stats hash, in JSON and in the metric name
    name: str
    #: one sentence: what one increment means (Prometheus HELP, docs)
    description: str
    #: what is counted: ``"requests"`` (gets), ``"entries"``, ``"tokens"``, ``"nano-USD"``
    #: or ``"ms"``
    kind: str
    #: for a saving counted per model only: the prefix of its integer field
    #: ``<per_model>:<model>`` (written by earlier versions, and by the Lua while a model's
    #: savings record ``m:<model>`` is unusable; see ``RECORD``); the fleet value is the
    #: sum over models. ``""``: a hash field of its own.
    per_model: str = ""


#: Every fleet-wide counter, in display order. Adding one is this line, its field in
#: ``FleetStats`` (mypy then knows it) and the Lua that increments it; parsing, the CLI,
#: JSON and Prometheus follow (``tests/unit/test_lua_counters.py`` ties the three).
COUNTERS: tuple[Counter, ...] = (
    Counter("hits", "Cache gets answered from the cache, fleet-wide.", "requests"),
    Counter("misses", "Cache gets that found no entry, fleet-wide.", "requests"),
    Counter(
        "tokens_saved",
        "LLM tokens (all kinds) of the responses served from cache.",
        "tokens",
    ),
    # -- what the hits saved: each hit adds its entry's recorded amounts, per model ------
    Counter(
        "input_tokens_saved",
        "Uncached input (prompt) tokens of the responses served from cache.",
        "tokens",
        "mi",
    ),
    Counter(
        "output_tokens_saved",
        "Output tokens (reasoning included) of the responses served from cache.",
        "tokens",
        "mo",
    ),
    Counter(
        "cache_read_tokens_saved",
        "Input tokens the provider read from its prompt cache, in responses served from cache.",
        "tokens",
        "mr",
    ),
    Counter(
        "cache_write_tokens_saved",
        "Input tokens the provider wrote to its prompt cache, in responses served from cache.",
        "tokens",
        "mw",
    ),
    Counter(
        "cost_saved_nanousd",
        "Cost of the responses served from cache, integer nano-USD, priced when written.",
        "nano-USD",
        "mc",
    ),
    Counter(
        "ms_saved",
        "Upstream time (ms) the responses served from cache took when they were computed.",
        "ms",
        "md",
    ),
    Counter(
        "unpriced_hits",
        "Responses served from cache whose cost is unknown (no price, or no usage).",
        "requests",
        "mu",
    ),
    # -- end of the savings block --------------------------------------------------------
    Counter("puts", "Entries written, fleet-wide.", "entries"),
    Counter(
        "coalesced", "Requests answered by waiting on another caller's computation.", "requests"
    ),
    Counter("invalidations", "Entries deleted by invalidate(), fleet-wide.", "entries"),
    Counter("expired", "Index members found past their TTL and removed.", "entries"),
    Counter(
        "evicted",
        "Entries that vanished before their TTL (maxmemory eviction, manual DEL).",
        "entries",
    ),
    Counter("corrupt", "Entries dropped because their payload did not decode.", "entries"),
    Counter(
        "rejected",
        "Hits refused because the entry did not validate as the reader's response_model "
        "(served as misses; the entry is kept for the readers that can use it).",
        "requests",
    ),
    Counter(
        "forged",
        "Entries dropped because their MAC did not verify (caches with a signing_key).",
        "entries",
    ),
    Counter(
        "not_stored",
        "Computed responses should_store refused to store (truncated, filtered, errors).",
        "entries",
    ),
)
COUNTER_NAMES: frozenset[str] = frozenset(c.name for c in COUNTERS)
#: The per-model fields of the stats hash: field prefix (the Lua writes ``<prefix>:<model>``)
#: -> ``ModelStats`` attribute. Hits and misses, then the savings (each counter's
#: ``per_model``). Every other field a script writes is a counter's own name.
PER_MODEL_PREFIXES: dict[str, str] = {"mh": "hits", "mm": "misses"} | {
    c.per_model: c.name for c in COUNTERS if c.per_model
}
_DESCRIPTION = {c.name: c.description for c in COUNTERS}


def _counter(name: str) -> Any:
    """The field of counter ``name``: an int, 0 by default, described by ``COUNTERS``
    (``KeyError`` at import for a field that is not a counter)."""
    return Field(default=0, description=_DESCRIPTION[name])


class _FleetStatsBase(_HitRate, BaseModel):
    """The fields of ``FleetStats`` and its methods (the docstring is built from ``COUNTERS``
    below)."""

    size: int = Field(default=0, description="Live entries of the namespace now.")
    by_model: dict[str, ModelStats] = Field(
        default_factory=dict, description="Hits and misses per model name."
    )
    bad_counters: list[str] = Field(
        default_factory=list,
        description="Stored counters that are not integers (written by another client): "
        "skipped, each as 'field=value'.",
    )
    # one int field per entry of COUNTERS, in its order (a unit test checks both ways)
    hits: int = _counter("hits")
    misses: int = _counter("misses")
    tokens_saved: int = _counter("tokens_saved")
    input_tokens_saved: int = _counter("input_tokens_saved")
    output_tokens_saved: int = _counter("output_tokens_saved")
    cache_read_tokens_saved: int = _counter("cache_read_tokens_saved")
    cache_write_tokens_saved: int = _counter("cache_write_tokens_saved")
    cost_saved_nanousd: int = _counter("cost_saved_nanousd")
    ms_saved: int = _counter("ms_saved")
    unpriced_hits: int = _counter("unpriced_hits")
    puts: int = _counter("puts")
    coalesced: int = _counter("coalesced")
    invalidations: int = _counter("invalidations")
    expired: int = _counter("expired")
    evicted: int = _counter("evicted")
    corrupt: int = _counter("corrupt")
    rejected: int = _counter("rejected")
    forged: int = _counter("forged")
    not_stored: int = _counter("not_stored")

    @property
    def saved(self) -> int:
        """Gets that did not reach the upstream: ``hits`` plus ``coalesced`` (callers served by
        another caller's single-flight computation; each is also one of ``misses``, since its
        first look found no entry)."""
        return max(self.hits, 0) + max(self.coalesced, 0)

    @property
    def saved_rate(self) -> float:
        """``saved / total``, 0.0-1.0 (0.0 when there were no gets): the fraction of gets
        that did not reach the upstream. ``hit_rate`` <= ``saved_rate``; they differ by the
        coalesced waiters."""
        return min(1.0, self.saved / self.total) if self.total > 0 else 0.0

    @property
    def cost_saved_usd(self) -> float:
        """``cost_saved_nanousd`` in US dollars (a float of the exact integer sum)."""
        return int(self.cost_saved_nanousd) / 1e9

    @property
    def seconds_saved(self) -> float:
        """``ms_saved`` in seconds."""
        return int(self.ms_saved) / 1000

    def to_cache_stats(self) -> CacheStats:
        """The ``CacheStats`` view (hits, misses, size) of these numbers."""
        return CacheStats(hits=max(self.hits, 0), misses=max(self.misses, 0), size=self.size)


_FLEET_DOC = (
    """Every fleet-wide counter of a namespace, summed over its shards.

Integer counts since the namespace was created or last cleared / reset (one field per entry
of ``COUNTERS``):

"""
    + "\n".join(f"- ``{c.name}`` ({c.kind}): {c.description}" for c in COUNTERS)
    + """

plus ``size`` (live entries now), ``by_model`` (hits, misses and savings per model name),
``hit_rate`` (hits / (hits + misses)), ``saved_rate`` ((hits + coalesced) / (hits + misses):
the gets that did not reach the upstream; a coalesced waiter is one of the misses),
``bad_counters`` (stored values that were not integers: skipped and listed, never raised),
and ``cost_saved_usd`` / ``seconds_saved`` (the cost and time counters in USD and s).

The savings counters are what the entries recorded when written (usage, cost priced then,
upstream time), added by the hit script per model; the fleet values are the sums over
``by_model``. Coalesced answers (a waiter served by another caller's computation) add
their savings too.
"""
)


class FleetStats(_FleetStatsBase):
    __doc__ = _FLEET_DOC


_INT = re.compile(rb"-?[0-9]{1,20}")
#: Bad counter names already logged by this process (bounded: hostile data can make many).
_LOGGED: set[str] = set()
_LOGGED_MAX = 100


def decode_text(v: Any) -> str:
    """A reply's bytes (a hash field, a recorded model name) as str: UTF-8; a model name
    with lone surrogates (stored with ``surrogatepass`` by ``ops.model_arg``) comes back as
    it was; other bytes that are not UTF-8 are kept as ``surrogateescape``. A value that is
    not bytes is ``str(v)``."""
    if not isinstance(v, bytes):
        return str(v)
    try:
        return v.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
        return v.decode("utf-8", "surrogateescape")


def utf8_label(name: str) -> str:
    """``name`` as text that encodes to UTF-8: itself when it does, else with each lone
    surrogate (a model name that holds one, or bytes another client wrote that are not
    UTF-8) written as a ``\\udcff``-style escape. For outputs that must be valid UTF-8,
    such as Prometheus labels."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return name.encode("utf-8", "backslashreplace").decode("utf-8")
    return name


#: A per-model savings record (stats hash field ``m:<model>``, written by the Lua
#: ``count_saved``): ten signed 64-bit big-endian integers, each below 2^53 in magnitude:
#: hits, total tokens, input, output, cache-read, cache-write tokens, upstream ms, cost in
#: whole USD, the rest of the cost in nano-USD (0 <= rest < 10^9), unpriced hits.
#: The stats-hash field prefix of a model's packed savings record (``m:<model>``).
RECORD_PREFIX = "m"
RECORD = struct.Struct(">10q")
_REC_MAX = 1 << 53
_NANO = 1_000_000_000
#: ModelStats attribute of each record slot (tokens and cost handled apart)
_REC_MODEL = (
    "hits",
    "",
    "input_tokens_saved",
    "output_tokens_saved",
    "cache_read_tokens_saved",
    "cache_write_tokens_saved",
    "ms_saved",
    "",
    "",
    "unpriced_hits",
)


def parse_record(data: bytes) -> tuple[int, ...] | None:
    """The ten integers of a savings record (see ``RECORD``), or None when ``data`` is not
    one (wrong length, a number out of range: written by another client)."""
    if len(data) != RECORD.size:
        return None
    rec = RECORD.unpack(data)
    if not 0 <= rec[8] < _NANO or any(abs(x) >= _REC_MAX for x in rec):
        return None
    return rec


def parse_counters(flat: Sequence[Any], into: FleetStats) -> None:
    """Add one shard's flat ``HGETALL`` reply of its stats hash to ``into``.

    Integer fields: the counters (``hits``, ``misses``, ``tokens_saved``, ...) and the per-model
    ``mh:``/``mm:``/``mi:``/... fields (hits, misses; savings counted before the records, or
    while a model's record was unusable). Savings records ``m:<model>`` (``RECORD``): the
    model's hits and savings, added to its ``by_model`` entry and to the fleet totals
    (``hits``, ``tokens_saved`` and each saving are the sums of the fields and the records).

    A value that is not a plain integer (another client wrote ``"abc"``, a float, bytes), or
    a record that is not one, is corrupt data: it is skipped, listed in
    ``into.bad_counters`` and logged once per field name per process. Fields that are not
    counters are ignored.
    """
    by_model = into.by_model
    for i in range(0, len(flat) - 1, 2):
        name = decode_text(flat[i])
        raw = flat[i + 1]
        data = raw if isinstance(raw, bytes) else str(raw).encode("utf-8", "surrogatepass")
        if name[:2] == f"{RECORD_PREFIX}:":
            rec = parse_record(data)
            if rec is None:
                _bad(into, name, data)
            else:
                _add_record(into, by_model.setdefault(name[2:], ModelStats()), rec)
            continue
        attr = PER_MODEL_PREFIXES.get(name[:2]) if name[2:3] == ":" else None
        if attr is None and name not in COUNTER_NAMES:
            continue
        if _INT.fullmatch(data) is None:
            _bad(into, name, data)
            continue
        value = int(data)
        if attr is None:
            setattr(into, name, getattr(into, name) + value)
            continue
        m = by_model.setdefault(name[3:], ModelStats())
        setattr(m, attr, getattr(m, attr) + value)
        if attr not in ("hits", "misses"):  # a saving: the fleet value is the sum
            setattr(into, attr, getattr(into, attr) + value)


def _add_record(into: FleetStats, m: ModelStats, rec: tuple[int, ...]) -> None:
    for attr, value in zip(_REC_MODEL, rec, strict=True):
        if attr:
            setattr(m, attr, getattr(m, attr) + value)
            setattr(into, attr, getattr(into, attr) + value)
    cost = rec[7] * _NANO + rec[8]
    m.cost_saved_nanousd += cost
    setattr(into, "cost_saved_nanousd", into.cost_saved_nanousd + cost)  # noqa: B010
    setattr(into, "tokens_saved", into.tokens_saved + rec[1])  # noqa: B010


def _bad(into: FleetStats, name: str, data: bytes) -> None:
    shown = data[:40].decode("utf-8", "surrogateescape")
    into.bad_counters.append(f"{name}={shown!r}")
    if name not in _LOGGED and len(_LOGGED) < _LOGGED_MAX:
        _LOGGED.add(name)
        log.warning(
            "fleetcache: counter %r holds %r, not an integer (written by another client?): "
            "skipped in fleet_stats and listed in bad_counters",
            name,
            shown,
        )
