"""The whole-request path on real servers, through both the sync and the async cache:
``get_request``/``put_request``/``invalidate_request``/``get_or_compute_request`` share the
namespace, counters, envelope header and single-flight with the five-field path; controls;
``cache_info``; ``should_store`` and the ``not_stored`` counter; corrupt entries; Redis down;
two processes sharing hits."""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, cast

import pytest
from pydantic import BaseModel, ConfigDict

from fleetcache import (
    AsyncRedisExactCache,
    CacheInfo,
    CacheUnavailableError,
    FleetStats,
    RedisExactCache,
    cache_info,
    request_digest,
)
from fleetcache.core.envelope import FLAG_JSON, HEADER, MAGIC, VERSION

from ..support.flavors import CacheFactory, Flavor, req, response
from ..support.servers import free_port

ROOT = Path(__file__).resolve().parents[2]

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]


def request(i: int | str = 0, **extra: Any) -> dict[str, Any]:
    return {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": f"question {i}"},
        ],
        "tools": TOOLS,
        "temperature": 0.2,
        **extra,
    }


def completion(text: str = "hello", finish: str = "stop", tokens: int = 30) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "gpt-4o-mini",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": finish,
            }
        ],
        "usage": {"prompt_tokens": tokens - 10, "completion_tokens": 10, "total_tokens": tokens},
    }


def message(text: str = "hi", stop: str = "end_turn") -> dict[str, Any]:
    """An Anthropic Messages API response."""
    return {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-x",
        "content": [{"type": "text", "text": text}],
        "stop_reason": stop,
        "usage": {"input_tokens": 12, "output_tokens": 8},
    }


def make_compute(flavor: Flavor, value: Any, delay: float = 0.0) -> Any:
    """A compute of the flavour's kind returning ``value`` (called: ``.calls``)."""
    lock = threading.Lock()
    calls: list[int] = []

    def count() -> None:
        with lock:
            calls.append(1)

    if flavor.is_async:

        async def acompute() -> Any:
            count()
            await asyncio.sleep(delay)
            return value() if callable(value) else value

        acompute.calls = calls  # type: ignore[attr-defined]
        return acompute

    def compute() -> Any:
        count()
        time.sleep(delay)
        return value() if callable(value) else value

    compute.calls = calls  # type: ignore[attr-defined]
    return compute


def keys(c: Flavor, req_: dict[str, Any]) -> tuple[str, str, str, str]:
    """(entry, index, stats, lease) keys of a whole request in ``c``'s namespace."""
    core = c.cache._core
    d = request_digest(req_, ignore=core.ignore)
    sh = core.keys.shard_of(d)
    return (*core.keys.entry_keys(sh, d), core.keys.lease(sh, d))


def counts(fs: FleetStats) -> tuple[int, int, int, int]:
    return fs.hits, fs.misses, fs.puts, fs.not_stored


# -- round trip, info, counters --------------------------------------------------------------


async def test_put_then_get_round_trip_with_cache_info(cache: Flavor) -> None:
    rq = request()
    assert await cache.get_request(rq) is None
    await cache.put_request(rq, completion())
    t0 = time.time()
    got = await cache.get_request(rq)
    assert got == completion() and isinstance(got, dict)
    info = cache_info(got)
    assert isinstance(info, CacheInfo) and info.hit is True
    assert info.digest == request_digest(rq)
    assert info.age_seconds is not None and 0 <= info.age_seconds < time.time() - t0 + 5
    fs = await cache.fleet_stats()
    assert counts(fs) == (1, 1, 1, 0) and fs.size == 1
    assert fs.tokens_saved == 30
    assert (fs.by_model["gpt-4o-mini"].hits, fs.by_model["gpt-4o-mini"].misses) == (1, 1)


async def test_age_grows(cache: Flavor) -> None:
    await cache.put_request(request(), completion())
    await asyncio.sleep(0.3)
    info = cache_info(await cache.get_request(request()))
    assert info is not None and 0.25 <= info.age_seconds <= 5  # type: ignore[operator]


