"""What the SDK wrappers (``integrations.openai``, ``integrations.anthropic``) share.

- :class:`WrapOptions`: the wrapper's defaults (TTL, control, lease, ``should_store``) and
  the per-call ``fleetcache={"control": ..., "ttl": ...}`` keyword, popped from the SDK
  call's keyword arguments before anything reaches the upstream.
- :func:`build_request`: the dict that is keyed (the SDK call's keyword arguments without
  the SDK's "not given" sentinels, plus the endpoint tag).
- Stream objects with the surface users touch on the SDKs' ``Stream`` / ``AsyncStream``
  (iteration, ``next()``, ``with`` / ``async with``, ``close()``, ``response``):
  :class:`ReplayStream` / :class:`AsyncReplayStream` serve a hit, :class:`RecordingStream`
  / :class:`AsyncRecordingStream` pass a miss through chunk by chunk and store the
  assembled answer only when the upstream stream ended normally.
"""

from __future__ import annotations

import inspect
import logging
import math
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Generator,
    Iterator,
    Mapping,
)
from dataclasses import dataclass, replace
from types import TracebackType
from typing import Any, Generic, Protocol, TypeVar

from .._info import CacheInfo, attach, cache_info
from .._request import request_digest

__all__ = [
    "CONTROLS",
    "ENDPOINT_KEY",
    "AsyncRecordingStream",
    "AsyncCachedCreate",
    "AsyncReplayStream",
    "CachedCreate",
    "Codec",
    "Proxy",
    "RecordingStream",
    "ReplayStream",
    "WrapOptions",
    "build_request",
    "cache_flavour",
    "digest_for",
    "dump",
    "info_of",
]

T = TypeVar("T")
log = logging.getLogger("fleetcache.integrations")

#: The per-request cache controls: ``default`` (read, then store a fresh answer),
#: ``no-cache`` (skip the read, store the fresh answer: a refresh), ``no-store`` (read,
#: never write), ``bypass`` (neither).
CONTROLS = ("default", "no-cache", "no-store", "bypass")
#: The key added to every keyed request: the API it was sent to, so that an OpenAI chat
#: request and an Anthropic messages request with the same fields never share an entry.
ENDPOINT_KEY = "fleetcache_endpoint"
#: Keys the per-call ``fleetcache=`` mapping accepts.
_CALL_KEYS = frozenset({"control", "ttl"})


def _check_control(control: object) -> str:
    if not isinstance(control, str) or control not in CONTROLS:
        raise ValueError(f"control must be one of {', '.join(CONTROLS)}; got {control!r}")
    return control


def _check_ttl(ttl: object, name: str) -> float | None:
    if ttl is None:
        return None
    if isinstance(ttl, bool) or not isinstance(ttl, (int, float)):
        raise TypeError(f"{name} must be a number of seconds or None, not {type(ttl).__name__}")
    if not math.isfinite(ttl) or ttl <= 0:
        raise ValueError(f"{name} must be a positive finite number of seconds, got {ttl!r}")
    return float(ttl)


@dataclass(frozen=True)
class WrapOptions:
    """A wrapper's settings; per call, ``fleetcache={"control": ..., "ttl": ...}`` overrides.

    ``ttl_seconds``: entry TTL in seconds (``None`` = the cache's own ``ttl_seconds``).
    ``control``: one of :data:`CONTROLS` (default ``"default"``). ``lease_seconds``: how
    long one process may compute a missing non-streamed answer while the others wait for
    it (single-flight; default 30.0 s). ``should_store``: ``response dict -> bool``,
    replaces the cache's default "is this answer reusable" rule (``None`` keeps it).
    ``chunk_chars``: a replayed stream splits texts into pieces of at most this many
    characters (``None``, the default: one delta per text).
    """

    ttl_seconds: float | None = None
    control: str = "default"
    lease_seconds: float = 30.0
    should_store: Callable[[Mapping[str, Any]], bool] | None = None
    chunk_chars: int | None = None

    def __post_init__(self) -> None:
        _check_control(self.control)
        _check_ttl(self.ttl_seconds, "ttl_seconds")
        lease = _check_ttl(self.lease_seconds, "lease_seconds")
        object.__setattr__(self, "lease_seconds", lease)
        if self.should_store is not None and not callable(self.should_store):
            raise TypeError("should_store must be a callable or None")
        chars = self.chunk_chars
        if chars is not None and (isinstance(chars, bool) or not isinstance(chars, int)):
            raise TypeError("chunk_chars must be an int or None")
        if chars is not None and chars < 1:
            raise ValueError(f"chunk_chars must be >= 1, got {chars}")

    def for_call(self, kwargs: dict[str, Any]) -> WrapOptions:
        """Pop ``fleetcache=`` from an SDK call's ``kwargs`` (in place) and apply it."""
        raw = kwargs.pop("fleetcache", None)
        if raw is None:
            return self
        if not isinstance(raw, Mapping):
            raise TypeError(f"fleetcache= must be a mapping, not {type(raw).__name__}")
        unknown = sorted(set(raw) - _CALL_KEYS)
        if unknown:
            raise TypeError(
                f"unknown fleetcache= option(s) {unknown}; accepted: {sorted(_CALL_KEYS)}"
            )
        changes: dict[str, Any] = {}
        if "control" in raw:
            changes["control"] = _check_control(raw["control"])
        if "ttl" in raw:
            changes["ttl_seconds"] = _check_ttl(raw["ttl"], "fleetcache ttl")
        return replace(self, **changes)


