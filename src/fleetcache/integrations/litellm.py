"""fleetcache as LiteLLM's cache: ``litellm.cache = fleetcache_litellm_cache(url=...)``.

Every process whose LiteLLM cache points at the same Redis and ``key_prefix`` shares the
cached answers of ``litellm.completion``/``acompletion`` (and embeddings, text completions,
Responses API calls: whatever LiteLLM caches), and one set of fleet-wide numbers (hits,
misses, per model, tokens saved, ``not_stored``), visible with ``fleetcache stats`` and the
Prometheus collector. Needs ``litellm`` (extra ``litellm``).

How it plugs in: LiteLLM's ``Cache`` keeps deciding *what* is cached (which call types,
``caching=True``, ``max_messages``...), but the key is fleetcache's own
(:meth:`FleetLiteLLMCache.get_cache_key`): a digest of the **whole request** LiteLLM was
called with (every keyword of ``litellm.completion``/``embedding``/...: ``model``,
``messages``, every sampling parameter, ``api_base``/``base_url``, ``api_version``,
``custom_llm_provider``, ``extra_body``, ``extra_headers``/``headers``, ``extra_query``,
provider-specific parameters), except the fields in :data:`LITELLM_UNKEYED` (they never
change the answer: streaming flags, ``user``, ``metadata``, LiteLLM's cache controls,
timeouts and retries, ``mock_*`` test stand-ins, callbacks and ``litellm_*`` bookkeeping),
the credentials (:func:`is_litellm_credential`: ``api_key``, cloud secrets and tokens, the
SDK ``client``: a credential is never keyed, so two keys to one upstream share entries) and,
inside the header mappings, the authentication and trace headers in
:data:`LITELLM_UNKEYED_HEADERS` (any other header is keyed: a gateway routing header costs a
miss, never a wrong answer). LiteLLM's own key, which leaves out ``api_base``, ``extra_body``
and extra headers, is not used. This module replaces the storage under it too
(``Cache.cache``, a LiteLLM ``BaseCache``) by a fleetcache namespace on the whole-request
path:

- the entry of LiteLLM key ``K`` is the request ``{"litellm_cache_key": K, "model": M}``
  (``model`` is left out of the digest, ``ignore={"model"}``: it only names the per-model
  counters; ``K`` already covers it); entries written with LiteLLM's own key (fleetcache
  before it keyed the whole request) are never read under the new keys;
- the stored value is the response's JSON data itself (so ``tokens_saved`` reads its
  ``usage``, and ``should_store`` sees the answer); LiteLLM's ``{"timestamp", "response"}``
  wrapper is rebuilt on a hit, its ``timestamp`` being the entry's put time;
- LiteLLM's own per-request cache controls map onto fleetcache's controls:
  ``cache={"no-cache": True}`` = ``"no-cache"`` (read skipped, fresh answer stored),
  ``{"no-store": True}`` = ``"no-store"``, both = ``"bypass"``, ``{"ttl": s}`` = the
  entry's ``ttl_seconds``; ``{"s-maxage": s}`` is applied by LiteLLM to the ``timestamp``.
- Redis down: lookups are misses and writes are skipped (``on_error="miss"``), LiteLLM
  calls the provider as usual.

A hit is reported by LiteLLM itself: ``response._hidden_params["cache_hit"] is True``.

Keep LiteLLM offline in tests and local runs with ``LITELLM_LOCAL_MODEL_COST_MAP=True`` in
the environment before ``import litellm`` (it otherwise fetches its model price list).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Mapping
from typing import Any

import litellm
from litellm.caching.base_cache import BaseCache
from litellm.caching.caching import Cache
from litellm.types.caching import LiteLLMCacheType
from pydantic import BaseModel

from ..aio import AsyncRedisExactCache
from ..cache import RedisExactCache
from ..core.canonical import DEFAULT_IGNORE, request_digest
from ..core.info import cache_info
from ..core.request_ops import default_should_store
from ..core.validate import control_of, ttl_ms

__all__ = [
    "LITELLM_IGNORE",
    "LITELLM_UNKEYED",
    "LITELLM_UNKEYED_HEADERS",
    "FleetLiteLLMBackend",
    "FleetLiteLLMCache",
    "fleetcache_litellm_cache",
    "is_litellm_credential",
    "litellm_request_key",
    "litellm_should_store",
]

log = logging.getLogger("fleetcache")

#: The ``ignore`` set of the caches behind LiteLLM: the default set plus ``model``.
LITELLM_IGNORE = DEFAULT_IGNORE | {"model"}
#: The keywords of a LiteLLM call left out of :meth:`FleetLiteLLMCache.get_cache_key`
#: (with every name starting ``litellm_``): they never change the answer. Streaming
#: (``stream``, ``stream_options``: LiteLLM replays a stored answer as a stream), the end
#: user and tags (``user``, ``metadata``, ``tags``), LiteLLM's cache controls (``caching``,
#: ``cache``, ``ttl``, ``cache_key``, ``preset_cache_key``), timeouts and retries, its test
#: stand-ins for the upstream (``mock_*``), logging and cost bookkeeping.
LITELLM_UNKEYED: frozenset[str] = frozenset(
    {
        "stream",
        "stream_options",
        "user",
        "metadata",
        "tags",
        "caching",
        "cache",
        "ttl",
        "cache_key",
        "preset_cache_key",
        "timeout",
        "request_timeout",
        "stream_timeout",
        "num_retries",
        "max_retries",
        "mock_response",
        "mock_tool_calls",
        "mock_timeout",
        "mock_delay",
        "logger_fn",
        "callbacks",
        "success_callback",
        "failure_callback",
        "no-log",
        "proxy_server_request",
        "model_info",
        "input_cost_per_token",
        "output_cost_per_token",
        "input_cost_per_second",
        "output_cost_per_second",
        "acompletion",
        "aembedding",
        "atext_completion",
        "aresponses",
    }
)
#: Header names (lower case) left out of ``extra_headers``/``headers`` in the key:
#: credentials (``authorization``, ``proxy-authorization``, ``api-key``, ``cookie``, any name
#: ending ``api-key``, ``-auth``, ``-token`` or containing ``authorization``) and per-request
#: trace context and ids. Every other header is keyed.
LITELLM_UNKEYED_HEADERS: frozenset[str] = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "api-key",
        "cookie",
        "ocp-apim-subscription-key",
        "traceparent",
        "tracestate",
        "baggage",
        "x-request-id",
        "idempotency-key",
        "user-agent",
    }
)
#: Keywords that carry credentials (with :func:`is_litellm_credential`'s patterns).
_CREDENTIALS = frozenset(
    {
        "api_key",
        "client",
        "azure_ad_token",
        "azure_ad_token_provider",
        "azure_username",
        "azure_password",
        "client_secret",
        "aws_access_key_id",
        "aws_secret_access_key",
        "aws_session_token",
        "aws_bearer_token",
        "vertex_credentials",
        "token",
        "access_token",
        "password",
    }
)
_HEADER_FIELDS = ("extra_headers", "headers")


def is_litellm_credential(name: str) -> bool:
    """Whether the LiteLLM keyword ``name`` carries a credential (never keyed): ``api_key``,
    ``client`` (an SDK client object), Azure/AWS/Vertex secrets and tokens, and any name
    ending ``api_key`` or containing ``secret``, ``password`` or ``credential``."""
    n = name.lower()
    return (
        n in _CREDENTIALS
        or n.endswith("api_key")
        or any(part in n for part in ("secret", "password", "credential"))
    )


def _unkeyed_header(name: str) -> bool:
    n = name.lower()
    return (
        n in LITELLM_UNKEYED_HEADERS
        or n.endswith(("api-key", "-auth", "-token"))
        or "authorization" in n
    )


def _keyable(value: Any) -> Any:
    """``value`` as JSON data for the key: mappings, sequences and pydantic models by
    content, a pydantic model class by name and JSON schema (``response_format=Model``),
    anything else by ``repr`` (an object without its own ``repr`` then never shares)."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, Mapping):
        return {str(k): _keyable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_keyable(v) for v in value]
    if isinstance(value, BaseModel):
        return _keyable(value.model_dump(mode="json", exclude_unset=True))
    if isinstance(value, type) and issubclass(value, BaseModel):
        return {"pydantic_model": value.__qualname__, "schema": value.model_json_schema()}
    return {"repr": repr(value)}


