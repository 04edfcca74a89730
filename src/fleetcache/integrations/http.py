"""A caching HTTP transport for ``httpx2`` and ``httpx`` clients (so for every SDK built on
them: OpenAI, Anthropic, google-genai...), sync and async.

    import httpx2, openai
    from fleetcache import RedisExactCache
    from fleetcache.integrations.http import transport

    cache = RedisExactCache(url="redis://...", ttl_seconds=3600)
    client = openai.OpenAI(http_client=httpx2.Client(transport=transport(cache)))

``transport(cache, inner=None, **options)`` wraps ``inner`` (default: a new
``httpx2.HTTPTransport`` / ``AsyncHTTPTransport``) and returns a transport of the same
flavour (``httpx2`` or ``httpx``): sync for a :class:`~fleetcache.RedisExactCache`, async
for an :class:`~fleetcache.AsyncRedisExactCache` (a mismatch is a ``TypeError``).

It caches POST requests to the known LLM endpoints (``core.endpoints.match``: OpenAI-style
``/chat/completions``, ``/responses``, ``/embeddings``, ``/completions`` under any base
path; Anthropic ``/v1/messages``; Google ``:generateContent``, ``:streamGenerateContent``,
``:embedContent``, ``:batchEmbedContents``) and forwards everything else untouched. The key
is *what is sent and to whom* (:mod:`fleetcache.core.http_key`), in its own key domain:
entries written by the old keyword-keyed SDK wrappers are never read by it.

A hit replays the upstream's status, body and request-id headers, plus ``x-fleetcache:
hit`` and ``age``; a miss carries ``x-fleetcache: miss``. Only 2xx answers that the store
rule accepts are stored. Non-streamed misses are single-flight across the fleet; a streamed
miss forwards each event as it arrives and is stored (assembled) only if it ended normally.
With Redis down every request goes upstream.

Per request, the headers ``x-fleetcache-control: default|no-cache|no-store|bypass`` and
``x-fleetcache-ttl: <seconds>`` (stripped before the request leaves; ``control_headers``
builds them for an SDK's ``extra_headers=``).

What a hit saves (``fleet_stats()``, per model too): each entry records the answer's usage
(by kind), its cost priced for the request body's ``model`` (Google: the model in the path),
then the answer's own ``model`` (a dated snapshot) when the first has no price, and the
upstream round trip the transport measured (ms, from sending the request until the body
was read; for a stream until it ended). A streamed chat completion is sent upstream with
``stream_options.include_usage`` on, so its entry has usage even when the caller did not
ask for it. Per-input embeddings entries each record their input's share of the request's
usage and round trip, in proportion to the input's length (characters, or tokens of a
token array), the shares summing exactly to the request's figures.

Every response the transport returns for a cached request carries its
:class:`~fleetcache.CacheInfo` in ``response.extensions["fleetcache"]``
(``fleetcache.cache_info(http_response)`` reads it); the clients returned by
``integrations.openai.cached``/``anthropic.cached`` attach it to the objects they build.

Options (keyword-only; defaults in brackets):

- ``ttl_seconds`` [None: the cache's TTL]: TTL (float s) of the entries this transport writes.
- ``cacheable`` [None]: ``(method, path) -> bool | None``: True caches a request (an unknown
  path as a plain JSON endpoint), False forwards it, None keeps the built-in decision.
- ``ignore`` [None: the endpoint's own list]: top-level body fields left out of the key.
- ``ignore_headers`` [()] / ``key_headers`` [()]: header names to leave out of / force into
  the key (see ``core.http_key.IGNORED_HEADERS``).
- ``should_store`` [None: ``core.endpoints.should_store``]: ``(endpoint_name, status,
  response_json) -> bool``; a rule that raises is a logged skip (counted ``not_stored``),
  the caller still gets the answer.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Iterator
from types import ModuleType
from typing import Any

from ..aio import AsyncRedisExactCache
from ..cache import RedisExactCache
from ..core.endpoints import StreamRecorder
from ..core.info import CacheInfo
from ..core.request_ops import MetaOf, check_control, miss_info
from ._httpcore import (
    CONTROL_HEADER,
    STATUS_HEADER,
    TTL_HEADER,
    Plan,
    TransportCore,
    can_replay,
    dumps,
    input_weight,
    merge_embeddings,
    parse_ttl,
    record_of,
    replay_body,
    replay_headers,
    shares,
    split_embeddings,
)

__all__ = ["INFO_EXTENSION", "control_headers", "transport"]

#: The key of the :class:`~fleetcache.CacheInfo` (hit, age, digest) in the ``extensions``
#: of every response the transport returns for a cached request; the SDK clients
#: returned by ``integrations.openai.cached``/``anthropic.cached`` attach it to the
#: objects they build, for ``fleetcache.cache_info``.
INFO_EXTENSION = "fleetcache"

log = logging.getLogger("fleetcache.integrations.http")


def flavour_of(inner: object) -> ModuleType:
    """The httpx flavour module (``httpx2`` or ``httpx``) a transport belongs to."""
    for klass in type(inner).__mro__:
        top = klass.__module__.partition(".")[0]
        if top == "httpx2":
            import httpx2

            return httpx2
        if top == "httpx":
            import httpx

            return httpx
    raise TypeError(f"inner must be an httpx2 or httpx transport, not {type(inner).__name__}")


def _json_or_none(content: bytes) -> dict[str, Any] | None:
    try:
        data = json.loads(content)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _ms_since(started: float) -> int:
    return max(0, round((time.monotonic() - started) * 1000))


def _split(request: Any) -> tuple[str, str, str, int | None, str, str, list[tuple[str, str]]]:
    url = request.url
    raw = url.raw_path.decode("ascii", "replace")
    path, _, query = raw.partition("?")
    h = request.headers
    enc = h.encoding  # one lookup (multi_items recomputes it per header)
    headers = [(n.decode(enc), v.decode(enc)) for n, v in h.raw]
    return request.method, url.scheme, url.host, url.port, path, query, headers


class _Base:
    """State shared by the sync and async shells of one flavour."""

    def __init__(self, cache: Any, inner: Any, core: TransportCore, mod: ModuleType) -> None:
        self._cache = cache
        self._inner = inner
        self._core = core
        self._mod = mod

    def _outgoing(self, request: Any, plan: Plan) -> Any:
        if plan.body is None and plan.headers is None:
            return request
        return self._mod.Request(
            request.method,
            request.url,
            headers=plan.headers if plan.headers is not None else request.headers.multi_items(),
            content=plan.body if plan.body is not None else request.content,
            extensions=request.extensions,
        )

    def _hit(self, plan: Plan, record: Any) -> Any:
        info = getattr(record, "_fleetcache_info", None)
        age = info.age_seconds if info is not None else None
        content_type, body = replay_body(plan, record)
        content = b"".join(body) if isinstance(body, list) else body
        assert plan.key is not None
        mod = self._mod
        response = mod.Response(
            record["status"],
            headers=replay_headers(record, content_type, len(content), age),
            stream=mod.ByteStream(content),
            extensions={INFO_EXTENSION: info or CacheInfo(True, None, plan.key.digest)},
        )
        # The body is in memory already: hand it over as read (what ``content=`` does, without
        # running the bytes through the decoder chain; httpx and httpx2 keep it there).
        response._content = content
        return response

    def _storable(self, plan: Plan) -> Any:
        ep = plan.endpoint
        assert ep is not None
        return lambda record: self._core.storable(ep, record)

    def _with_status(self, response: Any, value: str, plan: Plan) -> Any:
        response.headers[STATUS_HEADER] = value
        if plan.key is not None:
            response.extensions[INFO_EXTENSION] = CacheInfo(value == "hit", None, plan.key.digest)
        return response

    def _per_input_request(self, request: Any, plan: Plan, missing: list[int]) -> Any:
        """The upstream request for the missing inputs only."""
        assert plan.body_json is not None
        inputs = plan.body_json["input"]
        body = {**plan.body_json, "input": [inputs[i] for i in missing]}
        headers = [
            (n, v)
            for n, v in (
                plan.headers if plan.headers is not None else request.headers.multi_items()
            )
            if n.lower() != "content-length"
        ]
        return self._mod.Request(
            request.method,
            request.url,
            headers=headers,
            content=dumps(body),
            extensions=request.extensions,
        )

    def _merged(
        self,
        plan: Plan,
        found: list[Any],
        missing: list[int],
        response: Any,
    ) -> tuple[Any, list[tuple[Any, dict[str, Any]]], MetaOf]:
        """The caller's response, the entries to store and what a hit on each saves, from
        the hits in ``found`` and the upstream ``response`` to the ``missing`` inputs
        (None: nothing was sent). Each stored input records its share of the request's
        usage and round trip, in proportion to its length (``input_weight``)."""
        parts: list[Any] = list(found)
        to_store: list[tuple[Any, dict[str, Any]]] = []
        sent_usage = None
        headers: list[tuple[str, str]] = []
        ms_of: dict[int, int] = {}
        if response is not None:
            assert plan.body_json is not None
            inputs = plan.body_json["input"]
            weights = [input_weight(inputs[i]) for i in missing]
            body = _json_or_none(response.content)
            pieces = split_embeddings(body, len(missing), weights) if body is not None else None
            if pieces is None or not 200 <= response.status_code < 300:
                return self._with_status(response, "miss", plan), [], plan.meta_of()
            sent_usage = body.get("usage") if body is not None else None
            upstream_headers = response.headers.multi_items()
            assert plan.input_keys is not None and plan.endpoint is not None
            ms = shares(plan.upstream_ms or 0, weights)
            for j, (i, piece) in enumerate(zip(missing, pieces, strict=True)):
                record = record_of(response.status_code, upstream_headers, piece)
                parts[i] = record
                if self._core.storable(plan.endpoint, record):
                    to_store.append((plan.input_keys[i], record))
                    ms_of[id(record)] = ms[j]
            headers = [(n, v) for n, v in record_of(200, upstream_headers, None)["headers"]]
        else:
            headers = [(str(n), str(v)) for n, v in parts[0].get("headers") or ()]
        merged = merge_embeddings([p["body"] for p in parts], sent_usage)
        status = "miss" if response is not None else "hit"
        assert plan.key is not None
        out = self._mod.Response(
            200,
            headers=[("content-type", "application/json"), *headers, (STATUS_HEADER, status)],
            content=dumps(merged),
            extensions={INFO_EXTENSION: CacheInfo(response is None, None, plan.key.digest)},
        )
        return out, to_store, plan.meta_of(ms_of)

    def _recorded(self, plan: Plan, response: Any, answer: dict[str, Any] | None) -> Any:
        """The entry of a finished stream (None: nothing to store)."""
        if answer is None or plan.endpoint is None:
            return None
        return record_of(response.status_code, response.headers.multi_items(), answer)


def _build(mod: ModuleType) -> tuple[type, type]:
    """The sync and async caching transport classes of one flavour."""

    class CachingTransport(_Base, mod.BaseTransport):  # type: ignore[misc,name-defined]
        """Sync caching transport (see :mod:`fleetcache.integrations.http`)."""

        def handle_request(self, request: Any) -> Any:
            request.read()
            plan = self._core.plan(self._cache._core, *_split(request), request.content)
            if plan is None:
                return self._inner.handle_request(request)
            if plan.key is None:
                return self._inner.handle_request(self._outgoing(request, plan))
            if plan.stream:
                return self._stream(request, plan)
            if plan.input_keys is not None:
                return self._per_input(request, plan)
            return self._single(request, plan)

        def _per_input(self, request: Any, plan: Plan) -> Any:
            assert plan.input_keys is not None
            keys = plan.input_keys
            found = self._cache._key_get_many(keys) if plan.reads else [None] * len(keys)
            missing = [i for i, f in enumerate(found) if f is None or not can_replay(plan, f)]
            response = None
            if missing:
                started = time.monotonic()
                response = self._inner.handle_request(
                    self._per_input_request(request, plan, missing)
                )
                try:
                    response.read()
                finally:
                    response.close()
                plan.upstream_ms = _ms_since(started)
            out, to_store, meta_of = self._merged(plan, found, missing, response)
            if to_store and plan.writes:
                self._cache._key_put_many(to_store, plan.ttl_seconds, meta_of)
            return out

        def _send_read(self, request: Any, plan: Plan, got: list[Any]) -> dict[str, Any]:
            started = time.monotonic()
            response = self._inner.handle_request(self._outgoing(request, plan))
            try:
                response.read()
            finally:
                response.close()
            plan.upstream_ms = _ms_since(started)
            got.append(response)
            return record_of(
                response.status_code,
                response.headers.multi_items(),
                _json_or_none(response.content),
            )

        def _single(self, request: Any, plan: Plan) -> Any:
            got: list[Any] = []
            cache, key = self._cache, plan.key
            if plan.reads and plan.writes:
                data, served = cache._key_fly(
                    key,
                    lambda: self._send_read(request, plan, got),
                    plan.ttl_seconds,
                    self._storable(plan),
                    plan.meta_of(),
                )
                if served and can_replay(plan, data):
                    return self._hit(plan, data)
            else:
                data = cache._key_get(key) if plan.reads else None
                if data is not None and can_replay(plan, data):
                    return self._hit(plan, data)
            if not got:
                record = self._send_read(request, plan, got)
                if plan.writes:
                    ok = self._core.storable(plan.endpoint, record)  # type: ignore[arg-type]
                    cache._key_put(key, record, ok, plan.ttl_seconds, plan.meta_of())
            return self._with_status(got[-1], "miss", plan)

        def _stream(self, request: Any, plan: Plan) -> Any:
            if plan.reads:
                data = self._cache._key_get(plan.key)
                if data is not None and can_replay(plan, data):
                    return self._hit(plan, data)
            started = time.monotonic()
            response = self._inner.handle_request(self._outgoing(request, plan))
            if not 200 <= response.status_code < 300:
                return self._with_status(response, "miss", plan)
            assert plan.endpoint is not None and plan.key is not None
            recorder = StreamRecorder(plan.endpoint, plan.caller_wants_usage)
            headers = [*response.headers.multi_items(), (STATUS_HEADER, "miss")]
            return mod.Response(
                response.status_code,
                headers=headers,
                stream=_SyncRecording(self, plan, response, recorder, started),
                extensions={**response.extensions, INFO_EXTENSION: miss_info(plan.key)},
            )

        def _store_stream(self, plan: Plan, response: Any, answer: dict[str, Any] | None) -> None:
            if not plan.writes:
                return
            try:
                record = self._recorded(plan, response, answer)
                if record is None:
                    return
                ok = self._core.storable(plan.endpoint, record)  # type: ignore[arg-type]
                self._cache._key_put(plan.key, record, ok, plan.ttl_seconds, plan.meta_of())
            except Exception as exc:  # storing is best effort: the caller has its stream
                log.warning("fleetcache: streamed answer not stored: %r", exc)

        def close(self) -> None:
            self._inner.close()

    class _SyncRecording(mod.SyncByteStream):  # type: ignore[misc,name-defined]
        def __init__(
            self, owner: Any, plan: Plan, response: Any, recorder: StreamRecorder, started: float
        ) -> None:
            self._owner, self._plan, self._response, self._rec = owner, plan, response, recorder
            self._started = started
            self._ended = False

        def __iter__(self) -> Iterator[bytes]:
            rec = self._rec
            for chunk in self._response.stream:
                out = rec.feed(chunk)
                if out:
                    yield out
            tail = rec.close()
            if tail:
                yield tail
            self._end()

        def _end(self) -> None:
            # At EOF, or when the SDK closes the response after the terminal event (the
            # SDKs stop reading at [DONE] / message_stop): the recorder returns an answer
            # only if the terminal event was seen, so an early close stores nothing.
            if not self._ended:
                self._ended = True
                self._plan.upstream_ms = _ms_since(self._started)  # until the stream ended
                self._owner._store_stream(self._plan, self._response, self._rec.finish())

        def close(self) -> None:
            try:
                self._end()
            finally:
                self._response.close()

    class AsyncCachingTransport(_Base, mod.AsyncBaseTransport):  # type: ignore[misc,name-defined]
        """Async caching transport (see :mod:`fleetcache.integrations.http`)."""

        async def handle_async_request(self, request: Any) -> Any:
            await request.aread()
            plan = self._core.plan(self._cache._core, *_split(request), request.content)
            if plan is None:
                return await self._inner.handle_async_request(request)
            if plan.key is None:
                return await self._inner.handle_async_request(self._outgoing(request, plan))
            if plan.stream:
                return await self._stream(request, plan)
            if plan.input_keys is not None:
                return await self._per_input(request, plan)
            return await self._single(request, plan)

        async def _per_input(self, request: Any, plan: Plan) -> Any:
            assert plan.input_keys is not None
            keys = plan.input_keys
            found = await self._cache._key_get_many(keys) if plan.reads else [None] * len(keys)
            missing = [i for i, f in enumerate(found) if f is None or not can_replay(plan, f)]
            response = None
            if missing:
                sub = self._per_input_request(request, plan, missing)
                started = time.monotonic()
                response = await self._inner.handle_async_request(sub)
                try:
                    await response.aread()
                finally:
                    await response.aclose()
                plan.upstream_ms = _ms_since(started)
            out, to_store, meta_of = self._merged(plan, found, missing, response)
            if to_store and plan.writes:
                await self._cache._key_put_many(to_store, plan.ttl_seconds, meta_of)
            return out

        async def _send_read(self, request: Any, plan: Plan, got: list[Any]) -> dict[str, Any]:
            started = time.monotonic()
            response = await self._inner.handle_async_request(self._outgoing(request, plan))
            try:
                await response.aread()
            finally:
                await response.aclose()
            plan.upstream_ms = _ms_since(started)
            got.append(response)
            return record_of(
                response.status_code,
                response.headers.multi_items(),
                _json_or_none(response.content),
            )

        async def _single(self, request: Any, plan: Plan) -> Any:
            got: list[Any] = []
            cache, key = self._cache, plan.key
            if plan.reads and plan.writes:
                data, served = await cache._key_fly(
                    key,
                    lambda: self._send_read(request, plan, got),
                    plan.ttl_seconds,
                    self._storable(plan),
                    plan.meta_of(),
                )
                if served and can_replay(plan, data):
                    return self._hit(plan, data)
            else:
                data = await cache._key_get(key) if plan.reads else None
                if data is not None and can_replay(plan, data):
                    return self._hit(plan, data)
            if not got:
                record = await self._send_read(request, plan, got)
                if plan.writes:
                    ok = self._core.storable(plan.endpoint, record)  # type: ignore[arg-type]
                    await cache._key_put(key, record, ok, plan.ttl_seconds, plan.meta_of())
            return self._with_status(got[-1], "miss", plan)

        async def _stream(self, request: Any, plan: Plan) -> Any:
            if plan.reads:
                data = await self._cache._key_get(plan.key)
                if data is not None and can_replay(plan, data):
                    return self._hit(plan, data)
            started = time.monotonic()
            response = await self._inner.handle_async_request(self._outgoing(request, plan))
            if not 200 <= response.status_code < 300:
                return self._with_status(response, "miss", plan)
            assert plan.endpoint is not None and plan.key is not None
            recorder = StreamRecorder(plan.endpoint, plan.caller_wants_usage)
            headers = [*response.headers.multi_items(), (STATUS_HEADER, "miss")]
            return mod.Response(
                response.status_code,
                headers=headers,
                stream=_AsyncRecording(self, plan, response, recorder, started),
                extensions={**response.extensions, INFO_EXTENSION: miss_info(plan.key)},
            )

        async def _store_stream(
            self, plan: Plan, response: Any, answer: dict[str, Any] | None
        ) -> None:
            if not plan.writes:
                return
            try:
                record = self._recorded(plan, response, answer)
                if record is None:
                    return
                ok = self._core.storable(plan.endpoint, record)  # type: ignore[arg-type]
                await self._cache._key_put(plan.key, record, ok, plan.ttl_seconds, plan.meta_of())
            except Exception as exc:  # storing is best effort: the caller has its stream
                log.warning("fleetcache: streamed answer not stored: %r", exc)

        async def aclose(self) -> None:
            await self._inner.aclose()

    class _AsyncRecording(mod.AsyncByteStream):  # type: ignore[misc,name-defined]
        def __init__(
            self, owner: Any, plan: Plan, response: Any, recorder: StreamRecorder, started: float
        ) -> None:
            self._owner, self._plan, self._response, self._rec = owner, plan, response, recorder
            self._started = started
            self._ended = False

        async def __aiter__(self) -> AsyncIterator[bytes]:
            rec = self._rec
            async for chunk in self._response.stream:
                out = rec.feed(chunk)
                if out:
                    yield out
            tail = rec.close()
            if tail:
                yield tail
            await self._end()

        async def _end(self) -> None:
            if not self._ended:  # see the sync twin
                self._ended = True
                self._plan.upstream_ms = _ms_since(self._started)
                await self._owner._store_stream(self._plan, self._response, self._rec.finish())

        async def aclose(self) -> None:
            try:
                await self._end()
            finally:
                await self._response.aclose()

    return CachingTransport, AsyncCachingTransport


_CLASSES: dict[str, tuple[type, type]] = {}


def _classes(mod: ModuleType) -> tuple[type, type]:
    found = _CLASSES.get(mod.__name__)
    if found is None:
        found = _CLASSES[mod.__name__] = _build(mod)
    return found


def control_headers(control: str | None = None, ttl: float | None = None) -> dict[str, str]:
    """The request headers of one call's cache control and TTL, for an SDK's
    ``extra_headers=`` (or ``default_headers=`` / ``with_options(default_headers=...)`` for
    a whole client); the transport strips them before the request leaves.

    ``control`` [None: the default]: ``default``, ``no-cache`` (skip the read, store the
    answer), ``no-store`` (read, never store) or ``bypass`` (neither). ``ttl`` [None: the
    transport's / cache's]: seconds (> 0) the entry this call stores lives. ``ValueError``
    for anything else.

        client.chat.completions.create(..., extra_headers=control_headers(ttl=60))
    """
    out: dict[str, str] = {}
    if control is not None:
        check_control(control)
        out[CONTROL_HEADER] = control
    if ttl is not None:
        if isinstance(ttl, bool) or not isinstance(ttl, (int, float)):
            raise ValueError(f"ttl must be a number of seconds, not {ttl!r}")
        parse_ttl(repr(ttl))
        out[TTL_HEADER] = f"{ttl:g}"
    return out


def transport(cache: Any, inner: Any = None, **options: Any) -> Any:
    """A caching transport around ``inner`` (see the module docstring for ``options``).

    ``cache``: a :class:`~fleetcache.RedisExactCache` (gives a sync transport) or an
    :class:`~fleetcache.AsyncRedisExactCache` (async). ``inner`` [None]: the transport that
    sends the requests (an ``httpx2``/``httpx`` transport of the same kind: sync for a sync
    cache, async for an async one; ``MockTransport`` is both); None builds a default
    ``httpx2`` one. ``TypeError`` for a mismatch.
    """
    if isinstance(cache, AsyncRedisExactCache):
        is_async = True
    elif isinstance(cache, RedisExactCache):
        is_async = False
    else:
        raise TypeError(
            f"cache must be a RedisExactCache or an AsyncRedisExactCache, not "
            f"{type(cache).__name__}"
        )
    if inner is None:
        import httpx2

        inner = httpx2.AsyncHTTPTransport() if is_async else httpx2.HTTPTransport()
    mod = flavour_of(inner)
    if is_async and not isinstance(inner, mod.AsyncBaseTransport):
        raise TypeError(
            "an AsyncRedisExactCache needs an async transport (inner is "
            f"{type(inner).__name__}): use a RedisExactCache for a sync client"
        )
    if not is_async and not isinstance(inner, mod.BaseTransport):
        raise TypeError(
            "a RedisExactCache needs a sync transport (inner is "
            f"{type(inner).__name__}): use an AsyncRedisExactCache for an async client"
        )
    core = TransportCore(**options)
    sync_cls, async_cls = _classes(mod)
    return (async_cls if is_async else sync_cls)(cache, inner, core, mod)
