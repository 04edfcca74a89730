"""Signed entries (``signing_key=``): a MAC over namespace, request digest and envelope,
checked before anything is decoded. A forged, unsigned, tampered, replayed (another digest) or
moved (another namespace) entry is a miss, deleted, counted ``forged`` exactly once (not
``corrupt``), never returned: for get, get_many and single-flight, sync and async, on every
backend. Key rotation keeps a mixed fleet serving; without a key nothing changes.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
import threading
import time
import zlib
from typing import Any

import pytest

from fleetcache import AsyncRedisExactCache, RedisExactCache
from fleetcache.core.envelope import FLAG_MAC, HEADER, HEADER_SIZE, Codec
from fleetcache.core.models import LLMResponse
from fleetcache.core.signing import DOMAIN, MAC_SIZE, check_signing_key

from ..support.flavors import CacheFactory, Flavor, req, response

OLD = b"o" * 32
NEW = b"n" * 32
OTHER = b"x" * 32


def reference_mac(key: bytes, namespace: str, digest: str, signed_part: bytes) -> bytes:
    """The MAC as docs/operations.md and core/signing.py define it, computed independently."""
    ns = namespace.encode()
    msg = DOMAIN + struct.pack(">I", len(ns)) + ns + digest.encode() + signed_part
    return hmac.new(key, msg, hashlib.sha256).digest()[:16]


async def test_signed_envelope_layout(cache_factory: CacheFactory, r: Any) -> None:
    c = cache_factory(signing_key=NEW)
    await c.put(*req(1), response(1, tokens=30))
    entry, _, _ = c.keys_of(*req(1))
    raw = r.get(entry)
    plain = Codec(LLMResponse).encode(response(1, tokens=30))
    assert len(raw) == len(plain) + MAC_SIZE == len(plain) + 16
    assert raw[3] & FLAG_MAC and raw[:3] == plain[:3] and raw[4:-16] == plain[4:]
    assert HEADER.unpack_from(raw)[3] == 30  # the Lua-read token count is unchanged
    mac = reference_mac(NEW, c.cache.key_prefix, c.digest_of(*req(1)), raw[:-16])
    assert raw[-16:] == mac
    assert await c.get(*req(1)) == response(1, tokens=30)
    fs = await c.fleet_stats()
    assert (fs.hits, fs.forged, fs.corrupt, fs.tokens_saved) == (1, 0, 0, 30)


def _raw(r: Any, key: str) -> bytes:
    """The bytes stored at ``key`` (which must exist)."""
    value = r.get(key)
    assert isinstance(value, bytes), key
    return value


def _flip(b: bytes, i: int) -> bytes:
    return b[:i] + bytes([b[i] ^ 0x01]) + b[i + 1 :]


async def _bad_bytes(kind: str, c: Flavor, factory: CacheFactory, r: Any) -> bytes:
    """Bytes for req(1)'s entry that a cache signed with NEW must refuse."""
    good_writer = factory(signing_key=NEW)
    await good_writer.put(*req(1), response(1, tokens=30))
    entry, _, _ = c.keys_of(*req(1))
    good = _raw(r, entry)
    if kind == "unsigned":
        w = factory()  # same namespace, no key
        await w.put(*req(1), response(666, tokens=30))
        return _raw(r, entry)
    if kind == "other-key":
        w = factory(signing_key=OTHER)
        await w.put(*req(1), response(666, tokens=30))
        return _raw(r, entry)
    if kind == "tampered-body":
        return _flip(good, HEADER_SIZE + 2)
    if kind == "tampered-tokens":  # inflate the tokens_saved credit in the header
        return good[:4] + struct.pack(">I", 999_999) + good[8:]
    if kind == "flag-cleared":
        return good[:3] + bytes([good[3] & ~FLAG_MAC]) + good[4:]
    if kind == "truncated-mac":
        return good[:-1]
    if kind == "replayed-digest":  # req(2)'s signed bytes under req(1)'s key
        await good_writer.put(*req(2), response(666, tokens=30))
        e2, _, _ = c.keys_of(*req(2))
        return _raw(r, e2)
    if kind == "other-namespace":  # the same request, signed for another namespace
        other = CacheFactory(factory.kind, factory.url, factory.prefix + "x", factory.defaults)
        try:
            w = other(signing_key=NEW)
            await w.put(*req(1), response(666, tokens=30))
            oe, _, _ = w.keys_of(*req(1))
            return _raw(r, oe)
        finally:
            await other.aclose()
    if kind == "hostile-body":  # a zlib bomb-ish body: must never reach zlib/msgpack
        body = zlib.compress(b"\xc1" * 100_000)
        return HEADER.pack(b"FC", 1, FLAG_MAC | 1, 7) + body + b"\x00" * 16
    raise AssertionError(kind)