def build_request(
    endpoint: str, kwargs: Mapping[str, Any], sentinels: tuple[type[Any], ...]
) -> dict[str, Any]:
    """The keyed request: ``kwargs`` minus "not given" sentinels, plus :data:`ENDPOINT_KEY`."""
    request = {k: v for k, v in kwargs.items() if not isinstance(v, sentinels)}
    if ENDPOINT_KEY in request:
        raise TypeError(f"{ENDPOINT_KEY!r} is reserved by fleetcache and cannot be a keyword")
    request[ENDPOINT_KEY] = endpoint
    return request


_METHODS = ("get_request", "put_request", "invalidate_request", "get_or_compute_request")


def cache_flavour(cache: object) -> str:
    """``"sync"`` or ``"async"``: which client a cache can serve; ``TypeError`` otherwise."""
    methods = [getattr(cache, name, None) for name in _METHODS]
    if not all(callable(m) for m in methods):
        raise TypeError(
            "cache must be a fleetcache RedisExactCache or AsyncRedisExactCache (with the "
            f"request-keyed methods), not {type(cache).__name__}"
        )
    flags = {inspect.iscoroutinefunction(m) for m in methods}
    if len(flags) != 1:
        raise TypeError(f"{type(cache).__name__} mixes sync and async request methods")
    return "async" if flags.pop() else "sync"


def info_of(obj: object, request: Mapping[str, Any], cache: object, *, hit: bool) -> CacheInfo:
    """The :class:`CacheInfo` the cache attached to ``obj``, else one built here."""
    info = cache_info(obj)
    if info is not None:
        return info
    return CacheInfo(hit=hit, age_seconds=None, digest=digest_for(cache, request))


def digest_for(cache: object, request: Mapping[str, Any]) -> str:
    """The request's digest as ``cache`` keys it (its ``ignore`` set when it has one)."""
    method = getattr(cache, "request_digest", None)
    if callable(method):
        return str(method(request))  # the cache's own digest (its ignore set)
    return request_digest(request, ignore=getattr(cache, "ignore", None))


# --------------------------------------------------------------------------- sync streams


