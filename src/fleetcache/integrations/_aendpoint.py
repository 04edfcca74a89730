"""One cached SDK endpoint: the ``create`` wrapper and its two stream objects.

The asyncio endpoint (``_aendpoint.py``) is the source; the sync one (``_endpoint.py``) is
generated from it by ``scripts/unasync.py``: edit ``_aendpoint.py``, then run the script.

The streams have the surface users touch on the SDKs' ``AsyncStream`` (iteration one item at
a time, the context manager, ``close()``, ``response``): :class:`AsyncReplayStream`
serves a hit, :class:`AsyncRecordingStream` passes a miss through item by item and stores
the assembled answer only when the upstream stream ended normally.
"""

from __future__ import annotations

# sync-only: from collections.abc import Callable, Generator, Iterator
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable  # async-only
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from ..core.info import CacheInfo, attach
from ._wrap import Codec, WrapOptions, build_request, digest_for, dump, info_of, log, replayable

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["AsyncCachedCreate", "AsyncRecordingStream", "AsyncReplayStream", "AsyncStreamBase"]

T = TypeVar("T")


class AsyncStreamBase(Generic[T]):
    """What both streams share: iteration over ``_iterator`` and the context manager."""

    # sync-only: _iterator: Generator[T, None, None]
    _iterator: AsyncGenerator[T, None]  # async-only

    async def __anext__(self) -> T:
        return await self._iterator.__anext__()

    async def __aiter__(self) -> AsyncIterator[T]:
        # A for loop, not ``yield from``: like the SDK's Stream, a ``break`` out of one
        # loop leaves the stream where it was instead of closing it.
        async for item in self._iterator:
            yield item

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """End the stream (the subclass says what else it closes)."""
        raise NotImplementedError


class AsyncReplayStream(AsyncStreamBase[T]):
    """A cache hit served as a stream of the SDK's own chunk (or event) objects.

    Mirrors what users touch on the SDK's ``AsyncStream``: ``async for x in s``,
    ``async with s:``, ``await s.close()`` (ends the iteration). ``response`` is ``None``:
    no HTTP response was made. ``fleetcache.cache_info(s)`` tells the hit and its age.
    """

    response: Any = None

    def __init__(self, items: list[T]) -> None:
        self._items = items
        self._iterator = self.__stream__()

    # sync-only: def __stream__(self) -> Generator[T, None, None]:
    async def __stream__(self) -> AsyncGenerator[T, None]:  # async-only
        # sync-only: yield from self._items
        for item in self._items:  # async-only
            yield item  # async-only

    async def close(self) -> None:
        """Stop the stream: further iteration yields nothing."""
        await self._iterator.aclose()


class AsyncRecordingStream(AsyncStreamBase[T]):
    """A miss: the upstream SDK stream passed through item by item, recorded on the way.

    Each item reaches the caller as soon as the upstream yields it. ``fold`` sees each
    item (an exception from it stops the recording, never the caller's stream); when the
    upstream stream ends normally, ``finish()`` runs (it stores the assembled answer, if
    complete). An error from the upstream, a ``break``, ``close()`` or leaving a ``with``
    block before the end store nothing. ``response`` is the upstream stream's HTTP response.
    """

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

    # sync-only: def __stream__(self) -> Generator[T, None, None]:
    async def __stream__(self) -> AsyncGenerator[T, None]:  # async-only
        async for item in self._upstream:
            self._record(item)
            yield item
        if self._fold is not None:
            await self._finish()

    async def close(self) -> None:
        """Close the upstream response; nothing is stored unless the stream had ended."""
        self._fold = None
        await self._iterator.aclose()
        await self._upstream.close()


class AsyncCachedCreate:
    """An SDK ``create`` method (``inner``) answered through ``cache``: the cache facade
    ``AsyncRedisExactCache``."""

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
        items = replayable(self._codec, stored, kwargs, opts)
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
