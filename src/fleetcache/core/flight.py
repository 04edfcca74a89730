"""Fleet-wide single-flight in the pure core (``get_or_compute`` and its request-path and
HTTP-transport forms): no I/O here either.

A ``Flight`` is one call: its ``run()`` generator yields ``Call`` (Redis), ``Sleep`` (a
waiter's backoff) and ``Compute`` (the user's function) steps; the sync and async stores
run them (``time.sleep``/``asyncio.sleep``, ``compute()``/``await compute()``). It is the
one operation that is a class rather than an ``op_*`` function: the facade reads what
happened (``computed``, ``response``, ``compute_error``) when Redis fails midway.
"""

from __future__ import annotations

import contextlib
import secrets
import time
from collections.abc import Callable
from typing import Any

from .._lua import script
from .envelope import MAGIC, CorruptEntry, RejectedEntry
from .instructions import Call, Compute, Sleep, StepOp
from .keys import RequestKey
from .ops import PRUNE_PER_PUT, Core
from .signing import ForgedEntry
from .validate import check_control, milliseconds, optional_seconds

#: ``refuse(exc)``: an answer that cannot be stored (a logged skip, never raised).
Refuse = Callable[[Exception], None]

#: A waiter's first poll interval (s); it grows by ``POLL_GROWTH`` up to ``POLL_MAX``.
POLL_START = 0.002
#: Growth factor of a waiter's poll interval.
POLL_GROWTH = 1.5
#: Longest poll interval of a waiter (s): bounds the latency a waiter adds after the answer
#: lands, and the poll load (<= 1/POLL_MAX script calls a second per waiter).
POLL_MAX = 0.025
#: A holder renews its lease every ``lease_seconds / RENEW_PER_LEASE`` while compute runs
#: (but at most every ``RENEW_MIN_INTERVAL`` s: bounded work for very short leases).
RENEW_PER_LEASE = 3
RENEW_MIN_INTERVAL = 0.01
#: How long (ms) a lease lasts until its holder confirms it (ms): the lease script grants
#: ``min(lease_ms, LEASE_GRANT_MS)`` and the holder, once it has seen the grant, extends it
#: to the full lease with one ``renew_lease`` call before computing. A grant whose reply
#: never reached its caller (a timeout in a server stall, a cancelled asyncio task) thus
#: blocks the other callers for at most this long, not ``lease_seconds``.
LEASE_GRANT_MS = 1000
#: How long (ms) the "uncacheable" marker replaces the lease after a holder's answer could
#: not be stored: waiters polling (<= POLL_MAX apart) see it and compute at once.
UNCACHEABLE_MARKER_MS = 2000


def check_lease(lease_seconds: object, wait_timeout: object) -> tuple[int, float | None]:
    """``lease_seconds`` (float s, 0.001 s .. 1e12 s, ms precision) in ms, and
    ``wait_timeout`` (s >= 0, or None)."""
    return milliseconds(lease_seconds, "lease_seconds"), optional_seconds(
        wait_timeout, "wait_timeout"
    )


