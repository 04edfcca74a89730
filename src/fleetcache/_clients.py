"""Building redis-py clients from URLs, with timeouts that keep a stalled server from
holding an LLM call: ``socket_timeout`` and ``socket_connect_timeout`` default to 0.25 s and
redis-py's own retry is limited to ONE immediate retry of a failure to connect
(``ConnectRetry``), so a call on a server that accepts but never answers returns within
about 0.25 s, one that cannot be reached within about 0.5 s (then the error policy applies).

Why no other retry: redis-py retries a command after a timeout or a broken connection by
sending it again, but the first one may have run (a server stalled for 0.45 s runs it when
it wakes up), and every fleetcache script counts: a retried get would count two hits, a put
two puts. A command is therefore sent once. Only faults that provably happened before it
was sent are retried: a failed or timed-out connect (a burst of new connections on a busy
machine), a pooled connection the server had closed (replaced when it is taken from the
pool), ``NOSCRIPT`` (the script did not run: reloaded and re-sent by the store). A cluster
client built from a URL does no retry at all (redis-py's cluster retry cannot tell the two
kinds apart). A ``client=`` you pass keeps its own retry policy: redis-py >= 6 retries 3
times by default, so pass ``retry=fleetcache.ConnectRetry()`` (``AsyncConnectRetry()``
for asyncio; or ``Retry(NoBackoff(), 0)``) for
exactly-once counts.

URL forms (the scheme picks the client class; everything after it is redis-py's own syntax):

- ``redis://``, ``rediss://``, ``unix://``: one server (``redis.Redis.from_url``).
- ``redis+cluster://host:port`` (or ``rediss+cluster://``): Redis Cluster; one seed node is
  enough, the rest are discovered (``RedisCluster.from_url``). No database number.
- ``redis+sentinel://host:port[,host:port...]/service_name[/db]`` (or
  ``rediss+sentinel://``, TLS to the primary): the primary that the sentinels name for
  ``service_name`` (``Sentinel(...).master_for``); a failover is followed by itself. A
  ``user:password@`` before the hosts authenticates to the primary (not to the sentinels).

TLS options go in the URL's query string, for every form: ``ssl_ca_certs=`` (CA bundle
file), ``ssl_ca_path=`` (CA directory), ``ssl_certfile=`` / ``ssl_keyfile=`` (client
certificate and key, for servers with ``tls-auth-clients yes``), ``ssl_password=`` (the key's
passphrase), ``ssl_cert_reqs=`` (``required``, the default, ``optional`` or ``none``),
``ssl_check_hostname=`` (``true``/``false``; default true, the certificate must name the
host), ``ssl_ciphers=``, ``ssl_min_version=``. They need a TLS scheme (``rediss://``,
``rediss+cluster://``, ``rediss+sentinel://``): on a plain one they are a ``ValueError``, as is
an unknown ``ssl_*`` name. With ``rediss+sentinel://`` they apply to the primary (the
sentinels themselves are asked in plain text).
"""

from __future__ import annotations

import inspect
import re
import socket
import time
from collections.abc import Awaitable, Callable
from functools import cache
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from .core.validate import timeout

#: Default socket read/write timeout for URL-built clients (seconds).
DEFAULT_SOCKET_TIMEOUT = 0.25
#: Default connect timeout for URL-built clients (seconds).
DEFAULT_CONNECT_TIMEOUT = 0.25
#: Connections a URL-built single-server client may open (one per concurrent call).
#: redis-py >= 6 caps a pool at 100 by default and fails the 101st concurrent call at once
#: with ``MaxConnectionsError``, which a burst of threads or tasks reaches. A plain pool with
#: a high cap is used rather than ``BlockingConnectionPool``: its queue and lock cost about
#: 20 us per call on the hot path (measured), more than the whole fleetcache layer.
DEFAULT_MAX_CONNECTIONS = 10_000


