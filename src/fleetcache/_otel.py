"""OpenTelemetry spans of cache calls (the ``otel`` extra: ``opentelemetry-api`` only).

Each data call of a cache (``get``, ``get_request``, ``get_or_compute``,
``get_or_compute_request``, and the caching HTTP transport's lookups) is one span,
``fleetcache.<call>``, of kind ``CLIENT``, with these attributes:

=================================  =======================================================
``gen_ai.request.model``           the request's model name (when the call has one)
``fleetcache.namespace``           the cache's ``key_prefix``
``fleetcache.hit``                 ``True`` when the answer came from the cache
``fleetcache.digest``              the first 12 hex characters of the request's digest
                                   (the key of its entry; on a miss only when known)
``gen_ai.usage.input_tokens``      on a hit: input tokens of the stored answer (uncached,
                                   cache read and cache write added up)
``gen_ai.usage.output_tokens``     on a hit: output tokens of the stored answer
``fleetcache.cache_read_tokens``   on a hit: provider cache-read input tokens
``fleetcache.cache_write_tokens``  on a hit: provider cache-write input tokens
``fleetcache.cost_saved_usd``      on a hit whose cost is known: the answer's cost in USD,
                                   priced when it was written
``fleetcache.unpriced``            on a hit whose cost is unknown: ``True``
``fleetcache.upstream_ms_saved``   on a hit: the upstream time (ms) the answer took
=================================  =======================================================

The ``gen_ai.*`` names are the OpenTelemetry GenAI semantic conventions'; the rest have no
convention and live under ``fleetcache.*``. An entry written before usage was recorded has
no usage attributes.

No SDK, no cost: while the global tracer provider is the API's default (no SDK
configured), a call checks that once and runs without a span; without
``opentelemetry-api`` installed nothing here is imported at all. The pure core knows
nothing of this module: it calls the plain ``Core.on_hit`` hook this module sets.
"""

from __future__ import annotations

import contextvars
import os
from typing import Any

from .core.envelope import header_meta
from .core.ops import Core
from .core.request_ops import request_key

try:
    from opentelemetry import trace as _trace
    from opentelemetry.trace import ProxyTracerProvider, SpanKind
except ImportError:  # the otel extra is not installed
    _trace = None  # type: ignore[assignment, unused-ignore]

#: The first characters of the digest a span carries (12 hex = 48 bits: unique enough to
#: find an entry, short enough for a trace view).
DIGEST_CHARS = 12

#: The span of the cache call running in this context (set only while a span records).
_CURRENT: contextvars.ContextVar[Traced | None] = contextvars.ContextVar(
    "fleetcache_otel_span", default=None
)


class Traced:
    """One cache call's span, current while the call runs (a context manager)."""

    __slots__ = ("_cm", "_token", "core", "hit", "span")

    def __init__(self, span: Any, core: Core) -> None:
        self.span = span
        self.core = core
        self.hit = False
        self._cm: Any = None
        self._token: contextvars.Token[Traced | None] | None = None

    def __enter__(self) -> Traced:
        assert _trace is not None
        self._cm = _trace.use_span(self.span, end_on_exit=True)
        self._cm.__enter__()
        self._token = _CURRENT.set(self)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._token is not None:
            _CURRENT.reset(self._token)
        self._cm.__exit__(*exc)

    def done(
        self,
        hit: bool,
        *,
        digest: str | None = None,
        fields: tuple[Any, ...] | None = None,
        request: Any = None,
    ) -> None:
        """Record how the call ended: ``hit`` (served from the cache), and on a miss the
        request's digest: ``digest``, else the one of the five ``fields``, else of the
        whole ``request`` (computed only here, while a span records)."""
        self.span.set_attribute("fleetcache.hit", bool(hit or self.hit))
        if self.hit:
            return  # the hit hook set the digest
        try:
            if digest is None and fields is not None:
                digest = self.core.request(fields)[1]
            elif digest is None and request is not None:
                digest = request_key(self.core, request).digest
        except (TypeError, ValueError):  # the call itself refused the request
            return
        if digest is not None:
            self.span.set_attribute("fleetcache.digest", digest[:DIGEST_CHARS])

    def record_hit(self, digest: str, raw: bytes) -> None:
        """The entry bytes of a hit: its digest, tokens, cost and upstream time."""
        self.hit = True
        span = self.span
        span.set_attribute("fleetcache.digest", digest[:DIGEST_CHARS])
        meta = header_meta(raw)
        if meta is None:
            return
        usage = meta.usage
        if usage is not None:
            span.set_attribute(
                "gen_ai.usage.input_tokens", usage.input + usage.cache_read + usage.cache_write
            )
            span.set_attribute("gen_ai.usage.output_tokens", usage.output)
            span.set_attribute("fleetcache.cache_read_tokens", usage.cache_read)
            span.set_attribute("fleetcache.cache_write_tokens", usage.cache_write)
        if meta.cost_nanousd is None:
            span.set_attribute("fleetcache.unpriced", True)
        else:
            span.set_attribute("fleetcache.cost_saved_usd", meta.cost_nanousd / 1e9)
        span.set_attribute("fleetcache.upstream_ms_saved", meta.upstream_ms)


