"""Shared by the operator entry points (CLI, demo, metrics): connect to a server with a clear
error for each expected failure, find a namespace's recorded layout, open it, format numbers.

Nothing here creates keys: opening an existing namespace reads its ``{P}:meta`` key and uses
the shard count recorded there, so an operator never has to know it.
"""

from __future__ import annotations

import os
import re
from typing import Any

import redis
from redis.exceptions import AuthenticationError, RedisClusterException, ResponseError

from ._base import DEFAULT_PREFIX, DEFAULT_URL
from ._clients import sync_client_from_url
from ._keys import KeySpace, check_prefix
from ._models import COUNTERS, FleetStats
from .cache import RedisExactCache

#: Exit codes of the ``fleetcache`` command (also used by ``fleetcache demo``).
EXIT_OK = 0
EXIT_FAILED = 1  # the operation failed or was declined
EXIT_USAGE = 2  # bad arguments (argparse uses 2 as well)
EXIT_UNREACHABLE = 3  # server unreachable, refused the password, or not usable
EXIT_NO_NAMESPACE = 4  # the namespace does not exist on that server

#: Socket timeouts of the operator tools' clients (seconds): management calls walk chunks of
#: up to 500 entries, slower than a data call but far below this.
ADMIN_TIMEOUT = 5.0
#: Connect timeout of the operator tools' clients (seconds).
ADMIN_CONNECT_TIMEOUT = 2.0

_LAYOUT = re.compile(r"^fleetcache-(\d+);shards=(\d+)(?:;max_entries=(\d+))?$")