def litellm_request_key(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a LiteLLM call's keywords that is keyed, as JSON data: every keyword but
    those in :data:`LITELLM_UNKEYED`, those starting ``litellm_``, credentials
    (:func:`is_litellm_credential`) and ``None`` values; in ``extra_headers``/``headers``,
    every header but the unkeyed ones (:data:`LITELLM_UNKEYED_HEADERS`)."""
    out: dict[str, Any] = {}
    for name, value in kwargs.items():
        if (
            value is None
            or name in LITELLM_UNKEYED
            or name.startswith("litellm_")
            or is_litellm_credential(name)
        ):
            continue
        if name in _HEADER_FIELDS and isinstance(value, Mapping):
            headers = {str(k).lower(): v for k, v in value.items() if not _unkeyed_header(str(k))}
            if headers:
                out[name] = _keyable(headers)
            continue
        out[name] = _keyable(value)
    return out


#: Marks a value stored as it was given (not LiteLLM's ``{"timestamp", "response"}``).
_RAW = "__litellm_value__"
_JUDGED = ("choices", "content", "output", "data", "error")


def litellm_should_store(data: dict[str, Any]) -> bool:
    """The default ``should_store`` behind LiteLLM: :func:`fleetcache.default_should_store`
    for chat, text, Messages, Responses-API and embedding responses and errors (finish
    reason ``length``/``content_filter``, ``max_tokens``/``refusal``, no choices or content,
    an error: not stored); anything else LiteLLM chose to cache (an embedding item,
    a transcription, a rerank) is stored."""
    if any(k in data for k in _JUDGED) or data.get("type") == "error":
        return default_should_store(data)
    return True


def _control(options: object) -> str:
    """fleetcache's control for LiteLLM's ``cache={...}`` options."""
    if not isinstance(options, Mapping):
        return "default"
    return control_of(options.get("no-cache") is not True, options.get("no-store") is not True)


def _read_control(kwargs: Mapping[str, Any]) -> str:
    """A lookup's control: LiteLLM skips the read itself on ``no-cache``; so do we."""
    return "no-cache" if _control(kwargs.get("cache")) in ("no-cache", "bypass") else "default"


def _ttl(kwargs: Mapping[str, Any]) -> float | None:
    """The entry TTL in seconds LiteLLM asked for (``ttl`` kwarg or ``cache={"ttl": s}``)."""
    for source in (kwargs.get("cache"), kwargs):
        if isinstance(source, Mapping):
            ttl = source.get("ttl")
            try:  # the caches' TTL check (0.001 s .. 1e12 s); LiteLLM's bad TTLs are ignored
                ttl_ms(ttl)
            except (TypeError, ValueError):
                continue
            if ttl is not None:
                return float(ttl)
    return None


class FleetLiteLLMBackend(BaseCache):
    """A LiteLLM ``BaseCache`` on a fleetcache namespace (the storage under ``Cache``).

    Either give ``url`` and any ``RedisExactCache`` keyword (``key_prefix``,
    ``ttl_seconds``, ``on_error``, ``shards``, ``should_store``, ``signing_key``...): the
    backend builds a sync and an async cache (the async one opens a client per event loop
    by itself); or give ``cache`` (a ``RedisExactCache``) and optionally ``async_cache``
    (an ``AsyncRedisExactCache``), both built with ``ignore=LITELLM_IGNORE``; without
    ``async_cache``, async calls run the sync cache in a worker thread. ``should_store``
    defaults to :func:`litellm_should_store`; ``key_prefix`` to ``"fleetcache:litellm"``.
    """

    def __init__(
        self,
        *,
        url: str | None = None,
        cache: RedisExactCache | None = None,
        async_cache: AsyncRedisExactCache | None = None,
        **cache_kwargs: Any,
    ) -> None:
        super().__init__()
        if cache is not None or async_cache is not None:
            if url is not None or cache_kwargs:
                raise TypeError("give either url= (and cache keywords) or cache=/async_cache=")
            for c, cls in ((cache, RedisExactCache), (async_cache, AsyncRedisExactCache)):
                if c is None:
                    continue
                if not isinstance(c, cls):
                    raise TypeError(f"expected a {cls.__name__}, not {type(c).__name__}")
                if "model" not in c.ignore:
                    raise ValueError(
                        "a cache behind LiteLLM must leave 'model' out of the key: build it "
                        "with ignore=fleetcache.integrations.litellm.LITELLM_IGNORE"
                    )
            if cache is None:
                raise TypeError("cache= (a RedisExactCache) is needed for LiteLLM's sync calls")
            self._owns = False
        else:
            if "ignore" in cache_kwargs:
                raise TypeError("ignore= is fixed to LITELLM_IGNORE behind LiteLLM")
            cache_kwargs.setdefault("key_prefix", "fleetcache:litellm")
            cache_kwargs.setdefault("should_store", litellm_should_store)
            if url is not None:
                cache_kwargs["url"] = url
            cache_kwargs["ignore"] = LITELLM_IGNORE
            self._owns = True
            cache = RedisExactCache(**cache_kwargs)
            async_cache = AsyncRedisExactCache(**cache_kwargs)
        self.sync_cache: RedisExactCache = cache
        self.async_cache: AsyncRedisExactCache | None = async_cache

    # -- plumbing --------------------------------------------------------------------------

    def _async_cache(self) -> AsyncRedisExactCache | None:
        return self.async_cache

    @staticmethod
    def _request(key: object, kwargs: Mapping[str, Any]) -> dict[str, Any]:
        if not isinstance(key, str):
            raise TypeError(f"LiteLLM cache key must be str, not {type(key).__name__}")
        model = kwargs.get("model")
        return {"litellm_cache_key": key, "model": model if isinstance(model, str) else ""}

    @staticmethod
    def _to_store(value: Any) -> dict[str, Any] | None:
        """The JSON data to store for LiteLLM's value (``None``: not storable, skipped)."""
        if isinstance(value, Mapping) and set(value) == {"timestamp", "response"}:
            response = value["response"]
            if isinstance(response, (str, bytes)):
                try:
                    response = json.loads(response)
                except ValueError:
                    log.debug("fleetcache: LiteLLM response is not JSON; not cached")
                    return None
            if isinstance(response, Mapping):
                return dict(response)
            if hasattr(response, "model_dump"):
                dumped: dict[str, Any] = response.model_dump(mode="json", exclude_unset=True)
                return dumped
            return None
        return {_RAW: value}

    @staticmethod
    def _from_store(hit: dict[str, Any] | None) -> Any:
        """LiteLLM's value for a stored entry: ``{"timestamp": put time (s), "response"}``."""
        if hit is None:
            return None
        if set(hit) == {_RAW}:
            return hit[_RAW]
        info = cache_info(hit)
        age = info.age_seconds if info is not None and info.age_seconds is not None else 0.0
        return {"timestamp": time.time() - age, "response": dict(hit)}

    def _put_args(self, key: Any, value: Any, kwargs: Mapping[str, Any]) -> Any:
        data = self._to_store(value)
        if data is None:
            return None
        return self._request(key, kwargs), data, _ttl(kwargs), _control(kwargs.get("cache"))

    # -- BaseCache -------------------------------------------------------------------------

    def set_cache(self, key: Any, value: Any, **kwargs: Any) -> None:
        """Store LiteLLM's value under its key (fail-open; LiteLLM's controls apply)."""
        args = self._put_args(key, value, kwargs)
        if args is not None:
            request, data, ttl, control = args
            self.sync_cache.put_request(request, data, ttl_seconds=ttl, control=control)

    async def async_set_cache(self, key: Any, value: Any, **kwargs: Any) -> None:
        """Async ``set_cache``."""
        args = self._put_args(key, value, kwargs)
        if args is None:
            return
        request, data, ttl, control = args
        c = self._async_cache()
        if c is None:
            await asyncio.to_thread(
                self.sync_cache.put_request, request, data, ttl_seconds=ttl, control=control
            )
        else:
            await c.put_request(request, data, ttl_seconds=ttl, control=control)

    async def async_set_cache_pipeline(self, cache_list: Any, **kwargs: Any) -> None:
        """Store several ``(key, value)`` pairs (LiteLLM's embedding writes)."""
        for key, value in cache_list:
            await self.async_set_cache(key, value, **kwargs)

    async def batch_cache_write(self, key: Any, value: Any, **kwargs: Any) -> None:
        await self.async_set_cache(key, value, **kwargs)

    def get_cache(self, key: Any, **kwargs: Any) -> Any:
        """LiteLLM's value for its key, or ``None`` (counted fleet-wide)."""
        request = self._request(key, kwargs)
        hit = self.sync_cache.get_request(request, control=_read_control(kwargs))
        return self._from_store(hit)

    async def async_get_cache(self, key: Any, **kwargs: Any) -> Any:
        """Async ``get_cache``."""
        request = self._request(key, kwargs)
        control = _read_control(kwargs)
        c = self._async_cache()
        if c is None:
            hit = await asyncio.to_thread(self.sync_cache.get_request, request, control=control)
        else:
            hit = await c.get_request(request, control=control)
        return self._from_store(hit)

    def delete_cache(self, key: Any) -> None:
        self.sync_cache.invalidate_request(self._request(key, {}))

    def flush_cache(self) -> None:
        """Delete every entry of the namespace (``clear()``)."""
        self.sync_cache.clear()

    async def disconnect(self) -> None:
        """Close the clients this backend built (caches you gave stay open)."""
        if self._owns:
            if self.async_cache is not None:
                await self.async_cache.aclose()
            self.sync_cache.close()

    async def test_connection(self) -> dict[str, Any]:
        try:
            self.sync_cache.size()
        except Exception as exc:  # report, never raise (LiteLLM's contract)
            return {
                "status": "failed",
                "message": "fleetcache: Redis unreachable",
                "error": str(exc),
            }
        return {"status": "success", "message": "fleetcache: connected"}


class FleetLiteLLMCache(Cache):
    """LiteLLM's ``Cache`` with a :class:`FleetLiteLLMBackend` under it, keyed on the whole
    request (:meth:`get_cache_key`).

    Passes ``model`` and the per-request ``cache={...}`` options on to the backend's
    lookups (LiteLLM gives a backend only the messages and metadata), for the per-model
    counters and the control mapping. The keywords of LiteLLM's ``Cache`` apply (``mode``,
    ``supported_call_types``, ``namespace``...), except ``max_messages``, which defaults to
    ``None`` here: an exact key is as safe for a 40-message conversation as for a short one
    (LiteLLM's own default, 4, skips longer requests entirely).
    """

    def __init__(
        self, backend: FleetLiteLLMBackend, *, max_messages: int | None = None, **kwargs: Any
    ) -> None:
        if not isinstance(backend, FleetLiteLLMBackend):
            raise TypeError("backend must be a FleetLiteLLMBackend")
        kwargs.pop("type", None)
        super().__init__(type=LiteLLMCacheType.LOCAL, max_messages=max_messages, **kwargs)
        self.cache = backend
        self.ttl = None  # the namespace's ttl_seconds is the default; per-call ttl applies

    def get_cache_key(self, **kwargs: Any) -> str:
        """The key of a LiteLLM call: ``"fc1:"`` and the fleetcache digest of
        :func:`litellm_request_key` (the whole request but its unkeyed fields and
        credentials), after LiteLLM's ``namespace`` if one is set. A key LiteLLM already
        computed for this call (``litellm_params["preset_cache_key"]``) is reused, and the
        new one is recorded there, as LiteLLM's own ``get_cache_key`` does."""
        preset = self.get_preset_cache_key_from_kwargs(**kwargs)
        if preset is not None:
            return preset
        request = litellm_request_key(kwargs)
        if "file" in request:  # a transcription's audio: LiteLLM's checksum or file name
            request["file"] = self._get_file_param_value(kwargs)
        key = "fc1:" + request_digest(request, ignore=())
        key = self._add_namespace_to_cache_key(key, **kwargs)
        rest = {k: v for k, v in kwargs.items() if k != "preset_cache_key"}
        self._set_preset_cache_key_in_kwargs(preset_cache_key=key, **rest)
        return key

    @staticmethod
    def _get_safe_cache_lookup_kwargs(kwargs: Mapping[str, object]) -> dict[str, object]:
        out: dict[str, object] = Cache._get_safe_cache_lookup_kwargs(kwargs)
        for name in ("model", "cache"):
            if name in kwargs:
                out[name] = kwargs[name]
        return out


def fleetcache_litellm_cache(
    url: str = "redis://localhost:6379/0",
    *,
    litellm_kwargs: Mapping[str, Any] | None = None,
    install: bool = True,
    **cache_kwargs: Any,
) -> FleetLiteLLMCache:
    """A LiteLLM cache on a fleetcache namespace, set as ``litellm.cache`` (``install``).

    ``url`` and ``cache_kwargs`` (``key_prefix="fleetcache:litellm"``, ``ttl_seconds``,
    ``on_error``, ``shards``, ``should_store``...) build the fleetcache caches;
    ``litellm_kwargs`` go to LiteLLM's ``Cache`` (``mode``, ``supported_call_types``...).
    """
    cache = FleetLiteLLMCache(
        FleetLiteLLMBackend(url=url, **cache_kwargs), **(litellm_kwargs or {})
    )
    if install:
        litellm.cache = cache
    return cache
