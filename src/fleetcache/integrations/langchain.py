"""A LangChain cache on a fleetcache namespace: ``set_llm_cache(FleetLangChainCache(...))``.

Every process of a LangChain app that uses the same Redis and ``key_prefix`` shares the
cached generations and one set of fleet-wide numbers (hits, misses, size, tokens saved),
visible with ``fleetcache stats`` and the Prometheus collector. Needs ``langchain-core``
(extra ``langchain``).

How a LangChain lookup maps onto fleetcache's five request fields (unambiguous: the core
hashes a length-prefixed encoding of the fields, and the whole ``llm_string`` is in one):

- ``user_message`` = the prompt (LangChain's serialised prompt or messages);
- ``system_prompt`` = ``"langchain:" + llm_string`` (the model class and every parameter);
- ``model`` = a short model name read from ``llm_string`` (``model_name``/``model``/
  ``_type``), so the per-model numbers are readable; it is derived from ``llm_string``, so
  it adds no ambiguity;
- ``temperature`` = 0.0 and ``max_tokens`` = 0 (both already inside ``llm_string``).

The value is a ``LangChainGenerations`` pydantic model: each generation serialised with
``langchain_core.load.dumps`` (read back with an allowlist of generation and message
classes only), plus the token usage found in them so ``tokens_saved`` counts them.
"""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Sequence
from typing import Any

from langchain_core.caches import BaseCache
from langchain_core.load import dumps, loads
from langchain_core.outputs import (
    ChatGeneration,
    ChatGenerationChunk,
    Generation,
    GenerationChunk,
)
from pydantic import BaseModel, Field, PrivateAttr, model_validator

from ..aio import AsyncRedisExactCache
from ..cache import RedisExactCache
from ..core.usage import Usage, usage_of

__all__ = ["FleetLangChainCache", "LangChainGenerations"]

_SYSTEM_TAG = "langchain:"
_MODEL_KEYS = ("model_name", "model", "model_id", "_type")
_MODEL_RES = tuple(
    re.compile(rf"""['"]{k}['"]\s*[:=,]\s*['"]([^'"]{{1,200}})['"]""") for k in _MODEL_KEYS
)


class LangChainGenerations(BaseModel):
    """What the cache stores for one LangChain call: serialised generations + usage.

    Validating one (constructing it, or reading an entry) loads its generations (allowed
    generation and message classes only): an entry this process cannot load is a
    ``ValidationError``, so the cache reads it as a *rejected* entry, a counted miss whose
    hit and ``tokens_saved`` are taken back in Redis (the entry is kept for processes that
    can load it). The loaded generations are kept on the object for ``lookup``.
    """

    generations: list[str] = Field(
        default_factory=list, description="Each generation as langchain_core.load.dumps JSON."
    )
    usage: dict[str, int] = Field(
        default_factory=dict, description="Token usage summed over the generations."
    )
    _loaded: list[Generation] | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _load_generations(self) -> LangChainGenerations:
        self._loaded = _load_all(self.generations)
        return self

    def loaded(self) -> list[Generation]:
        """The generations as LangChain objects (loaded once; ``ValueError`` if one does
        not load)."""
        if self._loaded is None:  # built with model_construct: not validated yet
            self._loaded = _load_all(self.generations)
        return self._loaded


def _load_all(texts: Sequence[str]) -> list[Generation]:
    """Every generation of an entry, loaded; ``ValueError`` if one does not load (bad
    JSON, a class outside the allow-list, not a ``Generation``)."""
    try:
        gens = [_load(s) for s in texts]
    except Exception as exc:  # an entry this langchain_core cannot read
        raise ValueError(f"a generation does not load: {exc!r}") from exc
    for g in gens:
        if not isinstance(g, Generation):
            raise ValueError(f"a generation loads as a {type(g).__name__}")
    return gens


