"""Shared by the operator entry points (CLI, demo, metrics): connect to a server with a clear
error for each expected failure, find a namespace's recorded layout, open it, format numbers.

Nothing here creates keys: opening an existing namespace reads its ``{P}:meta`` key and uses
the shard count recorded there, so an operator never has to know it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import Any, NamedTuple, TextIO

import redis
from redis.exceptions import AuthenticationError, RedisClusterException, ResponseError

from ._base import DEFAULT_PREFIX, DEFAULT_URL
from ._clients import redact_url, sync_client_from_url
from ._error_policy import REDIS_FAULTS
from ._store_faults import ClientFault
from .cache import RedisExactCache
from .core.keys import KeySpace, check_prefix, check_shards
from .core.models import COUNTERS, FleetStats, ModelStats, decode_text
from .errors import FleetCacheError

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
    """The URL with every credential replaced by ``***`` (safe to print): the one redaction
    every fleetcache output uses, ``fleetcache._clients.redact_url``."""
    return redact_url(url)


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


def recorded_shards(client: Any, prefix: str, shards: int | None = None) -> int | None:
    """Shard count recorded in the namespace's ``{P}:meta`` key; ``None`` if the namespace
    does not exist. Reads only; see ``recorded_layout`` (``shards``: the operator's
    ``--shards``, used only when the record is missing)."""
    layout = recorded_layout(client, prefix, shards)
    return None if layout is None else layout[0]


def recorded_layout(
    client: Any, prefix: str, shards: int | None = None
) -> tuple[int, int | None] | None:
    """``(shards, max_entries)`` recorded in the namespace's ``{P}:meta`` key
    (``max_entries`` is ``None`` for an uncapped namespace); ``None`` if the namespace does
    not exist (no meta key and no index or counters). Reads only.

    When the record is missing but the namespace has data (a restart without persistence or
    an eviction removed it; a running fleet records it again on its next put), the shard
    count cannot be known without guessing: ``shards`` (the operator's ``--shards``) is
    used if given, else ``AdminError`` says how to pass it. A recorded count that differs
    from ``shards`` is an ``AdminError`` too.
    """
    keys = KeySpace(prefix, shards or 1)
    raw = client.get(keys.meta)
    if raw is None:
        names = [n for s in range(keys.shards) for n in (keys.index(s), keys.stats(s))]
        if not any(client.exists(n) for n in names):  # stops at the first found
            return None  # no record and no data: the namespace does not exist
        if shards is not None:
            return shards, None
        raise AdminError(
            f"the layout of namespace {prefix!r} is unknown: its record {keys.meta!r} is "
            "missing (a restart without persistence or an eviction removed it; the fleet "
            "records it again on its next put). Pass --shards N (the shards= the fleet "
            "uses) to read it now; nothing is written",
            EXIT_FAILED,
        )
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    m = _LAYOUT.match(text)
    if m is None:
        raise AdminError(
            f"namespace {prefix!r} has a layout this fleetcache does not know: {text!r}"
        )
    recorded = int(m.group(2))
    if shards is not None and shards != recorded:
        raise AdminError(
            f"namespace {prefix!r} records shards={recorded}, not --shards {shards}",
            EXIT_USAGE,
        )
    return recorded, None if m.group(3) is None else int(m.group(3))


def open_namespace(
    url: str, prefix: str, *, must_exist: bool = True, shards: int | None = None
) -> RedisExactCache:
    """A ``RedisExactCache`` on an existing namespace, with its recorded shard count (or
    ``shards`` when the record is missing: see ``recorded_shards``). Opening reads only:
    the stats, size and counters it then reads never write either.

    Raises ``AdminError``: bad prefix or shards (``EXIT_USAGE``), connection problems
    (``EXIT_UNREACHABLE``), a namespace that does not exist when ``must_exist``
    (``EXIT_NO_NAMESPACE``), an unknown layout (``EXIT_FAILED``).
    """
    try:
        prefix = check_prefix(prefix)
        if shards is not None:
            shards = check_shards(shards)
    except (TypeError, ValueError) as exc:
        raise AdminError(f"invalid --prefix or --shards: {exc}", EXIT_USAGE) from exc
    client = connect(url)
    try:
        layout = recorded_layout(client, prefix, shards)
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


#: ``SCAN`` of ``find_namespaces``: keys asked for per call (a hint to the server).
SCAN_COUNT = 1000
#: ``SCAN`` calls per server (each primary of a cluster) before ``find_namespaces`` stops
#: and says the list may be incomplete: 10,000 calls of ``SCAN_COUNT`` cover about 10 M keys.
SCAN_MAX_CALLS = 10_000
#: Namespaces ``find_namespaces`` returns at most (it stops scanning when it has them).
MAX_NAMESPACES = 1000
#: The ``MATCH`` pattern of the layout records: ``{P}:meta`` (see ``KeySpace.meta``).
META_PATTERN = "{*}:meta"


class FoundNamespaces(NamedTuple):
    """What ``find_namespaces`` found: the namespaces' prefixes (sorted) and whether the scan
    covered the whole keyspace (``False``: a cap stopped it, more may exist)."""

    prefixes: list[str]
    complete: bool


def scan_targets(client: Any) -> list[Any]:
    """The clients whose keyspaces together hold every key: each primary of a Redis Cluster
    (a node client from the cluster client's own pool), else ``client`` itself."""
    get_primaries = getattr(client, "get_primaries", None)
    if get_primaries is None:
        return [client]
    return [client.get_redis_connection(node) for node in get_primaries()]


def find_namespaces(
    client: Any,
    *,
    count: int = SCAN_COUNT,
    max_calls: int = SCAN_MAX_CALLS,
    limit: int = MAX_NAMESPACES,
) -> FoundNamespaces:
    """Every fleetcache namespace on the server of ``client`` (every primary of a cluster),
    found by its layout record ``{P}:meta``. Reads only.

    The one place fleetcache walks the keyspace: ``SCAN`` (never ``KEYS``) with
    ``MATCH {*}:meta`` and ``COUNT count`` (default ``SCAN_COUNT``), at most ``max_calls``
    calls per server (default ``SCAN_MAX_CALLS``), stopping at ``limit`` namespaces (default
    ``MAX_NAMESPACES``); then ``complete`` is ``False``. A key that matches is a namespace
    only if its value is a fleetcache layout (``fleetcache-...``): another application's
    ``{x}:meta`` key, of any type, is left out. An operator tool: the cache itself never
    scans.
    """
    candidates: set[str] = set()
    complete = True
    for node in scan_targets(client):
        if len(candidates) >= limit:
            complete = False  # a server left unscanned
            break
        cursor: Any = 0
        for _ in range(max_calls):
            cursor, keys = node.scan(cursor, match=META_PATTERN, count=count)
            for key in keys:
                text = decode_text(key)
                prefix = text[1:-6]
                tagged = text.startswith("{") and text.endswith("}:meta")
                if tagged and prefix and "{" not in prefix and "}" not in prefix:
                    candidates.add(prefix)
            if int(cursor) == 0 or len(candidates) >= limit:
                break
        if int(cursor) != 0:
            complete = False
    if len(candidates) > limit:
        complete = False
    found = []
    for prefix in sorted(candidates)[:limit]:
        try:
            raw = client.get(KeySpace(prefix, 1).meta)
        except ResponseError:  # WRONGTYPE: another application's key of that name
            continue
        if raw is not None and decode_text(raw).startswith("fleetcache-"):
            found.append(prefix)
    return FoundNamespaces(found, complete)


def namespace_stats(client: Any, prefix: str) -> tuple[int, int | None, FleetStats]:
    """``(shards, max_entries, fleet_stats)`` of an existing namespace, read with its
    recorded layout through ``client`` (reads only; ``AdminError`` for a layout this
    fleetcache does not know)."""
    layout = recorded_layout(client, prefix)
    if layout is None:
        return 1, None, FleetStats()  # deleted since it was found
    shards, cap = layout
    cache = RedisExactCache(client=client, key_prefix=prefix, shards=shards, max_entries=cap)
    return shards, cap, cache.fleet_stats()


def model_dict(m: ModelStats) -> dict[str, Any]:
    """The JSON form of one model's numbers: every field of ``ModelStats`` (hits, misses,
    the savings counters: tokens by kind, ``cost_saved_nanousd``, ``ms_saved``,
    ``unpriced_hits``), ``hit_rate``, and ``cost_saved_usd`` / ``seconds_saved`` (USD, s)."""
    out: dict[str, Any] = m.model_dump()
    out["hit_rate"] = round(m.hit_rate, 6)
    out["cost_saved_usd"] = m.cost_saved_usd
    out["seconds_saved"] = m.seconds_saved
    return out


def stats_dict(fs: FleetStats, *, prefix: str, shards: int) -> dict[str, Any]:
    """The JSON form of a namespace's fleet statistics (what ``stats --json`` prints): the
    namespace, its shards, every counter of ``COUNTERS`` in order, ``size``, ``hit_rate``,
    ``saved_rate`` ((hits + coalesced) / gets), ``cost_saved_usd`` (USD, from the exact
    ``cost_saved_nanousd``), ``seconds_saved`` (s, from ``ms_saved``),
    ``by_model`` (``model_dict`` of each, sorted by name; exact names: JSON's ``\\udcff``
    escapes carry a lone surrogate, and the output is ASCII) and ``bad_counters`` (stored
    values that were not integers, skipped)."""
    out: dict[str, Any] = {"namespace": prefix, "shards": shards}
    out.update({c.name: getattr(fs, c.name) for c in COUNTERS})
    out["size"] = fs.size
    out["hit_rate"] = round(fs.hit_rate, 6)
    out["saved_rate"] = round(fs.saved_rate, 6)
    out["cost_saved_usd"] = fs.cost_saved_usd
    out["seconds_saved"] = fs.seconds_saved
    out["by_model"] = {name: model_dict(m) for name, m in sorted(fs.by_model.items())}
    out["bad_counters"] = list(fs.bad_counters)
    return out


def shown(text: str, *, backslash: bool = True) -> str:
    """``text`` safe to print on a terminal, on one line: every character that is not
    printable (C0/C1 controls such as ESC, BEL, CR, LF; DEL; format characters such as
    bidi overrides; lone surrogates; unassigned code points) and the backslash itself are
    written as Python-style escapes (``\\x1b``, ``\\u202e``, ``\\udcff``, ``\\\\``); the rest
    is kept. Model names and counter fields come from Redis, which any client can write:
    they never reach the operator's terminal raw. ``backslash=False`` keeps backslashes (for
    messages whose names are already ``repr``-escaped)."""
    if text.isprintable() and not (backslash and "\\" in text):
        return text
    out = []
    for ch in text:
        if ch == "\\" and backslash:
            out.append("\\\\")
        elif ch.isprintable():
            out.append(ch)
        else:
            o = ord(ch)
            out.append(
                f"\\x{o:02x}" if o < 0x100 else f"\\u{o:04x}" if o < 0x10000 else f"\\U{o:08x}"
            )
    return "".join(out)


def run_command(command: Callable[[], int], err: TextIO) -> int:
    """Run an operator command (``fleetcache ...``, ``python -m fleetcache.demo``) and turn
    every failure into ONE line on ``err`` (escaped, ``shown``) and an exit code:
    ``AdminError`` (its code), Ctrl-C (130), a fleetcache error (``EXIT_UNREACHABLE`` if
    Redis or the network caused it, else ``EXIT_FAILED``), any other Redis fault
    (``EXIT_UNREACHABLE``), a value the tool cannot use such as a layout recorded in Redis
    (``EXIT_FAILED``), and, as the last resort, anything else (``EXIT_FAILED``;
    ``FLEETCACHE_DEBUG=1`` lets it raise with its traceback)."""

    def fail(message: str, code: int) -> int:
        err.write(f"fleetcache: error: {shown(message, backslash=False)}\n")  # one line
        return code

    try:
        return command()
    except AdminError as exc:
        return fail(str(exc), exc.code)
    except KeyboardInterrupt:
        err.write("\nfleetcache: interrupted\n")
        return 130
    except FleetCacheError as exc:
        unreachable = isinstance(exc.__cause__, (*REDIS_FAULTS, ClientFault))
        return fail(str(exc), EXIT_UNREACHABLE if unreachable else EXIT_FAILED)
    except REDIS_FAULTS as exc:
        return fail(f"Redis failed: {exc}", EXIT_UNREACHABLE)
    except (ValueError, TypeError, OverflowError) as exc:  # e.g. a layout recorded in Redis
        return fail(f"{exc}", EXIT_FAILED)  # that this fleetcache cannot open
    except Exception as exc:  # the last resort: still one line
        if os.environ.get("FLEETCACHE_DEBUG"):
            raise
        return fail(
            f"unexpected {type(exc).__name__}: {exc} (FLEETCACHE_DEBUG=1 shows the traceback)",
            EXIT_FAILED,
        )
