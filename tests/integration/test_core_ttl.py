"""TTL validation: float seconds, ms precision, None = no expiry; <= 0, NaN,
infinite -> ValueError at construction and at put(ttl_seconds=) (the expiry itself is covered
in test_core_size.py, against the server clock)."""

from __future__ import annotations

import math
from typing import Any

import pytest

from fleetcache import CacheUnavailableError

from ..support.flavors import CacheFactory, req, response

BAD_TTLS = [0, 0.0, -1, -0.5, math.nan, math.inf, -math.inf, 0.0004]


@pytest.mark.parametrize("ttl", BAD_TTLS)
def test_bad_ttl_at_construction(cache_factory: CacheFactory, ttl: float) -> None:
    with pytest.raises(ValueError):
        cache_factory.raw_cache(ttl_seconds=ttl)


@pytest.mark.parametrize("ttl", ["1", b"1", [1], True])
def test_ttl_wrong_type_at_construction(cache_factory: CacheFactory, ttl: object) -> None:
    with pytest.raises(TypeError):
        cache_factory.raw_cache(ttl_seconds=ttl)


@pytest.mark.parametrize("ttl", [0.25, 1, 0.001, 86_400 * 365, None])
def test_good_ttl_at_construction(cache_factory: CacheFactory, ttl: float | None) -> None:
    c = cache_factory(ttl_seconds=ttl)
    assert c.cache.ttl_seconds == ttl


@pytest.mark.parametrize("ttl", BAD_TTLS)
async def test_bad_ttl_at_put(cache_factory: CacheFactory, ttl: float) -> None:
    c = cache_factory()
    with pytest.raises(ValueError):
        await c.put(*req(1), response(1), ttl_seconds=ttl)
    assert await c.size() == 0  # nothing stored wrong


async def test_bad_ttl_at_put_even_when_redis_is_down(cache_factory: CacheFactory) -> None:
    # Input validation does not depend on Redis: refused port, breaker open or not.
    c = cache_factory(url="redis://127.0.0.1:1/0")
    await c.put(*req(1), response(1))  # a fault: skipped, opens the breaker
    with pytest.raises(ValueError):
        await c.put(*req(1), response(1), ttl_seconds=-1)
    with pytest.raises(TypeError):
        await c.put(*req(1), response(1), ttl_seconds="5")
    with pytest.raises(CacheUnavailableError):
        await c.size()


async def test_put_ttl_none_uses_cache_default(cache_factory: CacheFactory, r: Any) -> None:
    c = cache_factory(ttl_seconds=50)
    await c.put(*req(1), response(1), ttl_seconds=None)
    assert 40_000 < r.pttl(c.keys_of(*req(1))[0]) <= 50_000
