"""Redis faults, through both flavours: connection refused, a server that
accepts but never answers, timeouts (CLIENT PAUSE), SCRIPT FLUSH, a restart; the error policy
(on_error="miss"/"raise", management calls always raise), the breaker, rate-limited logs.

Bounds like ``< 2 s`` are behaviour (a stalled Redis must not hold an LLM call), generous on
purpose for a loaded 2-core machine; speed itself is measured in the benchmarks."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
import redis.asyncio

from fleetcache import CacheUnavailableError, LLMResponse

from ..support.flavors import CacheFactory, Flavor, req, response
from ..support.servers import ServerProc, free_port

BOUND = 2.0  # seconds a data call may take against a dead or stalled server (default config)

# Faults against servers of the test's own making: backend-independent, run once.
standalone_only = pytest.mark.backends("redis")


class StalledServer:
    """A loopback TCP listener that accepts connections and never replies."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.sock.settimeout(0.05)
        self.port = int(self.sock.getsockname()[1])
        self.accepted: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            self.accepted.append(conn)  # read nothing, answer nothing

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        for c in self.accepted:
            c.close()
        self.sock.close()


@pytest.fixture
def stalled() -> Iterator[StalledServer]:
    s = StalledServer()
    yield s
    s.close()


@pytest.fixture
def refused_url() -> str:
    return f"redis://127.0.0.1:{free_port()}/0"


async def timed(coro: Any) -> tuple[Any, float]:
    t0 = time.monotonic()
    result = await coro
    return result, time.monotonic() - t0


async def data_calls_fail_open(c: Flavor) -> None:
    got, dt = await timed(c.get(*req(1)))
    assert got is None and dt < BOUND
    got, dt = await timed(c.put(*req(1), response(1)))
    assert got is None and dt < BOUND
    got, dt = await timed(c.invalidate(*req(1)))
    assert got is False and dt < BOUND


MANAGEMENT = ["clear", "size", "stats", "fleet_stats", "reconcile", "reset_stats"]


async def management_calls_raise(c: Flavor) -> None:
    for name in MANAGEMENT:
        t0 = time.monotonic()
        with pytest.raises(CacheUnavailableError) as info:
            await getattr(c, name)()
        assert time.monotonic() - t0 < BOUND
        assert isinstance(info.value.__cause__, (redis.RedisError, OSError)), name


# -- connection refused ----------------------------------------------------------------------


@standalone_only
async def test_refused_fail_open(cache_factory: CacheFactory, refused_url: str) -> None:
    c = cache_factory(url=refused_url, breaker_seconds=0)  # every call really tries
    for _ in range(3):
        await data_calls_fail_open(c)
    assert c.cache.error_count >= 9
    await management_calls_raise(c)


@standalone_only
async def test_refused_raise_policy(cache_factory: CacheFactory, refused_url: str) -> None:
    c = cache_factory(url=refused_url, on_error="raise")
    for call in (
        lambda: c.get(*req(1)),
        lambda: c.put(*req(1), response(1)),
        lambda: c.invalidate(*req(1)),
    ):
        t0 = time.monotonic()
        with pytest.raises(CacheUnavailableError) as info:
            await call()
        assert time.monotonic() - t0 < BOUND
        assert isinstance(info.value.__cause__, redis.ConnectionError)
    await management_calls_raise(c)


# -- a server that accepts and never answers ---------------------------------------------------


@standalone_only
async def test_stalled_server_fail_open(
    cache_factory: CacheFactory, stalled: StalledServer
) -> None:
    c = cache_factory(url=stalled.url, breaker_seconds=0)
    await data_calls_fail_open(c)
    assert stalled.accepted  # the calls really reached the listener
    await management_calls_raise(c)


@standalone_only
async def test_stalled_server_raise_policy(
    cache_factory: CacheFactory, stalled: StalledServer
) -> None:
    c = cache_factory(url=stalled.url, on_error="raise")
    t0 = time.monotonic()
    with pytest.raises(CacheUnavailableError) as info:
        await c.get(*req(1))
    assert time.monotonic() - t0 < BOUND
    assert isinstance(info.value.__cause__, (redis.TimeoutError, redis.ConnectionError))