#: A timeout in seconds: a finite number > 0 (the one check in ``core.validate``).
check_timeout = timeout


R = TypeVar("R")
_RETRYABLE = (RedisConnectionError, RedisTimeoutError, socket.timeout)


def never_sent(error: BaseException) -> bool:
    """True for a failure to connect ("Error 111 connecting to ...", "Timeout connecting to
    server"): nothing of the command was written, so sending it is not a re-send."""
    return "connecting to" in str(error)


def _retryable(error: BaseException, is_retryable: Any) -> bool:
    return never_sent(error) and (is_retryable is None or bool(is_retryable(error)))


class ConnectRetry(Retry):
    """redis-py ``Retry`` that retries once, immediately, and only a failure to connect;
    a command that may have reached the server is never sent again (it would be counted
    twice). Same call shape as ``Retry.call_with_retry`` (redis-py 5 to 8)."""

    def __init__(self) -> None:
        super().__init__(NoBackoff(), 1)

    def call_with_retry(  # type: ignore[override, unused-ignore]
        self,
        do: Callable[[], R],
        fail: Callable[..., Any],
        is_retryable: Callable[[Exception], bool] | None = None,
        with_failure_count: bool = False,
    ) -> R:
        failures = 0
        while True:
            try:
                return do()
            except _RETRYABLE as error:
                failures += 1
                fail(error, failures) if with_failure_count else fail(error)
                if failures > 1 or not _retryable(error, is_retryable):
                    raise


class AsyncConnectRetry(AsyncRetry):
    """The asyncio twin of ``ConnectRetry``."""

    def __init__(self) -> None:
        super().__init__(NoBackoff(), 1)

    async def call_with_retry(  # type: ignore[override, unused-ignore]
        self,
        do: Callable[[], Awaitable[R]],
        fail: Callable[..., Any],
        is_retryable: Callable[[Exception], bool] | None = None,
        with_failure_count: bool = False,
    ) -> R:
        failures = 0
        while True:
            try:
                return await do()
            except _RETRYABLE as error:
                failures += 1
                await (fail(error, failures) if with_failure_count else fail(error))
                if failures > 1 or not _retryable(error, is_retryable):
                    raise


def _client_kwargs(socket_timeout: float, connect_timeout: float) -> dict[str, Any]:
    return {
        "decode_responses": False,
        "socket_timeout": socket_timeout,
        "socket_connect_timeout": connect_timeout,
        "retry": ConnectRetry(),  # never re-send a command that may have run
    }


#: Connections per node an async cluster client built from a URL may open (redis-py's
#: default, 100, turns the 101st concurrent call on one node into an error).
ASYNC_CLUSTER_MAX_CONNECTIONS = 10_000

_CLUSTER = ("redis+cluster://", "rediss+cluster://")
_SENTINEL = ("redis+sentinel://", "rediss+sentinel://")


def _split_scheme(url: object) -> tuple[str, str]:
    """``("plain"|"cluster"|"sentinel", url)``; the cluster URL loses its ``+cluster``."""
    if not isinstance(url, str):
        raise TypeError("url must be a str")
    low = url.lower()
    if low.startswith(_CLUSTER):
        return "cluster", url.split("+", 1)[0] + url[low.index("://") :]
    if low.startswith(_SENTINEL):
        return "sentinel", url
    return "plain", url


#: The ``ssl_*`` query options the URL forms accept (passed to redis-py's SSL connection).
TLS_OPTIONS = frozenset(
    {
        "ssl_ca_certs",
        "ssl_ca_path",
        "ssl_ca_data",
        "ssl_certfile",
        "ssl_keyfile",
        "ssl_password",
        "ssl_cert_reqs",
        "ssl_check_hostname",
        "ssl_ciphers",
        "ssl_min_version",
    }
)
_CERT_REQS = ("none", "optional", "required")
_BOOL = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}


