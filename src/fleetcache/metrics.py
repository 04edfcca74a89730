"""Prometheus metrics of a fleetcache namespace, read from Redis at scrape time.

The counters live in Redis and are fleet-wide already, so any one process can expose them:
no multiprocess directory, no summing across pods (sum() over pods would count them N times;
scrape one, or use ``max by (namespace)``). Needs the ``metrics`` extra (``prometheus-client``).

In an app::

    from prometheus_client import REGISTRY
    from fleetcache.metrics import FleetCacheCollector
    REGISTRY.register(FleetCacheCollector(cache))   # cache: a RedisExactCache

or as a sidecar: ``fleetcache metrics --port 9108`` (binds 127.0.0.1 unless ``--host``).

Exposed (label ``namespace``; the per-model ones also ``model``): one counter
``fleetcache_<name>_total`` per entry of ``fleetcache.core.models.COUNTERS``, HELP text from its
description (``hits``, ``misses``, ``tokens_saved``, ``input_tokens_saved``,
``output_tokens_saved``, ``cache_read_tokens_saved``, ``cache_write_tokens_saved``,
``cost_saved_nanousd``, ``ms_saved``, ``unpriced_hits``, ``puts``, ``coalesced``, ...), and:

=================================  =======  =============================================
``fleetcache_cost_saved_usd_total`` counter USD the hits saved (a float of the exact
                                           nano-USD sum; priced when each entry was
                                           written; unknown costs are in
                                           ``fleetcache_unpriced_hits_total``)
``fleetcache_seconds_saved_total`` counter  upstream seconds the hits saved
``fleetcache_model_<x>_total``     counter  per model (label ``model``), for ``<x>`` in
                                           hits, misses, input_tokens_saved,
                                           output_tokens_saved, cache_read_tokens_saved,
                                           cache_write_tokens_saved, cost_saved_nanousd,
                                           ms_saved, unpriced_hits, cost_saved_usd,
                                           seconds_saved
``fleetcache_saved_rate``          gauge    (hits + coalesced) / (hits + misses): gets that
                                           did not reach the upstream (0 with no gets)
``fleetcache_entries``             gauge    live entries now
``fleetcache_bad_counters``        gauge    stored counters that are not integers (skipped),
                                           plus model names escaped (see below)
``fleetcache_up``                  gauge    1 if Redis answered this scrape, else 0
``fleetcache_scrape_seconds``      gauge    time the Redis read of this scrape took (s)
=================================  =======  =============================================

A model name that is not valid UTF-8 (a ``str`` holding a lone surrogate, or bytes another
client wrote into the counters hash) cannot be a Prometheus label as it is: its samples are
served under the name with each lone surrogate escaped (``odd\\ud800name``), summed with any
name that escapes to the same text, and counted in ``fleetcache_bad_counters``. One odd name
never fails the scrape.

The savings are served twice on purpose: ``fleetcache_cost_saved_usd_total`` and
``fleetcache_seconds_saved_total`` for dashboards (USD, s), and the exact integers
``fleetcache_cost_saved_nanousd_total`` and ``fleetcache_ms_saved_total`` they are computed
from (a float loses cents only past 2**53 nano-USD, about $9 M; the integers never do). The
per-model families carry a ``model`` label and a ``_model_`` infix, so ``sum()`` over
``fleetcache_cost_saved_usd_total`` never counts a model twice.

Counters restart from zero after ``clear()`` / ``reset_stats()``; Prometheus' ``rate()``
treats that as a counter reset.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from types import FrameType
from typing import Any, TextIO

from prometheus_client.core import (  # type: ignore[import-not-found, unused-ignore]
    CounterMetricFamily,
    GaugeMetricFamily,
)
from prometheus_client.registry import (  # type: ignore[import-not-found, unused-ignore]
    Collector,
    CollectorRegistry,
)

from ._admin import (
    ADMIN_CONNECT_TIMEOUT,
    ADMIN_TIMEOUT,
    EXIT_OK,
    EXIT_USAGE,
    AdminError,
    connect,
    recorded_layout,
    redact,
)
from ._base import DEFAULT_PREFIX
from ._clients import sync_client_from_url
from ._error_policy import REDIS_FAULTS
from .cache import RedisExactCache
from .core.models import COUNTERS, FleetStats, ModelStats, utf8_label
from .errors import FleetCacheError

__all__ = ["FleetCacheCollector", "serve"]

#: What makes one namespace report ``fleetcache_up 0`` instead of failing the whole scrape.
_SCRAPE_FAULTS: tuple[type[BaseException], ...] = (FleetCacheError, AdminError, *REDIS_FAULTS)


class FleetCacheCollector(Collector):  # type: ignore[misc, unused-ignore]
    """A ``prometheus_client`` collector of one or more namespaces' fleet-wide numbers.

    Give it caches (``RedisExactCache`` objects, e.g. the app's own), or ``url`` and
    ``prefixes``: then it opens each namespace with the shard count recorded in Redis, and
    reports zeros for a namespace nobody has written yet (without creating it). Each scrape
    costs one round trip per namespace (a pipelined script call per shard); if Redis fails,
    that namespace reports ``fleetcache_up 0`` and no other samples.
    """

    def __init__(
        self,
        *caches: RedisExactCache,
        url: str | None = None,
        prefixes: tuple[str, ...] = (),
    ) -> None:
        if not caches and url is None:
            raise ValueError("give RedisExactCache objects, or url= and prefixes=")
        if url is not None and not prefixes:
            prefixes = (DEFAULT_PREFIX,)
        self._caches: dict[str, RedisExactCache | None] = {c.key_prefix: c for c in caches}
        for p in prefixes:
            self._caches.setdefault(p, None)
        self._url = url
        self._client: Any = None
        self._lock = threading.Lock()

    def _stats(self, prefix: str) -> FleetStats:
        cache = self._caches[prefix]
        if cache is None:
            with self._lock:
                if self._client is None:
                    assert self._url is not None
                    self._client = sync_client_from_url(
                        self._url, ADMIN_TIMEOUT, ADMIN_CONNECT_TIMEOUT
                    )
                layout = recorded_layout(self._client, prefix)
                if layout is None:
                    return FleetStats()  # nobody has used the namespace yet
                cache = RedisExactCache(
                    client=self._client,
                    key_prefix=prefix,
                    shards=layout[0],
                    max_entries=layout[1],
                )
                self._caches[prefix] = cache
        return cache.fleet_stats()

    def describe(self) -> Iterator[Any]:
        """No fixed description: the metrics are read from Redis at scrape time."""
        return iter(())

    def collect(self) -> Iterator[Any]:
        """Read every namespace's fleet-wide numbers from Redis and yield the families."""
        counters = {
            c.name: CounterMetricFamily(f"fleetcache_{c.name}", c.description, labels=["namespace"])
            for c in COUNTERS
        }
        usd = CounterMetricFamily(
            "fleetcache_cost_saved_usd",
            "Cost of the responses served from cache, USD (from the exact nano-USD sum), "
            "priced when each entry was written; hits of unknown cost are "
            "fleetcache_unpriced_hits_total.",
            labels=["namespace"],
        )
        seconds = CounterMetricFamily(
            "fleetcache_seconds_saved",
            "Upstream time (s) the responses served from cache took when they were computed.",
            labels=["namespace"],
        )
        per_model_fams = {
            name: CounterMetricFamily(
                f"fleetcache_model_{name}", help_, labels=["namespace", "model"]
            )
            for name, help_ in MODEL_FAMILIES.items()
        }
        saved_rate = GaugeMetricFamily(
            "fleetcache_saved_rate",
            "Fraction of cache gets that did not reach the upstream: (hits + coalesced) / "
            "(hits + misses), 0 with no gets. A coalesced waiter is also one of the misses.",
            labels=["namespace"],
        )
        entries = GaugeMetricFamily(
            "fleetcache_entries", "Live entries in the namespace now.", labels=["namespace"]
        )
        up = GaugeMetricFamily(
            "fleetcache_up", "1 if Redis answered this scrape, else 0.", labels=["namespace"]
        )
        bad = GaugeMetricFamily(
            "fleetcache_bad_counters",
            "Stored counters of the namespace that are not integers (corrupt data written by "
            "another client), skipped in this scrape, plus model names that are not valid "
            "UTF-8, served with their lone surrogates escaped (\\udcff).",
            labels=["namespace"],
        )
        took = GaugeMetricFamily(
            "fleetcache_scrape_seconds",
            "Seconds the Redis read of this scrape took.",
            labels=["namespace"],
        )
        for prefix in list(self._caches):
            t0 = time.perf_counter()
            try:
                fs = self._stats(prefix)
            except _SCRAPE_FAULTS:
                up.add_metric([prefix], 0.0)
                continue
            took.add_metric([prefix], time.perf_counter() - t0)
            up.add_metric([prefix], 1.0)
            for c in COUNTERS:
                counters[c.name].add_metric([prefix], float(max(0, getattr(fs, c.name))))
            entries.add_metric([prefix], float(fs.size))
            saved_rate.add_metric([prefix], fs.saved_rate)
            per_model, escaped = model_labels(fs)
            bad.add_metric([prefix], float(len(fs.bad_counters) + escaped))
            usd.add_metric([prefix], max(0, fs.cost_saved_nanousd) / 1e9)
            seconds.add_metric([prefix], max(0, fs.ms_saved) / 1000)
            for model, m in sorted(per_model.items()):
                for name, fam in per_model_fams.items():
                    fam.add_metric([prefix, model], float(max(0, _model_value(m, name))))
        yield from counters.values()
        yield from (usd, seconds)
        yield from per_model_fams.values()
        yield from (saved_rate, entries, bad, up, took)

    def close(self) -> None:
        """Close the client this collector built from ``url`` (given caches are yours)."""
        if self._client is not None:
            self._client.close()


#: The per-model families, ``fleetcache_model_<name>_total{namespace, model}``: hits,
#: misses, every saving of ``COUNTERS`` counted per model (its exact integer), and the cost
#: in USD and the time in s.
MODEL_FAMILIES: dict[str, str] = {
    "hits": "Cache hits per model name, fleet-wide.",
    "misses": "Cache misses per model name, fleet-wide.",
    **{c.name: f"Per model: {c.description}" for c in COUNTERS if c.per_model},
    "cost_saved_usd": "Per model: cost of the responses served from cache, USD, priced when "
    "each entry was written.",
    "seconds_saved": "Per model: upstream time (s) the responses served from cache took.",
}


def _model_value(m: ModelStats, name: str) -> float:
    if name == "cost_saved_usd":
        return m.cost_saved_nanousd / 1e9
    if name == "seconds_saved":
        return m.ms_saved / 1000
    return float(getattr(m, name))


def model_labels(fs: FleetStats) -> tuple[dict[str, ModelStats], int]:
    """``({label: ModelStats}, escaped)``: the per-model numbers of ``fs`` keyed by a label
    that is valid UTF-8 (``utf8_label``; names that escape to the same text are summed),
    and how many names needed escaping."""
    out: dict[str, ModelStats] = {}
    escaped = 0
    for model, m in fs.by_model.items():
        label = utf8_label(model)
        escaped += label != model
        have = out.get(label)
        if have is None:
            out[label] = m.model_copy()
            continue
        for field in ModelStats.model_fields:
            setattr(have, field, getattr(have, field) + getattr(m, field))
    return out, escaped


def serve(
    *,
    url: str,
    prefix: str = DEFAULT_PREFIX,
    host: str = "127.0.0.1",
    port: int = 9108,
    out: TextIO,
    stop: threading.Event | None = None,
) -> int:
    """Serve ``/metrics`` for ``prefix`` on ``host:port`` until Ctrl-C, SIGTERM or ``stop``.

    ``port`` 0 picks a free port (printed). Checks that Redis answers first, so a wrong URL
    or password is an error at start rather than ``fleetcache_up 0`` forever.
    """
    from prometheus_client.exposition import (  # type: ignore[import-not-found, unused-ignore]
        start_http_server,
    )

    if not 0 <= port <= 65535:
        raise AdminError(f"--port must be 0..65535, not {port}", EXIT_USAGE)
    connect(url).close()
    registry = CollectorRegistry()
    collector = FleetCacheCollector(url=url, prefixes=(prefix,))
    registry.register(collector)
    try:
        server, thread = start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        raise AdminError(f"cannot listen on {host}:{port}: {exc}") from exc
    bound = server.server_port
    out.write(
        f"serving fleet-wide metrics of namespace {prefix!r} on {redact(url)} at "
        f"http://{host}:{bound}/metrics (Ctrl-C stops)\n"
    )
    out.flush()
    done = stop or threading.Event()

    def _term(signum: int, frame: FrameType | None) -> None:
        done.set()

    in_main = threading.current_thread() is threading.main_thread()
    old = signal.signal(signal.SIGTERM, _term) if in_main else None
    try:
        while not done.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        if in_main:
            signal.signal(signal.SIGTERM, old)
        server.shutdown()
        server.server_close()
        thread.join(5)
        collector.close()
    return EXIT_OK
