"""What a Redis fault does to a call: the error policy, a circuit breaker, rate-limited logs."""

from __future__ import annotations

import logging
import threading
import time
from typing import Literal, TypeVar

import redis.exceptions
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisClusterException, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ._clients import tls_hint
from .core.validate import seconds
from .errors import CacheUnavailableError

log = logging.getLogger("fleetcache")

OnError = Literal["miss", "raise"]
T = TypeVar("T")

#: Exceptions the policy handles: anything redis-py raises, plus socket-level OSErrors.
#: Cluster faults during resharding or failover are ``RedisError`` subclasses
#: (``TryAgainError``, ``AskError``/``MovedError`` once redirects run out, ``ClusterDownError``,
#: ``ClusterError("TTL exhausted")``) except ``RedisClusterException`` and its subclasses
#: (``SlotNotCoveredError``, ...), which redis-py derives from ``Exception``: listed here.
REDIS_FAULTS: tuple[type[BaseException], ...] = (RedisError, RedisClusterException, OSError)
_OUTAGE: tuple[type[BaseException], ...] = (RedisConnectionError, RedisTimeoutError, OSError)
#: A full connection pool (redis-py >= 6: ``MaxConnectionsError``, a ``ConnectionError``) is
#: a burst of this process, not an outage: it does not open the breaker.
_POOL_FULL: tuple[type[BaseException], ...] = tuple(
    e for e in (getattr(redis.exceptions, "MaxConnectionsError", None),) if e is not None
)


class ErrorPolicy:
    """Turns Redis faults into misses/skips (``"miss"``) or ``CacheUnavailableError``.

    With ``"miss"``, a connection failure or timeout opens a circuit breaker for
    ``breaker_seconds`` (default 1.0 s): during that time data calls return a miss / skip at
    once, without touching the network, so an outage adds no latency to every LLM call.
    The first call after it tries Redis again. Errors are logged at WARNING, at most one
    line per ``log_interval`` seconds (default 10 s) with a count of the ones suppressed.
    ``errors`` counts every fault this process saw (process-local).
    """

    def __init__(
        self, on_error: str, breaker_seconds: float = 1.0, log_interval: float = 10.0
    ) -> None:
        if on_error not in ("miss", "raise"):
            raise ValueError(f"on_error must be 'miss' or 'raise', not {on_error!r}")
        self.on_error: OnError = "miss" if on_error == "miss" else "raise"
        self.breaker_seconds = seconds(breaker_seconds, "breaker_seconds", inclusive=True)
        self.log_interval = log_interval
        self.errors = 0
        self.skipped = 0
        self._open_until = 0.0
        self._last_log = -1e18
        self._suppressed = 0
        self._lock = threading.Lock()

    def is_open(self) -> bool:
        """True while the breaker short-circuits data calls (only with ``"miss"``)."""
        if self._open_until and time.monotonic() < self._open_until:
            with self._lock:
                self.skipped += 1
            return True
        return False

    def closed(self) -> None:
        """A call reached Redis: close the breaker."""
        self._open_until = 0.0

    def failed(self, exc: BaseException, what: str, *, fail_open: bool) -> None:
        """Record a fault. Raises ``CacheUnavailableError`` unless it should fail open."""
        now = time.monotonic()
        with self._lock:
            self.errors += 1
            outage = isinstance(exc, _OUTAGE) and not isinstance(exc, _POOL_FULL)
            if fail_open and self.breaker_seconds and outage:
                self._open_until = now + self.breaker_seconds
            if now - self._last_log >= self.log_interval:
                suppressed, self._suppressed, self._last_log = self._suppressed, 0, now
                emit = True
            else:
                self._suppressed += 1
                emit = False
        hint = tls_hint(exc) if isinstance(exc, _OUTAGE) else ""
        if emit:
            more = f" ({suppressed} similar errors suppressed)" if suppressed else ""
            action = "served as a miss/skip" if fail_open else "raised"
            log.warning("fleetcache: %s failed, %s: %r%s%s", what, action, exc, hint, more)
        if not fail_open:
            raise CacheUnavailableError(f"Redis could not serve {what}: {exc}{hint}") from exc

    def refused(self, exc: Exception, *, may_raise: bool = True) -> None:
        """An entry the cache will not store (too large, or fields that cannot be
        serialised): raise with ``"raise"`` (unless not ``may_raise``: an answer that is
        already paid for), else log."""
        if self.on_error == "raise" and may_raise:
            raise exc
        with self._lock:
            self.skipped += 1
        log.warning("fleetcache: put skipped: %s", exc)