BAD = [
    "unsigned",
    "other-key",
    "tampered-body",
    "tampered-tokens",
    "flag-cleared",
    "truncated-mac",
    "replayed-digest",
    "other-namespace",
    "hostile-body",
]


@pytest.mark.parametrize("kind", BAD)
async def test_forged_entry_is_a_counted_miss(
    cache_factory: CacheFactory, r: Any, kind: str
) -> None:
    c = cache_factory(signing_key=NEW)
    bad = await _bad_bytes(kind, c, cache_factory, r)
    await c.reset_stats()
    entry, index, _ = c.keys_of(*req(1))
    r.set(entry, bad)
    assert r.zscore(index, c.digest_of(*req(1))) is not None

    assert await c.get(*req(1)) is None
    assert r.exists(entry) == 0 and r.zscore(index, c.digest_of(*req(1))) is None
    fs = await c.fleet_stats()
    assert (fs.hits, fs.misses, fs.forged, fs.corrupt, fs.tokens_saved) == (0, 1, 1, 0, 0)
    assert fs.by_model["gpt-test"].hits == 0 and fs.by_model["gpt-test"].misses == 1
    assert await c.get(*req(1)) is None  # exactly once: now a plain miss
    fs = await c.fleet_stats()
    assert (fs.misses, fs.forged) == (2, 1)


async def test_get_many_drops_forged_entries(cache_factory: CacheFactory, r: Any) -> None:
    c = cache_factory(signing_key=NEW)
    unsigned = cache_factory()
    await c.put_many([(*req(i), response(i, tokens=10)) for i in range(6)])
    for i in (1, 4):  # overwritten by a writer without the key
        await unsigned.put(*req(i), response(666, tokens=10))
    await c.reset_stats()
    got = await c.get_many([req(i) for i in range(7)])
    assert got == [response(0, tokens=10), None, response(2, tokens=10), response(3, tokens=10),
                   None, response(5, tokens=10), None]  # fmt: skip
    fs = await c.fleet_stats()
    assert (fs.hits, fs.misses, fs.forged, fs.corrupt, fs.tokens_saved) == (4, 3, 2, 0, 40)
    assert fs.size == 4


async def test_single_flight_recomputes_over_a_forged_entry(
    cache_factory: CacheFactory, r: Any
) -> None:
    c = cache_factory(signing_key=NEW)
    unsigned = cache_factory()
    await unsigned.put(*req(1), response(666, tokens=10))
    await c.reset_stats()
    calls = []

    def compute() -> Any:
        calls.append(1)
        return response(1, tokens=10)

    async def acompute() -> Any:
        return compute()

    got = await c.get_or_compute(*req(1), acompute if c.is_async else compute)
    assert got == response(1, tokens=10) and len(calls) == 1
    fs = await c.fleet_stats()
    assert (fs.hits, fs.misses, fs.forged, fs.coalesced, fs.puts) == (0, 1, 1, 0, 1)
    assert await c.get(*req(1)) == response(1, tokens=10)  # the recomputed entry is signed


async def test_single_flight_waiter_drops_a_forged_answer(
    cache_factory: CacheFactory, r: Any
) -> None:
    """A waiter polling another holder's lease sees forged bytes land: not returned, taken
    back (coalesced, tokens), counted forged once; it takes the lease over and computes."""
    c = cache_factory(signing_key=NEW)
    unsigned = cache_factory()
    await unsigned.put(*req(1), response(666, tokens=10))
    entry, _, _ = c.keys_of(*req(1))
    forged = r.get(entry)
    await unsigned.invalidate(*req(1))
    await c.reset_stats()
    lease = entry.replace(":e:", ":l:")
    r.set(lease, "someone-else", px=400)

    def plant() -> None:
        time.sleep(0.1)
        r.set(entry, forged)
        r.zadd(entry.rsplit(":e:", 1)[0] + ":i", {c.digest_of(*req(1)): "inf"})

    t = threading.Thread(target=plant)
    t.start()

    def compute() -> Any:
        return response(1, tokens=10)

    async def acompute() -> Any:
        return compute()

    try:
        got = await c.get_or_compute(*req(1), acompute if c.is_async else compute)
    finally:
        t.join()
    assert got == response(1, tokens=10)
    fs = await c.fleet_stats()
    assert (fs.hits, fs.misses, fs.forged, fs.coalesced, fs.tokens_saved) == (0, 1, 1, 0, 0)
    assert await c.get(*req(1)) == response(1, tokens=10)


