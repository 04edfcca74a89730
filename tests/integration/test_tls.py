"""TLS: fleetcache on a redis-server that only speaks TLS, with a throwaway CA made by
``openssl`` (tests/tls.py). A good CA connects (standalone ``rediss://``, a TLS Redis Cluster
node, a sentinel-managed TLS primary; sync and async; a client certificate when the server
demands one); a wrong CA, a missing client certificate or a plain-text client is refused with
a clear error: a management call raises ``CacheUnavailableError`` naming TLS, a data call with
``on_error="miss"`` is a miss, logged once.
"""

from __future__ import annotations

import logging
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from fleetcache import AsyncRedisExactCache, CacheUnavailableError, RedisExactCache
from fleetcache._clients import parse_sentinel_url, tls_options
from fleetcache.embedded import poll

from ..support.flavors import req, response
from ..support.servers import SentinelProc, free_port, redis_server_bin
from ..support.tls import Pki, TlsServer, make_pki, openssl_bin

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    if openssl_bin() is None:
        pytest.skip("openssl not found")
    return make_pki(tmp_path_factory.mktemp("pki"))


def _binary() -> str:
    b = redis_server_bin()
    if b is None:
        pytest.skip("redis-server not found")
    return b


@pytest.fixture(scope="module")
def tls_server(pki: Pki) -> Iterator[TlsServer]:
    s = TlsServer(_binary(), pki=pki, auth_clients="no")
    s.start()
    yield s
    s.close()


@pytest.fixture(scope="module")
def mtls_server(pki: Pki) -> Iterator[TlsServer]:
    """Demands a client certificate signed by the CA (``tls-auth-clients yes``)."""
    s = TlsServer(_binary(), pki=pki, auth_clients="yes")
    s.start()
    yield s
    s.close()


def _url(port: int, **q: str) -> str:
    query = "&".join(f"{k}={quote(v)}" for k, v in q.items())
    return f"rediss://127.0.0.1:{port}/0" + (f"?{query}" if query else "")


def _work(cache: RedisExactCache) -> None:
    cache.put(*req(1), response(1, tokens=7))
    assert cache.get(*req(1)) == response(1, tokens=7)
    assert cache.get(*req(2)) is None
    cache.put_many([(*req(i), response(i)) for i in range(3, 6)])
    assert cache.get_many([req(3), req(4), req(9)]) == [response(3), response(4), None]
    assert len(cache) == 4
    fs = cache.fleet_stats()
    assert (fs.hits, fs.misses, fs.tokens_saved) == (3, 2, 67)


async def _awork(cache: AsyncRedisExactCache) -> None:
    await cache.put(*req(1), response(1, tokens=7))
    assert await cache.get(*req(1)) == response(1, tokens=7)
    assert await cache.get(*req(2)) is None
    assert await cache.size() == 1
    assert (await cache.fleet_stats()).hits == 1


def test_good_ca_connects(tls_server: TlsServer, pki: Pki) -> None:
    url = _url(tls_server.port, ssl_ca_certs=pki.ca_crt)
    with RedisExactCache(url=url, key_prefix="t:tls-sync", on_error="raise") as cache:
        _work(cache)
        # the connections really are TLS
        conn = cache.client.connection_pool.get_connection()
        try:
            assert type(conn).__name__ == "SSLConnection"
        finally:
            cache.client.connection_pool.release(conn)


async def test_good_ca_connects_async(tls_server: TlsServer, pki: Pki) -> None:
    url = _url(tls_server.port, ssl_ca_certs=pki.ca_crt)
    cache = AsyncRedisExactCache(url=url, key_prefix="t:tls-async", on_error="raise")
    try:
        await _awork(cache)
    finally:
        await cache.aclose()


def _refused_urls(server: TlsServer, pki: Pki) -> dict[str, str]:
    return {
        "wrong-ca": _url(server.port, ssl_ca_certs=pki.other_crt),
        "plain-text": f"redis://127.0.0.1:{server.port}/0",
        "system-ca": _url(server.port),  # the test CA is not in the system store
    }


