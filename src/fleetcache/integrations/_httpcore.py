"""The caching transport's decisions, without I/O (the transport shells in ``http.py`` do
the sending, reading and Redis calls).

For each request: :meth:`TransportCore.plan` says whether it is cached at all (POST to a
known LLM endpoint, or what the user's ``cacheable`` says), its key
(:mod:`fleetcache.core.http_key`), the controls (``x-fleetcache-control``,
``x-fleetcache-ttl``: parsed and stripped before the request leaves), whether it streams,
and the request to send upstream. For each answer: :func:`record_of` builds the entry
(status, replay headers, response JSON), :meth:`TransportCore.storable` applies the
store rule, and :func:`replay_headers` / :func:`replay_body` rebuild a hit.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

from ..core import endpoints as eps
from ..core.envelope import EntryMeta
from ..core.http_key import HttpKeyRules, http_digest, key_body, key_head, key_material
from ..core.keys import RequestKey
from ..core.ops import Core
from ..core.request_ops import MetaOf
from ..core.validate import check_control, ttl_ms

__all__ = [
    "CONTROL_HEADER",
    "REPLAY_HEADERS",
    "TTL_HEADER",
    "Plan",
    "TransportCore",
    "record_of",
    "replay_body",
    "replay_headers",
]

log = logging.getLogger("fleetcache.integrations.http")

#: Request header naming the cache control of one call (``default``, ``no-cache``,
#: ``no-store``, ``bypass``); stripped before the request leaves.
CONTROL_HEADER = "x-fleetcache-control"
#: Request header with the TTL (float seconds) of the entry this call stores; stripped.
TTL_HEADER = "x-fleetcache-ttl"
#: Response header saying ``hit`` or ``miss``.
STATUS_HEADER = "x-fleetcache"

#: Response headers kept in an entry and replayed on a hit (besides the content type the
#: replay sets): the upstreams' request ids and processing metadata.
REPLAY_HEADERS: frozenset[str] = frozenset(
    {
        "x-request-id",
        "request-id",
        "apim-request-id",
        "x-ms-region",
        "openai-processing-ms",
        "openai-version",
        "openai-model",
        "anthropic-organization-id",
        "x-goog-request-id",
    }
)

#: A user's ``cacheable(method, path) -> bool | None``: True caches the request (an unknown
#: path is cached as a plain JSON endpoint), False forwards it untouched, None (or no rule)
#: keeps the built-in decision.
Cacheable = Callable[[str, str], "bool | None"]
#: A user's ``should_store(endpoint_name, status, response_json) -> bool``.
ShouldStoreHTTP = Callable[[str, int, Mapping[str, Any]], bool]

_CUSTOM = eps.Endpoint("custom", frozenset(), shares_stream_entry=False, streams=False)


@dataclass
class Plan:
    """What to do with one cacheable request."""

    #: None: not cached (only our control headers are stripped)
    endpoint: eps.Endpoint | None
    key: RequestKey | None
    reads: bool
    writes: bool
    ttl_seconds: float | None
    stream: bool
    caller_wants_usage: bool
    #: the request body to send upstream (None: the original bytes)
    body: bytes | None
    #: the request headers to send upstream, or None: the original headers are fine
    headers: list[tuple[str, str]] | None
    #: embeddings with several inputs: the parsed body and one key per input (looked up
    #: and stored per input), else None
    body_json: dict[str, Any] | None = None
    input_keys: list[RequestKey] | None = None
    #: the model names the answer is priced by, in order: the request body's ``model``
    #: (or the model in a Google path, an Azure deployment); the response's own
    #: ``model``/``modelVersion`` are tried after these
    models: tuple[str, ...] = ()
    #: the upstream round trip of this request (int ms; for a stream until it ended), set
    #: by the transport when it sends the request; None: not sent (yet)
    upstream_ms: int | None = None

    def meta_of(self, shares: Mapping[int, int] | None = None) -> MetaOf:
        """What a hit on an entry this request writes saves (:func:`meta_of_record` with
        this plan's models; the duration a single-flight measured, else
        ``self.upstream_ms``). ``shares``: ``id(record) -> ms`` for the per-input
        embeddings entries, each recording its share of the round trip."""

        def meta(core: Core, record: Mapping[str, Any], measured: int | None) -> EntryMeta:
            ms = measured if measured is not None else self.upstream_ms
            if shares is not None:
                ms = shares.get(id(record), ms)
            return meta_of_record(core, record, ms, self.models)

        return meta


def parse_ttl(value: str) -> float:
    """The TTL (float s > 0) of an ``x-fleetcache-ttl`` value; ``ValueError`` otherwise."""
    try:
        ttl = float(value)
    except ValueError:
        raise ValueError(f"{TTL_HEADER} must be a number of seconds, not {value!r}") from None
    ttl_ms(ttl, TTL_HEADER)  # the caches' TTL bounds: 0.001 s .. 1e12 s
    return ttl


def meta_of_record(
    core: Core,
    record: Mapping[str, Any],
    upstream_ms: int | None,
    models: tuple[str, ...] = (),
) -> EntryMeta:
    """What a hit on a stored HTTP answer saves (the envelope header the Lua counts): the
    usage parsed from the response body ``record["body"]``, its cost priced for the first
    of ``models`` (the request's model, see :attr:`Plan.models`) then of the response's own
    ``model``/``modelVersion`` that has a price, and ``upstream_ms`` (int ms, None: not
    measured)."""
    body = record.get("body")
    data: Mapping[str, Any] = body if isinstance(body, Mapping) else {}
    names = list(models)
    for field in ("model", "modelVersion"):
        m = data.get(field)
        if isinstance(m, str) and m and m not in names:
            names.append(m)
    return core.meta(data, tuple(names), upstream_ms)


class TransportCore:
    """The options of one caching transport and its decisions (pure; thread-safe)."""

    def __init__(
        self,
        *,
        ttl_seconds: float | None = None,
        cacheable: Cacheable | None = None,
        ignore: Collection[str] | None = None,
        ignore_headers: Collection[str] = (),
        key_headers: Collection[str] = (),
        should_store: ShouldStoreHTTP | None = None,
    ) -> None:
        ttl_ms(ttl_seconds)  # the caches' TTL check (None: the cache's TTL)
        if cacheable is not None and not callable(cacheable):
            raise TypeError("cacheable must be a callable (method, path) -> bool | None")
        if should_store is not None and not callable(should_store):
            raise TypeError("should_store must be a callable (endpoint, status, json) -> bool")
        if ignore is not None and (
            isinstance(ignore, (str, bytes)) or not all(isinstance(f, str) for f in ignore)
        ):
            raise TypeError("ignore must be a collection of body field names (str) or None")
        self.ttl_seconds = ttl_seconds
        self.cacheable = cacheable
        self.ignore = None if ignore is None else frozenset(ignore)
        self.rules = HttpKeyRules(ignore_headers, key_headers)
        self.should_store = should_store
        self._logged: set[str] = set()
        self._lock = threading.Lock()

    # -- requests ---------------------------------------------------------------------

    def endpoint(self, method: str, path: str) -> eps.Endpoint | None:
        """The endpoint of a request, or ``None``: forward it untouched (an unknown POST
        path is logged once at INFO)."""
        ep = eps.match(method, path)
        if self.cacheable is not None:
            said = self.cacheable(method, path)
            if said is False:
                return None
            if said is True and ep is None:
                return _CUSTOM
        if ep is None and method.upper() == "POST":
            with self._lock:
                fresh = path not in self._logged
                if fresh and len(self._logged) < 1000:
                    self._logged.add(path)
            if fresh:
                log.info("fleetcache: POST %s is not a known LLM endpoint: not cached", path)
        return ep

    def plan(
        self,
        cache_core: Any,
        method: str,
        scheme: str,
        host: str,
        port: int | None,
        path: str,
        query: str,
        headers: list[tuple[str, str]],
        body: bytes,
    ) -> Plan | None:
        """The plan of a request, or ``None``: forward it untouched. ``ValueError`` for a
        bad control or TTL header. ``cache_core``: the cache's ``Core`` (keys, shards)."""
        control, ttl, stripped = "default", self.ttl_seconds, False
        for name, value in headers:
            low = name.lower()
            if low == CONTROL_HEADER:
                control, stripped = value.strip(), True
            elif low == TTL_HEADER:
                ttl, stripped = parse_ttl(value.strip()), True
        ep = self.endpoint(method, path)
        out_headers = (
            [(n, v) for n, v in headers if n.lower() not in (CONTROL_HEADER, TTL_HEADER)]
            if stripped
            else None
        )
        if ep is None:
            if stripped:  # still strip our headers: they are not the upstream's business
                return Plan(None, None, False, False, None, False, True, None, out_headers)
            return None
        reads, writes = check_control(control)
        if not (reads or writes):  # bypass: the cache is not touched, nothing is keyed
            return Plan(
                None,
                None,
                False,
                False,
                None,
                False,
                True,
                None,
                out_headers if out_headers is not None else headers,
            )
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = None
        data = parsed if isinstance(parsed, dict) else None
        stream = eps.wants_stream(ep, data) if data is not None else False
        if stream and not ep.streams:
            stream = False
        upstream: bytes | None = None
        wants_usage = True
        if data is not None and stream:
            new_body, wants_usage = eps.upstream_body(ep, data)
            if new_body is not data:
                upstream = json.dumps(new_body, ensure_ascii=False).encode()
                out_headers = [
                    (n, v)
                    for n, v in (out_headers if out_headers is not None else headers)
                    if n.lower() != "content-length"
                ]
        ignore = ep.ignored_fields if self.ignore is None else self.ignore
        material = key_material(
            method,
            scheme,
            host,
            port,
            path,
            query,
            headers,
            body,
            body_json=data,
            ignore_fields=ignore,
            nested_ignore=ep.ignored_markers,
            rules=self.rules,
        )
        model = eps.model_of(ep, data or {}, {}, path)
        key = RequestKey(cache_core.keys, http_digest(material), model)
        plan = Plan(ep, key, reads, writes, ttl, stream, wants_usage, upstream, out_headers)
        if model:
            plan.models = (model,)
        inputs = data.get("input") if data is not None else None
        if ep.name == "openai.embeddings" and isinstance(inputs, list) and len(inputs) > 1:
            # one key per input: the key of the same request with that input alone
            # (``input: [item]``), so a later one-input request shares the entry
            plan.body_json = data
            head = key_head(method, scheme, host, port, path, query, headers, self.rules)
            plan.input_keys = [
                RequestKey(
                    cache_core.keys,
                    http_digest(
                        head + key_body(b"", {**data, "input": [item]}, ignore)  # type: ignore[dict-item]
                    ),
                    model,
                )
                for item in inputs
            ]
        return plan

    # -- answers ----------------------------------------------------------------------

    def storable(self, endpoint: eps.Endpoint, record: Mapping[str, Any]) -> bool:
        """Whether an entry may be stored: 2xx with a JSON body, then the user's rule if
        any (a rule that raises is a logged skip: ``False``), else the endpoint's default
        (``core.endpoints.should_store``)."""
        status = record.get("status")
        body = record.get("body")
        if not isinstance(status, int) or not 200 <= status < 300 or not isinstance(body, dict):
            return False
        try:
            if self.should_store is not None:
                return bool(self.should_store(endpoint.name, status, body))
            if endpoint is _CUSTOM:
                return True
            return eps.should_store(endpoint, status, body)
        except Exception as exc:
            log.warning("fleetcache: should_store raised %r: answer not stored", exc)
            return False


def record_of(
    status: int, headers: list[tuple[str, str]], body: dict[str, Any] | None
) -> dict[str, Any]:
    """The entry of an upstream answer: ``{"status", "headers", "body"}`` (``body`` the
    response JSON: the assembled answer for a stream). The one place where the transport
    hands an answer to the cache: anything else an entry should carry (usage, cost,
    duration) is added here."""
    kept = [[n.lower(), v] for n, v in headers if n.lower() in REPLAY_HEADERS]
    return {"status": status, "headers": kept, "body": body}


def replay_headers(
    record: Mapping[str, Any], content_type: str, length: int | None, age: float | None
) -> list[tuple[str, str]]:
    """The headers of a replayed hit: the stored ones, the content type, the length (when
    not streamed), ``x-fleetcache: hit`` and ``age`` (whole seconds)."""
    out: list[tuple[str, str]] = [("content-type", content_type)]
    if length is not None:
        out.append(("content-length", str(length)))
    for item in record.get("headers") or ():
        if isinstance(item, list) and len(item) == 2:
            out.append((str(item[0]), str(item[1])))
    out.append((STATUS_HEADER, "hit"))
    out.append(("age", str(int(age or 0))))
    return out


try:  # the same bytes as json.dumps(compact), much faster, when installed
    import orjson

    def _dumps(value: Any) -> bytes:
        try:
            return orjson.dumps(value)
        except TypeError:
            return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()

except ImportError:  # pragma: no cover - depends on the environment

    def _dumps(value: Any) -> bytes:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def replay_body(plan: Plan, record: Mapping[str, Any]) -> tuple[str, bytes | list[bytes]]:
    """``(content type, body)`` of a hit: the JSON bytes, or the SSE events (a list) when
    the caller asked for a stream."""
    body = record["body"]
    if plan.stream and plan.endpoint is not None:
        return "text/event-stream; charset=utf-8", eps.replay_stream(
            plan.endpoint, body, plan.caller_wants_usage
        )
    return "application/json", _dumps(body)


def can_replay(plan: Plan, record: Mapping[str, Any]) -> bool:
    """Whether a stored entry can answer this request (a stream stored for an endpoint
    whose non-streamed twin has another shape, e.g. Gemini chunks, cannot answer a
    non-streamed call)."""
    body = record.get("body")
    if not isinstance(body, dict) or not isinstance(record.get("status"), int):
        return False
    return plan.stream or eps.CHUNKS not in body


# -- embeddings, per input ---------------------------------------------------------------------


def input_weight(item: object) -> int:
    """The weight of one embeddings input in its request's usage and time: its length (the
    characters of a string, the tokens of a token array), at least 1."""
    if isinstance(item, (str, list)):
        return max(1, len(item))
    return 1


def shares(total: int, weights: list[int]) -> list[int]:
    """``total`` split in proportion to ``weights`` into integers that sum to exactly
    ``total`` (largest remainders get the leftover units, ties to the earlier item)."""
    whole = sum(weights)
    if total <= 0 or whole <= 0:
        return [0] * len(weights)
    base = [total * w // whole for w in weights]
    left = total - sum(base)
    order = sorted(range(len(weights)), key=lambda i: (-(total * weights[i] % whole), i))
    for i in order[:left]:
        base[i] += 1
    return base


def split_embeddings(
    body: Mapping[str, Any], n: int, weights: list[int] | None = None
) -> list[dict[str, Any]] | None:
    """The one-input answers (``data`` of one item, ``index`` 0) of an embeddings answer to
    ``n`` inputs, in input order; ``None`` if it does not hold exactly one embedding per
    input.

    Each one-input answer's ``usage`` is its input's share of the request's: every integer
    field (``prompt_tokens``, ``total_tokens``) split in proportion to ``weights`` (see
    :func:`input_weight`; None: equal), the shares summing to exactly the request's figure,
    so hits on all the inputs of a request save exactly what the request cost."""
    data = body.get("data")
    if not isinstance(data, list) or len(data) != n:
        return None
    by_index: dict[int, Mapping[str, Any]] = {}
    for item in data:
        if not isinstance(item, Mapping) or not isinstance(item.get("index"), int):
            return None
        by_index[item["index"]] = item
    if sorted(by_index) != list(range(n)):
        return None
    w = weights if weights is not None and len(weights) == n else [1] * n
    usage = body.get("usage")
    split: dict[str, list[int]] = {}
    if isinstance(usage, Mapping):
        split = {
            k: shares(v, w)
            for k, v in usage.items()
            if isinstance(v, int) and not isinstance(v, bool)
        }
    top = {k: v for k, v in body.items() if k not in ("data", "usage")}
    return [
        {
            **top,
            "data": [{**by_index[i], "index": 0}],
            "usage": {k: v[i] for k, v in split.items()},
        }
        for i in range(n)
    ]


def merge_embeddings(
    parts: list[Mapping[str, Any]], sent_usage: Mapping[str, Any] | None
) -> dict[str, Any]:
    """One embeddings answer from one-input answers in the caller's order (``index`` = the
    caller's position); ``usage`` is what was sent upstream (zeros when nothing was)."""
    first = parts[0]
    top = {k: v for k, v in first.items() if k not in ("data", "usage")}
    data = [{**part["data"][0], "index": i} for i, part in enumerate(parts)]
    usage = dict(sent_usage) if sent_usage else {"prompt_tokens": 0, "total_tokens": 0}
    return {**top, "data": data, "usage": usage}


def dumps(value: Any) -> bytes:
    """Compact JSON bytes (orjson when installed)."""
    return _dumps(value)
