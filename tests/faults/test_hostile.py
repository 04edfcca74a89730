"""Hostile input: property-based tests of the key encoding and the codec, garbage and
truncated bytes planted as entries, and responses beyond ``max_entry_bytes``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fleetcache import EntryTooLargeError, LLMResponse, RedisExactCache, ToolCallResult
from fleetcache.core.envelope import Codec
from fleetcache.core.keys import digest_of, normalise_request

from ..support.servers import ServerProc, redis_server_bin

pytestmark = pytest.mark.faults

_SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# any str, lone surrogates included
texts = st.text(st.characters(codec=None, exclude_categories=()), max_size=40)
json_leaf = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=20)
json_value = st.recursive(
    json_leaf | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
tool_calls: st.SearchStrategy[list[dict[str, Any]]] = st.lists(
    st.builds(
        dict,
        id=st.text(max_size=12),
        name=st.text(min_size=1, max_size=20),
        arguments=st.dictionaries(st.text(max_size=10), json_value, max_size=4),
    ),
    max_size=3,
)
responses: st.SearchStrategy[dict[str, Any]] = st.builds(
    dict,
    content=st.none() | texts | st.text(max_size=3000),
    thinking=st.none() | texts,
    parsed=st.none() | st.dictionaries(st.text(max_size=8), json_value, max_size=4),
    tool_calls=tool_calls,
    finish_reason=st.sampled_from(["stop", "tool_call", "length", "content_filter", "error"]),
    usage=st.dictionaries(
        st.sampled_from(["prompt_tokens", "completion_tokens", "total_tokens", "cached"]),
        st.integers(0, 2**40),
    ),
    raw=st.none() | json_value,
)
requests = st.tuples(
    texts,
    texts,
    texts,
    st.integers(-5, 5) | st.floats(-5, 5, allow_nan=False),
    st.integers(-(2**40), 2**40),
)


#: Examples each property test ran in this session (folded into the fault summary).
EXAMPLES = {"keys": 0, "codec": 0, "garbage": 0}


@pytest.fixture(scope="module")
def hostile_server() -> Iterator[ServerProc]:
    binary = redis_server_bin()
    if binary is None:
        pytest.exit("redis-server not found", returncode=3)
    s = ServerProc(binary).start()
    yield s
    s.stop()


@_SETTINGS
@given(a=requests, b=requests)
def test_key_encoding_injective(a: tuple[Any, ...], b: tuple[Any, ...]) -> None:
    """Invariant: different normalised requests never share a digest; equal ones do."""
    EXAMPLES["keys"] += 1
    na, nb = normalise_request(*a), normalise_request(*b)
    assert (na == nb) == (digest_of(na) == digest_of(nb))


@_SETTINGS
@given(s=texts, cut=st.integers(0, 40))
def test_key_encoding_field_boundaries(s: str, cut: int) -> None:
    """Moving text across a field boundary (the incumbent's NUL-join flaw) changes the key."""
    cut = min(cut, len(s))
    x = normalise_request(s[:cut], s[cut:], "m", 0.0, 1)
    y = normalise_request(s[:cut] + "\x00", s[cut:], "m", 0.0, 1)
    z = normalise_request(s, "", "m", 0.0, 1)
    assert digest_of(x) != digest_of(y)
    assert (x == z) == (digest_of(x) == digest_of(z))


@_SETTINGS
@given(fields=responses, threshold=st.sampled_from([None, 0, 64, 4096]))
def test_codec_round_trips_any_response(fields: dict[str, Any], threshold: int | None) -> None:
    """Invariant: decode(encode(r)) == r for any LLMResponse-shaped data."""
    EXAMPLES["codec"] += 1
    resp = LLMResponse.model_validate(fields)
    codec = Codec(LLMResponse, threshold)
    assert codec.decode(codec.encode(resp)) == resp


def _plant_and_get(cache: RedisExactCache, r: redis.Redis, data: bytes, n: int) -> Any:
    rq = ("planted", "sys", "m", 0.0, n)
    _, d, s = cache._core.request(rq)
    k = cache._core.keys
    r.set(k.entry(s, d), data)
    r.zadd(k.index(s), {d: float("inf")})
    return cache.get(*rq)  # must never raise


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.binary(max_size=300) | st.binary(max_size=64).map(lambda b: b"FC\x01\x00" + b))
def test_garbage_entries_never_raise(hostile_server: ServerProc, data: bytes) -> None:
    """Invariant: random bytes planted as an entry: get returns None (corrupt counted, entry
    dropped) or, if they happen to be a valid envelope, a valid response; never raises."""
    EXAMPLES["garbage"] += 1
    r = hostile_server.client()
    cache = RedisExactCache(url=hostile_server.url, key_prefix="hostile", on_error="raise")
    try:
        before = cache.fleet_stats()
        got = _plant_and_get(cache, r, data, 1)
        after = cache.fleet_stats()
        if got is None:
            assert after.corrupt == before.corrupt + 1
            assert after.misses == before.misses + 1 and after.hits == before.hits
            assert len(cache) == 0
        else:
            assert isinstance(got, LLMResponse)
            assert after.hits == before.hits + 1
        cache.invalidate("planted", "sys", "m", 0.0, 1)
    finally:
        cache.close()
        r.close()