def tls_options(url: str) -> dict[str, Any]:
    """The ``ssl_*`` options in a URL's query string, checked and converted.

    ``ValueError`` for an ``ssl_*`` option on a scheme without TLS (``redis://``,
    ``redis+cluster://``, ``redis+sentinel://``, ``unix://``), an unknown ``ssl_*`` name, or a
    bad ``ssl_cert_reqs`` / ``ssl_check_hostname`` / ``ssl_min_version`` value.
    """
    query = parse_qs(urlsplit(url).query, keep_blank_values=True)
    found = {k: v[-1] for k, v in query.items() if k.startswith("ssl")}
    if not found:
        return {}
    if not url.lower().startswith("rediss"):
        raise ValueError(
            f"TLS options {sorted(found)} need a TLS URL (rediss://, rediss+cluster://, "
            "rediss+sentinel://)"
        )
    unknown = sorted(set(found) - TLS_OPTIONS)
    if unknown:
        raise ValueError(f"unknown TLS option(s) {unknown}; known: {sorted(TLS_OPTIONS)}")
    out: dict[str, Any] = dict(found)
    if "ssl_cert_reqs" in out and out["ssl_cert_reqs"].lower() not in _CERT_REQS:
        raise ValueError(f"ssl_cert_reqs must be one of {_CERT_REQS}, not {out['ssl_cert_reqs']!r}")
    if "ssl_cert_reqs" in out:
        out["ssl_cert_reqs"] = out["ssl_cert_reqs"].lower()
    if "ssl_check_hostname" in out:
        flag = _BOOL.get(out["ssl_check_hostname"].lower())
        if flag is None:
            raise ValueError("ssl_check_hostname must be true or false")
        out["ssl_check_hostname"] = flag
    if "ssl_min_version" in out:
        try:
            out["ssl_min_version"] = int(out["ssl_min_version"])
        except ValueError:
            raise ValueError("ssl_min_version must be an integer (ssl.TLSVersion)") from None
    return out


def parse_sentinel_url(url: str) -> dict[str, Any]:
    """Parse ``redis+sentinel://[user:password@]h:p[,h:p...]/service[/db]``.

    Returns ``hosts`` (list of (host, port); port defaults to 26379), ``service``, ``db``
    (default 0), ``ssl``, ``username``, ``password`` (``None`` when absent), ``tls`` (the
    checked ``ssl_*`` query options, see ``tls_options``). Raises ``ValueError`` for a URL
    without hosts or service name.
    """
    from urllib.parse import unquote

    tls = tls_options(url)
    url = url.partition("?")[0]
    scheme, _, rest = url.partition("://")
    netloc, _, path = rest.partition("/")
    username = password = None
    if "@" in netloc:
        auth, _, netloc = netloc.rpartition("@")
        user, sep, pw = auth.partition(":")
        username = unquote(user) or None
        password = unquote(pw) if sep else None
    hosts: list[tuple[str, int]] = []
    for part in netloc.split(","):
        if not part:
            continue
        host, sep, port = part.rpartition(":")
        if not sep or "]" in port:  # no port given ("h" or "[::1]")
            host, port = part, "26379"
        try:
            hosts.append((host.strip("[]"), int(port)))
        except ValueError:
            raise ValueError(f"bad sentinel address {part!r} in {redact_url(url)!r}") from None
    pieces = [p for p in path.split("/") if p]
    if not hosts or not pieces:
        raise ValueError(
            f"sentinel URL {redact_url(url)!r} needs host:port[,host:port...]/service_name[/db]"
        )
    try:
        db = int(pieces[1]) if len(pieces) > 1 else 0
    except ValueError:
        raise ValueError(f"bad database number in sentinel URL {redact_url(url)!r}") from None
    return {
        "hosts": hosts,
        "service": unquote(pieces[0]),
        "db": db,
        "ssl": scheme.lower().startswith("rediss"),
        "username": username,
        "password": password,
        "tls": tls,
    }


