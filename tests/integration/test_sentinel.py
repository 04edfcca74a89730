"""Sentinel: a primary, a replica and a sentinel on loopback. The primary is killed (-9)
mid-run; after the failover the same cache object keeps working (scripts reload on the new
primary by NOSCRIPT) and serves the entries written before the kill."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from redis.sentinel import Sentinel

from fleetcache import AsyncRedisExactCache, CacheUnavailableError, RedisExactCache
from fleetcache._clients import parse_sentinel_url
from fleetcache._lua import script
from fleetcache.cli import main

from ..support.cluster import SentinelSet
from ..support.flavors import req, response
from ..support.servers import free_port, redis_server_bin

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def sentinel_set() -> Iterator[SentinelSet]:
    """A fresh primary + replica + sentinel (the failover test kills the primary)."""
    binary = redis_server_bin()
    if binary is None:
        pytest.skip("redis-server not found")
    s = SentinelSet(binary).start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def sentinel_quick() -> Iterator[SentinelSet]:
    """Shared by the URL tests, which never kill anything (no wait for replica discovery)."""
    binary = redis_server_bin()
    if binary is None:
        pytest.skip("redis-server not found")
    s = SentinelSet(binary).start(wait_discovery=False)
    yield s
    s.stop()


def _url(s: SentinelSet) -> str:
    assert s.sentinel is not None
    return f"redis+sentinel://127.0.0.1:{s.sentinel.port}/{s.name}"


def _wait_for(cond: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.05)
    raise TimeoutError(what)


def test_failover_keeps_the_same_cache_object_working(sentinel_set: SentinelSet) -> None:
    s = sentinel_set
    assert s.sentinel is not None and s.primary is not None and s.replica is not None
    sentinel = Sentinel(
        [("127.0.0.1", s.sentinel.port)], socket_timeout=1, sentinel_kwargs={"socket_timeout": 1}
    )
    client = sentinel.master_for(s.name, socket_timeout=0.5, socket_connect_timeout=0.5)
    cache = RedisExactCache(client=client, key_prefix="t:failover", breaker_seconds=0.1)
    for i in range(50):
        cache.put(*req(i), response(i, tokens=10))
    for i in range(10):
        assert cache.get(*req(i)) == response(i, tokens=10)
    # every write reached the replica before the kill (WAIT only covers the writes of its
    # own connection, and the cache's pool has several: compare replication offsets)
    with s.primary.client() as prim, s.replica.client() as rep:
        target = int(prim.info("replication")["master_repl_offset"])
        _wait_for(
            lambda: int(rep.info("replication")["slave_repl_offset"]) >= target,
            10,
            "the replica to catch up",
        )
    with s.replica.client() as rep:
        assert rep.script_exists(script("get").sha) == [False]  # scripts are not replicated
    old_port = s.primary.port

    s.primary.kill()  # kill -9 by PID, mid-run

    errors_before = cache.error_count
    # keep calling while the sentinel notices and promotes the replica: misses, never raises
    deadline = time.monotonic() + 30
    served = None
    for _ in range(10_000):
        if time.monotonic() > deadline:
            break
        served = cache.get(*req(0))
        if served is not None:
            break
        time.sleep(0.05)
    assert served == response(0, tokens=10), "no failover within 30 s"
    assert s.primary_port() == s.replica.port != old_port
    assert cache.error_count > errors_before  # the outage was seen and served as misses

    # the same object, no restart: every entry written before the kill is served
    for i in range(50):
        assert cache.get(*req(i)) == response(i, tokens=10)
    cache.put(*req("after"), response("after"))
    assert cache.get(*req("after")) == response("after")
    st = cache.fleet_stats()
    assert st.size == 51
    assert st.puts == 51
    assert st.hits >= 10 + 50 + 1  # hits before the kill were replicated with the entries
    with s.replica.client() as new_primary:
        assert new_primary.script_exists(script("get").sha) == [True]  # reloaded by NOSCRIPT
    cache.close()
    client.close()


def test_sentinel_url_form(sentinel_quick: SentinelSet) -> None:
    s = sentinel_quick
    with RedisExactCache(url=_url(s), key_prefix="t:sentinel-url") as cache:
        assert isinstance(cache.client, redis.Redis)
        cache.put(*req(1), response(1))
        assert cache.get(*req(1)) == response(1)
        assert s.primary is not None
        with s.primary.client() as c:
            assert c.exists("{t:sentinel-url:0}:i") == 1  # written on the sentinel's primary


async def test_async_sentinel_url_form(sentinel_quick: SentinelSet) -> None:
    cache = AsyncRedisExactCache(url=_url(sentinel_quick), key_prefix="t:sentinel-aurl")
    try:
        await cache.put(*req(1), response(1))
        assert await cache.get(*req(1)) == response(1)
        assert await cache.size() == 1
    finally:
        await cache.aclose()


def test_parse_sentinel_url() -> None:
    p = parse_sentinel_url("redis+sentinel://u:p%40ss@s1.invalid:26380,[::1],h2/mymaster/3")
    assert p["hosts"] == [("s1.invalid", 26380), ("::1", 26379), ("h2", 26379)]
    assert (p["service"], p["db"], p["ssl"]) == ("mymaster", 3, False)
    assert (p["username"], p["password"]) == ("u", "p@ss")
    assert parse_sentinel_url("rediss+sentinel://h:1/m")["ssl"] is True
    for bad in ("redis+sentinel://h:1", "redis+sentinel:///m", "redis+sentinel://h:x/m"):
        with pytest.raises(ValueError):
            parse_sentinel_url(bad)


# -- every sentinel down: one bounded discovery pass ---------------------------------------

#: The README promises a miss within about 0.5 s; the old code took 7.5-23 s. The bound has
#: a wide margin for a loaded machine: it checks the order of magnitude, not a speed.
DOWN_BOUND_S = 2.0


class _Silent:
    """A loopback port that accepts connections and never answers; counts the accepts."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            self.accepted.append(conn)

    def close(self) -> None:
        self._stop.set()
        self._t.join(5)
        for c in self.accepted:
            c.close()
        self.sock.close()