class _NoSpan:
    """What ``span`` returns when no SDK is configured: does nothing, costs nothing."""

    __slots__ = ()

    def __enter__(self) -> _NoSpan:
        return self

    def __exit__(self, *exc: Any) -> None:
        return None

    def done(
        self,
        hit: bool,
        *,
        digest: str | None = None,
        fields: tuple[Any, ...] | None = None,
        request: Any = None,
    ) -> None:
        return None


NO_SPAN = _NoSpan()
_UNKNOWN = object()
#: Read the API's global provider directly unless the environment names a provider class
#: (then only ``get_tracer_provider()`` loads it).
_FAST = "OTEL_PYTHON_TRACER_PROVIDER" not in os.environ
#: The tracer of the last provider seen (a provider set later gets its own).
_tracer: list[Any] = [None, None]


def model_of(request: object) -> object:
    """The ``model`` of a whole request (a ``Mapping``), else ``None``."""
    get = getattr(request, "get", None)
    return get("model") if get is not None else None


def span(call: str, core: Core, model: object = None) -> Traced | _NoSpan:
    """The span of one cache call named ``fleetcache.<call>``, or ``NO_SPAN`` when
    ``opentelemetry-api`` is missing or no SDK is configured (the global tracer provider
    is still the API's default). Use it as a context manager, then ``.done(hit, digest)``."""
    if _trace is None:
        return NO_SPAN
    # fast path: the API's global before any SDK is set is None (reading it is ~50 ns;
    # get_tracer_provider() looks up an environment variable first, ~1-5 us)
    provider: Any = getattr(_trace, "_TRACER_PROVIDER", _UNKNOWN) if _FAST else _UNKNOWN
    if provider is None:
        return NO_SPAN
    if provider is _UNKNOWN:
        provider = _trace.get_tracer_provider()
    if isinstance(provider, ProxyTracerProvider):
        return NO_SPAN
    if _tracer[0] is not provider:
        _tracer[:] = [provider, provider.get_tracer("fleetcache")]
    tracer = _tracer[1]
    s = tracer.start_span(f"fleetcache.{call}", kind=SpanKind.CLIENT)
    if not s.is_recording():
        return NO_SPAN
    s.set_attribute("fleetcache.namespace", core.keys.prefix)
    if model is not None and model != b"":
        name = model.decode("utf-8", "replace") if isinstance(model, bytes) else str(model)
        s.set_attribute("gen_ai.request.model", name)
    return Traced(s, core)


def on_hit(digest: str, raw: bytes) -> None:
    """``Core.on_hit``: a hit's entry bytes, recorded on the current cache call's span (if
    one records)."""
    traced = _CURRENT.get()
    if traced is not None:
        traced.record_hit(digest, raw)


#: The hook the facades give their ``Core`` (``None`` without the otel extra: no call at
#: all on a hit).
HIT_HOOK = None if _trace is None else on_hit