def _sentinel_kwargs(parsed: dict[str, Any], kw: dict[str, Any]) -> dict[str, Any]:
    out = dict(kw, db=parsed["db"])
    if parsed["ssl"]:
        out["ssl"] = True
        out.update(parsed["tls"])
    if parsed["username"]:
        out["username"] = parsed["username"]
    if parsed["password"] is not None:
        out["password"] = parsed["password"]
    return out


#: How long a sentinel discovery pass that found no primary is remembered (seconds): the
#: connection's one immediate retry (and every call during that time) fails at once instead
#: of walking the sentinels again, so a call costs one pass (<= sentinels x socket_timeout).
DISCOVERY_HOLD = 0.5


class _FailedPass:
    """The last failed discovery pass of a ``Sentinel``: its error and when it ended."""

    __slots__ = ("error", "until")

    def __init__(self) -> None:
        self.error: Exception | None = None
        self.until = 0.0

    def check(self) -> None:
        if self.error is not None and time.monotonic() < self.until:
            raise type(self.error)(*self.error.args)  # a fresh one: no traceback build-up

    def record(self, exc: Exception) -> None:
        self.error, self.until = exc, time.monotonic() + DISCOVERY_HOLD


@cache
def _bounded_sentinel_classes() -> tuple[Any, Any]:
    """Sync and async ``Sentinel`` subclasses whose discovery is one bounded pass: each
    sentinel gets ``socket_timeout`` and no retry, and a pass that found nothing fails the
    next ones for ``DISCOVERY_HOLD`` s (redis-py retries a connect by rediscovering)."""
    from redis.asyncio.sentinel import Sentinel as AsyncSentinel
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError
    from redis.sentinel import MasterNotFoundError, Sentinel

    def short(sentinel: Any, service: str, exc: Exception) -> Exception:
        """redis-py's message repeats every sentinel client's repr: one line instead."""
        if not isinstance(exc, MasterNotFoundError):
            return exc
        hosts = ", ".join(
            f"{s.connection_pool.connection_kwargs.get('host')}:"
            f"{s.connection_pool.connection_kwargs.get('port')}"
            for s in sentinel.sentinels
        )
        return MasterNotFoundError(
            f"No master found for {service!r}: no sentinel of {hosts} answered with a "
            "healthy primary (down, unreachable or not monitoring it)"
        )

    class BoundedSentinel(Sentinel):
        def __init__(self, *args: Any, **kw: Any) -> None:
            super().__init__(*args, **kw)  # type: ignore[no-untyped-call]
            self._failed = _FailedPass()

        def discover_master(self, service_name: str) -> Any:
            self._failed.check()
            try:
                return super().discover_master(service_name)  # type: ignore[no-untyped-call]
            except (RedisConnectionError, RedisTimeoutError) as exc:
                err = short(self, service_name, exc)
                self._failed.record(err)
                raise err from (None if err is exc else exc)

    class AsyncBoundedSentinel(AsyncSentinel):
        def __init__(self, *args: Any, **kw: Any) -> None:
            super().__init__(*args, **kw)  # type: ignore[no-untyped-call]
            self._failed = _FailedPass()

        async def discover_master(self, service_name: str) -> Any:
            self._failed.check()
            try:
                return await super().discover_master(service_name)
            except (RedisConnectionError, RedisTimeoutError) as exc:
                err = short(self, service_name, exc)
                self._failed.record(err)
                raise err from (None if err is exc else exc)

    return BoundedSentinel, AsyncBoundedSentinel


def _sentinel_primary(
    sentinel_cls: Any,
    url: str,
    kw: dict[str, Any],
    socket_timeout: float,
    connect_timeout: float,
    no_retry: Any,
) -> Any:
    """The primary that the sentinels of a ``redis+sentinel://`` URL name (sync or async
    bounded ``Sentinel`` class), followed across failovers by redis-py."""
    parsed = parse_sentinel_url(url)
    sentinel = sentinel_cls(
        parsed["hosts"],
        sentinel_kwargs={
            "socket_timeout": socket_timeout,
            "socket_connect_timeout": connect_timeout,
            "retry": no_retry,
        },
    )
    return sentinel.master_for(parsed["service"], **_sentinel_kwargs(parsed, kw))