@pytest.fixture
def silent() -> Iterator[_Silent]:
    s = _Silent()
    yield s
    s.close()


@pytest.fixture
def stopped_sentinels() -> Iterator[str]:
    """A sentinel URL whose two sentinels are down: one that ran and was stopped (its
    primary still runs), one port nothing ever listened on."""
    binary = redis_server_bin()
    if binary is None:
        pytest.skip("redis-server not found")
    s = SentinelSet(binary).start(wait_discovery=False)
    assert s.sentinel is not None
    port = s.sentinel.port
    s.sentinel.stop()
    yield f"redis+sentinel://127.0.0.1:{port},127.0.0.1:{free_port()}/{s.name}"
    s.stop()


def _timed_get(cache: RedisExactCache) -> tuple[Any, float]:
    t0 = time.monotonic()
    got = cache.get(*req(1))
    return got, time.monotonic() - t0


async def _atimed_get(cache: AsyncRedisExactCache) -> tuple[Any, float]:
    t0 = time.monotonic()
    got = await cache.get(*req(1))
    return got, time.monotonic() - t0


def test_stopped_sentinels_first_get_is_a_quick_miss(stopped_sentinels: str) -> None:
    for on_error in ("miss", "raise"):
        cache = RedisExactCache(url=stopped_sentinels, key_prefix="t:sdown", on_error=on_error)
        if on_error == "miss":
            got, took = _timed_get(cache)
            assert got is None
        else:
            t0 = time.monotonic()
            with pytest.raises(CacheUnavailableError, match="No master found"):
                cache.get(*req(1))
            took = time.monotonic() - t0
        assert took < DOWN_BOUND_S
        cache.close()


async def test_async_stopped_sentinels_first_get_is_a_quick_miss(stopped_sentinels: str) -> None:
    cache = AsyncRedisExactCache(url=stopped_sentinels, key_prefix="t:sdown")
    got, took = await _atimed_get(cache)
    assert got is None and took < DOWN_BOUND_S
    await cache.aclose()


def test_silent_sentinel_costs_one_pass(silent: _Silent) -> None:
    """A sentinel that accepts and never answers: one connection, one socket timeout."""
    url = f"redis+sentinel://127.0.0.1:{silent.port}/mymaster"
    cache = RedisExactCache(url=url, key_prefix="t:silent")
    got, took = _timed_get(cache)
    assert got is None and took < DOWN_BOUND_S
    assert len(silent.accepted) == 1  # no retry of the pass (the old code connected 4 times)
    cache.close()


async def test_async_silent_sentinel_costs_one_pass(silent: _Silent) -> None:
    url = f"redis+sentinel://127.0.0.1:{silent.port}/mymaster"
    cache = AsyncRedisExactCache(url=url, key_prefix="t:asilent")
    got, took = await _atimed_get(cache)
    assert got is None and took < DOWN_BOUND_S
    assert len(silent.accepted) == 1
    await cache.aclose()


# -- a password and several sentinels ------------------------------------------------------


@pytest.fixture(scope="module")
def sentinel_auth() -> Iterator[SentinelSet]:
    binary = redis_server_bin()
    if binary is None:
        pytest.skip("redis-server not found")
    s = SentinelSet(binary, name="authed", password="pw:s3cret/x").start(wait_discovery=False)
    yield s
    s.stop()


def _auth_url(s: SentinelSet) -> str:
    assert s.sentinel is not None
    # the first sentinel is down: the second one is asked; the password is URL-quoted
    return f"redis+sentinel://:pw%3As3cret%2Fx@127.0.0.1:{free_port()},127.0.0.1:{s.sentinel.port}/{s.name}"


def test_password_and_two_sentinels(sentinel_auth: SentinelSet) -> None:
    with RedisExactCache(url=_auth_url(sentinel_auth), key_prefix="t:sauth") as cache:
        cache.put(*req(1), response(1))
        assert cache.get(*req(1)) == response(1)
        assert cache.error_count == 0
    assert sentinel_auth.primary is not None
    with sentinel_auth.primary.client() as c:
        assert c.exists("{t:sauth:0}:i") == 1


async def test_async_password_and_two_sentinels(sentinel_auth: SentinelSet) -> None:
    cache = AsyncRedisExactCache(url=_auth_url(sentinel_auth), key_prefix="t:asauth")
    await cache.put(*req(1), response(1))
    assert await cache.get(*req(1)) == response(1)
    assert cache.error_count == 0
    await cache.aclose()


def test_cli_password_and_two_sentinels(sentinel_auth: SentinelSet, capsys: Any) -> None:
    url = _auth_url(sentinel_auth)
    with RedisExactCache(url=url, key_prefix="t:cliauth") as cache:
        cache.put(*req(1), response(1))
    assert main(["stats", "--url", url, "--prefix", "t:cliauth", "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["puts"] == 1
    assert main(["stats", "--url", url, "--prefix", "t:cliauth"]) == 0
    out, err = capsys.readouterr()
    assert "s3cret" not in out + err  # the password is never printed
    assert "***" in out