async def test_anthropic_tokens_and_pydantic_responses(cache: Flavor) -> None:
    await cache.put_request(request("a"), message())
    assert await cache.get_request(request("a")) == message()
    assert (await cache.fleet_stats()).tokens_saved == 20  # input_tokens + output_tokens

    class Usage(BaseModel):
        total_tokens: int

    class Completion(BaseModel):
        model_config = ConfigDict(extra="allow", populate_by_name=True)
        id: str
        object_: str = "chat.completion"
        choices: list[dict[str, Any]]
        usage: Usage | None = None
        system_fingerprint: str | None = None

    model = Completion(id="x", choices=completion()["choices"], usage=Usage(total_tokens=5))
    await cache.put_request(request("m"), model)
    # JSON mode, only the fields it was built with (unset defaults are not stored)
    assert await cache.get_request(request("m")) == {
        "id": "x",
        "choices": completion()["choices"],
        "usage": {"total_tokens": 5},
    }


async def test_ignored_fields_share_an_entry_and_ignore_overrides(
    cache_factory: CacheFactory,
) -> None:
    c = cache_factory()
    await c.put_request(request(), completion("shared"))
    noisy = request(stream=True, user="u-7", metadata={"trace": "1"}, timeout=30)
    assert await c.get_request(noisy) == completion("shared")
    strict = cache_factory(ignore=())
    assert strict.cache.ignore == frozenset()
    assert await strict.get_request(noisy) is None
    seedless = cache_factory(ignore={"seed"})
    await seedless.put_request(request(seed=1), completion("any seed"))
    assert await seedless.get_request(request(seed=2)) == completion("any seed")
    assert await c.get_request(request(seed=2)) is None


async def test_keyed_fields_separate_entries(cache: Flavor) -> None:
    await cache.put_request(request(), completion("base"))
    for other in (
        request(tool_choice="required"),
        request(response_format={"type": "json_object"}),
        request(seed=3),
        request(temperature=0.3),
        {**request(), "tools": []},
        {**request(), "messages": request()["messages"][::-1]},
    ):
        assert await cache.get_request(other) is None
    assert await cache.get_request(request(temperature=0.2)) == completion("base")


async def test_shares_namespace_and_counters_with_five_field_path(cache: Flavor) -> None:
    five = req("same")
    await cache.put(*five, response("five"))
    as_request = {
        "user_message": five[0],
        "system_prompt": five[1],
        "model": five[2],
        "temperature": five[3],
        "max_tokens": five[4],
    }
    assert await cache.get_request(as_request) is None  # separate key domains
    await cache.put_request(as_request, completion("whole"))
    assert await cache.get(*five) == response("five")
    assert await cache.get_request(as_request) == completion("whole")
    fs = await cache.fleet_stats()
    assert fs.size == 2 and fs.puts == 2 and fs.hits == 2 and fs.misses == 1
    assert await cache.invalidate_request(as_request) is True
    assert await cache.invalidate_request(as_request) is False
    assert await cache.get(*five) == response("five")
    assert (await cache.fleet_stats()).invalidations == 1
    await cache.clear()
    assert await cache.size() == 0


async def test_per_call_ttl(cache_factory: CacheFactory, r: Any) -> None:
    c = cache_factory(ttl_seconds=100)
    await c.put_request(request(1), completion())
    await c.put_request(request(2), completion(), ttl_seconds=0.3)
    assert 90_000 < r.pttl(keys(c, request(1))[0]) <= 100_000
    assert 0 < r.pttl(keys(c, request(2))[0]) <= 300
    await asyncio.sleep(0.4)
    assert await c.get_request(request(2)) is None
    assert (await c.fleet_stats()).expired == 1
    with pytest.raises(ValueError, match="ttl_seconds"):
        await c.put_request(request(3), completion(), ttl_seconds=0)


# -- controls --------------------------------------------------------------------------------


async def test_controls_on_get_and_put(cache: Flavor) -> None:
    rq = request("ctl")
    await cache.put_request(rq, completion("v1"), control="no-store")
    await cache.put_request(rq, completion("v1"), control="bypass")
    assert counts(await cache.fleet_stats()) == (0, 0, 0, 0)  # nothing touched
    await cache.put_request(rq, completion("v1"), control="no-cache")  # stores
    assert await cache.get_request(rq, control="no-cache") is None  # read skipped
    assert await cache.get_request(rq, control="bypass") is None
    assert counts(await cache.fleet_stats()) == (0, 0, 1, 0)  # skipped reads count nothing
    assert await cache.get_request(rq, control="no-store") == completion("v1")
    assert await cache.get_request(rq) == completion("v1")
    assert counts(await cache.fleet_stats()) == (2, 0, 1, 0)


