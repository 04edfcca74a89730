"""What the sync and async stores share: no I/O here. Error classification for script
calls (no Lua, ACL, old server), the client-library fault wrapper, and how an instruction
becomes ``EVALSHA`` arguments. The stores themselves: ``_astore.py`` (the source) and
``_store.py`` (generated from it by ``scripts/unasync.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.cluster import RedisCluster
from redis.exceptions import NoPermissionError, NoScriptError, RedisError, ResponseError

from .core.instructions import Call
from .errors import FleetCacheError, UnsupportedServerError

#: How many times one call reloads its script on NOSCRIPT before giving up: a SCRIPT FLUSH
#: can land between our SCRIPT LOAD and the EVALSHA that follows it.
RELOADS = 3


def evalsha_args(c: Call) -> tuple[Any, ...]:
    """``EVALSHA`` arguments of a call: sha, key count, keys, args."""
    return (c.script.sha, len(c.keys), *c.keys, *c.args)


def check_script_error(exc: ResponseError) -> None:
    """Raise ``UnsupportedServerError`` for a server that cannot run fleetcache's scripts
    (no Lua, an ACL that denies a command, Redis < 6.2); return for any other error."""
    msg = str(exc)
    if "unknown command" in msg.lower() and "eval" in msg.lower():
        raise UnsupportedServerError(
            "this server has no Lua scripting (EVALSHA is an unknown command): fleetcache "
            "needs Redis >= 6.2 or Valkey >= 7.2 with scripting enabled"
        ) from exc
    if (
        isinstance(exc, NoPermissionError)
        or "can't run this command" in msg
        or ("ACL failure in script" in msg)
        or "can't access at least one of the keys" in msg  # Redis 7.0, a key inside a script
    ):
        raise UnsupportedServerError(
            f"the Redis user may not run a command fleetcache needs ({msg}); grant the ACL rule "
            "`fleetcache acl --prefix P --user U --shards S` prints (+evalsha +script|load and "
            "the commands the scripts call, on the namespace's keys; docs/operations.md)"
        ) from exc
    if "PXAT" in msg or "syntax error" in msg.lower():
        raise UnsupportedServerError(
            f"the server rejected a fleetcache script ({msg}); Redis >= 6.2 is required"
        ) from exc


class ClientFault(RedisError):
    """The redis-py client itself failed with a non-Redis exception (seen: an
    ``AttributeError`` from a cold async ``RedisCluster`` under a burst). Treated as a Redis
    fault, so the error policy applies instead of the exception reaching the LLM call."""


def as_fault(exc: Exception) -> Exception:
    """Exceptions from the client during I/O: Redis faults and fleetcache's own setup errors
    pass as they are; anything else the client library raised becomes a ``ClientFault``."""
    if isinstance(exc, (RedisError, OSError, FleetCacheError)):
        return exc
    fault = ClientFault(f"redis client failed: {exc!r}")
    fault.__cause__ = exc
    return fault


def noscript_positions(results: Sequence[Any]) -> list[int]:
    return [i for i, r in enumerate(results) if isinstance(r, NoScriptError)]


def raise_first_error(results: Sequence[Any]) -> None:
    for r in results:
        if isinstance(r, BaseException):
            if isinstance(r, ResponseError):
                check_script_error(r)
            raise r


def is_cluster(client: Any) -> bool:
    """True for a sync or async ``RedisCluster`` client (its pipeline needs node routing)."""
    return isinstance(client, (RedisCluster, AsyncRedisCluster))