#: Query parameters whose value is a credential (``password=``, ``ssl_password=`` ...):
#: a name holding ``pass``, ``secret``, ``token``, ``auth`` or ``credential``, or ending in
#: ``key`` (``api_key``). ``ssl_keyfile`` / ``ssl_certfile`` / ``ssl_ca_certs`` are file
#: paths, not secrets, and stay readable.
_SECRET_PARAM = re.compile(r"(?i)pass|secret|token|auth|credential|key$")
_QUERY_PARAM = re.compile(r"([?&;])([^=&;#]*)=([^&;]*)")


def redact_url(url: str) -> str:
    """``url`` safe to print or put in an error: every credential replaced by ``***``.

    Masked: the password of the userinfo (everything up to the LAST ``@`` is taken as
    userinfo, so a password pasted with an unencoded ``/``, ``?``, ``#`` or ``@`` is masked
    whole; the user name before the first ``:`` stays), in any URL form (also
    ``redis+sentinel://:pw@h1:p1,h2:p2/...``), and the value of every query parameter whose
    name marks a credential (``password``, ``ssl_password``, any name holding ``pass``,
    ``secret``, ``token``, ``auth``, ``credential`` or ending in ``key``), up to the next
    ``&``. A ``#`` fragment is dropped. File paths (``ssl_keyfile=``...) are kept."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return "***" if "@" in url else url
    if "@" in rest:
        auth, _, rest = rest.rpartition("@")
        user, colon, _ = auth.partition(":")
        user = user if colon and not any(ch in user for ch in "/?#&") else ""
        rest = f"{user}:***@{rest}"
    head, q, query = rest.partition("?")
    head = head.partition("#")[0]
    if q:
        query = _QUERY_PARAM.sub(_mask_param, "?" + query)[1:]
    return f"{scheme}{sep}{head}{q}{query}"


def _mask_param(m: re.Match[str]) -> str:
    if _SECRET_PARAM.search(m.group(2)):
        return f"{m.group(1)}{m.group(2)}=***"
    return f"{m.group(1)}{m.group(2)}={m.group(3).partition('#')[0]}"


def url_secrets(url: str) -> list[str]:
    """The credentials a URL holds (raw and percent-decoded): the userinfo password (up
    to the last ``@``) and the values of the query parameters ``redact_url`` masks."""
    from urllib.parse import unquote

    found: list[str] = []
    rest = url.partition("://")[2] or url
    if "@" in rest:
        auth = rest.rpartition("@")[0]
        found.append(auth.partition(":")[2] if ":" in auth else auth)
    for m in _QUERY_PARAM.finditer("?" + rest.partition("?")[2]):
        if _SECRET_PARAM.search(m.group(2)):
            found.append(m.group(3))
    out = [s for f in found for s in (f, unquote(f)) if s]
    return list(dict.fromkeys(out))


def scrub(text: str, url: str) -> str:
    """``text`` (an error message about ``url``) with no part of the URL's credentials:
    each credential is replaced by ``***``; if a piece of 4 or more characters of one is
    still there, the whole message is withheld."""
    for secret in sorted(url_secrets(url), key=len, reverse=True):
        text = text.replace(secret, "***")
    for secret in url_secrets(url):
        if any(secret[i : i + 4] in text for i in range(len(secret) - 3)):
            return "(message withheld: it would show part of a credential)"
    return text


def check_url(url: str) -> None:
    """Refuse (``ValueError``, showing only ``redact_url(url)``) a URL whose credentials a
    parser would split: a ``#`` anywhere, or an ``@`` after the host part (a password
    pasted with an unencoded ``/``, ``?`` or ``#`` looks like that). Percent-encode such
    characters (``urllib.parse.quote(password, safe="")``); an ``@`` in a query value or
    socket path is written ``%40``."""
    if "#" in url:
        raise ValueError(
            f"the Redis URL {redact_url(url)!r} holds a '#': a password (or any part) holding "
            "'#' must be percent-encoded (%23), e.g. urllib.parse.quote(password, safe='')"
        )
    rest = url.partition("://")[2]
    netloc = urlsplit(url).netloc
    if "@" in rest and "@" not in netloc:
        raise ValueError(
            f"the Redis URL {redact_url(url)!r} holds an '@' after its host part: a password "
            "holding '/', '?', '#' or '@' must be percent-encoded, e.g. "
            "urllib.parse.quote(password, safe=''); an '@' in a query value is written %40"
        )


def _safe_build(build: Any, url: str, *args: Any) -> Any:
    """``build(url, *args)`` with every error's message free of the URL's credentials (and
    no chained exception that could still show them)."""
    check_url(url)
    try:
        return build(url, *args)
    except Exception as exc:
        msg = str(exc)
        clean = scrub(msg, url)
        if clean == msg:
            raise
        try:
            new = type(exc)(clean)
        except Exception:
            new = ValueError(clean)
        raise new from None


def sync_client_from_url(url: str, socket_timeout: float, connect_timeout: float) -> Any:
    """A client for ``url`` (one connection pool, reused by the cache object):
    ``redis.Redis``, ``RedisCluster`` or a sentinel-managed primary (see the URL forms).
    A malformed URL is a ``ValueError`` whose message shows no credential (``check_url``)."""
    return _safe_build(_sync_client, url, socket_timeout, connect_timeout)


def _sync_client(url: str, socket_timeout: float, connect_timeout: float) -> Any:
    import redis

    kind, url = _split_scheme(url)
    tls_options(url)  # a clear ValueError now rather than a TypeError at the first call
    kw = _client_kwargs(socket_timeout, connect_timeout)
    if kind == "cluster":
        from redis.cluster import RedisCluster

        kw["retry"] = Retry(NoBackoff(), 0)  # cluster-level: cannot tell unsent from sent
        return RedisCluster.from_url(url, **kw)
    if kind == "sentinel":
        sentinel_cls = _bounded_sentinel_classes()[0]
        no_retry = Retry(NoBackoff(), 0)
        return _sentinel_primary(sentinel_cls, url, kw, socket_timeout, connect_timeout, no_retry)
    pool = redis.ConnectionPool.from_url(url, max_connections=DEFAULT_MAX_CONNECTIONS, **kw)
    return _owning(redis.Redis, pool)


def async_client_from_url(url: str, socket_timeout: float, connect_timeout: float) -> Any:
    """The asyncio twin of ``sync_client_from_url``: ``redis.asyncio.Redis``, async
    ``RedisCluster`` or a sentinel-managed primary."""
    return _safe_build(_async_client, url, socket_timeout, connect_timeout)


def _async_client(url: str, socket_timeout: float, connect_timeout: float) -> Any:
    import redis.asyncio

    kind, url = _split_scheme(url)
    tls_options(url)
    kw = _client_kwargs(socket_timeout, connect_timeout)
    # the asyncio clients need the asyncio Retry: a sync one returns the coroutine from its
    # loop without awaiting it, so it would never retry
    kw["retry"] = AsyncConnectRetry()
    if kind == "cluster":
        kw["retry"] = AsyncRetry(NoBackoff(), 0)  # cluster-level: cannot tell unsent from sent
        from redis.asyncio.cluster import RedisCluster

        # redis-py's async cluster raises MaxConnectionsError past 100 connections per node
        # (it does not wait for a free one): 200 concurrent gets would be 100 misses
        kw["max_connections"] = ASYNC_CLUSTER_MAX_CONNECTIONS
        return RedisCluster.from_url(url, **kw)
    if kind == "sentinel":
        sentinel_cls = _bounded_sentinel_classes()[1]
        no_retry = AsyncRetry(NoBackoff(), 0)
        return _sentinel_primary(sentinel_cls, url, kw, socket_timeout, connect_timeout, no_retry)
    pool = redis.asyncio.ConnectionPool.from_url(url, max_connections=DEFAULT_MAX_CONNECTIONS, **kw)
    return _owning(redis.asyncio.Redis, pool)


def _owning(cls: Any, pool: Any) -> Any:
    """A client of class ``cls`` that owns (and on close disconnects) ``pool``."""
    from_pool = getattr(cls, "from_pool", None)
    if from_pool is not None:
        return from_pool(pool)
    client = cls(connection_pool=pool)  # redis-py < 5.0.1
    client.auto_close_connection_pool = True
    return client


def is_asyncio_client(client: Any) -> bool | None:
    """True for an asyncio client (``redis.asyncio.Redis``, async ``RedisCluster``, an async
    sentinel's ``master_for``), False for a sync one, None when it cannot tell (a duck-typed
    wrapper without ``execute_command``)."""
    import redis
    import redis.asyncio
    from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
    from redis.cluster import RedisCluster

    if isinstance(client, (redis.asyncio.Redis, AsyncRedisCluster)):
        return True
    if isinstance(client, (redis.Redis, RedisCluster)):
        return False
    execute = getattr(client, "execute_command", None)
    if execute is None:
        return None
    return inspect.iscoroutinefunction(execute)


def check_client(client: Any, *, want_async: bool) -> Any:
    """Refuse a client of the wrong kind (an asyncio client for the sync cache, or a sync
    one for the async cache: ``TypeError``) or one that decodes responses (``ValueError``:
    payloads are binary)."""
    kind = is_asyncio_client(client)
    if kind is not None and kind != want_async:
        want, got = ("an asyncio", "a sync") if want_async else ("a sync", "an asyncio")
        cls = "AsyncRedisExactCache" if want_async else "RedisExactCache"
        other = "RedisExactCache" if want_async else "AsyncRedisExactCache"
        raise TypeError(
            f"{cls} needs {want} Redis client, got {got} one ({type(client).__module__}."
            f"{type(client).__qualname__}): use {other} with it, or pass the matching client "
            f"({'redis.asyncio' if want_async else 'redis'}.Redis, RedisCluster or "
            "Sentinel.master_for)"
        )
    try:
        kwargs = client.get_connection_kwargs()
    except AttributeError:
        kwargs = getattr(getattr(client, "connection_pool", None), "connection_kwargs", {}) or {}
    if isinstance(kwargs, dict) and kwargs.get("decode_responses"):
        raise ValueError(
            "the client was built with decode_responses=True; fleetcache stores binary "
            "payloads and needs decode_responses=False"
        )
    return client


def tls_hint(exc: BaseException) -> str:
    """A short explanation to append to a connection fault that looks like a TLS problem
    (``""`` otherwise): a failed handshake (wrong CA, client certificate refused, a host the
    certificate does not name) or a server that drops a plain-text client (TLS-only port)."""
    import ssl

    seen: set[int] = set()
    e: BaseException | None = exc
    text = ""
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, ssl.SSLError):
            text = "SSL"
            break
        text += " " + str(e)
        e = e.__cause__ or e.__context__
    if "SSL" in text or "CERTIFICATE" in text.upper():
        return (
            " (TLS handshake failed: check the CA, ssl_ca_certs=; the client certificate, "
            "ssl_certfile=/ssl_keyfile=; and that the server certificate names the host)"
        )
    low = text.lower()
    if "reset by peer" in low or "closed by server" in low or "connection closed" in low:
        return (
            " (the server dropped the connection before answering: if it only accepts TLS, "
            "use a rediss:// URL; if it needs a client certificate, pass ssl_certfile= and "
            "ssl_keyfile=)"
        )
    return ""
