"""A throw-away Redis Cluster for ``bench/operations.py``: N primaries (no replicas) on free
loopback ports, each an embedded server with cluster mode on, joined by ``redis-cli --cluster
create``; stopped by PID."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from typing import Any

import redis

from fleetcache.embedded import EmbeddedServer, free_port


def redis_cli_bin() -> str | None:
    """``$REDIS_CLI_BIN``, else ``redis-cli`` on PATH."""
    return os.environ.get("REDIS_CLI_BIN") or shutil.which("redis-cli")


class BenchCluster:
    """``primaries`` cluster nodes on 127.0.0.1; ``start()`` returns once every node agrees
    on one complete slot map (``timeout`` seconds at most)."""

    def __init__(self, binary: str, cli: str, primaries: int = 3) -> None:
        self.binary, self.cli, self.primaries = binary, cli, primaries
        self.nodes: list[EmbeddedServer] = []

    @property
    def ports(self) -> list[int]:
        return [n.port for n in self.nodes]

    @property
    def url(self) -> str:
        return f"redis+cluster://127.0.0.1:{self.nodes[0].port}"

    def node_client(self, port: int) -> Any:
        return redis.Redis(host="127.0.0.1", port=port, socket_timeout=5)

    def slot_view(self, port: int) -> list[tuple[int, int, int]]:
        """(first slot, last slot, owner port) per range, as ``port`` sees it; [] until ok."""
        with self.node_client(port) as c:
            info = c.execute_command("CLUSTER", "INFO")
            if "cluster_state:ok" not in (info.decode() if isinstance(info, bytes) else info):
                return []
            slots = c.execute_command("CLUSTER", "SLOTS")
        return sorted((int(s[0]), int(s[1]), int(s[2][1])) for s in slots)

    def start(self, timeout: float = 30.0) -> BenchCluster:
        try:
            for _ in range(self.primaries):
                conf = os.path.join(tempfile.mkdtemp(prefix="fleetcache-bench-cl-"), "nodes.conf")
                extra = (
                    "--cluster-enabled", "yes", "--cluster-config-file", conf,
                    "--cluster-port", str(free_port()), "--cluster-node-timeout", "2000",
                )  # fmt: skip
                self.nodes.append(EmbeddedServer(self.binary, extra=extra).start())
            create = [self.cli, "--cluster", "create", *(f"127.0.0.1:{p}" for p in self.ports)]
            subprocess.run(
                [*create, "--cluster-replicas", "0", "--cluster-yes"],
                check=True,
                capture_output=True,
                timeout=timeout,
            )
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                views = [self.slot_view(p) for p in self.ports]
                agreed = bool(views[0]) and all(v == views[0] for v in views)
                if agreed and sum(hi - lo + 1 for lo, hi, _ in views[0]) == 16384:
                    return self
                time.sleep(0.1)
            raise TimeoutError("cluster did not reach cluster_state:ok")
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        for n in self.nodes:
            n.stop()