class AdminError(Exception):
    """An expected failure with a message for the operator and an exit code."""

    def __init__(self, message: str, code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.code = code


def default_url() -> str:
    """``$REDIS_URL`` if set and non-empty, else ``redis://localhost:6379/0``."""
    return os.environ.get("REDIS_URL") or DEFAULT_URL


def redact(url: str) -> str:
    """The URL with any password replaced by ``***`` (safe to print): the one before ``@``
    in any URL form (also ``redis+sentinel://:pw@h1:p1,h2:p2/...``, which ``urlsplit``
    cannot parse) and a ``password=`` query parameter."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    netloc, slash, tail = rest.partition("/")
    if "@" in netloc:
        auth, _, hosts = netloc.rpartition("@")
        user, colon, _ = auth.partition(":")
        if colon:
            netloc = f"{user}:***@{hosts}"
    tail = _QUERY_PASSWORD.sub(r"\1***", tail)
    return f"{scheme}{sep}{netloc}{slash}{tail}"


_QUERY_PASSWORD = re.compile(r"(?i)([?&]password=)[^&#]*")


def connect(
    url: str, *, timeout: float = ADMIN_TIMEOUT, connect_timeout: float = ADMIN_CONNECT_TIMEOUT
) -> Any:
    """A client for ``url`` (any URL form the caches take) that has answered ``PING``.

    Raises ``AdminError`` with a one-line reason for a malformed URL (``EXIT_USAGE``), an
    unreachable server, a missing or wrong password (``EXIT_UNREACHABLE``).
    """
    shown = redact(url)
    try:
        client = sync_client_from_url(url, timeout, connect_timeout)
    except (ValueError, TypeError) as exc:
        raise AdminError(f"invalid Redis URL {shown!r}: {exc}", EXIT_USAGE) from exc
    except RedisClusterException as exc:  # a cluster client connects when built
        raise AdminError(f"cannot use {shown} as a Redis Cluster: {exc}", EXIT_UNREACHABLE) from exc
    except (redis.RedisError, OSError) as exc:
        raise AdminError(f"cannot reach Redis at {shown}: {exc}", EXIT_UNREACHABLE) from exc
    try:
        client.ping()
    except AuthenticationError as exc:
        client.close()
        raise AdminError(
            f"the server at {shown} refused the credentials ({exc}); put the right password "
            "in the URL: redis://:PASSWORD@host:port/db",
            EXIT_UNREACHABLE,
        ) from exc
    except redis.ConnectionError as exc:
        client.close()
        raise AdminError(f"cannot reach Redis at {shown}: {exc}", EXIT_UNREACHABLE) from exc
    except redis.TimeoutError as exc:
        client.close()
        raise AdminError(
            f"Redis at {shown} did not answer within {timeout:g} s", EXIT_UNREACHABLE
        ) from exc
    except ResponseError as exc:
        client.close()
        msg = str(exc)
        if "NOAUTH" in msg or "WRONGPASS" in msg or "AUTH" in msg:
            raise AdminError(
                f"the server at {shown} needs a password ({msg}); use "
                "redis://:PASSWORD@host:port/db",
                EXIT_UNREACHABLE,
            ) from exc
        raise AdminError(f"Redis at {shown} refused PING: {msg}", EXIT_UNREACHABLE) from exc
    except redis.RedisError as exc:
        client.close()
        raise AdminError(f"Redis at {shown} failed: {exc}", EXIT_UNREACHABLE) from exc
    return client


def recorded_shards(client: Any, prefix: str) -> int | None:
    """Shard count recorded in the namespace's ``{P}:meta`` key; ``None`` if the namespace
    does not exist (no meta key and no shard-0 index)."""
    layout = recorded_layout(client, prefix)
    return None if layout is None else layout[0]


def recorded_layout(client: Any, prefix: str) -> tuple[int, int | None] | None:
    """``(shards, max_entries)`` recorded in the namespace's ``{P}:meta`` key
    (``max_entries`` is ``None`` for an uncapped namespace); ``None`` if the namespace does
    not exist (no meta key and no shard-0 index)."""
    keys = KeySpace(prefix, 1)
    raw = client.get(keys.meta)
    if raw is None:
        return (1, None) if client.exists(keys.index(0)) else None
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    m = _LAYOUT.match(text)
    if m is None:
        raise AdminError(
            f"namespace {prefix!r} has a layout this fleetcache does not know: {text!r}"
        )
    return int(m.group(2)), None if m.group(3) is None else int(m.group(3))


def open_namespace(url: str, prefix: str, *, must_exist: bool = True) -> RedisExactCache:
    """A ``RedisExactCache`` on an existing namespace, with its recorded shard count.

    Raises ``AdminError``: bad prefix (``EXIT_USAGE``), connection problems
    (``EXIT_UNREACHABLE``), a namespace that does not exist when ``must_exist``
    (``EXIT_NO_NAMESPACE``).
    """
    try:
        prefix = check_prefix(prefix)
    except (TypeError, ValueError) as exc:
        raise AdminError(f"invalid --prefix: {exc}", EXIT_USAGE) from exc
    client = connect(url)
    try:
        layout = recorded_layout(client, prefix)
    except redis.RedisError as exc:
        client.close()
        raise AdminError(f"Redis at {redact(url)} failed: {exc}", EXIT_UNREACHABLE) from exc
    except AdminError:
        client.close()
        raise
    if layout is None and must_exist:
        client.close()
        raise AdminError(
            f"namespace {prefix!r} does not exist on {redact(url)} (no key "
            f"{KeySpace(prefix, 1).meta!r}); check --prefix (default {DEFAULT_PREFIX!r})",
            EXIT_NO_NAMESPACE,
        )
    shards, max_entries = layout or (1, None)
    cache = RedisExactCache(
        client=client, key_prefix=prefix, shards=shards, max_entries=max_entries
    )
    cache._owns_client = True  # the cache closes the client it was handed here
    return cache


def stats_dict(fs: FleetStats, *, prefix: str, shards: int) -> dict[str, Any]:
    """The JSON form of a namespace's fleet statistics (what ``stats --json`` prints): the
    namespace, its shards, every counter of ``COUNTERS`` in order, ``size``, ``hit_rate``,
    ``by_model`` and ``bad_counters`` (stored values that were not integers, skipped)."""
    out: dict[str, Any] = {"namespace": prefix, "shards": shards}
    out.update({c.name: getattr(fs, c.name) for c in COUNTERS})
    out["size"] = fs.size
    out["hit_rate"] = round(fs.hit_rate, 6)
    out["by_model"] = {
        name: {"hits": m.hits, "misses": m.misses, "hit_rate": round(m.hit_rate, 6)}
        for name, m in sorted(fs.by_model.items())
    }
    out["bad_counters"] = list(fs.bad_counters)
    return out
