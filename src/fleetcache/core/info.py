"""Hit or miss, per response object: ``cache_info(response) -> CacheInfo | None``.

The information travels with the object it describes, never in a process-wide "last
result" slot, so two threads or two asyncio tasks sharing one cache each see their own
answer:

- a response ``dict`` (what ``get_request`` returns) is a :class:`CachedDict`, a ``dict``
  subclass carrying the info in a slot (equal to, and usable as, a plain ``dict``);
- any other object that supports weak references (every pydantic v2 model, so the OpenAI
  ``ChatCompletion`` and the Anthropic ``Message``) is looked up in a table keyed by object
  identity, whose entry is removed by a weak-reference callback when the object is
  collected. Nothing is written onto the object itself: a pydantic model's ``__dict__``,
  private attributes and equality stay exactly as they were.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")

__all__ = ["CacheInfo", "CachedDict", "attach", "cache_info"]


@dataclass(frozen=True, slots=True)
class CacheInfo:
    """Where one response came from.

    ``hit``: served from the cache (``True``) or computed by the upstream (``False``).
    ``age_seconds``: seconds since the entry was stored (the writer's and the reader's wall
    clocks, millisecond precision) for a hit; ``None`` for a miss. ``digest``: the
    request's digest (32 hex characters), the key of its entry.
    """

    hit: bool
    age_seconds: float | None
    digest: str


class CachedDict(dict[str, Any]):
    """A response ``dict`` carrying its :class:`CacheInfo` (see :func:`cache_info`).

    Behaves as a ``dict`` in every way (``==`` a plain dict with the same items,
    ``json.dumps``, ``isinstance(x, dict)``); copying it with ``dict(x)`` drops the info.
    """

    __slots__ = ("__weakref__", "_fleetcache_info")

    _fleetcache_info: CacheInfo | None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._fleetcache_info = None

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (dict(self), self._fleetcache_info))


def _rebuild(items: dict[str, Any], info: CacheInfo | None) -> CachedDict:
    d = CachedDict(items)
    d._fleetcache_info = info
    return d


# id(obj) -> (weak reference to obj, info). The weak reference's callback removes the entry
# when obj is collected, before its id can be reused; the lookup also checks identity.
_table: dict[int, tuple[weakref.ref[Any], CacheInfo]] = {}
_lock = threading.Lock()


def _forget(key: int, ref: weakref.ref[Any]) -> None:
    with _lock:
        entry = _table.get(key)
        if entry is not None and entry[0] is ref:
            del _table[key]


def attach(obj: T, info: CacheInfo) -> T:
    """Attach ``info`` to ``obj`` and return the object to hand to the caller.

    A plain ``dict`` comes back as a :class:`CachedDict` copy (shallow) of it; any object
    that supports weak references (pydantic models, ``CachedDict``, most class instances)
    comes back as itself. Attaching again replaces the info. ``TypeError`` for an object
    that is neither (e.g. a ``list`` or a ``str``).
    """
    if not isinstance(info, CacheInfo):
        raise TypeError(f"info must be a CacheInfo, not {type(info).__name__}")
    if type(obj) is CachedDict and isinstance(obj, CachedDict):
        obj._fleetcache_info = info
        return obj
    if type(obj) is dict:
        d = CachedDict(obj)
        d._fleetcache_info = info
        return d  # type: ignore[return-value]  # a dict subclass where a dict was given
    key = id(obj)

    def forget(r: weakref.ref[Any]) -> None:
        _forget(key, r)

    try:
        ref: weakref.ref[Any] = weakref.ref(obj, forget)
    except TypeError:
        raise TypeError(
            f"cannot attach cache info to a {type(obj).__name__}: it is neither a dict "
            "nor weak-referenceable"
        ) from None
    with _lock:
        _table[key] = (ref, info)
    return obj


def cache_info(obj: object) -> CacheInfo | None:
    """The :class:`CacheInfo` of a response fleetcache returned, else ``None``.

    ``hit=True`` for a response served from the cache, ``hit=False`` for one computed by
    the upstream through fleetcache (``get_or_compute_request``, the caching HTTP
    transport). Through the transport: the objects the clients of
    ``integrations.openai.cached``/``anthropic.cached`` build (a ``ChatCompletion``, a
    ``Message``, a ``Stream``, a ``with_raw_response`` wrapper and its ``parse()``), and
    any ``httpx``/``httpx2`` response the transport returned (its ``extensions``).
    """
    if type(obj) is CachedDict:
        return obj._fleetcache_info
    entry = _table.get(id(obj))
    if entry is None or entry[0]() is not obj:
        # an httpx/httpx2 response from the caching transport carries it in its extensions
        ext = getattr(obj, "extensions", None)
        found = ext.get("fleetcache") if isinstance(ext, dict) else None
        return found if isinstance(found, CacheInfo) else None
    return entry[1]