def _allowed() -> list[type[Any]]:
    from langchain_core import messages as m

    names = (
        "AIMessage", "AIMessageChunk", "HumanMessage", "HumanMessageChunk", "SystemMessage",
        "SystemMessageChunk", "ToolMessage", "ToolMessageChunk", "FunctionMessage",
        "FunctionMessageChunk", "ChatMessage", "ChatMessageChunk",
    )  # fmt: skip
    classes: list[type[Any]] = [Generation, GenerationChunk, ChatGeneration, ChatGenerationChunk]
    classes += [getattr(m, n) for n in names if hasattr(m, n)]
    return classes


_ALLOWED = _allowed()
#: The serialised ids (``lc_id()``, what ``dumps`` writes) of the classes a hit may build.
_ALLOWED_IDS = frozenset(tuple(c.lc_id()) for c in _ALLOWED)


def _only_allowed(node: Any) -> bool:
    """Every serialised constructor in ``node`` (parsed JSON) names a class of ``_ALLOWED``."""
    stack = [node]
    while stack:
        x = stack.pop()
        if isinstance(x, dict):
            if x.get("lc") == 1 and x.get("type") == "constructor":
                ident = x.get("id")
                if not isinstance(ident, list) or tuple(ident) not in _ALLOWED_IDS:
                    return False
            stack.extend(x.values())
        elif isinstance(x, list):
            stack.extend(x)
    return True


def _load(text: str) -> Any:
    """Generations from ``dumps`` JSON, building only the classes of ``_ALLOWED``.

    The allow-list is checked here, then ``loads`` runs with its built-in ``"core"`` set
    (which also blocks templates that run code): ``loads(allowed_objects=[...])`` recomputes
    an explicit list on every call, ~80 us of a ~110 us hit."""
    if not _only_allowed(json.loads(text)):
        raise ValueError("the entry names a class outside the generation/message allow-list")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # langchain_core marks loads() as beta
        try:
            return loads(text, allowed_objects="core")
        except TypeError:  # an older langchain_core without allowed_objects
            return loads(text)


def model_of(llm_string: str) -> str:
    """A short model name found in ``llm_string`` (``"langchain"`` if none)."""
    for rx in _MODEL_RES:  # the most specific key first
        m = rx.search(llm_string)
        if m:
            return m.group(1)
    return "langchain"


def _usage(gens: Sequence[Generation]) -> dict[str, int]:
    """The generations' token usage summed by kind (``usage_of``: the message's
    ``usage_metadata``, else ``generation_info``'s ``token_usage``), in Anthropic's field
    names (input excludes the prompt-cache reads and writes), so a hit's saving is counted
    and priced by kind; ``{}`` when none reports usage."""
    found: Usage | None = None
    for g in gens:
        message = getattr(g, "message", None)
        meta = getattr(message, "usage_metadata", None)
        record = {"message": {"usage_metadata": meta}, "generation_info": g.generation_info}
        one = usage_of(record)
        if one is not None:
            found = one if found is None else found + one
    if found is None:
        return {}
    return {
        "input_tokens": found.input,
        "output_tokens": found.output,
        "cache_read_input_tokens": found.cache_read,
        "cache_creation_input_tokens": found.cache_write,
        "total_tokens": found.total,
    }