async def test_rotation(cache_factory: CacheFactory, r: Any) -> None:
    """Half the fleet on [new, old], half still on [old]: every get is the right answer or a
    miss, never an error or a wrong answer; entries of the [old] half are hits for both
    halves, entries the [new, old] half signs are hits there and forged misses on the [old]
    half (which recomputes; the documented 3-step rotation avoids even that). Once every
    process is on [new], entries signed with old no longer verify."""
    rotated = cache_factory(signing_key=[NEW, OLD])
    legacy = cache_factory(signing_key=[OLD])
    for i in range(10):
        await legacy.put(*req(i), response(i))
    for i in range(10, 20):
        await rotated.put(*req(i), response(i))
    await rotated.reset_stats()
    for i in range(20):
        assert await rotated.get(*req(i)) == response(i)  # verifies both keys
    for i in range(10):
        assert await legacy.get(*req(i)) == response(i)
    fs = await rotated.fleet_stats()
    assert (fs.hits, fs.forged) == (30, 0)
    for i in range(10, 20):
        assert await legacy.get(*req(i)) is None  # signed with NEW: not verifiable there
    assert (await rotated.fleet_stats()).forged == 10

    # the clean 3-step rotation: [old, new] (verify new) -> [new, old] -> [new]
    await rotated.clear()
    step1 = cache_factory(signing_key=[OLD, NEW])
    for i in range(10):
        await legacy.put(*req(i), response(i))
        await step1.put(*req(i + 10), response(i + 10))
    step2 = cache_factory(signing_key=[NEW, OLD])
    for i in range(20):  # both halves of step 1 read everything (all signed with OLD)
        assert await legacy.get(*req(i)) == response(i)
        assert await step1.get(*req(i)) == response(i)
    for i in range(20, 30):
        await step2.put(*req(i), response(i))
    for i in range(30):
        assert await step1.get(*req(i)) == response(i)
        assert await step2.get(*req(i)) == response(i)
    assert (await step2.fleet_stats()).forged == 0

    done = cache_factory(signing_key=NEW)  # rotation complete
    for i in range(20):
        assert await done.get(*req(i)) is None  # signed with OLD: refused
    for i in range(20, 30):
        assert await done.get(*req(i)) == response(i)
    fs = await done.fleet_stats()
    assert fs.forged == 20 and fs.size == 10


async def test_without_signing_key_nothing_changes(cache_factory: CacheFactory, r: Any) -> None:
    c = cache_factory()
    assert c.cache._core.signer is None
    await c.put(*req(1), response(1))
    entry, _, _ = c.keys_of(*req(1))
    assert r.get(entry) == Codec(LLMResponse).encode(response(1))  # no flag, no MAC
    signed = cache_factory(signing_key=NEW)
    await signed.put(*req(2), response(2))
    assert await c.get(*req(2)) == response(2)  # a signed entry reads (tag not checked)
    fs = await c.fleet_stats()
    assert (fs.forged, fs.corrupt) == (0, 0)


def test_signing_key_validation() -> None:
    assert check_signing_key(None) == ()
    assert check_signing_key(NEW) == (NEW,)
    assert check_signing_key(bytearray(NEW)) == (NEW,)
    assert check_signing_key([NEW, OLD]) == (NEW, OLD)
    cases: list[tuple[Any, type[Exception]]] = [
        ("a string key of 32 characters...", TypeError),
        (12345, TypeError),
        ([NEW, "old"], TypeError),
        ({NEW}, TypeError),
        (b"", ValueError),
        (b"short", ValueError),
        ([], ValueError),
        ((), ValueError),
        ([NEW, b""], ValueError),
    ]
    for bad, exc in cases:
        with pytest.raises(exc):
            check_signing_key(bad)
        with pytest.raises(exc):
            RedisExactCache(url="redis://127.0.0.1:1/0", signing_key=bad)
        with pytest.raises(exc):
            AsyncRedisExactCache(url="redis://127.0.0.1:1/0", signing_key=bad)


def test_integration_passes_the_key(backend: Any, prefix: str) -> None:
    pytest.importorskip("langchain_core")
    from fleetcache.integrations.langchain import FleetLangChainCache

    lc = FleetLangChainCache(url=backend.url, key_prefix=prefix, signing_key=NEW,
                             **backend.cache_defaults)  # fmt: skip
    try:
        assert lc.cache is not None and lc.cache._core.signer is not None
        from langchain_core.outputs import Generation

        lc.update("prompt", "llm-string model=m", [Generation(text="hi")])
        assert [g.text for g in lc.lookup("prompt", "llm-string model=m") or []] == ["hi"]
    finally:
        assert lc.cache is not None
        lc.cache.close()
