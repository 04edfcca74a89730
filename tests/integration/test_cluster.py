"""Redis Cluster: a namespace spread over S hash-tagged shards on a real 3-primary cluster.

The behaviour suite already runs on the cluster backend (conftest ``BACKENDS``); these tests
cover what only a cluster has: the shards' spread over nodes, one round trip per node for
the per-shard scripts, script reload on every primary, the recorded layout, resharding
(TRYAGAIN/ASK) under the error policy, and a slot moved while worker threads run.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest
import redis
import redis.asyncio.cluster
import redis.cluster
from redis.crc import key_slot

from fleetcache import (
    AsyncRedisExactCache,
    CacheUnavailableError,
    LayoutMismatchError,
    LLMResponse,
    RedisExactCache,
)
from fleetcache.embedded import CLUSTER_MAX_PORT, EmbeddedCluster, poll, redis_cli_bin

from ..support.cluster import move_slot
from ..support.flavors import req, response
from ..support.servers import ServerProc, free_port, redis_server_bin

pytestmark = pytest.mark.timeout(120)


def _slot_of(prefix: str, shard: int) -> int:
    return int(key_slot(f"{{{prefix}:{shard}}}:i".encode()))


def _other_primary(cluster: EmbeddedCluster, slot: int) -> int:
    owner = cluster.owner_port(slot)
    return next(p for p in cluster.ports if p != owner)


def test_client_form_every_operation(cluster_proc: EmbeddedCluster, prefix: str) -> None:
    """``client=RedisCluster(...)``, shards=5: every public operation."""
    rc = cluster_proc.client()
    with RedisExactCache(client=rc, key_prefix=prefix, shards=5, ttl_seconds=60) as c:
        for i in range(40):
            c.put(*req(i), response(i, tokens=10))
        assert len(c) == 40
        for i in range(40):
            assert c.get(*req(i)) == response(i, tokens=10)
        assert c.get(*req("absent")) is None
        assert c.invalidate(*req(0)) is True
        s = c.fleet_stats()
        assert (s.hits, s.misses, s.puts, s.invalidations, s.size) == (40, 1, 40, 1, 39)
        assert s.tokens_saved == 400
        assert c.stats.hits == 40
        # an entry that vanished without a script: reconcile finds it
        rc.delete(c._core.keys.entry(c._core.request(req(1))[2], c._core.request(req(1))[1]))
        assert c.reconcile() == 1
        assert len(c) == 38
        c.reset_stats()
        assert c.fleet_stats().hits == 0
        c.clear()
        assert len(c) == 0
    rc.close()


async def test_async_client_form_every_operation(
    cluster_proc: EmbeddedCluster, prefix: str
) -> None:
    rc = redis.asyncio.cluster.RedisCluster(host="127.0.0.1", port=cluster_proc.ports[1])
    c = AsyncRedisExactCache(client=rc, key_prefix=prefix, shards=5)
    try:
        for i in range(30):
            await c.put(*req(i), response(i))
        assert await c.size() == 30
        for i in range(30):
            assert await c.get(*req(i)) == response(i)
        assert await c.invalidate(*req(3)) is True
        s = await c.fleet_stats()
        assert (s.hits, s.puts, s.invalidations, s.size) == (30, 30, 1, 29)
        assert await c.reconcile() == 0
        await c.clear()
        assert await c.size() == 0
    finally:
        await c.aclose()
        await rc.aclose()


def test_url_form_builds_a_cluster_client(cluster_proc: EmbeddedCluster, prefix: str) -> None:
    with RedisExactCache(url=cluster_proc.url, key_prefix=prefix, shards=3) as c:
        assert isinstance(c.client, redis.cluster.RedisCluster)
        c.put(*req(1), response(1))
        assert c.get(*req(1)) == response(1)


async def test_async_url_form_builds_a_cluster_client(
    cluster_proc: EmbeddedCluster, prefix: str
) -> None:
    c = AsyncRedisExactCache(url=cluster_proc.url, key_prefix=prefix, shards=3)
    try:
        assert isinstance(c.client, redis.asyncio.cluster.RedisCluster)
        await c.put(*req(1), response(1))
        assert await c.get(*req(1)) == response(1)
    finally:
        await c.aclose()


async def test_cold_async_cluster_burst_is_served(
    cluster_proc: EmbeddedCluster, prefix: str
) -> None:
    """A burst of concurrent first calls on fresh async cluster caches (an app's first
    requests after start): every call is answered and none raises. redis-py's cold async
    RedisCluster breaks under such a burst (an AttributeError from a connection being set
    up); the cache serialises its first call, and a non-Redis exception from the client
    would be a counted fault, not an exception in the caller."""
    url = cluster_proc.url
    seed = RedisExactCache(url=url, key_prefix=prefix, shards=4)
    seed.put(*req(1), response(1))
    seed.close()
    # generous timeouts: what is tested is that a cold burst is served and raises nothing,
    # not the 0.25 s fail-open connect timeout (100 cold connects on a loaded 2-core machine
    # under coverage can take longer; cluster URLs do not retry: a retry could count twice)
    caches = [
        AsyncRedisExactCache(
            url=url, key_prefix=prefix, shards=4, socket_timeout=5, connect_timeout=5
        )
        for _ in range(4)
    ]
    try:
        got = await asyncio.gather(*(c.get(*req(1)) for c in caches for _ in range(25)))
        assert got == [response(1)] * 100
        assert sum(c.error_count for c in caches) == 0
    finally:
        for c in caches:
            await c.aclose()


def test_shards_spread_over_every_primary(cluster_proc: EmbeddedCluster) -> None:
    """A fixed namespace (deterministic slots) with S=16 has keys on all 3 primaries."""
    prefix = "t:spread-fixed"
    with RedisExactCache(url=cluster_proc.url, key_prefix=prefix, shards=16) as c:
        c.clear()
        for i in range(200):
            c.put(*req(i), response(i))
        owners = {cluster_proc.owner_port(_slot_of(prefix, s)) for s in range(16)}
        assert owners == set(cluster_proc.ports)
        per_node = []
        for port in cluster_proc.ports:
            with cluster_proc.node_client(port) as n:
                per_node.append(int(n.dbsize()))  # test-side look only (no product SCAN)
        assert all(n > 0 for n in per_node)
        assert len(c) == 200
        c.clear()


def test_per_shard_scripts_take_one_round_trip_per_node(
    cluster_proc: EmbeddedCluster, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """fleet_stats over 64 shards writes once per node (3), not once per shard (64)."""
    with RedisExactCache(url=cluster_proc.url, key_prefix=prefix, shards=64) as c:
        c.put(*req(1), response(1))
        c.fleet_stats()  # warm: slot map and connections
        sends: list[Any] = []
        original = redis.connection.AbstractConnection.send_packed_command

        def counting(self: Any, command: Any, check_health: bool = True) -> None:
            sends.append(self.port)
            original(self, command, check_health)  # type: ignore[no-untyped-call]

        monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", counting)
        s = c.fleet_stats()
        n = len(c)
        monkeypatch.undo()
        assert s.size == 1 and n == 1
        assert len(sends) <= 2 * len(cluster_proc.ports), sends  # two batches, <= 3 writes each


def test_scripts_reload_on_every_primary(cluster_proc: EmbeddedCluster, prefix: str) -> None:
    """After SCRIPT FLUSH on all nodes, single calls and batches reload by themselves."""
    with RedisExactCache(url=cluster_proc.url, key_prefix=prefix, shards=6) as c:
        c.put(*req(1), response(1))
        for port in cluster_proc.ports:
            with cluster_proc.node_client(port) as n:
                n.script_flush()
        assert c.fleet_stats().size == 1  # batch over 3 nodes, NOSCRIPT on each
        for port in cluster_proc.ports:
            with cluster_proc.node_client(port) as n:
                n.script_flush()
        assert c.get(*req(1)) == response(1)  # single call
        assert c.error_count == 0


def test_layout_mismatch_on_other_shard_count(cluster_proc: EmbeddedCluster, prefix: str) -> None:
    with RedisExactCache(url=cluster_proc.url, key_prefix=prefix, shards=4) as c:
        c.put(*req(1), response(1))
    with RedisExactCache(
        url=cluster_proc.url, key_prefix=prefix, shards=8, on_error="raise"
    ) as other:
        with pytest.raises(LayoutMismatchError, match="shards=4"):
            other.get(*req(1))
        assert isinstance(LayoutMismatchError("x"), ValueError)
    with RedisExactCache(url=cluster_proc.url, key_prefix=prefix, shards=8) as lenient:
        assert lenient.get(*req(1)) is None  # "miss": a counted, logged fault, not raised
        assert lenient.error_count == 1
    with RedisExactCache(url=cluster_proc.url, key_prefix=prefix, shards=4) as same:
        assert same.get(*req(1)) == response(1)


def _half_migrate(cluster: EmbeddedCluster, slot: int, dst_port: int, keys: list[str]) -> None:
    """Slot in MIGRATING/IMPORTING state with only ``keys`` moved (TRYAGAIN territory)."""
    src_port = cluster.owner_port(slot)
    src_id, dst_id = cluster.node_id(src_port), cluster.node_id(dst_port)
    with cluster.node_client(src_port) as src, cluster.node_client(dst_port) as dst:
        dst.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", src_id)
        src.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", dst_id)
        src.execute_command("MIGRATE", "127.0.0.1", dst_port, "", 0, 5000, "KEYS", *keys)


def test_half_moved_slot_is_a_miss_not_an_exception(
    cluster_proc: EmbeddedCluster, prefix: str
) -> None:
    """Entry moved, index and counters not yet: the script's keys are split between two
    nodes, so the servers answer TRYAGAIN (redis-py retries, then gives up). With
    on_error="miss" get is a miss and put a skip; with "raise" a CacheUnavailableError.
    Once the move completes the entry is served again and the counters are whole."""
    c = RedisExactCache(url=cluster_proc.url, key_prefix=prefix, shards=1, breaker_seconds=0)
    strict = RedisExactCache(url=cluster_proc.url, key_prefix=prefix, on_error="raise")
    try:
        c.put(*req(1), response(1))
        assert c.get(*req(1)) == response(1)
        entry, _index, _stats = (
            c._core.keys.entry(0, c._core.request(req(1))[1]),
            c._core.keys.index(0),
            c._core.keys.stats(0),
        )
        slot = _slot_of(prefix, 0)
        dst = _other_primary(cluster_proc, slot)
        _half_migrate(cluster_proc, slot, dst, [entry])
        errors = c.error_count
        assert c.get(*req(1)) is None
        c.put(*req(2), response(2))
        assert c.error_count == errors + 2
        with pytest.raises(CacheUnavailableError):
            strict.get(*req(1))
        move_slot(cluster_proc, slot, dst)  # finish the move (index, counters, meta)
        assert c.get(*req(1)) == response(1)
        s = c.fleet_stats()
        assert (s.hits, s.puts, s.size) == (2, 1, 1)
    finally:
        c.close()
        strict.close()


def test_slot_moved_while_workers_run(cluster_proc: EmbeddedCluster, prefix: str) -> None:
    """Move shard 0's slot to another primary (SETSLOT IMPORTING/MIGRATING + MIGRATE in
    small batches + SETSLOT NODE) while 4 threads run gets and puts. No exception escapes,
    and the fleet counters equal the calls that reached Redis: every get is a hit, a miss
    or a counted fault; every put is stored or a counted fault."""
    shards = 2
    seed = RedisExactCache(url=cluster_proc.url, key_prefix=prefix, shards=shards)
    for i in range(200):
        seed.put(*req(i), response(i))
    seed.reset_stats()
    slot = _slot_of(prefix, 0)
    dst = _other_primary(cluster_proc, slot)

    stop = threading.Event()
    escaped: list[BaseException] = []
    tallies: list[dict[str, int]] = []

    def worker(w: int) -> None:
        # separate caches for gets and puts so each one's error_count is per operation;
        # long socket timeouts so a slow reply is never a fault after the script ran
        kw: dict[str, Any] = {
            "url": cluster_proc.url,
            "key_prefix": prefix,
            "shards": shards,
            "breaker_seconds": 0,
            "socket_timeout": 5,
        }
        getter, putter = RedisExactCache(**kw), RedisExactCache(**kw)
        t = {"gets": 0, "found": 0, "puts": 0, "get_err": 0, "put_err": 0}
        try:
            deadline = time.monotonic() + 30
            for n in range(100_000):  # bounded in count and time
                if stop.is_set() or time.monotonic() > deadline:
                    break
                i = (w * 7919 + n) % 300  # 200 present + 100 absent keys
                if n % 4 == 0:
                    putter.put(*req(i), response(i))
                    t["puts"] += 1
                else:
                    got = getter.get(*req(i))
                    t["gets"] += 1
                    if got is not None:
                        assert got == response(i)
                        t["found"] += 1
            t["get_err"], t["put_err"] = getter.error_count, putter.error_count
            tallies.append(t)
        except BaseException as exc:
            escaped.append(exc)
        finally:
            getter.close()
            putter.close()

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(4)]
    for th in threads:
        th.start()
    pauses = 0

    def pause() -> None:
        nonlocal pauses
        pauses += 1
        time.sleep(0.02)  # let traffic hit the half-moved slot between MIGRATE batches

    try:
        time.sleep(0.2)
        moved = move_slot(cluster_proc, slot, dst, batch=5, pause=pause)
        time.sleep(0.2)
    finally:
        stop.set()
        for th in threads:
            th.join(60)
    assert not escaped, escaped
    assert len(tallies) == 4
    in_shard0 = sum(1 for i in range(200) if seed._core.request(req(i))[2] == 0)
    assert moved >= in_shard0  # at least shard 0's entries (plus its index and counters)
    assert cluster_proc.owner_port(slot) == dst
    gets = sum(t["gets"] for t in tallies)
    puts = sum(t["puts"] for t in tallies)
    get_err = sum(t["get_err"] for t in tallies)
    put_err = sum(t["put_err"] for t in tallies)
    found = sum(t["found"] for t in tallies)
    s = seed.fleet_stats()
    print(f"moved={moved} pauses={pauses} gets={gets} puts={puts} faults={get_err}+{put_err}")
    assert s.hits + s.misses == gets - get_err, (s, tallies)
    assert s.puts == puts - put_err, (s, tallies)
    assert s.hits == found
    assert gets > 0 and puts > 0
    assert len(seed) >= 200
    assert seed.error_count == 0
    seed.close()


def test_async_half_moved_slot_is_a_miss(cluster_proc: EmbeddedCluster, prefix: str) -> None:
    """The asyncio cluster client under TRYAGAIN: a miss and a skipped put, no exception."""

    async def scenario() -> None:
        c = AsyncRedisExactCache(url=cluster_proc.url, key_prefix=prefix, breaker_seconds=0)
        try:
            await c.put(*req(1), response(1))
            entry = c._core.keys.entry(0, c._core.request(req(1))[1])
            slot = _slot_of(prefix, 0)
            dst = _other_primary(cluster_proc, slot)
            _half_migrate(cluster_proc, slot, dst, [entry])
            assert await c.get(*req(1)) is None
            await c.put(*req(2), response(2))
            assert c.error_count == 2
            move_slot(cluster_proc, slot, dst)
            got = await c.get(*req(1))
            assert isinstance(got, LLMResponse) and got == response(1)
        finally:
            await c.aclose()

    asyncio.run(scenario())


def test_cluster_down_is_a_miss(prefix: str) -> None:
    """A private cluster loses a primary (kill -9): once the survivors say cluster_state:fail
    they answer CLUSTERDOWN, the dead node refuses connections. get = miss, put = skip with
    on_error="miss"; CacheUnavailableError with "raise"; nothing else escapes."""
    binary, cli = redis_server_bin(), redis_cli_bin()
    assert binary and cli
    cluster = EmbeddedCluster(binary, cli, node_timeout_ms=500).start()
    try:
        c = RedisExactCache(url=cluster.url, key_prefix=prefix, shards=8, breaker_seconds=0)
        strict = RedisExactCache(url=cluster.url, key_prefix=prefix, shards=8, on_error="raise")
        for i in range(20):
            c.put(*req(i), response(i))
        assert strict.get(*req(1)) == response(1)
        cluster.nodes[2].kill()

        def survivors_fail() -> bool:
            for port in cluster.ports[:2]:
                with cluster.node_client(port) as n:
                    if b"cluster_state:fail" not in n.execute_command("CLUSTER", "INFO"):
                        return False
            return True

        poll(survivors_fail, 30, "cluster_state:fail on the surviving nodes")
        for i in range(4):
            assert c.get(*req(i)) is None
        c.put(*req(99), response(99))
        assert c.error_count == 5
        with pytest.raises(CacheUnavailableError):
            strict.get(*req(1))
        c.close()
        strict.close()
    finally:
        cluster.stop()


# -- the cluster down when the app starts --------------------------------------------------


def test_app_starts_during_a_cluster_outage_and_works_once_it_is_up(prefix: str) -> None:
    """Constructors never raise for an outage: the client is built on first use. Until the
    cluster answers, data calls miss / skip ("miss") or raise CacheUnavailableError
    ("raise"), management calls raise CacheUnavailableError; then the same objects work."""
    binary, cli = redis_server_bin(), redis_cli_bin()
    assert binary and cli
    seed = free_port(CLUSTER_MAX_PORT)
    url = f"redis+cluster://127.0.0.1:{seed}"
    lenient = RedisExactCache(url=url, key_prefix=prefix, shards=4, breaker_seconds=0)
    strict = RedisExactCache(url=url, key_prefix=prefix, shards=4, on_error="raise")
    alenient = AsyncRedisExactCache(url=url, key_prefix=prefix, shards=4, breaker_seconds=0)
    astrict = AsyncRedisExactCache(url=url, key_prefix=prefix, shards=4, on_error="raise")

    async def async_down() -> None:
        assert await alenient.get(*req(1)) is None
        await alenient.put(*req(1), response(1))  # skipped
        with pytest.raises(CacheUnavailableError):
            await astrict.get(*req(1))
        with pytest.raises(CacheUnavailableError):
            await alenient.fleet_stats()

    assert lenient.get(*req(1)) is None
    lenient.put(*req(1), response(1))  # skipped, no exception
    with pytest.raises(CacheUnavailableError):
        strict.get(*req(1))
    for call in (lenient.fleet_stats, strict.reset_stats, lambda: len(lenient)):
        with pytest.raises(CacheUnavailableError):
            call()
    asyncio.run(async_down())
    assert lenient.error_count >= 3

    cluster = EmbeddedCluster(binary, cli, first_port=seed).start()
    try:
        lenient.put(*req(1), response(1))
        assert lenient.get(*req(1)) == response(1)
        assert strict.get(*req(1)) == response(1)

        async def async_up() -> None:
            assert await alenient.get(*req(1)) == response(1)
            await alenient.put(*req(2), response(2))
            assert await astrict.get(*req(2)) == response(2)
            fs = await astrict.fleet_stats()
            assert (fs.hits, fs.puts, fs.size) == (4, 2, 2)  # only the served calls counted
            await alenient.aclose()
            await astrict.aclose()

        asyncio.run(async_up())
        assert isinstance(lenient.client, redis.cluster.RedisCluster)
        lenient.close()
        strict.close()
    finally:
        cluster.stop()


def test_cluster_url_on_a_standalone_server_does_not_raise_at_construction(
    redis_proc: ServerProc, prefix: str
) -> None:
    url = f"redis+cluster://127.0.0.1:{redis_proc.port}"
    cache = RedisExactCache(url=url, key_prefix=prefix)
    assert cache.get(*req(1)) is None
    with pytest.raises(CacheUnavailableError, match=r"(?i)cluster"):
        cache.fleet_stats()