class FleetLangChainCache(BaseCache):
    """A ``langchain_core`` ``BaseCache`` backed by a fleetcache namespace.

    ``cache`` [None]: a ``RedisExactCache`` for the sync methods; ``async_cache`` [None]:
    an ``AsyncRedisExactCache`` for ``alookup``/``aupdate``/``aclear`` (without it they run
    the sync cache in a thread, LangChain's default). Without ``cache``, a
    ``RedisExactCache`` is built from ``**cache_kwargs`` (``url=``, ``key_prefix=``
    [``"langchain:exact"``, or ``async_cache``'s prefix], ``shards=`` [1, or
    ``async_cache``'s], ``ttl_seconds=``...); with only ``async_cache`` and no keywords,
    the sync methods raise ``RuntimeError``. The caches must use
    ``response_model=LangChainGenerations`` (set for you when built here; other models
    raise ``ValueError``), and when there are two, the same namespace (``key_prefix`` and
    ``shards``; else ``ValueError``) so both read and count one set of entries.
    """

    def __init__(
        self,
        cache: RedisExactCache | None = None,
        *,
        async_cache: AsyncRedisExactCache | None = None,
        **cache_kwargs: Any,
    ) -> None:
        if cache is None and (async_cache is None or cache_kwargs):
            if async_cache is None:
                cache_kwargs.setdefault("key_prefix", "langchain:exact")
            else:
                cache_kwargs.setdefault("key_prefix", async_cache.key_prefix)
                cache_kwargs.setdefault("shards", async_cache.shards)
            cache_kwargs["response_model"] = LangChainGenerations
            cache = RedisExactCache(**cache_kwargs)
        elif cache_kwargs:
            raise TypeError("give a cache object or constructor keywords, not both")
        for c in (cache, async_cache):
            if c is not None and c.response_model is not LangChainGenerations:
                raise ValueError("the cache must be built with response_model=LangChainGenerations")
        if cache is not None and async_cache is not None:
            mine = (cache.key_prefix, cache.shards)
            theirs = (async_cache.key_prefix, async_cache.shards)
            if mine != theirs:
                raise ValueError(
                    f"cache and async_cache must share one namespace: key_prefix and shards "
                    f"{mine!r} vs {theirs!r}"
                )
        self.cache = cache
        self.async_cache = async_cache

    @staticmethod
    def _fields(prompt: str, llm_string: str) -> tuple[str, str, str, float, int]:
        return (prompt, _SYSTEM_TAG + llm_string, model_of(llm_string), 0.0, 0)

    @staticmethod
    def _decode(value: Any) -> list[Generation] | None:
        # A hit was validated (its generations loaded) by the cache's decoder: an entry
        # that does not load never gets here, it is a counted miss (rejected) already.
        if not isinstance(value, LangChainGenerations):
            return None
        try:
            return list(value.loaded())
        except ValueError:  # pragma: no cover - validated when read
            return None

    @staticmethod
    def _encode(return_val: Sequence[Generation]) -> LangChainGenerations:
        # model_construct: the generations are LangChain's own objects, no need to load
        # back what was just dumped
        return LangChainGenerations.model_construct(
            generations=[dumps(g) for g in return_val], usage=_usage(return_val)
        )

    def _sync(self) -> RedisExactCache:
        if self.cache is None:
            raise RuntimeError("this FleetLangChainCache has only an async cache: use alookup")
        return self.cache

    def lookup(self, prompt: str, llm_string: str) -> list[Generation] | None:
        """The cached generations for this prompt and LLM configuration, or ``None``."""
        return self._decode(self._sync().get(*self._fields(prompt, llm_string)))

    def update(self, prompt: str, llm_string: str, return_val: Sequence[Generation]) -> None:
        """Store the generations of one call."""
        self._sync().put(*self._fields(prompt, llm_string), self._encode(return_val))

    def clear(self, **kwargs: Any) -> None:
        """Delete every entry of the namespace (and reset its counters)."""
        if self.cache is not None:
            self.cache.clear()
        elif self.async_cache is not None:
            raise RuntimeError("this FleetLangChainCache has only an async cache: use aclear")

    async def alookup(self, prompt: str, llm_string: str) -> list[Generation] | None:
        """Async ``lookup`` (uses ``async_cache`` if given)."""
        if self.async_cache is None:
            return await super().alookup(prompt, llm_string)  # type: ignore[return-value]
        value = await self.async_cache.get(*self._fields(prompt, llm_string))
        return self._decode(value)

    async def aupdate(self, prompt: str, llm_string: str, return_val: Sequence[Generation]) -> None:
        """Async ``update`` (uses ``async_cache`` if given)."""
        if self.async_cache is None:
            await super().aupdate(prompt, llm_string, return_val)
            return
        await self.async_cache.put(*self._fields(prompt, llm_string), self._encode(return_val))

    async def aclear(self, **kwargs: Any) -> None:
        """Async ``clear`` (uses ``async_cache`` if given)."""
        if self.async_cache is None:
            await super().aclear(**kwargs)
            return
        await self.async_cache.clear()
