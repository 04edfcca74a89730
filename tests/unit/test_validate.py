"""The one module of numeric argument checks (``fleetcache.core.validate``), and that every
entry point uses it: constructor, per-call TTL, lease, breaker, timeouts, byte sizes."""

from __future__ import annotations

from typing import Any

import pytest

from fleetcache import RedisExactCache
from fleetcache._error_policy import ErrorPolicy
from fleetcache.core import validate as v
from fleetcache.core.envelope import Codec
from fleetcache.core.flight import check_lease
from fleetcache.core.models import LLMResponse


@pytest.mark.parametrize("bad", [True, "1", None, [1]])
def test_seconds_type_errors(bad: Any) -> None:
    with pytest.raises(TypeError, match="ttl_seconds"):
        v.milliseconds(bad, "ttl_seconds")


@pytest.mark.parametrize("bad", [0, -1, float("nan"), float("inf"), 0.0004, 1e15, 10**400])
def test_seconds_range_errors(bad: Any) -> None:
    with pytest.raises(ValueError, match="ttl_seconds"):
        v.milliseconds(bad, "ttl_seconds")


def test_the_limit_is_in_the_message() -> None:
    with pytest.raises(ValueError, match=r"at most 1e\+12 s .*cannot honour"):
        v.ttl_ms(1e15)
    assert v.ttl_ms(1e12) == v.MAX_MS == 10**15
    assert v.MAX_MS + 2 * 10**12 < 2**53  # now (ms) + the longest TTL stays exact in Lua


def test_values() -> None:
    assert v.ttl_ms(None) == 0
    assert v.ttl_ms(0.25) == 250
    assert v.optional_seconds(None, "w") is None
    assert v.optional_seconds(0, "w") == 0.0
    assert v.timeout(0.25, "socket_timeout") == 0.25
    assert v.byte_count(64, "max_entry_bytes", minimum=64) == 64
    assert v.optional_byte_count(None, "compress_threshold") is None
    with pytest.raises(ValueError, match="at least 64 bytes"):
        v.byte_count(63, "max_entry_bytes", minimum=64)
    with pytest.raises(TypeError, match="bytes"):
        v.byte_count(True, "max_entry_bytes")


def test_every_entry_point_uses_it() -> None:
    """The same messages from every place a number is taken (no URL I/O: nothing
    connects before the first call)."""
    with pytest.raises(ValueError, match=r"ttl_seconds must be at most 1e\+12 s"):
        RedisExactCache(url="redis://127.0.0.1:1/0", ttl_seconds=1e15)
    with pytest.raises(ValueError, match="socket_timeout must be a finite number"):
        RedisExactCache(url="redis://127.0.0.1:1/0", socket_timeout=0)
    with pytest.raises(ValueError, match="max_entry_bytes must be at least 64"):
        RedisExactCache(url="redis://127.0.0.1:1/0", max_entry_bytes=10)
    with pytest.raises(ValueError, match="compress_threshold must be at least 0"):
        Codec(LLMResponse, -1)
    with pytest.raises(ValueError, match="breaker_seconds"):
        ErrorPolicy("miss", float("inf"))
    with pytest.raises(ValueError, match=r"lease_seconds must be at most 1e\+12 s"):
        check_lease(1e13, None)
    with pytest.raises(ValueError, match="wait_timeout"):
        check_lease(1, -1)
    assert check_lease(0.5, 0) == (500, 0.0)
