"""Corruption: bytes that are not a valid envelope are a miss; the entry is
deleted, ``corrupt`` is counted, hits/misses/tokens stay exact, nothing is raised. Both the
Lua header check (get-3) and the client-side body check (drop_corrupt-3) are exercised."""

from __future__ import annotations

import json
import struct
import zlib
from typing import Any

import msgpack
import pytest

from fleetcache.core.envelope import HEADER

from ..support.flavors import CacheFactory, Flavor, req, response


def envelope(body: bytes, *, version: int = 1, flags: int = 0, tokens: int = 0) -> bytes:
    return HEADER.pack(b"FC", version, flags, tokens) + body


GOOD_BODY = msgpack.packb({"content": "ok"})

CORRUPT = {
    # rejected by the Lua header check
    "garbage": b"\x00\xff garbage \x13\x37",
    "empty": b"",
    "short-header": b"FC\x01",
    "old-json-format": json.dumps({"content": "old", "finish_reason": "stop"}).encode(),
    "other-version": envelope(GOOD_BODY, version=2, tokens=9),
    "bad-magic": b"XX" + envelope(GOOD_BODY)[2:],
    # valid header (the hit is counted in Lua, then undone by drop_corrupt)
    "unknown-flags": envelope(GOOD_BODY, flags=0x80, tokens=7),
    "body-not-msgpack": envelope(b"\xc1\xc1\xc1", tokens=7),
    "body-not-a-map": envelope(msgpack.packb([1, 2, 3]), tokens=7),
    "bad-zlib": envelope(b"not zlib at all", flags=1, tokens=7),
    "zlib-of-garbage": envelope(zlib.compress(b"\xc1\xc1"), flags=1, tokens=7),
    "truncated-body": envelope(msgpack.packb({"content": "x" * 100})[:20], tokens=7),
    "non-str-map-key": envelope(msgpack.packb({1: "x"}), tokens=7),
}


@pytest.mark.parametrize("name", sorted(CORRUPT))
async def test_corrupt_entry_is_a_counted_miss(cache: Flavor, r: Any, name: str) -> None:
    await cache.put(*req(1), response(1, tokens=30))
    await cache.put(*req(2), response(2, tokens=5))
    assert await cache.get(*req(2)) is not None  # one honest hit (5 tokens)
    entry, index, _ = cache.keys_of(*req(1))
    r.set(entry, CORRUPT[name])

    assert await cache.get(*req(1)) is None  # no exception, a miss

    assert r.exists(entry) == 0
    assert r.zscore(index, cache.digest_of(*req(1))) is None
    assert await cache.size() == 1
    fs = await cache.fleet_stats()
    assert (fs.hits, fs.misses, fs.corrupt) == (1, 1, 1)
    assert fs.tokens_saved == 5  # a tokens credit for the corrupt hit was undone
    assert (fs.by_model["gpt-test"].hits, fs.by_model["gpt-test"].misses) == (1, 1)
    # The key works again afterwards.
    await cache.put(*req(1), response(1))
    assert await cache.get(*req(1)) == response(1)


async def test_corrupt_under_raise_policy_does_not_raise(
    cache_factory: CacheFactory, r: Any
) -> None:
    c = cache_factory(on_error="raise")
    await c.put(*req(1), response(1))
    r.set(c.keys_of(*req(1))[0], CORRUPT["body-not-msgpack"])
    assert await c.get(*req(1)) is None
    assert (await c.fleet_stats()).corrupt == 1


async def test_corrupt_entry_replaced_meanwhile_is_kept(cache: Flavor, r: Any) -> None:
    """drop_corrupt deletes only the exact bytes that failed: a concurrent good put wins (and
    nothing was dropped, so nothing is counted corrupt; the hit is still undone)."""
    from fleetcache._lua import script

    await cache.put(*req(1), response(1))
    entry, index, stats = cache.keys_of(*req(1))
    digest = cache.digest_of(*req(1))
    good = r.get(entry)
    s = script("drop_corrupt")
    r.hincrby(stats, "hits", 1)  # what get-3 would have counted for the bad read
    r.hincrby(stats, "mh:gpt-test", 1)
    bad = CORRUPT["body-not-msgpack"]
    kept = r.eval(s.source, 3, entry, index, stats, digest, "gpt-test", bad, "1")
    assert kept == 0
    assert r.get(entry) == good
    fs = await cache.fleet_stats()
    assert (fs.hits, fs.misses, fs.corrupt, fs.size) == (0, 1, 0, 1)


def test_header_layout() -> None:
    assert HEADER.size == 8
    assert struct.unpack(">2sBBI", envelope(b"", tokens=513)) == (b"FC", 1, 0, 513)
