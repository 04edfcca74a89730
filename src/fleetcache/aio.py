"""The cache facade: ``AsyncRedisExactCache``, the fleet-wide exact-match cache.

The asyncio facade (``aio.py``) is the source; the sync one (``cache.py``) is generated from
it by ``scripts/unasync.py``: edit ``aio.py``, then run the script.

Both share the keys, envelope, Lua and behaviour: a sync and an async process of one fleet
share entries and counters.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar, overload

from pydantic import BaseModel

from . import _otel
from ._astore import AsyncStore
from ._base import AsyncCacheBase, Binding
from ._clients import async_client_from_url
from ._error_policy import REDIS_FAULTS
from .core.batch import op_get_many, op_put_many, plan_get_many, plan_put_many
from .core.flight import Flight
from .core.info import CacheInfo, attach, cache_info
from .core.instructions import Op
from .core.keys import RequestKey
from .core.models import CacheStats, FleetStats
from .core.ops import (
    UNSTORABLE,
    ProgressFn,
    op_check_layout,
    op_clear,
    op_fleet_stats,
    op_get,
    op_invalidate,
    op_put,
    op_reconcile,
    op_reset_stats,
    op_size,
)
from .core.request_ops import (
    MetaOf,
    RequestFlight,
    ResponseModel,
    ShouldStore,
    as_model,
    check_model,
    miss_info,
    op_get_key,
    op_get_many_keys,
    op_get_request,
    op_invalidate_request,
    op_put_key,
    op_put_many_keys,
    op_put_request,
    request_key,
)
from .errors import LayoutMismatchError

T = TypeVar("T")
D = TypeVar("D")
M = TypeVar("M")

#: What makes ``get_or_compute`` fall back to (or keep) ``compute()``'s own answer.
_FLIGHT_FAULTS: tuple[type[BaseException], ...] = (*REDIS_FAULTS, LayoutMismatchError)


class AsyncRedisExactCache(AsyncCacheBase):
    """Fleet-wide exact-match cache of LLM responses on Redis / Valkey.

    The sync and the asyncio flavours have the same methods, except that on the asyncio one
    ``stats()`` and ``size()`` are coroutines (``len()`` cannot await) where the sync one has
    the ``stats`` property and ``len(cache)``. Close it when done, or use it as a context
    manager (``async with`` on the asyncio one).

    A drop-in for ``ractogateway``'s ``ExactMatchCache`` / ``RedisExactCache``: pass it as
    ``exact_cache=`` to a developer kit. Every process sharing ``key_prefix`` on one Redis
    shares the entries *and* the counters (hits, misses, size, tokens saved...).

    Parameters (all keyword-only; defaults in brackets):

    - ``url`` [``"redis://localhost:6379/0"``]: used when ``client`` is not given. The cache
      builds one client with ``socket_timeout``/``connect_timeout`` and reuses it.
    - ``client`` [None]: a redis-py client of the cache's flavour (``Redis``,
      ``RedisCluster`` or ``Sentinel.master_for(...)``; from ``redis.asyncio`` for the asyncio
      cache) built with ``decode_responses=False``. Its timeouts are yours.
    - ``ttl_seconds`` [None]: default entry TTL in seconds, float, millisecond precision;
      ``None`` = no expiry. ``<= 0``, NaN, infinite or over 1e12 s -> ``ValueError``.
    - ``key_prefix`` [``"ractogateway:exact"``]: the namespace; no ``{`` or ``}``.
    - ``response_model`` [``LLMResponse``]: pydantic v2 model class ``get`` returns.
    - ``on_error`` [``"miss"``]: on a Redis fault, ``"miss"`` makes ``get`` return None and
      ``put``/``invalidate`` skip (logged, rate-limited); ``"raise"`` raises
      ``CacheUnavailableError``. Management calls (``stats``, ``len``, ``fleet_stats``,
      ``clear``, ``reconcile``, ``reset_stats``) always raise: they never report made-up
      numbers.
    - ``shards`` [1]: hash-tagged shards of the namespace (more for Redis Cluster); recorded
      in the namespace by the first data call (re-asserted by every put), and a different
      value later is a ``LayoutMismatchError`` (with ``"raise"``; with ``"miss"`` data calls
      are counted, logged faults served as misses).
    - ``socket_timeout`` / ``connect_timeout`` [0.25 s each]: for URL-built clients, which
      never re-send a command (no redis-py retry: a re-sent script would count twice).
    - ``breaker_seconds`` [1.0]: after a connection fault, calls skip Redis this long.
    - ``compress_threshold`` [4096 bytes]: zlib-compress bodies from this size (None: never).
    - ``max_entry_bytes`` [8 MiB]: larger encoded responses are not stored
      (``EntryTooLargeError`` with ``"raise"``, a logged skip with ``"miss"``).
    - ``signing_key`` [None]: ``bytes`` (at least 16), or a sequence of them for rotation
      (the first signs, any verifies). Every entry written carries a 16-byte HMAC-SHA256 tag
      over the namespace, the request digest and the envelope, checked before anything is
      decoded: an entry that is unsigned, forged, or moved from another request's key or
      namespace is a miss, deleted and counted ``forged``. ``None``: no signing, entries are
      read as before (a signed entry's tag is then skipped, not checked).
    - ``max_entries`` [None]: most live entries the namespace may hold, ``shards`` to
      2**32 - 1; recorded in the namespace like ``shards`` (another value later is a
      ``LayoutMismatchError``). Every put script keeps the live size <= N atomically: the
      surplus is removed soonest-to-expire first, then (entries without TTL) oldest write
      first, never the entry being written, counted ``evicted``. Split over the shards
      (``N // S`` each, the first ``N % S`` one more). ``None``: no cap, nothing changes.
    - ``ignore`` [None = ``DEFAULT_IGNORE``]: top-level request fields the request path
      (``get_request``...) leaves out of the key; ``()`` keys on every field.
    - ``should_store`` [None = ``default_should_store``]: ``(response_data: dict) -> bool``,
      whether the request path stores a computed response; refusals count ``not_stored``.
      A rule that raises (any ``Exception``) refuses too, logged; the caller gets its answer.
    - ``prices`` [None]: ``{model: (usd_per_million_input, usd_per_million_output[,
      usd_per_million_cache_read[, usd_per_million_cache_write]])}``: the price of each
      model's answers, recorded (integer nano-USD) when an entry is written and counted in
      ``cost_saved_usd`` on every hit. Models not in it are priced by the ``genai-prices``
      library when installed (``fleetcache[prices]``); a model with no price at all is
      stored with its cost unknown and its hits count ``unpriced_hits``, never $0.
    """

    _lock_class = asyncio.Lock
    _store_class = AsyncStore

    def _client_from_url(self, url: str) -> Any:
        return async_client_from_url(url, self._socket_timeout, self._connect_timeout)

    async def _check_layout(self, b: Binding, write: bool) -> None:
        """Check the namespace layout (``write``, data calls: record it if absent), once per
        cache object while it matches. Serialised: the first call also opens the first
        connections, and a burst of concurrent first commands on a cold async
        ``RedisCluster`` client breaks inside redis-py."""
        async with b.lock:
            if not self._core.layout_checked:
                await b.store.drive(op_check_layout(self._core, write))

    async def _run(self, op: Op[T], what: str, default: D, *, fail_open: bool = True) -> T | D:
        data = fail_open  # data calls record the layout; management calls only read it
        fail_open = fail_open and self._policy.on_error == "miss"
        try:  # run the op up to its first I/O: checks the input even during an outage
            first = next(op)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        if fail_open and self._policy.is_open():
            op.close()
            return default
        try:
            b = self._bound()  # this event loop's (and process's) client, opened if need be
            if not self._core.layout_checked:
                await self._check_layout(b, data)
            result: T = await b.store.drive(op, first)
        except REDIS_FAULTS as exc:
            op.close()
            self._policy.failed(exc, what, fail_open=fail_open)
            return default
        except LayoutMismatchError as exc:
            op.close()
            if not fail_open:
                raise
            self._policy.failed(exc, what, fail_open=True)  # a counted, logged fault
            return default
        self._policy.closed()
        return result

    # -- data calls (follow on_error) ---------------------------------------------------

    async def get(
        self,
        user_message: str,
        system_prompt: str,
        model: str,
        temperature: float,
        max_tokens: int,
    ) -> Any | None:
        """The cached response (an instance of ``response_model``) or ``None`` on a miss.

        Reads the entry and counts the hit or miss fleet-wide in one round trip.
        """
        fields = (user_message, system_prompt, model, temperature, max_tokens)
        with _otel.span("get", self._core, model) as span:
            result = await self._run(op_get(self._core, fields), "get", None)
            span.done(result is not None, fields=fields)
            return result

    async def put(
        self,
        user_message: str,
        system_prompt: str,
        model: str,
        temperature: float,
        max_tokens: int,
        response: BaseModel,
        *,
        ttl_seconds: float | None = None,
        upstream_ms: float | None = None,
    ) -> None:
        """Store a response; ``ttl_seconds`` (float s) overrides the cache's TTL for it.

        ``upstream_ms`` [None: not measured]: how long the LLM call took (ms >= 0), counted
        in ``seconds_saved`` on every hit. The entry also records the response's usage and
        its cost for ``model`` (``prices=``)."""
        fields = (user_message, system_prompt, model, temperature, max_tokens)
        try:
            op = op_put(self._core, fields, response, ttl_seconds, upstream_ms)
            await self._run(op, "put", None)
        except UNSTORABLE as exc:  # too large, or fields that cannot be serialised
            self._policy.refused(exc)

    async def invalidate(
        self,
        user_message: str,
        system_prompt: str,
        model: str,
        temperature: float,
        max_tokens: int,
    ) -> bool:
        """Delete one entry; ``True`` if a live entry was deleted."""
        fields = (user_message, system_prompt, model, temperature, max_tokens)
        return await self._run(op_invalidate(self._core, fields), "invalidate", False)

    # -- batch calls and single-flight (follow on_error) --------------------------------

    async def get_many(self, requests: Iterable[Sequence[Any]]) -> list[Any | None]:
        """Many gets in one round trip per shard: a list of responses (or ``None`` for a
        miss) in the order of ``requests``, each a 5-tuple ``(user_message, system_prompt,
        model, temperature, max_tokens)``. Duplicates are fine; every request is counted
        (hits, misses, per model, tokens saved) exactly as ``get`` counts it. Each script
        call reads at most 500 entries; bigger batches are split and still pipelined.
        Every request is checked before any I/O (``TypeError``/``ValueError``).
        """
        plan = plan_get_many(self._core, requests)
        return await self._run(op_get_many(self._core, plan), "get_many", [None] * len(plan))

    async def put_many(
        self, items: Iterable[Sequence[Any]], *, ttl_seconds: float | None = None
    ) -> None:
        """Many puts in one round trip per shard. Each item is a 6-tuple: the five request
        fields, then the response. ``ttl_seconds`` (float s) overrides the cache's TTL for
        all of them. A later duplicate wins, as with ``put`` one by one. Every item is
        checked and encoded before any I/O.
        """
        plan, ttl_ms = plan_put_many(self._core, items, ttl_seconds, self._policy.refused)
        await self._run(op_put_many(self._core, plan, ttl_ms), "put_many", 0)

    async def get_or_compute(
        self,
        user_message: str,
        system_prompt: str,
        model: str,
        temperature: float,
        max_tokens: int,
        compute: Callable[[], Awaitable[Any]],
        *,
        lease_seconds: float = 30.0,
        wait_timeout: float | None = None,
    ) -> Any:
        """The cached response, or ``compute()``'s, computed ONCE across the fleet.

        ``compute`` takes no arguments and returns (on the asyncio cache: a coroutine that
        resolves to) an instance of ``response_model``. On a miss one
        script call either grants this caller a lease (it computes, then stores the answer
        and releases the lease in one more call) or says another caller holds it: then this
        caller polls (2 ms, growing to 25 ms) until the answer lands (counted ``coalesced``).

        - ``lease_seconds`` [30.0 s]: how long a lease lasts; if its holder dies, a waiter
          takes over when it ends. If ``compute`` raises, the lease is released at once,
          the exception reaches this caller only, and a waiter takes over.
        - ``wait_timeout`` [None]: longest wait (s) before computing without the lease;
          ``None`` waits until the answer lands or the lease ends.

        While ``compute`` runs, the holder renews its lease every ``lease_seconds / 3``.
        The caller always gets ``compute()``'s answer once it ran, whether or not it could
        be stored (too large or unserialisable: a logged skip, and the waiters compute at
        once instead of queueing for the lease). With Redis down and ``on_error="miss"``,
        it just returns ``compute()``.
        """
        fields = (user_message, system_prompt, model, temperature, max_tokens)
        _req, key = self._core.key_of_fields(fields)
        flight = Flight(self._core, key, lease_seconds, wait_timeout, self._skip_answer)
        if not callable(compute):
            raise TypeError("compute must be callable")
        with _otel.span("get_or_compute", self._core, model) as span:
            result, served = await self._fly(flight, compute, "get_or_compute")
            span.done(served, digest=flight.digest)
            return result

    async def _fly(
        self, flight: Flight, compute: Callable[[], Awaitable[Any]], what: str
    ) -> tuple[Any, bool]:
        """Run a single-flight op: ``(answer, served)``, ``served`` True when the answer
        came from the cache (``False``: this caller's ``compute()`` made it). A paid-for
        answer is returned whatever happens to Redis; with Redis down and ``"miss"`` the
        answer is ``compute()``'s."""
        fail_open = self._policy.on_error == "miss"
        if not (flight.reads or flight.writes) or (fail_open and self._policy.is_open()):
            return await compute(), False  # bypass: the op's one step is Compute
        try:
            b = self._bound()
            if not self._core.layout_checked:
                await self._check_layout(b, True)
            result: Any = await b.store.drive(flight.run(), compute=compute)
        except _FLIGHT_FAULTS as exc:
            if flight.compute_error is exc:
                raise
            if flight.computed:  # a paid-for answer is returned, whatever happened to Redis
                self._policy.failed(exc, what, fail_open=True)
                return flight.response, False
            if isinstance(exc, LayoutMismatchError) and not fail_open:
                raise
            self._policy.failed(exc, what, fail_open=fail_open)
            return await compute(), False
        self._policy.closed()
        return result, not flight.computed

    def _skip_answer(self, exc: Exception) -> None:
        """An answer ``get_or_compute`` could not store: logged and counted, never raised
        (the caller gets it all the same)."""
        self._policy.refused(exc, may_raise=False)

    # -- the whole-request path (follows on_error) --------------------------------------

    @overload
    async def get_request(
        self, request: Mapping[str, Any], *, control: str = "default", model: None = None
    ) -> dict[str, Any] | None: ...

    @overload
    async def get_request(
        self,
        request: Mapping[str, Any],
        *,
        control: str = "default",
        model: type[M] | Callable[[dict[str, Any]], M],
    ) -> M | None: ...

    async def get_request(
        self,
        request: Mapping[str, Any],
        *,
        control: str = "default",
        model: ResponseModel | None = None,
    ) -> Any:
        """The stored response to a whole request (its JSON data, a ``dict`` carrying
        ``cache_info(...)`` with ``hit=True``; rebuilt as ``model`` when given), or ``None``
        on a miss.

        ``request``: the JSON-like request (e.g. ``chat.completions.create``'s keyword
        arguments), keyed by ``request_digest`` without the cache's ``ignore`` fields.
        ``control`` ["default"]: ``"no-cache"`` and ``"bypass"`` skip the read (``None``,
        nothing counted); ``"default"`` and ``"no-store"`` read. Counts the hit or miss
        fleet-wide, per ``request["model"]`` too, in one round trip.
        ``model`` [None]: a pydantic model class (e.g. ``openai.types.chat.ChatCompletion``:
        the hit is ``ChatCompletion.model_validate(data)``) or a callable building the
        caller's object from the stored ``dict``; ``cache_info`` works on the rebuilt object.
        """
        check_model(model)
        with _otel.span("get_request", self._core, _otel.model_of(request)) as span:
            op = op_get_request(self._core, request, control)
            hit = await self._run(op, "get_request", None)
            span.done(hit is not None, request=request)
            return as_model(hit, model)

    async def put_request(
        self,
        request: Mapping[str, Any],
        response: Any,
        *,
        ttl_seconds: float | None = None,
        control: str = "default",
        should_store: ShouldStore | None = None,
        upstream_ms: float | None = None,
    ) -> None:
        """Store ``response`` (a ``Mapping`` or a pydantic model, kept as its JSON data)
        for ``request``; ``ttl_seconds`` (float s) overrides the cache's TTL for it.
        ``upstream_ms`` [None: not measured]: how long the upstream call took (ms >= 0),
        counted in ``seconds_saved`` on every hit; the entry also records the response's
        usage and its cost (``request["model"]``, else the response's ``model``).

        Not stored: with ``control`` ``"no-store"`` or ``"bypass"``; or when the
        ``should_store`` rule (this call's, else the cache's, else ``default_should_store``)
        refuses the response's data, which is counted ``not_stored`` fleet-wide.
        """
        op = op_put_request(
            self._core, request, response, ttl_seconds, control, should_store, upstream_ms
        )
        try:
            await self._run(op, "put_request", False)
        except UNSTORABLE as exc:  # too large, or fields that cannot be serialised
            self._policy.refused(exc)

    async def invalidate_request(self, request: Mapping[str, Any]) -> bool:
        """Delete the entry of a whole request; ``True`` if a live entry was deleted."""
        op = op_invalidate_request(self._core, request)
        return await self._run(op, "invalidate_request", False)

    async def get_or_compute_request(
        self,
        request: Mapping[str, Any],
        compute: Callable[[], Awaitable[Any]],
        *,
        ttl_seconds: float | None = None,
        lease_seconds: float = 30.0,
        wait_timeout: float | None = None,
        control: str = "default",
        should_store: ShouldStore | None = None,
        model: ResponseModel | None = None,
    ) -> Any:
        """The stored response to ``request``, or ``compute()``'s, computed ONCE across the
        fleet (single-flight, as ``get_or_compute``).

        ``compute`` takes no arguments and returns (on the asyncio cache: a coroutine that
        resolves to) the response, a ``Mapping`` or a pydantic model.
        A hit returns the stored JSON data (a ``dict``, ``cache_info(...).hit`` is True);
        a computed answer is returned as ``compute()`` gave it (a plain ``dict`` as a
        ``dict`` copy) with ``cache_info(...).hit`` False. ``ttl_seconds`` overrides the
        cache's TTL for the stored entry; ``lease_seconds``/``wait_timeout`` as in
        ``get_or_compute``. ``control``: ``"no-cache"`` computes and stores (a refresh),
        ``"no-store"`` reads and computes on a miss without storing (no lease),
        ``"bypass"`` just computes. ``should_store`` overrides the cache's rule for this
        call. With Redis down and ``on_error="miss"``, it returns ``compute()``'s answer.
        ``model`` [None]: give the type ``compute()`` returns (a pydantic model class, e.g.
        ``ChatCompletion``, or a callable building it from the stored ``dict``) and a hit
        is rebuilt as that type, so hits and misses have one type (a computed answer not
        yet of that class is rebuilt too); ``cache_info`` works on either. Without it, a
        hit is a ``dict`` whatever ``compute()`` returns.
        """
        with _otel.span("get_or_compute_request", self._core, _otel.model_of(request)) as span:
            out = await self._get_or_compute_request(
                request,
                compute,
                ttl_seconds=ttl_seconds,
                lease_seconds=lease_seconds,
                wait_timeout=wait_timeout,
                control=control,
                should_store=should_store,
                model=model,
            )
            info = cache_info(out)
            span.done(info is not None and info.hit, request=request)
            return out

    async def _get_or_compute_request(
        self,
        request: Mapping[str, Any],
        compute: Callable[[], Awaitable[Any]],
        *,
        ttl_seconds: float | None,
        lease_seconds: float,
        wait_timeout: float | None,
        control: str,
        should_store: ShouldStore | None,
        model: ResponseModel | None,
    ) -> Any:
        """``get_or_compute_request`` without its span."""
        check_model(model)
        if not callable(compute):
            raise TypeError("compute must be callable")
        flight = RequestFlight(
            self._core,
            request_key(self._core, request),  # the one time this request is keyed
            lease_seconds,
            wait_timeout,
            self._skip_answer,
            ttl_seconds=ttl_seconds,
            control=control,
            should_store=should_store,
            request=request,
        )
        result, served = await self._fly(flight, compute, "get_or_compute_request")
        return as_model(result if served else _with_info(result, miss_info(flight.key)), model)

    # -- keys computed elsewhere: the HTTP transport (fleetcache.integrations.http) ------
    #
    # The transport keys requests in its own domain (fleetcache.core.http_key) and stores
    # request-path envelopes (FLAG_JSON) through these; same counters, signing, caps, TTL.

    async def _key_get(self, key: RequestKey) -> dict[str, Any] | None:
        """The stored data of ``key`` (a ``CachedDict``) or ``None``; counted."""
        with _otel.span("http", self._core, key.model) as span:
            data = await self._run(op_get_key(self._core, key), "http_get", None)
            span.done(data is not None, digest=key.digest)
            return data

    async def _key_put(
        self,
        key: RequestKey,
        data: dict[str, Any],
        ok: bool,
        ttl_seconds: float | None,
        meta_of: MetaOf,
    ) -> None:
        """Store ``data`` under ``key`` when ``ok``, else count ``not_stored``; never raises
        for an unstorable answer (logged skip): the caller already has it."""
        try:
            op = op_put_key(self._core, key, data, ok, self._core.entry_ttl(ttl_seconds), meta_of)
            await self._run(op, "http_put", False)
        except UNSTORABLE as exc:
            self._policy.refused(exc, may_raise=False)

    async def _key_get_many(self, keys: list[RequestKey]) -> list[Any]:
        """The stored data (or ``None``) of each key, in order; one round trip per shard."""
        return await self._run(
            op_get_many_keys(self._core, keys), "http_get_many", [None] * len(keys)
        )

    async def _key_put_many(
        self,
        items: list[tuple[RequestKey, dict[str, Any]]],
        ttl_seconds: float | None,
        meta_of: MetaOf,
    ) -> None:
        """Store many entries in one round trip (logged skip if one cannot be encoded)."""
        try:
            op = op_put_many_keys(self._core, items, self._core.entry_ttl(ttl_seconds), meta_of)
            await self._run(op, "http_put_many", 0)
        except UNSTORABLE as exc:
            self._policy.refused(exc, may_raise=False)

    async def _key_fly(
        self,
        key: RequestKey,
        compute: Callable[[], Awaitable[Any]],
        ttl_seconds: float | None,
        should_store: ShouldStore,
        meta_of: MetaOf,
    ) -> tuple[Any, bool]:
        """Single-flight on ``key``: ``(stored data or compute()'s, served from the cache)``."""
        flight = RequestFlight(
            self._core,
            key,
            30.0,
            None,
            self._skip_answer,
            ttl_seconds=ttl_seconds,
            should_store=should_store,
            meta_of=meta_of,
        )
        with _otel.span("http", self._core, key.model) as span:
            data, served = await self._fly(flight, compute, "http")
            span.done(served, digest=key.digest)
            return data, served

    # -- management calls (always raise CacheUnavailableError on a fault) ---------------

    async def clear(self, *, progress: ProgressFn | None = None) -> None:
        """Delete every entry of this namespace (in bounded chunks) and reset its counters.

        Other namespaces, even ones whose prefix starts with this one, are not touched.
        ``progress`` [None]: called with a ``ChunkProgress`` after each chunk (<= 500 entries).
        """
        op = op_clear(self._core, progress=progress)
        await self._run(op, "clear", None, fail_open=False)

    # sync-only: @property
    async def stats(self) -> CacheStats:
        """Fleet-wide hits, misses and live size of this namespace."""
        return (await self.fleet_stats()).to_cache_stats()

    async def size(self) -> int:
        """Live entries of this namespace, fleet-wide (O(log n) per shard, no SCAN)."""
        return await self._run(op_size(self._core), "size", 0, fail_open=False)

    # sync-only: def __len__(self) -> int:
    # sync-only:     """Live entries of this namespace, fleet-wide: ``size()``."""
    # sync-only:     return self.size()

    async def fleet_stats(self) -> FleetStats:
        """Every fleet-wide counter of this namespace, per model too."""
        op = op_fleet_stats(self._core)
        return await self._run(op, "fleet_stats", FleetStats(), fail_open=False)

    async def reconcile(self, *, progress: ProgressFn | None = None) -> int:
        """Drop index members whose entry vanished (eviction, manual DEL); returns how many.

        ``progress`` [None]: called with a ``ChunkProgress`` after each chunk (<= 500 members).
        """
        op = op_reconcile(self._core, progress=progress)
        return await self._run(op, "reconcile", 0, fail_open=False)

    async def reset_stats(self) -> None:
        """Zero this namespace's fleet counters; entries stay."""
        await self._run(op_reset_stats(self._core), "reset_stats", None, fail_open=False)

    # -- lifecycle ----------------------------------------------------------------------

    async def aclose(self) -> None:
        """Close the client this cache built from ``url`` (a given client is yours). The
        asyncio cache closes the running event loop's client; those of other (closed)
        loops are dropped. The cache stays usable: a later call opens a new client."""
        for client in self._clients_to_close():
            await client.aclose()

    async def __aenter__(self) -> AsyncRedisExactCache:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def _with_info(value: T, info: CacheInfo) -> T:
    """``value`` carrying ``info`` where it can (a dict, a pydantic model); else as is."""
    try:
        return attach(value, info)
    except TypeError:
        return value
