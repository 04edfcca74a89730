"""OpenTelemetry: one span per cache call, with the namespace, hit or miss, the model, the
digest's first characters and, on hits, the tokens, cost and upstream time the entry
recorded, exported by the SDK's in-memory exporter from calls on a real server."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import httpx2
import pytest

pytest.importorskip("opentelemetry.sdk")

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from fleetcache import AsyncRedisExactCache, LLMResponse, RedisExactCache

from ..support.http_fakes import Upstream
from ..support.sdk_fakes import completion

openai = pytest.importorskip("openai")

PRICES = {"m-priced": (2.5, 10.0)}
USAGE = {"prompt_tokens": 1000, "completion_tokens": 500, "total_tokens": 1500}
FIELDS = ("question", "be brief", "m-priced", 0.0, 256)


@pytest.fixture(scope="module")
def exporter() -> Iterator[InMemorySpanExporter]:
    """The SDK as an application configures it, for this module only (the API's global
    provider is put back afterwards, so other tests run without an SDK)."""
    exp = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exp))
    trace.set_tracer_provider(provider)
    yield exp
    provider.shutdown()
    trace._TRACER_PROVIDER = None  # the API's own tests reset it the same way
    trace._TRACER_PROVIDER_SET_ONCE._done = False


@pytest.fixture
def spans(exporter: InMemorySpanExporter) -> Callable[[], list[Any]]:
    exporter.clear()
    return lambda: [s for s in exporter.get_finished_spans() if s.name.startswith("fleetcache.")]


def test_get_spans_carry_hit_miss_model_digest_and_what_the_hit_saved(
    make_cache: Callable[..., RedisExactCache], spans: Callable[[], list[Any]]
) -> None:
    cache = make_cache(prices=PRICES)
    assert cache.get(*FIELDS) is None
    cache.put(*FIELDS, LLMResponse(content="a", usage=USAGE), upstream_ms=1200)
    assert cache.get(*FIELDS) is not None
    miss, hit = spans()
    assert miss.name == hit.name == "fleetcache.get"
    assert miss.kind == trace.SpanKind.CLIENT
    m, h = dict(miss.attributes), dict(hit.attributes)
    assert m == {
        "fleetcache.namespace": cache.key_prefix,
        "gen_ai.request.model": "m-priced",
        "fleetcache.hit": False,
        "fleetcache.digest": m["fleetcache.digest"],
    }
    assert len(m["fleetcache.digest"]) == 12
    assert h["fleetcache.hit"] is True and h["fleetcache.digest"] == m["fleetcache.digest"]
    assert h["gen_ai.usage.input_tokens"] == 1000
    assert h["gen_ai.usage.output_tokens"] == 500
    assert h["fleetcache.cost_saved_usd"] == 0.0075
    assert h["fleetcache.upstream_ms_saved"] == 1200
    assert "fleetcache.unpriced" not in h


def test_a_hit_without_a_price_is_marked_unpriced(
    make_cache: Callable[..., RedisExactCache], spans: Callable[[], list[Any]]
) -> None:
    cache = make_cache(prices=PRICES)
    fields = ("question", "be brief", "no-price-model-anywhere", 0.0, 256)
    cache.put(*fields, LLMResponse(content="a", usage=USAGE))
    assert cache.get(*fields) is not None
    (hit,) = spans()
    assert hit.attributes["fleetcache.unpriced"] is True
    assert "fleetcache.cost_saved_usd" not in hit.attributes
    assert hit.attributes["gen_ai.usage.input_tokens"] == 1000


def test_get_or_compute_spans_say_computed_then_served(
    make_cache: Callable[..., RedisExactCache], spans: Callable[[], list[Any]]
) -> None:
    cache = make_cache(prices=PRICES)

    def compute() -> LLMResponse:
        return LLMResponse(content="a", usage=USAGE)

    cache.get_or_compute(*FIELDS, compute)
    cache.get_or_compute(*FIELDS, compute)
    names = [s.name for s in spans()]
    assert names == ["fleetcache.get_or_compute", "fleetcache.get_or_compute"]
    first, second = (dict(s.attributes) for s in spans())
    assert first["fleetcache.hit"] is False and second["fleetcache.hit"] is True
    assert second["fleetcache.cost_saved_usd"] == 0.0075
    assert first["fleetcache.digest"] == second["fleetcache.digest"]


def test_whole_request_spans(
    make_cache: Callable[..., RedisExactCache], spans: Callable[[], list[Any]]
) -> None:
    cache = make_cache(prices={"gpt-x": (2.5, 10.0)})
    request = {"model": "gpt-x", "messages": [{"role": "user", "content": "hi"}]}
    answer = {**completion(), "model": "gpt-x", "usage": USAGE}
    assert cache.get_request(request) is None
    cache.get_or_compute_request(request, lambda: answer)
    assert cache.get_request(request) is not None
    got = [(s.name, s.attributes["fleetcache.hit"]) for s in spans()]
    assert got == [
        ("fleetcache.get_request", False),
        ("fleetcache.get_or_compute_request", False),
        ("fleetcache.get_request", True),
    ]
    last = spans()[-1].attributes
    assert last["gen_ai.request.model"] == "gpt-x"
    assert last["gen_ai.usage.output_tokens"] == 500
    assert last["fleetcache.cost_saved_usd"] == 0.0075


def test_the_http_transport_traces_each_lookup(
    make_cache: Callable[..., RedisExactCache], spans: Callable[[], list[Any]]
) -> None:
    from fleetcache.integrations import openai as fc_openai

    cache, up = make_cache(prices={"gpt-4o-mini": (0.15, 0.6)}), Upstream()
    client = fc_openai.cached(
        openai.OpenAI(
            api_key="sk-x", http_client=httpx2.Client(transport=up.mock(httpx2)), max_retries=0
        ),
        cache,
    )
    for _ in range(2):
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "Which city?"}]
        )
    assert up.calls == 1
    miss, hit = spans()
    assert miss.name == hit.name == "fleetcache.http"
    assert (miss.attributes["fleetcache.hit"], hit.attributes["fleetcache.hit"]) == (False, True)
    assert hit.attributes["gen_ai.request.model"] == "gpt-4o-mini"
    assert hit.attributes["gen_ai.usage.input_tokens"] == 11  # the fake's usage
    assert hit.attributes["gen_ai.usage.output_tokens"] == 7
    assert hit.attributes["fleetcache.cost_saved_usd"] == pytest.approx((11 * 150 + 7 * 600) / 1e9)


async def test_async_cache_spans(
    make_async_cache: Callable[..., AsyncRedisExactCache], spans: Callable[[], list[Any]]
) -> None:
    cache = make_async_cache(prices=PRICES)
    await cache.put(*FIELDS, LLMResponse(content="a", usage=USAGE), upstream_ms=5)
    assert await cache.get(*FIELDS) is not None
    (hit,) = spans()
    assert hit.name == "fleetcache.get" and hit.attributes["fleetcache.hit"] is True
    assert hit.attributes["fleetcache.upstream_ms_saved"] == 5


def test_no_span_is_made_without_an_sdk() -> None:
    """With only the API installed and no SDK configured, a call makes no span at all."""
    code = (
        "from fleetcache import _otel\n"
        "from fleetcache.core.ops import Core\n"
        "from fleetcache.core.models import LLMResponse\n"
        "core = Core(key_prefix='p', shards=1, ttl_seconds=None, response_model=LLMResponse,"
        " compress_threshold=None, max_entry_bytes=1 << 20)\n"
        "assert _otel.HIT_HOOK is not None\n"
        "assert _otel.span('get', core, 'm') is _otel.NO_SPAN\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout == "ok\n", out.stderr