class Flight:
    """One ``get_or_compute`` call: the request, its lease token, and what happened.

    The facade reads ``computed``/``response``/``compute_error`` when Redis fails midway, to
    return the answer it already has (or to call ``compute`` itself when it has none).
    """

    __slots__ = (
        "coalesced",
        "compute_error",
        "computed",
        "core",
        "deadline_s",
        "digest",
        "key",
        "lease_ms",
        "model",
        "reads",
        "refuse",
        "response",
        "shard",
        "token",
        "ttl_ms",
        "upstream_ms",
        "writes",
    )

    def __init__(
        self,
        core: Core,
        key: RequestKey,
        lease_seconds: object,
        wait_timeout: object,
        refuse: Refuse,
        *,
        ttl_seconds: object = None,
        control: object = "default",
    ) -> None:
        """A flight for ``key`` (``Core.key_of_fields`` for five fields); ``lease_seconds``
        (float s, 0.001 .. 1e12) and ``wait_timeout`` (s >= 0, or None: wait for the lease)
        as in ``get_or_compute``; ``refuse`` gets an answer that cannot be stored (a logged
        skip); ``ttl_seconds`` [None: the cache's TTL] is the stored entry's TTL; ``control``
        ["default"] one of ``validate.CONTROLS``: ``"no-cache"`` computes and stores (no
        read, no lease), ``"no-store"`` reads and computes a miss without storing (no
        lease), ``"bypass"`` only computes (no call at all)."""
        self.reads, self.writes = check_control(control)
        self.core = core
        self.key = key
        self.digest = key.digest
        self.shard = key.shard
        self.model = key.model
        self.ttl_ms = core.entry_ttl(ttl_seconds)
        self.lease_ms, self.deadline_s = check_lease(lease_seconds, wait_timeout)
        self.refuse = refuse
        self.token = secrets.token_hex(16)
        self.computed = False
        self.coalesced = False
        self.response: Any = None
        self.compute_error: BaseException | None = None
        #: how long compute() took, integer ms (set when it returns)
        self.upstream_ms: int | None = None

    # -- what the request-path flight overrides -------------------------------------------

    def decode(self, raw: bytes) -> Any:
        """The response in an entry's bytes; ``ForgedEntry`` (bad MAC) or ``CorruptEntry``
        if they do not decode."""
        return self.core.decode(raw, self.digest)

    def encode(self, response: Any) -> bytes | None:
        """The (signed) entry bytes of a computed response, its header recording what
        compute() cost (usage, price, ``upstream_ms``); ``None``: do not store it (counted
        ``not_stored``); ``EntryTooLargeError`` over ``max_entry_bytes``."""
        return self.core.encode(response, self.digest, self.key.model_name(), self.upstream_ms)

    def not_stored_call(self, leased: bool) -> Call:  # pragma: no cover - encode never None
        raise NotImplementedError

    def _lease_call(self, first: bool) -> Call:
        """``get_or_lease``; a lease it grants lasts ``min(lease_ms, LEASE_GRANT_MS)`` until
        the holder confirms it (``_confirm``)."""
        k, sh, d = self.core.keys, self.shard, self.digest
        return Call(
            script("get_or_lease"),
            (k.entry(sh, d), k.index(sh), k.stats(sh), k.lease(sh, d)),
            (
                d,
                self.model,
                MAGIC,
                self.token,
                min(self.lease_ms, LEASE_GRANT_MS),
                "1" if first else "0",
            ),
        )

    def _get_call(self) -> Call:
        """A plain read (``get``, counted as a hit or miss): the controls that take no lease."""
        k, sh, d = self.core.keys, self.shard, self.digest
        return Call(script("get"), k.entry_keys(sh, d), (d, self.model, MAGIC))

    def _release_call(self, marker_ms: int) -> Call:
        """Give the lease up: delete it (``marker_ms`` 0), or replace it by the
        "uncacheable" marker for ``marker_ms`` ms."""
        k = self.core.keys
        return Call(
            script("release_lease"), (k.lease(self.shard, self.digest),), (self.token, marker_ms)
        )

    def _renew_call(self) -> Call:
        k = self.core.keys
        return Call(
            script("renew_lease"), (k.lease(self.shard, self.digest),), (self.token, self.lease_ms)
        )

    def run(self) -> StepOp[Any]:
        """Hit -> the entry. Miss -> lease granted: compute (renewing the lease while it
        runs) and store; lease held by another: poll with backoff until the entry lands
        (coalesced), the lease ends (take it over), the holder says its answer cannot be
        stored (compute at once), or ``wait_timeout`` passes (compute without a lease).
        A control other than "default" takes no lease (``_without_lease``)."""
        if not (self.reads and self.writes):
            return (yield from self._without_lease())
        sh, d = self.shard, self.digest
        start = time.monotonic()
        deadline = None if self.deadline_s is None else start + self.deadline_s
        delay = POLL_START
        first = True
        while True:
            res = yield self._lease_call(first)
            kind = int(res[0])
            if kind == 1:
                raw = res[1]
                try:
                    response = self.decode(raw)
                except (ForgedEntry, CorruptEntry) as exc:
                    yield self.core.drop_bad_model_call(
                        exc, self.model, d, sh, raw, coalesced=not first
                    )
                    if isinstance(exc, RejectedEntry):
                        # kept for the readers whose model accepts it: it will not go away,
                        # so compute our own answer without a lease
                        return (yield from self._compute_and_store(leased=False))
                    first = False
                    continue
                self.coalesced = not first
                return response
            if kind == 2:
                confirmed = yield from self._confirm()
                if confirmed is False:  # the short grant ended before we confirmed it
                    return (yield from self._compute_and_store(leased=False))
                return (yield from self._compute_and_store(leased=True, confirmed=confirmed))
            if kind == 4:  # the holder's answer could not be stored: don't queue for it
                return (yield from self._compute_and_store(leased=False))
            first = False
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                return (yield from self._compute_and_store(leased=False))
            pause = delay
            pttl = int(res[1])
            if pttl > 0:  # wake up just after the lease ends, to take it over promptly
                pause = min(pause, pttl / 1000 + 0.001)
            if deadline is not None:
                pause = min(pause, max(deadline - now, 0.0))
            yield Sleep(pause)
            delay = min(delay * POLL_GROWTH, POLL_MAX)

    def _without_lease(self) -> StepOp[Any]:
        """``no-store``: read (a hit is returned), then compute a miss; ``no-cache`` and
        ``bypass``: compute. ``_compute_and_store`` stores only when the control writes."""
        if self.reads:
            sh, d = self.shard, self.digest
            raw = yield self._get_call()
            if raw is not None:
                try:
                    return self.decode(raw)
                except (ForgedEntry, CorruptEntry) as exc:
                    yield self.core.drop_bad_model_call(exc, self.model, d, sh, raw)
        return (yield from self._compute_and_store(leased=False))

    def _confirm(self) -> StepOp[bool | None]:
        """Extend a just-granted lease from its short grant to ``lease_ms`` (one
        ``renew_lease`` call): True if it is ours for ``lease_ms`` now, False if the grant
        already ended (another caller may hold the lease), None if Redis failed to answer
        (the renewal may or may not have landed: keep holding it, renewing it within the
        grant). A lease no longer than the grant needs no confirmation (True). Cancelled
        meanwhile: the lease is released (compare-and-delete, as the confirmation is
        compare-and-extend: in either order no lease is left), then the cancellation goes on."""
        if self.lease_ms <= LEASE_GRANT_MS:
            return True
        try:
            return bool((yield self._renew_call()) == 1)
        except GeneratorExit:
            raise
        except Exception:
            return None
        except BaseException:  # cancelled (asyncio) with the confirmation in flight: give
            # the lease up, so a confirmation landing later finds nothing to extend
            with contextlib.suppress(Exception):
                yield self._release_call(0)
            raise

    def _compute_and_store(self, *, leased: bool, confirmed: bool | None = True) -> StepOp[Any]:
        """Compute (a leased holder renews its lease meanwhile), then store the answer.

        The answer is returned whether or not it can be stored: one that is too large or
        cannot be serialised is a logged skip (``refuse``; never raised from here, the
        answer is paid for), and the lease is replaced by the "uncacheable" marker so the
        waiters compute at once rather than take the lease one after another.
        ``confirmed`` None: the confirmation's reply was lost, so the lease may still be
        the short grant: the renewals run within it (every grant / ``RENEW_PER_LEASE``)."""
        every = max(self.lease_ms / 1000 / RENEW_PER_LEASE, RENEW_MIN_INTERVAL)
        if confirmed is None:
            every = min(every, LEASE_GRANT_MS / 1000 / RENEW_PER_LEASE)
        renew = Compute(renew=self._renew_call(), every=every) if leased else Compute()
        started = time.monotonic()
        try:
            response = yield renew
        except GeneratorExit:  # the op is being closed: it may not yield any more
            raise
        except BaseException as exc:
            self.compute_error = exc
            if leased:
                with contextlib.suppress(Exception):  # Redis fault: the lease expires anyway
                    yield self._release_call(0)
            raise
        self.computed = True
        self.response = response
        self.upstream_ms = round((time.monotonic() - started) * 1000)
        if not self.writes:  # no-store, bypass: the answer is the caller's alone
            return response
        try:
            payload = self.encode(response)
        except Exception as exc:  # UNSTORABLE, not our response model, anything: a skip
            if leased:
                yield self._release_call(UNCACHEABLE_MARKER_MS)
            self.refuse(exc)
            return response
        if payload is None:
            yield self.not_stored_call(leased)
            return response
        k, sh, d = self.core.keys, self.shard, self.digest
        ttl_ms = self.ttl_ms
        if leased:
            put = Call(
                script("put_release"),
                (k.entry(sh, d), k.index(sh), k.stats(sh), k.lease(sh, d)),
                (d, payload, ttl_ms, PRUNE_PER_PUT, self.token, self.core.caps[sh]),
            )
        else:
            put = self.core.put_call(d, sh, payload, ttl_ms)
        layout, _stored = yield self.core.put_batch(put)
        self.core.check_layout_reply(layout)
        return response
