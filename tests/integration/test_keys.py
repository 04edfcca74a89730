"""Keys: unambiguous encoding of typed, normalised fields; a property test that
the encoding is injective; wrong types and bad prefixes rejected; through both flavours."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fleetcache import LLMResponse
from fleetcache.core.keys import KeySpace, check_prefix, digest_of, normalise_request

from ..support.flavors import CacheFactory, Flavor, response

BASE = ("hello", "sys", "gpt", 0.5, 100)


def d(*fields: object) -> str:
    return digest_of(normalise_request(*fields))


# -- pure ------------------------------------------------------------------------------------


def test_nul_ambiguity_pair_differs() -> None:
    assert d("a\x00b", "c", "m", 0.0, 1) != d("a", "b\x00c", "m", 0.0, 1)
    assert d("ab", "", "m", 0.0, 1) != d("a", "b", "m", 0.0, 1)
    assert d("", "", "m1", 0.0, 1) != d("", "", "m", 0.0, 11)
    assert d("x", "y", "z", 1.0, 1) != d("x", "y", "z", 1.0, 10)


def test_zero_temperatures_share_a_key() -> None:
    assert d("q", "s", "m", 0, 5) == d("q", "s", "m", 0.0, 5) == d("q", "s", "m", -0.0, 5)
    assert d("q", "s", "m", 1, 5) == d("q", "s", "m", 1.0, 5)
    assert d("q", "s", "m", 0.1, 5) != d("q", "s", "m", 0.10000000000000002, 5)


def test_any_str_works() -> None:
    for s in ("", "\x00", "\ud800", "\udfff", "a\ud83d", "😀", "\u0301e", "x" * 100_000):
        assert len(d(s, s, s, 0.0, 1)) == 32
    assert d("\ud800", "", "m", 0.0, 1) != d("\udfff", "", "m", 0.0, 1)
    # A str subclass is the same request as the plain str.
    assert d(type("S", (str,), {})("q"), "s", "m", 0.0, 1) == d("q", "s", "m", 0.0, 1)


@pytest.mark.parametrize(
    "fields",
    [
        ("q", "s", "m", 0.0, "512"),
        ("q", "s", "m", None, 512),
        ("q", "s", "m", "0.5", 512),
        ("q", "s", "m", True, 512),
        ("q", "s", "m", 0.0, True),
        ("q", "s", "m", 0.0, 512.0),
        ("q", "s", "m", 0.0, None),
        (b"q", "s", "m", 0.0, 512),
        ("q", None, "m", 0.0, 512),
        ("q", "s", 3, 0.0, 512),
    ],
)
def test_wrong_types_raise_type_error(fields: tuple[object, ...]) -> None:
    with pytest.raises(TypeError):
        normalise_request(*fields)


@pytest.mark.parametrize("temp", [math.nan, math.inf, -math.inf, 10**400])
def test_non_finite_temperature_is_value_error(temp: object) -> None:
    with pytest.raises(ValueError):
        normalise_request("q", "s", "m", temp, 1)


@pytest.mark.parametrize("bad", ["", "{", "}", "a{b", "a}b", "{a}", "\ud800"])
def test_bad_prefix_value_error(bad: str) -> None:
    with pytest.raises(ValueError):
        check_prefix(bad)


def test_prefix_type_error() -> None:
    with pytest.raises(TypeError):
        check_prefix(None)


def test_every_key_of_a_shard_shares_its_hash_tag() -> None:
    ks = KeySpace("p:q", shards=4)
    dig = d(*BASE)
    s = ks.shard_of(dig)
    tag = f"{{p:q:{s}}}"
    for key in (ks.entry(s, dig), ks.index(s), ks.stats(s), ks.lease(s, dig)):
        assert key.startswith(tag + ":")
    assert ks.meta == "{p:q}:meta"


# -- property: injective ---------------------------------------------------------------------

_chars = st.one_of(
    st.sampled_from(["\x00", "a", "b", ":", "\ud800", "\udfff", "é", "😀", "0", "1"]),
    st.characters(),
)
_text = st.text(alphabet=_chars, max_size=12)
_temps = st.one_of(
    st.sampled_from([0, 0.0, -0.0, 1, 1.0, 0.5]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(min_value=-(10**6), max_value=10**6),
)
_tokens = st.one_of(st.integers(min_value=-5, max_value=20), st.integers())
_fields = st.tuples(_text, _text, _text, _temps, _tokens)


@settings(max_examples=400, deadline=None)
@given(_fields, _fields)
def test_encoding_is_injective(a: tuple[object, ...], b: tuple[object, ...]) -> None:
    na, nb = normalise_request(*a), normalise_request(*b)
    if na == nb:
        assert digest_of(na) == digest_of(nb)
    else:
        assert digest_of(na) != digest_of(nb)


@settings(max_examples=200, deadline=None)
@given(_text, _text, _text, st.integers(min_value=0, max_value=12))
def test_moving_a_boundary_changes_the_key(x: str, y: str, z: str, cut: int) -> None:
    """Concatenation-equal field splits never collide (the NUL-join bug, generalised)."""
    joined = x + y
    cut = min(cut, len(joined))
    a = (x, y, z, 0.0, 1)
    b = (joined[:cut], joined[cut:], z, 0.0, 1)
    if (a[0], a[1]) != (b[0], b[1]):
        assert d(*a) != d(*b)


# -- through the caches (both flavours) ------------------------------------------------------


async def test_nul_pair_through_cache(cache: Flavor) -> None:
    await cache.put("a\x00b", "c", "m", 0.0, 1, LLMResponse(content="first"))
    assert await cache.get("a", "b\x00c", "m", 0.0, 1) is None
    await cache.put("a", "b\x00c", "m", 0.0, 1, LLMResponse(content="second"))
    assert (await cache.get("a\x00b", "c", "m", 0.0, 1)).content == "first"
    assert (await cache.get("a", "b\x00c", "m", 0.0, 1)).content == "second"
    assert await cache.size() == 2


async def test_zero_temperatures_through_cache(cache: Flavor) -> None:
    await cache.put("q", "s", "m", 0, 5, response(1))
    assert await cache.get("q", "s", "m", 0.0, 5) == response(1)
    assert await cache.get("q", "s", "m", -0.0, 5) == response(1)
    assert await cache.size() == 1


async def test_nul_and_lone_surrogates_through_cache(cache: Flavor) -> None:
    weird = ("\x00\ud800", "\udfff\x00", "model-\ud83d", 0.7, 9)
    await cache.put(*weird, response(1))
    assert await cache.get(*weird) == response(1)
    assert await cache.invalidate(*weird) is True
    fs = await cache.fleet_stats()
    assert fs.by_model["model-\ud83d"].hits == 1  # the model name round-trips exactly


@pytest.mark.parametrize(
    "fields",
    [
        ("q", "s", "m", 0.0, "512"),
        ("q", "s", "m", None, 512),
        (b"q", "s", "m", 0.0, 512),
    ],
)
async def test_wrong_types_through_cache(cache: Flavor, fields: tuple[object, ...]) -> None:
    with pytest.raises(TypeError):
        await cache.get(*fields)
    with pytest.raises(TypeError):
        await cache.put(*fields, response(1))
    with pytest.raises(TypeError):
        await cache.invalidate(*fields)
    assert (await cache.fleet_stats()).total == 0  # nothing counted


async def test_put_rejects_non_model_response(cache: Flavor) -> None:
    with pytest.raises(TypeError):
        await cache.put(*BASE, {"content": "dict"})


@pytest.mark.parametrize("bad", ["", "{", "}", "a{b}c"])
def test_bad_prefix_at_construction(cache_factory: CacheFactory, bad: str) -> None:
    with pytest.raises(ValueError):
        cache_factory.raw_cache(key_prefix=bad)