async def test_bad_control_is_a_value_error_before_any_io(cache_factory: CacheFactory) -> None:
    c = cache_factory(url=f"redis://127.0.0.1:{free_port()}/0", on_error="raise")
    compute = make_compute(c, completion())
    for call in (
        c.get_request(request(), control="refresh"),
        c.put_request(request(), completion(), control="NO-CACHE"),
        c.get_or_compute_request(request(), compute, control=None),
    ):
        with pytest.raises(ValueError, match="control must be one of"):
            await call
    assert compute.calls == []


async def test_get_or_compute_request_controls(cache: Flavor, r: Any) -> None:
    rq = request("goc")
    first = make_compute(cache, completion("first"))
    got = await cache.get_or_compute_request(rq, first, ttl_seconds=50)
    assert got == completion("first") and cache_info(got) == CacheInfo(
        False, None, request_digest(rq)
    )
    assert 0 < r.pttl(keys(cache, rq)[0]) <= 50_000
    assert not r.exists(keys(cache, rq)[3])  # lease released with the put
    again = await cache.get_or_compute_request(rq, first)
    assert again == completion("first") and cache_info(again).hit is True  # type: ignore[union-attr]
    assert len(first.calls) == 1

    fresh = make_compute(cache, completion("fresh"))
    got = await cache.get_or_compute_request(rq, fresh, control="no-cache")
    assert got == completion("fresh") and cache_info(got).hit is False  # type: ignore[union-attr]
    assert await cache.get_request(rq) == completion("fresh")  # refreshed

    nostore = make_compute(cache, completion("never stored"))
    assert await cache.get_or_compute_request(rq, nostore, control="no-store") == completion(
        "fresh"
    )
    other = request("goc-2")
    assert await cache.get_or_compute_request(other, nostore, control="no-store") == completion(
        "never stored"
    )
    assert await cache.get_request(other) is None

    bypass = make_compute(cache, completion("bypassed"))
    before = counts(await cache.fleet_stats())
    got = await cache.get_or_compute_request(rq, bypass, control="bypass")
    assert got == completion("bypassed") and cache_info(got).hit is False  # type: ignore[union-attr]
    assert counts(await cache.fleet_stats()) == before
    assert len(nostore.calls) == 1 and len(bypass.calls) == 1


async def test_computed_models_carry_info_and_come_back_as_given(cache: Flavor) -> None:
    class Msg(BaseModel):
        model_config = ConfigDict(extra="allow")
        type: str
        content: list[dict[str, Any]]
        stop_reason: str

    m = Msg(**message("model"))
    got = await cache.get_or_compute_request(request("model"), make_compute(cache, m))
    assert got is m and cache_info(m) == CacheInfo(False, None, request_digest(request("model")))
    hit = await cache.get_or_compute_request(request("model"), make_compute(cache, m))
    assert hit == m.model_dump(mode="json", exclude_unset=True) and cache_info(hit).hit  # type: ignore[union-attr]


