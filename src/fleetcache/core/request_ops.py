"""The whole-request path of the pure core (``get_request``, ``put_request``,
``invalidate_request``, ``get_or_compute_request``): no I/O here either.

It shares everything with the five-field path except the key and the body: the same
namespace and shards, the same scripts (``get-3``, ``put-3``, ``invalidate-3``,
``drop_corrupt-3``, ``get_or_lease-4``, ``put_release-4``) and therefore the same counters,
TTL rules and single-flight. Its digest comes from :mod:`fleetcache.core.canonical` (a separate
key domain), and its entries are the request-path envelopes of :mod:`fleetcache.core.envelope`
(``FLAG_JSON``, ``encode_entry``/``decode_entry``/``hit_of``). The per-call controls are
``validate.CONTROLS``; ``get_or_compute_request`` is one ``RequestFlight`` whatever its
control, so the request is keyed once per call.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping
from contextlib import suppress
from typing import Any

from pydantic import BaseModel

from .._lua import script
from .canonical import canonical_json, digest_of_canonical, json_data
from .envelope import (
    FLAG_JSON,
    MAGIC,
    CorruptEntry,
    EntryMeta,
    decode_entry,
    encode_entry,
    hit_of,
    now_ms,
)
from .flight import Flight, Refuse, check_lease
from .info import CacheInfo, attach, cache_info
from .instructions import Batch, Call, Op
from .keys import RequestKey
from .ops import Core
from .signing import ForgedEntry
from .validate import CONTROLS, check_control
from .validate import upstream_ms as check_upstream_ms

log = logging.getLogger("fleetcache")

#: ``should_store(response_data) -> bool``: whether a computed response may be stored.
ShouldStore = Callable[[dict[str, Any]], bool]

#: ``model=`` of ``get_request``/``get_or_compute_request``: a pydantic model class (hits
#: are rebuilt with ``model_validate``), or a callable building the caller's object from the
#: response's JSON data (a ``dict``).
ResponseModel = type[BaseModel] | Callable[[dict[str, Any]], Any]


def check_model(model: object) -> None:
    """``TypeError`` unless ``model`` is ``None``, a pydantic model class or a callable."""
    if model is not None and not callable(model):
        raise TypeError(
            "model must be a pydantic model class or a callable taking the response's dict, "
            f"not {type(model).__name__}"
        )


def as_model(value: Any, model: ResponseModel | None) -> Any:
    """A response fleetcache returns (``value``: a hit's dict or ``compute()``'s answer) as
    ``model``'s type, carrying the same :class:`CacheInfo`.

    ``model`` ``None``, ``value`` ``None`` (a miss of ``get_request``), or ``value`` already
    an instance of the ``model`` class: ``value`` as is. A ``Mapping`` or a pydantic model
    is rebuilt from its JSON data (``model.model_validate(data)`` for a pydantic class,
    else ``model(data)``); any other ``value`` is returned as is. The info is attached when
    the object allows it (see :func:`fleetcache.cache_info`).
    """
    if model is None or value is None:
        return value
    if isinstance(model, type) and isinstance(value, model):
        return value
    if not isinstance(value, (Mapping, BaseModel)):
        return value
    info = cache_info(value)
    data = json_data(value)
    if isinstance(model, type) and issubclass(model, BaseModel):
        out: Any = model.model_validate(data)
    else:
        build: Callable[[dict[str, Any]], Any] = model
        out = build(data)
    if info is not None:
        with suppress(TypeError):  # not weak-referenceable: no info, the object is still right
            out = attach(out, info)
    return out


_GET = script("get")
_INVALIDATE = script("invalidate")
_NOT_STORED = script("not_stored")
_MANY_CHUNK = 500


def check_ignore(ignore: object) -> frozenset[str] | None:
    """The ``ignore=`` set of a cache: ``None`` (the default set) or strings."""
    if ignore is None:
        return None
    if isinstance(ignore, (str, bytes)) or not isinstance(ignore, Collection):
        raise TypeError("ignore must be a collection of field names (str) or None")
    out = frozenset(ignore)
    for name in out:
        if not isinstance(name, str):
            raise TypeError(f"ignore must hold field names (str), not {type(name).__name__}")
    return out


def check_should_store(should_store: object) -> ShouldStore | None:
    """``None`` (the default rule) or a callable."""
    if should_store is not None and not callable(should_store):
        raise TypeError("should_store must be a callable (response data -> bool) or None")
    return should_store


_OPENAI_BAD_FINISH = frozenset({"length", "content_filter"})
_ANTHROPIC_BAD_STOP = frozenset({"max_tokens", "refusal"})


def _choice_ok(choice: object) -> bool:
    if not isinstance(choice, Mapping):
        return False
    if choice.get("finish_reason") in _OPENAI_BAD_FINISH:
        return False
    message = choice.get("message")
    if isinstance(message, Mapping):
        return bool(
            message.get("content")
            or message.get("tool_calls")
            or message.get("function_call")
            or message.get("audio")
        )
    return bool(choice.get("text"))  # legacy completions


def default_should_store(response: Mapping[str, Any]) -> bool:
    """The default rule for what is stored (``response``: the JSON data of an answer).

    Refused: an error (a truthy ``error`` member, or Anthropic's ``"type": "error"``);
    OpenAI chat/completions with no choices, or any choice that stopped for ``length`` or
    ``content_filter`` or has no content (no text, tool calls, function call or audio);
    Anthropic messages with ``stop_reason`` ``max_tokens`` or ``refusal``, or no content
    blocks; Responses-API objects whose ``status`` is not ``completed`` or with no
    ``output``; and anything that has none of ``choices``, ``content``, ``output``, ``data``.
    Embeddings (a non-empty ``data`` list) are stored.
    """
    if response.get("error") or response.get("type") == "error":
        return False
    if "choices" in response:
        choices = response["choices"]
        return isinstance(choices, list) and bool(choices) and all(map(_choice_ok, choices))
    if "content" in response:
        content = response["content"]
        if response.get("stop_reason") in _ANTHROPIC_BAD_STOP:
            return False
        return bool(content) and isinstance(content, (list, str))
    if "output" in response:
        status = response.get("status", "completed")
        return status == "completed" and bool(response["output"])
    if "data" in response:
        return isinstance(response["data"], list) and bool(response["data"])
    return False


# -- the entry -------------------------------------------------------------------------------


def models_of(request: object, data: Mapping[str, Any]) -> tuple[str, ...]:
    """The model names an answer is priced by: the request's ``model``, then the
    response's own ``model`` (a dated snapshot name, say) when it differs."""
    out: list[str] = []
    asked = request.get("model") if isinstance(request, Mapping) else None
    for m in (asked, data.get("model")):
        if isinstance(m, str) and m and m not in out:
            out.append(m)
    return tuple(out)


#: What a hit on stored data saves: ``(core, data, upstream_ms) -> EntryMeta``.
MetaOf = Callable[[Core, Mapping[str, Any], "int | None"], EntryMeta]


def data_meta(core: Core, data: Mapping[str, Any], upstream_ms: int | None = None) -> EntryMeta:
    """The default :data:`MetaOf`: usage parsed from ``data`` itself, priced for its own
    ``model``."""
    return core.meta(data, models_of(None, data), upstream_ms)


# -- operations ------------------------------------------------------------------------------


def request_key(core: Core, request: Mapping[str, Any]) -> RequestKey:
    """The key of a whole request: the digest of its canonical JSON (without the cache's
    ``ignore`` fields), and its ``model`` for the per-model counters. ``TypeError`` for a
    request canonical JSON cannot hold."""
    digest = digest_of_canonical(canonical_json(request, ignore=core.ignore))
    model = (
        request.get("model") if isinstance(request, Mapping) else getattr(request, "model", None)
    )
    return RequestKey(core.keys, digest, model if isinstance(model, str) else None)


def miss_info(key: RequestKey) -> CacheInfo:
    """The ``CacheInfo`` of an answer computed for ``key`` (not served from the cache)."""
    return CacheInfo(False, None, key.digest)


def op_get_request(core: Core, request: Mapping[str, Any], control: object) -> Op[Any]:
    """The stored response (a ``CachedDict``) or ``None``; a skipped read counts nothing."""
    reads, _writes = check_control(control)
    key = request_key(core, request)
    if not reads:
        return None
    return (yield from op_get_key(core, key))


def op_get_key(core: Core, key: RequestKey) -> Op[Any]:
    """The stored response of a key (a ``CachedDict``) or ``None``; counts the hit or miss."""
    d, sh = key.digest, key.shard
    raw = yield Call(_GET, core.keys.entry_keys(sh, d), (d, key.model, MAGIC))
    if raw is None:
        return None
    try:
        return hit_of(core, raw, d)
    except (ForgedEntry, CorruptEntry) as exc:
        yield core.drop_bad_model_call(exc, key.model, d, sh, raw)
        return None


def decide(
    core: Core, response: Any, should_store: ShouldStore | None
) -> tuple[dict[str, Any], bool]:
    """The response's JSON data and whether it may be stored (per-call rule, else the
    cache's, else :func:`default_should_store`).

    A rule that raises (any ``Exception``: ``KeyError``, ``AttributeError``, ``ValueError``,
    ...) refuses the response: the failure is logged at WARNING and the caller, who already
    has the answer, counts it ``not_stored`` like any refusal; it never raises from here.
    """
    data = json_data(response)
    rule = should_store or core.should_store or default_should_store
    try:
        return data, bool(rule(data))
    except Exception as exc:
        log.warning("fleetcache: the should_store rule raised %r; the answer was not stored", exc)
        return data, False


def op_put_request(
    core: Core,
    request: Mapping[str, Any],
    response: Any,
    ttl_seconds: object,
    control: object,
    should_store: ShouldStore | None,
    upstream_ms: object = None,
) -> Op[bool]:
    """Store a response unless the control or the should_store rule says no (then one
    ``not_stored`` count); returns whether it was written. ``upstream_ms`` (int ms, or
    None: not measured) is recorded in its header with its usage and cost."""
    _reads, writes = check_control(control)
    key = request_key(core, request)
    ttl_ms = core.entry_ttl(ttl_seconds)
    check_should_store(should_store)
    ms = None if upstream_ms is None else check_upstream_ms(upstream_ms)
    if not writes:
        return False
    data, ok = decide(core, response, should_store)
    k, d, sh = core.keys, key.digest, key.shard
    if not ok:
        yield Call(_NOT_STORED, (k.stats(sh), k.lease(sh, d)), ("",))
        return False
    meta = core.meta(data, models_of(request, data), ms)
    payload = encode_entry(core, data, now_ms(), d, meta)
    yield core.put_call(d, sh, payload, ttl_ms)
    return True


def op_put_key(
    core: Core,
    key: RequestKey,
    data: dict[str, Any],
    ok: bool,
    ttl_ms: int,
    meta_of: MetaOf = data_meta,
) -> Op[bool]:
    """Store JSON ``data`` under a key when ``ok`` (else one ``not_stored`` count); returns
    whether it was written. ``ttl_ms``: from ``core.entry_ttl`` (0 = none)."""
    k, d, sh = core.keys, key.digest, key.shard
    if not ok:
        yield Call(_NOT_STORED, (k.stats(sh), k.lease(sh, d)), ("",))
        return False
    payload = encode_entry(core, data, now_ms(), d, meta_of(core, data, None))
    yield core.put_call(d, sh, payload, ttl_ms)
    return True


def op_get_many_keys(core: Core, keys: list[RequestKey]) -> Op[list[Any]]:
    """Many request-path entries in one round trip per shard (``get_many-2``, <= 500 a call):
    a ``CachedDict`` or ``None`` per key, in order, each counted as ``get`` counts it.
    Forged or corrupt entries are dropped and recounted, as :func:`op_get_key` does."""
    out: list[Any] = [None] * len(keys)
    if not keys:
        return out
    k = core.keys
    s = script("get_many")
    parts: dict[int, list[int]] = {}
    for i, key in enumerate(keys):
        parts.setdefault(key.shard, []).append(i)
    chunks = [
        idx[j : j + _MANY_CHUNK] for idx in parts.values() for j in range(0, len(idx), _MANY_CHUNK)
    ]
    calls = []
    for part in chunks:
        shard = keys[part[0]].shard
        names = (k.index(shard), k.stats(shard), *(k.entry(shard, keys[i].digest) for i in part))
        args: list[str | bytes] = [MAGIC]
        for i in part:
            args += (keys[i].digest, keys[i].model)
        calls.append(Call(s, names, tuple(args)))
    results = yield Batch(tuple(calls))
    drops = []
    for part, res in zip(chunks, results, strict=True):
        for i, raw in zip(part, res, strict=True):
            if not raw:
                continue
            key = keys[i]
            try:
                out[i] = hit_of(core, raw, key.digest)
            except (ForgedEntry, CorruptEntry) as exc:
                drops.append(core.drop_bad_model_call(exc, key.model, key.digest, key.shard, raw))
    if drops:
        yield Batch(tuple(drops))
    return out


def op_put_many_keys(
    core: Core,
    items: list[tuple[RequestKey, dict[str, Any]]],
    ttl_ms: int,
    meta_of: MetaOf = data_meta,
) -> Op[int]:
    """Store many JSON entries (``put`` calls in one ``Batch``); returns how many."""
    if not items:
        return 0
    calls = [
        core.put_call(
            key.digest,
            key.shard,
            encode_entry(core, data, now_ms(), key.digest, meta_of(core, data, None)),
            ttl_ms,
        )
        for key, data in items
    ]
    yield Batch(tuple(calls))
    return len(calls)


def op_invalidate_request(core: Core, request: Mapping[str, Any]) -> Op[bool]:
    key = request_key(core, request)
    n = yield Call(_INVALIDATE, core.keys.entry_keys(key.shard, key.digest), (key.digest,))
    return bool(n)


class RequestFlight(Flight):
    """``get_or_compute_request`` and the HTTP transport's single-flight: the five-field
    ``Flight`` with the JSON entry and the should_store rule (a refused answer releases the
    lease and counts ``not_stored`` in one call).

    ``request`` (the request path) prices a stored answer by the request's ``model``, then
    the response's; ``meta_of`` (the transport) says what a hit on the stored data saves.
    """

    __slots__ = ("meta_of", "request", "should_store")

    def __init__(
        self,
        core: Core,
        key: RequestKey,
        lease_seconds: object,
        wait_timeout: object,
        refuse: Refuse,
        *,
        ttl_seconds: object = None,
        control: object = "default",
        should_store: ShouldStore | None = None,
        request: Mapping[str, Any] | None = None,
        meta_of: MetaOf | None = None,
    ) -> None:
        super().__init__(
            core,
            key,
            lease_seconds,
            wait_timeout,
            refuse,
            ttl_seconds=ttl_seconds,
            control=control,
        )
        self.should_store = check_should_store(should_store)
        self.request = request
        self.meta_of = meta_of

    def decode(self, raw: bytes) -> Any:
        return hit_of(self.core, raw, self.digest)

    def encode(self, response: Any) -> bytes | None:
        data, ok = decide(self.core, response, self.should_store)
        if not ok:
            return None
        if self.meta_of is not None:
            meta = self.meta_of(self.core, data, self.upstream_ms)
        else:
            meta = self.core.meta(data, models_of(self.request, data), self.upstream_ms)
        return encode_entry(self.core, data, now_ms(), self.digest, meta)

    def not_stored_call(self, leased: bool) -> Call:
        k, sh, d = self.core.keys, self.shard, self.digest
        return Call(_NOT_STORED, (k.stats(sh), k.lease(sh, d)), (self.token if leased else "",))


__all__ = [
    "CONTROLS",
    "FLAG_JSON",
    "RequestFlight",
    "RequestKey",
    "ShouldStore",
    "check_control",
    "check_ignore",
    "check_lease",
    "check_should_store",
    "decode_entry",
    "default_should_store",
    "encode_entry",
    "MetaOf",
    "data_meta",
    "models_of",
    "op_get_key",
    "op_get_many_keys",
    "op_get_request",
    "op_put_key",
    "op_put_many_keys",
    "op_invalidate_request",
    "op_put_request",
    "request_key",
    "miss_info",
]