@standalone_only
async def test_breaker_short_circuits_data_calls(
    cache_factory: CacheFactory, stalled: StalledServer
) -> None:
    c = cache_factory(url=stalled.url, breaker_seconds=60)
    assert await c.get(*req(1)) is None  # the fault: opens the breaker
    errors, connections = c.cache.error_count, len(stalled.accepted)
    for _ in range(20):
        got, dt = await timed(c.get(*req(1)))
        assert got is None and dt < BOUND
        await c.put(*req(1), response(1))
        assert await c.invalidate(*req(1)) is False
    assert c.cache.error_count == errors  # short-circuited: no new faults...
    assert len(stalled.accepted) == connections  # ...and no new connections
    # Input validation still happens while the breaker is open.
    with pytest.raises(TypeError):
        await c.get("q", "s", "m", None, 1)
    with pytest.raises(TypeError):
        await c.put("q", "s", "m", 0.0, "1", response(1))
    with pytest.raises(ValueError):
        await c.put(*req(1), response(1), ttl_seconds=0)
    # Management calls are never short-circuited into made-up numbers.
    with pytest.raises(CacheUnavailableError):
        await c.size()


@standalone_only
async def test_errors_are_logged_rate_limited(
    cache_factory: CacheFactory, refused_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="fleetcache")
    c = cache_factory(url=refused_url, breaker_seconds=0)
    for _ in range(15):
        assert await c.get(*req(1)) is None
    assert c.cache.error_count == 15
    lines = [r for r in caplog.records if r.name == "fleetcache"]
    assert 1 <= len(lines) <= 2


# -- timeouts on a real server (CLIENT PAUSE) ------------------------------------------------


@pytest.mark.backends("redis", "valkey")
async def test_paused_server_times_out_then_recovers(
    cache_factory: CacheFactory, private_server: Callable[..., ServerProc]
) -> None:
    srv = private_server()
    c = cache_factory(url=srv.url, breaker_seconds=0)
    await c.put(*req(1), response(1))
    with srv.client() as admin:
        # Every client stalls until the pause ends by itself (even an UNPAUSE would wait).
        admin.execute_command("CLIENT", "PAUSE", 1500, "ALL")
    got, dt = await timed(c.get(*req(1)))
    assert got is None and dt < BOUND
    assert c.cache.error_count == 1
    _, dt = await timed(c.put(*req(2), response(2)))
    assert dt < BOUND
    await eventually_hits(c, req(1), response(1))


