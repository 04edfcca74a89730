"""Test helpers for Redis Cluster and Sentinel: real servers on free loopback ports, started
by the test session, readiness by polling, stopped by PID. The cluster itself is the
package's ``fleetcache.embedded.EmbeddedCluster`` (the benchmarks start theirs with it too).

- ``poll``: call a condition until it holds, backing off.
- ``move_slot``: move one hash slot to another primary while clients run (SETSLOT
  IMPORTING/MIGRATING, MIGRATE in batches, SETSLOT NODE), the way ``redis-cli --cluster
  reshard`` does it.
- ``SentinelSet``: a primary, a replica and one sentinel (``redis-server --sentinel``) with a
  short ``down-after-milliseconds`` so a failover takes about a second.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import redis
import redis.cluster

from fleetcache.embedded import EmbeddedCluster, poll

from .servers import SentinelProc, ServerProc


def move_slot(
    cluster: EmbeddedCluster,
    slot: int,
    dst_port: int,
    *,
    batch: int = 10,
    pause: Callable[[], None] | None = None,
) -> int:
    """Move ``slot`` to the primary on ``dst_port`` while clients keep running.

    Steps: IMPORTING on the target, MIGRATING on the source, MIGRATE the slot's keys
    ``batch`` at a time (``pause()`` runs between batches so the test can let traffic hit the
    half-moved slot), then SETSLOT NODE on target, source and the rest. Returns the number
    of keys moved.
    """
    src_port = cluster.owner_port(slot)
    if src_port == dst_port:
        raise ValueError("slot already on the target node")
    src_id, dst_id = cluster.node_id(src_port), cluster.node_id(dst_port)
    moved = 0
    with cluster.node_client(src_port) as src, cluster.node_client(dst_port) as dst:
        dst.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", src_id)
        src.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", dst_id)
        for _ in range(100_000):  # bounded: a slot holds far fewer keys in these tests
            keys = src.execute_command("CLUSTER", "GETKEYSINSLOT", slot, batch)
            if not keys:
                break
            src.execute_command(
                "MIGRATE", "127.0.0.1", dst_port, "", 0, 5000, "REPLACE", "KEYS", *keys
            )
            moved += len(keys)
            if pause is not None:
                pause()
        dst.execute_command("CLUSTER", "SETSLOT", slot, "NODE", dst_id)
        src.execute_command("CLUSTER", "SETSLOT", slot, "NODE", dst_id)
    for port in cluster.ports:
        if port not in (src_port, dst_port):
            with cluster.node_client(port) as c:
                c.execute_command("CLUSTER", "SETSLOT", slot, "NODE", dst_id)
    cluster.wait_ok()
    return moved


@dataclass
class SentinelSet:
    """A primary, one replica and one sentinel watching them as ``name``, on 127.0.0.1."""

    binary: str
    name: str = "fcprimary"
    down_after_ms: int = 500
    failover_timeout_ms: int = 2000
    #: ``requirepass`` of the primary and the replica (the sentinel gets ``auth-pass``)
    password: str | None = None
    primary: ServerProc | None = None
    replica: ServerProc | None = None
    sentinel: ServerProc | None = None

    def start(self, timeout: float = 30.0, *, wait_discovery: bool = True) -> SentinelSet:
        """Start all three; with ``wait_discovery`` (needed for a failover) also poll until
        the sentinel knows the replica."""
        try:
            # no 5 s wait before the diskless full sync (both nodes: either may be primary)
            fast = ("--repl-diskless-sync-delay", "0")
            self.primary = _node(self.binary, self.password, fast).start()
            self.replica = _node(
                self.binary,
                self.password,
                (*fast, "--replicaof", "127.0.0.1", str(self.primary.port)),
            ).start()
            sentinel = SentinelProc(self.binary)  # its own free port and directory
            sport = sentinel.port
            workdir = Path(sentinel.workdir)
            conf = workdir / "sentinel.conf"
            conf.write_text(
                "\n".join(
                    [
                        f"port {sport}",
                        "bind 127.0.0.1",
                        f"dir {workdir}",
                        f"logfile {workdir / 'sentinel.log'}",
                        f"sentinel monitor {self.name} 127.0.0.1 {self.primary.port} 1",
                        f"sentinel down-after-milliseconds {self.name} {self.down_after_ms}",
                        f"sentinel failover-timeout {self.name} {self.failover_timeout_ms}",
                        f"sentinel parallel-syncs {self.name} 1",
                        *(
                            [f"sentinel auth-pass {self.name} {self.password}"]
                            if self.password
                            else []
                        ),
                        "",
                    ]
                )
            )
            self.sentinel = sentinel
            sentinel.start()
            self.wait_replica_synced(timeout)
            poll(self._sentinel_knows_primary, timeout, "the sentinel to see the primary")
            if wait_discovery:
                poll(self._sentinel_sees_replica, timeout, "the sentinel to find the replica")
        except BaseException:
            self.stop()
            raise
        return self

    def sentinel_client(self) -> redis.Redis:
        assert self.sentinel is not None
        return redis.Redis(host="127.0.0.1", port=self.sentinel.port, socket_timeout=5)

    def _sentinel_knows_primary(self) -> bool:
        assert self.primary is not None
        return self.primary_port() == self.primary.port

    def _sentinel_sees_replica(self) -> bool:
        with self.sentinel_client() as c:
            replicas = c.execute_command("SENTINEL", "REPLICAS", self.name)
        return len(replicas) >= 1

    def wait_replica_synced(self, timeout: float) -> None:
        assert self.replica is not None

        def synced() -> bool:
            assert self.replica is not None
            with self.replica.client() as c:
                info = c.info("replication")
            return bool(info.get("master_link_status") == "up")

        poll(synced, timeout, "the replica to sync")

    def primary_port(self) -> int:
        with self.sentinel_client() as c:
            _host, port = c.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.name)
        return int(port)

    def stop(self) -> None:
        for p in (self.sentinel, self.replica, self.primary):
            if p is not None:
                p.close()  # stop it and remove its directory


class _AuthProc(ServerProc):
    """A server with ``requirepass``: readiness (and ``client()``) use the password."""

    def __init__(self, binary: str, password: str, extra: tuple[str, ...]) -> None:
        auth = ("--requirepass", password, "--masterauth", password)
        super().__init__(binary, extra=(*extra, *auth))
        self.password = password

    def client(self, **kw: object) -> redis.Redis:
        return super().client(password=self.password, **kw)


def _node(binary: str, password: str | None, extra: tuple[str, ...]) -> ServerProc:
    return (
        ServerProc(binary, extra=extra) if password is None else _AuthProc(binary, password, extra)
    )
