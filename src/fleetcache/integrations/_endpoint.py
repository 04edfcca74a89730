# Generated from _aendpoint.py by scripts/unasync.py: do not edit, edit _aendpoint.py.
"""One cached SDK endpoint: the ``create`` wrapper and its two stream objects.

The asyncio endpoint (``_aendpoint.py``) is the source; the sync one (``_endpoint.py``) is
generated from it by ``scripts/unasync.py``: edit ``_aendpoint.py``, then run the script.

The streams have the surface users touch on the SDKs' ``Stream`` (iteration one item at
a time, the context manager, ``close()``, ``response``): :class:`ReplayStream`
serves a hit, :class:`RecordingStream` passes a miss through item by item and stores
the assembled answer only when the upstream stream ended normally.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from ..core.info import CacheInfo, attach
from ._wrap import Codec, WrapOptions, build_request, digest_for, dump, info_of, log, replayable

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["CachedCreate", "RecordingStream", "ReplayStream", "StreamBase"]

T = TypeVar("T")


class StreamBase(Generic[T]):
    """What both streams share: iteration over ``_iterator`` and the context manager."""

    _iterator: Generator[T, None, None]

    def __next__(self) -> T:
        return self._iterator.__next__()

    def __iter__(self) -> Iterator[T]:
        # A for loop, not ``yield from``: like the SDK's Stream, a ``break`` out of one
        # loop leaves the stream where it was instead of closing it.
        for item in self._iterator:
            yield item

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """End the stream (the subclass says what else it closes)."""
        raise NotImplementedError


class ReplayStream(StreamBase[T]):
    """A cache hit served as a stream of the SDK's own chunk (or event) objects.

    Mirrors what users touch on the SDK's ``Stream``: ``for x in s``,
    ``with s:``, ``s.close()`` (ends the iteration). ``response`` is ``None``:
    no HTTP response was made. ``fleetcache.cache_info(s)`` tells the hit and its age.
    """

    response: Any = None

    def __init__(self, items: list[T]) -> None:
        self._items = items
        self._iterator = self.__stream__()

    def __stream__(self) -> Generator[T, None, None]:
        yield from self._items

    def close(self) -> None:
        """Stop the stream: further iteration yields nothing."""
        self._iterator.close()


class RecordingStream(StreamBase[T]):
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

    def close(self) -> None:
        """Close the upstream response; nothing is stored unless the stream had ended."""
        self._fold = None
        self._iterator.close()
        self._upstream.close()


class CachedCreate:
    """An SDK ``create`` method (``inner``) answered through ``cache``: the cache facade
    ``RedisExactCache``."""

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
        items = replayable(self._codec, stored, kwargs, opts)
        if items is not None:
            replay = ReplayStream(items)
            return attach(replay, info_of(stored, request, self._cache, hit=True))
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