@pytest.mark.parametrize("kind", ["wrong-ca", "plain-text", "system-ca"])
def test_refused_is_a_clear_error(
    tls_server: TlsServer, pki: Pki, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    url = _refused_urls(tls_server, pki)[kind]
    with RedisExactCache(url=url, key_prefix="t:tls-bad", on_error="raise") as cache:
        with pytest.raises(CacheUnavailableError, match="TLS"):
            len(cache)
        with pytest.raises(CacheUnavailableError, match="TLS"):
            cache.get(*req(1))
    caplog.clear()
    with RedisExactCache(url=url, key_prefix="t:tls-bad") as cache:  # on_error="miss"
        with caplog.at_level(logging.WARNING, logger="fleetcache"):
            for _ in range(5):
                assert cache.get(*req(1)) is None
                cache.put(*req(1), response(1))  # skipped
        with pytest.raises(CacheUnavailableError, match="TLS"):  # management: always raises
            cache.fleet_stats()
    warnings = [r for r in caplog.records if r.name == "fleetcache"]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert "TLS" in warnings[0].getMessage()
    with tls_server.client() as admin:  # nothing reached the server
        assert admin.exists("{t:tls-bad:0}:i") == 0


@pytest.mark.parametrize("kind", ["wrong-ca", "plain-text"])
async def test_refused_is_a_clear_error_async(
    tls_server: TlsServer, pki: Pki, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    url = _refused_urls(tls_server, pki)[kind]
    cache = AsyncRedisExactCache(url=url, key_prefix="t:tls-bad-a", on_error="raise")
    try:
        with pytest.raises(CacheUnavailableError, match="TLS"):
            await cache.size()
    finally:
        await cache.aclose()
    caplog.clear()
    cache = AsyncRedisExactCache(url=url, key_prefix="t:tls-bad-a")
    try:
        with caplog.at_level(logging.WARNING, logger="fleetcache"):
            for _ in range(5):
                assert await cache.get(*req(1)) is None
    finally:
        await cache.aclose()
    warnings = [r for r in caplog.records if r.name == "fleetcache"]
    assert len(warnings) == 1 and "TLS" in warnings[0].getMessage()


def test_client_certificate(mtls_server: TlsServer, pki: Pki) -> None:
    """``tls-auth-clients yes``: ssl_certfile/ssl_keyfile from the URL are presented."""
    good = _url(
        mtls_server.port,
        ssl_ca_certs=pki.ca_crt,
        ssl_certfile=pki.client_crt,
        ssl_keyfile=pki.client_key,
        ssl_cert_reqs="required",
    )
    with RedisExactCache(url=good, key_prefix="t:mtls", on_error="raise") as cache:
        _work(cache)
    bare = _url(mtls_server.port, ssl_ca_certs=pki.ca_crt)
    with RedisExactCache(url=bare, key_prefix="t:mtls2", on_error="raise") as cache:
        with pytest.raises(CacheUnavailableError, match="TLS"):
            len(cache)
        with pytest.raises(CacheUnavailableError, match="TLS"):
            cache.put(*req(1), response(1))


async def test_client_certificate_async(mtls_server: TlsServer, pki: Pki) -> None:
    good = _url(
        mtls_server.port,
        ssl_ca_certs=pki.ca_crt,
        ssl_certfile=pki.client_crt,
        ssl_keyfile=pki.client_key,
    )
    cache = AsyncRedisExactCache(url=good, key_prefix="t:mtls-a", on_error="raise")
    try:
        await _awork(cache)
    finally:
        await cache.aclose()


def test_tls_options_are_checked() -> None:
    with pytest.raises(ValueError, match="TLS URL"):
        RedisExactCache(url="redis://127.0.0.1:1/0?ssl_ca_certs=/x")
    with pytest.raises(ValueError, match="TLS URL"):
        RedisExactCache(url="redis+sentinel://127.0.0.1:1/m?ssl_ca_certs=/x")
    with pytest.raises(ValueError, match="unknown TLS option"):
        RedisExactCache(url="rediss://127.0.0.1:1/0?ssl_ca_cert=/x")
    with pytest.raises(ValueError, match="ssl_cert_reqs"):
        AsyncRedisExactCache(url="rediss://127.0.0.1:1/0?ssl_cert_reqs=sometimes")
    with pytest.raises(ValueError, match="ssl_check_hostname"):
        RedisExactCache(url="rediss+cluster://127.0.0.1:1?ssl_check_hostname=maybe")
    assert tls_options("rediss://h/0?ssl_check_hostname=false&ssl_cert_reqs=NONE") == {
        "ssl_check_hostname": False,
        "ssl_cert_reqs": "none",
    }
    parsed = parse_sentinel_url("rediss+sentinel://h:1,h2:2/svc/3?ssl_ca_certs=/ca.pem")
    assert parsed["service"] == "svc" and parsed["db"] == 3
    assert parsed["tls"] == {"ssl_ca_certs": "/ca.pem"}


# -- TLS Redis Cluster (one node holding every slot) and TLS Sentinel ---------------------


@pytest.fixture(scope="module")
def tls_cluster_node(pki: Pki) -> Iterator[TlsServer]:
    node = TlsServer(_binary(), pki=pki)
    conf = os.path.join(node.workdir, "nodes.conf")
    node.extra = (*node.extra, "--cluster-enabled", "yes", "--tls-cluster", "yes",
                  "--cluster-config-file", conf, "--cluster-port", str(free_port()))  # fmt: skip
    node.start()
    with node.client() as c:
        c.execute_command("CLUSTER", "ADDSLOTSRANGE", 0, 16383)
        poll(lambda: c.execute_command("CLUSTER", "INFO").find(b"cluster_state:ok") >= 0, 20,
             "the TLS cluster to be ok")  # fmt: skip
    yield node
    node.close()


def test_tls_cluster(tls_cluster_node: TlsServer, pki: Pki) -> None:
    url = f"rediss+cluster://127.0.0.1:{tls_cluster_node.port}?ssl_ca_certs={quote(pki.ca_crt)}"
    with RedisExactCache(url=url, key_prefix="t:tls-cl", shards=4, on_error="raise") as cache:
        _work(cache)
    bad = f"rediss+cluster://127.0.0.1:{tls_cluster_node.port}?ssl_ca_certs={pki.other_crt}"
    # the sync cluster client reads the slot map when it is built: that failure does not
    # escape the constructor (an app starts during an outage); calls then fail per policy
    with RedisExactCache(url=bad, key_prefix="t:tls-cl", shards=4) as cache:
        assert cache.get(*req()) is None
        with pytest.raises(CacheUnavailableError, match=r"TLS|CERTIFICATE_VERIFY_FAILED"):
            cache.fleet_stats()


async def test_tls_cluster_async(tls_cluster_node: TlsServer, pki: Pki) -> None:
    url = f"rediss+cluster://127.0.0.1:{tls_cluster_node.port}?ssl_ca_certs={quote(pki.ca_crt)}"
    cache = AsyncRedisExactCache(url=url, key_prefix="t:tls-cl-a", shards=4, on_error="raise")
    try:
        await _awork(cache)
    finally:
        await cache.aclose()


@pytest.fixture(scope="module")
def tls_sentinel(pki: Pki, tls_server: TlsServer) -> Iterator[int]:
    """A sentinel (plain port) watching the TLS-only primary over TLS (``tls-replication``)."""
    proc = SentinelProc(_binary())
    sport, workdir = proc.port, Path(proc.workdir)
    lines = [
        f"port {sport}",
        "bind 127.0.0.1",
        f"dir {workdir}",
        f"logfile {workdir / 'sentinel.log'}",
        "tls-replication yes",
        f"tls-cert-file {pki.client_crt}",
        f"tls-key-file {pki.client_key}",
        f"tls-ca-cert-file {pki.ca_crt}",
        f"sentinel monitor fctls 127.0.0.1 {tls_server.port} 1",
        "",
    ]
    (workdir / "sentinel.conf").write_text("\n".join(lines))
    proc.start()

    def knows() -> bool:
        with proc.client() as c:
            flags = dict(zip(*[iter(c.execute_command("SENTINEL", "MASTER", "fctls"))] * 2))
        return b"s_down" not in flags.get(b"flags", b"") and b"disconnected" not in flags.get(
            b"flags", b""
        )

    poll(knows, 20, "the sentinel to reach the TLS primary")
    yield sport
    proc.close()


def test_tls_sentinel(tls_sentinel: int, pki: Pki) -> None:
    url = f"rediss+sentinel://127.0.0.1:{tls_sentinel}/fctls?ssl_ca_certs={quote(pki.ca_crt)}"
    with RedisExactCache(url=url, key_prefix="t:tls-sen", on_error="raise") as cache:
        _work(cache)
    bad = f"rediss+sentinel://127.0.0.1:{tls_sentinel}/fctls?ssl_ca_certs={pki.other_crt}"
    with RedisExactCache(url=bad, key_prefix="t:tls-sen", on_error="raise") as cache:
        with pytest.raises(CacheUnavailableError, match="TLS"):
            len(cache)


async def test_tls_sentinel_async(tls_sentinel: int, pki: Pki) -> None:
    url = f"rediss+sentinel://127.0.0.1:{tls_sentinel}/fctls?ssl_ca_certs={quote(pki.ca_crt)}"
    cache = AsyncRedisExactCache(url=url, key_prefix="t:tls-sen-a", on_error="raise")
    try:
        await _awork(cache)
    finally:
        await cache.aclose()


def test_openssl_made_a_real_chain(pki: Pki) -> None:
    """The fixture's server certificate verifies against its CA and not the other one."""
    ok = subprocess.run(
        ["openssl", "verify", "-CAfile", pki.ca_crt, pki.server_crt], capture_output=True
    )
    bad = subprocess.run(
        ["openssl", "verify", "-CAfile", pki.other_crt, pki.server_crt], capture_output=True
    )
    assert ok.returncode == 0 and bad.returncode != 0
