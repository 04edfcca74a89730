"""Real servers for the tests: the package's embedded-server helper (free loopback ports,
readiness by polling PING, shutdown by PID; never port 6379), under the names the suite uses."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import redis

from fleetcache.embedded import (
    EmbeddedServer as ServerProc,
)
from fleetcache.embedded import (
    free_port,
    redis_server_bin,
    valkey_server_bin,
)

__all__ = [
    "AuthServer",
    "SentinelProc",
    "ServerProc",
    "free_port",
    "redis_server_bin",
    "servers_of",
    "valkey_server_bin",
]


@contextmanager
def servers_of(binary: str) -> Iterator[Callable[..., ServerProc]]:
    """``start(*extra_args)`` starts a private server of ``binary`` (only the caller uses
    it); every one started is closed (stopped by PID, directory removed) on exit."""
    started: list[ServerProc] = []

    def start(*extra: str) -> ServerProc:
        started.append(ServerProc(binary, extra=tuple(extra)).start())
        return started[-1]

    try:
        yield start
    finally:
        for proc in started:
            proc.close()


class AuthServer(ServerProc):
    """A redis-server with ``requirepass password``: readiness is polled with it."""

    def __init__(self, password: str) -> None:
        binary = redis_server_bin()
        assert binary is not None
        super().__init__(binary, extra=("--requirepass", password))
        self.password = password

    def client(self, **kw: Any) -> redis.Redis:
        return super().client(password=self.password, **kw)


class SentinelProc(ServerProc):
    """``redis-server <workdir>/sentinel.conf --sentinel`` on ``port`` (plain TCP); the
    caller writes the config file (it must be writable) before ``start()``."""

    def start(self, timeout: float = 15.0) -> SentinelProc:
        conf = os.path.join(self.workdir, "sentinel.conf")
        self.proc = subprocess.Popen(
            [self.binary, conf, "--sentinel"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.wait_ready(timeout)
        return self
