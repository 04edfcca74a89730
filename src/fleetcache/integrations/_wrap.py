"""What the SDK wrappers (``integrations.openai``, ``integrations.anthropic``) share.

- :class:`WrapOptions`: the wrapper's defaults (TTL, control, lease, ``should_store``) and
  the per-call ``fleetcache={"control": ..., "ttl": ...}`` keyword, popped from the SDK
  call's keyword arguments before anything reaches the upstream.
- :func:`build_request`: the dict that is keyed (the SDK call's keyword arguments without
  the SDK's "not given" sentinels, plus the endpoint tag).
- :class:`Codec`: how one SDK endpoint's objects are keyed, stored and replayed; the
  endpoint itself (``CachedCreate`` and its streams) is in ``_aendpoint.py`` (the asyncio
  source) and ``_endpoint.py`` (sync, generated from it by ``scripts/unasync.py``).
"""

from __future__ import annotations

import inspect
import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Protocol

from ..core.canonical import request_digest
from ..core.info import CacheInfo, cache_info

__all__ = [
    "CONTROLS",
    "ENDPOINT_KEY",
    "Codec",
    "Proxy",
    "WrapOptions",
    "build_request",
    "cache_flavour",
    "digest_for",
    "dump",
    "info_of",
    "log",
    "replayable",
]

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


def replayable(
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