class ReplayStream(Generic[T]):
    """A cache hit served as a stream of the SDK's own chunk (or event) objects.

    Mirrors what users touch on the SDK's ``Stream``: ``for x in s``, ``next(s)``,
    ``with s:``, ``s.close()`` (ends the iteration). ``response`` is ``None``: no HTTP
    response was made. ``fleetcache.cache_info(s)`` tells the hit and its age.
    """

    response: Any = None

    def __init__(self, items: list[T]) -> None:
        self._items = items
        self._iterator = self.__stream__()

    def __stream__(self) -> Generator[T, None, None]:
        yield from self._items

    def __next__(self) -> T:
        return self._iterator.__next__()

    def __iter__(self) -> Iterator[T]:
        # A for loop, not ``yield from``: like the SDK's Stream, a ``break`` out of one
        # loop leaves the stream where it was instead of closing it.
        for item in self._iterator:  # noqa: UP028
            yield item

    def __enter__(self) -> ReplayStream[T]:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop the stream: further iteration yields nothing."""
        self._iterator.close()


class RecordingStream(Generic[T]):
    """A miss: the upstream SDK stream passed through item by item, recorded on the way.

    Each item reaches the caller as soon as the upstream yields it. ``fold`` sees each
    item (an exception from it stops the recording, never the caller's stream); when the
    upstream stream ends normally, ``finish()`` runs (it stores the assembled answer, if
    complete). An error from the upstream, a ``break``, ``close()`` or leaving a ``with``
    block before the end store nothing. ``response`` is the upstream stream's HTTP response.
    """

    def __init__(
        self, upstream: Any, fold: Callable[[T], None], finish: Callable[[], None]
    ) -> None:
        self._upstream = upstream
        self.response = getattr(upstream, "response", None)
        self._fold: Callable[[T], None] | None = fold
        self._finish = finish
        self._iterator = self.__stream__()

    def _record(self, item: T) -> None:
        if self._fold is None:
            return
        try:
            self._fold(item)
        except (TypeError, ValueError, KeyError, AttributeError) as err:
            log.warning("fleetcache: stream not recorded (%s); it will not be stored", err)
            self._fold = None

    def __stream__(self) -> Generator[T, None, None]:
        for item in self._upstream:
            self._record(item)
            yield item
        if self._fold is not None:
            self._finish()

    def __next__(self) -> T:
        return self._iterator.__next__()

    def __iter__(self) -> Iterator[T]:
        # A for loop, not ``yield from``: like the SDK's Stream, a ``break`` out of one
        # loop leaves the stream where it was instead of closing it.
        for item in self._iterator:  # noqa: UP028
            yield item

    def __enter__(self) -> RecordingStream[T]:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the upstream response; nothing is stored unless the stream had ended."""
        self._fold = None
        self._iterator.close()
        self._upstream.close()


# -------------------------------------------------------------------------- async streams


class AsyncReplayStream(Generic[T]):
    """:class:`ReplayStream` for asyncio: ``async for``, ``async with``, ``await close()``."""

    response: Any = None

    def __init__(self, items: list[T]) -> None:
        self._items = items
        self._iterator = self.__stream__()

    async def __stream__(self) -> AsyncGenerator[T, None]:
        for item in self._items:
            yield item

    async def __anext__(self) -> T:
        return await self._iterator.__anext__()

    async def __aiter__(self) -> AsyncIterator[T]:
        async for item in self._iterator:
            yield item

    async def __aenter__(self) -> AsyncReplayStream[T]:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Stop the stream: further iteration yields nothing."""
        await self._iterator.aclose()


class AsyncRecordingStream(Generic[T]):
    """:class:`RecordingStream` for asyncio; ``finish`` is awaited after a normal end."""

    def __init__(
        self, upstream: Any, fold: Callable[[T], None], finish: Callable[[], Awaitable[None]]
    ) -> None:
        self._upstream = upstream
        self.response = getattr(upstream, "response", None)
        self._fold: Callable[[T], None] | None = fold
        self._finish = finish
        self._iterator = self.__stream__()

    def _record(self, item: T) -> None:
        if self._fold is None:
            return
        try:
            self._fold(item)
        except (TypeError, ValueError, KeyError, AttributeError) as err:
            log.warning("fleetcache: stream not recorded (%s); it will not be stored", err)
            self._fold = None

    async def __stream__(self) -> AsyncGenerator[T, None]:
        async for item in self._upstream:
            self._record(item)
            yield item
        if self._fold is not None:
            await self._finish()

    async def __anext__(self) -> T:
        return await self._iterator.__anext__()

    async def __aiter__(self) -> AsyncIterator[T]:
        async for item in self._iterator:
            yield item

    async def __aenter__(self) -> AsyncRecordingStream[T]:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the upstream response; nothing is stored unless the stream had ended."""
        self._fold = None
        await self._iterator.aclose()
        await self._upstream.close()


# ------------------------------------------------------------------ one cached endpoint


class Assembler(Protocol):
    """Folds a stream's items (as JSON dicts) into the non-streamed response dict."""

    @property
    def complete(self) -> bool: ...

    def add(self, item: Mapping[str, Any], /) -> None: ...

    def result(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Codec:
    """How one SDK endpoint's objects map to and from what the cache stores.

    ``endpoint``: the tag keyed with each request. ``sentinels``: the SDK's "not given"
    types, dropped from the keyword arguments. ``response``: stored dict -> the SDK's
    response object. ``replay``: (stored dict, call kwargs, chunk_chars) -> the SDK's
    stream items. ``assembler``: a fresh :class:`Assembler`.
    """

    endpoint: str
    sentinels: tuple[type[Any], ...]
    response: Callable[[Mapping[str, Any]], Any]
    replay: Callable[[Mapping[str, Any], Mapping[str, Any], int | None], list[Any]]
    assembler: Callable[[], Assembler]


def dump(model: Any) -> dict[str, Any]:
    """The JSON form of an SDK object as the API sent it (fields it did not send left out)."""
    data: dict[str, Any] = model.model_dump(mode="json", exclude_unset=True)
    return data


def _replayable(
    codec: Codec, stored: Any, kwargs: Mapping[str, Any], opts: WrapOptions
) -> list[Any] | None:
    """The stream items replaying ``stored``; ``None`` for no entry, or for an entry that is
    not a response of this endpoint's shape (logged; the call then goes upstream)."""
    if stored is None:
        return None
    try:
        return codec.replay(stored, kwargs, opts.chunk_chars)
    except (TypeError, ValueError, KeyError, AttributeError) as err:
        log.warning("fleetcache: stored %s entry cannot be replayed (%r)", codec.endpoint, err)
        return None


class CachedCreate:
    """A sync SDK ``create`` method (``inner``) answered through a ``RedisExactCache``."""

    def __init__(self, inner: Any, cache: Any, options: WrapOptions, codec: Codec) -> None:
        self._inner = inner
        self._cache = cache
        self._options = options
        self._codec = codec

    def __call__(self, **kwargs: Any) -> Any:
        opts = self._options.for_call(kwargs)
        request = build_request(self._codec.endpoint, kwargs, self._codec.sentinels)
        if kwargs.get("stream"):
            return self._stream(request, kwargs, opts)
        made: list[Any] = []

        def compute() -> dict[str, Any]:
            response = self._inner(**kwargs)
            made.append(response)
            return dump(response)

        result = self._cache.get_or_compute_request(
            request,
            compute,
            ttl_seconds=opts.ttl_seconds,
            lease_seconds=opts.lease_seconds,
            control=opts.control,
            should_store=opts.should_store,
        )
        info = info_of(result, request, self._cache, hit=not made)
        return attach(made[0] if made else self._codec.response(result), info)

    def _stream(self, request: dict[str, Any], kwargs: dict[str, Any], opts: WrapOptions) -> Any:
        stored = self._cache.get_request(request, control=opts.control)
        items = _replayable(self._codec, stored, kwargs, opts)
        if items is not None:
            return attach(ReplayStream(items), info_of(stored, request, self._cache, hit=True))
        upstream = self._inner(**kwargs)
        assembler = self._codec.assembler()
        cache = self._cache

        def fold(item: Any) -> None:
            assembler.add(dump(item))

        def finish() -> None:
            if assembler.complete:
                cache.put_request(
                    request,
                    assembler.result(),
                    ttl_seconds=opts.ttl_seconds,
                    control=opts.control,
                    should_store=opts.should_store,
                )

        stream: RecordingStream[Any] = RecordingStream(upstream, fold, finish)
        info = CacheInfo(hit=False, age_seconds=None, digest=digest_for(cache, request))
        return attach(stream, info)


class AsyncCachedCreate:
    """An async SDK ``create`` method answered through an ``AsyncRedisExactCache``."""

    def __init__(self, inner: Any, cache: Any, options: WrapOptions, codec: Codec) -> None:
        self._inner = inner
        self._cache = cache
        self._options = options
        self._codec = codec

    async def __call__(self, **kwargs: Any) -> Any:
        opts = self._options.for_call(kwargs)
        request = build_request(self._codec.endpoint, kwargs, self._codec.sentinels)
        if kwargs.get("stream"):
            return await self._stream(request, kwargs, opts)
        made: list[Any] = []

        async def compute() -> dict[str, Any]:
            response = await self._inner(**kwargs)
            made.append(response)
            return dump(response)

        result = await self._cache.get_or_compute_request(
            request,
            compute,
            ttl_seconds=opts.ttl_seconds,
            lease_seconds=opts.lease_seconds,
            control=opts.control,
            should_store=opts.should_store,
        )
        info = info_of(result, request, self._cache, hit=not made)
        return attach(made[0] if made else self._codec.response(result), info)

    async def _stream(
        self, request: dict[str, Any], kwargs: dict[str, Any], opts: WrapOptions
    ) -> Any:
        stored = await self._cache.get_request(request, control=opts.control)
        items = _replayable(self._codec, stored, kwargs, opts)
        if items is not None:
            replay = AsyncReplayStream(items)
            return attach(replay, info_of(stored, request, self._cache, hit=True))
        upstream = await self._inner(**kwargs)
        assembler = self._codec.assembler()
        cache = self._cache

        def fold(item: Any) -> None:
            assembler.add(dump(item))

        async def finish() -> None:
            if assembler.complete:
                await cache.put_request(
                    request,
                    assembler.result(),
                    ttl_seconds=opts.ttl_seconds,
                    control=opts.control,
                    should_store=opts.should_store,
                )

        stream: AsyncRecordingStream[Any] = AsyncRecordingStream(upstream, fold, finish)
        info = CacheInfo(hit=False, age_seconds=None, digest=digest_for(cache, request))
        return attach(stream, info)


class Proxy:
    """Attribute pass-through to a wrapped SDK object; subclasses override a few names."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        if name == "_inner":  # not set yet (copy/pickle build the object without __init__)
            raise AttributeError(name)
        return getattr(self._inner, name)

    def __repr__(self) -> str:
        return f"<fleetcache {type(self).__name__} of {self._inner!r}>"
