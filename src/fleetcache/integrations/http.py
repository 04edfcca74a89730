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
``x-fleetcache-ttl: <seconds>`` (stripped before the request leaves).

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
from collections.abc import AsyncIterator, Iterator
from types import ModuleType
from typing import Any

from ..aio import AsyncRedisExactCache
from ..cache import RedisExactCache
from ..core.endpoints import StreamRecorder
from ._httpcore import (
    STATUS_HEADER,
    Plan,
    TransportCore,
    can_replay,
    dumps,
    merge_embeddings,
    meta_of_record,
    record_of,
    replay_body,
    replay_headers,
    split_embeddings,
)

__all__ = ["transport"]

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


def _split(request: Any) -> tuple[str, str, str, int | None, str, str, list[tuple[str, str]]]:
    url = request.url
    raw = url.raw_path.decode("ascii", "replace")
    path, _, query = raw.partition("?")
    headers = [(n, v) for n, v in request.headers.multi_items()]
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
        return self._mod.Response(
            record["status"],
            headers=replay_headers(record, content_type, None, age),
            content=content,
        )

    def _storable(self, plan: Plan) -> Any:
        ep = plan.endpoint
        assert ep is not None
        return lambda record: self._core.storable(ep, record)

    def _with_status(self, response: Any, value: str) -> Any:
        response.headers[STATUS_HEADER] = value
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
    ) -> tuple[Any, list[tuple[Any, dict[str, Any]]]]:
        """The caller's response and the entries to store, from the hits in ``found`` and
        the upstream ``response`` to the ``missing`` inputs (None: nothing was sent)."""
        parts: list[Any] = list(found)
        to_store: list[tuple[Any, dict[str, Any]]] = []
        sent_usage = None
        headers: list[tuple[str, str]] = []
        if response is not None:
            body = _json_or_none(response.content)
            pieces = split_embeddings(body, len(missing)) if body is not None else None
            if pieces is None or not 200 <= response.status_code < 300:
                return self._with_status(response, "miss"), []
            sent_usage = body.get("usage") if body is not None else None
            upstream_headers = response.headers.multi_items()
            assert plan.input_keys is not None and plan.endpoint is not None
            for i, piece in zip(missing, pieces, strict=True):
                record = record_of(response.status_code, upstream_headers, piece)
                parts[i] = record
                if self._core.storable(plan.endpoint, record):
                    to_store.append((plan.input_keys[i], record))
            headers = [(n, v) for n, v in record_of(200, upstream_headers, None)["headers"]]
        else:
            headers = [(str(n), str(v)) for n, v in parts[0].get("headers") or ()]
        merged = merge_embeddings([p["body"] for p in parts], sent_usage)
        status = "miss" if response is not None else "hit"
        out = self._mod.Response(
            200,
            headers=[("content-type", "application/json"), *headers, (STATUS_HEADER, status)],
            content=dumps(merged),
        )
        return out, to_store

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
                response = self._inner.handle_request(
                    self._per_input_request(request, plan, missing)
                )
                try:
                    response.read()
                finally:
                    response.close()
            out, to_store = self._merged(plan, found, missing, response)
            if to_store and plan.writes:
                self._cache._key_put_many(to_store, plan.ttl_seconds, meta_of_record)
            return out

        def _send_read(self, request: Any, plan: Plan, got: list[Any]) -> dict[str, Any]:
            response = self._inner.handle_request(self._outgoing(request, plan))
            try:
                response.read()
            finally:
                response.close()
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
                    meta_of_record,
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
                    cache._key_put(key, record, ok, plan.ttl_seconds, meta_of_record)
            return self._with_status(got[-1], "miss")

        def _stream(self, request: Any, plan: Plan) -> Any:
            if plan.reads:
                data = self._cache._key_get(plan.key)
                if data is not None and can_replay(plan, data):
                    return self._hit(plan, data)
            response = self._inner.handle_request(self._outgoing(request, plan))
            if not 200 <= response.status_code < 300:
                return self._with_status(response, "miss")
            assert plan.endpoint is not None
            recorder = StreamRecorder(plan.endpoint, plan.caller_wants_usage)
            headers = [*response.headers.multi_items(), (STATUS_HEADER, "miss")]
            return mod.Response(
                response.status_code,
                headers=headers,
                stream=_SyncRecording(self, plan, response, recorder),
                extensions=response.extensions,
            )

        def _store_stream(self, plan: Plan, response: Any, answer: dict[str, Any] | None) -> None:
            if not plan.writes:
                return
            try:
                record = self._recorded(plan, response, answer)
                if record is None:
                    return
                ok = self._core.storable(plan.endpoint, record)  # type: ignore[arg-type]
                self._cache._key_put(plan.key, record, ok, plan.ttl_seconds, meta_of_record)
            except Exception as exc:  # storing is best effort: the caller has its stream
                log.warning("fleetcache: streamed answer not stored: %r", exc)

        def close(self) -> None:
            self._inner.close()

    class _SyncRecording(mod.SyncByteStream):  # type: ignore[misc,name-defined]
        def __init__(self, owner: Any, plan: Plan, response: Any, recorder: StreamRecorder) -> None:
            self._owner, self._plan, self._response, self._rec = owner, plan, response, recorder
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
                response = await self._inner.handle_async_request(sub)
                try:
                    await response.aread()
                finally:
                    await response.aclose()
            out, to_store = self._merged(plan, found, missing, response)
            if to_store and plan.writes:
                await self._cache._key_put_many(to_store, plan.ttl_seconds, meta_of_record)
            return out

        async def _send_read(self, request: Any, plan: Plan, got: list[Any]) -> dict[str, Any]:
            response = await self._inner.handle_async_request(self._outgoing(request, plan))
            try:
                await response.aread()
            finally:
                await response.aclose()
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
                    meta_of_record,
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
                    await cache._key_put(key, record, ok, plan.ttl_seconds, meta_of_record)
            return self._with_status(got[-1], "miss")

        async def _stream(self, request: Any, plan: Plan) -> Any:
            if plan.reads:
                data = await self._cache._key_get(plan.key)
                if data is not None and can_replay(plan, data):
                    return self._hit(plan, data)
            response = await self._inner.handle_async_request(self._outgoing(request, plan))
            if not 200 <= response.status_code < 300:
                return self._with_status(response, "miss")
            assert plan.endpoint is not None
            recorder = StreamRecorder(plan.endpoint, plan.caller_wants_usage)
            headers = [*response.headers.multi_items(), (STATUS_HEADER, "miss")]
            return mod.Response(
                response.status_code,
                headers=headers,
                stream=_AsyncRecording(self, plan, response, recorder),
                extensions=response.extensions,
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
                await self._cache._key_put(plan.key, record, ok, plan.ttl_seconds, meta_of_record)
            except Exception as exc:  # storing is best effort: the caller has its stream
                log.warning("fleetcache: streamed answer not stored: %r", exc)

        async def aclose(self) -> None:
            await self._inner.aclose()

    class _AsyncRecording(mod.AsyncByteStream):  # type: ignore[misc,name-defined]
        def __init__(self, owner: Any, plan: Plan, response: Any, recorder: StreamRecorder) -> None:
            self._owner, self._plan, self._response, self._rec = owner, plan, response, recorder
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
