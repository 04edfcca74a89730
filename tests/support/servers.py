"""Real servers for the tests: the package's embedded-server helper (free loopback ports,
readiness by polling PING, shutdown by PID; never port 6379), under the names the suite uses."""

from __future__ import annotations

from fleetcache.embedded import (
    EmbeddedServer as ServerProc,
)
from fleetcache.embedded import (
    free_port,
    redis_server_bin,
    valkey_server_bin,
)

__all__ = ["ServerProc", "free_port", "redis_server_bin", "valkey_server_bin"]