class _Msg(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: str
    content: list[dict[str, Any]]
    stop_reason: str


class _Box:
    """A caller's own (non-pydantic) response type, built from the stored dict."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data


async def test_model_makes_hits_the_type_compute_returns(cache: Flavor) -> None:
    rq = request("typed")
    m = _Msg(**message("typed"))
    compute = make_compute(cache, m)
    miss = await cache.get_or_compute_request(rq, compute, model=_Msg)
    hit = await cache.get_or_compute_request(rq, compute, model=_Msg)
    assert miss is m and type(hit) is type(miss) is _Msg and hit == m
    assert cache_info(miss) == CacheInfo(False, None, request_digest(rq))
    assert cache_info(hit).hit is True  # type: ignore[union-attr]
    assert len(compute.calls) == 1
    got = await cache.get_request(rq, model=_Msg)
    assert type(got) is _Msg and got == m and cache_info(got).hit is True  # type: ignore[union-attr]
    assert await cache.get_request(request("typed, absent"), model=_Msg) is None
    # no-store / bypass paths return the same type too
    stored = await cache.get_or_compute_request(rq, compute, model=_Msg, control="no-store")
    assert type(stored) is _Msg and cache_info(stored).hit is True  # type: ignore[union-attr]
    fresh = await cache.get_or_compute_request(rq, compute, model=_Msg, control="bypass")
    assert fresh is m and len(compute.calls) == 2


async def test_model_class_rebuilds_a_computed_dict_too(cache: Flavor) -> None:
    rq = request("typed dict")
    compute = make_compute(cache, message("dict"))
    miss = await cache.get_or_compute_request(rq, compute, model=_Msg)
    hit = await cache.get_or_compute_request(rq, compute, model=_Msg)
    assert type(miss) is type(hit) is _Msg and miss == hit
    assert cache_info(miss).hit is False and cache_info(hit).hit is True  # type: ignore[union-attr]


async def test_model_callable_builds_both_hits_and_misses(cache: Flavor) -> None:
    rq = request("boxed")
    compute = make_compute(cache, completion("boxed"))
    miss = await cache.get_or_compute_request(rq, compute, model=_Box)
    hit = await cache.get_or_compute_request(rq, compute, model=_Box)
    assert type(miss) is type(hit) is _Box and miss.data == hit.data == completion("boxed")
    assert cache_info(miss).hit is False and cache_info(hit).hit is True  # type: ignore[union-attr]
    with pytest.raises(TypeError, match="model must be"):
        await cache.get_request(rq, model="ChatCompletion")
    with pytest.raises(TypeError, match="model must be"):
        await cache.get_or_compute_request(rq, compute, model=3)
    assert len(compute.calls) == 1


# -- should_store / not_stored ---------------------------------------------------------------

REFUSED = {
    "length": completion(finish="length"),
    "content_filter": completion(finish="content_filter"),
    "no choices": {**completion(), "choices": []},
    "no content": completion(text=""),
    "error": {"error": {"message": "rate limited", "type": "rate_limit"}},
    "anthropic error": {"type": "error", "error": {"type": "overloaded_error"}},
    "max_tokens": message(stop="max_tokens"),
    "refusal": message(stop="refusal"),
    "no blocks": {**message(), "content": []},
    "nothing": {"id": "x"},
}


@pytest.mark.parametrize("case", sorted(REFUSED))
async def test_default_should_store_refuses(cache: Flavor, case: str) -> None:
    await cache.put_request(request(case), REFUSED[case])
    assert await cache.get_request(request(case)) is None
    fs = await cache.fleet_stats()
    assert (fs.puts, fs.not_stored, fs.size) == (0, 1, 0)


async def test_default_should_store_keeps_good_answers(cache: Flavor) -> None:
    tool_call = completion(text="")
    tool_call["choices"][0]["message"]["tool_calls"] = [
        {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    ]
    tool_call["choices"][0]["finish_reason"] = "tool_calls"
    good = [completion(), tool_call, message(), {"object": "list", "data": [{"embedding": [0.1]}]}]
    for i, g in enumerate(good):
        await cache.put_request(request(f"good{i}"), g)
        assert await cache.get_request(request(f"good{i}")) == g
    assert (await cache.fleet_stats()).not_stored == 0


async def test_should_store_overrides(cache_factory: CacheFactory) -> None:
    keep_all = cache_factory(should_store=lambda data: True)
    await keep_all.put_request(request("len"), completion(finish="length"))
    assert await keep_all.get_request(request("len")) == completion(finish="length")
    only_long = cache_factory(
        should_store=lambda data: len(data["choices"][0]["message"]["content"]) > 3
    )
    await only_long.put_request(request("s"), completion("hi"))
    await only_long.put_request(request("l"), completion("hello"))
    assert await only_long.get_request(request("s")) is None
    assert await only_long.get_request(request("l")) == completion("hello")
    # per call beats the cache's rule
    await only_long.put_request(request("s"), completion("hi"), should_store=lambda d: True)
    assert await only_long.get_request(request("s")) == completion("hi")
    assert (await only_long.fleet_stats()).not_stored == 1
    with pytest.raises(TypeError, match="should_store"):
        cache_factory.raw_cache(should_store="yes")


async def test_refused_compute_releases_the_lease_and_counts(cache: Flavor, r: Any) -> None:
    rq = request("refused")
    compute = make_compute(cache, completion(finish="length"))
    got = await cache.get_or_compute_request(rq, compute)
    assert got == completion(finish="length") and cache_info(got).hit is False  # type: ignore[union-attr]
    assert not r.exists(keys(cache, rq)[3])
    fs = await cache.fleet_stats()
    assert (fs.misses, fs.puts, fs.not_stored, fs.size) == (1, 0, 1, 0)
    await cache.get_or_compute_request(rq, compute)  # not stored: computed again
    assert len(compute.calls) == 2
    kept = await cache.get_or_compute_request(
        request("kept"),
        make_compute(cache, completion(finish="length")),
        should_store=lambda d: True,
    )
    assert await cache.get_request(request("kept")) == kept


def _failing_rule(kind: type[Exception]) -> Any:
    """A should_store rule that fails the way real rules do (``.strip()`` on a tool-call
    answer whose content is None raises AttributeError, a missing key KeyError, ...)."""

    def rule(data: dict[str, Any]) -> bool:
        raise kind("the rule failed")

    return rule


RULE_ERRORS = [KeyError, AttributeError, ValueError, TypeError, RuntimeError, ZeroDivisionError]


@pytest.mark.parametrize("on_error", ["miss", "raise"])
@pytest.mark.parametrize("kind", RULE_ERRORS, ids=lambda k: k.__name__)
async def test_a_failing_should_store_rule_is_a_counted_logged_skip(
    cache_factory: CacheFactory,
    r: Any,
    caplog: pytest.LogCaptureFixture,
    kind: type[Exception],
    on_error: str,
) -> None:
    """Whatever a should_store rule raises, the caller gets the computed answer (single
    flight, the "no-cache" refresh, put_request, the cache's own rule); nothing is stored,
    the lease is freed, each refusal is counted not_stored and logged."""
    cache = cache_factory(on_error=on_error, should_store=_failing_rule(kind))
    with caplog.at_level(logging.WARNING, logger="fleetcache"):
        rq = request(f"rule-{kind.__name__}")
        compute = make_compute(cache, completion())
        got = await cache.get_or_compute_request(rq, compute, should_store=_failing_rule(kind))
        assert got == completion() and cache_info(got).hit is False  # type: ignore[union-attr]
        assert not r.exists(keys(cache, rq)[3]) and not r.exists(keys(cache, rq)[0])
        # the cache's own rule (no per-call rule), with a refresh and a plain put too
        assert await cache.get_or_compute_request(rq, compute) == completion()
        assert await cache.get_or_compute_request(rq, compute, control="no-cache") == completion()
        await cache.put_request(rq, completion())
    assert len(compute.calls) == 3
    assert await cache.get_request(rq) is None
    fs = await cache.fleet_stats()
    assert (fs.puts, fs.not_stored, fs.size) == (0, 4, 0)
    logged = [rec for rec in caplog.records if "should_store rule raised" in rec.getMessage()]
    assert len(logged) == 4 and kind.__name__ in logged[0].getMessage()


async def test_compute_returning_garbage_is_returned_not_stored(cache: Flavor, r: Any) -> None:
    """A paid-for answer reaches the caller even when it cannot be stored:
    a logged skip, no entry; waiters are told to compute at once (the uncacheable marker)."""
    rq = request("garbage")
    answer = ["not", "a", "response"]
    got = await cache.get_or_compute_request(rq, make_compute(cache, answer))
    assert got == answer
    assert not r.exists(keys(cache, rq)[0])
    assert r.pttl(keys(cache, rq)[3]) <= 2000  # the short marker, not the 30 s lease
    with pytest.raises(TypeError, match=r"^choices\[0\]\.message\.content: bytes"):
        await cache.put_request(rq, {"choices": [{"message": {"content": b"x"}}]})


def deep_answer(levels: int = 3000) -> dict[str, Any]:
    """A chat completion whose tool-call arguments hold a list nested ``levels`` deep."""
    deep: Any = "x"
    for _ in range(levels):
        deep = [deep]
    answer = completion()
    answer["choices"][0]["message"]["parsed"] = deep
    return answer


async def test_an_answer_nested_too_deeply_is_returned_not_stored(
    cache_factory: CacheFactory, r: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """An answer nested 3,000 levels deep: get_or_compute_request returns it (a logged skip,
    waiters told to compute at once), put_request skips it with "miss" and raises a
    ValueError (not a RecursionError) with "raise"."""
    answer = deep_answer()
    cache = cache_factory()
    strict = cache_factory(on_error="raise")
    with caplog.at_level(logging.WARNING, logger="fleetcache"):
        rq = request("deep")
        got = await cache.get_or_compute_request(rq, make_compute(cache, answer))
        assert got is answer or got == answer
        assert not r.exists(keys(cache, rq)[0])
        assert r.pttl(keys(cache, rq)[3]) <= 2000  # the short marker, not the 30 s lease
        got = await strict.get_or_compute_request(
            request("deep2"), make_compute(strict, answer), control="no-cache"
        )
        assert got is answer or got == answer
        await cache.put_request(request("deep3"), answer)
    assert sum("nested too deeply" in rec.getMessage() for rec in caplog.records) == 3
    with pytest.raises(ValueError, match="nested too deeply") as info:
        await strict.put_request(request("deep3"), answer)
    assert not isinstance(info.value, RecursionError)
    assert (await cache.fleet_stats()).size == 0


async def test_a_request_nested_too_deeply_is_a_clear_value_error(cache: Flavor) -> None:
    deep: Any = {"k": "x"}
    for _ in range(3000):
        deep = {"k": deep}
    with pytest.raises(ValueError, match="request is nested too deeply to canonicalise"):
        await cache.get_request(request("deep", tool_choice=deep))
    with pytest.raises(ValueError, match="request is nested too deeply to canonicalise"):
        await cache.get_or_compute_request(
            request("deep", tool_choice=deep), make_compute(cache, completion())
        )


BIG = [2**64, -(2**64) - 1, 10**30, -(10**30), 2**64 - 1, 10**5000, -(7**3000)]


@pytest.mark.parametrize("on_error", ["miss", "raise"])
async def test_integers_beyond_64_bits_are_stored_exactly(
    cache_factory: CacheFactory, on_error: str
) -> None:
    """Integers beyond msgpack's 64 bits in a response are stored and read back exactly on
    the request path, as the five-field path stores them."""
    cache = cache_factory(on_error=on_error)
    answer = completion()
    answer["choices"][0]["message"]["parsed"] = {"ints": BIG, "seed": 10**40}
    await cache.put_request(request("big"), answer)
    got = await cache.get_request(request("big"))
    assert got == answer
    assert got["choices"][0]["message"]["parsed"]["ints"] == BIG
    # single-flight stores it too, and a second call is a hit with the same integers
    computed = await cache.get_or_compute_request(request("big2"), make_compute(cache, answer))
    hit = await cache.get_or_compute_request(request("big2"), make_compute(cache, completion()))
    assert computed == hit == answer and cache_info(hit).hit  # type: ignore[union-attr]
    # the five-field path keeps the same integers
    fields = ("u", "s", "m", 0.0, 1)
    await cache.put(*fields, response(0).model_copy(update={"raw": {"ints": BIG}}))
    assert (await cache.get(*fields)).raw == {"ints": BIG}
    fs = await cache.fleet_stats()
    assert (fs.puts, fs.size) == (3, 3)


# -- single-flight ---------------------------------------------------------------------------


async def test_crowd_computes_once(cache_factory: CacheFactory) -> None:
    caches = [cache_factory(socket_timeout=5, connect_timeout=5) for _ in range(4)]
    for c in caches:
        await c.size()
    rq = request("crowd")
    compute = make_compute(caches[0], completion("once"), delay=0.4)
    if caches[0].is_async:
        n = 50
        results = await asyncio.gather(
            *(caches[i % 4].cache.get_or_compute_request(rq, compute) for i in range(n))
        )
    else:
        n = 12
        with ThreadPoolExecutor(n) as pool:
            results = list(
                pool.map(
                    lambda i: caches[i % 4].cache.get_or_compute_request(rq, compute), range(n)
                )
            )
    assert len(compute.calls) == 1
    assert all(res == completion("once") for res in results)
    infos = [cache_info(res) for res in results]
    assert sum(1 for i in infos if i is not None and not i.hit) == 1
    assert sum(1 for i in infos if i is not None and i.hit) == n - 1
    fs = await caches[0].fleet_stats()
    assert fs.puts == 1 and fs.coalesced + fs.hits == n - 1


async def test_cache_info_is_per_response_across_tasks(cache: Flavor) -> None:
    for i in range(0, 20, 2):
        await cache.put_request(request(i), completion(f"a{i}"))
    if cache.is_async:
        acache = cast(AsyncRedisExactCache, cache.cache)
        results = await asyncio.gather(*(acache.get_request(request(i)) for i in range(20)))
    else:
        scache = cast(RedisExactCache, cache.cache)
        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(lambda i: scache.get_request(request(i)), range(20)))
    for i, res in enumerate(results):
        if i % 2:
            assert res is None
        else:
            info = cache_info(res)
            assert info is not None and info.hit and info.digest == request_digest(request(i))


# -- corrupt entries, bad input, Redis down ---------------------------------------------------


async def test_corrupt_and_foreign_entries_are_counted_misses(cache: Flavor, r: Any) -> None:
    rq = request("corrupt")
    entry = keys(cache, rq)[0]
    await cache.put_request(rq, completion())
    r.set(entry, HEADER.pack(MAGIC, VERSION, FLAG_JSON, 30) + b"\xc1not msgpack")
    assert await cache.get_request(rq) is None
    assert not r.exists(entry)
    # a valid five-field envelope under a request key: refused (no FLAG_JSON), not misread
    await cache.put_request(rq, completion())
    r.set(entry, HEADER.pack(MAGIC, VERSION, 0, 30) + b"\x80")
    assert await cache.get_request(rq) is None
    fs = await cache.fleet_stats()
    assert (fs.hits, fs.corrupt, fs.tokens_saved) == (0, 2, 0)
    assert fs.misses == 2 and fs.by_model["gpt-4o-mini"].hits == 0


async def test_bad_requests_name_the_path(cache: Flavor) -> None:
    bad = request()
    bad["messages"] = [
        {"role": "user", "content": "a"},
        {"role": "user", "content": "b"},
        {"role": "user", "content": [{"type": "image_url", "image_url": b"\x89PNG"}]},
    ]
    with pytest.raises(TypeError, match=r"^messages\[2\]\.content\[0\]\.image_url: bytes"):
        await cache.get_request(bad)
    with pytest.raises(ValueError, match=r"^temperature: nan"):
        await cache.put_request(request(temperature=float("nan")), completion())
    with pytest.raises(TypeError, match="mapping"):
        await cache.get_request("not a request")


async def test_redis_down(cache_factory: CacheFactory) -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"
    c = cache_factory(url=dead)
    assert await c.get_request(request()) is None
    await c.put_request(request(), completion())
    assert await c.invalidate_request(request()) is False
    compute = make_compute(c, completion("upstream"))
    got = await c.get_or_compute_request(request(), compute)
    assert got == completion("upstream") and cache_info(got).hit is False  # type: ignore[union-attr]
    got = await c.get_or_compute_request(request(), compute, control="no-cache")
    assert got == completion("upstream")
    assert len(compute.calls) == 2
    with pytest.raises(TypeError, match=r"^x\[0\]"):
        await c.get_request({"x": [object()]})  # input is checked even during an outage
    strict = cache_factory(url=dead, on_error="raise")
    with pytest.raises(CacheUnavailableError):
        await strict.get_request(request())
    strict_compute = make_compute(c, completion())
    with pytest.raises(CacheUnavailableError):
        await strict.get_or_compute_request(request(), strict_compute)
    assert strict_compute.calls == []


# -- two processes ---------------------------------------------------------------------------

_WORKER = """
import asyncio, json, sys
from fleetcache import AsyncRedisExactCache, RedisExactCache, cache_info
url, prefix, mode, rq = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
if mode == "sync":
    c = RedisExactCache(url=url, key_prefix=prefix, shards=int(sys.argv[5]))
    hit = c.get_request(rq)
else:
    async def main():
        async with AsyncRedisExactCache(url=url, key_prefix=prefix, shards=int(sys.argv[5])) as c:
            return await c.get_request(rq)
    hit = asyncio.run(main())
info = cache_info(hit)
print(json.dumps({"hit": hit, "info_hit": info.hit if info else None}))
"""


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_another_process_hits(cache: Flavor, mode: str, backend: Any) -> None:
    # key order and number forms differ in the other process: same digest
    rq = request("proc")
    await cache.put_request(rq, completion("from parent"))
    other = dict(reversed(list({**rq, "temperature": 0.2}.items())))
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            _WORKER,
            backend.url,
            cache.cache.key_prefix,
            mode,
            json.dumps(other),
            str(cache.cache.shards),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        cwd=ROOT,
    )
    line = json.loads(out.stdout.strip().splitlines()[-1])
    assert line == {"hit": completion("from parent"), "info_hit": True}
    assert (await cache.fleet_stats()).hits == 1


@pytest.mark.backends("redis")
def test_not_stored_reaches_the_cli_and_prometheus(make_cache: Any) -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    from fleetcache.cli import format_stats
    from fleetcache.metrics import FleetCacheCollector

    c = make_cache()
    c.put_request(request("cut"), completion(finish="length"))
    c.put_request(request("cut2"), completion(finish="content_filter"))
    fs = c.fleet_stats()
    assert fs.not_stored == 2
    table = format_stats(fs, prefix=c.key_prefix, shards=c.shards, url="redis://x")
    assert any(
        line.split()[:2] == ["not", "stored"] and line.split()[-1] == "2"
        for line in table.splitlines()
    )
    reg = CollectorRegistry()
    reg.register(FleetCacheCollector(c))
    text = generate_latest(reg).decode()
    assert any(
        line.startswith("fleetcache_not_stored_total{") and line.endswith(" 2.0")
        for line in text.splitlines()
    )


# -- signed entries and max_entries apply to the request path too ----------------------------

KEY = b"k" * 32


async def test_signed_request_entries(cache_factory: CacheFactory, r: Any) -> None:
    from fleetcache.core.envelope import FLAG_MAC

    signed = cache_factory(signing_key=KEY)
    rq = request("signed")
    await signed.put_request(rq, completion("signed"))
    raw = r.get(keys(signed, rq)[0])
    assert raw[3] & FLAG_MAC and raw[3] & FLAG_JSON
    got = await signed.get_request(rq)
    assert got == completion("signed") and cache_info(got).hit  # type: ignore[union-attr]
    # an unsigned cache still reads it (the tag is skipped, not checked)
    plain = cache_factory(key_prefix=cache_factory.prefix)
    assert await plain.get_request(rq) == completion("signed")
    # an entry written without the key, or moved to another request's key: forged, dropped
    await plain.put_request(rq, completion("unsigned"))
    assert await signed.get_request(rq) is None
    assert not r.exists(keys(signed, rq)[0])
    other = request("other")
    await signed.put_request(other, completion("theirs"))
    r.set(keys(signed, rq)[0], r.get(keys(signed, other)[0]))
    assert await signed.get_request(rq) is None
    # single-flight over a forged entry: dropped, then computed
    r.set(keys(signed, rq)[0], r.get(keys(signed, other)[0]))
    compute = make_compute(signed, completion("computed"))
    got = await signed.get_or_compute_request(rq, compute)
    assert got == completion("computed") and len(compute.calls) == 1
    assert await signed.get_request(rq) == completion("computed")
    fs = await signed.fleet_stats()
    assert fs.forged == 3 and fs.corrupt == 0


@pytest.mark.backends("redis", "valkey")
async def test_max_entries_caps_the_request_path(cache_factory: CacheFactory) -> None:
    c = cache_factory(max_entries=3)
    for i in range(6):
        await c.put_request(request(f"cap{i}"), completion(str(i)))
    fs = await c.fleet_stats()
    assert fs.size == 3 and fs.evicted == 3
    assert await c.get_request(request("cap5")) == completion("5")


@pytest.mark.parametrize("control", ["default", "no-cache", "no-store", "bypass"])
async def test_get_or_compute_request_keys_the_request_once_per_call(
    cache: Flavor, control: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each control canonicalises (and hashes) the request once, on a miss and on a hit."""
    from fleetcache.core import canonical, request_ops

    seen: list[object] = []
    real = canonical.canonical_json

    def counting(value: Any, **kw: Any) -> bytes:
        seen.append(value)
        return real(value, **kw)

    monkeypatch.setattr(request_ops, "canonical_json", counting)
    rq = request(f"once-{control}")
    compute = make_compute(cache, completion("once"))
    await cache.get_or_compute_request(rq, compute, control=control)
    await cache.get_or_compute_request(rq, compute, control=control)
    assert seen == [rq, rq]
