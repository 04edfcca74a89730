"""Exceptions raised by fleetcache."""

from __future__ import annotations


class FleetCacheError(Exception):
    """Base class of every fleetcache error."""


class CacheUnavailableError(FleetCacheError):
    """Redis could not serve the call (connection, timeout, server error).

    Raised only with ``on_error="raise"`` (and always by management calls such as
    ``clear()`` and ``fleet_stats()``); the Redis exception is chained as ``__cause__``.
    """


class LayoutMismatchError(FleetCacheError, ValueError):
    """The namespace was created with another key layout (shard count or key version)."""


class EntryTooLargeError(FleetCacheError, ValueError):
    """An encoded response is larger than the cache's ``max_entry_bytes``."""


class UnsupportedServerError(FleetCacheError):
    """The server cannot run fleetcache: no Lua scripting, too old for PXAT, or the ACL user
    may not run a command fleetcache needs (EVALSHA, SCRIPT LOAD, or one its scripts call).

    Raised whatever ``on_error`` is: it is a setup problem, not a passing fault."""