def test_truncated_entries_never_raise(hostile_server: ServerProc, record: dict[str, Any]) -> None:
    """Invariant: every truncation of a valid envelope (plain and compressed) planted as an
    entry is a counted corrupt miss, never an exception and never a wrong answer."""
    record.update(
        name="hostile input: truncated + garbage entries",
        invariant="get never raises; a truncated envelope is a counted corrupt miss",
    )
    r = hostile_server.client()
    cache = RedisExactCache(url=hostile_server.url, key_prefix="trunc", on_error="raise")
    resp = LLMResponse(
        content="x" * 5000 + " the end",
        tool_calls=[ToolCallResult(id="c1", name="f", arguments={"a": [1, 2, {"b": None}]})],
        usage={"total_tokens": 99},
    )
    ops = wrong = 0
    for threshold in (None, 64):
        env = Codec(LLMResponse, threshold).encode(resp)
        cuts = sorted({*range(40), *range(40, len(env), max(1, len(env) // 60))})
        for cut in cuts:
            before = cache.fleet_stats().corrupt
            got = _plant_and_get(cache, r, env[:cut], cut)
            ops += 1
            if got is not None or cache.fleet_stats().corrupt != before + 1:
                wrong += 1
        assert _plant_and_get(cache, r, env, 10**6) == resp
    record.update(operations=ops, failures=wrong)
    assert wrong == 0
    cache.close()
    r.close()


def test_huge_responses_refused_never_half_written(
    hostile_server: ServerProc, record: dict[str, Any]
) -> None:
    """Invariant: a response whose envelope exceeds max_entry_bytes is skipped (on_error=
    "miss") or refused with EntryTooLargeError ("raise"); no entry, no index member, no put
    counted."""
    record.update(
        name="hostile input: beyond max_entry_bytes",
        invariant="skipped (miss) or EntryTooLargeError (raise); nothing written",
    )
    r = hostile_server.client()
    import os

    huge = LLMResponse(content=os.urandom(6000).hex())
    ops = failures = 0
    for on_error in ("miss", "raise"):
        cache = RedisExactCache(
            url=hostile_server.url,
            key_prefix=f"huge-{on_error}",
            on_error=on_error,
            max_entry_bytes=4096,
        )
        rq = ("big", "sys", "m", 0.0, 1)
        if on_error == "raise":
            with pytest.raises(EntryTooLargeError):
                cache.put(*rq, huge)
        else:
            cache.put(*rq, huge)
        ops += 1
        _, d, s = cache._core.request(rq)
        k = cache._core.keys
        written = int(r.exists(k.entry(s, d))) + int(r.zscore(k.index(s), d) is not None)
        failures += written + int(cache.get(*rq) is not None) + cache.fleet_stats().puts
        ops += 1
        small = LLMResponse(content="fits")
        cache.put(*rq, small)
        failures += int(cache.get(*rq) != small)
        ops += 2
        cache.close()
    record.update(operations=ops, failures=failures)
    assert failures == 0
    r.close()


def test_property_summary(record: dict[str, Any]) -> None:
    """Records how many examples the property tests above ran (they passed if we got here
    in the same session; a failure among them fails the run on its own)."""
    total = sum(EXAMPLES.values())
    if not total:
        pytest.skip("the property tests did not run in this session")
    record.update(
        name="hostile input: hypothesis properties",
        invariant="key encoding injective; codec round-trips any LLMResponse; garbage "
        "entries never raise from get (corrupt counted)",
        operations=total,
    )
    record["examples"] = dict(EXAMPLES)