async def eventually_hits(c: Flavor, fields: Any, expect: LLMResponse, timeout: float = 15) -> None:
    """Poll (bounded) until the cache serves ``expect`` again: recovery, not a fixed sleep."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            got = await c.get(*fields)
        except CacheUnavailableError:
            got = None
        if got == expect:
            return
        assert time.monotonic() < deadline, "the cache did not recover"
        await asyncio.sleep(0.05)


# -- SCRIPT FLUSH and restarts ---------------------------------------------------------------


async def test_script_flush_mid_run_recovers(cache_factory: CacheFactory, r: Any) -> None:
    c = cache_factory(on_error="raise")  # a NOSCRIPT leak would raise here
    await c.put(*req(1), response(1))
    ops: list[Callable[[], Any]] = [
        lambda: c.get(*req(1)),
        lambda: c.put(*req(2), response(2)),
        lambda: c.size(),
        lambda: c.fleet_stats(),
        lambda: c.reconcile(),
        lambda: c.invalidate(*req(2)),
        lambda: c.stats(),
        lambda: c.reset_stats(),
    ]
    for op in ops:
        r.script_flush()
        await op()
    r.script_flush()
    assert await c.get(*req(1)) == response(1)
    r.script_flush()
    await c.clear()
    assert await c.size() == 0


@pytest.mark.backends("redis", "valkey")
@pytest.mark.parametrize("how", ["stop", "kill"])
async def test_server_restart_recovers(
    cache_factory: CacheFactory, private_server: Callable[..., ServerProc], how: str
) -> None:
    srv = private_server()
    c = cache_factory(url=srv.url)
    await c.put(*req(1), response(1))
    assert await c.get(*req(1)) == response(1)
    if how == "kill":
        srv.kill()
    else:
        srv.stop()
    await data_calls_fail_open(c)  # down: misses and skips
    srv.start()  # same port, empty (no persistence)
    deadline = time.monotonic() + 15
    while True:  # the same cache object, no re-creation
        await c.put(*req(1), response(1))
        if await c.get(*req(1)) == response(1):
            break
        assert time.monotonic() < deadline, "the cache did not recover after a restart"
        await asyncio.sleep(0.05)
    fs = await c.fleet_stats()
    assert fs.size == 1 and fs.hits >= 1


@pytest.mark.backends("redis", "valkey")
async def test_restart_with_raise_policy_recovers(
    cache_factory: CacheFactory, private_server: Callable[..., ServerProc]
) -> None:
    srv = private_server()
    c = cache_factory(url=srv.url, on_error="raise")
    await c.put(*req(1), response(1))
    srv.restart()
    await eventually_hits_after_put(c)


async def eventually_hits_after_put(c: Flavor, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            await c.put(*req(1), response(1))
            if await c.get(*req(1)) == response(1):
                return
        except CacheUnavailableError:
            pass
        assert time.monotonic() < deadline, "the cache did not recover"
        await asyncio.sleep(0.05)


# -- a full connection pool is not an outage ---------------------------------------------------


@standalone_only
async def test_pool_exhaustion_does_not_open_breaker(
    cache_factory: CacheFactory, backend: Any
) -> None:
    """A user-given client with a tiny non-blocking pool: calls that find it full fail open,
    but the breaker stays closed (the next call is served)."""
    if cache_factory.kind == "async":
        client: Any = redis.asyncio.Redis.from_url(backend.url, max_connections=2)
    else:
        client = redis.Redis.from_url(backend.url, max_connections=2)
    try:
        c = cache_factory(client=client, breaker_seconds=60)
        await c.put(*req(1), response(1))
        if c.is_async:
            results = await asyncio.gather(*(c.get(*req(1)) for _ in range(20)))
            assert None in results  # some found the pool full...
            assert c.cache.error_count > 0
        else:
            errors: list[BaseException] = []
            sync_cache = c.cache

            def burst() -> None:
                try:
                    for _ in range(30):
                        sync_cache.get(*req(1))
                except BaseException as exc:
                    errors.append(exc)

            threads = [threading.Thread(target=burst) for _ in range(8)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
            assert not errors
        assert await c.get(*req(1)) == response(1)  # ...and the breaker did not open
    finally:
        if cache_factory.kind == "async":
            await client.aclose()
        else:
            client.close()


class _BrokenClient:
    """A client object whose I/O method fails with a non-Redis exception, as redis-py's cold
    async cluster client once did (AttributeError). Not a stand-in for Redis behaviour: it
    checks that a client-library bug meets the error policy instead of the caller."""

    def evalsha(self, *_: Any) -> Any:
        raise AttributeError("'NoneType' object has no attribute 'writelines'")


def test_client_library_bug_is_a_fault_not_an_exception() -> None:
    from fleetcache import RedisExactCache

    cache = RedisExactCache(client=_BrokenClient(), key_prefix="t:broken")
    assert cache.get(*req(1)) is None
    cache.put(*req(1), response(1))
    assert cache.error_count == 2
    strict = RedisExactCache(client=_BrokenClient(), key_prefix="t:broken", on_error="raise")
    with pytest.raises(CacheUnavailableError) as info:
        strict.get(*req(1))
    assert isinstance(info.value.__cause__, redis.RedisError)
    assert isinstance(info.value.__cause__.__cause__, AttributeError)
    with pytest.raises(TypeError):  # bad input still raises, whatever the client does
        cache.get("u", "s", "m", None, 1)  # type: ignore[arg-type]
